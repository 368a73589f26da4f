package outbound_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
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

// TestLongNamesCutByCharacter: Zuora's limits count characters: a 90
// character "€…" plan name (270 bytes) reaches Zuora whole and valid UTF-8,
// not cut at 100 bytes in the middle of a "€".
func TestLongNamesCutByCharacter(t *testing.T) {
	t.Parallel()
	e := enginetest.New(t, storetest.Dialects[0], enginetest.Options{})
	ctx := context.Background()
	p := proPlan()
	p.Name = strings.Repeat("€", 90)
	must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
	e.Converge(20 * time.Second)
	requireSynced(t, e, store.EntityPlan, "pro")
	name := e.Sim.State().Products[0].Fields["Name"].(string)
	require.True(t, utf8.ValidString(name))
	require.Equal(t, p.Name, name)
	require.Equal(t, 90, utf8.RuneCountInString(name))
}

// TestContactKeepsPostalCode: the account an order creates keeps the
// bill-to postal code billsync sends (orders spell it postalCode), and an
// edit of the customer updates it.
func TestContactKeepsPostalCode(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			c := customer("acme")
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, c))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "acme")))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntityCustomer, "acme")
			acct := e.Sim.State().Accounts[0].AccountNumber
			a, err := e.Zuora.GetAccount(ctx, acct)
			require.NoError(t, err)
			require.Equal(t, "02110", a.BillToContact.ZipCode)

			c.BillTo.PostalCode = "10001"
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, c))
			e.Converge(20 * time.Second)
			a, err = e.Zuora.GetAccount(ctx, acct)
			require.NoError(t, err)
			require.Equal(t, "10001", a.BillToContact.ZipCode)
		})
	}
}

// TestTermsReachZuora: autoRenew and termMonths of a synced subscription
// are part of the diff: each change is one TermsAndConditions action.
func TestTermsReachZuora(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			sub := subscription("s1", "acme")
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			num := e.Sim.State().Subscriptions[0].SubscriptionNumber
			zs := func() zuora.Subscription {
				z, err := e.Zuora.GetSubscription(ctx, num)
				require.NoError(t, err)
				return z
			}
			require.True(t, zs().AutoRenew)

			sub.AutoRenew = false
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			require.False(t, zs().AutoRenew, "autoRenew reached Zuora")

			sub.TermMonths = 24
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			z := zs()
			require.Equal(t, 24, z.CurrentTerm)
			require.Equal(t, 24, z.RenewalTerm)
			require.Equal(t, "2028-01-01", z.TermEndDate)

			sub.TermMonths = 0
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			require.Equal(t, "EVERGREEN", zs().TermType)

			// Nothing changed: no order.
			e.Sim.ResetStats()
			_, err := e.DB.RecheckAll(ctx, []string{store.EntitySubscription})
			require.NoError(t, err)
			e.Converge(20 * time.Second)
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"])
		})
	}
}

// TestFutureSuspensionTakenBack: a suspension scheduled for a future date
// and taken back before that date is undone in Zuora (resumed on its own
// date): when the date comes, the subscription stays active.
func TestFutureSuspensionTakenBack(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			sub := subscription("s1", "acme")
			sub.StartDate = time.Now().UTC().AddDate(0, -1, 0).Format("2006-01-02")
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			suspendOn := time.Now().UTC().AddDate(0, 0, 10).Format("2006-01-02")
			sub.Status, sub.SuspendDate = engine.StatusSuspended, suspendOn
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			num := e.Sim.State().Subscriptions[0].SubscriptionNumber
			require.Equal(t, suspendOn, e.Sim.State().Subscriptions[0].ScheduledSuspend)

			sub.Status, sub.SuspendDate = engine.StatusActive, ""
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State)
			hist, err := e.DB.SyncHistory(ctx, rec.ID, 1)
			require.NoError(t, err)
			require.Contains(t, hist[0].Detail, "Resume", "the suspension was undone, not left scheduled")

			e.Sim.AdvanceClock(15 * 24 * time.Hour)
			require.NoError(t, e.Zuora.TestConnection(ctx)) // a fresh token on the moved clock
			z, err := e.Zuora.GetSubscription(ctx, num)
			require.NoError(t, err)
			require.Equal(t, "Active", z.Status, "the date came and went: still active")
		})
	}
}
