package usage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

// TestUsageFilesCrashBetweenUploadAndStatus: a backlog goes by usage files.
// The first file's answer is lost after Zuora accepted it (billsync does not
// know the import exists), and the run is cut off right after another
// file's status URL was recorded, before its status was read. After a
// restart the lost file is uploaded again with the same key (Zuora answers
// with the first import) and the recorded ones are only polled: every unit
// is in Zuora once, from one import per file.
func TestUsageFilesCrashBetweenUploadAndStatus(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 3, sync: true, importDelay: 50 * time.Millisecond})
			files := func(c *usage.Config) { c.ImportThreshold, c.ImportRows = 10, 10 }
			ctx := context.Background()
			want := map[string]decimal.Decimal{}
			l := f.ledger(files)
			var evs []usage.Event
			for s := range 3 {
				for _, ch := range []string{"api", "storage"} {
					for h := range 4 {
						q := fmt.Sprintf("%d.5", s+h+1)
						evs = append(evs, event(fmt.Sprintf("e-%d-%s-%d", s, ch, h), subID(s), ch, q, T0.Add(time.Duration(10+h)*time.Hour)))
						want[f.chargeNumber(subID(s), "pro", ch)] = want[f.chargeNumber(subID(s), "pro", ch)].Add(dec(q))
					}
				}
			}
			for _, r := range ingest(t, l, evs...) {
				require.Equal(t, usage.Accepted, r.Status, r.Reason)
			}
			f.clock.Set(T0.Add(16 * time.Hour))

			// Run 1: the first upload's answer is lost; the run is cut off
			// as soon as a file's status URL is recorded.
			f.z.set(1, 0)
			cctx, cancel := context.WithCancel(ctx)
			var once sync.Once
			crash := f.ledger(files, func(c *usage.Config) {
				c.OnBatch = func(outcome string, _ int) {
					if outcome == "import_pending" {
						once.Do(cancel)
					}
				}
				c.Senders = 1
			})
			_, err := crash.SealAndUpload(cctx, f.clock.Now())
			cancel()
			t.Logf("run 1: %d uploads, %d create calls, %d lost", f.importCalls(), f.createCalls(), f.z.lost)
			require.Error(t, err, "cut off")
			require.Equal(t, 1, f.z.lost)
			require.GreaterOrEqual(t, f.importCalls(), 2)
			st, err := crash.Stats(ctx)
			require.NoError(t, err)
			require.Positive(t, st.SendingRows, "files are out, their outcome unknown")

			// Restart: a new process, the old one's claims dropped.
			for i := 0; i < 10; i++ {
				l = f.ledger(files)
				_, err := l.ReleaseClaims(ctx, "")
				require.NoError(t, err)
				_, err = l.SealAndUpload(ctx, f.clock.Add(time.Minute))
				require.NoError(t, err)
				if st, err = l.Stats(ctx); err == nil && st.SendingRows == 0 && st.PendingRows == 0 {
					break
				}
			}
			require.NoError(t, err)
			require.Zero(t, st.PendingWindows, "%+v", st)
			require.Zero(t, st.SendingRows)

			// 24 windows, 24 records: rows batched before the cut-off went by
			// files (one import each, the lost upload's replay made none),
			// rows the cut-off left pending (a backlog under the threshold)
			// by calls.
			imports := map[string]int{}
			recs := f.e.Sim.State().Usage
			require.Len(t, recs, 24)
			for _, u := range recs {
				if u.ImportID != "" {
					imports[u.ImportID]++
				}
			}
			require.NotEmpty(t, imports)
			require.Greater(t, f.importCalls(), len(imports), "the lost upload was sent again")
			t.Logf("%d usage files imported from %d uploads; %d create calls", len(imports), f.importCalls(), f.createCalls())
			got := f.simTotals()
			for num, q := range want {
				require.True(t, q.Equal(got[num]), "%s: Zuora has %s, ingested %s", num, got[num], q)
			}
			require.Len(t, got, len(want))
			ws, err := l.Windows(ctx, subID(0), usage.WindowFilter{})
			require.NoError(t, err)
			require.Len(t, ws, 8)
			for _, w := range ws {
				require.True(t, w.Pending.IsZero())
				require.Len(t, w.ZuoraUsageIDs, 1)
			}
		})
	}
}

// TestUsageFileRowErrors: Zuora fails a usage file as a whole when a row is
// refused (here a window of more than 13 digits of units, which Zuora does
// not store) and names the row; nothing of the file is imported. The named
// row goes alone by calls (refused again, held for a person after
// MaxAttempts), the others by calls of 50, never into a file again: each
// unit reaches Zuora once, or is held, never lost, never doubled.
func TestUsageFileRowErrors(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 3, sync: true})
			ctx := context.Background()
			l := f.ledger(func(c *usage.Config) { c.ImportThreshold, c.MaxAttempts = 5, 2 })
			want := map[string]decimal.Decimal{}
			var evs []usage.Event
			for s := range 3 {
				for h := range 3 {
					evs = append(evs, event(fmt.Sprintf("%d-%d", s, h), subID(s), "api", "2", T0.Add(time.Duration(10+h)*time.Hour)))
					want[f.chargeNumber(subID(s), "pro", "api")] = want[f.chargeNumber(subID(s), "pro", "api")].Add(dec("2"))
				}
			}
			// Two events of 9·10¹² in one window of s001/storage: 1.8·10¹³.
			big := T0.Add(11 * time.Hour)
			evs = append(evs, event("big-1", subID(1), "storage", "9000000000000", big), event("big-2", subID(1), "storage", "9000000000000", big.Add(time.Minute)))
			for _, r := range ingest(t, l, evs...) {
				require.Equal(t, usage.Accepted, r.Status, r.Reason)
			}
			rep, err := l.SealAndUpload(ctx, T0.Add(16*time.Hour))
			require.NoError(t, err)
			require.Equal(t, 1, f.importCalls(), "one file")
			require.Equal(t, 10, rep.RowsFailed, "the file failed: %+v", rep)
			require.Empty(t, f.e.Sim.State().Usage, "a failed import imports nothing")

			// Next runs: the named row alone (refused, then held), the others
			// in one call.
			rep, err = l.SealAndUpload(ctx, T0.Add(16*time.Hour+time.Minute))
			require.NoError(t, err)
			require.Equal(t, 9, rep.RowsSent, "%+v", rep)
			require.Equal(t, 1, rep.RowsHeld, "%+v", rep)
			require.Equal(t, 1, f.importCalls(), "rows tried before never go into a file again")
			require.Equal(t, 2, f.createCalls(), "one call of nine, the refused row alone")
			got := f.simTotals()
			for num, q := range want {
				require.True(t, q.Equal(got[num]), "%s: Zuora has %s, ingested %s", num, got[num], q)
			}
			require.Len(t, got, 3, "the refused window is not in Zuora")
			st, err := l.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, st.HeldRows)
			require.Zero(t, st.PendingRows)
			require.Zero(t, st.SendingRows)
		})
	}
}
