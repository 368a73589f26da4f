// Package metrics exposes billsync's Prometheus metrics: Zuora calls by
// operation and outcome with a latency histogram, retries and 429s (from the
// Zuora client's call observer), reconcile outcomes (from the worker pool),
// scheduled job runs, and, read from the database at each scrape, sync
// records by kind and state, sync lag, inbox backlog, usage windows pending
// and the last successful run of each scheduled job.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/store"
)

const namespace = "billsync"

// Sources are read at each scrape. Nil sources are left out.
type Sources struct {
	// SyncCounts returns the number of sync records per entity kind and state.
	SyncCounts func(ctx context.Context) (map[string]map[string]int64, error)
	// OldestDue returns the next-attempt time of the oldest due record.
	OldestDue func(ctx context.Context) (time.Time, bool, error)
	// ClaimAges returns when the oldest in-flight claim was made and how
	// many claims lapsed unfinished (their holder died).
	ClaimAges func(ctx context.Context) (time.Time, bool, int64, error)
	// InboxCounts returns the number of inbox entries per state.
	InboxCounts func(ctx context.Context) (map[string]int64, error)
	// UsagePendingWindows returns the number of usage windows not yet in Zuora.
	UsagePendingWindows func(ctx context.Context) (int64, error)
	// UsageHeldRows returns the number of usage rows that need a person.
	UsageHeldRows func(ctx context.Context) (int64, error)
	// LastSuccess returns, per scheduled job, when it last succeeded.
	LastSuccess func(ctx context.Context) (map[string]time.Time, error)
	// IsLeader reports whether this replica runs the schedule now.
	IsLeader func() bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ScrapeTimeout bounds the database reads of one scrape (default 5s).
	ScrapeTimeout time.Duration
}

// Metrics holds billsync's collectors on its own registry.
type Metrics struct {
	reg        *prometheus.Registry
	calls      *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	retries    *prometheus.CounterVec
	throttled  *prometheus.CounterVec
	reconciles *prometheus.CounterVec
	zuoraCalls *prometheus.CounterVec
	jobRuns    *prometheus.CounterVec
	jobTime    *prometheus.HistogramVec
	usageBatch *prometheus.CounterVec
	usageRows  *prometheus.CounterVec
}

