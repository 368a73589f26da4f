-- +goose Up
-- The token of the claim that holds an in-flight inbox entry (a new one per
-- claim), as for sync records: a worker whose lease lapsed can neither
-- extend it nor record an outcome.
ALTER TABLE inbox ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE inbox DROP COLUMN lease_token;
