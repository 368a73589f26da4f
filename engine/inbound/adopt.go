package inbound

import (
	"context"
	"errors"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// adoptChange applies a change made in Zuora (its UI, another system) to a
// subscription billsync owns: a quantity, a plan, an add-on, a suspension or
// a cancellation. The rule (docs/DESIGN.md §2a):
//
//   - Only a version billsync did not write is a Zuora-side change: the
//     version on the sync record (the one billsync's last order made, or
//     the last one adopted) is billsync's own, and so is a version that
//     already holds the local subscription (its own order's callout, read
//     before the order's outcome was recorded).
//   - A local change not yet in Zuora (the record's desired revision is
//     ahead of the synced one) wins: nothing is adopted, and the outbound
//     reconcile pushes the local state over Zuora's (it diffs against the
//     version Zuora has now). A cancellation is the exception: Zuora cannot
//     reactivate a cancelled subscription, so it is adopted always.
//   - Otherwise the local subscription becomes what Zuora has (a new
//     revision, subscription.updated or .canceled once), only if it is still
//     the revision read (a local change made meanwhile wins), and its sync
//     record is settled on Zuora's version with the outbound reconciler's
//     hash: nothing is sent back.
//
// Processing re-reads the subscription from Zuora (its latest version), so a
// callout delivered again or out of order finds the version already on the
// record and does nothing.
func (s *Service) adoptChange(ctx context.Context, subID, custID string, zs zuora.Subscription, res *Result) error {
	if subID == "" {
		return nil
	}
	local, err := s.db.GetSubscription(ctx, subID)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rec, err := s.db.GetSyncRecord(ctx, store.EntitySubscription, subID)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.ZuoraID == zs.ID {
		return nil // billsync's own version, or one adopted already
	}
	cancelled := zs.Status == "Cancelled" && local.Status != engine.StatusCancelled
	if rec.DesiredRevision > rec.SyncedRevision && !cancelled {
		res.add("subscription %s has a Zuora version (%s) billsync's record does not name while local revision %d is not settled (billsync's own push in flight, or a local change pending): the local state wins and is pushed over any change made in Zuora",
			subID, zs.ID, rec.DesiredRevision)
		return nil
	}
	if local.Scheduled != nil {
		// billsync's own scheduled order having run is no change made in
		// Zuora: the scheduled-order-completed callout (or the next
		// reconcile) applies the pending change, once.
		if what, ok, err := s.out.ZuoraDiffers(ctx, local.Applied(), rec, zs); err != nil {
			return err
		} else if ok && len(what) == 0 {
			res.add("subscription %s: Zuora's version %s is its pending scheduled change, run; taken in by the scheduled order's callout or the next reconcile", subID, zs.ID)
			return nil
		}
	}
	what, ok, err := s.out.ZuoraDiffers(ctx, local, rec, zs)
	if err != nil || !ok {
		return err
	}
	cust, err := s.db.GetCustomer(ctx, custID)
	if err != nil {
		return err
	}
	if len(what) == 0 {
		// Zuora's version holds the local subscription: record the version.
		if err := s.db.MarkPending(ctx, store.EntitySubscription, subID); err != nil {
			return err
		}
		return s.settleSubscription(ctx, local, cust, zs)
	}
	adopted, err := s.subscriptionFrom(ctx, subID, cust, zs, &local, res)
	if err != nil {
		return err
	}
	adopted.Metadata, adopted.BillingID = local.Metadata, local.BillingID
	if !cancelled && adopted.Status == engine.StatusCancelled {
		adopted.CancellationPolicy, adopted.CancellationDate = local.CancellationPolicy, local.CancellationDate
	}
	stored, _, err := s.db.AdoptSubscription(ctx, adopted, local.Revision)
	if errors.Is(err, store.ErrStaleRevision) {
		res.add("subscription %s changed locally while Zuora's change was read: the local change wins", subID)
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.out.RecordCharges(ctx, subID, zs); err != nil {
		return err
	}
	if err := s.settleSubscription(ctx, stored, cust, zs); err != nil {
		return err
	}
	if cancelled {
		res.add("subscription %s was cancelled in Zuora (ends %s): cancelled locally, nothing sent back", subID, stored.CancellationDate)
	} else {
		res.add("subscription %s was changed in Zuora (%s): adopted as revision %d, nothing sent back", subID, strings.Join(what, ", "), stored.Revision)
	}
	return nil
}
