// Package usage is billsync's usage ledger (DESIGN.md §3): it ingests metered
// events exactly once, aggregates them per (subscription, charge, hour UTC)
// window, seals windows into upload rows and uploads the rows to Zuora
// (POST /v1/action/create, at most 50 per call) exactly once.
//
// The guarantees, and where they come from:
//
//   - An event is stored once: a unique index on its idempotency key; the
//     INSERT … ON CONFLICT DO NOTHING and the window's quantity change happen
//     in one transaction, so a window's quantity is always the sum of its
//     distinct events.
//   - A unit is sealed once: sealing moves a window's quantity - sealed
//     quantity into a new upload row and sets sealed quantity = quantity in one
//     transaction with the window row locked. The first row carries the total,
//     later rows (late events) carry the difference only: corrections.
//   - A row is uploaded once: before the call, rows are marked "sending" with a
//     batch id that is also the Idempotency-Key (derived from the sorted row
//     ids and their attempt numbers). Until Zuora answers, the batch is resent
//     as is, with the same key, however often billsync crashes or times out.
//     A row that Zuora rejects is retried alone, in a new batch with a new
//     key; the rows that succeeded are never resent. When a batch's outcome
//     stays unknown for longer than Zuora keeps idempotency keys (24 h), the
//     rows are looked up in Zuora (by their description, which names the
//     window) before anything is sent again.
//
// Upload batches are work on the one queue (engine/worker): a sender claims
// a batch with a lease (a new token per claim), the pool extends the lease
// while the call runs and ends the attempt before the lease could lapse, and
// the outcome is recorded only by the holder of an unlapsed lease. Retries
// wait by engine/retry's policy; engine/reconcile.Classify decides what is
// retryable; a row Zuora refuses MaxAttempts times is held for a person.
// All SQL is in engine/store (usage.go).
package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"iter"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/retry"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

// Switch is the name of the usage sync switch (read through Config.Enabled).
const Switch = "usage"

// MaxBatch is the largest number of events one Ingest call accepts.
const MaxBatch = 1000

// Zuora is the part of the Zuora client the ledger uses.
type Zuora interface {
	CreateUsage(ctx context.Context, idempotencyKey string, records []zuora.Usage) ([]zuora.ActionResult, error)
	ImportUsage(ctx context.Context, idempotencyKey string, records []zuora.Usage) (zuora.UsageImport, error)
	GetUsageImportStatus(ctx context.Context, statusURL string) (zuora.UsageImportStatus, error)
	ListUsageByAccount(ctx context.Context, accountKey string) iter.Seq2[zuora.UsageRecord, error]
	GetSubscription(ctx context.Context, key string) (zuora.Subscription, error)
	ListRatePlanChargesByNumber(ctx context.Context, numbers []string) iter.Seq2[zuora.QueryRatePlanCharge, error]
}

// ChargeRecorder stores a subscription's charge numbers from a Zuora read;
// *outbound.Reconcilers implements it.
type ChargeRecorder interface {
	RecordCharges(ctx context.Context, subID string, zs zuora.Subscription) error
}

