package zuora

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const opToken = "POST /oauth/token"

// tokenSource caches the OAuth bearer token (§2), refreshes it before it
// expires, and mints it once however many callers need it at the same time
// (single flight). The token never appears in logs or errors.
type tokenSource struct {
	c *Client

	mu      sync.Mutex
	token   string
	expires time.Time
	minting *mintCall
	// gen counts resets: a mint started before one does not keep its token
	// (it was minted with the old credentials).
	gen int
}

// reset drops the token after the credentials changed.
func (s *tokenSource) reset() {
	s.mu.Lock()
	s.token = ""
	s.gen++
	s.minting = nil // the next caller mints anew; waiters of the old mint get its result
	s.mu.Unlock()
}

type mintCall struct {
	gen     int
	done    chan struct{}
	token   string
	expires time.Time
	err     error
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// refreshMargin is how long before expiry a token is replaced: a tenth of its
// lifetime, at most a minute (6 min tokens are refreshed 36 s early; Zuora's
// one-hour tokens one minute early).
func refreshMargin(ttl time.Duration) time.Duration {
	return min(time.Minute, ttl/10)
}

// get returns a valid token, minting one when there is none or it is about
// to expire.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.c.now().Before(s.expires) {
		tok := s.token
		s.mu.Unlock()
		return tok, nil
	}
	call := s.minting
	if call == nil {
		call = &mintCall{done: make(chan struct{}), gen: s.gen}
		s.minting = call
		// The mint outlives any single caller's cancellation: others may be
		// waiting for it. It is still bounded by the client's timeout.
		go s.mint(context.WithoutCancel(ctx), call)
	}
	s.mu.Unlock()
	select {
	case <-call.done:
		return call.token, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// invalidate drops tok (after a 401) so that the next get mints a new one.
// A token already replaced by another caller is left alone, so concurrent
// 401s on the same token lead to one mint.
func (s *tokenSource) invalidate(tok string) {
	s.mu.Lock()
	if s.token == tok {
		s.token = ""
	}
	s.mu.Unlock()
}

func (s *tokenSource) mint(ctx context.Context, call *mintCall) {
	tok, ttl, err := s.c.mintWithRetry(ctx)
	s.mu.Lock()
	if err == nil {
		call.token, call.expires = tok, s.c.now().Add(ttl-refreshMargin(ttl))
		if call.gen == s.gen {
			s.token, s.expires = tok, call.expires
		}
	}
	call.err = err
	if s.minting == call {
		s.minting = nil
	}
	s.mu.Unlock()
	close(call.done)
}

// mintWithRetry mints a token, retrying 429/5xx/transport failures with
// backoff. Bad credentials are terminal.
func (c *Client) mintWithRetry(ctx context.Context) (string, time.Duration, error) {
	var last *Error
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		tok, ttl, err := c.mintOnce(ctx)
		if err == nil {
			return tok, ttl, nil
		}
		last = err
		last.Attempts = attempt
		if !err.Retryable || attempt == c.cfg.MaxAttempts {
			break
		}
		if werr := c.backoffWait(ctx, attempt, err.RetryAfter); werr != nil {
			break
		}
	}
	return "", 0, last
}

func (c *Client) mintOnce(ctx context.Context) (string, time.Duration, *Error) {
	ep := c.ep.Load()
	form := url.Values{}
	form.Set("client_id", ep.clientID)
	form.Set("client_secret", ep.clientSecret)
	form.Set("grant_type", "client_credentials")
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, ep.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &Error{Op: opToken, Code: codeTransport, Message: "building request failed", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		e := transportError(ctx, opToken, err)
		c.observe(CallInfo{Operation: opToken, Duration: time.Since(start), Err: e, Retry: e.Retryable})
		return "", 0, e
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	reqID := resp.Header.Get("Zuora-Request-Id")
	var result *Error
	var tr tokenResponse
	switch {
	case rerr != nil:
		result = transportError(ctx, opToken, rerr)
	case resp.StatusCode == http.StatusOK && json.Unmarshal(body, &tr) == nil && tr.AccessToken != "":
	default:
		result = detectError(opToken, resp.StatusCode, resp.Header, body)
		if result == nil {
			result = (&Error{Op: opToken, HTTPStatus: resp.StatusCode, Code: codeDecode, Message: "token response without access_token", RequestID: reqID}).finish()
		}
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			result.Auth, result.Retryable = true, false
		}
		result.RetryAfter = parseRetryAfter(resp.Header, time.Now())
	}
	dur := time.Since(start)
	c.log.Debug().Str("op", opToken).Int("status", resp.StatusCode).Stringer("duration", dur).Str("request_id", reqID).Msg("zuora call")
	info := CallInfo{Operation: opToken, Status: resp.StatusCode, Duration: dur, RequestID: reqID, Throttled: resp.StatusCode == http.StatusTooManyRequests}
	if result != nil {
		info.Err, info.Retry = result, result.Retryable
		c.observe(info)
		return "", 0, result
	}
	c.observe(info)
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	if !strings.EqualFold(tr.TokenType, "bearer") && tr.TokenType != "" {
		return "", 0, &Error{Op: opToken, HTTPStatus: resp.StatusCode, Code: codeDecode, Message: fmt.Sprintf("unexpected token type %q", tr.TokenType), RequestID: reqID}
	}
	return tr.AccessToken, ttl, nil
}
