// Package bench measures billsync against the Zuora simulator: the simulator
// runs in-process with a fixed latency per call and Zuora's concurrency
// limit, billsync runs on a fresh Postgres schema (or a SQLite file), and each
// scenario reports how close billsync gets to the best Zuora allows: calls by
// operation, calls per entity, wall time against the ideal wall time (calls ×
// latency ÷ concurrency limit), 429s and peak memory.
//
// Scenarios:
//   - initial: a full first sync (customers with one subscription each over a
//     set of plans);
//   - noop: the hourly reconcile after initial, with nothing changed;
//   - usage: events ingested into hourly windows, sealed and uploaded;
//   - callouts: account-created callouts at a steady rate, acknowledged and
//     processed.
package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for the schema set-up
	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/store"
)

// Scenarios lists the scenario names in their usual order.
var Scenarios = []string{"initial", "noop", "drift", "usage", "callouts"}

// DefaultPostgresURL is the database used when none is configured.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Options configure a run. Zero values take the defaults.
type Options struct {
	Scenario string
	// DatabaseURL is a Postgres URL: the run uses a fresh schema in it,
	// dropped afterwards. Empty: DefaultPostgresURL.
	DatabaseURL string
	// SQLite runs on a fresh SQLite file in a temporary directory instead.
	SQLite bool
	// Latency is added by the simulator to every /v1 call (default 100 ms).
	Latency time.Duration
	// Concurrency is Zuora's concurrency limit, enforced by the simulator
	// and configured in billsync's client (default 40).
	Concurrency int
	// Customers (initial, noop): customers, one subscription each (default 10,000).
	Customers int
	// Plans (initial, noop): plans the subscriptions spread over (default 20).
	Plans int
	// Workers is the number of concurrent reconciles (default 2 × Concurrency).
	Workers int
	// Events and Windows (usage): events ingested into that many hourly
	// windows (defaults 1,000,000 and 100,000).
	Events, Windows int
	// BigCustomers (all), if set, adds an initial sync at that many
	// customers (memory flat in N: peak RSS < 300 MiB).
	BigCustomers int
	// DriftShare (drift) is the percentage of Concurrency the drift checks
	// may take, as serve's BILLSYNC_DRIFT_SHARE (default 25).
	DriftShare int
	// UsageFiles (usage) uploads the backlog as usage files (POST /v1/usage)
	// instead of calls of 50.
	UsageFiles bool
	// Callouts and Rate (callouts): callouts sent at Rate per second
	// (defaults 10,000 and 500).
	Callouts int
	Rate     int
	// Timeout bounds the measured part of a scenario (default 10 min).
	Timeout time.Duration
	// Logger receives billsync's logs (default: none).
	Logger zerolog.Logger
	// Trace prints the calls in flight every second while syncing.
	Trace bool
	// CPUProfile, if set, receives a CPU profile of the measured part.
	CPUProfile io.Writer
	// Progress, if set, receives one line per phase.
	Progress func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Latency == 0 {
		o.Latency = 100 * time.Millisecond
	}
	if o.Concurrency <= 0 {
		o.Concurrency = zuorasim.DefaultConcurrencyLimit
	}
	if o.Customers <= 0 {
		o.Customers = 10_000
	}
	if o.Plans <= 0 {
		o.Plans = 20
	}
	if o.Workers <= 0 {
		o.Workers = 2 * o.Concurrency
	}
	if o.Events <= 0 {
		o.Events = 1_000_000
	}
	if o.Windows <= 0 {
		o.Windows = 100_000
	}
	if o.DriftShare <= 0 || o.DriftShare > 100 {
		o.DriftShare = 25
	}
	if o.Callouts <= 0 {
		o.Callouts = 10_000
	}
	if o.Rate <= 0 {
		o.Rate = 500
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = DefaultPostgresURL
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	return o
}

// Run runs one scenario and returns its result.
func Run(ctx context.Context, o Options) (*Result, error) {
	o = o.withDefaults()
	var run func(context.Context, *env) (*Result, error)
	switch o.Scenario {
	case "initial":
		run = runInitial
	case "noop":
		run = runNoop
	case "drift":
		run = runDrift
	case "usage":
		run = runUsage
	case "callouts":
		run = runCallouts
	default:
		return nil, fmt.Errorf("unknown scenario %q; use one of %s", o.Scenario, strings.Join(Scenarios, ", "))
	}
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	mem := startMemSampler()
	res, err := run(ctx, e)
	peak, rss := mem.stop()
	if res != nil {
		res.PeakHeapBytes, res.MaxRSSBytes = peak, rss
		res.finish()
	}
	return res, err
}

// newResult starts a scenario's result.
func (e *env) newResult() *Result {
	return &Result{Scenario: e.o.Scenario, Database: string(e.db.Dialect), Latency: e.o.Latency,
		ConcurrencyLimit: e.o.Concurrency, Workers: e.o.Workers}
}

// env is one run's database, simulator and client.
type env struct {
	o       Options
	log     zerolog.Logger
	db      *store.DB
	cleanup []func()

	sim    *zuorasim.Sim
	simURL string
	z      *zuora.Client
	calls  callCounter
	stmts  atomic.Int64  // database statements since the phase began
	cpu0   time.Duration // the process's CPU time when the phase began
	// profiling: a CPU profile of the phase is being written.
	profiling bool
	// utilization is the mean share of the concurrency limit in use during the last converge.
	utilization float64
}

func newEnv(ctx context.Context, o Options) (*env, error) {
	e := &env{o: o, log: o.Logger}
	if err := e.openDB(ctx); err != nil {
		e.close()
		return nil, err
	}
	tenant := zuora.SimTenant("BillsyncId__c")
	e.sim = zuorasim.New(zuorasim.Options{Tenant: &tenant, Latency: o.Latency, ConcurrencyLimit: o.Concurrency,
		// Zuora's high-volume class (orders, accounts) has its own, higher
		// limit; billsync's client caps all in-flight calls at Concurrency.
		Logger: o.Logger.With().Str("component", "zuorasim").Logger()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.close()
		return nil, fmt.Errorf("start the simulator: %w", err)
	}
	srv := &http.Server{Handler: e.sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.simURL = "http://" + ln.Addr().String()
	e.cleanup = append(e.cleanup, func() { _ = srv.Close(); e.sim.Close() })
	z, err := zuora.New(zuora.Config{BaseURL: e.simURL, AllowAnyBaseURL: true, ClientID: zuorasim.DefaultClientID,
		ClientSecret: zuorasim.DefaultClientSecret, ConcurrencyLimit: o.Concurrency, RequestsPerMinute: zuorasim.DefaultRateLimitPerMinute},
		o.Logger.With().Str("component", "zuora").Logger(), zuora.WithCallObserver(e.calls.observe))
	if err != nil {
		e.close()
		return nil, err
	}
	e.z = z
	return e, nil
}

func (e *env) openDB(ctx context.Context) error {
	var u string
	if e.o.SQLite {
		dir, err := os.MkdirTemp("", "billsync-bench-")
		if err != nil {
			return err
		}
		e.cleanup = append(e.cleanup, func() { _ = os.RemoveAll(dir) })
		u = filepath.Join(dir, "billsync.db")
	} else {
		if !store.IsPostgresURL(e.o.DatabaseURL) {
			return fmt.Errorf("bench: %s is not a Postgres URL (use --sqlite for SQLite)", store.RedactURL(e.o.DatabaseURL))
		}
		var err error
		u, err = e.freshSchema(ctx)
		if err != nil {
			return err
		}
	}
	db, err := store.Open(ctx, u, e.log)
	if err != nil {
		return err
	}
	e.cleanup = append(e.cleanup, func() { _ = db.Close() })
	if _, err := db.MigrateUp(ctx); err != nil {
		return err
	}
	e.db = db
	return e.countStatements()
}

// countStatements counts every statement billsync's store runs (all of its
// SQL goes through gorm), for the statements-per-entity figure.
func (e *env) countStatements() error {
	count := func(*gorm.DB) { e.stmts.Add(1) }
	cb := e.db.Gorm.Callback()
	for _, err := range []error{
		cb.Create().After("gorm:create").Register("bench:count", count),
		cb.Query().After("gorm:query").Register("bench:count", count),
		cb.Update().After("gorm:update").Register("bench:count", count),
		cb.Delete().After("gorm:delete").Register("bench:count", count),
		cb.Row().After("gorm:row").Register("bench:count", count),
		cb.Raw().After("gorm:raw").Register("bench:count", count),
	} {
		if err != nil {
			return fmt.Errorf("bench: count statements: %w", err)
		}
	}
	return nil
}

// freshSchema creates a new schema in the Postgres database and returns a
// URL that uses it; the schema is dropped at close.
func (e *env) freshSchema(ctx context.Context) (string, error) {
	admin, err := sql.Open("pgx", e.o.DatabaseURL)
	if err != nil {
		return "", fmt.Errorf("postgres %s: %w", store.RedactURL(e.o.DatabaseURL), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		return "", fmt.Errorf("postgres %s: create schema: %w", store.RedactURL(e.o.DatabaseURL), err)
	}
	e.cleanup = append(e.cleanup, func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = admin.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	p, err := url.Parse(e.o.DatabaseURL)
	if err != nil {
		return "", err
	}
	q := p.Query()
	q.Set("search_path", schema)
	p.RawQuery = q.Encode()
	return p.String(), nil
}

func (e *env) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
}

// resetCounts starts a measured phase: the simulator's and the client's counts restart.
func (e *env) resetCounts() {
	e.sim.ResetStats()
	e.calls.reset()
	e.stmts.Store(0)
	e.cpu0 = cpuTime()
	if e.o.CPUProfile != nil && !e.profiling {
		e.profiling = pprof.StartCPUProfile(e.o.CPUProfile) == nil
	}
}

// fill copies the phase's call counts into r.
func (e *env) fill(r *Result) {
	if e.profiling {
		pprof.StopCPUProfile()
		e.profiling = false
	}
	r.CPU = cpuTime() - e.cpu0
	r.Statements = int(e.stmts.Load())
	st := e.sim.Stats()
	r.Calls = map[string]int{}
	for op, n := range st.Calls {
		if n > 0 {
			r.Calls[op] = n
		}
	}
	r.Responses429 = st.Responses429
	r.PeakConcurrent = st.MaxConcurrent
	r.Throttled, r.FailedFor429, r.Retries, r.FailedCalls = e.calls.get()
}

// callCounter counts what the client saw.
type callCounter struct {
	throttled, failed429, retries, failed atomic.Int64
}

func (c *callCounter) observe(ci zuora.CallInfo) {
	if ci.Throttled {
		c.throttled.Add(1)
		if !ci.Retry {
			c.failed429.Add(1)
		}
	}
	if ci.Retry {
		c.retries.Add(1)
	}
	if ci.Err != nil && !ci.Retry {
		c.failed.Add(1)
	}
}

func (c *callCounter) reset() {
	c.throttled.Store(0)
	c.failed429.Store(0)
	c.retries.Store(0)
	c.failed.Store(0)
}

func (c *callCounter) get() (throttled, failed429, retries, failed int) {
	return int(c.throttled.Load()), int(c.failed429.Load()), int(c.retries.Load()), int(c.failed.Load())
}

// parallel runs fn(i) for i in [0, n) on k goroutines and returns the first error.
func parallel(ctx context.Context, n, k int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return first
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
