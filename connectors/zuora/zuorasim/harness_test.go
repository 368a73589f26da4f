package zuorasim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/connectors/zuora/zuoraspec"
)

const latest = "2025-08-12"

// allOps collects the operationIds validated by every test of the package.
var (
	allOpsMu sync.Mutex
	allOps   = map[string]bool{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	allOpsMu.Lock()
	ops := make([]string, 0, len(allOps))
	for op := range allOps {
		ops = append(ops, op)
	}
	allOpsMu.Unlock()
	sort.Strings(ops)
	if len(ops) > 0 && testing.Verbose() {
		fmt.Printf("zuorasim: the package's tests validated %d distinct spec operations: %s\n", len(ops), strings.Join(ops, ", "))
	}
	os.Exit(code)
}

type harness struct {
	t      *testing.T
	sim    *zuorasim.Sim
	srv    *httptest.Server
	rt     *zuoraspec.RecordingTransport
	client *http.Client
	token  string
}

func newHarness(t *testing.T, opts zuorasim.Options) *harness {
	t.Helper()
	v := zuoraspec.Load(t)
	if opts.Tenant == nil {
		tn := testTenant()
		opts.Tenant = &tn
	}
	sim, err := zuorasim.Open(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	rt := v.Transport(t, http.DefaultTransport.(*http.Transport).Clone())
	h := &harness{t: t, sim: sim, srv: srv, rt: rt, client: &http.Client{Transport: rt, Timeout: 20 * time.Second}}
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
		allOpsMu.Lock()
		for _, op := range rt.Operations() {
			allOps[op] = true
		}
		allOpsMu.Unlock()
	})
	return h
}

// testTenant is the tenant of the package's tests: a fresh tenant with the
// units and custom fields the tests write (tests of the tenant rules start
// from zuorasim.FreshTenant instead).
func testTenant() zuorasim.Tenant {
	t := zuorasim.FreshTenant()
	t.AddUnits("Seat", "Call")
	for _, obj := range []string{"Product", "ProductRatePlan", "ProductRatePlanCharge", "Account", "Subscription", "RatePlan", "RatePlanCharge", "Usage"} {
		t.Define(obj, zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
	}
	t.Define("Subscription", zuorasim.CustomField{Name: "BillsyncSubId__c", Type: "text", Length: 255})
	t.Define("Product", zuorasim.CustomField{Name: "GracePeriod__c", Type: "text", Length: 10})
	return t
}

// login mints a token with the default credentials.
func (h *harness) login() *harness {
	h.t.Helper()
	form := url.Values{"client_id": {zuorasim.DefaultClientID}, "client_secret": {zuorasim.DefaultClientSecret}, "grant_type": {"client_credentials"}}
	res, err := h.client.PostForm(h.srv.URL+"/oauth/token", form)
	require.NoError(h.t, err)
	defer res.Body.Close()
	require.Equal(h.t, http.StatusOK, res.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	require.NoError(h.t, json.NewDecoder(res.Body).Decode(&tok))
	require.NotEmpty(h.t, tok.AccessToken)
	h.token = tok.AccessToken
	return h
}

type reply struct {
	status int
	header http.Header
	raw    []byte
}

func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.raw, &m), string(r.raw))
	return m
}

func (r reply) arr(t *testing.T) []any {
	t.Helper()
	var a []any
	require.NoError(t, json.Unmarshal(r.raw, &a), string(r.raw))
	return a
}

// do sends a request; hdr pairs are header name, value.
func (h *harness) do(method, path string, body any, hdr ...string) reply {
	h.t.Helper()
	r, err := h.try(method, path, body, hdr...)
	require.NoError(h.t, err)
	return r
}

func (h *harness) try(method, path string, body any, hdr ...string) (reply, error) {
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		case []byte:
			rd = bytes.NewReader(b)
		default:
			buf, err := json.Marshal(b)
			require.NoError(h.t, err)
			rd = bytes.NewReader(buf)
		}
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	require.NoError(h.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := h.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: res.StatusCode, header: res.Header, raw: raw}, nil
}

// ---- fixtures ----

type catalog struct {
	productID, planID, flatID, unitID, usageID string
}

