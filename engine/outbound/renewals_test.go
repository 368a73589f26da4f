package outbound_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestRenewalsFollowZuora: renewals are counted from Zuora's terms, not from a
// local counter. A renewal whose answer is lost is not sent again; more
// renewals than one order holds go as several orders of at most 50 actions;
// the record settles only when Zuora has them all.
func TestRenewalsFollowZuora(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{ClientTimeout: 2 * time.Second})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
			start := time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")
			sub := subscription("s1", "c1")
			sub.StartDate, sub.TermMonths = start, 1
			sub = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(20 * time.Second)

			number := func() string {
				rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
				require.NoError(t, err)
				require.Equal(t, store.StateSynced, rec.State, "%s %s", rec.LastErrorMessage, rec.Reason)
				return rec.ZuoraNumber
			}
			done := func() int {
				zs, err := e.Zuora.GetSubscription(ctx, number())
				require.NoError(t, err)
				return outbound.RenewalsDone(zs)
			}
			termStart := func() string {
				zs, err := e.Zuora.GetSubscription(ctx, number())
				require.NoError(t, err)
				return zs.TermStartDate
			}
			require.Equal(t, 0, done())
			require.Equal(t, start, termStart())

			// One renewal whose outcome is never recorded: the order reaches
			// Zuora, then the process dies before it writes the record (its
			// row is put back as it was before the reconcile). The next
			// attempt sees that Zuora renewed and sends nothing.
			rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, "s1")
			require.NoError(t, err)
			var hash, pushed string
			require.NoError(t, e.DB.Gorm.WithContext(ctx).Raw("SELECT payload_hash, pushed_state FROM sync_records WHERE id = "+strconv.FormatInt(rec.ID, 10)).Row().Scan(&hash, &pushed))
			sub.RenewalCount = 1
			sub = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Converge(30 * time.Second)
			require.Equal(t, 1, done(), "one renewal in Zuora")
			require.NoError(t, e.DB.Gorm.WithContext(ctx).Exec("UPDATE sync_records SET payload_hash = ?, pushed_state = ? WHERE id = ?", hash, pushed, rec.ID).Error)
			require.NoError(t, e.DB.MarkPending(ctx, store.EntitySubscription, "s1"))
			e.Sim.ResetStats()
			e.Converge(30 * time.Second)
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"], "the renewal is not sent again: %v", e.Sim.Stats().Calls)
			require.Equal(t, 1, done(), "still exactly one renewal in Zuora")
			want, err := engine.AddMonths(start, 1)
			require.NoError(t, err)
			require.Equal(t, want, termStart())

			// A lost answer: the client's retry with the same Idempotency-Key
			// gets Zuora's saved answer, and nothing is applied twice.
			sub.RenewalCount = 2
			sub = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
			e.Converge(30 * time.Second)
			e.Sim.SetFaults()
			require.Equal(t, 2, done())

			// 120 more renewals: three orders (50, 50, 20), one term each.
			sub.RenewalCount = 122
			sub = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, sub))
			e.Sim.ResetStats()
			e.Converge(60 * time.Second)
			require.Equal(t, 3, e.Sim.Stats().Calls["POST /v1/orders"], "%v", e.Sim.Stats().Calls)
			require.Equal(t, 122, done())
			want, err = engine.AddMonths(start, 122)
			require.NoError(t, err)
			require.Equal(t, want[:7], termStart()[:7], "the current term starts 122 months after the start")

			// Nothing left to do: an hourly re-check makes no order.
			e.Sim.ResetStats()
			_, err = e.DB.RecheckAll(ctx, []string{store.EntitySubscription})
			require.NoError(t, err)
			e.Converge(20 * time.Second)
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"])
		})
	}
}

// TestRenewalCountIsBounded: a renewal count that would turn into unbounded
// work (the 2147483647 of the out-of-memory report) is refused at the door.
func TestRenewalCountIsBounded(t *testing.T) {
	t.Parallel()
	s := subscription("s1", "c1")
	for _, n := range []int{2147483647, engine.MaxRenewalCount + 1, -1} {
		s.RenewalCount = n
		err := s.Validate()
		require.Error(t, err, n)
		require.Contains(t, err.Error(), "renewalCount")
	}
	s.TermMonths, s.RenewalCount = 120, 80 // the renewed term would end after 2099
	require.ErrorContains(t, s.Validate(), "renewalCount")
	s.TermMonths, s.RenewalCount = 12, 20
	require.NoError(t, s.Validate())
}
