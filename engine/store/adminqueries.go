package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// This file holds the admin page's read queries (search, the sync-record
// list with problems first, trends) and its state-scoped retries.

// SearchHit is one entity found by Search.
type SearchHit struct {
	Kind        string // plan, customer, subscription
	ID          string
	Name        string // plan or customer name
	Email       string // customer email
	Matched     string // the field that matched: id, name, email, zuora number, zuora id
	State       string // the outbound sync state ("" without a record)
	ZuoraNumber string
}

// likePrefix escapes LIKE's wildcards in a lower-cased prefix.
func likePrefix(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(q)) + "%"
}

// Search finds plans, customers and subscriptions whose id, name, email, or
// Zuora id or number (account, subscription, product) starts with q,
// case-insensitively. Hits come by kind (plan, customer, subscription), then
// id; at most limit per kind (1..100, default 20).
func (db *DB) Search(ctx context.Context, q string, limit int) ([]SearchHit, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	p := likePrefix(q)
	hits := map[string]*SearchHit{}
	add := func(kind, id, name, email, matched string) {
		k := kind + "/" + id
		if h, ok := hits[k]; ok {
			if name != "" {
				h.Name = name
			}
			if email != "" {
				h.Email = email
			}
			return
		}
		hits[k] = &SearchHit{Kind: kind, ID: id, Name: name, Email: email, Matched: matched}
	}
	type row struct{ ID, Name, Email, Matched string }
	queries := []struct {
		kind, sql string
		args      []any
	}{
		{EntityPlan, `SELECT id, name, '' AS email, CASE WHEN LOWER(id) LIKE ? ESCAPE '\' THEN 'id' ELSE 'name' END AS matched
			FROM plans WHERE LOWER(id) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\' ORDER BY id LIMIT ?`, []any{p, p, p, limit}},
		{EntityCustomer, `SELECT id, name, email, CASE WHEN LOWER(id) LIKE ? ESCAPE '\' THEN 'id' WHEN LOWER(name) LIKE ? ESCAPE '\' THEN 'name' ELSE 'email' END AS matched
			FROM customers WHERE LOWER(id) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\' ORDER BY id LIMIT ?`,
			[]any{p, p, p, p, p, limit}},
		{EntitySubscription, `SELECT id, '' AS name, '' AS email, 'id' AS matched FROM subscriptions WHERE LOWER(id) LIKE ? ESCAPE '\' ORDER BY id LIMIT ?`,
			[]any{p, limit}},
	}
	for _, qu := range queries {
		var rows []row
		if err := db.Gorm.WithContext(ctx).Raw(qu.sql, qu.args...).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("search %s: %w", qu.kind, err)
		}
		for _, r := range rows {
			add(qu.kind, r.ID, r.Name, r.Email, r.Matched)
		}
	}
	// Zuora's numbers and ids: the records' own, and every mapping of an
	// account, subscription or product (older subscription versions too).
	var recs []struct{ EntityKind, EntityID, Matched string }
	err := db.Gorm.WithContext(ctx).Raw(`SELECT entity_kind, entity_id, CASE WHEN LOWER(zuora_number) LIKE ? ESCAPE '\' THEN 'Zuora number' ELSE 'Zuora id' END AS matched
		FROM sync_records WHERE direction = ? AND (LOWER(zuora_number) LIKE ? ESCAPE '\' OR LOWER(zuora_id) LIKE ? ESCAPE '\')
		ORDER BY entity_kind, entity_id LIMIT ?`, p, DirectionOut, p, p, 3*limit).Scan(&recs).Error
	if err != nil {
		return nil, fmt.Errorf("search sync records: %w", err)
	}
	for _, r := range recs {
		add(r.EntityKind, r.EntityID, "", "", r.Matched)
	}
	var maps []struct{ Kind, LocalID, ParentID, Matched string }
	err = db.Gorm.WithContext(ctx).Raw(`SELECT kind, local_id, parent_id, CASE WHEN LOWER(zuora_number) LIKE ? ESCAPE '\' THEN 'Zuora number' ELSE 'Zuora id' END AS matched
		FROM id_mappings WHERE kind IN ('account', 'subscription', 'product') AND (LOWER(zuora_number) LIKE ? ESCAPE '\' OR LOWER(zuora_id) LIKE ? ESCAPE '\')
		ORDER BY kind, local_id LIMIT ?`, p, p, p, 3*limit).Scan(&maps).Error
	if err != nil {
		return nil, fmt.Errorf("search mappings: %w", err)
	}
	for _, m := range maps {
		id, _, _ := strings.Cut(m.LocalID, "/")
		switch m.Kind {
		case "account":
			if m.ParentID != "" {
				id = m.ParentID
			}
			add(EntityCustomer, id, "", "", m.Matched)
		case "subscription":
			add(EntitySubscription, id, "", "", m.Matched)
		case "product":
			add(EntityPlan, id, "", "", m.Matched)
		}
	}
	out := make([]SearchHit, 0, len(hits))
	for _, h := range hits {
		out = append(out, *h)
	}
	order := map[string]int{EntityPlan: 0, EntityCustomer: 1, EntitySubscription: 2}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return order[out[i].Kind] < order[out[j].Kind]
		}
		return out[i].ID < out[j].ID
	})
	// At most limit per kind, then the sync state and Zuora number of each.
	n := map[string]int{}
	kept := out[:0]
	for _, h := range out {
		if n[h.Kind] < limit {
			n[h.Kind]++
			kept = append(kept, h)
		}
	}
	out = kept
	for i := range out {
		var r []syncRecordRow
		if err := db.Gorm.WithContext(ctx).Where("entity_kind = ? AND entity_id = ? AND connector = ? AND direction = ?",
			out[i].Kind, out[i].ID, ConnectorZuora, DirectionOut).Limit(1).Find(&r).Error; err != nil {
			return nil, err
		}
		if len(r) == 1 {
			out[i].State, out[i].ZuoraNumber = r[0].State, r[0].ZuoraNumber
		}
	}
	return out, nil
}

