package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/billsync/billsync/engine"
)

// InboxDone is the state of an inbox entry that was processed. The other
// inbox states are the sync states of the same names (pending, in_flight,
// failed, dead).
const InboxDone = "done"

// InboxEntry is one callout (or poll hit) in the inbox.
type InboxEntry struct {
	ID             int64      `json:"id"`
	Event          string     `json:"event"`
	ObjectID       string     `json:"objectId"`
	NotificationID string     `json:"notificationId"`
	Source         string     `json:"source"`
	Payload        string     `json:"payload"`
	RequestID      string     `json:"requestId,omitempty"`
	Deliveries     int        `json:"deliveries"`
	State          string     `json:"state"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  time.Time  `json:"nextAttemptAt"`
	LastError      string     `json:"lastError,omitempty"`
	Result         string     `json:"result,omitempty"`
	ProcessedAt    *time.Time `json:"processedAt,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	// LeaseToken identifies the claim of an in-flight entry.
	LeaseToken string `json:"-"`
}

type inboxRow struct {
	ID             int64 `gorm:"primaryKey"`
	Event          string
	ObjectID       string
	NotificationID string
	Source         string
	Payload        string
	RequestID      string
	Deliveries     int
	State          string
	Attempts       int
	NextAttemptAt  time.Time
	ClaimedBy      string
	ClaimedUntil   *time.Time
	LeaseToken     string
	LastError      string
	Result         string
	ProcessedAt    *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (inboxRow) TableName() string { return "inbox" }

func inboxEntryFromRow(r inboxRow) InboxEntry {
	return InboxEntry{ID: r.ID, Event: r.Event, ObjectID: r.ObjectID, NotificationID: r.NotificationID, Source: r.Source,
		Payload: r.Payload, RequestID: r.RequestID, Deliveries: r.Deliveries, State: r.State, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(), LastError: r.LastError, Result: r.Result, ProcessedAt: utcPtr(r.ProcessedAt),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), LeaseToken: r.LeaseToken}
}

// AcceptInbox writes an entry durably (one INSERT … ON CONFLICT), pending. A
// repeated (event, object id, notification id) only counts another delivery;
// it reports the entry's id and whether it was a repeat.
func (db *DB) AcceptInbox(ctx context.Context, e InboxEntry) (int64, bool, error) {
	now := db.Now()
	var rows []struct {
		ID         int64
		Deliveries int
	}
	err := db.Gorm.WithContext(ctx).Raw(`INSERT INTO inbox (event, object_id, notification_id, source, payload, request_id,
		deliveries, state, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, 0, ?, ?, ?)
		ON CONFLICT (event, object_id, notification_id) DO UPDATE SET deliveries = inbox.deliveries + 1
		RETURNING id, deliveries`,
		e.Event, e.ObjectID, e.NotificationID, e.Source, e.Payload, truncate(e.RequestID, 64), StatePending, now, now, now).Scan(&rows).Error
	if err != nil {
		return 0, false, fmt.Errorf("inbox: %w", err)
	}
	if len(rows) == 0 {
		return 0, false, errors.New("inbox: insert returned no row")
	}
	return rows[0].ID, rows[0].Deliveries > 1, nil
}

// ClaimInbox takes up to n due entries for holder until the lease ends:
// pending or failed ones whose time has come, and in-flight ones whose lease
// lapsed (a crashed process), each with a new lease token, in due order.
func (db *DB) ClaimInbox(ctx context.Context, holder string, n int, lease time.Duration) ([]InboxEntry, error) {
	now := db.Now()
	lock := ""
	if db.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := `UPDATE inbox SET state = ?, claimed_by = ?, lease_token = ?, claimed_until = ?, updated_at = ?
		WHERE id IN (SELECT id FROM inbox
			WHERE (state IN (?, ?) AND next_attempt_at <= ?) OR (state = ? AND claimed_until < ?)
			ORDER BY next_attempt_at, id LIMIT ?` + lock + `)
		RETURNING *`
	var rows []inboxRow
	err := db.Gorm.WithContext(ctx).Raw(q, StateInFlight, holder, holder+"/"+randomToken(), now.Add(lease), now,
		StatePending, StateFailed, now, StateInFlight, now, n).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim inbox: %w", err)
	}
	slices.SortFunc(rows, func(a, b inboxRow) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	out := make([]InboxEntry, len(rows))
	for i, r := range rows {
		out[i] = inboxEntryFromRow(r)
	}
	return out, nil
}

