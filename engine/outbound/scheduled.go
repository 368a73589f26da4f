package outbound

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// Scheduled (future-dated) changes. A subscription's pending change
// (engine.ScheduledChange) is one Zuora scheduled order ("Scheduled
// orders": POST /v1/orders with status Scheduled and schedulingOptions
// {scheduledDatePolicy: SpecificDate, scheduledDate}), named
// deterministically (ScheduledOrderNumber), so a retry after a lost answer
// finds it instead of placing a second one. The reconcile compares the
// pending change with the subscription's scheduled orders (GET
// /v1/orders/subscription/{subscriptionNumber}?status=scheduled) and
// converges both: it cancels billsync's scheduled orders that no longer
// carry the pending change (PUT /v1/orders/{orderNumber}/cancel) and places
// the one that does. An order that ran makes its change the local state
// (store.ApplyScheduledChange), here or on the scheduled-order-completed
// callout (engine/inbound), so nothing is undone or sent twice.

// ScheduledOrders are the order reads and the cancel the scheduled
// changes use (connectors/zuora/scheduled.go).
type ScheduledOrders interface {
	GetOrder(ctx context.Context, number string) (zuora.OrderInfo, error)
	ListSubscriptionOrders(ctx context.Context, subscriptionNumber, status string) iter.Seq2[zuora.OrderInfo, error]
	CancelOrder(ctx context.Context, number, reason string) error
}

// scheduledCallErr starts the error of a failed scheduled-order write; a
// retry after one looks for orders it may have placed.
const scheduledCallErr = "scheduled order"

// ScheduledOrderPrefix starts the numbers of billsync's scheduled orders.
const ScheduledOrderPrefix = "BSO-"

// ScheduledOrderNumber is the Zuora order number of sub's pending change,
// "" when it has none: a hash of the subscription, the state the change
// starts from and the change itself (with its Seq, so a replaced change
// gets a new number even when its content comes back).
func ScheduledOrderNumber(sub engine.Subscription) string {
	if sub.Scheduled == nil {
		return ""
	}
	h := engine.HashJSON(struct {
		ID     string
		Base   engine.Shape
		Change engine.ScheduledChange
	}{sub.ID, engine.ShapeOf(sub).Normalized(), *sub.Scheduled})
	return ScheduledOrderPrefix + h[:24]
}

// scheduledRan is what scheduledFate found: the reconcile stops there
// (the local subscription changed; it runs again on the new revision).
type scheduledRan struct{ res worker.Result }

func (r *scheduledRan) orZero() worker.Result {
	if r == nil {
		return worker.Result{}
	}
	return r.res
}