// Config tunes the ledger. Zero values take the defaults.
type Config struct {
	// Grace is how long after its hour ends a window waits before it is
	// sealed by the hourly job (default 15 min).
	Grace time.Duration
	// MaxFuture is how far in the future an event's timestamp may be
	// (default 5 min).
	MaxFuture time.Duration
	// KeyLifetime is how long Zuora keeps idempotency keys (default 24 h): a
	// batch whose outcome is unknown for longer is looked up in Zuora before
	// anything is sent again.
	KeyLifetime time.Duration
	// ClaimTTL is the lease of a batch being sent (default 10 min): the pool
	// extends it while the call runs (every third of it) and cuts the attempt
	// off before it could lapse; after a crash another sender resends the
	// batch once the lease lapsed.
	ClaimTTL time.Duration
	// MaxAttempts is how often Zuora may refuse a row before it is held for
	// a person (default 8). Batches whose outcome is unknown are never given
	// up: they are resent with the same key, then looked up (KeyLifetime).
	MaxAttempts int
	// OnBatch, if set, observes every attempt at a batch: its outcome
	// ("stored", "refused", "unknown", "looked_up", "lease_lost", and
	// "import_pending" for a usage file accepted or still being imported) and rows.
	OnBatch func(outcome string, rows int)
	// RetryBase and RetryMax are the unit and maximum of the retry policy of
	// failed rows and batches (engine/retry: attempt⁴ × unit with jitter, at
	// least Zuora's Retry-After; defaults 1 s and 1 h, as for sync records).
	RetryBase time.Duration
	RetryMax  time.Duration
	// StopTimeout is how long Run lets the calls under way finish after its
	// context ends (default 10s).
	StopTimeout time.Duration
	// Senders is the number of batches sent concurrently (the pool's
	// workers; default zuora.DefaultConcurrencyLimit): as many as Zuora
	// takes calls at once. Every call of the ledger is of the client's usage
	// share (zuora.ShareUsage): while reconciles wait for Zuora too, the
	// usage calls hold only that share of the tenant's limit.
	Senders int
	// ImportThreshold is the backlog (due pending rows) from which new rows
	// go to Zuora as usage files (POST /v1/usage, at most ImportRows rows
	// and 4 MB each) instead of calls of 50 (default 20,000; negative:
	// never). Rows that were tried before always go by calls.
	ImportThreshold int
	// ImportRows bounds the rows of one usage file (default 25,000).
	ImportRows int
	// ImportPoll is how often an accepted usage file's import status is
	// read until Zuora says it ended (default 5 s).
	ImportPoll time.Duration
	// ViewTTL is how long a subscription's cached validation view lives
	// (default 30 s). A charge missing from the view reloads it once.
	ViewTTL time.Duration
	// Enabled reports whether a sync switch is on (nil: all on). When
	// Switch is off, events are still ingested and sealed but nothing is
	// uploaded.
	Enabled func(name string) bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Charges records charge numbers after a subscription read (optional:
	// without it, rows whose charge number is unknown wait for the outbound
	// engine to record it).
	Charges ChargeRecorder
	// Logger receives the ledger's logs.
	Logger zerolog.Logger
	// Owner names this process in batch claims (default a random id).
	Owner string
}

// Ledger is the usage ledger.
type Ledger struct {
	db   *store.DB
	maps *mappings.Store
	z    Zuora
	cfg  Config
	log  zerolog.Logger

	viewMu sync.Mutex
	views  map[string]*subView

	pool *worker.Pool // Run's: sends the batches the hourly job queues
}

// New returns a ledger on db that uploads with z.
func New(db *store.DB, z Zuora, cfg Config) *Ledger {
	if cfg.Grace <= 0 {
		cfg.Grace = 15 * time.Minute
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = 5 * time.Minute
	}
	if cfg.KeyLifetime <= 0 {
		cfg.KeyLifetime = 24 * time.Hour
	}
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = 10 * time.Minute
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Hour
	}
	if cfg.Senders <= 0 {
		cfg.Senders = zuora.DefaultConcurrencyLimit
	}
	if cfg.ImportThreshold == 0 {
		cfg.ImportThreshold = 20_000
	}
	if cfg.ImportRows <= 0 {
		cfg.ImportRows = 25_000
	}
	if cfg.ImportPoll <= 0 {
		cfg.ImportPoll = 5 * time.Second
	}
	if cfg.ViewTTL <= 0 {
		cfg.ViewTTL = 30 * time.Second
	}
	if cfg.Enabled == nil {
		cfg.Enabled = func(string) bool { return true }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		cfg.Owner = "usage-" + randomID()
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.OnBatch == nil {
		cfg.OnBatch = func(string, int) {}
	}
	l := &Ledger{db: db, maps: db.Mappings(), z: z, cfg: cfg, log: cfg.Logger.With().Str("component", "usage").Logger(),
		views: map[string]*subView{}}
	l.pool, _ = l.newPool(&Report{}, "", l.now, cfg.Owner+"/usage", false)
	return l
}

// Run sends due upload batches until ctx ends (serve runs it): those the
// hourly job queued, and those whose outcome is unknown once their retry is
// due. Then it lets the calls under way finish and hands back its claims.
func (l *Ledger) Run(ctx context.Context) error { return l.pool.Run(ctx) }

// Kick wakes Run to claim now.
func (l *Ledger) Kick() { l.pool.Kick() }

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (l *Ledger) now() time.Time { return l.cfg.Now().UTC() }

// backoff is the wait after the attempts-th failed attempt (the shared retry
// policy), at least retryAfter.
func (l *Ledger) backoff(attempts int, retryAfter time.Duration) time.Duration {
	return retry.Policy{Unit: l.cfg.RetryBase, Max: l.cfg.RetryMax}.Delay(attempts, retryAfter)
}

// ErrUnknownSubscription is returned for a subscription billsync does not know.
var ErrUnknownSubscription = errors.New("unknown subscription")

// Upload row states.
const (
	RowPending = store.UsageRowPending // waiting to be sent (or to be retried)
	RowSending = store.UsageRowSending // in a batch whose outcome is not known yet
	RowSent    = store.UsageRowSent    // Zuora stored it; ZuoraID is set
	// RowHeld needs a person: the charge it was recorded against can never
	// get a Zuora charge number as things are (it left the subscription
	// before reaching Zuora), or Zuora refused the row MaxAttempts times.
	// LastError says so; the subscription's manual "Sync usage to Zuora"
	// puts its held rows back in line.
	RowHeld = store.UsageRowHeld
)
