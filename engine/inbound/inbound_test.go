package inbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
	"github.com/billsync/billsync/web"
)

const (
	apiKey   = "inbound-test-api-key-0123"
	hookUser = "zuora-callouts"
	hookPass = "callout-password-0123456789"
)

// proxy sits between the simulator's callouts and billsync: it counts
// deliveries per Zuora-Notification-Id and can fail them, forwarding first
// (a lost response) or not (billsync unreachable).
type proxy struct {
	next   http.Handler
	mu     sync.Mutex
	counts map[string]int
	// policy decides for an authenticated delivery n (1-based) of a path:
	// forward it to billsync, and which status to answer instead (0 = billsync's).
	policy func(path string, n int) (forward bool, status int)
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := 0
	if _, _, ok := r.BasicAuth(); ok {
		p.mu.Lock()
		p.counts[r.Header.Get("Zuora-Notification-Id")]++
		n = p.counts[r.Header.Get("Zuora-Notification-Id")]
		p.mu.Unlock()
	}
	forward, status := true, 0
	if p.policy != nil && n > 0 {
		forward, status = p.policy(r.URL.Path, n)
	}
	if !forward {
		w.WriteHeader(status)
		return
	}
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (p *proxy) deliveries() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	env    *enginetest.Env
	svc    *inbound.Service
	proxy  *proxy
	public string // the URL Zuora calls
	api    string
	dbURL  string
}

type hopts struct {
	retryInterval time.Duration
	retries       int
	noRun         bool
	lease         time.Duration
	// clientAttempts is the Zuora client's tries per call (1: a lost
	// answer reaches the reconcile, as a crash would).
	clientAttempts int
	adopt          bool // outbound's AdoptZuoraChanges (serve's setting)
}

func newHarness(t *testing.T, d store.Dialect, o hopts) *harness {
	t.Helper()
	if o.retryInterval == 0 {
		o.retryInterval = 20 * time.Millisecond
	}
	if o.retries == 0 {
		o.retries = 3
	}
	url := storetest.URL(t, d)
	env := enginetest.New(t, d, enginetest.Options{DBURL: url, AdoptZuoraChanges: o.adopt,
		Sim: zuorasim.Options{CalloutRetries: o.retries, CalloutRetryInterval: o.retryInterval}, ClientAttempts: o.clientAttempts})
	h := &harness{t: t, ctx: context.Background(), env: env, dbURL: url}
	h.svc = h.newService(env.DB, o.lease, "")
	srv := httptest.NewServer(web.New(web.Options{Store: env.DB, Logger: zerolog.Nop(), APIKey: apiKey, MaxBodyBytes: 1 << 20,
		Inbound: h.svc, Webhooks: web.WebhookAuth{Username: hookUser, Password: hookPass}}))
	t.Cleanup(srv.Close)
	h.api = srv.URL
	h.proxy = &proxy{next: srv.Config.Handler, counts: map[string]int{}}
	ps := httptest.NewServer(h.proxy)
	t.Cleanup(ps.Close)
	h.public = ps.URL
	if !o.noRun {
		h.run(h.svc)
	}
	return h
}

func (h *harness) newService(db *store.DB, lease time.Duration, id string) *inbound.Service {
	if lease == 0 {
		lease = time.Minute
	}
	return inbound.New(db, h.env.Zuora, h.env.Outbound, inbound.Config{IdentityField: "Gigya_Id__c", Workers: 3, Lease: lease,
		PollInterval: 5 * time.Millisecond, BackoffUnit: time.Millisecond, MaxBackoff: 20 * time.Millisecond, WorkerID: id})
}

func (h *harness) run(svc *inbound.Service) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func (h *harness) setupCallouts(nonPreemptive bool) {
	h.t.Helper()
	_, err := h.svc.SetupCallouts(h.ctx, inbound.CalloutSetup{PublicURL: h.public, Username: hookUser, Password: hookPass, NonPreemptive: nonPreemptive})
	require.NoError(h.t, err)
}

// simPost calls a simulator control endpoint (Zuora's UI).
func (h *harness) simPost(path string, body any) map[string]any {
	h.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(h.env.Server.URL+path, "application/json", bytes.NewReader(b))
	require.NoError(h.t, err)
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	require.NoError(h.t, json.Unmarshal(raw, &out), "%s", raw)
	require.Equal(h.t, http.StatusOK, resp.StatusCode, "%s: %s", path, raw)
	return out
}

func (h *harness) apiDo(method, path, body string) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.api+path, rd)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		require.NoError(h.t, json.Unmarshal(raw, &out), "%s", raw)
	}
	return resp.StatusCode, out
}

type catalog struct {
	productID, ratePlanID, baseChargeID, seatsChargeID string
}

