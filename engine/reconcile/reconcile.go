// Package reconcile is the contract between the queue and the code that
// brings one entity in line with Zuora (controller-runtime's
// pkg/reconcile/reconcile.go, adapted): a reconciler is called with the key
// of the entity, returns a Result, or an error that Classify sorts into
// retryable or terminal once, for every queue.
package reconcile

import (
	"context"
	"errors"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/mappings"
)

// Key names the entity to reconcile.
type Key struct {
	Kind string // store.EntityPlan, store.EntityCustomer, store.EntitySubscription
	ID   string
}

func (k Key) String() string { return k.Kind + "/" + k.ID }

// Result is what a successful reconcile achieved. The queue ignores it when
// the reconcile returns an error.
type Result struct {
	// Skipped, when set, records the record as "will not be synced" with this reason.
	Skipped string
	// Wait, when set, leaves the record pending for this long without counting an
	// attempt: a dependency is not ready yet (controller-runtime's RequeueAfter).
	Wait       time.Duration
	WaitReason string
	// Drifted marks the record drifted (Zuora differs) with Detail as the reason.
	Drifted bool

	PayloadHash string
	PushedState string
	ZuoraID     string
	ZuoraNumber string
	ZuoraURL    string
	Detail      string
	Calls       int
	// Quiet leaves the attempt out of the record's history (a drift check
	// that found Zuora matching).
	Quiet bool
}

// Reconciler brings one entity of one kind in line with Zuora. The same key
// never runs twice at once (the queue's lease guarantees it); ctx ends before
// the lease could lapse. The logger of the attempt is zerolog.Ctx(ctx).
type Reconciler interface {
	Reconcile(ctx context.Context, key Key) (Result, error)
}

// Func adapts a function to Reconciler.
type Func func(ctx context.Context, key Key) (Result, error)

// Reconcile calls f.
func (f Func) Reconcile(ctx context.Context, key Key) (Result, error) { return f(ctx, key) }

// Classified is an error that says itself whether retrying may help; it
// overrides what Classify would decide from the errors it wraps.
type Classified interface {
	error
	Retryable() bool
}

// Terminal wraps an error that retrying cannot fix.
type Terminal struct{ Err error }

func (t Terminal) Error() string   { return t.Err.Error() }
func (t Terminal) Unwrap() error   { return t.Err }
func (t Terminal) Retryable() bool { return false }

// Failure is what Classify decided about an error.
type Failure struct {
	Retryable  bool
	Code       string // Zuora's error code, if any
	Message    string // Zuora's message as is, else the error's text
	RequestID  string // Zuora's request id, if any
	RetryAfter time.Duration
	// Credentials: Zuora refused billsync's credentials or permissions
	// (401/403, or no token could be minted). That is the operator's to fix,
	// not the record's: the work pauses (CredentialsPause) and the record
	// waits without using up an attempt.
	Credentials bool
}

// CredentialsPause is how long work pauses after Zuora refused billsync's
// credentials; then one attempt probes whether a token can be minted again.
const CredentialsPause = 30 * time.Second

// Classify decides, once for every queue, whether err is worth retrying and
// extracts what Zuora said. The outermost error that classifies itself
// (Terminal, or any Classified) decides; billsync's own permanent
// conflicts are terminal (a Zuora object already mapped to another local id,
// an engine.ConflictError or engine.ValidationError: the data or the
// mapping must change first, and that change makes the record due again);
// else a Zuora error is retryable when Zuora says so (429, 5xx, lock contention, timeouts, connection
// failures) or when its outcome is unknown (the retry looks before it
// writes), and terminal otherwise (validation, not found, auth); any other
// error (the database, a cancelled context) is retryable.
func Classify(err error) Failure {
	if err == nil {
		return Failure{}
	}
	f := Failure{Retryable: true, Message: err.Error()}
	ze, isZuora := zuora.AsError(err)
	if isZuora {
		f.Retryable = ze.Retryable || ze.Ambiguous
		f.Code, f.RequestID, f.RetryAfter, f.Credentials = ze.Code, ze.RequestID, ze.RetryAfter, ze.Auth
		if ze.Message != "" {
			f.Message = ze.Message
		}
	}
	var ce *engine.ConflictError
	var ve *engine.ValidationError
	if errors.Is(err, mappings.ErrConflict) || errors.As(err, &ce) || errors.As(err, &ve) {
		f.Retryable = false
	}
	var c Classified
	if errors.As(err, &c) {
		f.Retryable = c.Retryable()
	}
	return f
}
