-- +goose Up
-- Server-side admin sessions: the cookie holds a random token, the table its
-- SHA-256, so logout deletes the row and a password change (another
-- password_fp) ends every session.
CREATE TABLE admin_sessions (
    id          TEXT PRIMARY KEY,
    password_fp TEXT NOT NULL,
    expires_at  DATETIME NOT NULL,
    created_at  DATETIME NOT NULL
);
CREATE INDEX admin_sessions_expires_idx ON admin_sessions (expires_at);

-- Secrets billsync generates itself (the admin session signing key), shared
-- by every replica.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE secrets;
DROP TABLE admin_sessions;
