-- +goose Up
-- Usage upload batches are work on the one queue (engine/worker): the token
-- of the claim that holds a batch (a new one per claim), as for sync records
-- and the inbox. A sender whose lease lapsed can neither extend it nor record
-- an outcome. An empty token with a claim is a reservation: a sync holds the
-- batches it made for itself until the reservation lapses.
ALTER TABLE usage_batches ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE usage_batches DROP COLUMN lease_token;
