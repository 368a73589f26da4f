// Package engine holds billsync's domain: the catalog (plans, add-ons, billing
// periods, charges), customers and subscriptions, their validation, and the
// service that stores them. Syncing to Zuora is built on top of it.
package engine

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// PlanKind tells a base plan from an add-on. Both become Zuora products.
type PlanKind string

const (
	KindPlan  PlanKind = "plan"
	KindAddon PlanKind = "addon"
)

// PricingType decides whether a plan is billed at all.
type PricingType string

const (
	PricingPaid   PricingType = "paid"
	PricingFree   PricingType = "free"
	PricingCustom PricingType = "custom"
)

// Period is a billing period's length.
type Period string

const (
	PeriodMonth   Period = "month"
	PeriodQuarter Period = "quarter"
	PeriodYear    Period = "year"
)

// ChargeType is what a charge bills for.
type ChargeType string

const (
	ChargeRecurring ChargeType = "recurring"
	ChargeOneTime   ChargeType = "one_time"
	ChargeUsage     ChargeType = "usage"
)

// ChargeModel is how a charge's price is computed.
type ChargeModel string

const (
	ModelFlatFee ChargeModel = "flat_fee"
	ModelPerUnit ChargeModel = "per_unit"
	ModelTiered  ChargeModel = "tiered"
	ModelVolume  ChargeModel = "volume"
)

// BillingTiming says whether a recurring charge is billed before or after the period.
type BillingTiming string

const (
	TimingInAdvance BillingTiming = "in_advance"
	TimingInArrears BillingTiming = "in_arrears"
)

// PriceFormat is the format of one tier's price.
type PriceFormat string

const (
	PriceFlatFee PriceFormat = "flat_fee"
	PricePerUnit PriceFormat = "per_unit"
)

