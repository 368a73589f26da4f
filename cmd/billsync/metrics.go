package main

import (
	"context"
	"time"

	"github.com/billsync/billsync/engine/metrics"
	"github.com/billsync/billsync/engine/store"
)

// newMetrics builds the /metrics collectors on the app's data sources; the
// inbox, usage ledger and scheduler are read at scrape time, so they may be
// wired after this.
func (a *app) newMetrics(ctx context.Context) *metrics.Metrics {
	return metrics.New(ctx, metrics.Sources{
		SyncCounts: a.db.SyncCounts,
		OldestDue:  a.db.OldestDue,
		ClaimAges:  a.db.ClaimAges,
		InboxCounts: func(ctx context.Context) (map[string]int64, error) {
			if a.inbound == nil {
				return nil, nil
			}
			return a.inbound.InboxCounts(ctx)
		},
		UsagePendingWindows: func(ctx context.Context) (int64, error) {
			if a.usage == nil {
				return 0, nil
			}
			st, err := a.usage.Stats(ctx)
			return st.PendingWindows, err
		},
		UsageHeldRows: func(ctx context.Context) (int64, error) {
			if a.usage == nil {
				return 0, nil
			}
			st, err := a.usage.Stats(ctx)
			return st.HeldRows, err
		},
		LastSuccess: func(ctx context.Context) (map[string]time.Time, error) {
			out := map[string]time.Time{}
			if a.sched == nil {
				return out, nil
			}
			for _, job := range a.sched.Jobs() {
				r, ok, err := a.db.LastSuccessfulJobRun(ctx, job)
				if err != nil {
					return out, err
				}
				if ok {
					at := r.StartedAt
					if r.FinishedAt != nil {
						at = *r.FinishedAt
					}
					out[job] = at
				}
			}
			return out, nil
		},
		IsLeader: func() bool { return a.sched != nil && a.sched.IsLeader() },
	})
}

// observeOutcome feeds the metrics and then the caller's observer (the CLI).
func (a *app) observeOutcome(next func(store.SyncRecord, store.Outcome)) func(store.SyncRecord, store.Outcome) {
	return func(rec store.SyncRecord, o store.Outcome) {
		a.metrics.ObserveOutcome(rec, o)
		if next != nil {
			next(rec, o)
		}
	}
}
