package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// The queue's driver suite (River's riverdrivertest, for billsync's sync
// queue): every queue method against Postgres and SQLite.

var allKinds = []string{store.EntityPlan, store.EntityCustomer, store.EntitySubscription}

func pending(t *testing.T, db *store.DB, kind, id string) store.SyncRecord {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.MarkPending(ctx, kind, id))
	rec, err := db.GetSyncRecord(ctx, kind, id)
	require.NoError(t, err)
	return rec
}

func get(t *testing.T, db *store.DB, kind, id string) store.SyncRecord {
	t.Helper()
	rec, err := db.GetSyncRecord(context.Background(), kind, id)
	require.NoError(t, err)
	return rec
}

func claimAll(t *testing.T, db *store.DB, worker string, lease time.Duration) []store.SyncRecord {
	t.Helper()
	recs, err := db.Claim(context.Background(), worker, allKinds, 1000, lease)
	require.NoError(t, err)
	return recs
}

func ids(recs []store.SyncRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.EntityKind + "/" + r.EntityID
	}
	return out
}

func TestQueueClaim(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityPlan, "p1")
		pending(t, db, store.EntityCustomer, "c1")
		// Not due yet: a failed record waiting for its retry.
		pending(t, db, store.EntityPlan, "later")
		recs := claimAll(t, db, "w", time.Minute)
		require.Len(t, recs, 3)
		for _, r := range recs {
			if r.EntityID == "later" {
				require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateFailed, NextAttempt: time.Now().Add(time.Hour), CountAttempt: true}))
			} else {
				require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateFailed, CountAttempt: true}))
			}
		}

		before := time.Now()
		recs, err := db.Claim(ctx, "w1", []string{store.EntityPlan}, 10, time.Minute)
		require.NoError(t, err)
		require.Equal(t, []string{"plan/p1"}, ids(recs), "only due records of the asked kinds")
		r := recs[0]
		require.Equal(t, store.StateInFlight, r.State)
		require.NotEmpty(t, r.LeaseToken)
		require.NotNil(t, r.ClaimedUntil)
		require.WithinDuration(t, before.Add(time.Minute), *r.ClaimedUntil, 5*time.Second)
		require.Equal(t, 1, r.Attempts)

		more, err := db.Claim(ctx, "w2", allKinds, 10, time.Minute)
		require.NoError(t, err)
		require.Equal(t, []string{"customer/c1"}, ids(more), "an in-flight record is not claimed again")
		require.NotEqual(t, r.LeaseToken, more[0].LeaseToken, "a new token per claim")

		none, err := db.Claim(ctx, "w3", nil, 10, time.Minute)
		require.NoError(t, err)
		require.Empty(t, none)
		none, err = db.Claim(ctx, "w3", allKinds, 0, time.Minute)
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

// TestQueueClaimOrder: by the minute the record fell due, then plans,
// subscriptions, customers.
func TestQueueClaimOrder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityCustomer, "old-customer")
		recs := claimAll(t, db, "w", time.Minute)
		require.NoError(t, db.Finish(ctx, recs[0], "w", store.Outcome{State: store.StateFailed, NextAttempt: time.Now().Add(-3 * time.Minute), CountAttempt: true}))
		pending(t, db, store.EntityCustomer, "c1")
		pending(t, db, store.EntitySubscription, "s1")
		pending(t, db, store.EntityPlan, "p1")
		pending(t, db, store.EntityPlan, "p2")
		got := claimAll(t, db, "w", time.Minute)
		require.Equal(t, []string{"customer/old-customer", "plan/p1", "plan/p2", "subscription/s1", "customer/c1"}, ids(got))

		// A limit takes the head of that order.
		for _, r := range got {
			require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateFailed, CountAttempt: true}))
		}
		head, err := db.Claim(ctx, "w", allKinds, 2, time.Minute)
		require.NoError(t, err)
		require.Len(t, head, 2)
	})
}

// TestQueueConcurrentClaims: eight claimers racing over 300 records take each
// exactly once (SKIP LOCKED on Postgres, the single writer on SQLite).
func TestQueueConcurrentClaims(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i := range 300 {
			pending(t, db, store.EntitySubscription, fmt.Sprintf("s%03d", i))
		}
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func(worker string) {
				defer wg.Done()
				for {
					recs, err := db.Claim(ctx, worker, allKinds, 7, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if len(recs) == 0 {
						return
					}
					mu.Lock()
					for _, r := range recs {
						if prev, dup := seen[r.EntityID]; dup {
							errs <- fmt.Errorf("%s claimed by %s and %s", r.EntityID, prev, worker)
						}
						seen[r.EntityID] = worker
					}
					mu.Unlock()
				}
			}(fmt.Sprintf("w%d", w))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, seen, 300)
		n, err := db.CountUnsettled(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 300, n, "all in flight")
	})
}