// product creates a Zuora product the way a Zuora user would (not billsync):
// a monthly rate plan with a flat fee and per-unit seats, USD.
func (h *harness) product(sku string, graceDays string) catalog {
	h.t.Helper()
	ctx, z := h.ctx, h.env.Zuora
	cf := map[string]any{}
	if graceDays != "" {
		cf["GracePeriod__c"] = graceDays
	}
	pid, err := z.CreateProduct(ctx, zuora.IdempotencyKey("p", sku), zuora.Product{Name: "Product " + sku, SKU: sku, Category: "Base Products",
		EffectiveStartDate: "2000-01-01", EffectiveEndDate: "2099-12-31", CustomFields: cf})
	require.NoError(h.t, err)
	rp, err := z.CreateProductRatePlan(ctx, zuora.IdempotencyKey("rp", sku), zuora.ProductRatePlan{ProductID: pid, Name: sku + " monthly",
		EffectiveStartDate: "2000-01-01", EffectiveEndDate: "2099-12-31", ActiveCurrencies: []string{"USD"}})
	require.NoError(h.t, err)
	charge := func(name, model, price, uom string) string {
		c := zuora.ProductRatePlanCharge{ProductRatePlanID: rp, Name: name, ChargeType: zuora.ChargeTypeRecurring, ChargeModel: model,
			BillCycleType: zuora.BillCycleDefaultFromCustomer, BillingPeriod: "Month", TriggerEvent: zuora.TriggerContractEffective,
			BillingTiming: zuora.BillingTimingInAdvance, ListPriceBase: "Per Billing Period", UOM: uom,
			ProductRatePlanChargeTierData: &zuora.ChargeTierData{ProductRatePlanChargeTier: []zuora.ChargeTier{{Currency: "USD", Price: zuora.Number(price)}}}}
		if model == zuora.ChargeModelPerUnit {
			c.DefaultQuantity = "1"
			c.ProductRatePlanChargeTierData.ProductRatePlanChargeTier[0].PriceFormat = zuora.PriceFormatPerUnit
		}
		id, err := z.CreateProductRatePlanCharge(ctx, zuora.IdempotencyKey("c", sku, name), c)
		require.NoError(h.t, err)
		return id
	}
	return catalog{productID: pid, ratePlanID: rp, baseChargeID: charge("Base", zuora.ChargeModelFlatFee, "30", ""),
		seatsChargeID: charge("Seats", zuora.ChargeModelPerUnit, "5", "Each")}
}

func (h *harness) account(name string, custom map[string]any) (id, number string) {
	h.t.Helper()
	body := map[string]any{"name": name, "currency": "USD", "billCycleDay": 1,
		"billToContact": map[string]any{"firstName": "Grace", "lastName": name, "country": "United States", "workEmail": strings.ToLower(name) + "@example.test"}}
	for k, v := range custom {
		body[k] = v
	}
	out := h.simPost("/_sim/accounts", body)
	return out["accountId"].(string), out["accountNumber"].(string)
}

func (h *harness) subscription(accountNumber string, c catalog, seats int, start string) string {
	h.t.Helper()
	out := h.simPost("/_sim/subscriptions", map[string]any{"accountNumber": accountNumber, "contractEffectiveDate": start, "termType": "TERMED",
		"initialTerm": 12, "periodType": "Month", "autoRenew": true,
		"subscribeToRatePlans": []any{map[string]any{"productRatePlanId": c.ratePlanID, "chargeOverrides": []any{map[string]any{
			"productRatePlanChargeId": c.seatsChargeID, "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": seats}}}}}}})
	return out["subscriptionNumber"].(string)
}

