package zuorasim_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func existing(acct, sub string, actions ...map[string]any) map[string]any {
	acts := make([]any, 0, len(actions))
	for _, a := range actions {
		acts = append(acts, a)
	}
	return map[string]any{"orderDate": "2025-02-01", "existingAccountNumber": acct,
		"subscriptions": []any{map[string]any{"subscriptionNumber": sub, "orderActions": acts}}}
}

func TestOrderLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Team")
	addon := h.seedCatalog("Addon")

	// Create with newAccount: the account custom field lands on the account.
	r := h.order(map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("Initech"),
		"subscriptions": []any{map[string]any{"customFields": map[string]any{"BillsyncSubId__c": "sub_1"},
			"orderActions": []any{createSubscriptionAction(c.planID, map[string]any{"chargeOverrides": []any{
				map[string]any{"productRatePlanChargeId": c.unitID, "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 5}}}}})}}}},
		"Idempotency-Key", "order-initech")
	require.Equal(t, 200, r.status, string(r.raw))
	o := r.obj(t)
	acct := o["accountNumber"].(string)
	subNum := o["subscriptions"].([]any)[0].(map[string]any)["subscriptionNumber"].(string)
	require.Equal(t, "Active", o["subscriptions"].([]any)[0].(map[string]any)["status"])
	a := h.do("GET", "/v1/accounts/"+acct, nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, "cust_Initech", a["basicInfo"].(map[string]any)["BillsyncId__c"])

	v1 := h.subscription(subNum)
	require.EqualValues(t, 1, v1["version"])
	require.Equal(t, "sub_1", v1["BillsyncSubId__c"])
	require.Equal(t, "2025-01-01", v1["termStartDate"])
	require.Equal(t, "2026-01-01", v1["termEndDate"])
	require.Equal(t, "TERMED", v1["termType"])
	seats := chargeByName(v1, "Seats")
	require.EqualValues(t, 5, seats["quantity"])
	require.EqualValues(t, 10, seats["price"])
	require.Equal(t, "PerUnit", seats["model"])
	require.Equal(t, c.unitID, seats["productRatePlanChargeId"])
	require.Equal(t, "2025-01-01", seats["effectiveStartDate"])
	require.Equal(t, "2026-01-01", seats["effectiveEndDate"])
	require.Equal(t, "Recurring", seats["type"])
	require.Equal(t, "FlatFee", chargeByName(v1, "Base fee")["model"])

	// UpdateProduct: quantity 5 → 8 from 2025-02-01; a new segment, same number, new ids.
	rpID := ratePlans(v1)[0]["id"].(string)
	r = h.order(existing(acct, subNum, map[string]any{"type": "UpdateProduct", "updateProduct": map[string]any{"ratePlanId": rpID,
		"chargeUpdates": []any{map[string]any{"chargeNumber": seats["number"], "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 8}}}}}}))
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["success"], string(r.raw))
	v2 := h.subscription(subNum, "charge-detail=all-segments")
	require.EqualValues(t, 2, v2["version"])
	require.NotEqual(t, v1["id"], v2["id"], "subscription id changes per version")
	require.Equal(t, subNum, v2["subscriptionNumber"])
	seats2 := chargeByName(v2, "Seats")
	require.Equal(t, seats["number"], seats2["number"], "charge number is stable")
	require.NotEqual(t, seats["id"], seats2["id"], "charge id changes")
	require.Equal(t, seats["id"], seats2["originalChargeId"])
	require.EqualValues(t, 8, seats2["quantity"])
	require.EqualValues(t, 2, seats2["segment"])
	require.Equal(t, "2025-02-01", seats2["effectiveStartDate"])
	require.Len(t, seats2["chargeSegments"], 2)
	require.Equal(t, "Update", ratePlans(v2)[0]["lastChangeType"])
	// The old version id still resolves (to the latest version).
	require.Equal(t, v2["id"], h.subscription(v1["id"].(string))["id"])
	// Versions endpoint.
	old := h.do("GET", "/v1/subscriptions/"+subNum+"/versions/1", nil, "Zuora-Version", latest)
	require.Equal(t, 200, old.status, string(old.raw))
	require.Equal(t, v1["id"], old.obj(t)["id"])
	require.Equal(t, "Expired", old.obj(t)["status"], "an amendment expires the version it replaces")
	require.Equal(t, "Active", v2["status"])

	// AddProduct, then RemoveProduct of the add-on using the id from an older version.
	r = h.order(existing(acct, subNum, map[string]any{"type": "AddProduct", "addProduct": map[string]any{"productRatePlanId": addon.planID}}))
	require.Equal(t, 200, r.status, string(r.raw))
	v3 := h.subscription(subNum)
	require.Len(t, ratePlans(v3), 2)
	addonRP := ratePlans(v3)[1]
	require.Equal(t, "Add", addonRP["lastChangeType"])
	require.Equal(t, addon.planID, addonRP["productRatePlanId"])
	r = h.order(existing(acct, subNum, map[string]any{"type": "RemoveProduct", "triggerDates": []any{
		map[string]any{"name": "ContractEffective", "triggerDate": "2025-03-01"}}, "removeProduct": map[string]any{"ratePlanId": addonRP["id"]}}))
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["success"], string(r.raw))
	v4 := h.subscription(subNum)
	removed := ratePlans(v4)[1]
	require.Equal(t, "Remove", removed["lastChangeType"])
	for _, ch := range charges(removed) {
		require.Equal(t, "2025-03-01", ch["effectiveEndDate"])
	}
	// Removing it again fails.
	r = h.order(existing(acct, subNum, map[string]any{"type": "RemoveProduct", "removeProduct": map[string]any{"ratePlanId": removed["id"]}}))
	require.Equal(t, 400, r.status)

	// Suspend: afterwards only Resume is accepted.
	r = h.order(existing(acct, subNum, map[string]any{"type": "Suspend", "suspend": map[string]any{"suspendPolicy": "SpecificDate", "suspendSpecificDate": "2025-04-01"}}))
	require.Equal(t, 200, r.status, string(r.raw))
	r = h.order(existing(acct, subNum, map[string]any{"type": "AddProduct", "addProduct": map[string]any{"productRatePlanId": addon.planID}}))
	require.Equal(t, 400, r.status, string(r.raw))
	require.Contains(t, string(r.raw), "only a Resume")
	r = h.order(existing(acct, subNum, map[string]any{"type": "Resume", "resume": map[string]any{"resumePolicy": "SpecificDate",
		"resumeSpecificDate": "2025-05-01", "extendsTerm": true}}))
	require.Equal(t, 200, r.status, string(r.raw))
	v6 := h.subscription(subNum)
	require.Equal(t, "2026-01-31", v6["termEndDate"], "extendsTerm adds the 30 suspended days")
	require.Equal(t, "Active", v6["status"], "the latest order action was Resume")
	require.NotContains(t, v6, "scheduledSuspendDate", "a Suspend order action is not a TermsAndConditions scheduled action")
	require.NotContains(t, v6, "scheduledResumeDate")
	hist := v6["statusHistory"].([]any)
	susp := hist[len(hist)-2].(map[string]any)
	require.Equal(t, map[string]any{"status": "Suspended", "startDate": "2025-04-01", "endDate": "2025-05-01"}, susp)

	// Renew: the term moves on by the renewal term.
	r = h.order(existing(acct, subNum, map[string]any{"type": "RenewSubscription", "renewSubscription": map[string]any{}}))
	require.Equal(t, 200, r.status, string(r.raw))
	v7 := h.subscription(subNum)
	require.Equal(t, "2026-01-31", v7["termStartDate"])
	require.Equal(t, "2027-01-31", v7["termEndDate"])
	require.Equal(t, "2027-01-31", chargeByName(v7, "Seats")["effectiveEndDate"])

	// Cancel at the end of the current term.
	r = h.order(existing(acct, subNum, map[string]any{"type": "CancelSubscription", "cancelSubscription": map[string]any{"cancellationPolicy": "EndOfCurrentTerm"}}))
	require.Equal(t, 200, r.status, string(r.raw))
	v8 := h.subscription(subNum)
	require.Equal(t, "Cancelled", v8["status"])
	require.Equal(t, "2027-01-31", v8["subscriptionEndDate"])
	require.EqualValues(t, 8, v8["version"])
	// A cancelled subscription takes no more changes.
	r = h.order(existing(acct, subNum, map[string]any{"type": "RenewSubscription", "renewSubscription": map[string]any{}}))
	require.Equal(t, 400, r.status)

	st := h.sim.State()
	require.Len(t, st.Subscriptions, 1)
	require.Len(t, st.Subscriptions[0].VersionIDs, 8)
	require.Equal(t, v1["id"], st.Subscriptions[0].OriginalID)
}

func TestOrderCancellationPolicies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Cancel")
	tests := []struct {
		policy map[string]any
		end    string
	}{
		{map[string]any{"cancellationPolicy": "EndOfCurrentTerm"}, "2026-01-01"},
		{map[string]any{"cancellationPolicy": "EndOfLastInvoicePeriod"}, "2025-02-01"},
		{map[string]any{"cancellationPolicy": "SpecificDate", "cancellationEffectiveDate": "2025-06-15"}, "2025-06-15"},
	}
	for i, tc := range tests {
		acct, sub := h.newOrder(c, fmt.Sprintf("Cancel%d", i))
		r := h.order(existing(acct, sub, map[string]any{"type": "CancelSubscription", "cancelSubscription": tc.policy}))
		require.Equal(t, 200, r.status, string(r.raw))
		require.Equal(t, true, r.obj(t)["success"], string(r.raw))
		s := h.subscription(sub)
		require.Equal(t, "Cancelled", s["status"])
		require.Equal(t, tc.end, s["subscriptionEndDate"], tc.policy["cancellationPolicy"])
	}
	// SpecificDate without a date.
	acct, sub := h.newOrder(c, "CancelBad")
	r := h.order(existing(acct, sub, map[string]any{"type": "CancelSubscription", "cancelSubscription": map[string]any{"cancellationPolicy": "SpecificDate"}}))
	require.Equal(t, 400, r.status)
	require.Regexp(t, `22$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])
}

func TestOrderRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Rules")

	// Atomic: newAccount + a subscription to an unknown plan creates nothing.
	r := h.order(map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("Atomic"),
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction("8ad0unknownplan")}}}})
	require.Equal(t, 400, r.status, string(r.raw))
	st := h.sim.State()
	require.Empty(t, st.Accounts)
	require.Empty(t, st.Subscriptions)

	// Currency without a price: EUR plan charges priced, GBP not.
	body := newAccountBody("Pounds")
	body["currency"] = "GBP"
	r = h.order(map[string]any{"orderDate": "2025-01-01", "newAccount": body,
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}})
	require.Equal(t, 400, r.status, string(r.raw))
	require.Contains(t, string(r.raw), "no price in currency GBP")

	// More than 50 order actions.
	acct, sub := h.newOrder(c, "Many")
	var acts []any
	for i := 0; i < 51; i++ {
		acts = append(acts, map[string]any{"type": "TermsAndConditions", "termsAndConditions": map[string]any{"autoRenew": i%2 == 0}})
	}
	r = h.order(map[string]any{"orderDate": "2025-02-01", "existingAccountNumber": acct,
		"subscriptions": []any{map[string]any{"subscriptionNumber": sub, "orderActions": acts}}})
	require.Equal(t, 400, r.status)
	require.Contains(t, string(r.raw), "at most 50")

	// termType enum and missing required fields.
	bad := createSubscriptionAction(c.planID)
	bad["createSubscription"].(map[string]any)["terms"].(map[string]any)["initialTerm"].(map[string]any)["termType"] = "FOREVER"
	r = h.bad("POST", "/v1/orders", map[string]any{"orderDate": "2025-01-01", "existingAccountNumber": acct,
		"subscriptions": []any{map[string]any{"orderActions": []any{bad}}}}, "Zuora-Version", latest)
	require.Equal(t, 400, r.status)
	require.Contains(t, string(r.raw), "'termType' value should be one of: TERMED, EVERGREEN")
	r = h.bad("POST", "/v1/orders", map[string]any{"existingAccountNumber": acct}, "Zuora-Version", latest)
	require.Equal(t, 400, r.status)
	require.Regexp(t, `^53100022$`, r.obj(t)["reasons"].([]any)[0].(map[string]any)["code"])

	// Pre-223.0 answers subscriptionNumbers[]; returnIds adds ids.
	r = h.do("POST", "/v1/orders", map[string]any{"orderDate": "2025-01-01", "existingAccountNumber": acct,
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(c.planID)}}}}, "Zuora-Version", "211.0")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, r.obj(t)["subscriptionNumbers"], 1)
	require.NotContains(t, r.obj(t), "subscriptions")
	r = h.do("POST", "/v1/orders?returnIds=true", map[string]any{"orderDate": "2025-01-01", "existingAccountNumber": acct,
		"subscriptions": []any{map[string]any{"orderActions": []any{func() map[string]any {
			a := createSubscriptionAction(c.planID)
			a["createSubscription"].(map[string]any)["subscriptionNumber"] = "SUB-CUSTOM-1"
			a["createSubscription"].(map[string]any)["terms"] = map[string]any{"initialTerm": map[string]any{"termType": "EVERGREEN"}}
			return a
		}()}}}}, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	o := r.obj(t)
	require.NotEmpty(t, o["orderId"])
	require.NotEmpty(t, o["accountId"])
	s0 := o["subscriptions"].([]any)[0].(map[string]any)
	require.Equal(t, "SUB-CUSTOM-1", s0["subscriptionNumber"])
	require.Len(t, s0["subscriptionId"], 32)
	ev := h.subscription("SUB-CUSTOM-1")
	require.Equal(t, "EVERGREEN", ev["termType"])
	require.NotContains(t, ev, "termEndDate")

	// Subscriptions by account, paged.
	r = h.do("GET", "/v1/subscriptions/accounts/"+acct+"?page=1&pageSize=2", nil, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	m := r.obj(t)
	require.Len(t, m["subscriptions"], 2)
	require.Contains(t, m["nextPage"], "page=2")
	r = h.do("GET", "/v1/subscriptions/accounts/"+acct+"?page=2&pageSize=2", nil, "Zuora-Version", latest)
	require.Len(t, r.obj(t)["subscriptions"], 1)

	// Unknown subscription.
	r = h.do("GET", "/v1/subscriptions/A-S99999999", nil, "Zuora-Version", latest)
	require.Equal(t, 404, r.status)
}