// RecordQuery filters and pages the admin page's sync-record list.
type RecordQuery struct {
	Kind      string
	State     string
	ErrorCode string
	EntityID  string    // exact
	Since     time.Time // last attempt at or after (zero: any)
	Page      int       // 1-based
	PerPage   int       // default 50, at most 500
}

// RecordPage is one page of the list and the total that match.
type RecordPage struct {
	Records []SyncRecord
	Total   int64
	Page    int
	Pages   int
}

// problemOrder ranks states: dead, failed and drifted before the rest.
const problemOrder = `CASE state WHEN 'dead' THEN 0 WHEN 'failed' THEN 1 WHEN 'drifted' THEN 2 WHEN 'pending' THEN 3 WHEN 'in_flight' THEN 4 ELSE 5 END`

// QueryRecords returns the outbound records that match q, problems first
// (dead, failed, drifted, then pending, in flight and the rest), then by id,
// with the total that match.
func (db *DB) QueryRecords(ctx context.Context, q RecordQuery) (RecordPage, error) {
	if q.PerPage <= 0 || q.PerPage > 500 {
		q.PerPage = 50
	}
	if q.Page <= 0 {
		q.Page = 1
	}
	base := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("direction = ?", DirectionOut)
	if q.Kind != "" {
		base = base.Where("entity_kind = ?", q.Kind)
	}
	if q.State != "" {
		base = base.Where("state = ?", q.State)
	}
	if q.ErrorCode != "" {
		base = base.Where("last_error_code = ?", q.ErrorCode)
	}
	if q.EntityID != "" {
		base = base.Where("entity_id = ?", q.EntityID)
	}
	if !q.Since.IsZero() {
		base = base.Where("last_attempt_at >= ?", q.Since.UTC())
	}
	base = base.Session(&gorm.Session{})
	p := RecordPage{Page: q.Page}
	if err := base.Count(&p.Total).Error; err != nil {
		return p, err
	}
	p.Pages = int((p.Total + int64(q.PerPage) - 1) / int64(q.PerPage))
	var rows []syncRecordRow
	if err := base.Order(problemOrder + ", id").Offset((q.Page - 1) * q.PerPage).Limit(q.PerPage).Find(&rows).Error; err != nil {
		return p, err
	}
	for _, r := range rows {
		p.Records = append(p.Records, syncRecordFromRow(r))
	}
	return p, nil
}

// ErrorCodes returns the distinct last error codes of outbound records that
// are not synced, for the list's filter.
func (db *DB) ErrorCodes(ctx context.Context) ([]string, error) {
	var codes []string
	err := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Distinct("last_error_code").
		Where("direction = ? AND last_error_code <> '' AND state <> ?", DirectionOut, StateSynced).Order("last_error_code").Pluck("last_error_code", &codes).Error
	return codes, err
}

// retryable are the states a retry can help: the workers do not try them again by themselves.
var retryable = []string{StateFailed, StateDead}

// RetryProblem makes one failed or dead record due now with its attempts
// reset (what Retry does), and reports false, changing nothing, when the
// record is in another state.
func (db *DB) RetryProblem(ctx context.Context, id int64) (SyncRecord, bool, error) {
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("id = ? AND state IN ?", id, retryable).
		Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now, "reason": "", "payload_hash": ""})
	if res.Error != nil {
		return SyncRecord{}, false, res.Error
	}
	rec, err := db.SyncRecordByID(ctx, id)
	return rec, res.RowsAffected == 1, err
}