// settle waits for the simulator's deliveries and an idle inbox.
func (h *harness) settle() {
	h.t.Helper()
	h.env.Sim.WaitCallouts()
	deadline := time.Now().Add(20 * time.Second)
	for {
		counts, err := h.svc.InboxCounts(h.ctx)
		require.NoError(h.t, err)
		if counts[inbound.StatePending]+counts[inbound.StateInFlight]+counts[inbound.StateFailed] == 0 {
			return
		}
		if time.Now().After(deadline) {
			entries, _, _ := h.svc.ListInbox(h.ctx, inbound.InboxFilter{})
			h.t.Fatalf("inbox not settled: %v %+v", counts, entries)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) inbox() []inbound.InboxEntry {
	h.t.Helper()
	e, _, err := h.svc.ListInbox(h.ctx, inbound.InboxFilter{Limit: 500})
	require.NoError(h.t, err)
	return e
}

func (h *harness) customers() []engine.Customer {
	h.t.Helper()
	p, err := h.env.DB.ListCustomers(h.ctx, store.ListOptions{Limit: 500})
	require.NoError(h.t, err)
	return p.Items
}

func (h *harness) subscriptions() []engine.Subscription {
	h.t.Helper()
	p, err := h.env.DB.ListSubscriptions(h.ctx, store.ListOptions{Limit: 500})
	require.NoError(h.t, err)
	return p.Items
}

// writes returns the simulator's write calls (anything but reads and tokens).
func writes(st zuorasim.Stats) map[string]int {
	out := map[string]int{}
	for op, n := range st.Calls {
		if strings.HasPrefix(op, "GET ") || op == "POST /oauth/token" {
			continue
		}
		out[op] += n
	}
	return out
}

func diff(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// noEcho runs the outbound engine to rest and checks that Zuora saw no write
// but the expected BillsyncId__c write-backs on accounts.
func (h *harness) noEcho(before map[string]int, accountWrites int) {
	h.t.Helper()
	h.env.Converge(20 * time.Second)
	got := diff(writes(h.env.Sim.Stats()), before)
	want := map[string]int{}
	if accountWrites > 0 {
		want["PUT /v1/accounts/{account-key}"] = accountWrites
	}
	require.Equal(h.t, want, got, "Zuora writes caused by inbound processing")
	recs, _, err := h.env.DB.ListSyncRecords(h.ctx, store.SyncFilter{Limit: 500})
	require.NoError(h.t, err)
	for _, r := range recs {
		require.Contains(h.t, []string{store.StateSynced, store.StateSkipped}, r.State, "%+v", r)
	}
}

func TestCalloutsDeliveredThreeTimesCreateOnce(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{})
			// Every delivery reaches billsync, but the first two answers are lost:
			// Zuora retries with the same Zuora-Notification-Id and a new Zuora-Request-Id.
			h.proxy.policy = func(_ string, n int) (bool, int) {
				if n < 3 {
					return true, http.StatusServiceUnavailable
				}
				return true, 0
			}
			h.setupCallouts(false)
			cat := h.product("GOLD", "7")
			before := writes(h.env.Sim.Stats())
			_, n1 := h.account("Hopper", map[string]any{"Gigya_Id__c": "gigya-123"})
			_, n2 := h.account("Lovelace", nil)
			s1 := h.subscription(n1, cat, 3, "2026-01-01")
			s2 := h.subscription(n2, cat, 1, "2026-02-01")
			h.settle()

			for id, n := range h.proxy.deliveries() {
				require.Equal(t, 3, n, "deliveries of notification %s", id)
			}
			entries := h.inbox()
			require.Len(t, entries, 4)
			for _, e := range entries {
				require.Equal(t, inbound.StateDone, e.State, "%+v", e)
				require.Equal(t, 3, e.Deliveries, "%+v", e)
			}
			custs := h.customers()
			require.Len(t, custs, 2)
			ids := []string{custs[0].ID, custs[1].ID}
			sort.Strings(ids)
			require.Equal(t, []string{n2, "gigya-123"}, ids, "customer ids: identity field, else account number")
			subs := h.subscriptions()
			require.Len(t, subs, 2)
			byID := map[string]engine.Subscription{}
			for _, s := range subs {
				byID[s.ID] = s
			}
			require.Equal(t, "gigya-123", byID[s1].CustomerID)
			require.Equal(t, n2, byID[s2].CustomerID)
			require.Equal(t, engine.StatusActive, byID[s1].Status)
			require.Equal(t, "3", byID[s1].ChargeQuantities[chargeIDOf(t, h, cat.seatsChargeID)].String())
			plans, err := h.env.DB.ListPlans(h.ctx, store.ListOptions{})
			require.NoError(t, err)
			require.Len(t, plans.Items, 1, "the Zuora product is imported once")
			require.Equal(t, "GOLD", plans.Items[0].ID)

			// billsync's id is written back to each account.
			for _, c := range custs {
				ms, err := h.env.Outbound.Mappings().ByParent(h.ctx, mappings.Account, c.ID)
				require.NoError(t, err)
				require.Len(t, ms, 1)
				a, err := h.env.Zuora.GetAccount(h.ctx, ms[0].ZuoraID)
				require.NoError(t, err)
				require.Equal(t, c.ID, a.BasicInfo.CustomFields["BillsyncId__c"])
			}
			h.noEcho(before, 2)
		})
	}
}

func chargeIDOf(t *testing.T, h *harness, zuoraChargeID string) string {
	t.Helper()
	m, err := h.env.Outbound.Mappings().ByZuoraID(h.ctx, mappings.Charge, zuoraChargeID)
	require.NoError(t, err)
	return m.LocalID[strings.Index(m.LocalID, "/")+1:]
}

