package engine

import (
	"fmt"
	"maps"
	"sort"

	"github.com/shopspring/decimal"
)

// ChangeTiming says when a scheduled change takes effect.
type ChangeTiming string

const (
	// ChangeAtPeriodEnd: at the end of the current billing period (the
	// usual downgrade and seat decrease).
	ChangeAtPeriodEnd ChangeTiming = "end_of_billing_period"
	// ChangeAtTermEnd: at the end of the current term (termed only).
	ChangeAtTermEnd ChangeTiming = "end_of_term"
	// ChangeOnDate: on a given future date.
	ChangeOnDate ChangeTiming = "specific_date"
)

// ScheduledChange is a subscription's desired future state (plan, billing
// period, add-ons, quantities) and the day it applies. A subscription has
// at most one pending change: a new one replaces it (Stigg's rule).
type ScheduledChange struct {
	// Seq is the subscription revision that set the change; with the
	// content it names the change's Zuora order, so a replaced change never
	// reuses an order number.
	Seq              int
	Timing           ChangeTiming
	Date             Date // the day the change takes effect
	PlanID           string
	BillingPeriodID  string
	AddOns           []AddOn
	ChargeQuantities map[string]decimal.Decimal
}

// Shape is the part of a subscription a scheduled change replaces.
type Shape struct {
	PlanID           string
	BillingPeriodID  string
	AddOns           []AddOn
	ChargeQuantities map[string]decimal.Decimal
}

// ShapeOf returns the subscription's current shape.
func ShapeOf(s Subscription) Shape {
	return Shape{PlanID: s.PlanID, BillingPeriodID: s.BillingPeriodID, AddOns: s.AddOns, ChargeQuantities: s.ChargeQuantities}
}

// Shape returns the change's desired shape.
func (c ScheduledChange) Shape() Shape {
	return Shape{PlanID: c.PlanID, BillingPeriodID: c.BillingPeriodID, AddOns: c.AddOns, ChargeQuantities: c.ChargeQuantities}
}

// WithShape returns s with its plan, billing period, add-ons and
// quantities replaced by sh (the state once a change applied).
func (s Subscription) WithShape(sh Shape) Subscription {
	s.PlanID, s.BillingPeriodID = sh.PlanID, sh.BillingPeriodID
	s.AddOns = append([]AddOn(nil), sh.AddOns...)
	s.ChargeQuantities = maps.Clone(sh.ChargeQuantities)
	return s
}

// Applied returns the subscription once its pending change took effect
// (the change gone); s itself when it has none.
func (s Subscription) Applied() Subscription {
	if s.Scheduled == nil {
		return s
	}
	out := s.WithShape(s.Scheduled.Shape())
	out.Scheduled = nil
	return out
}

// periodMonths is a billing period's length in months.
func periodMonths(p Period) int {
	switch p {
	case PeriodQuarter:
		return 3
	case PeriodYear:
		return 12
	}
	return 1
}

// ChangeDate resolves when a change with timing applies to s (billed per
// period), given today: the first billing-period boundary after today
// (periods run from the start date), the end of the current term, or date
// (which must be after today).
func ChangeDate(s Subscription, period Period, timing ChangeTiming, date, today Date) (Date, error) {
	v := &validator{}
	switch timing {
	case ChangeOnDate:
		if msg := checkDate(date); msg != "" {
			v.add("date", "%s (required with timing specific_date)", msg)
		} else if date <= today {
			v.add("date", "must be after today (%s): a change for today is made on the subscription itself", today)
		}
		return date, v.err()
	case ChangeAtPeriodEnd, ChangeAtTermEnd:
		if date != "" {
			v.add("date", "is only allowed with timing specific_date")
			return "", v.err()
		}
	default:
		v.add("timing", "must be one of end_of_billing_period, end_of_term, specific_date")
		return "", v.err()
	}
	step := periodMonths(period)
	if timing == ChangeAtTermEnd {
		if s.TermMonths == 0 {
			v.add("timing", "an evergreen subscription (termMonths 0) has no term end")
			return "", v.err()
		}
		end, err := AddMonths(s.StartDate, s.TermMonths*(s.RenewalCount+1))
		if err != nil || end <= today {
			v.add("timing", "the current term ended on %s; renew the subscription first", end)
			return "", v.err()
		}
		return end, nil
	}
	for k := 1; k <= 12*MaxRenewalCount; k++ {
		d, err := AddMonths(s.StartDate, k*step)
		if err != nil {
			break
		}
		if d > today {
			return d, nil
		}
	}
	v.add("timing", "no billing period ends before %s", MaxDate)
	return "", v.err()
}

// ValidateChange checks a change against the subscription it is for: the
// subscription must be active (and not linked to a cancellation), the
// change must differ from it, and the state it leads to must be valid.
func (s Subscription) ValidateChange(c ScheduledChange) error {
	v := &validator{}
	if s.Status != StatusActive {
		v.add("status", "only an active subscription can have a scheduled change (it is %s)", s.Status)
		return v.err()
	}
	if s.TermMonths > 0 {
		if end, err := AddMonths(s.StartDate, s.TermMonths*(s.RenewalCount+1)); err == nil && c.Date > end {
			v.add("date", "must not be after the end of the current term (%s)", end)
		}
	}
	if SameShape(ShapeOf(s), c.Shape()) {
		v.add("scheduledChange", "is the subscription's current state; nothing to change")
	}
	if err := v.err(); err != nil {
		return err
	}
	next := s.WithShape(c.Shape())
	next.Scheduled = nil
	if err := next.Validate(); err != nil {
		return err
	}
	return nil
}

// SameShape tells whether two shapes are the same state (add-on order and
// an empty quantity map do not count).
func SameShape(a, b Shape) bool { return HashJSON(a.Normalized()) == HashJSON(b.Normalized()) }

// Normalized sorts the add-ons and drops empty collections.
func (sh Shape) Normalized() Shape {
	sh.AddOns = append([]AddOn(nil), sh.AddOns...)
	sort.Slice(sh.AddOns, func(i, j int) bool { return sh.AddOns[i].PlanID < sh.AddOns[j].PlanID })
	if len(sh.AddOns) == 0 {
		sh.AddOns = nil
	}
	if len(sh.ChargeQuantities) == 0 {
		sh.ChargeQuantities = nil
	}
	return sh
}

// Describe names the change for pages and logs.
func (c ScheduledChange) Describe() string {
	return fmt.Sprintf("on %s (%s): plan %s/%s, %d add-ons", c.Date, c.Timing, c.PlanID, c.BillingPeriodID, len(c.AddOns))
}