// RetryState makes every record of a kind ("" for all) in one state, failed
// or dead, due now with its attempts reset, and reports how many.
func (db *DB) RetryState(ctx context.Context, kind, state string) (int64, error) {
	if state != StateFailed && state != StateDead {
		return 0, fmt.Errorf("retry: state must be failed or dead, not %q", state)
	}
	now := db.Now()
	q := db.Gorm.WithContext(ctx).Model(&syncRecordRow{}).Where("direction = ? AND state = ?", DirectionOut, state)
	if kind != "" {
		q = q.Where("entity_kind = ?", kind)
	}
	res := q.Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected, res.Error
}

// HourCount is the number of sync attempts that ended in one outcome in one hour.
type HourCount struct {
	Hour    time.Time
	Outcome string
	N       int64
}

// HourLag is the sync lag of the changes that reached Zuora in one hour:
// for each, the time from the first attempt at it (after the record's
// previous success) to the attempt that succeeded.
type HourLag struct {
	Hour    time.Time
	Synced  int64
	MaxSecs float64
	AvgSecs float64
}

// hourOf and secsOf are the dialects' hour bucket (Unix hours) and Unix seconds of a timestamp column.
func (db *DB) hourOf(col string) string {
	if db.Dialect == Postgres {
		return "CAST(FLOOR(EXTRACT(EPOCH FROM " + col + ") / 3600) AS BIGINT)"
	}
	return "CAST(strftime('%s', " + col + ") AS INTEGER) / 3600"
}

func (db *DB) secsOf(col string) string {
	if db.Dialect == Postgres {
		return "EXTRACT(EPOCH FROM " + col + ")"
	}
	return "((julianday(" + col + ") - 2440587.5) * 86400.0)"
}

// SyncActivity counts the sync attempts started since since, per hour (UTC)
// and outcome, from the attempt history.
func (db *DB) SyncActivity(ctx context.Context, since time.Time) ([]HourCount, error) {
	var rows []struct {
		H       int64
		Outcome string
		N       int64
	}
	h := db.hourOf("started_at")
	err := db.Gorm.WithContext(ctx).Raw(`SELECT `+h+` AS h, outcome, COUNT(*) AS n FROM sync_attempts
		WHERE started_at >= ? GROUP BY `+h+`, outcome ORDER BY h, outcome`, since.UTC()).Scan(&rows).Error
	out := make([]HourCount, 0, len(rows))
	for _, r := range rows {
		out = append(out, HourCount{Hour: time.Unix(r.H*3600, 0).UTC(), Outcome: r.Outcome, N: r.N})
	}
	return out, err
}

// lagLookBack bounds how far before the window SyncLag looks for the first
// attempt at a change: a longer lag counts from there.
const lagLookBack = 7 * 24 * time.Hour

// SyncLag is the per-hour lag (HourLag) of the successful attempts that
// finished since since. One pass over the attempts of the window and the
// week before it: a window function numbers each record's attempts by the
// successes before them, so a change's attempts share a group.
func (db *DB) SyncLag(ctx context.Context, since time.Time) ([]HourLag, error) {
	var rows []struct {
		H      int64
		N      int64
		MaxLag float64
		AvgLag float64
	}
	err := db.Gorm.WithContext(ctx).Raw(`WITH a AS (
			SELECT sync_record_id, started_at, finished_at, outcome,
				COALESCE(SUM(CASE WHEN outcome IN ('synced', 'skipped') THEN 1 ELSE 0 END)
					OVER (PARTITION BY sync_record_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS grp
			FROM sync_attempts WHERE started_at >= ?),
		b AS (SELECT finished_at, outcome, MIN(started_at) OVER (PARTITION BY sync_record_id, grp) AS first_start FROM a)
		SELECT h, COUNT(*) AS n, MAX(lag) AS max_lag, AVG(lag) AS avg_lag FROM (
			SELECT `+db.hourOf("finished_at")+` AS h, `+db.secsOf("finished_at")+` - `+db.secsOf("first_start")+` AS lag
			FROM b WHERE outcome = ? AND finished_at >= ?) t
		GROUP BY h ORDER BY h`, since.UTC().Add(-lagLookBack), StateSynced, since.UTC()).Scan(&rows).Error
	out := make([]HourLag, 0, len(rows))
	for _, r := range rows {
		out = append(out, HourLag{Hour: time.Unix(r.H*3600, 0).UTC(), Synced: r.N, MaxSecs: max(r.MaxLag, 0), AvgSecs: max(r.AvgLag, 0)})
	}
	return out, err
}
