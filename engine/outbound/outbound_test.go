package outbound_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
func ptr[T any](v T) *T            { return &v }

func proPlan() engine.Plan {
	return engine.Plan{
		ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{
			{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
				{ID: "base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("49.00")},
				{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: dec("10"), UnitOfMeasure: "Each"},
				{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelTiered, UnitOfMeasure: "Each", Feature: "api-calls",
					Tiers: []engine.Tier{{UpTo: ptr(dec("1000")), Price: dec("0"), PriceFormat: engine.PriceFlatFee}, {Price: dec("0.01"), PriceFormat: engine.PricePerUnit}}},
			}},
			{ID: "pro-yearly", Period: engine.PeriodYear, Charges: []engine.Charge{
				{ID: "base-yearly", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("490")},
			}},
		},
	}
}

func addon() engine.Plan {
	return engine.Plan{ID: "storage", Kind: engine.KindAddon, Name: "Extra storage", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "storage-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "storage-fee", Name: "Storage", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: dec("5"), UnitOfMeasure: "Each"}}}}}
}

func customer(id string) engine.Customer {
	return engine.Customer{ID: id, Name: "Customer " + id, Email: id + "@example.test", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States", City: "Boston", State: "MA", PostalCode: "02110"}}
}

func subscription(id, cust string) engine.Subscription {
	return engine.Subscription{ID: id, CustomerID: cust, PlanID: "pro", BillingPeriodID: "pro-monthly", Status: engine.StatusActive,
		StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true, ChargeQuantities: map[string]decimal.Decimal{"seats": dec("3")}}
}

func must[T any](t *testing.T) func(T, bool, error) T {
	return func(v T, _ bool, err error) T {
		t.Helper()
		require.NoError(t, err)
		return v
	}
}

func TestInitialSyncOneOrderPerCustomer(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, addon()))
			const n = 10
			for i := range n {
				c := fmt.Sprintf("c%02d", i)
				must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer(c)))
				must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s"+c, c)))
			}
			e.Converge(30 * time.Second)
			st := e.Sim.Stats()
			require.Equal(t, n, st.Calls["POST /v1/orders"], "one order per customer + first subscription: %v", st.Calls)
			require.Zero(t, st.Calls["POST /v1/accounts"])
			require.Equal(t, 2, st.Calls["POST /v1/object/product"])
			require.Equal(t, 3, st.Calls["POST /v1/object/product-rate-plan"])
			require.Equal(t, 5, st.Calls["POST /v1/object/product-rate-plan-charge"])
			state := e.Sim.State()
			require.Len(t, state.Accounts, n)
			require.Len(t, state.Subscriptions, n)
			for _, s := range state.Subscriptions {
				require.Equal(t, "Active", s.Status)
			}
			recs, _, err := e.DB.ListSyncRecords(ctx, store.SyncFilter{Limit: 100})
			require.NoError(t, err)
			for _, r := range recs {
				require.Equal(t, store.StateSynced, r.State, "%s %s: %s %s", r.EntityKind, r.EntityID, r.Reason, r.LastErrorMessage)
				require.NotEmpty(t, r.ZuoraID)
			}

			// The hourly reconcile with nothing changed makes no Zuora call.
			e.Sim.ResetStats()
			_, err = e.DB.RecheckAll(ctx, []string{store.EntityPlan, store.EntityCustomer, store.EntitySubscription})
			require.NoError(t, err)
			e.Converge(30 * time.Second)
			require.Zero(t, sum(e.Sim.Stats().Calls), "no calls: %v", e.Sim.Stats().Calls)
		})
	}
}

func sum(m map[string]int) int {
	n := 0
	for k, v := range m {
		if k != "POST /oauth/token" {
			n += v
		}
	}
	return n
}

