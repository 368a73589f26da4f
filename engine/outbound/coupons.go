package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

// A coupon is a Zuora discount product of its own ("Miscellaneous
// Products") with one rate plan holding one discount charge:
// Discount-Percentage or Discount-Fixed Amount, recurring, at the
// subscription level (a rate-plan-level discount would only discount the
// charges of its own rate plan, and Orders does not support account-level
// discounts), applied to the charge types the coupon names (ApplyDiscountTo),
// for one billing period, N billing periods (EndDateCondition FixedPeriod,
// UpToPeriods) or until the subscription ends (SubscriptionEnd). A
// subscription carries the coupon as that rate plan: AddProduct applies it,
// RemoveProduct takes it off. Zuora pages: docs/zuora-rules.md, "Discounts".

// couponRatePlanKey is the mapping key of a coupon's rate plan (and of its
// one discount charge).
func couponRatePlanKey(couponID string) string {
	return mappings.Key(store.CouponMappingID(couponID), "discount")
}

var applyDiscountOrder = []struct {
	t    engine.ChargeType
	name string
}{{engine.ChargeOneTime, "ONETIME"}, {engine.ChargeRecurring, "RECURRING"}, {engine.ChargeUsage, "USAGE"}}

// applyDiscountTo spells a coupon's charge types as Zuora's ApplyDiscountTo,
// as the OpenAPI file's enum has it: ONETIME, RECURRING, USAGE or their
// concatenation in that order, with the bit sum ("RECURRING (2)",
// "ONETIMERECURRINGUSAGE (7)").
func applyDiscountTo(c engine.Coupon) string {
	var b strings.Builder
	bits := 0
	types := c.DiscountedTypes()
	for i, x := range applyDiscountOrder {
		for _, t := range types {
			if t == x.t {
				b.WriteString(x.name)
				bits |= 1 << i
				break
			}
		}
	}
	return fmt.Sprintf("%s (%d)", b.String(), bits)
}

// CouponPayloads builds the Zuora discount product, rate plan and charge of a coupon.
func (r *Reconcilers) CouponPayloads(c engine.Coupon) catalogPayloads {
	end := farFuture
	if c.ArchivedAt != nil {
		end = c.ArchivedAt.UTC().Format("2006-01-02")
	}
	key := couponRatePlanKey(c.ID)
	out := catalogPayloads{Product: zuora.Product{
		Name: engine.Truncate(c.Name, 100), SKU: number("coupon-", c.ID, 50), Category: "Miscellaneous Products",
		Description: engine.Truncate(c.Description, 500), EffectiveStartDate: catalogDay, EffectiveEndDate: end,
		CustomFields: r.customFields(store.EntityCoupon, c.ID, nil),
	}}
	out.RatePlans = []ratePlanPayload{{Key: key, Archived: c.ArchivedAt != nil, Payload: zuora.ProductRatePlan{
		Name: engine.Truncate(fmt.Sprintf("%s (coupon %s)", c.Name, c.ID), 255), EffectiveStartDate: catalogDay, EffectiveEndDate: end,
		ActiveCurrencies: []string{c.Currency}, CustomFields: map[string]any{r.cfg.IDField: key},
	}}}
	pc := zuora.ProductRatePlanCharge{
		Name: engine.Truncate(c.Name, 100), ChargeType: zuora.ChargeTypeRecurring,
		BillCycleType: zuora.BillCycleDefaultFromCustomer, BillingPeriod: zuoraPeriod[c.BillingPeriod],
		TriggerEvent: zuora.TriggerContractEffective, DiscountLevel: "subscription", ApplyDiscountTo: applyDiscountTo(c),
		EndDateCondition: "SubscriptionEnd", CustomFields: map[string]any{r.cfg.IDField: key},
	}
	switch c.Duration {
	case engine.DurationOnce:
		pc.EndDateCondition, pc.UpToPeriods, pc.UpToPeriodsType = "FixedPeriod", ptr(1), "Billing Periods"
	case engine.DurationRepeating:
		pc.EndDateCondition, pc.UpToPeriods, pc.UpToPeriodsType = "FixedPeriod", ptr(c.Periods), "Billing Periods"
	}
	tier := zuora.ChargeTier{Currency: c.Currency}
	if c.Type == engine.DiscountFixedAmount {
		pc.ChargeModel = zuora.ChargeModelDiscountFixed
		tier.DiscountAmount = zuora.NumberFromDecimal(c.Amount)
	} else {
		pc.ChargeModel = zuora.ChargeModelDiscountPercent
		tier.DiscountPercentage = zuora.NumberFromDecimal(c.Percentage)
	}
	pc.ProductRatePlanChargeTierData = &zuora.ChargeTierData{ProductRatePlanChargeTier: []zuora.ChargeTier{tier}}
	out.Charges = []chargePayload{{Key: key, RatePlanKey: key, Archived: c.ArchivedAt != nil, Payload: pc}}
	return out
}

func (r *Reconcilers) reconcileCoupon(ctx context.Context, rec store.SyncRecord, s *session) (worker.Result, error) {
	if !r.cfg.Enabled(SwitchCatalog) {
		return worker.Result{Skipped: ReasonSwitchedOffCatalog}, nil
	}
	c, err := r.db.GetCoupon(ctx, rec.EntityID)
	if errors.Is(err, engine.ErrNotFound) {
		return worker.Result{Skipped: "the coupon no longer exists"}, nil
	}
	if err != nil {
		return worker.Result{}, err
	}
	// The same will-not-be-synced rules as a plan's (reconcileCatalog).
	return r.reconcileCatalog(ctx, rec, s, store.CouponMappingID(c.ID), r.CouponPayloads(c), func() (string, error) {
		if c.ArchivedAt == nil {
			return "", nil
		}
		if _, err := r.maps.Get(ctx, mappings.Product, store.CouponMappingID(c.ID)); errors.Is(err, mappings.ErrNotFound) {
			return "the coupon was archived before it reached Zuora", nil
		} else if err != nil {
			return "", err
		}
		return "", nil
	})
}

// desiredCoupons returns the discount rate plans of the coupons sub
// applies, or a result to return instead: wait while a coupon is not in
// Zuora yet (its record made due), or stop when it will not get there.
func (r *Reconcilers) desiredCoupons(ctx context.Context, sub engine.Subscription) ([]desiredRatePlan, *worker.Result, error) {
	var out []desiredRatePlan
	var missing []string
	for _, id := range sub.Coupons {
		key := couponRatePlanKey(id)
		m, err := r.maps.Get(ctx, mappings.RatePlan, key)
		if errors.Is(err, mappings.ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, desiredRatePlan{Key: key, PlanID: store.CouponMappingID(id), ProductRP: m.ZuoraID,
			Quantities: map[string]decimal.Decimal{}, ChargeKind: map[string]engine.Charge{}})
	}
	if len(missing) == 0 {
		return out, nil, nil
	}
	for _, id := range missing {
		cr, err := r.db.GetSyncRecord(ctx, store.EntityCoupon, id)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, nil, err
		}
		if err == nil && (cr.State == store.StateDead || cr.State == store.StateSkipped) {
			return nil, nil, worker.Terminal{Err: fmt.Errorf("coupon %q is not in Zuora (%s: %s)", id, cr.State, firstNonEmpty(cr.LastErrorMessage, cr.Reason))}
		}
		if err := r.db.MarkPending(ctx, store.EntityCoupon, id); err != nil {
			return nil, nil, err
		}
	}
	return nil, &worker.Result{Wait: r.cfg.DependencyWait, WaitReason: "waiting for coupon " + strings.Join(missing, ", ") + " to be synced to Zuora"}, nil
}
