package engine

import (
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidID reports whether s can be an entity id: 1–64 letters, digits, '.', '_', ':' or '-'.
func ValidID(s string) bool { return idPattern.MatchString(s) }

const idRule = "must be 1-64 characters: letters, digits, '.', '_', ':' or '-', starting with a letter or digit"

func validDate(s string) bool {
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// Validate checks a plan on its own (references are checked by the store).
func (p Plan) Validate() error {
	v := &validator{}
	if !ValidID(p.ID) {
		v.add("id", idRule)
	}
	switch p.Kind {
	case KindPlan, KindAddon:
	default:
		v.add("kind", "must be one of plan, addon")
	}
	if p.Name == "" || utf8.RuneCountInString(p.Name) > 100 {
		v.add("name", "is required, at most 100 characters")
	}
	if utf8.RuneCountInString(p.Description) > 500 {
		v.add("description", "must be at most 500 characters")
	}
	switch p.PricingType {
	case PricingPaid, PricingFree, PricingCustom:
	default:
		v.add("pricingType", "must be one of paid, free, custom")
	}
	if p.TrialDays < 0 || p.TrialDays > 3650 {
		v.add("trialDays", "must be between 0 and 3650")
	}
	if !ValidCurrency(p.Currency) {
		v.add("currency", "must be an ISO 4217 currency code, e.g. USD; got %q", p.Currency)
	}
	if len(p.BillingPeriods) == 0 {
		v.add("billingPeriods", "at least one billing period is required")
	}
	seenBP := map[string]bool{}
	seenCharge := map[string]bool{}
	for i, bp := range p.BillingPeriods {
		f := fmt.Sprintf("billingPeriods[%d]", i)
		if !ValidID(bp.ID) {
			v.add(f+".id", idRule)
		} else if seenBP[bp.ID] {
			v.add(f+".id", "duplicate billing period id %q", bp.ID)
		}
		seenBP[bp.ID] = true
		switch bp.Period {
		case PeriodMonth, PeriodQuarter, PeriodYear:
		default:
			v.add(f+".period", "must be one of month, quarter, year")
		}
		if len(bp.Charges) == 0 && p.PricingType == PricingPaid {
			v.add(f+".charges", "a paid plan's billing period needs at least one charge")
		}
		for j, c := range bp.Charges {
			cf := fmt.Sprintf("%s.charges[%d]", f, j)
			if !ValidID(c.ID) {
				v.add(cf+".id", idRule)
			} else if seenCharge[c.ID] {
				v.add(cf+".id", "duplicate charge id %q in this plan", c.ID)
			}
			seenCharge[c.ID] = true
			validateCharge(v, cf, c, p.Currency)
		}
	}
	return v.err()
}

func validateCharge(v *validator, f string, c Charge, planCurrency string) {
	if c.Name == "" || utf8.RuneCountInString(c.Name) > 100 {
		v.add(f+".name", "is required, at most 100 characters")
	}
	switch c.Type {
	case ChargeRecurring, ChargeOneTime, ChargeUsage:
	default:
		v.add(f+".type", "must be one of recurring, one_time, usage")
	}
	switch c.Model {
	case ModelFlatFee, ModelPerUnit, ModelTiered, ModelVolume:
	default:
		v.add(f+".model", "must be one of flat_fee, per_unit, tiered, volume")
	}
	if c.Type == ChargeUsage && c.Model == ModelFlatFee {
		v.add(f+".model", "a usage charge must be per_unit, tiered or volume")
	}
	if c.Currency != "" && c.Currency != planCurrency {
		v.add(f+".currency", "must be the plan's currency %s (or omitted); got %q", planCurrency, c.Currency)
	}
	if c.Price.IsNegative() {
		v.add(f+".price", "must not be negative")
	}
	if c.Price.Exponent() < -9 {
		v.add(f+".price", "has more than 9 decimal places")
	}
	if c.DefaultQuantity.IsNegative() {
		v.add(f+".defaultQuantity", "must not be negative")
	}
	needsUOM := c.Model != ModelFlatFee
	if needsUOM && c.UnitOfMeasure == "" {
		v.add(f+".unitOfMeasure", "is required for %s charges", c.Model)
	}
	if len(c.UnitOfMeasure) > 25 {
		v.add(f+".unitOfMeasure", "must be at most 25 characters")
	}
	if c.Type == ChargeUsage && c.Feature == "" {
		v.add(f+".feature", "is required for usage charges (the feature or meter they bill)")
	}
	switch c.BillingTiming {
	case "", TimingInAdvance, TimingInArrears:
	default:
		v.add(f+".billingTiming", "must be one of in_advance, in_arrears")
	}
	if c.BillingTiming != "" && c.Type != ChargeRecurring {
		v.add(f+".billingTiming", "applies to recurring charges only")
	}
	tiered := c.Model == ModelTiered || c.Model == ModelVolume
	if tiered && len(c.Tiers) == 0 {
		v.add(f+".tiers", "at least one tier is required for %s charges", c.Model)
	}
	if !tiered && len(c.Tiers) > 0 {
		v.add(f+".tiers", "tiers apply to tiered and volume charges only")
	}
	prev := decimal.Zero
	for k, t := range c.Tiers {
		tf := fmt.Sprintf("%s.tiers[%d]", f, k)
		if t.Price.IsNegative() {
			v.add(tf+".price", "must not be negative")
		}
		switch t.PriceFormat {
		case PriceFlatFee, PricePerUnit:
		default:
			v.add(tf+".priceFormat", "must be one of flat_fee, per_unit")
		}
		last := k == len(c.Tiers)-1
		if t.UpTo == nil {
			if !last {
				v.add(tf+".upTo", "only the last tier may be open-ended")
			}
			continue
		}
		if !t.UpTo.GreaterThan(prev) {
			v.add(tf+".upTo", "must be greater than the previous tier's upTo (%s)", prev)
		}
		prev = *t.UpTo
	}
}

// Validate checks a customer.
func (c Customer) Validate() error {
	v := &validator{}
	if !ValidID(c.ID) {
		v.add("id", idRule)
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > 255 {
		v.add("name", "is required, at most 255 characters")
	}
	if c.Email != "" && !emailPattern.MatchString(c.Email) {
		v.add("email", "is not an email address")
	}
	if !ValidCurrency(c.Currency) {
		v.add("currency", "must be an ISO 4217 currency code, e.g. USD; got %q", c.Currency)
	}
	if c.BillTo != nil {
		b := c.BillTo
		if b.FirstName == "" || utf8.RuneCountInString(b.FirstName) > 100 {
			v.add("billTo.firstName", "is required, at most 100 characters")
		}
		if b.LastName == "" || utf8.RuneCountInString(b.LastName) > 100 {
			v.add("billTo.lastName", "is required, at most 100 characters")
		}
		if b.Email != "" && !emailPattern.MatchString(b.Email) {
			v.add("billTo.email", "is not an email address")
		}
		if b.Country == "" {
			v.add("billTo.country", "is required")
		}
	}
	return v.err()
}

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// Validate checks a subscription on its own (references are checked by the store).
func (s Subscription) Validate() error {
	v := &validator{}
	if !ValidID(s.ID) {
		v.add("id", idRule)
	}
	if !ValidID(s.CustomerID) {
		v.add("customerId", idRule)
	}
	if !ValidID(s.PlanID) {
		v.add("planId", idRule)
	}
	if !ValidID(s.BillingPeriodID) {
		v.add("billingPeriodId", idRule)
	}
	switch s.Status {
	case StatusTrial, StatusActive, StatusSuspended, StatusCancelled:
	default:
		v.add("status", "must be one of trial, active, suspended, cancelled")
	}
	if !validDate(s.StartDate) {
		v.add("startDate", "must be a date YYYY-MM-DD")
	}
	if s.TermMonths < 0 || s.TermMonths > 120 {
		v.add("termMonths", "must be between 0 (evergreen) and 120")
	}
	if s.RenewalCount < 0 {
		v.add("renewalCount", "must not be negative")
	}
	if s.RenewalCount > 0 && s.TermMonths == 0 {
		v.add("renewalCount", "an evergreen subscription (termMonths 0) cannot be renewed")
	}
	if s.SuspendDate != "" && !validDate(s.SuspendDate) {
		v.add("suspendDate", "must be a date YYYY-MM-DD")
	}
	if s.ResumeDate != "" && !validDate(s.ResumeDate) {
		v.add("resumeDate", "must be a date YYYY-MM-DD")
	}
	if s.Status == StatusSuspended && s.SuspendDate == "" {
		v.add("suspendDate", "is required when status is suspended")
	}
	switch s.CancellationPolicy {
	case "", CancelEndOfCurrentTerm, CancelEndOfLastInvoicePeriod, CancelSpecificDate:
	default:
		v.add("cancellationPolicy", "must be one of end_of_current_term, end_of_last_invoice_period, specific_date")
	}
	if s.Status == StatusCancelled && s.CancellationPolicy == "" {
		v.add("cancellationPolicy", "is required when status is cancelled")
	}
	if s.Status != StatusCancelled && s.CancellationPolicy != "" {
		v.add("cancellationPolicy", "is only allowed when status is cancelled")
	}
	if s.CancellationPolicy == CancelSpecificDate && !validDate(s.CancellationDate) {
		v.add("cancellationDate", "must be a date YYYY-MM-DD with policy specific_date")
	}
	if s.CancellationPolicy != CancelSpecificDate && s.CancellationDate != "" {
		v.add("cancellationDate", "is only allowed with policy specific_date")
	}
	seen := map[string]bool{}
	for i, a := range s.AddOns {
		f := fmt.Sprintf("addOns[%d]", i)
		if !ValidID(a.PlanID) {
			v.add(f+".planId", idRule)
		} else if seen[a.PlanID] {
			v.add(f+".planId", "add-on %q listed twice", a.PlanID)
		}
		seen[a.PlanID] = true
		if !ValidID(a.BillingPeriodID) {
			v.add(f+".billingPeriodId", idRule)
		}
		if !a.Quantity.IsPositive() {
			v.add(f+".quantity", "must be greater than 0")
		}
	}
	for id, q := range s.ChargeQuantities {
		if q.IsNegative() {
			v.add("chargeQuantities."+id, "must not be negative")
		}
	}
	return v.err()
}
