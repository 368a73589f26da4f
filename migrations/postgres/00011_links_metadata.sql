-- +goose Up
-- Links to existing Zuora records (issue 15): a customer's Zuora account
-- (number or id) and a subscription's Zuora subscription number, adopted
-- instead of created; '' when none. One local record per Zuora record.
ALTER TABLE customers ADD COLUMN billing_id TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN billing_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX customers_billing_id_idx ON customers (billing_id) WHERE billing_id <> '';
CREATE UNIQUE INDEX subscriptions_billing_id_idx ON subscriptions (billing_id) WHERE billing_id <> '';
-- Metadata (a JSON object of strings): ZUORA__ keys are written to Zuora
-- custom fields on the matching object.
ALTER TABLE plans ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE customers ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE subscriptions ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';

-- +goose Down
DROP INDEX subscriptions_billing_id_idx;
DROP INDEX customers_billing_id_idx;
ALTER TABLE subscriptions DROP COLUMN metadata;
ALTER TABLE customers DROP COLUMN metadata;
ALTER TABLE plans DROP COLUMN metadata;
ALTER TABLE subscriptions DROP COLUMN billing_id;
ALTER TABLE customers DROP COLUMN billing_id;
