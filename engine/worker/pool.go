// Package worker runs leased work from a Queue: it claims jobs with a lease
// (a new token per claim), extends the leases it holds while a job waits or
// runs, ends each job before its lease could lapse, has the queue record the
// outcome (refused when the lease was lost), turns panics into retryable
// failures, and on stop lets the jobs under way finish, then releases its
// claims. The sync records (New: reconcilers, package reconcile's contract,
// with the shared retry policy and dead-lettering) and the callout inbox
// (engine/inbound) are its queues.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/retry"
	"github.com/billsync/billsync/engine/store"
)

// Result is reconcile.Result (kept so the reconcilers' payload code need not
// change its spelling).
type Result = reconcile.Result

// Terminal is reconcile.Terminal.
type Terminal = reconcile.Terminal

// Options configures a pool.
type Options struct {
	Workers int // concurrent reconciles (default 8)
	Batch   int // records claimed per round (default 2×Workers)
	// Lease is a claim's lifetime. While a reconcile runs, the pool extends
	// it every Lease/3 (heartbeat); a claim whose holder stopped extending it
	// lapses, and the sweeper returns the record to the queue (default 1m).
	Lease time.Duration
	// Timeout is the longest one reconcile may run (default 5m). Its context
	// also ends a fifth of a lease before the lease would lapse, should
	// heartbeats stop succeeding: a reconcile never runs past its lease.
	Timeout time.Duration
	// StopTimeout is how long Run lets the reconciles under way finish after
	// its context ends before it cancels them (default 10s); then it releases
	// its claims.
	StopTimeout  time.Duration
	PollInterval time.Duration // idle wait between claims (default 1s)
	// CredentialsPause is how long the pool claims nothing after Zuora
	// refused billsync's credentials (default reconcile.CredentialsPause).
	CredentialsPause time.Duration
	Logger           zerolog.Logger
	ID               string // this process's worker id (random if empty)
	// KeepClaimsOnStop makes Run stop as a crash would: jobs under way are
	// cancelled at once and their claims stay in flight until their lease
	// lapses. Tests use it.
	KeepClaimsOnStop bool

	// The rest concern the sync-record queue (New).

	// DriftChecks is the most drift checks the pool runs at once (0: no
	// bound); they are claimed only after every due reconcile.
	DriftChecks int
	MaxAttempts int             // failed attempts before dead (default 8)
	MaxBackoff  time.Duration   // longest retry delay (default 1h)
	BackoffUnit time.Duration   // attempt⁴ × unit is the retry delay (default 1s; tests shrink it)
	Kinds       func() []string // the entity kinds to claim (default: those of the reconcilers)
	// OnOutcome, if set, observes every finished reconcile (CLI output,
	// metrics), including those whose outcome was refused because the lease
	// was lost (State OutcomeLeaseLost).
	OnOutcome func(rec store.SyncRecord, o store.Outcome)
}

// OutcomeLeaseLost is the outcome state reported to OnOutcome when a
// reconcile's lease was lost: nothing was recorded.
const OutcomeLeaseLost = "lease_lost"

// Job is one claimed unit of work of a Queue.
type Job struct {
	Lease    store.Lease
	Kind, ID string // what it is (logs)
	Item     any    // the queue's own row
}

// Attempt is one run of a job, for Queue.Finish.
type Attempt struct {
	ID      string // the sync id in logs and history
	Started time.Time
	Result  any   // what Work returned; ignored when Err is set
	Err     error // nil, the work's error, or a retryable cut-off or panic
	Log     zerolog.Logger
}

// Queue is a table of leased work the pool runs: sync records (New) or, for
// example, the callout inbox. Every method but Work is a statement on the
// queue's table; the pool supplies leases, heartbeats, deadlines, panics as
// retryable failures and the soft stop.
type Queue interface {
	// Claim claims up to n due jobs for worker, each with a new lease token.
	Claim(ctx context.Context, worker string, n int, lease time.Duration) ([]Job, error)
	// Heartbeat extends the given leases worker still holds (not lapsed, same
	// token) to now+lease and returns the ids it extended.
	Heartbeat(ctx context.Context, worker string, leases []store.Lease, lease time.Duration) (map[int64]bool, error)
	// Work does the job; ctx ends before the lease could lapse.
	Work(ctx context.Context, job Job) (any, error)
	// Finish records the attempt's outcome, or refuses with
	// store.ErrLeaseLost (writing nothing) when worker's lease is gone.
	Finish(ctx context.Context, worker string, job Job, a Attempt) error
	// LeaseLost reports an attempt whose outcome could not be recorded.
	LeaseLost(job Job, a Attempt)
	// Release hands every claim of worker back (soft stop).
	Release(ctx context.Context, worker string) error
}