// New registers the collectors (and Go runtime and process metrics). ctx is
// the service's lifetime: scrapes read the database under it.
func New(ctx context.Context, src Sources) *Metrics {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.ScrapeTimeout <= 0 {
		src.ScrapeTimeout = 5 * time.Second
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "zuora", Name: "calls_total",
			Help: "Zuora HTTP attempts by operation (METHOD /path-template) and outcome (ok, throttled, client_error, server_error, transport_error)."},
			[]string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "zuora", Name: "call_duration_seconds",
			Help:    "Duration of Zuora HTTP attempts by operation.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 125}}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "zuora", Name: "retries_total",
			Help: "Zuora attempts after which the client retried, by operation."}, []string{"operation"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "zuora", Name: "throttled_total",
			Help: "Zuora answers of 429 (or a concurrency-limit error), by operation."}, []string{"operation"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "sync", Name: "reconciles_total",
			Help: "Finished reconciles by entity kind and resulting state."}, []string{"kind", "state"}),
		zuoraCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "sync", Name: "reconcile_zuora_calls_total",
			Help: "Zuora calls made by reconciles, by entity kind."}, []string{"kind"}),
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "scheduler", Name: "job_runs_total",
			Help: "Scheduled job runs on this replica by job and outcome (ok, failed)."}, []string{"job", "outcome"}),
		jobTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "scheduler", Name: "job_duration_seconds",
			Help: "Duration of scheduled job runs on this replica.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 9)}, []string{"job"}),
		usageBatch: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "usage", Name: "batch_attempts_total",
			Help: "Attempts at usage upload batches on this replica by outcome (stored, refused, unknown, looked_up, lease_lost)."}, []string{"outcome"}),
		usageRows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "usage", Name: "batch_rows_total",
			Help: "Rows in the usage upload batches attempted on this replica, by the attempt's outcome."}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.calls, m.latency, m.retries, m.throttled, m.reconciles, m.zuoraCalls, m.jobRuns, m.jobTime, m.usageBatch, m.usageRows,
		&dbCollector{ctx: ctx, src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics live on (tests, extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format. A failing database
// read leaves its metrics out of the scrape instead of failing it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveCall records one Zuora HTTP attempt; pass it to zuora.WithCallObserver.
func (m *Metrics) ObserveCall(ci zuora.CallInfo) {
	m.calls.WithLabelValues(ci.Operation, callOutcome(ci)).Inc()
	if ci.Duration > 0 {
		m.latency.WithLabelValues(ci.Operation).Observe(ci.Duration.Seconds())
	}
	if ci.Retry {
		m.retries.WithLabelValues(ci.Operation).Inc()
	}
	if ci.Throttled || ci.Status == http.StatusTooManyRequests {
		m.throttled.WithLabelValues(ci.Operation).Inc()
	}
}

func callOutcome(ci zuora.CallInfo) string {
	switch {
	case ci.Throttled || ci.Status == http.StatusTooManyRequests:
		return "throttled"
	case ci.Status == 0:
		return "transport_error"
	case ci.Status >= 500:
		return "server_error"
	case ci.Status >= 400 || ci.Err != nil:
		// Zuora's HTTP 200 with success:false counts as a client error.
		return "client_error"
	}
	return "ok"
}

// ObserveOutcome records a finished reconcile; call it from the worker pool's OnOutcome.
func (m *Metrics) ObserveOutcome(rec store.SyncRecord, o store.Outcome) {
	m.reconciles.WithLabelValues(rec.EntityKind, o.State).Inc()
	if o.Calls > 0 {
		m.zuoraCalls.WithLabelValues(rec.EntityKind).Add(float64(o.Calls))
	}
}

// ObserveUsageBatch records one attempt at a usage upload batch; assign it
// to the usage ledger's OnBatch.
func (m *Metrics) ObserveUsageBatch(outcome string, rows int) {
	m.usageBatch.WithLabelValues(outcome).Inc()
	m.usageRows.WithLabelValues(outcome).Add(float64(rows))
}

// ObserveJobRun records a scheduled job run; assign it to the scheduler's OnRun.
func (m *Metrics) ObserveJobRun(job string, ok bool, took time.Duration) {
	outcome := "ok"
	if !ok {
		outcome = "failed"
	}
	m.jobRuns.WithLabelValues(job, outcome).Inc()
	m.jobTime.WithLabelValues(job).Observe(took.Seconds())
}

// dbCollector reads gauges from the database at each scrape.
type dbCollector struct {
	ctx context.Context
	src Sources
}

var (
	descRecords = prometheus.NewDesc(namespace+"_sync_records", "Outbound sync records by entity kind and state.", []string{"kind", "state"}, nil)
	descLag     = prometheus.NewDesc(namespace+"_sync_lag_seconds",
		"Age of the oldest due sync record (pending, failed or drifted and due now); 0 when none is due.", nil, nil)
	descClaimAge = prometheus.NewDesc(namespace+"_sync_oldest_claim_age_seconds",
		"Age of the oldest claim on a sync record still in flight; 0 when none. A busy claim is young or heartbeating; see billsync_sync_lapsed_claims.", nil, nil)
	descLapsed = prometheus.NewDesc(namespace+"_sync_lapsed_claims",
		"Claims on sync records whose lease lapsed unfinished (a killed or stuck replica): the sweeper returns them to the queue.", nil, nil)
	descInbox        = prometheus.NewDesc(namespace+"_inbox_entries", "Inbound callout inbox entries by state.", []string{"state"}, nil)
	descInboxBacklog = prometheus.NewDesc(namespace+"_inbox_backlog",
		"Inbox entries not processed yet (pending, in flight or failed and waiting for a retry).", nil, nil)
	descUsage = prometheus.NewDesc(namespace+"_usage_windows_pending",
		"Usage windows whose quantity is not in Zuora yet (not sealed, or sealed and not uploaded).", nil, nil)
	descUsageHeld = prometheus.NewDesc(namespace+"_usage_rows_held",
		"Usage rows that need a person: their charge left the subscription before it reached Zuora, so they are never sent as things are.", nil, nil)
	descLeader = prometheus.NewDesc(namespace+"_scheduler_leader",
		"1 if this replica holds the scheduler lease and runs the cron schedule, else 0.", nil, nil)
	descLastSuccess = prometheus.NewDesc(namespace+"_scheduler_last_success_timestamp_seconds",
		"When each scheduled job last succeeded (on any replica), as a Unix time.", []string{"job"}, nil)
)

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descLag, descClaimAge, descLapsed, descInbox, descInboxBacklog, descUsage, descUsageHeld, descLeader, descLastSuccess} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.ctx, c.src.ScrapeTimeout)
	defer cancel()
	fail := func(d *prometheus.Desc, err error) { ch <- prometheus.NewInvalidMetric(d, err) }
	if c.src.IsLeader != nil {
		v := 0.0
		if c.src.IsLeader() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, v)
	}
	if c.src.SyncCounts != nil {
		counts, err := c.src.SyncCounts(ctx)
		if err != nil {
			fail(descRecords, err)
		}
		for kind, states := range counts {
			for state, n := range states {
				ch <- prometheus.MustNewConstMetric(descRecords, prometheus.GaugeValue, float64(n), kind, state)
			}
		}
	}
	if c.src.ClaimAges != nil {
		at, ok, lapsed, err := c.src.ClaimAges(ctx)
		if err != nil {
			fail(descClaimAge, err)
			fail(descLapsed, err)
		} else {
			age := 0.0
			if ok {
				age = max(0, c.src.Now().Sub(at).Seconds())
			}
			ch <- prometheus.MustNewConstMetric(descClaimAge, prometheus.GaugeValue, age)
			ch <- prometheus.MustNewConstMetric(descLapsed, prometheus.GaugeValue, float64(lapsed))
		}
	}
	if c.src.OldestDue != nil {
		at, ok, err := c.src.OldestDue(ctx)
		switch {
		case err != nil:
			fail(descLag, err)
		case ok:
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, max(0, c.src.Now().Sub(at).Seconds()))
		default:
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, 0)
		}
	}
	if c.src.InboxCounts != nil {
		counts, err := c.src.InboxCounts(ctx)
		if err != nil {
			fail(descInbox, err)
		} else {
			var backlog int64
			for state, n := range counts {
				ch <- prometheus.MustNewConstMetric(descInbox, prometheus.GaugeValue, float64(n), state)
				if state == "pending" || state == "in_flight" || state == "failed" {
					backlog += n
				}
			}
			ch <- prometheus.MustNewConstMetric(descInboxBacklog, prometheus.GaugeValue, float64(backlog))
		}
	}
	if c.src.UsagePendingWindows != nil {
		n, err := c.src.UsagePendingWindows(ctx)
		if err != nil {
			fail(descUsage, err)
		} else {
			ch <- prometheus.MustNewConstMetric(descUsage, prometheus.GaugeValue, float64(n))
		}
	}
	if c.src.UsageHeldRows != nil {
		n, err := c.src.UsageHeldRows(ctx)
		if err != nil {
			fail(descUsageHeld, err)
		} else {
			ch <- prometheus.MustNewConstMetric(descUsageHeld, prometheus.GaugeValue, float64(n))
		}
	}
	if c.src.LastSuccess != nil {
		last, err := c.src.LastSuccess(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			fail(descLastSuccess, err)
		}
		for job, at := range last {
			ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, float64(at.UnixNano())/1e9, job)
		}
	}
}
