-- +goose Up
CREATE TABLE plans (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    pricing_type  TEXT NOT NULL,
    trial_days    INTEGER NOT NULL DEFAULT 0,
    currency      TEXT NOT NULL,
    revision      INTEGER NOT NULL DEFAULT 1,
    content_hash  TEXT NOT NULL,
    archived_at   DATETIME,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

CREATE TABLE billing_periods (
    plan_id     TEXT NOT NULL REFERENCES plans(id),
    id          TEXT NOT NULL,
    period      TEXT NOT NULL,
    position    INTEGER NOT NULL,
    archived_at DATETIME,
    PRIMARY KEY (plan_id, id)
);

CREATE TABLE charges (
    plan_id           TEXT NOT NULL REFERENCES plans(id),
    id                TEXT NOT NULL,
    billing_period_id TEXT NOT NULL,
    position          INTEGER NOT NULL,
    name              TEXT NOT NULL,
    type              TEXT NOT NULL,
    model             TEXT NOT NULL,
    currency          TEXT NOT NULL,
    price             TEXT NOT NULL,
    tiers             TEXT NOT NULL DEFAULT '[]',
    unit_of_measure   TEXT NOT NULL DEFAULT '',
    feature           TEXT NOT NULL DEFAULT '',
    billing_timing    TEXT NOT NULL DEFAULT '',
    default_quantity  TEXT NOT NULL DEFAULT '0',
    archived_at       DATETIME,
    PRIMARY KEY (plan_id, id),
    FOREIGN KEY (plan_id, billing_period_id) REFERENCES billing_periods(plan_id, id)
);

CREATE TABLE customers (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    email              TEXT NOT NULL DEFAULT '',
    currency           TEXT NOT NULL,
    bill_to            TEXT,
    has_payment_method BOOLEAN NOT NULL DEFAULT FALSE,
    revision           INTEGER NOT NULL DEFAULT 1,
    content_hash       TEXT NOT NULL,
    archived_at        DATETIME,
    created_at         DATETIME NOT NULL,
    updated_at         DATETIME NOT NULL
);

CREATE TABLE subscriptions (
    id                  TEXT PRIMARY KEY,
    customer_id         TEXT NOT NULL REFERENCES customers(id),
    plan_id             TEXT NOT NULL REFERENCES plans(id),
    billing_period_id   TEXT NOT NULL,
    add_ons             TEXT NOT NULL DEFAULT '[]',
    charge_quantities   TEXT NOT NULL DEFAULT '{}',
    status              TEXT NOT NULL,
    start_date          TEXT NOT NULL,
    term_months         INTEGER NOT NULL DEFAULT 12,
    auto_renew          BOOLEAN NOT NULL DEFAULT TRUE,
    renewal_count       INTEGER NOT NULL DEFAULT 0,
    suspend_date        TEXT NOT NULL DEFAULT '',
    resume_date         TEXT NOT NULL DEFAULT '',
    cancellation_policy TEXT NOT NULL DEFAULT '',
    cancellation_date   TEXT NOT NULL DEFAULT '',
    revision            INTEGER NOT NULL DEFAULT 1,
    content_hash        TEXT NOT NULL,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL
);
CREATE INDEX subscriptions_customer_idx ON subscriptions (customer_id);

-- One sync record per (entity, connector, direction): the outbox. A local write
-- changes the entity and raises desired_revision here in the same transaction.
CREATE TABLE sync_records (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_kind        TEXT NOT NULL,
    entity_id          TEXT NOT NULL,
    connector          TEXT NOT NULL,
    direction          TEXT NOT NULL,
    state              TEXT NOT NULL,
    reason             TEXT NOT NULL DEFAULT '',
    desired_revision   INTEGER NOT NULL DEFAULT 0,
    synced_revision    INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    DATETIME NOT NULL,
    claimed_by         TEXT NOT NULL DEFAULT '',
    claimed_until      DATETIME,
    last_attempt_at    DATETIME,
    last_error_code    TEXT NOT NULL DEFAULT '',
    last_error_message TEXT NOT NULL DEFAULT '',
    last_request_id    TEXT NOT NULL DEFAULT '',
    payload_hash       TEXT NOT NULL DEFAULT '',
    zuora_id           TEXT NOT NULL DEFAULT '',
    zuora_number       TEXT NOT NULL DEFAULT '',
    zuora_url          TEXT NOT NULL DEFAULT '',
    created_at         DATETIME NOT NULL,
    updated_at         DATETIME NOT NULL,
    UNIQUE (entity_kind, entity_id, connector, direction)
);
CREATE INDEX sync_records_due_idx ON sync_records (state, next_attempt_at);

-- Local id <-> Zuora id and number, per kind; unique both ways.
CREATE TABLE id_mappings (
    kind         TEXT NOT NULL,
    local_id     TEXT NOT NULL,
    zuora_id     TEXT NOT NULL,
    zuora_number TEXT NOT NULL DEFAULT '',
    parent_id    TEXT NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL,
    PRIMARY KEY (kind, local_id),
    UNIQUE (kind, zuora_id)
);
CREATE INDEX id_mappings_number_idx ON id_mappings (kind, zuora_number);
CREATE INDEX id_mappings_parent_idx ON id_mappings (kind, parent_id);

-- +goose Down
DROP TABLE id_mappings;
DROP TABLE sync_records;
DROP TABLE subscriptions;
DROP TABLE customers;
DROP TABLE charges;
DROP TABLE billing_periods;
DROP TABLE plans;
