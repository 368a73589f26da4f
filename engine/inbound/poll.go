package inbound

import (
	"context"
	"fmt"
	"time"
)

const pollSetting = "inbound.poll.since"

// PollReport tells what one backstop poll saw.
type PollReport struct {
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	Accounts      int       `json:"accounts"`
	Subscriptions int       `json:"subscriptions"`
	Enqueued      int       `json:"enqueued"`
}

// Poll is the hourly backstop: it lists accounts and subscriptions updated
// since the last poll (Object Query, updatedDate filter, cursor paging) and
// feeds them into the inbox like callouts, so a callout lost after Zuora's
// last retry is still caught. The inbox key includes the updated date, so
// overlapping polls (the filter is ≥) enqueue a change once. The first poll
// looks back Config.PollLookback.
func (s *Service) Poll(ctx context.Context) (PollReport, error) {
	var rep PollReport
	all, err := s.db.Settings(ctx)
	if err != nil {
		return rep, err
	}
	since := s.now().Add(-s.cfg.PollLookback)
	if v := all[pollSetting]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			since = t
		}
	}
	rep.Since, rep.Until = since, since
	bump := func(updated string) {
		if t, err := time.Parse(time.RFC3339, updated); err == nil && t.After(rep.Until) {
			rep.Until = t.UTC()
		}
	}
	for a, err := range s.z.ListAccountsUpdatedSince(ctx, since) {
		if err != nil {
			return rep, fmt.Errorf("poll accounts: %w", err)
		}
		rep.Accounts++
		bump(a.UpdatedDate)
		if created, err := time.Parse(time.RFC3339, a.CreatedDate); err == nil && created.Before(since) {
			continue // an older account that changed: the account-created path does not apply
		}
		acc, err := s.Accept(ctx, Callout{Event: EventAccountCreated, ObjectID: a.ID, NotificationID: "poll:" + a.UpdatedDate, Source: SourcePoll,
			Payload: fmt.Sprintf(`{"AccountId":%q,"AccountNumber":%q}`, a.ID, a.AccountNumber)})
		if err != nil {
			return rep, err
		}
		if !acc.Duplicate {
			rep.Enqueued++
		}
	}
	for q, err := range s.z.ListSubscriptionsUpdatedSince(ctx, since) {
		if err != nil {
			return rep, fmt.Errorf("poll subscriptions: %w", err)
		}
		rep.Subscriptions++
		bump(q.UpdatedDate)
		event := EventSubscriptionChanged
		if q.Version <= 1 {
			event = EventSubscriptionCreated
		}
		acc, err := s.Accept(ctx, Callout{Event: event, ObjectID: q.Name, NotificationID: "poll:" + q.UpdatedDate, Source: SourcePoll,
			Payload: fmt.Sprintf(`{"SubscriptionId":%q,"SubscriptionNumber":%q,"AccountId":%q}`, q.ID, q.Name, q.AccountID)})
		if err != nil {
			return rep, err
		}
		if !acc.Duplicate {
			rep.Enqueued++
		}
	}
	if err := s.db.SetSetting(ctx, pollSetting, rep.Until.UTC().Format(time.RFC3339)); err != nil {
		return rep, err
	}
	s.log.Info().Int("accounts", rep.Accounts).Int("subscriptions", rep.Subscriptions).Int("enqueued", rep.Enqueued).
		Time("since", rep.Since).Msg("inbound backstop poll")
	return rep, nil
}