func TestSubscriptionBeforeAccountAndChallenge(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{retryInterval: 250 * time.Millisecond, retries: 5})
			// The account's callout fails its deliveries before reaching
			// billsync until the subscription's has been processed.
			h.proxy.policy = func(path string, n int) (bool, int) {
				if path != inbound.PathAccountCreated {
					return true, 0
				}
				entries, _, err := h.svc.ListInbox(h.ctx, inbound.InboxFilter{Event: inbound.EventSubscriptionCreated, State: inbound.StateDone})
				if err != nil || len(entries) == 0 {
					return false, http.StatusServiceUnavailable
				}
				return true, 0
			}
			h.setupCallouts(true) // Zuora's default: credentials only after a 401 challenge
			cat := h.product("SILVER", "")
			before := writes(h.env.Sim.Stats())
			_, num := h.account("Turing", nil)
			sub := h.subscription(num, cat, 2, "2026-03-01")
			h.settle()

			entries := h.inbox()
			require.Len(t, entries, 2)
			var acct, subEntry inbound.InboxEntry
			for _, e := range entries {
				require.Equal(t, inbound.StateDone, e.State, "%+v", e)
				if e.Event == inbound.EventAccountCreated {
					acct = e
				} else {
					subEntry = e
				}
			}
			require.NotNil(t, subEntry.ProcessedAt)
			require.True(t, subEntry.ProcessedAt.Before(acct.CreatedAt) || subEntry.ProcessedAt.Equal(acct.CreatedAt),
				"the subscription was processed before the account callout arrived")
			require.Contains(t, subEntry.Result, "created customer "+num)
			require.Contains(t, acct.Result, "already linked")
			require.Len(t, h.customers(), 1)
			subs := h.subscriptions()
			require.Len(t, subs, 1)
			require.Equal(t, sub, subs[0].ID)

			// The challenge path: a first request without credentials, 401 with
			// WWW-Authenticate, then the same request with Basic credentials.
			challenged := 0
			for _, a := range h.env.Sim.Callouts() {
				if a.Challenge {
					challenged++
					require.True(t, a.AuthSent)
				}
				if !a.AuthSent {
					require.Equal(t, http.StatusUnauthorized, a.Status)
				}
			}
			require.GreaterOrEqual(t, challenged, 2)
			h.noEcho(before, 1)
		})
	}
}

func TestBadCredentialsStoreNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.SQLite, hopts{})
	yes := true
	_, err := h.env.Zuora.CreateNotificationDefinition(h.ctx, "bad-creds", zuora.NotificationDefinition{Name: "wrong password", Active: &yes,
		CalloutActive: &yes, EventCategory: "1210", Callout: &zuora.Callout{Name: "wrong", CalloutBaseURL: h.public + inbound.PathSubscriptionCreated,
			HTTPMethod: "POST", CalloutParams: inbound.CalloutParams[inbound.PathSubscriptionCreated], CalloutRetry: &yes, Active: &yes, RequiredAuth: &yes,
			CalloutAuth: &zuora.CalloutAuth{Username: hookUser, Password: "not-the-password", Preemptive: true}}})
	require.NoError(t, err)
	cat := h.product("BRONZE", "")
	_, num := h.account("Knuth", nil)
	h.subscription(num, cat, 1, "2026-01-01")
	h.settle()
	calls := h.env.Sim.Callouts()
	require.Len(t, calls, 1, "a 401 is not retried")
	require.Equal(t, http.StatusUnauthorized, calls[0].Status)
	require.Empty(t, h.inbox())
	require.Empty(t, h.customers())
}

func TestCrashWhileProcessingThenRestart(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{noRun: true, lease: 300 * time.Millisecond})
			h.setupCallouts(false)
			cat := h.product("PLATINUM", "")
			before := writes(h.env.Sim.Stats())
			var numbers []string
			for i := range 4 {
				_, num := h.account(fmt.Sprintf("Crash%d", i), nil)
				numbers = append(numbers, num)
				h.subscription(num, cat, i+1, "2026-01-01")
			}
			h.env.Sim.WaitCallouts()

			// The first process dies at a different stage of each entry: after
			// writing a mapping and before the entity, and so on.
			ctx1, crash := context.WithCancel(context.Background())
			var crashes atomic.Int32
			stages := map[string]bool{"customer-mapped": true, "plan-mapped": true, "subscription-mapped": true, "customer-stored": true}
			h.svc.SetHook(func(ctx context.Context, stage string) error {
				if stages[stage] {
					crashes.Add(1)
					crash()
					return errors.New("killed at " + stage)
				}
				return nil
			})
			_, _ = h.svc.Drain(ctx1)
			require.Positive(t, int(crashes.Load()))
			counts, err := h.svc.InboxCounts(h.ctx)
			require.NoError(t, err)
			require.Positive(t, counts[inbound.StateInFlight], "the crashed process left claims behind")

			// A new process on the same database takes the expired claims over.
			db2 := storetest.OpenURL(t, h.dbURL)
			svc2 := h.newService(db2, time.Minute, "restarted")
			h.svc = svc2
			time.Sleep(350 * time.Millisecond)
			h.run(svc2)
			h.settle()

			for _, e := range h.inbox() {
				require.Equal(t, inbound.StateDone, e.State, "%+v", e)
			}
			custs := h.customers()
			require.Len(t, custs, 4)
			subs := h.subscriptions()
			require.Len(t, subs, 4)
			for _, n := range numbers {
				ms, err := h.env.Outbound.Mappings().ByParent(h.ctx, mappings.Account, n)
				require.NoError(t, err)
				require.Len(t, ms, 1, "one account mapping for %s", n)
			}
			h.noEcho(before, 4)
		})
	}
}

