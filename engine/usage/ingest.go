package usage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// Event is one metered usage event.
type Event struct {
	// IdempotencyKey is the client's unique key: an event is stored once.
	IdempotencyKey string
	SubscriptionID string
	// ChargeID names the usage charge; Feature may be given instead (the
	// feature the subscription's usage charge bills).
	ChargeID string
	Feature  string
	// Quantity is exact (never a float), ≥ 0.
	Quantity decimal.Decimal
	// Timestamp is when the usage happened.
	Timestamp time.Time
}

// Status is the outcome of one event.
type Status string

// Event outcomes.
const (
	Accepted  Status = "accepted"
	Duplicate Status = "duplicate"
	Rejected  Status = "rejected"
)

// Result is the outcome of one event, in the order of the input.
type Result struct {
	IdempotencyKey string
	Status         Status
	// Field and Reason say why an event was rejected.
	Field  string
	Reason string
	// PlanID, ChargeID and WindowStart locate an accepted event's window.
	PlanID      string
	ChargeID    string
	WindowStart time.Time
}

// MaxKeyLength bounds an event's idempotency key.
const MaxKeyLength = 255

// ParseQuantity parses an event quantity exactly: a decimal ≥ 0 with at most
// 9 decimal places and less than 10^15.
func ParseQuantity(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return decimal.Zero, fmt.Errorf("must be a decimal number, got %q", s)
	}
	return d, checkQuantity(d)
}

// checkQuantity bounds a quantity to what Zuora stores (engine.CheckAmount
// looks at digits only, so 1e2000000000 is refused without being expanded).
func checkQuantity(d decimal.Decimal) error {
	if msg := engine.CheckAmount(d); msg != "" {
		return errors.New(msg)
	}
	if d.IsNegative() {
		return errors.New("must not be negative")
	}
	return nil
}

// chargeRef is a usage-relevant charge of a subscription.
type chargeRef struct {
	planID, chargeID string
	typ              engine.ChargeType
	uom, feature     string
}

// subView is the cached validation view of one subscription.
type subView struct {
	loaded   time.Time
	revision string // subscription and plan revisions the view was built from
	missing  bool
	start    time.Time
	charges  map[string][]chargeRef // charge id → refs, current plans first, then charges the subscription had in Zuora
	features map[string]chargeRef   // feature → current usage charge
	numbers  map[string]string      // "planID/chargeID" → charge number
}

func (v *subView) charge(e Event) (chargeRef, string, string) {
	if e.ChargeID != "" {
		refs := v.charges[e.ChargeID]
		if len(refs) == 0 {
			return chargeRef{}, "chargeId", fmt.Sprintf("unknown charge %q: not a charge of the subscription's plan or add-ons", e.ChargeID)
		}
		for _, r := range refs {
			if r.typ == engine.ChargeUsage {
				return r, "", ""
			}
		}
		return chargeRef{}, "chargeId", fmt.Sprintf("charge %q is a %s charge, not a usage charge", e.ChargeID, refs[0].typ)
	}
	if e.Feature != "" {
		r, ok := v.features[e.Feature]
		if !ok {
			return chargeRef{}, "feature", fmt.Sprintf("no usage charge of the subscription bills feature %q", e.Feature)
		}
		return r, "", ""
	}
	return chargeRef{}, "chargeId", "chargeId or feature is required"
}

// view returns the subscription's validation view, loading it when absent or
// older than ViewTTL (or when reload is set).
func (l *Ledger) view(ctx context.Context, subID string, reload bool) (*subView, error) {
	now := time.Now()
	l.viewMu.Lock()
	v := l.views[subID]
	l.viewMu.Unlock()
	if v != nil && !reload && now.Sub(v.loaded) < l.cfg.ViewTTL {
		return v, nil
	}
	v, err := l.loadView(ctx, subID)
	if err != nil {
		return nil, err
	}
	v.loaded = now
	l.viewMu.Lock()
	if len(l.views) > 100000 {
		l.views = map[string]*subView{}
	}
	l.views[subID] = v
	l.viewMu.Unlock()
	return v, nil
}

// refreshViews reloads the cached views of the batch's subscriptions whose
// subscription or plan changed since (one query per batch), and returns them.
func (l *Ledger) refreshViews(ctx context.Context, events []Event) (map[string]bool, error) {
	reloaded := map[string]bool{}
	var ids []string
	seen := map[string]bool{}
	l.viewMu.Lock()
	for _, e := range events {
		if !seen[e.SubscriptionID] && e.SubscriptionID != "" {
			seen[e.SubscriptionID] = true
			if l.views[e.SubscriptionID] != nil {
				ids = append(ids, e.SubscriptionID)
			}
		}
	}
	l.viewMu.Unlock()
	current, err := l.db.SubscriptionRevisions(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		l.viewMu.Lock()
		v := l.views[id]
		l.viewMu.Unlock()
		if v != nil && v.revision != current[id] {
			if _, err := l.view(ctx, id, true); err != nil {
				return nil, err
			}
			reloaded[id] = true
		}
	}
	return reloaded, nil
}

