package outbound

import (
	"context"
	"sync"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/mappings"
)

// catalogCache keeps the plans and the catalog's mappings (rate plans and
// their charges) that subscription reconciles read over and over: 10,000
// subscriptions on 20 plans read the same 20 plans 10,000 times. An entry is
// good while the catalog's generation stands (store.CatalogGeneration: a
// trigger moves it in the transaction of every change to plans, billing
// periods, charges and catalog mappings, whoever writes them, on any
// replica). A reconcile reads the generation once, then uses the entries of
// that generation or reads the database and keeps what it read. What it
// read after it read generation g is at least as new as g, so it may be kept
// under g; a reconcile that read an older generation than the cache holds
// reads the database and keeps nothing. Misses (a rate plan not mapped yet)
// are not kept. Plans are handed out as copies, so no reconcile can change
// another's.
type catalogCache struct {
	mu        sync.Mutex
	gen       int64
	plans     map[string]engine.Plan
	ratePlans map[string]mappings.Mapping   // rate plan key → its mapping
	charges   map[string][]mappings.Mapping // rate plan key → its charges' mappings
}

// catalogView is one reconcile's read of the catalog: the generation it
// read and the cache it may use.
type catalogView struct {
	r   *Reconcilers
	gen int64
}

// viewKey holds one reconcile's view in its context (withCatalogView), so
// the generation is read once per reconcile.
type viewKey struct{}

// withCatalogView makes the reconciles run under ctx share the first view
// one of them takes.
func withCatalogView(ctx context.Context) context.Context {
	return context.WithValue(ctx, viewKey{}, new(catalogView))
}

// catalog reads the catalog's generation and returns a view on the cache
// (the view ctx already holds, if any).
func (r *Reconcilers) catalog(ctx context.Context) (catalogView, error) {
	held, _ := ctx.Value(viewKey{}).(*catalogView)
	if held != nil && held.r == r {
		return *held, nil
	}
	gen, err := r.db.CatalogGeneration(ctx)
	if err != nil {
		return catalogView{}, err
	}
	if held != nil {
		*held = catalogView{r: r, gen: gen}
	}
	c := r.cat
	c.mu.Lock()
	if gen > c.gen || c.plans == nil {
		c.gen = gen
		c.plans = map[string]engine.Plan{}
		c.ratePlans = map[string]mappings.Mapping{}
		c.charges = map[string][]mappings.Mapping{}
	}
	c.mu.Unlock()
	return catalogView{r: r, gen: gen}, nil
}

// lookup runs get on the cache when the view's generation is the cache's.
func (v catalogView) lookup(get func(c *catalogCache)) bool {
	c := v.r.cat
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != v.gen {
		return false
	}
	get(c)
	return true
}

// plan returns a plan by id.
func (v catalogView) plan(ctx context.Context, id string) (engine.Plan, error) {
	var p engine.Plan
	var ok bool
	v.lookup(func(c *catalogCache) { p, ok = c.plans[id] })
	if ok {
		return p.Clone(), nil
	}
	p, err := v.r.db.GetPlan(ctx, id)
	if err != nil {
		return engine.Plan{}, err
	}
	v.lookup(func(c *catalogCache) { c.plans[id] = p.Clone() })
	return p, nil
}

// ratePlan returns the mapping of a rate plan key (mappings.ErrNotFound if
// it is not mapped yet).
func (v catalogView) ratePlan(ctx context.Context, key string) (mappings.Mapping, error) {
	var m mappings.Mapping
	var ok bool
	v.lookup(func(c *catalogCache) { m, ok = c.ratePlans[key] })
	if ok {
		return m, nil
	}
	m, err := v.r.maps.Get(ctx, mappings.RatePlan, key)
	if err != nil {
		return m, err
	}
	v.lookup(func(c *catalogCache) { c.ratePlans[key] = m })
	return m, nil
}

// charges returns the charge mappings of a rate plan key, in local id order.
func (v catalogView) charges(ctx context.Context, key string) ([]mappings.Mapping, error) {
	var ms []mappings.Mapping
	var ok bool
	v.lookup(func(c *catalogCache) { ms, ok = c.charges[key] })
	if ok {
		return ms, nil
	}
	ms, err := v.r.maps.ByParent(ctx, mappings.Charge, key)
	if err != nil {
		return nil, err
	}
	if len(ms) > 0 {
		v.lookup(func(c *catalogCache) { c.charges[key] = ms })
	}
	return ms, nil
}