// TestQueueLeaseExpiry: the sweeper releases only lapsed claims.
func TestQueueLeaseExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityPlan, "short")
		short := claimAll(t, db, "w", 100*time.Millisecond)
		require.Len(t, short, 1)
		pending(t, db, store.EntityPlan, "long")
		require.Len(t, claimAll(t, db, "w", time.Hour), 1)
		n, err := db.ReleaseExpired(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "nothing lapsed yet")
		time.Sleep(150 * time.Millisecond)
		n, err = db.ReleaseExpired(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		r := get(t, db, store.EntityPlan, "short")
		require.Equal(t, store.StatePending, r.State)
		require.Empty(t, r.LeaseToken)
		require.Nil(t, r.ClaimedUntil)
		require.Equal(t, store.StateInFlight, get(t, db, store.EntityPlan, "long").State)

		// ReleaseWorker (a soft stop) returns the worker's own claims only.
		pending(t, db, store.EntityPlan, "other")
		require.Len(t, claimAll(t, db, "v", time.Hour), 2) // short and other
		require.NoError(t, db.ReleaseWorker(ctx, "w"))
		require.Equal(t, store.StatePending, get(t, db, store.EntityPlan, "long").State)
		require.Equal(t, store.StateInFlight, get(t, db, store.EntityPlan, "other").State)
	})
}

// TestQueueFinishRefusedAfterLapse: a holder whose lease lapsed cannot
// finish, whether or not someone claimed the record since, and a stale token
// of the same worker is refused too.
func TestQueueFinishRefusedAfterLapse(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityPlan, "p1")
		first := claimAll(t, db, "w", 80*time.Millisecond)[0]
		time.Sleep(120 * time.Millisecond)
		err := db.Finish(ctx, first, "w", store.Outcome{State: store.StateSynced, PayloadHash: "stale"})
		require.ErrorIs(t, err, store.ErrLeaseLost, "lapsed, though nobody took it")
		r := get(t, db, store.EntityPlan, "p1")
		require.Equal(t, store.StateInFlight, r.State, "nothing written")
		require.Empty(t, r.PayloadHash)
		hist, err := db.SyncHistory(ctx, r.ID, 10)
		require.NoError(t, err)
		require.Empty(t, hist)

		n, err := db.ReleaseExpired(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		second := claimAll(t, db, "w", time.Minute)[0]
		require.ErrorIs(t, db.Finish(ctx, first, "w", store.Outcome{State: store.StateSynced}), store.ErrLeaseLost, "same worker, older claim")
		require.ErrorIs(t, db.Finish(ctx, second, "other", store.Outcome{State: store.StateSynced}), store.ErrLeaseLost, "another worker")
		require.NoError(t, db.Finish(ctx, second, "w", store.Outcome{State: store.StateSynced, PayloadHash: "fresh"}))
		r = get(t, db, store.EntityPlan, "p1")
		require.Equal(t, store.StateSynced, r.State)
		require.Equal(t, "fresh", r.PayloadHash)
		require.Zero(t, r.Claims)
		require.Zero(t, r.Attempts)
		require.Equal(t, r.DesiredRevision, r.SyncedRevision)
		require.Empty(t, r.LeaseToken)
		require.Nil(t, r.ClaimedUntil)
	})
}

