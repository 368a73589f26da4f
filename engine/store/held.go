package store

import (
	"context"
	"time"
)

// The queue tables (sync records, inbox, webhook deliveries) share their
// claim columns: state, claimed_by, lease_token, claimed_until. These are
// the statements on those columns that are the same for every table.

// finishHeld applies upd to row id of model's table only while holder's
// claim with token is still live; otherwise ErrLeaseLost.
func (db *DB) finishHeld(ctx context.Context, model any, id int64, holder, token string, now time.Time, upd map[string]any) error {
	res := db.Gorm.WithContext(ctx).Model(model).
		Where("id = ? AND state = ? AND claimed_by = ? AND lease_token = ? AND claimed_until >= ?", id, StateInFlight, holder, token, now).
		Updates(upd)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}

// releaseHeld hands back every row of model's table holder still holds
// (soft stop): pending and due now.
func (db *DB) releaseHeld(ctx context.Context, model any, holder string) error {
	now := db.Now()
	return db.Gorm.WithContext(ctx).Model(model).Where("state = ? AND claimed_by = ?", StateInFlight, holder).
		Updates(map[string]any{"state": StatePending, "claimed_by": "", "lease_token": "", "claimed_until": nil, "next_attempt_at": now, "updated_at": now}).Error
}
