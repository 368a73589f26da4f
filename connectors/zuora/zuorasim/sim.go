// Package zuorasim is a local, in-memory Zuora Billing for tests, demos and
// benchmarks. It serves the subset of Zuora's REST API that billsync uses
// (OAuth, catalog CRUD and reads, accounts, orders, subscriptions, usage,
// event triggers and notification definitions with callouts, Object Query)
// with Zuora's error dialects, headers, limits and idempotency, as described
// in shared/zuora/API-NOTES.md and Zuora's OpenAPI file. Control endpoints
// under /_sim/ and the Go API (SetFaults, State, AdvanceClock, ...) drive it
// from tests.
package zuorasim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Sim is the simulator. It implements http.Handler.
type Sim struct {
	opts   Options
	log    zerolog.Logger
	routes []*route

	clockMu sync.Mutex
	offset  time.Duration

	mu     sync.Mutex // guards st and tenant
	st     *state
	tenant *tenantRules

	tokMu  sync.Mutex
	tokens map[string]time.Time

	idemMu sync.Mutex
	idem   map[string]*idemEntry

	acctLockMu sync.Mutex
	acctLocks  map[string]bool // account numbers an order or update is writing

	limMu       sync.Mutex
	inflight    map[limitClass]int
	rateWindow  time.Time
	rateCount   int
	authWindow  time.Time
	authCount   int
	inflightAll int

	faultMu sync.Mutex
	faults  []*faultState
	rng     *rand.Rand

	statsMu sync.Mutex
	stats   Stats

	calloutMu  sync.Mutex
	calloutLog []CalloutAttempt
	calloutWG  sync.WaitGroup
	ctx        context.Context
	cancel     context.CancelFunc

	// persistence (Options.Store): changes counts changes, saved the last
	// one a finished save includes.
	changes atomic.Uint64
	saveMu  sync.Mutex
	saved   uint64
}

// Stats are counters of what the simulator served.
type Stats struct {
	Calls         map[string]int `json:"calls"`  // by operation, e.g. "POST /v1/orders"
	Status        map[int]int    `json:"status"` // by HTTP status written
	Responses429  int            `json:"responses429"`
	MaxConcurrent int            `json:"maxConcurrent"` // peak in-flight /v1 calls
	Faulted       int            `json:"faulted"`
}

// New returns a simulator with empty state.
func New(opts Options) *Sim {
	opts = opts.withDefaults()
	tenant := FreshTenant()
	if opts.Tenant != nil {
		tenant = opts.Tenant.clone()
	}
	ctx, cancel := context.WithCancel(context.Background()) //nolint:contextcheck // the simulator's own lifetime, ended by Close
	s := &Sim{
		opts:      opts,
		log:       opts.Logger,
		st:        newState(),
		tenant:    newTenantRules(tenant),
		tokens:    map[string]time.Time{},
		idem:      map[string]*idemEntry{},
		acctLocks: map[string]bool{},
		inflight:  map[limitClass]int{},
		rng:       rand.New(rand.NewSource(opts.Seed)), //nolint:gosec // fault injection, not security
		ctx:       ctx,
		cancel:    cancel,
	}
	s.stats = newStats()
	s.routes = s.buildRoutes()
	return s
}

func newStats() Stats { return Stats{Calls: map[string]int{}, Status: map[int]int{}} }

// Close stops pending callout retries and waits for deliveries in flight.
func (s *Sim) Close() {
	s.cancel()
	s.calloutWG.Wait()
}

// Now is the simulator's clock.
func (s *Sim) Now() time.Time {
	s.clockMu.Lock()
	off := s.offset
	s.clockMu.Unlock()
	if s.opts.Now != nil {
		return s.opts.Now().Add(off)
	}
	return time.Now().Add(off)
}

