package inbound

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/retry"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// Events the inbox knows.
const (
	EventAccountCreated      = "account_created"
	EventSubscriptionCreated = "subscription_created"
	EventSubscriptionChanged = "subscription_changed"
)

// Sources of inbox entries.
const (
	SourceCallout = "callout"
	SourcePoll    = "poll"
)

// Inbox entry states.
const (
	StatePending  = "pending"
	StateInFlight = "in_flight"
	StateDone     = "done"
	StateFailed   = "failed"
	StateDead     = "dead"
)

// Callout is one accepted notification (or poll hit) to write to the inbox.
type Callout struct {
	Event    string // EventAccountCreated, …
	ObjectID string // Zuora account id/number or subscription number/id
	// NotificationID is Zuora-Notification-Id (the same across Zuora's
	// retries of one notification). Empty: the entry is never de-duplicated.
	NotificationID string
	RequestID      string // Zuora-Request-Id, informational (changes per retry)
	Source         string // SourceCallout (default) or SourcePoll
	Payload        string // the body as received (flat JSON)
}

// Accepted tells what Accept did.
type Accepted struct {
	ID        int64 `json:"id"`
	Duplicate bool  `json:"duplicate"`
}

// InboxEntry is one inbox row.
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

func (r inboxRow) entry() InboxEntry {
	e := InboxEntry{ID: r.ID, Event: r.Event, ObjectID: r.ObjectID, NotificationID: r.NotificationID, Source: r.Source,
		Payload: r.Payload, RequestID: r.RequestID, Deliveries: r.Deliveries, State: r.State, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(), LastError: r.LastError, Result: r.Result, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.ProcessedAt != nil {
		t := r.ProcessedAt.UTC()
		e.ProcessedAt = &t
	}
	return e
}

// Accept writes a callout to the inbox durably (one INSERT … ON CONFLICT) and
// wakes a worker. A repeated (event, object, notification id) only counts
// another delivery.
func (s *Service) Accept(ctx context.Context, c Callout) (Accepted, error) {
	if c.Event == "" || c.ObjectID == "" {
		return Accepted{}, errors.New("inbound: event and object id are required")
	}
	if c.Source == "" {
		c.Source = SourceCallout
	}
	if c.NotificationID == "" {
		// Without Zuora's stable id there is no safe key: keep every delivery
		// (processing is idempotent; a lost event is worse than a repeated one).
		c.NotificationID = "none-" + randomID()
	}
	if c.Payload == "" {
		c.Payload = "{}"
	}
	now := s.now()
	var rows []struct {
		ID         int64
		Deliveries int
	}
	err := s.db.Gorm.WithContext(ctx).Raw(`INSERT INTO inbox (event, object_id, notification_id, source, payload, request_id,
		deliveries, state, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, 0, ?, ?, ?)
		ON CONFLICT (event, object_id, notification_id) DO UPDATE SET deliveries = inbox.deliveries + 1
		RETURNING id, deliveries`,
		c.Event, c.ObjectID, c.NotificationID, c.Source, c.Payload, truncate(c.RequestID, 64), StatePending, now, now, now).Scan(&rows).Error
	if err != nil {
		return Accepted{}, fmt.Errorf("inbox: %w", err)
	}
	if len(rows) == 0 {
		return Accepted{}, errors.New("inbox: insert returned no row")
	}
	a := Accepted{ID: rows[0].ID, Duplicate: rows[0].Deliveries > 1}
	if a.Duplicate {
		s.count(func(st *Stats) { st.Duplicates++ })
	} else {
		s.count(func(st *Stats) { st.Accepted++ })
		s.Kick()
	}
	return a, nil
}

// Kick wakes the workers to claim now.
func (s *Service) Kick() { s.pool.Kick() }

// Run processes the inbox until ctx ends, on the same pool machinery as the
// sync records (leases extended while an entry is processed, a deadline
// before the lease could lapse, panics as retryable failures); then it lets
// the entries under way finish and hands back its claims. In-flight claims
// of a crashed process are taken over by any process once their lease
// lapses.
func (s *Service) Run(ctx context.Context) error { return s.pool.Run(ctx) }

// Drain processes entries until none is due (entries waiting for a later
// retry are left), and returns how many were processed.
func (s *Service) Drain(ctx context.Context) (int, error) { return s.pool.Drain(ctx) }

// inboxQueue is the inbox as a worker.Queue.
type inboxQueue struct{ s *Service }

// Claim takes up to n due entries: pending or failed ones whose time has
// come, and in-flight ones whose lease lapsed (a crashed process), each with
// a new lease token.
func (q inboxQueue) Claim(ctx context.Context, holder string, n int, lease time.Duration) ([]worker.Job, error) {
	s := q.s
	if s.cfg.Enabled != nil && !s.cfg.Enabled() {
		return nil, nil
	}
	now := s.now()
	lock := ""
	if s.db.Dialect == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	qs := `UPDATE inbox SET state = ?, claimed_by = ?, lease_token = ?, claimed_until = ?, updated_at = ?
		WHERE id IN (SELECT id FROM inbox
			WHERE (state IN (?, ?) AND next_attempt_at <= ?) OR (state = ? AND claimed_until < ?)
			ORDER BY next_attempt_at, id LIMIT ?` + lock + `)
		RETURNING *`
	var rows []inboxRow
	err := s.db.Gorm.WithContext(ctx).Raw(qs, StateInFlight, holder, holder+"/"+randomID(), now.Add(lease), now,
		StatePending, StateFailed, now, StateInFlight, now, n).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim inbox: %w", err)
	}
	slices.SortFunc(rows, func(a, b inboxRow) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	jobs := make([]worker.Job, len(rows))
	for i, r := range rows {
		jobs[i] = worker.Job{Lease: store.Lease{RecordID: r.ID, Token: r.LeaseToken}, Kind: r.Event, ID: r.ObjectID, Item: r}
	}
	return jobs, nil
}

// Heartbeat extends the leases holder still holds.
func (q inboxQueue) Heartbeat(ctx context.Context, holder string, leases []store.Lease, lease time.Duration) (map[int64]bool, error) {
	s := q.s
	byToken := map[string][]int64{}
	for _, l := range leases {
		byToken[l.Token] = append(byToken[l.Token], l.RecordID)
	}
	held := make(map[int64]bool, len(leases))
	now := s.now()
	for token, ids := range byToken {
		var got []int64
		err := s.db.Gorm.WithContext(ctx).Raw(`UPDATE inbox SET claimed_until = ?
			WHERE state = ? AND claimed_by = ? AND lease_token = ? AND claimed_until >= ? AND id IN ? RETURNING id`,
			now.Add(lease), StateInFlight, holder, token, now, ids).Scan(&got).Error
		if err != nil {
			return held, fmt.Errorf("inbox heartbeat: %w", err)
		}
		for _, id := range got {
			held[id] = true
		}
	}
	return held, nil
}

// Release hands back the entries holder still holds (soft stop).
func (q inboxQueue) Release(ctx context.Context, holder string) error {
	now := q.s.now()
	return q.s.db.Gorm.WithContext(ctx).Model(&inboxRow{}).Where("state = ? AND claimed_by = ?", StateInFlight, holder).
		Updates(map[string]any{"state": StatePending, "claimed_by": "", "lease_token": "", "claimed_until": nil, "next_attempt_at": now, "updated_at": now}).Error
}

// Work processes one entry by re-fetching its object from Zuora.
func (q inboxQueue) Work(ctx context.Context, job worker.Job) (any, error) {
	r := job.Item.(inboxRow)
	switch r.Event {
	case EventAccountCreated:
		res, err := q.s.syncAccount(ctx, r.ObjectID)
		return res.String(), err
	case EventSubscriptionCreated, EventSubscriptionChanged:
		res, err := q.s.syncSubscription(ctx, r.ObjectID)
		return res.String(), err
	}
	return "", reconcile.Terminal{Err: fmt.Errorf("unknown inbox event %q", r.Event)}
}

// Finish records the outcome of a claimed entry, or refuses with
// store.ErrLeaseLost when holder's lease lapsed or was superseded.
func (q inboxQueue) Finish(ctx context.Context, holder string, job worker.Job, a worker.Attempt) error {
	s := q.s
	r := job.Item.(inboxRow)
	now := s.now()
	upd := map[string]any{"claimed_by": "", "lease_token": "", "claimed_until": nil, "updated_at": now}
	var outcome func(st *Stats)
	if a.Err == nil {
		result, _ := a.Result.(string)
		upd["state"], upd["result"], upd["last_error"], upd["processed_at"] = StateDone, truncate(result, 2000), "", now
		outcome = func(st *Stats) { st.Processed++ }
	} else {
		attempt := r.Attempts + 1
		upd["attempts"] = attempt
		upd["last_error"] = truncate(a.Err.Error(), 2000)
		f := reconcile.Classify(a.Err)
		if !f.Retryable || attempt >= s.cfg.MaxAttempts {
			upd["state"] = StateDead
			outcome = func(st *Stats) { st.Dead++ }
		} else {
			upd["state"] = StateFailed
			upd["next_attempt_at"] = now.Add(retry.Policy{Unit: s.cfg.BackoffUnit, Max: s.cfg.MaxBackoff}.Delay(attempt, f.RetryAfter))
			outcome = func(st *Stats) { st.Failed++ }
		}
		a.Log.Warn().Err(a.Err).Int("attempt", attempt).Msg("inbox entry failed")
	}
	res := s.db.Gorm.WithContext(ctx).Model(&inboxRow{}).
		Where("id = ? AND state = ? AND claimed_by = ? AND lease_token = ? AND claimed_until >= ?", r.ID, StateInFlight, holder, job.Lease.Token, now).
		Updates(upd)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return store.ErrLeaseLost
	}
	s.count(outcome)
	return nil
}

