-- +goose Up
-- The token of the claim that holds an in-flight record: a new one per claim,
-- so a worker whose lease lapsed (and whose record was claimed again, even by
-- the same worker) can neither extend nor finish it.
ALTER TABLE sync_records ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sync_records DROP COLUMN lease_token;
