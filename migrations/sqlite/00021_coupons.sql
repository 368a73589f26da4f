-- +goose Up
-- Coupons (issue 15): each becomes a Zuora discount product with one rate
-- plan and one discount charge. Amounts are exact decimal strings.
CREATE TABLE coupons (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    discount_type  TEXT NOT NULL,
    percentage     TEXT NOT NULL DEFAULT '0',
    amount         TEXT NOT NULL DEFAULT '0',
    currency       TEXT NOT NULL,
    duration       TEXT NOT NULL,
    periods        INTEGER NOT NULL DEFAULT 0,
    billing_period TEXT NOT NULL,
    plan_ids       TEXT NOT NULL DEFAULT '[]',
    charge_types   TEXT NOT NULL DEFAULT '[]',
    revision       INTEGER NOT NULL DEFAULT 1,
    content_hash   TEXT NOT NULL,
    archived_at    DATETIME,
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL
);
-- The ids of the coupons a subscription applies (a JSON array).
ALTER TABLE subscriptions ADD COLUMN coupons TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN coupons;
DROP TABLE coupons;
