package usage

import (
	"context"

	"github.com/billsync/billsync/engine/store"
)

// Upload is one upload row of a window: the first (Correction 0) carries the
// window's total when it was sealed, later ones the difference.
type Upload = store.UsageUpload

// Window is one (subscription, charge, hour) window with its upload state.
type Window = store.UsageWindow

// WindowFilter selects windows of a subscription.
type WindowFilter = store.UsageWindowFilter

// Stats are the ledger's counts for the admin page and metrics.
type Stats = store.UsageStats

// Windows lists a subscription's windows, newest first, with the quantity
// ingested, uploaded and pending and Zuora's usage ids.
func (l *Ledger) Windows(ctx context.Context, subID string, f WindowFilter) ([]Window, error) {
	if _, err := l.db.GetSubscription(ctx, subID); err != nil {
		return nil, err
	}
	return l.db.UsageWindows(ctx, subID, f)
}

// Stats returns the ledger's counts.
func (l *Ledger) Stats(ctx context.Context) (Stats, error) { return l.db.UsageStats(ctx) }

// ReleaseClaims drops the claims on batches being sent (of every sender
// when owner is empty), so that their outcome-unknown batches are resent at
// once rather than after ClaimTTL. Use it only when no other uploader runs
// (e.g. at start-up of a single instance, or in tests after a crash).
func (l *Ledger) ReleaseClaims(ctx context.Context, owner string) (int64, error) {
	return l.db.ReleaseUsageClaims(ctx, owner)
}
