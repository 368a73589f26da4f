package usage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/mappings"
)

// SentRow is an upload row Zuora stored during a sync.
type SentRow struct {
	SubscriptionID string    `json:"subscriptionId"`
	ChargeID       string    `json:"chargeId"`
	WindowStart    time.Time `json:"windowStart"`
	Correction     int       `json:"correction"`
	Quantity       string    `json:"quantity"`
	ChargeNumber   string    `json:"chargeNumber"`
	ZuoraUsageID   string    `json:"zuoraUsageId"`
	Description    string    `json:"description"`
}

// WaitingRow is an upload row that could not be sent yet, and why.
type WaitingRow struct {
	SubscriptionID string    `json:"subscriptionId"`
	ChargeID       string    `json:"chargeId"`
	WindowStart    time.Time `json:"windowStart"`
	Quantity       string    `json:"quantity"`
	Reason         string    `json:"reason"`
}

// Report says what one sync did.
type Report struct {
	WindowsSealed  int `json:"windowsSealed"`
	RowsCreated    int `json:"rowsCreated"`
	Calls          int `json:"calls"`
	RowsSent       int `json:"rowsSent"`
	RowsFailed     int `json:"rowsFailed"`
	RowsWaiting    int `json:"rowsWaiting"`
	RowsHeld       int `json:"rowsHeld"`
	BatchesUnknown int `json:"batchesUnknown"`
	RowsLookedUp   int `json:"rowsLookedUp"`
	// Skipped is set when nothing was uploaded on purpose (switch off).
	Skipped string `json:"skipped,omitempty"`
	// Sent, Waiting and Failed list rows (only when a subscription was synced).
	Sent    []SentRow    `json:"sent,omitempty"`
	Waiting []WaitingRow `json:"waiting,omitempty"`
	Held    []WaitingRow `json:"held,omitempty"`
	Failed  []WaitingRow `json:"failed,omitempty"`

	mu      sync.Mutex
	collect bool
}

func (r *Report) add(fn func(r *Report)) {
	r.mu.Lock()
	fn(r)
	r.mu.Unlock()
}

// SyncOptions selects what a sync covers.
type SyncOptions struct {
	// SubscriptionID limits the sync to one subscription (the manual
	// action): windows whose hour is over are sealed at once, without grace.
	// Empty: every subscription, windows sealed after hour end + grace.
	SubscriptionID string
	// IncludeCurrentHour also seals the current, partial hour (with
	// SubscriptionID); later events of that hour become a correction.
	IncludeCurrentHour bool
}

// SealAndUpload is the hourly job: it seals every window whose hour ended
// more than the grace ago and uploads what is pending.
func (l *Ledger) SealAndUpload(ctx context.Context, now time.Time) (*Report, error) {
	return l.sync(ctx, now, SyncOptions{})
}

// Sync seals and uploads now; the hourly job, the API's sync-usage action and
// `billsync sync usage` all come here.
func (l *Ledger) Sync(ctx context.Context, o SyncOptions) (*Report, error) {
	return l.sync(ctx, l.now(), o)
}

func (l *Ledger) sync(ctx context.Context, now time.Time, o SyncOptions) (*Report, error) {
	now = now.UTC()
	rep := &Report{}
	cutoff := now.Add(-time.Hour - l.cfg.Grace)
	if o.SubscriptionID != "" {
		if _, err := l.db.GetSubscription(ctx, o.SubscriptionID); err != nil {
			return nil, err
		}
		rep.collect = true
		cutoff = now.Truncate(time.Hour).Add(-time.Hour)
		if o.IncludeCurrentHour {
			cutoff = now.Truncate(time.Hour)
		}
	}
	w, r, err := l.seal(ctx, now, cutoff, o.SubscriptionID)
	rep.WindowsSealed, rep.RowsCreated = w, r
	if err != nil {
		return rep, err
	}
	if o.SubscriptionID != "" {
		// A person asked for this subscription: held rows get another look.
		if _, err := l.q().s("UPDATE usage_uploads SET state = ").a(RowPending).s(", updated_at = ").a(now).
			s(" WHERE state = ").a(RowHeld).s(" AND subscription_id = ").a(o.SubscriptionID).exec(ctx, l.db.SQL()); err != nil {
			return rep, fmt.Errorf("release held usage rows: %w", err)
		}
	}
	if !l.cfg.Enabled(Switch) {
		rep.Skipped = "usage sync is switched off: windows are sealed but nothing is uploaded"
		return rep, nil
	}
	err = l.upload(ctx, now, o.SubscriptionID, rep)
	l.log.Info().Str("subscription", o.SubscriptionID).Int("windows_sealed", rep.WindowsSealed).Int("rows_created", rep.RowsCreated).
		Int("calls", rep.Calls).Int("rows_sent", rep.RowsSent).Int("rows_failed", rep.RowsFailed).Int("rows_waiting", rep.RowsWaiting).
		Int("batches_unknown", rep.BatchesUnknown).Err(err).Msg("usage sync")
	return rep, err
}

