// Package enginetest wires a real database, the Zuora simulator over HTTP, the
// Zuora client and the outbound engine for end-to-end tests.
package enginetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/worker"
)

// Env is one test's engine: database, simulator, client, reconcilers and pool.
type Env struct {
	T        testing.TB
	DB       *store.DB
	Sim      *zuorasim.Sim
	Server   *httptest.Server
	Zuora    *zuora.Client
	Outbound *outbound.Reconcilers
	Pool     *worker.Pool
	Switches map[string]bool
	excl     *Exclusivity
}

// Options adjusts an Env.
type Options struct {
	Sim zuorasim.Options
	// PublicURL is outbound's BILLSYNC_PUBLIC_URL (back-link custom fields).
	PublicURL string
	Workers   int
	Logger    zerolog.Logger
	DBURL     string // reuse an existing database (restart tests)
	SimReuse  *zuorasim.Sim
	// ClientTimeout bounds one Zuora HTTP attempt (default 5s).
	ClientTimeout time.Duration
	// Lease is the claim lifetime of the pool (default 5m).
	Lease time.Duration
	// KeepClaimsOnStop makes a stopped pool behave like a crashed one.
	KeepClaimsOnStop bool
	// ClientAttempts is the Zuora client's tries per call (default 4); 1
	// makes a lost answer reach the reconcile, as a crash would.
	ClientAttempts int
	// NoKeepAlive gives the client a fresh connection per request: Go's
	// transport silently resends a request carrying an Idempotency-Key
	// whose reused connection closed without an answer, so with keep-alive
	// a lost answer never reaches the client (Zuora replays the key).
	NoKeepAlive bool
	// AdoptZuoraChanges is outbound's (serve turns it on): drift in a
	// subscription version billsync did not write goes to the inbox.
	AdoptZuoraChanges bool
	// Exclusivity, if set, watches every reconcile of the Env's pools.
	Exclusivity *Exclusivity
}

// Tenant is the simulator tenant of an Env: set up as billsync's README
// says (SimTenant), with the units of measure the tests' catalogs use and
// the optional inbound fields (GracePeriod__c on Product, Gigya_Id__c on
// Account) an admin creates when using those features.
func Tenant() zuorasim.Tenant {
	t := zuora.SimTenant("BillsyncId__c", "Seat", "Call", "seat", "call")
	t.Define("Product", zuorasim.CustomField{Name: "GracePeriod__c", Type: "text", Length: 10})
	t.Define("Account", zuorasim.CustomField{Name: "Gigya_Id__c", Type: "text", Length: 255})
	return t
}

// New starts an Env on a fresh database of the dialect.
func New(t testing.TB, d store.Dialect, o Options) *Env {
	t.Helper()
	e := &Env{T: t, Switches: map[string]bool{}, excl: o.Exclusivity}
	if o.DBURL != "" {
		e.DB = storetest.OpenURL(t, o.DBURL)
	} else {
		e.DB = storetest.Open(t, d)
	}
	if o.SimReuse != nil {
		e.Sim = o.SimReuse
	} else {
		so := o.Sim
		so.Logger = o.Logger
		if so.Tenant == nil {
			t := Tenant()
			so.Tenant = &t
		}
		e.Sim = zuorasim.New(so)
		t.Cleanup(e.Sim.Close)
	}
	e.Server = httptest.NewServer(e.Sim)
	t.Cleanup(e.Server.Close)
	timeout := o.ClientTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	attempts := o.ClientAttempts
	if attempts == 0 {
		attempts = 4
	}
	cl, err := zuora.New(zuora.Config{
		BaseURL: e.Server.URL, AllowAnyBaseURL: true, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret,
		Timeout: timeout, MaxAttempts: attempts, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		RequestsPerMinute: 1000000,
	}, o.Logger, clientOptions(o)...)
	if err != nil {
		t.Fatalf("zuora client: %v", err)
	}
	e.Zuora = cl
	e.Outbound = outbound.New(e.DB, cl, outbound.Config{
		Enabled:           func(name string) bool { v, ok := e.Switches[name]; return !ok || v },
		DependencyWait:    5 * time.Millisecond,
		PublicURL:         o.PublicURL,
		AdoptZuoraChanges: o.AdoptZuoraChanges,
	})
	workers := o.Workers
	if workers == 0 {
		workers = 4
	}
	e.Pool = e.NewPool(workers, o.Lease, o.KeepClaimsOnStop)
	return e
}

