package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/mappings"
)

// syncScheduledOrder processes a scheduled-order-completed callout (its
// OrderNumber; the account when the body names no order): the order is read
// again, and each subscription it changed whose pending change it carried
// (outbound.ScheduledOrderNumber) takes that change as its current state
// (store.ApplyScheduledChange, once: a repeated callout finds nothing
// pending) and is settled on what Zuora has, so nothing is sent back.
// Other subscriptions of the order are taken in as any changed subscription.
func (s *Service) syncScheduledOrder(ctx context.Context, accountKey, payload string) (Result, error) {
	number := payloadParam(payload, "ordernumber")
	if number == "" {
		return s.syncOrderCompleted(ctx, accountKey)
	}
	o, err := s.z.GetOrder(ctx, number)
	if zuora.IsNotFound(err) {
		return Result{}, reconcile.Terminal{Err: errors.New("Zuora has no order " + number)}
	}
	if err != nil {
		return Result{}, zuoraErr("read order "+number, err)
	}
	var res Result
	if o.Status != zuora.OrderStatusCompleted {
		res.add("order %s is %s, not completed: nothing to take in", number, o.Status)
		return res, nil
	}
	for _, os := range o.Subscriptions {
		r, err := s.takeScheduledOrder(ctx, o, os.SubscriptionNumber)
		res.CustomerID, res.SubscriptionID = firstNonEmpty(res.CustomerID, r.CustomerID), firstNonEmpty(res.SubscriptionID, r.SubscriptionID)
		res.Actions = append(res.Actions, r.Actions...)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Service) takeScheduledOrder(ctx context.Context, o zuora.OrderInfo, number string) (Result, error) {
	zs, err := s.z.GetSubscription(ctx, number)
	if err != nil {
		return Result{}, zuoraErr("read subscription "+number, err)
	}
	unlock := s.locks.lock(zs.AccountID)
	defer unlock()
	sm, err := s.maps.ByZuoraKey(ctx, mappings.Subscription, zs.SubscriptionNumber)
	if errors.Is(err, mappings.ErrNotFound) {
		return s.applySubscription(ctx, zs)
	}
	if err != nil {
		return Result{}, err
	}
	sub, err := s.db.GetSubscription(ctx, sm.LocalID)
	if errors.Is(err, engine.ErrNotFound) {
		return s.applySubscription(ctx, zs)
	}
	if err != nil {
		return Result{}, err
	}
	var res Result
	res.CustomerID, res.SubscriptionID = sub.CustomerID, sub.ID
	if sub.Scheduled == nil || outbound.ScheduledOrderNumber(sub) != o.OrderNumber {
		res.add("subscription %s: scheduled order %s was taken in already (or is not its pending change)", sub.ID, o.OrderNumber)
	} else {
		stored, applied, err := s.db.ApplyScheduledChange(ctx, sub.ID, sub.Scheduled.Seq)
		if err != nil {
			return res, err
		}
		if applied {
			cust, err := s.db.GetCustomer(ctx, sub.CustomerID)
			if err != nil {
				return res, err
			}
			if err := s.out.RecordCharges(ctx, sub.ID, zs); err != nil {
				return res, err
			}
			if err := s.settleSubscription(ctx, stored, cust, zs); err != nil {
				return res, err
			}
			res.add("scheduled order %s ran on %s: subscription %s now has plan %s/%s and %d add-ons (settled, nothing sent back)",
				o.OrderNumber, o.ScheduledDate(), sub.ID, stored.PlanID, stored.BillingPeriodID, len(stored.AddOns))
		}
	}
	more, err := s.applySubscription(ctx, zs)
	res.Actions = append(res.Actions, more.Actions...)
	return res, err
}

// payloadParam reads one parameter of a callout body (names are not
// case-sensitive), "" when absent.
func payloadParam(payload, name string) string {
	var m map[string]any
	if json.Unmarshal([]byte(payload), &m) != nil {
		return ""
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			if x, ok := v.(string); ok {
				return strings.TrimSpace(x)
			}
		}
	}
	return ""
}
