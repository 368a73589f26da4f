// Package outbound reconciles billsync's catalog, customers and subscriptions
// into Zuora: plan/add-on → product, billing period → product rate plan, charge
// → product rate plan charge, customer → account (created with its first
// billable subscription, in one order), subscription → subscription, with every
// change as order actions. Each reconcile is idempotent and level-triggered: it
// compares the desired state with the mappings (and Zuora, when needed) and
// applies the difference.
package outbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"iter"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

// Zuora is the part of the Zuora client the reconcilers use.
type Zuora interface {
	CreateProduct(ctx context.Context, idempotencyKey string, p zuora.Product) (string, error)
	UpdateProduct(ctx context.Context, id string, p zuora.Product) error
	CreateProductRatePlan(ctx context.Context, idempotencyKey string, p zuora.ProductRatePlan) (string, error)
	UpdateProductRatePlan(ctx context.Context, id string, p zuora.ProductRatePlan) error
	CreateProductRatePlanCharge(ctx context.Context, idempotencyKey string, p zuora.ProductRatePlanCharge) (string, error)
	UpdateProductRatePlanCharge(ctx context.Context, id string, p zuora.ProductRatePlanCharge) error
	DeleteProductRatePlanCharge(ctx context.Context, id string) error
	GetCatalogProduct(ctx context.Context, key string) (zuora.CatalogProduct, error)
	ListProductRatePlans(ctx context.Context, productKey string) iter.Seq2[zuora.CatalogRatePlan, error]
	GetAccount(ctx context.Context, key string) (zuora.Account, error)
	UpdateAccount(ctx context.Context, key string, u zuora.AccountUpdate) error
	CreateOrder(ctx context.Context, idempotencyKey string, o zuora.Order) (zuora.OrderResult, error)
	GetSubscription(ctx context.Context, key string) (zuora.Subscription, error)
	UpdateSubscriptionCustomFields(ctx context.Context, number string, fields map[string]any) error
	ScheduledOrders
	CreateCreditMemo(ctx context.Context, idempotencyKey string, req zuora.CreditMemoRequest) (zuora.CreditMemo, error)
	ListCreditMemos(ctx context.Context, accountID string) iter.Seq2[zuora.CreditMemo, error]
	CreditMemoURL(id string) string
	AccountURL(id string) string
	SubscriptionURL(id string) string
	ProductURL(id string) string
}

// Switch names of the sync switches the reconcilers honour.
const (
	SwitchCatalog       = "catalog"
	SwitchCustomers     = "customers"
	SwitchSubscriptions = "subscriptions"
)

// Config tunes how billsync objects appear in Zuora.
type Config struct {
	// IDField is the custom field carrying billsync's id on products, rate
	// plans, charges, accounts and subscriptions (default BillsyncId__c).
	IDField string
	// UnitMap maps a plan's unit of measure to the tenant's (e.g. "seat" →
	// "License"); units not in it are sent as they are (in the tenant's
	// spelling when one active unit matches ignoring case).
	UnitMap map[string]string
	// AccountNumberPrefix and SubscriptionNumberPrefix make deterministic
	// Zuora numbers from billsync ids (default "BS-"), so an object can be
	// found again after a lost response, long after idempotency keys expire.
	AccountNumberPrefix      string
	SubscriptionNumberPrefix string
	// Enabled reports whether a sync switch is on (nil: all on).
	Enabled func(name string) bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// DependencyWait is how long a record waits for a dependency (default 2s).
	DependencyWait time.Duration
	// PublicURL (BILLSYNC_PUBLIC_URL), when set, makes every synced
	// product, account and subscription carry zuora.URLField: a link to its
	// page on billsync's admin, as Stigg writes stiggEntityUrl.
	PublicURL string
	// CreditChargeID (BILLSYNC_ZUORA_CREDIT_CHARGE_ID) is the product rate
	// plan charge credit memos are made from; empty: billsync creates one
	// (credits.go).
	CreditChargeID string
	// AdoptZuoraChanges (on when inbound processing runs): a drift check
	// that finds a subscription version billsync did not write queues it
	// for adoption in the inbox instead of repairing it back.
	AdoptZuoraChanges bool
}

// Reconcilers are the reconcile.Reconcilers of plans, customers and subscriptions.
type Reconcilers struct {
	db   *store.DB
	maps *mappings.Store
	z    Zuora
	cfg  Config
	cat  *catalogCache
}

