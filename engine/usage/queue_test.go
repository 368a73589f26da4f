package usage_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

// TestHourlyJobOnlyQueues: serve's hourly job seals and batches without a
// call; the usage pool (Run) sends the batches, once.
func TestHourlyJobOnlyQueues(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 2, sync: true})
			var (
				mu       sync.Mutex
				outcomes = map[string]int{}
			)
			l := f.ledger(func(c *usage.Config) {
				c.OnBatch = func(o string, rows int) { mu.Lock(); outcomes[o] += rows; mu.Unlock() }
			})
			ctx := context.Background()
			h := T0.Add(5 * time.Hour)
			ingest(t, l, event("q1", "s000", "api", "2", h), event("q2", "s001", "api", "3", h), event("q3", "s000", "storage", "1.5", h.Add(time.Hour)))
			rep, err := l.Enqueue(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 3, rep.RowsCreated)
			require.Zero(t, f.createCalls(), "the job only queues")
			st, err := l.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 3, st.SendingRows)

			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- l.Run(rctx) }()
			require.Eventually(t, func() bool {
				st, err := l.Stats(ctx)
				return err == nil && st.SentRows == 3
			}, 20*time.Second, 20*time.Millisecond)
			stop()
			require.NoError(t, <-done)
			require.Equal(t, 1, f.createCalls())
			require.Equal(t, "2", f.simTotals()[f.chargeNumber("s000", "pro", "api")].String())
			require.Equal(t, "3", f.simTotals()[f.chargeNumber("s001", "pro", "api")].String())
			require.Equal(t, "1.5", f.simTotals()[f.chargeNumber("s000", "pro", "storage")].String())
			mu.Lock()
			require.Equal(t, map[string]int{"stored": 3}, outcomes)
			mu.Unlock()
		})
	}
}

// TestUsageLeaseLapseRefusesFinish: a sender whose lease lapsed during its
// call (here: the clock jumps past it, and another process takes the batch
// over and sends it) cannot record its outcome; the batch is in Zuora once,
// recorded once, by the holder of the lease.
func TestUsageLeaseLapseRefusesFinish(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			var (
				mu       sync.Mutex
				outcomes = map[string]int{}
			)
			observe := func(c *usage.Config) {
				c.OnBatch = func(o string, _ int) { mu.Lock(); outcomes[o]++; mu.Unlock() }
			}
			l1, l2 := f.ledger(observe), f.ledger(observe)
			ctx := context.Background()
			ingest(t, l1, event("l1", "s000", "api", "4", T0.Add(3*time.Hour)), event("l2", "s000", "api", "5", T0.Add(4*time.Hour)))
			var rep2 *usage.Report
			var first atomic.Bool
			f.z.before = func() {
				if first.Swap(true) {
					return
				}
				// l1 is about to call: its lease (1 min) lapses meanwhile,
				// and l2 takes the batch over.
				var err error
				rep2, err = l2.SealAndUpload(ctx, f.clock.Add(3*time.Minute))
				require.NoError(t, err)
			}
			rep1, err := l1.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 2, rep2.RowsSent, "%+v", rep2)
			require.Zero(t, rep1.RowsSent, "%+v", rep1)
			mu.Lock()
			require.Equal(t, map[string]int{"stored": 1, "lease_lost": 1}, outcomes)
			mu.Unlock()
			require.Len(t, f.e.Sim.State().Usage, 2, "the same key twice: Zuora stored the rows once")
			require.Equal(t, "9", f.simTotals()[f.chargeNumber("s000", "pro", "api")].String())
			st, err := l1.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 2, st.SentRows)
			require.Zero(t, st.SendingRows)
		})
	}
}
