package bench_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/cmd/billsync/internal/bench"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestScenariosSmall runs every scenario at a small scale on both databases:
// the counts-based targets must hold (the speed targets are for full runs).
func TestScenariosSmall(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		for _, sc := range bench.Scenarios {
			t.Run(string(d)+"/"+sc, func(t *testing.T) {
				t.Parallel()
				o := bench.Options{Scenario: sc, SQLite: d == store.SQLite, Latency: 5 * time.Millisecond, Concurrency: 10,
					Customers: 40, Plans: 3, Events: 1600, Windows: 800, Callouts: 60, Rate: 300, Timeout: time.Minute}
				if d == store.Postgres {
					o.DatabaseURL = storetest.PostgresURL()
					storetest.URL(t, d) // skips (or fails under CI=true) when Postgres is unreachable
				}
				res, err := bench.Run(context.Background(), o)
				require.NoError(t, err)
				met := map[string]bool{}
				for _, tg := range res.Targets {
					met[tg.Name] = tg.Met
				}
				switch sc {
				case "initial":
					require.True(t, met["one order per customer + first subscription"], "%+v", res.Targets)
					require.True(t, met["every record synced"])
					require.Equal(t, 40, res.Calls["POST /v1/orders"])
					require.Positive(t, res.Efficiency)
				case "noop":
					require.True(t, met["Zuora calls"], "%+v", res.Targets)
					require.True(t, met["every record synced"])
				case "drift":
					require.True(t, met["every synced record checked"], "%+v", res.Targets)
					require.True(t, met["nothing drifted"], "%+v", res.Targets)
					require.True(t, met["within the share"], "%+v", res.Targets)
					require.Equal(t, 40, res.Calls["GET /v1/subscriptions/{subscription-key}"], "%v", res.Calls)
				case "usage":
					require.True(t, met["upload calls"], "%+v", res.Targets)
					require.Equal(t, 16, res.Calls["POST /v1/action/create"])
				case "callouts":
					require.True(t, met["every callout processed"], "%+v", res.Targets)
					require.Equal(t, 60, res.Calls["GET /v1/accounts/{account-key}"])
				}
				require.Positive(t, res.PeakHeapBytes)
				require.Positive(t, res.MaxRSSBytes)
				require.Positive(t, res.CPU)
			})
		}
	}
}

// TestAllSmall: --scenario all gives one result per scenario, in order,
// initial, noop and drift on one shared database, and prints one table.
func TestAllSmall(t *testing.T) {
	t.Parallel()
	o := bench.Options{SQLite: true, Latency: 5 * time.Millisecond, Concurrency: 10,
		Customers: 30, Plans: 2, Events: 800, Windows: 400, Callouts: 30, Rate: 300, Timeout: time.Minute}
	results, err := bench.RunAll(context.Background(), o)
	require.NoError(t, err)
	var names []string
	for _, r := range results {
		names = append(names, r.Scenario)
		require.Equal(t, "sqlite", r.Database)
	}
	require.Equal(t, bench.Scenarios, names)
	require.Zero(t, results[1].APICalls, "noop after the shared initial sync calls nothing")
	var buf strings.Builder
	require.NoError(t, bench.WriteSummary(&buf, results))
	for _, sc := range bench.Scenarios {
		require.Contains(t, buf.String(), "\n"+sc+" ")
	}
}
