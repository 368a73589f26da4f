package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/events"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// receiver is the app's webhook endpoint: it verifies each request with the
// Standard Webhooks library and the endpoint's secret, answers 503 while
// down, and counts what it accepted per webhook-id.
type receiver struct {
	srv      *httptest.Server
	down     atomic.Bool
	mu       sync.Mutex
	secret   string
	accepted map[string]int
	refused  int
	bad      []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{accepted: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.down.Load() {
			rc.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		wh, err := standardwebhooks.NewWebhook(rc.secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			rc.bad = append(rc.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var msg struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &msg) != nil || msg.ID != r.Header.Get("webhook-id") || msg.Type == "" {
			rc.bad = append(rc.bad, "body "+string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.accepted[msg.ID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) snapshot() (map[string]int, int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.accepted {
		out[k] = v
	}
	return out, rc.refused, append([]string(nil), rc.bad...)
}

func service(db *store.DB, id string) *events.Service {
	return events.New(db, events.Config{Workers: 3, Lease: time.Second, PollInterval: 5 * time.Millisecond, BackoffUnit: 2 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond, MaxAttempts: 1000, WorkerID: id})
}

func start(svc *events.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	return func() { cancel(); <-done }
}

func customer(i int) engine.Customer {
	return engine.Customer{ID: fmt.Sprintf("c%03d", i), Name: fmt.Sprintf("Customer %d", i), Currency: "USD"}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReceiverSeesEveryEventOnce (cmd/billsync/receiver_test.go) runs the
// delivery end to end across real restarts of `billsync serve`.

// TestEndpointRules: bad input is refused and changes nothing; type filters
// decide which events an endpoint gets; a wrong secret does not verify.
func TestEndpointRules(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	svc := service(db, "x")
	for _, in := range []events.EndpointInput{{URL: "ftp://example.test/x"}, {URL: "http://example.test/hook"}, {URL: "https://u:p@example.test/"},
		{URL: "https://example.test/", EventTypes: []string{"invoice.exploded"}}, {URL: ""}} {
		_, err := svc.CreateEndpoint(ctx, in)
		var ve *engine.ValidationError
		require.ErrorAs(t, err, &ve, "%+v", in)
	}
	eps, err := svc.Endpoints(ctx)
	require.NoError(t, err)
	require.Empty(t, eps)

	rc := newReceiver(t)
	ep, err := svc.CreateEndpoint(ctx, events.EndpointInput{URL: rc.srv.URL, EventTypes: []string{store.EventInvoicePaid}})
	require.NoError(t, err)
	rc.secret = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3" // not the endpoint's
	_, err = db.Emit(ctx, store.NewEvent{Type: store.EventInvoicePosted, Key: "i1", Data: map[string]any{}},
		store.NewEvent{Type: store.EventInvoicePaid, Key: "i1", Data: map[string]any{}},
		store.NewEvent{Type: store.EventInvoicePaid, Key: "i1", Data: map[string]any{}})
	require.NoError(t, err)
	ds, err := svc.Deliveries(ctx, ep.ID, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1, "only invoice.paid, once")
	_, err = svc.Drain(ctx)
	require.NoError(t, err)
	_, _, bad := rc.snapshot()
	require.NotEmpty(t, bad, "a wrong secret fails the library's verification")
	ds, err = svc.Deliveries(ctx, ep.ID, 10)
	require.NoError(t, err)
	require.Equal(t, store.StateFailed, ds[0].State)
	require.Equal(t, http.StatusUnauthorized, ds[0].LastStatus)

	off := false
	_, err = svc.UpdateEndpoint(ctx, ep.ID, events.EndpointInput{Enabled: &off}, false)
	require.NoError(t, err)
	_, err = db.Emit(ctx, store.NewEvent{Type: store.EventInvoicePaid, Key: "i2", Data: map[string]any{}})
	require.NoError(t, err)
	ds, err = svc.Deliveries(ctx, ep.ID, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1, "a disabled endpoint gets no new deliveries")
	_, _, err = svc.ListEvents(ctx, 0, 10, []string{"nope"}, "")
	require.Error(t, err)
	require.NoError(t, svc.DeleteEndpoint(ctx, ep.ID))
	_, err = svc.Deliveries(ctx, ep.ID, 10)
	require.Error(t, err)
}
