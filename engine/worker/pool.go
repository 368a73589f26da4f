// Package worker runs reconcilers over due sync records: it claims records,
// runs at most one reconcile per entity at a time, records outcomes with
// backoff and dead-lettering, and releases claims on stop.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine/store"
)

// Result is what a reconcile achieved (controller-runtime's contract, adapted).
type Result struct {
	// Skipped, when set, records the record as "will not be synced" with this reason.
	Skipped string
	// Wait, when set, leaves the record pending for this long without counting an
	// attempt: a dependency is not ready yet.
	Wait       time.Duration
	WaitReason string
	// Drifted marks the record drifted (Zuora differs) with Detail as the reason.
	Drifted bool

	PayloadHash string
	PushedState string
	ZuoraID     string
	ZuoraNumber string
	ZuoraURL    string
	Detail      string
	Calls       int
}

// Reconciler brings one entity of one kind in line with Zuora.
type Reconciler interface {
	Reconcile(ctx context.Context, rec store.SyncRecord, log zerolog.Logger) (Result, error)
}

// ClassifiedError is an error that says whether retrying may help.
type ClassifiedError interface {
	error
	Retryable() bool
}

// ErrorDetails lets an error provide Zuora's code, request id and Retry-After.
type ErrorDetails interface {
	ErrorCode() string
	ErrorMessage() string
	ErrorRequestID() string
	ErrorRetryAfter() time.Duration
}

// Terminal wraps an error that retrying cannot fix.
type Terminal struct{ Err error }

func (t Terminal) Error() string   { return t.Err.Error() }
func (t Terminal) Unwrap() error   { return t.Err }
func (t Terminal) Retryable() bool { return false }

// Options configures a pool.
type Options struct {
	Workers      int           // concurrent reconciles (default 8)
	Batch        int           // records claimed per round (default 2×Workers)
	Lease        time.Duration // claim lifetime before the sweeper releases it (default 5m)
	PollInterval time.Duration // idle wait between claims (default 1s)
	MaxAttempts  int           // failed attempts before dead (default 8)
	MaxBackoff   time.Duration // longest retry delay (default 1h)
	BackoffUnit  time.Duration // attempt⁴ × unit is the retry delay (default 1s; tests shrink it)
	Kinds        func() []string
	Logger       zerolog.Logger
	ID           string // this process's worker id (random if empty)
	// KeepClaimsOnStop leaves claims in flight when Run stops, as a crash
	// would; the sweeper releases them after the lease. Tests use it.
	KeepClaimsOnStop bool
	// OnOutcome, if set, observes every finished reconcile (CLI output, metrics).
	OnOutcome func(rec store.SyncRecord, o store.Outcome)
}

// Pool claims and reconciles due records.
type Pool struct {
	db    *store.DB
	recs  map[string]Reconciler
	opts  Options
	kick  chan struct{}
	mu    sync.Mutex
	stats Stats
}

// Stats counts reconcile outcomes since start.
type Stats struct {
	Reconciled, Synced, Skipped, Failed, Dead, Waited, Drifted, Calls int64
}

// New returns a pool running the given reconcilers (by entity kind).
func New(db *store.DB, recs map[string]Reconciler, opts Options) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Batch <= 0 {
		opts.Batch = 2 * opts.Workers
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Hour
	}
	if opts.BackoffUnit <= 0 {
		opts.BackoffUnit = time.Second
	}
	if opts.ID == "" {
		opts.ID = "w-" + randomID()
	}
	if opts.Kinds == nil {
		kinds := make([]string, 0, len(recs))
		for k := range recs {
			kinds = append(kinds, k)
		}
		opts.Kinds = func() []string { return kinds }
	}
	return &Pool{db: db, recs: recs, opts: opts, kick: make(chan struct{}, 1)}
}

// ID is the pool's worker id.
func (p *Pool) ID() string { return p.opts.ID }