func TestPullWithTwoLinkedAccounts(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{}) // no callouts configured: only pull
			ctx := h.ctx
			_, _, err := h.env.DB.UpsertCustomer(ctx, engine.Customer{ID: "zephr-user-1", Name: "Zephr User", Currency: "USD"})
			require.NoError(t, err)
			_, _, err = h.env.DB.UpsertCustomer(ctx, engine.Customer{ID: "other", Name: "Other", Currency: "USD"})
			require.NoError(t, err)
			cat := h.product("NEWS", "")
			id1, n1 := h.account("Print", nil)
			_, n2 := h.account("Digital", nil)
			s1 := h.subscription(n1, cat, 1, "2026-01-01")
			s2 := h.subscription(n2, cat, 2, "2026-02-01")
			h.env.Converge(10 * time.Second)
			before := writes(h.env.Sim.Stats())

			st, body := h.apiDo("PUT", "/api/v1/customers/zephr-user-1/zuora-accounts/"+id1, "")
			require.Equal(t, http.StatusCreated, st, "%v", body)
			st, _ = h.apiDo("PUT", "/api/v1/customers/zephr-user-1/zuora-accounts/"+n1, "")
			require.Equal(t, http.StatusOK, st, "linking again is a no-op")
			st, _ = h.apiDo("PUT", "/api/v1/customers/zephr-user-1/zuora-accounts/"+n2, "")
			require.Equal(t, http.StatusCreated, st)
			st, body = h.apiDo("PUT", "/api/v1/customers/other/zuora-accounts/"+n2, "")
			require.Equal(t, http.StatusConflict, st, "%v", body)
			st, _ = h.apiDo("PUT", "/api/v1/customers/zephr-user-1/zuora-accounts/A-NOPE", "")
			require.Equal(t, http.StatusNotFound, st)

			st, body = h.apiDo("POST", "/api/v1/customers/zephr-user-1/pull", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Len(t, body["zuoraAccounts"], 2)
			require.Len(t, body["subscriptions"], 2)
			require.Len(t, body["grants"], 2)
			subs := h.subscriptions()
			require.Len(t, subs, 2)
			for _, s := range subs {
				require.Equal(t, "zephr-user-1", s.CustomerID)
				require.Contains(t, []string{s1, s2}, s.ID)
			}
			// Pull by account finds the same customer; a second pull changes nothing.
			st, body = h.apiDo("POST", "/api/v1/zuora/pull", fmt.Sprintf(`{"zuoraAccount":%q}`, n2))
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Equal(t, "zephr-user-1", body["customerId"])
			require.Len(t, h.subscriptions(), 2)

			st, body = h.apiDo("GET", "/api/v1/customers/zephr-user-1/grants", "")
			require.Equal(t, http.StatusOK, st)
			grants := body["data"].([]any)
			require.Len(t, grants, 2)
			for _, g := range grants {
				require.Equal(t, "NEWS", g.(map[string]any)["planId"])
			}
			st, _ = h.apiDo("DELETE", "/api/v1/customers/zephr-user-1/zuora-accounts/"+n2, "")
			require.Equal(t, http.StatusNoContent, st)
			_, body = h.apiDo("GET", "/api/v1/customers/zephr-user-1/grants", "")
			require.Len(t, body["data"], 1)
			st, _ = h.apiDo("DELETE", "/api/v1/customers/zephr-user-1/zuora-accounts/"+n2, "")
			require.Equal(t, http.StatusNotFound, st)
			h.noEcho(before, 2) // the two links wrote billsync's id
		})
	}
}

