package usage

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
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

// SealAndUpload seals every window whose hour ended more than the grace ago
// and uploads what is pending, returning when nothing is left to send now
// (`billsync sync usage`, the bench; serve's hourly job only queues: Enqueue).
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
	if o.SubscriptionID == "" && l.cfg.Enabled(Switch) {
		// Every subscription: sealing runs while the rows sealed so far
		// are batched and sent.
		backlog, err := l.db.CountUsageBacklog(ctx, now, "", true, cutoff)
		if err != nil {
			return rep, err
		}
		sealing := make(chan struct{})
		var serr error
		go func() {
			defer close(sealing)
			var w, r int
			w, r, serr = l.seal(ctx, now, cutoff, "")
			rep.add(func(rep *Report) { rep.WindowsSealed, rep.RowsCreated = w, r })
		}()
		err = l.upload(ctx, now, "", rep, sealing, backlog)
		<-sealing
		if serr != nil {
			err = serr
		}
		l.logSync(o, rep, err)
		return rep, err
	}
	w, r, err := l.seal(ctx, now, cutoff, o.SubscriptionID)
	rep.WindowsSealed, rep.RowsCreated = w, r
	if err != nil {
		return rep, err
	}
	if o.SubscriptionID != "" {
		// A person asked for this subscription: held rows get another look.
		if _, err := l.db.UnholdUsageRows(ctx, o.SubscriptionID, now); err != nil {
			return rep, err
		}
	}
	if !l.cfg.Enabled(Switch) {
		rep.Skipped = "usage sync is switched off: windows are sealed but nothing is uploaded"
		return rep, nil
	}
	err = l.upload(ctx, now, o.SubscriptionID, rep, nil, -1)
	l.logSync(o, rep, err)
	return rep, err
}

func (l *Ledger) logSync(o SyncOptions, rep *Report, err error) {
	l.log.Info().Str("subscription", o.SubscriptionID).Int("windows_sealed", rep.WindowsSealed).Int("rows_created", rep.RowsCreated).
		Int("calls", rep.Calls).Int("rows_sent", rep.RowsSent).Int("rows_failed", rep.RowsFailed).Int("rows_waiting", rep.RowsWaiting).
		Int("batches_unknown", rep.BatchesUnknown).Err(err).Msg("usage sync")
}

// Enqueue is serve's hourly job: it seals the windows whose hour ended more
// than the grace ago and batches what is pending, and leaves the sending to
// Run's pool (kicked): the job does no Zuora call of its own but the
// subscription reads that find missing charge numbers.
func (l *Ledger) Enqueue(ctx context.Context, now time.Time) (*Report, error) {
	now = now.UTC()
	rep := &Report{}
	w, r, err := l.seal(ctx, now, now.Add(-time.Hour-l.cfg.Grace), "")
	rep.WindowsSealed, rep.RowsCreated = w, r
	if err != nil {
		return rep, err
	}
	if !l.cfg.Enabled(Switch) {
		rep.Skipped = "usage sync is switched off: windows are sealed but nothing is uploaded"
		return rep, nil
	}
	err = l.produce(ctx, now, "", rep, "", func() { l.pool.Kick() }, nil, -1)
	l.pool.Kick()
	return rep, err
}

// upload batches the pending rows (of one subscription when subID is set)
// and sends them, and the batches whose outcome is unknown, on a pool of the
// one queue, while it batches: the batches it makes are reserved for its
// pool. It returns once nothing it may send is due (or ctx ended: then the
// calls under way are cut off and their claims lapse, as after a crash).
//
// While sealing is open, sealing still makes rows: produce waits for them.
func (l *Ledger) upload(ctx context.Context, now time.Time, subID string, rep *Report, sealing <-chan struct{}, backlog int) error {
	offset := now.Sub(l.now()) // the sync's clock: now, moving on
	p, q := l.newPool(rep, subID, func() time.Time { return l.now().Add(offset) }, l.cfg.Owner+"/"+randomID(), true)
	q.since = now
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); _ = p.Run(rctx) }()
	perr := l.produce(ctx, now, subID, rep, p.ID(), p.Kick, sealing, backlog)
	q.lastBatched()
	p.Kick()
	var err error
	select {
	case <-q.drained:
		err = q.claimErr
	case <-ctx.Done():
		err = ctx.Err()
	}
	stop()
	<-ran
	if perr != nil {
		return perr
	}
	return err
}

