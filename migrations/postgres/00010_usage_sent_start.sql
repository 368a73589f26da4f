-- +goose Up
-- The StartDateTime an upload row is sent with when it differs from its
-- window's: a late row for a period Zuora has billed already goes into the
-- first open day (docs/zuora-rules.md, "Closed billing periods"). NULL: the
-- window's start.
ALTER TABLE usage_uploads ADD COLUMN sent_start TIMESTAMPTZ;

-- +goose Down
ALTER TABLE usage_uploads DROP COLUMN sent_start;
