package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

// TestUsageStrandedByPlanChangeNeedsAPerson: events accepted on a charge that
// leaves the subscription before the subscription first reaches Zuora can
// never be uploaded on that charge. They are held with the reason (counted,
// shown, logged), never left "pending" for ever; the subscription's manual
// sync looks at them again, and once the charge is back they are sent, once.
func TestUsageStrandedByPlanChangeNeedsAPerson(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1})
			l := f.ledger()
			ctx := context.Background()
			h := T0.Add(2 * time.Hour)
			res := ingest(t, l, event("x1", "s000", "api", "7", h), event("x2", "s000", "api", "5", h.Add(time.Minute)))
			require.Equal(t, usage.Accepted, res[0].Status)

			// The subscription moves to another plan before its first sync.
			sub, err := f.e.DB.GetSubscription(ctx, "s000")
			require.NoError(t, err)
			sub.PlanID, sub.BillingPeriodID = "team", "team-monthly"
			_, _, err = f.e.DB.UpsertSubscription(ctx, sub)
			require.NoError(t, err)
			f.e.Converge(30 * time.Second)

			rep, err := l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsHeld, "%+v", rep)
			require.Zero(t, rep.RowsWaiting)
			require.Zero(t, f.createCalls())
			st, err := l.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, st.HeldRows)
			require.EqualValues(t, 0, st.PendingRows)
			ws, err := l.Windows(ctx, "s000", usage.WindowFilter{})
			require.NoError(t, err)
			require.Len(t, ws, 1)
			require.Equal(t, "12", ws[0].Pending.String(), "the units are still shown as not in Zuora")
			require.Equal(t, usage.RowHeld, ws[0].Uploads[0].State)
			require.Contains(t, ws[0].Uploads[0].LastError, "left the subscription before it reached Zuora")

			// The hourly run leaves held rows alone (no endless retries).
			rep, err = l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Zero(t, rep.RowsHeld+rep.RowsWaiting+rep.Calls)

			// The manual sync looks again: still no charge, held again, with the reason listed.
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsHeld)
			require.Len(t, rep.Held, 1)

			// The operator adds the plan back as it was (here: back to pro);
			// the manual sync then sends the 12 units, once.
			sub.PlanID, sub.BillingPeriodID = "pro", "pro-monthly"
			_, _, err = f.e.DB.UpsertSubscription(ctx, sub)
			require.NoError(t, err)
			f.e.Converge(30 * time.Second)
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent, "%+v", rep)
			require.Equal(t, "12", f.simTotals()[f.chargeNumber("s000", "pro", "api")].String())
			st, err = l.Stats(ctx)
			require.NoError(t, err)
			require.Zero(t, st.HeldRows)
		})
	}
}