// TestQueueHeartbeat: extends held leases only.
func TestQueueHeartbeat(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityPlan, "a")
		pending(t, db, store.EntityPlan, "b")
		recs := claimAll(t, db, "w", 150*time.Millisecond)
		require.Len(t, recs, 2)
		leases := []store.Lease{{RecordID: recs[0].ID, Token: recs[0].LeaseToken}, {RecordID: recs[1].ID, Token: "another-claim"}}
		held, err := db.Heartbeat(ctx, "w", leases, time.Hour)
		require.NoError(t, err)
		require.Equal(t, map[int64]bool{recs[0].ID: true}, held, "a wrong token is not extended")
		held, err = db.Heartbeat(ctx, "v", leases[:1], time.Hour)
		require.NoError(t, err)
		require.Empty(t, held, "another worker's lease is not extended")
		time.Sleep(200 * time.Millisecond)
		n, err := db.ReleaseExpired(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "only the unextended lease lapsed")
		require.Equal(t, store.StateInFlight, get(t, db, store.EntityPlan, recs[0].EntityID).State)
		require.NoError(t, db.Finish(ctx, recs[0], "w", store.Outcome{State: store.StateSynced}), "the extended lease can finish")

		// A lapsed lease is not revived by a late heartbeat.
		pending(t, db, store.EntityPlan, "c")
		c := claimAll(t, db, "w", 50*time.Millisecond)
		time.Sleep(80 * time.Millisecond)
		held, err = db.Heartbeat(ctx, "w", []store.Lease{{RecordID: c[len(c)-1].ID, Token: c[len(c)-1].LeaseToken}}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, held)
	})
}

// TestQueueMarksWhileInFlight: a change to the entity (a higher desired
// revision) or a MarkPending while its record is in flight leaves the record
// pending after a successful Finish, so the change is pushed next; a record
// that was not marked settles.
func TestQueueMarksWhileInFlight(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, _, err := db.UpsertCustomer(ctx, customer("c1"))
		require.NoError(t, err)
		pending(t, db, store.EntityPlan, "p1")
		pending(t, db, store.EntityPlan, "p2")
		recs := claimAll(t, db, "w", time.Minute)
		require.Len(t, recs, 3)
		byID := map[string]store.SyncRecord{}
		for _, r := range recs {
			byID[r.EntityID] = r
		}
		edited := customer("c1")
		edited.Name = "Renamed"
		_, _, err = db.UpsertCustomer(ctx, edited)
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond) // next attempt strictly after the claim
		require.NoError(t, db.MarkPending(ctx, store.EntityPlan, "p1"))
		require.Equal(t, store.StateInFlight, get(t, db, store.EntityPlan, "p1").State, "MarkPending leaves an in-flight record in flight")
		for _, id := range []string{"c1", "p1", "p2"} {
			require.NoError(t, db.Finish(ctx, byID[id], "w", store.Outcome{State: store.StateSynced, PayloadHash: "h"}))
		}
		c := get(t, db, store.EntityCustomer, "c1")
		require.Equal(t, store.StatePending, c.State, "the newer revision is pushed next")
		require.Equal(t, 1, c.SyncedRevision)
		require.Equal(t, 2, c.DesiredRevision)
		require.Equal(t, store.StatePending, get(t, db, store.EntityPlan, "p1").State, "marked due while in flight")
		require.Equal(t, store.StateSynced, get(t, db, store.EntityPlan, "p2").State)

		// MarkPending on a settled record makes it due; failed and dead keep
		// their schedule.
		require.NoError(t, db.MarkPending(ctx, store.EntityPlan, "p2"))
		require.Equal(t, store.StatePending, get(t, db, store.EntityPlan, "p2").State)
		p2 := claimAll(t, db, "w", time.Minute)
		for _, r := range p2 {
			require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateDead, ErrorMessage: "refused", CountAttempt: true}))
		}
		require.NoError(t, db.MarkPending(ctx, store.EntityPlan, "p2"))
		require.Equal(t, store.StateDead, get(t, db, store.EntityPlan, "p2").State)
	})
}

// TestQueueSettleSynced: a pending record settles without a reconcile (at a
// revision, or at any); others are left.
func TestQueueSettleSynced(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, _, err := db.UpsertCustomer(ctx, customer("c1"))
		require.NoError(t, err)
		o := store.Outcome{PayloadHash: "h", ZuoraID: "acc-1", ZuoraNumber: "BS-c1", PushedState: "active", Detail: "created with its subscription"}
		ok, err := db.SettleSynced(ctx, store.EntityCustomer, "c1", 2, o)
		require.NoError(t, err)
		require.False(t, ok, "the entity is at revision 1")
		ok, err = db.SettleSynced(ctx, store.EntityCustomer, "c1", 1, o)
		require.NoError(t, err)
		require.True(t, ok)
		r := get(t, db, store.EntityCustomer, "c1")
		require.Equal(t, store.StateSynced, r.State)
		require.Equal(t, "acc-1", r.ZuoraID)
		require.Equal(t, "BS-c1", r.ZuoraNumber)
		require.Equal(t, "active", r.PushedState)
		hist, err := db.SyncHistory(ctx, r.ID, 10)
		require.NoError(t, err)
		require.Len(t, hist, 1)
		require.Equal(t, "created with its subscription", hist[0].Detail)
		ok, err = db.SettleSynced(ctx, store.EntityCustomer, "c1", 0, o)
		require.NoError(t, err)
		require.False(t, ok, "not pending any more")

		pending(t, db, store.EntityPlan, "p1")
		claimAll(t, db, "w", time.Minute)
		ok, err = db.SettleSynced(ctx, store.EntityPlan, "p1", 0, o)
		require.NoError(t, err)
		require.False(t, ok, "an in-flight record is its holder's")
	})
}

