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
			c.BillTo.Address1, c.BillTo.Address2 = "1 Main St", "Suite 2"
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, c))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "acme")))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntityCustomer, "acme")
			acct := e.Sim.State().Accounts[0].AccountNumber
			a, err := e.Zuora.GetAccount(ctx, acct)
			require.NoError(t, err)
			require.Equal(t, "02110", a.BillToContact.ZipCode)
			// Every field billsync sends is kept, on both contacts.
			for _, got := range []*zuora.Contact{a.BillToContact, a.SoldToContact} {
				require.NotNil(t, got)
				require.Equal(t, []string{"Ada", "Lovelace", "1 Main St", "Suite 2", "Boston", "MA", "02110", "United States", "acme@example.test"},
					[]string{got.FirstName, got.LastName, got.Address1, got.Address2, got.City, got.State, got.ZipCode, got.Country, got.WorkEmail})
			}

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
			require.Equal(t, suspendOn, e.Sim.State().Subscriptions[0].SuspendDate)

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

// TestFutureSuspendAndResumeFollowOrderActions: Zuora's status follows the
// latest order action (Suspended from a future-dated Suspend order on,
// Active from a future-dated Resume order on) and the dates are in
// statusHistory; the simulator shows no scheduledSuspendDate/
// scheduledResumeDate for them (TermsAndConditions scheduled actions).
// billsync's diff reads status and history: a pending suspension, a moved
// one and a scheduled resume each go out once, and a recheck sends nothing.
func TestFutureSuspendAndResumeFollowOrderActions(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			day := func(n int) string { return time.Now().UTC().AddDate(0, 0, n).Format("2006-01-02") }
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			sub := subscription("s1", "acme")
			sub.StartDate = day(-30)
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			num := e.Sim.State().Subscriptions[0].SubscriptionNumber
			zs := func() zuora.Subscription {
				z, err := e.Zuora.GetSubscription(ctx, num)
				require.NoError(t, err)
				return z
			}
			quiet := func() {
				t.Helper()
				e.Sim.ResetStats()
				_, err := e.DB.RecheckAll(ctx, []string{store.EntitySubscription})
				require.NoError(t, err)
				e.Converge(20 * time.Second)
				requireSynced(t, e, store.EntitySubscription, "s1")
				require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"], "Zuora already matches")
			}
			lastDetail := func() string {
				rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
				require.NoError(t, err)
				hist, err := e.DB.SyncHistory(ctx, rec.ID, 1)
				require.NoError(t, err)
				return hist[0].Detail
			}

			// A suspension 10 days ahead: Suspended at once in Zuora.
			sub.Status, sub.SuspendDate = engine.StatusSuspended, day(10)
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			z := zs()
			require.Equal(t, "Suspended", z.Status, "the latest order action was Suspend")
			on, off := z.Suspension()
			require.Equal(t, day(10), on)
			require.Empty(t, off)
			quiet()

			// Moved to 12 days ahead: taken back on its own date, ordered anew.
			sub.SuspendDate = day(12)
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			require.Contains(t, lastDetail(), "Resume, Suspend")
			z = zs()
			require.Equal(t, "Suspended", z.Status)
			on, off = z.Suspension()
			require.Equal(t, day(12), on)
			require.Empty(t, off)
			quiet()

			// A resume 20 days ahead: Active at once, suspended from day 12 to 20.
			sub.Status, sub.ResumeDate = engine.StatusActive, day(20)
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			require.Contains(t, lastDetail(), "Resume")
			z = zs()
			require.Equal(t, "Active", z.Status, "the latest order action was Resume")
			on, off = z.Suspension()
			require.Equal(t, day(12), on)
			require.Equal(t, day(20), off)
			quiet()

			e.Sim.AdvanceClock(25 * 24 * time.Hour)
			require.NoError(t, e.Zuora.TestConnection(ctx))
			require.Equal(t, "Active", zs().Status)
		})
	}
}