// Kick wakes the pool to claim now.
func (p *Pool) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stats returns counters since start.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Run claims and reconciles until ctx ends, then waits for the reconciles
// under way and releases its unfinished claims.
//
// Claiming streams: Run keeps a short queue of claimed records and starts one
// whenever a worker is free, so the workers stay busy even when some
// reconciles take much longer than others (a Zuora call against a few
// database reads). It claims a batch when the queue runs low, so a claim
// (which sorts the due records) serves many reconciles.
func (p *Pool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		if p.opts.KeepClaimsOnStop {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.db.ReleaseWorker(rctx, p.opts.ID); err != nil {
			p.opts.Logger.Warn().Err(err).Msg("release claims on stop failed")
		}
	}()
	done := make(chan struct{}, p.opts.Workers)
	var queue []store.SyncRecord
	running := 0
	lowWater := max(1, p.opts.Workers/2)
	// idle: the last claim found fewer records than asked; claim again after
	// a kick, the poll interval, or once enough reconciles have finished
	// (they may have made other records due).
	idle, finished := false, 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		for len(queue) > 0 && running < p.opts.Workers {
			rec := queue[0]
			queue = queue[1:]
			running++
			wg.Add(1)
			go func(rec store.SyncRecord) {
				defer func() { done <- struct{}{}; wg.Done() }()
				p.process(ctx, rec)
			}(rec)
		}
		if idle && (finished >= lowWater || running == 0 && finished > 0) {
			idle = false
		}
		if !idle && len(queue) < lowWater {
			n := p.opts.Batch + p.opts.Workers - running - len(queue)
			recs, err := p.db.Claim(ctx, p.opts.ID, p.opts.Kinds(), n, p.opts.Lease)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				p.opts.Logger.Error().Err(err).Msg("claim round failed")
			}
			queue = append(queue, recs...)
			finished = 0
			idle = err != nil || len(recs) < n
			if len(recs) > 0 {
				continue
			}
		}
		var poll <-chan time.Time
		var t *time.Timer
		if idle {
			t = time.NewTimer(p.opts.PollInterval)
			poll = t.C
		}
		select {
		case <-ctx.Done():
		case <-p.kick:
			idle = false
		case <-done:
			running--
			finished++
		case <-poll:
			idle = false
		}
		if t != nil {
			t.Stop()
		}
	}
}

// Drain reconciles until nothing is due (records waiting on a later retry time
// are left), or ctx ends. It returns the number of reconciles run.
func (p *Pool) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := p.round(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, ctx.Err()
		}
	}
}

// round claims one batch and reconciles it with up to Workers goroutines.
func (p *Pool) round(ctx context.Context) (int, error) {
	recs, err := p.db.Claim(ctx, p.opts.ID, p.opts.Kinds(), p.opts.Batch, p.opts.Lease)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, p.opts.Workers)
	var wg sync.WaitGroup
	for _, rec := range recs {
		sem <- struct{}{}
		wg.Add(1)
		go func(rec store.SyncRecord) {
			defer func() { <-sem; wg.Done() }()
			p.process(ctx, rec)
		}(rec)
	}
	wg.Wait()
	return len(recs), nil
}

