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
CREATE FUNCTION bump_catalog_generation() RETURNS trigger AS $$
BEGIN
    UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER plans_catalog_generation AFTER INSERT OR UPDATE OR DELETE ON plans
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER billing_periods_catalog_generation AFTER INSERT OR UPDATE OR DELETE ON billing_periods
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER charges_catalog_generation AFTER INSERT OR UPDATE OR DELETE ON charges
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER id_mappings_catalog_generation_write AFTER INSERT OR UPDATE ON id_mappings
    FOR EACH ROW WHEN (NEW.kind IN ('product', 'rate_plan', 'charge'))
    EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER id_mappings_catalog_generation_delete AFTER DELETE ON id_mappings
    FOR EACH ROW WHEN (OLD.kind IN ('product', 'rate_plan', 'charge'))
    EXECUTE FUNCTION bump_catalog_generation();

-- ByParent reads "kind = ? AND parent_id = ? ORDER BY local_id": with the
-- parent index lacking local_id, SQLite's planner walked the primary key
-- over every mapping of the kind instead (quadratic in customers).
CREATE INDEX id_mappings_parent_local_idx ON id_mappings (kind, parent_id, local_id);
DROP INDEX id_mappings_parent_idx;

-- +goose Down
CREATE INDEX id_mappings_parent_idx ON id_mappings (kind, parent_id);
DROP INDEX id_mappings_parent_local_idx;
DROP TRIGGER id_mappings_catalog_generation_delete ON id_mappings;
DROP TRIGGER id_mappings_catalog_generation_write ON id_mappings;
DROP TRIGGER charges_catalog_generation ON charges;
DROP TRIGGER billing_periods_catalog_generation ON billing_periods;
DROP TRIGGER plans_catalog_generation ON plans;
DROP FUNCTION bump_catalog_generation();
DROP TABLE catalog_generation;
