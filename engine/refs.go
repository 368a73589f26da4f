package engine

import "fmt"

// CheckSubscriptionRefs checks a subscription against the entities it names:
// the customer, its plan and billing period, its add-ons, and the charges whose
// quantities it sets. existing tells whether the subscription is already stored
// (an archived plan still serves existing subscriptions).
func CheckSubscriptionRefs(s Subscription, c Customer, plan Plan, addOns []Plan, existing bool) error {
	v := &validator{}
	if c.ArchivedAt != nil && !existing {
		v.add("customerId", "customer %q is archived", c.ID)
	}
	if plan.Kind != KindPlan {
		v.add("planId", "%q is an add-on, not a plan", plan.ID)
	}
	if plan.ArchivedAt != nil && !existing {
		v.add("planId", "plan %q is archived", plan.ID)
	}
	if plan.Currency != c.Currency {
		v.add("planId", "plan %q is priced in %s but customer %q pays in %s", plan.ID, plan.Currency, c.ID, c.Currency)
	}
	bp, ok := plan.Period(s.BillingPeriodID)
	if !ok || (bp.ArchivedAt != nil && !existing) {
		v.add("billingPeriodId", "plan %q has no active billing period %q", plan.ID, s.BillingPeriodID)
	}
	quantityCharges := map[string]bool{}
	for _, ch := range bp.Charges {
		if ch.ArchivedAt == nil && ch.Model != ModelFlatFee && ch.Type != ChargeUsage {
			quantityCharges[ch.ID] = true
		}
	}
	for i, a := range s.AddOns {
		f := fmt.Sprintf("addOns[%d]", i)
		if i >= len(addOns) {
			break
		}
		ap := addOns[i]
		if ap.Kind != KindAddon {
			v.add(f+".planId", "%q is a plan, not an add-on", ap.ID)
			continue
		}
		if ap.Currency != c.Currency {
			v.add(f+".planId", "add-on %q is priced in %s but the customer pays in %s", ap.ID, ap.Currency, c.Currency)
		}
		abp, ok := ap.Period(a.BillingPeriodID)
		if !ok || (abp.ArchivedAt != nil && !existing) || (ap.ArchivedAt != nil && !existing) {
			v.add(f+".billingPeriodId", "add-on %q has no active billing period %q", ap.ID, a.BillingPeriodID)
			continue
		}
		if ok && abp.Period != bp.Period && bp.ID != "" {
			v.add(f+".billingPeriodId", "add-on billing period is %s but the plan's is %s", abp.Period, bp.Period)
		}
	}
	for id := range s.ChargeQuantities {
		if !quantityCharges[id] {
			v.add("chargeQuantities."+id, "is not a per-unit, tiered or volume recurring/one-time charge of billing period %q", s.BillingPeriodID)
		}
	}
	return v.err()
}
