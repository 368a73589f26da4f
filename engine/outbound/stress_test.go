package outbound_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestStressOneReconcileAtATime: the queue's promise, through the production
// loop (Pool.Run) as serve runs it. Leases of 1 s against Zuora answers of
// 700 ms (a plan takes seven calls, about 5 s: five leases), two pools and
// the sweeper every 50 ms, then a third pool that crashes (its claims left
// in flight, its calls cut off) and restarts every 1.2 s while subscriptions
// are edited. Per entity, the reconciles running at once never exceed 1; a
// plan is written by one reconcile while nothing crashes (the heartbeat keeps
// its lease); Zuora ends with every object exactly once.
func TestStressOneReconcileAtATime(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			excl := &enginetest.Exclusivity{}
			e := enginetest.New(t, d, enginetest.Options{Sim: zuorasim.Options{Latency: 700 * time.Millisecond},
				Lease: time.Second, Workers: 4, Exclusivity: excl})
			ctx := context.Background()
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, addon()))
			const customers = 16
			for i := range customers {
				c := fmt.Sprintf("c%02d", i)
				must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer(c)))
				must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s"+c, c)))
			}
			sctx, stopSweeper := context.WithCancel(ctx)
			defer stopSweeper()
			a, b := e.NewPool(4, time.Second, false), e.NewPool(4, time.Second, false)
			go e.Sweep(sctx, 50*time.Millisecond, a, b)
			stopA, stopB := enginetest.Start(a), enginetest.Start(b)
			settled := func(limit time.Duration) {
				t.Helper()
				require.Eventually(t, func() bool {
					n, err := e.DB.CountUnsettled(ctx)
					require.NoError(t, err)
					return n == 0
				}, limit, 20*time.Millisecond)
			}
			settled(40 * time.Second)
			// The heartbeat kept each plan's lease for its whole reconcile
			// (about five leases long): one attempt wrote to Zuora. (A
			// subscription that waited for its plan marks the plan due, so
			// a second, unchanged pass may follow, without a call.) On a
			// starved machine a heartbeat can come too late: the attempt is
			// then cut off before its lease lapses and retried — never two
			// at once (checked below), but more than one attempt writes.
			// A lost lease (a claim that lapsed while queued or whose
			// outcome came too late) is the same starvation, refused.
			lost := a.Stats().LeaseLost + b.Stats().LeaseLost
			cut := 0
			for _, plan := range []string{"pro", "storage"} {
				rec, err := e.DB.GetSyncRecord(ctx, store.EntityPlan, plan)
				require.NoError(t, err)
				hist, err := e.DB.SyncHistory(ctx, rec.ID, 50)
				require.NoError(t, err)
				writing := 0
				for _, h := range hist {
					if h.Outcome == store.StateFailed && strings.Contains(h.ErrorMessage, "lease is about to lapse") {
						cut++
						continue
					}
					require.Equal(t, store.StateSynced, h.Outcome, "%s: %+v", plan, h)
					if h.ZuoraCalls > 0 {
						writing++
					}
				}
				if cut == 0 && lost == 0 {
					require.Equal(t, 1, writing, "plan %s: one reconcile wrote", plan)
				}
			}
			if cut == 0 && lost == 0 {
				require.Equal(t, 5, e.Sim.Stats().Calls["POST /v1/object/product-rate-plan-charge"], "4 + 1 charges, each created once")
			} else {
				t.Logf("busy machine (late heartbeats): %d plan attempts cut off before their lease lapsed, %d outcomes refused", cut, lost)
			}

			// Edits while a third pool crashes and restarts.
			crashCtx, stopCrashing := context.WithCancel(ctx)
			crashed := make(chan struct{})
			go func() {
				defer close(crashed)
				for crashCtx.Err() == nil {
					c := e.NewPool(4, time.Second, true)
					rctx, cancel := context.WithTimeout(crashCtx, 1200*time.Millisecond)
					_ = c.Run(rctx)
					cancel()
				}
			}()
			for i := range customers {
				c := fmt.Sprintf("c%02d", i)
				s := subscription("s"+c, c)
				s.ChargeQuantities = map[string]decimal.Decimal{"seats": decimal.NewFromInt(int64(4 + i))}
				must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, s))
				time.Sleep(60 * time.Millisecond)
			}
			time.Sleep(2 * time.Second)
			stopCrashing()
			<-crashed
			settled(40 * time.Second)
			stopA()
			stopB()

			key, most := excl.Max()
			require.Equal(t, 1, most, "%s was reconciled %d times at once", key, most)
			counts, err := e.DB.SyncCounts(ctx)
			require.NoError(t, err)
			for kind, states := range counts {
				for state, n := range states {
					require.Equal(t, store.StateSynced, state, "%s: %d %s", kind, n, state)
				}
			}
			st := e.Sim.State()
			require.Len(t, st.Products, 2)
			require.Len(t, st.Charges, 5, "4 + 1 charges, each once")
			require.Len(t, st.Accounts, customers)
			require.Len(t, st.Subscriptions, customers)
			for _, sub := range st.Subscriptions {
				for _, rp := range sub.RatePlans {
					for _, ch := range rp.Charges {
						if ch.Name == "Seats" {
							var i int
							_, err := fmt.Sscanf(sub.SubscriptionNumber, "BS-sc%02d", &i)
							require.NoError(t, err)
							require.Equal(t, fmt.Sprint(4+i), ch.Quantity.String(), sub.SubscriptionNumber)
						}
					}
				}
			}
			t.Logf("%s: reconciles %d, lease lost a=%d b=%d, sim %+v", d, total(excl.Runs()), a.Stats().LeaseLost, b.Stats().LeaseLost, e.Sim.Stats().Calls)
		})
	}
}

func total(m map[reconcile.Key]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