func (l *Ledger) loadView(ctx context.Context, subID string) (*subView, error) {
	sub, err := l.db.GetSubscription(ctx, subID)
	if errors.Is(err, engine.ErrNotFound) {
		return &subView{missing: true}, nil
	}
	if err != nil {
		return nil, err
	}
	v := &subView{charges: map[string][]chargeRef{}, features: map[string]chargeRef{}, numbers: map[string]string{}}
	v.start, _ = time.Parse("2006-01-02", sub.StartDate)
	plans := map[string]engine.Plan{}
	defer func() {
		if p, ok := plans[sub.PlanID]; ok {
			v.revision = fmt.Sprintf("%d/%d", sub.Revision, p.Revision)
		}
	}()
	plan := func(id string) (engine.Plan, error) {
		if p, ok := plans[id]; ok {
			return p, nil
		}
		p, err := l.db.GetPlan(ctx, id)
		if err == nil {
			plans[id] = p
		}
		return p, err
	}
	add := func(planID string, c engine.Charge, current bool) {
		for _, r := range v.charges[c.ID] {
			if r.planID == planID {
				return
			}
		}
		r := chargeRef{planID: planID, chargeID: c.ID, typ: c.Type, uom: c.UnitOfMeasure, feature: c.Feature}
		v.charges[c.ID] = append(v.charges[c.ID], r)
		if current && c.Type == engine.ChargeUsage && c.Feature != "" {
			if _, dup := v.features[c.Feature]; !dup {
				v.features[c.Feature] = r
			}
		}
	}
	current := []engine.AddOn{{PlanID: sub.PlanID, BillingPeriodID: sub.BillingPeriodID}}
	current = append(current, sub.AddOns...)
	for _, a := range current {
		p, err := plan(a.PlanID)
		if err != nil {
			return nil, err
		}
		bp, ok := p.Period(a.BillingPeriodID)
		if !ok {
			continue
		}
		for _, c := range bp.Charges {
			add(p.ID, c, true)
		}
	}
	// Charges the subscription had in Zuora (e.g. before a plan change) keep
	// accepting late events of their windows.
	ms, err := l.maps.Children(ctx, mappings.SubscriptionCharge, subID)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		parts := strings.Split(m.LocalID, "/")
		if len(parts) != 3 {
			continue
		}
		v.numbers[parts[1]+"/"+parts[2]] = m.ZuoraNumber
		p, err := plan(parts[1])
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c, _, ok := p.Charge(parts[2]); ok {
			add(p.ID, c, false)
		}
	}
	return v, nil
}

// candidate is an event that passed validation.
type candidate struct {
	idx    int
	key    string
	sub    string
	ref    chargeRef
	number string
	qty    decimal.Decimal
	at     time.Time
	window time.Time
}

// Ingest validates and stores a batch of at most MaxBatch events. Every
// event gets its own result; the accepted ones are durable when Ingest
// returns. The error is non-nil only when nothing could be stored (the
// database failed), or when the batch is too large.
func (l *Ledger) Ingest(ctx context.Context, events []Event) ([]Result, error) {
	if len(events) > MaxBatch {
		return nil, &engine.ValidationError{Errors: []engine.FieldError{{Field: "events", Message: fmt.Sprintf("at most %d events per batch (got %d)", MaxBatch, len(events))}}}
	}
	now := l.now()
	results := make([]Result, len(events))
	seen := make(map[string]int, len(events))
	reloaded, err := l.refreshViews(ctx, events)
	if err != nil {
		return nil, err
	}
	// A key seen before is a duplicate whatever changed since (its charge
	// may be gone): a client retrying a batch must not be told that its
	// stored event was refused.
	stored, err := l.existingKeys(ctx, events)
	if err != nil {
		return nil, err
	}
	cands := make([]candidate, 0, len(events))
	for i, e := range events {
		results[i] = Result{IdempotencyKey: e.IdempotencyKey}
		if stored[e.IdempotencyKey] {
			results[i].Status, results[i].Reason = Duplicate, "an event with this idempotency key was already ingested"
			continue
		}
		c, field, reason, err := l.validate(ctx, e, now, reloaded)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			results[i].Status, results[i].Field, results[i].Reason = Rejected, field, reason
			continue
		}
		if _, dup := seen[e.IdempotencyKey]; dup {
			results[i].Status, results[i].Reason = Duplicate, "the idempotency key appears earlier in this batch"
			continue
		}
		seen[e.IdempotencyKey] = i
		c.idx = i
		cands = append(cands, c)
	}
	if len(cands) > 0 {
		inserted, err := l.store(ctx, cands, now)
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			r := &results[c.idx]
			if inserted[c.key] {
				r.Status, r.PlanID, r.ChargeID, r.WindowStart = Accepted, c.ref.planID, c.ref.chargeID, c.window
			} else {
				r.Status, r.Reason = Duplicate, "an event with this idempotency key was already ingested"
			}
		}
	}
	return results, nil
}

