package outbound

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// RecheckReport summarises an hourly re-check.
type RecheckReport struct {
	Checked   int // synced and skipped records looked at
	Unchanged int // synced records whose desired payload still matches what was pushed
	Due       int // records made due for a full reconcile
}

func (r RecheckReport) String() string {
	return fmt.Sprintf("re-checked %d records: %d unchanged, %d due for a reconcile", r.Checked, r.Unchanged, r.Due)
}

const recheckPage = 500

// Recheck is the hourly reconcile: it computes the desired payload hash of
// every synced plan, customer and subscription in bulk (a few queries per 500
// records) and makes due only those whose hash differs from what was pushed,
// plus every skipped record (its reason may no longer hold). A record the
// workers would reconcile as "unchanged" without a Zuora call is left alone,
// so a quiet hour costs a few queries instead of a reconcile per record.
func (r *Reconcilers) Recheck(ctx context.Context) (RecheckReport, error) {
	plans, err := r.allPlans(ctx)
	if err != nil {
		return RecheckReport{}, err
	}
	// Each kind is paged on its own goroutine (keyset paging is sequential);
	// the pages' checks run on a few more, so the database's answers and
	// the hashing overlap instead of taking turns.
	g, gctx := errgroup.WithContext(ctx)
	pages := make(chan []store.SyncRecord)
	var mu sync.Mutex
	var rep RecheckReport
	var readers sync.WaitGroup
	for _, kind := range []string{store.EntityPlan, store.EntityCoupon, store.EntityCustomer, store.EntitySubscription} {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			var after int64
			for {
				recs, err := r.db.RecheckPage(gctx, kind, after, recheckPage)
				if err != nil || len(recs) == 0 {
					return err
				}
				after = recs[len(recs)-1].ID
				select {
				case pages <- recs:
				case <-gctx.Done():
					return gctx.Err()
				}
				if len(recs) < recheckPage {
					return nil
				}
			}
		})
	}
	go func() { readers.Wait(); close(pages) }()
	for range recheckCheckers {
		g.Go(func() error {
			for recs := range pages {
				page, err := r.recheckPage(gctx, recs, plans)
				mu.Lock()
				rep.Checked += page.Checked
				rep.Unchanged += page.Unchanged
				rep.Due += page.Due
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return rep, err
}

// recheckCheckers is how many pages are checked at once.
const recheckCheckers = 3

// recheckPage checks one page of records of one kind and makes due those
// that changed.
func (r *Reconcilers) recheckPage(ctx context.Context, recs []store.SyncRecord, plans map[string]engine.Plan) (RecheckReport, error) {
	rep := RecheckReport{Checked: len(recs)}
	unchanged, err := r.unchanged(ctx, recs[0].EntityKind, recs, plans)
	if err != nil {
		return rep, err
	}
	var due []int64
	for _, rec := range recs {
		if unchanged[rec.ID] {
			rep.Unchanged++
		} else {
			due = append(due, rec.ID)
		}
	}
	n, err := r.db.MarkDueIDs(ctx, due)
	rep.Due = int(n)
	return rep, err
}

func (r *Reconcilers) allPlans(ctx context.Context) (map[string]engine.Plan, error) {
	out := map[string]engine.Plan{}
	o := store.ListOptions{Limit: 500, IncludeArchived: true}
	for {
		page, err := r.db.ListPlans(ctx, o)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Items {
			out[p.ID] = p
		}
		if page.Next == "" {
			return out, nil
		}
		o.After = page.Next
	}
}

// unchanged returns the ids of the synced records whose reconcile would end
// "unchanged" without a Zuora call (the same checks, in bulk).
func (r *Reconcilers) unchanged(ctx context.Context, kind string, recs []store.SyncRecord, plans map[string]engine.Plan) (map[int64]bool, error) {
	out := map[int64]bool{}
	var synced []store.SyncRecord
	ids := make([]string, 0, len(recs))
	for _, rec := range recs {
		if rec.State == store.StateSynced && rec.PayloadHash != "" {
			synced = append(synced, rec)
			ids = append(ids, rec.EntityID)
		}
	}
	if len(synced) == 0 {
		return out, nil
	}
	switch kind {
	case store.EntityPlan:
		if !r.cfg.Enabled(SwitchCatalog) {
			return out, nil
		}
		for _, rec := range synced {
			p, ok := plans[rec.EntityID]
			if ok && rec.ZuoraID != "" && engine.HashJSON(r.CatalogPayloads(p)) == rec.PayloadHash {
				out[rec.ID] = true
			}
		}
	case store.EntityCoupon:
		if !r.cfg.Enabled(SwitchCatalog) {
			return out, nil
		}
		coupons, err := r.db.CouponsByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, rec := range synced {
			c, ok := coupons[rec.EntityID]
			if ok && rec.ZuoraID != "" && engine.HashJSON(r.CouponPayloads(c)) == rec.PayloadHash {
				out[rec.ID] = true
			}
		}
	case store.EntityCustomer:
		if !r.cfg.Enabled(SwitchCustomers) {
			return out, nil
		}
		custs, err := r.db.CustomersByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		accts, err := r.maps.ByParents(ctx, mappings.Account, ids)
		if err != nil {
			return nil, err
		}
		for _, rec := range synced {
			c, ok := custs[rec.EntityID]
			if !ok {
				continue
			}
			acct, ok := r.pickBillingAccount(rec.EntityID, accts[rec.EntityID])
			h := r.AccountHash(c)
			if ok && acct.PayloadHash == h && rec.PayloadHash == h {
				out[rec.ID] = true
			}
		}
	case store.EntitySubscription:
		if !r.cfg.Enabled(SwitchSubscriptions) {
			return out, nil
		}
		subs, err := r.db.SubscriptionsByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		mapped, err := r.maps.Mapped(ctx, mappings.Subscription, ids)
		if err != nil {
			return nil, err
		}
		for _, rec := range synced {
			sub, ok := subs[rec.EntityID]
			if !ok || !mapped[sub.ID] {
				continue
			}
			ps := map[string]engine.Plan{}
			complete := true
			for _, id := range append([]string{sub.PlanID}, addOnIDs(sub)...) {
				p, ok := plans[id]
				if !ok {
					complete = false
					break
				}
				ps[id] = p
			}
			if !complete || subscriptionSkipReason(sub, ps[sub.PlanID], true) != "" {
				continue
			}
			if SubscriptionHash(sub, ps) == rec.PayloadHash {
				out[rec.ID] = true
			}
		}
	}
	return out, nil
}

// pickBillingAccount applies billingAccount's rule to already-read mappings.
func (r *Reconcilers) pickBillingAccount(customerID string, ms []mappings.Mapping) (mappings.Mapping, bool) {
	if len(ms) == 0 {
		return mappings.Mapping{}, false
	}
	want := r.AccountNumber(customerID)
	for _, m := range ms {
		if m.ZuoraNumber == want {
			return m, true
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].CreatedAt.Before(ms[j].CreatedAt) })
	return ms[0], true
}
