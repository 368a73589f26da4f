package zuora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// maxBody bounds a response body read into memory.
const maxBody = 64 << 20

// CallInfo describes one HTTP attempt, for metrics and the admin page's
// "last successful call". It never carries credentials.
type CallInfo struct {
	// Operation is "METHOD /path-template", e.g. "GET /v1/accounts/{account-key}".
	Operation string
	// Status is the HTTP status (0 when no response arrived).
	Status int
	// Duration is the attempt's wall time.
	Duration time.Duration
	// RequestID is Zuora-Request-Id.
	RequestID string
	// Err is the attempt's error (nil on success).
	Err error
	// Retry: the client will retry after this attempt.
	Retry bool
	// Throttled: Zuora answered 429 or a concurrency-limit error.
	Throttled bool
	// Attempt is 1 for the first attempt of a call.
	Attempt int
}

// Option customises a Client.
type Option func(*Client)

// WithHTTPClient uses h for every request. Config.Timeout still bounds each
// attempt; h.Timeout, if set, applies as well (the shorter wins). Redirects
// are never followed whatever h says.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTransport uses rt as the transport of the client's own http.Client
// (tests inject zuoraspec's RecordingTransport here).
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Client) { c.http = &http.Client{Transport: rt} }
}

// WithCallObserver registers fn, called after every HTTP attempt (token
// mints included). fn must be fast and safe for concurrent use.
func WithCallObserver(fn func(CallInfo)) Option {
	return func(c *Client) { c.observers = append(c.observers, fn) }
}

// WithClock sets the clock used for token expiry and the per-minute budget.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// Client calls one Zuora tenant. It is safe for concurrent use; share one per
// tenant so the token, limiter and budget are shared too.
type Client struct {
	cfg       Config
	ep        atomic.Pointer[endpoint]
	last      atomic.Pointer[lastSuccess]
	http      *http.Client
	log       zerolog.Logger
	observers []func(CallInfo)
	now       func() time.Time
	tokens    *tokenSource
	lim       *limiter
	tenant    tenantCache
	fields    fieldCache
	keys      idemKeys
}

// New validates cfg, applies defaults and returns a Client.
func New(cfg Config, log zerolog.Logger, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("zuora config: BaseURL: %w", err)
	}
	c := &Client{
		cfg:  cfg,
		http: &http.Client{},
		log:  log,
		now:  time.Now,
	}
	c.ep.Store(&endpoint{base: cfg.BaseURL, baseURL: u, clientID: cfg.ClientID, clientSecret: cfg.ClientSecret})
	for _, o := range opts {
		o(c)
	}
	// Never follow redirects: Zuora does not redirect API calls, and a
	// redirect must not carry the bearer token or replay a POST elsewhere.
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	c.tokens = &tokenSource{c: c}
	c.lim = newLimiter(cfg.ConcurrencyLimit, cfg.RequestsPerMinute, cfg.UsageShare, c.now)
	return c, nil
}

// endpoint is the tenant a Client talks to and the credentials it uses;
// SetEndpoint replaces it while the client runs.
type endpoint struct {
	base         string
	baseURL      *url.URL
	clientID     string
	clientSecret string
}

// Config returns the effective configuration (defaults applied), with the
// current endpoint. Do not log it whole: it holds the client secret.
func (c *Client) Config() Config {
	cfg := c.cfg
	ep := c.ep.Load()
	cfg.BaseURL, cfg.ClientID, cfg.ClientSecret = ep.base, ep.clientID, ep.clientSecret
	return cfg
}

// BaseURL is the REST base URL the client talks to now.
func (c *Client) BaseURL() string { return c.ep.Load().base }

// ClientID is the OAuth client id the client uses now.
func (c *Client) ClientID() string { return c.ep.Load().clientID }

// Probe checks a tenant and credentials without touching the running
// client: it validates them as SetEndpoint does, then mints a token and reads
// one catalog page with a separate client on the same transport (no call
// observers, at most two attempts per call). The error is Validate's, or the
// Zuora error of the failed call.
func (c *Client) Probe(ctx context.Context, baseURL, clientID, clientSecret string, allowAny bool) error {
	cfg := c.cfg
	cfg.BaseURL, cfg.ClientID, cfg.ClientSecret, cfg.AllowAnyBaseURL = baseURL, clientID, clientSecret, allowAny
	cfg.MaxAttempts, cfg.Timeout = min(cfg.MaxAttempts, 2), min(cfg.Timeout, 20*time.Second)
	p, err := New(cfg, c.log, WithHTTPClient(c.http), WithClock(c.now))
	if err != nil {
		return err
	}
	return p.TestConnection(ctx)
}

