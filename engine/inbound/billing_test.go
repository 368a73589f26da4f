package inbound_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// eventsOf counts the feed's events per type (and checks ids ascend).
func eventsOf(t *testing.T, h *harness) map[string]int {
	t.Helper()
	evs, _, err := h.env.DB.ListEvents(h.ctx, 0, 500, nil, "")
	require.NoError(t, err)
	out := map[string]int{}
	var last int64
	for _, e := range evs {
		require.Greater(t, e.ID, last, "ordered by id")
		last = e.ID
		out[e.Type]++
	}
	return out
}

// replay posts every callout the simulator delivered to billsync again,
// newest first, each as a new notification (a late or resent callout):
// processing reads Zuora again, so nothing changes and no event repeats.
func replay(t *testing.T, h *harness) int {
	t.Helper()
	seen := map[string]bool{}
	var todo []zuorasim.CalloutAttempt
	for _, a := range h.env.Sim.Callouts() {
		if a.Success && !seen[a.NotificationID] {
			seen[a.NotificationID] = true
			todo = append(todo, a)
		}
	}
	for i := len(todo) - 1; i >= 0; i-- {
		a := todo[i]
		u, err := url.Parse(a.URL)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, h.api+u.Path, bytes.NewReader([]byte(a.Body)))
		require.NoError(t, err)
		req.SetBasicAuth(hookUser, hookPass)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Zuora-Notification-Id", strings.ReplaceAll(uuid.NewString(), "-", ""))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, a.URL)
	}
	return len(todo)
}

func customerOf(t *testing.T, h *harness) engine.Customer {
	t.Helper()
	cs := h.customers()
	require.Len(t, cs, 1)
	return cs[0]
}

