package zuorasim_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestStatePersists: a simulator opened on the store of another finds every
// object (catalog, accounts, subscriptions with their versions, usage,
// callout setup), keeps working on them (an amendment, a tier update) and
// never hands out an id the first one handed out.
func TestStatePersists(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sim.json")
	store := zuorasim.FileStore(path)
	h := newHarness(t, zuorasim.Options{Store: store}).login()
	c := h.seedCatalog("Team")
	acct, subNum := h.newOrder(c, "Initech")
	r := h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "Account", "condition": "changeType == 'INSERT'",
		"eventType": map[string]any{"name": "AccountCreated", "displayName": "Account created"}})
	require.Equal(t, 200, r.status, string(r.raw))
	runs, err := h.sim.BillRun("2025-02-01", acct)
	require.NoError(t, err)
	_, err = h.sim.AddPaymentMethod(acct, zuorasim.PaymentMethodRequest{})
	require.NoError(t, err)
	_, err = h.sim.Pay(zuorasim.PaymentRequest{Invoice: runs[0].InvoiceNumber, Amount: "10"})
	require.NoError(t, err)
	invoices := h.sim.Invoices()
	before := h.sim.State()
	_, err = os.Stat(path)
	require.NoError(t, err, "saved on every change")

	h2 := newHarness(t, zuorasim.Options{Store: store}).login()
	after := h2.sim.State()
	before.Callouts, after.Callouts = nil, nil
	require.JSONEq(t, mustJSON(before), mustJSON(after))
	require.Equal(t, invoices, h2.sim.Invoices(), "invoices, payments and payment methods are kept")
	_, err = h2.sim.Pay(zuorasim.PaymentRequest{Invoice: runs[0].InvoiceNumber})
	require.NoError(t, err, "the payment method and the balance came back")
	require.Equal(t, "0", h2.sim.Invoices()[0].Balance)

	// Work goes on: amend the subscription, change a tier, add an account.
	v1 := h2.subscription(subNum)
	seats := chargeByName(v1, "Seats")
	r = h2.order(existing(acct, subNum, map[string]any{"type": "UpdateProduct", "updateProduct": map[string]any{"ratePlanId": ratePlans(v1)[0]["id"],
		"chargeUpdates": []any{map[string]any{"chargeNumber": seats["number"], "pricing": map[string]any{"recurringPerUnit": map[string]any{"quantity": 8}}}}}}))
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, true, r.obj(t)["success"], string(r.raw))
	tierID := before.Charges[0].Tiers[0].ID
	r = h2.do("PUT", "/v1/object/product-rate-plan-charge-tier/"+tierID, map[string]any{"Price": 59})
	require.Equal(t, 200, r.status, string(r.raw))
	require.Equal(t, "59", string(h2.sim.State().Charges[0].Tiers[0].Price), "the tier index points at the charge's tier")
	h2.newOrder(c, "Hooli")

	seen := map[string]bool{}
	ids := func(s zuorasim.StateSnapshot) []string {
		var out []string
		for _, x := range s.Products {
			out = append(out, x.ID)
		}
		for _, x := range s.Accounts {
			out = append(out, x.ID)
		}
		for _, x := range s.Subscriptions {
			out = append(out, x.VersionIDs...)
			for _, rp := range x.RatePlans {
				out = append(out, rp.ID)
				for _, ch := range rp.Charges {
					out = append(out, ch.ID)
				}
			}
		}
		return out
	}
	for _, id := range ids(h2.sim.State()) {
		require.False(t, seen[id], "id %s handed out twice", id)
		seen[id] = true
	}
	require.Len(t, h2.sim.State().Accounts, 2)

	// A fresh simulator (another store) never repeats these ids either.
	h3 := newHarness(t, zuorasim.Options{}).login()
	c3 := h3.seedCatalog("Team")
	h3.newOrder(c3, "Initech")
	for _, id := range ids(h3.sim.State()) {
		require.False(t, seen[id], "a fresh simulator handed out %s again", id)
	}

	// A saved state of another format is refused, not half read.
	require.NoError(t, os.WriteFile(path, []byte(`{"version":99,"state":{}}`), 0o600))
	_, err = zuorasim.Open(zuorasim.Options{Store: store})
	require.ErrorContains(t, err, "version 99")
}
