package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestExplain: whose message it is and what to do, by the code the error carries.
func TestExplain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code, state, source, label, advice string
	}{
		{"", "dead", "billsync", "billsync's message", "mapping"},
		{"TRANSPORT", "failed", "connection", "Connection to Zuora", "tries again by itself"},
		{"TIMEOUT", "dead", "connection", "Connection to Zuora", "press Retry"},
		{"HTTP", "failed", "zuora", "Zuora's answer", "request id"},
		{"53100330", "dead", "zuora", "Zuora's message", "business rule"},
		{"53100320", "dead", "zuora", "Zuora's message", "Correct the billsync data"},
		{"90000011", "dead", "zuora", "Zuora's message", "credentials"},
		{"50000040", "dead", "zuora", "Zuora's message", "mappings"},
		{"53100050", "failed", "zuora", "Zuora's message", "temporary"},
		{"LOCK_COMPETITION", "failed", "zuora", "Zuora's message", "temporary"},
		{"INVALID_VALUE", "dead", "zuora", "Zuora's message", "Zuora request id"},
	} {
		e := explain(tc.code, "some message", tc.state)
		require.Equal(t, tc.source, e.Source, tc.code)
		require.Equal(t, tc.label, e.Label, tc.code)
		require.Contains(t, strings.ToLower(e.Advice), strings.ToLower(tc.advice), tc.code)
	}
	require.Equal(t, explanation{}, explain("", "", "failed"))
}

// TestChartSVG: bars scale to the largest hour, values escape, empty charts say so.
func TestChartSVG(t *testing.T) {
	t.Parallel()
	hours := lastHours(mustTime("2026-11-30T10:20:00Z"), 3)
	require.Equal(t, "08:00", hours[0].Format("15:04"))
	c := chart{ID: "x", Title: "a <b>", Hours: hours, Stacked: true, Series: []series{
		{Name: "synced", Class: "o-synced", Values: []float64{0, 3, 1}},
		{Name: "dead", Class: "o-dead", Values: []float64{0, 2, 0}},
	}}
	require.False(t, c.IsEmpty())
	svg := string(c.SVG())
	require.Contains(t, svg, `aria-label="a &lt;b&gt;"`)
	require.Contains(t, svg, `data-series="synced" data-value="3"`)
	require.Contains(t, svg, `09:00–10:00 UTC: 3 synced, 2 dead`)
	require.Contains(t, svg, `08:00–09:00 UTC: none`)
	require.Equal(t, 3, strings.Count(svg, `class="hit"`))
	require.True(t, chart{Hours: hours, Series: []series{{Values: []float64{0, 0, 0}}}}.IsEmpty())
	require.Equal(t, "5 min", duration(300))
	require.Equal(t, "2.5 h", duration(9000))
	require.Equal(t, float64(5), niceCeil(4.2))
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
