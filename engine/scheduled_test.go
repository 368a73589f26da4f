package engine_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
)

func TestChangeDate(t *testing.T) {
	t.Parallel()
	sub := engine.Subscription{StartDate: "2026-01-31", TermMonths: 12}
	for _, tc := range []struct {
		name         string
		period       engine.Period
		timing       engine.ChangeTiming
		date, today  string
		want, errHas string
	}{
		{"next monthly boundary, clamped to the month's end", engine.PeriodMonth, engine.ChangeAtPeriodEnd, "", "2026-02-10", "2026-02-28", ""},
		{"a boundary today is not after today", engine.PeriodMonth, engine.ChangeAtPeriodEnd, "", "2026-02-28", "2026-03-31", ""},
		{"quarterly", engine.PeriodQuarter, engine.ChangeAtPeriodEnd, "", "2026-02-10", "2026-04-30", ""},
		{"yearly", engine.PeriodYear, engine.ChangeAtPeriodEnd, "", "2026-02-10", "2027-01-31", ""},
		{"end of term", engine.PeriodMonth, engine.ChangeAtTermEnd, "", "2026-02-10", "2027-01-31", ""},
		{"a date", engine.PeriodMonth, engine.ChangeOnDate, "2026-05-05", "2026-02-10", "2026-05-05", ""},
		{"a date today", engine.PeriodMonth, engine.ChangeOnDate, "2026-02-10", "2026-02-10", "", "after today"},
		{"no date", engine.PeriodMonth, engine.ChangeOnDate, "", "2026-02-10", "", "date"},
		{"a date with another timing", engine.PeriodMonth, engine.ChangeAtPeriodEnd, "2026-05-05", "2026-02-10", "", "only allowed"},
		{"unknown timing", engine.PeriodMonth, "later", "", "2026-02-10", "", "must be one of"},
	} {
		got, err := engine.ChangeDate(sub, tc.period, tc.timing, tc.date, tc.today)
		if tc.errHas != "" {
			require.ErrorContains(t, err, tc.errHas, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	_, err := engine.ChangeDate(engine.Subscription{StartDate: "2026-01-01"}, engine.PeriodMonth, engine.ChangeAtTermEnd, "", "2026-02-10")
	require.ErrorContains(t, err, "evergreen")
}
