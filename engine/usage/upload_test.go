package usage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
)

func TestSealAndUploadWithCorrections(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			l := f.ledger()
			ctx := context.Background()
			h13 := T0.Add(13 * time.Hour)
			ingest(t, l, event("a", "s000", "api", "10", h13.Add(time.Minute)), event("b", "s000", "api", "5.5", h13.Add(59*time.Minute)))

			// Not sealed before hour end + grace.
			rep, err := l.SealAndUpload(ctx, h13.Add(time.Hour+14*time.Minute))
			require.NoError(t, err)
			require.Zero(t, rep.WindowsSealed)
			require.Zero(t, f.createCalls())

			rep, err = l.SealAndUpload(ctx, h13.Add(time.Hour+15*time.Minute))
			require.NoError(t, err)
			require.Equal(t, 1, rep.WindowsSealed)
			require.Equal(t, 1, rep.RowsSent)
			require.Equal(t, 1, f.createCalls())
			api := f.chargeNumber("s000", "pro", "api")
			require.Equal(t, "15.5", f.simTotals()[api].String())
			u := f.e.Sim.State().Usage[0]
			require.Equal(t, "billsync s000/api 2026-11-20T13:00Z", u.Description)
			require.Equal(t, "Each", u.UOM)
			require.Equal(t, "BS-s000", u.SubscriptionNumber)
			require.Equal(t, "BS-c000", u.AccountNumber)
			require.Equal(t, h13, u.StartDateTime.UTC())

			// A late event becomes a correction for the difference only.
			ingest(t, l, event("c", "s000", "api", "0.25", h13.Add(30*time.Minute)), event("a", "s000", "api", "10", h13))
			rep, err = l.SealAndUpload(ctx, h13.Add(3*time.Hour))
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			require.Equal(t, "15.75", f.simTotals()[api].String())
			st := f.e.Sim.State().Usage
			require.Len(t, st, 2)
			require.Equal(t, "billsync s000/api 2026-11-20T13:00Z (correction 1)", st[1].Description)
			require.Equal(t, "0.25", string(st[1].Quantity))

			// Nothing left: another run makes no call.
			rep, err = l.SealAndUpload(ctx, h13.Add(4*time.Hour))
			require.NoError(t, err)
			require.Zero(t, rep.Calls)
			ws, err := l.Windows(ctx, "s000", usage.WindowFilter{})
			require.NoError(t, err)
			require.Len(t, ws, 1)
			require.Equal(t, "15.75", ws[0].Uploaded.String())
			require.True(t, ws[0].Pending.IsZero())
			require.Len(t, ws[0].ZuoraUsageIDs, 2)
			require.Equal(t, api, ws[0].ChargeNumber)
			stats, err := l.Stats(ctx)
			require.NoError(t, err)
			require.Zero(t, stats.PendingWindows)
			require.Nil(t, stats.OldestPendingWindow)
		})
	}
}

func TestBatchEdges(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			l := f.ledger()
			ctx := context.Background()
			for _, tc := range []struct{ windows, calls int }{{50, 1}, {51, 2}, {100, 2}, {1, 1}} {
				f.e.Sim.ResetStats()
				base := T0.Add(-time.Duration(tc.windows+200) * time.Hour) // separate windows per case
				var evs []usage.Event
				for i := range tc.windows {
					evs = append(evs, event(fmt.Sprintf("edge-%d-%d", tc.windows, i), "s000", "api", "1", base.Add(time.Duration(i)*time.Hour)))
				}
				ingest(t, l, evs...)
				rep, err := l.SealAndUpload(ctx, f.clock.Now())
				require.NoError(t, err)
				require.Equal(t, tc.windows, rep.RowsSent)
				require.Equal(t, tc.calls, rep.Calls, "%d windows", tc.windows)
				require.Equal(t, tc.calls, f.createCalls(), "%d windows", tc.windows)
			}
		})
	}
}

