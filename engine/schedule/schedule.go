// Package schedule runs billsync's periodic jobs with robfig/cron/v3. Jobs only
// enqueue or do bounded work. One replica at a time is the leader (a lease row
// in the database); each job runs once per period even across replicas (a
// unique job_runs row per job and period).
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine/store"
)

// Job is one scheduled job.
type Job struct {
	Name string
	// Spec is a cron spec ("@every 1m", "5 * * * *").
	Spec string
	// Period names the run a time belongs to; one run per period (default: the minute).
	Period func(time.Time) string
	Run    func(ctx context.Context) (detail string, err error)
	// Idle, if set, reports after a successful run that it did nothing (an
	// empty sweep): the run is logged at debug, not info.
	Idle func() bool
}

// Hourly is a Period: the UTC hour.
func Hourly(t time.Time) string { return t.UTC().Format("2006-01-02T15") }

// Every returns a Period of d: one run per d-long slice of time (the
// sweeper's BILLSYNC_SWEEP_INTERVAL, which a per-minute period ignored).
func Every(d time.Duration) func(time.Time) string {
	return func(t time.Time) string { return t.UTC().Truncate(d).Format(time.RFC3339) }
}

// Minutely is a Period: the UTC minute.
func Minutely(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

const leaseName = "scheduler"

// Scheduler runs jobs on the leader replica.
type Scheduler struct {
	db       *store.DB
	log      zerolog.Logger
	holder   string
	leaseTTL time.Duration
	leader   atomic.Bool
	ctx      atomic.Pointer[context.Context]
	cron     *cron.Cron
	mu       sync.Mutex
	jobs     map[string]Job
	entries  map[string]cron.EntryID
	// OnRun, if set, observes every finished run (metrics).
	OnRun func(job string, ok bool, took time.Duration)
}

// New returns a scheduler; holder identifies this replica (random if empty).
func New(db *store.DB, log zerolog.Logger, holder string, leaseTTL time.Duration) *Scheduler {
	if holder == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		holder = "r-" + hex.EncodeToString(b[:])
	}
	if leaseTTL <= 0 {
		leaseTTL = 15 * time.Second
	}
	return &Scheduler{db: db, log: log, holder: holder, leaseTTL: leaseTTL,
		cron: cron.New(cron.WithLocation(time.UTC)), jobs: map[string]Job{}, entries: map[string]cron.EntryID{}}
}

// Holder is this replica's lease holder id.
func (s *Scheduler) Holder() string { return s.holder }

// IsLeader reports whether this replica runs the schedule now.
func (s *Scheduler) IsLeader() bool { return s.leader.Load() }

// Add registers a job.
func (s *Scheduler) Add(j Job) error {
	if j.Period == nil {
		j.Period = Minutely
	}
	id, err := s.cron.AddFunc(j.Spec, func() { s.fire(j) })
	if err != nil {
		return fmt.Errorf("schedule %s: %w", j.Name, err)
	}
	s.mu.Lock()
	s.jobs[j.Name], s.entries[j.Name] = j, id
	s.mu.Unlock()
	return nil
}

// Next returns each job's next scheduled run.
func (s *Scheduler) Next() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for name, id := range s.entries {
		out[name] = s.cron.Entry(id).Next
	}
	return out
}

// Jobs lists the registered job names.
func (s *Scheduler) Jobs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.jobs))
	for n := range s.jobs {
		out = append(out, n)
	}
	return out
}

// Run keeps the lease and the cron schedule going until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	s.ctx.Store(&ctx)
	s.renew(ctx)
	s.cron.Start()
	t := time.NewTicker(s.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-s.cron.Stop().Done()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = s.db.ReleaseLease(rctx, leaseName, s.holder)
			cancel()
			s.leader.Store(false)
			return
		case <-t.C:
			s.renew(ctx)
		}
	}
}

func (s *Scheduler) renew(ctx context.Context) {
	ok, err := s.db.TryLease(ctx, leaseName, s.holder, s.leaseTTL)
	if err != nil {
		s.log.Warn().Err(err).Msg("scheduler lease renewal failed")
		ok = false
	}
	if ok != s.leader.Load() {
		s.log.Info().Bool("leader", ok).Str("holder", s.holder).Msg("scheduler leadership changed")
		if ok {
			go s.catchUp(ctx)
		}
	}
	s.leader.Store(ok)
}