// Plan is a base plan or an add-on with its billing periods and charges.
type Plan struct {
	ID             string
	Kind           PlanKind
	Name           string
	Description    string
	PricingType    PricingType
	TrialDays      int
	Currency       string
	BillingPeriods []BillingPeriod
	// Metadata: ZUORA__ keys are written to the product's custom fields.
	Metadata   map[string]string `json:",omitempty"`
	Revision   int
	ArchivedAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// BillingPeriod is one way to pay for a plan; it becomes a Zuora product rate plan.
type BillingPeriod struct {
	ID         string
	Period     Period
	Charges    []Charge
	ArchivedAt *time.Time
}

// Charge is one price inside a billing period; it becomes a Zuora product rate plan charge.
type Charge struct {
	ID              string
	Name            string
	Type            ChargeType
	Model           ChargeModel
	Currency        string
	Price           decimal.Decimal
	Tiers           []Tier
	UnitOfMeasure   string
	Feature         string
	BillingTiming   BillingTiming
	DefaultQuantity decimal.Decimal
	ArchivedAt      *time.Time
}

// Tier is one band of a tiered or volume price. UpTo nil means "and above".
type Tier struct {
	UpTo        *decimal.Decimal
	Price       decimal.Decimal
	PriceFormat PriceFormat
}

// Clone returns a copy of the plan that shares no slice or map with it
// (pointers to times and decimals are shared: nothing changes them in place).
func (p Plan) Clone() Plan {
	if p.Metadata != nil {
		md := make(map[string]string, len(p.Metadata))
		for k, v := range p.Metadata {
			md[k] = v
		}
		p.Metadata = md
	}
	if p.BillingPeriods != nil {
		bps := make([]BillingPeriod, len(p.BillingPeriods))
		for i, bp := range p.BillingPeriods {
			if bp.Charges != nil {
				cs := make([]Charge, len(bp.Charges))
				for j, c := range bp.Charges {
					if c.Tiers != nil {
						c.Tiers = append([]Tier(nil), c.Tiers...)
					}
					cs[j] = c
				}
				bp.Charges = cs
			}
			bps[i] = bp
		}
		p.BillingPeriods = bps
	}
	return p
}

// ActivePeriods returns the billing periods that are not archived.
func (p Plan) ActivePeriods() []BillingPeriod {
	out := make([]BillingPeriod, 0, len(p.BillingPeriods))
	for _, bp := range p.BillingPeriods {
		if bp.ArchivedAt == nil {
			out = append(out, bp)
		}
	}
	return out
}

// Period returns the billing period with the given id.
func (p Plan) Period(id string) (BillingPeriod, bool) {
	for _, bp := range p.BillingPeriods {
		if bp.ID == id {
			return bp, true
		}
	}
	return BillingPeriod{}, false
}

// Charge returns the charge with the given id in any billing period.
func (p Plan) Charge(id string) (Charge, BillingPeriod, bool) {
	for _, bp := range p.BillingPeriods {
		for _, c := range bp.Charges {
			if c.ID == id {
				return c, bp, true
			}
		}
	}
	return Charge{}, BillingPeriod{}, false
}

// Contact is a bill-to (or sold-to) person and address.
type Contact struct {
	FirstName  string
	LastName   string
	Email      string
	Address1   string
	Address2   string
	City       string
	State      string
	PostalCode string
	Country    string
}

// Complete tells whether the contact is enough for Zuora to bill.
func (c Contact) Complete() bool {
	return c.FirstName != "" && c.LastName != "" && c.Country != ""
}

// Customer is someone who subscribes; it becomes a Zuora account.
type Customer struct {
	ID               string
	Name             string
	Email            string
	Currency         string
	BillTo           *Contact
	HasPaymentMethod bool
	// BillingID links the customer to an existing Zuora account (its number
	// or id): billsync adopts it instead of creating one.
	BillingID string `json:",omitempty"`
	// Metadata is stored and shown; keys with the ZuoraFieldPrefix are
	// written to the Zuora custom field of that name on the account.
	Metadata   map[string]string `json:",omitempty"`
	Revision   int
	ArchivedAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ZuoraFieldPrefix marks a metadata key written to a Zuora custom field:
// "ZUORA__Region__c" writes Region__c.
const ZuoraFieldPrefix = "ZUORA__"

// ZuoraFields returns the Zuora custom fields metadata asks for (prefix
// removed), nil when none.
func ZuoraFields(md map[string]string) map[string]string {
	var out map[string]string
	for k, v := range md {
		if f, ok := strings.CutPrefix(k, ZuoraFieldPrefix); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[f] = v
		}
	}
	return out
}

// SubscriptionStatus is the local lifecycle state of a subscription.
type SubscriptionStatus string

const (
	StatusTrial     SubscriptionStatus = "trial"
	StatusActive    SubscriptionStatus = "active"
	StatusSuspended SubscriptionStatus = "suspended"
	StatusCancelled SubscriptionStatus = "cancelled"
)

// CancellationPolicy mirrors Zuora's three cancellation policies.
type CancellationPolicy string

const (
	CancelEndOfCurrentTerm       CancellationPolicy = "end_of_current_term"
	CancelEndOfLastInvoicePeriod CancellationPolicy = "end_of_last_invoice_period"
	CancelSpecificDate           CancellationPolicy = "specific_date"
)

// Date is a calendar day (no time, no zone), formatted YYYY-MM-DD.
type Date = string

// AddOn is an add-on plan attached to a subscription.
type AddOn struct {
	PlanID          string
	BillingPeriodID string
	Quantity        decimal.Decimal
}

// Subscription is a customer's subscription to a plan's billing period plus add-ons.
type Subscription struct {
	ID                 string
	CustomerID         string
	PlanID             string
	BillingPeriodID    string
	AddOns             []AddOn
	ChargeQuantities   map[string]decimal.Decimal
	Status             SubscriptionStatus
	StartDate          Date
	TermMonths         int
	AutoRenew          bool
	RenewalCount       int
	SuspendDate        Date
	ResumeDate         Date
	CancellationPolicy CancellationPolicy
	CancellationDate   Date
	// WriteOff asks the cancellation to write off the open balance of the
	// subscription's unpaid invoices (the cancel order's
	// processingOptions.writeOff), as Stigg's cancel does.
	WriteOff bool `json:",omitempty"`
	// BillingID links the subscription to an existing Zuora subscription
	// (its number): billsync adopts it instead of creating one.
	BillingID string            `json:",omitempty"`
	Metadata  map[string]string `json:",omitempty"`
	// Scheduled is the pending future change, nil when none (scheduled.go).
	Scheduled *ScheduledChange `json:",omitempty"`
	// Coupons are the ids of the coupons applied (Zuora discount rate plans).
	Coupons   []string `json:",omitempty"`
	Revision  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

var zeroTime time.Time