// NewPool returns another pool on the same database and simulator (a restarted process).
func (e *Env) NewPool(workers int, lease time.Duration, keepClaims bool) *worker.Pool {
	recs := e.Outbound.Kinds()
	if e.excl != nil {
		recs = e.excl.Wrap(recs)
	}
	return worker.New(e.DB, recs, worker.Options{Workers: workers, Logger: zerolog.Nop(), Lease: lease,
		BackoffUnit: time.Millisecond, MaxBackoff: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond, KeepClaimsOnStop: keepClaims,
		CredentialsPause: 200 * time.Millisecond})
}

// Start runs pool.Run (the loop serve runs) until the returned stop is
// called; stop waits for Run to return.
func Start(pool *worker.Pool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	return func() { cancel(); <-done }
}

// Sweep runs the sweeper (ReleaseExpired, as serve's sweeper job does, and a
// kick of the pools) every interval until ctx ends.
func (e *Env) Sweep(ctx context.Context, interval time.Duration, pools ...*worker.Pool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := e.DB.ReleaseExpired(ctx); err == nil && n > 0 {
				for _, p := range pools {
					p.Kick()
				}
			}
		}
	}
}

// Converge runs the pool's production loop (Pool.Run) and the sweeper until
// no record is pending, failed, drifted or in flight, or the timeout passes
// (a test failure).
func (e *Env) Converge(timeout time.Duration) {
	e.T.Helper()
	ctx := context.Background()
	stop := Start(e.Pool)
	defer stop()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := e.DB.ReleaseExpired(ctx); err != nil {
			e.T.Fatalf("sweep: %v", err)
		}
		n, err := e.DB.CountUnsettled(ctx)
		if err != nil {
			e.T.Fatalf("count: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, st := range []string{store.StatePending, store.StateFailed, store.StateInFlight, store.StateDrifted} {
				recs, _, _ := e.DB.ListSyncRecords(ctx, store.SyncFilter{Limit: 5, State: st})
				for _, r := range recs {
					lines = append(lines, fmt.Sprintf("%s %s/%s attempts=%d reason=%q error=%q", r.State, r.EntityKind, r.EntityID, r.Attempts, r.Reason, r.LastErrorMessage))
				}
			}
			e.T.Fatalf("not converged after %s: %d records unsettled:\n%s", timeout, n, strings.Join(lines, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Exclusivity wraps reconcilers to count, per entity, the reconciles running
// at once (across every pool that uses the wrapped reconcilers).
type Exclusivity struct {
	mu      sync.Mutex
	running map[reconcile.Key]int
	max     map[reconcile.Key]int
	runs    map[reconcile.Key]int
}

// Wrap returns recs, each counted.
func (x *Exclusivity) Wrap(recs map[string]reconcile.Reconciler) map[string]reconcile.Reconciler {
	x.mu.Lock()
	if x.running == nil {
		x.running, x.max, x.runs = map[reconcile.Key]int{}, map[reconcile.Key]int{}, map[reconcile.Key]int{}
	}
	x.mu.Unlock()
	out := make(map[string]reconcile.Reconciler, len(recs))
	for kind, rc := range recs {
		out[kind] = reconcile.Func(func(ctx context.Context, key reconcile.Key) (reconcile.Result, error) {
			x.mu.Lock()
			x.running[key]++
			x.runs[key]++
			x.max[key] = max(x.max[key], x.running[key])
			x.mu.Unlock()
			defer func() {
				x.mu.Lock()
				x.running[key]--
				x.mu.Unlock()
			}()
			return rc.Reconcile(ctx, key)
		})
	}
	return out
}

// Max returns the entity with the most reconciles at once, and that number.
func (x *Exclusivity) Max() (reconcile.Key, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var worst reconcile.Key
	n := 0
	for k, m := range x.max {
		if m > n || m == n && k.String() < worst.String() {
			worst, n = k, m
		}
	}
	return worst, n
}

// Runs returns how many reconciles each entity had.
func (x *Exclusivity) Runs() map[reconcile.Key]int {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[reconcile.Key]int, len(x.runs))
	for k, n := range x.runs {
		out[k] = n
	}
	return out
}

func clientOptions(o Options) []zuora.Option {
	if o.NoKeepAlive {
		return []zuora.Option{zuora.WithTransport(&http.Transport{DisableKeepAlives: true})}
	}
	return nil
}
