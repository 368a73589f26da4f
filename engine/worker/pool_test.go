package worker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/worker"
)

type reconcilerFunc = reconcile.Func

func newPool(db *store.DB, rc reconcilerFunc, opts worker.Options) *worker.Pool {
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	if opts.BackoffUnit == 0 {
		opts.BackoffUnit = time.Millisecond
	}
	return worker.New(db, map[string]reconcile.Reconciler{store.EntityPlan: rc}, opts)
}

// due makes a pending plan record and returns it.
func due(t *testing.T, db *store.DB, id string) store.SyncRecord {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.MarkPending(ctx, store.EntityPlan, id))
	rec, err := db.GetSyncRecord(ctx, store.EntityPlan, id)
	require.NoError(t, err)
	return rec
}

func record(t *testing.T, db *store.DB, id string) store.SyncRecord {
	t.Helper()
	rec, err := db.GetSyncRecord(context.Background(), store.EntityPlan, id)
	require.NoError(t, err)
	return rec
}

// runPool runs p.Run until the returned stop is called; stop waits for Run.
func runPool(p *worker.Pool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	return func() { cancel(); <-done }
}

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, msg)
}

// TestHeartbeatKeepsTheLease: a reconcile four times longer than its lease
// keeps the record while the sweeper runs all along; nobody else gets it.
func TestHeartbeatKeepsTheLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		due(t, db, "p1")
		var runs atomic.Int32
		slow := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			runs.Add(1)
			select {
			case <-time.After(1200 * time.Millisecond):
				return worker.Result{PayloadHash: "h1"}, nil
			case <-ctx.Done():
				return worker.Result{}, ctx.Err()
			}
		})
		a := newPool(db, slow, worker.Options{Lease: 300 * time.Millisecond, ID: "a"})
		b := newPool(db, slow, worker.Options{Lease: 300 * time.Millisecond, ID: "b"})
		stopA := runPool(a)
		eventually(t, func() bool { return runs.Load() == 1 }, "a claims the record")
		stopB := runPool(b)
		var swept int64
		sweep := time.NewTicker(20 * time.Millisecond)
		for record(t, db, "p1").State == store.StateInFlight {
			<-sweep.C
			n, err := db.ReleaseExpired(ctx)
			require.NoError(t, err)
			swept += n
		}
		sweep.Stop()
		stopA()
		stopB()
		require.Zero(t, swept, "a heartbeated lease never expires")
		require.EqualValues(t, 1, runs.Load(), "reconciled once")
		rec := record(t, db, "p1")
		require.Equal(t, store.StateSynced, rec.State)
		require.Equal(t, "h1", rec.PayloadHash)
		require.Equal(t, worker.Stats{Reconciled: 1, Synced: 1}, a.Stats())
	})
}

// TestLostLeaseIsNotFinished: when the record is taken from a running
// reconcile (released and claimed by another worker), the heartbeat ends the
// reconcile and its outcome is refused; the new holder's outcome stands.
func TestLostLeaseIsNotFinished(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		due(t, db, "p1")
		started := make(chan struct{})
		var cause atomic.Value
		blocking := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			close(started)
			<-ctx.Done()
			cause.Store(context.Cause(ctx).Error())
			return worker.Result{PayloadHash: "stale"}, nil // even a success must not be recorded
		})
		var mu sync.Mutex
		var outcomes []string
		a := newPool(db, blocking, worker.Options{Lease: 150 * time.Millisecond, ID: "a", OnOutcome: func(_ store.SyncRecord, o store.Outcome) {
			mu.Lock()
			outcomes = append(outcomes, o.State)
			mu.Unlock()
		}})
		stopA := runPool(a)
		<-started
		// Another holder takes the record (what the sweeper and a second
		// pool do after a lapse) and finishes it.
		require.NoError(t, db.ReleaseWorker(ctx, "a"))
		recs, err := db.Claim(ctx, "b", []string{store.EntityPlan}, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		eventually(t, func() bool { return a.Stats().LeaseLost == 1 }, "a notices the lost lease")
		require.Contains(t, cause.Load(), "lease was lost")
		require.NoError(t, db.Finish(ctx, recs[0], "b", store.Outcome{State: store.StateSynced, PayloadHash: "fresh"}))
		stopA()
		rec := record(t, db, "p1")
		require.Equal(t, store.StateSynced, rec.State)
		require.Equal(t, "fresh", rec.PayloadHash)
		require.Equal(t, []string{worker.OutcomeLeaseLost}, outcomes)
		require.Equal(t, int64(0), a.Stats().Reconciled)
	})
}