// SetEndpoint makes the running client talk to another tenant or with other
// credentials (the admin page's connection settings): it validates them as
// New does (allowAny as Config.AllowAnyBaseURL), then swaps them in at once.
// The cached token, tenant settings and described fields are dropped, so the next call mints a
// token with the new credentials; calls already under way finish with the old
// ones.
func (c *Client) SetEndpoint(baseURL, clientID, clientSecret string, allowAny bool) error {
	cfg := c.cfg
	cfg.BaseURL, cfg.ClientID, cfg.ClientSecret, cfg.AllowAnyBaseURL = baseURL, clientID, clientSecret, allowAny
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return fmt.Errorf("zuora config: BaseURL: %w", err)
	}
	c.ep.Store(&endpoint{base: cfg.BaseURL, baseURL: u, clientID: clientID, clientSecret: clientSecret})
	c.tokens.reset()
	c.tenant.mu.Lock()
	c.tenant.have = false
	c.tenant.mu.Unlock()
	c.fields.mu.Lock()
	c.fields.byOb = nil
	c.fields.mu.Unlock()
	return nil
}

// Concurrency returns the limiter's current cap and in-flight calls.
func (c *Client) Concurrency() (limit, inFlight int) { return c.lim.snapshot() }

// LastSuccess returns the time and operation of the last HTTP attempt Zuora
// answered successfully (a token mint included); zero when there was none.
func (c *Client) LastSuccess() (time.Time, string) {
	if l := c.last.Load(); l != nil {
		return l.at, l.op
	}
	return time.Time{}, ""
}

type lastSuccess struct {
	at time.Time
	op string
}

func (c *Client) observe(info CallInfo) {
	if info.Err == nil && info.Status > 0 && info.Status < 400 {
		c.last.Store(&lastSuccess{at: time.Now().UTC(), op: info.Operation})
	}
	for _, fn := range c.observers {
		fn(info)
	}
}

// call is one logical API call (possibly several HTTP attempts).
type call struct {
	op     string // "METHOD /path-template"
	method string
	path   string // path below the base URL (escaped), or an absolute URL
	query  url.Values
	body   any
	// raw, when set, is sent as is with Content-Type rawType instead of
	// body's JSON (a multipart usage file).
	raw     []byte
	rawType string
	idemKey string
	// check, when set, inspects a successful answer's body and may turn it
	// into an error (e.g. an Actions answer whose every row hit a retryable
	// error such as lock contention).
	check func(body []byte) *Error
}

// response is a successful call's raw answer.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
}

func (cl call) isWrite() bool { return cl.method != http.MethodGet && cl.method != http.MethodHead }

// doJSON performs cl and decodes the body into out (when out is not nil).
func (c *Client) doJSON(ctx context.Context, cl call, out any) (*response, error) {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return resp, err
	}
	if out != nil && len(bytes.TrimSpace(resp.body)) > 0 {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return resp, &Error{Op: cl.op, HTTPStatus: resp.status, Code: codeDecode,
				Message: "cannot decode Zuora's response: " + err.Error(), RequestID: resp.requestID, Err: err}
		}
	}
	return resp, nil
}

