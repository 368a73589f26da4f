package zuora

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/connectors/zuora/zuoraspec"
)

// coveredOps collects the spec operations validated by the package's tests.
var (
	coveredMu  sync.Mutex
	coveredOps = map[string]bool{}
	skippedOps = map[string]bool{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testing.Verbose() {
		coveredMu.Lock()
		list := func(m map[string]bool) string {
			out := make([]string, 0, len(m))
			for k := range m {
				out = append(out, k)
			}
			sort.Strings(out)
			return strings.Join(out, ", ")
		}
		fmt.Printf("zuora client: %d spec operations validated: %s\n", len(coveredOps), list(coveredOps))
		fmt.Printf("zuora client: calls outside the spec (not validated): %s\n", list(skippedOps))
		coveredMu.Unlock()
	}
	os.Exit(code)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// callLog records CallInfo from the observer hook.
type callLog struct {
	mu    sync.Mutex
	calls []CallInfo
}

func (l *callLog) add(ci CallInfo) {
	l.mu.Lock()
	l.calls = append(l.calls, ci)
	l.mu.Unlock()
}

func (l *callLog) count(op string, pred func(CallInfo) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if (op == "" || c.Operation == op) && (pred == nil || pred(c)) {
			n++
		}
	}
	return n
}

type simEnv struct {
	t     *testing.T
	sim   *zuorasim.Sim
	srv   *httptest.Server
	rec   *zuoraspec.RecordingTransport
	c     *Client
	logs  *syncBuffer
	calls *callLog
}

// testConfig keeps retries quick: the whole package runs in seconds.
func testConfig(baseURL string) Config {
	return Config{
		BaseURL: baseURL, AllowAnyBaseURL: true,
		ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret,
		Timeout: 2 * time.Second, MaxAttempts: 6,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		ConcurrencyLimit: 40, RequestsPerMinute: 100000,
	}
}

// newSimEnv starts a simulator over real HTTP and a client whose every
// request and response is validated against Zuora's OpenAPI file.
func newSimEnv(t *testing.T, so zuorasim.Options, edit func(*Config), opts ...Option) *simEnv {
	t.Helper()
	v := zuoraspec.Load(t)
	so.Logger = zerolog.Nop()
	if so.Tenant == nil {
		tn := SimTenant("BillsyncId__c", "Seat", "Call")
		tn.Define("Subscription", zuorasim.CustomField{Name: "BillsyncSubId__c", Type: "text", Length: 255})
		so.Tenant = &tn
	}
	sim := zuorasim.New(so)
	srv := httptest.NewServer(sim)
	rec := v.Transport(t, http.DefaultTransport.(*http.Transport).Clone())
	cfg := testConfig(srv.URL)
	if edit != nil {
		edit(&cfg)
	}
	env := &simEnv{t: t, sim: sim, srv: srv, rec: rec, logs: &syncBuffer{}, calls: &callLog{}}
	log := zerolog.New(env.logs).Level(zerolog.DebugLevel)
	all := append([]Option{WithTransport(rec), WithCallObserver(env.calls.add)}, opts...)
	c, err := New(cfg, log, all...)
	require.NoError(t, err)
	env.c = c
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
		env.assertNoSecretsLogged()
		coveredMu.Lock()
		for _, op := range rec.Operations() {
			coveredOps[op] = true
		}
		for op := range rec.Skipped() {
			skippedOps[op] = true
		}
		coveredMu.Unlock()
	})
	return env
}

