package inbound

import "context"

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
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	q := s.db.Gorm.WithContext(ctx).Order("id DESC").Limit(limit + 1)
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Source != "" {
		q = q.Where("source = ?", f.Source)
	}
	var rows []inboxRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, 0, err
	}
	var next int64
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[len(rows)-1].ID
	}
	out := make([]InboxEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.entry())
	}
	return out, next, nil
}
