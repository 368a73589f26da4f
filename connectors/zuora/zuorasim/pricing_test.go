package zuorasim_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func restCode(t *testing.T, r reply) string {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
	return r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"].(string)
}

// TestPricingKeysFitTheCharge: an order's pricing member must fit the
// charge's type and model, and an update's pricing only has
// CreateOrderPricingUpdate's members; effectiveDate with a specific date
// needs triggerEvent SpecificDate.
func TestPricingKeysFitTheCharge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Keys")
	// Subscribe with the wrong member: oneTimePerUnit on a recurring per-unit charge.
	bad := createSubscriptionAction(c.planID, map[string]any{"chargeOverrides": []any{map[string]any{"productRatePlanChargeId": c.unitID,
		"pricing": map[string]any{"oneTimePerUnit": map[string]any{"quantity": 3}}}}})
	r := h.order(map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("K1"),
		"subscriptions": []any{map[string]any{"orderActions": []any{bad}}}})
	require.Equal(t, "53100020", restCode(t, r))
	require.Contains(t, string(r.raw), "pricing.oneTimePerUnit does not fit the Recurring PerUnit charge")
	require.Contains(t, string(r.raw), "use pricing.recurringPerUnit")
	require.Empty(t, h.sim.State().Accounts, "the order changed nothing")

	acct, subNum := h.newOrder(c, "K2")
	sub := h.subscription(subNum)
	update := func(cu map[string]any) reply {
		return h.order(existing(acct, subNum, map[string]any{"type": "UpdateProduct", "updateProduct": map[string]any{
			"ratePlanId": ratePlans(sub)[0]["id"], "chargeUpdates": []any{cu}}}))
	}
	seats := chargeByName(sub, "Seats")["number"]
	r = update(map[string]any{"chargeNumber": seats, "pricing": map[string]any{"recurringVolume": map[string]any{"quantity": 4}}})
	require.Contains(t, string(r.raw), "pricing.recurringVolume does not fit", restCode(t, r))
	r = update(map[string]any{"chargeNumber": seats, "pricing": map[string]any{"oneTimePerUnit": map[string]any{"quantity": 4}}})
	require.Contains(t, string(r.raw), "not a field of an update's pricing (CreateOrderPricingUpdate)", restCode(t, r))
	r = update(map[string]any{"chargeNumber": seats, "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 4}},
		"effectiveDate": map[string]any{"specificTriggerDate": "2025-02-01"}})
	require.Contains(t, string(r.raw), "needs triggerEvent SpecificDate", restCode(t, r))
	r = update(map[string]any{"chargeNumber": seats, "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 4}},
		"effectiveDate": map[string]any{"triggerEvent": "SpecificDate"}})
	require.Contains(t, string(r.raw), "specificTriggerDate", restCode(t, r))

	// The right request passes.
	r = update(map[string]any{"chargeNumber": seats, "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 4}},
		"effectiveDate": map[string]any{"triggerEvent": "SpecificDate", "specificTriggerDate": "2025-02-01"}})
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["success"], string(r.raw))
}

// TestTierRanges: tiers are inclusive ranges (StartingUnit 101 after
// EndingUnit 100); overlapping or gapped tiers are refused.
func TestTierRanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Tiers")
	tiers := func(ts ...map[string]any) map[string]any {
		list := make([]any, 0, len(ts))
		for _, x := range ts {
			x["Currency"] = "USD"
			x["PriceFormat"] = "Per Unit"
			list = append(list, x)
		}
		return map[string]any{"Name": "Calls", "ProductRatePlanId": c.planID, "ChargeType": "Usage", "ChargeModel": "Tiered Pricing", "UOM": "Call",
			"BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective", "UseDiscountSpecificAccountingCode": false,
			"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": list}}
	}
	post := func(body map[string]any) reply { return h.do("POST", "/v1/object/product-rate-plan-charge", body) }
	r := post(tiers(map[string]any{"StartingUnit": 0, "EndingUnit": 100, "Price": 0}, map[string]any{"StartingUnit": 100, "Price": 0.01}))
	require.Equal(t, "INVALID_VALUE", crudErrCode(t, r))
	require.Contains(t, string(r.raw), "overlap")
	r = post(tiers(map[string]any{"StartingUnit": 0, "EndingUnit": 100, "Price": 0}, map[string]any{"StartingUnit": 150, "Price": 0.01}))
	require.Contains(t, string(r.raw), "gap", crudErrCode(t, r))
	r = post(tiers(map[string]any{"StartingUnit": 0, "Price": 0}, map[string]any{"StartingUnit": 101, "Price": 0.01}))
	require.Contains(t, string(r.raw), "EndingUnit", crudErrCode(t, r))
	r = post(tiers(map[string]any{"StartingUnit": 0, "EndingUnit": 100, "Price": 0}, map[string]any{"StartingUnit": 101, "EndingUnit": 1000, "Price": 0.01},
		map[string]any{"StartingUnit": 1001, "Price": 0.005}))
	require.Equal(t, 200, r.status, string(r.raw))
}
