package zuora

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// createCase is one kind of create call, with a way to count its objects.
type createCase struct {
	op    string
	setup func(ctx context.Context, env *simEnv) any
	run   func(ctx context.Context, env *simEnv, fixture any) error
	count func(st zuorasim.StateSnapshot) int
}

var createCases = []createCase{
	{
		op:    "POST /v1/orders",
		setup: func(ctx context.Context, env *simEnv) any { return env.seedCatalog(ctx, "F").planID },
		run: func(ctx context.Context, env *simEnv, f any) error {
			res, err := env.c.CreateOrder(ctx, IdempotencyKey("order", "Globex"), newAccountOrder("Globex", f.(string), false))
			if err == nil && len(res.Subscriptions) != 1 {
				return fmt.Errorf("order result without its subscription: %+v", res)
			}
			return err
		},
		count: func(st zuorasim.StateSnapshot) int { return len(st.Subscriptions) },
	},
	{
		op:    "POST /v1/object/product",
		setup: func(context.Context, *simEnv) any { return nil },
		run: func(ctx context.Context, env *simEnv, _ any) error {
			_, err := env.c.CreateProduct(ctx, IdempotencyKey("product", "Gold"), Product{Name: "Gold",
				EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
			return err
		},
		count: func(st zuorasim.StateSnapshot) int { return len(st.Products) },
	},
	{
		op:    "POST /v1/accounts",
		setup: func(context.Context, *simEnv) any { return nil },
		run: func(ctx context.Context, env *simEnv, _ any) error {
			_, err := env.c.CreateAccount(ctx, IdempotencyKey("account", "Soylent"), AccountCreate{Name: "Soylent", Currency: "USD",
				BillCycleDay: new(1), BillToContact: Contact{FirstName: "Sol", LastName: "Roth", Country: "US"}})
			return err
		},
		count: func(st zuorasim.StateSnapshot) int { return len(st.Accounts) },
	},
	{
		op: "POST /v1/action/create",
		setup: func(ctx context.Context, env *simEnv) any {
			ids := env.seedCatalog(ctx, "U")
			return env.newCustomer(ctx, "Tyrell", ids.planID, false)
		},
		run: func(ctx context.Context, env *simEnv, f any) error {
			res := f.(OrderResult)
			at := time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)
			rows := []Usage{
				{AccountNumber: res.AccountNumber, SubscriptionNumber: res.Subscriptions[0].SubscriptionNumber, UOM: "Call", Quantity: "5", StartDateTime: at},
				{AccountNumber: res.AccountNumber, SubscriptionNumber: res.Subscriptions[0].SubscriptionNumber, UOM: "Call", Quantity: "6", StartDateTime: at.Add(time.Hour)},
			}
			results, err := env.c.CreateUsage(ctx, IdempotencyKey("usage", "Tyrell", "h1"), rows)
			if err != nil {
				return err
			}
			for _, r := range results {
				if !r.Success {
					return r.Err()
				}
			}
			return nil
		},
		count: func(st zuorasim.StateSnapshot) int { return len(st.Usage) / 2 },
	},
	{
		op:    "POST /events/event-triggers",
		setup: func(context.Context, *simEnv) any { return nil },
		run: func(ctx context.Context, env *simEnv, _ any) error {
			_, err := env.c.CreateEventTrigger(ctx, IdempotencyKey("trigger"), EventTrigger{Active: true, BaseObject: "Account",
				Condition: "changeType == 'INSERT'", EventType: EventType{Name: "AccountCreated", DisplayName: "Account created"}})
			return err
		},
		count: func(st zuorasim.StateSnapshot) int { return len(st.EventTriggers) },
	},
}

// TestFaultsOnCreate injects every fault the simulator knows into every kind
// of create call: the call succeeds after retries with the same
// Idempotency-Key, and exactly one object exists afterwards (for the lost
// response too: the write was committed and its answer dropped).
func TestFaultsOnCreate(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		kind  zuorasim.FaultKind
		count int
		// attempts is how many times the op reaches the simulator.
		attempts int
	}{
		{zuorasim.FaultHTTP500, 2, 3},
		{zuorasim.FaultHTTP429, 1, 2},
		{zuorasim.FaultLatency, 1, 1},
		{zuorasim.FaultConnReset, 2, 3},
		{zuorasim.FaultTimeout, 1, 2},
		{zuorasim.FaultLockContention, 2, 3},
		{zuorasim.FaultLostResponse, 1, 2},
	}
	for _, cc := range createCases {
		for _, k := range kinds {
			t.Run(cc.op+"/"+string(k.kind), func(t *testing.T) {
				t.Parallel()
				env := newSimEnv(t, zuorasim.Options{}, func(c *Config) { c.Timeout = 400 * time.Millisecond })
				ctx := ctxT(t)
				fixture := cc.setup(ctx, env)
				before := cc.count(env.sim.State())
				env.sim.ResetStats()
				env.sim.SetFaults(zuorasim.Fault{Operation: cc.op, Kind: k.kind, Count: k.count, Latency: 60 * time.Millisecond})
				start := time.Now()
				err := cc.run(ctx, env, fixture)
				elapsed := time.Since(start)
				require.NoError(t, err)
				require.Equal(t, before+1, cc.count(env.sim.State()), "exactly one object")
				st := env.sim.Stats()
				require.Equal(t, k.count, st.Faulted)
				retried := env.calls.count(cc.op, func(ci CallInfo) bool { return ci.Retry })
				if k.kind == zuorasim.FaultConnReset || k.kind == zuorasim.FaultLostResponse || k.kind == zuorasim.FaultTimeout {
					// (A timeout: on a loaded machine the retry can time out
					// too, before the simulator answers it.)
					// net/http itself replays a request carrying an
					// Idempotency-Key when a reused connection drops; the
					// replay can even overtake the simulator releasing the
					// key and get "409 still being processed", which the
					// client retries too. The count of calls varies; the
					// object count above does not.
					require.GreaterOrEqual(t, st.Calls[cc.op], k.attempts, "attempts reaching the simulator")
				} else {
					require.Equal(t, k.attempts, st.Calls[cc.op], "attempts reaching the simulator")
					require.Equal(t, k.attempts-1, retried, "attempts flagged for retry")
				}
				switch k.kind {
				case zuorasim.FaultHTTP429:
					require.GreaterOrEqual(t, elapsed, time.Second, "Retry-After: 1 honoured")
					require.Equal(t, 1, env.calls.count(cc.op, func(ci CallInfo) bool { return ci.Throttled }))
				case zuorasim.FaultLatency:
					require.GreaterOrEqual(t, elapsed, 60*time.Millisecond)
				}
			})
		}
	}
}