// New returns the outbound reconcilers.
func New(db *store.DB, z Zuora, cfg Config) *Reconcilers {
	if cfg.IDField == "" {
		cfg.IDField = "BillsyncId__c"
	}
	if cfg.AccountNumberPrefix == "" {
		cfg.AccountNumberPrefix = "BS-"
	}
	if cfg.SubscriptionNumberPrefix == "" {
		cfg.SubscriptionNumberPrefix = "BS-"
	}
	if cfg.Enabled == nil {
		cfg.Enabled = func(string) bool { return true }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DependencyWait <= 0 {
		cfg.DependencyWait = 2 * time.Second
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Reconcilers{db: db, maps: db.Mappings(), z: z, cfg: cfg, cat: &catalogCache{}}
}

// customFields are the custom fields billsync writes on the Zuora object of
// a local record: its id field, the back-link (with PublicURL) and the
// ZUORA__ metadata keys (prefix removed).
func (r *Reconcilers) customFields(kind, id string, md map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range engine.ZuoraFields(md) {
		out[k] = v
	}
	out[r.cfg.IDField] = id
	if r.cfg.PublicURL != "" {
		out[zuora.URLField] = r.cfg.PublicURL + "/admin/entities/" + kind + "/" + url.PathEscape(id)
	}
	return out
}

// fieldNeeds lists the custom fields of m as fields the tenant must define on object.
func fieldNeeds(object string, m map[string]any) []zuora.RequiredField {
	out := make([]zuora.RequiredField, 0, len(m))
	for k := range m {
		out = append(out, zuora.RequiredField{Object: object, Name: k, Type: "text", Length: zuora.IDFieldLength})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Kinds maps entity kinds to their reconcilers, for worker.New.
// ReviveSwitched makes due every record skipped because a switch was off
// whose switch is on now, so turning a switch back on (admin page, API, or a
// changed setting at start) syncs what it held back at once.
func (r *Reconcilers) ReviveSwitched(ctx context.Context) (int64, error) {
	var reasons []string
	for sw, reason := range map[string]string{SwitchCatalog: ReasonSwitchedOffCatalog, SwitchCustomers: ReasonSwitchedOffCustomers,
		SwitchSubscriptions: ReasonSwitchedOffSubscriptions} {
		if r.cfg.Enabled(sw) {
			reasons = append(reasons, reason)
		}
	}
	return r.db.MarkSkippedDue(ctx, reasons)
}

func (r *Reconcilers) Kinds() map[string]reconcile.Reconciler {
	return map[string]reconcile.Reconciler{
		store.EntityPlan:         kindReconciler{r, r.reconcilePlan},
		store.EntityCustomer:     kindReconciler{r, r.reconcileCustomer},
		store.EntitySubscription: kindReconciler{r, r.reconcileSubscription},
		store.EntityCoupon:       kindReconciler{r, r.reconcileCoupon},
		store.EntityCredit:       kindReconciler{r, r.reconcileCredit},
	}
}

// Mappings exposes the mapping store.
func (r *Reconcilers) Mappings() *mappings.Store { return r.maps }

// AccountNumber is the deterministic Zuora account number of a customer.
func (r *Reconcilers) AccountNumber(customerID string) string {
	return number(r.cfg.AccountNumberPrefix, customerID, 50)
}

// SubscriptionNumber is the deterministic Zuora subscription number of a subscription.
func (r *Reconcilers) SubscriptionNumber(subID string) string {
	return number(r.cfg.SubscriptionNumberPrefix, subID, 100)
}

func number(prefix, id string, max int) string {
	if len(prefix)+len(id) <= max {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:])[:24]
}

func (r *Reconcilers) today() string { return r.cfg.Now().UTC().Format("2006-01-02") }

type reconcilerFunc func(ctx context.Context, rec store.SyncRecord, s *session) (worker.Result, error)

// session carries one reconcile's bookkeeping.
type session struct {
	log    zerolog.Logger
	calls  int
	lookup bool // a previous attempt failed: look objects up in Zuora before creating
}

// kindReconciler is the reconcile.Reconciler of one entity kind: it reads
// the entity's sync record (which the caller's lease holds) and runs the
// kind's reconcile on it, or the drift check the record was claimed for.
type kindReconciler struct {
	r *Reconcilers
	f reconcilerFunc
}

// Reconcile implements reconcile.Reconciler.
func (k kindReconciler) Reconcile(ctx context.Context, key reconcile.Key) (reconcile.Result, error) {
	ctx = withCatalogView(ctx)
	rec, claimed := worker.Claimed(ctx, key)
	if !claimed {
		var err error
		if rec, err = k.r.db.GetSyncRecord(ctx, key.Kind, key.ID); err != nil {
			return reconcile.Result{}, err
		}
	}
	if rec.DriftCheck != "" {
		return k.r.checkDrift(ctx, rec)
	}
	// Look objects up in Zuora before creating them when an earlier attempt
	// failed or was cut off (it may have written before its answer was lost).
	s := &session{log: *zerolog.Ctx(ctx), lookup: rec.Attempts > 0 || rec.Claims > 1 || rec.LastErrorCode != "" || rec.LastErrorMessage != ""}
	res, err := k.f(ctx, rec, s)
	res.Calls = s.calls
	return res, err
}
