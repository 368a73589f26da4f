package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/metrics"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// value returns the sample value of the line starting with series, or "".
func value(text, series string) string {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

func TestMetricsFromStoreAndObservers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		plan := engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
			BillingPeriods: []engine.BillingPeriod{{ID: "m", Period: engine.PeriodMonth, Charges: []engine.Charge{
				{ID: "base", Name: "Base", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.NewFromInt(10)}}}}}
		_, _, err := db.UpsertPlan(ctx, plan)
		require.NoError(t, err)
		now := db.Now().Add(90 * time.Second)
		ok, err := db.StartJobRun(ctx, "reconcile", "p1")
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, db.FinishJobRun(ctx, "reconcile", "p1", "ok", "fine"))
		m := metrics.New(ctx, metrics.Sources{
			SyncCounts: db.SyncCounts,
			OldestDue:  db.OldestDue,
			InboxCounts: func(context.Context) (map[string]int64, error) {
				return map[string]int64{"pending": 3, "failed": 1, "done": 7}, nil
			},
			UsagePendingWindows: func(context.Context) (int64, error) { return 0, errors.New("usage tables unavailable") },
			LastSuccess: func(ctx context.Context) (map[string]time.Time, error) {
				r, ok, err := db.LastSuccessfulJobRun(ctx, "reconcile")
				if err != nil || !ok {
					return nil, err
				}
				return map[string]time.Time{"reconcile": *r.FinishedAt}, nil
			},
			IsLeader: func() bool { return true },
			Now:      func() time.Time { return now },
		})
		op := "POST /v1/orders"
		m.ObserveCall(zuora.CallInfo{Operation: op, Status: 200, Duration: 120 * time.Millisecond, Attempt: 1})
		m.ObserveCall(zuora.CallInfo{Operation: op, Status: 429, Duration: 10 * time.Millisecond, Throttled: true, Retry: true, Attempt: 1})
		m.ObserveCall(zuora.CallInfo{Operation: op, Status: 0, Err: errors.New("reset"), Retry: true, Attempt: 2})
		m.ObserveCall(zuora.CallInfo{Operation: op, Status: 400, Err: errors.New("invalid"), Attempt: 3})
		m.ObserveOutcome(store.SyncRecord{EntityKind: "plan"}, store.Outcome{State: store.StateSynced, Calls: 3})
		m.ObserveJobRun("reconcile", true, 50*time.Millisecond)

		text := scrape(t, m.Handler())
		require.Equal(t, "1", value(text, `billsync_sync_records{kind="plan",state="pending"}`), text)
		lag := value(text, "billsync_sync_lag_seconds")
		require.NotEmpty(t, lag)
		require.True(t, strings.HasPrefix(lag, "9"), "about 90s behind: %s", lag)
		require.Equal(t, "3", value(text, `billsync_inbox_entries{state="pending"}`))
		require.Equal(t, "4", value(text, "billsync_inbox_backlog"))
		require.Empty(t, value(text, "billsync_usage_windows_pending"), "a failing source is left out, the scrape goes on")
		require.NotEmpty(t, value(text, `billsync_scheduler_last_success_timestamp_seconds{job="reconcile"}`))
		for series, want := range map[string]string{
			`billsync_zuora_calls_total{operation="POST /v1/orders",outcome="ok"}`:               "1",
			`billsync_zuora_calls_total{operation="POST /v1/orders",outcome="throttled"}`:        "1",
			`billsync_zuora_calls_total{operation="POST /v1/orders",outcome="transport_error"}`:  "1",
			`billsync_zuora_calls_total{operation="POST /v1/orders",outcome="client_error"}`:     "1",
			`billsync_zuora_retries_total{operation="POST /v1/orders"}`:                          "2",
			`billsync_zuora_throttled_total{operation="POST /v1/orders"}`:                        "1",
			`billsync_zuora_call_duration_seconds_bucket{operation="POST /v1/orders",le="0.25"}`: "2",
			`billsync_sync_reconciles_total{kind="plan",state="synced"}`:                         "1",
			`billsync_sync_reconcile_zuora_calls_total{kind="plan"}`:                             "3",
			`billsync_scheduler_job_runs_total{job="reconcile",outcome="ok"}`:                    "1",
		} {
			require.Equal(t, want, value(text, series), series)
		}
		require.Equal(t, "1", value(text, "billsync_scheduler_leader"))
		require.Contains(t, text, "go_goroutines")
	})
}

// TestStuckClaimsAreVisible: a claim whose holder died (its lease lapsed)
// shows as a lapsed claim with its age, where the in-flight count alone
// cannot tell a dead claim from a busy one.
func TestStuckClaimsAreVisible(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		plan := engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
			BillingPeriods: []engine.BillingPeriod{{ID: "m", Period: engine.PeriodMonth, Charges: []engine.Charge{
				{ID: "base", Name: "Base", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.NewFromInt(10)}}}}}
		_, _, err := db.UpsertPlan(ctx, plan)
		require.NoError(t, err)
		now := db.Now().Add(time.Minute)
		m := metrics.New(ctx, metrics.Sources{ClaimAges: db.ClaimAges, OldestDue: db.OldestDue, Now: func() time.Time { return now }})
		text := scrape(t, m.Handler())
		require.Equal(t, "0", value(text, "billsync_sync_oldest_claim_age_seconds"))
		require.Equal(t, "0", value(text, "billsync_sync_lapsed_claims"))

		// A replica claims the record and dies: its lease lapses.
		recs, err := db.Claim(ctx, "killed-replica", []string{store.EntityPlan}, 10, 50*time.Millisecond)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		time.Sleep(100 * time.Millisecond)
		text = scrape(t, m.Handler())
		require.Equal(t, "1", value(text, "billsync_sync_lapsed_claims"), text)
		age := value(text, "billsync_sync_oldest_claim_age_seconds")
		require.True(t, strings.HasPrefix(age, "5") || strings.HasPrefix(age, "6"), "claimed about a minute before the scrape's clock: %s", age)
		require.Equal(t, "0", value(text, "billsync_sync_lag_seconds"), "nothing is due: the lag alone does not show it")
	})
}
