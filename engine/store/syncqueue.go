package store

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
	"gorm.io/gorm/clause"
)

// Claim marks up to limit due outbound records of the given kinds in_flight for
// worker until lease expires, and returns them. On Postgres concurrent claimers
// skip each other's rows (FOR UPDATE SKIP LOCKED); SQLite has one writer, so a
// single UPDATE … RETURNING is atomic. Records are taken in due order by the
// minute (so none starves); among records due in the same minute, reconciles
// before drift checks (synced records with a check queued, claimed with
// DriftCheck set), catalog first, then subscriptions, then customers, so
// dependencies are usually
// ready: a new customer's account is created by its first subscription's
// order, which settles the customer's record, so the customer needs no
// reconcile of its own.
//
// Each claim gets a new lease token (on every record it returns): only the
// holder of that token may extend the lease (Heartbeat) or record the outcome
// (Finish), and only while the lease has not lapsed.
func (db *DB) Claim(ctx context.Context, worker string, kinds []string, limit int, lease time.Duration) ([]SyncRecord, error) {
	return db.claim(ctx, worker, kinds, limit, lease, claimAll)
}

// ClaimWithin claims as Claim does, but takes drift checks only after every
// due reconcile it may take, and at most maxChecks of them: drift checks get
// a bounded share of the workers (and so of Zuora's concurrency), and a
// backlog of checks never holds back a change waiting to be pushed.
func (db *DB) ClaimWithin(ctx context.Context, worker string, kinds []string, limit, maxChecks int, lease time.Duration) ([]SyncRecord, error) {
	recs, err := db.claim(ctx, worker, kinds, limit, lease, claimReconciles)
	if err != nil || len(recs) >= limit || maxChecks <= 0 {
		return recs, err
	}
	checks, err := db.claim(ctx, worker, kinds, min(limit-len(recs), maxChecks), lease, claimChecks)
	return append(recs, checks...), err
}

// What a claim takes.
const (
	claimAll        = iota // reconciles and drift checks, in Claim's order
	claimReconciles        // pending, failed and drifted records only
	claimChecks            // synced records with a drift check queued only
)

