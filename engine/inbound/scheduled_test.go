package inbound_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/worker"
)

const (
	schedProPlan = `{"kind":"plan","name":"Pro","pricingType":"paid","currency":"USD","billingPeriods":[{"id":"pro-monthly","period":"month","charges":[
 {"id":"base","name":"Base","type":"recurring","model":"flat_fee","price":"49"},
 {"id":"seats","name":"Seats","type":"recurring","model":"per_unit","price":"10","unitOfMeasure":"seat"}]}]}`
	schedLitePlan = `{"kind":"plan","name":"Lite","pricingType":"paid","currency":"USD","billingPeriods":[{"id":"lite-monthly","period":"month","charges":[
 {"id":"lite-base","name":"Base","type":"recurring","model":"flat_fee","price":"19"},
 {"id":"lite-seats","name":"Seats","type":"recurring","model":"per_unit","price":"5","unitOfMeasure":"seat"}]}]}`
	schedCustomer = `{"name":"Sched","email":"billing@sched.test","currency":"USD","hasPaymentMethod":true,
 "billTo":{"firstName":"Ada","lastName":"Lovelace","country":"US"}}`
)

// zuoraOrders returns the subscription's orders in Zuora by status.
func zuoraOrders(t *testing.T, h *harness, subNumber string) map[string][]zuora.OrderInfo {
	t.Helper()
	out := map[string][]zuora.OrderInfo{}
	for o, err := range h.env.Zuora.ListSubscriptionOrders(h.ctx, subNumber, "all") {
		require.NoError(t, err)
		out[o.Status] = append(out[o.Status], o)
	}
	return out
}

