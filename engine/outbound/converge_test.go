package outbound_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestConvergenceUnderFaults: 500 customers with subscriptions, random edits,
// 20% of Zuora calls faulted, the engine stopped abruptly and restarted twice.
// At the end Zuora equals the desired state: nothing duplicated, nothing missing.
func TestConvergenceUnderFaults(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			customers := 500
			if testing.Short() {
				customers = 60
			}
			e := enginetest.New(t, d, enginetest.Options{ClientTimeout: 400 * time.Millisecond, Lease: 300 * time.Millisecond,
				KeepClaimsOnStop: true, Workers: 8})
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(7, 11))
			basic := proPlan()
			basic.ID, basic.Name = "basic", "Basic"
			for i := range basic.BillingPeriods {
				basic.BillingPeriods[i].ID = strings.Replace(basic.BillingPeriods[i].ID, "pro", "basic", 1)
				for j := range basic.BillingPeriods[i].Charges {
					basic.BillingPeriods[i].Charges[j].ID = "basic-" + basic.BillingPeriods[i].Charges[j].ID
				}
			}
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, basic))
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, addon()))

			subs := map[string]engine.Subscription{}
			for i := range customers {
				c := fmt.Sprintf("c%03d", i)
				must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer(c)))
				s := subscription("s"+c, c)
				if i%2 == 1 {
					s.PlanID, s.BillingPeriodID, s.ChargeQuantities = "basic", "basic-monthly", map[string]decimal.Decimal{"basic-seats": dec("2")}
				}
				subs[s.ID] = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, s))
			}
			faults := []zuorasim.Fault{}
			for _, k := range []zuorasim.FaultKind{zuorasim.FaultHTTP500, zuorasim.FaultHTTP429, zuorasim.FaultTimeout, zuorasim.FaultLostResponse, zuorasim.FaultLockContention} {
				faults = append(faults, zuorasim.Fault{Operation: "*", Kind: k, Probability: 0.045})
			}
			e.Sim.SetFaults(faults...)

			edit := func(n int) {
				ids := make([]string, 0, len(subs))
				for id := range subs {
					ids = append(ids, id)
				}
				sort.Strings(ids)
				for range n {
					s := subs[ids[rng.IntN(len(ids))]]
					if s.Status == engine.StatusCancelled {
						continue
					}
					prefix := s.PlanID
					switch rng.IntN(6) {
					case 0: // plan change
						if s.PlanID == "pro" {
							s.PlanID, s.BillingPeriodID, s.ChargeQuantities = "basic", "basic-monthly", map[string]decimal.Decimal{"basic-seats": dec("1")}
						} else {
							s.PlanID, s.BillingPeriodID, s.ChargeQuantities = "pro", "pro-monthly", map[string]decimal.Decimal{"seats": dec("1")}
						}
					case 1: // add-on toggled
						if len(s.AddOns) == 0 {
							s.AddOns = []engine.AddOn{{PlanID: "storage", BillingPeriodID: "storage-monthly", Quantity: decimal.NewFromInt(int64(1 + rng.IntN(5)))}}
						} else {
							s.AddOns = nil
						}
					case 2: // quantity
						key := "seats"
						if prefix == "basic" {
							key = "basic-seats"
						}
						s.ChargeQuantities = map[string]decimal.Decimal{key: decimal.NewFromInt(int64(1 + rng.IntN(20)))}
					case 3: // cancel
						s.Status, s.CancellationPolicy = engine.StatusCancelled, engine.CancelEndOfCurrentTerm
					case 4: // suspend or resume
						if s.Status == engine.StatusSuspended {
							s.Status, s.SuspendDate = engine.StatusActive, ""
						} else {
							s.Status, s.SuspendDate = engine.StatusSuspended, "2026-01-01"
						}
					case 5: // add-on quantity
						if len(s.AddOns) > 0 {
							s.AddOns[0].Quantity = s.AddOns[0].Quantity.Add(decimal.NewFromInt(1))
						}
					}
					subs[s.ID] = must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, s))
				}
			}
			run := func(d time.Duration) {
				rctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				// The production loop (Pool.Run) and the sweeper; the pool
				// stops as a crash would (KeepClaimsOnStop): claims stay in
				// flight, calls in progress are cut off.
				pool := e.NewPool(8, 300*time.Millisecond, true)
				go e.Sweep(rctx, 20*time.Millisecond, pool)
				_ = pool.Run(rctx)
			}
			if testing.Verbose() {
				go func() {
					for range time.Tick(2 * time.Second) {
						c, _ := e.DB.SyncCounts(ctx)
						st := e.Sim.Stats()
						total := 0
						for _, v := range st.Calls {
							total += v
						}
						t.Logf("progress: %v calls=%d 429=%d faulted=%d maxconc=%d", c, total, st.Responses429, st.Faulted, st.MaxConcurrent)
					}
				}()
			}
			run(1500 * time.Millisecond)
			edit(customers * 3 / 10)
			run(1500 * time.Millisecond)
			edit(customers * 3 / 10)
			run(1500 * time.Millisecond)
			edit(customers / 5)

			// The engine converges with the faults still on.
			time.Sleep(350 * time.Millisecond) // let abandoned claims expire
			e.Converge(2 * time.Minute)
			e.Sim.SetFaults()
			// Everything faulted earlier is retried; dead records would hide a bug.
			counts, err := e.DB.SyncCounts(ctx)
			require.NoError(t, err)
			dead, _, _ := e.DB.ListSyncRecords(ctx, store.SyncFilter{State: store.StateDead, Limit: 10})
			for _, r := range dead {
				t.Logf("dead: %s/%s attempts=%d reason=%q error=%q", r.EntityKind, r.EntityID, r.Attempts, r.Reason, r.LastErrorMessage)
			}
			for kind, states := range counts {
				for state, n := range states {
					require.Contains(t, []string{store.StateSynced, store.StateSkipped}, state, "%s: %d %s", kind, n, state)
				}
			}
			t.Logf("%s: sim stats %+v", d, e.Sim.Stats().Faulted)

			st := e.Sim.State()
			skus := map[string]int{}
			for _, p := range st.Products {
				skus[p.SKU]++
			}
			require.Equal(t, map[string]int{"pro": 1, "basic": 1, "storage": 1}, skus, "one product per plan")
			rpIDs := map[string]int{}
			for _, rp := range st.RatePlans {
				rpIDs[fmt.Sprint(rp.Fields["BillsyncId__c"])]++
			}
			for k, n := range rpIDs {
				require.Equal(t, 1, n, "rate plan %s", k)
			}
			chIDs := map[string]int{}
			for _, ch := range st.Charges {
				chIDs[fmt.Sprint(ch.Fields["BillsyncId__c"])]++
			}
			for k, n := range chIDs {
				require.Equal(t, 1, n, "charge %s", k)
			}
			accts := map[string]bool{}
			for _, a := range st.Accounts {
				require.False(t, accts[a.AccountNumber], "duplicate account %s", a.AccountNumber)
				accts[a.AccountNumber] = true
			}
			subNumbers := map[string]int{}
			for _, s := range st.Subscriptions {
				subNumbers[s.SubscriptionNumber]++
			}
			synced := 0
			for id, want := range subs {
				rec, err := e.DB.GetSyncRecord(ctx, store.EntitySubscription, id)
				require.NoError(t, err)
				if rec.State == store.StateSkipped {
					// Cancelled before it ever reached Zuora: nothing to create.
					require.Equal(t, outbound.ReasonCancelledUnsynced, rec.Reason, id)
					require.Equal(t, engine.StatusCancelled, want.Status, id)
					require.Zero(t, subNumbers["BS-"+id], id)
					require.False(t, accts["BS-"+want.CustomerID], id)
					continue
				}
				synced++
				require.Equal(t, 1, subNumbers["BS-"+id], "subscription %s exactly once in Zuora", id)
				require.True(t, accts["BS-"+want.CustomerID], "account of %s", id)
			}
			require.Len(t, st.Subscriptions, synced)
			require.Len(t, st.Accounts, synced, "one account per customer with a synced subscription")
			require.Greater(t, synced, customers/2)
			rpName := map[string]string{}
			for _, rp := range st.RatePlans {
				rpName[rp.ID] = fmt.Sprint(rp.Fields["BillsyncId__c"])
			}
			byNumber := map[string]zuorasim.SubscriptionSnapshot{}
			for _, s := range st.Subscriptions {
				byNumber[s.SubscriptionNumber] = s
			}
			for id, want := range subs {
				got, ok := byNumber["BS-"+id]
				if !ok {
					continue // skipped above
				}
				wantStatus := map[engine.SubscriptionStatus]string{engine.StatusActive: "Active", engine.StatusSuspended: "Suspended", engine.StatusCancelled: "Cancelled"}[want.Status]
				require.Equal(t, wantStatus, got.Status, id)
				if want.Status == engine.StatusCancelled {
					continue
				}
				var have []string
				qty := map[string]string{}
				for _, rp := range got.RatePlans {
					if rp.LastChangeType == "Remove" {
						continue
					}
					have = append(have, rpName[rp.ProductRatePlanID])
					for _, c := range rp.Charges {
						if c.Quantity != "" {
							qty[rpName[rp.ProductRatePlanID]+"/"+c.Name] = c.Quantity.String()
						}
					}
				}
				wantRP := []string{want.PlanID + "/" + want.BillingPeriodID}
				for _, a := range want.AddOns {
					wantRP = append(wantRP, a.PlanID+"/"+a.BillingPeriodID)
				}
				sort.Strings(have)
				sort.Strings(wantRP)
				require.Equal(t, wantRP, have, id)
				for cid, q := range want.ChargeQuantities {
					_ = cid
					gotQ, _ := decimal.NewFromString(qty[want.PlanID+"/"+want.BillingPeriodID+"/Seats"])
					require.True(t, q.Equal(gotQ), "%s seats: want %s got %s", id, q, gotQ)
				}
				for _, a := range want.AddOns {
					gotQ, _ := decimal.NewFromString(qty[a.PlanID+"/"+a.BillingPeriodID+"/Storage"])
					require.True(t, a.Quantity.Equal(gotQ), "%s storage: want %s got %s", id, a.Quantity, gotQ)
				}
			}
		})
	}
}
