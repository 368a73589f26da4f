package inbound_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
)

// TestCouponOnZuoraSubscriptionIsImported: a subscription made in Zuora
// that carries a billsync coupon's discount rate plan is pulled as a local
// subscription with that coupon (not as an add-on), and the coupon grants
// no access.
func TestCouponOnZuoraSubscriptionIsImported(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, d, hopts{})
			ctx, db := h.ctx, h.env.DB
			_, _, err := db.UpsertCoupon(ctx, engine.Coupon{ID: "welcome", Name: "Welcome", Type: engine.DiscountPercentage,
				Percentage: decimal.NewFromInt(15), Currency: "USD", Duration: engine.DurationForever})
			require.NoError(t, err)
			h.env.Converge(10 * time.Second)
			rp, err := h.env.Outbound.Mappings().Get(ctx, mappings.RatePlan, store.CouponMappingID("welcome")+"/discount")
			require.NoError(t, err, "the coupon is in Zuora")

			_, _, err = db.UpsertCustomer(ctx, engine.Customer{ID: "reader", Name: "Reader", Currency: "USD"})
			require.NoError(t, err)
			cat := h.product("NEWS", "")
			id, num := h.account("Print", nil)
			subNum := h.subscription(num, cat, 1, "2026-01-01")
			_, err = h.env.Zuora.CreateOrder(ctx, zuora.IdempotencyKey("add-coupon"), zuora.Order{OrderDate: "2026-01-01", ExistingAccountNumber: num,
				Subscriptions: []zuora.OrderSubscription{{SubscriptionNumber: subNum, OrderActions: []zuora.OrderAction{{Type: "AddProduct",
					TriggerDates: []zuora.TriggerDate{{Name: zuora.TriggerContractEffective, TriggerDate: "2026-01-01"}},
					AddProduct:   &zuora.RatePlanOverride{ProductRatePlanID: rp.ZuoraID}}}}}})
			require.NoError(t, err)

			st, body := h.apiDo("PUT", "/api/v1/customers/reader/zuora-accounts/"+id, "")
			require.Equal(t, http.StatusCreated, st, "%v", body)
			st, body = h.apiDo("POST", "/api/v1/customers/reader/pull", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			subs := h.subscriptions()
			require.Len(t, subs, 1)
			require.Equal(t, "NEWS", subs[0].PlanID)
			require.Empty(t, subs[0].AddOns)
			require.Equal(t, []string{"welcome"}, subs[0].Coupons)
			_, body = h.apiDo("GET", "/api/v1/customers/reader/grants", "")
			require.Len(t, body["data"], 1, "the coupon grants nothing: %v", body)
		})
	}
}
