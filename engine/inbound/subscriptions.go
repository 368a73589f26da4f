package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// syncSubscription processes a subscription-created or -changed hint.
func (s *Service) syncSubscription(ctx context.Context, key string) (Result, error) {
	zs, err := s.z.GetSubscription(ctx, key)
	if err != nil {
		return Result{}, zuoraErr("read subscription "+key, err)
	}
	if zs.Status == "Expired" && zs.SubscriptionNumber != "" && key != zs.SubscriptionNumber {
		// An amendment expires the version it replaces: a callout naming an
		// old version's id is about the subscription, read by number (its
		// latest version), never a cancellation.
		if zs, err = s.z.GetSubscription(ctx, zs.SubscriptionNumber); err != nil {
			return Result{}, zuoraErr("read subscription "+key, err)
		}
	}
	unlock := s.locks.lock(zs.AccountID)
	defer unlock()
	return s.applySubscription(ctx, zs)
}

// applySubscription brings local state in line with a Zuora subscription:
// billsync's own subscriptions are left alone (only grants are computed);
// others are imported or updated. The caller holds the account's lock.
func (s *Service) applySubscription(ctx context.Context, zs zuora.Subscription) (Result, error) {
	var res Result
	custID, err := s.customerForAccount(ctx, zs.AccountID, &res)
	if err != nil {
		return res, err
	}
	res.CustomerID = custID
	sm, err := s.maps.ByZuoraKey(ctx, mappings.Subscription, zs.SubscriptionNumber)
	mapped := err == nil
	if err != nil && !errors.Is(err, mappings.ErrNotFound) {
		return res, err
	}
	if bid := customString(zs.CustomFields, s.cfg.IDField); bid != "" {
		res.SubscriptionID = bid
		if mapped {
			res.SubscriptionID = sm.LocalID
		}
		res.add("subscription %s was created by billsync; not imported", zs.SubscriptionNumber)
		if err := s.adoptChange(ctx, res.SubscriptionID, custID, zs, &res); err != nil {
			return res, err
		}
		return res, s.updateGrants(ctx, custID, zs, &res)
	}
	if mapped && sm.ParentID != "" && sm.ParentID != custID {
		custID = sm.ParentID
		res.CustomerID = custID
	}
	cust, err := s.db.GetCustomer(ctx, custID)
	if err != nil {
		return res, err
	}
	subID := sm.LocalID
	var existing *engine.Subscription
	if mapped {
		if x, err := s.db.GetSubscription(ctx, subID); err == nil {
			existing = &x
		} else if !errors.Is(err, engine.ErrNotFound) {
			return res, err
		}
	} else {
		if subID, err = s.freeSubscriptionID(ctx, zs.SubscriptionNumber); err != nil {
			return res, err
		}
	}
	res.SubscriptionID = subID
	local, err := s.subscriptionFrom(ctx, subID, cust, zs, existing, &res)
	if err != nil {
		return res, err
	}
	if err := s.maps.Put(ctx, mappings.Mapping{Kind: mappings.Subscription, LocalID: subID, ZuoraID: zs.ID, ZuoraNumber: zs.SubscriptionNumber, ParentID: custID}); err != nil {
		return res, err
	}
	if err := s.at(ctx, "subscription-mapped"); err != nil {
		return res, err
	}
	stored, changed, err := s.db.UpsertSubscription(ctx, local)
	if err != nil {
		var ve *engine.ValidationError
		var ce *engine.ConflictError
		if errors.As(err, &ve) || errors.As(err, &ce) {
			return res, reconcile.Terminal{Err: fmt.Errorf("subscription %s cannot be stored: %w", zs.SubscriptionNumber, err)}
		}
		return res, err
	}
	if err := s.out.RecordCharges(ctx, subID, zs); err != nil {
		return res, err
	}
	if err := s.settleSubscription(ctx, stored, cust, zs); err != nil {
		return res, err
	}
	switch {
	case existing == nil:
		res.add("created subscription %s from %s", subID, zs.SubscriptionNumber)
	case changed:
		res.add("updated subscription %s from %s (status %s)", subID, zs.SubscriptionNumber, stored.Status)
	default:
		res.add("subscription %s already matches %s", subID, zs.SubscriptionNumber)
	}
	return res, s.updateGrants(ctx, custID, zs, &res)
}

