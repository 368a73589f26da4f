package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// Result lists what processing did, for the inbox and the API.
type Result struct {
	CustomerID     string   `json:"customerId,omitempty"`
	SubscriptionID string   `json:"subscriptionId,omitempty"`
	Actions        []string `json:"actions"`
}

func (r Result) String() string { return strings.Join(r.Actions, "; ") }

func (r *Result) add(format string, args ...any) {
	r.Actions = append(r.Actions, fmt.Sprintf(format, args...))
}

// zuoraErr names the operation that failed; reconcile.Classify decides
// whether a retry may help (429, 5xx, timeouts) or not (a missing object, a
// rejected request).
func zuoraErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

func customString(cf map[string]any, name string) string {
	if name == "" || cf == nil {
		return ""
	}
	switch v := cf[name].(type) {
	case string:
		return strings.TrimSpace(v)
	case nil:
		return ""
	default:
		return strings.TrimSpace(fmt.Sprint(v))
	}
}

var invalidIDChars = regexp.MustCompile(`[^A-Za-z0-9._:-]+`)

// localID makes a valid billsync id from a Zuora value: invalid characters
// become '-', and values that still do not fit get a prefix and a hash.
func localID(prefix, v string) string {
	s := strings.Trim(invalidIDChars.ReplaceAllString(strings.TrimSpace(v), "-"), "-._:")
	if engine.ValidID(s) {
		return s
	}
	sum := sha256.Sum256([]byte(v))
	h := hex.EncodeToString(sum[:])[:16]
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		return prefix + "-" + h
	}
	return prefix + "-" + strings.Trim(s, "-._:") + "-" + h
}

// CustomerIDFor is the rule that names the customer imported from a Zuora
// account: billsync's id in the account's BillsyncId__c when present; else
// the identity custom field (e.g. Gigya_Id__c) when configured and set; else
// the account number. Characters outside [A-Za-z0-9._:-] become '-'; a value
// that still is not a valid id is prefixed with "za-" and suffixed with a hash.
func (s *Service) CustomerIDFor(a zuora.Account) string {
	if bid := customString(a.BasicInfo.CustomFields, s.cfg.IDField); bid != "" {
		return bid
	}
	if v := customString(a.BasicInfo.CustomFields, s.cfg.IdentityField); v != "" {
		return localID("za", v)
	}
	return localID("za", a.BasicInfo.AccountNumber)
}

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// customerFromAccount builds the local customer of a Zuora account.
func customerFromAccount(id string, a zuora.Account) (engine.Customer, error) {
	c := engine.Customer{ID: id, Name: engine.Truncate(strings.TrimSpace(a.BasicInfo.Name), 255), Currency: a.BillingAndPayment.Currency,
		HasPaymentMethod: a.BillingAndPayment.DefaultPaymentMethodID != ""}
	if c.Name == "" {
		c.Name = a.BasicInfo.AccountNumber
	}
	if bt := a.BillToContact; bt != nil {
		email := bt.WorkEmail
		if !emailPattern.MatchString(email) {
			email = bt.PersonalEmail
		}
		if emailPattern.MatchString(email) {
			c.Email = email
		}
		if bt.FirstName != "" && bt.LastName != "" && bt.Country != "" {
			zip := bt.ZipCode
			if zip == "" {
				zip = bt.PostalCode
			}
			c.BillTo = &engine.Contact{FirstName: engine.Truncate(bt.FirstName, 100), LastName: engine.Truncate(bt.LastName, 100), Email: c.Email,
				Address1: bt.Address1, Address2: bt.Address2, City: bt.City, State: bt.State, PostalCode: zip, Country: bt.Country}
		}
	}
	if err := c.Validate(); err != nil {
		return c, reconcile.Terminal{Err: fmt.Errorf("zuora account %s cannot become a billsync customer: %w", a.BasicInfo.AccountNumber, err)}
	}
	return c, nil
}

// settle marks an entity's pending outbound record synced with the given
// payload hash (the store's state machine): what was just written locally
// came from Zuora.
func (s *Service) settle(ctx context.Context, kind, id string, o store.Outcome) error {
	if o.Detail == "" {
		o.Detail = "written from Zuora (inbound): nothing to push"
	}
	_, err := s.db.SettleSynced(ctx, kind, id, 0, o)
	return err
}

// syncAccount processes an account-created hint.
func (s *Service) syncAccount(ctx context.Context, key string) (Result, error) {
	a, err := s.z.GetAccount(ctx, key)
	if err != nil {
		return Result{}, zuoraErr("read account "+key, err)
	}
	unlock := s.locks.lock(a.BasicInfo.ID)
	defer unlock()
	return s.ensureCustomer(ctx, a)
}

