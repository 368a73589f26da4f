package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestInboxQueue: the inbox's queue methods, as the sync queue's.
func TestInboxQueue(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := store.InboxEntry{Event: "account_created", ObjectID: "A1", NotificationID: "n1", Source: "callout", Payload: "{}"}
		id, dup, err := db.AcceptInbox(ctx, e)
		require.NoError(t, err)
		require.False(t, dup)
		again, dup, err := db.AcceptInbox(ctx, e)
		require.NoError(t, err)
		require.True(t, dup, "same semantic key")
		require.Equal(t, id, again)
		e2 := e
		e2.NotificationID = "n2"
		_, dup, err = db.AcceptInbox(ctx, e2)
		require.NoError(t, err)
		require.False(t, dup)

		got, err := db.ClaimInbox(ctx, "a", 10, 80*time.Millisecond)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, id, got[0].ID, "due order")
		require.Equal(t, 2, got[0].Deliveries)
		require.NotEmpty(t, got[0].LeaseToken)
		none, err := db.ClaimInbox(ctx, "b", 10, time.Minute)
		require.NoError(t, err)
		require.Empty(t, none, "held")

		held, err := db.HeartbeatInbox(ctx, "a", []store.Lease{{RecordID: got[0].ID, Token: got[0].LeaseToken}}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, map[int64]bool{got[0].ID: true}, held)
		time.Sleep(120 * time.Millisecond)
		// The second entry's lease lapsed: another holder takes it over, and
		// the first holder's outcome is refused.
		taken, err := db.ClaimInbox(ctx, "b", 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, taken, 1)
		require.Equal(t, got[1].ID, taken[0].ID)
		require.ErrorIs(t, db.FinishInbox(ctx, got[1], "a", store.InboxOutcome{State: store.InboxDone, Result: "stale"}), store.ErrLeaseLost)
		require.NoError(t, db.FinishInbox(ctx, taken[0], "b", store.InboxOutcome{State: store.StateFailed, Error: "429", Attempts: 1,
			NextAttempt: time.Now().Add(time.Hour)}))
		require.NoError(t, db.FinishInbox(ctx, got[0], "a", store.InboxOutcome{State: store.InboxDone, Result: "customer created"}))

		first, err := db.GetInbox(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.InboxDone, first.State)
		require.Equal(t, "customer created", first.Result)
		require.NotNil(t, first.ProcessedAt)
		second, err := db.GetInbox(ctx, taken[0].ID)
		require.NoError(t, err)
		require.Equal(t, store.StateFailed, second.State)
		require.Equal(t, 1, second.Attempts)
		require.Equal(t, "429", second.LastError)
		counts, err := db.InboxCounts(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{store.InboxDone: 1, store.StateFailed: 1}, counts)

		ok, err := db.RetryInbox(ctx, second.ID)
		require.NoError(t, err)
		require.True(t, ok)
		c, err := db.ClaimInbox(ctx, "c", 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, c, 1, "retried: due now")
		ok, err = db.RetryInbox(ctx, second.ID)
		require.NoError(t, err)
		require.False(t, ok, "in flight: left alone")
		require.NoError(t, db.ReleaseInbox(ctx, "c"))
		r, err := db.GetInbox(ctx, second.ID)
		require.NoError(t, err)
		require.Equal(t, store.StatePending, r.State)

		page, next, err := db.ListInbox(ctx, store.InboxFilter{Limit: 1})
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, id, page[0].ID)
		require.Equal(t, id, next)
		newest, _, err := db.ListInbox(ctx, store.InboxFilter{NewestFirst: true})
		require.NoError(t, err)
		require.Equal(t, []int64{second.ID, id}, []int64{newest[0].ID, newest[1].ID})
		n, err := db.PruneInbox(ctx, time.Now().Add(time.Second))
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "done entries only")
		_, err = db.GetInbox(ctx, id)
		require.Error(t, err)
	})
}

func TestGrants(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		g := func(plan, sub, acct string) store.Grant {
			return store.Grant{CustomerID: "c1", PlanID: plan, SubscriptionNumber: sub, ZuoraAccountID: acct, Status: "Active", StartsOn: "2026-01-01", UpdatedAt: now}
		}
		require.NoError(t, db.ReplaceGrants(ctx, "c1", "S1", []store.Grant{g("pro", "S1", "A1"), g("storage", "S1", "A1")}))
		require.NoError(t, db.ReplaceGrants(ctx, "c1", "S2", []store.Grant{g("pro", "S2", "A2")}))
		got, err := db.GrantsOf(ctx, "c1")
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Equal(t, []string{"pro/S1", "pro/S2", "storage/S1"}, []string{got[0].PlanID + "/" + got[0].SubscriptionNumber,
			got[1].PlanID + "/" + got[1].SubscriptionNumber, got[2].PlanID + "/" + got[2].SubscriptionNumber})
		require.True(t, now.Equal(got[0].UpdatedAt))

		// Replacing one subscription's grants leaves the others.
		ended := g("pro", "S1", "A1")
		ended.EndsOn, ended.Reason = "2026-06-01", "cancelled"
		require.NoError(t, db.ReplaceGrants(ctx, "c1", "S1", []store.Grant{ended}))
		got, err = db.GrantsOf(ctx, "c1")
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, "2026-06-01", got[0].EndsOn)

		require.NoError(t, db.DeleteGrantsOfAccount(ctx, "c1", "A2"))
		got, err = db.GrantsOf(ctx, "c1")
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "A1", got[0].ZuoraAccountID)
	})
}