func TestOrderActions(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, addon()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			sub := subscription("s1", "acme")
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)

			zsub := func() (status string, plans map[string]map[string]string) {
				t.Helper()
				for _, s := range e.Sim.State().Subscriptions {
					if s.SubscriptionNumber == "BS-s1" {
						plans = map[string]map[string]string{}
						for _, rp := range s.RatePlans {
							if rp.LastChangeType == "Remove" {
								continue
							}
							q := map[string]string{}
							for _, c := range rp.Charges {
								q[c.Name] = c.Quantity.String()
							}
							plans[rp.Name] = q
						}
						return s.Status, plans
					}
				}
				t.Fatal("subscription BS-s1 not in Zuora")
				return
			}
			status, plans := zsub()
			require.Equal(t, "Active", status)
			require.Len(t, plans, 1)
			require.Equal(t, "3", plans["Pro Monthly (pro-monthly)"]["Seats"])

			steps := []struct {
				name   string
				edit   func(s *engine.Subscription)
				action string
				check  func(status string, plans map[string]map[string]string)
			}{
				{"quantity", func(s *engine.Subscription) { s.ChargeQuantities["seats"] = dec("7") }, "UpdateProduct",
					func(_ string, p map[string]map[string]string) { require.Equal(t, "7", p["Pro Monthly (pro-monthly)"]["Seats"]) }},
				{"add-on added", func(s *engine.Subscription) {
					s.AddOns = []engine.AddOn{{PlanID: "storage", BillingPeriodID: "storage-monthly", Quantity: dec("2")}}
				}, "AddProduct", func(_ string, p map[string]map[string]string) {
					require.Len(t, p, 2)
					require.Equal(t, "2", p["Extra storage Monthly (storage-monthly)"]["Storage"])
				}},
				{"add-on quantity", func(s *engine.Subscription) { s.AddOns[0].Quantity = dec("5") }, "UpdateProduct",
					func(_ string, p map[string]map[string]string) { require.Equal(t, "5", p["Extra storage Monthly (storage-monthly)"]["Storage"]) }},
				{"add-on removed", func(s *engine.Subscription) { s.AddOns = nil }, "RemoveProduct",
					func(_ string, p map[string]map[string]string) { require.Len(t, p, 1) }},
				{"plan change", func(s *engine.Subscription) { s.BillingPeriodID = "pro-yearly"; s.ChargeQuantities = nil }, "RemoveProduct, AddProduct",
					func(_ string, p map[string]map[string]string) {
						require.Len(t, p, 1)
						require.Contains(t, p, "Pro Annual (pro-yearly)")
					}},
				{"suspend", func(s *engine.Subscription) { s.Status = engine.StatusSuspended; s.SuspendDate = "2026-01-15" }, "Suspend",
					func(st string, _ map[string]map[string]string) { require.Equal(t, "Suspended", st) }},
				{"resume", func(s *engine.Subscription) { s.Status = engine.StatusActive; s.SuspendDate = "" }, "Resume",
					func(st string, _ map[string]map[string]string) { require.Equal(t, "Active", st) }},
				{"renew", func(s *engine.Subscription) { s.RenewalCount = 1 }, "RenewSubscription",
					func(st string, _ map[string]map[string]string) { require.Equal(t, "Active", st) }},
				{"cancel", func(s *engine.Subscription) {
					s.Status = engine.StatusCancelled
					s.CancellationPolicy = engine.CancelSpecificDate
					s.CancellationDate = "2026-06-30"
				}, "CancelSubscription", func(st string, _ map[string]map[string]string) { require.Equal(t, "Cancelled", st) }},
			}
			for _, step := range steps {
				step.edit(&sub)
				must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
				e.Sim.ResetStats()
				e.Converge(20 * time.Second)
				require.Equal(t, 1, e.Sim.Stats().Calls["POST /v1/orders"], "%s: one order: %v", step.name, e.Sim.Stats().Calls)
				rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
				require.NoError(t, err)
				require.Equal(t, store.StateSynced, rec.State, "%s: %s", step.name, rec.LastErrorMessage)
				hist, err := e.DB.SyncHistory(ctx, rec.ID, 1)
				require.NoError(t, err)
				require.Contains(t, hist[0].Detail, step.action, step.name)
				status, plans = zsub()
				step.check(status, plans)
			}
		})
	}
}

func TestCancellationPolicies(t *testing.T) {
	t.Parallel()
	e := enginetest.New(t, store.SQLite, enginetest.Options{})
	ctx := context.Background()
	must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
	must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c")))
	for _, p := range []engine.CancellationPolicy{engine.CancelEndOfCurrentTerm, engine.CancelEndOfLastInvoicePeriod, engine.CancelSpecificDate} {
		s := subscription("s-"+string(p), "c")
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, s))
		e.Converge(10 * time.Second)
		s.Status, s.CancellationPolicy = engine.StatusCancelled, p
		if p == engine.CancelSpecificDate {
			s.CancellationDate = "2026-03-31"
		}
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, s))
	}
	e.Converge(10 * time.Second)
	cancelled := 0
	for _, s := range e.Sim.State().Subscriptions {
		if s.Status == "Cancelled" {
			cancelled++
		}
	}
	require.Equal(t, 3, cancelled)
}