func TestGracePeriodOnSuspension(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{})
			h.setupCallouts(false)
			today := time.Now().UTC()
			day := func(n int) string { return today.AddDate(0, 0, n).Format("2006-01-02") }
			short := h.product("SHORTGRACE", "7")
			long := h.product("LONGGRACE", "30")
			_, n1 := h.account("Suspended1", nil)
			_, n2 := h.account("Suspended2", nil)
			s1 := h.subscription(n1, short, 1, day(-60))
			s2 := h.subscription(n2, long, 1, day(-60))
			h.settle()
			before := writes(h.env.Sim.Stats())
			for _, num := range []string{s1, s2} {
				_, err := h.env.Zuora.CreateOrder(h.ctx, zuora.IdempotencyKey("suspend", num), zuora.Order{OrderDate: day(-10),
					ExistingAccountNumber: map[string]string{s1: n1, s2: n2}[num],
					Subscriptions: []zuora.OrderSubscription{{SubscriptionNumber: num, OrderActions: []zuora.OrderAction{{Type: "Suspend",
						TriggerDates: []zuora.TriggerDate{{Name: zuora.TriggerContractEffective, TriggerDate: day(-10)}},
						Suspend:      &zuora.Suspend{SuspendPolicy: "SpecificDate", SuspendSpecificDate: day(-10)}}}}}})
				require.NoError(t, err)
			}
			ordersBefore := before["POST /v1/orders"] + 2
			h.settle()
			for _, s := range h.subscriptions() {
				require.Equal(t, engine.StatusSuspended, s.Status, "%+v", s)
				require.Equal(t, day(-10), s.SuspendDate)
			}
			check := func(cust, plan, ends string, active bool) {
				gs, err := h.svc.Grants(h.ctx, cust)
				require.NoError(t, err)
				require.Len(t, gs, 1)
				require.Equal(t, plan, gs[0].PlanID)
				require.Equal(t, ends, gs[0].EndsOn, "%+v", gs[0])
				require.Equal(t, active, gs[0].Active, "%+v", gs[0])
			}
			check(n1, "SHORTGRACE", day(-3), false)
			check(n2, "LONGGRACE", day(20), true)
			before["POST /v1/orders"] = ordersBefore
			h.noEcho(before, 0)
		})
	}
}

func TestSetupCalloutsTwiceThenRemove(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.SQLite, hopts{noRun: true})
	ctx := h.ctx
	yes := true
	// Someone else's definition, which remove must leave alone.
	_, err := h.env.Zuora.CreateNotificationDefinition(ctx, "theirs", zuora.NotificationDefinition{Name: "their-callout", Active: &yes,
		CalloutActive: &yes, EventCategory: "1210", Callout: &zuora.Callout{Name: "theirs", CalloutBaseURL: "https://example.test/hook", HTTPMethod: "POST"}})
	require.NoError(t, err)
	in := inbound.CalloutSetup{PublicURL: "https://billsync.example.test", Username: hookUser, Password: hookPass}
	rep, err := h.svc.SetupCallouts(ctx, in)
	require.NoError(t, err)
	require.Len(t, rep.Created, 26, "8 event triggers, 9 callout templates, 9 notification definitions")
	require.Empty(t, rep.Existed)
	before := writes(h.env.Sim.Stats())
	rep, err = h.svc.SetupCallouts(ctx, in)
	require.NoError(t, err)
	require.Empty(t, rep.Created, "a second run creates nothing")
	require.Len(t, rep.Existed, 26)
	require.Empty(t, diff(writes(h.env.Sim.Stats()), before))

	defs := listDefs(t, h)
	require.Len(t, defs, 10)
	for _, d := range defs {
		if d.Name == "their-callout" {
			continue
		}
		require.True(t, strings.HasPrefix(d.Callout.CalloutBaseURL, "https://billsync.example.test/webhooks/zuora/"), d.Callout.CalloutBaseURL)
		require.True(t, d.Callout.CalloutAuth.Preemptive)
		require.Equal(t, hookUser, d.Callout.CalloutAuth.Username)
	}
	rep, err = h.svc.RemoveCallouts(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Removed, 26, "9 definitions, 8 triggers, 9 templates deactivated")
	defs = listDefs(t, h)
	require.Len(t, defs, 1)
	require.Equal(t, "their-callout", defs[0].Name)
	n := 0
	for _, err := range h.env.Zuora.ListEventTriggers(ctx, zuora.EventTriggerFilter{}) {
		require.NoError(t, err)
		n++
	}
	require.Zero(t, n)
	rep, err = h.svc.RemoveCallouts(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Removed)

	// Setup again with another URL and password: the templates are taken
	// over and changed in place, none is left behind or duplicated.
	in2 := inbound.CalloutSetup{PublicURL: "https://billsync2.example.test", Username: hookUser, Password: hookPass + "-rotated"}
	rep, err = h.svc.SetupCallouts(ctx, in2)
	require.NoError(t, err)
	templates := map[string]zuora.CalloutTemplate{}
	for tpl, err := range h.env.Zuora.ListCalloutTemplates(ctx, "") {
		require.NoError(t, err)
		templates[tpl.Name] = tpl
	}
	require.Len(t, templates, 10, "billsync's nine and theirs: no orphan, no duplicate")
	for name, tpl := range templates {
		if name == "theirs" {
			continue
		}
		require.True(t, strings.HasPrefix(tpl.CalloutBaseURL, "https://billsync2.example.test/webhooks/zuora/"), tpl.CalloutBaseURL)
		require.True(t, *tpl.Active)
	}
	defNames := map[string]int{}
	for _, d := range listDefs(t, h) {
		defNames[d.Name]++
		if d.Name != "their-callout" {
			require.True(t, strings.HasPrefix(d.Callout.CalloutBaseURL, "https://billsync2.example.test/"), d.Callout.CalloutBaseURL)
		}
	}
	// setup → remove → setup: exactly billsync's objects, each once.
	wantDefs := map[string]int{"their-callout": 1}
	for _, n := range []string{"account-created", "subscription-created", "subscription-changed", "subscription-cancelled", "invoice-posted",
		"invoice-paid", "payment-failed", "scheduled-order-completed", "account-updated"} {
		wantDefs["billsync-"+n] = 1
	}
	require.Equal(t, wantDefs, defNames)
	trigNames := map[string]int{}
	for tr, err := range h.env.Zuora.ListEventTriggers(ctx, zuora.EventTriggerFilter{}) {
		require.NoError(t, err)
		trigNames[tr.EventType.Name]++
	}
	require.Equal(t, map[string]int{"BillsyncAccountCreated": 1, "BillsyncSubscriptionChanged": 1, "BillsyncSubscriptionCancelled": 1,
		"BillsyncInvoicePosted": 1, "BillsyncInvoicePaid": 1, "BillsyncPaymentFailed": 1, "BillsyncScheduledOrderCompleted": 1,
		"BillsyncAccountUpdated": 1}, trigNames)
}