func (db *DB) claim(ctx context.Context, worker string, kinds []string, limit int, lease time.Duration, what int) ([]SyncRecord, error) {
	if len(kinds) == 0 || limit <= 0 {
		return nil, nil
	}
	now := db.Now()
	lock := ""
	minute := "strftime('%Y-%m-%d %H:%M', next_attempt_at)"
	if db.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
		minute = "date_trunc('minute', next_attempt_at)"
	}
	token := worker + "/" + randomToken()
	args := []any{StateInFlight, worker, token, now.Add(lease), StateSynced, now, now, DirectionOut, now, kinds}
	var which, order string
	switch what {
	case claimChecks:
		// Checks only, oldest first: the literal predicate and order are
		// those of the partial index sync_records_checks_idx (migration
		// 00028), so a claim reads its few rows instead of sorting every
		// queued check (20,000 after an hour's drift job at 10,000
		// customers).
		which = "state = '" + StateSynced + "' AND drift_check <> ''"
		order = "next_attempt_at, id"
	default:
		which = "state IN (?, ?, ?)"
		args = append(args, StatePending, StateFailed, StateDrifted)
		if what == claimAll {
			which = "(state IN (?, ?, ?) OR (state = ? AND drift_check <> ''))"
			args = append(args, StateSynced)
		}
		order = minute + `, CASE WHEN state = ? THEN 1 ELSE 0 END,
				CASE entity_kind WHEN 'plan' THEN 0 WHEN 'coupon' THEN 0 WHEN 'subscription' THEN 1 ELSE 2 END, next_attempt_at, id`
		args = append(args, StateSynced)
	}
	args = append(args, limit)
	// A synced record with a drift check queued is claimed for the check;
	// checks come after reconciles due in the same minute.
	q := `UPDATE sync_records SET state = ?, claimed_by = ?, lease_token = ?, claimed_until = ?, processing_revision = desired_revision, claims = claims + 1,
		drift_check = CASE WHEN state = ? THEN drift_check ELSE '' END, last_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT id FROM sync_records
			WHERE direction = ? AND next_attempt_at <= ? AND entity_kind IN ?
				AND ` + which + `
			ORDER BY ` + order + `
			LIMIT ?` + lock + `)
		RETURNING *`
	var rows []syncRecordRow
	err := db.Gorm.WithContext(ctx).Raw(q, args...).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim sync records: %w", err)
	}
	out := make([]SyncRecord, 0, len(rows))
	for _, r := range rows {
		out = append(out, syncRecordFromRow(r))
	}
	// RETURNING gives the rows in no particular order: put them back in the
	// claim order, which the pool follows.
	slices.SortFunc(out, func(a, b SyncRecord) int {
		return cmp.Or(a.NextAttemptAt.Truncate(time.Minute).Compare(b.NextAttemptAt.Truncate(time.Minute)),
			cmp.Compare(checkRank(a), checkRank(b)), cmp.Compare(kindRank(a.EntityKind), kindRank(b.EntityKind)), a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func checkRank(r SyncRecord) int {
	if r.DriftCheck != "" {
		return 1
	}
	return 0
}

// kindRank is the claim order among records due in the same minute (the
// CASE in Claim's ORDER BY).
func kindRank(kind string) int {
	switch kind {
	case EntityPlan, EntityCoupon:
		return 0
	case EntitySubscription:
		return 1
	default:
		return 2
	}
}

// Outcome is the result of one reconcile of a claimed record.
type Outcome struct {
	State        string // StateSynced, StateSkipped, StateFailed, StateDead, StatePending (wait), StateDrifted
	Reason       string
	ErrorCode    string
	ErrorMessage string
	RequestID    string
	PayloadHash  string
	PushedState  string
	ZuoraID      string
	ZuoraNumber  string
	ZuoraURL     string
	NextAttempt  time.Time
	CountAttempt bool
	// Quiet leaves the attempt out of the history (a drift check that found
	// Zuora matching: one per record and hour would bury the history).
	Quiet bool
	// Attempt history.
	SyncID    string
	StartedAt time.Time
	Detail    string
	Calls     int
}

// ErrLeaseLost is returned by Finish when the caller no longer holds the
// record's lease: it lapsed (the sweeper may have released it, another
// worker may hold it now), or the record was claimed again since.
var ErrLeaseLost = errors.New("the lease was lost: it lapsed or the work was claimed again")

// Finish records the outcome of a claimed record. If the entity changed while
// it was in flight (a higher desired revision), a synced or skipped outcome
// leaves the record pending so the new revision is pushed next. A caller that
// no longer holds the lease (another claim's token, or a lease that lapsed,
// even if nobody has taken the record since) is refused with ErrLeaseLost and
// nothing is written: its outcome may rest on a state another holder has
// changed.
func (db *DB) Finish(ctx context.Context, rec SyncRecord, worker string, o Outcome) error {
	now := db.Now()
	if db.Dialect == Postgres && (o.State == StateSynced || o.State == StateSkipped) && o.ErrorCode == "" && o.ErrorMessage == "" {
		return db.finishSettled(ctx, rec, worker, o, now)
	}
	return db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var cur syncRecordRow
		q := tx.Where("id = ?", rec.ID)
		if db.Dialect == Postgres {
			// Lock the row: a concurrent markDue/markPending must land either
			// before this read (and be seen) or after this outcome.
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Take(&cur).Error; err != nil {
			return err
		}
		if cur.State != StateInFlight || cur.ClaimedBy != worker || cur.LeaseToken != rec.LeaseToken ||
			cur.ClaimedUntil == nil || cur.ClaimedUntil.Before(now) {
			return ErrLeaseLost
		}
		state := o.State
		next := o.NextAttempt
		if next.IsZero() {
			next = now
		}
		upd := map[string]any{
			"state": state, "reason": o.Reason, "claimed_by": "", "lease_token": "", "claimed_until": nil, "drift_check": "",
			"next_attempt_at": next, "updated_at": now,
		}
		if o.CountAttempt {
			upd["attempts"] = cur.Attempts + 1
		}
		if state == StatePending && !o.CountAttempt && o.ErrorMessage == "" && o.ErrorCode == "" {
			// A clean wait for a dependency: the reconcile ran to its end
			// without writing, so no earlier attempt is left cut off.
			upd["claims"] = 0
		}
		// Marked due while in flight (markPending or markDue): the outcome may
		// rest on what has changed since.
		markedDue := cur.LastAttemptAt != nil && cur.NextAttemptAt.After(*cur.LastAttemptAt)
		if state == StateSynced || state == StateSkipped {
			upd["attempts"] = 0
			upd["claims"] = 0
			upd["last_error_code"], upd["last_error_message"] = "", ""
			if state == StateSynced {
				upd["synced_revision"] = cur.ProcessingRevision
			}
			if cur.DesiredRevision > cur.ProcessingRevision || markedDue {
				upd["state"] = StatePending
				upd["next_attempt_at"] = now
			}
		}
		if state == StatePending && markedDue {
			upd["next_attempt_at"] = now
		}
		if o.ErrorMessage != "" || o.ErrorCode != "" {
			upd["last_error_code"], upd["last_error_message"] = o.ErrorCode, truncate(o.ErrorMessage, 2000)
		}
		if o.RequestID != "" {
			upd["last_request_id"] = o.RequestID
		}
		if o.PayloadHash != "" {
			upd["payload_hash"] = o.PayloadHash
		}
		if state == StateDrifted {
			upd["payload_hash"] = "" // the repair compares with Zuora
		}
		if o.PushedState != "" {
			upd["pushed_state"] = o.PushedState
		}
		if o.ZuoraID != "" {
			upd["zuora_id"] = o.ZuoraID
		}
		if o.ZuoraNumber != "" {
			upd["zuora_number"] = o.ZuoraNumber
		}
		if o.ZuoraURL != "" {
			upd["zuora_url"] = o.ZuoraURL
		}
		if err := tx.Model(&syncRecordRow{}).Where("id = ?", rec.ID).Updates(upd).Error; err != nil {
			return err
		}
		if state == StateDead && cur.State != StateDead {
			// A record needs a person: tell the app (once per attempt that gave up).
			if _, err := db.emit(tx, NewEvent{Type: EventSyncDead, Key: fmt.Sprintf("%d:%d", rec.ID, now.UnixNano()), Subject: cur.EntityKind + "/" + cur.EntityID,
				Data: map[string]any{"syncRecordId": rec.ID, "entityKind": cur.EntityKind, "entityId": cur.EntityID,
					"errorCode": o.ErrorCode, "errorMessage": truncate(o.ErrorMessage, 500), "reason": o.Reason}}); err != nil {
				return err
			}
		}
		if o.Quiet {
			return nil
		}
		started := o.StartedAt
		if started.IsZero() {
			started = now
		}
		return tx.Create(&syncAttemptRow{SyncRecordID: rec.ID, SyncID: o.SyncID, StartedAt: started, FinishedAt: now,
			Outcome: state, Detail: truncate(o.Detail, 2000), ErrorCode: o.ErrorCode, ErrorMessage: truncate(o.ErrorMessage, 2000),
			RequestID: o.RequestID, ZuoraCalls: o.Calls}).Error
	})
}

// finishSettled is Finish for the outcome of most reconciles, synced or
// skipped without an error, on Postgres: one statement instead of a
// transaction of four (the UPDATE takes the row lock the transaction's
// SELECT … FOR UPDATE took; every CASE reads the row as it was, as the
// transaction's Go code did; the history row is inserted from what the
// UPDATE returned, so a lost lease writes neither).
func (db *DB) finishSettled(ctx context.Context, rec SyncRecord, worker string, o Outcome, now time.Time) error {
	// Changed or marked due while in flight: the outcome may rest on what
	// has changed since, so the record stays due.
	const changed = `(desired_revision > processing_revision OR (last_attempt_at IS NOT NULL AND next_attempt_at > last_attempt_at))`
	update := `UPDATE sync_records SET
			state = CASE WHEN ` + changed + ` THEN ? ELSE ? END,
			reason = ?, claimed_by = '', lease_token = '', claimed_until = NULL, drift_check = '',
			next_attempt_at = ?, updated_at = ?, attempts = 0, claims = 0, last_error_code = '', last_error_message = '',
			synced_revision = CASE WHEN ? THEN processing_revision ELSE synced_revision END,
			last_request_id = CASE WHEN ? = '' THEN last_request_id ELSE ? END,
			payload_hash = CASE WHEN ? = '' THEN payload_hash ELSE ? END,
			pushed_state = CASE WHEN ? = '' THEN pushed_state ELSE ? END,
			zuora_id = CASE WHEN ? = '' THEN zuora_id ELSE ? END,
			zuora_number = CASE WHEN ? = '' THEN zuora_number ELSE ? END,
			zuora_url = CASE WHEN ? = '' THEN zuora_url ELSE ? END
		WHERE id = ? AND state = ? AND claimed_by = ? AND lease_token = ? AND claimed_until >= ?
		RETURNING id`
	args := []any{StatePending, o.State, o.Reason, now, now, o.State == StateSynced,
		o.RequestID, o.RequestID, o.PayloadHash, o.PayloadHash, o.PushedState, o.PushedState,
		o.ZuoraID, o.ZuoraID, o.ZuoraNumber, o.ZuoraNumber, o.ZuoraURL, o.ZuoraURL,
		rec.ID, StateInFlight, worker, rec.LeaseToken, now}
	q := update
	if !o.Quiet {
		started := o.StartedAt
		if started.IsZero() {
			started = now
		}
		q = `WITH finished AS (` + update + `)
			INSERT INTO sync_attempts (sync_record_id, sync_id, started_at, finished_at, outcome, detail, error_code, error_message, request_id, zuora_calls)
			SELECT id, ?, ?, ?, ?, ?, '', '', ?, ? FROM finished
			RETURNING sync_record_id`
		args = append(args, o.SyncID, started, now, o.State, truncate(o.Detail, 2000), o.RequestID, o.Calls)
	}
	var ids []int64
	if err := db.Gorm.WithContext(ctx).Raw(q, args...).Scan(&ids).Error; err != nil {
		return err
	}
	if len(ids) == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Lease names one claim of one record: what Heartbeat extends.
type Lease struct {
	RecordID int64
	Token    string
}

// Heartbeat extends, to now+lease, the leases worker still holds among the
// given ones, and returns the record ids it extended. A lease that lapsed or
// was claimed again since is not extended (and its holder must stop).
func (db *DB) Heartbeat(ctx context.Context, worker string, leases []Lease, lease time.Duration) (map[int64]bool, error) {
	return db.heartbeat(ctx, "sync_records", worker, leases, lease)
}

// heartbeat extends the leases of table (sync_records or inbox).
func (db *DB) heartbeat(ctx context.Context, table, worker string, leases []Lease, lease time.Duration) (map[int64]bool, error) {
	byToken := map[string][]int64{}
	for _, l := range leases {
		byToken[l.Token] = append(byToken[l.Token], l.RecordID)
	}
	held := make(map[int64]bool, len(leases))
	now := db.Now()
	for token, ids := range byToken {
		var got []int64
		err := db.Gorm.WithContext(ctx).Raw(`UPDATE `+table+` SET claimed_until = ?
			WHERE state = ? AND claimed_by = ? AND lease_token = ? AND claimed_until >= ? AND id IN ?
			RETURNING id`, now.Add(lease), StateInFlight, worker, token, now, ids).Scan(&got).Error
		if err != nil {
			return held, fmt.Errorf("heartbeat: %w", err)
		}
		for _, id := range got {
			held[id] = true
		}
	}
	return held, nil
}

// ReleaseExpired returns in_flight records whose claim has expired (a crashed or
// stuck worker) to pending, and reports how many.
func (db *DB) ReleaseExpired(ctx context.Context) (int64, error) {
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).
		Where("state = ? AND claimed_until < ?", StateInFlight, now).
		Updates(map[string]any{"state": StatePending, "claimed_by": "", "lease_token": "", "claimed_until": nil, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// ReleaseWorker returns every record claimed by worker to pending (soft stop).
func (db *DB) ReleaseWorker(ctx context.Context, worker string) error {
	return db.releaseHeld(ctx, &syncRecordRow{}, worker)
}

// MarkPending makes an entity's outbound record due now without changing its
// desired revision (used when a dependency changed). Records in flight are left alone.
func (db *DB) MarkPending(ctx context.Context, kind, id string) error {
	return db.markDue(db.Gorm.WithContext(ctx), kind, id)
}

func (db *DB) markDue(tx *gorm.DB, kind, id string) error {
	now := db.Now()
	var n int64
	if err := tx.Model(&syncRecordRow{}).Where("entity_kind = ? AND entity_id = ? AND direction = ?", kind, id, DirectionOut).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		rev := 1
		return db.markPending(tx, kind, id, rev)
	}
	// Failed and dead records keep their retry schedule (or wait for a
	// person) instead of being revived in a loop. An in-flight record
	// finishes on its own; a next attempt time later than its claim tells
	// Finish it was marked due meanwhile, so a wait, skip or success leaves it
	// due now instead of settling on what it saw. One statement, so a record
	// whose Finish holds the row lock is re-checked after that commit.
	return tx.Model(&syncRecordRow{}).
		Where("entity_kind = ? AND entity_id = ? AND direction = ? AND state NOT IN ?", kind, id, DirectionOut, []string{StateFailed, StateDead}).
		Updates(map[string]any{
			"state":           gorm.Expr("CASE WHEN state = ? THEN state ELSE ? END", StateInFlight, StatePending),
			"reason":          gorm.Expr("CASE WHEN state = ? THEN reason ELSE '' END", StateInFlight),
			"next_attempt_at": now, "updated_at": now,
		}).Error
}

// Retry makes one record due now with its attempts reset, whatever its state
// (except in flight). It reports ErrNotFound for an unknown id.
func (db *DB) Retry(ctx context.Context, id int64) (SyncRecord, error) {
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("id = ? AND state <> ?", id, StateInFlight).
		Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now, "reason": "", "payload_hash": ""})
	if res.Error != nil {
		return SyncRecord{}, res.Error
	}
	return db.SyncRecordByID(ctx, id)
}

// MarkSkippedDue makes every outbound record skipped for one of the reasons
// due now (a switch was turned back on: what it held back syncs at once).
func (db *DB) MarkSkippedDue(ctx context.Context, reasons []string) (int64, error) {
	if len(reasons) == 0 {
		return 0, nil
	}
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("direction = ? AND state = ? AND reason IN ?", DirectionOut, StateSkipped, reasons).
		Updates(map[string]any{"state": StatePending, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// RetryAll makes every failed or dead record of a kind (all kinds if empty) due now.
func (db *DB) RetryAll(ctx context.Context, kind string) (int64, error) {
	now := db.Now()
	q := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("state IN ?", []string{StateFailed, StateDead})
	if kind != "" {
		q = q.Where("entity_kind = ?", kind)
	}
	res := q.Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// RecheckAll makes every synced and skipped record of the kinds due now: the
// hourly reconcile. Records whose payload is unchanged make no Zuora call.
func (db *DB) RecheckAll(ctx context.Context, kinds []string) (int64, error) {
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).
		Where("direction = ? AND state IN ? AND entity_kind IN ?", DirectionOut, []string{StateSynced, StateSkipped}, kinds).
		Updates(map[string]any{"state": StatePending, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// SyncRecordByID returns one record.
func (db *DB) SyncRecordByID(ctx context.Context, id int64) (SyncRecord, error) {
	var r syncRecordRow
	err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return SyncRecord{}, notFound("sync record", fmt.Sprint(id))
	}
	if err != nil {
		return SyncRecord{}, err
	}
	return syncRecordFromRow(r), nil
}

// SyncFilter selects sync records.
type SyncFilter struct {
	Kind     string
	State    string
	EntityID string
	AfterID  int64
	Limit    int
}

// ListSyncRecords returns a page of records by id, and the next cursor (0 at the end).
func (db *DB) ListSyncRecords(ctx context.Context, f SyncFilter) ([]SyncRecord, int64, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Where("id > ?", f.AfterID).Order("id").Limit(limit + 1)
	if f.Kind != "" {
		q = q.Where("entity_kind = ?", f.Kind)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.EntityID != "" {
		q = q.Where("entity_id = ?", f.EntityID)
	}
	var rows []syncRecordRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, 0, err
	}
	var next int64
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[len(rows)-1].ID
	}
	out := make([]SyncRecord, 0, len(rows))
	for _, r := range rows {
		out = append(out, syncRecordFromRow(r))
	}
	return out, next, nil
}

// SyncCounts returns the number of records per entity kind and state.
func (db *DB) SyncCounts(ctx context.Context) (map[string]map[string]int64, error) {
	var rows []struct {
		EntityKind string
		State      string
		N          int64
	}
	err := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Select("entity_kind, state, count(*) AS n").
		Group("entity_kind, state").Scan(&rows).Error
	out := map[string]map[string]int64{}
	for _, r := range rows {
		if out[r.EntityKind] == nil {
			out[r.EntityKind] = map[string]int64{}
		}
		out[r.EntityKind][r.State] = r.N
	}
	return out, err
}

// OldestDue returns the next-attempt time of the oldest due record, if any.
func (db *DB) OldestDue(ctx context.Context) (time.Time, bool, error) {
	var r syncRecordRow
	err := db.Gorm.WithContext(ctx).Where("state IN ? AND next_attempt_at <= ?", []string{StatePending, StateFailed, StateDrifted}, db.Now()).
		Order("next_attempt_at").Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, false, nil
	}
	return r.NextAttemptAt, err == nil, err
}

// ClaimAges reports the oldest claim on an outbound record (when it was
// claimed; ok false when none is in flight) and how many claims have lapsed
// without being finished or extended: a busy claim is extended by its
// holder's heartbeat, a dead one (a killed replica) lapses and waits for the
// sweeper.
func (db *DB) ClaimAges(ctx context.Context) (oldest time.Time, ok bool, lapsed int64, err error) {
	var r syncRecordRow
	err = db.Gorm.WithContext(ctx).Where("direction = ? AND state = ? AND last_attempt_at IS NOT NULL", DirectionOut, StateInFlight).
		Order("last_attempt_at").Take(&r).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		err = nil
	case err != nil:
		return time.Time{}, false, 0, err
	case r.LastAttemptAt != nil:
		oldest, ok = r.LastAttemptAt.UTC(), true
	}
	err = db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("direction = ? AND state = ? AND claimed_until < ?", DirectionOut, StateInFlight, db.Now()).
		Count(&lapsed).Error
	return oldest, ok, lapsed, err
}

// SyncAttempt is one reconcile attempt in a record's history.
type SyncAttempt struct {
	ID           int64     `json:"id"`
	SyncID       string    `json:"syncId"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt"`
	Outcome      string    `json:"outcome"`
	Detail       string    `json:"detail,omitempty"`
	ErrorCode    string    `json:"errorCode,omitempty"`
	ErrorMessage string    `json:"errorMessage,omitempty"`
	RequestID    string    `json:"requestId,omitempty"`
	ZuoraCalls   int       `json:"zuoraCalls"`
}

type syncAttemptRow struct {
	ID           int64 `gorm:"primaryKey"`
	SyncRecordID int64
	SyncID       string
	StartedAt    time.Time
	FinishedAt   time.Time
	Outcome      string
	Detail       string
	ErrorCode    string
	ErrorMessage string
	RequestID    string
	ZuoraCalls   int
}

func (syncAttemptRow) TableName() string { return "sync_attempts" }

// SyncHistory returns the latest attempts of a record, newest first.
func (db *DB) SyncHistory(ctx context.Context, recordID int64, limit int) ([]SyncAttempt, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []syncAttemptRow
	if err := db.Gorm.WithContext(ctx).Where("sync_record_id = ?", recordID).Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]SyncAttempt, 0, len(rows))
	for _, r := range rows {
		out = append(out, SyncAttempt{ID: r.ID, SyncID: r.SyncID, StartedAt: r.StartedAt.UTC(), FinishedAt: r.FinishedAt.UTC(),
			Outcome: r.Outcome, Detail: r.Detail, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage, RequestID: r.RequestID, ZuoraCalls: r.ZuoraCalls})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// CountUnsettled returns how many outbound records are pending, failed,
// drifted or in flight, or synced with a drift check queued: the queue's
// outstanding work.
func (db *DB) CountUnsettled(ctx context.Context) (int64, error) {
	var n int64
	err := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).
		Where("direction = ? AND (state IN ? OR (state = ? AND drift_check <> ''))", DirectionOut,
			[]string{StatePending, StateFailed, StateDrifted, StateInFlight}, StateSynced).Count(&n).Error
	return n, err
}

// HasUnsettled reports whether any outbound record is outstanding, as
// CountUnsettled counts them, reading at most one row.
func (db *DB) HasUnsettled(ctx context.Context) (bool, error) {
	var ids []int64
	err := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).
		Where("direction = ? AND (state IN ? OR (state = ? AND drift_check <> ''))", DirectionOut,
			[]string{StatePending, StateFailed, StateDrifted, StateInFlight}, StateSynced).Limit(1).Pluck("id", &ids).Error
	return len(ids) > 0, err
}

// EnqueueDriftChecks queues a drift check of every synced outbound record for
// the period (the drift job's hour) and reports how many it queued. A record
// already queued for the period is left: enqueueing is unique per period.
// The pool claims the checks like due records (after the reconciles due in
// the same minute) and runs them with its bounded workers.
func (db *DB) EnqueueDriftChecks(ctx context.Context, period string) (int64, error) {
	if period == "" {
		return 0, errors.New("enqueue drift checks: a period is required")
	}
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).
		Where("direction = ? AND state = ? AND drift_check <> ?", DirectionOut, StateSynced, period).
		Updates(map[string]any{"drift_check": period, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// EnqueueDriftChecksNow queues a drift check of every synced record under a
// one-off period: the hourly drift job on demand (CLI, API, admin page).
func (db *DB) EnqueueDriftChecksNow(ctx context.Context) (int64, error) {
	return db.EnqueueDriftChecks(ctx, "manual-"+db.Now().UTC().Format(time.RFC3339Nano))
}

// MarkDrifted records that Zuora no longer matches a synced record and makes
// it due for repair (its payload hash is cleared so the repair compares with Zuora).
func (db *DB) MarkDrifted(ctx context.Context, id int64, reason string) error {
	now := db.Now()
	return db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("id = ? AND state = ?", id, StateSynced).
		Updates(map[string]any{"state": StateDrifted, "reason": truncate(reason, 2000), "payload_hash": "", "next_attempt_at": now, "updated_at": now}).Error
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
