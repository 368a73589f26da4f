package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

const apiKey = "test-api-key-0123456789"

type client struct {
	t   *testing.T
	url string
	key string
}

func (c client) do(method, path, body string) (int, map[string]any, http.Header) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	require.NoError(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	checkAgainstOpenAPI(c.t, method, c.url+path, body, resp.StatusCode, resp.Header, b)
	var m map[string]any
	if len(b) > 0 {
		require.NoError(c.t, json.Unmarshal(b, &m), "body: %s", b)
	}
	return resp.StatusCode, m, resp.Header
}

func newAPI(t *testing.T, db *store.DB) client {
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey, MaxBodyBytes: 64 << 10}))
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL, key: apiKey}
}

const planJSON = `{"kind":"plan","name":"Pro","pricingType":"paid","currency":"USD","trialDays":14,
 "billingPeriods":[{"id":"pro-monthly","period":"month","charges":[
   {"id":"base","name":"Base","type":"recurring","model":"flat_fee","price":"49.00","billingTiming":"in_advance"},
   {"id":"seats","name":"Seats","type":"recurring","model":"per_unit","price":10,"unitOfMeasure":"seat"},
   {"id":"api","name":"API calls","type":"usage","model":"volume","unitOfMeasure":"call","feature":"api-calls",
    "tiers":[{"upTo":"1000","price":"0.02"},{"price":"0.01"}]}]},
  {"id":"pro-yearly","period":"year","charges":[{"id":"base-y","name":"Base","type":"recurring","model":"flat_fee","price":"490"}]}]}`

const addonJSON = `{"kind":"addon","name":"Extra storage","currency":"USD","billingPeriods":[{"id":"extra-monthly","period":"month",
 "charges":[{"id":"extra","name":"Extra","type":"recurring","model":"per_unit","price":"5","unitOfMeasure":"GB"}]}]}`

const customerJSON = `{"name":"Acme","email":"billing@acme.test","currency":"USD","hasPaymentMethod":true,
 "billTo":{"firstName":"Ada","lastName":"Lovelace","country":"US","city":"London"}}`

const subJSON = `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","status":"active","startDate":"2026-01-01",
 "addOns":[{"planId":"extra","billingPeriodId":"extra-monthly","quantity":"3"}],"chargeQuantities":{"seats":"5"}}`

