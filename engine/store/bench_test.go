package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// Run with: go test ./engine/store -run '^$' -bench Claim -benchtime 200x

// BenchmarkClaim claims a batch of 100 due records out of 20,000, as the
// worker pool does; per dialect.
func BenchmarkClaim(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			const records = 20_000
			now := time.Now().UTC().Add(-time.Hour)
			for start := 0; start < records; start += 1000 {
				rows := make([]string, 0, 1000)
				args := []any{}
				for i := start; i < start+1000; i++ {
					kind := store.EntityCustomer
					if i%2 == 1 {
						kind = store.EntitySubscription
					}
					rows = append(rows, "(?, ?, 'zuora', 'out', 'pending', 1, ?, ?, ?)")
					args = append(args, kind, fmt.Sprintf("e%06d", i), now.Add(time.Duration(i)*time.Millisecond), now, now)
				}
				q := `INSERT INTO sync_records (entity_kind, entity_id, connector, direction, state, desired_revision, next_attempt_at, created_at, updated_at) VALUES `
				for i, r := range rows {
					if i > 0 {
						q += ", "
					}
					q += r
				}
				require.NoError(b, db.Gorm.Exec(q, args...).Error)
			}
			kinds := []string{store.EntityPlan, store.EntityCustomer, store.EntitySubscription}
			b.ResetTimer()
			for b.Loop() {
				recs, err := db.Claim(ctx, "bench", kinds, 100, time.Minute)
				require.NoError(b, err)
				require.Len(b, recs, 100)
				b.StopTimer()
				// Back in the queue (due again), so every round claims from 20,000.
				require.NoError(b, db.ReleaseWorker(ctx, "bench"))
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/record")
		})
	}
}
