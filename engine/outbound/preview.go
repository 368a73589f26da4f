package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// previewer is the part of the Zuora client that previews.
type previewer interface {
	PreviewOrder(ctx context.Context, p zuora.OrderPreview) ([]zuora.PreviewInvoice, error)
	PreviewSubscription(ctx context.Context, key, start, thru string) ([]zuora.PreviewInvoice, error)
}

// Preview asks Zuora what it would invoice, changing nothing: with
// proposed, for that state of the subscription (an order preview of the
// difference billsync would send, or of the CreateSubscription for a
// subscription not in Zuora yet); without, the subscription's next invoice
// as it stands. through ("" = a month from today, or from the start of a
// new subscription) bounds the service periods billed.
func (r *Reconcilers) Preview(ctx context.Context, subID string, proposed *engine.Subscription, through string) (engine.Preview, error) {
	pz, ok := r.z.(previewer)
	if !ok {
		return engine.Preview{}, errors.New("the Zuora connector cannot preview")
	}
	out := engine.Preview{SubscriptionID: subID}
	today := r.today()
	sm, err := r.maps.Get(ctx, mappings.Subscription, subID)
	mapped := err == nil
	if err != nil && !errors.Is(err, mappings.ErrNotFound) {
		return out, err
	}
	sub := proposed
	if sub == nil {
		cur, err := r.db.GetSubscription(ctx, subID)
		if err != nil {
			return out, err
		}
		sub = &cur
	}
	cust, err := r.db.GetCustomer(ctx, sub.CustomerID)
	if errors.Is(err, engine.ErrNotFound) {
		return out, &engine.ValidationError{Errors: []engine.FieldError{{Field: "subscription.customerId", Message: fmt.Sprintf("unknown customer %q", sub.CustomerID)}}}
	}
	if err != nil {
		return out, err
	}
	out.Currency = cust.Currency
	plans, err := r.SubscriptionPlans(ctx, *sub)
	if errors.Is(err, engine.ErrNotFound) {
		return out, &engine.ValidationError{Errors: []engine.FieldError{{Field: "subscription.planId", Message: err.Error()}}}
	}
	if err != nil {
		return out, err
	}
	from := today
	if proposed != nil && !mapped && sub.StartDate > today {
		from = sub.StartDate
	}
	if through == "" {
		end, err := engine.AddMonths(from, 1)
		if err != nil {
			return out, err
		}
		through = dayBefore(end)
	}
	if through < from {
		return out, &engine.ValidationError{Errors: []engine.FieldError{{Field: "through", Message: "must not be before " + from}}}
	}
	out.Through = through

	var invoices []zuora.PreviewInvoice
	if proposed == nil {
		if !mapped {
			return out, &engine.ConflictError{Field: "subscription", Message: "the subscription is not in Zuora yet: preview it with a proposed subscription (the new subscription's first invoice)"}
		}
		out.Kind, out.ZuoraOperation = engine.PreviewNextInvoice, "POST /v1/subscriptions/{subscription-key}/preview"
		if invoices, err = pz.PreviewSubscription(ctx, sm.ZuoraNumber, from, through); err != nil {
			return out, err
		}
		return r.previewItems(ctx, out, invoices, plans)
	}

	if err := r.checkOwner(ctx, *proposed); err != nil {
		return out, err
	}
	if err := r.checkProposed(ctx, *proposed, cust, plans, mapped); err != nil {
		return out, err
	}
	desired, missing, err := r.desiredRatePlans(ctx, *proposed, plans)
	if err != nil {
		return out, err
	}
	cds, wait, err := r.desiredCoupons(ctx, *proposed)
	if err != nil {
		return out, err
	}
	if len(missing) > 0 || wait != nil {
		what := "plan " + strings.Join(uniq(missing), ", ")
		if wait != nil {
			what = wait.WaitReason
		}
		return out, &engine.ConflictError{Field: "subscription", Message: "not in Zuora yet (" + what + "): Zuora can only preview what its catalog has; sync the catalog first"}
	}
	desired = append(desired, cds...)
	p := zuora.OrderPreview{OrderDate: today, PreviewOptions: zuora.PreviewOptions{PreviewThruType: "SpecificDate",
		PreviewTypes: []string{"BillingDocs"}, SpecificPreviewThruDate: through}}
	if mapped {
		actual, err := r.z.GetSubscription(ctx, sm.ZuoraNumber)
		if err != nil {
			return out, err
		}
		actions, _, err := r.diff(ctx, *proposed, desired, actual, &pushedSubscription{})
		if err != nil {
			return out, &engine.ConflictError{Field: "subscription", Message: err.Error()}
		}
		if len(actions) == 0 {
			// Nothing would change: the next invoice is what it bills.
			out.Kind, out.ZuoraOperation = engine.PreviewNextInvoice, "POST /v1/subscriptions/{subscription-key}/preview"
			if invoices, err = pz.PreviewSubscription(ctx, sm.ZuoraNumber, from, through); err != nil {
				return out, err
			}
			return r.previewItems(ctx, out, invoices, plans)
		}
		out.Kind = engine.PreviewChange
		p.ExistingAccountNumber = actual.AccountNumber
		p.Subscriptions = []zuora.OrderSubscription{{SubscriptionNumber: actual.SubscriptionNumber, OrderActions: actions}}
	} else {
		out.Kind = engine.PreviewNewSubscription
		p.OrderDate = sub.StartDate
		cs := &zuora.CreateSubscription{Terms: terms(*sub)}
		for _, d := range desired {
			cs.SubscribeToRatePlans = append(cs.SubscribeToRatePlans, r.ratePlanOverride(sub.ID, d))
		}
		p.Subscriptions = []zuora.OrderSubscription{{OrderActions: []zuora.OrderAction{{Type: "CreateSubscription",
			TriggerDates: triggers(sub.StartDate), CreateSubscription: cs}}}}
		acct, have, err := r.billingAccount(ctx, cust.ID)
		if err != nil {
			return out, err
		}
		if have {
			p.ExistingAccountNumber = acct.ZuoraNumber
		} else {
			p.PreviewAccountInfo = &zuora.PreviewAccountInfo{Currency: cust.Currency}
		}
	}
	out.ZuoraOperation = "POST /v1/orders/preview"
	if invoices, err = pz.PreviewOrder(ctx, p); err != nil {
		return out, err
	}
	return r.previewItems(ctx, out, invoices, plans)
}

