-- +goose Up
-- Callouts from Zuora (and backstop-poll hits), written before the 200 and
-- processed by the inbound workers. The semantic key (event, object id,
-- Zuora-Notification-Id) de-duplicates Zuora's retries; Zuora-Request-Id
-- changes on every retry and is kept for information only.
CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event           TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    source          TEXT NOT NULL,
    payload         TEXT NOT NULL DEFAULT '{}',
    request_id      TEXT NOT NULL DEFAULT '',
    deliveries      INTEGER NOT NULL DEFAULT 1,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    claimed_by      TEXT NOT NULL DEFAULT '',
    claimed_until   DATETIME,
    last_error      TEXT NOT NULL DEFAULT '',
    result          TEXT NOT NULL DEFAULT '',
    processed_at    DATETIME,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    UNIQUE (event, object_id, notification_id)
);
CREATE INDEX inbox_due_idx ON inbox (state, next_attempt_at);

-- Access grants per customer, subscription and plan, computed from Zuora's
-- rate plan charges (ends_on '' = open-ended).
CREATE TABLE access_grants (
    customer_id         TEXT NOT NULL,
    subscription_number TEXT NOT NULL,
    plan_id             TEXT NOT NULL,
    zuora_account_id    TEXT NOT NULL,
    subscription_id     TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    starts_on           TEXT NOT NULL,
    ends_on             TEXT NOT NULL DEFAULT '',
    grace_days          INTEGER NOT NULL DEFAULT 0,
    reason              TEXT NOT NULL DEFAULT '',
    updated_at          DATETIME NOT NULL,
    PRIMARY KEY (customer_id, subscription_number, plan_id)
);
CREATE INDEX access_grants_account_idx ON access_grants (zuora_account_id);

-- +goose Down
DROP TABLE access_grants;
DROP TABLE inbox;
