package store_test

import (
	"context"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestScheduledChange: set, replace, keep on an ordinary write, refuse bad
// changes (nothing written), apply once by Seq, drop on cancellation.
func TestScheduledChange(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, _, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		_, _, err = db.UpsertCustomer(ctx, customer("c1"))
		require.NoError(t, err)
		sub := engine.Subscription{ID: "s1", CustomerID: "c1", PlanID: "pro", BillingPeriodID: "pro-monthly",
			ChargeQuantities: map[string]decimal.Decimal{"seats": dec("5")}, Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12}
		_, _, err = db.UpsertSubscription(ctx, sub)
		require.NoError(t, err)
		change := func(seats string) *engine.ScheduledChange {
			return &engine.ScheduledChange{Timing: engine.ChangeAtPeriodEnd, Date: "2026-06-01", PlanID: "pro", BillingPeriodID: "pro-monthly",
				ChargeQuantities: map[string]decimal.Decimal{"seats": dec(seats)}}
		}

		for name, bad := range map[string]*engine.ScheduledChange{
			"the current state": change("5"),
			"unknown plan":      {Timing: engine.ChangeOnDate, Date: "2026-06-01", PlanID: "nope", BillingPeriodID: "x"},
			"after the term":    {Timing: engine.ChangeOnDate, Date: "2027-06-01", PlanID: "pro", BillingPeriodID: "pro-yearly"},
			"unknown period":    {Timing: engine.ChangeOnDate, Date: "2026-06-01", PlanID: "pro", BillingPeriodID: "pro-weekly"},
		} {
			_, _, err := db.SetScheduledChange(ctx, "s1", bad)
			var ve *engine.ValidationError
			require.ErrorAs(t, err, &ve, name)
		}
		cur, err := db.GetSubscription(ctx, "s1")
		require.NoError(t, err)
		require.Nil(t, cur.Scheduled)
		require.Equal(t, 1, cur.Revision, "refused changes write nothing")

		s, _, err := db.SetScheduledChange(ctx, "s1", change("3"))
		require.NoError(t, err)
		require.Equal(t, 2, s.Revision)
		require.Equal(t, 2, s.Scheduled.Seq)
		s, _, err = db.SetScheduledChange(ctx, "s1", change("2"))
		require.NoError(t, err)
		require.Equal(t, 3, s.Scheduled.Seq, "a replaced change gets a new Seq")

		// An ordinary write (the PUT body has no scheduledChange) keeps it.
		edit := sub
		edit.AutoRenew = true
		s, _, err = db.UpsertSubscription(ctx, edit)
		require.NoError(t, err)
		require.NotNil(t, s.Scheduled)
		require.Equal(t, 3, s.Scheduled.Seq)

		_, applied, err := db.ApplyScheduledChange(ctx, "s1", 2)
		require.NoError(t, err)
		require.False(t, applied, "an old Seq applies nothing")
		s, applied, err = db.ApplyScheduledChange(ctx, "s1", 3)
		require.NoError(t, err)
		require.True(t, applied)
		require.Nil(t, s.Scheduled)
		require.True(t, s.ChargeQuantities["seats"].Equal(dec("2")))
		rev := s.Revision
		s, applied, err = db.ApplyScheduledChange(ctx, "s1", 3)
		require.NoError(t, err)
		require.False(t, applied, "once")
		require.Equal(t, rev, s.Revision)

		// Cancelling the subscription drops a pending change.
		_, _, err = db.SetScheduledChange(ctx, "s1", change("1"))
		require.NoError(t, err)
		cancel := s
		cancel.Status, cancel.CancellationPolicy = engine.StatusCancelled, engine.CancelEndOfCurrentTerm
		s, _, err = db.UpsertSubscription(ctx, cancel)
		require.NoError(t, err)
		require.Nil(t, s.Scheduled)
		_, _, err = db.SetScheduledChange(ctx, "s1", change("1"))
		require.Error(t, err, "only an active subscription")
		_, _, err = db.SetScheduledChange(ctx, "nope", change("1"))
		require.ErrorIs(t, err, engine.ErrNotFound)
	})
}
