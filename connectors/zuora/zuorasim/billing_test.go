package zuorasim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func trigger(h *harness, name, base, cond string) {
	h.t.Helper()
	r := h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": base, "condition": cond,
		"eventType": map[string]any{"name": name, "displayName": name}})
	require.Equal(h.t, 200, r.status, string(r.raw))
}

func idsDefinition(h *harness, name, url, event string, params map[string]any) {
	h.t.Helper()
	r := h.do("POST", "/notifications/notification-definitions", map[string]any{"name": name, "active": true, "calloutActive": true,
		"eventTypeName": event, "callout": map[string]any{"name": name, "calloutBaseurl": url, "httpMethod": "POST", "calloutParams": params}})
	require.Equal(h.t, 200, r.status, string(r.raw))
}

// TestBillingObjects: a bill run invoices and posts, a declined payment
// leaves the balance, a payment clears it, a new payment method becomes the
// account's default; each fires the custom events whose conditions match
// (and only those), and the read endpoints show the same.
func TestBillingObjects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	rc := newReceiver(t, false)
	trigger(h, "InvPosted", "Invoice", "changeType == 'UPDATE' && Invoice.Status == 'Posted' && Invoice.Status_old != 'Posted'")
	trigger(h, "InvPaid", "Invoice", "changeType == 'UPDATE' && Invoice.Status == 'Posted' && Invoice.Balance == 0 && Invoice.Balance_old != 0")
	trigger(h, "PayFailed", "Payment", "changeType == 'INSERT' && Payment.Status == 'Error'")
	trigger(h, "AcctPM", "Account", "changeType == 'UPDATE' && Account.DefaultPaymentMethodId != Account.DefaultPaymentMethodId_old")
	inv := map[string]any{"InvoiceId": "{{DataSource.Invoice.Id}}", "AccountId": "{{DataSource.Account.Id}}"}
	idsDefinition(h, "posted", rc.srv.URL+"/posted", "InvPosted", inv)
	idsDefinition(h, "paid", rc.srv.URL+"/paid", "InvPaid", inv)
	idsDefinition(h, "failed", rc.srv.URL+"/failed", "PayFailed", map[string]any{"PaymentId": "{{DataSource.Payment.Id}}", "AccountId": "{{DataSource.Account.Id}}"})
	idsDefinition(h, "pm", rc.srv.URL+"/pm", "AcctPM", map[string]any{"AccountId": "{{DataSource.Account.Id}}", "DefaultPaymentMethodId": "{{DataSource.Account.DefaultPaymentMethodId}}"})

	c := h.seedCatalog("Billing")
	acct, _ := h.newOrder(c, "Billco")
	h.sim.WaitCallouts()
	require.Empty(t, rc.requests(), "no billing event yet")

	res, err := h.sim.BillRun("2025-02-01", acct)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.NotEmpty(t, res[0].InvoiceNumber)
	h.sim.WaitCallouts()
	got := rc.requests()
	require.Len(t, got, 1, "the post fires once; the Draft insert matches nothing")
	require.Equal(t, res[0].InvoiceID, got[0].body["InvoiceId"])
	invs := h.sim.Invoices()
	require.Len(t, invs, 1)
	require.Equal(t, "59", invs[0].Amount, "flat 49 + 1 seat × 10")
	require.Equal(t, "Posted", invs[0].Status)
	require.Equal(t, "2025-02-01", invs[0].Date)
	again, err := h.sim.BillRun("2025-02-01", acct)
	require.NoError(t, err)
	require.Empty(t, again[0].InvoiceNumber, "a period is billed once")

	_, err = h.sim.Pay(zuorasim.PaymentRequest{Invoice: res[0].InvoiceNumber})
	require.ErrorContains(t, err, "payment method", "an electronic payment needs a payment method")
	pm, err := h.sim.AddPaymentMethod(acct, zuorasim.PaymentMethodRequest{LastFour: "4242"})
	require.NoError(t, err)
	h.sim.WaitCallouts()
	got = rc.requests()
	require.Len(t, got, 2)
	require.Equal(t, pm, got[1].body["DefaultPaymentMethodId"])
	a := h.do("GET", "/v1/accounts/"+acct, nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, pm, a["billingAndPayment"].(map[string]any)["defaultPaymentMethodId"])
	pms := h.do("GET", "/v1/accounts/"+acct+"/payment-methods", nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, pm, pms["defaultPaymentMethodId"])

	failed, err := h.sim.Pay(zuorasim.PaymentRequest{Invoice: res[0].InvoiceNumber, Failed: true, Reason: "Insufficient funds"})
	require.NoError(t, err)
	require.Equal(t, "Error", failed.Status)
	require.Equal(t, "59", failed.Balance)
	h.sim.WaitCallouts()
	got = rc.requests()
	require.Len(t, got, 3)
	require.Equal(t, failed.PaymentID, got[2].body["PaymentId"])
	p := h.do("GET", "/v1/payments/"+failed.PaymentID, nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, "Error", p["status"])
	require.Equal(t, "Insufficient funds", p["gatewayResponse"])

	paid, err := h.sim.Pay(zuorasim.PaymentRequest{Invoice: res[0].InvoiceID})
	require.NoError(t, err)
	require.Equal(t, "0", paid.Balance)
	h.sim.WaitCallouts()
	got = rc.requests()
	require.Len(t, got, 4, "a payment that clears the balance fires invoice paid; the Processed payment matches nothing")
	require.Equal(t, res[0].InvoiceID, got[3].body["InvoiceId"])
	_, err = h.sim.Pay(zuorasim.PaymentRequest{Invoice: res[0].InvoiceID})
	require.Error(t, err, "nothing left to pay")

	gi := h.do("GET", "/v1/invoices/"+res[0].InvoiceNumber, nil, "Zuora-Version", latest).obj(t)
	require.Equal(t, 0.0, gi["balance"])
	require.Equal(t, 59.0, gi["amount"])
	require.Equal(t, "Posted", gi["status"])
	require.Equal(t, "2025-02-01", gi["dueDate"], "the account's payment term (Due Upon Receipt) from the invoice date")
	q := h.do("GET", "/object-query/invoices?filter[]=accountid.EQ:"+a["basicInfo"].(map[string]any)["id"].(string), nil).obj(t)
	require.Len(t, q["data"], 1)
	qp := h.do("GET", "/object-query/payments?filter[]=status.EQ:Error", nil).obj(t)
	require.Len(t, qp["data"], 1)
	bad := h.do("GET", "/v1/invoices/INV99999999", nil, "Zuora-Version", latest)
	require.Equal(t, 404, bad.status)
}