func TestPartialSuccessRetriedAlone(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			l := f.ledger()
			ctx := context.Background()
			h := T0.Add(5 * time.Hour)
			ingest(t, l, event("p1", "s000", "api", "1", h), event("p2", "s000", "api", "2", h.Add(time.Hour)), event("p3", "s000", "api", "3", h.Add(2*time.Hour)))
			// Zuora will not know this unit of measure: its row fails, the others succeed.
			require.NoError(t, f.e.DB.Gorm.WithContext(ctx).Exec("UPDATE usage_windows SET uom = 'Bogus' WHERE window_start = ?", h.Add(time.Hour)).Error)
			rep, err := l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.Calls)
			require.Equal(t, 2, rep.RowsSent)
			require.Equal(t, 1, rep.RowsFailed)
			require.Len(t, f.e.Sim.State().Usage, 2)

			// The failed row is retried alone (a new batch, a new key); the others are not resent.
			f.e.Sim.ResetStats()
			rep, err = l.SealAndUpload(ctx, f.clock.Add(time.Second))
			require.NoError(t, err)
			require.Equal(t, 1, rep.Calls, "%+v", rep)
			require.Equal(t, 1, rep.RowsFailed)
			require.Len(t, f.e.Sim.State().Usage, 2)

			// Fixed, it goes through; everything is in Zuora once.
			require.NoError(t, f.e.DB.Gorm.WithContext(ctx).Exec("UPDATE usage_windows SET uom = 'Each'").Error)
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"}) // the manual action does not wait for the backoff
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			require.Len(t, rep.Sent, 1)
			require.Equal(t, "2", rep.Sent[0].Quantity)
			require.Len(t, f.e.Sim.State().Usage, 3)
			require.Equal(t, "6", f.simTotals()[f.chargeNumber("s000", "pro", "api")].String())
		})
	}
}

func TestWindowStraddlingPlanChange(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			l := f.ledger(func(c *usage.Config) { c.ViewTTL = time.Hour })
			ctx := context.Background()
			h := T0.Add(13 * time.Hour)
			proAPI := f.chargeNumber("s000", "pro", "api")
			ingest(t, l, event("before", "s000", "api", "4", h.Add(10*time.Minute)))

			// 13:30 the subscription moves from plan pro to plan team (both bill "api").
			sub := subscription("s000", "c000", "team")
			_, _, err := f.e.DB.UpsertSubscription(ctx, sub)
			require.NoError(t, err)
			f.e.Converge(30 * time.Second)
			teamAPI := f.chargeNumber("s000", "team", "api")
			require.NotEqual(t, proAPI, teamAPI)

			res := ingest(t, l, event("after", "s000", "api", "6", h.Add(40*time.Minute)))
			require.Equal(t, "team", res[0].PlanID)
			// The removed charge still takes late events of its windows when named by feature? No:
			// events name the charge the subscription has now; the earlier window keeps its own charge.
			rep, err := l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 2, rep.RowsSent, "%+v", rep)
			totals := f.simTotals()
			require.Equal(t, "4", totals[proAPI].String(), "the window of the old plan goes to the old charge number")
			require.Equal(t, "6", totals[teamAPI].String())

			// A window of the old plan whose charge number was not known at
			// ingest still uploads to the old charge number.
			require.NoError(t, f.e.DB.Gorm.WithContext(ctx).Exec("UPDATE usage_windows SET charge_number = '' WHERE plan_id = 'pro'").Error)
			require.NoError(t, f.e.DB.Gorm.WithContext(ctx).Exec("INSERT INTO usage_windows (subscription_id, plan_id, charge_id, window_start, quantity, event_count, dirty, uom, created_at, updated_at) VALUES ('s000', 'pro', 'api', ?, '2', 1, TRUE, 'Each', ?, ?)",
				h.Add(-time.Hour), h, h).Error)
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			require.Equal(t, proAPI, rep.Sent[0].ChargeNumber)
			require.Equal(t, "6", f.simTotals()[proAPI].String())
		})
	}
}

func TestRowsOfUnsyncedSubscriptionsWait(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1})
			l := f.ledger()
			ctx := context.Background()
			h := T0.Add(2 * time.Hour)
			ingest(t, l, event("w1", "s000", "api", "1", h))
			rep, err := l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsWaiting)
			require.Zero(t, rep.Calls)

			// Switched off: nothing is uploaded even once synced.
			f.e.Converge(30 * time.Second)
			f.switches[usage.Switch] = false
			rep, err = l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.NotEmpty(t, rep.Skipped)
			require.Zero(t, f.createCalls())
			ingest(t, l, event("w2", "s000", "api", "2", h))

			f.switches[usage.Switch] = true
			rep, err = l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 2, rep.RowsSent)
			require.Equal(t, "3", f.simTotals()[f.chargeNumber("s000", "pro", "api")].String())
		})
	}
}

