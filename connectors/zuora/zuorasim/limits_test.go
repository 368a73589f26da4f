package zuorasim_test

import (
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	h.seedCatalog("Headers")
	r := h.do("GET", "/v1/catalog/products", nil, "Zuora-Version", latest, "Zuora-Track-Id", "track-123")
	require.Equal(t, 200, r.status)
	require.Len(t, r.header.Get("Zuora-Request-Id"), 36)
	require.Equal(t, "track-123", r.header.Get("Zuora-Track-Id"))
	require.Equal(t, "50000, 50000;w=60", r.header.Get("RateLimit-Limit"))
	rem, err := strconv.Atoi(r.header.Get("RateLimit-Remaining"))
	require.NoError(t, err)
	require.Less(t, rem, 50000)
	require.NotEmpty(t, r.header.Get("RateLimit-Reset"))
	require.Equal(t, "Default", r.header.Get("Concurrency-Limit-Type"))
	require.Equal(t, "40", r.header.Get("Concurrency-Limit-Limit"))
	require.Equal(t, "39", r.header.Get("Concurrency-Limit-Remaining"))
	r2 := h.do("GET", "/v1/catalog/products", nil)
	require.NotEqual(t, r.header.Get("Zuora-Request-Id"), r2.header.Get("Zuora-Request-Id"))
	// High-volume class on create account/order.
	r = h.do("POST", "/v1/accounts", map[string]any{"name": "HV", "currency": "USD", "billCycleDay": 1,
		"billToContact": map[string]any{"firstName": "A", "lastName": "B"}}, "Zuora-Version", latest)
	require.Equal(t, "High-Volume", r.header.Get("Concurrency-Limit-Type"))
	require.Equal(t, "200", r.header.Get("Concurrency-Limit-Limit"))
	// Gzip for large answers when asked (Go's transport asks and decodes).
	r = h.do("GET", "/v1/products/"+h.sim.State().Products[0].ID+"/product-rate-plans", nil, "Zuora-Version", latest, "Accept-Encoding", "gzip")
	require.Equal(t, 200, r.status)
	require.Equal(t, "gzip", r.header.Get("Content-Encoding"))
}

func TestTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{TokenTTL: time.Hour})
	// No token → 401 in each dialect, with the WWW-Authenticate challenge on CRUD.
	r := h.do("GET", "/v1/accounts/A1", nil)
	require.Equal(t, 401, r.status)
	require.Equal(t, false, r.obj(t)["success"])
	r = h.do("POST", "/v1/object/product", map[string]any{"Name": "x", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"})
	require.Equal(t, 401, r.status)
	require.NotEmpty(t, r.obj(t)["message"])
	require.Equal(t, "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API", r.header.Get("WWW-Authenticate"))

	// Wrong secret.
	form := url.Values{"client_id": {zuorasim.DefaultClientID}, "client_secret": {"wrong"}, "grant_type": {"client_credentials"}}
	r = h.do("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, 401, r.status)

	h.login()
	r = h.do("GET", "/v1/catalog/products", nil)
	require.Equal(t, 200, r.status)
	require.NotEmpty(t, r.header.Get("Zuora-Request-Id"))
	// The token expires with the simulator's clock.
	h.sim.AdvanceClock(time.Hour + time.Second)
	r = h.do("GET", "/v1/catalog/products", nil)
	require.Equal(t, 401, r.status)
	h.login()
	require.Equal(t, 200, h.do("GET", "/v1/catalog/products", nil).status)
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{RateLimitPerMinute: 3}).login()
	for i := 0; i < 3; i++ {
		require.Equal(t, 200, h.do("GET", "/v1/catalog/products", nil).status)
	}
	r := h.do("GET", "/v1/catalog/products", nil, "Zuora-Version", latest)
	require.Equal(t, 429, r.status)
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, ra, 1)
	require.Equal(t, "0", r.header.Get("RateLimit-Remaining"))
	require.Regexp(t, `70$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])
	require.Equal(t, 1, h.sim.Stats().Responses429)
	// The next window accepts again.
	h.sim.AdvanceClock(time.Minute)
	require.Equal(t, 200, h.do("GET", "/v1/catalog/products", nil).status)
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{ConcurrencyLimit: 2, HighVolumeConcurrencyLimit: 4, Latency: 150 * time.Millisecond}).login()
	run := func(n int, method, path string, body func(i int) any) map[int]int {
		var mu sync.Mutex
		counts := map[int]int{}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := h.do(method, path, body(i), "Zuora-Version", latest)
				if r.status == 429 {
					require.NotEmpty(t, r.header.Get("Retry-After"))
				}
				mu.Lock()
				counts[r.status]++
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		return counts
	}
	counts := run(6, "GET", "/v1/catalog/products", func(int) any { return nil })
	require.Equal(t, 2, counts[200], counts)
	require.Equal(t, 4, counts[429], counts)
	require.LessOrEqual(t, h.sim.Stats().MaxConcurrent, 2)
	h.sim.ResetStats()
	counts = run(6, "POST", "/v1/accounts", func(i int) any {
		return map[string]any{"name": "C" + strconv.Itoa(i), "currency": "USD", "billCycleDay": 1, "billToContact": map[string]any{"firstName": "A", "lastName": "B"}}
	})
	require.Equal(t, 4, counts[200], counts)
	require.Equal(t, 2, counts[429], counts)
	require.Equal(t, 4, h.sim.Stats().MaxConcurrent)
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	t.Run("replay returns the stored response", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		c := h.seedCatalog("Idem")
		body := map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("Idem"),
			"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}
		r1 := h.order(body, "Idempotency-Key", "k1")
		r2 := h.order(body, "Idempotency-Key", "k1")
		require.Equal(t, 200, r1.status)
		require.Equal(t, 200, r2.status)
		require.JSONEq(t, string(r1.raw), string(r2.raw))
		require.Equal(t, "true", r2.header.Get("Idempotent-Replayed"))
		require.Len(t, h.sim.State().Subscriptions, 1, "no second subscription")
		// A failure is stored too.
		bad := map[string]any{"orderDate": "2025-01-01", "existingAccountNumber": "NOPE", "subscriptions": []any{}}
		f1 := h.order(bad, "Idempotency-Key", "k2")
		f2 := h.order(bad, "Idempotency-Key", "k2")
		require.Equal(t, 400, f1.status)
		require.Equal(t, f1.status, f2.status)
		// Another URL or method with the same key: 422.
		r := h.do("POST", "/v1/accounts", map[string]any{"name": "X", "currency": "USD", "billCycleDay": 1,
			"billToContact": map[string]any{"firstName": "A", "lastName": "B"}}, "Idempotency-Key", "k1", "Zuora-Version", latest)
		require.Equal(t, 422, r.status)
		// After 24 hours the key is gone: the same key creates again.
		h.sim.AdvanceClock(24*time.Hour + time.Second)
		h.login()
		r3 := h.order(body, "Idempotency-Key", "k1")
		require.Equal(t, 200, r3.status, string(r3.raw))
		require.NotEqual(t, r1.obj(t)["accountNumber"], r3.obj(t)["accountNumber"])
		// Keys are ignored on GET/PUT.
		require.Equal(t, 200, h.do("GET", "/v1/catalog/products", nil, "Idempotency-Key", "k1").status)
	})
	t.Run("replay answers 409 when configured", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{IdempotencyReplay409: true}).login()
		body := map[string]any{"Name": "P", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"}
		r1 := h.do("POST", "/v1/object/product", body, "Idempotency-Key", "p1")
		r2 := h.do("POST", "/v1/object/product", body, "Idempotency-Key", "p1")
		require.Equal(t, 200, r1.status)
		require.Equal(t, 409, r2.status)
		require.JSONEq(t, string(r1.raw), string(r2.raw), "409 carries the original body")
		require.Len(t, h.sim.State().Products, 1)
	})
	t.Run("an injected fault is not saved; the answer after it is", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		body := map[string]any{"Name": "P", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"}
		h.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/object/product", Kind: zuorasim.FaultHTTP500, Count: 1})
		require.Equal(t, 500, h.do("POST", "/v1/object/product", body, "Idempotency-Key", "f1").status)
		r := h.do("POST", "/v1/object/product", body, "Idempotency-Key", "f1")
		require.Equal(t, 200, r.status, "the fault came before the request was processed: the key was free")
		require.Empty(t, r.header.Get("Idempotent-Replayed"))
		require.Len(t, h.sim.State().Products, 1)
	})
	t.Run("lock competition on concurrent orders for one account, saved under its key", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{OrderProcessingTime: 300 * time.Millisecond}).login()
		c := h.seedCatalog("Lock")
		acct, _ := h.newOrder(c, "Lock")
		body := map[string]any{"orderDate": "2025-02-01", "existingAccountNumber": acct,
			"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}
		done := make(chan reply)
		go func() { done <- h.order(body, "Idempotency-Key", "first") }()
		time.Sleep(100 * time.Millisecond)
		r := h.order(body, "Idempotency-Key", "second")
		require.Equal(t, 409, r.status, string(r.raw))
		require.Equal(t, "53100050", r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])
		require.Contains(t, string(r.raw), "lock competition")
		require.Equal(t, 200, (<-done).status)
		// Zuora saved that answer: the same key replays it, a new key passes.
		r = h.order(body, "Idempotency-Key", "second")
		require.Equal(t, 409, r.status)
		require.Equal(t, "true", r.header.Get("Idempotent-Replayed"))
		require.Equal(t, 200, h.order(body, "Idempotency-Key", "third").status)
		// Before Zuora-Version 2024-05-20 the same answer is HTTP 200 success:false.
		go func() { done <- h.order(body, "Idempotency-Key", "fourth") }()
		time.Sleep(100 * time.Millisecond)
		old := h.do("POST", "/v1/orders", body, "Zuora-Version", "2023-10-01")
		require.Equal(t, 200, old.status, string(old.raw))
		require.Equal(t, false, old.obj(t)["success"])
		<-done
	})
	t.Run("409 while the first request is in flight", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		h.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/accounts", Kind: zuorasim.FaultLatency, Latency: 300 * time.Millisecond, Count: 1})
		body := map[string]any{"name": "Slow", "currency": "USD", "billCycleDay": 1, "billToContact": map[string]any{"firstName": "A", "lastName": "B"}}
		done := make(chan reply)
		go func() { done <- h.do("POST", "/v1/accounts", body, "Idempotency-Key", "slow", "Zuora-Version", latest) }()
		time.Sleep(100 * time.Millisecond)
		r := h.do("POST", "/v1/accounts", body, "Idempotency-Key", "slow", "Zuora-Version", latest)
		require.Equal(t, 409, r.status, string(r.raw))
		require.Equal(t, 200, (<-done).status)
		require.Len(t, h.sim.State().Accounts, 1)
	})
}
