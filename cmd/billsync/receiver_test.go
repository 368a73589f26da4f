package main

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
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// hookReceiver is the app's webhook endpoint: it verifies each request with
// the Standard Webhooks library and the endpoint's secret, answers 503 while
// down, and counts deliveries per webhook-id; it processes each id once (a
// receiver de-duplicates on webhook-id).
type hookReceiver struct {
	srv        *httptest.Server
	down       atomic.Bool
	mu         sync.Mutex
	secret     string
	deliveries map[string]int
	processed  map[string]int
	refused    int
	bad        []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{deliveries: map[string]int{}, processed: map[string]int{}}
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
		rc.deliveries[msg.ID]++
		if rc.deliveries[msg.ID] == 1 {
			rc.processed[msg.ID]++
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) snapshot() (processed, deliveries map[string]int, refused int, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	processed, deliveries = map[string]int{}, map[string]int{}
	for k, v := range rc.processed {
		processed[k] = v
	}
	for k, v := range rc.deliveries {
		deliveries[k] = v
	}
	return processed, deliveries, rc.refused, append([]string(nil), rc.bad...)
}

// TestReceiverSeesEveryEventOnce (issue 16): `billsync serve` runs as its own
// process; events are written while the app's endpoint is down, the process
// is killed (SIGKILL: no soft stop, claims left behind) with every delivery
// still failing, changes are made while billsync is down, a new process on
// the same database delivers them, is stopped (SIGTERM), and a third one
// delivers what was written meanwhile. The receiver verifies every signature
// with the Standard Webhooks library and sees every event of the feed, by
// webhook-id, exactly once.
func TestReceiverSeesEveryEventOnce(t *testing.T) {
	t.Parallel()
	bin := billsyncBinary(t)
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbURL := storetest.URL(t, d)
			tenant := zuora.SimTenant("BillsyncId__c", builtinSimUnits...)
			sim := zuorasim.New(zuorasim.Options{Tenant: &tenant, Logger: zerolog.Nop()})
			t.Cleanup(sim.Close)
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			env := []string{"BILLSYNC_DATABASE_URL=" + dbURL, "BILLSYNC_ZUORA_BASE_URL=" + srv.URL, "BILLSYNC_ZUORA_ALLOW_ANY_URL=true",
				"BILLSYNC_ZUORA_CLIENT_ID=" + zuorasim.DefaultClientID, "BILLSYNC_ZUORA_CLIENT_SECRET=" + zuorasim.DefaultClientSecret,
				"BILLSYNC_LOG_FORMAT=json", "BILLSYNC_LOG_LEVEL=warn", "BILLSYNC_CLAIM_LEASE=3s", "BILLSYNC_SWEEP_INTERVAL=1s",
				"BILLSYNC_SCHEDULER_LEASE_TTL=3s"}
			rc := newHookReceiver(t)
			ctx := context.Background()

			first := startReplica(t, bin, "first", env)
			api := chaosAPI{t: t, url: func() string { return first.url }}
			var ep store.WebhookEndpoint
			require.NoError(t, json.Unmarshal(api.must("POST", "/api/v1/webhook-endpoints", `{"url":"`+rc.srv.URL+`/hooks","description":"the app"}`, 201), &ep))
			require.NotEmpty(t, ep.Secret, "the secret is shown once, at creation")
			rc.mu.Lock()
			rc.secret = ep.Secret
			rc.mu.Unlock()

			rc.down.Store(true)
			const n = 10
			for i := range n {
				api.must("PUT", fmt.Sprintf("/api/v1/customers/c%02d", i), fmt.Sprintf(`{"name":"Customer %d","currency":"USD"}`, i), 201)
			}
			waitFor(t, 20*time.Second, "a failed attempt of every delivery while the endpoint is down", func() bool {
				_, _, refused, _ := rc.snapshot()
				return refused >= n
			})
			require.NoError(t, first.cmd.Process.Kill()) // SIGKILL
			<-first.done

			// Changes made while billsync is down (another writer on the database).
			db := storetest.OpenURL(t, dbURL)
			for i := n; i < n+5; i++ {
				_, _, err := db.UpsertCustomer(ctx, engine.Customer{ID: fmt.Sprintf("c%02d", i), Name: fmt.Sprintf("Customer %d", i), Currency: "USD"})
				require.NoError(t, err)
			}
			rc.down.Store(false)
			second := startReplica(t, bin, "second", env)
			waitFor(t, 30*time.Second, "every event delivered by the restarted process", func() bool {
				p, _, _, _ := rc.snapshot()
				return len(p) == n+5
			})
			require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM)) // a soft stop
			<-second.done
			for i := n + 5; i < n+8; i++ {
				_, _, err := db.UpsertCustomer(ctx, engine.Customer{ID: fmt.Sprintf("c%02d", i), Name: fmt.Sprintf("Customer %d", i), Currency: "USD"})
				require.NoError(t, err)
			}
			third := startReplica(t, bin, "third", env)
			waitFor(t, 30*time.Second, "the events written while stopped", func() bool {
				p, _, _, _ := rc.snapshot()
				return len(p) == n+8
			})
			time.Sleep(300 * time.Millisecond) // room for a stray duplicate to show
			processed, deliveries, refused, bad := rc.snapshot()
			require.Empty(t, bad, "every signature verifies")
			require.GreaterOrEqual(t, refused, n)

			api = chaosAPI{t: t, url: func() string { return third.url }}
			var feed struct {
				Data []store.Event `json:"data"`
			}
			require.NoError(t, json.Unmarshal(api.must("GET", "/api/v1/events?limit=100", "", 200), &feed))
			require.Len(t, feed.Data, n+8)
			for i, e := range feed.Data {
				require.Equal(t, store.EventCustomerCreated, e.Type)
				require.Equal(t, 1, processed[e.WebhookID()], "event %s exactly once", e.WebhookID())
				require.Equal(t, 1, deliveries[e.WebhookID()], "event %s delivered once (no claim was lost mid-delivery)", e.WebhookID())
				if i > 0 {
					require.Greater(t, e.ID, feed.Data[i-1].ID, "the feed is ordered")
				}
			}
			var ds struct {
				Data []store.Delivery `json:"data"`
			}
			require.NoError(t, json.Unmarshal(api.must("GET", "/api/v1/webhook-endpoints/"+ep.ID+"/deliveries?limit=100", "", 200), &ds))
			require.Len(t, ds.Data, n+8)
			for _, dl := range ds.Data {
				require.Equal(t, store.DeliveryDelivered, dl.State)
				require.Equal(t, http.StatusNoContent, dl.LastStatus)
			}
			// Resend: the same event again, with the same webhook-id.
			api.must("POST", fmt.Sprintf("/api/v1/webhook-endpoints/%s/deliveries/%d/resend", ep.ID, ds.Data[0].ID), "", 200, 202, 204)
			waitFor(t, 20*time.Second, "the resend", func() bool {
				_, dv, _, _ := rc.snapshot()
				return dv[fmt.Sprintf("evt_%d", ds.Data[0].EventID)] == 2
			})
			p, _, _, _ := rc.snapshot()
			require.Equal(t, 1, p[fmt.Sprintf("evt_%d", ds.Data[0].EventID)], "the receiver de-duplicates the resend by webhook-id")
			require.False(t, strings.Contains(first.logs.String()+second.logs.String()+third.logs.String(), ep.Secret), "the secret is never logged")
		})
	}
}
