package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

// The fuzz targets throw arbitrary bodies at the JSON API and the callout
// webhooks of a server on a real Postgres database (which refuses NUL bytes
// and invalid UTF-8: the inputs that once gave 500s). Bad input must get a
// 4xx answer in the API's own shape; never a 5xx, never a panic. With plain
// `go test` they run their seed corpus (testdata/fuzz); CI also runs each
// for a bounded time (.ci/run).

var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPut, "/api/v1/plans/p1"},
	{http.MethodPut, "/api/v1/customers/c1"},
	{http.MethodPut, "/api/v1/subscriptions/s1"},
	{http.MethodPost, "/api/v1/usage"},
	{http.MethodPost, "/api/v1/sync-records/retry"},
	{http.MethodPost, "/api/v1/zuora/pull"},
}

func fuzzServer(t testing.TB) http.Handler {
	db := storetest.Open(t, store.Postgres)
	svc := inbound.New(db, nil, nil, inbound.Config{})
	return web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey, MaxBodyBytes: 64 << 10, Sync: db, Inbound: svc,
		Webhooks: web.WebhookAuth{Username: whUser, Password: whPass, MaxBodyBytes: 16 << 10}})
}

func FuzzAPIBodies(f *testing.F) {
	for i, body := range []string{planJSON, addonJSON, customerJSON, subJSON,
		`{"events":[{"idempotencyKey":"k","subscriptionId":"s1","chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z"}]}`,
		`{"kind":"plan"}`, `{"name":"A\u0000","currency":"USD"}`, "{\"name\":\"\xff\"}", `{"renewalCount":2147483647}`, `{"price":"1e2000000000"}`} {
		f.Add(uint8(i), body)
	}
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["title"] == nil {
				t.Fatalf("%s %s %q: %d is not a problem body: %s", r.method, r.path, body, rec.Code, rec.Body)
			}
		}
	})
}

func FuzzCallouts(f *testing.F) {
	for _, body := range []string{`{"AccountId":"8ad0000000000000000000000000001","AccountNumber":"A00000001"}`,
		`{"SubscriptionNumber":"A-S00000001","AccountId":"x"}`, `{"AccountId":"8ad0\u0000001"}`, "{\"AccountId\":\"\xff\"}",
		`{"AccountId":{"x":1}}`, `["x"]`, `{"SubscriptionNumber":"<DataSource.Subscription.Name>"}`} {
		f.Add(uint8(0), body, "n-1")
		f.Add(uint8(1), body, "")
	}
	paths := []string{inbound.PathAccountCreated, inbound.PathSubscriptionCreated, inbound.PathSubscriptionChanged}
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, which uint8, body, notification string) {
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(whUser, whPass)
		if strings.IndexFunc(notification, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
			req.Header.Set("Zuora-Notification-Id", notification)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			// A 503 would make Zuora retry a callout that can never be stored.
			t.Fatalf("%q (notification %q): %d %s", body, notification, rec.Code, rec.Body)
		}
	})
}
