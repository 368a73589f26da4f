package usage_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/mappings"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// T0 is the tests' "today": every subscription started before it.
var T0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func usagePlan(id string) engine.Plan {
	return engine.Plan{
		ID: id, Kind: engine.KindPlan, Name: "Plan " + id, PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: id + "-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("49.00")},
			{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: dec("0.01"), UnitOfMeasure: "Each", Feature: "api-calls"},
			{ID: "storage", Name: "Storage", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: dec("0.10"), UnitOfMeasure: "GB", Feature: "storage-gb"},
		}}},
	}
}

func customer(id string) engine.Customer {
	return engine.Customer{ID: id, Name: "Customer " + id, Email: id + "@example.test", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States", City: "Boston", State: "MA", PostalCode: "02110"}}
}

func subscription(id, cust, plan string) engine.Subscription {
	return engine.Subscription{ID: id, CustomerID: cust, PlanID: plan, BillingPeriodID: plan + "-monthly", Status: engine.StatusActive,
		StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true}
}

// clock is an injectable, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

type fixture struct {
	t        testing.TB
	e        *enginetest.Env
	clock    *clock
	switches map[string]bool
	zc       *zuora.Client
	z        *lossyZuora
	mods     []func(*usage.Config) // applied to every ledger
}

type fixtureOptions struct {
	subs       int
	sync       bool // sync the subscriptions to the simulator
	maxAttempt int  // client attempts per call (default 4)
	timeout    time.Duration
	// importDelay is the simulator's usage import delay (default 20 ms).
	importDelay time.Duration
}

// newFixture seeds plans "pro" and "team", subs s000… of customers c000… on
// "pro", and (when sync) converges them into the simulator.
func newFixture(t testing.TB, d store.Dialect, o fixtureOptions) *fixture {
	t.Helper()
	if o.importDelay == 0 {
		o.importDelay = 20 * time.Millisecond
	}
	e := enginetest.New(t, d, enginetest.Options{Workers: 8, Sim: zuorasim.Options{ImportDelay: o.importDelay}})
	f := &fixture{t: t, e: e, clock: &clock{t: T0.Add(20 * time.Hour)}, switches: map[string]bool{}}
	ctx := context.Background()
	for _, p := range []string{"pro", "team"} {
		_, _, err := e.DB.UpsertPlan(ctx, usagePlan(p))
		require.NoError(t, err)
	}
	for i := range o.subs {
		c := fmt.Sprintf("c%03d", i)
		_, _, err := e.DB.UpsertCustomer(ctx, customer(c))
		require.NoError(t, err)
		_, _, err = e.DB.UpsertSubscription(ctx, subscription(subID(i), c, "pro"))
		require.NoError(t, err)
	}
	if o.sync {
		e.Converge(60 * time.Second)
	}
	f.zc = f.client(o.maxAttempt, o.timeout)
	f.z = &lossyZuora{Client: f.zc, rng: rand.New(rand.NewPCG(1, 2))}
	return f
}

// lossyZuora is the real client on the simulator, except that it can lose
// the answer of a create call after Zuora committed it (Go's transport
// retries requests carrying an Idempotency-Key when a connection drops, so
// the simulator's lost-response fault alone is healed below the client).
type lossyZuora struct {
	*zuora.Client
	mu   sync.Mutex
	lose int     // lose this many answers
	rate float64 // and this fraction of the others
	rng  *rand.Rand
	lost int
	// before, if set, runs before each create call.
	before func()
}

func (z *lossyZuora) CreateUsage(ctx context.Context, key string, recs []zuora.Usage) ([]zuora.ActionResult, error) {
	z.mu.Lock()
	before := z.before
	z.mu.Unlock()
	if before != nil {
		before()
	}
	res, err := z.Client.CreateUsage(ctx, key, recs)
	if err != nil {
		return res, err
	}
	z.mu.Lock()
	lose := z.lose > 0 || (z.rate > 0 && z.rng.Float64() < z.rate)
	if lose {
		z.lost++
		if z.lose > 0 {
			z.lose--
		}
	}
	z.mu.Unlock()
	if lose {
		return nil, &zuora.Error{Op: "POST /v1/action/create", Code: "TIMEOUT", Message: "response lost (test)", Retryable: true, Ambiguous: true}
	}
	return res, nil
}

// ImportUsage loses answers as CreateUsage does: the file was accepted, and
// billsync does not know.
func (z *lossyZuora) ImportUsage(ctx context.Context, key string, recs []zuora.Usage) (zuora.UsageImport, error) {
	z.mu.Lock()
	before := z.before
	z.mu.Unlock()
	if before != nil {
		before()
	}
	res, err := z.Client.ImportUsage(ctx, key, recs)
	if err != nil {
		return res, err
	}
	z.mu.Lock()
	lose := z.lose > 0 || (z.rate > 0 && z.rng.Float64() < z.rate)
	if lose {
		z.lost++
		if z.lose > 0 {
			z.lose--
		}
	}
	z.mu.Unlock()
	if lose {
		return zuora.UsageImport{}, &zuora.Error{Op: "POST /v1/usage", Code: "TIMEOUT", Message: "response lost (test)", Retryable: true, Ambiguous: true}
	}
	return res, nil
}

func (z *lossyZuora) set(lose int, rate float64) {
	z.mu.Lock()
	z.lose, z.rate = lose, rate
	z.mu.Unlock()
}

func subID(i int) string { return fmt.Sprintf("s%03d", i) }

// client is a Zuora client on the simulator with the given attempts per call.
func (f *fixture) client(attempts int, timeout time.Duration) *zuora.Client {
	if attempts == 0 {
		attempts = 4
	}
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	cl, err := zuora.New(zuora.Config{BaseURL: f.e.Server.URL, AllowAnyBaseURL: true, ClientID: zuorasim.DefaultClientID,
		ClientSecret: zuorasim.DefaultClientSecret, Timeout: timeout, MaxAttempts: attempts, MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond, RequestsPerMinute: 10000000}, zerolog.Nop())
	require.NoError(f.t, err)
	return cl
}

// ledger starts a ledger (a "process") on the fixture's database.
func (f *fixture) ledger(mod ...func(*usage.Config)) *usage.Ledger {
	cfg := usage.Config{
		Now:       f.clock.Now,
		RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond,
		ClaimTTL: time.Minute,
		Enabled:  func(name string) bool { v, ok := f.switches[name]; return !ok || v },
		// Usage files only where a test asks for them.
		ImportThreshold: -1, ImportPoll: 10 * time.Millisecond,
		Charges: f.e.Outbound,
	}
	for _, m := range append(append([]func(*usage.Config){}, f.mods...), mod...) {
		m(&cfg)
	}
	return usage.New(f.e.DB, f.z, cfg)
}

func (f *fixture) chargeNumber(sub, plan, charge string) string {
	ctx := context.Background()
	m, err := f.e.Outbound.Mappings().Get(ctx, mappings.SubscriptionCharge, mappings.Key(sub, plan, charge))
	if errors.Is(err, mappings.ErrNotFound) {
		// The outbound engine records charge numbers when it reads the
		// subscription back; after a plain create it has not.
		zs, gerr := f.zc.GetSubscription(ctx, "BS-"+sub)
		require.NoError(f.t, gerr)
		require.NoError(f.t, f.e.Outbound.RecordCharges(ctx, sub, zs))
		m, err = f.e.Outbound.Mappings().Get(ctx, mappings.SubscriptionCharge, mappings.Key(sub, plan, charge))
	}
	require.NoError(f.t, err, "charge number of %s/%s/%s", sub, plan, charge)
	return m.ZuoraNumber
}

// simTotals sums the simulator's usage per charge number.
func (f *fixture) simTotals() map[string]decimal.Decimal {
	out := map[string]decimal.Decimal{}
	for _, u := range f.e.Sim.State().Usage {
		out[u.ChargeNumber] = out[u.ChargeNumber].Add(dec(string(u.Quantity)))
	}
	return out
}

func (f *fixture) createCalls() int { return f.e.Sim.Stats().Calls["POST /v1/action/create"] }

func (f *fixture) importCalls() int { return f.e.Sim.Stats().Calls["POST /v1/usage"] }

// event is a shorthand for a valid event.
func event(key, sub, charge, qty string, at time.Time) usage.Event {
	return usage.Event{IdempotencyKey: key, SubscriptionID: sub, ChargeID: charge, Quantity: dec(qty), Timestamp: at}
}

func ingest(t testing.TB, l *usage.Ledger, evs ...usage.Event) []usage.Result {
	t.Helper()
	res, err := l.Ingest(context.Background(), evs)
	require.NoError(t, err)
	return res
}
