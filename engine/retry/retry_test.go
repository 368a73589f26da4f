package retry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/retry"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	p := retry.Policy{Unit: time.Second, Max: time.Hour}
	cases := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{"first attempt is about one unit", 1, 0, time.Second, 1100 * time.Millisecond},
		{"attempt⁴ with ±10% jitter", 3, 0, 72900 * time.Millisecond, 89100 * time.Millisecond},
		{"Retry-After is honoured when longer", 1, 30 * time.Second, 30 * time.Second, 30 * time.Second},
		{"Retry-After shorter than the policy is ignored", 2, time.Second, 14400 * time.Millisecond, 17600 * time.Millisecond},
		{"capped at Max", 40, 0, time.Hour, time.Hour},
		{"Retry-After is capped at Max", 1, 2 * time.Hour, time.Hour, time.Hour},
		{"attempt 0 counts as 1", 0, 0, time.Second, 1100 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for range 200 {
				d := p.Delay(c.attempt, c.retryAfter)
				require.GreaterOrEqual(t, d, c.lo)
				require.LessOrEqual(t, d, c.hi)
			}
		})
	}
}

func TestDelayJitters(t *testing.T) {
	t.Parallel()
	p := retry.Policy{Unit: time.Second}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.Delay(4, 0)] = true
	}
	require.Greater(t, len(seen), 10, "delays of one attempt must spread (jitter)")
}

func TestZeroPolicyDefaults(t *testing.T) {
	t.Parallel()
	var p retry.Policy
	require.Equal(t, time.Hour, p.Delay(100, 0))
	require.GreaterOrEqual(t, p.Delay(1, 0), time.Second)
}
