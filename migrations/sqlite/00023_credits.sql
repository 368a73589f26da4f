-- +goose Up
-- Credits (issue 15, Togai's "Charge ID"): an amount granted to a customer,
-- synced as a Zuora credit memo made from the credit charge. The caller's
-- idempotency key is unique per customer (a repeated grant is one credit);
-- request_hash tells a repeat from a different grant with the same key.
-- The amount is an exact decimal string on both databases.
CREATE TABLE credits (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    effective_date  TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    created_at      DATETIME NOT NULL,
    UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX credits_customer_idx ON credits (customer_id, created_at);

-- Cancelling can write off the open invoice balance (processingOptions.writeOff
-- on the cancel order).
ALTER TABLE subscriptions ADD COLUMN write_off BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN write_off;
DROP TABLE credits;
