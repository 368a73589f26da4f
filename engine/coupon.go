package engine

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// DiscountType is how a coupon takes money off.
type DiscountType string

const (
	DiscountPercentage  DiscountType = "percentage"
	DiscountFixedAmount DiscountType = "fixed_amount"
)

// CouponDuration is how long an applied coupon lasts.
type CouponDuration string

const (
	DurationOnce      CouponDuration = "once"      // the first billing period
	DurationRepeating CouponDuration = "repeating" // Periods billing periods
	DurationForever   CouponDuration = "forever"   // until the subscription ends
)

// MaxCouponsPerSubscription bounds the coupons one subscription carries.
const MaxCouponsPerSubscription = 10

// Coupon is a discount; it becomes a Zuora discount product with one rate
// plan and one discount charge (Discount-Percentage or Discount-Fixed
// Amount) at the subscription level.
type Coupon struct {
	ID          string
	Name        string
	Description string
	Type        DiscountType
	// Percentage is for percentage coupons (0 < p < 100), Amount for fixed
	// amounts (> 0, in Currency, per billing period).
	Percentage decimal.Decimal
	Amount     decimal.Decimal
	Currency   string
	Duration   CouponDuration
	// Periods is the number of billing periods of a repeating coupon.
	Periods int
	// BillingPeriod is the discount charge's billing period (default month):
	// a duration counts in it, and a fixed amount is taken off per period.
	BillingPeriod Period
	// PlanIDs restricts the coupon to subscriptions on those plans or
	// add-ons (empty: any). ChargeTypes restricts the charges it discounts
	// (empty: recurring, one-time and usage, Zuora's default).
	PlanIDs     []string
	ChargeTypes []ChargeType
	Revision    int
	ArchivedAt  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ContentHash is the hash of what a coupon says (not its bookkeeping).
func (c Coupon) ContentHash() string {
	x := c
	x.Revision, x.ArchivedAt = 0, nil
	x.CreatedAt, x.UpdatedAt = zeroTime, zeroTime
	return HashJSON(x)
}

// Allows tells whether a coupon may be applied to a subscription on plan
// planID with add-ons addOnIDs.
func (c Coupon) Allows(planID string, addOnIDs []string) bool {
	if len(c.PlanIDs) == 0 {
		return true
	}
	if slices.Contains(c.PlanIDs, planID) {
		return true
	}
	for _, a := range addOnIDs {
		if slices.Contains(c.PlanIDs, a) {
			return true
		}
	}
	return false
}

// DiscountedTypes returns the charge types the coupon discounts.
func (c Coupon) DiscountedTypes() []ChargeType {
	if len(c.ChargeTypes) == 0 {
		return []ChargeType{ChargeOneTime, ChargeRecurring, ChargeUsage}
	}
	return c.ChargeTypes
}

// Validate checks a coupon on its own (plan references are checked by the store).
func (c Coupon) Validate() error {
	v := &validator{}
	if !ValidID(c.ID) {
		v.add("id", idRule)
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > 100 {
		v.add("name", "is required, at most 100 characters")
	}
	if utf8.RuneCountInString(c.Description) > 500 {
		v.add("description", "must be at most 500 characters")
	}
	v.text("name", c.Name, "description", c.Description)
	switch c.Type {
	case DiscountPercentage:
		// Zuora: "a decimal value between -100 and 100, exclusive"; a
		// coupon takes money off, so above 0.
		if !c.Percentage.IsPositive() || c.Percentage.GreaterThanOrEqual(decimal.NewFromInt(100)) {
			v.add("percentage", "must be greater than 0 and less than 100 (Zuora refuses 100)")
		}
		if !c.Amount.IsZero() {
			v.add("amount", "is only for fixed_amount coupons")
		}
		v.amount("percentage", c.Percentage)
	case DiscountFixedAmount:
		if !c.Amount.IsPositive() {
			v.add("amount", "must be greater than 0")
		}
		if !c.Percentage.IsZero() {
			v.add("percentage", "is only for percentage coupons")
		}
		v.amount("amount", c.Amount)
	default:
		v.add("type", "must be one of percentage, fixed_amount")
	}
	if !ValidCurrency(c.Currency) {
		v.add("currency", "must be a three-letter ISO 4217 code (Zuora prices every discount in a currency)")
	}
	switch c.Duration {
	case DurationOnce, DurationForever:
		if c.Periods != 0 {
			v.add("periods", "is only for repeating coupons")
		}
	case DurationRepeating:
		if c.Periods < 1 || c.Periods > 120 {
			v.add("periods", "must be between 1 and 120 for a repeating coupon")
		}
	default:
		v.add("duration", "must be one of once, repeating, forever")
	}
	switch c.BillingPeriod {
	case PeriodMonth, PeriodQuarter, PeriodYear:
	default:
		v.add("billingPeriod", "must be one of month, quarter, year")
	}
	if len(c.PlanIDs) > MaxAddOns+1 {
		v.add("appliesTo.planIds", "at most %d plans", MaxAddOns+1)
	}
	seen := map[string]bool{}
	for i, id := range c.PlanIDs {
		if !ValidID(id) {
			v.add(fmt.Sprintf("appliesTo.planIds[%d]", i), idRule)
		} else if seen[id] {
			v.add(fmt.Sprintf("appliesTo.planIds[%d]", i), "plan %q listed twice", id)
		}
		seen[id] = true
	}
	seenType := map[ChargeType]bool{}
	for i, t := range c.ChargeTypes {
		switch t {
		case ChargeRecurring, ChargeOneTime, ChargeUsage:
		default:
			v.add(fmt.Sprintf("appliesTo.chargeTypes[%d]", i), "must be one of recurring, one_time, usage")
		}
		if seenType[t] {
			v.add(fmt.Sprintf("appliesTo.chargeTypes[%d]", i), "%q listed twice", t)
		}
		seenType[t] = true
	}
	return v.err()
}

// CheckCoupons checks the coupons a subscription applies: they exist (the
// caller passes those found, by id), are not archived when newly applied,
// bill in the customer's currency and allow the subscription's plans.
func CheckCoupons(s Subscription, cust Customer, found map[string]Coupon, before []string) error {
	v := &validator{}
	if len(s.Coupons) > MaxCouponsPerSubscription {
		v.add("coupons", "at most %d coupons (got %d)", MaxCouponsPerSubscription, len(s.Coupons))
		return v.err()
	}
	seen := map[string]bool{}
	for i, id := range s.Coupons {
		f := fmt.Sprintf("coupons[%d]", i)
		c, ok := found[id]
		switch {
		case !ok:
			v.add(f, "unknown coupon %q", id)
			continue
		case seen[id]:
			v.add(f, "coupon %q applied twice", id)
		case c.ArchivedAt != nil && !slices.Contains(before, id):
			v.add(f, "coupon %q is archived", id)
		case c.Currency != cust.Currency:
			v.add(f, "coupon %q is in %s but customer %q pays in %s", id, c.Currency, cust.ID, cust.Currency)
		case !c.Allows(s.PlanID, addOnPlanIDs(s)):
			v.add(f, "coupon %q applies only to plans %v", id, c.PlanIDs)
		}
		seen[id] = true
	}
	return v.err()
}

func addOnPlanIDs(s Subscription) []string {
	out := make([]string, 0, len(s.AddOns))
	for _, a := range s.AddOns {
		out = append(out, a.PlanID)
	}
	return out
}