// Pool claims and runs due jobs of a queue.
type Pool struct {
	q     Queue
	opts  Options
	kick  chan struct{}
	mu    sync.Mutex
	stats Stats
	held  map[store.Lease]*attempt // claims held: queued or being reconciled
	// pausedUntil: Zuora refused billsync's credentials; no claims until then.
	pausedUntil time.Time
	pauseCause  string
}

// CredentialsReason is the reason a record waits while Zuora refuses
// billsync's credentials.
const CredentialsReason = "paused: Zuora refused billsync's credentials; fix the Zuora client id and secret (or the API user's permissions). Work resumes by itself once Zuora accepts them"

// Paused reports whether the pool stopped claiming because Zuora refused
// billsync's credentials, and Zuora's message.
func (p *Pool) Paused() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Before(p.pausedUntil), p.pauseCause
}

// notePause starts a pause when Zuora refused the credentials. A pause ends
// by itself; the first attempt after it probes (and pauses again if Zuora
// still refuses).
func (p *Pool) notePause(err error) {
	if err == nil {
		return
	}
	f := reconcile.Classify(err)
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.Credentials {
		p.pausedUntil, p.pauseCause = time.Now().Add(p.opts.CredentialsPause), f.Message
	}
}

// attempt is one claim the pool holds, queued or under way: its lease, until
// when (locally) it surely holds, and, once started, what ends its context.
type attempt struct {
	lease  store.Lease
	valid  time.Time // a fifth of a lease before the lease could lapse
	lost   bool      // a heartbeat found the lease gone
	cancel context.CancelCauseFunc
	guard  *time.Timer // ends the reconcile at valid
}

var (
	errLeaseLost     = errors.New("the lease was lost (it lapsed or the record was claimed again)")
	errLeaseExpiring = errors.New("the lease is about to lapse and could not be extended")
)

// Stats counts reconcile outcomes since start.
type Stats struct {
	Reconciled, Synced, Skipped, Failed, Dead, Waited, Drifted, Calls int64
	// LeaseLost counts reconciles whose outcome was refused: their lease had
	// lapsed or the record had been claimed again.
	LeaseLost int64
}

