package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The usage ledger's tables (engine/usage, DESIGN.md §3): events, hourly
// windows, upload rows and upload batches. The batches are a queue of leased
// work like the sync records and the inbox: claimed with a new lease token,
// extended while they run, finished only by the holder of an unlapsed lease.
// The dialect differences (row locks, decimal sums) live here.

// Usage upload row states.
const (
	UsageRowPending = "pending" // waiting to be sent (or to be retried)
	UsageRowSending = "sending" // in a batch whose outcome is not known yet
	UsageRowSent    = "sent"    // Zuora stored it; its Zuora id is set
	UsageRowHeld    = "held"    // needs a person; the last error says why
)

// Usage batch states. A batch in UsageBatchSending is work: its outcome is
// not known, and it is (re)sent as is, with the same Idempotency-Key.
const (
	UsageBatchSending = "sending"
	UsageBatchDone    = "done"
	UsageBatchFailed  = "failed"
)

// Usage batch kinds: one POST /v1/action/create call, or one usage file
// (POST /v1/usage, then its import status).
const (
	UsageBatchCreate = "create"
	UsageBatchImport = "import"
)

// sqlq builds one database/sql statement with the dialect's placeholders.
type sqlq struct {
	pg   bool
	b    strings.Builder
	args []any
}

func (db *DB) q() *sqlq { return &sqlq{pg: db.Dialect == Postgres} }

// s appends SQL text.
func (q *sqlq) s(text string) *sqlq {
	q.b.WriteString(text)
	return q
}

// a appends a placeholder for v.
func (q *sqlq) a(v any) *sqlq {
	q.args = append(q.args, v)
	if q.pg {
		q.b.WriteByte('$')
		q.b.WriteString(strconv.Itoa(len(q.args)))
	} else {
		q.b.WriteByte('?')
	}
	return q
}

