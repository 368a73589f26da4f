package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
)

// settle claims one record of the kind and finishes it with o at the clock's time.
func settle(t *testing.T, db *store.DB, kind, id string, o store.Outcome) store.SyncRecord {
	t.Helper()
	ctx := context.Background()
	recs, err := db.Claim(ctx, "w", []string{kind}, 100, time.Minute)
	require.NoError(t, err)
	var rec store.SyncRecord
	for _, r := range recs {
		if r.EntityID == id {
			rec = r
		}
	}
	require.Equal(t, id, rec.EntityID, "claimed %s/%s", kind, id)
	err = db.Finish(ctx, rec, "w", o)
	require.NoError(t, db.ReleaseWorker(ctx, "w"))
	require.NoError(t, err)
	rec, err = db.SyncRecordByID(ctx, rec.ID)
	require.NoError(t, err)
	return rec
}

func TestAdminQueries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 30, 10, 20, 0, 0, time.UTC)
		clock := now
		db.SetClock(func() time.Time { return clock })
		_, _, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		for i := range 5 {
			c := customer(fmt.Sprintf("c%d", i))
			c.Name = fmt.Sprintf("Müller_%d GmbH", i)
			c.Email = fmt.Sprintf("Ops%d@Example.test", i)
			_, _, err := db.UpsertCustomer(ctx, c)
			require.NoError(t, err)
		}
		_, _, err = db.UpsertSubscription(ctx, engine.Subscription{ID: "sub-1", CustomerID: "c1", PlanID: "pro", BillingPeriodID: "pro-monthly",
			Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12})
		require.NoError(t, err)

		// c0 synced with a Zuora account number; c1 fails then succeeds (lag); c2 dead; c3 failed.
		settle(t, db, store.EntityCustomer, "c0", store.Outcome{State: store.StateSynced, ZuoraID: "8a8a0001", ZuoraNumber: "A00000042", StartedAt: clock})
		clock = now.Add(5 * time.Minute)
		settle(t, db, store.EntityCustomer, "c1", store.Outcome{State: store.StateFailed, ErrorCode: "53100020", ErrorMessage: "bad", CountAttempt: true,
			StartedAt: clock, NextAttempt: clock})
		clock = now.Add(65 * time.Minute)
		settle(t, db, store.EntityCustomer, "c1", store.Outcome{State: store.StateSynced, ZuoraNumber: "A00000043", StartedAt: clock.Add(-time.Second)})
		settle(t, db, store.EntityCustomer, "c2", store.Outcome{State: store.StateDead, ErrorCode: "53100320", ErrorMessage: "no", CountAttempt: true, StartedAt: clock})
		settle(t, db, store.EntityCustomer, "c3", store.Outcome{State: store.StateFailed, ErrorCode: "TRANSPORT", ErrorMessage: "reset", CountAttempt: true,
			StartedAt: clock, NextAttempt: clock.Add(time.Hour)})
		mp := mappings.New(db.Gorm)
		require.NoError(t, mp.Put(ctx, mappings.Mapping{Kind: mappings.Subscription, LocalID: "sub-1", ZuoraID: "8a8asub", ZuoraNumber: "A-S00000007"}))

		t.Run("search", func(t *testing.T) {
			find := func(q string) []string {
				hits, err := db.Search(ctx, q, 20)
				require.NoError(t, err)
				var out []string
				for _, h := range hits {
					out = append(out, h.Kind+"/"+h.ID+":"+h.Matched)
				}
				return out
			}
			require.Equal(t, []string{"customer/c0:Zuora number"}, find("a00000042"), "account number, any case")
			require.Equal(t, []string{"customer/c0:Zuora number", "customer/c1:Zuora number"}, find("A0000004"))
			require.Equal(t, []string{"subscription/sub-1:Zuora number"}, find("a-s0000"), "subscription number from the mappings")
			require.Equal(t, []string{"customer/c3:email"}, find("ops3@example"))
			require.Equal(t, []string{"customer/c2:name"}, find("müller_2"))
			require.Len(t, find("Müller_"), 5)
			require.Empty(t, find("M%ller"), "LIKE wildcards are literal")
			require.Empty(t, find("ller"), "a prefix, not a substring")
			require.Equal(t, []string{"plan/pro:id"}, find("PR"))
			require.Empty(t, find("  "))
			hits, err := db.Search(ctx, "c0", 20)
			require.NoError(t, err)
			require.Len(t, hits, 1)
			require.Equal(t, store.StateSynced, hits[0].State)
			require.Equal(t, "A00000042", hits[0].ZuoraNumber)
			require.Equal(t, "Ops0@Example.test", hits[0].Email)
		})

		t.Run("records: problems first, filters, totals, pages", func(t *testing.T) {
			p, err := db.QueryRecords(ctx, store.RecordQuery{})
			require.NoError(t, err)
			require.Equal(t, int64(7), p.Total, "1 plan, 5 customers, 1 subscription")
			var order []string
			for _, r := range p.Records {
				order = append(order, r.State)
			}
			require.Equal(t, []string{"dead", "failed", "pending", "pending", "pending", "synced", "synced"}, order)

			p, err = db.QueryRecords(ctx, store.RecordQuery{PerPage: 3, Page: 2})
			require.NoError(t, err)
			require.Equal(t, 3, p.Pages)
			require.Len(t, p.Records, 3)
			require.Equal(t, store.StatePending, p.Records[0].State)
			p, err = db.QueryRecords(ctx, store.RecordQuery{PerPage: 3, Page: 3})
			require.NoError(t, err)
			require.Len(t, p.Records, 1)

			p, err = db.QueryRecords(ctx, store.RecordQuery{ErrorCode: "53100320"})
			require.NoError(t, err)
			require.Equal(t, int64(1), p.Total)
			require.Equal(t, "c2", p.Records[0].EntityID)
			p, err = db.QueryRecords(ctx, store.RecordQuery{Kind: store.EntityCustomer, State: store.StateSynced})
			require.NoError(t, err)
			require.Equal(t, int64(2), p.Total)
			p, err = db.QueryRecords(ctx, store.RecordQuery{Since: now.Add(time.Hour)})
			require.NoError(t, err)
			require.Equal(t, int64(4), p.Total, "c1, c2, c3 attempted and c4 claimed (then released) in the last hour")

			codes, err := db.ErrorCodes(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{"53100320", "TRANSPORT"}, codes, "c1's code went with its success")
		})

		t.Run("trends", func(t *testing.T) {
			act, err := db.SyncActivity(ctx, now.Add(-24*time.Hour))
			require.NoError(t, err)
			got := map[string]int64{}
			for _, a := range act {
				got[a.Hour.Format("15")+" "+a.Outcome] = a.N
			}
			require.Equal(t, map[string]int64{"10 synced": 1, "10 failed": 1, "11 synced": 1, "11 dead": 1, "11 failed": 1}, got)
			act, err = db.SyncActivity(ctx, now.Add(time.Hour))
			require.NoError(t, err)
			require.Len(t, act, 3, "since limits the window")

			lag, err := db.SyncLag(ctx, now.Add(-24*time.Hour))
			require.NoError(t, err)
			require.Len(t, lag, 2)
			require.Equal(t, 10, lag[0].Hour.Hour())
			require.Equal(t, int64(1), lag[0].Synced)
			require.InDelta(t, 0, lag[0].MaxSecs, 1)
			require.Equal(t, 11, lag[1].Hour.Hour())
			// c1: first attempt at 10:25, success at 11:25.
			require.InDelta(t, 3600, lag[1].MaxSecs, 1)
		})

		t.Run("retries only what can help", func(t *testing.T) {
			c0, err := db.GetSyncRecord(ctx, store.EntityCustomer, "c0")
			require.NoError(t, err)
			_, ok, err := db.RetryProblem(ctx, c0.ID)
			require.NoError(t, err)
			require.False(t, ok, "a synced record is not retried")
			after, err := db.SyncRecordByID(ctx, c0.ID)
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, after.State)

			_, err = db.RetryState(ctx, store.EntityCustomer, store.StateSynced)
			require.ErrorContains(t, err, "failed or dead")
			n, err := db.RetryState(ctx, store.EntityCustomer, store.StateDead)
			require.NoError(t, err)
			require.Equal(t, int64(1), n)
			c3, err := db.GetSyncRecord(ctx, store.EntityCustomer, "c3")
			require.NoError(t, err)
			require.Equal(t, store.StateFailed, c3.State, "retrying the dead leaves the failed")
			rec, ok, err := db.RetryProblem(ctx, c3.ID)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, store.StatePending, rec.State)
			require.Equal(t, 0, rec.Attempts)
		})
	})
}