func listDefs(t *testing.T, h *harness) []zuora.NotificationDefinition {
	var out []zuora.NotificationDefinition
	for d, err := range h.env.Zuora.ListNotificationDefinitions(h.ctx, zuora.NotificationDefinitionFilter{}) {
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

func TestBackstopPollCatchesLostCallouts(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{noRun: true}) // no callouts: all of them "lost"
			cat := h.product("POLL", "")
			before := writes(h.env.Sim.Stats())
			_, n1 := h.account("Polled1", nil)
			_, n2 := h.account("Polled2", nil)
			h.subscription(n1, cat, 1, "2026-01-01")
			h.subscription(n2, cat, 1, "2026-01-01")
			rep, err := h.svc.Poll(h.ctx)
			require.NoError(t, err)
			require.Equal(t, 4, rep.Enqueued, "%+v", rep)
			_, err = h.svc.Drain(h.ctx)
			require.NoError(t, err)
			require.Len(t, h.customers(), 2)
			require.Len(t, h.subscriptions(), 2)
			// The next poll sees the write-backs (accounts updated), enqueues
			// nothing new to create, and changes nothing.
			_, err = h.svc.Poll(h.ctx)
			require.NoError(t, err)
			_, err = h.svc.Drain(h.ctx)
			require.NoError(t, err)
			for _, e := range h.inbox() {
				require.Equal(t, inbound.StateDone, e.State, "%+v", e)
			}
			require.Len(t, h.customers(), 2)
			h.noEcho(before, 2)
			n, err := h.svc.PruneInbox(h.ctx, -time.Second)
			require.NoError(t, err)
			require.Equal(t, int64(len(h.inbox())+int(n)), n, "every processed entry is pruned")
		})
	}
}

func TestBillsyncObjectsAreNotReimported(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{})
			h.setupCallouts(false)
			ctx := h.ctx
			// billsync's own plan, customer and subscription go out first.
			plan := engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
				BillingPeriods: []engine.BillingPeriod{{ID: "monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
					{ID: "fee", Name: "Fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimalOf("10")}}}}}
			_, _, err := h.env.DB.UpsertPlan(ctx, plan)
			require.NoError(t, err)
			_, _, err = h.env.DB.UpsertCustomer(ctx, engine.Customer{ID: "own", Name: "Own", Currency: "USD", HasPaymentMethod: true,
				BillTo: &engine.Contact{FirstName: "O", LastName: "Wn", Country: "United States"}})
			require.NoError(t, err)
			_, _, err = h.env.DB.UpsertSubscription(ctx, engine.Subscription{ID: "own-sub", CustomerID: "own", PlanID: "pro", BillingPeriodID: "monthly",
				Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true})
			require.NoError(t, err)
			h.env.Converge(10 * time.Second)
			h.settle()
			require.Len(t, h.customers(), 1)
			require.Len(t, h.subscriptions(), 1)
			plans, err := h.env.DB.ListPlans(ctx, store.ListOptions{})
			require.NoError(t, err)
			require.Len(t, plans.Items, 1)
			entries := h.inbox()
			require.Len(t, entries, 2, "account and subscription callouts")
			for _, e := range entries {
				require.Equal(t, inbound.StateDone, e.State)
				require.NotContains(t, e.Result, "created customer", "%+v", e)
				require.NotContains(t, e.Result, "created subscription", "%+v", e)
				require.NotContains(t, e.Result, "wrote", "%+v", e)
			}
		})
	}
}