// do runs cl with token handling, limiting, retries and error detection.
func (c *Client) do(ctx context.Context, cl call) (*response, error) {
	var body []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return nil, fmt.Errorf("zuora %s: encode request: %w", cl.op, err)
		}
		body = b
	}
	if cl.raw != nil {
		body = cl.raw
	}
	if cl.idemKey != "" && len(cl.idemKey) > 255 {
		return nil, fmt.Errorf("zuora %s: Idempotency-Key longer than 255 characters", cl.op)
	}
	target, err := c.resolve(cl.path, cl.query)
	if err != nil {
		return nil, fmt.Errorf("zuora %s: %w", cl.op, err)
	}
	ambiguous := false
	reminted := false
	base := cl.idemKey
	if base != "" {
		cl.idemKey = c.keys.current(base, c.now())
	}
	for attempt := 1; ; attempt++ {
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return nil, c.finalErr(cl, err, attempt-1, ambiguous)
		}
		if err := c.lim.acquire(ctx); err != nil {
			return nil, c.finalErr(cl, err, attempt-1, ambiguous)
		}
		resp, e, maybeApplied := c.attempt(ctx, cl, target, body, tok, attempt)
		remaining, limit := headerInt(resp, "Concurrency-Limit-Remaining"), headerInt(resp, "Concurrency-Limit-Limit")
		throttled := e != nil && (e.HTTPStatus == http.StatusTooManyRequests || e.Category == CategoryConcurrencyLimit ||
			e.Code == "REQUEST_EXCEEDED_RATE" || e.Code == "REQUEST_EXCEEDED_LIMIT")
		c.lim.release(ctx, remaining, limit, throttled)
		if e == nil {
			c.observe(CallInfo{Operation: cl.op, Status: resp.status, Duration: resp.dur, RequestID: resp.requestID, Attempt: attempt})
			return &response{status: resp.status, header: resp.header, body: resp.body, requestID: resp.requestID}, nil
		}
		if maybeApplied && cl.isWrite() {
			ambiguous = true
		}
		if base != "" && answeredFailure(e, maybeApplied) {
			// Zuora saved this answer under the key and would replay it for
			// 24 h: the next try needs a new key. Nothing was applied under
			// the old one, so a new key cannot make a duplicate.
			cl.idemKey = c.keys.next(base, c.now())
		}
		retry, wait := c.shouldRetry(ctx, cl, e, attempt, ambiguous, reminted)
		if tokenRejected(e) && !reminted && retry {
			// Token expired or revoked mid-run (§12 #4): mint once, retry now.
			c.tokens.invalidate(tok)
			reminted = true
			wait = 0
		}
		c.observe(CallInfo{Operation: cl.op, Status: e.HTTPStatus, Duration: resp.dur, RequestID: e.RequestID,
			Err: e, Retry: retry, Throttled: throttled, Attempt: attempt})
		if !retry {
			if cl.method == http.MethodDelete && e.NotFound && ambiguous {
				// An earlier attempt whose answer was lost did delete it.
				return &response{status: e.HTTPStatus, header: http.Header{}, requestID: e.RequestID}, nil
			}
			return nil, c.finalErr(cl, e, attempt, ambiguous)
		}
		c.log.Debug().Str("op", cl.op).Int("attempt", attempt).Stringer("backoff", wait).Str("code", e.Code).
			Int("status", e.HTTPStatus).Msg("zuora call will be retried")
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, c.finalErr(cl, e, attempt, ambiguous)
		}
	}
}

// shouldRetry decides whether to retry after e and how long to wait first.
func (c *Client) shouldRetry(ctx context.Context, cl call, e *Error, attempt int, ambiguous, reminted bool) (bool, time.Duration) {
	if tokenRejected(e) {
		return !reminted, 0
	}
	if !e.Retryable || ctx.Err() != nil {
		return false, 0
	}
	// A POST without an Idempotency-Key must not be repeated once it may
	// have been applied: that is how duplicates are made (§12 #11).
	if ambiguous && cl.method == http.MethodPost && cl.idemKey == "" {
		return false, 0
	}
	maxAttempts := c.cfg.MaxAttempts
	if e.Category == CategoryInternalError {
		maxAttempts = min(maxAttempts, maxAttemptsForInternalErrors)
	}
	if attempt >= maxAttempts {
		return false, 0
	}
	wait := c.backoff(attempt, e.RetryAfter)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return false, 0 // would outlive the caller's deadline
	}
	return true, wait
}

// tokenRejected: Zuora refused the bearer token (HTTP 401, or category 11
// "authentication failed" under HTTP 200 with Zuora-Version < 2024-05-20).
func tokenRejected(e *Error) bool {
	return e.HTTPStatus == http.StatusUnauthorized || (e.HTTPStatus == http.StatusOK && e.Category == CategoryAuthenticationFailed)
}

// backoff is exponential with jitter ("equal jitter": half fixed, half
// random), bounded by MaxBackoff; Retry-After, when given, is a floor.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := c.cfg.MinBackoff
	for i := 1; i < attempt && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	half := d / 2
	if half > 0 {
		d = half + rand.N(half+1)
	}
	return max(d, retryAfter)
}

func (c *Client) backoffWait(ctx context.Context, attempt int, retryAfter time.Duration) error {
	wait := c.backoff(attempt, retryAfter)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return context.DeadlineExceeded
	}
	return sleepCtx(ctx, wait)
}

