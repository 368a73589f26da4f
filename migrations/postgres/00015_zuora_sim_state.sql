-- +goose Up
-- The built-in Zuora simulator's objects (billsync serve without a Zuora
-- configured): one row, its whole state as the simulator saves it, so a
-- restart finds the accounts and subscriptions billsync's mappings point at.
CREATE TABLE zuora_sim_state (
    id         INTEGER PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE zuora_sim_state;
