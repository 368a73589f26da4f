package zuora

import (
	"context"
	"sync"
	"time"
)

// limiter keeps in-flight calls under the tenant's concurrency limit and call
// starts under a per-minute budget (§9). Token minting does not pass through
// it (POST /oauth/token is not concurrency-limited).
//
// The concurrency cap adapts: Zuora's limit is per tenant, shared with every
// other integration, and each /v1 response says how many slots are left
// (Concurrency-Limit-Remaining, refreshed about once a second). The client
// may use the slots it holds plus the ones left, so the effective cap shrinks
// to that, and to Concurrency-Limit-Limit when it is lower than configured;
// a 429 halves it. It grows back by one slot per successful call that came
// back without pressure.
type limiter struct {
	mu        sync.Mutex
	max       int // configured ceiling
	effective int // current cap, 1..max
	inFlight  int
	waiters   []chan struct{}

	// Per-minute budget: a token bucket holding at most perMinute starts,
	// refilled continuously at perMinute per minute.
	perMinute int
	tokens    float64
	last      time.Time
	now       func() time.Time
}

func newLimiter(maxInFlight, perMinute int, now func() time.Time) *limiter {
	return &limiter{max: maxInFlight, effective: maxInFlight, perMinute: perMinute,
		tokens: float64(perMinute), last: now(), now: now}
}

// acquire waits for a slot and a unit of the per-minute budget.
func (l *limiter) acquire(ctx context.Context) error {
	if err := l.waitBudget(ctx); err != nil {
		return err
	}
	for {
		l.mu.Lock()
		if l.inFlight < l.effective {
			l.inFlight++
			l.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		l.waiters = append(l.waiters, ch)
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			for i, w := range l.waiters {
				if w == ch {
					l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
					break
				}
			}
			l.mu.Unlock()
			return ctx.Err()
		}
	}
}

// release frees a slot and applies what the response said about the
// tenant's concurrency (remaining < 0 or limit <= 0: header absent).
func (l *limiter) release(remaining, limit int, throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.inFlight // slots held by this client, this call's included
	l.inFlight--
	switch {
	case throttled:
		l.effective = max(1, l.effective/2)
	default:
		target := l.max
		if limit > 0 && limit < target {
			target = limit
		}
		if remaining >= 0 && held+remaining < target {
			target = max(1, held+remaining)
		}
		if target < l.effective {
			l.effective = target
		} else if l.effective < target {
			l.effective++
		}
	}
	l.wakeLocked()
}

// wakeLocked wakes as many waiters as there are free slots.
func (l *limiter) wakeLocked() {
	free := l.effective - l.inFlight
	for free > 0 && len(l.waiters) > 0 {
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
		free--
	}
}

// waitBudget takes one unit of the per-minute budget, waiting if needed.
func (l *limiter) waitBudget(ctx context.Context) error {
	if l.perMinute <= 0 {
		return nil
	}
	for {
		l.mu.Lock()
		now := l.now()
		if elapsed := now.Sub(l.last); elapsed > 0 {
			l.tokens += elapsed.Minutes() * float64(l.perMinute)
			if l.tokens > float64(l.perMinute) {
				l.tokens = float64(l.perMinute)
			}
			l.last = now
		}
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - l.tokens) / float64(l.perMinute) * float64(time.Minute))
		l.mu.Unlock()
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// snapshot returns the current cap and in-flight count (tests, metrics).
func (l *limiter) snapshot() (effective, inFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.effective, l.inFlight
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
