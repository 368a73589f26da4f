package usage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

// TestLateUsageForABilledPeriod: Zuora does not rate usage whose day it has
// billed already (it stays Pending, never invoiced). A late event (a
// correction of an uploaded window, or the first row of a window nobody
// sent) for a billed day goes into the first open day with a description
// naming its own window; the totals billsync shows are what Zuora bills.
func TestLateUsageForABilledPeriod(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			l := f.ledger()
			ctx := context.Background()
			h := T0.Add(13 * time.Hour) // 2026-11-20 13:00
			ingest(t, l, event("b1", "s000", "api", "5", h.Add(10*time.Minute)))
			rep, err := l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)

			// Zuora bills November 20 (and before).
			res, err := f.e.Sim.BillRun("2026-11-21")
			require.NoError(t, err)
			require.Equal(t, 1, res[0].UsageProcessed)

			// Late: a correction of the 13:00 window, and a window of 09:00 never sent.
			f.clock.Set(T0.Add(26 * time.Hour))
			ingest(t, l, event("b2", "s000", "api", "2", h.Add(30*time.Minute)), event("b3", "s000", "api", "4", T0.Add(9*time.Hour)))
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 2, rep.RowsSent, "%+v", rep)
			require.Positive(t, f.e.Sim.Stats().Calls["GET /object-query/rate-plan-charges"], "the open period was read in bulk")
			open := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
			var late []string
			for _, u := range f.e.Sim.State().Usage[1:] {
				require.Equal(t, open, u.StartDateTime.UTC(), "sent on the first open day: %+v", u)
				require.Contains(t, u.Description, "late: its period is billed in Zuora; sent on 2026-11-21")
				late = append(late, u.Description)
			}
			joined := strings.Join(late, "|")
			require.Contains(t, joined, "billsync s000/api 2026-11-20T13:00Z (correction 1)", "the description names the original window")
			require.Contains(t, joined, "billsync s000/api 2026-11-20T09:00Z")

			// What billsync shows per window is what Zuora bills.
			ws, err := l.Windows(ctx, "s000", usage.WindowFilter{})
			require.NoError(t, err)
			var uploaded decimal.Decimal
			for _, w := range ws {
				require.True(t, w.Pending.IsZero(), "%+v", w)
				uploaded = uploaded.Add(w.Uploaded)
				if w.Start.Equal(h) {
					require.Len(t, w.Uploads, 2)
					require.Nil(t, w.Uploads[0].SentFor)
					require.Equal(t, open, *w.Uploads[1].SentFor)
				}
			}
			require.Equal(t, "11", uploaded.String())
			res, err = f.e.Sim.BillRun("2026-11-22")
			require.NoError(t, err)
			require.Equal(t, 2, res[0].UsageProcessed)
			require.Zero(t, res[0].UsageLeft, "nothing left unrated in a billed period")
			var billed decimal.Decimal
			for _, u := range f.e.Sim.State().Usage {
				require.Equal(t, "Processed", u.Status, "%+v", u)
				billed = billed.Add(dec(string(u.Quantity)))
			}
			require.Equal(t, uploaded.String(), billed.String(), "Zuora bills what billsync shows as uploaded")

			// Usage of an open day is sent with its own window, as always.
			f.clock.Set(T0.Add(50 * time.Hour))
			ingest(t, l, event("b4", "s000", "api", "1", T0.Add(49*time.Hour)))
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			last := f.e.Sim.State().Usage[3]
			require.Equal(t, T0.Add(49*time.Hour), last.StartDateTime.UTC())
			require.NotContains(t, last.Description, "late")
		})
	}
}