func TestManualSyncIncludesCurrentHour(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 2, sync: true})
			l := f.ledger()
			ctx := context.Background()
			now := f.clock.Now() // 20:00
			f.clock.Set(now.Add(10 * time.Minute))
			ingest(t, l, event("m1", "s000", "api", "1", now.Add(-50*time.Minute)), event("m2", "s000", "api", "2", now.Add(5*time.Minute)),
				event("m3", "s001", "api", "4", now.Add(-50*time.Minute)))
			rep, err := l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000"})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent, "the hour that ended is sealed without waiting for the grace")
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000", IncludeCurrentHour: true})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			ingest(t, l, event("m4", "s000", "api", "0.5", now.Add(9*time.Minute)))
			rep, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "s000", IncludeCurrentHour: true})
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			require.Equal(t, 1, rep.Sent[0].Correction)
			require.Equal(t, "3.5", f.simTotals()[f.chargeNumber("s000", "pro", "api")].String())
			require.Zero(t, f.simTotals()[f.chargeNumber("s001", "pro", "api")].IntPart(), "other subscriptions are left alone")
			_, err = l.Sync(ctx, usage.SyncOptions{SubscriptionID: "nope"})
			require.ErrorIs(t, err, engine.ErrNotFound)
		})
	}
}

func TestLookUpAfterKeyExpiry(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true, maxAttempt: 1})
			l := f.ledger()
			ctx := context.Background()
			h := T0.Add(3 * time.Hour)
			api := f.chargeNumber("s000", "pro", "api")

			// 1. Zuora stores the rows but the answer is lost.
			ingest(t, l, event("x1", "s000", "api", "7", h), event("x2", "s000", "api", "8", h.Add(time.Hour)))
			f.z.set(1, 0)
			rep, err := l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.BatchesUnknown, "%+v", rep)
			require.Len(t, f.e.Sim.State().Usage, 2)
			st, err := l.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 2, st.SendingRows)

			// 25 h later Zuora has forgotten the key: resending would create
			// the rows again. The ledger looks them up instead.
			f.e.Sim.AdvanceClock(25 * time.Hour)
			f.clock.Add(25 * time.Hour)
			f.e.Sim.ResetStats()
			rep, err = f.ledger().SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 2, rep.RowsLookedUp)
			require.Equal(t, 2, rep.RowsSent)
			require.Zero(t, f.createCalls())
			require.Positive(t, f.e.Sim.Stats().Calls["GET /v1/usage/accounts/{account-key}"]) // (twice when the token expired with the clock)
			require.Len(t, f.e.Sim.State().Usage, 2)
			require.Equal(t, "15", f.simTotals()[api].String())
			ws, err := l.Windows(ctx, "s000", usage.WindowFilter{})
			require.NoError(t, err)
			for _, w := range ws {
				require.Len(t, w.ZuoraUsageIDs, 1)
				require.True(t, w.Pending.IsZero())
			}

			// 2. The call never reached Zuora (500): after 25 h the look-up
			// finds nothing and the row is sent again, with a new key.
			ingest(t, l, event("x3", "s000", "api", "1", h.Add(2*time.Hour)))
			f.e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/action/create", Kind: zuorasim.FaultHTTP500, Count: 1})
			rep, err = l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.BatchesUnknown)
			require.Len(t, f.e.Sim.State().Usage, 2)
			f.e.Sim.AdvanceClock(25 * time.Hour)
			f.clock.Add(25 * time.Hour)
			rep, err = l.SealAndUpload(ctx, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsLookedUp)
			require.Zero(t, rep.RowsSent)
			rep, err = l.SealAndUpload(ctx, f.clock.Add(time.Second))
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			require.Len(t, f.e.Sim.State().Usage, 3)
			require.Equal(t, "16", f.simTotals()[api].String())
		})
	}
}

// TestUsageDayInTenantTimeZone: in a tenant on Paris time, usage of the
// UTC hour 23:00–24:00 on January 31 stays on January 31 in Zuora (Zuora
// rates usage by its day in the tenant's zone; a "…Z" date-time would be
// February 1 there, the next billing period).
func TestUsageDayInTenantTimeZone(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1, sync: true})
			tn := f.e.Sim.Tenant()
			tn.TimeZone = "Europe/Paris"
			require.NoError(t, f.e.Sim.SetTenant(tn))
			paris, err := time.LoadLocation("Europe/Paris")
			require.NoError(t, err)
			late := time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC)
			f.clock.Set(late.Add(3 * time.Hour))
			l := f.ledger()
			ingest(t, l, event("jan31", "s000", "api", "7", late))
			rep, err := l.SealAndUpload(context.Background(), f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, 1, rep.RowsSent)
			u := f.e.Sim.State().Usage[0]
			require.Equal(t, "2026-01-31 23:00", u.StartDateTime.In(paris).Format("2006-01-02 15:04"),
				"the window's day and hour in the tenant's zone are billsync's")
		})
	}
}
