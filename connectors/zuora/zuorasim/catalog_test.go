package zuorasim_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func TestCatalogCRUD(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Starter")

	// GET product: PascalCase, custom field kept.
	r := h.do("GET", "/v1/object/product/"+c.productID, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	p := r.obj(t)
	require.Equal(t, "Starter", p["Name"])
	require.Equal(t, "7", p["GracePeriod__c"])
	require.Equal(t, c.productID, p["Id"])

	// fields= narrows the answer.
	r = h.do("GET", "/v1/object/product/"+c.productID+"?fields=Name", nil)
	require.Equal(t, 200, r.status)
	require.NotContains(t, r.obj(t), "SKU")

	// PUT product.
	r = h.do("PUT", "/v1/object/product/"+c.productID, map[string]any{"Description": "Entry plan", "GracePeriod__c": "14"})
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["Success"])
	r = h.do("GET", "/v1/object/product/"+c.productID, nil)
	require.Equal(t, "14", r.obj(t)["GracePeriod__c"])
	require.Equal(t, "Entry plan", r.obj(t)["Description"])

	// Plan GET/PUT.
	r = h.do("GET", "/v1/object/product-rate-plan/"+c.planID, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, c.productID, r.obj(t)["ProductId"])
	r = h.do("PUT", "/v1/object/product-rate-plan/"+c.planID, map[string]any{"Description": "monthly"})
	require.Equal(t, 200, r.status, string(r.raw))

	// Charge GET/PUT (the spec requires the core fields on update too).
	r = h.do("GET", "/v1/object/product-rate-plan-charge/"+c.unitID, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	ch := r.obj(t)
	require.Equal(t, "Per Unit Pricing", ch["ChargeModel"])
	require.Equal(t, "Seat", ch["UOM"])
	r = h.do("PUT", "/v1/object/product-rate-plan-charge/"+c.unitID, map[string]any{"Name": "Seats", "ProductRatePlanId": c.planID,
		"ChargeModel": "Per Unit Pricing", "BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective",
		"UOM": "Seat", "UseDiscountSpecificAccountingCode": false,
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{map[string]any{"Currency": "USD", "Price": 12}}}})
	require.Equal(t, 200, r.status, string(r.raw))
	r = h.bad("PUT", "/v1/object/product-rate-plan-charge/"+c.unitID, map[string]any{"Name": "Seats"})
	require.Equal(t, 400, r.status, "a partial charge PUT misses the spec's required fields")
	require.Equal(t, "MISSING_REQUIRED_VALUE", r.obj(t)["errors"].([]any)[0].(map[string]any)["code"])

	// Tiers: find the tier id through the state snapshot, then PUT/GET it.
	var tierID string
	for _, cs := range h.sim.State().Charges {
		if cs.ID == c.unitID {
			require.Len(t, cs.Tiers, 1)
			require.Equal(t, "12", cs.Tiers[0].Price.String())
			tierID = cs.Tiers[0].ID
		}
	}
	r = h.do("PUT", "/v1/object/product-rate-plan-charge-tier/"+tierID, map[string]any{"Price": 15})
	require.Equal(t, 200, r.status, string(r.raw))
	r = h.do("GET", "/v1/object/product-rate-plan-charge-tier/"+tierID, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	require.EqualValues(t, 15, r.obj(t)["Price"])

	// REST reads.
	r = h.do("GET", "/v1/catalog/products/"+c.productID, nil, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	cp := r.obj(t)
	require.Equal(t, "14", cp["GracePeriod__c"], "custom fields top-level in catalog reads")
	require.Equal(t, "/v1/rateplan/"+c.productID+"/productRatePlan", cp["productRatePlans"])
	r = h.do("GET", "/v1/catalog/products/"+cp["productNumber"].(string), nil, "Zuora-Version", "211.0")
	require.Equal(t, 200, r.status, string(r.raw))
	plans, ok := r.obj(t)["productRatePlans"].([]any)
	require.True(t, ok, "embedded rate plans before 230.0")
	require.Len(t, plans, 1)

	r = h.do("GET", "/v1/products/"+c.productID+"/product-rate-plans", nil, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	prps := r.obj(t)["productRatePlans"].([]any)
	require.Len(t, prps, 1)
	prp := prps[0].(map[string]any)
	require.Equal(t, "Active", prp["status"])
	byName := map[string]map[string]any{}
	for _, x := range prp["productRatePlanCharges"].([]any) {
		byName[x.(map[string]any)["name"].(string)] = x.(map[string]any)
	}
	require.Equal(t, "FlatFee", byName["Base fee"]["model"])
	require.Equal(t, "PerUnit", byName["Seats"]["model"])
	require.Equal(t, "IN_ADVANCE", byName["Seats"]["billingTiming"])
	require.Equal(t, "Per_Billing_Period", byName["Seats"]["listPriceBase"])
	require.Equal(t, "Subscription_End", byName["Seats"]["endDateCondition"])
	require.Equal(t, "IN_ARREARS", byName["API calls"]["billingTiming"])
	pricing := byName["Seats"]["pricing"].([]any)[0].(map[string]any)
	require.Equal(t, "15", pricing["price"])

	// The non-spec URL that the catalog returns also works.
	r = h.do("GET", "/v1/rateplan/"+c.productID+"/productRatePlan", nil)
	require.Equal(t, 200, r.status, string(r.raw))

	// Paging: pageSize 1 over two products.
	h.seedCatalog("Growth")
	r = h.do("GET", "/v1/catalog/products?page=1&pageSize=1", nil, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	m := r.obj(t)
	require.Len(t, m["products"].([]any), 1)
	require.Contains(t, m["nextPage"], "page=2")
	r = h.do("GET", "/v1/catalog/products?page=2&pageSize=1", nil, "Zuora-Version", latest)
	require.Len(t, r.obj(t)["products"].([]any), 1)
	require.NotContains(t, r.obj(t), "nextPage")

	// Deletes: a charge, then the product with its plans.
	r = h.do("DELETE", "/v1/object/product-rate-plan-charge/"+c.usageID, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["success"])
	r = h.do("DELETE", "/v1/object/product/"+c.productID, nil)
	require.Equal(t, 200, r.status, string(r.raw))
	r = h.do("GET", "/v1/object/product/"+c.productID, nil)
	require.Equal(t, 404, r.status)
	require.Equal(t, map[string]any{"done": true, "records": []any{}, "size": float64(0)}, r.obj(t))
	r = h.do("GET", "/v1/object/product-rate-plan/"+c.planID, nil)
	require.Equal(t, 404, r.status)
}

func TestCatalogValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Validation")
	chargeBase := func() map[string]any {
		return map[string]any{"Name": "X", "ProductRatePlanId": c.planID, "ChargeType": "Recurring", "ChargeModel": "Per Unit Pricing",
			"UOM": "Seat", "BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective",
			"UseDiscountSpecificAccountingCode": false,
			"ProductRatePlanChargeTierData":     map[string]any{"ProductRatePlanChargeTier": []any{map[string]any{"Currency": "USD", "Price": 1}}}}
	}
	tests := []struct {
		name   string
		path   string
		body   any
		code   string
		status int
	}{
		{"product missing Name", "/v1/object/product", map[string]any{"EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"}, "MISSING_REQUIRED_VALUE", 400},
		{"product bad date", "/v1/object/product", map[string]any{"Name": "x", "EffectiveStartDate": "01/01/2020", "EffectiveEndDate": "2030-01-01"}, "INVALID_VALUE", 400},
		{"plan unknown product", "/v1/object/product-rate-plan", map[string]any{"Name": "x", "ProductId": "8ad0nope"}, "INVALID_VALUE", 400},
		{"charge bad enum", "/v1/object/product-rate-plan-charge", with(chargeBase(), "BillingPeriod", "Monthly"), "INVALID_VALUE", 400},
		{"charge missing UOM", "/v1/object/product-rate-plan-charge", with(chargeBase(), "UOM", nil), "MISSING_REQUIRED_VALUE", 400},
		{"charge missing tier data", "/v1/object/product-rate-plan-charge", with(chargeBase(), "ProductRatePlanChargeTierData", nil), "MISSING_REQUIRED_VALUE", 400},
		{"charge specific day needs BillCycleDay", "/v1/object/product-rate-plan-charge", with(chargeBase(), "BillCycleType", "SpecificDayofMonth"), "MISSING_REQUIRED_VALUE", 400},
	}
	for _, tc := range tests {
		r := h.bad("POST", tc.path, tc.body)
		require.Equal(t, tc.status, r.status, tc.name+": "+string(r.raw))
		errs := r.obj(t)["errors"].([]any)
		require.Equal(t, tc.code, errs[0].(map[string]any)["code"], tc.name)
	}
	// A quoted decimal is rejected (bare numbers only in CRUD bodies). The
	// spec forbids it too, so it is sent around the validating transport.
	res := h.bad("POST", "/v1/object/product-rate-plan-charge", strings.Replace(mustJSON(chargeBase()), `"Price":1`, `"Price":"1"`, 1))
	require.Equal(t, 400, res.status, string(res.raw))

	// rejectUnknownFields=true.
	r := h.do("POST", "/v1/object/product?rejectUnknownFields=true", map[string]any{"Name": "x", "EffectiveStartDate": "2020-01-01",
		"EffectiveEndDate": "2030-01-01", "Colour": "red"})
	require.Equal(t, 400, r.status)
	require.Equal(t, "Error - unrecognised fields", r.obj(t)["message"])
	// Unknown fields are ignored by default.
	r = h.do("POST", "/v1/object/product", map[string]any{"Name": "x", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01", "Colour": "red"})
	require.Equal(t, 200, r.status)
	// Duplicate SKU.
	r = h.do("POST", "/v1/object/product", map[string]any{"Name": "y", "SKU": "DUP", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"})
	require.Equal(t, 200, r.status)
	r = h.do("POST", "/v1/object/product", map[string]any{"Name": "z", "SKU": "DUP", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"})
	require.Equal(t, 400, r.status)
	require.Equal(t, "DUPLICATE_VALUE", r.obj(t)["errors"].([]any)[0].(map[string]any)["code"])
	// Deleting a plan used by a subscription is refused.
	h.newOrder(c, "InUse")
	r = h.do("DELETE", "/v1/object/product-rate-plan/"+c.planID, nil)
	require.Equal(t, 400, r.status, string(r.raw))
}

func with(m map[string]any, k string, v any) map[string]any {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	return m
}