// assertNoSecretsLogged: neither the client secret, nor any bearer token,
// nor an Authorization header ever reaches the logs.
func (e *simEnv) assertNoSecretsLogged() {
	logs := e.logs.String()
	require.NotContains(e.t, logs, zuorasim.DefaultClientSecret)
	require.NotContains(e.t, strings.ToLower(logs), "bearer")
	require.NotContains(e.t, strings.ToLower(logs), "authorization")
	e.c.tokens.mu.Lock()
	tok := e.c.tokens.token
	e.c.tokens.mu.Unlock()
	if tok != "" {
		require.NotContains(e.t, logs, tok)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// catalogIDs are the ids of a seeded product.
type catalogIDs struct {
	productID, planID, flatID, unitID, usageID string
}

// seedCatalog creates, through the client, a product with a monthly plan
// and three charges: a flat fee, a per-seat fee and a usage charge.
func (e *simEnv) seedCatalog(ctx context.Context, name string) catalogIDs {
	t := e.t
	t.Helper()
	var ids catalogIDs
	var err error
	ids.productID, err = e.c.CreateProduct(ctx, IdempotencyKey("product", name), Product{Name: name, SKU: "SKU-" + name,
		EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31", CustomFields: map[string]any{"BillsyncId__c": "plan_" + name}})
	require.NoError(t, err)
	ids.planID, err = e.c.CreateProductRatePlan(ctx, IdempotencyKey("plan", name), ProductRatePlan{Name: name + " Monthly",
		ProductID: ids.productID, ActiveCurrencies: []string{"USD"}, EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
	require.NoError(t, err)
	charge := func(key string, ch ProductRatePlanCharge) string {
		ch.ProductRatePlanID = ids.planID
		ch.BillCycleType = BillCycleDefaultFromCustomer
		ch.BillingPeriod = "Month"
		ch.TriggerEvent = TriggerContractEffective
		id, err := e.c.CreateProductRatePlanCharge(ctx, IdempotencyKey("charge", name, key), ch)
		require.NoError(t, err)
		return id
	}
	ids.flatID = charge("flat", ProductRatePlanCharge{Name: "Base fee", ChargeType: ChargeTypeRecurring, ChargeModel: ChargeModelFlatFee,
		ProductRatePlanChargeTierData: &ChargeTierData{ProductRatePlanChargeTier: []ChargeTier{{Currency: "USD", Price: "49"}}}})
	ids.unitID = charge("unit", ProductRatePlanCharge{Name: "Seats", ChargeType: ChargeTypeRecurring, ChargeModel: ChargeModelPerUnit,
		UOM: "Seat", DefaultQuantity: "1",
		ProductRatePlanChargeTierData: &ChargeTierData{ProductRatePlanChargeTier: []ChargeTier{{Currency: "USD", Price: "10", PriceFormat: PriceFormatPerUnit}}}})
	ids.usageID = charge("usage", ProductRatePlanCharge{Name: "API calls", ChargeType: ChargeTypeUsage, ChargeModel: ChargeModelPerUnit,
		UOM: "Call", BillingTiming: BillingTimingInArrears,
		ProductRatePlanChargeTierData: &ChargeTierData{ProductRatePlanChargeTier: []ChargeTier{{Currency: "USD", Price: "0.01", PriceFormat: PriceFormatPerUnit}}}})
	return ids
}

// newAccountOrder builds an order creating an account and a subscription.
// With plain, the account and subscription carry no custom fields.
func newAccountOrder(name, planID string, plain bool) Order {
	o := Order{
		OrderDate: "2025-01-01",
		NewAccount: &OrderNewAccount{Name: name, Currency: "USD", BillCycleDay: 1,
			BillToContact: Contact{FirstName: "Ada", LastName: "Lovelace", WorkEmail: "ada@example.com", Country: "US", ZipCode: "10001"},
			CustomFields:  map[string]any{"BillsyncId__c": "cust_" + name}},
		Subscriptions: []OrderSubscription{{
			CustomFields: map[string]any{"BillsyncSubId__c": "sub_" + name},
			OrderActions: []OrderAction{CreateSubscriptionAction(CreateSubscription{
				Terms: SubscriptionTerms{InitialTerm: InitialTerm{TermType: TermTypeTermed, Period: 12, PeriodType: "Month"},
					RenewalSetting: RenewWithSpecificTerm, RenewalTerms: []RenewalTerm{{Period: 12, PeriodType: "Month"}}},
				SubscribeToRatePlans: []RatePlanOverride{{ProductRatePlanID: planID}},
			})},
		}},
	}
	if plain {
		o.NewAccount.CustomFields = nil
		o.Subscriptions[0].CustomFields = nil
	}
	return o
}

// newCustomer creates an account with one subscription through an order.
func (e *simEnv) newCustomer(ctx context.Context, name, planID string, plain bool) OrderResult {
	e.t.Helper()
	res, err := e.c.CreateOrder(ctx, IdempotencyKey("order", name), newAccountOrder(name, planID, plain))
	require.NoError(e.t, err)
	require.Len(e.t, res.Subscriptions, 1)
	return res
}