// scheduledFate reads the subscription's scheduled orders when there may be
// one of billsync's (a pending change, one pushed before, or an earlier
// attempt cut off) and takes in what happened in Zuora to the pending
// change's order: ran (the change becomes the local state), cancelled in
// Zuora (the change is dropped locally, as a cancellation made in Zuora is
// adopted), failed (terminal, with Zuora's status).
func (r *Reconcilers) scheduledFate(ctx context.Context, sub engine.Subscription, rec store.SyncRecord, actual zuora.Subscription, pushed pushedSubscription, s *session) ([]zuora.OrderInfo, *scheduledRan, error) {
	want := ScheduledOrderNumber(sub)
	// A retry after a scheduled-order call failed, or after an attempt that
	// never finished (a crash: a claim without an attempt counted), looks
	// too: the change may have been cancelled since, and the order placed
	// all the same. Retries after ordinary failures of a subscription with
	// nothing scheduled make no extra call.
	cutOff := s.lookup && (strings.Contains(rec.LastErrorMessage, scheduledCallErr) || rec.Claims > rec.Attempts+1)
	if want == "" && pushed.ScheduledOrder == "" && !cutOff {
		return nil, nil, nil
	}
	var listed []zuora.OrderInfo
	s.calls++
	for o, err := range r.z.ListSubscriptionOrders(ctx, actual.SubscriptionNumber, "scheduled") {
		if err != nil {
			return nil, nil, err
		}
		listed = append(listed, o)
	}
	if want == "" || hasOrder(listed, want) || (pushed.ScheduledOrder != want && !s.lookup) {
		return listed, nil, nil
	}
	// Placed before (or maybe, by a cut-off attempt) and no longer scheduled.
	s.calls++
	o, err := r.z.GetOrder(ctx, want)
	if zuora.IsNotFound(err) {
		return listed, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	ch := *sub.Scheduled
	switch o.Status {
	case zuora.OrderStatusCompleted:
		if _, _, err := r.db.ApplyScheduledChange(ctx, sub.ID, ch.Seq); err != nil {
			return nil, nil, err
		}
		return nil, &scheduledRan{worker.Result{Wait: time.Millisecond, WaitReason: fmt.Sprintf(
			"scheduled order %s ran in Zuora on %s: the change is now the subscription's state", want, o.ScheduledDate())}}, nil
	case zuora.OrderStatusCancelled:
		if _, _, err := r.db.SetScheduledChange(ctx, sub.ID, nil); err != nil {
			return nil, nil, err
		}
		return nil, &scheduledRan{worker.Result{Wait: time.Millisecond, WaitReason: fmt.Sprintf(
			"scheduled order %s was cancelled in Zuora: the pending change is dropped, nothing sent back", want)}}, nil
	case zuora.OrderStatusFailed:
		return nil, nil, worker.Terminal{Err: fmt.Errorf("Zuora could not run scheduled order %s (status Failed) for the change %s; change or cancel the pending change",
			want, ch.Describe())}
	case zuora.OrderStatusExecuting:
		return nil, &scheduledRan{worker.Result{Wait: 5 * time.Second, WaitReason: "scheduled order " + want + " is running in Zuora"}}, nil
	}
	// Scheduled (the list was read before it was placed): nothing to do.
	return append(listed, o), nil, nil
}

func hasOrder(os []zuora.OrderInfo, number string) bool {
	for _, o := range os {
		if o.OrderNumber == number {
			return true
		}
	}
	return false
}

// convergeScheduled makes the subscription's scheduled orders carry exactly
// its pending change: billsync's other scheduled orders are cancelled, the
// pending change's order is placed when Zuora lacks it. It runs after the
// current state converged (changed: an order was just sent, so the
// subscription is read again for the rate plans the scheduled order names).
func (r *Reconcilers) convergeScheduled(ctx context.Context, sub engine.Subscription, actual *zuora.Subscription, listed []zuora.OrderInfo, changed bool, pushed *pushedSubscription, s *session) ([]string, error) {
	want := ScheduledOrderNumber(sub)
	if want == "" && pushed.ScheduledOrder == "" && len(listed) == 0 {
		return nil, nil
	}
	var notes []string
	for _, o := range listed {
		switch {
		case o.OrderNumber == want:
		case strings.HasPrefix(o.OrderNumber, ScheduledOrderPrefix):
			s.calls++
			if err := r.z.CancelOrder(ctx, o.OrderNumber, "replaced or cancelled in billsync"); err != nil {
				// A cancel repeated after its answer was lost is refused (the
				// order is Cancelled already): read the order before failing.
				s.calls++
				if got, gerr := r.z.GetOrder(ctx, o.OrderNumber); gerr != nil || got.Status != zuora.OrderStatusCancelled {
					return nil, fmt.Errorf("%s %s (cancel): %w", scheduledCallErr, o.OrderNumber, err)
				}
			}
			notes = append(notes, "cancelled scheduled order "+o.OrderNumber)
		default:
			notes = append(notes, fmt.Sprintf("scheduled order %s (for %s) was placed in Zuora and is left alone", o.OrderNumber, o.ScheduledDate()))
		}
	}
	pushed.ScheduledOrder = want
	if want == "" || hasOrder(listed, want) {
		return notes, nil
	}
	ch := *sub.Scheduled
	next := sub.WithShape(ch.Shape())
	plans, err := r.SubscriptionPlans(ctx, next)
	if err != nil {
		return nil, err
	}
	desired, missing, err := r.desiredRatePlans(ctx, next, plans)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		for _, id := range uniq(missing) {
			if err := r.db.MarkPending(ctx, store.EntityPlan, id); err != nil {
				return nil, err
			}
		}
		return nil, &waitError{fmt.Sprintf("the scheduled change needs plan %s in Zuora first", strings.Join(uniq(missing), ", "))}
	}
	if changed {
		s.calls++
		a, err := r.z.GetSubscription(ctx, actual.SubscriptionNumber)
		if err != nil {
			return nil, err
		}
		*actual = a
	}
	actions, _, err := r.diffOn(ctx, next, desired, *actual, pushed, ch.Date)
	if err != nil {
		return nil, err
	}
	if len(actions) == 0 {
		// Zuora already has the change's state: it is the current state.
		if _, _, err := r.db.ApplyScheduledChange(ctx, sub.ID, ch.Seq); err != nil {
			return nil, err
		}
		pushed.ScheduledOrder = ""
		return append(notes, "the pending change is Zuora's state already: applied"), nil
	}
	if len(actions) > engine.MaxOrderActions {
		return nil, worker.Terminal{Err: fmt.Errorf("the scheduled change needs %d order actions; Zuora takes at most %d in one order", len(actions), engine.MaxOrderActions)}
	}
	order := zuora.Order{OrderDate: r.today(), OrderNumber: want, ExistingAccountNumber: actual.AccountNumber,
		Status:            zuora.OrderStatusScheduled,
		SchedulingOptions: &zuora.SchedulingOptions{ScheduledDatePolicy: "SpecificDate", ScheduledDate: ch.Date},
		ProcessingOptions: &zuora.ProcessingOptions{RunBilling: ptr(false)},
		Subscriptions:     []zuora.OrderSubscription{{SubscriptionNumber: actual.SubscriptionNumber, OrderActions: actions}}}
	s.calls++
	if _, err := r.z.CreateOrder(ctx, zuora.IdempotencyKey("scheduled-order", want), order); err != nil {
		return nil, fmt.Errorf("%s %s: %w", scheduledCallErr, want, err)
	}
	var types []string
	for _, a := range actions {
		types = append(types, a.Type)
	}
	return append(notes, fmt.Sprintf("scheduled order %s for %s: %s", want, ch.Date, strings.Join(types, ", "))), nil
}

// waitError makes the reconcile wait for a dependency (a plan the pending
// change needs) without using up an attempt as a failure would.
type waitError struct{ reason string }

func (e *waitError) Error() string { return e.reason }

// asWait turns a waitError into the result that waits.
func (r *Reconcilers) asWait(err error) (worker.Result, bool) {
	var we *waitError
	if errors.As(err, &we) {
		return worker.Result{Wait: r.cfg.DependencyWait, WaitReason: we.reason}, true
	}
	return worker.Result{}, false
}
