package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestReceiverSeesEveryEventOnce: events written while the endpoint is down
// are retried with backoff, survive a restart of billsync (a new process
// takes the deliveries over), and once the endpoint is back the receiver,
// verifying every signature with the Standard Webhooks library, has each
// event exactly once by webhook-id; the feed has the same ids, in order.
func TestReceiverSeesEveryEventOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rc := newReceiver(t)
		first := service(db, "first")
		ep, err := first.CreateEndpoint(ctx, events.EndpointInput{URL: rc.srv.URL + "/hooks", Description: "the app"})
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(ep.Secret, events.SecretPrefix), "the secret is shown once, at creation")
		rc.secret = ep.Secret
		got, err := first.Endpoint(ctx, ep.ID)
		require.NoError(t, err)
		require.Empty(t, got.Secret, "never shown again")
		list, err := first.Endpoints(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Empty(t, list[0].Secret)

		rc.down.Store(true)
		stop := start(first)
		for i := range 12 {
			_, _, err := db.UpsertCustomer(ctx, customer(i))
			require.NoError(t, err)
		}
		waitFor(t, "failed attempts while the endpoint is down", func() bool { _, refused, _ := rc.snapshot(); return refused >= 24 })
		stop() // billsync stops (restart) …
		for i := 12; i < 20; i++ {
			_, _, err := db.UpsertCustomer(ctx, customer(i)) // … and changes are made meanwhile
			require.NoError(t, err)
		}
		second := service(db, "second")
		rc.down.Store(false)
		stop = start(second)
		defer stop()
		waitFor(t, "every event delivered", func() bool { a, _, _ := rc.snapshot(); return len(a) == 20 })
		time.Sleep(50 * time.Millisecond)
		accepted, refused, bad := rc.snapshot()
		require.Empty(t, bad, "every signature verifies")
		require.Greater(t, refused, 0)
		evs, next, err := second.ListEvents(ctx, 0, 100, nil, "")
		require.NoError(t, err)
		require.Len(t, evs, 20)
		require.Equal(t, evs[19].ID, next)
		for i, e := range evs {
			require.Equal(t, store.EventCustomerCreated, e.Type)
			require.Equal(t, 1, accepted[e.WebhookID()], "event %s exactly once", e.WebhookID())
			if i > 0 {
				require.Greater(t, e.ID, evs[i-1].ID)
			}
		}
		more, after, err := second.ListEvents(ctx, next, 100, nil, "")
		require.NoError(t, err)
		require.Empty(t, more)
		require.Equal(t, next, after, "a poller keeps its place")

		ds, err := second.Deliveries(ctx, ep.ID, 100)
		require.NoError(t, err)
		require.Len(t, ds, 20)
		for _, d := range ds {
			require.Equal(t, store.DeliveryDelivered, d.State)
			require.Equal(t, http.StatusNoContent, d.LastStatus)
		}
		// Resend: the same event again, with the same webhook-id (the
		// receiver's de-duplication key).
		require.NoError(t, second.Resend(ctx, ep.ID, ds[0].ID))
		waitFor(t, "the resend", func() bool { a, _, _ := rc.snapshot(); return a[fmt.Sprintf("evt_%d", ds[0].EventID)] == 2 })
	})
}

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
