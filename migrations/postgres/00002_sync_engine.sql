-- +goose Up
ALTER TABLE sync_records ADD COLUMN pushed_state TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_records ADD COLUMN processing_revision INTEGER NOT NULL DEFAULT 0;
-- Claims since the last settled outcome: above 1, an earlier claim may have
-- written to Zuora before it was cut off, so reconciles look up before creating.
ALTER TABLE sync_records ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE id_mappings ADD COLUMN payload_hash TEXT NOT NULL DEFAULT '';

-- One row per reconcile attempt of a sync record: the sync history.
CREATE TABLE sync_attempts (
    id             BIGSERIAL PRIMARY KEY,
    sync_record_id BIGINT NOT NULL REFERENCES sync_records(id) ON DELETE CASCADE,
    sync_id        TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ NOT NULL,
    outcome        TEXT NOT NULL,
    detail         TEXT NOT NULL DEFAULT '',
    error_code     TEXT NOT NULL DEFAULT '',
    error_message  TEXT NOT NULL DEFAULT '',
    request_id     TEXT NOT NULL DEFAULT '',
    zuora_calls    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sync_attempts_record_idx ON sync_attempts (sync_record_id, id);

-- Runtime settings changed from the admin page (sync switches), persisted.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Named leases: one holder at a time (the scheduler's leader).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Scheduled job runs, unique per job and period so replicas never double-enqueue.
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    period      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, period)
);

-- +goose Down
DROP TABLE job_runs;
DROP TABLE leases;
DROP TABLE settings;
DROP TABLE sync_attempts;
ALTER TABLE id_mappings DROP COLUMN payload_hash;
ALTER TABLE sync_records DROP COLUMN claims;
ALTER TABLE sync_records DROP COLUMN processing_revision;
ALTER TABLE sync_records DROP COLUMN pushed_state;
