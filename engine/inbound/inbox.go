package inbound

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/retry"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// Events the inbox knows.
const (
	EventAccountCreated      = "account_created"
	EventSubscriptionCreated = "subscription_created"
	EventSubscriptionChanged = "subscription_changed"
	// Billing events (issue 16).
	EventSubscriptionCancelled = "subscription_cancelled"
	EventInvoicePosted         = "invoice_posted"
	EventInvoicePaid           = "invoice_paid"
	EventPaymentFailed         = "payment_failed"
	EventOrderCompleted        = "scheduled_order_completed"
	EventAccountUpdated        = "account_updated"
)

// Sources of inbox entries.
const (
	SourceCallout = "callout"
	SourcePoll    = "poll"
)

// Inbox entry states.
const (
	StatePending  = store.StatePending
	StateInFlight = store.StateInFlight
	StateDone     = store.InboxDone
	StateFailed   = store.StateFailed
	StateDead     = store.StateDead
)

// Callout is one accepted notification (or poll hit) to write to the inbox.
type Callout struct {
	Event    string // EventAccountCreated, …
	ObjectID string // Zuora account id/number or subscription number/id
	// NotificationID is Zuora-Notification-Id (the same across Zuora's
	// retries of one notification). Empty: the entry is never de-duplicated.
	NotificationID string
	RequestID      string // Zuora-Request-Id, informational (changes per retry)
	Source         string // SourceCallout (default) or SourcePoll
	Payload        string // the body as received (flat JSON)
}

// Accepted tells what Accept did.
type Accepted struct {
	ID        int64 `json:"id"`
	Duplicate bool  `json:"duplicate"`
}

// InboxEntry is one inbox row.
type InboxEntry = store.InboxEntry

// Accept writes a callout to the inbox durably (one INSERT … ON CONFLICT) and
// wakes a worker. A repeated (event, object, notification id) only counts
// another delivery.
func (s *Service) Accept(ctx context.Context, c Callout) (Accepted, error) {
	if c.Event == "" || c.ObjectID == "" {
		return Accepted{}, errors.New("inbound: event and object id are required")
	}
	if c.Source == "" {
		c.Source = SourceCallout
	}
	if c.NotificationID == "" {
		// Without Zuora's stable id there is no safe key: keep every delivery
		// (processing is idempotent; a lost event is worse than a repeated one).
		c.NotificationID = "none-" + randomID()
	}
	if c.Payload == "" {
		c.Payload = "{}"
	}
	id, dup, err := s.db.AcceptInbox(ctx, InboxEntry{Event: c.Event, ObjectID: c.ObjectID, NotificationID: c.NotificationID,
		Source: c.Source, Payload: c.Payload, RequestID: c.RequestID})
	if err != nil {
		return Accepted{}, err
	}
	a := Accepted{ID: id, Duplicate: dup}
	if a.Duplicate {
		s.count(func(st *Stats) { st.Duplicates++ })
	} else {
		s.count(func(st *Stats) { st.Accepted++ })
		s.Kick()
	}
	return a, nil
}

// Kick wakes the workers to claim now.
func (s *Service) Kick() { s.pool.Kick() }

// Run processes the inbox until ctx ends, on the same pool machinery as the
// sync records (leases extended while an entry is processed, a deadline
// before the lease could lapse, panics as retryable failures); then it lets
// the entries under way finish and hands back its claims. In-flight claims
// of a crashed process are taken over by any process once their lease
// lapses.
func (s *Service) Run(ctx context.Context) error { return s.pool.Run(ctx) }

// Paused reports whether processing is paused because Zuora refused
// billsync's credentials, with Zuora's message.
func (s *Service) Paused() (bool, string) { return s.pool.Paused() }

// Drain processes entries until none is due (entries waiting for a later
// retry are left), and returns how many were processed.
func (s *Service) Drain(ctx context.Context) (int, error) { return s.pool.Drain(ctx) }

// inboxQueue is the inbox as a worker.Queue.
type inboxQueue struct{ s *Service }

// Claim takes up to n due entries: pending or failed ones whose time has
// come, and in-flight ones whose lease lapsed (a crashed process), each with
// a new lease token.
func (q inboxQueue) Claim(ctx context.Context, holder string, n int, lease time.Duration) ([]worker.Job, error) {
	if q.s.cfg.Enabled != nil && !q.s.cfg.Enabled() {
		return nil, nil
	}
	entries, err := q.s.db.ClaimInbox(ctx, holder, n, lease)
	jobs := make([]worker.Job, len(entries))
	for i, e := range entries {
		jobs[i] = worker.Job{Lease: store.Lease{RecordID: e.ID, Token: e.LeaseToken}, Kind: e.Event, ID: e.ObjectID, Item: e}
	}
	return jobs, err
}

// Heartbeat extends the leases holder still holds.
func (q inboxQueue) Heartbeat(ctx context.Context, holder string, leases []store.Lease, lease time.Duration) (map[int64]bool, error) {
	return q.s.db.HeartbeatInbox(ctx, holder, leases, lease)
}

