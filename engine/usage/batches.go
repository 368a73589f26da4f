package usage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// batchQueue is the usage upload batches as a worker.Queue: a job is a
// batch whose outcome is unknown (new, or sent before without an answer);
// the work is one call (or, once Zuora forgot the key, a look-up); the
// outcome goes through store.FinishUsageBatch, refused when the lease is
// gone.
type batchQueue struct {
	l     *Ledger
	rep   *Report
	subID string           // only batches of this subscription's rows (manual sync)
	clock func() time.Time // the ledger's clock, or a sync's
	since time.Time        // a sync's start: each batch is tried once per sync

	mu  sync.Mutex
	seq int64
	ids map[int64]string // lease record ids (the pool's) → batch ids
	// A sync's queue: once nothing more is batched (last), the first claim
	// that finds nothing while nothing is in flight closes drained.
	inflight int
	polling  map[string]bool // a sync's import batches whose import has not ended
	last     bool
	drained  chan struct{}
	claimErr error // set before drained closes
}

// newPool returns a pool of senders on a batch queue. A sync's pool
// (crash) stops as a crash would when its context ends: calls under way are
// cut off and their claims lapse.
func (l *Ledger) newPool(rep *Report, subID string, clock func() time.Time, id string, crash bool) (*worker.Pool, *batchQueue) {
	q := &batchQueue{l: l, rep: rep, subID: subID, clock: clock, ids: map[int64]string{}, polling: map[string]bool{}, drained: make(chan struct{})}
	return worker.NewQueue(q, worker.Options{Workers: l.cfg.Senders, Lease: l.cfg.ClaimTTL, Timeout: l.cfg.ClaimTTL, PollInterval: min(time.Second, l.cfg.ImportPoll),
		StopTimeout: l.cfg.StopTimeout, Logger: l.log, ID: id, KeepClaimsOnStop: crash}), q
}

// lastBatched says nothing more will be batched for this queue.
func (q *batchQueue) lastBatched() {
	q.mu.Lock()
	q.last = true
	q.mu.Unlock()
}

const batchKind = "usage_batch"

func (q *batchQueue) Claim(ctx context.Context, holder string, n int, lease time.Duration) ([]worker.Job, error) {
	q.mu.Lock()
	last, idle := q.last, q.inflight == 0
	polling := make([]string, 0, len(q.polling))
	for id := range q.polling {
		polling = append(polling, id)
	}
	q.mu.Unlock()
	var (
		bs  []store.UsageBatch
		err error
	)
	if q.l.cfg.Enabled(Switch) {
		bs, err = q.l.db.ClaimUsageBatches(ctx, holder, n, lease, q.clock(), store.UsageBatchFilter{SubscriptionID: q.subID, NotTriedSince: q.since})
	}
	if err == nil && last && idle && len(bs) == 0 && len(polling) > 0 {
		// Imports this sync started and has not seen end (another sender
		// may have): the sync waits for them.
		var still map[string]bool
		if still, err = q.l.db.UsageBatchesSending(ctx, polling); err == nil {
			q.mu.Lock()
			for _, id := range polling {
				if !still[id] {
					delete(q.polling, id)
				}
			}
			q.mu.Unlock()
		}
	}
	jobs := make([]worker.Job, len(bs))
	q.mu.Lock()
	defer q.mu.Unlock()
	if last && idle && len(bs) == 0 && (len(q.polling) == 0 || err != nil) {
		// Nothing left for this sync (or the database failed: the sync
		// reports it rather than wait).
		select {
		case <-q.drained:
		default:
			q.claimErr = err
			close(q.drained)
		}
	}
	q.inflight += len(bs)
	for i, b := range bs {
		q.seq++
		q.ids[q.seq] = b.ID
		jobs[i] = worker.Job{Lease: store.Lease{RecordID: q.seq, Token: b.LeaseToken}, Kind: batchKind, ID: b.ID, Item: b}
	}
	return jobs, err
}

