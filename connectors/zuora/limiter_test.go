package zuora

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLimiterShares: a share alone may use the whole cap; once the other
// share waits, freed slots go to the share below its part until each holds
// its part, and neither share starves the other.
func TestLimiterShares(t *testing.T) {
	t.Parallel()
	l := newLimiter(4, 0, 0.25, time.Now)
	ctx := context.Background()
	uctx := WithShare(ctx, ShareUsage)
	for range 4 { // usage alone: the whole cap
		require.NoError(t, l.acquire(uctx))
	}
	got := make(chan Share, 16)
	wait := func(c context.Context, s Share) {
		go func() {
			if l.acquire(c) == nil {
				got <- s
			}
		}()
	}
	for range 4 {
		wait(ctx, ShareDefault)
	}
	for range 4 {
		wait(uctx, ShareUsage)
	}
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.waiters[ShareDefault]) == 4 && len(l.waiters[ShareUsage]) == 4
	}, time.Second, time.Millisecond)
	// Usage holds 4 (its part is 1): the next three slots go to reconciles.
	for range 3 {
		l.release(uctx, -1, 0, false)
		require.Equal(t, ShareDefault, <-got)
	}
	// Usage holds 1 = its part, reconciles 3 = theirs: a freed usage slot
	// goes back to usage, a freed default slot to a reconcile.
	l.release(uctx, -1, 0, false)
	require.Equal(t, ShareUsage, <-got)
	l.release(ctx, -1, 0, false)
	require.Equal(t, ShareDefault, <-got)
	// Reconciles stop waiting: usage takes every free slot again.
	for range 3 {
		l.release(ctx, -1, 0, false)
		require.Equal(t, ShareUsage, <-got)
	}
	eff, in := l.snapshot()
	require.Equal(t, 4, eff)
	require.Equal(t, 4, in)
}
