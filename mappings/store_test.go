package mappings_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
)

func TestByParentsAndMapped(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		m := mappings.New(db.Gorm)
		for _, x := range []mappings.Mapping{
			{Kind: mappings.Account, LocalID: "acc-2", ZuoraID: "z2", ParentID: "c1"},
			{Kind: mappings.Account, LocalID: "acc-1", ZuoraID: "z1", ParentID: "c1"},
			{Kind: mappings.Account, LocalID: "acc-3", ZuoraID: "z3", ParentID: "c2"},
			{Kind: mappings.Subscription, LocalID: "s1", ZuoraID: "zs1", ParentID: "c1"},
		} {
			require.NoError(t, m.Put(ctx, x))
		}
		got, err := m.ByParents(ctx, mappings.Account, []string{"c1", "c2", "c3"})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, []string{"acc-1", "acc-2"}, []string{got["c1"][0].LocalID, got["c1"][1].LocalID}, "local id order")
		require.Equal(t, "z3", got["c2"][0].ZuoraID)
		empty, err := m.ByParents(ctx, mappings.Account, nil)
		require.NoError(t, err)
		require.Empty(t, empty)

		mapped, err := m.Mapped(ctx, mappings.Account, []string{"acc-1", "acc-3", "s1", "nope"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"acc-1": true, "acc-3": true}, mapped, "of the kind only")
		none, err := m.Mapped(ctx, mappings.Account, nil)
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

// TestConcurrentPutOfOneMapping: two reconciles writing the same new mapping
// at once (two first subscriptions adopting one account) both succeed; a
// different local id for the same Zuora object is still a conflict.
func TestConcurrentPutOfOneMapping(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		m := mappings.New(db.Gorm)
		for round := range 20 {
			want := mappings.Mapping{Kind: mappings.Account, LocalID: fmt.Sprintf("c%d|z%d", round, round), ZuoraID: fmt.Sprintf("z%d", round), ParentID: fmt.Sprintf("c%d", round)}
			errs := make(chan error, 4)
			for range 4 {
				go func() { errs <- m.Put(ctx, want) }()
			}
			for range 4 {
				require.NoError(t, <-errs, "round %d", round)
			}
			got, err := m.Get(ctx, mappings.Account, want.LocalID)
			require.NoError(t, err)
			require.Equal(t, want.ZuoraID, got.ZuoraID)
		}
		err := m.Put(ctx, mappings.Mapping{Kind: mappings.Account, LocalID: "other|z0", ZuoraID: "z0", ParentID: "other"})
		require.ErrorIs(t, err, mappings.ErrConflict)
	})
}
