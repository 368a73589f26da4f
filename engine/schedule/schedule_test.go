package schedule

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

func TestPrevTick(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct{ spec, now, want string }{
		{"20 * * * *", "2026-12-01T13:25:00Z", "2026-12-01T13:20:00Z"},
		{"20 * * * *", "2026-12-01T13:10:00Z", "2026-12-01T12:20:00Z"},
		{"0 * * * *", "2026-12-01T13:00:00Z", "2026-12-01T13:00:00Z"},
		{"45 3 * * *", "2026-12-02T01:00:00Z", "2026-12-01T03:45:00Z"},
	} {
		got, ok := prevTick(tc.spec, at(tc.now))
		require.True(t, ok, tc.spec)
		require.Equal(t, at(tc.want), got, tc.spec+" at "+tc.now)
	}
	_, ok := prevTick("@every 1m", time.Now())
	require.False(t, ok, "@every has no fixed times")
}

// TestCatchUpRunsMissedJobsOnce: a job whose scheduled time passed while
// billsync was down runs once when a replica becomes the leader; a job that
// never ran (a fresh database) is not caught up; the admin page's overdue
// list is empty afterwards.
func TestCatchUpRunsMissedJobsOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		db.SetClock(func() time.Time { return time.Now().Add(-3 * time.Hour) })
		ok, err := db.StartJobRun(ctx, "hourly", "long-ago")
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, db.FinishJobRun(ctx, "hourly", "long-ago", "ok", "done"))
		db.SetClock(time.Now)

		s := New(db, zerolog.Nop(), "r1", time.Second)
		ran, fresh := 0, 0
		require.NoError(t, s.Add(Job{Name: "hourly", Spec: "0 * * * *", Period: Hourly, Run: func(context.Context) (string, error) { ran++; return "ran", nil }}))
		require.NoError(t, s.Add(Job{Name: "fresh", Spec: "0 * * * *", Period: Hourly, Run: func(context.Context) (string, error) { fresh++; return "ran", nil }}))
		require.NoError(t, s.Add(Job{Name: "sweeper", Spec: "@every 1m", Period: Every(time.Minute), Run: func(context.Context) (string, error) { return "", nil }}))
		m, err := s.missed(ctx, time.Now(), 0)
		require.NoError(t, err)
		require.Contains(t, m, "hourly")
		require.Len(t, m, 1, "never-run and @every jobs are not missed")
		over, err := s.Overdue(ctx)
		require.NoError(t, err)
		if time.Now().Minute() >= 3 { // two minutes' grace after the hour
			require.Contains(t, over, "hourly")
		}

		s.catchUp(ctx)
		s.catchUp(ctx) // another replica, or leadership regained: not twice
		require.Equal(t, 1, ran)
		require.Equal(t, 0, fresh)
		m, err = s.missed(ctx, time.Now(), 0)
		require.NoError(t, err)
		require.Empty(t, m)
	})
}
