package worker

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/retry"
	"github.com/billsync/billsync/engine/store"
)

// syncQueue is the Queue of outbound sync records: jobs are records, the
// work is their kind's reconciler, outcomes go through store.Finish.
type syncQueue struct {
	db     *store.DB
	recs   map[string]reconcile.Reconciler
	opts   Options
	policy retry.Policy
	pool   *Pool
	checks atomic.Int64 // drift checks claimed and not yet dropped by the pool
}

func (q *syncQueue) Claim(ctx context.Context, worker string, n int, lease time.Duration) ([]Job, error) {
	var recs []store.SyncRecord
	var err error
	if q.opts.DriftChecks > 0 {
		recs, err = q.db.ClaimWithin(ctx, worker, q.opts.Kinds(), n, q.opts.DriftChecks-int(q.checks.Load()), lease)
	} else {
		recs, err = q.db.Claim(ctx, worker, q.opts.Kinds(), n, lease)
	}
	jobs := make([]Job, len(recs))
	for i, r := range recs {
		if r.DriftCheck != "" {
			q.checks.Add(1)
		}
		jobs[i] = Job{Lease: store.Lease{RecordID: r.ID, Token: r.LeaseToken}, Kind: r.EntityKind, ID: r.EntityID, Item: r}
	}
	return jobs, err
}

// Dropped counts a claimed drift check out (dropper). Once a fifth of the
// checks' share is free, it kicks the pool: the pool claims again only when
// half its workers have finished, which a share smaller than that would
// wait for until every check had finished.
func (q *syncQueue) Dropped(job Job) {
	if rec, ok := job.Item.(store.SyncRecord); ok && rec.DriftCheck != "" {
		held := q.checks.Add(-1)
		if free := int64(q.opts.DriftChecks) - held; q.opts.DriftChecks > 0 && free >= int64(max(1, q.opts.DriftChecks/5)) && q.pool != nil {
			q.pool.Kick()
		}
	}
}

func (q *syncQueue) Heartbeat(ctx context.Context, worker string, leases []store.Lease, lease time.Duration) (map[int64]bool, error) {
	return q.db.Heartbeat(ctx, worker, leases, lease)
}

func (q *syncQueue) Release(ctx context.Context, worker string) error {
	return q.db.ReleaseWorker(ctx, worker)
}

func (q *syncQueue) Work(ctx context.Context, job Job) (any, error) {
	rc, ok := q.recs[job.Kind]
	if !ok {
		return Result{}, Terminal{Err: errors.New("no reconciler for entity kind " + job.Kind)}
	}
	return rc.Reconcile(context.WithValue(ctx, claimedKey{}, job.Item.(store.SyncRecord)), reconcile.Key{Kind: job.Kind, ID: job.ID})
}

type claimedKey struct{}

// Claimed returns the sync record the pool claimed for the reconcile of key,
// as the claim returned it, so the reconciler need not read it again. While
// a record is in flight only its desired revision and next attempt time can
// change (Finish takes those into account); false outside the pool.
func Claimed(ctx context.Context, key reconcile.Key) (store.SyncRecord, bool) {
	rec, ok := ctx.Value(claimedKey{}).(store.SyncRecord)
	if !ok || rec.EntityKind != key.Kind || rec.EntityID != key.ID {
		return store.SyncRecord{}, false
	}
	return rec, true
}

