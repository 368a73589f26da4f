package usage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

const sealChunk = 1000

// description names a window (and a correction) in Zuora; the 24 h look-up
// finds upload rows by it.
func description(subID, chargeID string, start time.Time, seq int) string {
	d := fmt.Sprintf("billsync %s/%s %s", subID, chargeID, start.UTC().Format("2006-01-02T15:04Z"))
	if seq > 0 {
		d += fmt.Sprintf(" (correction %d)", seq)
	}
	if len(d) > 200 {
		d = d[:200]
	}
	return d
}

// seal turns the unsealed quantity of every dirty window that starts at or
// before cutoff (of one subscription when subID is set) into upload rows. It
// returns the windows sealed and the rows created.
func (l *Ledger) seal(ctx context.Context, now, cutoff time.Time, subID string) (windows, rows int, err error) {
	for {
		w, r, n, err := l.sealChunk(ctx, now, cutoff, subID)
		windows += w
		rows += r
		if err != nil || n < sealChunk {
			return windows, rows, err
		}
	}
}

func (l *Ledger) sealChunk(ctx context.Context, now, cutoff time.Time, subID string) (windows, rows, selected int, err error) {
	err = l.inTx(ctx, func(tx *sql.Tx) error {
		windows, rows, selected = 0, 0, 0
		q := l.q().s("SELECT id, subscription_id, charge_id, window_start, quantity, sealed_quantity, uploads FROM usage_windows WHERE dirty AND window_start <= ").a(cutoff)
		if subID != "" {
			q.s(" AND subscription_id = ").a(subID)
		}
		q.s(" ORDER BY id LIMIT ").s(fmt.Sprint(sealChunk))
		if q.pg {
			// Windows an ingest is adding to right now are left for the next pass.
			q.s(" FOR UPDATE SKIP LOCKED")
		}
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
		var toSeal []sealRow
		var clean []int64
		for rs.Next() {
			var (
				r           sealRow
				qty, sealed string
			)
			if err := rs.Scan(&r.id, &r.sub, &r.charge, &r.start, &qty, &sealed, &r.uploads); err != nil {
				_ = rs.Close()
				return err
			}
			selected++
			a, err := num(qty)
			if err != nil {
				_ = rs.Close()
				return err
			}
			b, err := num(sealed)
			if err != nil {
				_ = rs.Close()
				return err
			}
			r.diff = a.Sub(b)
			if r.diff.IsPositive() {
				toSeal = append(toSeal, r)
			} else {
				clean = append(clean, r.id)
			}
		}
		if err := rs.Close(); err != nil {
			return err
		}
		if len(clean) > 0 {
			if _, err := l.q().s("UPDATE usage_windows SET dirty = FALSE WHERE id IN ").in(clean).exec(ctx, tx); err != nil {
				return err
			}
		}
		if len(toSeal) == 0 {
			return nil
		}
		ins := l.q().s("INSERT INTO usage_uploads (window_id, subscription_id, seq, quantity, state, description, next_attempt_at, created_at, updated_at) VALUES ")
		ids := make([]int64, 0, len(toSeal))
		for i, r := range toSeal {
			if i > 0 {
				ins.s(",")
			}
			ins.s("(").a(r.id).s(",").a(r.sub).s(",").a(r.uploads).s(",").a(r.diff.String()).s(",").a(RowPending).s(",").
				a(description(r.sub, r.charge, r.start, r.uploads)).s(",").a(now).s(",").a(now).s(",").a(now).s(")")
			ids = append(ids, r.id)
		}
		if _, err := ins.exec(ctx, tx); err != nil {
			return fmt.Errorf("insert upload rows: %w", err)
		}
		// The rows are locked (Postgres) or the write lock is held (SQLite):
		// quantity is still what was read above.
		if _, err := l.q().s("UPDATE usage_windows SET sealed_quantity = quantity, dirty = FALSE, uploads = uploads + 1, sealed_at = COALESCE(sealed_at, ").
			a(now).s("), updated_at = ").a(now).s(" WHERE id IN ").in(ids).exec(ctx, tx); err != nil {
			return fmt.Errorf("seal windows: %w", err)
		}
		windows, rows = len(toSeal), len(toSeal)
		return nil
	})
	return windows, rows, selected, err
}