// TestQueueRetryRecheckDrift: the manual and scheduled transitions.
func TestQueueRetryRecheckDrift(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityPlan, "dead")
		pending(t, db, store.EntityPlan, "synced")
		for _, r := range claimAll(t, db, "w", time.Minute) {
			o := store.Outcome{State: store.StateSynced, PayloadHash: "h"}
			if r.EntityID == "dead" {
				o = store.Outcome{State: store.StateDead, ErrorMessage: "refused", CountAttempt: true}
			}
			require.NoError(t, db.Finish(ctx, r, "w", o))
		}
		n, err := db.RetryAll(ctx, store.EntityCustomer)
		require.NoError(t, err)
		require.Zero(t, n, "other kinds untouched")
		n, err = db.RetryAll(ctx, "")
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		d := get(t, db, store.EntityPlan, "dead")
		require.Equal(t, store.StatePending, d.State)
		require.Zero(t, d.Attempts)

		s := get(t, db, store.EntityPlan, "synced")
		require.NoError(t, db.MarkDrifted(ctx, s.ID, "price differs"))
		s = get(t, db, store.EntityPlan, "synced")
		require.Equal(t, store.StateDrifted, s.State)
		require.Equal(t, "price differs", s.Reason)
		require.Empty(t, s.PayloadHash, "the repair compares with Zuora")

		got := claimAll(t, db, "w", time.Minute)
		require.Len(t, got, 2, "drifted records are due")
		for _, r := range got {
			require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateSynced, PayloadHash: "h"}))
		}
		n, err = db.RecheckAll(ctx, []string{store.EntityPlan})
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		got = claimAll(t, db, "w", time.Minute)
		require.Len(t, got, 2)
		_, err = db.Retry(ctx, got[0].ID)
		require.NoError(t, err)
		require.Equal(t, store.StateInFlight, get(t, db, got[0].EntityKind, got[0].EntityID).State, "Retry leaves an in-flight record alone")
	})
}

// TestLeaderLease: one holder at a time; renewals; takeover after expiry.
func TestLeaderLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ok, err := db.TryLease(ctx, "scheduler", "a", 150*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = db.TryLease(ctx, "scheduler", "b", time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "held by a")
		ok, err = db.TryLease(ctx, "scheduler", "a", 150*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok, "the holder renews")
		holder, _, err := db.LeaseHolder(ctx, "scheduler")
		require.NoError(t, err)
		require.Equal(t, "a", holder)
		time.Sleep(200 * time.Millisecond)
		holder, _, err = db.LeaseHolder(ctx, "scheduler")
		require.NoError(t, err)
		require.Empty(t, holder, "expired")
		ok, err = db.TryLease(ctx, "scheduler", "b", time.Minute)
		require.NoError(t, err)
		require.True(t, ok, "b takes over an expired lease")
		require.NoError(t, db.ReleaseLease(ctx, "scheduler", "a"), "a stale holder's release is a no-op")
		holder, _, err = db.LeaseHolder(ctx, "scheduler")
		require.NoError(t, err)
		require.Equal(t, "b", holder)
		require.NoError(t, db.ReleaseLease(ctx, "scheduler", "b"))
		ok, err = db.TryLease(ctx, "scheduler", "a", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
	})
}

