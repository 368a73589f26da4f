-- +goose Up
-- Invoices read from Zuora (issue 16), per customer; amounts as decimal text.
CREATE TABLE zuora_invoices (
    id               TEXT PRIMARY KEY,
    invoice_number   TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    zuora_account_id TEXT NOT NULL,
    invoice_date     TEXT NOT NULL,
    due_date         TEXT NOT NULL DEFAULT '',
    amount           TEXT NOT NULL,
    balance          TEXT NOT NULL,
    currency         TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    zuora_url        TEXT NOT NULL DEFAULT '',
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX zuora_invoices_customer_idx ON zuora_invoices (customer_id, invoice_date);

-- Payment status per Zuora account (its subscriptions share it): paid, or
-- past_due since a date.
CREATE TABLE payment_status (
    zuora_account_id TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    status           TEXT NOT NULL,
    past_due_since   TEXT NOT NULL DEFAULT '',
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Grace on an access grant while its account is past due: the grant lasts
-- until grace_until (exclusive), then is revoked (revoked_at).
CREATE TABLE grant_grace (
    customer_id         TEXT NOT NULL,
    subscription_number TEXT NOT NULL,
    plan_id             TEXT NOT NULL,
    zuora_account_id    TEXT NOT NULL,
    past_due_since      TEXT NOT NULL,
    grace_days          INTEGER NOT NULL DEFAULT 0,
    grace_until         TEXT NOT NULL,
    revoked_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, subscription_number, plan_id)
);
CREATE INDEX grant_grace_account_idx ON grant_grace (zuora_account_id);

-- +goose Down
DROP TABLE grant_grace;
DROP TABLE payment_status;
DROP TABLE zuora_invoices;
