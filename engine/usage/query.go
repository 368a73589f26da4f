package usage

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Upload is one upload row of a window: the first (Correction 0) carries the
// window's total when it was sealed, later ones the difference.
type Upload struct {
	Correction   int        `json:"correction"`
	Quantity     string     `json:"quantity"`
	State        string     `json:"state"`
	ZuoraUsageID string     `json:"zuoraUsageId,omitempty"`
	ChargeNumber string     `json:"chargeNumber,omitempty"`
	Attempts     int        `json:"attempts"`
	LastError    string     `json:"lastError,omitempty"`
	SentAt       *time.Time `json:"sentAt,omitempty"`
}

// Window is one (subscription, charge, hour) window with its upload state.
type Window struct {
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
	Uploads       []Upload        `json:"uploads"`
}

// WindowFilter selects windows of a subscription.
type WindowFilter struct {
	From, To time.Time // window starts in [From, To); zero = unbounded
	Limit    int       // default 500, at most 5000; newest first
}

// Windows lists a subscription's windows, newest first, with the quantity
// ingested, uploaded and pending and Zuora's usage ids.
func (l *Ledger) Windows(ctx context.Context, subID string, f WindowFilter) ([]Window, error) {
	if _, err := l.db.GetSubscription(ctx, subID); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 500
	}
	limit = min(limit, 5000)
	q := l.q().s(`SELECT id, plan_id, charge_id, window_start, quantity, sealed_quantity, event_count, uom, charge_number, sealed_at
		FROM usage_windows WHERE subscription_id = `).a(subID)
	if !f.From.IsZero() {
		q.s(" AND window_start >= ").a(f.From.UTC())
	}
	if !f.To.IsZero() {
		q.s(" AND window_start < ").a(f.To.UTC())
	}
	q.s(" ORDER BY window_start DESC, plan_id, charge_id LIMIT " + strconv.Itoa(limit))
	rs, err := q.rows(ctx, l.db.SQL())
	if err != nil {
		return nil, err
	}
	var out []Window
	byID := map[int64]int{}
	var ids []int64
	for rs.Next() {
		var (
			w           Window
			id          int64
			qty, sealed string
			sealedAt    sql.NullTime
		)
		if err := rs.Scan(&id, &w.PlanID, &w.ChargeID, &w.Start, &qty, &sealed, &w.Events, &w.UOM, &w.ChargeNumber, &sealedAt); err != nil {
			_ = rs.Close()
			return nil, err
		}
		w.SubscriptionID = subID
		w.Start = w.Start.UTC()
		w.End = w.Start.Add(time.Hour)
		if w.Ingested, err = num(qty); err != nil {
			_ = rs.Close()
			return nil, err
		}
		w.Sealed = sealedAt.Valid
		w.ZuoraUsageIDs = []string{}
		w.Uploads = []Upload{}
		byID[id] = len(out)
		ids = append(ids, id)
		out = append(out, w)
	}
	if err := rs.Close(); err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		rs, err := l.q().s(`SELECT window_id, seq, quantity, state, zuora_id, charge_number, attempts, last_error, sent_at
			FROM usage_uploads WHERE window_id IN `).in(ids).s(" ORDER BY window_id, seq").rows(ctx, l.db.SQL())
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				wid    int64
				u      Upload
				sentAt sql.NullTime
			)
			if err := rs.Scan(&wid, &u.Correction, &u.Quantity, &u.State, &u.ZuoraUsageID, &u.ChargeNumber, &u.Attempts, &u.LastError, &sentAt); err != nil {
				return nil, err
			}
			d, err := num(u.Quantity)
			if err != nil {
				return nil, err
			}
			u.Quantity = d.String()
			if sentAt.Valid {
				t := sentAt.Time.UTC()
				u.SentAt = &t
			}
			w := &out[byID[wid]]
			if u.State == RowSent {
				w.Uploaded = w.Uploaded.Add(d)
				w.ZuoraUsageIDs = append(w.ZuoraUsageIDs, u.ZuoraUsageID)
			}
			w.Uploads = append(w.Uploads, u)
		}
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Pending = out[i].Ingested.Sub(out[i].Uploaded)
	}
	return out, nil
}

// Stats are the ledger's counts for the admin page and metrics.
type Stats struct {
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
	// HeldRows need a person (see RowHeld): they are never sent as things are.
	HeldRows int64 `json:"heldRows"`
}

// Stats returns the ledger's counts.
func (l *Ledger) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullString
	db := l.db.SQL()
	// Both halves use partial indexes: dirty windows, and rows not sent.
	err := db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(window_start) FROM usage_windows
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
	rs, err := db.QueryContext(ctx, "SELECT state, attempts > 0, COUNT(*) FROM usage_uploads GROUP BY state, attempts > 0")
	if err != nil {
		return st, err
	}
	defer rs.Close()
	for rs.Next() {
		var (
			state   string
			retried bool
			n       int64
		)
		if err := rs.Scan(&state, &retried, &n); err != nil {
			return st, err
		}
		switch state {
		case RowPending:
			st.PendingRows += n
			if retried {
				st.RetryingRows += n
			}
		case RowSending:
			st.SendingRows += n
		case RowSent:
			st.SentRows += n
		case RowHeld:
			st.HeldRows += n
		}
	}
	return st, rs.Err()
}

func parseDBTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05-07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// ReleaseClaims drops the claims on batches being sent (of every uploader
// when owner is empty), so that their outcome-unknown batches are resent at
// once rather than after ClaimTTL. Use it only when no other uploader runs
// (e.g. at start-up of a single instance, or in tests after a crash).
func (l *Ledger) ReleaseClaims(ctx context.Context, owner string) (int64, error) {
	q := l.q().s("UPDATE usage_batches SET claimed_by = '', claimed_until = NULL WHERE state = 'sending' AND claimed_until IS NOT NULL")
	if owner != "" {
		q.s(" AND claimed_by = ").a(owner)
	}
	return q.exec(ctx, l.db.SQL())
}
