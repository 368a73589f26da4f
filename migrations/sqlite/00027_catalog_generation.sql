-- +goose Up
-- The catalog's generation: one number that every change to the catalog
-- (plans, billing periods, charges, and the id mappings of products, rate
-- plans and charges) moves, in the change's own transaction, by trigger, so
-- no writer can forget it. A reconcile reads it (one row by key) to know
-- whether the plans and catalog mappings it cached are still current.
CREATE TABLE catalog_generation (
    id         INTEGER PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER plans_catalog_generation_insert AFTER INSERT ON plans
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER plans_catalog_generation_update AFTER UPDATE ON plans
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER plans_catalog_generation_delete AFTER DELETE ON plans
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER billing_periods_catalog_generation_insert AFTER INSERT ON billing_periods
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER billing_periods_catalog_generation_update AFTER UPDATE ON billing_periods
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER billing_periods_catalog_generation_delete AFTER DELETE ON billing_periods
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER charges_catalog_generation_insert AFTER INSERT ON charges
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER charges_catalog_generation_update AFTER UPDATE ON charges
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER charges_catalog_generation_delete AFTER DELETE ON charges
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER id_mappings_catalog_generation_insert AFTER INSERT ON id_mappings
WHEN NEW.kind IN ('product', 'rate_plan', 'charge')
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER id_mappings_catalog_generation_update AFTER UPDATE ON id_mappings
WHEN NEW.kind IN ('product', 'rate_plan', 'charge')
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER id_mappings_catalog_generation_delete AFTER DELETE ON id_mappings
WHEN OLD.kind IN ('product', 'rate_plan', 'charge')
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
-- +goose StatementEnd

-- ByParent reads "kind = ? AND parent_id = ? ORDER BY local_id": with the
-- parent index lacking local_id, SQLite's planner walked the primary key
-- over every mapping of the kind instead (quadratic in customers).
CREATE INDEX id_mappings_parent_local_idx ON id_mappings (kind, parent_id, local_id);
DROP INDEX id_mappings_parent_idx;

-- +goose Down
CREATE INDEX id_mappings_parent_idx ON id_mappings (kind, parent_id);
DROP INDEX id_mappings_parent_local_idx;
DROP TRIGGER id_mappings_catalog_generation_delete;
DROP TRIGGER id_mappings_catalog_generation_update;
DROP TRIGGER id_mappings_catalog_generation_insert;
DROP TRIGGER charges_catalog_generation_delete;
DROP TRIGGER charges_catalog_generation_update;
DROP TRIGGER charges_catalog_generation_insert;
DROP TRIGGER billing_periods_catalog_generation_delete;
DROP TRIGGER billing_periods_catalog_generation_update;
DROP TRIGGER billing_periods_catalog_generation_insert;
DROP TRIGGER plans_catalog_generation_delete;
DROP TRIGGER plans_catalog_generation_update;
DROP TRIGGER plans_catalog_generation_insert;
DROP TABLE catalog_generation;