func (q *syncQueue) Finish(ctx context.Context, worker string, job Job, a Attempt) error {
	rec := job.Item.(store.SyncRecord)
	res, _ := a.Result.(Result)
	o := q.outcome(rec, res, a.Err)
	o.SyncID, o.StartedAt, o.Calls = a.ID, a.Started, res.Calls
	if a.Err == nil {
		o.Detail, o.Quiet = res.Detail, res.Quiet
	}
	if o.Detail == "" {
		o.Detail = o.Reason
	}
	if err := q.db.Finish(ctx, rec, worker, o); err != nil {
		return err
	}
	if q.opts.OnOutcome != nil {
		q.opts.OnOutcome(rec, o)
	}
	ev := a.Log.Debug()
	switch {
	case o.State == store.StateFailed || o.State == store.StateDead:
		ev = a.Log.Warn().Str("error_code", o.ErrorCode).Str("error", o.ErrorMessage).Str("zuora_request_id", o.RequestID)
	case o.State == store.StateSynced && res.Calls > 0:
		// A change reached Zuora: one compact info line (unchanged
		// re-checks stay at debug).
		ev = a.Log.Info().Str("detail", o.Detail)
	}
	ev.Str("state", o.State).Int("zuora_calls", res.Calls).Stringer("took", time.Since(a.Started).Round(time.Microsecond)).Msg("reconciled")
	q.pool.count(func(st *Stats) {
		st.Reconciled++
		st.Calls += int64(res.Calls)
		switch o.State {
		case store.StateSynced:
			st.Synced++
		case store.StateSkipped:
			st.Skipped++
		case store.StateFailed:
			st.Failed++
		case store.StateDead:
			st.Dead++
		case store.StateDrifted:
			st.Drifted++
		default:
			st.Waited++
		}
	})
	return nil
}

func (q *syncQueue) LeaseLost(job Job, a Attempt) {
	res, _ := a.Result.(Result)
	q.pool.count(func(st *Stats) { st.Calls += int64(res.Calls) })
	if q.opts.OnOutcome != nil {
		q.opts.OnOutcome(job.Item.(store.SyncRecord), store.Outcome{State: OutcomeLeaseLost, SyncID: a.ID, StartedAt: a.Started, Calls: res.Calls})
	}
}

// outcome turns a reconcile's result or error into the record's next state.
// On error the result is ignored, except for the calls it counts.
func (q *syncQueue) outcome(rec store.SyncRecord, res Result, err error) store.Outcome {
	now := time.Now().UTC()
	if err == nil {
		o := store.Outcome{PayloadHash: res.PayloadHash, PushedState: res.PushedState, ZuoraID: res.ZuoraID,
			ZuoraNumber: res.ZuoraNumber, ZuoraURL: res.ZuoraURL}
		switch {
		case res.Skipped != "":
			o.State, o.Reason = store.StateSkipped, res.Skipped
		case res.Wait > 0:
			o.State, o.Reason, o.NextAttempt = store.StatePending, res.WaitReason, now.Add(res.Wait)
		case res.Drifted:
			o.State, o.Reason = store.StateDrifted, res.Detail
		default:
			o.State = store.StateSynced
		}
		return o
	}
	if rec.DriftCheck != "" {
		// A drift check that did not finish is not a failure of the
		// record: it stays synced, and the next period's check looks again.
		return store.Outcome{State: store.StateSynced, PayloadHash: rec.PayloadHash,
			Detail: "drift check (" + rec.DriftCheck + ") did not finish: " + err.Error()}
	}
	f := reconcile.Classify(err)
	if f.Credentials {
		// Not the record's fault: it waits, its attempts untouched, while
		// the pool pauses until Zuora accepts billsync's credentials again.
		return store.Outcome{State: store.StatePending, ErrorCode: f.Code, ErrorMessage: f.Message, RequestID: f.RequestID,
			Reason: CredentialsReason, NextAttempt: now.Add(q.opts.CredentialsPause)}
	}
	o := store.Outcome{ErrorCode: f.Code, ErrorMessage: f.Message, RequestID: f.RequestID, CountAttempt: true}
	var cut cutOff
	if errors.As(err, &cut) {
		o.ErrorMessage = cut.Error() // why it was cut off, then what the reconcile said
	}
	attempt := rec.Attempts + 1
	if !f.Retryable || attempt >= q.opts.MaxAttempts {
		o.State = store.StateDead
		if f.Retryable {
			o.Reason = "gave up after " + strconv.Itoa(attempt) + " attempts"
		}
		return o
	}
	o.State = store.StateFailed
	o.NextAttempt = now.Add(q.policy.Delay(attempt, f.RetryAfter))
	return o
}