// TestLostResponseReplayedAs409: with a tenant answering replays with 409 and
// the original body, the retry after a lost response is still a success.
func TestLostResponseReplayedAs409(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{IdempotencyReplay409: true}, nil)
	ctx := ctxT(t)
	plan := env.seedCatalog(ctx, "R").planID
	env.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
	res, err := env.c.CreateOrder(ctx, IdempotencyKey("order", "Replay"), newAccountOrder("Replay", plan, false))
	require.NoError(t, err)
	require.NotEmpty(t, res.OrderNumber)
	require.Equal(t, 1, env.calls.count("POST /v1/orders", func(ci CallInfo) bool { return ci.Status == http.StatusConflict && ci.Err == nil }))
	require.Len(t, env.sim.State().Subscriptions, 1)
	require.Len(t, env.sim.State().Accounts, 1)

	// A later identical call (same key) is answered with the same order.
	again, err := env.c.CreateOrder(ctx, IdempotencyKey("order", "Replay"), newAccountOrder("Replay", plan, false))
	require.NoError(t, err)
	require.Equal(t, res.OrderNumber, again.OrderNumber)
	require.Len(t, env.sim.State().Subscriptions, 1)

	// The same for CRUD and Actions bodies.
	id, err := env.c.CreateProduct(ctx, IdempotencyKey("p"), Product{Name: "P", EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
	require.NoError(t, err)
	id2, err := env.c.CreateProduct(ctx, IdempotencyKey("p"), Product{Name: "P", EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
	require.NoError(t, err)
	require.Equal(t, id, id2)
}

// TestGivingUp: bounded attempts, the right classification, and the
// ambiguity flag only when a write may have happened.
func TestGivingUp(t *testing.T) {
	t.Parallel()
	t.Run("read keeps failing with 500", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, func(c *Config) { c.MaxAttempts = 5 })
		ctx := ctxT(t)
		env.sim.SetFaults(zuorasim.Fault{Operation: "GET /v1/accounts/{account-key}", Kind: zuorasim.FaultHTTP500})
		_, err := env.c.GetAccount(ctx, "A00000001")
		require.Error(t, err)
		require.True(t, IsRetryable(err))
		require.False(t, IsAmbiguous(err), "a read is never ambiguous")
		ze, _ := AsError(err)
		require.Equal(t, CategoryInternalError, ze.Category)
		require.Equal(t, maxAttemptsForInternalErrors, ze.Attempts, "category 60 is retried sparingly")
		require.NotEmpty(t, ze.RequestID)
		require.Equal(t, maxAttemptsForInternalErrors, env.sim.Stats().Calls["GET /v1/accounts/{account-key}"])
	})
	t.Run("order keeps timing out", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, func(c *Config) { c.MaxAttempts = 3; c.Timeout = 150 * time.Millisecond })
		ctx := ctxT(t)
		plan := env.seedCatalog(ctx, "T").planID
		env.sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultTimeout})
		_, err := env.c.CreateOrder(ctx, IdempotencyKey("order", "Slow"), newAccountOrder("Slow", plan, false))
		require.Error(t, err)
		require.True(t, IsRetryable(err))
		require.True(t, IsAmbiguous(err), "the order may still complete in Zuora: look it up before re-creating")
		require.ErrorIs(t, err, ErrAmbiguous)
		ze, _ := AsError(err)
		require.Equal(t, codeTimeout, ze.Code)
		require.Equal(t, 3, ze.Attempts)
	})
	t.Run("validation error is not retried", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, nil)
		ctx := ctxT(t)
		_, err := env.c.CreateProduct(ctx, IdempotencyKey("x"), Product{Name: "Backwards", EffectiveStartDate: "2030-01-01", EffectiveEndDate: "2020-01-01"})
		require.Error(t, err)
		require.False(t, IsRetryable(err))
		require.False(t, IsAmbiguous(err))
		require.Equal(t, 1, env.sim.Stats().Calls["POST /v1/object/product"])
	})
	t.Run("delete whose answer was lost", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, nil)
		ctx := ctxT(t)
		id, err := env.c.CreateProduct(ctx, IdempotencyKey("d"), Product{Name: "D", EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
		require.NoError(t, err)
		env.sim.SetFaults(zuorasim.Fault{Operation: "DELETE /v1/object/product/{id}", Kind: zuorasim.FaultLostResponse, Count: 1})
		require.NoError(t, env.c.DeleteProduct(ctx, id), "the retry's 404 means the lost attempt deleted it")
		require.Empty(t, env.sim.State().Products)
	})
	t.Run("context deadline shorter than Retry-After", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, nil)
		env.sim.SetFaults(zuorasim.Fault{Operation: "*", Kind: zuorasim.FaultHTTP429})
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := env.c.GetSubscription(ctx, "A-S00000001")
		require.Error(t, err)
		require.Less(t, time.Since(start), 900*time.Millisecond, "does not sleep past the caller's deadline")
		require.True(t, IsRetryable(err))
		ze, _ := AsError(err)
		require.Equal(t, http.StatusTooManyRequests, ze.HTTPStatus)
		require.Equal(t, time.Second, ze.RetryAfter)
	})
	t.Run("bad credentials", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, func(c *Config) { c.ClientSecret = "wrong-secret-wrong-secret" })
		err := env.c.TestConnection(ctxT(t))
		require.Error(t, err)
		require.True(t, IsAuth(err), "%v", err)
		require.False(t, IsRetryable(err))
		require.NotContains(t, err.Error(), "wrong-secret")
		require.Equal(t, 1, env.sim.Stats().Calls["POST /oauth/token"])
		require.NotContains(t, env.logs.String(), "wrong-secret")
	})
}