// TestAttemptDeadline: a reconcile that does not return by itself is cut off
// at its timeout and recorded as an ordinary retryable failure.
func TestAttemptDeadline(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		due(t, db, "p1")
		hang := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			<-ctx.Done()
			return worker.Result{}, ctx.Err()
		})
		p := newPool(db, hang, worker.Options{Timeout: 100 * time.Millisecond, BackoffUnit: time.Hour, ID: "a"})
		n, err := p.Drain(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		rec := record(t, db, "p1")
		require.Equal(t, store.StateFailed, rec.State, "retryable, not dead")
		require.Equal(t, 1, rec.Attempts)
		require.Contains(t, rec.LastErrorMessage, "longer than its timeout (100ms)")
		require.True(t, rec.NextAttemptAt.After(time.Now().Add(30*time.Minute)), "backs off")
	})
}

// TestTimeoutLongerThanLease: the heartbeat extends the
// lease, so an attempt whose timeout is longer than the lease runs to its
// timeout with its lease held throughout.
func TestTimeoutLongerThanLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		due(t, db, "p1")
		var took atomic.Int64
		hang := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			start := time.Now()
			<-ctx.Done()
			took.Store(int64(time.Since(start)))
			return worker.Result{}, ctx.Err()
		})
		// The heartbeat extends the lease, so the attempt runs to its timeout
		// (1s) although that is longer than the lease (200ms).
		p := newPool(db, hang, worker.Options{Lease: 200 * time.Millisecond, Timeout: time.Second, BackoffUnit: time.Hour, ID: "a"})
		_, err := p.Drain(context.Background())
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Duration(took.Load()), 900*time.Millisecond)
		rec := record(t, db, "p1")
		require.Equal(t, store.StateFailed, rec.State)
		require.Contains(t, rec.LastErrorMessage, "longer than its timeout")
		require.Zero(t, p.Stats().LeaseLost)
	})
}

// TestPanicIsRetryable: a panic is an ordinary retryable failure; the panic
// value and the stack are in the attempt's history.
func TestPanicIsRetryable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		due(t, db, "p1")
		var calls atomic.Int32
		boom := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			if calls.Add(1) == 1 {
				var m map[string]int
				m["x"] = 1 // nil map: panics
			}
			return worker.Result{PayloadHash: "ok"}, nil
		})
		p := newPool(db, boom, worker.Options{ID: "a", MaxAttempts: 3, BackoffUnit: time.Hour})
		_, err := p.Drain(ctx)
		require.NoError(t, err)
		rec := record(t, db, "p1")
		require.Equal(t, store.StateFailed, rec.State)
		require.Contains(t, rec.LastErrorMessage, "panic while reconciling: assignment to entry in nil map")
		hist, err := db.SyncHistory(ctx, rec.ID, 10)
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.Equal(t, store.StateFailed, hist[0].Outcome)
		require.Contains(t, hist[0].ErrorMessage, "pool_test.go", "the stack names the panicking code")
		// The retry succeeds.
		_, err = db.Retry(ctx, rec.ID)
		require.NoError(t, err)
		_, err = p.Drain(ctx)
		require.NoError(t, err)
		require.Equal(t, store.StateSynced, record(t, db, "p1").State)
	})
}

// TestSoftStop: stopping Run lets the reconcile under way finish and record
// its outcome; one that outlasts StopTimeout is cancelled and its claim
// released, with no attempt counted.
func TestSoftStop(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		due(t, db, "p1")
		started := make(chan struct{}, 1)
		slow := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			started <- struct{}{}
			select {
			case <-time.After(300 * time.Millisecond):
				return worker.Result{PayloadHash: "done"}, nil
			case <-ctx.Done():
				return worker.Result{}, ctx.Err()
			}
		})
		stop := runPool(newPool(db, slow, worker.Options{ID: "a", StopTimeout: 5 * time.Second}))
		<-started
		stop()
		rec := record(t, db, "p1")
		require.Equal(t, store.StateSynced, rec.State, "finished during the stop")
		require.Equal(t, "done", rec.PayloadHash)

		due(t, db, "p2")
		hang := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			started <- struct{}{}
			<-ctx.Done()
			return worker.Result{}, ctx.Err()
		})
		stop = runPool(newPool(db, hang, worker.Options{ID: "b", StopTimeout: 100 * time.Millisecond}))
		<-started
		begun := time.Now()
		stop()
		require.Less(t, time.Since(begun), 3*time.Second)
		rec = record(t, db, "p2")
		require.Equal(t, store.StatePending, rec.State, "released on stop")
		require.Zero(t, rec.Attempts)
		require.Empty(t, rec.LastErrorMessage)
	})
}

// TestBackoffHonoursRetryAfter: a Zuora 429 with Retry-After is retryable and
// schedules the next attempt no sooner; the record shows Zuora's code and message.
func TestBackoffHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		due(t, db, "p1")
		throttled := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			return worker.Result{}, fmt.Errorf("create order: %w", &zuora.Error{Op: "POST /v1/orders", HTTPStatus: 429,
				Code: "TOO_MANY_REQUESTS", Message: "throttled", Retryable: true, RetryAfter: 90 * time.Second})
		})
		p := newPool(db, throttled, worker.Options{ID: "a"})
		before := time.Now()
		_, err := p.Drain(context.Background())
		require.NoError(t, err)
		rec := record(t, db, "p1")
		require.Equal(t, store.StateFailed, rec.State)
		require.Equal(t, "TOO_MANY_REQUESTS", rec.LastErrorCode)
		require.Equal(t, "throttled", rec.LastErrorMessage)
		require.WithinDuration(t, before.Add(90*time.Second), rec.NextAttemptAt, 5*time.Second)
	})
}