func (q *batchQueue) Heartbeat(ctx context.Context, holder string, leases []store.Lease, lease time.Duration) (map[int64]bool, error) {
	byBatch := make(map[string]string, len(leases))
	back := make(map[string]int64, len(leases))
	q.mu.Lock()
	for _, le := range leases {
		if id, ok := q.ids[le.RecordID]; ok {
			byBatch[id], back[id] = le.Token, le.RecordID
		}
	}
	q.mu.Unlock()
	got, err := q.l.db.HeartbeatUsageBatches(ctx, holder, byBatch, lease, q.clock())
	out := make(map[int64]bool, len(got))
	for id := range got {
		out[back[id]] = true
	}
	return out, err
}

func (q *batchQueue) Release(ctx context.Context, holder string) error {
	return q.l.db.ReleaseUsageBatches(ctx, holder, q.clock())
}

func (q *batchQueue) forget(job worker.Job) {
	q.mu.Lock()
	if _, ok := q.ids[job.Lease.RecordID]; ok { // once (a refused Finish is followed by LeaseLost)
		delete(q.ids, job.Lease.RecordID)
		q.inflight--
	}
	q.mu.Unlock()
}

// attempt is what one run of a batch came to (before it is recorded).
type attempt struct {
	o        store.UsageBatchOutcome
	kind     string // the OnBatch outcome
	lookedUp bool
	polling  bool // an import batch whose import has not ended yet
}

func (q *batchQueue) Work(ctx context.Context, job worker.Job) (any, error) {
	// Every call of the ledger is of the usage share of Zuora's budget.
	return q.l.send(zuora.WithShare(ctx, zuora.ShareUsage), q.clock(), job.Item.(store.UsageBatch), q.rep)
}

// Finish records the attempt. An error from Work (the call's outcome is
// unknown, a cut-off, a panic, the database) leaves the batch to be sent
// again as is, with the same key, after the retry policy's wait.
func (q *batchQueue) Finish(ctx context.Context, holder string, job worker.Job, a worker.Attempt) error {
	defer q.forget(job)
	b := job.Item.(store.UsageBatch)
	now := q.clock()
	var at attempt
	if a.Err == nil {
		at, _ = a.Result.(attempt)
	} else {
		at = q.l.unknown(now, b, a.Err)
	}
	if err := q.l.db.FinishUsageBatch(ctx, holder, b, at.o, now); err != nil {
		return err
	}
	q.mu.Lock()
	if at.polling {
		q.polling[b.ID] = true
	} else {
		// Ended, or its status could not be read: a sync waits no more
		// for it (the next one, or serve's senders, read it again).
		delete(q.polling, b.ID)
	}
	q.mu.Unlock()
	q.l.cfg.OnBatch(at.kind, len(b.Rows))
	q.l.report(b, at, q.rep)
	return nil
}

func (q *batchQueue) LeaseLost(job worker.Job, a worker.Attempt) {
	q.forget(job)
	q.l.cfg.OnBatch("lease_lost", len(job.Item.(store.UsageBatch).Rows))
	q.l.log.Warn().Str("batch", job.ID).Msg("usage batch lease lost: another sender holds it now; this attempt's outcome was not recorded")
}