// settleSubscription records that the stored subscription (and its customer)
// are what Zuora has: the hash is the outbound reconciler's desired hash.
func (s *Service) settleSubscription(ctx context.Context, sub engine.Subscription, cust engine.Customer, zs zuora.Subscription) error {
	// The outbound reconciler's own desired hash: with it on the record it
	// sees nothing to push (no echo).
	plans, err := s.out.SubscriptionPlans(ctx, sub)
	if err != nil {
		return err
	}
	hash := outbound.SubscriptionHash(sub, plans)
	if err := s.settle(ctx, store.EntitySubscription, sub.ID, store.Outcome{PayloadHash: hash,
		ZuoraID: zs.ID, ZuoraNumber: zs.SubscriptionNumber, ZuoraURL: s.z.SubscriptionURL(zs.ID)}); err != nil {
		return err
	}
	// Storing the subscription made the customer due again; its account is
	// this one (or another linked one) and already has what billsync would push.
	if m, err := s.maps.ByZuoraID(ctx, mappings.Account, zs.AccountID); err == nil && m.PayloadHash == s.out.AccountHash(cust) {
		return s.settle(ctx, store.EntityCustomer, cust.ID, store.Outcome{PayloadHash: m.PayloadHash, ZuoraID: m.ZuoraID, ZuoraNumber: m.ZuoraNumber,
			ZuoraURL: s.z.AccountURL(m.ZuoraID)})
	}
	return nil
}

func (s *Service) freeSubscriptionID(ctx context.Context, number string) (string, error) {
	id := localID("zs", number)
	for i := 0; ; i++ {
		cand := id
		if i > 0 {
			cand = localID("zs", fmt.Sprintf("%s-%d", engine.Truncate(id, 56), i+1))
		}
		_, err := s.db.GetSubscription(ctx, cand)
		if errors.Is(err, engine.ErrNotFound) {
			return cand, nil
		}
		if err != nil {
			return "", err
		}
	}
}

func isQuantityCharge(c engine.Charge) bool {
	return c.Type != engine.ChargeUsage && c.Model != engine.ModelFlatFee
}

