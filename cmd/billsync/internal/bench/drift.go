package bench

import (
	"context"
	"strconv"
	"time"
)

// driftChecks is how many drift checks run at once: the share of Zuora's
// concurrency serve gives them (BILLSYNC_DRIFT_SHARE, 25 %).
func (e *env) driftChecks() int {
	return max(1, e.o.Concurrency*e.o.DriftShare/100)
}

// runDrift measures the hourly drift check after an initial sync: every
// synced record is read back from Zuora by the pool, within its share of the
// concurrency limit. Its ideal wall time is calls × latency ÷ the share.
func runDrift(ctx context.Context, e *env) (*Result, error) {
	p, r, err := e.synced(ctx)
	if err != nil {
		return nil, err
	}
	return e.measureDrift(ctx, p, r)
}

// measureDrift queues a drift check of every synced record and measures the
// pool's run of them.
func (e *env) measureDrift(ctx context.Context, p engineParts, r *Result) (*Result, error) {
	e.resetCounts()
	e.o.Progress("drift check of every synced record, %d at once", e.driftChecks())
	var queued int64
	wall, err := e.converge(ctx, p, func(ctx context.Context) error {
		var err error
		queued, err = e.db.EnqueueDriftChecks(ctx, "bench-"+time.Now().UTC().Format(time.RFC3339Nano))
		p.pool.Kick()
		return err
	})
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
	// The checks' budget is their share, not the whole limit.
	share := e.driftChecks()
	r.Ideal = time.Duration(int64(r.APICalls) * int64(r.Latency) / int64(share))
	r.Efficiency = 0
	if r.Wall > 0 {
		r.Efficiency = float64(r.Ideal) / float64(r.Wall)
	}
	st := p.pool.Stats()
	r.figure("drift checks", "%d queued, %d drifted; %d at once (%d %% of the limit %d)", queued, st.Drifted, share, e.o.DriftShare, e.o.Concurrency)
	r.target("every synced record checked", "≥ 1 read each", r.APICalls >= int(queued), "%d reads for %d checks", r.APICalls, queued)
	r.target("nothing drifted", "0", st.Drifted == 0, "%d", st.Drifted)
	r.target("within the share", "≤ "+strconv.Itoa(share)+" calls in flight", r.PeakConcurrent <= share, "%d", r.PeakConcurrent)
	r.target("efficiency of the share", "≥ 0.80", r.Efficiency >= 0.8, "%.2f", r.Efficiency)
	return r, nil
}
