package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// engineParts are the outbound reconcilers and a worker pool, built as serve builds them.
type engineParts struct {
	out  *outbound.Reconcilers
	pool *worker.Pool
}

func (e *env) engine() engineParts {
	out := outbound.New(e.db, e.z, outbound.Config{})
	pool := worker.New(e.db, out.Kinds(), worker.Options{Workers: e.o.Workers, DriftChecks: e.driftChecks(),
		Logger: e.log.With().Str("component", "worker").Logger(), ID: "bench"})
	return engineParts{out: out, pool: pool}
}

// converge runs the pool until every outbound record is settled and returns the wall time.
func (e *env) converge(ctx context.Context, p engineParts, start func(ctx context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	began := time.Now()
	if start != nil {
		if err := start(ctx); err != nil {
			return 0, err
		}
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.pool.Run(pctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var samples, inFlight int
	last := time.Now()
	defer func() {
		if samples > 0 {
			e.utilization = float64(inFlight) / float64(samples) / float64(e.o.Concurrency)
		}
	}()
	for {
		_, f := e.z.Concurrency()
		samples++
		inFlight += f
		if e.o.Trace && time.Since(last) >= time.Second {
			last = time.Now()
			_, f := e.z.Concurrency()
			st := p.pool.Stats()
			e.o.Progress("t=%s in flight %d, reconciled %d, calls %d", time.Since(began).Round(time.Second), f, st.Reconciled, st.Calls)
			if f == 0 {
				for _, state := range []string{store.StatePending, store.StateInFlight, store.StateFailed} {
					recs, _, _ := e.db.ListSyncRecords(ctx, store.SyncFilter{State: state, Limit: 3})
					for _, r := range recs {
						e.o.Progress("  %s %s/%s next %s reason %q error %q", r.State, r.EntityKind, r.EntityID, r.NextAttemptAt.Format(time.StampMilli), r.Reason, r.LastErrorMessage)
					}
				}
			}
		}
		more, err := e.db.HasUnsettled(ctx)
		if err != nil {
			return 0, err
		}
		if !more {
			return time.Since(began), nil
		}
		select {
		case <-ctx.Done():
			n, _ := e.db.CountUnsettled(context.WithoutCancel(ctx))
			return time.Since(began), fmt.Errorf("not settled after %s: %d records unsettled", e.o.Timeout, n)
		case <-tick.C:
		}
	}
}

// setupInitial seeds the catalog and the customers.
func (e *env) setupInitial(ctx context.Context) error {
	e.o.Progress("seeding %d plans, %d customers and %d subscriptions", e.o.Plans, e.o.Customers, e.o.Customers)
	if err := seedCatalog(ctx, e.db, e.o.Plans); err != nil {
		return err
	}
	return seedCustomers(ctx, e.db, e.o.Customers, e.o.Plans)
}

func runInitial(ctx context.Context, e *env) (*Result, error) {
	began := time.Now()
	if err := e.setupInitial(ctx); err != nil {
		return nil, err
	}
	r := e.newResult()
	r.Setup = time.Since(began)
	return e.measureInitial(ctx, e.engine(), r)
}

// measureInitial measures the first sync of what setupInitial seeded.
func (e *env) measureInitial(ctx context.Context, p engineParts, r *Result) (*Result, error) {
	e.resetCounts()
	e.o.Progress("syncing")
	wall, err := e.converge(ctx, p, nil)
	r.Wall = wall
	e.fill(r)
	r.Entities = map[string]int{"plans": e.o.Plans, "customers": e.o.Customers, "subscriptions": e.o.Customers}
	if err != nil {
		return r, err
	}
	if err := e.checkSettled(ctx, r); err != nil {
		return r, err
	}
	r.finish()
	orders := r.Calls["POST /v1/orders"]
	accountCalls := r.Calls["POST /v1/accounts"] + r.Calls["PUT /v1/accounts/{account-key}"]
	r.target("efficiency", "≥ 0.80", r.Efficiency >= 0.8, "%.2f", r.Efficiency)
	r.target("no call failed for a 429 after retries", "0", r.FailedFor429 == 0, "%d", r.FailedFor429)
	r.target("one order per customer + first subscription", fmt.Sprintf("%d orders, 0 account calls", e.o.Customers),
		orders == e.o.Customers && accountCalls == 0, "%d orders, %d account calls", orders, accountCalls)
	return r, nil
}

// checkSettled records the sync records' final states and fails if any is not synced.
func (e *env) checkSettled(ctx context.Context, r *Result) error {
	counts, err := e.db.SyncCounts(ctx)
	if err != nil {
		return err
	}
	bad := 0
	for kind, states := range counts {
		for st, n := range states {
			if st != store.StateSynced {
				bad += int(n)
				r.figure("records "+kind+"/"+st, "%d", n)
			}
		}
	}
	r.target("every record synced", "0 not synced", bad == 0, "%d not synced", bad)
	return nil
}

func runNoop(ctx context.Context, e *env) (*Result, error) {
	p, r, err := e.synced(ctx)
	if err != nil {
		return nil, err
	}
	return e.measureNoop(ctx, p, r)
}

// synced seeds and runs the initial sync (not measured), for the scenarios
// that measure what comes after it, and starts their result.
func (e *env) synced(ctx context.Context) (engineParts, *Result, error) {
	began := time.Now()
	if err := e.setupInitial(ctx); err != nil {
		return engineParts{}, nil, err
	}
	p := e.engine()
	e.o.Progress("initial sync (not measured)")
	initial, err := e.converge(ctx, p, nil)
	if err != nil {
		return engineParts{}, nil, err
	}
	r := e.newResult()
	r.Setup = time.Since(began)
	r.figure("initial sync before (not measured)", "%s", initial.Round(time.Millisecond))
	return p, r, nil
}

// measureNoop measures the hourly reconcile after a sync, nothing changed.
func (e *env) measureNoop(ctx context.Context, p engineParts, r *Result) (*Result, error) {
	e.resetCounts()
	e.o.Progress("hourly reconcile")
	var rep outbound.RecheckReport
	wall, err := e.converge(ctx, p, func(ctx context.Context) error {
		var err error
		rep, err = hourlyReconcile(ctx, p)
		return err
	})
	r.Wall = wall
	e.fill(r)
	r.Entities = map[string]int{"plans": e.o.Plans, "customers": e.o.Customers, "subscriptions": e.o.Customers}
	r.figure("hourly re-check", "%s", rep)
	if err != nil {
		return r, err
	}
	if err := e.checkSettled(ctx, r); err != nil {
		return r, err
	}
	r.finish()
	r.target("Zuora calls", "0", r.APICalls == 0, "%d", r.APICalls)
	r.target("wall time", "< 1s", r.Wall < time.Second, "%s", r.Wall.Round(time.Millisecond))
	return r, nil
}

// hourlyReconcile is what serve's hourly "reconcile" job does.
func hourlyReconcile(ctx context.Context, p engineParts) (outbound.RecheckReport, error) {
	rep, err := p.out.Recheck(ctx)
	p.pool.Kick()
	return rep, err
}
