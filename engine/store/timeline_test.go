package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestTimeline: an entity's changes, each attempt as a push and its answer,
// and the callouts about its Zuora objects, newest first; another entity's
// events stay out.
func TestTimeline(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return clock })
		tick := func() { clock = clock.Add(time.Minute) }
		_, _, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		tick()
		_, _, err = db.UpsertCustomer(ctx, customer("c1"))
		require.NoError(t, err)
		_, _, err = db.UpsertCustomer(ctx, customer("c2"))
		require.NoError(t, err)
		tick()
		settle(t, db, store.EntityCustomer, "c1", store.Outcome{State: store.StateFailed, ErrorCode: "53100020", ErrorMessage: "invalid value",
			RequestID: "req-1", SyncID: "s1", StartedAt: clock.Add(-time.Second), Calls: 1, CountAttempt: true, NextAttempt: clock})
		tick()
		c := customer("c1")
		c.Name = "Renamed"
		_, _, err = db.UpsertCustomer(ctx, c)
		require.NoError(t, err)
		tick()
		settle(t, db, store.EntityCustomer, "c1", store.Outcome{State: store.StateSynced, ZuoraID: "acc-1", ZuoraNumber: "A0001",
			RequestID: "req-2", SyncID: "s2", StartedAt: clock.Add(-time.Second), Detail: "created account A0001", Calls: 2})
		tick()
		_, _, err = db.AcceptInbox(ctx, store.InboxEntry{Event: "account.created", ObjectID: "acc-1", NotificationID: "n1", Source: "callout", State: store.StatePending, NextAttemptAt: clock})
		require.NoError(t, err)
		_, _, err = db.AcceptInbox(ctx, store.InboxEntry{Event: "account.created", ObjectID: "acc-2", NotificationID: "n2", Source: "callout", State: store.StatePending, NextAttemptAt: clock})
		require.NoError(t, err)

		ev, err := db.Timeline(ctx, store.TimelineQuery{Kind: store.EntityCustomer, ID: "c1", ZuoraKeys: []string{"acc-1", "A0001"}})
		require.NoError(t, err)
		var got []string
		for _, e := range ev {
			got = append(got, e.Kind+":"+e.Outcome)
		}
		require.Equal(t, []string{"callout:pending", "answer:synced", "push:", "change:changed", "answer:failed", "push:", "change:created"}, got)
		require.Equal(t, "account.created", ev[0].Event)
		require.Equal(t, "acc-1", ev[0].ObjectID)
		require.Positive(t, ev[0].InboxID)
		require.Equal(t, "req-2", ev[1].RequestID)
		require.Equal(t, "created account A0001", ev[1].Detail)
		require.Equal(t, 2, ev[1].ZuoraCalls)
		require.Equal(t, "s2", ev[2].SyncID)
		require.Positive(t, ev[2].RecordID)
		require.Equal(t, 2, ev[3].Revision)
		require.Equal(t, "53100020", ev[4].ErrorCode)
		require.Equal(t, "invalid value", ev[4].ErrorMessage)
		require.Equal(t, 1, ev[6].Revision)
		for i := 1; i < len(ev); i++ {
			require.False(t, ev[i].At.After(ev[i-1].At), "newest first")
		}

		// The limit keeps the newest.
		ev, err = db.Timeline(ctx, store.TimelineQuery{Kind: store.EntityCustomer, ID: "c1", Limit: 2})
		require.NoError(t, err)
		require.Len(t, ev, 2)
		require.Equal(t, store.TimelineAnswer, ev[0].Kind)

		// An archive is a change too.
		_, err = db.ArchivePlan(ctx, "pro")
		require.NoError(t, err)
		ev, err = db.Timeline(ctx, store.TimelineQuery{Kind: store.EntityPlan, ID: "pro"})
		require.NoError(t, err)
		require.Len(t, ev, 2)
		require.Equal(t, store.ChangeArchived, ev[0].Outcome)
		require.Equal(t, 2, ev[0].Revision)
	})
}
