package engine

import "github.com/shopspring/decimal"

// Preview kinds.
const (
	PreviewNextInvoice     = "next_invoice"
	PreviewChange          = "change"
	PreviewNewSubscription = "new_subscription"
)

// PreviewItem is one line of a previewed invoice.
type PreviewItem struct {
	Type                  string // "charge" or "discount"
	Name                  string
	PlanID, ChargeID      string // the local charge (charges)
	CouponID              string // the coupon (discounts)
	ChargeNumber          string
	AppliedToChargeNumber string
	Quantity, UnitPrice   decimal.Decimal
	Amount                decimal.Decimal
	PeriodStart           string
	PeriodEnd             string // inclusive
	Prorated              bool
}

// Preview is what Zuora would invoice.
type Preview struct {
	Kind           string
	SubscriptionID string
	ZuoraOperation string
	Through        string
	Currency       string
	Total          decimal.Decimal
	Items          []PreviewItem
}
