package zuora

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestLockCompetitionGetsANewKey: an order on an account another order is
// writing meets Zuora's lock competition; Zuora saves that answer under the
// Idempotency-Key and would replay it for 24 h, so the client retries with
// a new key (nothing was applied under the old one) and succeeds. The same
// logical write later uses the key that succeeded: replayed, no duplicate.
func TestLockCompetitionGetsANewKey(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{OrderProcessingTime: 300 * time.Millisecond}, func(c *Config) {
		c.MinBackoff, c.MaxBackoff, c.MaxAttempts = 100*time.Millisecond, 200*time.Millisecond, 6
	})
	ctx := ctxT(t)
	ids := env.seedCatalog(ctx, "Lock")
	acct := env.newCustomer(ctx, "Lock", ids.planID, false).AccountNumber

	addOrder := func() Order {
		return Order{OrderDate: "2025-02-01", ExistingAccountNumber: acct, Subscriptions: []OrderSubscription{{
			OrderActions: []OrderAction{CreateSubscriptionAction(CreateSubscription{
				Terms:                SubscriptionTerms{InitialTerm: InitialTerm{TermType: TermTypeTermed, Period: 12, PeriodType: "Month"}},
				SubscribeToRatePlans: []RatePlanOverride{{ProductRatePlanID: ids.planID}}})}}}}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // another writer holds the account for 300 ms
		defer wg.Done()
		_, err := env.c.CreateOrder(ctx, IdempotencyKey("other"), addOrder())
		require.NoError(t, err)
	}()
	time.Sleep(50 * time.Millisecond)
	key := IdempotencyKey("ours")
	res, err := env.c.CreateOrder(ctx, key, addOrder())
	wg.Wait()
	require.NoError(t, err, "retried with a new key after the answered lock competition")
	require.Len(t, res.Subscriptions, 1)
	used := env.c.keys.current(key, time.Now())
	require.NotEqual(t, key, used, "the key that met the lock competition is not used again")

	// The same write again (e.g. the next reconcile): the successful key is
	// replayed, nothing is created twice.
	again, err := env.c.CreateOrder(ctx, key, addOrder())
	require.NoError(t, err)
	require.Equal(t, res.OrderNumber, again.OrderNumber)
	n := 0
	for _, s := range env.sim.State().Subscriptions {
		if s.AccountNumber == acct {
			n++
		}
	}
	require.Equal(t, 3, n, "the first subscription, the other writer's and ours: no duplicate")
}

// TestAnsweredFailureNewKeyUnansweredSameKey: a validation error answered
// under a key (a custom field the tenant lacks) is saved by Zuora; after
// the caller fixes the request (or the tenant), the
// client uses a new key instead of getting the old answer replayed. A
// response lost after the write keeps the key, and the retry replays the
// success.
func TestAnsweredFailureNewKeyUnansweredSameKey(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	key := IdempotencyKey("product", "p1")
	_, err := env.c.CreateProduct(ctx, key, Product{Name: "P1", EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31",
		CustomFields: map[string]any{"Undefined__c": "x"}})
	require.ErrorContains(t, err, "Undefined__c is not defined")
	id, err := env.c.CreateProduct(ctx, key, Product{Name: "Fixed", EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
	require.NoError(t, err, "not the replayed failure")
	require.NotEmpty(t, id)

	env.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/object/product", Kind: zuorasim.FaultLostResponse, Count: 1})
	key2 := IdempotencyKey("product", "p2")
	id2, err := env.c.CreateProduct(ctx, key2, Product{Name: "Lost", EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
	require.NoError(t, err)
	require.Equal(t, key2, env.c.keys.current(key2, time.Now()), "an unanswered attempt keeps its key")
	n := 0
	for _, p := range env.sim.State().Products {
		if p.ID == id2 {
			n++
		}
	}
	require.Equal(t, 1, n)
	require.Len(t, env.sim.State().Products, 2, "the lost response's retry replayed, it did not create a second product")
}