func decimalOf(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestDeadEntryRetriedThroughAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.SQLite, hopts{noRun: true})
	h.setupCallouts(false)
	cat := h.product("RETRY", "")
	_, num := h.account("Retry", nil)
	sub := h.subscription(num, cat, 1, "2026-01-01")
	h.env.Sim.WaitCallouts()
	// Zuora fails every read of the subscription: the client retries, the
	// entry backs off, and after MaxAttempts it is dead.
	h.env.Sim.SetFaults(zuorasim.Fault{Operation: "GET /v1/subscriptions/{subscription-key}", Kind: zuorasim.FaultHTTP500})
	svc := inbound.New(h.env.DB, h.env.Zuora, h.env.Outbound, inbound.Config{MaxAttempts: 2, BackoffUnit: time.Millisecond, MaxBackoff: time.Millisecond})
	for range 50 {
		_, err := svc.Drain(h.ctx)
		require.NoError(t, err)
		if c, _ := svc.InboxCounts(h.ctx); c[inbound.StateDead] == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, body := h.apiDo("GET", "/api/v1/inbox?state=dead", "")
	require.Equal(t, http.StatusOK, st)
	dead := body["data"].([]any)
	require.Len(t, dead, 1)
	e := dead[0].(map[string]any)
	require.Equal(t, inbound.EventSubscriptionCreated, e["event"])
	require.NotEmpty(t, e["lastError"])
	require.Empty(t, h.subscriptions())

	h.env.Sim.SetFaults()
	st, body = h.apiDo("POST", fmt.Sprintf("/api/v1/inbox/%v/retry", e["id"]), "")
	require.Equal(t, http.StatusOK, st, "%v", body)
	_, err := svc.Drain(h.ctx)
	require.NoError(t, err)
	got, err := svc.GetInbox(h.ctx, int64(e["id"].(float64)))
	require.NoError(t, err)
	require.Equal(t, inbound.StateDone, got.State, "%+v", got)
	subs := h.subscriptions()
	require.Len(t, subs, 1)
	require.Equal(t, sub, subs[0].ID)
}

// TestExpiredVersionIsNotACancellation: an amendment expires the version it
// replaces (status Expired, zuorasim TestOrderActions); a hint naming the
// old version's id ends with the latest version read (by number when Zuora
// answers the Expired one) and the local subscription stays active with
// the amended quantity.
func TestExpiredVersionIsNotACancellation(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{})
			c := h.product("VERSIONS", "7")
			_, acct := h.account("Versioned", nil)
			num := h.subscription(acct, c, 2, time.Now().UTC().AddDate(0, -1, 0).Format("2006-01-02"))
			_, err := h.svc.Accept(h.ctx, inbound.Callout{Event: inbound.EventSubscriptionCreated, ObjectID: num})
			require.NoError(t, err)
			h.svc.Kick()
			h.settle()
			v1, err := h.env.Zuora.GetSubscription(h.ctx, num)
			require.NoError(t, err)
			seats := ""
			for _, rp := range v1.RatePlans {
				for _, ch := range rp.RatePlanCharges {
					if ch.ProductRatePlanChargeID == c.seatsChargeID {
						seats = ch.Number
					}
				}
			}
			require.NotEmpty(t, seats)
			today := time.Now().UTC().Format("2006-01-02")
			_, err = h.env.Zuora.CreateOrder(h.ctx, zuora.IdempotencyKey("amend", num), zuora.Order{OrderDate: today, ExistingAccountNumber: acct,
				Subscriptions: []zuora.OrderSubscription{{SubscriptionNumber: num, OrderActions: []zuora.OrderAction{{Type: "UpdateProduct",
					TriggerDates: []zuora.TriggerDate{{Name: zuora.TriggerContractEffective, TriggerDate: today}},
					UpdateProduct: &zuora.RatePlanUpdate{RatePlanID: v1.RatePlans[0].ID, ChargeUpdates: []zuora.ChargeUpdate{{ChargeNumber: seats,
						Pricing:       &zuora.Pricing{RecurringPerUnit: &zuora.PriceOverride{Quantity: zuora.NumberFromDecimal(decimal.NewFromInt(7))}},
						EffectiveDate: &zuora.TriggerParams{TriggerEvent: "SpecificDate", SpecificTriggerDate: today}}}}}}}}})
			require.NoError(t, err)
			require.Equal(t, 2, h.env.Sim.State().Subscriptions[0].Version, "the amendment made version 2")

			_, err = h.svc.Accept(h.ctx, inbound.Callout{Event: inbound.EventSubscriptionChanged, ObjectID: v1.ID})
			require.NoError(t, err)
			h.svc.Kick()
			h.settle()
			subs := h.subscriptions()
			require.Len(t, subs, 1)
			require.Equal(t, engine.StatusActive, subs[0].Status, "an expired version is not a cancellation")
			found := false
			for _, q := range subs[0].ChargeQuantities {
				found = found || q.Equal(decimal.NewFromInt(7))
			}
			require.True(t, found, "the latest version's quantity: %+v", subs[0].ChargeQuantities)
		})
	}
}
