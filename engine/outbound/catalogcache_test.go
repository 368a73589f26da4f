package outbound_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
)

// TestCatalogCacheSeesEveryChange: the plans and catalog mappings that
// subscription reconciles keep between reconciles are read again after any
// change to them: through the store, by a statement no store method wrote
// (another replica, an operator's SQL), and to a catalog mapping. A stale
// entry would put an old price or a deleted rate plan into an order.
func TestCatalogCacheSeesEveryChange(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
			sub := must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
			e.Converge(20 * time.Second)

			price := func() string {
				t.Helper()
				plans, err := e.Outbound.SubscriptionPlans(ctx, sub)
				require.NoError(t, err)
				c, _, ok := plans["pro"].Charge("seats")
				require.True(t, ok)
				return c.Price.String()
			}
			gen := func() int64 {
				g, err := e.DB.CatalogGeneration(ctx)
				require.NoError(t, err)
				return g
			}
			require.Equal(t, "10", price())
			g0 := gen()
			require.Equal(t, "10", price(), "a read changes nothing")
			require.Equal(t, g0, gen(), "reads do not move the generation")

			// Through the store.
			p := proPlan()
			p.BillingPeriods[0].Charges[1].Price = dec("12")
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
			require.Greater(t, gen(), g0)
			require.Equal(t, "12", price())

			// A statement of no store method.
			g1 := gen()
			require.NoError(t, e.DB.Gorm.Exec(`UPDATE charges SET price = '15' WHERE plan_id = 'pro' AND id = 'seats'`).Error)
			require.Greater(t, gen(), g1)
			require.Equal(t, "15", price())

			// Subscriptions reconciled now fill the cache with the rate
			// plan's mapping and its charges' (the second one once the
			// plan's own re-sync after the price changes has settled).
			for _, id := range []string{"3", "4"} {
				must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c"+id)))
				must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s"+id, "c"+id)))
				e.Converge(20 * time.Second)
			}

			// A subscription mapping is no catalog change; a rate plan's is.
			g2 := gen()
			require.NoError(t, e.DB.Mappings().Put(ctx, mappings.Mapping{Kind: mappings.Subscription, LocalID: "other", ZuoraID: "z-other"}))
			require.Equal(t, g2, gen())
			require.NoError(t, e.DB.Mappings().Delete(ctx, mappings.RatePlan, mappings.Key("pro", "pro-monthly")))
			require.Greater(t, gen(), g2)

			// The next subscription's reconcile must not use the deleted
			// rate plan's cached mapping: it waits for the plan instead.
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c2")))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s2", "c2")))
			stop := enginetest.Start(e.Pool)
			defer stop()
			require.Eventually(t, func() bool {
				rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s2")
				return err == nil && rec.Attempts == 0 && rec.State == store.StatePending && rec.Reason == "waiting for plan pro to be synced to Zuora"
			}, 10*time.Second, 10*time.Millisecond)
		})
	}
}
