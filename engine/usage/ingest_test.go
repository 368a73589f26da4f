package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

func TestIngestResults(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 2})
			l := f.ledger()
			ctx := context.Background()
			at := T0.Add(13*time.Hour + 10*time.Minute)
			now := f.clock.Now()
			res := ingest(t, l,
				event("k1", "s000", "api", "0.1", at),
				event("k2", "s000", "api", "0.2", at.Add(5*time.Minute)),
				event("k1", "s000", "api", "7", at),                                             // duplicate in the batch
				event("k3", "nope", "api", "1", at),                                             // unknown subscription
				event("k4", "s000", "nope", "1", at),                                            // unknown charge
				event("k5", "s000", "base", "1", at),                                            // not a usage charge
				event("k6", "s000", "api", "-1", at),                                            // negative
				event("k7", "s000", "api", "1", now.Add(6*time.Minute)),                         // future
				event("k8", "s000", "api", "1", time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)), // before start
				event("", "s000", "api", "1", at),
				usage.Event{IdempotencyKey: "k9", SubscriptionID: "s000", Feature: "storage-gb", Quantity: dec("2.5"), Timestamp: at},
				usage.Event{IdempotencyKey: "k10", SubscriptionID: "s000", Feature: "nope", Quantity: dec("1"), Timestamp: at},
				event("k11", "s001", "api", "3", now.Add(4*time.Minute)), // a little in the future is fine
			)
			want := []struct {
				status usage.Status
				field  string
			}{
				{usage.Accepted, ""}, {usage.Accepted, ""}, {usage.Duplicate, ""}, {usage.Rejected, "subscriptionId"},
				{usage.Rejected, "chargeId"}, {usage.Rejected, "chargeId"}, {usage.Rejected, "quantity"}, {usage.Rejected, "timestamp"},
				{usage.Rejected, "timestamp"}, {usage.Rejected, "idempotencyKey"}, {usage.Accepted, ""}, {usage.Rejected, "feature"},
				{usage.Accepted, ""},
			}
			require.Len(t, res, len(want))
			for i, w := range want {
				require.Equal(t, w.status, res[i].Status, "event %d: %+v", i, res[i])
				require.Equal(t, w.field, res[i].Field, "event %d: %+v", i, res[i])
				if w.status == usage.Rejected {
					require.NotEmpty(t, res[i].Reason)
				}
			}
			require.Contains(t, res[5].Reason, "not a usage charge")
			require.Equal(t, "storage", res[10].ChargeID)
			require.Equal(t, at.Truncate(time.Hour), res[0].WindowStart)

			// A later batch repeating keys is told they are duplicates, and nothing is counted twice.
			res = ingest(t, l, event("k1", "s000", "api", "0.1", at), event("k12", "s000", "api", "0.0000001", at))
			require.Equal(t, usage.Duplicate, res[0].Status)
			require.Equal(t, usage.Accepted, res[1].Status)

			ws, err := l.Windows(ctx, "s000", usage.WindowFilter{})
			require.NoError(t, err)
			require.Len(t, ws, 2)
			byCharge := map[string]usage.Window{}
			for _, w := range ws {
				byCharge[w.ChargeID] = w
			}
			require.Equal(t, "0.3000001", byCharge["api"].Ingested.String(), "exact decimal sum")
			require.EqualValues(t, 3, byCharge["api"].Events)
			require.Equal(t, "2.5", byCharge["storage"].Ingested.String())
			require.Equal(t, "0.3000001", byCharge["api"].Pending.String())
			require.Equal(t, "Each", byCharge["api"].UOM)

			_, err = l.Ingest(ctx, make([]usage.Event, usage.MaxBatch+1))
			require.Error(t, err)

			st, err := l.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 3, st.PendingWindows)
			require.NotNil(t, st.OldestPendingWindow)
			require.Equal(t, T0.Add(13*time.Hour), *st.OldestPendingWindow)
		})
	}
}