// Release hands back the entries holder still holds (soft stop).
func (q inboxQueue) Release(ctx context.Context, holder string) error {
	return q.s.db.ReleaseInbox(ctx, holder)
}

// Work processes one entry by re-fetching its object from Zuora.
func (q inboxQueue) Work(ctx context.Context, job worker.Job) (any, error) {
	r := job.Item.(InboxEntry)
	switch r.Event {
	case EventAccountCreated:
		res, err := q.s.syncAccount(ctx, r.ObjectID)
		return res.String(), err
	case EventSubscriptionCreated, EventSubscriptionChanged, EventSubscriptionCancelled:
		res, err := q.s.syncSubscription(ctx, r.ObjectID)
		return res.String(), err
	case EventInvoicePosted, EventInvoicePaid:
		res, err := q.s.syncInvoice(ctx, r.ObjectID)
		return res.String(), err
	case EventPaymentFailed:
		res, err := q.s.syncPayment(ctx, r.ObjectID)
		return res.String(), err
	case EventAccountUpdated:
		res, err := q.s.syncAccountUpdate(ctx, r.ObjectID)
		return res.String(), err
	case EventOrderCompleted:
		res, err := q.s.syncScheduledOrder(ctx, r.ObjectID, r.Payload)
		return res.String(), err
	}
	return "", reconcile.Terminal{Err: fmt.Errorf("unknown inbox event %q", r.Event)}
}

// Finish records the outcome of a claimed entry, or refuses with
// store.ErrLeaseLost when holder's lease lapsed or was superseded.
func (q inboxQueue) Finish(ctx context.Context, holder string, job worker.Job, a worker.Attempt) error {
	s := q.s
	e := job.Item.(InboxEntry)
	var o store.InboxOutcome
	var outcome func(st *Stats)
	if a.Err == nil {
		o.State, o.Result = StateDone, fmt.Sprint(a.Result)
		outcome = func(st *Stats) { st.Processed++ }
	} else {
		o.Attempts, o.Error = e.Attempts+1, a.Err.Error()
		f := reconcile.Classify(a.Err)
		switch {
		case f.Credentials:
			// The operator's to fix: the entry waits without using up an attempt.
			o.State, o.Attempts = StateFailed, e.Attempts
			o.NextAttempt = s.now().Add(reconcile.CredentialsPause)
			outcome = func(st *Stats) { st.Failed++ }
		case !f.Retryable || o.Attempts >= s.cfg.MaxAttempts:
			o.State = StateDead
			outcome = func(st *Stats) { st.Dead++ }
		default:
			o.State = StateFailed
			o.NextAttempt = s.now().Add(retry.Policy{Unit: s.cfg.BackoffUnit, Max: s.cfg.MaxBackoff}.Delay(o.Attempts, f.RetryAfter))
			outcome = func(st *Stats) { st.Failed++ }
		}
		a.Log.Warn().Err(a.Err).Int("attempt", o.Attempts).Msg("inbox entry failed")
	}
	if err := s.db.FinishInbox(ctx, e, holder, o); err != nil {
		return err
	}
	s.count(outcome)
	return nil
}

// LeaseLost is counted and logged by the pool; the entry is retried by
// whoever holds it now.
func (q inboxQueue) LeaseLost(worker.Job, worker.Attempt) {}

// InboxFilter selects inbox entries.
type InboxFilter struct {
	State   string
	Event   string
	AfterID int64
	Limit   int
}

// ListInbox returns entries by id (newest last) and the next cursor (0 at the end).
func (s *Service) ListInbox(ctx context.Context, f InboxFilter) ([]InboxEntry, int64, error) {
	return s.db.ListInbox(ctx, store.InboxFilter{State: f.State, Event: f.Event, AfterID: f.AfterID, Limit: f.Limit})
}

// GetInbox returns one entry.
func (s *Service) GetInbox(ctx context.Context, id int64) (InboxEntry, error) {
	return s.db.GetInbox(ctx, id)
}

// RetryInbox makes an entry due now with its attempts reset (any state but in flight).
func (s *Service) RetryInbox(ctx context.Context, id int64) (InboxEntry, error) {
	e, err := s.GetInbox(ctx, id)
	if err != nil {
		return e, err
	}
	if e.State == StateInFlight {
		return e, &engine.ConflictError{Field: "state", Message: "the entry is being processed; retry it when it has finished"}
	}
	if _, err := s.db.RetryInbox(ctx, id); err != nil {
		return e, err
	}
	s.Kick()
	return s.GetInbox(ctx, id)
}

// InboxCounts returns the number of entries per state.
func (s *Service) InboxCounts(ctx context.Context) (map[string]int64, error) {
	return s.db.InboxCounts(ctx)
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PruneInbox deletes processed (done) entries older than age, and reports how
// many; failed and dead entries are kept for a person to look at.
func (s *Service) PruneInbox(ctx context.Context, age time.Duration) (int64, error) {
	return s.db.PruneInbox(ctx, s.now().Add(-age))
}
