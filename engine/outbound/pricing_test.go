package outbound_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestPricingMembersPerChargeModel: a one-time tiered and a recurring
// volume charge are subscribed with oneTimeTiered / recurringVolume (the
// strict simulator refuses any other member), their tiers reach Zuora as
// inclusive ranges (StartingUnit 11 after EndingUnit 10), and a quantity
// change updates only the recurring charge (an update has no one-time
// member) with triggerEvent SpecificDate.
func TestPricingMembersPerChargeModel(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			tiers := []engine.Tier{{UpTo: ptr(dec("10")), Price: dec("10"), PriceFormat: engine.PricePerUnit}, {Price: dec("8"), PriceFormat: engine.PricePerUnit}}
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, engine.Plan{ID: "team", Kind: engine.KindPlan, Name: "Team", PricingType: engine.PricingPaid, Currency: "USD",
				BillingPeriods: []engine.BillingPeriod{{ID: "team-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
					{ID: "setup", Name: "Setup", Type: engine.ChargeOneTime, Model: engine.ModelTiered, UnitOfMeasure: "Seat", Tiers: tiers},
					{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelVolume, UnitOfMeasure: "Seat", Tiers: tiers},
				}}}}))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			sub := engine.Subscription{ID: "s1", CustomerID: "acme", PlanID: "team", BillingPeriodID: "team-monthly", Status: engine.StatusActive,
				StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true, ChargeQuantities: map[string]decimal.Decimal{"setup": dec("3"), "seats": dec("5")}}
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")

			st := e.Sim.State()
			for _, ch := range st.Charges {
				require.Len(t, ch.Tiers, 2, ch.Name)
				require.Equal(t, "10", ch.Tiers[0].EndingUnit.String())
				require.Equal(t, "11", ch.Tiers[1].StartingUnit.String(), "inclusive ranges: the next tier starts one unit later")
			}
			qty := func() map[string]string {
				out := map[string]string{}
				for _, rp := range e.Sim.State().Subscriptions[0].RatePlans {
					for _, ch := range rp.Charges {
						out[ch.Name] = ch.Quantity.String()
					}
				}
				return out
			}
			require.Equal(t, map[string]string{"Setup": "3", "Seats": "5"}, qty())

			sub.ChargeQuantities = map[string]decimal.Decimal{"setup": dec("4"), "seats": dec("12")}
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			require.Equal(t, map[string]string{"Setup": "3", "Seats": "12"}, qty(), "the one-time charge keeps the quantity it was charged with")
		})
	}
}

func requireSynced(t *testing.T, e *enginetest.Env, kind, id string) {
	t.Helper()
	rec, err := e.DB.GetSyncRecord(context.Background(), kind, id)
	require.NoError(t, err)
	require.Equal(t, store.StateSynced, rec.State, "%s %s: %s %s", kind, id, rec.Reason, rec.LastErrorMessage)
}

// TestLockCompetitionRetried: two subscriptions of one customer reach
// Zuora while orders hold the account (Zuora's lock competition, saved
// under the order's Idempotency-Key); billsync retries with a new key and
// both end synced, each created once.
func TestLockCompetitionRetried(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{Sim: zuorasim.Options{OrderProcessingTime: 150 * time.Millisecond}, Workers: 8})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "acme")))
			e.Converge(20 * time.Second)
			for _, id := range []string{"s2", "s3", "s4"} {
				must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription(id, "acme")))
			}
			e.Converge(30 * time.Second)
			for _, id := range []string{"s1", "s2", "s3", "s4"} {
				requireSynced(t, e, store.EntitySubscription, id)
			}
			require.Len(t, e.Sim.State().Subscriptions, 4, "each created once")
			require.Positive(t, e.Sim.Stats().Status[409], "the orders did meet lock competition")
		})
	}
}
