package web_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

const (
	whUser = "zuora"
	whPass = "webhook-password-0123"
)

func newWebhookServer(t *testing.T, db *store.DB, auth web.WebhookAuth) (*httptest.Server, *inbound.Service) {
	svc := inbound.New(db, nil, nil, inbound.Config{})
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey, Inbound: svc, Webhooks: auth}))
	t.Cleanup(srv.Close)
	return srv, svc
}

type hook struct {
	path, body, user, pass string
	headers                map[string]string
}

func post(t *testing.T, base string, h hook) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+h.path, strings.NewReader(h.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if h.user != "" {
		req.SetBasicAuth(h.user, h.pass)
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestWebhookAuthAndPayloads(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, svc := newWebhookServer(t, db, web.WebhookAuth{Username: whUser, Password: whPass, MaxBodyBytes: 2048})
		acct := `{"AccountId":"8ad0000000000000000000000000001","AccountNumber":"A00000001"}`
		notif := map[string]string{"Zuora-Notification-Id": "n-1", "Zuora-Request-Id": "r-1"}
		cases := []struct {
			name   string
			h      hook
			status int
		}{
			{"no credentials: challenge", hook{path: inbound.PathAccountCreated, body: acct, headers: notif}, http.StatusUnauthorized},
			{"wrong password", hook{path: inbound.PathAccountCreated, body: acct, user: whUser, pass: "nope", headers: notif}, http.StatusUnauthorized},
			{"wrong user", hook{path: inbound.PathAccountCreated, body: acct, user: "x", pass: whPass, headers: notif}, http.StatusUnauthorized},
			{"not JSON", hook{path: inbound.PathAccountCreated, body: `AccountId=1`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"array", hook{path: inbound.PathAccountCreated, body: `["x"]`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"nested", hook{path: inbound.PathAccountCreated, body: `{"AccountId":{"x":1}}`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"missing params", hook{path: inbound.PathAccountCreated, body: `{"Other":"x"}`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"unresolved merge field", hook{path: inbound.PathSubscriptionCreated, body: `{"SubscriptionNumber":"<DataSource.Subscription.Name>"}`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"empty subscription", hook{path: inbound.PathSubscriptionChanged, body: `{"SubscriptionNumber":"","AccountId":"a"}`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"NUL in the object id", hook{path: inbound.PathAccountCreated, body: `{"AccountId":"8ad0\u0000001"}`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"NUL in another parameter", hook{path: inbound.PathAccountCreated, body: `{"AccountId":"8ad01","Name":"x\u0000"}`, user: whUser, pass: whPass}, http.StatusBadRequest},
			{"invalid UTF-8", hook{path: inbound.PathAccountCreated, body: "{\"AccountId\":\"8ad01\",\"Name\":\"\xff\"}", user: whUser, pass: whPass}, http.StatusBadRequest},
			{"too large", hook{path: inbound.PathAccountCreated, body: `{"AccountId":"` + strings.Repeat("x", 3000) + `"}`, user: whUser, pass: whPass}, http.StatusRequestEntityTooLarge},
		}
		for _, c := range cases {
			st, hdr, body := post(t, srv.URL, c.h)
			require.Equal(t, c.status, st, "%s: %s", c.name, body)
			if st == http.StatusUnauthorized {
				require.Equal(t, `Basic realm="billsync", charset="UTF-8"`, hdr.Get("WWW-Authenticate"), c.name)
			}
		}
		entries, _, err := svc.ListInbox(context.Background(), inbound.InboxFilter{})
		require.NoError(t, err)
		require.Empty(t, entries, "nothing is stored for rejected callouts")

		// Accepted, then Zuora's retries (same notification id, new request id) are duplicates.
		for i, rid := range []string{"r-1", "r-2", "r-3"} {
			st, _, body := post(t, srv.URL, hook{path: inbound.PathAccountCreated, body: acct, user: whUser, pass: whPass,
				headers: map[string]string{"Zuora-Notification-Id": "n-1", "Zuora-Request-Id": rid}})
			require.Equal(t, http.StatusOK, st, body)
			require.Contains(t, body, `"success":true`)
			require.Equal(t, i > 0, strings.Contains(body, `"duplicate":true`), body)
		}
		// Another notification about the same account is a new entry; so is another event.
		st, _, _ := post(t, srv.URL, hook{path: inbound.PathAccountCreated, body: acct, user: whUser, pass: whPass,
			headers: map[string]string{"Zuora-Notification-Id": "n-2"}})
		require.Equal(t, http.StatusOK, st)
		st, _, _ = post(t, srv.URL, hook{path: inbound.PathSubscriptionCreated, body: `{"SubscriptionNumber":"A-S00000001","AccountId":"x"}`,
			user: whUser, pass: whPass, headers: map[string]string{"Zuora-Notification-Id": "n-1"}})
		require.Equal(t, http.StatusOK, st)
		entries, _, err = svc.ListInbox(context.Background(), inbound.InboxFilter{})
		require.NoError(t, err)
		require.Len(t, entries, 3)
		require.Equal(t, 3, entries[0].Deliveries)
		require.Equal(t, "8ad0000000000000000000000000001", entries[0].ObjectID)
		require.Equal(t, "r-1", entries[0].RequestID)
		require.Equal(t, "A-S00000001", entries[2].ObjectID)

		// The inbox API: list, filter, retry, 404.
		c := client{t: t, url: srv.URL, key: apiKey}
		code, body, _ := c.do("GET", "/api/v1/inbox?state=pending&limit=2", "")
		require.Equal(t, http.StatusOK, code)
		require.Len(t, body["data"], 2)
		require.NotEmpty(t, body["nextCursor"])
		code, _, _ = c.do("GET", "/api/v1/inbox?state=bogus", "")
		require.Equal(t, http.StatusBadRequest, code)
		code, body, _ = c.do("POST", "/api/v1/inbox/1/retry", "")
		require.Equal(t, http.StatusOK, code, "%v", body)
		require.Equal(t, "pending", body["state"])
		code, _, _ = c.do("POST", "/api/v1/inbox/999/retry", "")
		require.Equal(t, http.StatusNotFound, code)
		code, _, _ = c.do("GET", "/api/v1/inbox", "")
		require.Equal(t, http.StatusOK, code)
		c.key = ""
		code, _, _ = c.do("GET", "/api/v1/inbox", "")
		require.Equal(t, http.StatusUnauthorized, code, "the inbox API needs the API key")
	})
}

func TestWebhookHMACAndUnconfigured(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	srv, _ := newWebhookServer(t, db, web.WebhookAuth{Username: whUser, Password: whPass, HMACSecret: "s3cret", HMACHeader: "X-Sig", HMACFormat: "HEX"})
	body := `{"AccountNumber":"A00000009"}`
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write([]byte(body))
	good := hex.EncodeToString(m.Sum(nil))
	st, _, _ := post(t, srv.URL, hook{path: inbound.PathAccountCreated, body: body, user: whUser, pass: whPass, headers: map[string]string{"X-Sig": "00" + good[2:]}})
	require.Equal(t, http.StatusUnauthorized, st)
	st, _, _ = post(t, srv.URL, hook{path: inbound.PathAccountCreated, body: body, user: whUser, pass: whPass})
	require.Equal(t, http.StatusUnauthorized, st)
	st, _, out := post(t, srv.URL, hook{path: inbound.PathAccountCreated, body: body, user: whUser, pass: whPass, headers: map[string]string{"X-Sig": strings.ToUpper(good)}})
	require.Equal(t, http.StatusOK, st, out)

	// No credentials configured: refuse with a 5xx so Zuora retries later.
	srv2, _ := newWebhookServer(t, storetest.Open(t, store.SQLite), web.WebhookAuth{})
	st, _, _ = post(t, srv2.URL, hook{path: inbound.PathAccountCreated, body: body, user: "a", pass: "b"})
	require.Equal(t, http.StatusServiceUnavailable, st)

	// Without Options.Inbound the routes do not exist.
	plain := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop()}))
	t.Cleanup(plain.Close)
	st, _, _ = post(t, plain.URL, hook{path: inbound.PathAccountCreated, body: body, user: whUser, pass: whPass})
	require.Equal(t, http.StatusNotFound, st)
}

// TestWebhookAckLatency sends 500 callouts at about 500/s and reports the
// p99 of the acknowledgement (target < 50 ms; asserted loosely so a busy CI
// machine does not flake).
func TestWebhookAckLatency(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, svc := newWebhookServer(t, db, web.WebhookAuth{Username: whUser, Password: whPass})
		const n = 500
		durs := make([]time.Duration, n)
		var wg sync.WaitGroup
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr}
		// Warm the connection pools first (steady state is what Zuora sees).
		for i := range 40 {
			st, _, _ := post(t, srv.URL, hook{path: inbound.PathSubscriptionChanged, body: `{"SubscriptionNumber":"W-` + itoa(i) + `"}`,
				user: whUser, pass: whPass, headers: map[string]string{"Zuora-Notification-Id": "warm-" + itoa(i)}})
			require.Equal(t, http.StatusOK, st)
		}
		for i := range n {
			<-tick.C
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				body := `{"SubscriptionNumber":"A-S` + strings.Repeat("0", 3) + itoa(i) + `"}`
				req, _ := http.NewRequest(http.MethodPost, srv.URL+inbound.PathSubscriptionChanged, strings.NewReader(body))
				req.SetBasicAuth(whUser, whPass)
				req.Header.Set("Zuora-Notification-Id", "lat-"+itoa(i))
				start := time.Now()
				resp, err := cl.Do(req)
				durs[i] = time.Since(start)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						durs[i] = time.Hour
					}
				} else {
					durs[i] = time.Hour
				}
			}(i)
		}
		wg.Wait()
		sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
		p50, p99 := durs[n/2], durs[n*99/100]
		t.Logf("%s: webhook ack at ~500/s: p50 %s, p99 %s", db.Dialect, p50, p99)
		require.Less(t, p99, 500*time.Millisecond)
		counts, err := svc.InboxCounts(context.Background())
		require.NoError(t, err)
		require.Equal(t, int64(n+40), counts[inbound.StatePending])
	})
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{digits[i%10]}, b...)
		i /= 10
	}
	return string(b)
}

