package web_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

// TestPreviewEndToEnd (issue 15): through the public API, what Zuora would
// invoice (POST /v1/orders/preview, POST /v1/subscriptions/{key}/preview on
// the simulator) for a subscription's next invoice, a change (an add-on
// added mid-period: prorated) and new subscriptions (on an existing and on
// a new account), with real amounts for flat fee, per unit, tiered and
// volume charges and a percentage coupon; and nothing changes in Zuora.
func TestPreviewEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			// Previews are asked on 2026-02-01.
			now := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
			pv := outbound.New(e.DB, e.Zuora, outbound.Config{Now: func() time.Time { return now }})
			srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Sync: e.DB,
				Mappings: e.Outbound.Mappings(), Kick: e.Pool.Kick, Preview: pv}))
			t.Cleanup(srv.Close)
			c := client{t: t, url: srv.URL, key: apiKey}
			call := func(method, path, body string, want int) map[string]any {
				t.Helper()
				st, b, _ := c.do(method, path, body)
				require.Equal(t, want, st, "%s: %v", path, b)
				return b
			}

			call("PUT", "/api/v1/plans/pro", `{"kind":"plan","name":"Pro","pricingType":"paid","currency":"USD",
			 "billingPeriods":[{"id":"pro-monthly","period":"month","charges":[
			   {"id":"base","name":"Base","type":"recurring","model":"flat_fee","price":100},
			   {"id":"seats","name":"Seats","type":"recurring","model":"per_unit","price":10,"unitOfMeasure":"seat"},
			   {"id":"storage","name":"Storage","type":"recurring","model":"tiered","unitOfMeasure":"seat",
			    "tiers":[{"upTo":10,"price":1},{"price":"0.5"}]},
			   {"id":"users","name":"Users","type":"recurring","model":"volume","unitOfMeasure":"seat",
			    "tiers":[{"upTo":5,"price":8},{"price":6}]},
			   {"id":"setup","name":"Setup","type":"one_time","model":"flat_fee","price":50}]}]}`, 201)
			call("PUT", "/api/v1/plans/extra", `{"kind":"addon","name":"Extra","pricingType":"paid","currency":"USD",
			 "billingPeriods":[{"id":"extra-monthly","period":"month","charges":[
			   {"id":"fee","name":"Extra fee","type":"recurring","model":"flat_fee","price":20}]}]}`, 201)
			call("PUT", "/api/v1/coupons/welcome", `{"name":"Welcome 10%","type":"percentage","percentage":10,"currency":"USD",
			 "duration":"forever","appliesTo":{"chargeTypes":["recurring"]}}`, 201)
			for _, id := range []string{"acme", "newco"} {
				call("PUT", "/api/v1/customers/"+id, `{"name":"`+id+`","currency":"USD","hasPaymentMethod":true,
				 "billTo":{"firstName":"Ada","lastName":"Lovelace","country":"United States"}}`, 201)
			}
			s1 := `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","status":"active","startDate":"2026-01-15",
			 "chargeQuantities":{"seats":3,"storage":15,"users":7},"coupons":["welcome"]`
			call("PUT", "/api/v1/subscriptions/s1", s1+`}`, 201)
			e.Converge(60 * time.Second)
			// Billed through 2026-02-01: the periods before are on an invoice already.
			_, err := e.Sim.BillRun("2026-02-01")
			require.NoError(t, err)
			before := e.Sim.State()
			e.Sim.ResetStats()

			type line struct {
				name, start, end, amount string
				prorated                 bool
			}
			lines := func(b map[string]any) []line {
				var out []line
				for _, x := range b["items"].([]any) {
					it := x.(map[string]any)
					name := it["name"].(string)
					if it["type"] == "discount" {
						name = "-" + it["couponId"].(string) + " on " + it["appliedToChargeNumber"].(string)
					}
					out = append(out, line{name, it["periodStart"].(string), it["periodEnd"].(string), it["amount"].(string), it["prorated"].(bool)})
				}
				return out
			}
			numbers := map[string]string{}
			for _, rp := range before.Subscriptions[0].RatePlans {
				for _, ch := range rp.Charges {
					numbers[ch.Name] = ch.Number
				}
			}
			off := func(charge string) string { return "-welcome on " + numbers[charge] }

			// Next invoice: the period from the bill cycle day (15th), with the coupon.
			b := call("POST", "/api/v1/subscriptions/s1/preview", `{}`, 200)
			require.Equal(t, "next_invoice", b["kind"])
			require.Equal(t, "2026-02-28", b["through"])
			require.ElementsMatch(t, []line{
				{"Base", "2026-02-15", "2026-03-14", "100.00", false},
				{"Seats", "2026-02-15", "2026-03-14", "30.00", false},   // per unit: 3 × 10
				{"Storage", "2026-02-15", "2026-03-14", "12.50", false}, // tiered: 10 × 1 + 5 × 0.5
				{"Users", "2026-02-15", "2026-03-14", "42.00", false},   // volume: 7 × 6
				{off("Base"), "2026-02-15", "2026-03-14", "-10.00", false},
				{off("Seats"), "2026-02-15", "2026-03-14", "-3.00", false},
				{off("Storage"), "2026-02-15", "2026-03-14", "-1.25", false},
				{off("Users"), "2026-02-15", "2026-03-14", "-4.20", false},
			}, lines(b))
			require.Equal(t, "166.05", b["total"])

			// A change: the add-on from today, prorated to the bill cycle day.
			b = call("POST", "/api/v1/subscriptions/s1/preview", `{"subscription":`+s1+`,"addOns":[{"planId":"extra","billingPeriodId":"extra-monthly","quantity":1}]}}`, 200)
			require.Equal(t, "change", b["kind"])
			require.Equal(t, "POST /v1/orders/preview", b["zuoraOperation"])
			ls := lines(b)
			var extra []line
			for _, l := range ls {
				if l.name == "Extra fee" || (len(l.name) > 0 && l.name[0] == '-' && l.amount != "" && (l.amount == "-0.90" || l.amount == "-2.00")) {
					extra = append(extra, l)
				}
			}
			require.Contains(t, ls, line{"Extra fee", "2026-02-01", "2026-02-14", "9.03", true}, "20 × 14/31 days: %v", ls) // prorated
			require.Contains(t, ls, line{"Extra fee", "2026-02-15", "2026-03-14", "20.00", false}, "%v", ls)
			require.Len(t, extra, 4, "the add-on's two periods and the coupon on each: %v", ls)
			require.Equal(t, "192.18", b["total"], "166.05 + 9.03 + 20 - 0.90 - 2.00")

			// A new subscription on the existing account (bill cycle day 15):
			// the one-time setup fee and a prorated first period.
			b = call("POST", "/api/v1/subscriptions/s2/preview", `{"subscription":{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly",
			 "status":"active","startDate":"2026-02-01","chargeQuantities":{"seats":3,"storage":15,"users":7}},"through":"2026-02-20"}`, 200)
			require.Equal(t, "new_subscription", b["kind"])
			require.ElementsMatch(t, []line{
				{"Setup", "2026-02-01", "2026-02-01", "50.00", false},
				{"Base", "2026-02-01", "2026-02-14", "45.16", true}, // 100 × 14/31
				{"Seats", "2026-02-01", "2026-02-14", "13.55", true},
				{"Storage", "2026-02-01", "2026-02-14", "5.65", true},
				{"Users", "2026-02-01", "2026-02-14", "18.97", true},
				{"Base", "2026-02-15", "2026-03-14", "100.00", false},
				{"Seats", "2026-02-15", "2026-03-14", "30.00", false},
				{"Storage", "2026-02-15", "2026-03-14", "12.50", false},
				{"Users", "2026-02-15", "2026-03-14", "42.00", false},
			}, lines(b))
			require.Equal(t, "317.83", b["total"])

			// A new customer (no account: previewAccountInfo): its own bill cycle day, nothing prorated.
			b = call("POST", "/api/v1/subscriptions/s3/preview", `{"subscription":{"customerId":"newco","planId":"pro","billingPeriodId":"pro-monthly",
			 "status":"active","startDate":"2026-02-10","chargeQuantities":{"seats":1,"storage":1,"users":1}}}`, 200)
			require.Equal(t, "2026-03-09", b["through"])
			require.Equal(t, "169.00", b["total"], "50 + 100 + 10 + 1 + 8 = %v", lines(b))

			// Bad input, and things Zuora cannot preview.
			call("POST", "/api/v1/subscriptions/s9/preview", `{}`, 404)
			call("POST", "/api/v1/subscriptions/s1/preview", `{"subscription":{"customerId":"acme","planId":"nope","billingPeriodId":"x","startDate":"2026-02-01"}}`, 422)
			call("POST", "/api/v1/subscriptions/s1/preview", `{"through":"soon"}`, 400)
			call("POST", "/api/v1/subscriptions/s1/preview", `{"subscription":{"customerId":"newco","planId":"pro","billingPeriodId":"pro-monthly","startDate":"2026-01-15"}}`, 409)
			call("POST", "/api/v1/subscriptions/s1/preview", `{"subscription":`+s1+`,"id":"other"}}`, 400)

			// Nothing changed in Zuora, and nothing was written.
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"], "%v", e.Sim.Stats().Calls)
			after := e.Sim.State()
			require.Equal(t, before.Subscriptions, after.Subscriptions)
			require.Equal(t, before.Accounts, after.Accounts)
			call("GET", "/api/v1/subscriptions/s2", "", 404)
		})
	}
}
