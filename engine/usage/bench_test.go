package usage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

// Run with: go test ./engine/usage -run '^$' -bench . -benchtime 1x (or 20x for ingest).

// BenchmarkIngest measures events ingested per second in batches of 1,000
// (200 subscriptions, 2 usage charges, events spread over 24 hours).
func BenchmarkIngest(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			f := newFixture(b, d, fixtureOptions{subs: 200})
			l := f.ledger()
			ctx := context.Background()
			charges := []string{"api", "storage"}
			batch := func(n int) []usage.Event {
				evs := make([]usage.Event, usage.MaxBatch)
				for i := range evs {
					k := (n+1)*usage.MaxBatch + i
					evs[i] = usage.Event{IdempotencyKey: fmt.Sprintf("bench-%d-%d", n, i), SubscriptionID: subID(k % 200), ChargeID: charges[k%2],
						Quantity: dec("1.5"), Timestamp: T0.Add(time.Duration(k%(24*3600)) * time.Second)}
				}
				return evs
			}
			_, err := l.Ingest(ctx, batch(-1)) // warm the cache
			require.NoError(b, err)
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				evs := batch(n)
				b.StartTimer()
				res, err := l.Ingest(ctx, evs)
				require.NoError(b, err)
				require.Equal(b, usage.Accepted, res[len(res)-1].Status)
			}
			b.ReportMetric(float64(b.N*usage.MaxBatch)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkSeal measures sealing (aggregation into upload rows): windows
// sealed per second, 1,000 new windows per iteration.
func BenchmarkSeal(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			f := newFixture(b, d, fixtureOptions{subs: 200})
			f.switches[usage.Switch] = false // seal only
			l := f.ledger()
			ctx := context.Background()
			var sealing time.Duration
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				evs := make([]usage.Event, usage.MaxBatch)
				for i := range evs {
					// 1,000 distinct windows: 200 subscriptions × 5 hours.
					evs[i] = event(fmt.Sprintf("seal-%d-%d", n, i), subID(i%200), "api", "2", T0.Add(-time.Duration(n*5+i/200+1)*time.Hour))
				}
				_, err := l.Ingest(ctx, evs)
				require.NoError(b, err)
				b.StartTimer()
				t := time.Now()
				rep, err := l.SealAndUpload(ctx, f.clock.Now())
				sealing += time.Since(t)
				require.NoError(b, err)
				require.Equal(b, usage.MaxBatch, rep.WindowsSealed)
			}
			b.ReportMetric(float64(b.N*usage.MaxBatch)/sealing.Seconds(), "windows/s")
		})
	}
}

// BenchmarkUpload100kWindows seals and uploads 100,000 windows (200
// subscriptions × 2 charges × 250 hours) to the simulator and reports the
// number of upload calls (exactly 2,000: 50 rows per call).
func BenchmarkUpload100kWindows(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				f := newFixture(b, d, fixtureOptions{subs: 200, sync: true})
				l := f.ledger()
				ctx := context.Background()
				charges := []string{"api", "storage"}
				evs := make([]usage.Event, 0, usage.MaxBatch)
				for k := range 100_000 {
					evs = append(evs, event(fmt.Sprintf("w-%d", k), subID(k%200), charges[(k/200)%2], "1", T0.Add(-time.Duration(k/400+1)*time.Hour)))
					if len(evs) == usage.MaxBatch {
						_, err := l.Ingest(ctx, evs)
						require.NoError(b, err)
						evs = evs[:0]
					}
				}
				f.e.Sim.ResetStats()
				b.StartTimer()
				t := time.Now()
				rep, err := l.SealAndUpload(ctx, f.clock.Now())
				elapsed := time.Since(t)
				require.NoError(b, err)
				require.Equal(b, 100_000, rep.WindowsSealed)
				require.Equal(b, 100_000, rep.RowsSent)
				calls := f.createCalls()
				require.Equal(b, 2000, calls)
				b.ReportMetric(float64(calls), "calls")
				b.ReportMetric(float64(rep.RowsSent)/elapsed.Seconds(), "rows/s")
			}
		})
	}
}