// TestScheduledChangesEndToEnd is issue 15's scheduled changes through the
// public API and the simulator: a downgrade scheduled at the end of the
// billing period is pending in GET and a scheduled order in Zuora; it is
// replaced (a seat decrease) with the order's answer and the old order's
// cancel answer lost; it is cancelled; another is scheduled on a date; the
// simulator's clock moves past it: Zuora runs the order and fires
// scheduled-order-completed (delivered three times, then replayed), and
// billsync applies the change once, with nothing sent back.
func TestScheduledChangesEndToEnd(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			// One try per call: a lost answer reaches the reconcile, which
			// must look before it writes again.
			h := newHarness(t, d, hopts{clientAttempts: 1})
			h.proxy.policy = func(path string, n int) (bool, int) {
				if strings.HasSuffix(path, "/scheduled-order-completed") && n < 3 {
					return true, http.StatusServiceUnavailable // billsync stored it; the answer is lost
				}
				return true, 0
			}
			h.setupCallouts(false)
			sim := h.env.Sim
			today := h.env.DB.Now().Format("2006-01-02")
			start := addDays(today, -10)
			put := func(path, body string, want int) map[string]any {
				t.Helper()
				st, out := h.apiDo("PUT", path, body)
				require.Equal(t, want, st, "%s: %v", path, out)
				return out
			}
			put("/api/v1/plans/pro", schedProPlan, http.StatusCreated)
			put("/api/v1/plans/lite", schedLitePlan, http.StatusCreated)
			put("/api/v1/customers/c1", schedCustomer, http.StatusCreated)
			put("/api/v1/subscriptions/s1", fmt.Sprintf(`{"customerId":"c1","planId":"pro","billingPeriodId":"pro-monthly","startDate":%q,"chargeQuantities":{"seats":"5"}}`, start), http.StatusCreated)
			h.env.Converge(20 * time.Second)
			h.settle()
			rec, err := h.env.DB.GetSyncRecord(h.ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			subNumber := rec.ZuoraNumber
			require.NotEmpty(t, subNumber)

			// Bad input changes nothing.
			st, body := h.apiDo("PUT", "/api/v1/subscriptions/s1/scheduled-change", `{"timing":"specific_date","date":"`+today+`","chargeQuantities":{"seats":"2"}}`)
			require.Equal(t, http.StatusUnprocessableEntity, st, "%v", body)
			st, body = h.apiDo("PUT", "/api/v1/subscriptions/s1/scheduled-change", `{"timing":"end_of_billing_period"}`)
			require.Equal(t, http.StatusUnprocessableEntity, st, "the current state: %v", body)
			st, body = h.apiDo("DELETE", "/api/v1/subscriptions/s1/scheduled-change", "")
			require.Equal(t, http.StatusNotFound, st, "%v", body)

			// 1. A downgrade at the end of the billing period.
			periodEnd, err := engine.AddMonths(start, 1)
			require.NoError(t, err)
			out := put("/api/v1/subscriptions/s1/scheduled-change",
				`{"timing":"end_of_billing_period","planId":"lite","billingPeriodId":"lite-monthly","chargeQuantities":{"lite-seats":"3"}}`, http.StatusOK)
			pending := out["scheduledChange"].(map[string]any)
			require.Equal(t, periodEnd, pending["date"])
			require.Equal(t, "lite", pending["planId"])
			first := pending["zuoraOrderNumber"].(string)
			require.True(t, strings.HasPrefix(first, "BSO-"), first)
			require.Equal(t, "pro", out["planId"], "the current state stays")
			h.env.Converge(20 * time.Second)
			orders := zuoraOrders(t, h, subNumber)
			require.Len(t, orders[zuora.OrderStatusScheduled], 1)
			require.Equal(t, first, orders[zuora.OrderStatusScheduled][0].OrderNumber)
			require.Equal(t, periodEnd, orders[zuora.OrderStatusScheduled][0].ScheduledDate())
			zs, err := h.env.Zuora.GetSubscription(h.ctx, subNumber)
			require.NoError(t, err)
			require.Len(t, zs.RatePlans, 1, "Zuora's subscription is unchanged until the date")
			_, body = h.apiDo("GET", "/api/v1/subscriptions/s1", "")
			require.Equal(t, first, body["scheduledChange"].(map[string]any)["zuoraOrderNumber"])
			require.Equal(t, "synced", body["sync"].(map[string]any)["state"])

			// 2. Replaced by a seat decrease; the cancel's and the new order's
			// answers are lost (the writes are made).
			sim.SetFaults(zuorasim.Fault{Operation: "PUT /v1/orders/{orderNumber}/cancel", Kind: zuorasim.FaultLostResponse, Count: 1},
				zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
			out = put("/api/v1/subscriptions/s1/scheduled-change", `{"timing":"end_of_billing_period","chargeQuantities":{"seats":"2"}}`, http.StatusOK)
			second := out["scheduledChange"].(map[string]any)["zuoraOrderNumber"].(string)
			require.NotEqual(t, first, second)
			calls := sim.Stats().Calls
			h.env.Converge(30 * time.Second)
			for _, f := range sim.Faults() {
				require.Zero(t, f.Count, "fault %s on %s was injected", f.Kind, f.Operation)
			}
			sim.SetFaults()
			hist, err := h.env.DB.SyncHistory(h.ctx, rec.ID, 1)
			require.NoError(t, err)
			require.Equal(t, "synced", hist[0].Outcome, "%+v", hist[0])
			require.Contains(t, hist[0].Detail, "cancelled scheduled order "+first)
			for _, op := range []string{"PUT /v1/orders/{orderNumber}/cancel", "POST /v1/orders"} {
				// At most the transport's own retry of a request whose answer
				// was lost (net/http resends a PUT, and a POST carrying an
				// Idempotency-Key); the reconcile sends neither again.
				require.LessOrEqual(t, sim.Stats().Calls[op]-calls[op], 2, op)
			}
			orders = zuoraOrders(t, h, subNumber)
			require.Len(t, orders[zuora.OrderStatusScheduled], 1, "%v", orders)
			require.Equal(t, second, orders[zuora.OrderStatusScheduled][0].OrderNumber)
			require.Len(t, orders[zuora.OrderStatusCancelled], 1)
			require.Equal(t, first, orders[zuora.OrderStatusCancelled][0].OrderNumber)

			// 3. Cancelled.
			st, body = h.apiDo("DELETE", "/api/v1/subscriptions/s1/scheduled-change", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Nil(t, body["scheduledChange"])
			h.env.Converge(20 * time.Second)
			orders = zuoraOrders(t, h, subNumber)
			require.Empty(t, orders[zuora.OrderStatusScheduled])
			require.Len(t, orders[zuora.OrderStatusCancelled], 2)

			// 3b. A change whose order Zuora placed while the process died is
			// cancelled before the retry: the retry finds the order and
			// cancels it, nothing is left scheduled.
			crash := &crashAfterWrite{Client: h.env.Zuora, armed: true}
			slow := worker.New(h.env.DB, outbound.New(h.env.DB, crash, outbound.Config{DependencyWait: 5 * time.Millisecond}).Kinds(),
				worker.Options{Workers: 1, Logger: zerolog.Nop(), BackoffUnit: time.Hour, MaxBackoff: time.Hour, PollInterval: 5 * time.Millisecond})
			put("/api/v1/subscriptions/s1/scheduled-change", `{"timing":"end_of_billing_period","chargeQuantities":{"seats":"4"}}`, http.StatusOK)
			_, err = slow.Drain(h.ctx)
			require.NoError(t, err)
			require.False(t, crash.armed, "the crash happened")
			require.Len(t, zuoraOrders(t, h, subNumber)[zuora.OrderStatusScheduled], 1, "placed before the crash")
			st, body = h.apiDo("DELETE", "/api/v1/subscriptions/s1/scheduled-change", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			h.env.Converge(20 * time.Second)
			orders = zuoraOrders(t, h, subNumber)
			require.Empty(t, orders[zuora.OrderStatusScheduled], "the orphan is cancelled")
			require.Len(t, orders[zuora.OrderStatusCancelled], 3)

			// 4. Another, on a date; the process "crashes" right after Zuora
			// placed the scheduled order (the reconcile never hears of it).
			crash = &crashAfterWrite{Client: h.env.Zuora, armed: true}
			pool := h.env.Pool
			h.env.Pool = worker.New(h.env.DB, outbound.New(h.env.DB, crash, outbound.Config{DependencyWait: 5 * time.Millisecond}).Kinds(),
				worker.Options{Workers: 2, Logger: zerolog.Nop(), BackoffUnit: time.Millisecond, MaxBackoff: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond})
			on := addDays(today, 5)
			out = put("/api/v1/subscriptions/s1/scheduled-change",
				fmt.Sprintf(`{"timing":"specific_date","date":%q,"planId":"lite","billingPeriodId":"lite-monthly","chargeQuantities":{"lite-seats":"3"}}`, on), http.StatusOK)
			third := out["scheduledChange"].(map[string]any)["zuoraOrderNumber"].(string)
			h.env.Converge(20 * time.Second)
			h.env.Pool = pool
			require.False(t, crash.armed, "the crash happened")
			require.Equal(t, 1, crash.orders, "the order placed before the crash is found, not placed again")
			orders = zuoraOrders(t, h, subNumber)
			require.Len(t, orders[zuora.OrderStatusScheduled], 1)
			require.Equal(t, third, orders[zuora.OrderStatusScheduled][0].OrderNumber)
			require.Equal(t, on, orders[zuora.OrderStatusScheduled][0].ScheduledDate())
			h.settle()

			// 5. Zuora's clock passes the date: the order runs there, the
			// callout tells billsync (three deliveries of one notification).
			before := writes(sim.Stats())
			moved := h.simPost("/_sim/clock", map[string]any{"advance": "144h"})
			require.EqualValues(t, 1, moved["scheduledOrdersRun"])
			h.settle()
			orders = zuoraOrders(t, h, subNumber)
			require.Empty(t, orders[zuora.OrderStatusScheduled])
			require.Len(t, orders[zuora.OrderStatusCompleted], 2, "the create and the scheduled order")
			zs, err = h.env.Zuora.GetSubscription(h.ctx, subNumber)
			require.NoError(t, err)
			var active []string
			for _, rp := range zs.RatePlans {
				if rp.LastChangeType != "Remove" {
					active = append(active, rp.RatePlanName)
					for _, ch := range rp.RatePlanCharges {
						if ch.Model == zuora.ChargeModelPerUnit {
							q, _ := ch.Quantity.Decimal()
							require.Equal(t, "3", q.String())
						}
					}
				}
			}
			require.Len(t, active, 1, "lite only: %v", active)
			sub, err := h.env.DB.GetSubscription(h.ctx, "s1")
			require.NoError(t, err)
			require.Equal(t, "lite", sub.PlanID)
			require.Equal(t, "lite-monthly", sub.BillingPeriodID)
			require.Nil(t, sub.Scheduled)
			revision := sub.Revision
			var completed []inbound.InboxEntry
			for _, e := range h.inbox() {
				if e.Event == inbound.EventOrderCompleted {
					completed = append(completed, e)
				}
			}
			require.Len(t, completed, 1, "three deliveries of one notification: one inbox entry")
			require.Contains(t, completed[0].Result, "ran on "+on)
			deliveries := 0
			for _, a := range sim.Callouts() {
				if strings.HasSuffix(a.URL, "/scheduled-order-completed") {
					deliveries++
				}
			}
			require.Equal(t, 3, deliveries)
			rec, err = h.env.DB.GetSyncRecord(h.ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "settled on what Zuora has")

			// Every callout again as a new notification: nothing changes.
			replay(t, h)
			h.settle()
			sub, err = h.env.DB.GetSubscription(h.ctx, "s1")
			require.NoError(t, err)
			require.Equal(t, revision, sub.Revision, "the change was applied once")
			h.noEcho(before, 0)
			_, body = h.apiDo("GET", "/api/v1/subscriptions/s1", "")
			require.Equal(t, "lite", body["planId"])
			require.Nil(t, body["scheduledChange"])
		})
	}
}

// crashAfterWrite is Zuora seen by a process that dies right after Zuora
// placed a scheduled order: the write is made, its answer never arrives.
type crashAfterWrite struct {
	*zuora.Client
	mu     sync.Mutex
	armed  bool
	orders int
}

func (c *crashAfterWrite) CreateOrder(ctx context.Context, key string, o zuora.Order) (zuora.OrderResult, error) {
	res, err := c.Client.CreateOrder(ctx, key, o)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.orders++
	if err == nil && c.armed && o.Status == zuora.OrderStatusScheduled {
		c.armed = false
		return zuora.OrderResult{}, errors.New("the process stopped before the answer was recorded")
	}
	return res, err
}