func TestAPIRoutes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newAPI(t, db)
		st, body, _ := c.do("PUT", "/api/v1/plans/pro", planJSON)
		require.Equal(t, 201, st, "%v", body)
		require.Equal(t, "pro", body["id"])
		require.Equal(t, float64(1), body["revision"])
		require.Equal(t, "pending", body["sync"].(map[string]any)["state"])
		bps := body["billingPeriods"].([]any)
		ch := bps[0].(map[string]any)["charges"].([]any)
		require.Equal(t, "49", ch[0].(map[string]any)["price"])
		require.Equal(t, "10", ch[1].(map[string]any)["price"])

		st, body, _ = c.do("PUT", "/api/v1/plans/pro", planJSON)
		require.Equal(t, 200, st)
		require.Equal(t, float64(1), body["revision"], "idempotent upsert")

		st, _, _ = c.do("PUT", "/api/v1/plans/extra", addonJSON)
		require.Equal(t, 201, st)
		st, body, _ = c.do("GET", "/api/v1/plans?kind=addon", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 1)
		st, body, _ = c.do("GET", "/api/v1/plans?limit=1", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 1)
		require.Equal(t, "extra", body["nextCursor"])
		st, body, _ = c.do("GET", "/api/v1/plans?limit=1&cursor=extra", "")
		require.Equal(t, 200, st)
		require.Equal(t, "pro", body["data"].([]any)[0].(map[string]any)["id"])
		require.Nil(t, body["nextCursor"])

		st, body, _ = c.do("PUT", "/api/v1/customers/acme", customerJSON)
		require.Equal(t, 201, st, "%v", body)
		require.Equal(t, "Ada", body["billTo"].(map[string]any)["firstName"])
		st, body, _ = c.do("GET", "/api/v1/customers/acme", "")
		require.Equal(t, 200, st)
		require.Equal(t, "Acme", body["name"])
		st, body, _ = c.do("GET", "/api/v1/customers", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 1)

		st, body, _ = c.do("PUT", "/api/v1/subscriptions/sub-1", subJSON)
		require.Equal(t, 201, st, "%v", body)
		require.Equal(t, "5", body["chargeQuantities"].(map[string]any)["seats"])
		require.Equal(t, float64(12), body["termMonths"])
		st, body, _ = c.do("GET", "/api/v1/subscriptions/sub-1", "")
		require.Equal(t, 200, st)
		require.Equal(t, "active", body["status"])
		st, body, _ = c.do("GET", "/api/v1/subscriptions?customerId=acme", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 1)
		st, body, _ = c.do("GET", "/api/v1/subscriptions?customerId=other", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 0)

		cancelled := strings.Replace(subJSON, `"status":"active"`, `"status":"cancelled","cancellationPolicy":"end_of_current_term"`, 1)
		st, body, _ = c.do("PUT", "/api/v1/subscriptions/sub-1", cancelled)
		require.Equal(t, 200, st, "%v", body)
		require.Equal(t, float64(2), body["revision"])

		st, body, _ = c.do("DELETE", "/api/v1/plans/extra", "")
		require.Equal(t, 200, st)
		require.NotNil(t, body["archivedAt"])
		st, body, _ = c.do("DELETE", "/api/v1/customers/acme", "")
		require.Equal(t, 200, st)
		require.NotNil(t, body["archivedAt"])
		st, body, _ = c.do("GET", "/api/v1/customers?includeArchived=true", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 1)

		st, body, _ = c.do("GET", "/api/v1/plans/nope", "")
		require.Equal(t, 404, st)
		require.Equal(t, "Not found", body["title"])

		st, _, _ = c.do("GET", "/healthz", "")
		require.Equal(t, 200, st)
		st, body, _ = c.do("GET", "/readyz", "")
		require.Equal(t, 200, st, "%v", body)
	})
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	c := newAPI(t, db)
	c.key = ""
	st, body, h := c.do("GET", "/api/v1/plans", "")
	require.Equal(t, 401, st)
	require.Contains(t, h.Get("WWW-Authenticate"), "Bearer")
	require.Equal(t, "Unauthorized", body["title"])
	c.key = "wrong-key-wrong-key"
	st, _, _ = c.do("PUT", "/api/v1/customers/x", customerJSON)
	require.Equal(t, 401, st)
	_, err := db.GetCustomer(t.Context(), "x")
	require.Error(t, err)
	st, _, _ = c.do("GET", "/healthz", "")
	require.Equal(t, 200, st, "probes need no key")
}