// produce batches the due pending rows (of subID's, all of them, when set),
// in id order, at most zuora.MaxUsagePerCall a batch, rows to be retried
// alone in their own. Batches are reserved for reserveFor (empty: for any
// sender); made is called after each.
// While sealing is open (nil: sealed), windows are still being sealed: an
// empty page waits for more rows until it closes. backlog is the backlog
// counted before sealing began (-1: count the due rows now).
func (l *Ledger) produce(ctx context.Context, now time.Time, subID string, rep *Report, reserveFor string, made func(), sealing <-chan struct{}, backlog int) error {
	ctx = zuora.WithShare(ctx, zuora.ShareUsage) // its reads are of the usage share
	res := &resolver{l: l, numbers: map[string]string{}, subs: map[string]*subNumbers{}, fetched: map[string]bool{}, stranded: map[string]bool{},
		reads: map[string]zuoraRead{}, open: map[string]openDay{}}
	var (
		cursor    int64
		chunk     []store.UsageRow
		file      []store.UsageRow // rows for a usage file
		fileBytes int
	)
	var batches []store.NewUsageBatch // made, not written yet
	flush := func(rows []store.UsageRow, kind string) error {
		if len(rows) == 0 {
			return nil
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
		b := store.NewUsageBatch{ID: batchKey(rows), Kind: kind, Rows: rows}
		if kind == store.UsageBatchImport {
			b.ID = fileKey(rows)
		}
		if reserveFor != "" {
			b.ReservedFor, b.ReservedUntil = reserveFor, now.Add(l.cfg.ClaimTTL)
		}
		batches = append(batches, b)
		return nil
	}
	// write records the batches made so far, many a transaction.
	write := func() error {
		ok, err := l.db.CreateUsageBatches(ctx, batches, now)
		batches = nil
		for _, m := range ok {
			if m {
				made()
				break
			}
		}
		return err
	}
	// A backlog of ImportThreshold rows or more goes by usage files (rows
	// never tried before; the others by calls, which answer per row).
	useFiles := false
	if l.cfg.ImportThreshold > 0 {
		if backlog < 0 {
			var err error
			if backlog, err = l.db.CountUsageBacklog(ctx, now, subID, false, time.Time{}); err != nil {
				return err
			}
		}
		useFiles = backlog >= l.cfg.ImportThreshold
	}
	for {
		page, err := l.db.PendingUsageRows(ctx, now, subID, cursor, 2000)
		if err != nil {
			return err
		}
		if len(page) == 0 && sealing != nil {
			if err := write(); err != nil {
				return err
			}
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-sealing:
				sealing = nil // one more page: what the last chunk sealed
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			t.Stop()
			continue
		}
		if len(page) == 0 {
			break
		}
		cursor = page[len(page)-1].ID
		if err := res.prefetch(ctx, page); err != nil {
			return err
		}
		reasons := make([]string, len(page))
		for i, r := range page {
			if page[i], reasons[i], err = res.resolve(ctx, r); err != nil {
				return err
			}
		}
		// The open periods of the page's charges, read in bulk.
		res.readOpen(ctx, page, reasons)
		for i, r := range page {
			reason := reasons[i]
			if reason == "" {
				r, reason = res.openPeriod(ctx, r)
			}
			if reason != "" && res.stranded[mappings.Key(r.SubscriptionID, r.PlanID, r.ChargeID)] {
				if err := l.db.HoldUsageRow(ctx, r.ID, reason, now); err != nil {
					return err
				}
				l.log.Warn().Str("subscription", r.SubscriptionID).Str("charge", r.PlanID+"/"+r.ChargeID).Time("window", r.WindowStart).
					Str("quantity", r.Quantity).Str("reason", reason).Msg("usage row held: needs a person")
				rep.add(func(rep *Report) {
					rep.RowsHeld++
					if rep.collect {
						rep.Held = append(rep.Held, waiting(r, reason))
					}
				})
				continue
			}
			if reason != "" {
				rep.add(func(rep *Report) {
					rep.RowsWaiting++
					if rep.collect {
						rep.Waiting = append(rep.Waiting, waiting(r, reason))
					}
				})
				continue
			}
			if r.Solo {
				if err := flush([]store.UsageRow{r}, store.UsageBatchCreate); err != nil {
					return err
				}
				continue
			}
			if useFiles && r.Attempts == 0 {
				rec, err := record(r)
				if err != nil {
					return err
				}
				n := zuora.UsageImportLineBytes(rec)
				if len(file) == l.cfg.ImportRows || zuora.UsageImportHeaderBytes+fileBytes+n > zuora.MaxUsageImportBytes {
					if err := flush(file, store.UsageBatchImport); err != nil {
						return err
					}
					file, fileBytes = nil, 0
				}
				file, fileBytes = append(file, r), fileBytes+n
				continue
			}
			chunk = append(chunk, r)
			if len(chunk) == zuora.MaxUsagePerCall {
				if err := flush(chunk, store.UsageBatchCreate); err != nil {
					return err
				}
				chunk = nil
			}
		}
		if err := write(); err != nil {
			return err
		}
	}
	if err := flush(file, store.UsageBatchImport); err != nil {
		return err
	}
	if err := flush(chunk, store.UsageBatchCreate); err != nil {
		return err
	}
	return write()
}

func waiting(r store.UsageRow, reason string) WaitingRow {
	return WaitingRow{SubscriptionID: r.SubscriptionID, ChargeID: r.ChargeID, WindowStart: r.WindowStart, Quantity: r.Quantity, Reason: reason}
}

func record(r store.UsageRow) (zuora.Usage, error) {
	q, err := zuora.ParseNumber(r.Quantity)
	if err != nil {
		return zuora.Usage{}, err
	}
	start := r.WindowStart
	if r.SendStart != nil {
		start = *r.SendStart
	}
	return zuora.Usage{AccountNumber: r.AccountNumber, SubscriptionNumber: r.SubscriptionNumber, ChargeNumber: r.ChargeNumber, UOM: r.UOM,
		Quantity: q, StartDateTime: start, EndDateTime: start.Add(time.Hour), Description: r.Description}, nil
}

// batchKey derives a batch's id and Idempotency-Key from its sorted row ids
// and their attempt numbers: the same rows in the same attempt always make the
// same key; a row retried after a definite failure makes a new one.
func batchKey(rows []store.UsageRow) string {
	parts := make([]string, 0, len(rows)+1)
	parts = append(parts, "usage-batch")
	for _, r := range rows {
		parts = append(parts, strconv.FormatInt(r.ID, 10)+"."+strconv.Itoa(r.Attempts))
	}
	return zuora.IdempotencyKey(parts...)
}

// fileKey is batchKey for a usage file.
func fileKey(rows []store.UsageRow) string {
	parts := make([]string, 0, len(rows)+1)
	parts = append(parts, "usage-file")
	for _, r := range rows {
		parts = append(parts, strconv.FormatInt(r.ID, 10)+"."+strconv.Itoa(r.Attempts))
	}
	return zuora.IdempotencyKey(parts...)
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
	reads    map[string]zuoraRead // Zuora's subscriptions read in this sync, by local id
	open     map[string]openDay   // charge number → its first open day, read in bulk
}

// openDay is a charge's first open day (zero: none billed), or why it is
// not known.
type openDay struct {
	day time.Time
	err error
}

// prefetch reads from Zuora, at once and up to Senders at a time, the
// subscriptions of the page whose charge numbers chargeNumber would read
// them for (recorded charge numbers missing), so the reads do not happen one
// after another.
func (rs *resolver) prefetch(ctx context.Context, rows []store.UsageRow) error {
	type want struct{ id, number string }
	var subs []want
	seen := map[string]bool{}
	for _, r := range rows {
		key := mappings.Key(r.SubscriptionID, r.PlanID, r.ChargeID)
		if r.WindowChargeNumber != "" || seen[key] || rs.fetched[r.SubscriptionID] {
			continue
		}
		if _, ok := rs.numbers[key]; ok {
			continue
		}
		seen[key] = true
		if _, ok := rs.reads[r.SubscriptionID]; ok || seen["sub:"+r.SubscriptionID] {
			continue
		}
		cm, err := rs.l.maps.Get(ctx, mappings.SubscriptionCharge, key)
		if err == nil {
			rs.numbers[key] = cm.ZuoraNumber
			continue
		}
		if !errors.Is(err, mappings.ErrNotFound) {
			return err
		}
		m, err := rs.l.maps.Get(ctx, mappings.Subscription, r.SubscriptionID)
		if errors.Is(err, mappings.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		seen["sub:"+r.SubscriptionID] = true
		subs = append(subs, want{r.SubscriptionID, m.ZuoraNumber})
	}
	if len(subs) < 2 || rs.l.cfg.Charges == nil {
		return nil
	}
	reads := make([]zuoraRead, len(subs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, rs.l.cfg.Senders)
	for i, w := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			zs, err := rs.l.z.GetSubscription(ctx, w.number)
			reads[i] = zuoraRead{sub: zs, err: err}
			if err == nil {
				// Recorded here, concurrently; chargeNumber finds them.
				reads[i].recErr = rs.l.cfg.Charges.RecordCharges(ctx, w.id, zs)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for i, w := range subs {
		if reads[i].recErr != nil {
			return reads[i].recErr
		}
		rs.reads[w.id] = reads[i]
		if reads[i].err == nil {
			rs.fetched[w.id] = true
		}
	}
	return nil
}

// readOpen reads the first open day of the charges of rows ready to go
// whose day is not known yet, in bulk (Object Query, up to 50 charges a
// call; every version's charge rows, so the latest dates win).
func (rs *resolver) readOpen(ctx context.Context, rows []store.UsageRow, reasons []string) {
	var want []string
	for i, r := range rows {
		if reasons[i] != "" || r.ChargeNumber == "" || rs.fetched[r.SubscriptionID] {
			continue
		}
		if _, ok := rs.open[r.ChargeNumber]; !ok {
			rs.open[r.ChargeNumber] = openDay{}
			want = append(want, r.ChargeNumber)
		}
	}
	if len(want) == 0 {
		return
	}
	for c, err := range rs.l.z.ListRatePlanChargesByNumber(ctx, want) {
		if err != nil {
			for _, n := range want {
				rs.open[n] = openDay{err: err}
			}
			return
		}
		o := rs.open[c.ChargeNumber]
		for _, d := range []string{c.ProcessedThroughDate, c.ChargedThroughDate} {
			if t, err := time.Parse("2006-01-02", d); err == nil && t.After(o.day) {
				o.day = t
			}
		}
		rs.open[c.ChargeNumber] = o
	}
}

type zuoraRead struct {
	sub    zuora.Subscription
	err    error
	recErr error // recording its charge numbers failed (prefetch)
}

// read reads a subscription from Zuora once per sync.
func (rs *resolver) read(ctx context.Context, subID, number string) (zuora.Subscription, error) {
	if r, ok := rs.reads[subID]; ok {
		return r.sub, r.err
	}
	zs, err := rs.l.z.GetSubscription(ctx, number)
	if ctx.Err() == nil {
		rs.reads[subID] = zuoraRead{sub: zs, err: err}
	}
	return zs, err
}

// openPeriod applies the closed-period rule (docs/zuora-rules.md, "Closed
// billing periods"): Zuora does not rate usage whose day it has billed
// already (it would stay Pending, never invoiced). A row whose window's day
// is before the charge's first open day (its processedThroughDate, or its
// chargedThroughDate if later, from the subscription as Zuora has it now)
// is sent with that day's 00:00 as its StartDateTime and a description that
// names its own window: billed in the open period, never lost. The reason
// is set when Zuora could not say (the row waits).
func (rs *resolver) openPeriod(ctx context.Context, r store.UsageRow) (store.UsageRow, string) {
	var open time.Time
	if o, ok := rs.open[r.ChargeNumber]; ok && !rs.fetched[r.SubscriptionID] {
		if o.err != nil {
			return r, "reading from Zuora whether the window's period is billed failed: " + o.err.Error()
		}
		return rs.lateRow(r, o.day), ""
	}
	zs, err := rs.read(ctx, r.SubscriptionID, r.SubscriptionNumber)
	if err != nil {
		return r, "reading from Zuora whether the window's period is billed failed: " + err.Error()
	}
	for _, rp := range zs.RatePlans {
		for _, c := range rp.RatePlanCharges {
			if c.Number != r.ChargeNumber {
				continue
			}
			for _, d := range []string{c.ProcessedThroughDate, c.ChargedThroughDate} {
				if t, err := time.Parse("2006-01-02", d); err == nil && t.After(open) {
					open = t
				}
			}
		}
	}
	return rs.lateRow(r, open), ""
}

// lateRow moves a row whose window's day is before open (its charge's first
// open day; zero: none billed) into that day.
func (rs *resolver) lateRow(r store.UsageRow, open time.Time) store.UsageRow {
	// The window's day is its start's wall-clock date: billsync sends
	// date-times as the window's UTC wall clock and Zuora reads them in the
	// tenant's time zone.
	if open.IsZero() || !r.WindowStart.Before(open) {
		return r
	}
	r.SendStart = &open
	r.Description = engine.Truncate(r.Description+" (late: its period is billed in Zuora; sent on "+open.Format("2006-01-02")+")", 200)
	return r
}

func (rs *resolver) resolve(ctx context.Context, r store.UsageRow) (store.UsageRow, string, error) {
	sn, err := rs.sub(ctx, r.SubscriptionID)
	if err != nil {
		return r, "", err
	}
	if sn.reason != "" {
		return r, sn.reason, nil
	}
	r.SubscriptionNumber, r.AccountNumber = sn.subNumber, sn.accountNumber
	r.UOM = r.WindowUOM
	if r.UOM == "" {
		return r, "the charge has no unit of measure", nil
	}
	r.ChargeNumber = r.WindowChargeNumber
	if r.ChargeNumber != "" {
		return r, "", nil
	}
	num, reason, err := rs.chargeNumber(ctx, r, sn)
	if err != nil || reason != "" {
		return r, reason, err
	}
	// createBatch records it on the window: the window keeps the charge
	// number that covered it, whatever happens to the subscription later.
	r.ChargeNumber = num
	return r, "", nil
}

// chargeLeft reports whether the row's charge is no longer part of the
// local subscription (its plan and add-ons as they are now).
func (rs *resolver) chargeLeft(ctx context.Context, r store.UsageRow) (bool, error) {
	sub, err := rs.l.db.GetSubscription(ctx, r.SubscriptionID)
	if errors.Is(err, engine.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	current := append([]engine.AddOn{{PlanID: sub.PlanID, BillingPeriodID: sub.BillingPeriodID}}, sub.AddOns...)
	for _, a := range current {
		if a.PlanID != r.PlanID {
			continue
		}
		p, err := rs.l.db.GetPlan(ctx, a.PlanID)
		if err != nil {
			return false, err
		}
		if bp, ok := p.Period(a.BillingPeriodID); ok {
			for _, c := range bp.Charges {
				if c.ID == r.ChargeID {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// chargeNumber finds the charge number of a row's (subscription, plan,
// charge) in the mappings, reading the subscription from Zuora once per sync
// when it is missing.
func (rs *resolver) chargeNumber(ctx context.Context, r store.UsageRow, sn *subNumbers) (string, string, error) {
	l := rs.l
	key := mappings.Key(r.SubscriptionID, r.PlanID, r.ChargeID)
	if num, ok := rs.numbers[key]; ok {
		if num == "" {
			return "", "the charge " + r.PlanID + "/" + r.ChargeID + " has no Zuora charge number yet (subscription not fully synced)", nil
		}
		return num, "", nil
	}
	m, err := l.maps.Get(ctx, mappings.SubscriptionCharge, key)
	if errors.Is(err, mappings.ErrNotFound) && !rs.fetched[r.SubscriptionID] && l.cfg.Charges != nil {
		// The subscription is in Zuora but its charge numbers were not
		// recorded: read it and record them.
		rs.fetched[r.SubscriptionID] = true
		zs, gerr := rs.read(ctx, r.SubscriptionID, sn.subNumber)
		if gerr != nil {
			l.log.Warn().Err(gerr).Str("subscription", r.SubscriptionID).Msg("usage: read subscription for charge numbers")
			return "", "charge number unknown; reading the subscription from Zuora failed: " + gerr.Error(), nil
		}
		if err := l.cfg.Charges.RecordCharges(ctx, r.SubscriptionID, zs); err != nil {
			return "", "", err
		}
		m, err = l.maps.Get(ctx, mappings.SubscriptionCharge, key)
	}
	if errors.Is(err, mappings.ErrNotFound) {
		if rs.fetched[r.SubscriptionID] {
			rs.numbers[key] = ""
			// Zuora's subscription was read and has no such charge: if the
			// local subscription no longer has it either, it never will.
			gone, err := rs.chargeLeft(ctx, r)
			if err != nil {
				return "", "", err
			}
			if gone {
				rs.stranded[key] = true
				return "", "the charge " + r.PlanID + "/" + r.ChargeID + " left the subscription before it reached Zuora, so Zuora has no charge to bill these units on; " +
					"add it back (then Sync usage to Zuora) or settle the units another way", nil
			}
		}
		return "", "the charge " + r.PlanID + "/" + r.ChargeID + " has no Zuora charge number yet (subscription not fully synced)", nil
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
		zs, err := rs.read(ctx, subID, sn.subNumber)
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