// seedCatalog creates a product with one plan and three charges (flat
// recurring, per-unit recurring, per-unit usage) priced in USD and EUR.
func (h *harness) seedCatalog(name string) catalog {
	t := h.t
	t.Helper()
	var c catalog
	r := h.do("POST", "/v1/object/product", map[string]any{"Name": name, "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2099-12-31",
		"GracePeriod__c": "7"})
	require.Equal(t, 200, r.status, string(r.raw))
	c.productID = r.obj(t)["Id"].(string)
	r = h.do("POST", "/v1/object/product-rate-plan", map[string]any{"Name": name + " Monthly", "ProductId": c.productID,
		"ActiveCurrencies": []string{"USD", "EUR"}})
	require.Equal(t, 200, r.status, string(r.raw))
	c.planID = r.obj(t)["Id"].(string)
	charge := func(body map[string]any) string {
		base := map[string]any{"ProductRatePlanId": c.planID, "BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month",
			"TriggerEvent": "ContractEffective", "UseDiscountSpecificAccountingCode": false}
		for k, v := range body {
			base[k] = v
		}
		r := h.do("POST", "/v1/object/product-rate-plan-charge", base)
		require.Equal(t, 200, r.status, string(r.raw))
		require.Equal(t, true, r.obj(t)["Success"], string(r.raw))
		return r.obj(t)["Id"].(string)
	}
	c.flatID = charge(map[string]any{"Name": "Base fee", "ChargeType": "Recurring", "ChargeModel": "Flat Fee Pricing",
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{
			map[string]any{"Currency": "USD", "Price": 49}, map[string]any{"Currency": "EUR", "Price": 45}}}})
	c.unitID = charge(map[string]any{"Name": "Seats", "ChargeType": "Recurring", "ChargeModel": "Per Unit Pricing", "UOM": "Seat", "DefaultQuantity": 1,
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{
			map[string]any{"Currency": "USD", "Price": 10}, map[string]any{"Currency": "EUR", "Price": 9}}}})
	c.usageID = charge(map[string]any{"Name": "API calls", "ChargeType": "Usage", "ChargeModel": "Per Unit Pricing", "UOM": "Call",
		"BillingTiming": "In Arrears",
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{
			map[string]any{"Currency": "USD", "Price": 0.01}, map[string]any{"Currency": "EUR", "Price": 0.01}}}})
	return c
}

func newAccountBody(name string) map[string]any {
	return map[string]any{"name": name, "currency": "USD", "billCycleDay": 1,
		"billToContact": map[string]any{"firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@example.com", "country": "US"},
		"customFields":  map[string]any{"BillsyncId__c": "cust_" + name}}
}

func createSubscriptionAction(planID string, extra ...map[string]any) map[string]any {
	item := map[string]any{"productRatePlanId": planID}
	for _, e := range extra {
		for k, v := range e {
			item[k] = v
		}
	}
	return map[string]any{"type": "CreateSubscription", "createSubscription": map[string]any{
		"terms": map[string]any{"initialTerm": map[string]any{"termType": "TERMED", "period": 12, "periodType": "Month"},
			"renewalSetting": "RENEW_WITH_SPECIFIC_TERM", "renewalTerms": []any{map[string]any{"period": 12, "periodType": "Month"}}, "autoRenew": true},
		"subscribeToRatePlans": []any{item}}}
}

// newOrder creates an account with one subscription and returns
// (accountNumber, subscriptionNumber).
func (h *harness) newOrder(c catalog, name string) (string, string) {
	t := h.t
	t.Helper()
	r := h.do("POST", "/v1/orders", map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody(name),
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	m := r.obj(t)
	require.Equal(t, true, m["success"], string(r.raw))
	subs := m["subscriptions"].([]any)
	return m["accountNumber"].(string), subs[0].(map[string]any)["subscriptionNumber"].(string)
}

func (h *harness) order(body map[string]any, hdr ...string) reply {
	h.t.Helper()
	return h.do("POST", "/v1/orders", body, append([]string{"Zuora-Version", latest}, hdr...)...)
}

func (h *harness) subscription(key string, query ...string) map[string]any {
	h.t.Helper()
	p := "/v1/subscriptions/" + key
	if len(query) > 0 {
		p += "?" + query[0]
	}
	r := h.do("GET", p, nil, "Zuora-Version", latest)
	require.Equal(h.t, 200, r.status, string(r.raw))
	return r.obj(h.t)
}

func ratePlans(sub map[string]any) []map[string]any {
	var out []map[string]any
	for _, rp := range sub["ratePlans"].([]any) {
		out = append(out, rp.(map[string]any))
	}
	return out
}

func charges(rp map[string]any) []map[string]any {
	var out []map[string]any
	for _, ch := range rp["ratePlanCharges"].([]any) {
		out = append(out, ch.(map[string]any))
	}
	return out
}

func chargeByName(sub map[string]any, name string) map[string]any {
	for _, rp := range ratePlans(sub) {
		for _, ch := range charges(rp) {
			if ch["name"] == name && rp["lastChangeType"] != "Remove" {
				return ch
			}
		}
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// bad sends a request the spec itself forbids around the validating
// transport (to check the simulator rejects it as Zuora does); the response
// is still validated against the spec.
func (h *harness) bad(method, path string, body any, hdr ...string) reply {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw = []byte(mustJSON(b))
	}
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(raw))
	require.NoError(h.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(h.t, err)
	if verr := zuoraspec.Load(h.t).ValidateResponse(req, raw, res.StatusCode, res.Header, out); verr != nil && !errors.Is(verr, zuoraspec.ErrNoRoute) {
		h.t.Errorf("response to a rejected request violates the spec: %v", verr)
	}
	return reply{status: res.StatusCode, header: res.Header, raw: out}
}
