package inbound

import (
	"context"

	"github.com/billsync/billsync/engine/store"
)

// RecentFilter selects inbox entries newest first (the admin page).
type RecentFilter struct {
	State    string
	Source   string // SourceCallout or SourcePoll; empty: both
	BeforeID int64  // only entries with a smaller id; 0: from the newest
	Limit    int    // default 50, at most 500
}

// RecentInbox returns entries newest first and the cursor of the next (older)
// page, 0 at the end.
func (s *Service) RecentInbox(ctx context.Context, f RecentFilter) ([]InboxEntry, int64, error) {
	return s.db.ListInbox(ctx, store.InboxFilter{State: f.State, Source: f.Source, BeforeID: f.BeforeID, NewestFirst: true, Limit: f.Limit})
}