// checkProposed applies the store's reference rules to a proposed state
// (nothing is stored).
func (r *Reconcilers) checkProposed(ctx context.Context, s engine.Subscription, cust engine.Customer, plans map[string]engine.Plan, existing bool) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var addOns []engine.Plan
	for _, a := range s.AddOns {
		addOns = append(addOns, plans[a.PlanID])
	}
	if err := engine.CheckSubscriptionRefs(s, cust, plans[s.PlanID], addOns, existing); err != nil {
		return err
	}
	if len(s.Coupons) == 0 {
		return nil
	}
	found, err := r.db.CouponsByID(ctx, s.Coupons)
	if err != nil {
		return err
	}
	var before []string
	if cur, err := r.db.GetSubscription(ctx, s.ID); err == nil {
		before = cur.Coupons
	}
	return engine.CheckCoupons(s, cust, found, before)
}

// checkOwner refuses a proposed state that moves the subscription to
// another customer (the store refuses the write too).
func (r *Reconcilers) checkOwner(ctx context.Context, s engine.Subscription) error {
	cur, err := r.db.GetSubscription(ctx, s.ID)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.CustomerID != s.CustomerID {
		return &engine.ConflictError{Field: "customerId", Message: "a subscription cannot move to another customer; cancel it and create a new one"}
	}
	return nil
}

func dayBefore(date string) string {
	t, err := time.Parse("2006-01-02", date)
	if err != nil {
		return date
	}
	return t.AddDate(0, 0, -1).Format("2006-01-02")
}

// previewItems turns Zuora's previewed invoices into billsync's items:
// local plan, charge and coupon ids from the mappings, and whether a
// charge's service period is shorter than its billing period (prorated).
func (r *Reconcilers) previewItems(ctx context.Context, out engine.Preview, invoices []zuora.PreviewInvoice, plans map[string]engine.Plan) (engine.Preview, error) {
	out.Total = decimal.Zero
	out.Items = []engine.PreviewItem{}
	prorated := map[string]bool{}       // chargeNumber/start -> prorated
	discounted := map[string][]string{} // discount chargeNumber/start -> charge numbers it applies to
	var discounts []int
	for _, inv := range invoices {
		for _, it := range inv.InvoiceItems {
			amt, _ := it.AmountWithoutTax.Decimal()
			q, _ := it.ItemQuantity().Decimal()
			up, _ := it.UnitPrice.Decimal()
			item := engine.PreviewItem{Type: "charge", Name: it.ChargeName, ChargeNumber: it.ChargeNumber, AppliedToChargeNumber: it.AppliedToChargeNumber,
				Quantity: q, UnitPrice: up, Amount: amt, PeriodStart: it.ServiceStartDate, PeriodEnd: it.ServiceEndDate}
			local := ""
			if m, err := r.maps.ByZuoraID(ctx, mappings.Charge, it.ProductRatePlanChargeID); err == nil {
				local = m.LocalID
			} else if !errors.Is(err, mappings.ErrNotFound) {
				return out, err
			}
			if it.ProcessingType == "Discount" {
				item.Type = "discount"
				if rest, ok := strings.CutPrefix(local, store.CouponMappingID("")); ok {
					item.CouponID, _, _ = strings.Cut(rest, "/")
				}
				discounts = append(discounts, len(out.Items))
			} else if planID, chargeID, ok := strings.Cut(local, "/"); ok {
				item.PlanID, item.ChargeID = planID, chargeID
				if c, bp, ok := plans[planID].Charge(chargeID); ok && c.Type != engine.ChargeOneTime {
					item.Prorated = partialPeriod(it.ServiceStartDate, it.ServiceEndDate, bp.Period)
				}
				prorated[it.ChargeNumber+"/"+it.ServiceStartDate] = item.Prorated
			}
			if item.Type == "charge" {
				for _, dd := range it.DiscountDetails {
					k := dd.DiscountChargeNumber + "/" + it.ServiceStartDate
					discounted[k] = append(discounted[k], it.ChargeNumber)
				}
			}
			out.Total = out.Total.Add(amt)
			out.Items = append(out.Items, item)
		}
	}
	for _, i := range discounts {
		it := &out.Items[i]
		if it.AppliedToChargeNumber == "" {
			// A subscription preview names the discount on the charge
			// item (discountDetails) instead: the first such item of the
			// period not matched yet.
			key := it.ChargeNumber + "/" + it.PeriodStart
			if q := discounted[key]; len(q) > 0 {
				it.AppliedToChargeNumber, discounted[key] = q[0], q[1:]
			}
		}
		it.Prorated = prorated[it.AppliedToChargeNumber+"/"+it.PeriodStart]
	}
	return out, nil
}

var periodMonths = map[engine.Period]int{engine.PeriodMonth: 1, engine.PeriodQuarter: 3, engine.PeriodYear: 12}

// partialPeriod tells whether a service period [start, end] is shorter
// than a billing period of p.
func partialPeriod(start, end string, p engine.Period) bool {
	full, err := engine.AddMonths(start, periodMonths[p])
	if err != nil {
		return false
	}
	return dayBefore(full) != end
}
