package inbound_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestInboxOnThePool: the inbox runs on the pool's machinery. An entry whose
// processing takes several leases keeps its lease (the heartbeat), so a
// second process never takes it over; a panic is an ordinary retryable
// failure.
func TestInboxOnThePool(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{noRun: true, lease: 200 * time.Millisecond})
			h.setupCallouts(false)
			var entered, panicked atomic.Int32
			hook := func(ctx context.Context, stage string) error {
				if stage != "customer-mapped" {
					return nil
				}
				if entered.Add(1) == 1 {
					select { // four leases long
					case <-time.After(800 * time.Millisecond):
					case <-ctx.Done():
						return ctx.Err()
					}
					return nil
				}
				if panicked.Add(1) == 1 {
					panic("boom")
				}
				return nil
			}
			h.svc.SetHook(hook)
			other := h.newService(h.env.DB, 200*time.Millisecond, "other")
			other.SetHook(hook)
			h.run(h.svc)
			h.run(other)

			h.account("Slow", nil)
			h.settle()
			require.EqualValues(t, 1, entered.Load(), "one process, once")
			entries := h.inbox()
			require.Len(t, entries, 1)
			require.Equal(t, inbound.StateDone, entries[0].State)
			require.Zero(t, entries[0].Attempts)

			h.account("Panics", nil)
			h.settle()
			require.EqualValues(t, 2, panicked.Load(), "panicked once, then retried")
			entries = h.inbox()
			require.Len(t, entries, 2)
			require.Equal(t, inbound.StateDone, entries[1].State)
			require.Equal(t, 1, entries[1].Attempts, "the panic counted as one failed attempt")
			require.Len(t, h.customers(), 2)
		})
	}
}
