package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// The usage ledger's driver suite: every usage store method, and the upload
// batches as a leased queue (reservation, claim order and filter, SKIP
// LOCKED concurrency, heartbeat, lease expiry, finish-after-lapse refusal,
// release), against Postgres and SQLite.

var usageT0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func usageEvent(key, sub, charge, qty string, at time.Time) store.UsageEvent {
	return store.UsageEvent{Key: key, SubscriptionID: sub, PlanID: "pro", ChargeID: charge, Quantity: decimal.RequireFromString(qty),
		OccurredAt: at, WindowStart: at.Truncate(time.Hour), UOM: "Each"}
}

func describeRow(sub, charge string, start time.Time, seq int) string {
	return fmt.Sprintf("%s/%s %s #%d", sub, charge, start.Format(time.RFC3339), seq)
}

// sealed ingests events into windows of sub and seals them into pending rows.
func sealed(t *testing.T, db *store.DB, sub string, windows int) []store.UsageRow {
	t.Helper()
	ctx := context.Background()
	var evs []store.UsageEvent
	for i := range windows {
		evs = append(evs, usageEvent(fmt.Sprintf("%s-%d", sub, i), sub, "api", "1.5", usageT0.Add(time.Duration(i)*time.Hour)))
	}
	_, err := db.InsertUsageEvents(ctx, evs, usageT0)
	require.NoError(t, err)
	_, _, err = db.SealUsageWindows(ctx, usageT0, usageT0.Add(1000*time.Hour), sub, describeRow)
	require.NoError(t, err)
	rows, err := db.PendingUsageRows(ctx, usageT0, sub, 0, 1000)
	require.NoError(t, err)
	for i := range rows {
		rows[i].AccountNumber, rows[i].SubscriptionNumber, rows[i].ChargeNumber, rows[i].UOM = "A1", "S-"+sub, "C-"+sub, "Each"
	}
	return rows
}

func TestUsageIngestAndSeal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := usageT0.Add(13 * time.Hour)
		ins, err := db.InsertUsageEvents(ctx, []store.UsageEvent{
			usageEvent("a", "s1", "api", "0.1", h), usageEvent("b", "s1", "api", "0.2", h.Add(time.Minute)),
			usageEvent("c", "s1", "storage", "2", h), usageEvent("d", "s1", "api", "7", h.Add(time.Hour)),
		}, usageT0)
		require.NoError(t, err)
		require.Len(t, ins, 4)
		// A repeated key is not stored again, nor counted.
		ins, err = db.InsertUsageEvents(ctx, []store.UsageEvent{usageEvent("a", "s1", "api", "99", h), usageEvent("e", "s1", "api", "0.05", h)}, usageT0)
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"e": true}, ins)
		stored, err := db.UsageKeysStored(ctx, []string{"a", "e", "zz"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"a": true, "e": true}, stored)

		// Only windows up to the cutoff are sealed; the first row carries the total.
		w, r, err := db.SealUsageWindows(ctx, usageT0, h, "", describeRow)
		require.NoError(t, err)
		require.Equal(t, 2, w)
		require.Equal(t, 2, r)
		rows, err := db.PendingUsageRows(ctx, usageT0, "", 0, 100)
		require.NoError(t, err)
		require.Len(t, rows, 2)
		qty := map[string]string{}
		for _, r := range rows {
			qty[r.ChargeID] = r.Quantity
			require.Equal(t, 0, r.Seq)
			require.Equal(t, "Each", r.WindowUOM)
			require.Equal(t, describeRow("s1", r.ChargeID, h, 0), r.Description)
		}
		require.True(t, decimal.RequireFromString(qty["api"]).Equal(decimal.RequireFromString("0.35")), qty["api"])
		// Sealing again finds nothing new; a late event becomes a correction of the difference.
		w, _, err = db.SealUsageWindows(ctx, usageT0, h, "", describeRow)
		require.NoError(t, err)
		require.Zero(t, w)
		_, err = db.InsertUsageEvents(ctx, []store.UsageEvent{usageEvent("f", "s1", "api", "0.25", h)}, usageT0)
		require.NoError(t, err)
		_, r, err = db.SealUsageWindows(ctx, usageT0, h, "s1", describeRow)
		require.NoError(t, err)
		require.Equal(t, 1, r)
		rows, err = db.PendingUsageRows(ctx, usageT0, "s1", rows[1].ID, 100)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, 1, rows[0].Seq)
		require.True(t, decimal.RequireFromString(rows[0].Quantity).Equal(decimal.RequireFromString("0.25")))

		ws, err := db.UsageWindows(ctx, "s1", store.UsageWindowFilter{})
		require.NoError(t, err)
		require.Len(t, ws, 3)
		require.Equal(t, h.Add(time.Hour), ws[0].Start, "newest first")
		require.False(t, ws[0].Sealed)
		st, err := db.UsageStats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, st.PendingWindows)
		require.EqualValues(t, 3, st.PendingRows)
		require.Equal(t, h, *st.OldestPendingWindow)

		// Held rows wait for a person; UnholdUsageRows puts them back.
		require.NoError(t, db.HoldUsageRow(ctx, rows[0].ID, "needs a person", usageT0))
		st, err = db.UsageStats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.HeldRows)
		n, err := db.UnholdUsageRows(ctx, "s1", usageT0)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})
}

func TestUsageBatchQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := usageT0
		lease := time.Minute
		rows := sealed(t, db, "s1", 3)

		// A reserved batch is A's alone until the reservation lapses.
		ok, err := db.CreateUsageBatch(ctx, store.NewUsageBatch{ID: "b1", Rows: rows[:2], ReservedFor: "A", ReservedUntil: now.Add(lease)}, now)
		require.NoError(t, err)
		require.True(t, ok)
		// The same rows cannot go into a second batch.
		ok, err = db.CreateUsageBatch(ctx, store.NewUsageBatch{ID: "b1x", Rows: rows[1:2]}, now)
		require.NoError(t, err)
		require.False(t, ok)
		bs, err := db.ClaimUsageBatches(ctx, "B", 10, lease, now, store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Empty(t, bs, "reserved for A")
		bs, err = db.ClaimUsageBatches(ctx, "A", 10, lease, now, store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Len(t, bs, 1)
		a := bs[0]
		require.Equal(t, "b1", a.ID)
		require.Len(t, a.Rows, 2)
		require.Equal(t, "C-s1", a.Rows[0].ChargeNumber, "the numbers it is sent with")
		require.NotEmpty(t, a.LeaseToken)
		bs, err = db.ClaimUsageBatches(ctx, "A", 10, lease, now, store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Empty(t, bs, "a claimed batch is not claimed again while its lease runs")

		// The heartbeat extends only the holder's lease with its token.
		held, err := db.HeartbeatUsageBatches(ctx, "A", map[string]string{"b1": "wrong"}, lease, now.Add(30*time.Second))
		require.NoError(t, err)
		require.Empty(t, held)
		held, err = db.HeartbeatUsageBatches(ctx, "A", map[string]string{"b1": a.LeaseToken}, lease, now.Add(30*time.Second))
		require.NoError(t, err)
		require.True(t, held["b1"])
		bs, err = db.ClaimUsageBatches(ctx, "B", 10, lease, now.Add(80*time.Second), store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Empty(t, bs, "extended to 90 s")

		// The lease lapses: B takes the batch over with a new token; A can
		// neither extend it nor finish it.
		later := now.Add(2 * time.Minute)
		bs, err = db.ClaimUsageBatches(ctx, "B", 10, lease, later, store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Len(t, bs, 1)
		b := bs[0]
		require.NotEqual(t, a.LeaseToken, b.LeaseToken)
		held, err = db.HeartbeatUsageBatches(ctx, "A", map[string]string{"b1": a.LeaseToken}, lease, later)
		require.NoError(t, err)
		require.Empty(t, held)
		err = db.FinishUsageBatch(ctx, "A", a, store.UsageBatchOutcome{State: store.UsageBatchDone, Sent: map[int64]string{rows[0].ID: "z0"}}, later)
		require.ErrorIs(t, err, store.ErrLeaseLost)
		// B's outcome: one row stored, one released (with a later retry).
		require.NoError(t, db.FinishUsageBatch(ctx, "B", b, store.UsageBatchOutcome{State: store.UsageBatchDone, CountAttempt: true,
			Sent:    map[int64]string{rows[0].ID: "z0"},
			Release: []store.UsageRelease{{RowID: rows[1].ID, Solo: true, Error: "rejected", NextAttempt: later.Add(time.Hour)}}}, later))
		err = db.FinishUsageBatch(ctx, "B", b, store.UsageBatchOutcome{State: store.UsageBatchDone}, later)
		require.ErrorIs(t, err, store.ErrLeaseLost, "finished once")
		ws, err := db.UsageWindows(ctx, "s1", store.UsageWindowFilter{})
		require.NoError(t, err)
		byStart := map[time.Time]store.UsageWindow{}
		for _, w := range ws {
			byStart[w.Start] = w
		}
		require.Equal(t, []string{"z0"}, byStart[usageT0].ZuoraUsageIDs)
		require.Equal(t, "C-s1", byStart[usageT0].ChargeNumber, "the window keeps the charge number that covered it")
		retry := byStart[usageT0.Add(time.Hour)].Uploads[0]
		require.Equal(t, store.UsageRowPending, retry.State)
		require.Equal(t, "rejected", retry.LastError)
		require.Equal(t, 1, retry.Attempts)
		due, err := db.PendingUsageRows(ctx, later, "", 0, 100)
		require.NoError(t, err)
		require.Len(t, due, 1, "the released row waits for its retry; the third row is due")
		require.Equal(t, rows[2].ID, due[0].ID)
		due, err = db.PendingUsageRows(ctx, later, "s1", 0, 100)
		require.NoError(t, err)
		require.Len(t, due, 2, "a person's sync does not wait")
		require.True(t, due[0].Solo)

		// An unknown outcome keeps the batch; it is due again at its retry
		// time, or at once for its subscription's manual sync.
		ok, err = db.CreateUsageBatch(ctx, store.NewUsageBatch{ID: "b2", Rows: rows[2:]}, later)
		require.NoError(t, err)
		require.True(t, ok)
		bs, err = db.ClaimUsageBatches(ctx, "B", 10, lease, later, store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Len(t, bs, 1, "an unreserved batch is due at once")
		require.NoError(t, db.FinishUsageBatch(ctx, "B", bs[0], store.UsageBatchOutcome{State: store.UsageBatchSending, CountAttempt: true,
			Error: "timeout", NextAttempt: later.Add(time.Hour)}, later))
		st, err := db.UsageStats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.UnknownBatches)
		require.EqualValues(t, 1, st.SendingRows)
		bs, err = db.ClaimUsageBatches(ctx, "B", 10, lease, later, store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Empty(t, bs)
		bs, err = db.ClaimUsageBatches(ctx, "C", 10, lease, later, store.UsageBatchFilter{SubscriptionID: "other"})
		require.NoError(t, err)
		require.Empty(t, bs)
		bs, err = db.ClaimUsageBatches(ctx, "C", 10, lease, later, store.UsageBatchFilter{SubscriptionID: "s1"})
		require.NoError(t, err)
		require.Len(t, bs, 1)
		require.Equal(t, 1, bs[0].Attempts)
		require.Len(t, bs[0].Rows, 1)
		// Released on a soft stop, it is anyone's again.
		require.NoError(t, db.ReleaseUsageBatches(ctx, "C", later))
		bs, err = db.ClaimUsageBatches(ctx, "D", 10, lease, later.Add(2*time.Hour), store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Len(t, bs, 1)
		n, err := db.ReleaseUsageClaims(ctx, "D")
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})
}

// TestUsageBatchClaimConcurrency: senders claiming at once never get the
// same batch (SKIP LOCKED on Postgres, the one writer on SQLite), in
// retry order.
func TestUsageBatchClaimConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rows := sealed(t, db, "s1", 40)
		for i, r := range rows {
			ok, err := db.CreateUsageBatch(ctx, store.NewUsageBatch{ID: fmt.Sprintf("b%02d", i), Rows: []store.UsageRow{r}}, usageT0.Add(time.Duration(i)*time.Second))
			require.NoError(t, err)
			require.True(t, ok)
		}
		first, err := db.ClaimUsageBatches(ctx, "W", 2, time.Minute, usageT0.Add(time.Hour), store.UsageBatchFilter{})
		require.NoError(t, err)
		require.Equal(t, []string{"b00", "b01"}, []string{first[0].ID, first[1].ID}, "oldest due first")
		var (
			mu     sync.Mutex
			seen   = map[string]string{}
			wg     sync.WaitGroup
			errs   = make(chan error, 8)
			counts = map[string]int{}
		)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("w%d", w)
				for {
					bs, err := db.ClaimUsageBatches(ctx, name, 3, time.Minute, usageT0.Add(time.Hour), store.UsageBatchFilter{})
					if err != nil {
						errs <- err
						return
					}
					if len(bs) == 0 {
						return
					}
					mu.Lock()
					for _, b := range bs {
						if prev, dup := seen[b.ID]; dup {
							errs <- fmt.Errorf("%s claimed by %s and %s", b.ID, prev, name)
						}
						seen[b.ID] = name
						counts[name]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, seen, 38)
	})
}