// existingKeys returns which of the events' idempotency keys are already
// in the ledger (keys that could never be stored are not looked up).
func (l *Ledger) existingKeys(ctx context.Context, events []Event) (map[string]bool, error) {
	keys := make([]string, 0, len(events))
	for _, e := range events {
		if e.IdempotencyKey != "" && len(e.IdempotencyKey) <= MaxKeyLength && engine.CheckText(e.IdempotencyKey) == "" {
			keys = append(keys, e.IdempotencyKey)
		}
	}
	return l.db.UsageKeysStored(ctx, keys)
}

// validate checks one event against the subscription's cached view; a view
// that rejects an event is reloaded once per batch (it may predate a new
// subscription or a plan change).
func (l *Ledger) validate(ctx context.Context, e Event, now time.Time, reloaded map[string]bool) (candidate, string, string, error) {
	switch {
	case e.IdempotencyKey == "":
		return candidate{}, "idempotencyKey", "is required", nil
	case len(e.IdempotencyKey) > MaxKeyLength:
		return candidate{}, "idempotencyKey", fmt.Sprintf("must be at most %d characters", MaxKeyLength), nil
	case e.SubscriptionID == "":
		return candidate{}, "subscriptionId", "is required", nil
	}
	for _, f := range [...][2]string{{"idempotencyKey", e.IdempotencyKey}, {"subscriptionId", e.SubscriptionID}, {"chargeId", e.ChargeID}, {"feature", e.Feature}} {
		if msg := engine.CheckText(f[1]); msg != "" {
			return candidate{}, f[0], msg, nil
		}
	}
	if err := checkQuantity(e.Quantity); err != nil {
		return candidate{}, "quantity", err.Error(), nil
	}
	if e.Timestamp.IsZero() {
		return candidate{}, "timestamp", "is required (RFC 3339)", nil
	}
	at := e.Timestamp.UTC()
	if at.After(now.Add(l.cfg.MaxFuture)) {
		return candidate{}, "timestamp", fmt.Sprintf("is more than %s in the future", l.cfg.MaxFuture), nil
	}
	v, err := l.view(ctx, e.SubscriptionID, false)
	if err != nil {
		return candidate{}, "", "", err
	}
	ref, field, reason := v.charge(e)
	if (v.missing || reason != "") && !reloaded[e.SubscriptionID] {
		reloaded[e.SubscriptionID] = true
		if v, err = l.view(ctx, e.SubscriptionID, true); err != nil {
			return candidate{}, "", "", err
		}
		ref, field, reason = v.charge(e)
	}
	if v.missing {
		return candidate{}, "subscriptionId", fmt.Sprintf("unknown subscription %q", e.SubscriptionID), nil
	}
	if reason != "" {
		return candidate{}, field, reason, nil
	}
	if !v.start.IsZero() && at.Before(v.start) {
		return candidate{}, "timestamp", fmt.Sprintf("is before the subscription started (%s)", v.start.Format("2006-01-02")), nil
	}
	return candidate{key: e.IdempotencyKey, sub: e.SubscriptionID, ref: ref, number: v.numbers[ref.planID+"/"+ref.chargeID],
		qty: e.Quantity, at: at, window: at.Truncate(time.Hour)}, "", "", nil
}

// store inserts the candidates and adds the new ones to their windows, in
// one transaction. It returns the keys that were new.
func (l *Ledger) store(ctx context.Context, cands []candidate, now time.Time) (map[string]bool, error) {
	evs := make([]store.UsageEvent, len(cands))
	for i, c := range cands {
		evs[i] = store.UsageEvent{Key: c.key, SubscriptionID: c.sub, PlanID: c.ref.planID, ChargeID: c.ref.chargeID, Quantity: c.qty,
			OccurredAt: c.at, WindowStart: c.window, UOM: c.ref.uom, ChargeNumber: c.number}
	}
	return l.db.InsertUsageEvents(ctx, evs, now)
}
