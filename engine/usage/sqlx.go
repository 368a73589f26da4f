package usage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine/store"
)

// query builds one SQL statement with the dialect's placeholders.
type query struct {
	pg   bool
	b    strings.Builder
	args []any
}

func (l *Ledger) q() *query { return &query{pg: l.db.Dialect == store.Postgres} }

// s appends SQL text.
func (q *query) s(text string) *query {
	q.b.WriteString(text)
	return q
}

// a appends a placeholder for v.
func (q *query) a(v any) *query {
	q.args = append(q.args, v)
	if q.pg {
		q.b.WriteByte('$')
		q.b.WriteString(strconv.Itoa(len(q.args)))
	} else {
		q.b.WriteByte('?')
	}
	return q
}

// in appends "(p1, p2, …)" for ids.
func (q *query) in(ids []int64) *query { return inList(q, ids) }

// inList appends "(p1, p2, …)", one placeholder per value.
func inList[T any](q *query, vals []T) *query {
	q.b.WriteByte('(')
	for i, v := range vals {
		if i > 0 {
			q.b.WriteByte(',')
		}
		q.a(v)
	}
	q.b.WriteByte(')')
	return q
}

func (q *query) String() string { return q.b.String() }

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (q *query) exec(ctx context.Context, db execer) (int64, error) {
	res, err := db.ExecContext(ctx, q.String(), q.args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q *query) rows(ctx context.Context, db execer) (*sql.Rows, error) {
	return db.QueryContext(ctx, q.String(), q.args...)
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (l *Ledger) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := l.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// num reads a NUMERIC (Postgres) or decimal TEXT (SQLite) value.
func num(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, fmt.Errorf("usage: stored quantity %q: %w", s, err)
	}
	return d, nil
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