// in appends "(p1, p2, …)", one placeholder per value.
func in[T any](q *sqlq, vals []T) *sqlq {
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

// skipLocked is the row-lock clause of a claim: Postgres skips rows another
// transaction holds; SQLite has one writer and needs none.
func (q *sqlq) skipLocked() *sqlq {
	if q.pg {
		q.s(" FOR UPDATE SKIP LOCKED")
	}
	return q
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (q *sqlq) exec(ctx context.Context, db execer) (int64, error) {
	res, err := db.ExecContext(ctx, q.b.String(), q.args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q *sqlq) rows(ctx context.Context, db execer) (*sql.Rows, error) {
	return db.QueryContext(ctx, q.b.String(), q.args...)
}

func (db *DB) sqlDB() *sql.DB {
	s, _ := db.Gorm.DB()
	return s
}

// inTx runs fn in a database/sql transaction, committed when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.sqlDB().BeginTx(ctx, nil)
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

// scanRows reads every row of rs with scan and closes rs.
func scanRows[T any](rs *sql.Rows, scan func(rs *sql.Rows) (T, error)) ([]T, error) {
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// chunks calls fn with vals in slices of at most n.
func chunks[T any](vals []T, n int, fn func([]T) error) error {
	for len(vals) > 0 {
		c := vals[:min(len(vals), n)]
		vals = vals[len(c):]
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// UsageKeysStored reports which of the idempotency keys are stored already.
func (db *DB) UsageKeysStored(ctx context.Context, keys []string) (map[string]bool, error) {
	found := map[string]bool{}
	err := chunks(keys, 500, func(chunk []string) error {
		rs, err := in(db.q().s("SELECT idempotency_key FROM usage_events WHERE idempotency_key IN "), chunk).rows(ctx, db.sqlDB())
		if err != nil {
			return fmt.Errorf("look up usage keys: %w", err)
		}
		ks, err := scanRows(rs, func(rs *sql.Rows) (k string, err error) { return k, rs.Scan(&k) })
		for _, k := range ks {
			found[k] = true
		}
		return err
	})
	return found, err
}

// SubscriptionRevisions returns "subscription revision/plan revision" per
// existing subscription id (the usage ledger's cache key).
func (db *DB) SubscriptionRevisions(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	err := chunks(ids, 500, func(chunk []string) error {
		rs, err := in(db.q().s("SELECT s.id, s.revision, p.revision FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.id IN "), chunk).
			rows(ctx, db.sqlDB())
		if err != nil {
			return err
		}
		_, err = scanRows(rs, func(rs *sql.Rows) (struct{}, error) {
			var (
				id     string
				sr, pr int
			)
			if err := rs.Scan(&id, &sr, &pr); err != nil {
				return struct{}{}, err
			}
			out[id] = fmt.Sprintf("%d/%d", sr, pr)
			return struct{}{}, nil
		})
		return err
	})
	return out, err
}

// UsageEvent is one validated event to store.
type UsageEvent struct {
	Key                              string
	SubscriptionID, PlanID, ChargeID string
	Quantity                         decimal.Decimal
	OccurredAt, WindowStart          time.Time
	UOM, ChargeNumber                string // of its window, kept when the window has them already
}

type windowKey struct {
	sub, plan, charge string
	start             int64
}

type windowAgg struct {
	key    windowKey
	start  time.Time
	qty    decimal.Decimal
	events int64
	uom    string
	number string
}

// InsertUsageEvents stores the events whose key is new and adds them to
// their windows (marked dirty), in one transaction: a window's quantity is
// always the sum of its distinct events. It returns the keys that were new.
func (db *DB) InsertUsageEvents(ctx context.Context, evs []UsageEvent, now time.Time) (map[string]bool, error) {
	// A fixed lock order (keys, then windows, sorted) keeps concurrent
	// batches from deadlocking.
	sort.Slice(evs, func(i, j int) bool { return evs[i].Key < evs[j].Key })
	inserted := make(map[string]bool, len(evs))
	if len(evs) == 0 {
		return inserted, nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		clear(inserted)
		err := chunks(evs, db.rowsPerStatement(), func(evs []UsageEvent) error {
			q := db.q().s("INSERT INTO usage_events (idempotency_key, subscription_id, plan_id, charge_id, quantity, occurred_at, window_start, ingested_at) VALUES ")
			for i, e := range evs {
				if i > 0 {
					q.s(",")
				}
				q.s("(").a(e.Key).s(",").a(e.SubscriptionID).s(",").a(e.PlanID).s(",").a(e.ChargeID).s(",").a(e.Quantity.String()).s(",").
					a(e.OccurredAt.UTC()).s(",").a(e.WindowStart.UTC()).s(",").a(now).s(")")
			}
			q.s(" ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key")
			rs, err := q.rows(ctx, tx)
			if err != nil {
				return fmt.Errorf("insert usage events: %w", err)
			}
			ks, err := scanRows(rs, func(rs *sql.Rows) (k string, err error) { return k, rs.Scan(&k) })
			for _, k := range ks {
				inserted[k] = true
			}
			return err
		})
		if err != nil {
			return err
		}
		aggs := map[windowKey]*windowAgg{}
		for _, e := range evs {
			if !inserted[e.Key] {
				continue
			}
			k := windowKey{e.SubscriptionID, e.PlanID, e.ChargeID, e.WindowStart.Unix()}
			a := aggs[k]
			if a == nil {
				a = &windowAgg{key: k, start: e.WindowStart.UTC(), uom: e.UOM, number: e.ChargeNumber}
				aggs[k] = a
			}
			a.qty = a.qty.Add(e.Quantity)
			a.events++
		}
		if len(aggs) == 0 {
			return nil
		}
		list := make([]*windowAgg, 0, len(aggs))
		for _, a := range aggs {
			list = append(list, a)
		}
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i].key, list[j].key
			if a.sub != b.sub {
				return a.sub < b.sub
			}
			if a.plan != b.plan {
				return a.plan < b.plan
			}
			if a.charge != b.charge {
				return a.charge < b.charge
			}
			return a.start < b.start
		})
		return db.addToWindows(ctx, tx, list, now)
	})
	return inserted, err
}

// addToWindows adds the aggregates to their windows and marks them dirty.
func (db *DB) addToWindows(ctx context.Context, tx *sql.Tx, list []*windowAgg, now time.Time) error {
	pg := db.Dialect == Postgres
	if !pg {
		// SQLite stores exact decimal text: add in Go, reading the current
		// quantities a few hundred windows a query. The transaction holds
		// SQLite's single write lock, so nothing changes in between.
		byKey := make(map[windowKey]*windowAgg, len(list))
		for _, a := range list {
			byKey[a.key] = a
		}
		err := chunks(list, 200, func(chunk []*windowAgg) error {
			q := db.q().s("SELECT subscription_id, plan_id, charge_id, window_start, quantity FROM usage_windows WHERE (subscription_id, plan_id, charge_id, window_start) IN (VALUES ")
			for i, a := range chunk {
				if i > 0 {
					q.s(",")
				}
				q.s("(").a(a.key.sub).s(",").a(a.key.plan).s(",").a(a.key.charge).s(",").a(a.start).s(")")
			}
			rs, err := q.s(")").rows(ctx, tx)
			if err != nil {
				return err
			}
			_, err = scanRows(rs, func(rs *sql.Rows) (struct{}, error) {
				var (
					k   windowKey
					at  time.Time
					cur string
				)
				if err := rs.Scan(&k.sub, &k.plan, &k.charge, &at, &cur); err != nil {
					return struct{}{}, err
				}
				k.start = at.Unix()
				a := byKey[k]
				if a == nil {
					return struct{}{}, nil
				}
				d, err := num(cur)
				if err != nil {
					return struct{}{}, err
				}
				a.qty = a.qty.Add(d)
				return struct{}{}, nil
			})
			return err
		})
		if err != nil {
			return err
		}
	}
	return chunks(list, db.rowsPerStatement(), func(list []*windowAgg) error {
		q := db.q().s("INSERT INTO usage_windows (subscription_id, plan_id, charge_id, window_start, quantity, event_count, dirty, uom, charge_number, created_at, updated_at) VALUES ")
		for i, a := range list {
			if i > 0 {
				q.s(",")
			}
			q.s("(").a(a.key.sub).s(",").a(a.key.plan).s(",").a(a.key.charge).s(",").a(a.start).s(",").a(a.qty.String()).s(",").
				a(a.events).s(", TRUE,").a(a.uom).s(",").a(a.number).s(",").a(now).s(",").a(now).s(")")
		}
		q.s(" ON CONFLICT (subscription_id, plan_id, charge_id, window_start) DO UPDATE SET ")
		if pg {
			q.s("quantity = usage_windows.quantity + excluded.quantity, ")
		} else {
			q.s("quantity = excluded.quantity, ")
		}
		q.s(`event_count = usage_windows.event_count + excluded.event_count, dirty = TRUE, updated_at = excluded.updated_at,
		uom = CASE WHEN usage_windows.uom = '' THEN excluded.uom ELSE usage_windows.uom END,
		charge_number = CASE WHEN usage_windows.charge_number = '' THEN excluded.charge_number ELSE usage_windows.charge_number END`)
		if _, err := q.exec(ctx, tx); err != nil {
			return fmt.Errorf("update usage windows: %w", err)
		}
		return nil
	})
}

// rowsPerStatement bounds the rows of one multi-row statement: SQLite's
// driver binds parameters in time quadratic in their number, so its
// statements stay at about 100 rows (Postgres: 1,000).
func (db *DB) rowsPerStatement() int {
	if db.Dialect == Postgres {
		return 1000
	}
	return 100
}

const sealChunk = 1000

// UsageDescriber names an upload row in Zuora (its window and correction).
type UsageDescriber func(subID, chargeID string, start time.Time, seq int) string

// SealUsageWindows turns the unsealed quantity of every dirty window that
// starts at or before cutoff (of one subscription when subID is set) into
// pending upload rows: the first row of a window carries its total, later
// ones the difference. Each chunk of windows is sealed in one transaction
// with the windows locked. It returns the windows sealed and the rows made.
func (db *DB) SealUsageWindows(ctx context.Context, now, cutoff time.Time, subID string, describe UsageDescriber) (windows, rows int, err error) {
	for {
		w, r, n, err := db.sealChunk(ctx, now, cutoff, subID, describe)
		windows += w
		rows += r
		if err != nil || n < sealChunk {
			return windows, rows, err
		}
	}
}

func (db *DB) sealChunk(ctx context.Context, now, cutoff time.Time, subID string, describe UsageDescriber) (windows, rows, selected int, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		windows, rows, selected = 0, 0, 0
		q := db.q().s("SELECT id, subscription_id, charge_id, window_start, quantity, sealed_quantity, uploads FROM usage_windows WHERE dirty AND window_start <= ").a(cutoff)
		if subID != "" {
			q.s(" AND subscription_id = ").a(subID)
		}
		// Windows an ingest is adding to right now are left for the next pass.
		q.s(" ORDER BY id LIMIT " + strconv.Itoa(sealChunk)).skipLocked()
		rs, err := q.rows(ctx, tx)
		if err != nil {
			return fmt.Errorf("select windows to seal: %w", err)
		}
		type sealRow struct {
			id      int64
			sub     string
			charge  string
			start   time.Time
			diff    decimal.Decimal
			uploads int
		}
		all, err := scanRows(rs, func(rs *sql.Rows) (sealRow, error) {
			var (
				r           sealRow
				qty, sealed string
			)
			if err := rs.Scan(&r.id, &r.sub, &r.charge, &r.start, &qty, &sealed, &r.uploads); err != nil {
				return r, err
			}
			a, err := num(qty)
			if err != nil {
				return r, err
			}
			b, err := num(sealed)
			r.diff = a.Sub(b)
			return r, err
		})
		if err != nil {
			return err
		}
		selected = len(all)
		var toSeal []sealRow
		var clean []int64
		for _, r := range all {
			if r.diff.IsPositive() {
				toSeal = append(toSeal, r)
			} else {
				clean = append(clean, r.id)
			}
		}
		if len(clean) > 0 {
			if _, err := in(db.q().s("UPDATE usage_windows SET dirty = FALSE WHERE id IN "), clean).exec(ctx, tx); err != nil {
				return err
			}
		}
		if len(toSeal) == 0 {
			return nil
		}
		ids := make([]int64, 0, len(toSeal))
		for _, r := range toSeal {
			ids = append(ids, r.id)
		}
		err = chunks(toSeal, db.rowsPerStatement(), func(toSeal []sealRow) error {
			ins := db.q().s("INSERT INTO usage_uploads (window_id, subscription_id, seq, quantity, state, description, next_attempt_at, created_at, updated_at) VALUES ")
			for i, r := range toSeal {
				if i > 0 {
					ins.s(",")
				}
				ins.s("(").a(r.id).s(",").a(r.sub).s(",").a(r.uploads).s(",").a(r.diff.String()).s(",").a(UsageRowPending).s(",").
					a(describe(r.sub, r.charge, r.start.UTC(), r.uploads)).s(",").a(now).s(",").a(now).s(",").a(now).s(")")
			}
			if _, err := ins.exec(ctx, tx); err != nil {
				return fmt.Errorf("insert upload rows: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The rows are locked (Postgres) or the write lock is held (SQLite):
		// quantity is still what was read above.
		if _, err := in(db.q().s("UPDATE usage_windows SET sealed_quantity = quantity, dirty = FALSE, uploads = uploads + 1, sealed_at = COALESCE(sealed_at, ").
			a(now).s("), updated_at = ").a(now).s(" WHERE id IN "), ids).exec(ctx, tx); err != nil {
			return fmt.Errorf("seal windows: %w", err)
		}
		windows, rows = len(toSeal), len(toSeal)
		return nil
	})
	return windows, rows, selected, err
}

// UnholdUsageRows puts a subscription's held rows back in line (pending).
func (db *DB) UnholdUsageRows(ctx context.Context, subID string, now time.Time) (int64, error) {
	n, err := db.q().s("UPDATE usage_uploads SET state = ").a(UsageRowPending).s(", updated_at = ").a(now).
		s(" WHERE state = ").a(UsageRowHeld).s(" AND subscription_id = ").a(subID).exec(ctx, db.sqlDB())
	if err != nil {
		return 0, fmt.Errorf("release held usage rows: %w", err)
	}
	return n, nil
}

// HoldUsageRow marks a pending row as needing a person, with the reason.
func (db *DB) HoldUsageRow(ctx context.Context, id int64, reason string, now time.Time) error {
	_, err := db.q().s("UPDATE usage_uploads SET state = ").a(UsageRowHeld).s(", last_error = ").a(truncate(reason, 500)).s(", updated_at = ").a(now).
		s(" WHERE id = ").a(id).s(" AND state = ").a(UsageRowPending).exec(ctx, db.sqlDB())
	if err != nil {
		return fmt.Errorf("hold usage row: %w", err)
	}
	return nil
}

// UsageRow is an upload row with its window.
type UsageRow struct {
	ID, WindowID                     int64
	SubscriptionID, PlanID, ChargeID string
	WindowStart                      time.Time
	Seq                              int
	Quantity                         string
	Attempts                         int
	Solo                             bool
	Description                      string
	// The window's unit and charge number (pending rows).
	WindowUOM, WindowChargeNumber string
	// The Zuora numbers the row is (or is to be) sent with.
	AccountNumber, SubscriptionNumber, ChargeNumber, UOM string
	// SendStart, when set, is the StartDateTime the row is sent with
	// instead of its window's (a late row for a billed period).
	SendStart *time.Time
}

// PendingUsageRows returns pending rows after the cursor, in id order: those
// due at now, or every pending row of subID when it is set (a person asked:
// no backoff is waited for).
func (db *DB) PendingUsageRows(ctx context.Context, now time.Time, subID string, after int64, limit int) ([]UsageRow, error) {
	q := db.q().s(`SELECT u.id, u.window_id, u.subscription_id, w.plan_id, w.charge_id, w.window_start, u.seq, u.quantity, u.attempts, u.solo,
		u.description, w.uom, w.charge_number FROM usage_uploads u JOIN usage_windows w ON w.id = u.window_id
		WHERE u.state = 'pending' AND u.id > `).a(after)
	if subID != "" {
		q.s(" AND u.subscription_id = ").a(subID)
	} else {
		q.s(" AND u.next_attempt_at <= ").a(now)
	}
	q.s(" ORDER BY u.id LIMIT " + strconv.Itoa(limit))
	rs, err := q.rows(ctx, db.sqlDB())
	if err != nil {
		return nil, fmt.Errorf("select pending upload rows: %w", err)
	}
	return scanRows(rs, func(rs *sql.Rows) (r UsageRow, err error) {
		err = rs.Scan(&r.ID, &r.WindowID, &r.SubscriptionID, &r.PlanID, &r.ChargeID, &r.WindowStart, &r.Seq, &r.Quantity, &r.Attempts, &r.Solo,
			&r.Description, &r.WindowUOM, &r.WindowChargeNumber)
		r.WindowStart = r.WindowStart.UTC()
		return r, err
	})
}

// CountUsageBacklog counts the pending rows due at now (of subID's, all of
// them, when set), and with windows the dirty windows up to cutoff (rows to
// be): the backlog that decides between calls and usage files.
func (db *DB) CountUsageBacklog(ctx context.Context, now time.Time, subID string, windows bool, cutoff time.Time) (int, error) {
	q := db.q().s("SELECT COUNT(*) FROM usage_uploads WHERE state = 'pending'")
	if subID != "" {
		q.s(" AND subscription_id = ").a(subID)
	} else {
		q.s(" AND next_attempt_at <= ").a(now)
	}
	var n, w int
	if err := db.sqlDB().QueryRowContext(ctx, q.b.String(), q.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending upload rows: %w", err)
	}
	if windows {
		q := db.q().s("SELECT COUNT(*) FROM usage_windows WHERE dirty AND window_start <= ").a(cutoff)
		if err := db.sqlDB().QueryRowContext(ctx, q.b.String(), q.args...).Scan(&w); err != nil {
			return 0, fmt.Errorf("count windows to seal: %w", err)
		}
	}
	return n + w, nil
}

// UsageBatchesSending returns which of the batches are still sending.
func (db *DB) UsageBatchesSending(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := chunks(ids, 500, func(chunk []string) error {
		rs, err := in(db.q().s("SELECT id FROM usage_batches WHERE state = 'sending' AND id IN "), chunk).rows(ctx, db.sqlDB())
		if err != nil {
			return err
		}
		got, err := scanRows(rs, func(rs *sql.Rows) (id string, err error) { return id, rs.Scan(&id) })
		for _, id := range got {
			out[id] = true
		}
		return err
	})
	return out, err
}

// NewUsageBatch is a batch to create from pending rows.
type NewUsageBatch struct {
	ID   string     // also the Idempotency-Key
	Kind string     // UsageBatchCreate (default) or UsageBatchImport
	Rows []UsageRow // with the Zuora numbers to send them with
	// ReservedFor, when set, holds the batch for that worker until
	// ReservedUntil (a sync that sends what it batches); others claim it
	// only once the reservation lapses. Empty: due now, for any worker.
	ReservedFor   string
	ReservedUntil time.Time
}

// CreateUsageBatch marks the rows sending under a new batch (with the
// numbers they are sent with; windows without a charge number keep this
// one) and inserts the batch, before any call. It reports false, changing
// nothing, when another uploader took some of the rows first.
func (db *DB) CreateUsageBatch(ctx context.Context, b NewUsageBatch, now time.Time) (bool, error) {
	made, err := db.CreateUsageBatches(ctx, []NewUsageBatch{b}, now)
	return len(made) == 1 && made[0], err
}

// CreateUsageBatches creates batches as CreateUsageBatch does, many in one
// transaction (at most about 1,000 rows each); made[i] reports whether bs[i]
// was created (false: another uploader took some of its rows first).
func (db *DB) CreateUsageBatches(ctx context.Context, bs []NewUsageBatch, now time.Time) ([]bool, error) {
	made := make([]bool, len(bs))
	for start := 0; start < len(bs); {
		end, rows := start, 0
		for end < len(bs) && (end == start || rows+len(bs[end].Rows) <= db.rowsPerStatement()) {
			rows += len(bs[end].Rows)
			end++
		}
		err := db.createUsageBatches(ctx, bs[start:end], now)
		switch {
		case errors.Is(err, errRaced) && end-start > 1:
			// Some rows were taken: one batch at a time.
			for i := start; i < end; i++ {
				err := db.createUsageBatches(ctx, bs[i:i+1], now)
				if err != nil && !errors.Is(err, errRaced) {
					return made, err
				}
				made[i] = err == nil
			}
		case errors.Is(err, errRaced):
		case err != nil:
			return made, err
		default:
			for i := start; i < end; i++ {
				made[i] = true
			}
		}
		start = end
	}
	return made, nil
}

func (db *DB) createUsageBatches(ctx context.Context, bs []NewUsageBatch, now time.Time) error {
	var all []UsageRow
	batchOf := map[int64]string{}
	for _, b := range bs {
		for _, r := range b.Rows {
			all = append(all, r)
			batchOf[r.ID] = b.ID
		}
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		// A statement per rowsPerStatement rows: their values joined in
		// (VALUES …), whose columns both dialects name column1…column8.
		var n int64
		err := chunks(all, db.rowsPerStatement(), func(part []UsageRow) error {
			q := db.q().s("UPDATE usage_uploads SET state = ").a(UsageRowSending).s(", updated_at = ").a(now).
				s(`, batch_id = v.column2, account_number = v.column3, subscription_number = v.column4, charge_number = v.column5,
			uom = v.column6, description = v.column7, sent_start = v.column8 FROM (VALUES `)
			for i, r := range part {
				var start any
				if r.SendStart != nil {
					start = r.SendStart.UTC()
				}
				if i > 0 {
					q.s(",")
				}
				q.s("(").a(r.ID)
				if i == 0 && q.pg {
					q.s("::bigint")
				}
				for _, v := range []any{batchOf[r.ID], r.AccountNumber, r.SubscriptionNumber, r.ChargeNumber, r.UOM, r.Description} {
					q.s(",").a(v)
				}
				q.s(",").a(start)
				if i == 0 && q.pg {
					q.s("::timestamptz")
				}
				q.s(")")
			}
			q.s(") AS v WHERE usage_uploads.id = v.column1 AND usage_uploads.state = 'pending'")
			m, err := q.exec(ctx, tx)
			if err != nil {
				return fmt.Errorf("mark rows sending: %w", err)
			}
			n += m
			return nil
		})
		if err != nil {
			return err
		}
		if n != int64(len(all)) {
			return errRaced
		}
		var first []UsageRow
		for _, r := range all {
			if r.WindowChargeNumber == "" {
				first = append(first, r)
			}
		}
		if len(first) > 0 {
			// The window keeps the charge number that covered it.
			err := chunks(first, db.rowsPerStatement(), func(first []UsageRow) error {
				q := db.q().s("UPDATE usage_windows SET charge_number = v.column2 FROM (VALUES ")
				for i, r := range first {
					if i > 0 {
						q.s(",")
					}
					q.s("(").a(r.WindowID)
					if i == 0 && q.pg {
						q.s("::bigint")
					}
					q.s(",").a(r.ChargeNumber).s(")")
				}
				if _, err := q.s(") AS v WHERE usage_windows.id = v.column1 AND usage_windows.charge_number = ''").exec(ctx, tx); err != nil {
					return fmt.Errorf("record charge numbers on windows: %w", err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		ins := db.q().s("INSERT INTO usage_batches (id, kind, row_count, state, first_sent_at, next_attempt_at, claimed_by, lease_token, claimed_until, created_at, updated_at) VALUES ")
		for i, b := range bs {
			kind := b.Kind
			if kind == "" {
				kind = UsageBatchCreate
			}
			var until any
			if b.ReservedFor != "" {
				until = b.ReservedUntil.UTC()
			}
			if i > 0 {
				ins.s(",")
			}
			ins.s("(").a(b.ID).s(",").a(kind).s(",").a(len(b.Rows)).s(",").a(UsageBatchSending).s(",").a(now).s(",").a(now).s(",").a(b.ReservedFor).s(", '',").a(until).s(",").
				a(now).s(",").a(now).s(")")
		}
		n, err = ins.s(" ON CONFLICT (id) DO NOTHING").exec(ctx, tx)
		if err != nil {
			return fmt.Errorf("insert usage batch: %w", err)
		}
		if n != int64(len(bs)) {
			return fmt.Errorf("usage batch exists already (%d of %d inserted)", n, len(bs))
		}
		return nil
	})
}

var errRaced = errors.New("rows taken by another uploader")

// UsageBatch is a claimed batch with its rows as stored.
type UsageBatch struct {
	ID   string
	Kind string // UsageBatchCreate or UsageBatchImport
	// ImportStatusURL is set once Zuora accepted the batch's usage file:
	// the import is polled from then on, never uploaded again.
	ImportStatusURL string
	FirstSentAt     time.Time
	Attempts        int
	LeaseToken      string
	Rows            []UsageRow
}

// UsageBatchFilter narrows a claim to the batches holding rows of one
// subscription; those are claimed whatever their retry time (a person asked).
type UsageBatchFilter struct {
	SubscriptionID string
	// NotTriedSince, when set, leaves out batches attempted at or after it
	// (a sync tries each batch once).
	NotTriedSince time.Time
}

// ClaimUsageBatches claims up to n batches whose outcome is unknown for
// worker until now+lease, each with a new lease token: those reserved for
// worker, and the due ones (see UsageBatchFilter) that nobody holds or whose
// lease (or reservation) lapsed; in retry order. It loads their rows.
func (db *DB) ClaimUsageBatches(ctx context.Context, worker string, n int, lease time.Duration, now time.Time, f UsageBatchFilter) ([]UsageBatch, error) {
	token := worker + "/" + randomToken()
	q := db.q().s("UPDATE usage_batches SET claimed_by = ").a(worker).s(", lease_token = ").a(token).s(", claimed_until = ").a(now.Add(lease)).
		s(", updated_at = ").a(now).s(" WHERE id IN (SELECT id FROM usage_batches WHERE state = 'sending' AND (")
	q.s("(claimed_by = ").a(worker).s(" AND lease_token = '' AND claimed_until >= ").a(now).s(") OR ((claimed_until IS NULL OR claimed_until < ").a(now).s(")")
	if f.SubscriptionID != "" {
		q.s(" AND id IN (SELECT batch_id FROM usage_uploads WHERE state = 'sending' AND subscription_id = ").a(f.SubscriptionID).s(")")
	} else {
		q.s(" AND next_attempt_at <= ").a(now)
	}
	q.s("))")
	if !f.NotTriedSince.IsZero() {
		// An import being polled is tried until Zuora says how it ended.
		q.s(" AND (last_attempt_at IS NULL OR last_attempt_at < ").a(f.NotTriedSince.UTC()).s(" OR import_status_url <> '')")
	}
	q.s(" ORDER BY next_attempt_at, id LIMIT " + strconv.Itoa(n)).skipLocked().s(") RETURNING id, first_sent_at, attempts, kind, import_status_url")
	rs, err := q.rows(ctx, db.sqlDB())
	if err != nil {
		return nil, fmt.Errorf("claim usage batches: %w", err)
	}
	bs, err := scanRows(rs, func(rs *sql.Rows) (b UsageBatch, err error) {
		err = rs.Scan(&b.ID, &b.FirstSentAt, &b.Attempts, &b.Kind, &b.ImportStatusURL)
		b.FirstSentAt, b.LeaseToken = b.FirstSentAt.UTC(), token
		return b, err
	})
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	sort.Slice(bs, func(i, j int) bool {
		return bs[i].FirstSentAt.Before(bs[j].FirstSentAt) || bs[i].FirstSentAt.Equal(bs[j].FirstSentAt) && bs[i].ID < bs[j].ID
	})
	byID := make(map[string]int, len(bs))
	ids := make([]string, len(bs))
	for i, b := range bs {
		byID[b.ID], ids[i] = i, b.ID
	}
	rs, err = in(db.q().s(`SELECT u.batch_id, u.id, u.window_id, u.subscription_id, w.plan_id, w.charge_id, w.window_start, u.seq, u.quantity, u.attempts,
		u.account_number, u.subscription_number, u.charge_number, u.uom, u.description, u.sent_start
		FROM usage_uploads u JOIN usage_windows w ON w.id = u.window_id WHERE u.state = 'sending' AND u.batch_id IN `), ids).s(" ORDER BY u.id").rows(ctx, db.sqlDB())
	if err != nil {
		return bs, fmt.Errorf("load usage batch rows: %w", err)
	}
	_, err = scanRows(rs, func(rs *sql.Rows) (struct{}, error) {
		var (
			bid  string
			r    UsageRow
			sent sql.NullTime
		)
		if err := rs.Scan(&bid, &r.ID, &r.WindowID, &r.SubscriptionID, &r.PlanID, &r.ChargeID, &r.WindowStart, &r.Seq, &r.Quantity, &r.Attempts,
			&r.AccountNumber, &r.SubscriptionNumber, &r.ChargeNumber, &r.UOM, &r.Description, &sent); err != nil {
			return struct{}{}, err
		}
		if sent.Valid {
			t := sent.Time.UTC()
			r.SendStart = &t
		}
		r.WindowStart = r.WindowStart.UTC()
		b := &bs[byID[bid]]
		b.Rows = append(b.Rows, r)
		return struct{}{}, nil
	})
	return bs, err
}

// HeartbeatUsageBatches extends, to now+lease, the batch leases worker still
// holds (batch id → lease token) and returns the batch ids it extended.
func (db *DB) HeartbeatUsageBatches(ctx context.Context, worker string, leases map[string]string, lease time.Duration, now time.Time) (map[string]bool, error) {
	byToken := map[string][]string{}
	for id, token := range leases {
		byToken[token] = append(byToken[token], id)
	}
	held := make(map[string]bool, len(leases))
	for token, ids := range byToken {
		rs, err := in(db.q().s("UPDATE usage_batches SET claimed_until = ").a(now.Add(lease)).s(" WHERE state = 'sending' AND claimed_by = ").a(worker).
			s(" AND lease_token = ").a(token).s(" AND claimed_until >= ").a(now).s(" AND id IN "), ids).s(" RETURNING id").rows(ctx, db.sqlDB())
		if err != nil {
			return held, fmt.Errorf("heartbeat: %w", err)
		}
		got, err := scanRows(rs, func(rs *sql.Rows) (id string, err error) { return id, rs.Scan(&id) })
		if err != nil {
			return held, fmt.Errorf("heartbeat: %w", err)
		}
		for _, id := range got {
			held[id] = true
		}
	}
	return held, nil
}

// UsageRelease puts a row of a finished batch back to pending (a new
// attempt number, so its next batch has a new key), or holds it.
type UsageRelease struct {
	RowID       int64
	Solo        bool // send it alone next time
	Error       string
	NextAttempt time.Time
	Hold        bool // needs a person: held with Error, not retried
}

// UsageBatchOutcome is what one attempt at a batch came to.
type UsageBatchOutcome struct {
	// State is UsageBatchDone (Zuora answered per row, or the rows were
	// looked up), UsageBatchFailed (refused as a whole) or UsageBatchSending
	// (outcome unknown: sent again as is at NextAttempt).
	State        string
	Outcome      string
	Error        string
	CountAttempt bool
	NextAttempt  time.Time
	Sent         map[int64]string // row id → Zuora usage id
	Release      []UsageRelease
	// ImportStatusURL records where the accepted usage file's import is
	// polled (an import batch, state UsageBatchSending).
	ImportStatusURL string
}

// FinishUsageBatch records an attempt's outcome in one transaction, or
// refuses with ErrLeaseLost (writing nothing) when worker's lease on the
// batch lapsed or the batch was claimed again.
func (db *DB) FinishUsageBatch(ctx context.Context, worker string, b UsageBatch, o UsageBatchOutcome, now time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		q := db.q().s("UPDATE usage_batches SET state = ").a(o.State).s(", claimed_by = '', lease_token = '', claimed_until = NULL, updated_at = ").a(now).
			s(", last_attempt_at = ").a(now).s(", last_error = ").a(truncate(o.Error, 500))
		if o.Outcome != "" {
			q.s(", outcome = ").a(truncate(o.Outcome, 500))
		}
		if o.CountAttempt {
			q.s(", attempts = attempts + 1")
		}
		if !o.NextAttempt.IsZero() {
			q.s(", next_attempt_at = ").a(o.NextAttempt.UTC())
		}
		if o.ImportStatusURL != "" {
			q.s(", import_status_url = ").a(o.ImportStatusURL)
		}
		n, err := q.s(" WHERE id = ").a(b.ID).s(" AND state = 'sending' AND claimed_by = ").a(worker).s(" AND lease_token = ").a(b.LeaseToken).
			s(" AND claimed_until >= ").a(now).exec(ctx, tx)
		if err != nil {
			return fmt.Errorf("finish usage batch: %w", err)
		}
		if n == 0 {
			return ErrLeaseLost
		}
		same := ""
		for _, zid := range o.Sent {
			same = zid
			break
		}
		for _, zid := range o.Sent {
			if zid != same {
				same = ""
				break
			}
		}
		if len(o.Sent) > 0 && len(o.Sent) == len(b.Rows) && same != "" {
			// Every row of the batch, one Zuora id (a usage file's import).
			if _, err := db.q().s("UPDATE usage_uploads SET state = ").a(UsageRowSent).s(", sent_at = ").a(now).s(", updated_at = ").a(now).
				s(", last_error = '', zuora_id = ").a(same).s(" WHERE state = 'sending' AND batch_id = ").a(b.ID).exec(ctx, tx); err != nil {
				return fmt.Errorf("record sent rows: %w", err)
			}
		} else if len(o.Sent) > 0 {
			q := db.q().s("UPDATE usage_uploads SET state = ").a(UsageRowSent).s(", sent_at = ").a(now).s(", updated_at = ").a(now).
				s(", last_error = '', zuora_id = CASE id")
			ids := make([]int64, 0, len(o.Sent))
			for id, zid := range o.Sent {
				q.s(" WHEN ").a(id).s(" THEN ").a(zid)
				ids = append(ids, id)
			}
			in(q.s(" END WHERE state = 'sending' AND batch_id = ").a(b.ID).s(" AND id IN "), ids)
			if _, err := q.exec(ctx, tx); err != nil {
				return fmt.Errorf("record sent rows: %w", err)
			}
		}
		for _, r := range o.Release {
			state := UsageRowPending
			if r.Hold {
				state = UsageRowHeld
			}
			if _, err := db.q().s("UPDATE usage_uploads SET state = ").a(state).s(", batch_id = '', attempts = attempts + 1, solo = ").a(r.Solo).
				s(", last_error = ").a(truncate(r.Error, 500)).s(", next_attempt_at = ").a(r.NextAttempt.UTC()).s(", updated_at = ").a(now).
				s(" WHERE id = ").a(r.RowID).s(" AND batch_id = ").a(b.ID).s(" AND state = 'sending'").exec(ctx, tx); err != nil {
				return fmt.Errorf("release usage row: %w", err)
			}
		}
		return nil
	})
}

// ReleaseUsageBatches hands back the batch claims worker holds (soft stop):
// the batches are resent, as they are, by whoever claims them next.
func (db *DB) ReleaseUsageBatches(ctx context.Context, worker string, now time.Time) error {
	_, err := db.q().s("UPDATE usage_batches SET claimed_by = '', lease_token = '', claimed_until = NULL, updated_at = ").a(now).
		s(" WHERE state = 'sending' AND claimed_by = ").a(worker).exec(ctx, db.sqlDB())
	return err
}

// ReleaseUsageClaims drops the claims (and reservations) on batches being
// sent, of every worker when worker is empty, so their batches can be resent
// at once rather than after their lease. Only when no other uploader runs.
func (db *DB) ReleaseUsageClaims(ctx context.Context, worker string) (int64, error) {
	q := db.q().s("UPDATE usage_batches SET claimed_by = '', lease_token = '', claimed_until = NULL WHERE state = 'sending' AND claimed_until IS NOT NULL")
	if worker != "" {
		// The worker and its pools ("worker/…").
		q.s(" AND (claimed_by = ").a(worker).s(" OR claimed_by LIKE ").a(worker + "/%").s(")")
	}
	return q.exec(ctx, db.sqlDB())
}

// UsageUpload is one upload row of a window: the first (Correction 0)
// carries the window's total when it was sealed, later ones the difference.
type UsageUpload struct {
	Correction   int        `json:"correction"`
	Quantity     string     `json:"quantity"`
	State        string     `json:"state"`
	ZuoraUsageID string     `json:"zuoraUsageId,omitempty"`
	ChargeNumber string     `json:"chargeNumber,omitempty"`
	Attempts     int        `json:"attempts"`
	LastError    string     `json:"lastError,omitempty"`
	SentAt       *time.Time `json:"sentAt,omitempty"`
	// SentFor is the StartDateTime the row went to Zuora with when it is
	// not the window's: its window's period was billed already, so it went
	// into the first open day (Description names the window).
	SentFor     *time.Time `json:"sentFor,omitempty"`
	Description string     `json:"description,omitempty"`
}

// UsageWindow is one (subscription, charge, hour) window with its uploads.
type UsageWindow struct {
	SubscriptionID string    `json:"subscriptionId"`
	PlanID         string    `json:"planId"`
	ChargeID       string    `json:"chargeId"`
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	UOM            string    `json:"uom"`
	ChargeNumber   string    `json:"chargeNumber,omitempty"`
	Events         int64     `json:"events"`
	// Ingested is the sum of the window's distinct events; Uploaded the part
	// Zuora stored; Pending the rest (not sealed yet, or not sent yet).
	Ingested      decimal.Decimal `json:"ingested"`
	Uploaded      decimal.Decimal `json:"uploaded"`
	Pending       decimal.Decimal `json:"pending"`
	Sealed        bool            `json:"sealed"`
	ZuoraUsageIDs []string        `json:"zuoraUsageIds"`
	Uploads       []UsageUpload   `json:"uploads"`
}

// UsageWindowFilter selects windows of a subscription.
type UsageWindowFilter struct {
	From, To time.Time // window starts in [From, To); zero = unbounded
	Limit    int       // default 500, at most 5000; newest first
}

// UsageWindows lists a subscription's windows, newest first, with their
// upload rows and the quantity ingested, uploaded and pending.
func (db *DB) UsageWindows(ctx context.Context, subID string, f UsageWindowFilter) ([]UsageWindow, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 500
	}
	limit = min(limit, 5000)
	q := db.q().s(`SELECT id, plan_id, charge_id, window_start, quantity, event_count, uom, charge_number, sealed_at
		FROM usage_windows WHERE subscription_id = `).a(subID)
	if !f.From.IsZero() {
		q.s(" AND window_start >= ").a(f.From.UTC())
	}
	if !f.To.IsZero() {
		q.s(" AND window_start < ").a(f.To.UTC())
	}
	q.s(" ORDER BY window_start DESC, plan_id, charge_id LIMIT " + strconv.Itoa(limit))
	rs, err := q.rows(ctx, db.sqlDB())
	if err != nil {
		return nil, err
	}
	var ids []int64
	out, err := scanRows(rs, func(rs *sql.Rows) (UsageWindow, error) {
		var (
			w        UsageWindow
			id       int64
			qty      string
			sealedAt sql.NullTime
		)
		if err := rs.Scan(&id, &w.PlanID, &w.ChargeID, &w.Start, &qty, &w.Events, &w.UOM, &w.ChargeNumber, &sealedAt); err != nil {
			return w, err
		}
		w.SubscriptionID = subID
		w.Start = w.Start.UTC()
		w.End = w.Start.Add(time.Hour)
		w.Sealed = sealedAt.Valid
		w.ZuoraUsageIDs = []string{}
		w.Uploads = []UsageUpload{}
		ids = append(ids, id)
		var err error
		w.Ingested, err = num(qty)
		return w, err
	})
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]int, len(ids))
	for i, id := range ids {
		byID[id] = i
	}
	if len(ids) > 0 {
		rs, err := in(db.q().s(`SELECT window_id, seq, quantity, state, zuora_id, charge_number, attempts, last_error, sent_at, sent_start, description
			FROM usage_uploads WHERE window_id IN `), ids).s(" ORDER BY window_id, seq").rows(ctx, db.sqlDB())
		if err != nil {
			return nil, err
		}
		_, err = scanRows(rs, func(rs *sql.Rows) (struct{}, error) {
			var (
				wid             int64
				u               UsageUpload
				sentAt, sentFor sql.NullTime
			)
			if err := rs.Scan(&wid, &u.Correction, &u.Quantity, &u.State, &u.ZuoraUsageID, &u.ChargeNumber, &u.Attempts, &u.LastError, &sentAt,
				&sentFor, &u.Description); err != nil {
				return struct{}{}, err
			}
			if sentFor.Valid {
				t := sentFor.Time.UTC()
				u.SentFor = &t
			}
			d, err := num(u.Quantity)
			if err != nil {
				return struct{}{}, err
			}
			u.Quantity = d.String()
			if sentAt.Valid {
				t := sentAt.Time.UTC()
				u.SentAt = &t
			}
			w := &out[byID[wid]]
			if u.State == UsageRowSent {
				w.Uploaded = w.Uploaded.Add(d)
				w.ZuoraUsageIDs = append(w.ZuoraUsageIDs, u.ZuoraUsageID)
			}
			w.Uploads = append(w.Uploads, u)
			return struct{}{}, nil
		})
		if err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Pending = out[i].Ingested.Sub(out[i].Uploaded)
	}
	return out, nil
}

// UsageStats are the ledger's counts for the admin page and metrics.
type UsageStats struct {
	// PendingWindows counts windows with quantity not yet in Zuora (not
	// sealed yet, or sealed into rows not sent yet); OldestPendingWindow is
	// the start of the oldest (nil when none).
	PendingWindows      int64      `json:"pendingWindows"`
	OldestPendingWindow *time.Time `json:"oldestPendingWindow,omitempty"`
	// PendingRows are upload rows waiting to be sent (RetryingRows of them
	// failed before); SendingRows are in batches whose outcome is unknown.
	PendingRows  int64 `json:"pendingRows"`
	RetryingRows int64 `json:"retryingRows"`
	SendingRows  int64 `json:"sendingRows"`
	SentRows     int64 `json:"sentRows"`
	// HeldRows need a person: they are never sent as things are.
	HeldRows int64 `json:"heldRows"`
	// UnknownBatches are batches sent at least once whose outcome is not
	// known yet (they are resent as they are, with the same key).
	UnknownBatches int64 `json:"unknownBatches"`
}

// UsageStats returns the ledger's counts.
func (db *DB) UsageStats(ctx context.Context) (UsageStats, error) {
	var st UsageStats
	var oldest sql.NullString
	sdb := db.sqlDB()
	// Both halves use partial indexes: dirty windows, and rows not sent.
	err := sdb.QueryRowContext(ctx, `SELECT COUNT(*), MIN(window_start) FROM usage_windows
		WHERE id IN (SELECT id FROM usage_windows WHERE dirty UNION SELECT window_id FROM usage_uploads WHERE state <> 'sent')`).Scan(&st.PendingWindows, &oldest)
	if err != nil {
		return st, err
	}
	if oldest.Valid && oldest.String != "" {
		// MIN() loses the column type in SQLite: parse the stored text.
		if t, ok := parseDBTime(oldest.String); ok {
			st.OldestPendingWindow = &t
		}
	}
	if err := sdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM usage_batches WHERE state = 'sending' AND attempts > 0").Scan(&st.UnknownBatches); err != nil {
		return st, err
	}
	rs, err := sdb.QueryContext(ctx, "SELECT state, attempts > 0, COUNT(*) FROM usage_uploads GROUP BY state, attempts > 0")
	if err != nil {
		return st, err
	}
	_, err = scanRows(rs, func(rs *sql.Rows) (struct{}, error) {
		var (
			state   string
			retried bool
			n       int64
		)
		if err := rs.Scan(&state, &retried, &n); err != nil {
			return struct{}{}, err
		}
		switch state {
		case UsageRowPending:
			st.PendingRows += n
			if retried {
				st.RetryingRows += n
			}
		case UsageRowSending:
			st.SendingRows += n
		case UsageRowSent:
			st.SentRows += n
		case UsageRowHeld:
			st.HeldRows += n
		}
		return struct{}{}, nil
	})
	return st, err
}

func parseDBTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05-07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
