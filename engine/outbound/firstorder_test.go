package outbound_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

// TestConcurrentFirstSubscriptionsShareOneAccount: two first subscriptions of
// one customer reconciled at once both ask for a new account; Zuora creates
// it for one and refuses the other ("The account number … is already in
// use"). The refused one looks the account up and orders on it: one account,
// both subscriptions, nothing dead.
func TestConcurrentFirstSubscriptionsShareOneAccount(t *testing.T) {
	eachDialect(t, enginetest.Options{Workers: 4}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
		e.Converge(20 * time.Second)
		must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s2", "c1")))
		// Slow orders: both reconciles are in flight together.
		e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLatency, Latency: 300 * time.Millisecond})
		e.Converge(30 * time.Second)
		e.Sim.SetFaults()
		st := e.Sim.State()
		require.Len(t, st.Accounts, 1)
		require.Len(t, st.Subscriptions, 2)
		for _, id := range []string{"s1", "s2"} {
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, id)
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "%s: %s", id, rec.LastErrorMessage)
			require.Equal(t, 0, rec.Attempts)
		}
		rec, err := e.DB.GetSyncRecord(ctx, store.EntityCustomer, "c1")
		require.NoError(t, err)
		require.Equal(t, store.StateSynced, rec.State, rec.LastErrorMessage)
	})
}

// TestRecordPointsAtTheNewVersion: after a change, the record's Zuora id and
// link and the subscription mapping name the version the order made, not the
// one read before it.
func TestRecordPointsAtTheNewVersion(t *testing.T) {
	eachDialect(t, enginetest.Options{}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		sub := syncedSubscription(t, e)
		before, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
		require.NoError(t, err)
		sub.ChargeQuantities = map[string]decimal.Decimal{"seats": dec("7")}
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
		e.Converge(20 * time.Second)
		rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
		require.NoError(t, err)
		zs, err := e.Zuora.GetSubscription(ctx, rec.ZuoraNumber)
		require.NoError(t, err)
		require.NotEqual(t, before.ZuoraID, zs.ID, "the order made a new version")
		require.Equal(t, zs.ID, rec.ZuoraID)
		require.Equal(t, e.Zuora.SubscriptionURL(zs.ID), rec.ZuoraURL)
		m, err := e.Outbound.Mappings().Get(ctx, mappings.Subscription, "s1")
		require.NoError(t, err)
		require.Equal(t, zs.ID, m.ZuoraID)
	})
}

// TestDriftSeesAccountContent: an account edited in Zuora (its name and
// bill-to city) is drifted with the fields named, and the repair pushes the
// account again, although nothing changed locally.
func TestDriftSeesAccountContent(t *testing.T) {
	eachDialect(t, enginetest.Options{}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		syncedSubscription(t, e)
		e.Sim.ResetStats()
		_, err := e.DB.EnqueueDriftChecks(ctx, "2026-02-01T10")
		require.NoError(t, err)
		e.Converge(20 * time.Second)
		require.Zero(t, e.Sim.Stats().Calls["PUT /v1/accounts/{account-key}"], "nothing differs after a sync: %v", e.Sim.Stats().Calls)

		acct := e.Sim.State().Accounts[0]
		require.NoError(t, e.Zuora.UpdateAccount(ctx, acct.ID, zuora.AccountUpdate{Name: "Renamed in Zuora",
			BillToContact: &zuora.Contact{FirstName: "Ada", LastName: "Lovelace", City: "Springfield", Country: "United States"}}))
		_, err = e.DB.EnqueueDriftChecks(ctx, "2026-02-01T11")
		require.NoError(t, err)
		e.Converge(20 * time.Second)
		rec, err := e.DB.GetSyncRecord(ctx, store.EntityCustomer, "c1")
		require.NoError(t, err)
		hist, err := e.DB.SyncHistory(ctx, rec.ID, 10)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(hist), 2)
		require.Equal(t, store.StateSynced, hist[0].Outcome, "the repair")
		require.Equal(t, store.StateDrifted, hist[1].Outcome, "the check")
		require.Contains(t, hist[1].Detail, "name")
		require.Contains(t, hist[1].Detail, "billTo.city")
		acct = e.Sim.State().Accounts[0]
		require.Equal(t, "Customer c1", acct.Name, "repaired")
		require.Equal(t, "Boston", acct.BillTo["city"], "repaired")
	})
}

