-- +goose Up
-- Drift checks are claimed oldest first within their share (store.ClaimWithin):
-- this partial index holds only queued checks in that order, so a claim reads
-- the few rows it takes instead of sorting every queued check.
CREATE INDEX sync_records_checks_idx ON sync_records (next_attempt_at, id) WHERE state = 'synced' AND drift_check <> '';

-- +goose Down
DROP INDEX sync_records_checks_idx;
