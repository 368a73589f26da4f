package engine

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidID reports whether s can be an entity id: 1–64 letters, digits, '.', '_', ':' or '-'.
func ValidID(s string) bool { return idPattern.MatchString(s) }

const idRule = "must be 1-64 characters: letters, digits, '.', '_', ':' or '-', starting with a letter or digit"

// text checks that each named string is valid UTF-8 without NUL bytes.
func (v *validator) text(fields ...string) {
	for i := 0; i+1 < len(fields); i += 2 {
		if msg := CheckText(fields[i+1]); msg != "" {
			v.add(fields[i], "%s", msg)
		}
	}
}

// amount checks a decimal against Zuora's precision.
func (v *validator) amount(field string, d decimal.Decimal) {
	if msg := CheckAmount(d); msg != "" {
		v.add(field, "%s", msg)
	}
}

// date checks an optional (when !required) calendar day.
func (v *validator) date(field, s string, required bool) {
	if s == "" && !required {
		return
	}
	if msg := checkDate(s); msg != "" {
		v.add(field, "%s", msg)
	}
}

// Validate checks a plan on its own (references are checked by the store).
func (p Plan) Validate() error {
	v := &validator{}
	v.metadata(p.Metadata)
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
	v.text("name", p.Name, "description", p.Description)
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
	if len(p.BillingPeriods) > MaxBillingPeriods {
		v.add("billingPeriods", "at most %d billing periods (got %d)", MaxBillingPeriods, len(p.BillingPeriods))
		return v.err()
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
		if len(bp.Charges) > MaxChargesPerPeriod {
			v.add(f+".charges", "at most %d charges per billing period (got %d)", MaxChargesPerPeriod, len(bp.Charges))
			continue
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
	v.amount(f+".price", c.Price)
	if c.DefaultQuantity.IsNegative() {
		v.add(f+".defaultQuantity", "must not be negative")
	}
	v.amount(f+".defaultQuantity", c.DefaultQuantity)
	v.text(f+".name", c.Name, f+".unitOfMeasure", c.UnitOfMeasure, f+".feature", c.Feature)
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
	if len(c.Tiers) > MaxTiers {
		v.add(f+".tiers", "at most %d tiers (got %d)", MaxTiers, len(c.Tiers))
		return
	}
	prev := decimal.Zero
	for k, t := range c.Tiers {
		tf := fmt.Sprintf("%s.tiers[%d]", f, k)
		if t.Price.IsNegative() {
			v.add(tf+".price", "must not be negative")
		}
		v.amount(tf+".price", t.Price)
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
		if msg := CheckAmount(*t.UpTo); msg != "" {
			v.add(tf+".upTo", "%s", msg)
			continue
		}
		if !t.UpTo.GreaterThan(prev) {
			v.add(tf+".upTo", "must be greater than the previous tier's upTo (%s)", prev)
		}
		prev = *t.UpTo
	}
}

// Validate checks a customer.
// zuoraFieldName is a Zuora custom field's API name.
var zuoraFieldName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,60}__c$`)

// metadata checks a metadata map: at most 50 keys of 1..100 characters,
// values of at most 255; a ZUORA__ key must name a custom field (…__c).
func (v *validator) metadata(md map[string]string) {
	if len(md) > 50 {
		v.add("metadata", "must have at most 50 keys")
		return
	}
	for k, val := range md {
		if k == "" || utf8.RuneCountInString(k) > 100 {
			v.add("metadata", "keys must be 1 to 100 characters")
		}
		if utf8.RuneCountInString(val) > 255 {
			v.add("metadata."+k, "must be at most 255 characters")
		}
		v.text("metadata."+k, val, "metadata", k)
		if f, ok := strings.CutPrefix(k, ZuoraFieldPrefix); ok && !zuoraFieldName.MatchString(f) {
			v.add("metadata."+k, "a %s key names a Zuora custom field by its API name, e.g. %sRegion__c", ZuoraFieldPrefix, ZuoraFieldPrefix)
		}
	}
}

// billingID checks a link to an existing Zuora record (a number or id).
func (v *validator) billingID(id string) {
	if id != "" && !zuoraKey.MatchString(id) {
		v.add("billingId", "must be a Zuora number or id (letters, digits, '-' and '_', at most 64)")
	}
}

var zuoraKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func (c Customer) Validate() error {
	v := &validator{}
	v.metadata(c.Metadata)
	v.billingID(c.BillingID)
	if !ValidID(c.ID) {
		v.add("id", idRule)
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > 255 {
		v.add("name", "is required, at most 255 characters")
	}
	if c.Email != "" && !emailPattern.MatchString(c.Email) {
		v.add("email", "is not an email address")
	}
	if len(c.Email) > 255 {
		v.add("email", "must be at most 255 characters")
	}
	v.text("name", c.Name, "email", c.Email)
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
		for _, f := range []struct {
			name, value string
			max         int
		}{{"email", b.Email, 255}, {"address1", b.Address1, 255}, {"address2", b.Address2, 255}, {"city", b.City, 40},
			{"state", b.State, 40}, {"postalCode", b.PostalCode, 20}, {"country", b.Country, 64}} {
			if len(f.value) > f.max {
				v.add("billTo."+f.name, "must be at most %d characters", f.max)
			}
		}
		v.text("billTo.firstName", b.FirstName, "billTo.lastName", b.LastName, "billTo.email", b.Email, "billTo.address1", b.Address1,
			"billTo.address2", b.Address2, "billTo.city", b.City, "billTo.state", b.State, "billTo.postalCode", b.PostalCode, "billTo.country", b.Country)
	}
	return v.err()
}

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// Validate checks a subscription on its own (references are checked by the store).
func (s Subscription) Validate() error {
	v := &validator{}
	v.metadata(s.Metadata)
	v.billingID(s.BillingID)
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
	v.date("startDate", s.StartDate, true)
	if s.TermMonths < 0 || s.TermMonths > 120 {
		v.add("termMonths", "must be between 0 (evergreen) and 120")
	}
	if s.RenewalCount < 0 || s.RenewalCount > MaxRenewalCount {
		v.add("renewalCount", "must be between 0 and %d", MaxRenewalCount)
	} else if s.RenewalCount > 0 && s.TermMonths > 0 && checkDate(s.StartDate) == "" {
		if end, _ := AddMonths(s.StartDate, s.TermMonths*(s.RenewalCount+1)); end > MaxDate {
			v.add("renewalCount", "the renewed term would end on %s, after %s", end, MaxDate)
		}
	}
	if s.RenewalCount > 0 && s.TermMonths == 0 {
		v.add("renewalCount", "an evergreen subscription (termMonths 0) cannot be renewed")
	}
	v.date("suspendDate", s.SuspendDate, false)
	v.date("resumeDate", s.ResumeDate, false)
	if s.ResumeDate != "" && s.SuspendDate == "" {
		v.add("resumeDate", "needs a suspendDate")
	}
	if s.ResumeDate != "" && s.SuspendDate != "" && s.ResumeDate <= s.SuspendDate {
		v.add("resumeDate", "must be after suspendDate (%s)", s.SuspendDate)
	}
	if s.SuspendDate != "" && s.StartDate != "" && s.SuspendDate < s.StartDate {
		v.add("suspendDate", "must not be before startDate (%s)", s.StartDate)
	}
	if s.Status == StatusSuspended && s.SuspendDate == "" {
		v.add("suspendDate", "is required when status is suspended")
	}
	if s.WriteOff && s.Status != StatusCancelled {
		v.add("writeOff", "writes off the open invoices of a cancellation: only with status cancelled")
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
	if s.CancellationPolicy == CancelSpecificDate {
		if msg := checkDate(s.CancellationDate); msg != "" {
			v.add("cancellationDate", "%s (required with policy specific_date)", msg)
		} else if s.CancellationDate < s.StartDate {
			v.add("cancellationDate", "must not be before startDate (%s)", s.StartDate)
		}
	}
	if s.CancellationPolicy != CancelSpecificDate && s.CancellationDate != "" {
		v.add("cancellationDate", "is only allowed with policy specific_date")
	}
	if len(s.AddOns) > MaxAddOns {
		v.add("addOns", "at most %d add-ons (got %d)", MaxAddOns, len(s.AddOns))
		return v.err()
	}
	if len(s.ChargeQuantities) > MaxChargeQuantities {
		v.add("chargeQuantities", "at most %d entries (got %d)", MaxChargeQuantities, len(s.ChargeQuantities))
		return v.err()
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
		v.amount(f+".quantity", a.Quantity)
	}
	for i, id := range s.Coupons {
		if !ValidID(id) {
			v.add(fmt.Sprintf("coupons[%d]", i), idRule)
		}
	}
	for id, q := range s.ChargeQuantities {
		if !ValidID(id) {
			v.add("chargeQuantities", "key %q: %s", id, idRule)
			continue
		}
		if q.IsNegative() {
			v.add("chargeQuantities."+id, "must not be negative")
		}
		v.amount("chargeQuantities."+id, q)
	}
	return v.err()
}
