package outbound_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/outbound"
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
					func(_ string, p map[string]map[string]string) {
						require.Equal(t, "7", p["Pro Monthly (pro-monthly)"]["Seats"])
					}},
				{"add-on added", func(s *engine.Subscription) {
					s.AddOns = []engine.AddOn{{PlanID: "storage", BillingPeriodID: "storage-monthly", Quantity: dec("2")}}
				}, "AddProduct", func(_ string, p map[string]map[string]string) {
					require.Len(t, p, 2)
					require.Equal(t, "2", p["Extra storage Monthly (storage-monthly)"]["Storage"])
				}},
				{"add-on quantity", func(s *engine.Subscription) { s.AddOns[0].Quantity = dec("5") }, "UpdateProduct",
					func(_ string, p map[string]map[string]string) {
						require.Equal(t, "5", p["Extra storage Monthly (storage-monthly)"]["Storage"])
					}},
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

func TestSkipRulesAndSwitches(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			free := engine.Plan{ID: "free", Kind: engine.KindPlan, Name: "Free", PricingType: engine.PricingFree, Currency: "USD",
				BillingPeriods: []engine.BillingPeriod{{ID: "free-monthly", Period: engine.PeriodMonth}}}
			custom := free
			custom.ID, custom.Name, custom.PricingType = "enterprise", "Enterprise", engine.PricingCustom
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, free))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, custom))

			lonely := customer("lonely")
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, lonely))
			freeloader := customer("freeloader")
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, freeloader))
			fs := subscription("free-sub", "freeloader")
			fs.PlanID, fs.BillingPeriodID, fs.ChargeQuantities = "free", "free-monthly", nil
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, fs))
			es := subscription("custom-sub", "freeloader")
			es.PlanID, es.BillingPeriodID, es.ChargeQuantities = "enterprise", "free-monthly", nil
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, es))
			trialist := customer("trialist")
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, trialist))
			ts := subscription("trial-sub", "trialist")
			ts.Status = engine.StatusTrial
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, ts))
			nobill := customer("nobill")
			nobill.BillTo = nil
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, nobill))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("nobill-sub", "nobill")))
			nopm := customer("nopm")
			nopm.HasPaymentMethod = false
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, nopm))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("nopm-sub", "nopm")))
			e.Converge(20 * time.Second)

			want := map[string]string{
				"customer/lonely":         outbound.ReasonNoSubscription,
				"customer/freeloader":     outbound.ReasonNoBillableSubscription,
				"subscription/free-sub":   outbound.ReasonFreePlan,
				"subscription/custom-sub": outbound.ReasonCustomPlan,
				"customer/trialist":       outbound.ReasonNoBillableSubscription,
				"subscription/trial-sub":  outbound.ReasonTrial,
				"customer/nobill":         outbound.ReasonNoBillingInfo,
				"subscription/nobill-sub": outbound.ReasonNoBillingInfo,
				"customer/nopm":           outbound.ReasonNoPaymentMethod,
				"subscription/nopm-sub":   outbound.ReasonNoPaymentMethod,
			}
			for k, reason := range want {
				kind, id, _ := strings.Cut(k, "/")
				rec, err := e.DB.GetSyncRecord(ctx, kind, id)
				require.NoError(t, err, k)
				require.Equal(t, store.StateSkipped, rec.State, k)
				require.Equal(t, reason, rec.Reason, k)
			}
			require.Empty(t, e.Sim.State().Accounts, "nothing billable reached Zuora")

			// Fixing the customer's billing info re-evaluates its subscription, which creates the account.
			nopm.HasPaymentMethod = true
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, nopm))
			// The trial converts.
			ts.Status = engine.StatusActive
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, ts))
			e.Converge(20 * time.Second)
			for _, k := range []string{"customer/nopm", "subscription/nopm-sub", "customer/trialist", "subscription/trial-sub"} {
				kind, id, _ := strings.Cut(k, "/")
				rec, err := e.DB.GetSyncRecord(ctx, kind, id)
				require.NoError(t, err)
				require.Equal(t, store.StateSynced, rec.State, "%s: %s %s", k, rec.Reason, rec.LastErrorMessage)
			}
			require.Len(t, e.Sim.State().Accounts, 2)

			// Switches: with subscriptions off, a new subscription is skipped with the reason; on again, it syncs.
			e.Switches[outbound.SwitchSubscriptions] = false
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("later", "nopm")))
			e.Converge(10 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "later")
			require.NoError(t, err)
			require.Equal(t, outbound.ReasonSwitchedOffSubscriptions, rec.Reason)
			// Turned back on, what it held back is due at once (no edit, no hourly reconcile).
			e.Switches[outbound.SwitchSubscriptions] = true
			n, err := e.Outbound.ReviveSwitched(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
			e.Converge(10 * time.Second)
			rec, err = e.DB.GetSyncRecord(ctx, store.EntitySubscription, "later")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State)
		})
	}
}

