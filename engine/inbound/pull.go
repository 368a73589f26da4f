package inbound

import (
	"context"
	"errors"
	"fmt"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/mappings"
)

// PullResult is what a pull found and did.
type PullResult struct {
	CustomerID    string               `json:"customerId"`
	Accounts      []string             `json:"zuoraAccounts"`
	Subscriptions []PulledSubscription `json:"subscriptions"`
	Grants        []Grant              `json:"grants"`
}

// PulledSubscription is one Zuora subscription a pull reconciled.
type PulledSubscription struct {
	Number         string   `json:"subscriptionNumber"`
	AccountID      string   `json:"zuoraAccountId"`
	SubscriptionID string   `json:"subscriptionId,omitempty"`
	Status         string   `json:"status"`
	Actions        []string `json:"actions,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// PullCustomer fetches the subscriptions of every Zuora account linked to the
// customer and reconciles local subscriptions and access grants (Zephr's user
// sync). A subscription that cannot be taken is reported, not fatal.
func (s *Service) PullCustomer(ctx context.Context, customerID string) (PullResult, error) {
	out := PullResult{CustomerID: customerID, Accounts: []string{}, Subscriptions: []PulledSubscription{}}
	if _, err := s.db.GetCustomer(ctx, customerID); err != nil {
		return out, err
	}
	links, err := s.maps.ByParent(ctx, mappings.Account, customerID)
	if err != nil {
		return out, err
	}
	for _, l := range links {
		out.Accounts = append(out.Accounts, l.ZuoraID)
		if err := s.pullAccount(ctx, l.ZuoraID, &out); err != nil {
			return out, err
		}
	}
	out.Grants, err = s.Grants(ctx, customerID)
	return out, err
}

func (s *Service) pullAccount(ctx context.Context, accountID string, out *PullResult) error {
	unlock := s.locks.lock(accountID)
	defer unlock()
	for zs, err := range s.z.ListSubscriptionsByAccount(ctx, accountID) {
		if err != nil {
			return fmt.Errorf("list subscriptions of account %s: %w", accountID, err)
		}
		ps := PulledSubscription{Number: zs.SubscriptionNumber, AccountID: accountID, Status: zs.Status}
		res, err := s.applySubscription(ctx, zs)
		ps.SubscriptionID, ps.Actions = res.SubscriptionID, res.Actions
		if err != nil {
			if reconcile.Classify(err).Retryable {
				return err // a later pull may succeed: stop here
			}
			ps.Error = err.Error()
		}
		out.Subscriptions = append(out.Subscriptions, ps)
	}
	return nil
}

// PullAccount pulls the customer linked to a Zuora account (id or number).
// An account not linked yet goes through the account-created path first
// (its customer is created or linked), then the customer is pulled.
func (s *Service) PullAccount(ctx context.Context, accountKey string) (PullResult, error) {
	m, err := s.maps.ByZuoraKey(ctx, mappings.Account, accountKey)
	if err == nil {
		return s.PullCustomer(ctx, m.ParentID)
	}
	if !errors.Is(err, mappings.ErrNotFound) {
		return PullResult{}, err
	}
	a, err := s.z.GetAccount(ctx, accountKey)
	if zuora.IsNotFound(err) {
		return PullResult{}, &engine.NotFoundError{Kind: "Zuora account", ID: accountKey}
	}
	if err != nil {
		return PullResult{}, err
	}
	unlock := s.locks.lock(a.BasicInfo.ID)
	res, err := s.ensureCustomer(ctx, a)
	unlock()
	if err != nil {
		return PullResult{}, err
	}
	return s.PullCustomer(ctx, res.CustomerID)
}

// Link is one customer ↔ Zuora account link.
type Link struct {
	CustomerID    string `json:"customerId"`
	AccountID     string `json:"zuoraAccountId"`
	AccountNumber string `json:"zuoraAccountNumber"`
}

// LinkAccount links a Zuora account (id or number) to a customer. A customer
// may have many accounts; an account belongs to one customer (ConflictError
// otherwise). The account keeps its own data (nothing is pushed to it until
// the customer changes) and gets billsync's id in its custom field when empty.
// created is false when the link already existed.
func (s *Service) LinkAccount(ctx context.Context, customerID, accountKey string) (Link, bool, error) {
	c, err := s.db.GetCustomer(ctx, customerID)
	if err != nil {
		return Link{}, false, err
	}
	a, err := s.z.GetAccount(ctx, accountKey)
	if zuora.IsNotFound(err) {
		return Link{}, false, &engine.NotFoundError{Kind: "Zuora account", ID: accountKey}
	}
	if err != nil {
		return Link{}, false, err
	}
	id, number := a.BasicInfo.ID, a.BasicInfo.AccountNumber
	link := Link{CustomerID: customerID, AccountID: id, AccountNumber: number}
	unlock := s.locks.lock(id)
	defer unlock()
	if m, err := s.maps.ByZuoraID(ctx, mappings.Account, id); err == nil {
		if m.ParentID == customerID {
			return link, false, nil
		}
		return Link{}, false, &engine.ConflictError{Field: "accountKey", Message: fmt.Sprintf("Zuora account %s is linked to customer %q; unlink it there first", number, m.ParentID)}
	} else if !errors.Is(err, mappings.ErrNotFound) {
		return Link{}, false, err
	}
	if bid := customString(a.BasicInfo.CustomFields, s.cfg.IDField); bid != "" && bid != customerID {
		return Link{}, false, &engine.ConflictError{Field: "accountKey", Message: fmt.Sprintf("Zuora account %s carries billsync id %q of another customer", number, bid)}
	}
	if err := s.putAccountMapping(ctx, customerID, id, number, s.out.AccountHash(c)); err != nil {
		return Link{}, false, err
	}
	if customString(a.BasicInfo.CustomFields, s.cfg.IDField) == "" {
		if err := s.z.UpdateAccount(ctx, id, zuora.AccountUpdate{CustomFields: map[string]any{s.cfg.IDField: customerID}}); err != nil {
			return link, true, fmt.Errorf("linked, but writing %s to account %s failed: %w", s.cfg.IDField, number, err)
		}
	}
	return link, true, nil
}

// UnlinkAccount removes a customer's link to a Zuora account (id or number)
// and the grants that came through it.
func (s *Service) UnlinkAccount(ctx context.Context, customerID, accountKey string) error {
	if _, err := s.db.GetCustomer(ctx, customerID); err != nil {
		return err
	}
	links, err := s.maps.ByParent(ctx, mappings.Account, customerID)
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.ZuoraID != accountKey && l.ZuoraNumber != accountKey {
			continue
		}
		if err := s.maps.Delete(ctx, mappings.Account, l.LocalID); err != nil {
			return err
		}
		return s.db.DeleteGrantsOfAccount(ctx, customerID, l.ZuoraID)
	}
	return &engine.NotFoundError{Kind: "link to Zuora account", ID: accountKey}
}

// Links lists a customer's Zuora accounts.
func (s *Service) Links(ctx context.Context, customerID string) ([]Link, error) {
	if _, err := s.db.GetCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	ms, err := s.maps.ByParent(ctx, mappings.Account, customerID)
	out := make([]Link, 0, len(ms))
	for _, m := range ms {
		out = append(out, Link{CustomerID: customerID, AccountID: m.ZuoraID, AccountNumber: m.ZuoraNumber})
	}
	return out, err
}
