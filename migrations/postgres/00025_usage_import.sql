-- +goose Up
-- Usage through Zuora's CSV import (issue 20): a batch is either one
-- POST /v1/action/create call (kind 'create', at most 50 rows) or one usage
-- file (kind 'import', POST /v1/usage). An import batch keeps the import's
-- status URL once Zuora accepted the file: from then on it is polled, never
-- uploaded again.
ALTER TABLE usage_batches ADD COLUMN kind TEXT NOT NULL DEFAULT 'create';
ALTER TABLE usage_batches ADD COLUMN import_status_url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE usage_batches DROP COLUMN import_status_url;
ALTER TABLE usage_batches DROP COLUMN kind;