// TestWebhookReplayWindow: a signed callout carrying a Timestamp is refused
// once older than MaxAge, and replaying the same signed body under a new
// Zuora-Notification-Id is a duplicate, not a new inbox entry.
func TestWebhookReplayWindow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
		auth := web.WebhookAuth{Username: whUser, Password: whPass, HMACSecret: "hmac-secret-0123", MaxAge: 24 * time.Hour,
			Now: func() time.Time { return now }}
		srv, svc := newWebhookServer(t, db, auth)
		signed := func(body, notif string) (int, string) {
			m := hmac.New(sha256.New, []byte("hmac-secret-0123"))
			m.Write([]byte(body))
			st, _, out := post(t, srv.URL, hook{path: inbound.PathSubscriptionChanged, body: body, user: whUser, pass: whPass,
				headers: map[string]string{"X-Zuora-Signature": base64.StdEncoding.EncodeToString(m.Sum(nil)), "Zuora-Notification-Id": notif}})
			return st, out
		}
		fresh := `{"SubscriptionNumber":"A-S1","Timestamp":"2026-11-20T12:30:00.000+01:00"}`
		st, out := signed(fresh, "n-1")
		require.Equal(t, http.StatusOK, st, out)
		require.Contains(t, out, `"duplicate":false`)
		for _, n := range []string{"n-1", "n-replayed", ""} {
			st, out = signed(fresh, n)
			require.Equal(t, http.StatusOK, st, out)
			require.Contains(t, out, `"duplicate":true`, "replay under notification id %q", n)
		}
		for _, tc := range []struct{ body, want string }{
			{`{"SubscriptionNumber":"A-S1","Timestamp":"2026-11-19T11:59:00Z"}`, "older than 24h0m0s"},
			{`{"SubscriptionNumber":"A-S1","Timestamp":"2026-11-20T13:00:00Z"}`, "in the future"},
			{`{"SubscriptionNumber":"A-S1","Timestamp":"yesterday"}`, "not a date-time"},
		} {
			st, out = signed(tc.body, "n-x")
			require.Equal(t, http.StatusUnauthorized, st, tc.body)
			require.Contains(t, out, tc.want)
		}
		// Without a Timestamp: accepted (de-duplicated on the notification id) unless required.
		st, out = signed(`{"SubscriptionNumber":"A-S2"}`, "n-2")
		require.Equal(t, http.StatusOK, st, out)
		entries, _, err := svc.ListInbox(context.Background(), inbound.InboxFilter{})
		require.NoError(t, err)
		require.Len(t, entries, 2, "one entry per signed callout, none for the refused ones")

		auth.RequireTimestamp = true
		strict, _ := newWebhookServer(t, storetest.Open(t, store.SQLite), auth)
		m := hmac.New(sha256.New, []byte("hmac-secret-0123"))
		m.Write([]byte(`{"SubscriptionNumber":"A-S2"}`))
		st, _, out = post(t, strict.URL, hook{path: inbound.PathSubscriptionChanged, body: `{"SubscriptionNumber":"A-S2"}`, user: whUser, pass: whPass,
			headers: map[string]string{"X-Zuora-Signature": base64.StdEncoding.EncodeToString(m.Sum(nil))}})
		require.Equal(t, http.StatusBadRequest, st)
		require.Contains(t, out, "Timestamp")
	})
}