func TestFailedDeadRetry(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
			// Every order fails with a 500 until the fault is lifted: failed with backoff, then dead.
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultHTTP500, Probability: 1})
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
			e.Converge(20 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.Equal(t, store.StateDead, rec.State)
			require.Contains(t, rec.Reason, "gave up after")
			require.NotEmpty(t, rec.LastErrorMessage)
			hist, err := e.DB.SyncHistory(ctx, rec.ID, 100)
			require.NoError(t, err)
			failed := 0
			for _, h := range hist {
				if h.Outcome == store.StateFailed {
					failed++
					require.NotEmpty(t, h.ErrorMessage)
				}
			}
			require.Equal(t, 7, failed, "failed 7 times, then dead on the 8th")
			require.Equal(t, store.StateDead, hist[0].Outcome)

			// A terminal Zuora error (validation) is dead at once, with Zuora's message.
			e.Sim.SetFaults()
			bad := subscription("s2", "c1")
			bad.StartDate = "1990-01-01"
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, bad))

			// Retry brings s1 through now that Zuora answers.
			_, err = e.DB.Retry(ctx, rec.ID)
			require.NoError(t, err)
			e.Converge(20 * time.Second)
			rec, err = e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, rec.LastErrorMessage)
			require.Empty(t, rec.LastErrorMessage)
			bad2, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s2")
			require.NoError(t, err)
			require.Equal(t, store.StateDead, bad2.State, "terminal at once")
			require.Equal(t, 1, bad2.Attempts)
			require.NotEmpty(t, bad2.LastErrorMessage)
			t.Logf("Zuora's message kept as is: %s (code %s, request %s)", bad2.LastErrorMessage, bad2.LastErrorCode, bad2.LastRequestID)
			n := 0
			for _, s := range e.Sim.State().Subscriptions {
				if s.SubscriptionNumber == "BS-s1" {
					n++
				}
			}
			require.Equal(t, 1, n)
		})
	}
}

func TestDriftDetectionAndRepair(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
			e.Converge(20 * time.Second)

			// Someone suspends the subscription in Zuora's UI.
			zc := e.Zuora
			_, err := zc.CreateOrder(ctx, "drift-1", zuora.Order{OrderDate: "2026-02-01", ExistingAccountNumber: "BS-c1",
				Subscriptions: []zuora.OrderSubscription{{SubscriptionNumber: "BS-s1", OrderActions: []zuora.OrderAction{{Type: "Suspend",
					TriggerDates: []zuora.TriggerDate{{Name: "ContractEffective", TriggerDate: "2026-02-01"}}, Suspend: &zuora.Suspend{SuspendPolicy: "Today"}}}}}})
			require.NoError(t, err)

			// The drift job only enqueues; the pool's workers run the checks.
			e.Sim.ResetStats()
			n, err := e.DB.EnqueueDriftChecks(ctx, "2026-02-01T10")
			require.NoError(t, err)
			require.EqualValues(t, 3, n, "plan, customer and subscription are synced")
			n, err = e.DB.EnqueueDriftChecks(ctx, "2026-02-01T10")
			require.NoError(t, err)
			require.Zero(t, n, "unique per period")
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "a queued check leaves the record synced")
			e.Converge(20 * time.Second)
			for _, s := range e.Sim.State().Subscriptions {
				require.Equal(t, "Active", s.Status, "repaired")
			}
			hist, err := e.DB.SyncHistory(ctx, rec.ID, 10)
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(hist), 2)
			require.Equal(t, store.StateSynced, hist[0].Outcome, "the repair")
			require.Equal(t, store.StateDrifted, hist[1].Outcome, "the check")
			require.Contains(t, hist[1].Detail, "Resume")
			calls := e.Sim.Stats().Calls
			require.Equal(t, 1, calls["GET /v1/accounts/{account-key}"], "one read per checked record: %v", calls)
			require.Equal(t, 1, calls["GET /v1/catalog/products/{product-key}"], "%v", calls)

			// Zuora matches now: the next period's checks read and record nothing.
			e.Sim.ResetStats()
			n, err = e.DB.EnqueueDriftChecks(ctx, "2026-02-01T11")
			require.NoError(t, err)
			require.EqualValues(t, 3, n)
			e.Converge(20 * time.Second)
			again, err := e.DB.SyncHistory(ctx, rec.ID, 10)
			require.NoError(t, err)
			require.Equal(t, hist, again, "a matching check leaves no history")
			calls = e.Sim.Stats().Calls
			require.Equal(t, 1, calls["GET /v1/subscriptions/{subscription-key}"], "%v", calls)
			require.Zero(t, calls["POST /v1/orders"], "%v", calls)
			for _, kind := range []string{store.EntityPlan, store.EntityCustomer, store.EntitySubscription} {
				r, err := e.DB.GetSyncRecord(ctx, kind, map[string]string{store.EntityPlan: "pro", store.EntityCustomer: "c1", store.EntitySubscription: "s1"}[kind])
				require.NoError(t, err)
				require.Equal(t, store.StateSynced, r.State, kind)
				require.NotEmpty(t, r.PayloadHash, kind)
			}
		})
	}
}

func TestCustomerEditUpdatesAccount(t *testing.T) {
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
			e.Converge(10 * time.Second)
			acct := e.Sim.State().Accounts[0]
			require.Equal(t, "BS-acme", acct.AccountNumber)
			require.Equal(t, "acme", acct.CustomFields["BillsyncId__c"], "billsync's id on the account")

			e.Sim.ResetStats()
			c.Name = "Acme Renamed"
			c.BillTo.City = "Cambridge"
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, c))
			e.Converge(10 * time.Second)
			calls := e.Sim.Stats().Calls
			require.Equal(t, 1, calls["PUT /v1/accounts/{account-key}"], "%v", calls)
			require.Equal(t, 1, sum(calls), "only the account update: %v", calls)
			acct = e.Sim.State().Accounts[0]
			require.Equal(t, "Acme Renamed", acct.Name)
			require.Equal(t, "Cambridge", acct.BillTo["city"])
			require.Equal(t, "Cambridge", acct.SoldTo["city"], "the sold-to contact (which drives tax) follows the edit")
		})
	}
}
