package store

import (
	"context"

	"github.com/billsync/billsync/engine"
)

// SettleSynced marks an entity's pending outbound record synced with the
// outcome's hash, pushed state and Zuora ids, without a reconcile: another
// entity's reconcile has just put it in Zuora (an account created in the
// order of its first subscription), or inbound processing has just written
// the entity from Zuora. With revision > 0 the record settles only at that
// entity revision. It does nothing, and reports false, when the record is not
// pending (in flight, failed, …) or the entity has changed since revision;
// the caller then marks it due instead. It adds a row to the record's
// history with o.Detail.
func (db *DB) SettleSynced(ctx context.Context, kind, id string, revision int, o Outcome) (bool, error) {
	now := db.Now()
	var ids []int64
	q := `UPDATE sync_records SET state = ?, synced_revision = desired_revision, attempts = 0, claims = 0,
		reason = '', last_error_code = '', last_error_message = '', next_attempt_at = ?, updated_at = ?, payload_hash = ?,
		pushed_state = CASE WHEN ? = '' THEN pushed_state ELSE ? END,
		zuora_id = CASE WHEN ? = '' THEN zuora_id ELSE ? END, zuora_number = CASE WHEN ? = '' THEN zuora_number ELSE ? END,
		zuora_url = CASE WHEN ? = '' THEN zuora_url ELSE ? END
		WHERE entity_kind = ? AND entity_id = ? AND connector = ? AND direction = ? AND state = ?`
	args := []any{StateSynced, now, now, o.PayloadHash, o.PushedState, o.PushedState, o.ZuoraID, o.ZuoraID, o.ZuoraNumber, o.ZuoraNumber, o.ZuoraURL, o.ZuoraURL,
		kind, id, ConnectorZuora, DirectionOut, StatePending}
	if revision > 0 {
		q += ` AND desired_revision = ?`
		args = append(args, revision)
	}
	if db.Dialect == Postgres {
		// One statement: the history row is inserted from what the UPDATE returned.
		err := db.Gorm.WithContext(ctx).Raw(`WITH settled AS (`+q+` RETURNING id)
			INSERT INTO sync_attempts (sync_record_id, sync_id, started_at, finished_at, outcome, detail, error_code, error_message, request_id, zuora_calls)
			SELECT id, ?, ?, ?, ?, ?, '', '', '', 0 FROM settled RETURNING sync_record_id`,
			append(args, o.SyncID, now, now, StateSynced, truncate(o.Detail, 2000))...).Scan(&ids).Error
		return len(ids) > 0, err
	}
	err := db.Gorm.WithContext(ctx).Raw(q+` RETURNING id`, args...).Scan(&ids).Error
	if err != nil || len(ids) == 0 {
		return false, err
	}
	// The history says why the record settled without a reconcile of its own.
	err = db.Gorm.WithContext(ctx).Create(&syncAttemptRow{SyncRecordID: ids[0], SyncID: o.SyncID, StartedAt: now, FinishedAt: now,
		Outcome: StateSynced, Detail: truncate(o.Detail, 2000)}).Error
	return true, err
}

// UnsettledBillableSubscriptionOf returns a billable subscription of the
// customer (active or suspended, on a paid plan) whose outbound record is
// pending or in flight, if any: the one whose order will create the account.
func (db *DB) UnsettledBillableSubscriptionOf(ctx context.Context, customerID string) (string, bool, error) {
	var ids []string
	err := db.Gorm.WithContext(ctx).Raw(`SELECT s.id FROM subscriptions s
		JOIN plans p ON p.id = s.plan_id
		JOIN sync_records r ON r.entity_kind = ? AND r.entity_id = s.id AND r.connector = ? AND r.direction = ?
		WHERE s.customer_id = ? AND s.status IN (?, ?) AND p.pricing_type = ? AND r.state IN (?, ?) ORDER BY s.id LIMIT 1`,
		EntitySubscription, ConnectorZuora, DirectionOut, customerID, engine.StatusActive, engine.StatusSuspended, engine.PricingPaid,
		StatePending, StateInFlight).Scan(&ids).Error
	if err != nil || len(ids) == 0 {
		return "", false, err
	}
	return ids[0], true, nil
}

// RecheckPage returns up to limit synced and skipped outbound records of a
// kind with ids above afterID, in id order (the hourly re-check's input).
func (db *DB) RecheckPage(ctx context.Context, kind string, afterID int64, limit int) ([]SyncRecord, error) {
	var rows []syncRecordRow
	err := db.Gorm.WithContext(ctx).
		Where("direction = ? AND entity_kind = ? AND state IN ? AND id > ?", DirectionOut, kind, []string{StateSynced, StateSkipped}, afterID).
		Order("id").Limit(limit).Find(&rows).Error
	out := make([]SyncRecord, 0, len(rows))
	for _, r := range rows {
		out = append(out, syncRecordFromRow(r))
	}
	return out, err
}

// MarkDueIDs makes the given records due now if they are synced or skipped
// (what RecheckAll does to every record) and reports how many it changed.
func (db *DB) MarkDueIDs(ctx context.Context, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).
		Where("id IN ? AND state IN ?", ids, []string{StateSynced, StateSkipped}).
		Updates(map[string]any{"state": StatePending, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// CustomersByID returns the customers with the given ids that exist.
func (db *DB) CustomersByID(ctx context.Context, ids []string) (map[string]engine.Customer, error) {
	var rows []customerRow
	if err := db.Gorm.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]engine.Customer, len(rows))
	for _, r := range rows {
		out[r.ID] = customerFromRow(r)
	}
	return out, nil
}

// SubscriptionsByID returns the subscriptions with the given ids that exist.
func (db *DB) SubscriptionsByID(ctx context.Context, ids []string) (map[string]engine.Subscription, error) {
	var rows []subscriptionRow
	if err := db.Gorm.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]engine.Subscription, len(rows))
	for _, r := range rows {
		out[r.ID] = subscriptionFromRow(r)
	}
	return out, nil
}