// TestQueueDriftChecks: the drift job enqueues a check per synced record,
// once per period; the checks are claimed after the reconciles due in the
// same minute, carry their period, and Finish clears it.
func TestQueueDriftChecks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pending(t, db, store.EntityPlan, "p1")
		pending(t, db, store.EntityCustomer, "c1")
		for _, r := range claimAll(t, db, "w", time.Minute) {
			require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateSynced, PayloadHash: "h-" + r.EntityID}))
		}
		_, err := db.EnqueueDriftChecks(ctx, "")
		require.Error(t, err)
		n, err := db.EnqueueDriftChecks(ctx, "2026-01-01T10")
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		n, err = db.EnqueueDriftChecks(ctx, "2026-01-01T10")
		require.NoError(t, err)
		require.Zero(t, n, "unique per period")
		u, err := db.CountUnsettled(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, u, "queued checks are outstanding work")
		require.Equal(t, store.StateSynced, get(t, db, store.EntityPlan, "p1").State)

		pending(t, db, store.EntitySubscription, "s1")
		got := claimAll(t, db, "w", time.Minute)
		require.Equal(t, []string{"subscription/s1", "plan/p1", "customer/c1"}, ids(got), "reconciles before checks")
		require.Empty(t, got[0].DriftCheck)
		require.Equal(t, "2026-01-01T10", got[1].DriftCheck)
		require.NoError(t, db.Finish(ctx, got[0], "w", store.Outcome{State: store.StateSynced, PayloadHash: "h-s1"}))
		require.NoError(t, db.Finish(ctx, got[1], "w", store.Outcome{State: store.StateDrifted, Reason: "product gone", Detail: "product gone"}))
		require.NoError(t, db.Finish(ctx, got[2], "w", store.Outcome{State: store.StateSynced, PayloadHash: "h-c1", Quiet: true}))
		p := get(t, db, store.EntityPlan, "p1")
		require.Equal(t, store.StateDrifted, p.State)
		require.Empty(t, p.PayloadHash, "the repair compares with Zuora")
		require.Empty(t, p.DriftCheck)
		c := get(t, db, store.EntityCustomer, "c1")
		require.Equal(t, store.StateSynced, c.State)
		require.Empty(t, c.DriftCheck)
		hist, err := db.SyncHistory(ctx, c.ID, 10)
		require.NoError(t, err)
		require.Len(t, hist, 1, "the quiet check left no row")
		// A record edited after its check was queued is reconciled, not checked.
		n, err = db.EnqueueDriftChecks(ctx, "2026-01-01T11")
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "c1 and s1 (p1 is drifted)")
		require.NoError(t, db.MarkPending(ctx, store.EntityCustomer, "c1"))
		for _, r := range claimAll(t, db, "w", time.Minute) {
			if r.EntityID == "c1" {
				require.Empty(t, r.DriftCheck)
			}
		}
	})
}

// TestQueueClaimWithin: drift checks come only after every due reconcile,
// even reconciles that fell due later, and no more of them than asked.
func TestQueueClaimWithin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i := range 6 {
			pending(t, db, store.EntityCustomer, fmt.Sprintf("c%d", i))
		}
		for _, r := range claimAll(t, db, "w", time.Minute) {
			require.NoError(t, db.Finish(ctx, r, "w", store.Outcome{State: store.StateSynced, PayloadHash: "h"}))
		}
		n, err := db.EnqueueDriftChecks(ctx, "2026-01-01T10")
		require.NoError(t, err)
		require.EqualValues(t, 6, n)
		// Due after the checks: Claim would take the checks first (by minute).
		time.Sleep(time.Millisecond)
		pending(t, db, store.EntitySubscription, "s1")
		pending(t, db, store.EntityPlan, "p1")

		got, err := db.ClaimWithin(ctx, "w", allKinds, 10, 2, time.Minute)
		require.NoError(t, err)
		require.Len(t, got, 4, "two reconciles and two checks")
		require.Equal(t, []string{"plan/p1", "subscription/s1"}, ids(got[:2]), "reconciles first")
		for _, r := range got[:2] {
			require.Empty(t, r.DriftCheck)
		}
		for _, r := range got[2:] {
			require.Equal(t, "2026-01-01T10", r.DriftCheck)
		}
		none, err := db.ClaimWithin(ctx, "w", allKinds, 10, 0, time.Minute)
		require.NoError(t, err)
		require.Empty(t, none, "no room for checks, no reconcile due")
		one, err := db.ClaimWithin(ctx, "w2", allKinds, 1, 5, time.Minute)
		require.NoError(t, err)
		require.Len(t, one, 1, "the limit bounds checks too")
		rest, err := db.ClaimWithin(ctx, "w2", allKinds, 10, 5, time.Minute)
		require.NoError(t, err)
		require.Len(t, rest, 3, "the four checks left, less the one just taken")
	})
}
