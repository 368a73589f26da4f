package usage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

// TestExactlyOnceUnderFaults sends 100,000 events (duplicates and late events
// included) for 200 subscriptions while 20% of Zuora calls fail (500, 429,
// timeouts, lost responses, lock contention), and the engine is stopped
// abruptly and restarted mid-upload again and again. In the end Zuora holds,
// for every subscription charge, exactly the sum of the distinct events.
func TestExactlyOnceUnderFaults(t *testing.T) {
	t.Parallel()
	exactlyOnceUnderFaults(t, nil)
}

// TestExactlyOnceByFilesUnderFaults is TestExactlyOnceUnderFaults with the
// backlog going to Zuora as usage files (POST /v1/usage, files of at most
// 400 rows): uploads and status reads fail, answers of accepted files are
// lost, runs are cut off between upload and status, and rows come back from
// failed imports; in the end Zuora holds every unit exactly once.
func TestExactlyOnceByFilesUnderFaults(t *testing.T) {
	t.Parallel()
	exactlyOnceUnderFaults(t, func(c *usage.Config) { c.ImportThreshold, c.ImportRows = 300, 400 })
}

func exactlyOnceUnderFaults(t *testing.T, mod func(*usage.Config)) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			const (
				subs   = 200
				total  = 100_000
				phase1 = 70_000
			)
			f := newFixture(t, d, fixtureOptions{subs: subs, sync: true, maxAttempt: 3, timeout: 300 * time.Millisecond})
			if mod != nil {
				f.mods = append(f.mods, mod)
			}
			t.Logf("%d subscriptions synced in %s", subs, time.Since(start).Round(time.Millisecond))
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(42, uint64(len(d))))
			quantities := []string{"1", "0.5", "2.25", "10", "0.001", "3", "0", "7.125"}
			charges := []string{"api", "storage"}

			type key struct{ sub, charge string }
			expected := map[key]decimal.Decimal{}
			var keys []string // keys sent so far, for duplicates
			distinct := 0
			gen := func(n int, hourFrom, hourTo int) []usage.Event {
				evs := make([]usage.Event, 0, n)
				for len(evs) < n {
					if len(keys) > 0 && rng.IntN(100) < 5 {
						// A duplicate: same key, maybe another quantity; it must count once.
						k := keys[rng.IntN(len(keys))]
						evs = append(evs, usage.Event{IdempotencyKey: k, SubscriptionID: "s000", ChargeID: "api", Quantity: dec("999"), Timestamp: T0})
						continue
					}
					e := usage.Event{
						IdempotencyKey: fmt.Sprintf("ev-%d", distinct),
						SubscriptionID: subID(rng.IntN(subs)),
						ChargeID:       charges[rng.IntN(2)],
						Quantity:       dec(quantities[rng.IntN(len(quantities))]),
						Timestamp:      T0.Add(time.Duration(hourFrom+rng.IntN(hourTo-hourFrom+1))*time.Hour + time.Duration(rng.IntN(3600))*time.Second),
					}
					distinct++
					keys = append(keys, e.IdempotencyKey)
					k := key{e.SubscriptionID, e.ChargeID}
					expected[k] = expected[k].Add(e.Quantity)
					evs = append(evs, e)
				}
				return evs
			}
			ingestAll := func(l *usage.Ledger, evs []usage.Event) error {
				for i := 0; i < len(evs); i += usage.MaxBatch {
					res, err := l.Ingest(ctx, evs[i:min(i+usage.MaxBatch, len(evs))])
					if err != nil {
						return err
					}
					for _, r := range res {
						if r.Status == usage.Rejected {
							return fmt.Errorf("rejected: %+v", r)
						}
					}
				}
				return nil
			}

			// Phase 1: hours 0-7.
			l := f.ledger()
			t0 := time.Now()
			require.NoError(t, ingestAll(l, gen(phase1, 0, 7)))
			t.Logf("phase 1: %d events ingested in %s", phase1, time.Since(t0).Round(time.Millisecond))

			faults := func(on bool) {
				if !on {
					f.e.Sim.SetFaults()
					f.z.set(0, 0)
					return
				}
				var fs []zuorasim.Fault
				for _, k := range []zuorasim.FaultKind{zuorasim.FaultHTTP500, zuorasim.FaultHTTP429, zuorasim.FaultTimeout, zuorasim.FaultLostResponse, zuorasim.FaultLockContention} {
					fs = append(fs, zuorasim.Fault{Operation: "*", Kind: k, Probability: 0.045})
				}
				f.e.Sim.SetFaults(fs...)
				f.z.set(0, 0.03) // and some answers lost after Zuora committed
			}
			faults(true)

			// Stop the engine abruptly mid-upload, again and again; every
			// restart is a new ledger (a new process).
			crashRuns := func(n int) {
				for i := range n {
					l = f.ledger()
					if i%3 == 0 {
						_, err := l.ReleaseClaims(ctx, "") // the previous process is gone: drop its claims
						require.NoError(t, err)
					}
					cctx, cancel := context.WithTimeout(ctx, time.Duration(5+rng.IntN(120))*time.Millisecond)
					_, err := l.SealAndUpload(cctx, f.clock.Add(30*time.Second))
					cancel()
					if err != nil {
						t.Logf("interrupted run %d: %v", i, err)
					}
				}
			}
			f.clock.Set(T0.Add(8*time.Hour + 20*time.Minute))
			crashRuns(12)

			// Phase 2, ingested while uploads run: late events for hours
			// 0-7 (corrections) and new hours 8-9.
			f.clock.Set(T0.Add(10*time.Hour + 20*time.Minute))
			evs := append(gen(20_000, 0, 7), gen(total-phase1-20_000, 8, 9)...)
			var (
				wg        sync.WaitGroup
				ingestErr error
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ingestErr = ingestAll(f.ledger(), evs)
			}()
			crashRuns(8)
			wg.Wait()
			require.NoError(t, ingestErr)
			crashRuns(8)

			// Runs to completion, faults still on: claims of crashed runs expire.
			for i := 0; i < 30; i++ {
				_, err := f.ledger().SealAndUpload(ctx, f.clock.Add(2*time.Minute))
				if err != nil {
					t.Logf("run %d: %v", i, err)
				}
				st, err := l.Stats(ctx)
				require.NoError(t, err)
				if st.PendingWindows == 0 {
					break
				}
			}
			faults(false)
			for i := 0; i < 10; i++ {
				_, err := f.ledger().SealAndUpload(ctx, f.clock.Add(2*time.Minute))
				require.NoError(t, err)
			}
			st, err := l.Stats(ctx)
			require.NoError(t, err)
			require.Zero(t, st.PendingWindows, "%+v", st)
			require.Zero(t, st.SendingRows)
			sim := f.e.Sim.Stats()
			t.Logf("simulator: %d create calls, %d usage files, %d faulted calls in all, %d answers lost after commit; %d distinct events of %d; %d usage records",
				sim.Calls["POST /v1/action/create"], sim.Calls["POST /v1/usage"], sim.Faulted, f.z.lost, distinct, total, len(f.e.Sim.State().Usage))
			require.Positive(t, sim.Faulted)
			if mod != nil {
				imports := map[string]bool{}
				for _, u := range f.e.Sim.State().Usage {
					if u.ImportID != "" {
						imports[u.ImportID] = true
					}
				}
				require.NotEmpty(t, imports, "some usage went by files")
			}

			got := f.simTotals()
			var sumWant, sumGot decimal.Decimal
			for i := range subs {
				for _, c := range charges {
					want := expected[key{subID(i), c}]
					num := f.chargeNumber(subID(i), "pro", c)
					require.True(t, want.Equal(got[num]), "%s/%s (%s): Zuora has %s, ingested %s", subID(i), c, num, got[num], want)
					sumWant = sumWant.Add(want)
				}
			}
			for _, v := range got {
				sumGot = sumGot.Add(v)
			}
			require.True(t, sumWant.Equal(sumGot), "all of Zuora %s, all ingested %s", sumGot, sumWant)
			t.Logf("exactly once: %s units in Zuora; took %s", sumGot, time.Since(start).Round(time.Millisecond))
		})
	}
}
