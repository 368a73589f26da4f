package outbound

import (
	"context"
	"errors"
	"fmt"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// Explain says, from local state only (no Zuora call), what a reconcile of the
// record would do: the `sync --dry-run` answer.
func (r *Reconcilers) Explain(ctx context.Context, rec store.SyncRecord) (string, error) {
	switch rec.EntityKind {
	case store.EntityPlan:
		if !r.cfg.Enabled(SwitchCatalog) {
			return "skip: " + ReasonSwitchedOffCatalog, nil
		}
		p, err := r.db.GetPlan(ctx, rec.EntityID)
		if err != nil {
			return "", err
		}
		want := r.CatalogPayloads(p)
		if rec.PayloadHash == engine.HashJSON(want) && rec.ZuoraID != "" {
			return "unchanged: no Zuora call", nil
		}
		creates, updates := 0, 0
		count := func(kind mappings.Kind, key string, payload any) error {
			m, err := r.maps.Get(ctx, kind, key)
			if errors.Is(err, mappings.ErrNotFound) {
				creates++
				return nil
			}
			if err != nil {
				return err
			}
			if m.PayloadHash != engine.HashJSON(payload) {
				updates++
			}
			return nil
		}
		if err := count(mappings.Product, p.ID, want.Product); err != nil {
			return "", err
		}
		for _, rp := range want.RatePlans {
			if !rp.Archived {
				if err := count(mappings.RatePlan, rp.Key, rp.Payload); err != nil {
					return "", err
				}
			}
		}
		for _, ch := range want.Charges {
			if !ch.Archived {
				if err := count(mappings.Charge, ch.Key, ch.Payload); err != nil {
					return "", err
				}
			}
		}
		return fmt.Sprintf("would create %d and update up to %d catalog objects (product, rate plans, charges)", creates, updates), nil
	case store.EntityCoupon:
		if !r.cfg.Enabled(SwitchCatalog) {
			return "skip: " + ReasonSwitchedOffCatalog, nil
		}
		c, err := r.db.GetCoupon(ctx, rec.EntityID)
		if err != nil {
			return "", err
		}
		if rec.PayloadHash == engine.HashJSON(r.CouponPayloads(c)) && rec.ZuoraID != "" {
			return "unchanged: no Zuora call", nil
		}
		return "would write the coupon's discount product, rate plan and charge (create what is missing, update what changed)", nil
	case store.EntityCustomer:
		if !r.cfg.Enabled(SwitchCustomers) {
			return "skip: " + ReasonSwitchedOffCustomers, nil
		}
		c, err := r.db.GetCustomer(ctx, rec.EntityID)
		if err != nil {
			return "", err
		}
		acct, ok, err := r.billingAccount(ctx, c.ID)
		if err != nil {
			return "", err
		}
		if ok {
			if acct.PayloadHash == r.AccountHash(c) {
				return "unchanged: no Zuora call", nil
			}
			return "would update account " + acct.ZuoraNumber, nil
		}
		if reason := customerSkipReason(c); reason != "" {
			return "skip: " + reason, nil
		}
		return "no account yet: it is created with the customer's first billable subscription (one order)", nil
	case store.EntitySubscription:
		if !r.cfg.Enabled(SwitchSubscriptions) {
			return "skip: " + ReasonSwitchedOffSubscriptions, nil
		}
		sub, err := r.db.GetSubscription(ctx, rec.EntityID)
		if err != nil {
			return "", err
		}
		plan, err := r.db.GetPlan(ctx, sub.PlanID)
		if err != nil {
			return "", err
		}
		sm, err := r.maps.Get(ctx, mappings.Subscription, sub.ID)
		mapped := err == nil
		if reason := subscriptionSkipReason(sub, plan, mapped); reason != "" {
			return "skip: " + reason, nil
		}
		cust, err := r.db.GetCustomer(ctx, sub.CustomerID)
		if err != nil {
			return "", err
		}
		if !mapped {
			if _, ok, _ := r.billingAccount(ctx, cust.ID); !ok {
				if reason := customerSkipReason(cust); reason != "" {
					return "skip: " + reason, nil
				}
				return fmt.Sprintf("would create account %s and subscription %s in one order", r.AccountNumber(cust.ID), r.SubscriptionNumber(sub.ID)), nil
			}
			return "would create subscription " + r.SubscriptionNumber(sub.ID) + " in one order", nil
		}
		if rec.State == store.StateSynced && rec.PayloadHash != "" {
			return "unchanged: no Zuora call", nil
		}
		out := "would read subscription " + sm.ZuoraNumber + " and apply the differences as one order"
		if sub.Scheduled != nil {
			out += fmt.Sprintf(", and keep the pending change (%s) as scheduled order %s", sub.Scheduled.Date, ScheduledOrderNumber(sub))
		}
		return out, nil
	}
	return "", fmt.Errorf("unknown entity kind %q", rec.EntityKind)
}