// uploadRow is an upload row with what its usage record needs.
type uploadRow struct {
	id                            int64
	windowID                      int64
	sub, plan, charge             string
	start                         time.Time
	seq                           int
	quantity                      string
	attempts                      int
	solo                          bool
	accountNumber, subNumber      string
	chargeNumber, uom, desc       string
	windowChargeNumber, windowUOM string
}

func (r uploadRow) record() (zuora.Usage, error) {
	q, err := zuora.ParseNumber(r.quantity)
	if err != nil {
		return zuora.Usage{}, err
	}
	return zuora.Usage{AccountNumber: r.accountNumber, SubscriptionNumber: r.subNumber, ChargeNumber: r.chargeNumber, UOM: r.uom,
		Quantity: q, StartDateTime: r.start, EndDateTime: r.start.Add(time.Hour), Description: r.desc}, nil
}

// batchKey derives a batch's id and Idempotency-Key from its sorted row ids
// and their attempt numbers: the same rows in the same attempt always make the
// same key; a row retried after a definite failure makes a new one.
func batchKey(rows []uploadRow) string {
	parts := make([]string, 0, len(rows)+1)
	parts = append(parts, "usage-batch")
	for _, r := range rows {
		parts = append(parts, strconv.FormatInt(r.id, 10)+"."+strconv.Itoa(r.attempts))
	}
	return zuora.IdempotencyKey(parts...)
}

type job struct {
	id        string
	rows      []uploadRow
	firstSent time.Time
	attempts  int
}

