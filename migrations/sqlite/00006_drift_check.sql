-- +goose Up
-- A drift check queued for a synced record: the period (UTC hour) of the
-- drift job that asked for it, '' when none. The pool claims such records
-- like due ones and runs the check (a read of Zuora) instead of a reconcile.
ALTER TABLE sync_records ADD COLUMN drift_check TEXT NOT NULL DEFAULT '';
CREATE INDEX sync_records_drift_check_idx ON sync_records (next_attempt_at) WHERE drift_check <> '';

-- +goose Down
DROP INDEX sync_records_drift_check_idx;
ALTER TABLE sync_records DROP COLUMN drift_check;
