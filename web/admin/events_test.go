package admin_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
)

// TestWebhooksPage: add an endpoint (its secret shown once, never again),
// refuse a bad one, see the delivery log and resend a delivery; the
// customer page shows invoices, payment status and access; a dead sync
// record is told as sync.dead.
func TestWebhooksPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, store.SQLite, fixtureOptions{password: password, subs: 1})
	var got atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-signature") != "" && r.Header.Get("webhook-id") != "" {
			got.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	c := f.client()
	csrf := c.login(password)

	resp, body := c.get("/admin/webhooks")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "No endpoints yet")

	resp, body = c.post("/admin/webhooks", url.Values{"csrf": {csrf}, "url": {"http://example.test/hook"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, `id="form-error"`)
	eps, err := f.ev.Endpoints(f.ctx)
	require.NoError(t, err)
	require.Empty(t, eps, "a refused endpoint is not stored")

	resp, body = c.post("/admin/webhooks", url.Values{"csrf": {csrf}, "url": {rc.URL + "/hooks"}, "description": {"the app"},
		"types": {store.EventInvoicePaid, store.EventSyncDead}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	secret := regexp.MustCompile(`<code id="secret">(whsec_[^<]+)</code>`).FindStringSubmatch(body)
	require.NotNil(t, secret, body)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	eps, err = f.ev.Endpoints(f.ctx)
	require.NoError(t, err)
	require.Len(t, eps, 1)
	_, body = c.get("/admin/webhooks")
	require.NotContains(t, body, secret[1], "the secret is shown once")
	require.Contains(t, body, rc.URL+"/hooks")

	_, err = f.e.DB.Emit(f.ctx, store.NewEvent{Type: store.EventInvoicePaid, Key: "inv-1", CustomerID: "c00", Data: map[string]any{"invoiceId": "inv-1"}})
	require.NoError(t, err)
	_, err = f.ev.Drain(f.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, got.Load())
	resp, body = c.get("/admin/webhooks/" + eps[0].ID)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `id="deliveries"`)
	require.Contains(t, body, store.EventInvoicePaid)
	m := regexp.MustCompile(`action="(/admin/webhooks/[^"]+/deliveries/\d+/resend)"`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	resp, _ = c.post(m[1], url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/admin/webhooks/"+eps[0].ID))
	_, err = f.ev.Drain(f.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, got.Load(), "resent")

	_, err = f.e.DB.UpsertInvoice(f.ctx, store.Invoice{ID: "8ad0inv", Number: "INV00000042", CustomerID: "c00", ZuoraAccountID: "A1",
		InvoiceDate: "2026-11-01", DueDate: "2026-12-01", Amount: "49", Balance: "49", Currency: "USD", Status: "Posted"})
	require.NoError(t, err)
	resp, body = c.get("/admin/entities/customer/c00")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `id="billing"`)
	require.Contains(t, body, "INV00000042")

	evs, _, err := f.e.DB.ListEvents(f.ctx, 0, 500, []string{store.EventSyncDead}, "")
	require.NoError(t, err)
	require.NotEmpty(t, evs, "the refused subscription s-bad is a sync.dead event")
	require.Contains(t, string(evs[0].Data), "s-bad")
}