// TestRefusedCredentialsPauseWork: when Zuora refuses billsync's credentials
// (the client secret was rotated), records are not used up: they wait with
// the reason, attempts untouched, the pool pauses, and once the credentials
// work again everything syncs by itself.
func TestRefusedCredentialsPauseWork(t *testing.T) {
	eachDialect(t, enginetest.Options{}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
		e.Converge(20 * time.Second)

		e.Sim.RotateClientSecret("a-new-secret-billsync-does-not-know")
		must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
		stop := enginetest.Start(e.Pool)
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			if rec.Reason == worker.CredentialsReason {
				require.Equal(t, store.StatePending, rec.State)
				require.Zero(t, rec.Attempts, "no attempt used up")
				require.NotEmpty(t, rec.LastErrorMessage, "Zuora's answer is kept")
				break
			}
			require.True(t, time.Now().Before(deadline), "not paused: %+v", rec)
			time.Sleep(20 * time.Millisecond)
		}
		paused, cause := e.Pool.Paused()
		require.True(t, paused)
		require.NotEmpty(t, cause)
		time.Sleep(time.Second) // several pauses: still nothing dead, nothing used up
		for _, kind := range []string{store.EntitySubscription, store.EntityCustomer} {
			recs, _, err := e.DB.ListSyncRecords(ctx, store.SyncFilter{Kind: kind, Limit: 10})
			require.NoError(t, err)
			for _, r := range recs {
				require.NotEqual(t, store.StateDead, r.State, "%s/%s", kind, r.EntityID)
				require.Zero(t, r.Attempts, "%s/%s", kind, r.EntityID)
			}
		}

		// The operator fixes the credentials: the running pool resumes by itself.
		e.Sim.RotateClientSecret(zuorasim.DefaultClientSecret)
		deadline = time.Now().Add(20 * time.Second)
		for {
			n, err := e.DB.CountUnsettled(ctx)
			require.NoError(t, err)
			if n == 0 {
				break
			}
			require.True(t, time.Now().Before(deadline), "%d records unsettled after the fix", n)
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
		require.NoError(t, err)
		require.Equal(t, store.StateSynced, rec.State)
		paused, _ = e.Pool.Paused()
		require.False(t, paused)
	})
}

// TestCutOffCreateSettlesTheCustomer: the first order (account and
// subscription) reached Zuora but the process died before recording it.
// The next attempt finds the subscription and its account; the account holds
// what billsync would write, so the customer's record settles at once: no
// extra account update, no wait.
func TestCutOffCreateSettlesTheCustomer(t *testing.T) {
	eachDialect(t, enginetest.Options{}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		syncedSubscription(t, e)
		// Forget the outcome, as a crash after the order would have.
		for _, q := range []string{
			"DELETE FROM id_mappings WHERE kind IN ('account', 'subscription', 'subscription_rate_plan', 'subscription_charge')",
			"UPDATE sync_records SET state = 'pending', payload_hash = '', zuora_id = '', zuora_number = '', attempts = 1, next_attempt_at = CURRENT_TIMESTAMP WHERE entity_kind = 'subscription'",
			"UPDATE sync_records SET state = 'pending', payload_hash = '', zuora_id = '', zuora_number = '', next_attempt_at = CURRENT_TIMESTAMP WHERE entity_kind = 'customer'",
		} {
			require.NoError(t, e.DB.Gorm.WithContext(ctx).Exec(q).Error, q)
		}
		e.Sim.ResetStats()
		start := time.Now()
		e.Converge(20 * time.Second)
		calls := e.Sim.Stats().Calls
		require.Zero(t, calls["POST /v1/orders"], "nothing created twice: %v", calls)
		require.Zero(t, calls["PUT /v1/accounts/{account-key}"], "no extra account update: %v", calls)
		require.Less(t, time.Since(start), 10*time.Second, "no dependency wait")
		for _, k := range []string{store.EntityCustomer, store.EntitySubscription} {
			rec, err := e.DB.GetSyncRecord(ctx, k, map[string]string{store.EntityCustomer: "c1", store.EntitySubscription: "s1"}[k])
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "%s: %s", k, rec.LastErrorMessage)
			require.NotEmpty(t, rec.ZuoraID, k)
		}
	})
}