// AdvanceClock moves the simulator's clock forward (token expiry,
// idempotency-key lifetime, rate windows, "today" for order actions).
// It then runs the scheduled orders whose date came, and reports how many.
func (s *Sim) AdvanceClock(d time.Duration) int {
	s.clockMu.Lock()
	s.offset += d
	s.clockMu.Unlock()
	return s.RunDueOrders()
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := s.stats
	out.Calls = make(map[string]int, len(s.stats.Calls))
	for k, v := range s.stats.Calls {
		out.Calls[k] = v
	}
	out.Status = make(map[int]int, len(s.stats.Status))
	for k, v := range s.stats.Status {
		out.Status[k] = v
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Sim) ResetStats() {
	s.statsMu.Lock()
	s.stats = newStats()
	s.statsMu.Unlock()
}

// Reset drops all state: objects, tokens, idempotency keys, faults, stats,
// the callout log and the clock offset. The tenant configuration stays.
func (s *Sim) Reset() {
	s.mu.Lock()
	s.st = newState()
	s.mu.Unlock()
	s.tokMu.Lock()
	s.tokens = map[string]time.Time{}
	s.tokMu.Unlock()
	s.idemMu.Lock()
	s.idem = map[string]*idemEntry{}
	s.idemMu.Unlock()
	s.SetFaults()
	s.ResetStats()
	s.calloutMu.Lock()
	s.calloutLog = nil
	s.calloutMu.Unlock()
	s.clockMu.Lock()
	s.offset = 0
	s.clockMu.Unlock()
	s.limMu.Lock()
	s.rateCount, s.authCount = 0, 0
	s.limMu.Unlock()
	s.persist()
}

func (s *Sim) countStatus(status int) {
	s.statsMu.Lock()
	s.stats.Status[status]++
	if status == http.StatusTooManyRequests {
		s.stats.Responses429++
	}
	s.statsMu.Unlock()
}

// ---- request plumbing ----

// family selects the error dialect of an operation.
type family int

const (
	famREST   family = iota // CommonResponse, 8-digit codes, version-dependent status
	famCRUD                 // /v1/object/*: {Id, Success} / {success:false, errors:[{code,message}]}
	famAction               // /v1/action/*: SaveResult arrays
	famEvents               // /events/*, /notifications/*: ErrorResponse
	famOQ                   // /object-query/*: CommonOQErrorResponse
	famAuth                 // /oauth/token
)

type limitClass string

const (
	classNone        limitClass = ""
	classDefault     limitClass = "Default"
	classHighVolume  limitClass = "High-Volume"
	classObjectQuery limitClass = "Object-Query"
)

type handlerFunc func(c *call) *resp

type route struct {
	method   string
	template string
	segs     []string
	fam      family
	class    limitClass
	h        handlerFunc
	idem     bool // accepts Idempotency-Key
}

func (r *route) name() string { return r.method + " " + r.template }

type resp struct {
	status int
	header http.Header
	body   []byte
}

// call is one request being served.
type call struct {
	s       *Sim
	r       *http.Request
	rt      *route
	params  map[string]string
	body    []byte
	reqID   string
	version string
	now     time.Time
}

func (c *call) param(name string) string { return c.params[name] }

func jsonResp(status int, v any) *resp {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"success":false}`)
		status = http.StatusInternalServerError
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	return &resp{status: status, header: h, body: b}
}

func (s *Sim) match(method, path string) (*route, map[string]string, bool) {
	segs := splitPath(path)
	pathMatched := false
	var best *route
	var bestParams map[string]string
	bestLiterals := -1
	for _, rt := range s.routes {
		if len(rt.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		literals := 0
		ok := true
		for i, seg := range rt.segs {
			if strings.HasPrefix(seg, "{") {
				params[strings.Trim(seg, "{}")] = segs[i]
				continue
			}
			if seg != segs[i] {
				ok = false
				break
			}
			literals++
		}
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method != method {
			continue
		}
		if literals > bestLiterals {
			best, bestParams, bestLiterals = rt, params, literals
		}
	}
	return best, bestParams, pathMatched
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	w.Header().Set("Zuora-Request-Id", reqID)
	if tid := r.Header.Get("Zuora-Track-Id"); tid != "" {
		w.Header().Set("Zuora-Track-Id", tid)
	}
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	if isPage(r.URL.Path) {
		if s.controlAuthorized(w, r) {
			s.servePage(w, r)
		}
		return
	}
	rt, params, pathMatched := s.match(r.Method, r.URL.Path)
	if rt == nil {
		status := http.StatusNotFound
		msg := "no Route matched with those values"
		if pathMatched {
			status, msg = http.StatusMethodNotAllowed, "Method Not Allowed"
		}
		s.write(w, r, jsonResp(status, map[string]any{"message": msg}), classNone)
		return
	}
	op := rt.name()
	s.statsMu.Lock()
	s.stats.Calls[op]++
	s.statsMu.Unlock()

	c := &call{s: s, r: r, rt: rt, params: params, reqID: reqID, version: r.Header.Get("Zuora-Version"), now: s.Now()}
	s.RunDueOrders() // scheduled orders whose date came run before anything reads

	if rt.fam == famAuth {
		if res := s.checkAuthRate(c); res != nil {
			s.write(w, r, res, classNone)
			return
		}
		body, err := readBody(r)
		if err != nil {
			s.write(w, r, jsonResp(http.StatusBadRequest, map[string]any{"message": "unreadable body"}), classNone)
			return
		}
		c.body = body
		s.write(w, r, rt.h(c), classNone)
		return
	}

	if res := s.checkToken(c); res != nil {
		s.write(w, r, res, rt.class)
		return
	}
	if res := s.checkRate(c); res != nil {
		s.write(w, r, res, rt.class)
		return
	}
	release, res := s.acquire(c)
	if res != nil {
		s.write(w, r, res, rt.class)
		return
	}
	defer release()

	if s.opts.Latency > 0 {
		if !sleepCtx(r.Context(), s.opts.Latency) {
			return
		}
	}

	// Read the body first: once it is consumed the server notices a client
	// that goes away (the request context is cancelled), which the timeout
	// fault relies on.
	body, err := readBody(r)
	if err != nil {
		s.write(w, r, c.fail(http.StatusBadRequest, catMalformed, "Unable to read the request body"), rt.class)
		return
	}
	c.body = body

	var idemKey string
	if k := r.Header.Get("Idempotency-Key"); k != "" && (r.Method == http.MethodPost || r.Method == http.MethodPatch) {
		if len(k) > 255 {
			s.write(w, r, c.fail(http.StatusBadRequest, catInvalidValue, "Idempotency-Key must be at most 255 characters"), rt.class)
			return
		}
		if res := s.idemBegin(c, k); res != nil {
			s.write(w, r, res, rt.class)
			return
		}
		idemKey = k
	}

	fault := s.pickFault(op)
	if fault != nil {
		if done := s.applyFault(w, c, fault); done {
			if idemKey != "" {
				s.idemAbort(idemKey) // not processed: the key stays free
			}
			return
		}
	}

	out := rt.h(c)
	if r.Method != http.MethodGet {
		s.persist()
	}
	if idemKey != "" {
		s.idemFinish(idemKey, out)
	}
	if fault != nil && fault.Kind == FaultLostResponse {
		// The write is committed; the client never hears about it.
		s.dropConnection(w, false)
		return
	}
	s.write(w, r, out, rt.class)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var rd io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer func() { _ = zr.Close() }()
		rd = zr
	}
	return io.ReadAll(io.LimitReader(rd, 64<<20))
}

// write finishes a response: limit headers, gzip, status counting.
// gzipWriters are reused: a new writer allocates its compressor's tables
// (about a megabyte), which cost more CPU than the compression itself.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

func (s *Sim) write(w http.ResponseWriter, r *http.Request, res *resp, class limitClass) {
	h := w.Header()
	for k, vs := range res.header {
		h[k] = vs
	}
	if class != classNone {
		limit, remaining, reset := s.rateHeaders()
		h.Set("RateLimit-Limit", fmt.Sprintf("%d, %d;w=60", limit, limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(reset))
		if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/object-query/") {
			lim, rem := s.concurrencyHeaders(class)
			h.Set("Concurrency-Limit-Type", string(class))
			h.Set("Concurrency-Limit-Limit", strconv.Itoa(lim))
			h.Set("Concurrency-Limit-Remaining", strconv.Itoa(rem))
		}
	}
	body := res.body
	if len(body) > 1000 && acceptsGzip(r) {
		var buf bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		gzipWriters.Put(zw)
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	if len(body) > 0 {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if len(body) > 0 && r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	s.countStatus(status)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.EqualFold(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]), "gzip") {
			return true
		}
	}
	return false
}

// dropConnection closes the client connection without a response; with
// reset it sends a TCP RST (SO_LINGER 0).
func (s *Sim) dropConnection(w http.ResponseWriter, reset bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if reset {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	_ = conn.Close()
}

// ---- auth ----

func (s *Sim) mintToken(c *call) (string, int) {
	tok := strings.ReplaceAll(uuid.NewString(), "-", "")
	s.tokMu.Lock()
	s.tokens[tok] = c.now.Add(s.opts.TokenTTL)
	s.tokMu.Unlock()
	return tok, int(s.opts.TokenTTL / time.Second)
}

// RotateClientSecret stands for an admin rotating the OAuth client's secret
// in Zuora and the tokens minted with the old one expiring: every call with
// an old token is refused (401) and only the new secret mints tokens.
func (s *Sim) RotateClientSecret(secret string) {
	s.tokMu.Lock()
	s.opts.ClientSecret = secret
	s.tokens = map[string]time.Time{}
	s.tokMu.Unlock()
}

func (s *Sim) checkToken(c *call) *resp {
	authz := c.r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if ok {
		s.tokMu.Lock()
		exp, found := s.tokens[strings.TrimSpace(tok)]
		s.tokMu.Unlock()
		if found && c.now.Before(exp) {
			return nil
		}
	}
	msg := "Authentication error"
	if ok {
		msg = "Invalid or expired access token"
	}
	var res *resp
	switch c.rt.fam {
	case famCRUD, famAction:
		res = jsonResp(http.StatusUnauthorized, map[string]any{"message": msg})
	case famEvents:
		res = jsonResp(http.StatusUnauthorized, errorResponse("90000011", msg))
	case famOQ:
		res = jsonResp(http.StatusUnauthorized, map[string]any{"reasons": []oqReason{{Code: 90000011, Message: msg}}, "requestId": c.reqID})
	default:
		res = jsonResp(http.StatusUnauthorized, c.commonError("90000011", msg))
	}
	res.header.Set("WWW-Authenticate", "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API")
	return res
}

// ---- limits ----

func (s *Sim) windowReset(now time.Time, start *time.Time, count *int) {
	if now.Sub(*start) >= time.Minute || now.Before(*start) {
		*start = now.Truncate(time.Minute)
		*count = 0
	}
}

func (s *Sim) checkRate(c *call) *resp {
	s.limMu.Lock()
	s.windowReset(c.now, &s.rateWindow, &s.rateCount)
	s.rateCount++ // failed requests count too
	over := s.rateCount > s.opts.RateLimitPerMinute
	retry := retryAfter(c.now, s.rateWindow)
	s.limMu.Unlock()
	if !over {
		return nil
	}
	return c.tooMany(retry, "The request exceeded the limit of requests per minute for this tenant")
}

func (s *Sim) checkAuthRate(c *call) *resp {
	s.limMu.Lock()
	s.windowReset(c.now, &s.authWindow, &s.authCount)
	s.authCount++
	count, limit := s.authCount, s.opts.AuthRateLimitPerMinute
	retry := retryAfter(c.now, s.authWindow)
	s.limMu.Unlock()
	if count <= limit {
		return nil
	}
	res := &resp{status: http.StatusTooManyRequests, header: http.Header{}}
	res.header.Set("Retry-After", strconv.Itoa(retry))
	res.header.Set("X-RateLimit-Limit-minute", strconv.Itoa(limit))
	res.header.Set("X-RateLimit-Remaining-minute", "0")
	return res
}

func retryAfter(now, windowStart time.Time) int {
	sec := int(windowStart.Add(time.Minute).Sub(now).Seconds() + 0.999)
	if sec < 1 {
		sec = 1
	}
	return sec
}

func (s *Sim) rateHeaders() (limit, remaining, reset int) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	limit = s.opts.RateLimitPerMinute
	remaining = limit - s.rateCount
	if remaining < 0 {
		remaining = 0
	}
	reset = retryAfter(s.Now(), s.rateWindow)
	return limit, remaining, reset
}

func (s *Sim) classLimit(class limitClass) int {
	switch class {
	case classHighVolume:
		return s.opts.HighVolumeConcurrencyLimit
	case classObjectQuery:
		return s.opts.ObjectQueryConcurrency
	default:
		return s.opts.ConcurrencyLimit
	}
}

func (s *Sim) concurrencyHeaders(class limitClass) (limit, remaining int) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	limit = s.classLimit(class)
	remaining = limit - s.inflight[class]
	if remaining < 0 {
		remaining = 0
	}
	return limit, remaining
}

func (s *Sim) acquire(c *call) (func(), *resp) {
	class := c.rt.class
	if class == classNone {
		return func() {}, nil
	}
	s.limMu.Lock()
	if s.inflight[class] >= s.classLimit(class) {
		s.limMu.Unlock()
		return nil, c.tooMany(1, "The request exceeded the concurrency limit for this tenant, please retry later")
	}
	s.inflight[class]++
	s.inflightAll++
	peak := s.inflightAll
	s.limMu.Unlock()
	s.statsMu.Lock()
	if peak > s.stats.MaxConcurrent {
		s.stats.MaxConcurrent = peak
	}
	s.statsMu.Unlock()
	return func() {
		s.limMu.Lock()
		s.inflight[class]--
		s.inflightAll--
		s.limMu.Unlock()
	}, nil
}

// tooMany builds a 429 in the operation's dialect (always HTTP 429: it is
// the gateway's answer, not a version-mapped business error).
func (c *call) tooMany(retry int, msg string) *resp {
	var res *resp
	switch c.rt.fam {
	case famCRUD, famAction:
		res = jsonResp(http.StatusTooManyRequests, map[string]any{"success": false, "errors": []any{map[string]any{"code": "REQUEST_EXCEEDED_LIMIT", "message": msg}}})
	case famEvents:
		res = jsonResp(http.StatusTooManyRequests, errorResponse(code(resGeneric, catLimit), msg))
	case famOQ:
		res = jsonResp(http.StatusTooManyRequests, oqBody(c.reqID, catLimit, msg))
	default:
		res = jsonResp(http.StatusTooManyRequests, c.commonError(code(c.resource(), catLimit), msg))
	}
	res.header.Set("Retry-After", strconv.Itoa(retry))
	return res
}

// ---- idempotency ----

type idemEntry struct {
	method, path string
	created      time.Time
	done         bool
	res          *resp
}

const idemTTL = 24 * time.Hour

func (s *Sim) idemBegin(c *call, key string) *resp {
	s.idemMu.Lock()
	defer s.idemMu.Unlock()
	e, ok := s.idem[key]
	if ok && c.now.Sub(e.created) >= idemTTL {
		delete(s.idem, key)
		ok = false
	}
	if !ok {
		s.idem[key] = &idemEntry{method: c.r.Method, path: c.r.URL.Path, created: c.now}
		return nil
	}
	if e.method != c.r.Method || e.path != c.r.URL.Path {
		return c.fail(http.StatusUnprocessableEntity, catInvalidValue,
			"The Idempotency-Key was already used with a different request URL or method")
	}
	if !e.done {
		// The gateway's answer, no business error code: the first request
		// may still apply (docs/zuora-rules.md).
		return jsonResp(http.StatusConflict, map[string]any{"message": "A request with the same Idempotency-Key is still being processed"})
	}
	out := &resp{status: e.res.status, header: e.res.header.Clone(), body: e.res.body}
	if s.opts.IdempotencyReplay409 {
		out.status = http.StatusConflict
	}
	out.header.Set("Idempotent-Replayed", "true")
	return out
}

func (s *Sim) idemFinish(key string, res *resp) {
	s.idemMu.Lock()
	defer s.idemMu.Unlock()
	if e, ok := s.idem[key]; ok {
		e.done = true
		e.res = &resp{status: res.status, header: res.header.Clone(), body: res.body}
	}
}

func (s *Sim) idemAbort(key string) {
	s.idemMu.Lock()
	delete(s.idem, key)
	s.idemMu.Unlock()
}

// ---- JSON helpers ----

func decodeObject(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("body is not a JSON object")
	}
	return m, nil
}

// lockCompetitionMessage is Zuora's answer when another request is writing
// the same account (community.zuora.com "How to solve Optimistic locking
// failed/LOCK_COMPETITION error"; docs/zuora-rules.md).
const lockCompetitionMessage = "Operation failed due to a lock competition, please retry later."

// lockAccount marks an account as being written by one request; locked
// reports that another request holds it (Zuora: LOCK_COMPETITION). Requests
// without an account key lock nothing.
func (s *Sim) lockAccount(number string) (release func(), locked bool) {
	if number == "" {
		return func() {}, false
	}
	s.acctLockMu.Lock()
	defer s.acctLockMu.Unlock()
	if s.acctLocks[number] {
		return nil, true
	}
	s.acctLocks[number] = true
	return func() {
		s.acctLockMu.Lock()
		delete(s.acctLocks, number)
		s.acctLockMu.Unlock()
	}, false
}

// accountNumberOf resolves an account key (id or number) to its number.
func (s *Sim) accountNumberOf(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.st.account(key); a != nil {
		return a.Number
	}
	return key
}
