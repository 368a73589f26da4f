-- +goose Up
-- The Zuora connection entered on the admin page (one row): the client
-- secret is sealed with AES-256-GCM under BILLSYNC_SECRET_KEY, key_id names
-- that key (a SHA-256 prefix), so a changed key is detected, not misused.
CREATE TABLE zuora_connection (
    id            INTEGER PRIMARY KEY,
    base_url      TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE zuora_connection;