func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newAPI(t, db)
		for _, p := range []struct{ path, body string }{
			{"/api/v1/plans/pro", planJSON}, {"/api/v1/plans/extra", addonJSON},
			{"/api/v1/customers/acme", customerJSON}, {"/api/v1/subscriptions/sub-1", subJSON},
		} {
			st, body, _ := c.do("PUT", p.path, p.body)
			require.Equal(t, 201, st, "%s: %v", p.path, body)
		}
		snapshot := func() string {
			var b bytes.Buffer
			for _, path := range []string{"/api/v1/plans?includeArchived=true", "/api/v1/customers?includeArchived=true", "/api/v1/subscriptions"} {
				_, body, _ := c.do("GET", path, "")
				j, _ := json.Marshal(body)
				b.Write(j)
			}
			return b.String()
		}
		before := snapshot()
		bad := []struct {
			name, method, path, body string
			status                   int
			field                    string
		}{
			{"malformed json", "PUT", "/api/v1/plans/pro", `{"name":`, 400, ""},
			{"not json", "PUT", "/api/v1/plans/pro", `hello`, 400, ""},
			{"empty body", "PUT", "/api/v1/customers/acme", ``, 400, ""},
			{"two objects", "PUT", "/api/v1/customers/acme", customerJSON + customerJSON, 400, ""},
			{"unknown field", "PUT", "/api/v1/customers/acme", `{"name":"A","currency":"USD","nickname":"x"}`, 400, "nickname"},
			{"wrong type", "PUT", "/api/v1/customers/acme", `{"name":5,"currency":"USD"}`, 400, "name"},
			{"wrong nested type", "PUT", "/api/v1/plans/pro", `{"name":"P","currency":"USD","trialDays":"ten","billingPeriods":[]}`, 400, "trialDays"},
			{"negative price", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"49.00"`, `"-49"`, 1), 422, "billingPeriods[0].charges[0].price"},
			{"price not a number", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"49.00"`, `"lots"`, 1), 422, "billingPeriods[0].charges[0].price"},
			{"unknown currency", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"USD"`, `"USX"`, 1), 422, "currency"},
			{"unknown customer currency", "PUT", "/api/v1/customers/acme", strings.Replace(customerJSON, "USD", "ABC", 1), 422, "currency"},
			{"bad period", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"period":"month"`, `"period":"week"`, 1), 422, "billingPeriods[0].period"},
			{"usage charge without feature", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `,"feature":"api-calls"`, ``, 1), 422, "billingPeriods[0].charges[2].feature"},
			{"tier order", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `{"price":"0.01"}`, `{"upTo":"10","price":"0.01"}`, 1), 422, "billingPeriods[0].charges[2].tiers[1].upTo"},
			{"body id differs", "PUT", "/api/v1/plans/pro", `{"id":"other","name":"P","currency":"USD","billingPeriods":[]}`, 400, "id"},
			{"bad path id", "PUT", "/api/v1/customers/a%20b", customerJSON, 400, "id"},
			{"bad email", "PUT", "/api/v1/customers/acme", strings.Replace(customerJSON, "billing@acme.test", "nope", 1), 422, "email"},
			{"unknown plan", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"planId":"pro"`, `"planId":"nope"`, 1), 422, "planId"},
			{"unknown billing period", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"billingPeriodId":"pro-monthly"`, `"billingPeriodId":"weekly"`, 1), 422, "billingPeriodId"},
			{"unknown customer", "PUT", "/api/v1/subscriptions/sub-2", strings.Replace(subJSON, `"customerId":"acme"`, `"customerId":"ghost"`, 1), 422, "customerId"},
			{"bad status", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"active"`, `"paused"`, 1), 422, "status"},
			{"bad date", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `2026-01-01`, `01/01/2026`, 1), 422, "startDate"},
			{"negative add-on quantity", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"quantity":"3"`, `"quantity":"-3"`, 1), 422, "addOns[0].quantity"},
			{"cancel without policy", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"active"`, `"cancelled"`, 1), 422, "cancellationPolicy"},
			{"oversized", "PUT", "/api/v1/customers/acme", `{"name":"` + strings.Repeat("x", 70<<10) + `","currency":"USD"}`, 413, ""},
			{"bad limit", "GET", "/api/v1/plans?limit=0", "", 400, "limit"},
			{"bad kind", "GET", "/api/v1/plans?kind=bundle", "", 400, "kind"},
			{"method not allowed", "POST", "/api/v1/plans/pro", planJSON, 405, ""},
			// Values that would turn into unbounded work or that Zuora cannot store.
			{"renewal count that exhausts memory", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"status":"active"`, `"status":"active","renewalCount":2147483647`, 1), 422, "renewalCount"},
			{"price with 10,001 digits", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"49.00"`, `"1e10000"`, 1), 422, "billingPeriods[0].charges[0].price"},
			{"price with a huge exponent", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"49.00"`, `"1e2000000000"`, 1), 422, "billingPeriods[0].charges[0].price"},
			{"price with 14 integer digits", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"49.00"`, `"12345678901234"`, 1), 422, "billingPeriods[0].charges[0].price"},
			{"tier bound with a tiny exponent", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"upTo":"1000"`, `"upTo":"1e-2000000000"`, 1), 422, "billingPeriods[0].charges[2].tiers[0].upTo"},
			{"add-on quantity too large", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"quantity":"3"`, `"quantity":"1e20"`, 1), 422, "addOns[0].quantity"},
			{"year 0", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `2026-01-01`, `0000-01-01`, 1), 422, "startDate"},
			{"year 9999", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `2026-01-01`, `9999-12-31`, 1), 422, "startDate"},
			{"resume before suspend", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"status":"active"`, `"status":"suspended","suspendDate":"2026-03-01","resumeDate":"2026-02-01"`, 1), 422, "resumeDate"},
			{"too many add-ons", "PUT", "/api/v1/subscriptions/sub-1", strings.Replace(subJSON, `"addOns":[`, `"addOns":[`+strings.Repeat(`{"planId":"extra","billingPeriodId":"extra-monthly","quantity":"1"},`, engine.MaxAddOns), 1), 422, "addOns"},
			{"too many tiers", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"tiers":[`, `"tiers":[`+strings.Repeat(`{"upTo":"1","price":"1"},`, engine.MaxTiers), 1), 422, "billingPeriods[0].charges[2].tiers"},
			// NUL bytes and invalid UTF-8: refused naming the field, never a 500.
			{"NUL in a name", "PUT", "/api/v1/customers/acme", strings.Replace(customerJSON, `"Acme"`, `"Ac\u0000me"`, 1), 422, "name"},
			{"NUL in a contact", "PUT", "/api/v1/customers/acme", strings.Replace(customerJSON, `"London"`, `"Lon\u0000don"`, 1), 422, "billTo.city"},
			{"NUL in a charge name", "PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"name":"Seats"`, `"name":"Se\u0000ats"`, 1), 422, "billingPeriods[0].charges[1].name"},
			{"invalid UTF-8 body", "PUT", "/api/v1/customers/acme", strings.Replace(customerJSON, `"Acme"`, "\"Ac\xffme\"", 1), 400, ""},
			{"NUL in a path id", "GET", "/api/v1/plans/a%00b", "", 400, "id"},
			{"NUL in a path id (PUT)", "PUT", "/api/v1/customers/a%00b", customerJSON, 400, "id"},
			{"invalid UTF-8 in a path id", "GET", "/api/v1/subscriptions/a%ffb", "", 400, "id"},
			{"NUL in a cursor", "GET", "/api/v1/plans?cursor=%00", "", 400, "cursor"},
			{"NUL in a filter", "GET", "/api/v1/subscriptions?customerId=x%00", "", 400, "customerId"},
		}
		for _, tc := range bad {
			st, body, _ := c.do(tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, st, "%s: %v", tc.name, body)
			require.NotEmpty(t, body["title"], tc.name)
			require.Equal(t, float64(tc.status), body["status"], tc.name)
			if tc.field != "" {
				require.Equal(t, tc.field, body["field"], "%s: %v", tc.name, body)
			}
		}
		require.Equal(t, before, snapshot(), "bad input changed nothing")
		// The problem body is served as application/problem+json.
		req, _ := http.NewRequest("PUT", c.url+"/api/v1/plans/pro", strings.NewReader("{"))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	})
}