// finalErr turns the last failure into the *Error returned to the caller.
func (c *Client) finalErr(cl call, err error, attempts int, ambiguous bool) error {
	e, ok := AsError(err)
	if !ok {
		e = &Error{Op: cl.op, Code: codeCanceled, Message: err.Error(), Err: err}
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			e.Code = codeTransport
		}
	} else if e.Op == opToken && cl.op != opToken {
		// A failed mint fails the call; keep the mint's classification.
		cp := *e
		cp.Op = cl.op
		cp.Message = "minting an OAuth token failed: " + e.Message
		e = &cp
	}
	if attempts > e.Attempts {
		e.Attempts = attempts
	}
	if ambiguous && cl.isWrite() {
		e.Ambiguous = true
	}
	return e
}

type attemptResult struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
	dur       time.Duration
}

// attempt sends one HTTP request. maybeApplied reports a failure after which
// Zuora may have applied the request (the request was written and no answer
// came back, or a gateway timed out).
func (c *Client) attempt(ctx context.Context, cl call, target string, body []byte, tok string, n int) (attemptResult, *Error, bool) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target, rdr)
	if err != nil {
		return attemptResult{}, &Error{Op: cl.op, Code: codeTransport, Message: "building request failed", Err: err}, false
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Zuora-Version", c.cfg.Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if cl.rawType != "" {
			req.Header.Set("Content-Type", cl.rawType)
		}
	}
	if cl.idemKey != "" && (cl.method == http.MethodPost || cl.method == http.MethodPatch) {
		req.Header.Set("Idempotency-Key", cl.idemKey)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	res := attemptResult{}
	if err != nil {
		res.dur = time.Since(start)
		e := transportError(ctx, cl.op, err)
		c.logAttempt(cl, n, 0, res.dur, "", e)
		return res, e, wrote.Load()
	}
	res.status, res.header = resp.StatusCode, resp.Header
	res.requestID = resp.Header.Get("Zuora-Request-Id")
	res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	res.dur = time.Since(start)
	if err != nil {
		// The answer was lost mid-body: the request was processed.
		e := transportError(ctx, cl.op, err)
		e.HTTPStatus, e.RequestID = resp.StatusCode, res.requestID
		c.logAttempt(cl, n, resp.StatusCode, res.dur, res.requestID, e)
		return res, e, true
	}
	if resp.StatusCode == http.StatusConflict && cl.idemKey != "" && isReplayOfSuccess(res.body) {
		// Idempotent replay: Zuora answers a repeated key with the original
		// result under 409 (§10). The original call succeeded.
		c.logAttempt(cl, n, resp.StatusCode, res.dur, res.requestID, nil)
		return res, nil, false
	}
	e := detectError(cl.op, resp.StatusCode, resp.Header, res.body)
	if e == nil && cl.check != nil {
		if e = cl.check(res.body); e != nil {
			e.Op, e.HTTPStatus, e.RequestID = cl.op, resp.StatusCode, res.requestID
		}
	}
	if e != nil {
		e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
		if resp.StatusCode == http.StatusConflict && cl.idemKey != "" && e.Category == 0 {
			// Same key while the first request is still running (§10).
			e.Retryable = true
		}
		if resp.StatusCode == http.StatusUnprocessableEntity && cl.idemKey != "" && e.Category == 0 {
			e.Retryable = false // key reused for another URL/method (§10)
		}
	}
	c.logAttempt(cl, n, resp.StatusCode, res.dur, res.requestID, e)
	maybeApplied := e != nil && (resp.StatusCode == http.StatusGatewayTimeout ||
		(resp.StatusCode >= 500 && e.Code == codeHTTP))
	return res, e, maybeApplied
}

func (c *Client) logAttempt(cl call, n, status int, dur time.Duration, reqID string, e *Error) {
	ev := c.log.Debug()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("op", cl.op).Int("status", status).Stringer("duration", dur).Str("request_id", reqID).Int("attempt", n)
	if cl.idemKey != "" {
		ev = ev.Str("idempotency_key", cl.idemKey)
	}
	if e != nil {
		ev = ev.Str("code", e.Code).Str("error", e.Message).Bool("retryable", e.Retryable)
	}
	ev.Msg("zuora call")
}

// isReplayOfSuccess reports whether a 409 body is a stored success result
// rather than an error.
func isReplayOfSuccess(body []byte) bool {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return false
	}
	if b[0] == '[' {
		return json.Valid(b) // Actions results
	}
	var raw rawError
	if b[0] != '{' || json.Unmarshal(b, &raw) != nil {
		return false
	}
	if (raw.Success != nil && !*raw.Success) || (raw.SuccessUC != nil && !*raw.SuccessUC) {
		return false
	}
	if (raw.Success != nil && *raw.Success) || (raw.SuccessUC != nil && *raw.SuccessUC) {
		return true
	}
	return len(raw.Reasons) == 0 && len(raw.Errors) == 0 && len(raw.ErrorsUC) == 0 && raw.Message == "" && raw.MessageUC == ""
}