// TestTokenLifecycle: one mint for many concurrent first calls, a re-mint
// when the token expires mid-run (401), and proactive refresh before expiry.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	t.Run("single flight and expiry mid-run", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, nil)
		ctx := ctxT(t)
		ids := env.seedCatalog(ctx, "Tok")
		res := env.newCustomer(ctx, "Acme", ids.planID, false)
		require.Equal(t, 1, env.sim.Stats().Calls["POST /oauth/token"])

		// Zuora's clock moves past the token's hour: every call now gets 401.
		env.sim.AdvanceClock(2 * time.Hour)
		var wg sync.WaitGroup
		errs := make(chan error, 30)
		for range 30 {
			wg.Go(func() {
				_, err := env.c.GetAccount(ctx, res.AccountNumber)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, 2, env.sim.Stats().Calls["POST /oauth/token"], "one re-mint for all the 401s")
		require.Positive(t, env.calls.count("GET /v1/accounts/{account-key}", func(ci CallInfo) bool { return ci.Status == http.StatusUnauthorized }))
	})
	t.Run("fresh client, concurrent first calls", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, nil)
		ctx := ctxT(t)
		var wg sync.WaitGroup
		for range 25 {
			wg.Go(func() {
				_, err := env.c.GetSubscription(ctx, "A-S-NONE")
				require.True(t, IsNotFound(err))
			})
		}
		wg.Wait()
		require.Equal(t, 1, env.sim.Stats().Calls["POST /oauth/token"])
	})
	t.Run("refresh before expiry", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		env := newSimEnv(t, zuorasim.Options{TokenTTL: 100 * time.Second, Now: clock}, nil, WithClock(clock))
		ctx := ctxT(t)
		for range 3 {
			_, err := env.c.GetSubscription(ctx, "A-S-NONE")
			require.True(t, IsNotFound(err))
			advance(95 * time.Second) // past the refresh margin, before expiry
		}
		require.Equal(t, 3, env.sim.Stats().Calls["POST /oauth/token"])
		require.Zero(t, env.calls.count("", func(ci CallInfo) bool { return ci.Status == http.StatusUnauthorized }), "no 401: refreshed in time")
	})
}

