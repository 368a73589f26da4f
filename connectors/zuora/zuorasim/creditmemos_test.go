package zuorasim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestCreditMemoFromCharge: POST /v1/credit-memos makes a memo from a
// product rate plan charge (posted with autoPost), listed per account and
// read by number; what Zuora refuses is refused and changes nothing.
func TestCreditMemoFromCharge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Memo")
	acct, _ := h.newOrder(c, "Memoco")
	a := h.do("GET", "/v1/accounts/"+acct, nil, "Zuora-Version", latest).obj(t)
	acctID := a["basicInfo"].(map[string]any)["id"].(string)
	other, _ := h.newOrder(c, "Otherco")
	otherID := h.do("GET", "/v1/accounts/"+other, nil, "Zuora-Version", latest).obj(t)["basicInfo"].(map[string]any)["id"].(string)

	body := func(extra map[string]any, charge map[string]any) map[string]any {
		ch := map[string]any{"productRatePlanChargeId": c.flatID, "amount": 12.5}
		for k, v := range charge {
			ch[k] = v
		}
		b := map[string]any{"accountNumber": acct, "autoPost": true, "comment": "goodwill", "effectiveDate": "2025-02-03", "charges": []any{ch}}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	r := h.do("POST", "/v1/credit-memos", body(nil, nil), "Idempotency-Key", "memo-1")
	require.Equal(t, 200, r.status, string(r.raw))
	m := r.obj(t)
	require.Equal(t, true, m["success"], string(r.raw))
	require.Equal(t, "Posted", m["status"])
	require.EqualValues(t, 12.5, m["amount"])
	require.EqualValues(t, 12.5, m["unappliedAmount"])
	require.Equal(t, "2025-02-03", m["creditMemoDate"])
	require.Equal(t, acctID, m["accountId"])
	num := m["number"].(string)
	again := h.do("POST", "/v1/credit-memos", body(nil, nil), "Idempotency-Key", "memo-1")
	require.Equal(t, num, again.obj(t)["number"], "the same idempotency key answers the same memo")
	require.Len(t, h.sim.CreditMemos(), 1)

	got := h.do("GET", "/v1/credit-memos/"+num, nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, m["id"], got["id"])
	list := h.do("GET", "/v1/credit-memos?accountId="+acctID, nil, "Zuora-Version", latest).obj(t)
	require.Len(t, list["creditmemos"], 1)
	require.Empty(t, h.do("GET", "/v1/credit-memos?accountNumber=nope", nil, "Zuora-Version", latest).obj(t)["creditmemos"])
	require.Equal(t, false, h.do("GET", "/v1/credit-memos/CM-nope", nil, "Zuora-Version", latest).obj(t)["success"])

	refused := []struct {
		name string
		body map[string]any
		want string
	}{
		{"no account", map[string]any{"charges": []any{map[string]any{"productRatePlanChargeId": c.flatID, "amount": 1}}}, "accountId or accountNumber"},
		{"ids of two accounts", body(map[string]any{"accountId": otherID}, nil), "same account"},
		{"no charges", body(map[string]any{"charges": []any{}}, nil), "charges"},
		{"unknown charge", body(nil, map[string]any{"productRatePlanChargeId": "2c93808457d787030157e0300000ffff"}), "does not exist"},
		{"zero amount", body(nil, map[string]any{"amount": 0}), "greater than 0"},
		{"no amount", map[string]any{"accountNumber": acct, "charges": []any{map[string]any{"productRatePlanChargeId": c.flatID}}}, "amount"},
		{"three decimals", body(nil, map[string]any{"amount": 1.005}), "decimal places"},
		{"other currency", body(map[string]any{"currency": "EUR"}, nil), "currency"},
		{"unknown reason code", body(map[string]any{"reasonCode": "Because"}, nil), "reason code"},
		{"undefined custom field", body(map[string]any{"BillsyncId__c": "x"}, nil), "not defined on the CreditMemo"},
		{"service dates backwards", body(nil, map[string]any{"serviceStartDate": "2025-02-10", "serviceEndDate": "2025-02-01"}), "before"},
	}
	for _, tc := range refused {
		r := h.bad("POST", "/v1/credit-memos", tc.body, "Zuora-Version", latest)
		o := r.obj(t)
		require.Equal(t, false, o["success"], "%s: %s", tc.name, r.raw)
		require.Contains(t, string(r.raw), tc.want, tc.name)
	}
	r = h.bad("GET", "/v1/credit-memos?amount=5", nil, "Zuora-Version", latest)
	require.Equal(t, false, r.obj(t)["success"], "a filter the simulator does not apply is refused, not ignored: %s", r.raw)
	require.Len(t, h.sim.CreditMemos(), 1, "nothing refused made a memo")
}

