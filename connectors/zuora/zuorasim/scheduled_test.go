package zuorasim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// scheduled is an order of existing(…) saved to run on date.
func scheduled(body map[string]any, date string) map[string]any {
	body["status"] = "Scheduled"
	body["schedulingOptions"] = map[string]any{"scheduledDatePolicy": "SpecificDate", "scheduledDate": date}
	return body
}

// TestScheduledOrders: Zuora's rules for scheduled orders ("Create scheduled
// orders using the REST API", "Cancel an order", "Order Status"), and an
// order that runs on its date by the simulator's clock, changing the
// subscription then and firing the Order UPDATE event.
func TestScheduledOrders(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, zuorasim.Options{Now: func() time.Time { return now }}).login()
	c := h.seedCatalog("Sched")
	acct, subNum := h.newOrder(c, "SchedCo")
	sub := h.subscription(subNum)
	seats := chargeByName(sub, "Seats")
	rpID := ratePlans(sub)[0]["id"]
	update := func(q int, on string) map[string]any {
		return map[string]any{"type": "UpdateProduct", "triggerDates": []any{
			map[string]any{"name": "ContractEffective", "triggerDate": on}, map[string]any{"name": "ServiceActivation", "triggerDate": on},
			map[string]any{"name": "CustomerAcceptance", "triggerDate": on}},
			"updateProduct": map[string]any{"ratePlanId": rpID, "chargeUpdates": []any{map[string]any{"chargeNumber": seats["number"],
				"pricing":       map[string]any{"recurringPerUnit": map[string]any{"quantity": q}},
				"effectiveDate": map[string]any{"triggerEvent": "SpecificDate", "specificTriggerDate": on}}}}}
	}
	refused := func(r reply, why string) {
		t.Helper()
		require.True(t, r.status >= 400 || r.obj(t)["success"] == false, "%s: %s", why, r.raw)
	}

	// Refused.
	noOpts := existing(acct, subNum, update(2, "2025-03-01"))
	noOpts["status"] = "Scheduled"
	refused(h.order(noOpts), "status Scheduled without schedulingOptions")
	refused(h.order(scheduled(existing(acct, subNum, update(2, "2025-02-01")), "2025-02-01")), "a scheduled date that is today")
	optsOnly := existing(acct, subNum, update(2, "2025-03-01"))
	optsOnly["schedulingOptions"] = map[string]any{"scheduledDatePolicy": "SpecificDate", "scheduledDate": "2025-03-01"}
	refused(h.order(optsOnly), "schedulingOptions on an order that runs now")
	bad := scheduled(existing(acct, subNum, update(2, "2025-03-01")), "2025-03-01")
	bad["subscriptions"].([]any)[0].(map[string]any)["orderActions"].([]any)[0].(map[string]any)["updateProduct"].(map[string]any)["ratePlanId"] = "nope"
	refused(h.order(bad), "an order that could not run is refused when placed")
	withNew := scheduled(map[string]any{"orderDate": "2025-02-01", "newAccount": newAccountBody("Later"),
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}, "2025-03-01")
	refused(h.order(withNew), "a scheduled order creating an account")

	// Callouts on the Order event, as billsync's setup creates them.
	var mu sync.Mutex
	var got []map[string]any
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer rc.Close()
	require.Less(t, h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "Order",
		"condition": "changeType == 'UPDATE' && Order.Status == 'Completed' && Order.Status_old == 'Scheduled'",
		"eventType": map[string]any{"name": "OrderDone", "displayName": "Order done"}}).status, 300)
	require.Less(t, h.do("POST", "/notifications/notification-definitions", map[string]any{"name": "n", "eventTypeName": "OrderDone", "calloutActive": true,
		"callout": map[string]any{"name": "c", "calloutBaseurl": rc.URL, "httpMethod": "POST", "requiredAuth": true,
			"calloutAuth":   map[string]any{"username": "u", "password": "p", "preemptive": true},
			"calloutParams": map[string]any{"OrderNumber": "<DataSource.Order.OrderNumber>", "AccountId": "<DataSource.Account.Id>"}}}).status, 300)

	// Placed: the subscription is unchanged until the date.
	body := scheduled(existing(acct, subNum, update(2, "2025-03-01")), "2025-03-01")
	body["orderNumber"] = "BSO-1"
	r := h.order(body).obj(t)
	require.Equal(t, "Scheduled", r["status"], "%v", r)
	refused(h.order(body), "the order number is taken")
	q, _ := chargeByName(h.subscription(subNum), "Seats")["quantity"].(float64)
	require.NotEqual(t, float64(2), q, "not yet")
	o := h.do("GET", "/v1/orders/BSO-1", nil, "Zuora-Version", latest).obj(t)["order"].(map[string]any)
	require.Equal(t, "Scheduled", o["status"])
	require.Equal(t, "2025-03-01", o["schedulingOptions"].(map[string]any)["scheduledDate"])
	list := h.do("GET", "/v1/orders/subscription/"+subNum+"?status=scheduled", nil, "Zuora-Version", latest).obj(t)["orders"].([]any)
	require.Len(t, list, 1)

	// A second one is cancelled; twice is refused.
	other := scheduled(existing(acct, subNum, update(4, "2025-03-05")), "2025-03-05")
	other["orderNumber"] = "BSO-2"
	h.order(other)
	require.Equal(t, "Cancelled", h.do("PUT", "/v1/orders/BSO-2/cancel", map[string]any{"cancelReason": "replaced"}, "Zuora-Version", latest).obj(t)["status"])
	refused(h.do("PUT", "/v1/orders/BSO-2/cancel", map[string]any{}, "Zuora-Version", latest), "a cancelled order cannot be cancelled")
	refused(h.do("PUT", "/v1/orders/O-00000001/cancel", map[string]any{}, "Zuora-Version", latest), "a completed order cannot be cancelled")
	require.Equal(t, 404, h.do("GET", "/v1/orders/NOPE", nil, "Zuora-Version", latest).status)

	// The clock passes the date: it runs then, and fires the Order event.
	h.sim.AdvanceClock(30 * 24 * time.Hour)
	h.sim.WaitCallouts()
	h.login() // the token expired meanwhile
	o = h.do("GET", "/v1/orders/BSO-1", nil, "Zuora-Version", latest).obj(t)["order"].(map[string]any)
	require.Equal(t, "Completed", o["status"])
	require.Equal(t, "Cancelled", h.do("GET", "/v1/orders/BSO-2", nil, "Zuora-Version", latest).obj(t)["order"].(map[string]any)["status"], "a cancelled order never runs")
	q, _ = chargeByName(h.subscription(subNum), "Seats")["quantity"].(float64)
	require.Equal(t, float64(2), q)
	mu.Lock()
	require.Len(t, got, 1)
	require.Equal(t, "BSO-1", got[0]["OrderNumber"])
	mu.Unlock()
	require.Empty(t, h.do("GET", "/v1/orders/subscription/"+subNum+"?status=scheduled", nil, "Zuora-Version", latest).obj(t)["orders"])
	refused(h.do("PUT", "/v1/orders/BSO-1/cancel", map[string]any{}, "Zuora-Version", latest), "a scheduled order that ran cannot be cancelled")
}
