// Package storetest opens real, migrated databases for tests: a fresh Postgres
// schema per test and a fresh SQLite file per test. Postgres is required when
// CI=true; elsewhere its tests skip with a message when it is unreachable.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for schema setup
	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine/store"
)

// PostgresURL is the server tests use: BILLSYNC_TEST_POSTGRES_URL or the local default.
func PostgresURL() string {
	if u := os.Getenv("BILLSYNC_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Dialects are the databases every store test runs against.
var Dialects = []store.Dialect{store.Postgres, store.SQLite}

// Each runs fn as a parallel subtest per dialect with a fresh migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}

// URL returns a database URL for a fresh, empty database of the dialect
// (a new Postgres schema, dropped at cleanup; or a new SQLite file).
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return filepath.Join(t.TempDir(), "billsync.db")
	}
	base := PostgresURL()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgres at %s is required under CI=true but unreachable: %v", store.RedactURL(base), err)
		}
		t.Skipf("postgres at %s unreachable (%v); set BILLSYNC_TEST_POSTGRES_URL or start postgres. Skipping Postgres variant", store.RedactURL(base), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated store of the dialect, closed at cleanup.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	return OpenURL(t, URL(t, d))
}

// OpenURL opens and migrates the database at u, closed at cleanup.
func OpenURL(t testing.TB, u string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, u, zerolog.Nop())
	if err != nil {
		t.Fatalf("open %s: %v", store.RedactURL(u), err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
