package outbound_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestRecheckBulk: the hourly re-check leaves unchanged records alone (no
// reconcile, no Zuora call, no history), makes due exactly the records whose
// desired payload differs from what was pushed and every skipped record, and
// the workers then repair what differs.
func TestRecheckBulk(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			testRecheckBulk(t, d)
		})
	}
}

func testRecheckBulk(t *testing.T, d store.Dialect) {
	{
		e := enginetest.New(t, d, enginetest.Options{})
		ctx := context.Background()
		must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
		const n = 6
		for i := range n {
			c := fmt.Sprintf("c%02d", i)
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer(c)))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s"+c, c)))
		}
		must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("lonely"))) // no subscription: skipped
		e.Converge(30 * time.Second)
		lonely, err := e.DB.GetSyncRecord(ctx, store.EntityCustomer, "lonely")
		require.NoError(t, err)
		require.Equal(t, store.StateSkipped, lonely.State)

		e.Sim.ResetStats()
		rep, err := e.Outbound.Recheck(ctx)
		require.NoError(t, err)
		require.Equal(t, outbound.RecheckReport{Checked: 1 + 2*n + 1, Unchanged: 1 + 2*n, Due: 1}, rep)
		sr, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "sc00")
		require.NoError(t, err)
		require.Equal(t, store.StateSynced, sr.State)
		hist, err := e.DB.SyncHistory(ctx, sr.ID, 10)
		require.NoError(t, err)
		before := len(hist)
		e.Converge(10 * time.Second)
		require.Empty(t, e.Sim.Stats().Calls, "a quiet hour makes no Zuora call")
		hist, err = e.DB.SyncHistory(ctx, sr.ID, 10)
		require.NoError(t, err)
		require.Len(t, hist, before, "unchanged records are not reconciled")

		// What was pushed no longer matches (as after a lost write): only that
		// subscription and that customer are made due, and repaired.
		require.NoError(t, e.DB.Gorm.Exec(`UPDATE sync_records SET payload_hash = 'stale' WHERE entity_kind = ? AND entity_id IN ?`,
			store.EntitySubscription, []string{"sc01"}).Error)
		require.NoError(t, e.DB.Gorm.Exec(`UPDATE id_mappings SET payload_hash = 'stale' WHERE kind = 'account' AND parent_id = ?`, "c02").Error)
		rep, err = e.Outbound.Recheck(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, rep.Due, "sc01, c02 and the skipped customer")
		for _, k := range [][2]string{{store.EntitySubscription, "sc01"}, {store.EntityCustomer, "c02"}, {store.EntityCustomer, "lonely"}} {
			r, err := e.DB.GetSyncRecord(ctx, k[0], k[1])
			require.NoError(t, err)
			require.Equal(t, store.StatePending, r.State, k)
		}
		e.Converge(10 * time.Second)
		st := e.Sim.Stats().Calls
		require.Equal(t, 1, st["PUT /v1/accounts/{account-key}"], "the customer's account is pushed again")
		require.Equal(t, 1, st["GET /v1/subscriptions/{subscription-key}"], "the subscription is compared with Zuora")
		rep, err = e.Outbound.Recheck(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, rep.Due, "only the skipped customer is due again")

		// A switched-off kind is always reconciled (it records the skip).
		e.Switches[outbound.SwitchSubscriptions] = false
		rep, err = e.Outbound.Recheck(ctx)
		require.NoError(t, err)
		require.Equal(t, n, rep.Due, "every subscription (the skipped customer is still pending from the last re-check)")
	}
}
