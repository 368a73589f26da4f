package zuorasim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestDiscountChargeRules: the simulator refuses the discount charges
// Zuora refuses (docs/zuora-rules.md, "Discounts"), takes the ones billsync
// sends, and refuses an order that subscribes to an account-level discount.
func TestDiscountChargeRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Discounts")
	r := h.do("POST", "/v1/object/product-rate-plan", map[string]any{"Name": "Coupon", "ProductId": c.productID, "ActiveCurrencies": []string{"USD"}})
	require.Equal(t, 200, r.status, string(r.raw))
	couponPlan := r.obj(t)["Id"].(string)
	tier := func(k string, v any) map[string]any {
		return map[string]any{"ProductRatePlanChargeTier": []any{map[string]any{"Currency": "USD", k: v}}}
	}
	base := func(model string, td map[string]any) map[string]any {
		return map[string]any{"Name": "Off", "ProductRatePlanId": couponPlan, "ChargeType": "Recurring", "ChargeModel": model,
			"BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective",
			"UseDiscountSpecificAccountingCode": false, "DiscountLevel": "subscription", "ApplyDiscountTo": "RECURRING (2)",
			"EndDateCondition": "FixedPeriod", "UpToPeriods": 3, "UpToPeriodsType": "Billing Periods", "ProductRatePlanChargeTierData": td}
	}
	pct := func() map[string]any { return base("Discount-Percentage", tier("DiscountPercentage", 20)) }
	fixed := func() map[string]any { return base("Discount-Fixed Amount", tier("DiscountAmount", 10)) }
	bad := []struct {
		name string
		body map[string]any
		code string
	}{
		{"usage discount", with(pct(), "ChargeType", "Usage"), "INVALID_VALUE"},
		{"no DiscountLevel", with(pct(), "DiscountLevel", nil), "MISSING_REQUIRED_VALUE"},
		{"bad DiscountLevel", with(pct(), "DiscountLevel", "charge"), "INVALID_VALUE"},
		{"no ApplyDiscountTo", with(pct(), "ApplyDiscountTo", nil), "MISSING_REQUIRED_VALUE"},
		{"bad ApplyDiscountTo", with(pct(), "ApplyDiscountTo", "EVERYTHING"), "INVALID_VALUE"},
		{"bare ApplyDiscountTo", with(pct(), "ApplyDiscountTo", "RECURRING"), "INVALID_VALUE"},
		{"percentage 100", with(pct(), "ProductRatePlanChargeTierData", tier("DiscountPercentage", 100)), "INVALID_VALUE"},
		{"percentage missing", with(pct(), "ProductRatePlanChargeTierData", tier("Price", 20)), "MISSING_REQUIRED_VALUE"},
		{"amount on a percentage", with(pct(), "ProductRatePlanChargeTierData", tier("DiscountAmount", 20)), "INVALID_VALUE"},
		{"amount zero", with(fixed(), "ProductRatePlanChargeTierData", tier("DiscountAmount", 0)), "INVALID_VALUE"},
		{"amount missing", with(fixed(), "ProductRatePlanChargeTierData", tier("DiscountPercentage", 5)), "INVALID_VALUE"},
		{"fixed period without periods", with(fixed(), "UpToPeriods", nil), "MISSING_REQUIRED_VALUE"},
		{"scope on a flat fee", map[string]any{"Name": "Fee", "ProductRatePlanId": couponPlan, "ChargeType": "Recurring", "ChargeModel": "Flat Fee Pricing",
			"BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective", "UseDiscountSpecificAccountingCode": false,
			"DiscountLevel": "subscription", "ProductRatePlanChargeTierData": tier("Price", 5)}, "INVALID_VALUE"},
	}
	for _, tc := range bad {
		r := h.bad("POST", "/v1/object/product-rate-plan-charge", tc.body)
		require.Equal(t, 400, r.status, tc.name+": "+string(r.raw))
		require.Equal(t, tc.code, r.obj(t)["errors"].([]any)[0].(map[string]any)["code"], tc.name+": "+string(r.raw))
	}
	for _, ok := range []map[string]any{pct(), fixed(), with(pct(), "ApplyDiscountTo", "ONETIMERECURRINGUSAGE (7)")} {
		r := h.do("POST", "/v1/object/product-rate-plan-charge", ok)
		require.Equal(t, 200, r.status, string(r.raw))
		require.Equal(t, true, r.obj(t)["Success"], string(r.raw))
	}

	// Orders do not support account-level discounts.
	r = h.do("POST", "/v1/object/product-rate-plan", map[string]any{"Name": "Account coupon", "ProductId": c.productID, "ActiveCurrencies": []string{"USD"}})
	require.Equal(t, 200, r.status, string(r.raw))
	acctPlan := r.obj(t)["Id"].(string)
	acctLevel := with(with(pct(), "DiscountLevel", "account"), "ProductRatePlanId", acctPlan)
	r = h.do("POST", "/v1/object/product-rate-plan-charge", acctLevel)
	require.Equal(t, 200, r.status, "the catalog takes an account-level discount: %s", r.raw)
	r = h.order(map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("AcctDiscount"),
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(acctPlan)}}}})
	require.Equal(t, false, r.obj(t)["success"], string(r.raw))
	require.Contains(t, string(r.raw), "account-level discounts")
	r = h.order(map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("SubDiscount"),
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(couponPlan)}}}})
	require.Equal(t, true, r.obj(t)["success"], "a subscription-level discount rate plan is fine: %s", r.raw)
}