// send makes the call for one batch and says what to record.
func (l *Ledger) send(ctx context.Context, now time.Time, b store.UsageBatch, rep *Report) (attempt, error) {
	if len(b.Rows) == 0 {
		return attempt{o: store.UsageBatchOutcome{State: store.UsageBatchDone, Outcome: "no rows left"}, kind: "stored"}, nil
	}
	if b.Kind == store.UsageBatchImport && b.ImportStatusURL != "" {
		return l.pollImport(ctx, now, b, rep)
	}
	if now.Sub(b.FirstSentAt) >= l.cfg.KeyLifetime {
		return l.lookUp(ctx, now, b, rep)
	}
	if b.Kind == store.UsageBatchImport {
		return l.sendImport(ctx, now, b, rep)
	}
	recs := make([]zuora.Usage, len(b.Rows))
	for i, r := range b.Rows {
		rec, err := record(r)
		if err != nil {
			return attempt{}, reconcile.Terminal{Err: err}
		}
		recs[i] = rec
	}
	rep.add(func(rep *Report) { rep.Calls++ })
	results, callErr := l.z.CreateUsage(ctx, b.ID, recs)
	if ctx.Err() != nil {
		// Cut off mid-call: the outcome is unknown; sent again as is.
		return attempt{}, ctx.Err()
	}
	if callErr == nil && len(results) == len(recs) {
		return l.perRow(now, b, results), nil
	}
	failure := reconcile.Classify(callErr)
	_, isZ := zuora.AsError(callErr)
	if callErr != nil && results == nil && !failure.Credentials && (!isZ || !failure.Retryable) {
		// Refused for sure (nothing written): a Zuora error that retrying
		// cannot fix, or a failure before anything was sent. Each row is
		// retried on its own, with a new key.
		l.log.Warn().Err(callErr).Str("batch", b.ID).Int("rows", len(b.Rows)).Msg("usage batch refused")
		o := store.UsageBatchOutcome{State: store.UsageBatchFailed, Outcome: "refused: " + failure.Message, Error: failure.Message, CountAttempt: true}
		for _, r := range b.Rows {
			o.Release = append(o.Release, l.rejected(now, r, true, failure.Message))
		}
		return attempt{o: o, kind: "refused"}, nil
	}
	if callErr == nil {
		callErr = fmt.Errorf("zuora answered %d results for %d records", len(results), len(recs))
	}
	// Outcome unknown (timeout, lost response, 5xx, 429, lock, odd answer,
	// refused credentials): the same rows, the same key, later.
	return attempt{}, callErr
}

// unknown is the outcome of an attempt whose result is not known: the batch
// stays as it is, to be sent again with the same key after the retry wait
// (after the credentials pause, without counting, when Zuora refused
// billsync's credentials).
func (l *Ledger) unknown(now time.Time, b store.UsageBatch, err error) attempt {
	f := reconcile.Classify(err)
	o := store.UsageBatchOutcome{State: store.UsageBatchSending, Error: f.Message, CountAttempt: true,
		NextAttempt: now.Add(l.backoff(b.Attempts+1, f.RetryAfter))}
	if f.Credentials {
		o.CountAttempt, o.NextAttempt = false, now.Add(reconcile.CredentialsPause)
	}
	l.log.Warn().Str("batch", b.ID).Str("error", f.Message).Msg("usage batch outcome unknown; will resend with the same key")
	return attempt{o: o, kind: "unknown"}
}

// rejected releases a row Zuora refused: back to pending with a new attempt
// number (a new key next time), or held for a person once Zuora refused it
// MaxAttempts times.
func (l *Ledger) rejected(now time.Time, r store.UsageRow, solo bool, msg string) store.UsageRelease {
	rel := store.UsageRelease{RowID: r.ID, Solo: solo, Error: msg, NextAttempt: now.Add(l.backoff(r.Attempts+1, 0))}
	if r.Attempts+1 >= l.cfg.MaxAttempts {
		rel.Hold = true
		rel.Error = fmt.Sprintf("Zuora refused this row %d times, last: %s. Fix the cause, then Sync usage to Zuora", r.Attempts+1, msg)
	}
	return rel
}

// perRow turns Zuora's per-row answers into the outcome: stored rows get
// their ids; rejected ones go back to pending, to be retried alone.
func (l *Ledger) perRow(now time.Time, b store.UsageBatch, results []zuora.ActionResult) attempt {
	o := store.UsageBatchOutcome{State: store.UsageBatchDone, CountAttempt: true, Sent: map[int64]string{}}
	for i, res := range results {
		r := b.Rows[i]
		if res.Success {
			o.Sent[r.ID] = res.ID
			continue
		}
		msg, solo := "Zuora rejected the row", true
		if e := res.Err(); e != nil {
			// A retryable row error (lock contention) may go with others
			// again; a rejected row is retried alone.
			msg, solo = e.Error(), !zuora.IsRetryable(e)
		}
		o.Release = append(o.Release, l.rejected(now, r, solo, msg))
		l.log.Warn().Str("error", msg).Str("batch", b.ID).Int64("row", r.ID).Str("subscription", r.SubscriptionID).
			Msg("usage row rejected by Zuora; it will be retried alone")
	}
	o.Outcome = fmt.Sprintf("%d stored, %d rejected", len(o.Sent), len(o.Release))
	return attempt{o: o, kind: "stored"}
}

