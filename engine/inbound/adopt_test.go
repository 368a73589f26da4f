package inbound_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// uiQuantity changes the seats of billsync's subscription the way a Zuora
// user would (an order made in Zuora's UI, not by billsync).
func uiQuantity(t *testing.T, h *harness, number string, seats int64, key string) {
	t.Helper()
	zs, err := h.env.Zuora.GetSubscription(h.ctx, number)
	require.NoError(t, err)
	var rpID, chNum string
	for _, rp := range zs.RatePlans {
		for _, ch := range rp.RatePlanCharges {
			if ch.Name == "Seats" {
				rpID, chNum = rp.ID, ch.Number
			}
		}
	}
	require.NotEmpty(t, chNum)
	today := time.Now().UTC().Format("2006-01-02")
	_, err = h.env.Zuora.CreateOrder(h.ctx, zuora.IdempotencyKey("ui", key), zuora.Order{OrderDate: today, ExistingAccountNumber: zs.AccountNumber,
		Subscriptions: []zuora.OrderSubscription{{SubscriptionNumber: number, OrderActions: []zuora.OrderAction{{Type: "UpdateProduct",
			TriggerDates: []zuora.TriggerDate{{Name: zuora.TriggerContractEffective, TriggerDate: today}},
			UpdateProduct: &zuora.RatePlanUpdate{RatePlanID: rpID, ChargeUpdates: []zuora.ChargeUpdate{{ChargeNumber: chNum,
				Pricing:       &zuora.Pricing{RecurringPerUnit: &zuora.PriceOverride{Quantity: zuora.NumberFromDecimal(decimal.NewFromInt(seats))}},
				EffectiveDate: &zuora.TriggerParams{TriggerEvent: "SpecificDate", SpecificTriggerDate: today}}}}}}}}})
	require.NoError(t, err)
}

func seatsOf(t *testing.T, h *harness) string {
	t.Helper()
	sub, err := h.env.DB.GetSubscription(h.ctx, "own-sub")
	require.NoError(t, err)
	return sub.ChargeQuantities["seats"].String()
}

func zuoraSeats(t *testing.T, h *harness, number string) string {
	t.Helper()
	zs, err := h.env.Zuora.GetSubscription(h.ctx, number)
	require.NoError(t, err)
	for _, rp := range zs.RatePlans {
		for _, ch := range rp.RatePlanCharges {
			if ch.Name == "Seats" {
				return decimal.RequireFromString(string(ch.Quantity)).String()
			}
		}
	}
	return ""
}