// TestLeaseGuard: when heartbeats stop succeeding (here the database goes
// away), the reconcile is cut off a fifth of a lease before its lease could
// lapse, however long its timeout.
func TestLeaseGuard(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		due(t, db, "p1")
		var took atomic.Int64
		var cause atomic.Value
		hang := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			start := time.Now()
			require.NoError(t, db.Close()) // no heartbeat will succeed from now on
			<-ctx.Done()
			took.Store(int64(time.Since(start)))
			cause.Store(context.Cause(ctx).Error())
			return worker.Result{}, ctx.Err()
		})
		p := newPool(db, hang, worker.Options{Lease: 500 * time.Millisecond, Timeout: time.Minute, ID: "a"})
		_, _ = p.Drain(context.Background())
		require.Less(t, time.Duration(took.Load()), 450*time.Millisecond, "ended before the lease (500ms) could lapse")
		require.Contains(t, cause.Load(), "about to lapse")
	})
}

// TestDriftCheckCutOffStaysSynced: a drift check that fails or is cut off
// leaves its record synced, with no attempt counted.
func TestDriftCheckCutOffStaysSynced(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		due(t, db, "p1")
		ok := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			return worker.Result{PayloadHash: "h1"}, nil
		})
		_, err := newPool(db, ok, worker.Options{ID: "a"}).Drain(ctx)
		require.NoError(t, err)
		n, err := db.EnqueueDriftChecks(ctx, "2026-01-01T10")
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		hang := reconcilerFunc(func(ctx context.Context, _ reconcile.Key) (worker.Result, error) {
			<-ctx.Done()
			return worker.Result{}, ctx.Err()
		})
		_, err = newPool(db, hang, worker.Options{ID: "b", Timeout: 50 * time.Millisecond}).Drain(ctx)
		require.NoError(t, err)
		rec := record(t, db, "p1")
		require.Equal(t, store.StateSynced, rec.State)
		require.Equal(t, "h1", rec.PayloadHash)
		require.Zero(t, rec.Attempts)
		require.Empty(t, rec.DriftCheck)
		hist, err := db.SyncHistory(ctx, rec.ID, 5)
		require.NoError(t, err)
		require.Contains(t, hist[0].Detail, "drift check (2026-01-01T10) did not finish")
	})
}

// TestDriftChecksTakeTheirShare: with a backlog of drift checks, no more
// than DriftChecks of them run at once, and a record that falls due meanwhile
// is reconciled before the backlog is through.
func TestDriftChecksTakeTheirShare(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const checks = 24
		for i := range checks {
			rec := due(t, db, fmt.Sprintf("p%02d", i))
			recs, err := db.Claim(ctx, "seed", []string{store.EntityPlan}, 1, time.Minute)
			require.NoError(t, err)
			require.Equal(t, rec.ID, recs[0].ID)
			require.NoError(t, db.Finish(ctx, recs[0], "seed", store.Outcome{State: store.StateSynced, PayloadHash: "h"}))
		}
		_, err := db.EnqueueDriftChecks(ctx, "2026-01-01T10")
		require.NoError(t, err)

		var running, peak, checked atomic.Int64
		var changedAt atomic.Int64 // checks done when the changed record was reconciled
		rc := reconcilerFunc(func(ctx context.Context, key reconcile.Key) (reconcile.Result, error) {
			rec, ok := worker.Claimed(ctx, key)
			require.True(t, ok)
			if rec.DriftCheck == "" {
				changedAt.Store(checked.Load() + 1)
				return reconcile.Result{PayloadHash: "h2"}, nil
			}
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(20 * time.Millisecond) // a Zuora read
			running.Add(-1)
			checked.Add(1)
			return reconcile.Result{PayloadHash: "h", Quiet: true}, nil
		})
		p := newPool(db, rc, worker.Options{Workers: 8, DriftChecks: 2})
		stop := runPool(p)
		defer stop()
		eventually(t, func() bool { return checked.Load() >= 4 }, "checks run")
		require.NoError(t, db.MarkPending(ctx, store.EntityPlan, "changed"))
		p.Kick()
		eventually(t, func() bool { return checked.Load() == checks && changedAt.Load() > 0 }, "all done")
		require.EqualValues(t, 2, peak.Load(), "never more than the share at once, and the share used")
		require.Less(t, changedAt.Load(), int64(checks), "the change did not wait for the backlog")
	})
}
