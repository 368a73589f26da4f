// Package enginetest wires a real database, the Zuora simulator over HTTP, the
// Zuora client and the outbound engine for end-to-end tests.
package enginetest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/outbound"
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
}

// Options adjusts an Env.
type Options struct {
	Sim      zuorasim.Options
	Workers  int
	Logger   zerolog.Logger
	DBURL    string // reuse an existing database (restart tests)
	SimReuse *zuorasim.Sim
	// ClientTimeout bounds one Zuora HTTP attempt (default 5s).
	ClientTimeout time.Duration
	// Lease is the claim lifetime of the pool (default 5m).
	Lease time.Duration
	// KeepClaimsOnStop makes a stopped pool behave like a crashed one.
	KeepClaimsOnStop bool
	// ClientAttempts is the Zuora client's tries per call (default 4); 1
	// makes a lost answer reach the reconcile, as a crash would.
	ClientAttempts int
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
	e := &Env{T: t, Switches: map[string]bool{}}
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
	}, o.Logger)
	if err != nil {
		t.Fatalf("zuora client: %v", err)
	}
	e.Zuora = cl
	e.Outbound = outbound.New(e.DB, cl, outbound.Config{
		Enabled:        func(name string) bool { v, ok := e.Switches[name]; return !ok || v },
		DependencyWait: 5 * time.Millisecond,
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
	return worker.New(e.DB, e.Outbound.Kinds(), worker.Options{Workers: workers, Logger: zerolog.Nop(), Lease: lease,
		BackoffUnit: time.Millisecond, MaxBackoff: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond, KeepClaimsOnStop: keepClaims})
}

// Converge runs the pool until no record is pending, failed, drifted or in
// flight, or the timeout passes (a test failure).
func (e *Env) Converge(timeout time.Duration) {
	e.T.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := e.DB.ReleaseExpired(ctx); err != nil {
			e.T.Fatalf("sweep: %v", err)
		}
		if _, err := e.Pool.Drain(ctx); err != nil {
			e.T.Fatalf("drain: %v", err)
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
