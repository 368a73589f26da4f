package zuorasim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// freshHarness is a simulator with Zuora's fresh tenant: a few units, USD,
// EUR and GBP, no custom fields.
func freshHarness(t *testing.T) *harness {
	t.Helper()
	tn := zuorasim.FreshTenant()
	return newHarness(t, zuorasim.Options{Tenant: &tn}).login()
}

func crudErrCode(t *testing.T, r reply) string {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
	errs := r.obj(t)["errors"].([]any)
	return errs[0].(map[string]any)["code"].(string)
}

// TestTenantRefusesWhatTheTenantLacks: each write that uses a custom field
// the object does not define, a unit of measure or currency the tenant does
// not have is refused in its dialect (CRUD: INVALID_FIELD / INVALID_VALUE;
// REST: an 8-digit code with category 21 or 20), and passes once the
// tenant has it (PUT /_sim/tenant).
func TestTenantRefusesWhatTheTenantLacks(t *testing.T) {
	t.Parallel()
	h := freshHarness(t)
	product := map[string]any{"Name": "P", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2099-12-31", "BillsyncId__c": "p1"}
	r := h.do("POST", "/v1/object/product", product)
	require.Equal(t, "INVALID_FIELD", crudErrCode(t, r))
	require.Contains(t, string(r.raw), "BillsyncId__c is not defined on the Product object")
	require.Empty(t, h.sim.State().Products, "nothing was written")

	delete(product, "BillsyncId__c")
	pid := h.do("POST", "/v1/object/product", product).obj(t)["Id"].(string)
	r = h.do("POST", "/v1/object/product-rate-plan", map[string]any{"Name": "M", "ProductId": pid, "ActiveCurrencies": []string{"USD", "JPY"}})
	require.Equal(t, "INVALID_VALUE", crudErrCode(t, r))
	require.Contains(t, string(r.raw), "JPY is not enabled")
	plan := h.do("POST", "/v1/object/product-rate-plan", map[string]any{"Name": "M", "ProductId": pid, "ActiveCurrencies": []string{"USD"}}).obj(t)["Id"].(string)
	charge := map[string]any{"Name": "Seats", "ProductRatePlanId": plan, "ChargeType": "Recurring", "ChargeModel": "Per Unit Pricing", "UOM": "Seat",
		"BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective", "UseDiscountSpecificAccountingCode": false,
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{map[string]any{"Currency": "USD", "Price": 5}}}}
	r = h.do("POST", "/v1/object/product-rate-plan-charge", charge)
	require.Equal(t, "INVALID_VALUE", crudErrCode(t, r))
	require.Contains(t, string(r.raw), "unit of measure Seat does not exist")

	acct := map[string]any{"name": "A", "currency": "USD", "billCycleDay": 1, "billToContact": map[string]any{"firstName": "A", "lastName": "B"},
		"BillsyncId__c": "c1"}
	r = h.do("POST", "/v1/accounts", acct, "Zuora-Version", latest)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
	require.Equal(t, "50010021", r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])
	acct["currency"] = "CHF"
	delete(acct, "BillsyncId__c")
	r = h.do("POST", "/v1/accounts", acct, "Zuora-Version", latest)
	require.Equal(t, "50010020", r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"], string(r.raw))

	// The admin creates what was missing.
	tn := h.sim.Tenant()
	tn.AddUnits("Seat")
	tn.Define("Product", zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
	tn.Define("Account", zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
	b, _ := json.Marshal(tn)
	req, _ := http.NewRequest(http.MethodPut, h.srv.URL+"/_sim/tenant", bytes.NewReader(b))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	_ = res.Body.Close()

	product["BillsyncId__c"] = "p1"
	product["SKU"] = "P2"
	require.Equal(t, 200, h.do("POST", "/v1/object/product", product).status)
	require.Equal(t, 200, h.do("POST", "/v1/object/product-rate-plan-charge", charge).status)
	acct["currency"], acct["BillsyncId__c"] = "USD", "c1"
	require.Equal(t, 200, h.do("POST", "/v1/accounts", acct, "Zuora-Version", latest).status)

	// A text field longer than its definition is refused too.
	product["BillsyncId__c"], product["SKU"] = strings.Repeat("x", 256), "P3"
	require.Equal(t, "INVALID_VALUE", crudErrCode(t, h.do("POST", "/v1/object/product", product)))
}

// TestTenantReads: describe lists the custom fields defined on the object,
// the settings API the units of measure and currencies; a bad tenant file
// is refused and changes nothing.
func TestTenantReads(t *testing.T) {
	t.Parallel()
	h := freshHarness(t)
	r := h.do("GET", "/v1/describe/Account", nil)
	require.Equal(t, 200, r.status)
	require.NotContains(t, string(r.raw), "__c")
	require.NoError(t, h.sim.SetTenant(func() zuorasim.Tenant {
		tn := zuorasim.FreshTenant()
		tn.Define("Account", zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
		return tn
	}()))
	r = h.do("GET", "/v1/describe/Account", nil)
	require.Contains(t, string(r.raw), "<name>BillsyncId__c</name>")
	require.Contains(t, string(r.raw), "<maxlength>255</maxlength>")
	require.Equal(t, http.StatusNotFound, h.do("GET", "/v1/describe/Nope", nil).status)

	r = h.do("POST", "/settings/batch-requests", map[string]any{"requests": []any{
		map[string]any{"id": "u", "method": "GET", "url": "/units-of-measure"}, map[string]any{"id": "c", "method": "GET", "url": "/currencies"}}})
	require.Equal(t, 200, r.status)
	require.Contains(t, string(r.raw), `"name":"Each"`)
	require.Contains(t, string(r.raw), `"currencyCode":"GBP"`)

	for _, bad := range []string{`{"currencies":["usd"],"timeZone":"UTC"}`, `{"currencies":["USD"],"timeZone":"Mars/Base"}`,
		`{"currencies":["USD"],"timeZone":"UTC","customFields":{"Account":[{"name":"NoSuffix","type":"text","length":5}]}}`,
		`{"currencies":["USD"],"timeZone":"UTC","unknown":1}`} {
		req, _ := http.NewRequest(http.MethodPut, h.srv.URL+"/_sim/tenant", strings.NewReader(bad))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, bad)
		_ = res.Body.Close()
	}
	require.Len(t, h.sim.Tenant().CustomFields["Account"], 1, "a refused tenant changes nothing")
}