// TestSwitchingBackWaivesTheSetupFee: a one-time charge is billed once per
// subscription: switching back to a plan the subscription had adds it with
// its one-time charge priced at 0.
func TestSwitchingBackWaivesTheSetupFee(t *testing.T) {
	eachDialect(t, enginetest.Options{}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		pro := proPlan()
		pro.BillingPeriods[0].Charges = append(pro.BillingPeriods[0].Charges,
			engine.Charge{ID: "setup", Name: "Setup", Type: engine.ChargeOneTime, Model: engine.ModelFlatFee, Price: dec("99")})
		must[engine.Plan](t)(e.DB.UpsertPlan(ctx, pro))
		basic := engine.Plan{ID: "basic", Kind: engine.KindPlan, Name: "Basic", PricingType: engine.PricingPaid, Currency: "USD",
			BillingPeriods: []engine.BillingPeriod{{ID: "basic-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
				{ID: "basic-base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("9")}}}}}
		must[engine.Plan](t)(e.DB.UpsertPlan(ctx, basic))
		must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
		sub := must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
		e.Converge(20 * time.Second)
		sub.PlanID, sub.BillingPeriodID, sub.ChargeQuantities = "basic", "basic-monthly", nil
		sub = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
		e.Converge(20 * time.Second)
		sub.PlanID, sub.BillingPeriodID, sub.ChargeQuantities = "pro", "pro-monthly", map[string]decimal.Decimal{"seats": dec("3")}
		must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
		e.Converge(20 * time.Second)

		var setup []string // the setup charge's price in each pro rate plan, in order
		for _, rp := range e.Sim.State().Subscriptions[0].RatePlans {
			for _, ch := range rp.Charges {
				if ch.Name == "Setup" {
					setup = append(setup, rp.LastChangeType+":"+string(ch.Price))
				}
			}
		}
		require.Len(t, setup, 2, "%v", setup)
		require.Contains(t, setup[0], ":99", "billed when first subscribed: %v", setup)
		require.NotContains(t, setup[0], "Remove:0", "%v", setup)
		p := decimal.RequireFromString(setup[1][strings.Index(setup[1], ":")+1:])
		require.True(t, p.IsZero(), "not billed again on switching back: %v", setup)
	})
}

// TestDriftSeesProductContent: a product renamed in Zuora is drifted with the
// field named and the repair writes billsync's name back.
func TestDriftSeesProductContent(t *testing.T) {
	eachDialect(t, enginetest.Options{}, func(t *testing.T, e *enginetest.Env) {
		ctx := context.Background()
		p := must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
		e.Converge(20 * time.Second)
		prod := e.Sim.State().Products[0]
		want := e.Outbound.CatalogPayloads(p).Product
		renamed := want
		renamed.Name = "Renamed in Zuora"
		require.NoError(t, e.Zuora.UpdateProduct(ctx, prod.ID, renamed))
		_, err := e.DB.EnqueueDriftChecks(ctx, "2026-02-01T10")
		require.NoError(t, err)
		e.Converge(20 * time.Second)
		rec, err := e.DB.GetSyncRecord(ctx, store.EntityPlan, "pro")
		require.NoError(t, err)
		hist, err := e.DB.SyncHistory(ctx, rec.ID, 10)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(hist), 2)
		require.Equal(t, store.StateDrifted, hist[1].Outcome)
		require.Contains(t, hist[1].Detail, "(name)")
		require.Equal(t, "Pro", e.Sim.State().Products[0].Name, "repaired")
	})
}

// eachDialect runs fn as a parallel subtest per database, each with a fresh Env.
func eachDialect(t *testing.T, o enginetest.Options, fn func(t *testing.T, e *enginetest.Env)) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, enginetest.New(t, d, o))
		})
	}
}

// syncedSubscription puts the pro plan, customer c1 and its subscription s1
// into Zuora and returns the subscription as stored.
func syncedSubscription(t *testing.T, e *enginetest.Env) engine.Subscription {
	t.Helper()
	ctx := context.Background()
	must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
	must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
	sub := must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
	e.Converge(20 * time.Second)
	return sub
}
