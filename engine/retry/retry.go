// Package retry is billsync's one retry policy: every queue (sync records,
// callouts, usage batches) waits attempt⁴ × unit between attempts, with ±10 %
// jitter, at least the Retry-After Zuora asked for and at most a maximum
// (River's default policy, internal/retrypolicy/default.go).
package retry

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy computes retry delays. The zero value uses a one-second unit and a
// one-hour maximum.
type Policy struct {
	Unit time.Duration // attempt⁴ × Unit is the delay (default 1s; tests shrink it)
	Max  time.Duration // longest delay (default 1h)
}

// Delay is how long to wait after the attempt-th failed attempt (1-based):
// attempt⁴ units with ±10 % jitter, at least retryAfter, at most Max, and
// never less than one unit.
func (p Policy) Delay(attempt int, retryAfter time.Duration) time.Duration {
	unit, maxDelay := p.Unit, p.Max
	if unit <= 0 {
		unit = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = time.Hour
	}
	attempt = max(attempt, 1)
	f := math.Pow(float64(attempt), 4) * float64(unit)
	f = min(f, 2*float64(maxDelay)) // keeps the Duration conversion from overflowing
	d := time.Duration(f * (0.9 + 0.2*rand.Float64()))
	d = max(d, retryAfter)
	d = min(d, maxDelay)
	return max(d, unit)
}