// HeartbeatInbox extends, to now+lease, the inbox leases holder still holds
// among the given ones, and returns the entry ids it extended.
func (db *DB) HeartbeatInbox(ctx context.Context, holder string, leases []Lease, lease time.Duration) (map[int64]bool, error) {
	return db.heartbeat(ctx, "inbox", holder, leases, lease)
}

// InboxOutcome is what processing an entry came to.
type InboxOutcome struct {
	State       string // InboxDone, StateFailed or StateDead
	Result      string // what processing did (done)
	Error       string // why it failed (failed, dead)
	Attempts    int    // attempts so far, this one included (failed, dead)
	NextAttempt time.Time
}

// FinishInbox records the outcome of a claimed entry, or refuses with
// ErrLeaseLost (writing nothing) when holder's lease lapsed or the entry was
// claimed again.
func (db *DB) FinishInbox(ctx context.Context, e InboxEntry, holder string, o InboxOutcome) error {
	now := db.Now()
	upd := map[string]any{"state": o.State, "claimed_by": "", "lease_token": "", "claimed_until": nil, "updated_at": now}
	if o.State == InboxDone {
		upd["result"], upd["last_error"], upd["processed_at"] = truncate(o.Result, 2000), "", now
	} else {
		upd["attempts"], upd["last_error"] = o.Attempts, truncate(o.Error, 2000)
		if !o.NextAttempt.IsZero() {
			upd["next_attempt_at"] = o.NextAttempt
		}
	}
	return db.finishHeld(ctx, &inboxRow{}, e.ID, holder, e.LeaseToken, now, upd)
}

// ReleaseInbox hands back the entries holder still holds (soft stop).
func (db *DB) ReleaseInbox(ctx context.Context, holder string) error {
	return db.releaseHeld(ctx, &inboxRow{}, holder)
}

// InboxFilter selects inbox entries: by id ascending after AfterID, or, with
// NewestFirst, descending before BeforeID (0: from the newest).
type InboxFilter struct {
	State       string
	Event       string
	Source      string
	AfterID     int64
	BeforeID    int64
	NewestFirst bool
	Limit       int // default 50, at most 500
}

// ListInbox returns a page of entries and the cursor of the next page (0 at the end).
func (db *DB) ListInbox(ctx context.Context, f InboxFilter) ([]InboxEntry, int64, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Limit(limit + 1)
	if f.NewestFirst {
		q = q.Order("id DESC")
		if f.BeforeID > 0 {
			q = q.Where("id < ?", f.BeforeID)
		}
	} else {
		q = q.Where("id > ?", f.AfterID).Order("id")
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Event != "" {
		q = q.Where("event = ?", f.Event)
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
		out = append(out, inboxEntryFromRow(r))
	}
	return out, next, nil
}

// GetInbox returns one entry.
func (db *DB) GetInbox(ctx context.Context, id int64) (InboxEntry, error) {
	var r inboxRow
	err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return InboxEntry{}, &engine.NotFoundError{Kind: "inbox entry", ID: fmt.Sprint(id)}
	}
	return inboxEntryFromRow(r), err
}

// RetryInbox makes an entry that is not in flight due now with its attempts
// reset; it reports whether it changed one.
func (db *DB) RetryInbox(ctx context.Context, id int64) (bool, error) {
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&inboxRow{}).Where("id = ? AND state <> ?", id, StateInFlight).
		Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected > 0, res.Error
}

// InboxCounts returns the number of entries per state.
func (db *DB) InboxCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		State string
		N     int64
	}
	err := db.Gorm.WithContext(ctx).Model(&inboxRow{}).Select("state, count(*) AS n").Group("state").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, err
}

// PruneInbox deletes processed entries last updated before cutoff and
// reports how many.
func (db *DB) PruneInbox(ctx context.Context, cutoff time.Time) (int64, error) {
	res := db.Gorm.WithContext(ctx).Where("state = ? AND updated_at < ?", InboxDone, cutoff).Delete(&inboxRow{})
	return res.RowsAffected, res.Error
}
