package inbound

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/retry"
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
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// claim takes up to limit due entries: pending or failed ones whose time has
// come, and in-flight ones whose claim expired (a crashed process).
func (s *Service) claim(ctx context.Context, limit int) ([]inboxRow, error) {
	now := s.now()
	lock := ""
	if s.db.Dialect == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := `UPDATE inbox SET state = ?, claimed_by = ?, claimed_until = ?, updated_at = ?
		WHERE id IN (SELECT id FROM inbox
			WHERE (state IN (?, ?) AND next_attempt_at <= ?) OR (state = ? AND claimed_until < ?)
			ORDER BY next_attempt_at, id LIMIT ?` + lock + `)
		RETURNING *`
	var rows []inboxRow
	err := s.db.Gorm.WithContext(ctx).Raw(q, StateInFlight, s.cfg.WorkerID, now.Add(s.cfg.Lease), now,
		StatePending, StateFailed, now, StateInFlight, now, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim inbox: %w", err)
	}
	return rows, nil
}

// finish records the outcome of a claimed entry; false if the claim was lost.
func (s *Service) finish(ctx context.Context, r inboxRow, result string, perr error) error {
	now := s.now()
	upd := map[string]any{"claimed_by": "", "claimed_until": nil, "updated_at": now}
	if perr == nil {
		upd["state"], upd["result"], upd["last_error"], upd["processed_at"] = StateDone, truncate(result, 2000), "", now
		s.count(func(st *Stats) { st.Processed++ })
	} else {
		attempt := r.Attempts + 1
		upd["attempts"] = attempt
		upd["last_error"] = truncate(perr.Error(), 2000)
		f := reconcile.Classify(perr)
		if !f.Retryable || attempt >= s.cfg.MaxAttempts {
			upd["state"] = StateDead
			s.count(func(st *Stats) { st.Dead++ })
		} else {
			upd["state"] = StateFailed
			upd["next_attempt_at"] = now.Add(retry.Policy{Unit: s.cfg.BackoffUnit, Max: s.cfg.MaxBackoff}.Delay(attempt, f.RetryAfter))
			s.count(func(st *Stats) { st.Failed++ })
		}
	}
	res := s.db.Gorm.WithContext(ctx).Model(&inboxRow{}).Where("id = ? AND state = ? AND claimed_by = ?", r.ID, StateInFlight, s.cfg.WorkerID).Updates(upd)
	return res.Error
}

// Run processes the inbox until ctx ends. In-flight claims of a stopped
// process are taken over by any process once their lease expires.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		// Soft stop: hand back what this process still holds.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		now := s.now()
		if err := s.db.Gorm.WithContext(rctx).Model(&inboxRow{}).Where("state = ? AND claimed_by = ?", StateInFlight, s.cfg.WorkerID).
			Updates(map[string]any{"state": StatePending, "claimed_by": "", "claimed_until": nil, "next_attempt_at": now, "updated_at": now}).Error; err != nil {
			s.log.Warn().Err(err).Msg("release inbox claims on stop failed")
		}
	}()
	for {
		n, err := s.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.log.Error().Err(err).Msg("inbox round failed")
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-time.After(s.cfg.PollInterval):
		}
	}
}

// Drain processes entries until none is due (entries waiting for a later
// retry are left), and returns how many were processed.
func (s *Service) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.round(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

func (s *Service) round(ctx context.Context) (int, error) {
	if s.cfg.Enabled != nil && !s.cfg.Enabled() {
		return 0, nil
	}
	rows, err := s.claim(ctx, s.cfg.Batch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, s.cfg.Workers)
	var wg sync.WaitGroup
	for _, r := range rows {
		sem <- struct{}{}
		wg.Add(1)
		go func(r inboxRow) {
			defer func() { <-sem; wg.Done() }()
			s.processEntry(ctx, r)
		}(r)
	}
	wg.Wait()
	return len(rows), nil
}

func (s *Service) processEntry(ctx context.Context, r inboxRow) {
	log := s.log.With().Int64("inbox_id", r.ID).Str("event", r.Event).Str("object", r.ObjectID).Logger()
	started := time.Now()
	result, err := s.safeProcess(ctx, r)
	if ctx.Err() != nil {
		// Stopping (or crashed mid-way): leave the claim; its lease expires.
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := s.finish(fctx, r, result, err); ferr != nil {
		log.Error().Err(ferr).Msg("recording the inbox outcome failed")
	}
	if err != nil {
		log.Warn().Err(err).Int("attempt", r.Attempts+1).Msg("inbox entry failed")
		return
	}
	log.Debug().Str("result", result).Dur("took", time.Since(started)).Msg("inbox entry processed")
}

func (s *Service) safeProcess(ctx context.Context, r inboxRow) (result string, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Interface("panic", p).Int64("inbox_id", r.ID).Msg("inbox processing panicked")
			err = reconcile.Terminal{Err: errors.New("internal error while processing; see the log")}
		}
	}()
	switch r.Event {
	case EventAccountCreated:
		res, err := s.syncAccount(ctx, r.ObjectID)
		return res.String(), err
	case EventSubscriptionCreated, EventSubscriptionChanged:
		res, err := s.syncSubscription(ctx, r.ObjectID)
		return res.String(), err
	}
	return "", reconcile.Terminal{Err: fmt.Errorf("unknown inbox event %q", r.Event)}
}

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