func TestAPIRefusesChangesZuoraCannotTake(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newAPI(t, db)
		st, _, _ := c.do("PUT", "/api/v1/plans/pro", planJSON)
		require.Equal(t, 201, st)
		// The plan's seats charge is in Zuora (as the outbound engine records it).
		require.NoError(t, db.Gorm.Exec(`INSERT INTO id_mappings(kind, local_id, zuora_id, created_at, updated_at)
			VALUES ('charge', 'pro/seats', 'Z1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), ('product', 'pro', 'Z0', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`).Error)
		changed := strings.Replace(planJSON, `"model":"per_unit","price":10`, `"model":"volume","price":10,"tiers":[{"price":"9"}]`, 1)
		st, body, _ := c.do("PUT", "/api/v1/plans/pro", changed)
		require.Equal(t, 409, st, "%v", body)
		require.Equal(t, "billingPeriods[0].charges[1].model", body["field"])
		require.Contains(t, body["detail"], "Add a new charge")
		st, body, _ = c.do("PUT", "/api/v1/plans/pro", strings.Replace(planJSON, `"currency":"USD"`, `"currency":"EUR"`, 1))
		require.Equal(t, 409, st, "%v", body)
		require.Equal(t, "currency", body["field"])
		st, body, _ = c.do("GET", "/api/v1/plans/pro", "")
		require.Equal(t, 200, st)
		require.Equal(t, float64(1), body["revision"], "nothing written")
	})
}

// TestReadyzWhilePaused: while Zuora refuses billsync's credentials the
// probe says so (503), without Zuora's message.
func TestReadyzWhilePaused(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	paused := true
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey,
		Paused: func() (bool, string) { return paused, "Invalid client credentials" }}))
	t.Cleanup(srv.Close)
	c := client{t: t, url: srv.URL, key: apiKey}
	st, body, _ := c.do("GET", "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, st)
	require.Equal(t, "paused", body["status"])
	require.NotContains(t, body["error"], "Invalid client credentials")
	paused = false
	st, _, _ = c.do("GET", "/readyz", "")
	require.Equal(t, http.StatusOK, st)
}