// transportError classifies a failure with no (complete) HTTP answer.
func transportError(callerCtx context.Context, op string, err error) *Error {
	e := &Error{Op: op, Err: err}
	var ne net.Error
	switch {
	case callerCtx.Err() != nil:
		e.Code, e.Message, e.Err = codeCanceled, callerCtx.Err().Error(), errors.Join(callerCtx.Err(), err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		e.Code, e.Message, e.Retryable = codeTimeout, "request timed out", true
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.As(err, &ne):
		e.Code, e.Message, e.Retryable = codeTransport, "connection failed: "+sanitizeErr(err), true
	default:
		var ue *url.Error
		e.Code, e.Message = codeTransport, sanitizeErr(err)
		e.Retryable = errors.As(err, &ue) // network-level failures
	}
	return e
}

// sanitizeErr renders err without its URL (no query strings in messages).
func sanitizeErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// resolve builds the absolute URL for path (relative to the base URL, or
// absolute on the base URL's host) plus query.
func (c *Client) resolve(path string, q url.Values) (string, error) {
	var u *url.URL
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		p, err := url.Parse(path)
		if err != nil {
			return "", fmt.Errorf("bad URL %q: %w", path, err)
		}
		ep := c.ep.Load()
		if !strings.EqualFold(p.Host, ep.baseURL.Host) || p.Scheme != ep.baseURL.Scheme {
			// Never send the bearer token to another host.
			return "", fmt.Errorf("refusing to follow %s://%s: not the configured Zuora host", p.Scheme, p.Host)
		}
		u = p
	} else {
		p, err := url.Parse(c.ep.Load().base + path)
		if err != nil {
			return "", fmt.Errorf("bad path %q: %w", path, err)
		}
		u = p
	}
	if len(q) > 0 {
		merged := u.Query()
		for k, vs := range q {
			merged[k] = vs
		}
		u.RawQuery = merged.Encode()
	}
	return u.String(), nil
}

func headerInt(r attemptResult, name string) int {
	if r.header == nil {
		return -1
	}
	v := strings.TrimSpace(r.header.Get(name))
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// seg escapes one path segment (an id, number or key).
func seg(s string) string { return url.PathEscape(s) }

// answeredFailure reports a failure that Zuora answered (and saved under the
// request's Idempotency-Key, replaying it for 24 h): a business error, lock
// competition included. Not: no answer or a possibly applied write
// (timeout, lost response, gateway 5xx), a token refusal or limit answered
// before the request was processed, or the gateway's 409 for a key whose
// first request is still running (that one may still apply).
func answeredFailure(e *Error, maybeApplied bool) bool {
	switch {
	case maybeApplied, e.HTTPStatus == 0, tokenRejected(e), e.HTTPStatus == http.StatusTooManyRequests:
		return false
	case e.HTTPStatus == http.StatusConflict && e.Category == 0:
		return false
	case e.Code == codeTransport || e.Code == codeTimeout || e.Code == codeCanceled || e.Code == codeDecode:
		return false
	}
	return true
}

// idemKeys remembers, per deterministic idempotency key, the variant in use
// after answered failures ("<key>-1", "<key>-2", …), for Zuora's 24 hours.
// After a restart the chain is walked again from the key itself: each
// saved failure is replayed once and moves to the next variant; a saved
// success is replayed and ends the walk.
type idemKeys struct {
	mu sync.Mutex
	m  map[string]idemKeyState
}

type idemKeyState struct {
	n  int
	at time.Time
}

const idemKeyTTL = 24 * time.Hour

func (k *idemKeys) current(base string, now time.Time) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, ok := k.m[base]
	if !ok || now.Sub(st.at) >= idemKeyTTL || st.n == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(st.n)
}

func (k *idemKeys) next(base string, now time.Time) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]idemKeyState{}
	}
	st := k.m[base]
	if now.Sub(st.at) >= idemKeyTTL {
		st.n = 0
	}
	st.n++
	st.at = now
	k.m[base] = st
	if len(k.m) > 10000 {
		for key, v := range k.m {
			if now.Sub(v.at) >= idemKeyTTL {
				delete(k.m, key)
			}
		}
	}
	return base + "-" + strconv.Itoa(st.n)
}