// TestCancelWithWriteOff: an order that cancels with processingOptions
// writeOff writes the unpaid invoice off with a Write-off memo applied to it;
// bad combinations are refused and change nothing.
func TestCancelWithWriteOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("WriteOff")
	acct, sub := h.newOrder(c, "Writeco")
	runs, err := h.sim.BillRun("2025-02-01", acct)
	require.NoError(t, err)
	require.NotEmpty(t, runs[0].InvoiceNumber)
	cancel := map[string]any{"type": "CancelSubscription", "triggerDates": []any{
		map[string]any{"name": "ContractEffective", "triggerDate": "2025-02-01"},
		map[string]any{"name": "ServiceActivation", "triggerDate": "2025-02-01"},
		map[string]any{"name": "CustomerAcceptance", "triggerDate": "2025-02-01"}},
		"cancelSubscription": map[string]any{"cancellationPolicy": "SpecificDate", "cancellationEffectiveDate": "2025-02-01"}}
	with := func(po map[string]any, actions ...map[string]any) map[string]any {
		b := existing(acct, sub, actions...)
		b["processingOptions"] = po
		return b
	}
	refused := []struct {
		name string
		body map[string]any
		want string
	}{
		{"no cancel", with(map[string]any{"runBilling": false, "collectPayment": false, "writeOff": true},
			map[string]any{"type": "RenewSubscription", "renewSubscription": map[string]any{}}), "no CancelSubscription"},
		{"collect and write off", with(map[string]any{"runBilling": false, "collectPayment": true, "writeOff": true}, cancel), "collectPayment true"},
		{"without runBilling", with(map[string]any{"collectPayment": false, "writeOff": true}, cancel), "runBilling"},
		{"behavior without writeOff", with(map[string]any{"runBilling": false, "collectPayment": false, "writeOffBehavior": map[string]any{}}, cancel), "only allowed with writeOff"},
		{"refund", with(map[string]any{"runBilling": false, "collectPayment": false, "writeOff": true, "refund": true, "refundAmount": 5}, cancel), "refund"},
	}
	for _, tc := range refused {
		r := h.order(tc.body)
		require.Equal(t, false, r.obj(t)["success"], "%s: %s", tc.name, r.raw)
		require.Contains(t, string(r.raw), tc.want, tc.name)
	}
	require.Equal(t, "Active", h.subscription(sub)["status"], "nothing refused cancelled")
	require.Equal(t, "59", h.sim.Invoices()[0].Balance)
	require.Empty(t, h.sim.CreditMemos())

	r := h.order(with(map[string]any{"runBilling": false, "collectPayment": false, "writeOff": true}, cancel))
	m := r.obj(t)
	require.Equal(t, true, m["success"], string(r.raw))
	wo := m["writeOff"].([]any)
	require.Len(t, wo, 1)
	w := wo[0].(map[string]any)
	require.Equal(t, runs[0].InvoiceNumber, w["invoiceNumber"])
	require.Equal(t, "Success", w["status"])
	require.EqualValues(t, 59, w["amount"])
	require.Equal(t, "Cancelled", h.subscription(sub)["status"])
	require.Equal(t, "0", h.sim.Invoices()[0].Balance, "written off")
	memos := h.sim.CreditMemos()
	require.Len(t, memos, 1)
	require.Equal(t, "Write-off", memos[0].ReasonCode)
	require.Equal(t, w["writeOffCreditMemoNumber"], memos[0].Number)
	require.Equal(t, runs[0].InvoiceID, memos[0].ReferredInvoiceID)
	require.Equal(t, "59", memos[0].Applied, "applied to the invoice")
}
