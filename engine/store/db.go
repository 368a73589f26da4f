// Package store is the gorm implementation of billsync's storage: Postgres in
// production, an embedded pure-Go SQLite by default. Rows are separate from the
// domain types in package engine, with named converters.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/rs/zerolog"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/billsync/billsync/mappings"
	"github.com/billsync/billsync/migrations"
)

// Dialect names a supported database.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database with its dialect.
type DB struct {
	Gorm    *gorm.DB
	Dialect Dialect
	log     zerolog.Logger
	now     func() time.Time
}

// IsPostgresURL reports whether a database URL points at Postgres.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// Open connects to a Postgres URL or opens (creating if needed) a SQLite file.
func Open(ctx context.Context, databaseURL string, log zerolog.Logger) (*DB, error) {
	gcfg := &gorm.Config{
		Logger:                 gormLogger{log: log.With().Str("component", "gorm").Logger()},
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var (
		gdb     *gorm.DB
		err     error
		dialect Dialect
	)
	if IsPostgresURL(databaseURL) {
		dialect = Postgres
		gdb, err = gorm.Open(postgres.New(postgres.Config{DSN: databaseURL}), gcfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres %s: %w", RedactURL(databaseURL), err)
		}
		sqlDB, _ := gdb.DB()
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(20)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		dialect = SQLite
		path := strings.TrimPrefix(databaseURL, "sqlite://")
		path = strings.TrimPrefix(path, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return nil, errors.New("database URL: empty SQLite path")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		// Created readable by its owner only (SQLite gives its -wal and -shm
		// files the same mode); an existing file keeps its mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		_ = f.Close()
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_time_format=sqlite&_txlock=immediate"
		// Not gorm's PrepareStmt: on one connection it deadlocks (a
		// statement prepared outside a transaction waits for the connection
		// the transaction holds, while the transaction waits for that
		// statement to be prepared).
		gdb, err = gorm.Open(sqlite.Open(dsn), gcfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		sqlDB, _ := gdb.DB()
		// One writer at a time is SQLite's rule; one connection also keeps
		// transactions from waiting on each other's locks.
		sqlDB.SetMaxOpenConns(1)
	}
	db := &DB{Gorm: gdb, Dialect: dialect, log: log, now: func() time.Time { return time.Now().UTC() }}
	if err := db.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// RedactURL hides the passwords of a database URL: the user info's and any
// password-like query parameter (?password=, ?sslpassword=). A URL that does
// not parse is not shown at all unless it is a plain SQLite path.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if IsPostgresURL(u) || strings.ContainsAny(u, "@?") {
			return "(unparseable database URL, not shown)"
		}
		return u
	}
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
			}
		}
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

// Close closes the connection pool.
func (db *DB) Close() error {
	sqlDB, err := db.Gorm.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.Gorm.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	return nil
}

// SetClock replaces the store's clock (tests).
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// Now is the store's clock, in UTC.
func (db *DB) Now() time.Time { return db.now().UTC() }

// Mappings returns the id-mapping store on this database.
func (db *DB) Mappings() *mappings.Store { return mappings.New(db.Gorm) }

func (db *DB) provider() (*goose.Provider, error) {
	fsys, err := migrations.FS(string(db.Dialect))
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.Gorm.DB()
	if err != nil {
		return nil, err
	}
	d := goose.DialectPostgres
	if db.Dialect == SQLite {
		d = goose.DialectSQLite3
	}
	// Out of order: migrations written on parallel branches may land with a
	// lower number than one a database already applied (00011 after 00013);
	// each is independent of the others' order, and the missing one is
	// applied rather than refused.
	return goose.NewProvider(d, sqlDB, fsys, goose.WithAllowOutofOrder(true))
}

// MigrationState is one migration's version and whether it is applied.
type MigrationState struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// MigrateUp applies every pending migration and returns the versions applied.
func (db *DB) MigrateUp(ctx context.Context) ([]int64, error) {
	p, err := db.provider()
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	var out []int64
	for _, r := range res {
		out = append(out, r.Source.Version)
	}
	if err != nil {
		return out, fmt.Errorf("migrate up: %w", err)
	}
	return out, nil
}

// MigrateDown rolls back the latest applied migration.
func (db *DB) MigrateDown(ctx context.Context) (int64, error) {
	p, err := db.provider()
	if err != nil {
		return 0, err
	}
	res, err := p.Down(ctx)
	if err != nil {
		if errors.Is(err, goose.ErrNoNextVersion) {
			return 0, errors.New("migrate down: nothing to roll back")
		}
		return 0, fmt.Errorf("migrate down: %w", err)
	}
	return res.Source.Version, nil
}

// MigrationStatus lists every known migration and whether it is applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	p, err := db.provider()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationState, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationState{
			Version:   s.Source.Version,
			Name:      filepath.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Ready reports an error unless the database answers and every migration is applied.
func (db *DB) Ready(ctx context.Context) error {
	if err := db.Ping(ctx); err != nil {
		return err
	}
	p, err := db.provider()
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	if pending {
		return errors.New("database has pending migrations; run `billsync migrate up`")
	}
	return nil
}

// gormLogger routes gorm's logs through zerolog.
type gormLogger struct{ log zerolog.Logger }

func (l gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }
func (l gormLogger) Info(_ context.Context, msg string, args ...any) {
	l.log.Info().Msgf(msg, args...)
}
func (l gormLogger) Warn(_ context.Context, msg string, args ...any) {
	l.log.Warn().Msgf(msg, args...)
}
func (l gormLogger) Error(_ context.Context, msg string, args ...any) {
	l.log.Error().Msgf(msg, args...)
}
func (l gormLogger) Trace(_ context.Context, begin time.Time, fc func() (string, int64), err error) {
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		sql, rows := fc()
		l.log.Debug().Err(err).Str("sql", sql).Int64("rows", rows).Stringer("elapsed", time.Since(begin)).Msg("query failed")
		return
	}
	if e := l.log.Trace(); e.Enabled() {
		sql, rows := fc()
		e.Str("sql", sql).Int64("rows", rows).Stringer("elapsed", time.Since(begin)).Msg("query")
	}
}