// TestZuoraChangeIsAdopted (issue 16): a quantity change made in Zuora to a
// subscription billsync owns, arriving as the subscription-updated callout
// (each delivered three times, then all replayed newest first), becomes the
// local subscription's state with one subscription.updated event and no
// order sent back; the drift check does not undo it. A Zuora change while a
// local change is not in Zuora yet loses to the local change, which is
// pushed over it. A Zuora change whose callouts are lost is adopted through
// the drift check's inbox entry, not repaired back.
func TestZuoraChangeIsAdopted(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{adopt: true})
			lose := false
			h.proxy.policy = func(_ string, n int) (bool, int) {
				if lose {
					return false, http.StatusOK // the callout never reaches billsync
				}
				if n < 3 {
					return true, http.StatusServiceUnavailable // stored; the answer is lost
				}
				return true, 0
			}
			h.setupCallouts(false)
			ctx, db := h.ctx, h.env.DB
			plan := engine.Plan{ID: "team", Kind: engine.KindPlan, Name: "Team", PricingType: engine.PricingPaid, Currency: "USD",
				BillingPeriods: []engine.BillingPeriod{{ID: "monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
					{ID: "base", Name: "Base", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimalOf("10")},
					{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: decimalOf("5"), UnitOfMeasure: "seat"}}}}}
			_, _, err := db.UpsertPlan(ctx, plan)
			require.NoError(t, err)
			_, _, err = db.UpsertCustomer(ctx, engine.Customer{ID: "own", Name: "Own", Currency: "USD", HasPaymentMethod: true,
				BillTo: &engine.Contact{FirstName: "O", LastName: "Wn", Country: "United States"}})
			require.NoError(t, err)
			start := time.Now().UTC().AddDate(0, -1, 0).Format("2006-01-02")
			sub := engine.Subscription{ID: "own-sub", CustomerID: "own", PlanID: "team", BillingPeriodID: "monthly", Status: engine.StatusActive,
				StartDate: start, TermMonths: 12, AutoRenew: true, ChargeQuantities: map[string]decimal.Decimal{"seats": decimalOf("2")}}
			_, _, err = db.UpsertSubscription(ctx, sub)
			require.NoError(t, err)
			h.env.Converge(20 * time.Second)
			h.settle()
			h.env.Converge(20 * time.Second)
			rec, err := db.GetSyncRecord(ctx, store.EntitySubscription, "own-sub")
			require.NoError(t, err)
			number := rec.ZuoraNumber
			require.Equal(t, "2", seatsOf(t, h))
			before := eventsOf(t, h)[store.EventSubscriptionUpdated]
			orders := func() int { return h.env.Sim.Stats().Calls["POST /v1/orders"] }

			// 1. Changed in Zuora's UI: adopted, one event, nothing sent back.
			uiQuantity(t, h, number, 7, "seven")
			o := orders()
			h.settle()
			h.env.Converge(20 * time.Second)
			require.Equal(t, "7", seatsOf(t, h), "Zuora's quantity is the local one now")
			require.Equal(t, o, orders(), "no order echoed back")
			require.Equal(t, before+1, eventsOf(t, h)[store.EventSubscriptionUpdated], "one subscription.updated")
			rec, err = db.GetSyncRecord(ctx, store.EntitySubscription, "own-sub")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State)
			zs, err := h.env.Zuora.GetSubscription(ctx, number)
			require.NoError(t, err)
			require.Equal(t, zs.ID, rec.ZuoraID, "the record names Zuora's version")
			adopted := false
			for _, e := range h.inbox() {
				adopted = adopted || strings.Contains(e.Result, "was changed in Zuora")
			}
			require.True(t, adopted, "the callout's entry says what it did")

			want := eventsOf(t, h)
			require.NotZero(t, replay(t, h))
			h.settle()
			h.env.Converge(20 * time.Second)
			require.Equal(t, want, eventsOf(t, h), "callouts again, out of order: no event twice")
			require.Equal(t, "7", seatsOf(t, h))
			_, err = db.EnqueueDriftChecksNow(ctx)
			require.NoError(t, err)
			h.env.Converge(20 * time.Second)
			require.Equal(t, o, orders(), "the drift check does not undo the adopted change")
			require.Equal(t, "7", zuoraSeats(t, h, number))

			// 2. A local change not in Zuora yet wins over a Zuora change.
			cur, err := db.GetSubscription(ctx, "own-sub")
			require.NoError(t, err)
			cur.ChargeQuantities = map[string]decimal.Decimal{"seats": decimalOf("9")}
			_, _, err = db.UpsertSubscription(ctx, cur)
			require.NoError(t, err)
			uiQuantity(t, h, number, 3, "three")
			h.settle()
			require.Equal(t, "9", seatsOf(t, h), "the pending local change is kept")
			h.env.Converge(20 * time.Second)
			h.settle()
			h.env.Converge(20 * time.Second)
			require.Equal(t, "9", zuoraSeats(t, h, number), "and pushed over Zuora's")
			require.Equal(t, "9", seatsOf(t, h))

			// 3. Callouts lost: the drift check hands the change to the inbox.
			lose = true
			uiQuantity(t, h, number, 4, "four")
			h.env.Sim.WaitCallouts()
			o = orders()
			_, err = db.EnqueueDriftChecksNow(ctx)
			require.NoError(t, err)
			h.env.Converge(20 * time.Second)
			h.svc.Kick()
			h.settle()
			h.env.Converge(20 * time.Second)
			require.Equal(t, "4", seatsOf(t, h), "adopted from the drift check's inbox entry")
			require.Equal(t, "4", zuoraSeats(t, h, number), "not repaired back")
			require.Equal(t, o, orders())
			found := false
			for _, e := range h.inbox() {
				found = found || (e.Source == "drift" && e.State == inbound.StateDone)
			}
			require.True(t, found, "the drift check's entry went through the inbox")
		})
	}
}