// prevTick is the latest time at or before now that spec scheduled (false
// for "@every" specs, which have no fixed times, and for a bad spec).
func prevTick(spec string, now time.Time) (time.Time, bool) {
	if strings.HasPrefix(spec, "@") {
		return time.Time{}, false
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return time.Time{}, false
	}
	now = now.UTC()
	t := sched.Next(now.Add(-25 * time.Hour)) // the jobs are hourly or daily
	if t.After(now) {
		return time.Time{}, false
	}
	for n := sched.Next(t); !n.After(now); n = sched.Next(t) {
		t = n
	}
	return t, true
}

// missed returns, per job, its latest scheduled time that passed without a
// run (billsync was down then), for jobs that ran before (a fresh database
// missed nothing). grace leaves a run just due the time to start.
func (s *Scheduler) missed(ctx context.Context, now time.Time, grace time.Duration) (map[string]time.Time, error) {
	last, err := s.db.LastJobRuns(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for name, j := range s.jobs {
		prev, ok := prevTick(j.Spec, now)
		run, ran := last[name]
		if ok && ran && run.StartedAt.Before(prev) && now.Sub(prev) >= grace {
			out[name] = prev
		}
	}
	return out, nil
}

// catchUp runs once, when this replica becomes the leader, every job whose
// last scheduled time passed while no replica ran it, recorded under that
// time's period (so another replica or the schedule itself never runs it
// twice).
func (s *Scheduler) catchUp(ctx context.Context) {
	m, err := s.missed(ctx, time.Now(), 0)
	if err != nil {
		s.log.Warn().Err(err).Msg("checking for missed scheduled jobs")
		return
	}
	for name, at := range m {
		s.mu.Lock()
		j := s.jobs[name]
		s.mu.Unlock()
		s.log.Info().Str("job", name).Time("missed", at).Msg("catching up a scheduled job missed while billsync was down")
		_, _ = s.runOnce(ctx, j, j.Period(at))
	}
}

// Overdue returns the jobs whose latest scheduled time passed more than
// two minutes ago without a run, with that time (the admin page).
func (s *Scheduler) Overdue(ctx context.Context) (map[string]time.Time, error) {
	return s.missed(ctx, time.Now(), 2*time.Minute)
}

func (s *Scheduler) fire(j Job) {
	if !s.leader.Load() {
		return
	}
	p := s.ctx.Load()
	if p == nil {
		return
	}
	_, _ = s.runOnce(*p, j, j.Period(time.Now()))
}

// RunNow runs a job at once, outside the schedule (the CLI and admin page),
// recorded under a "manual" period.
func (s *Scheduler) RunNow(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("unknown job %q", name)
	}
	return s.runOnce(ctx, j, "manual-"+time.Now().UTC().Format(time.RFC3339Nano))
}

func (s *Scheduler) runOnce(ctx context.Context, j Job, period string) (string, error) {
	ok, err := s.db.StartJobRun(ctx, j.Name, period)
	if err != nil || !ok {
		return "", err
	}
	start := time.Now()
	detail, err := j.Run(ctx)
	outcome := "ok"
	if err != nil {
		outcome = "failed"
		detail = err.Error()
		s.log.Error().Err(err).Str("job", j.Name).Msg("scheduled job failed")
	} else {
		ev := s.log.Info()
		if j.Idle != nil && j.Idle() {
			ev = s.log.Debug()
		}
		ev.Str("job", j.Name).Str("detail", detail).Stringer("took", time.Since(start).Round(time.Microsecond)).Msg("scheduled job ran")
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := s.db.FinishJobRun(fctx, j.Name, period, outcome, detail); ferr != nil {
		s.log.Warn().Err(ferr).Msg("recording job run failed")
	}
	if s.OnRun != nil {
		s.OnRun(j.Name, err == nil, time.Since(start))
	}
	return detail, err
}