// LeaseLost is counted and logged by the pool; the entry is retried by
// whoever holds it now.
func (q inboxQueue) LeaseLost(worker.Job, worker.Attempt) {}

// InboxFilter selects inbox entries.
type InboxFilter struct {
	State   string
	Event   string
	AfterID int64
	Limit   int
}

// ListInbox returns entries by id (newest last) and the next cursor (0 at the end).
func (s *Service) ListInbox(ctx context.Context, f InboxFilter) ([]InboxEntry, int64, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	q := s.db.Gorm.WithContext(ctx).Where("id > ?", f.AfterID).Order("id").Limit(limit + 1)
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Event != "" {
		q = q.Where("event = ?", f.Event)
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

// GetInbox returns one entry.
func (s *Service) GetInbox(ctx context.Context, id int64) (InboxEntry, error) {
	var r inboxRow
	err := s.db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return InboxEntry{}, &engine.NotFoundError{Kind: "inbox entry", ID: fmt.Sprint(id)}
	}
	return r.entry(), err
}

// RetryInbox makes an entry due now with its attempts reset (any state but in flight).
func (s *Service) RetryInbox(ctx context.Context, id int64) (InboxEntry, error) {
	e, err := s.GetInbox(ctx, id)
	if err != nil {
		return e, err
	}
	if e.State == StateInFlight {
		return e, &engine.ConflictError{Field: "state", Message: "the entry is being processed; retry it when it has finished"}
	}
	now := s.now()
	if err := s.db.Gorm.WithContext(ctx).Model(&inboxRow{}).Where("id = ? AND state <> ?", id, StateInFlight).
		Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now}).Error; err != nil {
		return e, err
	}
	s.Kick()
	return s.GetInbox(ctx, id)
}

// InboxCounts returns the number of entries per state.
func (s *Service) InboxCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		State string
		N     int64
	}
	err := s.db.Gorm.WithContext(ctx).Model(&inboxRow{}).Select("state, count(*) AS n").Group("state").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, err
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// PruneInbox deletes processed (done) entries older than age, and reports how
// many; failed and dead entries are kept for a person to look at.
func (s *Service) PruneInbox(ctx context.Context, age time.Duration) (int64, error) {
	res := s.db.Gorm.WithContext(ctx).Where("state = ? AND updated_at < ?", StateDone, s.now().Add(-age)).Delete(&inboxRow{})
	return res.RowsAffected, res.Error
}