// lookUp handles a batch whose outcome stayed unknown for longer than Zuora
// keeps idempotency keys: resending with the same key could now create the
// records again, so the rows are looked up in Zuora by their description;
// found rows are recorded as sent, the others go back to pending (new key).
// A failed look-up is an error: the batch is looked up again later.
func (l *Ledger) lookUp(ctx context.Context, now time.Time, b store.UsageBatch, rep *Report) (attempt, error) {
	type want struct{ desc, sub, charge string }
	wanted := map[want]int{}
	accounts := map[string]bool{}
	for i, r := range b.Rows {
		wanted[want{r.Description, r.SubscriptionNumber, r.ChargeNumber}] = i
		accounts[r.AccountNumber] = true
	}
	found := map[int]string{}
	for acct := range accounts {
		rep.add(func(rep *Report) { rep.Calls++ })
		for rec, err := range l.z.ListUsageByAccount(ctx, acct) {
			if err != nil {
				return attempt{}, fmt.Errorf("usage look-up: %w", err)
			}
			if i, ok := wanted[want{rec.Description, rec.SubscriptionNumber, rec.ChargeNumber}]; ok {
				if _, dup := found[i]; !dup {
					found[i] = rec.ID
				}
			}
			if len(found) == len(b.Rows) {
				break
			}
		}
	}
	o := store.UsageBatchOutcome{State: store.UsageBatchDone, Sent: map[int64]string{},
		Outcome: fmt.Sprintf("looked up after %s: %d found in Zuora, %d to send again", l.cfg.KeyLifetime, len(found), len(b.Rows)-len(found))}
	for i, r := range b.Rows {
		if id, ok := found[i]; ok {
			o.Sent[r.ID] = id
			continue
		}
		// Not Zuora's refusal: it does not count towards holding the row.
		o.Release = append(o.Release, store.UsageRelease{RowID: r.ID, Error: "not found in Zuora after the idempotency key expired; sending again",
			NextAttempt: now.Add(l.backoff(r.Attempts+1, 0))})
	}
	l.log.Info().Str("batch", b.ID).Int("found", len(found)).Int("resend", len(b.Rows)-len(found)).Msg("usage batch looked up in Zuora after key expiry")
	return attempt{o: o, kind: "looked_up", lookedUp: true}, nil
}

// report adds a recorded attempt to the sync's report.
func (l *Ledger) report(b store.UsageBatch, at attempt, rep *Report) {
	released := make(map[int64]store.UsageRelease, len(at.o.Release))
	for _, r := range at.o.Release {
		released[r.RowID] = r
	}
	rep.add(func(rep *Report) {
		switch {
		case at.o.State == store.UsageBatchSending:
			rep.BatchesUnknown++
			return
		case at.lookedUp:
			rep.RowsLookedUp += len(b.Rows)
			rep.RowsSent += len(at.o.Sent)
			return
		}
		for _, r := range b.Rows {
			if zid, ok := at.o.Sent[r.ID]; ok {
				rep.RowsSent++
				if rep.collect {
					rep.Sent = append(rep.Sent, SentRow{SubscriptionID: r.SubscriptionID, ChargeID: r.ChargeID, WindowStart: r.WindowStart, Correction: r.Seq,
						Quantity: r.Quantity, ChargeNumber: r.ChargeNumber, ZuoraUsageID: zid, Description: r.Description})
				}
				continue
			}
			rel, ok := released[r.ID]
			if !ok {
				continue
			}
			if rel.Hold {
				rep.RowsHeld++
				if rep.collect {
					rep.Held = append(rep.Held, waiting(r, rel.Error))
				}
				continue
			}
			rep.RowsFailed++
			if rep.collect {
				rep.Failed = append(rep.Failed, waiting(r, rel.Error))
			}
		}
	})
}
