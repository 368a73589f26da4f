-- +goose Up
-- Usage ledger (DESIGN.md §3). Events are stored once per client idempotency
-- key; each event adds to its (subscription, plan, charge, hour) window in the
-- same transaction. Quantities are exact decimal TEXT here, summed in Go.
-- Sealing a window turns the not yet sealed part of its
-- quantity into an upload row (the first for the total, later ones as
-- corrections); upload rows go to Zuora in batches of at most 50, each batch
-- with a deterministic Idempotency-Key.
CREATE TABLE usage_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL,
    plan_id         TEXT NOT NULL,
    charge_id       TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    occurred_at     DATETIME NOT NULL,
    window_start    DATETIME NOT NULL,
    ingested_at     DATETIME NOT NULL
);

CREATE TABLE usage_windows (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL,
    plan_id         TEXT NOT NULL,
    charge_id       TEXT NOT NULL,
    window_start    DATETIME NOT NULL,
    quantity        TEXT NOT NULL DEFAULT '0',
    sealed_quantity TEXT NOT NULL DEFAULT '0',
    event_count     BIGINT NOT NULL DEFAULT 0,
    dirty           BOOLEAN NOT NULL DEFAULT TRUE,
    uom             TEXT NOT NULL DEFAULT '',
    charge_number   TEXT NOT NULL DEFAULT '',
    uploads         INTEGER NOT NULL DEFAULT 0,
    sealed_at       DATETIME,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    UNIQUE (subscription_id, plan_id, charge_id, window_start)
);
CREATE INDEX usage_windows_dirty_idx ON usage_windows (window_start) WHERE dirty;

CREATE TABLE usage_uploads (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    window_id           BIGINT NOT NULL REFERENCES usage_windows(id),
    subscription_id     TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    quantity            TEXT NOT NULL,
    state               TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    solo                BOOLEAN NOT NULL DEFAULT FALSE,
    batch_id            TEXT NOT NULL DEFAULT '',
    account_number      TEXT NOT NULL DEFAULT '',
    subscription_number TEXT NOT NULL DEFAULT '',
    charge_number       TEXT NOT NULL DEFAULT '',
    uom                 TEXT NOT NULL DEFAULT '',
    description         TEXT NOT NULL DEFAULT '',
    zuora_id            TEXT NOT NULL DEFAULT '',
    last_error          TEXT NOT NULL DEFAULT '',
    next_attempt_at     DATETIME NOT NULL,
    created_at          DATETIME NOT NULL,
    sent_at             DATETIME,
    updated_at          DATETIME NOT NULL,
    UNIQUE (window_id, seq)
);
CREATE INDEX usage_uploads_pending_idx ON usage_uploads (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX usage_uploads_sub_idx ON usage_uploads (subscription_id, state);
CREATE INDEX usage_uploads_batch_idx ON usage_uploads (batch_id) WHERE batch_id <> '';
CREATE INDEX usage_uploads_unsent_idx ON usage_uploads (window_id) WHERE state <> 'sent';

CREATE TABLE usage_batches (
    id              TEXT PRIMARY KEY,
    row_count       INTEGER NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    first_sent_at   DATETIME NOT NULL,
    last_attempt_at DATETIME,
    next_attempt_at DATETIME NOT NULL,
    claimed_by      TEXT NOT NULL DEFAULT '',
    claimed_until   DATETIME,
    last_error      TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL
);
CREATE INDEX usage_batches_sending_idx ON usage_batches (next_attempt_at) WHERE state = 'sending';

-- +goose Down
DROP TABLE usage_batches;
DROP TABLE usage_uploads;
DROP TABLE usage_windows;
DROP TABLE usage_events;