// TestBadChargeDoesNotHoldBackOthers: Zuora refuses an order as a whole.
// An admin changed the add-on's charge to flat fee in Zuora behind
// billsync's back, so adding it with recurringPerUnit is refused; the
// seat change of the same subscription still goes out (each change alone
// after the refusal), the add-on is held with Zuora's reason on the record,
// and once the charge is fixed a recheck adds it without sending the seat
// change again.
func TestBadChargeDoesNotHoldBackOthers(t *testing.T) {
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
			requireSynced(t, e, store.EntitySubscription, "s1")
			var storageID, storagePlan string
			for _, ch := range e.Sim.State().Charges {
				if ch.Name == "Storage" {
					storageID, storagePlan = ch.ID, ch.RatePlanID
				}
			}
			require.NotEmpty(t, storageID)
			setModel := func(model string) {
				ch, err := e.Zuora.GetProductRatePlanCharge(ctx, storageID)
				require.NoError(t, err)
				ch.ProductRatePlanID, ch.ChargeModel = storagePlan, model
				ch.ProductRatePlanChargeTierData = &zuora.ChargeTierData{ProductRatePlanChargeTier: []zuora.ChargeTier{{Currency: "USD", Price: zuora.NumberFromDecimal(dec("5"))}}}
				require.NoError(t, e.Zuora.UpdateProductRatePlanCharge(ctx, storageID, ch))
			}
			setModel("Flat Fee Pricing")

			sub.ChargeQuantities = map[string]decimal.Decimal{"seats": dec("5")}
			sub.AddOns = []engine.AddOn{{PlanID: "storage", BillingPeriodID: "storage-monthly", Quantity: dec("2")}}
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.NotEqual(t, store.StateSynced, rec.State)
			require.Contains(t, rec.LastErrorMessage, "AddProduct of rate plan")
			require.Contains(t, rec.LastErrorMessage, "does not fit", "Zuora's reason is on the record")
			plans := func() map[string]string {
				out := map[string]string{}
				for _, rp := range e.Sim.State().Subscriptions[0].RatePlans {
					for _, ch := range rp.Charges {
						out[ch.Name] = ch.Quantity.String()
					}
				}
				return out
			}
			require.Equal(t, "5", plans()["Seats"], "the seat change went out")
			require.NotContains(t, plans(), "Storage")

			setModel("Per Unit Pricing")
			_, err = e.DB.Retry(ctx, rec.ID) // the operator's "Retry" after fixing the charge
			require.NoError(t, err)
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			require.Equal(t, map[string]string{"Base fee": "", "Seats": "5", "Storage": "2", "API calls": "0"}, plans())
			hist, err := e.DB.SyncHistory(ctx, rec.ID, 1)
			require.NoError(t, err)
			require.Contains(t, hist[0].Detail, "AddProduct")
			require.NotContains(t, hist[0].Detail, "UpdateProduct", "the seat change is not sent twice")
		})
	}
}

// TestCustomFieldOnlyWhereTenantDefinesIt: a tenant without billsync's id
// field on RatePlan gets no order at all (the write would carry it): the
// subscription is skipped with a reason naming the object and the field,
// before any write. Once the field is created and the tenant checked, the
// re-check syncs it.
func TestCustomFieldOnlyWhereTenantDefinesIt(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			ten := e.Sim.Tenant()
			full := ten.CustomFields["RatePlan"]
			ten.CustomFields["RatePlan"] = nil
			require.NoError(t, e.Sim.SetTenant(ten))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("acme")))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "acme")))
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntityPlan, "pro")
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			require.Equal(t, store.StateSkipped, rec.State)
			require.Contains(t, rec.Reason, "lacks the custom field BillsyncId__c (text, 255) on RatePlan")
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"], "nothing was written")

			ten.CustomFields["RatePlan"] = full
			require.NoError(t, e.Sim.SetTenant(ten))
			need, err := e.Outbound.TenantNeeds(ctx)
			require.NoError(t, err)
			rep, err := e.Zuora.CheckTenant(ctx, need)
			require.NoError(t, err)
			require.True(t, rep.OK, "%+v", rep.Missing)
			_, err = e.DB.RecheckAll(ctx, []string{store.EntitySubscription})
			require.NoError(t, err)
			e.Converge(20 * time.Second)
			requireSynced(t, e, store.EntitySubscription, "s1")
			requireSynced(t, e, store.EntityCustomer, "acme")
		})
	}
}