// TestBillingEventsEndToEnd is issue 16's "Done when" through the simulator:
// a payment method added in Zuora sets hasPaymentMethod; a bill run posts an
// invoice (shown, invoice.posted); a declined payment makes the subscription
// past_due with grace on the grant (payment.failed); a payment makes it paid
// and ends the grace (invoice.paid); a cancellation in Zuora cancels the
// local subscription (subscription.canceled) with nothing sent back. Every
// callout is delivered three times (Zuora retries lost answers), then all of
// them again newest first: one effect and one event each.
//
// Not parallel with the package's timing-sensitive lease tests (it is heavy).
func TestBillingEventsEndToEnd(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{})
			h.proxy.policy = func(_ string, n int) (bool, int) {
				if n < 3 {
					return true, http.StatusServiceUnavailable // billsync stored it; the answer is lost
				}
				return true, 0
			}
			h.setupCallouts(false)
			sim := h.env.Sim
			today := sim.Now().UTC().Format("2006-01-02")
			cat := h.product("GRACE", "5")
			_, num := h.account("Payer", nil)
			subNum := h.subscription(num, cat, 2, addDays(today, -10))
			h.settle()
			cust := customerOf(t, h)
			require.False(t, cust.HasPaymentMethod)

			_, err := sim.AddPaymentMethod(num, zuorasim.PaymentMethodRequest{LastFour: "4242"})
			require.NoError(t, err)
			h.settle()
			cust = customerOf(t, h)
			require.True(t, cust.HasPaymentMethod, "the default payment method set in Zuora")
			updated := 0
			for _, e := range h.inbox() {
				if e.Event == inbound.EventAccountUpdated {
					updated++
				}
			}
			require.Equal(t, 1, updated, "only the payment method: billsync's own write of BillsyncId__c is not an account-updated event")
			rec, err := h.env.DB.GetSyncRecord(h.ctx, store.EntityCustomer, cust.ID)
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "the customer is in sync with its account, nothing to push")

			runs, err := sim.BillRun(today, num)
			require.NoError(t, err)
			require.NotEmpty(t, runs[0].InvoiceNumber)
			h.settle()
			st, body := h.apiDo("GET", "/api/v1/customers/"+cust.ID+"/invoices", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			invs := body["data"].([]any)
			require.Len(t, invs, 1)
			inv := invs[0].(map[string]any)
			require.Equal(t, runs[0].InvoiceNumber, inv["number"])
			require.Equal(t, "40", inv["amount"], "30 flat + 2 seats × 5")
			require.Equal(t, "40", inv["balance"])
			require.Equal(t, "Posted", inv["status"])
			require.Equal(t, false, inv["paid"])
			require.Equal(t, today, inv["dueDate"], "Due Upon Receipt")
			require.Contains(t, inv["zuoraUrl"], runs[0].InvoiceID)
			require.Equal(t, 1, eventsOf(t, h)[store.EventInvoicePosted])

			access := func() (map[string]any, map[string]any) {
				t.Helper()
				st, body := h.apiDo("GET", "/api/v1/customers/"+cust.ID+"/access", "")
				require.Equal(t, http.StatusOK, st, "%v", body)
				acc := body["access"].([]any)
				require.Len(t, acc, 1)
				subs := body["subscriptions"].([]any)
				require.Len(t, subs, 1)
				return acc[0].(map[string]any), subs[0].(map[string]any)
			}
			g, p := access()
			require.Equal(t, "paid", p["status"])
			require.Nil(t, g["grace"])

			_, err = sim.Pay(zuorasim.PaymentRequest{Invoice: runs[0].InvoiceNumber, Failed: true, Reason: "Insufficient funds"})
			require.NoError(t, err)
			h.settle()
			g, p = access()
			require.Equal(t, subNum, p["subscriptionNumber"])
			require.Equal(t, "past_due", p["status"])
			require.Equal(t, today, p["pastDueSince"])
			grace := g["grace"].(map[string]any)
			require.Equal(t, today, grace["pastDueSince"])
			require.EqualValues(t, 5, grace["days"], "the product's GracePeriod__c")
			require.Equal(t, addDays(today, 5), grace["until"])
			require.Equal(t, true, g["active"], "inside the grace period")
			require.Equal(t, 1, eventsOf(t, h)[store.EventPaymentFailed])

			_, err = sim.Pay(zuorasim.PaymentRequest{Invoice: runs[0].InvoiceNumber})
			require.NoError(t, err)
			h.settle()
			g, p = access()
			require.Equal(t, "paid", p["status"])
			require.Nil(t, g["grace"], "a payment ends the grace")
			require.Equal(t, true, g["active"])
			_, body = h.apiDo("GET", "/api/v1/customers/"+cust.ID+"/invoices", "")
			require.Equal(t, true, body["data"].([]any)[0].(map[string]any)["paid"])
			require.Equal(t, 1, eventsOf(t, h)[store.EventInvoicePaid])

			before := writes(sim.Stats())
			_, err = h.env.Zuora.CreateOrder(h.ctx, zuora.IdempotencyKey("ui-cancel", subNum), zuora.Order{OrderDate: today, ExistingAccountNumber: num,
				Subscriptions: []zuora.OrderSubscription{{SubscriptionNumber: subNum,
					OrderActions: []zuora.OrderAction{zuora.CancelSubscriptionAction(zuora.CancelEndOfCurrentTerm, "")}}}})
			require.NoError(t, err)
			h.settle()
			subs := h.subscriptions()
			require.Len(t, subs, 1)
			require.Equal(t, engine.StatusCancelled, subs[0].Status)
			require.Equal(t, 1, eventsOf(t, h)[store.EventSubscriptionCanceled])
			h.env.Converge(10 * time.Second)
			after := diff(writes(sim.Stats()), before)
			require.Zero(t, after["POST /v1/orders"]-1, "only the cancellation made in Zuora; nothing sent back: %v", after)

			want := eventsOf(t, h)
			n := replay(t, h)
			require.GreaterOrEqual(t, n, 6, "account, subscription, payment method, posted, failed, paid, cancelled callouts")
			h.settle()
			require.Equal(t, want, eventsOf(t, h), "replayed out of order: no event twice")
			g, p = access()
			require.Equal(t, "paid", p["status"], "an old payment-failed callout read again changes nothing")
			require.Nil(t, g["grace"])
			_, body = h.apiDo("GET", "/api/v1/customers/"+cust.ID+"/invoices", "")
			require.Len(t, body["data"], 1)
			for _, typ := range []string{store.EventCustomerCreated, store.EventSubscriptionCreated, store.EventAccessGranted, store.EventInvoicePosted,
				store.EventPaymentFailed, store.EventInvoicePaid, store.EventSubscriptionCanceled} {
				require.Equal(t, 1, want[typ], "%s in %v", typ, want)
			}
			for id, n := range h.proxy.deliveries() {
				require.Equal(t, 3, n, "deliveries of notification %s", id)
			}
		})
	}
}

// TestGraceRunsOut: with no grace days, a declined payment revokes the grant
// at once; the expiry job tells access.revoked once.
func TestGraceRunsOut(t *testing.T) {
	h := newHarness(t, store.SQLite, hopts{})
	h.setupCallouts(false)
	sim := h.env.Sim
	today := sim.Now().UTC().Format("2006-01-02")
	cat := h.product("NOGRACE", "")
	_, num := h.account("Late", nil)
	h.subscription(num, cat, 1, addDays(today, -3))
	_, err := sim.AddPaymentMethod(num, zuorasim.PaymentMethodRequest{})
	require.NoError(t, err)
	runs, err := sim.BillRun(today, num)
	require.NoError(t, err)
	_, err = sim.Pay(zuorasim.PaymentRequest{Invoice: runs[0].InvoiceNumber, Failed: true})
	require.NoError(t, err)
	h.settle()
	cust := customerOf(t, h)
	acc, _, err := h.svc.CustomerAccess(h.ctx, cust.ID)
	require.NoError(t, err)
	require.Len(t, acc, 1)
	require.False(t, acc[0].Active, "no grace days: no access while past due")
	require.True(t, acc[0].Grace.Revoked)
	for range 2 {
		_, err := h.svc.ExpireAccess(context.Background())
		require.NoError(t, err)
	}
	require.Equal(t, 1, eventsOf(t, h)[store.EventAccessRevoked])
}

func addDays(date string, n int) string {
	t, err := time.Parse("2006-01-02", date)
	if err != nil {
		return date
	}
	return t.AddDate(0, 0, n).Format("2006-01-02")
}
