package zuorasim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestOrderPreviewRules: an order preview prices the order and changes
// nothing (its answer checked against the OpenAPI file by the harness), and
// the simulator refuses the previews Zuora refuses.
func TestOrderPreviewRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Preview")
	acct, sub := h.newOrder(c, "Previewed")
	before := h.subscription(sub)
	opts := map[string]any{"previewThruType": "SpecificDate", "previewTypes": []any{"BillingDocs"}, "specificPreviewThruDate": "2025-01-31"}
	body := func(extra map[string]any) map[string]any {
		m := map[string]any{"orderDate": "2025-01-01", "previewOptions": opts,
			"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	r := h.do("POST", "/v1/orders/preview", body(map[string]any{"existingAccountNumber": acct}), "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	res := r.obj(t)
	require.Equal(t, true, res["success"], string(r.raw))
	inv := res["previewResult"].(map[string]any)["invoices"].([]any)[0].(map[string]any)
	require.EqualValues(t, 59, inv["amount"], "base fee 49 + one seat at 10: %s", r.raw)
	r = h.do("POST", "/v1/orders/preview", body(map[string]any{"previewAccountInfo": map[string]any{"currency": "EUR", "billCycleDay": 1}}), "Zuora-Version", latest)
	require.Equal(t, true, r.obj(t)["success"], string(r.raw))
	inv = r.obj(t)["previewResult"].(map[string]any)["invoices"].([]any)[0].(map[string]any)
	require.EqualValues(t, 54, inv["amount"], "in EUR: 45 + 9: %s", r.raw)
	r = h.do("POST", "/v1/subscriptions/"+sub+"/preview", map[string]any{
		"previewStartDate":   map[string]any{"previewStartDatePolicy": "specificDate", "specificDate": "2025-01-01"},
		"previewThroughDate": map[string]any{"previewThruDatePolicy": "nextBillingPeriods", "nextBillingPeriods": 2}}, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	inv = r.obj(t)["invoices"].([]any)[0].(map[string]any)
	require.EqualValues(t, 118, inv["amount"], "two months: %s", r.raw)

	bad := []struct {
		name string
		body map[string]any
	}{
		{"no previewOptions", body(map[string]any{"existingAccountNumber": acct, "previewOptions": nil})},
		{"no account", body(nil)},
		{"both accounts", body(map[string]any{"existingAccountNumber": acct, "previewAccountInfo": map[string]any{"currency": "USD", "billCycleDay": 1}})},
		{"newAccount", body(map[string]any{"newAccount": newAccountBody("Nope")})},
		{"no thru date", body(map[string]any{"existingAccountNumber": acct, "previewOptions": map[string]any{"previewThruType": "SpecificDate", "previewTypes": []any{"BillingDocs"}}})},
		{"no preview types", body(map[string]any{"existingAccountNumber": acct, "previewOptions": map[string]any{"previewThruType": "SpecificDate", "specificPreviewThruDate": "2025-01-31"}})},
		{"account info without bill cycle day", body(map[string]any{"previewAccountInfo": map[string]any{"currency": "USD"}})},
	}
	for _, tc := range bad {
		r := h.bad("POST", "/v1/orders/preview", tc.body, "Zuora-Version", latest)
		require.Equal(t, false, r.obj(t)["success"], tc.name+": "+string(r.raw))
	}
	require.Equal(t, before, h.subscription(sub), "previews change nothing")
	r = h.do("GET", "/v1/subscriptions/accounts/"+acct, nil, "Zuora-Version", latest)
	require.Len(t, r.obj(t)["subscriptions"], 1, "no subscription was created")
}
