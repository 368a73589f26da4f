package zuorasim_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestReadmeSession runs the README's curl session: token → product, rate
// plan, charge → order with newAccount → get the subscription → upload
// usage → cancel.
func TestReadmeSession(t *testing.T) {
	t.Parallel()
	fresh := zuorasim.FreshTenant()
	h := newHarness(t, zuorasim.Options{Tenant: &fresh})

	// curl -s $Z/_sim/tenant | jq '.unitsOfMeasure += ["Call"]' | curl -s -X PUT $Z/_sim/tenant -d @-
	// (this test also writes a Seat charge and the custom fields below)
	tn := h.sim.Tenant()
	tn.AddUnits("Call", "Seat")
	tn.Define("Product", zuorasim.CustomField{Name: "GracePeriod__c", Type: "text", Length: 10})
	tn.Define("Account", zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
	require.NoError(t, h.sim.SetTenant(tn))

	// curl -X POST $Z/oauth/token -d client_id=... -d client_secret=... -d grant_type=client_credentials
	form := url.Values{"client_id": {zuorasim.DefaultClientID}, "client_secret": {zuorasim.DefaultClientSecret}, "grant_type": {"client_credentials"}}
	r := h.do("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, 200, r.status, string(r.raw))
	tok := r.obj(t)
	require.Equal(t, "bearer", tok["token_type"])
	require.EqualValues(t, 3599, tok["expires_in"])
	h.token = tok["access_token"].(string)

	r = h.do("POST", "/v1/object/product", `{"Name":"Pro","SKU":"PRO","EffectiveStartDate":"2024-01-01","EffectiveEndDate":"2099-12-31","GracePeriod__c":"7"}`)
	require.Equal(t, 200, r.status, string(r.raw))
	productID := r.obj(t)["Id"].(string)

	r = h.do("POST", "/v1/object/product-rate-plan", `{"Name":"Pro Monthly","ProductId":"`+productID+`","ActiveCurrencies":["USD"]}`)
	require.Equal(t, 200, r.status, string(r.raw))
	planID := r.obj(t)["Id"].(string)

	r = h.do("POST", "/v1/object/product-rate-plan-charge", `{"Name":"Seats","ProductRatePlanId":"`+planID+`","ChargeType":"Recurring",
	 "ChargeModel":"Per Unit Pricing","UOM":"Seat","DefaultQuantity":1,"BillCycleType":"DefaultFromCustomer","BillingPeriod":"Month",
	 "TriggerEvent":"ContractEffective","UseDiscountSpecificAccountingCode":false,
	 "ProductRatePlanChargeTierData":{"ProductRatePlanChargeTier":[{"Currency":"USD","Price":10}]}}`)
	require.Equal(t, 200, r.status, string(r.raw))
	r = h.do("POST", "/v1/object/product-rate-plan-charge", `{"Name":"API calls","ProductRatePlanId":"`+planID+`","ChargeType":"Usage",
	 "ChargeModel":"Per Unit Pricing","UOM":"Call","BillCycleType":"DefaultFromCustomer","BillingPeriod":"Month",
	 "TriggerEvent":"ContractEffective","UseDiscountSpecificAccountingCode":false,
	 "ProductRatePlanChargeTierData":{"ProductRatePlanChargeTier":[{"Currency":"USD","Price":0.01}]}}`)
	require.Equal(t, 200, r.status, string(r.raw))

	r = h.do("POST", "/v1/orders", `{"orderDate":"2025-01-01",
	 "newAccount":{"name":"Acme","currency":"USD","billCycleDay":1,
	   "billToContact":{"firstName":"Ada","lastName":"Lovelace","workEmail":"ada@example.com"},
	   "customFields":{"BillsyncId__c":"cust_1"}},
	 "subscriptions":[{"orderActions":[{"type":"CreateSubscription","createSubscription":{
	   "terms":{"initialTerm":{"termType":"TERMED","period":12,"periodType":"Month"},"renewalSetting":"RENEW_WITH_SPECIFIC_TERM",
	            "renewalTerms":[{"period":12,"periodType":"Month"}],"autoRenew":true},
	   "subscribeToRatePlans":[{"productRatePlanId":"`+planID+`"}]}}]}]}`,
		"Zuora-Version", latest, "Idempotency-Key", "order-acme-1")
	require.Equal(t, 200, r.status, string(r.raw))
	ord := r.obj(t)
	require.Equal(t, true, ord["success"])
	accountNumber := ord["accountNumber"].(string)
	subNumber := ord["subscriptions"].([]any)[0].(map[string]any)["subscriptionNumber"].(string)
	require.True(t, strings.HasPrefix(subNumber, "A-S"))

	sub := h.subscription(subNumber)
	require.Equal(t, "Active", sub["status"])
	calls := chargeByName(sub, "API calls")
	require.NotNil(t, calls)
	chargeNumber := calls["number"].(string)

	r = h.do("POST", "/v1/action/create", `{"type":"Usage","objects":[{"AccountNumber":"`+accountNumber+`","SubscriptionNumber":"`+subNumber+`",
	 "ChargeNumber":"`+chargeNumber+`","UOM":"Call","Quantity":1200,"StartDateTime":"2025-01-15T10:00:00Z","Description":"hour 10"}]}`)
	require.Equal(t, 200, r.status, string(r.raw))
	rows := r.arr(t)
	require.Len(t, rows, 1)
	require.Equal(t, true, rows[0].(map[string]any)["Success"], string(r.raw))

	r = h.do("POST", "/v1/orders", `{"orderDate":"2025-03-01","existingAccountNumber":"`+accountNumber+`",
	 "subscriptions":[{"subscriptionNumber":"`+subNumber+`","orderActions":[{"type":"CancelSubscription",
	   "cancelSubscription":{"cancellationPolicy":"SpecificDate","cancellationEffectiveDate":"2025-03-01"}}]}]}`, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, "Cancelled", r.obj(t)["subscriptions"].([]any)[0].(map[string]any)["status"])

	sub = h.subscription(subNumber)
	require.Equal(t, "Cancelled", sub["status"])
	require.Equal(t, "2025-03-01", sub["subscriptionEndDate"])
	require.Equal(t, chargeNumber, chargeByName(sub, "API calls")["number"], "charge numbers stay stable across versions")
	require.NotEqual(t, calls["id"], chargeByName(sub, "API calls")["id"], "charge ids change per version")
}
