package store

import (
	"context"

	"github.com/billsync/billsync/engine"
)

// keptChange is the pending change an ordinary write of s keeps: none once
// s is no longer active or already has the change's state.
func keptChange(c *engine.ScheduledChange, s engine.Subscription) *engine.ScheduledChange {
	if c == nil || s.Status != engine.StatusActive || engine.SameShape(engine.ShapeOf(s), c.Shape()) {
		return nil
	}
	return c
}

// SetScheduledChange sets (or, with nil, cancels) the subscription's pending
// change, replacing the one it had; the change is checked against the
// subscription. The write is a new revision of the subscription (outbox:
// its sync record becomes pending). ErrNotFound when the subscription does
// not exist; a ValidationError when the change does not fit it.
func (db *DB) SetScheduledChange(ctx context.Context, id string, c *engine.ScheduledChange) (engine.Subscription, bool, error) {
	return db.upsertSubscription(ctx, id, func(found bool, s engine.Subscription) (engine.Subscription, bool, error) {
		if !found {
			return s, true, &engine.NotFoundError{Kind: "subscription", ID: id}
		}
		if c == nil {
			s.Scheduled = nil
			return s, false, nil
		}
		nc := *c
		nc.Seq = s.Revision + 1
		if err := s.ValidateChange(nc); err != nil {
			return s, true, err
		}
		s.Scheduled = &nc
		return s, false, nil
	})
}

// ApplyScheduledChange makes the pending change with the given Seq the
// subscription's current state (it ran in Zuora): applied is false, and
// nothing written, when the subscription has no such change (it was
// applied already, replaced or cancelled).
func (db *DB) ApplyScheduledChange(ctx context.Context, id string, seq int) (engine.Subscription, bool, error) {
	applied := false
	s, _, err := db.upsertSubscription(ctx, id, func(found bool, s engine.Subscription) (engine.Subscription, bool, error) {
		if !found {
			return s, true, &engine.NotFoundError{Kind: "subscription", ID: id}
		}
		if s.Scheduled == nil || s.Scheduled.Seq != seq {
			return s, true, nil
		}
		applied = true
		return s.Applied(), false, nil
	})
	if err != nil {
		return engine.Subscription{}, false, err
	}
	if !applied {
		s, err = db.GetSubscription(ctx, id)
	}
	return s, applied, err
}
