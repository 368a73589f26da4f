package switches_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/switches"
)

// TestOnEnableSeesEveryTurnOn: the hook runs when a switch goes from off to
// on, whether this replica set it or another one did (seen on refresh), and
// not when a switch stays on or goes off.
func TestOnEnableSeesEveryTurnOn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := switches.New(db, map[string]bool{switches.Customers: false})
		b := switches.New(db, nil) // another replica
		require.NoError(t, a.Refresh(ctx))
		require.NoError(t, b.Refresh(ctx))
		var mu sync.Mutex
		var seen []string
		a.OnEnable(func(_ context.Context, name string) {
			mu.Lock()
			seen = append(seen, name)
			mu.Unlock()
		})
		require.NoError(t, a.Set(ctx, switches.Usage, false))
		require.Empty(t, seen, "turning off is not an enable")
		require.NoError(t, a.Set(ctx, switches.Customers, true))
		require.Equal(t, []string{switches.Customers}, seen)
		require.NoError(t, b.Set(ctx, switches.Usage, true))
		require.NoError(t, a.Refresh(ctx))
		require.Equal(t, []string{switches.Customers, switches.Usage}, seen, "another replica's change is seen on refresh")
		require.NoError(t, a.Refresh(ctx))
		require.Len(t, seen, 2, "no change, no call")
	})
}
