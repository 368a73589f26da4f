-- +goose Up
-- Scheduled (future-dated) changes (issue 15): a subscription's pending
-- change (its desired future plan, billing period, add-ons and quantities,
-- and the day it applies) as JSON; '' when none. It is part of the
-- subscription's content, so setting it is a new revision (outbox).
ALTER TABLE subscriptions ADD COLUMN scheduled_change TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN scheduled_change;
