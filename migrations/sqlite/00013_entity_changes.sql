-- +goose Up
-- Every local change of a plan, customer or subscription (a new revision),
-- written in the entity's own transaction: the admin page's timeline.
CREATE TABLE entity_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_kind TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    change      TEXT NOT NULL,
    created_at  DATETIME NOT NULL
);
CREATE INDEX entity_changes_entity_idx ON entity_changes (entity_kind, entity_id, id);

-- +goose Down
DROP TABLE entity_changes;