// New returns a pool reconciling due sync records with the given reconcilers
// (by entity kind).
func New(db *store.DB, recs map[string]reconcile.Reconciler, opts Options) *Pool {
	if opts.Kinds == nil {
		kinds := make([]string, 0, len(recs))
		for k := range recs {
			kinds = append(kinds, k)
		}
		opts.Kinds = func() []string { return kinds }
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.CredentialsPause <= 0 {
		opts.CredentialsPause = reconcile.CredentialsPause
	}
	sq := &syncQueue{db: db, recs: recs, opts: opts, policy: retry.Policy{Unit: opts.BackoffUnit, Max: opts.MaxBackoff}}
	p := NewQueue(sq, opts)
	sq.pool = p
	return p
}

// NewQueue returns a pool running the jobs of q. Options that concern sync
// records (Kinds, MaxAttempts, backoff, OnOutcome) are the queue's business.
func NewQueue(q Queue, opts Options) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Batch <= 0 {
		opts.Batch = 2 * opts.Workers
	}
	if opts.Lease <= 0 {
		opts.Lease = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.CredentialsPause <= 0 {
		opts.CredentialsPause = reconcile.CredentialsPause
	}
	if opts.ID == "" {
		opts.ID = "w-" + randomID()
	}
	return &Pool{q: q, opts: opts, kick: make(chan struct{}, 1), held: map[store.Lease]*attempt{}}
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

func (p *Pool) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// Stats returns counters since start.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// claimed is a claimed job, queued or under way, and its claim.
type claimed struct {
	job Job
	a   *attempt
}

// claim claims up to n records and holds them: from now on the heartbeat
// extends their leases, queued or not.
func (p *Pool) claim(ctx context.Context, n int) ([]claimed, error) {
	at := time.Now() // the leases end no earlier than at + Lease
	jobs, err := p.q.Claim(ctx, p.opts.ID, n, p.opts.Lease)
	out := make([]claimed, len(jobs))
	p.mu.Lock()
	for i, j := range jobs {
		a := &attempt{lease: j.Lease, valid: p.validUntil(at)}
		p.held[a.lease] = a
		out[i] = claimed{job: j, a: a}
	}
	p.mu.Unlock()
	return out, err
}

// drop forgets claims the pool no longer holds (finished, lost or released).
func (p *Pool) drop(cs ...claimed) {
	p.mu.Lock()
	for _, c := range cs {
		delete(p.held, c.a.lease)
	}
	p.mu.Unlock()
	if d, ok := p.q.(dropper); ok {
		for _, c := range cs {
			d.Dropped(c.job)
		}
	}
}

// dropper is a Queue that keeps count of the claims the pool holds: the
// pool tells it of every claim it forgets, whatever became of it.
type dropper interface{ Dropped(Job) }

// Run claims and reconciles until ctx ends. Then it claims nothing more, lets
// the reconciles under way finish for up to StopTimeout (cancelling them
// after that), and releases its unfinished claims: a soft stop.
//
// Claiming streams: Run keeps a short queue of claimed records and starts one
// whenever a worker is free, so the workers stay busy even when some
// reconciles take much longer than others (a Zuora call against a few
// database reads). It claims a batch when the queue runs low, so a claim
// (which sorts the due records) serves many reconciles. While reconciles run,
// a heartbeat extends their leases.
func (p *Pool) Run(ctx context.Context) error {
	// Reconciles run on their own context, so a stop lets them finish.
	wctx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	if p.opts.KeepClaimsOnStop {
		wctx = ctx // a crash: everything under way is cut off
	}
	var wg sync.WaitGroup
	var queue []claimed
	stopBeat := p.startHeartbeat(context.WithoutCancel(ctx))
	defer func() {
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(p.opts.StopTimeout):
			p.opts.Logger.Warn().Stringer("stop_timeout", p.opts.StopTimeout).Msg("reconciles did not finish in time; cancelling them")
			cancelWork()
			<-finished
		}
		stopBeat()
		p.drop(queue...) // claimed, never started: released below (or, after a crash, by the sweeper)
		if p.opts.KeepClaimsOnStop {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.q.Release(rctx, p.opts.ID); err != nil {
			p.opts.Logger.Warn().Err(err).Msg("release claims on stop failed")
		}
	}()
	done := make(chan struct{}, p.opts.Workers)
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
			c := queue[0]
			queue = queue[1:]
			running++
			wg.Add(1)
			go func(c claimed) {
				defer func() { done <- struct{}{}; wg.Done() }()
				p.process(wctx, c)
			}(c)
		}
		if idle && (finished >= lowWater || running == 0 && finished > 0) {
			idle = false
		}
		if paused, _ := p.Paused(); paused && !idle {
			idle = true // Zuora refuses the credentials: claim nothing until the pause ends
		}
		if !idle && len(queue) < lowWater {
			n := p.opts.Batch + p.opts.Workers - running - len(queue)
			recs, err := p.claim(ctx, n)
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
// are left), or ctx ends. It returns the number of reconciles run. Unlike
// Run, the end of ctx cuts the reconciles under way off and leaves their
// claims for the sweeper.
func (p *Pool) Drain(ctx context.Context) (int, error) {
	stopBeat := p.startHeartbeat(ctx)
	defer stopBeat()
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
	recs, err := p.claim(ctx, p.opts.Batch)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, p.opts.Workers)
	var wg sync.WaitGroup
	for _, c := range recs {
		sem <- struct{}{}
		wg.Add(1)
		go func(c claimed) {
			defer func() { <-sem; wg.Done() }()
			p.process(ctx, c)
		}(c)
	}
	wg.Wait()
	return len(recs), nil
}

// validUntil is when an attempt must end given a (local) moment at which the
// lease was at least Lease long: a fifth of a lease early, so the outcome is
// recorded before the lease lapses. Heartbeats run every third of a lease,
// so two may fail before an attempt is cut off.
func (p *Pool) validUntil(from time.Time) time.Time {
	return from.Add(p.opts.Lease - p.opts.Lease/5)
}

// startHeartbeat extends the leases of the reconciles under way every third
// of a lease until the returned stop is called. A lease that could not be
// extended because it was lost ends its reconcile at once; when the heartbeat
// itself fails (the database is unreachable), each reconcile ends when its
// guard fires, before its lease lapses.
func (p *Pool) startHeartbeat(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(p.opts.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.heartbeat(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (p *Pool) heartbeat(ctx context.Context) {
	p.mu.Lock()
	held := make([]*attempt, 0, len(p.held))
	leases := make([]store.Lease, 0, len(p.held))
	for l, a := range p.held {
		held = append(held, a)
		leases = append(leases, l)
	}
	p.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	sent := time.Now()
	still, err := p.q.Heartbeat(ctx, p.opts.ID, leases, p.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			p.opts.Logger.Warn().Err(err).Int("leases", len(leases)).Msg("lease heartbeat failed")
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range held {
		if !still[a.lease.RecordID] {
			a.lost = true
			if a.cancel != nil {
				a.cancel(errLeaseLost)
			}
			continue
		}
		a.valid = p.validUntil(sent)
		if a.guard != nil {
			a.guard.Reset(time.Until(a.valid))
		}
	}
}

func (p *Pool) process(ctx context.Context, c claimed) {
	job, a := c.job, c.a
	defer p.drop(c)
	at := Attempt{ID: randomID(), Started: time.Now().UTC()}
	at.Log = p.opts.Logger.With().Str("sync_id", at.ID).Str("kind", job.Kind).Str("entity_id", job.ID).Logger()
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rctx, cancelTimeout := context.WithTimeout(rctx, p.opts.Timeout)
	defer cancelTimeout()
	p.mu.Lock()
	if a.lost || !time.Now().Before(a.valid) {
		// Lost (or about to lapse) while queued: someone else may hold it
		// now; leave it.
		p.mu.Unlock()
		p.leaseLost(job, at)
		return
	}
	a.cancel = cancel
	a.guard = time.AfterFunc(time.Until(a.valid), func() { cancel(errLeaseExpiring) })
	p.mu.Unlock()
	defer a.guard.Stop()

	at.Result, at.Err = safeWork(at.Log.WithContext(rctx), p.q, job, at.Log)
	p.notePause(at.Err)
	if ctx.Err() != nil && at.Err != nil {
		// Stopping: leave the claim for Release (or, after a crash, the sweeper).
		return
	}
	if errors.Is(context.Cause(rctx), errLeaseLost) {
		p.leaseLost(job, at)
		return
	}
	if at.Err != nil && rctx.Err() != nil {
		// Cut off by the attempt's deadline: a retryable failure.
		cause := context.Cause(rctx)
		if errors.Is(cause, context.DeadlineExceeded) {
			cause = errors.New("the reconcile took longer than its timeout (" + p.opts.Timeout.String() + ")")
		}
		at.Err = cutOff{cause: cause, err: at.Err}
	}
	fctx, cancelFinish := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelFinish()
	if ferr := p.q.Finish(fctx, p.opts.ID, job, at); ferr != nil {
		if errors.Is(ferr, store.ErrLeaseLost) {
			p.leaseLost(job, at)
			return
		}
		at.Log.Error().Err(ferr).Msg("recording the outcome failed")
	}
}

// cutOff is a reconcile ended by its deadline: retryable whatever it returned.
type cutOff struct{ cause, err error }

func (c cutOff) Error() string {
	if f := reconcile.Classify(c.err); f.Message != "" {
		return c.cause.Error() + ": " + f.Message
	}
	return c.cause.Error()
}
func (c cutOff) Unwrap() error   { return c.err }
func (c cutOff) Retryable() bool { return true }

// leaseLost counts and reports an attempt whose outcome cannot be recorded:
// another claim may hold the job, and this outcome may rest on a state that
// holder has changed.
func (p *Pool) leaseLost(job Job, a Attempt) {
	a.Log.Warn().Msg("lease lost: the outcome of this attempt was not recorded")
	p.mu.Lock()
	p.stats.LeaseLost++
	p.mu.Unlock()
	p.q.LeaseLost(job, a)
}

// safeWork turns a panic into an ordinary retryable failure whose message
// carries the panic value and the stack (kept in the attempt's history).
func safeWork(ctx context.Context, q Queue, job Job, log zerolog.Logger) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			stack := string(debug.Stack())
			log.Error().Interface("panic", r).Str("stack", stack).Msg("panic while working")
			res, err = nil, fmt.Errorf("panic while reconciling: %v\n%s", r, stack)
		}
	}()
	return q.Work(ctx, job)
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