// upload resends the batches whose outcome is unknown, then batches and sends
// the pending rows.
func (l *Ledger) upload(ctx context.Context, now time.Time, subID string, rep *Report) error {
	jobs := make(chan job)
	var wg sync.WaitGroup
	errc := make(chan error, l.cfg.Senders)
	for range l.cfg.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := l.send(ctx, now, j, rep); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	err := l.produce(ctx, now, subID, rep, jobs)
	close(jobs)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (l *Ledger) produce(ctx context.Context, now time.Time, subID string, rep *Report, jobs chan<- job) error {
	// 1. Batches sent before whose outcome is unknown: the same rows, the same key.
	resumed, err := l.claimUnknown(ctx, now, subID)
	if err != nil {
		return err
	}
	for _, j := range resumed {
		select {
		case jobs <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// 2. New batches of pending rows, in id order.
	res := &resolver{l: l, numbers: map[string]string{}, subs: map[string]*subNumbers{}, fetched: map[string]bool{}, stranded: map[string]bool{}}
	var (
		cursor int64
		chunk  []uploadRow
	)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		j, ok, err := l.createBatch(ctx, now, chunk)
		chunk = nil
		if err != nil || !ok {
			return err
		}
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		page, err := l.pendingRows(ctx, now, subID, cursor, 2000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		cursor = page[len(page)-1].id
		for _, r := range page {
			r, reason, err := res.resolve(ctx, r)
			if err != nil {
				return err
			}
			if reason != "" && res.stranded[mappings.Key(r.sub, r.plan, r.charge)] {
				if err := l.hold(ctx, now, r, reason); err != nil {
					return err
				}
				l.log.Warn().Str("subscription", r.sub).Str("charge", r.plan+"/"+r.charge).Time("window", r.start).
					Str("quantity", r.quantity).Str("reason", reason).Msg("usage row held: needs a person")
				rep.add(func(rep *Report) {
					rep.RowsHeld++
					if rep.collect {
						rep.Held = append(rep.Held, WaitingRow{SubscriptionID: r.sub, ChargeID: r.charge, WindowStart: r.start, Quantity: r.quantity, Reason: reason})
					}
				})
				continue
			}
			if reason != "" {
				rep.add(func(rep *Report) {
					rep.RowsWaiting++
					if rep.collect {
						rep.Waiting = append(rep.Waiting, WaitingRow{SubscriptionID: r.sub, ChargeID: r.charge, WindowStart: r.start, Quantity: r.quantity, Reason: reason})
					}
				})
				continue
			}
			if r.solo {
				if err := flushOne(ctx, l, now, r, jobs); err != nil {
					return err
				}
				continue
			}
			chunk = append(chunk, r)
			if len(chunk) == zuora.MaxUsagePerCall {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

func flushOne(ctx context.Context, l *Ledger, now time.Time, r uploadRow, jobs chan<- job) error {
	j, ok, err := l.createBatch(ctx, now, []uploadRow{r})
	if err != nil || !ok {
		return err
	}
	select {
	case jobs <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pendingRows returns due pending rows after cursor, in id order.
// The manual action for one subscription does not wait for backoffs.
func (l *Ledger) pendingRows(ctx context.Context, now time.Time, subID string, cursor int64, limit int) ([]uploadRow, error) {
	q := l.q().s(`SELECT u.id, u.window_id, u.subscription_id, w.plan_id, w.charge_id, w.window_start, u.seq, u.quantity, u.attempts, u.solo,
		u.description, w.uom, w.charge_number FROM usage_uploads u JOIN usage_windows w ON w.id = u.window_id
		WHERE u.state = 'pending' AND u.id > `).a(cursor)
	if subID != "" {
		q.s(" AND u.subscription_id = ").a(subID)
	} else {
		q.s(" AND u.next_attempt_at <= ").a(now)
	}
	q.s(" ORDER BY u.id LIMIT ").s(strconv.Itoa(limit))
	rs, err := q.rows(ctx, l.db.SQL())
	if err != nil {
		return nil, fmt.Errorf("select pending upload rows: %w", err)
	}
	defer rs.Close()
	var out []uploadRow
	for rs.Next() {
		var r uploadRow
		if err := rs.Scan(&r.id, &r.windowID, &r.sub, &r.plan, &r.charge, &r.start, &r.seq, &r.quantity, &r.attempts, &r.solo,
			&r.desc, &r.windowUOM, &r.windowChargeNumber); err != nil {
			return nil, err
		}
		r.start = r.start.UTC()
		out = append(out, r)
	}
	return out, rs.Err()
}

// subNumbers is what a subscription's rows need from the mappings.
type subNumbers struct {
	subNumber, accountNumber string
	reason                   string
}

// resolver finds Zuora numbers for rows, caching per sync.
type resolver struct {
	l       *Ledger
	numbers map[string]string // "sub/plan/charge" → charge number ("" = none after reading Zuora)
	subs    map[string]*subNumbers
	fetched map[string]bool // subscriptions read from Zuora in this sync
	// stranded: "sub/plan/charge" keys whose charge is neither in Zuora's
	// subscription nor in the local subscription any more.
	stranded map[string]bool
}

func (rs *resolver) resolve(ctx context.Context, r uploadRow) (uploadRow, string, error) {
	sn, err := rs.sub(ctx, r.sub)
	if err != nil {
		return r, "", err
	}
	if sn.reason != "" {
		return r, sn.reason, nil
	}
	r.subNumber, r.accountNumber = sn.subNumber, sn.accountNumber
	r.uom = r.windowUOM
	if r.uom == "" {
		return r, "the charge has no unit of measure", nil
	}
	r.chargeNumber = r.windowChargeNumber
	if r.chargeNumber != "" {
		return r, "", nil
	}
	num, reason, err := rs.chargeNumber(ctx, r, sn)
	if err != nil || reason != "" {
		return r, reason, err
	}
	// createBatch records it on the window: the window keeps the charge
	// number that covered it, whatever happens to the subscription later.
	r.chargeNumber = num
	return r, "", nil
}

// chargeLeft reports whether the row's charge is no longer part of the
// local subscription (its plan and add-ons as they are now).
func (rs *resolver) chargeLeft(ctx context.Context, r uploadRow) (bool, error) {
	sub, err := rs.l.db.GetSubscription(ctx, r.sub)
	if errors.Is(err, engine.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	current := append([]engine.AddOn{{PlanID: sub.PlanID, BillingPeriodID: sub.BillingPeriodID}}, sub.AddOns...)
	for _, a := range current {
		if a.PlanID != r.plan {
			continue
		}
		p, err := rs.l.db.GetPlan(ctx, a.PlanID)
		if err != nil {
			return false, err
		}
		if bp, ok := p.Period(a.BillingPeriodID); ok {
			for _, c := range bp.Charges {
				if c.ID == r.charge {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// hold marks a pending row as needing a person, with the reason.
func (l *Ledger) hold(ctx context.Context, now time.Time, r uploadRow, reason string) error {
	_, err := l.q().s("UPDATE usage_uploads SET state = ").a(RowHeld).s(", last_error = ").a(engine.Truncate(reason, 500)).s(", updated_at = ").a(now).
		s(" WHERE id = ").a(r.id).s(" AND state = ").a(RowPending).exec(ctx, l.db.SQL())
	if err != nil {
		return fmt.Errorf("hold usage row: %w", err)
	}
	return nil
}

// chargeNumber finds the charge number of a row's (subscription, plan,
// charge) in the mappings, reading the subscription from Zuora once per sync
// when it is missing.
func (rs *resolver) chargeNumber(ctx context.Context, r uploadRow, sn *subNumbers) (string, string, error) {
	l := rs.l
	key := mappings.Key(r.sub, r.plan, r.charge)
	if num, ok := rs.numbers[key]; ok {
		if num == "" {
			return "", "the charge " + r.plan + "/" + r.charge + " has no Zuora charge number yet (subscription not fully synced)", nil
		}
		return num, "", nil
	}
	m, err := l.maps.Get(ctx, mappings.SubscriptionCharge, key)
	if errors.Is(err, mappings.ErrNotFound) && !rs.fetched[r.sub] && l.cfg.Charges != nil {
		// The subscription is in Zuora but its charge numbers were not
		// recorded: read it and record them.
		rs.fetched[r.sub] = true
		zs, gerr := l.z.GetSubscription(ctx, sn.subNumber)
		if gerr != nil {
			l.log.Warn().Err(gerr).Str("subscription", r.sub).Msg("usage: read subscription for charge numbers")
			return "", "charge number unknown; reading the subscription from Zuora failed: " + gerr.Error(), nil
		}
		if err := l.cfg.Charges.RecordCharges(ctx, r.sub, zs); err != nil {
			return "", "", err
		}
		m, err = l.maps.Get(ctx, mappings.SubscriptionCharge, key)
	}
	if errors.Is(err, mappings.ErrNotFound) {
		if rs.fetched[r.sub] {
			rs.numbers[key] = ""
			// Zuora's subscription was read and has no such charge: if the
			// local subscription no longer has it either, it never will.
			gone, err := rs.chargeLeft(ctx, r)
			if err != nil {
				return "", "", err
			}
			if gone {
				rs.stranded[key] = true
				return "", "the charge " + r.plan + "/" + r.charge + " left the subscription before it reached Zuora, so Zuora has no charge to bill these units on; " +
					"add it back (then Sync usage to Zuora) or settle the units another way", nil
			}
		}
		return "", "the charge " + r.plan + "/" + r.charge + " has no Zuora charge number yet (subscription not fully synced)", nil
	}
	if err != nil {
		return "", "", err
	}
	rs.numbers[key] = m.ZuoraNumber
	return m.ZuoraNumber, "", nil
}

func (rs *resolver) sub(ctx context.Context, subID string) (*subNumbers, error) {
	if sn, ok := rs.subs[subID]; ok {
		return sn, nil
	}
	l := rs.l
	sn := &subNumbers{}
	rs.subs[subID] = sn
	m, err := l.maps.Get(ctx, mappings.Subscription, subID)
	if errors.Is(err, mappings.ErrNotFound) {
		sn.reason = "the subscription is not synced to Zuora yet"
		return sn, nil
	}
	if err != nil {
		return nil, err
	}
	sn.subNumber = m.ZuoraNumber
	customer := m.ParentID
	if customer == "" {
		s, err := l.db.GetSubscription(ctx, subID)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, err
		}
		customer = s.CustomerID
	}
	accts, err := l.maps.ByParent(ctx, mappings.Account, customer)
	if err != nil {
		return nil, err
	}
	switch len(accts) {
	case 0:
		sn.reason = "the customer's Zuora account is not synced yet"
	case 1:
		sn.accountNumber = accts[0].ZuoraNumber
	default:
		// Several accounts: the subscription says which one it is on.
		rs.fetched[subID] = true
		zs, err := l.z.GetSubscription(ctx, sn.subNumber)
		if err != nil {
			sn.reason = "reading the subscription's account from Zuora failed: " + err.Error()
			delete(rs.subs, subID)
			return sn, nil
		}
		sn.accountNumber = zs.AccountNumber
		if l.cfg.Charges != nil {
			if err := l.cfg.Charges.RecordCharges(ctx, subID, zs); err != nil {
				return nil, err
			}
		}
	}
	return sn, nil
}

// createBatch marks rows sending under a new batch, before any call. ok is
// false when another uploader took some of the rows first.
func (l *Ledger) createBatch(ctx context.Context, now time.Time, rows []uploadRow) (job, bool, error) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	id := batchKey(rows)
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	ok := true
	err := l.inTx(ctx, func(tx *sql.Tx) error {
		q := l.q().s("UPDATE usage_uploads SET state = ").a(RowSending).s(", batch_id = ").a(id).s(", updated_at = ").a(now)
		for _, col := range []string{"account_number", "subscription_number", "charge_number", "uom"} {
			q.s(", " + col + " = CASE id")
			for _, r := range rows {
				v := map[string]string{"account_number": r.accountNumber, "subscription_number": r.subNumber, "charge_number": r.chargeNumber, "uom": r.uom}[col]
				q.s(" WHEN ").a(r.id).s(" THEN ").a(v)
			}
			q.s(" END")
		}
		q.s(" WHERE state = 'pending' AND id IN ").in(ids)
		n, err := q.exec(ctx, tx)
		if err != nil {
			return fmt.Errorf("mark rows sending: %w", err)
		}
		if n != int64(len(rows)) {
			ok = false
			return errRaced
		}
		var first []uploadRow
		for _, r := range rows {
			if r.windowChargeNumber == "" {
				first = append(first, r)
			}
		}
		if len(first) > 0 {
			// The window keeps the charge number that covered it.
			q := l.q().s("UPDATE usage_windows SET charge_number = CASE id")
			wids := make([]int64, 0, len(first))
			for _, r := range first {
				q.s(" WHEN ").a(r.windowID).s(" THEN ").a(r.chargeNumber)
				wids = append(wids, r.windowID)
			}
			if _, err := q.s(" END WHERE charge_number = '' AND id IN ").in(wids).exec(ctx, tx); err != nil {
				return fmt.Errorf("record charge numbers on windows: %w", err)
			}
		}
		n, err = l.q().s("INSERT INTO usage_batches (id, row_count, state, first_sent_at, next_attempt_at, claimed_by, claimed_until, created_at, updated_at) VALUES (").
			a(id).s(",").a(len(rows)).s(",").a(batchSending).s(",").a(now).s(",").a(now).s(",").a(l.cfg.Owner).s(",").a(now.Add(l.cfg.ClaimTTL)).s(",").
			a(now).s(",").a(now).s(") ON CONFLICT (id) DO NOTHING").exec(ctx, tx)
		if err != nil {
			return fmt.Errorf("insert usage batch: %w", err)
		}
		if n != 1 {
			return fmt.Errorf("usage batch %s exists already", id)
		}
		return nil
	})
	if errors.Is(err, errRaced) {
		return job{}, false, nil
	}
	if err != nil {
		return job{}, false, err
	}
	return job{id: id, rows: rows, firstSent: now}, ok, nil
}

var errRaced = errors.New("rows taken by another uploader")

// claimUnknown claims the due batches whose outcome is unknown (of one
// subscription's rows when subID is set) and loads their rows as stored.
func (l *Ledger) claimUnknown(ctx context.Context, now time.Time, subID string) ([]job, error) {
	q := l.q().s("SELECT id, first_sent_at, attempts FROM usage_batches WHERE state = 'sending' AND (claimed_until IS NULL OR claimed_until < ").a(now).s(")")
	if subID != "" {
		q.s(" AND id IN (SELECT batch_id FROM usage_uploads WHERE state = 'sending' AND subscription_id = ").a(subID).s(")")
	} else {
		q.s(" AND next_attempt_at <= ").a(now)
	}
	q.s(" ORDER BY first_sent_at, id LIMIT 1000")
	rs, err := q.rows(ctx, l.db.SQL())
	if err != nil {
		return nil, fmt.Errorf("select unknown batches: %w", err)
	}
	var cands []job
	for rs.Next() {
		var j job
		if err := rs.Scan(&j.id, &j.firstSent, &j.attempts); err != nil {
			_ = rs.Close()
			return nil, err
		}
		j.firstSent = j.firstSent.UTC()
		cands = append(cands, j)
	}
	if err := rs.Close(); err != nil {
		return nil, err
	}
	var out []job
	for _, j := range cands {
		n, err := l.q().s("UPDATE usage_batches SET claimed_by = ").a(l.cfg.Owner).s(", claimed_until = ").a(now.Add(l.cfg.ClaimTTL)).
			s(", updated_at = ").a(now).s(" WHERE id = ").a(j.id).s(" AND state = 'sending' AND (claimed_until IS NULL OR claimed_until < ").a(now).s(")").
			exec(ctx, l.db.SQL())
		if err != nil {
			return nil, err
		}
		if n != 1 {
			continue
		}
		rows, err := l.batchRows(ctx, j.id)
		if err != nil {
			return nil, err
		}
		j.rows = rows
		out = append(out, j)
	}
	return out, nil
}

func (l *Ledger) batchRows(ctx context.Context, batchID string) ([]uploadRow, error) {
	rs, err := l.q().s(`SELECT u.id, u.window_id, u.subscription_id, w.plan_id, w.charge_id, w.window_start, u.seq, u.quantity, u.attempts,
		u.account_number, u.subscription_number, u.charge_number, u.uom, u.description
		FROM usage_uploads u JOIN usage_windows w ON w.id = u.window_id WHERE u.state = 'sending' AND u.batch_id = `).a(batchID).
		s(" ORDER BY u.id").rows(ctx, l.db.SQL())
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []uploadRow
	for rs.Next() {
		var r uploadRow
		if err := rs.Scan(&r.id, &r.windowID, &r.sub, &r.plan, &r.charge, &r.start, &r.seq, &r.quantity, &r.attempts,
			&r.accountNumber, &r.subNumber, &r.chargeNumber, &r.uom, &r.desc); err != nil {
			return nil, err
		}
		r.start = r.start.UTC()
		out = append(out, r)
	}
	return out, rs.Err()
}

// send makes the call for one batch and records the outcome.
func (l *Ledger) send(ctx context.Context, now time.Time, j job, rep *Report) error {
	if len(j.rows) == 0 {
		_, err := l.q().s("UPDATE usage_batches SET state = ").a(batchDone).s(", outcome = 'no rows left', claimed_until = NULL, updated_at = ").a(now).
			s(" WHERE id = ").a(j.id).exec(ctx, l.db.SQL())
		return err
	}
	if now.Sub(j.firstSent) >= l.cfg.KeyLifetime {
		return l.lookUp(ctx, now, j, rep)
	}
	recs := make([]zuora.Usage, len(j.rows))
	for i, r := range j.rows {
		rec, err := r.record()
		if err != nil {
			return err
		}
		recs[i] = rec
	}
	rep.add(func(rep *Report) { rep.Calls++ })
	results, callErr := l.z.CreateUsage(ctx, j.id, recs)
	if ctx.Err() != nil {
		// Stopped mid-call: the claim expires and the batch is resent as is.
		return ctx.Err()
	}
	if callErr == nil && len(results) == len(recs) {
		return l.recordResults(ctx, now, j, results, rep)
	}
	// Refused for sure (nothing written): a Zuora error that retrying cannot
	// fix, or a failure before anything was sent.
	_, isZ := zuora.AsError(callErr)
	failure := reconcile.Classify(callErr)
	definite := callErr != nil && results == nil && (!isZ || !failure.Retryable)
	if definite {
		// Nothing was written (the whole call was refused): retry each row on
		// its own, with new keys.
		l.log.Warn().Err(callErr).Str("batch", j.id).Int("rows", len(j.rows)).Msg("usage batch refused")
		rep.add(func(rep *Report) {
			rep.RowsFailed += len(j.rows)
			if rep.collect {
				for _, r := range j.rows {
					rep.Failed = append(rep.Failed, WaitingRow{SubscriptionID: r.sub, ChargeID: r.charge, WindowStart: r.start, Quantity: r.quantity, Reason: callErr.Error()})
				}
			}
		})
		return l.inTx(ctx, func(tx *sql.Tx) error {
			for _, r := range j.rows {
				if err := l.release(ctx, tx, now, j.id, r, true, callErr.Error()); err != nil {
					return err
				}
			}
			_, err := l.q().s("UPDATE usage_batches SET state = ").a(batchFailed).s(", outcome = ").a(engine.Truncate(callErr.Error(), 500)).
				s(", attempts = attempts + 1, last_attempt_at = ").a(now).s(", claimed_by = '', claimed_until = NULL, updated_at = ").a(now).
				s(" WHERE id = ").a(j.id).exec(ctx, tx)
			return err
		})
	}
	// Outcome unknown (timeout, lost response, 5xx, 429, lock, odd answer):
	// keep the batch, resend the same rows with the same key later.
	msg := fmt.Sprintf("Zuora answered %d results for %d records", len(results), len(recs))
	if callErr != nil {
		msg = callErr.Error()
	}
	l.log.Warn().Str("batch", j.id).Str("error", msg).Msg("usage batch outcome unknown; will resend with the same key")
	rep.add(func(rep *Report) { rep.BatchesUnknown++ })
	_, uerr := l.q().s("UPDATE usage_batches SET attempts = attempts + 1, last_attempt_at = ").a(now).s(", next_attempt_at = ").a(now.Add(l.backoff(j.attempts+1, failure.RetryAfter))).
		s(", last_error = ").a(engine.Truncate(msg, 500)).s(", claimed_by = '', claimed_until = NULL, updated_at = ").a(now).
		s(" WHERE id = ").a(j.id).s(" AND state = 'sending'").exec(ctx, l.db.SQL())
	return uerr
}

// release puts a row back to pending, out of its batch, with a new attempt
// number (so its next batch has a new key).
func (l *Ledger) release(ctx context.Context, tx execer, now time.Time, batchID string, r uploadRow, solo bool, msg string) error {
	_, err := l.q().s("UPDATE usage_uploads SET state = 'pending', batch_id = '', attempts = attempts + 1, solo = ").a(solo).
		s(", last_error = ").a(engine.Truncate(msg, 500)).s(", next_attempt_at = ").a(now.Add(l.backoff(r.attempts+1, 0))).s(", updated_at = ").a(now).
		s(" WHERE id = ").a(r.id).s(" AND batch_id = ").a(batchID).s(" AND state = 'sending'").exec(ctx, tx)
	return err
}

// recordResults stores Zuora's per-row answers: ids of stored rows; failed
// rows go back to pending, to be retried alone.
func (l *Ledger) recordResults(ctx context.Context, now time.Time, j job, results []zuora.ActionResult, rep *Report) error {
	var okRows []int
	var failed []int
	for i, res := range results {
		if res.Success {
			okRows = append(okRows, i)
		} else {
			failed = append(failed, i)
		}
	}
	err := l.inTx(ctx, func(tx *sql.Tx) error {
		if len(okRows) > 0 {
			q := l.q().s("UPDATE usage_uploads SET state = ").a(RowSent).s(", sent_at = ").a(now).s(", updated_at = ").a(now).
				s(", last_error = '', zuora_id = CASE id")
			ids := make([]int64, 0, len(okRows))
			for _, i := range okRows {
				q.s(" WHEN ").a(j.rows[i].id).s(" THEN ").a(results[i].ID)
				ids = append(ids, j.rows[i].id)
			}
			q.s(" END WHERE state = 'sending' AND batch_id = ").a(j.id).s(" AND id IN ").in(ids)
			if _, err := q.exec(ctx, tx); err != nil {
				return fmt.Errorf("record sent rows: %w", err)
			}
		}
		for _, i := range failed {
			msg, solo := "Zuora rejected the row", true
			if e := results[i].Err(); e != nil {
				// A retryable row error (lock contention) may go with others
				// again; a rejected row is retried alone.
				msg, solo = e.Error(), !zuora.IsRetryable(e)
			}
			if err := l.release(ctx, tx, now, j.id, j.rows[i], solo, msg); err != nil {
				return err
			}
		}
		_, err := l.q().s("UPDATE usage_batches SET state = ").a(batchDone).s(", outcome = ").a(fmt.Sprintf("%d stored, %d rejected", len(okRows), len(failed))).
			s(", attempts = attempts + 1, last_attempt_at = ").a(now).s(", last_error = '', claimed_by = '', claimed_until = NULL, updated_at = ").a(now).
			s(" WHERE id = ").a(j.id).exec(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	rep.add(func(rep *Report) {
		rep.RowsSent += len(okRows)
		rep.RowsFailed += len(failed)
		if rep.collect {
			for _, i := range okRows {
				r := j.rows[i]
				rep.Sent = append(rep.Sent, SentRow{SubscriptionID: r.sub, ChargeID: r.charge, WindowStart: r.start, Correction: r.seq, Quantity: r.quantity,
					ChargeNumber: r.chargeNumber, ZuoraUsageID: results[i].ID, Description: r.desc})
			}
			for _, i := range failed {
				r := j.rows[i]
				msg := ""
				if e := results[i].Err(); e != nil {
					msg = e.Error()
				}
				rep.Failed = append(rep.Failed, WaitingRow{SubscriptionID: r.sub, ChargeID: r.charge, WindowStart: r.start, Quantity: r.quantity, Reason: msg})
			}
		}
	})
	for _, i := range failed {
		l.log.Warn().Err(results[i].Err()).Str("batch", j.id).Int64("row", j.rows[i].id).Str("subscription", j.rows[i].sub).
			Msg("usage row rejected by Zuora; it will be retried alone")
	}
	return nil
}

// lookUp handles a batch whose outcome stayed unknown for longer than Zuora
// keeps idempotency keys: resending with the same key could now create the
// records again, so the rows are looked up in Zuora by their description;
// found rows are recorded as sent, the others go back to pending (new key).
func (l *Ledger) lookUp(ctx context.Context, now time.Time, j job, rep *Report) error {
	type want struct{ desc, sub, charge string }
	wanted := map[want]int{}
	accounts := map[string]bool{}
	for i, r := range j.rows {
		wanted[want{r.desc, r.subNumber, r.chargeNumber}] = i
		accounts[r.accountNumber] = true
	}
	found := map[int]string{}
	for acct := range accounts {
		rep.add(func(rep *Report) { rep.Calls++ })
		for rec, err := range l.z.ListUsageByAccount(ctx, acct) {
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				l.log.Warn().Err(err).Str("batch", j.id).Msg("usage look-up failed; will try again")
				rep.add(func(rep *Report) { rep.BatchesUnknown++ })
				_, uerr := l.q().s("UPDATE usage_batches SET attempts = attempts + 1, next_attempt_at = ").a(now.Add(l.backoff(j.attempts+1, reconcile.Classify(err).RetryAfter))).
					s(", last_error = ").a(engine.Truncate(err.Error(), 500)).s(", claimed_by = '', claimed_until = NULL, updated_at = ").a(now).
					s(" WHERE id = ").a(j.id).exec(ctx, l.db.SQL())
				return uerr
			}
			if i, ok := wanted[want{rec.Description, rec.SubscriptionNumber, rec.ChargeNumber}]; ok {
				if _, dup := found[i]; !dup {
					found[i] = rec.ID
				}
			}
			if len(found) == len(j.rows) {
				break
			}
		}
	}
	err := l.inTx(ctx, func(tx *sql.Tx) error {
		for i, r := range j.rows {
			if id, ok := found[i]; ok {
				if _, err := l.q().s("UPDATE usage_uploads SET state = ").a(RowSent).s(", zuora_id = ").a(id).s(", sent_at = ").a(now).
					s(", last_error = '', updated_at = ").a(now).s(" WHERE id = ").a(r.id).s(" AND batch_id = ").a(j.id).s(" AND state = 'sending'").
					exec(ctx, tx); err != nil {
					return err
				}
				continue
			}
			if err := l.release(ctx, tx, now, j.id, r, false, "not found in Zuora after the idempotency key expired; sending again"); err != nil {
				return err
			}
		}
		_, err := l.q().s("UPDATE usage_batches SET state = ").a(batchDone).s(", outcome = ").a(fmt.Sprintf("looked up after %s: %d found in Zuora, %d to send again", l.cfg.KeyLifetime, len(found), len(j.rows)-len(found))).
			s(", claimed_by = '', claimed_until = NULL, updated_at = ").a(now).s(" WHERE id = ").a(j.id).exec(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	rep.add(func(rep *Report) {
		rep.RowsLookedUp += len(j.rows)
		rep.RowsSent += len(found)
	})
	l.log.Info().Str("batch", j.id).Int("found", len(found)).Int("resend", len(j.rows)-len(found)).Msg("usage batch looked up in Zuora after key expiry")
	return nil
}
