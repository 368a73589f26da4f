package outbound

import (
	"context"
	"encoding/json"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// InboxSubscriptionChanged is the inbox event of a subscription changed in
// Zuora (engine/inbound's EventSubscriptionChanged): the drift check queues
// one for a version billsync did not write, so the change is adopted the
// way the subscription-updated callout's is, never repaired back.
const InboxSubscriptionChanged = "subscription_changed"

// ZuoraDiffers returns the order actions (by type) the reconcile would send
// to bring Zuora's subscription zs to the local subscription sub: none when
// Zuora already holds it. ok is false when the comparison cannot be made
// (a plan not in Zuora yet).
func (r *Reconcilers) ZuoraDiffers(ctx context.Context, sub engine.Subscription, rec store.SyncRecord, zs zuora.Subscription) (actions []string, ok bool, err error) {
	plans, err := r.SubscriptionPlans(ctx, sub)
	if err != nil {
		return nil, false, err
	}
	desired, missing, err := r.desiredRatePlans(ctx, sub, plans)
	if err != nil || len(missing) > 0 {
		return nil, false, err
	}
	cds, wait, err := r.desiredCoupons(ctx, sub)
	if err != nil || wait != nil {
		return nil, false, err
	}
	desired = append(desired, cds...)
	var pushed pushedSubscription
	if rec.PushedState != "" {
		_ = json.Unmarshal([]byte(rec.PushedState), &pushed)
	}
	acts, _, err := r.diff(ctx, sub, desired, zs, &pushed)
	if err != nil {
		return []string{err.Error()}, true, nil
	}
	for _, a := range acts {
		actions = append(actions, a.Type)
	}
	return actions, true, nil
}

// queueAdoption hands a subscription version billsync did not write to the
// inbox (as a subscription-updated callout would): inbound processing
// re-reads it and adopts it (or lets a pending local change win). It
// reports false when adoption is off (Config.AdoptZuoraChanges).
func (r *Reconcilers) queueAdoption(ctx context.Context, zs zuora.Subscription) (bool, error) {
	if !r.cfg.AdoptZuoraChanges {
		return false, nil
	}
	_, _, err := r.db.AcceptInbox(ctx, store.InboxEntry{Event: InboxSubscriptionChanged, ObjectID: zs.SubscriptionNumber,
		NotificationID: "drift-" + zs.ID, Source: "drift", Payload: "{}"})
	return err == nil, err
}
