package zuorasim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func TestAccounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()

	r := h.do("POST", "/v1/accounts", map[string]any{"name": "Globex", "currency": "EUR", "billCycleDay": 15, "crmId": "crm-9",
		"billToContact": map[string]any{"firstName": "Hank", "lastName": "Scorpio", "country": "DE"}, "BillsyncId__c": "cust_42"},
		"Zuora-Version", latest, "Idempotency-Key", "acct-globex")
	require.Equal(t, 200, r.status, string(r.raw))
	created := r.obj(t)
	require.Equal(t, true, created["success"])
	id, num := created["accountId"].(string), created["accountNumber"].(string)
	require.Len(t, id, 32)
	require.NotEmpty(t, created["billToContactId"])
	require.NotEmpty(t, created["soldToContactId"], "sold-to is copied from bill-to")

	for _, key := range []string{id, num} {
		r = h.do("GET", "/v1/accounts/"+key, nil, "Zuora-Version", latest)
		require.Equal(t, 200, r.status, string(r.raw))
		a := r.obj(t)
		basic := a["basicInfo"].(map[string]any)
		require.Equal(t, "cust_42", basic["BillsyncId__c"], "custom fields inside basicInfo")
		require.Equal(t, "crm-9", basic["crmId"])
		require.Equal(t, "Active", basic["status"])
		require.EqualValues(t, 15, a["billingAndPayment"].(map[string]any)["billCycleDay"])
		require.Equal(t, "EUR", a["billingAndPayment"].(map[string]any)["currency"])
		require.Equal(t, "Hank", a["soldToContact"].(map[string]any)["firstName"])
	}

	r = h.do("PUT", "/v1/accounts/"+num, map[string]any{"name": "Globex Corp", "BillsyncId__c": "cust_43",
		"billToContact": map[string]any{"city": "Cypress Creek"}}, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["success"])
	a := h.do("GET", "/v1/accounts/"+num, nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, "Globex Corp", a["basicInfo"].(map[string]any)["name"])
	require.Equal(t, "cust_43", a["basicInfo"].(map[string]any)["BillsyncId__c"])
	require.Equal(t, "Cypress Creek", a["billToContact"].(map[string]any)["city"])
	require.Equal(t, "Hank", a["billToContact"].(map[string]any)["firstName"])

	// Duplicate account number → business rule.
	body := map[string]any{"name": "Dup", "currency": "USD", "billCycleDay": 1, "accountNumber": "ACME-1",
		"billToContact": map[string]any{"firstName": "A", "lastName": "B"}}
	require.Equal(t, 200, h.do("POST", "/v1/accounts", body, "Zuora-Version", latest).status)
	r = h.do("POST", "/v1/accounts", body, "Zuora-Version", latest)
	require.Equal(t, 400, r.status)
	require.Regexp(t, `^\d{6}30$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])

	// Missing bill-to contact; unsupported currency; bad BCD.
	r = h.bad("POST", "/v1/accounts", map[string]any{"name": "X", "currency": "USD", "billCycleDay": 1}, "Zuora-Version", latest)
	require.Equal(t, 400, r.status)
	require.Regexp(t, `22$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])
	r = h.do("POST", "/v1/accounts", map[string]any{"name": "X", "currency": "XXX", "billCycleDay": 1,
		"billToContact": map[string]any{"firstName": "A", "lastName": "B"}}, "Zuora-Version", latest)
	require.Equal(t, 400, r.status)
	r = h.do("POST", "/v1/accounts", map[string]any{"name": "X", "currency": "USD", "billCycleDay": 40,
		"billToContact": map[string]any{"firstName": "A", "lastName": "B"}}, "Zuora-Version", latest)
	require.Equal(t, 400, r.status)

	st := h.sim.State()
	require.Len(t, st.Accounts, 2)
	require.Equal(t, "cust_43", st.Accounts[0].CustomFields["BillsyncId__c"])
}

// TestErrorDialects checks the three error shapes and the
// Zuora-Version-dependent HTTP status of CommonResponse errors.
func TestErrorDialects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	tests := []struct {
		name, version string
		status        int
	}{
		{"no header (tenant default 186.0)", "", 200},
		{"legacy 211.0", "211.0", 200},
		{"legacy 341.0", "341.0", 200},
		{"2024-05-20", "2024-05-20", 404},
		{"latest", latest, 404},
	}
	for _, tc := range tests {
		var hdr []string
		if tc.version != "" {
			hdr = []string{"Zuora-Version", tc.version}
		}
		r := h.do("GET", "/v1/accounts/A99999999", nil, hdr...)
		require.Equal(t, tc.status, r.status, tc.name)
		m := r.obj(t)
		require.Equal(t, false, m["success"], tc.name)
		reasons := m["reasons"].([]any)
		code := reasons[0].(map[string]any)["code"].(string)
		require.Regexp(t, `^\d{8}$`, code, tc.name)
		require.Equal(t, "50000040", code, "GET without body reports resource 500000, category 40")
		require.Len(t, m["requestId"], 36)
		require.NotEmpty(t, m["processId"])
	}
	// Business rule on an order: 200 on a legacy version, 400 on 2024-05-20+.
	order := map[string]any{"orderDate": "2025-01-01", "existingAccountNumber": "A-NOPE",
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction("8ad0none")}}}}
	r := h.do("POST", "/v1/orders", order, "Zuora-Version", "211.0")
	require.Equal(t, 200, r.status)
	require.Equal(t, false, r.obj(t)["success"])
	r = h.do("POST", "/v1/orders", order, "Zuora-Version", "2024-05-20")
	require.Equal(t, 400, r.status)
	require.Regexp(t, `^53100020$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])

	// CRUD dialect: 400 ProxyBadRequestResponse regardless of version.
	r = h.bad("POST", "/v1/object/product", map[string]any{"Name": "x"}, "Zuora-Version", "211.0")
	require.Equal(t, 400, r.status)
	require.Equal(t, false, r.obj(t)["success"])
	require.Equal(t, "MISSING_REQUIRED_VALUE", r.obj(t)["errors"].([]any)[0].(map[string]any)["code"])

	// Actions dialect: HTTP 200 array of SaveResult with capitalised keys.
	r = h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": []any{map[string]any{"AccountNumber": "A-NOPE",
		"UOM": "Call", "Quantity": 1, "StartDateTime": "2025-01-01T00:00:00Z"}}})
	require.Equal(t, 200, r.status)
	row := r.arr(t)[0].(map[string]any)
	require.Equal(t, false, row["Success"])
	require.Equal(t, "INVALID_VALUE", row["Errors"].([]any)[0].(map[string]any)["Code"])

	// Event/notification dialect: ErrorResponse with a real status.
	r = h.do("GET", "/events/event-triggers/00000000-0000-0000-0000-000000000000", nil)
	require.Equal(t, 404, r.status)
	require.NotContains(t, r.obj(t), "success")
	require.NotEmpty(t, r.obj(t)["reasons"])
}
