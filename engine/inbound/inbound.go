// Package inbound is billsync's Zuora → billsync direction: callouts from
// Zuora land in a durable inbox (de-duplicated on event, object and
// Zuora-Notification-Id) and are processed by workers that re-fetch the object
// from Zuora, because a callout is a hint, not the truth:
//
//   - account created → the local customer (id from a configurable identity
//     custom field, else the account number), its mapping, and billsync's id
//     written back into the account's BillsyncId__c;
//   - subscription created or changed → the customer (through the account path
//     when missing), the plan (Zuora's product, rate plans and charges imported
//     as a local plan when unknown), the local subscription and its mappings,
//     and the customer's access grants.
//
// Objects billsync created outbound (BillsyncId__c set, or a mapping exists)
// are never re-imported, and nothing written here is echoed back to Zuora:
// the outbound sync records and mapping hashes are settled as already in
// Zuora. Per-customer pull, account links, access grants, callout setup in
// the tenant and an hourly backstop poll complete the package.
package inbound

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

// Zuora is the part of the Zuora client the inbound side uses.
type Zuora interface {
	GetAccount(ctx context.Context, key string) (zuora.Account, error)
	UpdateAccount(ctx context.Context, key string, u zuora.AccountUpdate) error
	GetSubscription(ctx context.Context, key string) (zuora.Subscription, error)
	GetOrder(ctx context.Context, number string) (zuora.OrderInfo, error)
	ListSubscriptionsByAccount(ctx context.Context, accountKey string) iter.Seq2[zuora.Subscription, error]
	GetCatalogProduct(ctx context.Context, key string) (zuora.CatalogProduct, error)
	RatePlansOf(ctx context.Context, p zuora.CatalogProduct) iter.Seq2[zuora.CatalogRatePlan, error]
	ListAccountsUpdatedSince(ctx context.Context, since time.Time) iter.Seq2[zuora.QueryAccount, error]
	ListSubscriptionsUpdatedSince(ctx context.Context, since time.Time) iter.Seq2[zuora.QuerySubscription, error]
	CreateEventTrigger(ctx context.Context, idempotencyKey string, t zuora.EventTrigger) (zuora.EventTrigger, error)
	ListEventTriggers(ctx context.Context, f zuora.EventTriggerFilter) iter.Seq2[zuora.EventTrigger, error]
	DeleteEventTrigger(ctx context.Context, id string) error
	CreateNotificationDefinition(ctx context.Context, idempotencyKey string, d zuora.NotificationDefinition) (zuora.NotificationDefinition, error)
	ListNotificationDefinitions(ctx context.Context, f zuora.NotificationDefinitionFilter) iter.Seq2[zuora.NotificationDefinition, error]
	DeleteNotificationDefinition(ctx context.Context, id string) error
	CreateCalloutTemplate(ctx context.Context, idempotencyKey string, t zuora.CalloutTemplate) (zuora.CalloutTemplate, error)
	ListCalloutTemplates(ctx context.Context, name string) iter.Seq2[zuora.CalloutTemplate, error]
	UpdateCalloutTemplate(ctx context.Context, id string, t zuora.CalloutTemplate) error
	CheckTenant(ctx context.Context, need zuora.TenantNeeds) (zuora.TenantReport, error)
	GetInvoice(ctx context.Context, key string) (zuora.Invoice, error)
	GetPayment(ctx context.Context, key string) (zuora.Payment, error)
	GetAccountPaymentMethods(ctx context.Context, accountKey string) (zuora.AccountPaymentMethods, error)
	ListInvoicesByAccount(ctx context.Context, accountID string) iter.Seq2[zuora.Invoice, error]
	ListPaymentsByAccount(ctx context.Context, accountID string) iter.Seq2[zuora.Payment, error]
	InvoiceURL(id string) string
	AccountURL(id string) string
	SubscriptionURL(id string) string
	ProductURL(id string) string
}

// Config tunes the inbound side. The zero value works.
type Config struct {
	// IDField is the custom field carrying billsync's id (default BillsyncId__c;
	// must match the outbound reconcilers' IDField).
	IDField string
	// IdentityField is the account custom field holding the customer's id in
	// an identity provider (e.g. Gigya_Id__c). Empty: the account number is
	// the customer id.
	IdentityField string
	// GraceField is the product custom field holding a suspension grace period
	// in days (default GracePeriod__c).
	GraceField string

	Workers      int           // concurrent inbox entries (default 4)
	Batch        int           // entries claimed per round (default 2×Workers)
	Lease        time.Duration // claim lifetime; an expired claim is taken over (default 2m)
	PollInterval time.Duration // idle wait between claims (default 1s)
	StopTimeout  time.Duration // how long a stop lets the entries under way finish (default 10s)
	MaxAttempts  int           // failed attempts before dead (default 8)
	BackoffUnit  time.Duration // attempt⁴ × unit between retries (default 1s)
	MaxBackoff   time.Duration // longest retry delay (default 1h)
	// PollLookback is how far back the first backstop poll looks (default 2h).
	PollLookback time.Duration

	Logger zerolog.Logger
	// WorkerID names this process's claims (random if empty).
	WorkerID string
	// Now is the clock (default the store's).
	Now func() time.Time
	// Enabled reports whether inbox processing is switched on (nil: always).
	// Switched off, callouts are still accepted and wait in the inbox.
	Enabled func() bool
}

// Service is the inbound side: inbox, processing, pull, links, grants, callout setup and poll.
type Service struct {
	db   *store.DB
	maps *mappings.Store
	z    Zuora
	out  *outbound.Reconcilers
	cfg  Config
	log  zerolog.Logger
	pool *worker.Pool // runs the inbox

	locks keyedMutex

	statsMu sync.Mutex
	stats   Stats

	// hook, when set (tests), runs at named stages of processing; an error
	// aborts the processing there, as a crash would.
	hook func(ctx context.Context, stage string) error
}

// Stats counts inbox outcomes since start.
type Stats struct {
	Accepted, Duplicates, Processed, Failed, Dead int64
}

// New returns the inbound service. out supplies the outbound payload shapes,
// so entities written here are settled as already in Zuora.
func New(db *store.DB, z Zuora, out *outbound.Reconcilers, cfg Config) *Service {
	if cfg.IDField == "" {
		cfg.IDField = "BillsyncId__c"
	}
	if cfg.GraceField == "" {
		cfg.GraceField = "GracePeriod__c"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 2 * cfg.Workers
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.BackoffUnit <= 0 {
		cfg.BackoffUnit = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	if cfg.PollLookback <= 0 {
		cfg.PollLookback = 2 * time.Hour
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = "in-" + randomID()
	}
	if cfg.Now == nil {
		cfg.Now = db.Now
	}
	s := &Service{db: db, maps: db.Mappings(), z: z, out: out, cfg: cfg,
		log: cfg.Logger.With().Str("component", "inbound").Logger()}
	s.pool = worker.NewQueue(inboxQueue{s}, worker.Options{Workers: cfg.Workers, Batch: cfg.Batch, Lease: cfg.Lease,
		PollInterval: cfg.PollInterval, ID: cfg.WorkerID, Logger: s.log, StopTimeout: cfg.StopTimeout})
	return s
}

// Stats returns counters since start.
func (s *Service) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

func (s *Service) count(f func(*Stats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) today() string { return s.now().Format("2006-01-02") }

func (s *Service) at(ctx context.Context, stage string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(ctx, stage)
}

// keyedMutex serialises work on one Zuora account inside this process (other
// processes converge through deterministic ids and retries).
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
