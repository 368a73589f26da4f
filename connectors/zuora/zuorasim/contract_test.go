package zuorasim_test

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/connectors/zuora/zuoraspec"
)

// TestContract drives every operation the simulator serves through the
// validating transport and checks that each one that exists in Zuora's
// OpenAPI file was validated at least once.
func TestContract(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Contract")
	v := h.sim.State()
	var tierID string
	for _, ch := range v.Charges {
		if ch.ID == c.flatID {
			tierID = ch.Tiers[0].ID
		}
	}
	ok := func(r reply) reply { t.Helper(); require.Less(t, r.status, 300, string(r.raw)); return r }

	ok(h.do("GET", "/v1/object/product/"+c.productID, nil))
	ok(h.do("PUT", "/v1/object/product/"+c.productID, map[string]any{"Description": "d"}))
	ok(h.do("GET", "/v1/object/product-rate-plan/"+c.planID, nil))
	ok(h.do("PUT", "/v1/object/product-rate-plan/"+c.planID, map[string]any{"Description": "d"}))
	ok(h.do("GET", "/v1/object/product-rate-plan-charge/"+c.flatID, nil))
	ok(h.do("PUT", "/v1/object/product-rate-plan-charge/"+c.flatID, map[string]any{"ProductRatePlanId": c.planID, "ChargeModel": "Flat Fee Pricing",
		"BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month", "TriggerEvent": "ContractEffective", "UseDiscountSpecificAccountingCode": false,
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{map[string]any{"Currency": "USD", "Price": 50}, map[string]any{"Currency": "EUR", "Price": 45}}}}))
	for _, ch := range h.sim.State().Charges {
		if ch.ID == c.flatID {
			tierID = ch.Tiers[0].ID
		}
	}
	ok(h.do("GET", "/v1/object/product-rate-plan-charge-tier/"+tierID, nil))
	ok(h.do("PUT", "/v1/object/product-rate-plan-charge-tier/"+tierID, map[string]any{"Price": 55}))
	ok(h.do("GET", "/v1/catalog/products", nil, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/catalog/products", nil))
	ok(h.do("GET", "/v1/catalog/products/"+c.productID, nil, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/products/"+c.productID+"/product-rate-plans", nil, "Zuora-Version", latest))

	r := ok(h.do("POST", "/v1/accounts", map[string]any{"name": "Contract", "currency": "USD", "billCycleDay": 1,
		"billToContact": map[string]any{"firstName": "C", "lastName": "T"}, "BillsyncId__c": "c1"}, "Zuora-Version", latest))
	acctNum := r.obj(t)["accountNumber"].(string)
	ok(h.do("GET", "/v1/accounts/"+acctNum, nil, "Zuora-Version", latest))
	ok(h.do("PUT", "/v1/accounts/"+acctNum, map[string]any{"notes": "n"}, "Zuora-Version", latest))
	ok(h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "Account", "condition": "changeType == 'INSERT'",
		"eventType": map[string]any{"name": "AccountCreated", "displayName": "Account Created"}}))
	rc := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rc.Close()
	d := ok(h.do("POST", "/notifications/notification-definitions", map[string]any{"name": "n", "eventTypeName": "AccountCreated", "calloutActive": true,
		"callout": map[string]any{"name": "c", "calloutBaseurl": rc.URL, "httpMethod": "POST", "requiredAuth": true,
			"calloutAuth": map[string]any{"username": "u", "password": "p", "preemptive": true}, "calloutParams": map[string]any{"Id": "{{Account.Id}}"}}})).obj(t)
	tpl := ok(h.do("POST", "/notifications/callout-templates", map[string]any{"name": "tpl", "eventTypeName": "AccountCreated",
		"calloutBaseurl": rc.URL, "httpMethod": "POST", "requiredAuth": true, "calloutAuth": map[string]any{"username": "u", "password": "p", "preemptive": true},
		"calloutParams": map[string]any{"Id": "{{Account.Id}}"}})).obj(t)
	ok(h.do("GET", "/notifications/callout-templates", nil))
	ok(h.do("GET", "/notifications/callout-templates/"+tpl["id"].(string), nil))
	ok(h.do("PUT", "/notifications/callout-templates/"+tpl["id"].(string), map[string]any{"calloutBaseurl": rc.URL + "/v2", "active": true}))
	ok(h.do("POST", "/notifications/notification-definitions", map[string]any{"name": "n2", "eventTypeName": "AccountCreated", "calloutActive": true,
		"calloutTemplateIds": []string{tpl["id"].(string)}}))
	ok(h.do("GET", "/notifications/notification-definitions", nil))
	ok(h.do("GET", "/notifications/notification-definitions/"+d["id"].(string), nil))
	trs := ok(h.do("GET", "/events/event-triggers", nil)).obj(t)["data"].([]any)
	trID := trs[0].(map[string]any)["id"].(string)
	ok(h.do("GET", "/events/event-triggers/"+trID, nil))

	acct2, subNum := h.newOrder(c, "ContractCo")
	sub := h.subscription(subNum)
	ok(h.order(existing(acct2, subNum, map[string]any{"type": "UpdateProduct", "updateProduct": map[string]any{"ratePlanId": ratePlans(sub)[0]["id"],
		"chargeUpdates": []any{map[string]any{"chargeNumber": chargeByName(sub, "Seats")["number"],
			"pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 3}}}}}})))
	ok(h.do("GET", "/v1/subscriptions/"+subNum+"?charge-detail=all-segments", nil, "Zuora-Version", latest))
	ok(h.order(scheduled(existing(acct2, subNum, map[string]any{"type": "RemoveProduct", "removeProduct": map[string]any{"ratePlanId": ratePlans(sub)[0]["id"]}}), "2099-01-01")))
	so := ok(h.do("GET", "/v1/orders/subscription/"+subNum+"?status=scheduled", nil, "Zuora-Version", latest)).obj(t)["orders"].([]any)
	soNum := so[0].(map[string]any)["orderNumber"].(string)
	ok(h.do("GET", "/v1/orders/"+soNum, nil, "Zuora-Version", latest))
	ok(h.do("PUT", "/v1/orders/"+soNum+"/cancel", map[string]any{"cancelReason": "contract"}, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/subscriptions/"+subNum+"/versions/1", nil, "Zuora-Version", latest))
	// Previews (preview.go): an order preview and a subscription preview.
	ok(h.do("POST", "/v1/orders/preview", map[string]any{"orderDate": "2025-01-01", "existingAccountNumber": acct2,
		"previewOptions": map[string]any{"previewThruType": "SpecificDate", "previewTypes": []any{"BillingDocs"}, "specificPreviewThruDate": "2025-02-28"},
		"subscriptions":  []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}, "Zuora-Version", latest))
	ok(h.do("POST", "/v1/subscriptions/"+subNum+"/preview", map[string]any{
		"previewStartDate":   map[string]any{"previewStartDatePolicy": "specificDate", "specificDate": "2025-01-01"},
		"previewThroughDate": map[string]any{"previewThruDatePolicy": "specificDate", "specificDate": "2025-02-28"}}, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/subscriptions/accounts/"+acct2, nil, "Zuora-Version", latest))
	before := h.subscription(subNum)["version"]
	ok(h.do("PUT", "/v1/subscriptions/"+subNum+"/customFields", map[string]any{"customFields": map[string]any{"BillsyncId__c": "s-1"}}, "Zuora-Version", latest))
	require.Equal(t, "s-1", h.subscription(subNum)["BillsyncId__c"], "changed in place")
	require.EqualValues(t, before, h.subscription(subNum)["version"], "no new version")
	undefined := h.do("PUT", "/v1/subscriptions/"+subNum+"/customFields", map[string]any{"customFields": map[string]any{"Nope__c": "x"}}, "Zuora-Version", latest)
	require.NotEqual(t, 200, undefined.status, "a field the tenant does not define on Subscription is refused: %s", undefined.raw)
	ok(h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": []any{map[string]any{"AccountNumber": acct2,
		"SubscriptionNumber": subNum, "ChargeNumber": chargeByName(sub, "API calls")["number"], "UOM": "Call", "Quantity": 5,
		"StartDateTime": "2025-01-02T00:00:00Z"}}}))
	ok(h.do("GET", "/v1/usage/accounts/"+acct2, nil, "Zuora-Version", latest))
	file, ct := usageFile(t, "contract.csv", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE\n"+acct2+",Call,1,01/02/2025,\n")
	imp := ok(h.do("POST", "/v1/usage", file, "Content-Type", ct, "Zuora-Version", latest)).obj(t)
	ok(h.do("GET", imp["checkImportStatus"].(string), nil, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/rateplan/"+c.productID+"/productRatePlan", nil))
	ok(h.do("GET", "/object-query/accounts?filter[]=status.EQ:Active", nil))
	ok(h.do("GET", "/object-query/subscriptions?filter[]=islatestversion.EQ:true", nil))
	ok(h.do("GET", "/object-query/rate-plan-charges?filter[]=chargenumber.IN:["+chargeByName(sub, "API calls")["number"].(string)+"]", nil))
	runs, err := h.sim.BillRun("2025-02-01", acct2)
	require.NoError(t, err)
	_, err = h.sim.AddPaymentMethod(acct2, zuorasim.PaymentMethodRequest{})
	require.NoError(t, err)
	pay, err := h.sim.Pay(zuorasim.PaymentRequest{Invoice: runs[0].InvoiceNumber, Failed: true})
	require.NoError(t, err)
	ok(h.do("GET", "/v1/invoices/"+runs[0].InvoiceNumber, nil, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/payments/"+pay.PaymentID, nil, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/accounts/"+acct2+"/payment-methods", nil, "Zuora-Version", latest))
	ok(h.do("GET", "/object-query/invoices?filter[]=status.EQ:Posted", nil))
	memo := ok(h.do("POST", "/v1/credit-memos", map[string]any{"accountNumber": acct2, "autoPost": true, "comment": "c",
		"charges": []any{map[string]any{"productRatePlanChargeId": c.flatID, "amount": 5}}}, "Zuora-Version", latest)).obj(t)
	ok(h.do("GET", "/v1/credit-memos/"+memo["number"].(string), nil, "Zuora-Version", latest))
	ok(h.do("GET", "/v1/credit-memos?accountNumber="+acct2, nil, "Zuora-Version", latest))
	wo := ok(h.order(map[string]any{"orderDate": "2025-02-01", "existingAccountNumber": acct2,
		"processingOptions": map[string]any{"runBilling": false, "collectPayment": false, "writeOff": true},
		"subscriptions": []any{map[string]any{"subscriptionNumber": subNum, "orderActions": []any{map[string]any{"type": "CancelSubscription",
			"triggerDates":       []any{map[string]any{"name": "ContractEffective", "triggerDate": "2025-02-01"}},
			"cancelSubscription": map[string]any{"cancellationPolicy": "SpecificDate", "cancellationEffectiveDate": "2025-02-01"}}}}}})).obj(t)
	require.Len(t, wo["writeOff"], 1, "the unpaid invoice is written off: %v", wo)
	ok(h.do("GET", "/object-query/payments?filter[]=status.EQ:Error", nil))
	ok(h.do("DELETE", "/notifications/notification-definitions/"+d["id"].(string), nil))
	ok(h.do("DELETE", "/events/event-triggers/"+trID, nil))
	extra := h.seedCatalog("Disposable")
	ok(h.do("DELETE", "/v1/object/product-rate-plan-charge/"+extra.usageID, nil))
	ok(h.do("DELETE", "/v1/object/product-rate-plan/"+extra.planID, nil))
	ok(h.do("DELETE", "/v1/object/product/"+extra.productID, nil))
	h.sim.WaitCallouts()

	// Every simulator operation that exists in the spec must have been validated.
	spec := zuoraspec.Load(t)
	ok(h.do("GET", "/v1/describe/Account", nil))
	ok(h.do("GET", "/v1/describe/Product", nil))
	ok(h.do("GET", "/settings/listing", nil))
	ok(h.do("POST", "/settings/batch-requests", map[string]any{"requests": []any{
		map[string]any{"id": "u", "method": "GET", "url": "/units-of-measure"}, map[string]any{"id": "c", "method": "GET", "url": "/currencies"}}}))

	validated := map[string]bool{}
	for _, op := range h.rt.Operations() {
		validated[op] = true
	}
	var inSpec, missing []string
	for _, name := range h.sim.Operations() {
		method, path, _ := strings.Cut(name, " ")
		req := httptest.NewRequest(method, "http://127.0.0.1"+strings.NewReplacer("{", "x", "}", "x").Replace(path), nil)
		id, _, err := spec.Operation(req)
		if err != nil {
			continue // not in the spec (e.g. GET /v1/usage/accounts/{account-key})
		}
		inSpec = append(inSpec, id)
		if !validated[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "simulator operations never validated")
	ops := h.rt.Operations()
	t.Logf("validated %d operations: %s", len(ops), strings.Join(ops, ", "))
	t.Logf("skipped (not in the spec): %v", h.rt.Skipped())
	require.Len(t, ops, len(inSpec))
}