func (p *Pool) process(ctx context.Context, rec store.SyncRecord) {
	syncID := randomID()
	log := p.opts.Logger.With().Str("sync_id", syncID).Str("kind", rec.EntityKind).Str("entity_id", rec.EntityID).Logger()
	started := time.Now().UTC()
	rc, ok := p.recs[rec.EntityKind]
	var res Result
	var err error
	if !ok {
		err = Terminal{errors.New("no reconciler for entity kind " + rec.EntityKind)}
	} else {
		res, err = safeReconcile(ctx, rc, rec, log)
	}
	if ctx.Err() != nil && err != nil {
		// Stopping: leave the claim for ReleaseWorker.
		return
	}
	o := p.outcome(rec, res, err)
	o.SyncID, o.StartedAt, o.Detail, o.Calls = syncID, started, res.Detail, res.Calls
	if o.Detail == "" {
		o.Detail = o.Reason
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, ferr := p.db.Finish(fctx, rec, p.opts.ID, o); ferr != nil {
		log.Error().Err(ferr).Msg("recording the outcome failed")
	}
	if p.opts.OnOutcome != nil {
		p.opts.OnOutcome(rec, o)
	}
	ev := log.Debug()
	if o.State == store.StateFailed || o.State == store.StateDead {
		ev = log.Warn().Str("error_code", o.ErrorCode).Str("error", o.ErrorMessage).Str("zuora_request_id", o.RequestID)
	}
	ev.Str("state", o.State).Int("zuora_calls", res.Calls).Dur("took", time.Since(started)).Msg("reconciled")
	p.mu.Lock()
	p.stats.Reconciled++
	p.stats.Calls += int64(res.Calls)
	switch o.State {
	case store.StateSynced:
		p.stats.Synced++
	case store.StateSkipped:
		p.stats.Skipped++
	case store.StateFailed:
		p.stats.Failed++
	case store.StateDead:
		p.stats.Dead++
	case store.StateDrifted:
		p.stats.Drifted++
	default:
		p.stats.Waited++
	}
	p.mu.Unlock()
}

func safeReconcile(ctx context.Context, rc Reconciler, rec store.SyncRecord, log zerolog.Logger) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error().Interface("panic", r).Msg("reconcile panicked")
			err = Terminal{errors.New("internal error while reconciling; see the log")}
		}
	}()
	return rc.Reconcile(ctx, rec, log)
}

func (p *Pool) outcome(rec store.SyncRecord, res Result, err error) store.Outcome {
	now := time.Now().UTC()
	base := store.Outcome{PayloadHash: res.PayloadHash, PushedState: res.PushedState, ZuoraID: res.ZuoraID,
		ZuoraNumber: res.ZuoraNumber, ZuoraURL: res.ZuoraURL}
	if err == nil {
		switch {
		case res.Skipped != "":
			base.State, base.Reason = store.StateSkipped, res.Skipped
		case res.Wait > 0:
			base.State, base.Reason, base.NextAttempt = store.StatePending, res.WaitReason, now.Add(res.Wait)
		case res.Drifted:
			base.State, base.Reason = store.StateDrifted, res.Detail
		default:
			base.State = store.StateSynced
		}
		return base
	}
	base.ErrorMessage = err.Error()
	var d ErrorDetails
	var retryAfter time.Duration
	if errors.As(err, &d) {
		base.ErrorCode, base.ErrorMessage, base.RequestID = d.ErrorCode(), d.ErrorMessage(), d.ErrorRequestID()
		retryAfter = d.ErrorRetryAfter()
	}
	retryable := true
	var ce ClassifiedError
	if errors.As(err, &ce) {
		retryable = ce.Retryable()
	}
	base.CountAttempt = true
	attempt := rec.Attempts + 1
	if !retryable || attempt >= p.opts.MaxAttempts {
		base.State = store.StateDead
		if retryable {
			base.Reason = "gave up after " + strconv.Itoa(attempt) + " attempts"
		}
		return base
	}
	base.State = store.StateFailed
	base.NextAttempt = now.Add(Backoff(attempt, p.opts.BackoffUnit, retryAfter, p.opts.MaxBackoff))
	return base
}

// Backoff is attempt⁴ units with ±10% jitter (River's policy), at least
// retryAfter, at most max.
func Backoff(attempt int, unit, retryAfter, max time.Duration) time.Duration {
	d := time.Duration(math.Pow(float64(attempt), 4)) * unit
	d += time.Duration((mrand.Float64()*0.2 - 0.1) * float64(d))
	if d < retryAfter {
		d = retryAfter
	}
	if d > max {
		d = max
	}
	if d < unit {
		d = unit
	}
	return d
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