// subscriptionFrom builds the local subscription of a Zuora subscription:
// the first rate plan of a base product is the plan, the others add-ons.
func (s *Service) subscriptionFrom(ctx context.Context, id string, cust engine.Customer, zs zuora.Subscription, existing *engine.Subscription, res *Result) (engine.Subscription, error) {
	sub := engine.Subscription{ID: id, CustomerID: cust.ID, AutoRenew: zs.AutoRenew, ChargeQuantities: map[string]decimal.Decimal{}}
	// Renewals as Zuora counts them; a local request for more that is not
	// pushed yet is kept.
	sub.RenewalCount = outbound.RenewalsDone(zs)
	if existing != nil && existing.RenewalCount > sub.RenewalCount {
		sub.RenewalCount = existing.RenewalCount
	}
	sub.StartDate = firstNonEmpty(zs.ContractEffectiveDate, zs.SubscriptionStartDate, zs.TermStartDate)
	if zs.TermType == "TERMED" {
		switch zs.InitialTermPeriodType {
		case "Month", "":
			sub.TermMonths = zs.InitialTerm
		case "Year":
			sub.TermMonths = 12 * zs.InitialTerm
		default:
			return sub, reconcile.Terminal{Err: fmt.Errorf("subscription %s has a term of %d %s; billsync counts terms in months", zs.SubscriptionNumber, zs.InitialTerm, zs.InitialTermPeriodType)}
		}
	}
	if sub.TermMonths == 0 {
		sub.RenewalCount = 0
	}
	switch zs.Status {
	case "Suspended":
		sub.Status = engine.StatusSuspended
	case "Cancelled", "Expired":
		sub.Status = engine.StatusCancelled
		sub.CancellationPolicy = engine.CancelSpecificDate
		sub.CancellationDate = firstNonEmpty(zs.SubscriptionEndDate, zs.TermEndDate, s.today())
	default:
		sub.Status = engine.StatusActive
	}
	if sub.Status != engine.StatusCancelled {
		sub.SuspendDate, sub.ResumeDate = zs.Suspension()
	}
	type picked struct {
		ref planRef
		rp  zuora.SubscriptionRatePlan
	}
	var base *picked
	var addOns []picked
	for _, rp := range zs.RatePlans {
		if rp.LastChangeType == "Remove" {
			continue
		}
		ref, err := s.resolveRatePlan(ctx, rp.ProductID, rp.ProductRatePlanID, cust.Currency, res)
		if err != nil {
			return sub, err
		}
		if id, ok := strings.CutPrefix(ref.PlanID, store.CouponMappingID("")); ok {
			sub.Coupons = append(sub.Coupons, id) // a coupon's discount rate plan
			continue
		}
		p, err := s.db.GetPlan(ctx, ref.PlanID)
		if err != nil {
			return sub, err
		}
		if p.Kind == engine.KindPlan && base == nil {
			base = &picked{ref, rp}
			continue
		}
		if p.Kind == engine.KindPlan {
			return sub, reconcile.Terminal{Err: fmt.Errorf("subscription %s has more than one base product (%s and %s); billsync allows one plan plus add-ons", zs.SubscriptionNumber, base.ref.PlanID, ref.PlanID)}
		}
		addOns = append(addOns, picked{ref, rp})
	}
	if base == nil {
		return sub, reconcile.Terminal{Err: fmt.Errorf("subscription %s has no rate plan of a base product", zs.SubscriptionNumber)}
	}
	sub.PlanID, sub.BillingPeriodID = base.ref.PlanID, base.ref.PeriodID
	plan, err := s.db.GetPlan(ctx, sub.PlanID)
	if err != nil {
		return sub, err
	}
	for _, ch := range base.rp.RatePlanCharges {
		cm, err := s.maps.ByZuoraID(ctx, mappings.Charge, ch.ProductRatePlanChargeID)
		if err != nil {
			continue
		}
		c, bp, ok := plan.Charge(cm.LocalID[len(sub.PlanID)+1:])
		if !ok || bp.ID != sub.BillingPeriodID || c.ArchivedAt != nil || !isQuantityCharge(c) {
			continue
		}
		sub.ChargeQuantities[c.ID] = num(ch.Quantity)
	}
	for _, a := range addOns {
		q := decimal.NewFromInt(1)
		ap, err := s.db.GetPlan(ctx, a.ref.PlanID)
		if err != nil {
			return sub, err
		}
		for _, ch := range a.rp.RatePlanCharges {
			cm, err := s.maps.ByZuoraID(ctx, mappings.Charge, ch.ProductRatePlanChargeID)
			if err != nil {
				continue
			}
			if c, _, ok := ap.Charge(cm.LocalID[len(ap.ID)+1:]); ok && isQuantityCharge(c) && num(ch.Quantity).IsPositive() {
				q = num(ch.Quantity)
				break
			}
		}
		sub.AddOns = append(sub.AddOns, engine.AddOn{PlanID: a.ref.PlanID, BillingPeriodID: a.ref.PeriodID, Quantity: q})
	}
	if err := sub.Validate(); err != nil {
		return sub, reconcile.Terminal{Err: fmt.Errorf("subscription %s cannot become a billsync subscription: %w", zs.SubscriptionNumber, err)}
	}
	return sub, nil
}