// customerForAccount returns the customer of a Zuora account, importing the
// account when needed.
func (s *Service) customerForAccount(ctx context.Context, accountID string, res *Result) (string, error) {
	if m, err := s.maps.ByZuoraID(ctx, mappings.Account, accountID); err == nil {
		if _, err := s.db.GetCustomer(ctx, m.ParentID); err == nil {
			return m.ParentID, nil
		}
	} else if !errors.Is(err, mappings.ErrNotFound) {
		return "", err
	}
	a, err := s.z.GetAccount(ctx, accountID)
	if err != nil {
		return "", zuoraErr("read account "+accountID, err)
	}
	r, err := s.ensureCustomer(ctx, a)
	res.Actions = append(res.Actions, r.Actions...)
	return r.CustomerID, err
}

// ensureCustomer makes sure the account's customer exists locally, is mapped
// and that the account carries billsync's id. Accounts billsync created
// (BillsyncId__c set) are left to the outbound side.
func (s *Service) ensureCustomer(ctx context.Context, a zuora.Account) (Result, error) {
	var res Result
	acctID, number := a.BasicInfo.ID, a.BasicInfo.AccountNumber
	bid := customString(a.BasicInfo.CustomFields, s.cfg.IDField)
	m, err := s.maps.ByZuoraID(ctx, mappings.Account, acctID)
	mapped := err == nil
	if err != nil && !errors.Is(err, mappings.ErrNotFound) {
		return res, err
	}
	custID := s.CustomerIDFor(a)
	if mapped {
		custID = m.ParentID
	}
	res.CustomerID = custID
	owned := bid != "" && !mapped // created by billsync outbound: its mapping is the outbound side's
	existing, err := s.db.GetCustomer(ctx, custID)
	exists := err == nil
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return res, err
	}
	switch {
	case !exists:
		c, err := customerFromAccount(custID, a)
		if err != nil {
			return res, err
		}
		hash := s.out.AccountHash(c)
		// The mapping first: the outbound reconciler never sees the customer unmapped.
		if err := s.putAccountMapping(ctx, custID, acctID, number, hash); err != nil {
			return res, err
		}
		if err := s.at(ctx, "customer-mapped"); err != nil {
			return res, err
		}
		if _, _, err := s.db.UpsertCustomer(ctx, c); err != nil {
			return res, fmt.Errorf("store customer %s: %w", custID, err)
		}
		if err := s.settle(ctx, store.EntityCustomer, custID, store.Outcome{PayloadHash: hash, ZuoraID: acctID, ZuoraNumber: number, ZuoraURL: s.z.AccountURL(acctID)}); err != nil {
			return res, err
		}
		res.add("created customer %s from account %s", custID, number)
	case owned:
		res.add("account %s was created by billsync for customer %s; nothing to import", number, custID)
		return res, nil
	case !mapped:
		if err := s.putAccountMapping(ctx, custID, acctID, number, s.out.AccountHash(existing)); err != nil {
			return res, err
		}
		res.add("linked account %s to existing customer %s", number, custID)
	default:
		res.add("account %s is already linked to customer %s", number, custID)
	}
	if err := s.at(ctx, "customer-stored"); err != nil {
		return res, err
	}
	if bid == "" && mapped {
		// Another entry for this account may have written it meanwhile:
		// read again before writing.
		fresh, err := s.z.GetAccount(ctx, acctID)
		if err != nil {
			return res, zuoraErr("read account "+number, err)
		}
		bid = customString(fresh.BasicInfo.CustomFields, s.cfg.IDField)
	}
	switch {
	case bid == "":
		if err := s.z.UpdateAccount(ctx, acctID, zuora.AccountUpdate{CustomFields: map[string]any{s.cfg.IDField: custID}}); err != nil {
			return res, zuoraErr("write "+s.cfg.IDField+" to account "+number, err)
		}
		res.add("wrote %s=%s to account %s", s.cfg.IDField, custID, number)
	case bid != custID:
		s.log.Warn().Str("account", number).Str("customer", custID).Msg("the account's billsync id names another customer; left as is")
	}
	return res, nil
}

func (s *Service) putAccountMapping(ctx context.Context, custID, acctID, number, hash string) error {
	err := s.maps.Put(ctx, mappings.Mapping{Kind: mappings.Account, LocalID: mappings.Key(custID, acctID), ZuoraID: acctID,
		ZuoraNumber: number, ParentID: custID, PayloadHash: hash})
	if errors.Is(err, mappings.ErrConflict) {
		return &engine.ConflictError{Field: "accountKey", Message: fmt.Sprintf("Zuora account %s is already linked to another customer", number)}
	}
	return err
}
