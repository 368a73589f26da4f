package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

// TestCouponsEndToEnd (issue 15): through the public API, coupons become
// Zuora discount products (Discount-Percentage / Discount-Fixed Amount,
// subscription level, their duration as EndDateCondition/UpToPeriods);
// applying one to a subscription is an AddProduct of its rate plan, taking
// it off a RemoveProduct, with lost answers in the middle of the catalog
// write and of each order: no object or rate plan twice, nothing lost.
// Bad coupons and bad applications are refused and change nothing.
func TestCouponsEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Sync: e.DB,
				Mappings: e.Outbound.Mappings(), Kick: e.Pool.Kick}))
			t.Cleanup(srv.Close)
			c := client{t: t, url: srv.URL, key: apiKey}
			put := func(path, body string, want int) map[string]any {
				t.Helper()
				st, b, _ := c.do(http.MethodPut, path, body)
				require.Equal(t, want, st, "%s: %v", path, b)
				return b
			}
			synced := func(kind, id string) store.SyncRecord {
				t.Helper()
				rec, err := e.DB.GetSyncRecord(ctx, kind, id)
				require.NoError(t, err)
				require.Equal(t, store.StateSynced, rec.State, "%s %s: %s %s", kind, id, rec.Reason, rec.LastErrorMessage)
				return rec
			}

			put("/api/v1/plans/pro", `{"kind":"plan","name":"Pro","pricingType":"paid","currency":"USD",
			 "billingPeriods":[{"id":"pro-monthly","period":"month","charges":[
			   {"id":"base","name":"Base","type":"recurring","model":"flat_fee","price":100}]}]}`, 201)
			put("/api/v1/plans/team", `{"kind":"plan","name":"Team","pricingType":"paid","currency":"USD",
			 "billingPeriods":[{"id":"team-monthly","period":"month","charges":[
			   {"id":"base","name":"Base","type":"recurring","model":"flat_fee","price":50}]}]}`, 201)
			put("/api/v1/customers/acme", `{"name":"Acme","currency":"USD","hasPaymentMethod":true,
			 "billTo":{"firstName":"Ada","lastName":"Lovelace","country":"United States"}}`, 201)
			e.Converge(30 * time.Second)

			// Bad coupons: refused, nothing stored.
			for _, bad := range []string{
				`{"name":"All","type":"percentage","percentage":100,"currency":"USD","duration":"forever"}`,
				`{"name":"Ten","type":"fixed_amount","amount":10,"duration":"once"}`,
				`{"name":"Ten","type":"fixed_amount","amount":10,"currency":"USD","duration":"repeating"}`,
				`{"name":"Ten","type":"fixed_amount","amount":10,"currency":"USD","duration":"once","appliesTo":{"chargeTypes":["setup"]}}`,
				`{"name":"Ten","type":"fixed_amount","amount":10,"currency":"USD","duration":"once","appliesTo":{"planIds":["nope"]}}`,
			} {
				put("/api/v1/coupons/bad", bad, 422)
			}
			st, _, _ := c.do(http.MethodGet, "/api/v1/coupons/bad", "")
			require.Equal(t, 404, st)

			b := put("/api/v1/coupons/welcome", `{"name":"Welcome 20%","type":"percentage","percentage":"20","currency":"USD",
			 "duration":"repeating","periods":3,"appliesTo":{"chargeTypes":["recurring"]}}`, 201)
			require.Equal(t, "20", b["percentage"])
			put("/api/v1/coupons/ten-off", `{"name":"Ten off","type":"fixed_amount","amount":"10","currency":"USD","duration":"once",
			 "appliesTo":{"planIds":["pro"]}}`, 201)
			put("/api/v1/coupons/euro", `{"name":"Euro","type":"fixed_amount","amount":"5","currency":"EUR","duration":"forever"}`, 201)
			// Will not be synced, as for plans: a currency the tenant lacks.
			put("/api/v1/coupons/yen", `{"name":"Yen","type":"fixed_amount","amount":"500","currency":"JPY","duration":"forever"}`, 201)

			// Bad applications: refused.
			sub := func(coupons string) string {
				return `{"customerId":"acme","planId":"team","billingPeriodId":"team-monthly","status":"active","startDate":"2026-01-01","coupons":` + coupons + `}`
			}
			put("/api/v1/subscriptions/s1", sub(`["nope"]`), 422)
			put("/api/v1/subscriptions/s1", sub(`["euro"]`), 422)
			put("/api/v1/subscriptions/s1", sub(`["ten-off"]`), 422) // only for plan pro
			put("/api/v1/subscriptions/s1", sub(`["welcome","welcome"]`), 422)

			// The coupons' catalog writes (claimed before the subscription)
			// lose an answer, and so does the subscription's order.
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/object/product-rate-plan-charge", Kind: zuorasim.FaultLostResponse, Count: 1},
				zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
			put("/api/v1/subscriptions/s1", sub(`["welcome"]`), 201)
			e.Converge(60 * time.Second)
			e.Sim.SetFaults()
			synced(store.EntityCoupon, "welcome")
			yen, err := e.DB.GetSyncRecord(ctx, store.EntityCoupon, "yen")
			require.NoError(t, err)
			require.Equal(t, store.StateSkipped, yen.State)
			require.Contains(t, yen.Reason, "the currency JPY")
			synced(store.EntitySubscription, "s1")
			zs := e.Sim.State()
			var discounts []zuorasim.ChargeSnapshot
			for _, ch := range zs.Charges {
				if m := ch.Fields["ChargeModel"]; m == "Discount-Percentage" || m == "Discount-Fixed Amount" {
					discounts = append(discounts, ch)
				}
			}
			require.Len(t, discounts, 3, "one discount charge per coupon, none twice")
			var welcome zuorasim.ChargeSnapshot
			for _, ch := range discounts {
				if ch.Name == "Welcome 20%" {
					welcome = ch
				}
			}
			require.Equal(t, "Discount-Percentage", welcome.Fields["ChargeModel"])
			require.Equal(t, "subscription", welcome.Fields["DiscountLevel"])
			require.Equal(t, "RECURRING (2)", welcome.Fields["ApplyDiscountTo"])
			require.Equal(t, "FixedPeriod", welcome.Fields["EndDateCondition"])
			require.EqualValues(t, "3", welcome.Fields["UpToPeriods"].(interface{ String() string }).String())
			require.Len(t, zs.Subscriptions, 1, "one subscription, though the order's answer was lost")
			active := func() []string {
				var out []string
				for _, rp := range e.Sim.State().Subscriptions[0].RatePlans {
					if rp.LastChangeType != "Remove" {
						out = append(out, rp.Name)
					}
				}
				return out
			}
			require.ElementsMatch(t, []string{"Team Monthly (team-monthly)", "Welcome 20% (coupon welcome)"}, active())

			// Switch plan to pro, take welcome off, put ten-off on; the order's answer is lost again.
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
			put("/api/v1/subscriptions/s1", `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","status":"active","startDate":"2026-01-01","coupons":["ten-off"]}`, 200)
			e.Converge(60 * time.Second)
			e.Sim.SetFaults()
			synced(store.EntitySubscription, "s1")
			require.ElementsMatch(t, []string{"Pro Monthly (pro-monthly)", "Ten off (coupon ten-off)"}, active(), "each rate plan once")
			e.Sim.ResetStats()
			_, err = e.DB.RecheckAll(ctx, []string{store.EntitySubscription, store.EntityCoupon})
			require.NoError(t, err)
			e.Converge(30 * time.Second)
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"], "nothing left to send: %v", e.Sim.Stats().Calls)
			// The hourly re-check and drift check find nothing to do either
			// (the coupon's rate plan is billsync's, not drift).
			rep, err := e.Outbound.Recheck(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, rep.Due, "only the skipped yen coupon is due (re-evaluated): %+v", rep)
			rec := synced(store.EntitySubscription, "s1")
			hist, err := e.DB.SyncHistory(ctx, rec.ID, 100)
			require.NoError(t, err)
			_, err = e.DB.EnqueueDriftChecksNow(ctx)
			require.NoError(t, err)
			e.Converge(30 * time.Second)
			synced(store.EntitySubscription, "s1")
			after, err := e.DB.SyncHistory(ctx, rec.ID, 100)
			require.NoError(t, err)
			require.Len(t, after, len(hist), "a drift check that finds Zuora matching writes no history: %+v", after)
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/orders"], "%v", e.Sim.Stats().Calls)

			// Once in Zuora a coupon's discount cannot change; its name can.
			put("/api/v1/coupons/ten-off", `{"name":"Ten off","type":"fixed_amount","amount":"12","currency":"USD","duration":"once","appliesTo":{"planIds":["pro"]}}`, 409)
			put("/api/v1/coupons/ten-off", `{"name":"Ten dollars off","type":"fixed_amount","amount":"10","currency":"USD","duration":"once","appliesTo":{"planIds":["pro"]}}`, 200)

			// Archive: the coupon's rate plan is ended in Zuora; the
			// subscription keeps it; a new subscription cannot take it.
			st, b, _ = c.do(http.MethodDelete, "/api/v1/coupons/ten-off", "")
			require.Equal(t, 200, st, "%v", b)
			require.NotEmpty(t, b["archivedAt"])
			e.Converge(30 * time.Second)
			rec = synced(store.EntityCoupon, "ten-off")
			require.NotEmpty(t, rec.ZuoraURL)
			for _, rp := range e.Sim.State().RatePlans {
				if rp.Name == "Ten dollars off (coupon ten-off)" {
					require.Equal(t, time.Now().UTC().Format("2006-01-02"), rp.Fields["EffectiveEndDate"])
				}
			}
			put("/api/v1/subscriptions/s1", `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","status":"active","startDate":"2026-01-01","coupons":["ten-off"],"metadata":{"k":"v"}}`, 200)
			put("/api/v1/subscriptions/s2", `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","status":"active","startDate":"2026-01-01","coupons":["ten-off"]}`, 422)
			_, b, _ = c.do(http.MethodGet, "/api/v1/coupons?includeArchived=true", "")
			require.Len(t, b["data"], 4)
			_, b, _ = c.do(http.MethodGet, "/api/v1/coupons", "")
			require.Len(t, b["data"], 3, "the archived one is left out")
		})
	}
}
