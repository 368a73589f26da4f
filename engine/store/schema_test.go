package store_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestSchemaParity: the two migration trees (migrations/postgres and
// migrations/sqlite) give the same tables, columns (with normalised types,
// nullability and the presence of a default), primary keys and indexes
// (columns, uniqueness, partial or not).
func TestSchemaParity(t *testing.T) {
	t.Parallel()
	pg := describe(t, storetest.Open(t, store.Postgres))
	lite := describe(t, storetest.Open(t, store.SQLite))
	require.Greater(t, len(pg), 100, "tables, columns and indexes were read")
	require.Equal(t, pg, lite, "postgres (expected) vs sqlite (actual)")
}

// sqliteDecimalText are the columns that are NUMERIC on Postgres and exact
// decimal TEXT on SQLite (which has no exact decimal type: NUMERIC affinity
// would round through a float); the store sums them in Go there.
var sqliteDecimalText = map[string]bool{
	"usage_events.quantity": true, "usage_uploads.quantity": true,
	"usage_windows.quantity": true, "usage_windows.sealed_quantity": true,
}

// describe lists the schema one line per fact, sorted, so a difference reads as a diff.
func describe(t *testing.T, db *store.DB) []string {
	t.Helper()
	ctx := context.Background()
	var facts []string
	for _, tbl := range tables(t, ctx, db) {
		cols, pk := columns(t, ctx, db, tbl)
		for _, c := range cols {
			facts = append(facts, tbl+"."+c)
		}
		facts = append(facts, tbl+" PRIMARY KEY ("+strings.Join(pk, ", ")+")")
		for _, ix := range indexes(t, ctx, db, tbl, pk) {
			facts = append(facts, tbl+" "+ix)
		}
	}
	sort.Strings(facts)
	return facts
}

func tables(t *testing.T, ctx context.Context, db *store.DB) []string {
	var names []string
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version' ORDER BY name`
	if db.Dialect == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
			AND table_name <> 'goose_db_version' ORDER BY table_name`
	}
	require.NoError(t, db.Gorm.WithContext(ctx).Raw(q).Scan(&names).Error)
	return names
}

// normType maps a declared type to its kind: int, text, time, bool, decimal, date, bytes.
func normType(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.Contains(s, "int") || strings.Contains(s, "serial"):
		return "int"
	case strings.Contains(s, "char") || strings.Contains(s, "text") || strings.Contains(s, "clob") || s == "json" || s == "jsonb":
		return "text"
	case strings.Contains(s, "timestamp") || strings.Contains(s, "datetime"):
		return "time"
	case s == "date":
		return "date"
	case strings.Contains(s, "bool"):
		return "bool"
	case strings.Contains(s, "numeric") || strings.Contains(s, "decimal") || strings.Contains(s, "double") || strings.Contains(s, "real"):
		return "decimal"
	case strings.Contains(s, "blob") || strings.Contains(s, "bytea"):
		return "bytes"
	}
	return "?" + s
}

func columns(t *testing.T, ctx context.Context, db *store.DB, tbl string) (cols, pk []string) {
	type col struct {
		Name     string
		Type     string
		Nullable bool
		Default  *string
		PK       int
	}
	var rows []col
	if db.Dialect == store.Postgres {
		require.NoError(t, db.Gorm.WithContext(ctx).Raw(`SELECT c.column_name AS name, c.data_type AS type, c.is_nullable = 'YES' AS nullable,
			c.column_default AS default, COALESCE((SELECT k.ordinal_position FROM information_schema.table_constraints tc
				JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
				WHERE tc.table_schema = c.table_schema AND tc.table_name = c.table_name AND tc.constraint_type = 'PRIMARY KEY'
				AND k.column_name = c.column_name), 0) AS pk
			FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name = ?`, tbl).Scan(&rows).Error)
	} else {
		var info []struct {
			Name    string
			Type    string
			Notnull bool
			Dflt    *string `gorm:"column:dflt_value"`
			PK      int
		}
		require.NoError(t, db.Gorm.WithContext(ctx).Raw(`SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)`, tbl).Scan(&info).Error)
		for _, c := range info {
			rows = append(rows, col{Name: c.Name, Type: c.Type, Nullable: !c.Notnull && c.PK == 0, Default: c.Dflt, PK: c.PK})
		}
	}
	pkByPos := map[int]string{}
	for _, c := range rows {
		typ := normType(c.Type)
		if db.Dialect == store.SQLite && typ == "text" && sqliteDecimalText[tbl+"."+c.Name] {
			typ = "decimal"
		}
		def := c.Default != nil
		if c.PK > 0 {
			pkByPos[c.PK] = c.Name
			// An auto-assigned key: BIGSERIAL (a nextval default) on
			// Postgres, INTEGER PRIMARY KEY on SQLite.
			def = false
			c.Nullable = false
		}
		null := "NOT NULL"
		if c.Nullable {
			null = "NULL"
		}
		d := ""
		if def {
			d = " DEFAULT"
		}
		cols = append(cols, fmt.Sprintf("%s %s %s%s", c.Name, typ, null, d))
	}
	for i := 1; i <= len(pkByPos); i++ {
		pk = append(pk, pkByPos[i])
	}
	return cols, pk
}

var indexCols = regexp.MustCompile(`(?is)\bON\s+\S+\s*(?:USING\s+\w+\s*)?\((.*?)\)\s*(WHERE\s+.*)?$`)

// indexes lists the table's indexes but the primary key's, as
// "[UNIQUE ]INDEX (cols)[ PARTIAL]": explicit ones by their CREATE INDEX,
// and those UNIQUE constraints make.
func indexes(t *testing.T, ctx context.Context, db *store.DB, tbl string, pk []string) []string {
	var out []string
	if db.Dialect == store.Postgres {
		var defs []struct {
			Indexname string
			Indexdef  string
		}
		require.NoError(t, db.Gorm.WithContext(ctx).Raw(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?`, tbl).Scan(&defs).Error)
		for _, d := range defs {
			out = append(out, indexFact(d.Indexdef))
		}
	} else {
		var list []struct {
			Name    string
			Unique  bool
			Origin  string
			Partial bool
		}
		require.NoError(t, db.Gorm.WithContext(ctx).Raw(`SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, tbl).Scan(&list).Error)
		for _, ix := range list {
			var cols []string
			require.NoError(t, db.Gorm.WithContext(ctx).Raw(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix.Name).Scan(&cols).Error)
			f := "INDEX (" + strings.Join(cols, ", ") + ")"
			if ix.Unique {
				f = "UNIQUE " + f
			}
			if ix.Partial {
				f += " PARTIAL"
			}
			out = append(out, f)
		}
	}
	pkFact := "UNIQUE INDEX (" + strings.Join(pk, ", ") + ")"
	kept := out[:0]
	for _, f := range out {
		if f != pkFact {
			kept = append(kept, f)
		}
	}
	sort.Strings(kept)
	return kept
}

func indexFact(def string) string {
	m := indexCols.FindStringSubmatch(def)
	if m == nil {
		return "?" + def
	}
	cols := strings.Split(m[1], ",")
	for i, c := range cols {
		cols[i] = strings.Trim(strings.TrimSpace(c), `"`)
	}
	f := "INDEX (" + strings.Join(cols, ", ") + ")"
	if strings.HasPrefix(strings.ToUpper(def), "CREATE UNIQUE") {
		f = "UNIQUE " + f
	}
	if m[2] != "" {
		f += " PARTIAL"
	}
	return f
}
