package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func send(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestAPIRequiresJSONBodies: a body without Content-Type, or of another type
// (what a cross-site page can send without a preflight), is refused with 415
// and stores nothing.
func TestAPIRequiresJSONBodies(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	c := newAPI(t, db)
	auth := map[string]string{"Authorization": "Bearer " + apiKey}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		h := map[string]string{"Authorization": "Bearer " + apiKey}
		if ct != "" {
			h["Content-Type"] = ct
		}
		resp, body := send(t, "PUT", c.url+"/api/v1/customers/acme", customerJSON, h)
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "%q: %s", ct, body)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		require.Contains(t, body, "application/json")
	}
	resp, _ := send(t, "GET", c.url+"/api/v1/customers/acme", "", auth)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "nothing stored")
	resp, body := send(t, "PUT", c.url+"/api/v1/customers/acme", customerJSON,
		map[string]string{"Authorization": "Bearer " + apiKey, "Content-Type": "application/json; charset=utf-8"})
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
}

// TestCrossSiteWritesRefused: state-changing requests a browser marks
// cross-site (Sec-Fetch-Site, or an Origin that is not the host) get 403;
// reads, same-origin requests and non-browser clients pass.
func TestCrossSiteWritesRefused(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), MaxBodyBytes: 64 << 10,
		AllowedHosts: []string{"127.0.0.1"}}))
	t.Cleanup(srv.Close)
	json := map[string]string{"Content-Type": "application/json"}
	with := func(k, v string) map[string]string {
		return map[string]string{"Content-Type": "application/json", k: v}
	}
	for _, h := range []map[string]string{
		with("Sec-Fetch-Site", "cross-site"),
		with("Sec-Fetch-Site", "same-site"),
		with("Origin", "http://evil.example"),
		with("Origin", "null"),
	} {
		resp, body := send(t, "PUT", srv.URL+"/api/v1/customers/acme", customerJSON, h)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "%v: %s", h, body)
		require.Contains(t, body, "Cross-origin request refused")
		resp, _ = send(t, "DELETE", srv.URL+"/api/v1/customers/acme", "", h)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "%v", h)
	}
	resp, _ := send(t, "GET", srv.URL+"/api/v1/customers/acme", "", with("Sec-Fetch-Site", "cross-site"))
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "reads pass (and nothing was stored)")
	for _, h := range []map[string]string{json, with("Sec-Fetch-Site", "same-origin"), with("Sec-Fetch-Site", "none"), with("Origin", srv.URL)} {
		resp, body := send(t, "PUT", srv.URL+"/api/v1/customers/acme", customerJSON, h)
		require.Contains(t, []int{200, 201}, resp.StatusCode, "%v: %s", h, body)
	}
}

// TestHostAllowList: a Host name not configured (DNS rebinding) gets 421;
// the probes answer any Host.
func TestHostAllowList(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), AllowedHosts: []string{"localhost", "127.0.0.1", "billsync.example.com"}}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	for _, host := range []string{"rebind.evil.example" + port, "rebind.evil.example", "10.0.0.1" + port} {
		resp, body := send(t, "GET", srv.URL+"/api/v1/plans", "", map[string]string{"Host": host})
		require.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode, host)
		require.Contains(t, body, "BILLSYNC_ALLOWED_HOSTS")
		resp, _ = send(t, "GET", srv.URL+"/healthz", "", map[string]string{"Host": host})
		require.Equal(t, http.StatusOK, resp.StatusCode, "probes answer any host")
	}
	for _, host := range []string{"localhost" + port, "127.0.0.1" + port, "BillSync.Example.com", "billsync.example.com."} {
		resp, body := send(t, "GET", srv.URL+"/api/v1/plans", "", map[string]string{"Host": host})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", host, body)
	}
}

// TestTrustedProxies: X-Forwarded-For is believed only from a configured proxy.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	for _, tc := range []struct {
		proxies []string
		want    string
	}{{nil, `"remote":"127.0.0.1"`}, {[]string{"10.0.0.0/8"}, `"remote":"127.0.0.1"`}, {[]string{"127.0.0.1"}, `"remote":"203.0.113.9"`}} {
		var logs syncBuffer
		srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.New(&logs), TrustedProxies: tc.proxies}))
		resp, _ := send(t, "GET", srv.URL+"/healthz", "", map[string]string{"X-Forwarded-For": "203.0.113.9"})
		srv.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, logs.String(), tc.want, "proxies %v", tc.proxies)
	}
}

// TestReadyzHidesTheCause: the unauthenticated probe says only that the
// database is not ready; the cause is in the log.
func TestReadyzHidesTheCause(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), storetest.URL(t, store.SQLite), zerolog.Nop()) // not migrated
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	var logs syncBuffer
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.New(&logs)}))
	t.Cleanup(srv.Close)
	resp, body := send(t, "GET", srv.URL+"/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NotContains(t, body, "migrate up")
	require.Contains(t, body, "see the server log")
	require.Contains(t, logs.String(), "pending migrations")
}

// TestInboxAPIMasksSecrets: the inbox API shows callout payloads with the
// values of Password/Token-like keys masked, as the admin page does.
func TestInboxAPIMasksSecrets(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	srv, svc := newWebhookServer(t, db, web.WebhookAuth{Username: whUser, Password: whPass})
	acc, err := svc.Accept(context.Background(), inbound.Callout{Event: inbound.EventAccountCreated, ObjectID: "A1", NotificationID: "n-1",
		Source: inbound.SourceCallout, Payload: `{"AccountId":"A1","Password":"hunter2-pw","api_token":"tok-123","nested":{"ClientSecret":"cs-456"}}`})
	require.NoError(t, err)
	for _, p := range []string{"/api/v1/inbox", "/api/v1/inbox/" + strconv.FormatInt(acc.ID, 10)} {
		resp, body := send(t, "GET", srv.URL+p, "", map[string]string{"Authorization": "Bearer " + apiKey})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		for _, secret := range []string{"hunter2-pw", "tok-123", "cs-456"} {
			require.NotContains(t, body, secret, p)
		}
		require.Contains(t, body, `\"AccountId\":\"A1\"`, p)
	}
}
