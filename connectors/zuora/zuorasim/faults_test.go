package zuorasim_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func productBody(name string) map[string]any {
	return map[string]any{"Name": name, "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	const op = "POST /v1/object/product"
	t.Run("http500", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		h.sim.SetFaults(zuorasim.Fault{Operation: op, Kind: zuorasim.FaultHTTP500, Count: 1})
		r := h.do("POST", "/v1/object/product", productBody("a"))
		require.Equal(t, 500, r.status)
		require.Empty(t, h.sim.State().Products, "nothing written")
		require.Equal(t, 200, h.do("POST", "/v1/object/product", productBody("a")).status, "count 1: the next call passes")
		require.Equal(t, 1, h.sim.Stats().Faulted)
	})
	t.Run("http429", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		h.sim.SetFaults(zuorasim.Fault{Operation: "*", Kind: zuorasim.FaultHTTP429, Count: 1})
		r := h.do("GET", "/v1/accounts/A1", nil, "Zuora-Version", latest)
		require.Equal(t, 429, r.status)
		require.Equal(t, "1", r.header.Get("Retry-After"))
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		h.sim.SetFaults(zuorasim.Fault{Operation: op, Kind: zuorasim.FaultLatency, Latency: 200 * time.Millisecond})
		start := time.Now()
		require.Equal(t, 200, h.do("POST", "/v1/object/product", productBody("a")).status)
		require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	})
	t.Run("connreset", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		h.sim.SetFaults(zuorasim.Fault{Operation: op, Kind: zuorasim.FaultConnReset, Count: 1})
		_, err := h.try("POST", "/v1/object/product", productBody("a"))
		require.Error(t, err)
		require.Empty(t, h.sim.State().Products)
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		h.sim.SetFaults(zuorasim.Fault{Operation: op, Kind: zuorasim.FaultTimeout, Count: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/v1/object/product", strings.NewReader(mustJSON(productBody("a"))))
		req.Header.Set("Authorization", "Bearer "+h.token)
		req.Header.Set("Content-Type", "application/json")
		_, err := h.client.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, h.sim.State().Products)
	})
	t.Run("lock contention", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		c := h.seedCatalog("Lock")
		h.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLockContention, Count: 2},
			zuorasim.Fault{Operation: op, Kind: zuorasim.FaultLockContention, Count: 1})
		body := map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("Lock"),
			"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}
		r := h.do("POST", "/v1/orders", body, "Zuora-Version", "211.0")
		require.Equal(t, 200, r.status, "HTTP 200 success:false before 2024-05-20")
		require.Equal(t, false, r.obj(t)["success"])
		require.Regexp(t, `50$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])
		r = h.do("POST", "/v1/orders", body, "Zuora-Version", latest)
		require.Equal(t, 409, r.status)
		require.Empty(t, h.sim.State().Accounts)
		r = h.do("POST", "/v1/object/product", productBody("a"))
		require.Equal(t, 200, r.status)
		require.Equal(t, false, r.obj(t)["Success"])
		require.Equal(t, "LOCK_COMPETITION", r.obj(t)["Errors"].([]any)[0].(map[string]any)["Code"])
	})
	t.Run("lost response", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		c := h.seedCatalog("Lost")
		h.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
		body := map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("Lost"),
			"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}
		_, err := h.try("POST", "/v1/orders", body, "Zuora-Version", latest)
		require.Error(t, err, "the connection closes without a response")
		require.Len(t, h.sim.State().Subscriptions, 1, "but the write is committed")

		// A retry with the same Idempotency-Key gets the stored answer and
		// creates nothing. (Go's transport may itself replay a request that
		// carries an Idempotency-Key when a reused connection closes.)
		h.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
		body["newAccount"] = newAccountBody("Lost2")
		_, _ = h.try("POST", "/v1/orders", body, "Zuora-Version", latest, "Idempotency-Key", "lost-2")
		require.Len(t, h.sim.State().Subscriptions, 2)
		r := h.order(body, "Idempotency-Key", "lost-2")
		require.Equal(t, 200, r.status, string(r.raw))
		require.Equal(t, true, r.obj(t)["success"])
		require.Len(t, h.sim.State().Subscriptions, 2)
	})
	t.Run("probability and control endpoint", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{Seed: 7}).login()
		r := h.do("POST", "/_sim/faults", `{"faults":[{"operation":"GET /v1/catalog/products","kind":"http500","probability":0.5},
			{"operation":"GET /v1/accounts/{account-key}","kind":"latency","latency":"10ms","count":1}]}`)
		require.Equal(t, 200, r.status, string(r.raw))
		require.Len(t, h.sim.Faults(), 2)
		fails := 0
		for i := 0; i < 40; i++ {
			if h.do("GET", "/v1/catalog/products", nil).status == 500 {
				fails++
			}
		}
		require.Greater(t, fails, 5)
		require.Less(t, fails, 35)
		require.Equal(t, 400, h.do("POST", "/_sim/faults", `[{"operation":"*","kind":"nope"}]`).status)
		require.Equal(t, 200, h.do("POST", "/_sim/faults", `[]`).status)
		require.Empty(t, h.sim.Faults())
	})
}