// TestConcurrencyLimiter: in-flight calls never exceed the configured limit
// (the simulator counts), so no 429 storm; and a client configured above
// the tenant's real limit adapts to Concurrency-Limit-* headers.
func TestConcurrencyLimiter(t *testing.T) {
	t.Parallel()
	t.Run("never above the limit", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{ConcurrencyLimit: 5, Latency: 15 * time.Millisecond}, func(c *Config) { c.ConcurrencyLimit = 5 })
		ctx := ctxT(t)
		ids := env.seedCatalog(ctx, "C")
		var wg sync.WaitGroup
		var failures atomic.Int32
		for i := range 60 {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					_, err = env.c.GetProduct(ctx, ids.productID)
				} else {
					_, err = env.c.GetCatalogProduct(ctx, ids.productID)
				}
				if err != nil {
					failures.Add(1)
				}
			})
		}
		wg.Wait()
		require.Zero(t, failures.Load())
		st := env.sim.Stats()
		require.LessOrEqual(t, st.MaxConcurrent, 5)
		require.GreaterOrEqual(t, st.MaxConcurrent, 3, "the limit is used, not starved")
		require.Zero(t, st.Responses429)
	})
	t.Run("adapts to the tenant's real limit", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{ConcurrencyLimit: 3, Latency: 15 * time.Millisecond}, func(c *Config) { c.ConcurrencyLimit = 12 })
		ctx := ctxT(t)
		ids := env.seedCatalog(ctx, "C")
		var wg sync.WaitGroup
		var failures atomic.Int32
		for range 80 {
			wg.Go(func() {
				if _, err := env.c.GetProduct(ctx, ids.productID); err != nil {
					failures.Add(1)
				}
			})
		}
		wg.Wait()
		require.Zero(t, failures.Load())
		limit, inFlight := env.c.Concurrency()
		require.LessOrEqual(t, limit, 3)
		require.Zero(t, inFlight)
		require.Less(t, env.sim.Stats().Responses429, 40, "throttling stops once the client adapts")
	})
	t.Run("per-minute budget", func(t *testing.T) {
		t.Parallel()
		env := newSimEnv(t, zuorasim.Options{}, func(c *Config) { c.RequestsPerMinute = 120 })
		ctx := ctxT(t)
		start := time.Now()
		for range 123 { // 120 in the bucket, then one every 0.5 s
			_, err := env.c.GetSubscription(ctx, "A-S-NONE")
			require.True(t, IsNotFound(err))
		}
		require.GreaterOrEqual(t, time.Since(start), 1400*time.Millisecond)
		require.Zero(t, env.sim.Stats().Responses429)
	})
}

// Test429Storm: a burst hits a tenant throwing 429s with Retry-After; every
// call completes, each throttled attempt waits at least Retry-After.
func Test429Storm(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{Seed: 7}, nil)
	ctx := ctxT(t)
	ids := env.seedCatalog(ctx, "S")
	env.sim.ResetStats()
	env.sim.SetFaults(zuorasim.Fault{Operation: "*", Kind: zuorasim.FaultHTTP429, Probability: 0.5, Count: 25})
	start := time.Now()
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 40 {
		wg.Go(func() {
			if _, err := env.c.GetProduct(ctx, ids.productID); err != nil {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failures.Load())
	st := env.sim.Stats()
	require.Positive(t, st.Responses429)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Equal(t, st.Responses429, env.calls.count("GET /v1/object/product/{id}", func(ci CallInfo) bool { return ci.Throttled && ci.Retry }))
}

// TestLogging: debug lines carry operation, status, duration and request
// id, never credentials (checked for every test in newSimEnv's cleanup).
func TestLogging(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	_, err := env.c.GetSubscription(ctx, "A-S-NONE")
	require.Error(t, err)
	var sawCall bool
	for _, line := range strings.Split(strings.TrimSpace(env.logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["op"] == "GET /v1/subscriptions/{subscription-key}" && m["message"] == "zuora call" {
			sawCall = true
			require.EqualValues(t, 404, m["status"])
			require.NotEmpty(t, m["request_id"])
			require.Contains(t, m, "duration")
			require.Equal(t, "debug", m["level"])
		}
	}
	require.True(t, sawCall)
}
