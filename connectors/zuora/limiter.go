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
//
// The budget is shared by billsync's kinds of work: a call made with
// WithShare(ctx, ShareUsage) (the usage uploader) is of the usage share, any
// other (reconciles, drift checks, callouts, pulls) of the default share.
// While calls of both shares wait, each share holds at most its part of the
// cap (usage: UsageShare of it, at least one slot; the default share: the
// rest), so a usage backlog never starves subscription changes and vice
// versa; while only one share has calls waiting, it may use the whole cap.
// A freed slot goes to a waiter of a share below its part first.
type limiter struct {
	mu        sync.Mutex
	max       int // configured ceiling
	effective int // current cap, 1..max
	inFlight  int
	usage     float64     // the usage share's part of the cap, 0..1
	held      [shares]int // in-flight calls per share
	waiters   [shares][]chan struct{}

	// Per-minute budget: a token bucket holding at most perMinute starts,
	// refilled continuously at perMinute per minute.
	perMinute int
	tokens    float64
	last      time.Time
	now       func() time.Time
}

// Share names a part of the tenant's concurrency budget (see limiter).
type Share int

// The shares of the budget.
const (
	ShareDefault Share = iota // reconciles and everything else
	ShareUsage                // usage uploads
	shares
)

type shareKey struct{}

// WithShare marks the calls made with ctx as calls of share s.
func WithShare(ctx context.Context, s Share) context.Context {
	return context.WithValue(ctx, shareKey{}, s)
}

func shareOf(ctx context.Context) Share {
	if s, ok := ctx.Value(shareKey{}).(Share); ok && s >= 0 && s < shares {
		return s
	}
	return ShareDefault
}

func newLimiter(maxInFlight, perMinute int, usageShare float64, now func() time.Time) *limiter {
	return &limiter{max: maxInFlight, effective: maxInFlight, perMinute: perMinute, usage: usageShare,
		tokens: float64(perMinute), last: now(), now: now}
}

// partLocked is share s's part of the current cap when both shares wait.
func (l *limiter) partLocked(s Share) int {
	u := int(float64(l.effective)*l.usage + 0.5)
	u = min(max(1, u), max(1, l.effective-1))
	if s == ShareUsage {
		return u
	}
	return max(1, l.effective-u)
}

// mayTakeLocked reports whether a call of share s may take a free slot now.
func (l *limiter) mayTakeLocked(s Share) bool {
	if l.inFlight >= l.effective {
		return false
	}
	other := 1 - s
	return l.held[s] < l.partLocked(s) || len(l.waiters[other]) == 0
}

// acquire waits for a slot and a unit of the per-minute budget; the call is
// of ctx's share (WithShare).
func (l *limiter) acquire(ctx context.Context) error {
	if err := l.waitBudget(ctx); err != nil {
		return err
	}
	s := shareOf(ctx)
	for {
		l.mu.Lock()
		if l.mayTakeLocked(s) {
			l.inFlight++
			l.held[s]++
			l.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		l.waiters[s] = append(l.waiters[s], ch)
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			for i, w := range l.waiters[s] {
				if w == ch {
					l.waiters[s] = append(l.waiters[s][:i], l.waiters[s][i+1:]...)
					break
				}
			}
			// A wake-up this waiter got but will not use goes to the next.
			l.wakeLocked()
			l.mu.Unlock()
			return ctx.Err()
		}
	}
}

// release frees the slot of a call of ctx's share and applies what the
// response said about the tenant's concurrency (remaining < 0 or limit <=
// 0: header absent).
func (l *limiter) release(ctx context.Context, remaining, limit int, throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.inFlight // slots held by this client, this call's included
	l.inFlight--
	l.held[shareOf(ctx)]--
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

// wakeLocked wakes as many waiters as there are free slots, first those of
// a share below its part.
func (l *limiter) wakeLocked() {
	free := l.effective - l.inFlight
	woken := [shares]int{}
	for free > 0 && (len(l.waiters[ShareDefault]) > 0 || len(l.waiters[ShareUsage]) > 0) {
		pick := Share(-1)
		for s := ShareDefault; s < shares; s++ {
			if len(l.waiters[s]) > 0 && l.held[s]+woken[s] < l.partLocked(s) {
				pick = s
				break
			}
		}
		if pick < 0 {
			if len(l.waiters[ShareDefault]) > 0 && len(l.waiters[ShareUsage]) > 0 {
				return // both shares at their part: wait for a slot of their own
			}
			pick = ShareDefault
			if len(l.waiters[ShareDefault]) == 0 {
				pick = ShareUsage
			}
		}
		close(l.waiters[pick][0])
		l.waiters[pick] = l.waiters[pick][1:]
		woken[pick]++
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
