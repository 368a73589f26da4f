package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/switches"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/mappings"
)

var (
	entityKinds = []string{store.EntityPlan, store.EntityCoupon, store.EntityCustomer, store.EntitySubscription, store.EntityCredit}
	syncStates  = []string{store.StatePending, store.StateInFlight, store.StateSynced, store.StateFailed, store.StateDead,
		store.StateSkipped, store.StateDrifted}
	inboxStates = []string{inbound.StatePending, inbound.StateInFlight, inbound.StateDone, inbound.StateFailed, inbound.StateDead}
)

func oneOf(v string, list []string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// withDone appends a flash code (and its values) to an /admin URL.
func withDone(back string, kv ...string) string {
	u, err := url.Parse(safeNext(back))
	if err != nil {
		return "/admin"
	}
	q := u.Query()
	for _, k := range []string{"done", "n", "kind", "rstate"} {
		q.Del(k)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func entityURL(kind, id string) string {
	return "/admin/entities/" + kind + "/" + url.PathEscape(id)
}

// ---- dashboard ----

type countCell struct {
	Kind, State string
	N           int64
}

type kindRow struct {
	Kind   string
	Cells  []countCell
	Total  int64
	Dead   int64 // what "Retry N dead" retries
	Failed int64 // what "Retry N failed" retries
}

type jobView struct {
	// Overdue is the scheduled time that passed without a run (zero: none).
	Overdue time.Time
	Name    string
	Run     *store.JobRun
	Next    time.Time
}

type connView struct {
	Configured  bool
	Environment string
	BaseURL     string
	LastCall    time.Time
	LastOp      string
	Paused      bool
	PauseCause  string
	// SimulatorURL: the built-in simulator's pages; World: mapped objects
	// missing in Zuora at start (reset or replaced).
	SimulatorURL string
	World        string
}

type testResult struct {
	OK      bool          `json:"ok"`
	Message string        `json:"message"`
	Took    time.Duration `json:"-"`
	TookMS  int64         `json:"tookMs"`
	At      time.Time     `json:"at"`
	// LastCall is the "Last successful call" line after the test.
	LastCall string `json:"lastCall,omitempty"`
}

// lastCallText is the "Last successful call" line.
func (a *Admin) lastCallText() string {
	if a.opts.Connection.LastCall == nil {
		return ""
	}
	at, op := a.opts.Connection.LastCall()
	if at.IsZero() {
		return "none since start"
	}
	return fmtTime(at) + " (" + a.ago(at) + ", " + op + ")"
}

type dashboardData struct {
	States      []string
	Rows        []kindRow
	Totals      []countCell
	GrandTotal  int64
	HasSchedule bool
	Leader      bool
	Jobs        []jobView
	Usage       *usage.Stats
	HasInbox    bool
	LastCallout *inbound.InboxEntry
	LastEntry   *inbound.InboxEntry
	Inbox       map[string]int64
	InboxStates []string
	Backlog     int64
	Conn        connView
	Test        *testResult
	CanCheck    bool
	Check       *testResult
	Activity    chart
	Lag         chart
	Synced24h   int64
	Attempts24h int64
	MaxLag      float64
	Waiting     time.Time // the oldest due record's next-attempt time (zero: none)
	OldestClaim time.Time // when the oldest in-flight claim was made (zero: none)
	Lapsed      int64     // claims whose holder stopped extending them (a killed replica)
}

// activityOutcomes are the outcomes the dashboard's chart stacks, in order.
var activityOutcomes = []string{store.StateSynced, store.StateSkipped, store.StateDrifted, store.StatePending, store.StateFailed, store.StateDead}

// trends fills the dashboard's charts: attempts per hour by outcome and
// sync lag over the last 24 hours.
func (a *Admin) trends(ctx context.Context, d *dashboardData) error {
	now := a.opts.Now()
	hours := lastHours(now, 24)
	since := hours[0]
	idx := map[int64]int{}
	for i, h := range hours {
		idx[h.Unix()] = i
	}
	act, err := a.opts.Store.SyncActivity(ctx, since)
	if err != nil {
		return err
	}
	vals := map[string][]float64{}
	for _, o := range activityOutcomes {
		vals[o] = make([]float64, len(hours))
	}
	for _, hc := range act {
		i, ok := idx[hc.Hour.Unix()]
		if !ok {
			continue
		}
		o := hc.Outcome
		if _, known := vals[o]; !known {
			o = store.StatePending
		}
		vals[o][i] += float64(hc.N)
		d.Attempts24h += hc.N
		if hc.Outcome == store.StateSynced {
			d.Synced24h += hc.N
		}
	}
	d.Activity = chart{ID: "chart-activity", Title: "Sync attempts per hour by outcome, last 24 hours (UTC)", Hours: hours, Stacked: true,
		Empty: "No sync attempts in the last 24 hours.", MinTop: 5}
	for _, o := range activityOutcomes {
		d.Activity.Series = append(d.Activity.Series, series{Name: label(o), Class: "o-" + o, Values: vals[o]})
	}
	lag, err := a.opts.Store.SyncLag(ctx, since)
	if err != nil {
		return err
	}
	maxV, avgV := make([]float64, len(hours)), make([]float64, len(hours))
	for _, l := range lag {
		if i, ok := idx[l.Hour.Unix()]; ok {
			maxV[i], avgV[i] = l.MaxSecs, l.AvgSecs
			d.MaxLag = max(d.MaxLag, l.MaxSecs)
		}
	}
	d.Lag = chart{ID: "chart-lag", Title: "Sync lag per hour: from the first attempt at a change to its success, last 24 hours (UTC)", Hours: hours,
		Series: []series{{Name: "average", Class: "lag-avg", Values: avgV}, {Name: "longest", Class: "lag-max", Values: maxV}},
		Format: duration, Empty: "No change reached Zuora in the last 24 hours.", MinTop: 60}
	if t, ok, err := a.opts.Store.OldestDue(ctx); err != nil {
		return err
	} else if ok {
		d.Waiting = t
	}
	t, ok, lapsed, err := a.opts.Store.ClaimAges(ctx)
	if err != nil {
		return err
	}
	d.Lapsed = lapsed
	if ok {
		d.OldestClaim = t
	}
	return nil
}

func (a *Admin) dashboardData(ctx context.Context) (dashboardData, error) {
	d := dashboardData{States: syncStates, InboxStates: inboxStates, CanCheck: a.opts.Tenant != nil}
	counts, err := a.opts.Store.SyncCounts(ctx)
	if err != nil {
		return d, err
	}
	totals := map[string]int64{}
	for _, k := range entityKinds {
		row := kindRow{Kind: k}
		for _, s := range syncStates {
			n := counts[k][s]
			row.Cells = append(row.Cells, countCell{Kind: k, State: s, N: n})
			row.Total += n
			totals[s] += n
			switch s {
			case store.StateFailed:
				row.Failed = n
			case store.StateDead:
				row.Dead = n
			}
		}
		d.GrandTotal += row.Total
		d.Rows = append(d.Rows, row)
	}
	for _, s := range syncStates {
		d.Totals = append(d.Totals, countCell{State: s, N: totals[s]})
	}
	if err := a.trends(ctx, &d); err != nil {
		return d, err
	}
	if sch := a.opts.Schedule; sch != nil {
		d.HasSchedule, d.Leader = true, sch.IsLeader()
		runs, err := a.opts.Store.LastJobRuns(ctx)
		if err != nil {
			return d, err
		}
		next := sch.Next()
		var overdue map[string]time.Time
		if o, ok := sch.(interface {
			Overdue(context.Context) (map[string]time.Time, error)
		}); ok {
			if overdue, err = o.Overdue(ctx); err != nil {
				return d, err
			}
		}
		names := map[string]bool{}
		for _, n := range sch.Jobs() {
			names[n] = true
		}
		for n := range runs {
			names[n] = true
		}
		for _, n := range sortedKeys(names) {
			j := jobView{Name: n, Next: next[n], Overdue: overdue[n]}
			if r, ok := runs[n]; ok {
				j.Run = &r
			}
			d.Jobs = append(d.Jobs, j)
		}
	}
	if a.opts.Usage != nil {
		st, err := a.opts.Usage.Stats(ctx)
		if err != nil {
			return d, err
		}
		d.Usage = &st
	}
	if in := a.opts.Inbox; in != nil {
		d.HasInbox = true
		if d.Inbox, err = in.InboxCounts(ctx); err != nil {
			return d, err
		}
		d.Backlog = d.Inbox[inbound.StatePending] + d.Inbox[inbound.StateInFlight] + d.Inbox[inbound.StateFailed]
		last, _, err := in.RecentInbox(ctx, inbound.RecentFilter{Source: inbound.SourceCallout, Limit: 1})
		if err != nil {
			return d, err
		}
		if len(last) == 1 {
			d.LastCallout = &last[0]
		}
	}
	if d.Conn, _, err = a.currentConn(ctx); err != nil {
		return d, err
	}
	return d, nil
}

func (a *Admin) dashboard(c *gin.Context) {
	d, err := a.dashboardData(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	a.render(c, http.StatusOK, "dashboard", page{Title: "Dashboard", Nav: "dashboard", Data: d})
}

// testConnection proves the credentials with a fresh token and one read. The
// script asks for JSON and shows the result in place; without it the
// dashboard is rendered with the result.
func (a *Admin) testConnection(c *gin.Context) {
	if a.opts.Zuora == nil {
		a.errorPage(c, http.StatusNotFound, "No Zuora connection", "No Zuora client is configured.")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := a.opts.Zuora.TestConnection(ctx)
	res := &testResult{OK: err == nil, Took: time.Since(start).Round(time.Millisecond), At: a.opts.Now().UTC()}
	res.TookMS = res.Took.Milliseconds()
	if err != nil {
		res.Message = a.redact(err.Error())
		a.logger(c).Warn().Err(err).Msg("Zuora connection test failed")
	} else {
		res.Message = "Connected: a fresh OAuth token and a catalog read succeeded."
	}
	res.LastCall = a.lastCallText()
	if strings.Contains(c.GetHeader("Accept"), "application/json") {
		c.JSON(http.StatusOK, res)
		return
	}
	d, derr := a.dashboardData(c.Request.Context())
	if derr != nil {
		a.fail(c, derr)
		return
	}
	d.Test = res
	a.render(c, http.StatusOK, "dashboard", page{Title: "Dashboard", Nav: "dashboard", Data: d})
}

// checkTenant lists what the Zuora tenant lacks for billsync (custom
// fields, units of measure, currencies), its time zone and the callouts; in
// place with the script, on the dashboard without it.
func (a *Admin) checkTenant(c *gin.Context) {
	if a.opts.Tenant == nil {
		a.errorPage(c, http.StatusNotFound, "No Zuora connection", "No Zuora client is configured.")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	rep, err := a.opts.Tenant.CheckTenant(ctx)
	res := &testResult{OK: err == nil && rep.OK, Took: time.Since(start).Round(time.Millisecond), At: a.opts.Now().UTC()}
	res.TookMS = res.Took.Milliseconds()
	switch {
	case err != nil:
		res.Message = a.redact("The tenant could not be read: " + err.Error())
		a.logger(c).Warn().Err(err).Msg("Zuora tenant check failed")
	case rep.OK:
		res.Message = fmt.Sprintf("The tenant has everything billsync needs (time zone %s; callouts %s).", rep.TimeZone, rep.Callouts)
	default:
		fixes := make([]string, 0, len(rep.Missing))
		for _, m := range rep.Missing {
			fixes = append(fixes, m.Fix)
		}
		res.Message = fmt.Sprintf("The tenant lacks %d thing(s): %s. Time zone %s; callouts %s.", len(rep.Missing), strings.Join(fixes, "; "),
			rep.TimeZone, rep.Callouts)
	}
	if strings.Contains(c.GetHeader("Accept"), "application/json") {
		c.JSON(http.StatusOK, res)
		return
	}
	d, derr := a.dashboardData(c.Request.Context())
	if derr != nil {
		a.fail(c, derr)
		return
	}
	d.Check = res
	a.render(c, http.StatusOK, "dashboard", page{Title: "Dashboard", Nav: "dashboard", Data: d})
}

// ---- sync records ----

type recordRow struct {
	store.SyncRecord
	EntityURL string
	Message   string
	IsError   bool
	Explain   explanation
	// CanRetry: failed or dead, where a retry helps.
	CanRetry bool
	// Due: the workers try the record again at NextAttemptAt by themselves.
	Due bool
	// FromMapping names the mapping the Zuora object was taken from (the
	// record has none of its own yet).
	FromMapping string
}

func toRecordRow(r store.SyncRecord) recordRow {
	row := recordRow{SyncRecord: r, EntityURL: entityURL(r.EntityKind, r.EntityID), Message: r.Reason,
		CanRetry: r.State == store.StateFailed || r.State == store.StateDead,
		Due:      r.State == store.StatePending || r.State == store.StateFailed || r.State == store.StateDrifted}
	if r.LastErrorMessage != "" && r.State != store.StateSynced {
		row.Message, row.IsError = r.LastErrorMessage, true
		if r.LastErrorCode != "" {
			row.Message = r.LastErrorMessage + " (" + r.LastErrorCode + ")"
		}
		row.Explain = explain(r.LastErrorCode, r.LastErrorMessage, r.State)
	}
	return row
}

func (a *Admin) recordID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("rid"), 10, 64)
	if err != nil || id <= 0 {
		a.errorPage(c, http.StatusBadRequest, "Bad record id", "a sync record id is a positive integer")
		return 0, false
	}
	return id, true
}

// syncRecord sends a record id to its entity's page.
func (a *Admin) syncRecord(c *gin.Context) {
	id, ok := a.recordID(c)
	if !ok {
		return
	}
	r, err := a.opts.Store.SyncRecordByID(c.Request.Context(), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, entityURL(r.EntityKind, r.EntityID))
}

func (a *Admin) kick() {
	if a.opts.Kick != nil {
		a.opts.Kick()
	}
}

func (a *Admin) retryRecord(c *gin.Context) {
	id, ok := a.recordID(c)
	if !ok {
		return
	}
	r, retried, err := a.opts.Store.RetryProblem(c.Request.Context(), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !retried {
		a.errorPage(c, http.StatusConflict, "Nothing to retry",
			"This record is "+label(r.State)+", not failed or dead: a retry would not help. Pending and failed records are tried again by the workers on their own.")
		return
	}
	a.kick()
	a.logger(c).Info().Int64("record", id).Str("entity", r.EntityKind+"/"+r.EntityID).Msg("admin: retry")
	back := c.PostForm("back")
	if back == "" {
		back = entityURL(r.EntityKind, r.EntityID)
	}
	c.Redirect(http.StatusSeeOther, withDone(back, "done", "retried"))
}

// retryAll retries the failed or the dead records of a kind (state given),
// or both (no state).
func (a *Admin) retryAll(c *gin.Context) {
	kind, state := c.PostForm("kind"), c.PostForm("state")
	if kind != "" && !oneOf(kind, entityKinds) {
		a.errorPage(c, http.StatusBadRequest, "Unknown kind", "kind must be one of plan, customer, subscription")
		return
	}
	if state != "" && state != store.StateFailed && state != store.StateDead {
		a.errorPage(c, http.StatusBadRequest, "Unknown state", "only failed and dead records are retried; state must be failed or dead")
		return
	}
	var n int64
	var err error
	if state == "" {
		n, err = a.opts.Store.RetryAll(c.Request.Context(), kind)
	} else {
		n, err = a.opts.Store.RetryState(c.Request.Context(), kind, state)
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.kick()
	a.logger(c).Info().Str("kind", kind).Str("state", state).Int64("records", n).Msg("admin: retry all")
	k := kind
	if k == "" {
		k = "all"
	}
	kv := []string{"done", "retried-all", "n", strconv.FormatInt(n, 10), "kind", k}
	if state != "" {
		kv = append(kv, "rstate", state)
	}
	c.Redirect(http.StatusSeeOther, withDone(c.PostForm("back"), kv...))
}

// driftCheck queues a drift check of every synced record now (the hourly
// drift job on demand): the workers read each object back and repair what
// differs.
func (a *Admin) driftCheck(c *gin.Context) {
	n, err := a.opts.Store.EnqueueDriftChecksNow(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	a.kick()
	a.logger(c).Info().Int64("records", n).Msg("admin: drift check")
	c.Redirect(http.StatusSeeOther, withDone("/admin", "done", "drift-checked", "n", strconv.FormatInt(n, 10)))
}

// ---- entity detail ----

type mappingRow struct {
	mappings.Mapping
	URL       string
	EntityURL string
}

type usageTotals struct {
	Ingested, Uploaded, Pending decimal.Decimal
	Windows, PendingWindows     int
}

type entityData struct {
	Kind, ID     string
	Found        bool
	Plan         *engine.Plan
	Customer     *engine.Customer
	Subscription *engine.Subscription
	Coupon       *engine.Coupon
	// Preview is Zuora's next invoice of a synced subscription (or why not).
	Preview       *engine.Preview
	PreviewError  string
	Subscriptions []engine.Subscription
	Record        *recordRow
	Timeline      []timelineRow
	Mappings      []mappingRow
	HasUsage      bool
	Windows       []usage.Window
	Totals        usageTotals
	Report        *usage.Report
	UsageError    string
	UsageChart    chart
	Billing       *billingData
	Credits       []creditRow
	Credit        *engine.Credit
	Back          string
}

var mappingKindsOf = map[string][]mappings.Kind{
	store.EntityPlan:         {mappings.Product, mappings.RatePlan, mappings.Charge},
	store.EntityCoupon:       {mappings.Product, mappings.RatePlan, mappings.Charge},
	store.EntityCustomer:     {mappings.Account},
	store.EntitySubscription: {mappings.Subscription, mappings.SubscriptionRatePlan, mappings.SubscriptionCharge},
}

func (a *Admin) mappingRow(m mappings.Mapping) mappingRow {
	row := mappingRow{Mapping: m}
	first, _, _ := strings.Cut(m.LocalID, "/")
	if z := a.opts.Zuora; z != nil {
		switch m.Kind {
		case mappings.Account:
			row.URL = z.AccountURL(m.ZuoraID)
		case mappings.Subscription:
			row.URL = z.SubscriptionURL(m.ZuoraID)
		case mappings.Product:
			row.URL = z.ProductURL(m.ZuoraID)
		}
	}
	switch m.Kind {
	case mappings.Account:
		if m.ParentID != "" {
			first = m.ParentID
		}
		row.EntityURL = entityURL(store.EntityCustomer, first)
	case mappings.Product, mappings.RatePlan, mappings.Charge:
		if id, ok := strings.CutPrefix(first, store.CouponMappingID("")); ok {
			row.EntityURL = entityURL(store.EntityCoupon, id)
		} else {
			row.EntityURL = entityURL(store.EntityPlan, first)
		}
	default:
		row.EntityURL = entityURL(store.EntitySubscription, first)
	}
	return row
}

func (a *Admin) entity(c *gin.Context) {
	kind, id := c.Param("kind"), strings.TrimPrefix(c.Param("id"), "/")
	if !oneOf(kind, entityKinds) || id == "" {
		a.errorPage(c, http.StatusNotFound, "Not found", "entities are plans, customers and subscriptions")
		return
	}
	d, err := a.entityData(c.Request.Context(), kind, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.renderEntity(c, d)
}

func (a *Admin) renderEntity(c *gin.Context, d entityData) {
	if !d.Found && d.Record == nil && len(d.Mappings) == 0 {
		a.errorPage(c, http.StatusNotFound, "Not found", label(d.Kind)+" "+d.ID+" is not known here.")
		return
	}
	p := page{Title: d.Kind + " " + d.ID, Nav: "records", Data: d}
	if d.Record != nil && (d.Record.State == store.StatePending || d.Record.State == store.StateInFlight) {
		p.Refresh = 2
	}
	a.render(c, http.StatusOK, "entity", p)
}

func (a *Admin) entityData(ctx context.Context, kind, id string) (entityData, error) {
	d := entityData{Kind: kind, ID: id, Back: entityURL(kind, id)}
	var err error
	switch kind {
	case store.EntityPlan:
		var p engine.Plan
		if p, err = a.opts.Store.GetPlan(ctx, id); err == nil {
			d.Plan = &p
		}
	case store.EntityCoupon:
		if cs, ok := a.opts.Store.(interface {
			GetCoupon(ctx context.Context, id string) (engine.Coupon, error)
		}); ok {
			var cp engine.Coupon
			if cp, err = cs.GetCoupon(ctx, id); err == nil {
				d.Coupon = &cp
			}
		}
	case store.EntityCustomer:
		var cu engine.Customer
		if cu, err = a.opts.Store.GetCustomer(ctx, id); err == nil {
			d.Customer = &cu
			page, lerr := a.opts.Store.ListSubscriptions(ctx, store.ListOptions{CustomerID: id, Limit: 100, IncludeArchived: true})
			if lerr != nil {
				return d, lerr
			}
			d.Subscriptions = page.Items
			a.billingOf(ctx, &d)
			if err := a.creditsOf(ctx, &d); err != nil {
				return d, err
			}
		}
	case store.EntityCredit:
		var cr engine.Credit
		if cr, err = a.opts.Store.GetCredit(ctx, id); err == nil {
			d.Credit = &cr
		}
	case store.EntitySubscription:
		var s engine.Subscription
		if s, err = a.opts.Store.GetSubscription(ctx, id); err == nil {
			d.Subscription = &s
		}
	}
	if err != nil && !notFound(err) {
		return d, err
	}
	d.Found = err == nil
	rec, err := a.opts.Store.GetSyncRecord(ctx, kind, id)
	switch {
	case err == nil:
		row := toRecordRow(rec)
		d.Record = &row
	case !notFound(err):
		return d, err
	}
	mappingID := id
	if kind == store.EntityCoupon {
		mappingID = store.CouponMappingID(id)
	}
	ms, _, err := a.opts.Mappings.List(ctx, mappings.ListOptions{LocalID: mappingID, Limit: 500})
	if err != nil {
		return d, err
	}
	for _, m := range ms {
		for _, k := range mappingKindsOf[kind] {
			if m.Kind == k {
				d.Mappings = append(d.Mappings, a.mappingRow(m))
			}
		}
	}
	a.fromMappings(&d)
	if kind == store.EntitySubscription && a.opts.Usage != nil && d.Found {
		if d.Windows, err = a.opts.Usage.Windows(ctx, id, usage.WindowFilter{Limit: 200}); err != nil {
			return d, err
		}
		// The usage card is for subscriptions with a usage charge (or usage on record).
		if d.HasUsage, err = a.hasUsageCharge(ctx, *d.Subscription); err != nil {
			return d, err
		}
		d.HasUsage = d.HasUsage || len(d.Windows) > 0
		d.UsageChart = a.usageChart(d.Windows)
		for _, w := range d.Windows {
			d.Totals.Windows++
			d.Totals.Ingested = d.Totals.Ingested.Add(w.Ingested)
			d.Totals.Uploaded = d.Totals.Uploaded.Add(w.Uploaded)
			d.Totals.Pending = d.Totals.Pending.Add(w.Pending)
			if !w.Pending.IsZero() {
				d.Totals.PendingWindows++
			}
		}
	}
	if kind == store.EntitySubscription && a.opts.Preview != nil && d.Found && d.Record != nil && d.Record.ZuoraID != "" {
		if p, err := a.opts.Preview.Preview(ctx, id, nil, ""); err != nil {
			d.PreviewError = err.Error()
		} else {
			d.Preview = &p
		}
	}
	if err := a.timeline(ctx, &d); err != nil {
		return d, err
	}
	return d, nil
}

// fromMappings fills in the Zuora object of a record that has none yet (a
// plan whose product was created before a later step failed, say) from its
// head mapping, so the page does not say "not in Zuora yet" while it is.
func (a *Admin) fromMappings(d *entityData) {
	if d.Record == nil || d.Record.ZuoraID != "" || d.Record.ZuoraNumber != "" {
		return
	}
	for _, m := range d.Mappings {
		head := (d.Kind == store.EntityPlan && m.Kind == mappings.Product && m.LocalID == d.ID) ||
			(d.Kind == store.EntitySubscription && m.Kind == mappings.Subscription && m.LocalID == d.ID) ||
			(d.Kind == store.EntityCustomer && m.Kind == mappings.Account)
		if head {
			d.Record.ZuoraID, d.Record.ZuoraNumber, d.Record.ZuoraURL = m.ZuoraID, m.ZuoraNumber, m.URL
			d.Record.FromMapping = mappingLabels[m.Kind]
			return
		}
	}
}

// timelineRow is one line of an entity's timeline.
type timelineRow struct {
	store.TimelineEvent
	What    string // "Local change", "Push to Zuora", …
	Summary string
	IsError bool
	Whose   string
	Link    string
	LinkTo  string
}

// timeline gathers, newest first, the entity's local changes, pushes,
// answers, callouts about its Zuora objects and (for a subscription) the
// usage sent to Zuora.
func (a *Admin) timeline(ctx context.Context, d *entityData) error {
	q := store.TimelineQuery{Kind: d.Kind, ID: d.ID, Limit: 200}
	for _, m := range d.Mappings {
		if m.Kind == mappings.Account || m.Kind == mappings.Subscription || m.Kind == mappings.Product {
			q.ZuoraKeys = append(q.ZuoraKeys, m.ZuoraID, m.ZuoraNumber)
		}
	}
	if d.Record != nil {
		q.ZuoraKeys = append(q.ZuoraKeys, d.Record.ZuoraID, d.Record.ZuoraNumber)
	}
	evs, err := a.opts.Store.Timeline(ctx, q)
	if err != nil {
		return err
	}
	for _, e := range evs {
		r := timelineRow{TimelineEvent: e}
		switch e.Kind {
		case store.TimelineChange:
			r.What, r.Summary = "Local change", fmt.Sprintf("%s, revision %d", e.Outcome, e.Revision)
		case store.TimelinePush:
			r.What = "Push to Zuora"
			r.Summary = "attempt " + e.SyncID + " started"
			if e.Direction == store.DirectionIn {
				r.What, r.Summary = "Read from Zuora", "import "+e.SyncID+" started"
			}
			r.Link, r.LinkTo = fmt.Sprintf("/admin/sync-records/%d", e.RecordID), "sync record"
		case store.TimelineAnswer:
			r.What = "Zuora's answer"
			r.Summary = e.Detail
			if e.ErrorMessage != "" {
				r.IsError, r.Summary = true, e.ErrorMessage
				if e.ErrorCode != "" {
					r.Summary += " (" + e.ErrorCode + ")"
				}
				x := explain(e.ErrorCode, e.ErrorMessage, e.Outcome)
				r.Whose = x.Label
				if x.Source == "billsync" {
					r.What = "billsync's error"
				}
			}
			if e.ZuoraCalls > 0 {
				r.Summary = strings.TrimSpace(r.Summary + " · " + plural(int64(e.ZuoraCalls), "Zuora call", "Zuora calls"))
			}
			r.Link, r.LinkTo = fmt.Sprintf("/admin/sync-records/%d", e.RecordID), "sync record"
		case store.TimelineCallout:
			r.What = "Callout from Zuora"
			if e.Source != "" && e.Source != "callout" {
				r.What = "Found by the " + e.Source
			}
			r.Summary = label(e.Event) + " " + e.ObjectID
			if e.ErrorMessage != "" {
				r.IsError, r.Summary = true, r.Summary+": "+e.ErrorMessage
			} else if e.Detail != "" {
				r.Summary += ": " + e.Detail
			}
			r.Link, r.LinkTo = fmt.Sprintf("/admin/inbox?before=%d#inbox-%d", e.InboxID+1, e.InboxID), fmt.Sprintf("inbox entry %d", e.InboxID)
		}
		d.Timeline = append(d.Timeline, r)
	}
	// Usage sent to Zuora for the subscription (from the ledger).
	for _, w := range d.Windows {
		for _, u := range w.Uploads {
			if u.SentAt == nil {
				continue
			}
			r := timelineRow{TimelineEvent: store.TimelineEvent{At: u.SentAt.UTC(), Kind: "usage", Outcome: u.State},
				What: "Usage sent to Zuora", Summary: fmt.Sprintf("%s × %s for %s (hour %s)", w.ChargeID, u.Quantity, cmp.Or(u.ChargeNumber, w.ChargeNumber), fmtTime(w.Start)),
				Link: "#usage", LinkTo: "usage"}
			if u.ZuoraUsageID != "" {
				r.Summary += ", Zuora usage " + u.ZuoraUsageID
			}
			d.Timeline = append(d.Timeline, r)
		}
	}
	slices.SortStableFunc(d.Timeline, func(x, y timelineRow) int { return y.At.Compare(x.At) })
	return nil
}

// hasUsageCharge reports whether the subscription's plan or add-ons, in
// their billing periods, have a usage charge.
func (a *Admin) hasUsageCharge(ctx context.Context, s engine.Subscription) (bool, error) {
	plans := []engine.AddOn{{PlanID: s.PlanID, BillingPeriodID: s.BillingPeriodID}}
	plans = append(plans, s.AddOns...)
	for _, ref := range plans {
		p, err := a.opts.Store.GetPlan(ctx, ref.PlanID)
		if notFound(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, bp := range p.BillingPeriods {
			if ref.BillingPeriodID != "" && bp.ID != ref.BillingPeriodID {
				continue
			}
			for _, ch := range bp.Charges {
				if ch.Type == engine.ChargeUsage {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// usageChart draws usage per hour, ingested vs sent to Zuora, over the 24
// hours up to now, or up to the latest window when none is that recent.
func (a *Admin) usageChart(ws []usage.Window) chart {
	end := a.opts.Now()
	if len(ws) > 0 && ws[0].Start.Before(end.Add(-23*time.Hour)) {
		end = ws[0].Start // newest first
	}
	hours := lastHours(end, 24)
	idx := map[int64]int{}
	for i, h := range hours {
		idx[h.Unix()] = i
	}
	in, sent := make([]float64, len(hours)), make([]float64, len(hours))
	for _, w := range ws {
		if i, ok := idx[w.Start.UTC().Truncate(time.Hour).Unix()]; ok {
			in[i] += w.Ingested.InexactFloat64()
			sent[i] += w.Uploaded.InexactFloat64()
		}
	}
	return chart{ID: "chart-usage", Title: "Usage per hour: ingested and sent to Zuora (UTC)", Hours: hours,
		Series: []series{{Name: "ingested", Class: "u-in", Values: in}, {Name: "sent to Zuora", Class: "u-sent", Values: sent}},
		Empty:  "No usage in these 24 hours."}
}

func notFound(err error) bool {
	var nf *engine.NotFoundError
	return errors.As(err, &nf) || errors.Is(err, engine.ErrNotFound) || errors.Is(err, mappings.ErrNotFound)
}

// syncUsage is the "Sync usage to Zuora" button: the ledger's Sync for one
// subscription, as POST /api/v1/subscriptions/{id}/sync-usage runs it. The
// page is rendered with what was sent.
func (a *Admin) syncUsage(c *gin.Context) {
	id := c.Param("id")
	if a.opts.Usage == nil {
		a.errorPage(c, http.StatusNotFound, "No usage ledger", "Usage is not configured on this server.")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Minute)
	defer cancel()
	rep, err := a.opts.Usage.Sync(ctx, usage.SyncOptions{SubscriptionID: id, IncludeCurrentHour: c.PostForm("current") == "on"})
	if err != nil && notFound(err) {
		a.fail(c, err)
		return
	}
	d, derr := a.entityData(c.Request.Context(), store.EntitySubscription, id)
	if derr != nil {
		a.fail(c, derr)
		return
	}
	if err != nil {
		a.logger(c).Warn().Err(err).Str("subscription", id).Msg("admin: usage sync failed")
		d.UsageError = a.redact(err.Error())
	}
	d.Report = rep
	a.logger(c).Info().Str("subscription", id).Msg("admin: usage synced")
	a.renderEntity(c, d)
}

// ---- mappings ----

type mappingsData struct {
	Kind, LocalID string
	Kinds         []mappings.Kind
	Rows          []mappingRow
	Next          string
	Paged         bool
}

func (a *Admin) mappingsPage(c *gin.Context) {
	d := mappingsData{Kind: c.Query("kind"), LocalID: strings.TrimSpace(c.Query("localId")), Kinds: mappings.Kinds}
	if d.Kind != "" {
		known := false
		for _, k := range mappings.Kinds {
			known = known || string(k) == d.Kind
		}
		if !known {
			a.errorPage(c, http.StatusBadRequest, "Unknown kind", "unknown mapping kind")
			return
		}
	}
	after := c.Query("after")
	d.Paged = after != ""
	ms, next, err := a.opts.Mappings.List(c.Request.Context(), mappings.ListOptions{Kind: mappings.Kind(d.Kind), LocalID: d.LocalID, After: after, Limit: 50})
	if err != nil {
		a.fail(c, err)
		return
	}
	for _, m := range ms {
		d.Rows = append(d.Rows, a.mappingRow(m))
	}
	d.Next = next
	a.render(c, http.StatusOK, "mappings", page{Title: "Mappings", Nav: "mappings", Data: d})
}

// ---- inbox ----

type inboxRow struct {
	inbound.InboxEntry
	Masked   string
	CanRetry bool
}

type inboxData struct {
	Enabled bool
	State   string
	States  []string
	Counts  map[string]int64
	Rows    []inboxRow
	Next    string
	Paged   bool
	Back    string
}

func (a *Admin) inboxPage(c *gin.Context) {
	d := inboxData{State: c.Query("state"), States: inboxStates, Enabled: a.opts.Inbox != nil, Back: c.Request.URL.RequestURI()}
	if !d.Enabled {
		a.render(c, http.StatusOK, "inbox", page{Title: "Callout inbox", Nav: "inbox", Data: d})
		return
	}
	if d.State != "" && !oneOf(d.State, inboxStates) {
		a.errorPage(c, http.StatusBadRequest, "Unknown state", "state must be one of "+strings.Join(inboxStates, ", "))
		return
	}
	f := inbound.RecentFilter{State: d.State, Limit: 50}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			a.errorPage(c, http.StatusBadRequest, "Bad page", "before must be an inbox id")
			return
		}
		f.BeforeID, d.Paged = n, true
	}
	ctx := c.Request.Context()
	entries, next, err := a.opts.Inbox.RecentInbox(ctx, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	if d.Counts, err = a.opts.Inbox.InboxCounts(ctx); err != nil {
		a.fail(c, err)
		return
	}
	for _, e := range entries {
		e.LastError = a.redact(e.LastError)
		e.Result = a.redact(e.Result)
		d.Rows = append(d.Rows, inboxRow{InboxEntry: e, Masked: a.maskPayload(e.Payload),
			CanRetry: e.State != inbound.StateInFlight && e.State != inbound.StatePending})
	}
	if next != 0 {
		d.Next = strconv.FormatInt(next, 10)
	}
	a.render(c, http.StatusOK, "inbox", page{Title: "Callout inbox", Nav: "inbox", Data: d})
}

func (a *Admin) retryInbox(c *gin.Context) {
	if a.opts.Inbox == nil {
		a.errorPage(c, http.StatusNotFound, "No inbox", "Inbound processing is not configured on this server.")
		return
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		a.errorPage(c, http.StatusBadRequest, "Bad inbox id", "an inbox id is a positive integer")
		return
	}
	if _, err := a.opts.Inbox.RetryInbox(c.Request.Context(), id); err != nil {
		a.fail(c, err)
		return
	}
	a.logger(c).Info().Int64("inbox", id).Msg("admin: inbox retry")
	back := c.PostForm("back")
	if back == "" {
		back = "/admin/inbox"
	}
	c.Redirect(http.StatusSeeOther, withDone(back, "done", "inbox-retried"))
}

// ---- settings ----

type switchRow struct {
	Name string
	On   bool
}

type settingsData struct {
	Enabled     bool
	Switches    []switchRow
	PasswordSet bool
	Conn        connectionData
}

func (a *Admin) settings() settingsData {
	d := settingsData{Enabled: a.opts.Switches != nil, PasswordSet: !a.open}
	if d.Enabled {
		snap := a.opts.Switches.Snapshot()
		for _, n := range switches.All {
			d.Switches = append(d.Switches, switchRow{Name: n, On: snap[n]})
		}
	}
	return d
}

func (a *Admin) settingsPage(c *gin.Context) {
	a.settingsWith(c, http.StatusOK, connForm{}, nil, false)
}

func (a *Admin) saveSettings(c *gin.Context) {
	if a.opts.Switches == nil {
		a.errorPage(c, http.StatusNotFound, "No switches", "Sync switches are not configured on this server.")
		return
	}
	name, val := c.PostForm("switch"), c.PostForm("value")
	if !switches.Valid(name) || (val != "on" && val != "off") {
		a.errorPage(c, http.StatusBadRequest, "Unknown switch", "switch must be one of "+strings.Join(switches.All, ", ")+" and value on or off")
		return
	}
	if err := a.opts.Switches.Set(c.Request.Context(), name, val == "on"); err != nil {
		a.fail(c, err)
		return
	}
	a.logger(c).Info().Str("switch", name).Bool("on", val == "on").Msg("admin: sync switch set")
	if val == "on" {
		a.kick()
	}
	c.Redirect(http.StatusSeeOther, "/admin/settings?done=saved")
}
