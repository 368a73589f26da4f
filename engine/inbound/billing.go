package inbound

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// Billing events (issue 16). Callouts carry ids only; each is processed by
// reading the object, then the account's invoices and payments, from Zuora:
// the local state (invoices, the account's payment status, grace on its
// grants) is computed from what Zuora holds now, so callouts delivered
// several times or out of order come to the same state, and the events
// (keyed by what they say) are told once.

func amount(v float64) string { return decimal.NewFromFloat(v).Round(2).String() }

func zeroAmount(v float64) bool { return decimal.NewFromFloat(v).Round(2).IsZero() }

// invoiceEvents are the events an invoice's state tells: posted, and paid
// once posted with nothing left to pay.
func invoiceEvents(custID string, inv zuora.Invoice) []store.NewEvent {
	if inv.Status != "Posted" {
		return nil
	}
	data := map[string]any{"customerId": custID, "invoiceId": inv.ID, "invoiceNumber": inv.InvoiceNumber, "invoiceDate": inv.InvoiceDate,
		"dueDate": inv.DueDate, "amount": amount(inv.Amount), "balance": amount(inv.Balance), "currency": inv.Currency, "zuoraAccountId": inv.AccountID}
	evs := []store.NewEvent{{Type: store.EventInvoicePosted, Key: inv.ID, CustomerID: custID, Subject: inv.InvoiceNumber, Data: data}}
	if zeroAmount(inv.Balance) && !zeroAmount(inv.Amount) {
		evs = append(evs, store.NewEvent{Type: store.EventInvoicePaid, Key: inv.ID, CustomerID: custID, Subject: inv.InvoiceNumber, Data: data})
	}
	return evs
}

func (s *Service) recordInvoice(ctx context.Context, custID string, inv zuora.Invoice) (bool, error) {
	return s.db.UpsertInvoice(ctx, store.Invoice{ID: inv.ID, Number: inv.InvoiceNumber, CustomerID: custID, ZuoraAccountID: inv.AccountID,
		InvoiceDate: inv.InvoiceDate, DueDate: inv.DueDate, Amount: amount(inv.Amount), Balance: amount(inv.Balance), Currency: inv.Currency,
		Status: inv.Status, ZuoraURL: s.z.InvoiceURL(inv.ID)}, invoiceEvents(custID, inv)...)
}

// syncInvoice processes an invoice-posted or invoice-paid hint.
func (s *Service) syncInvoice(ctx context.Context, key string) (Result, error) {
	inv, err := s.z.GetInvoice(ctx, key)
	if err != nil {
		return Result{}, zuoraErr("read invoice "+key, err)
	}
	unlock := s.locks.lock(inv.AccountID)
	defer unlock()
	var res Result
	custID, err := s.customerForAccount(ctx, inv.AccountID, &res)
	if err != nil {
		return res, err
	}
	res.CustomerID = custID
	if _, err := s.recordInvoice(ctx, custID, inv); err != nil {
		return res, err
	}
	res.add("invoice %s: %s, balance %s of %s", inv.InvoiceNumber, inv.Status, amount(inv.Balance), amount(inv.Amount))
	return res, s.refreshPayments(ctx, custID, inv.AccountID, nil, &res)
}

// syncPayment processes a payment-failed hint.
func (s *Service) syncPayment(ctx context.Context, key string) (Result, error) {
	p, err := s.z.GetPayment(ctx, key)
	if err != nil {
		return Result{}, zuoraErr("read payment "+key, err)
	}
	unlock := s.locks.lock(p.AccountID)
	defer unlock()
	var res Result
	custID, err := s.customerForAccount(ctx, p.AccountID, &res)
	if err != nil {
		return res, err
	}
	res.CustomerID = custID
	var evs []store.NewEvent
	number := firstNonEmpty(p.Number, p.PaymentNumber)
	if p.Status == "Error" {
		evs = append(evs, store.NewEvent{Type: store.EventPaymentFailed, Key: p.ID, CustomerID: custID, Subject: number,
			Data: map[string]any{"customerId": custID, "paymentId": p.ID, "paymentNumber": number, "amount": amount(p.Amount),
				"gatewayResponse": p.GatewayResponse, "zuoraAccountId": p.AccountID}})
		res.add("payment %s failed: %s", number, p.GatewayResponse)
	} else {
		res.add("payment %s is %s", number, p.Status)
	}
	return res, s.refreshPayments(ctx, custID, p.AccountID, evs, &res)
}

// refreshPayments reads the account's invoices and payments and records
// them, the account's payment status (past due since the first declined
// payment of, or the due date of, a posted invoice still open; else paid)
// and its grants' grace, with evs, in one transaction per write.
func (s *Service) refreshPayments(ctx context.Context, custID, accountID string, evs []store.NewEvent, res *Result) error {
	var open []zuora.Invoice
	for inv, err := range s.z.ListInvoicesByAccount(ctx, accountID) {
		if err != nil {
			return zuoraErr("list invoices of account "+accountID, err)
		}
		if _, err := s.recordInvoice(ctx, custID, inv); err != nil {
			return err
		}
		if inv.Status == "Posted" && !zeroAmount(inv.Balance) {
			open = append(open, inv)
		}
	}
	since := ""
	earliest := func(d string) {
		if d != "" && (since == "" || d < since) {
			since = d
		}
	}
	if len(open) > 0 {
		first := open[0].InvoiceDate
		for _, inv := range open {
			if inv.InvoiceDate < first {
				first = inv.InvoiceDate
			}
			if inv.DueDate != "" && inv.DueDate < s.today() {
				earliest(inv.DueDate)
			}
		}
		for p, err := range s.z.ListPaymentsByAccount(ctx, accountID) {
			if err != nil {
				return zuoraErr("list payments of account "+accountID, err)
			}
			if p.Status == "Error" && len(p.EffectiveDate) >= 10 && p.EffectiveDate[:10] >= first {
				earliest(p.EffectiveDate[:10])
			}
		}
	}
	ps := store.PaymentStatus{ZuoraAccountID: accountID, CustomerID: custID, Status: store.PaymentPaid}
	var grace []store.GrantGrace
	if since != "" {
		ps.Status, ps.PastDueSince = store.PaymentPastDue, since
		grants, err := s.db.GrantsOf(ctx, custID)
		if err != nil {
			return err
		}
		if grace, err = s.graceFor(ctx, ps, grants); err != nil {
			return err
		}
	}
	changed, err := s.db.SetPaymentStatus(ctx, ps, grace, evs...)
	if err != nil {
		return err
	}
	if changed {
		if ps.Status == store.PaymentPastDue {
			res.add("account %s past due since %s (%d grants on grace)", accountID, since, len(grace))
		} else {
			res.add("account %s paid", accountID)
		}
	}
	return nil
}

// graceFor is the grace of the account's grants while it is past due: the
// product's grace days from the day it became past due.
func (s *Service) graceFor(ctx context.Context, ps store.PaymentStatus, grants []store.Grant) ([]store.GrantGrace, error) {
	var out []store.GrantGrace
	memo := map[string]int{}
	for _, g := range grants {
		if g.ZuoraAccountID != ps.ZuoraAccountID {
			continue
		}
		days := 0
		if m, err := s.maps.Get(ctx, mappings.Product, g.PlanID); err == nil {
			if days, err = s.graceDays(ctx, m.ZuoraID, memo); err != nil {
				return nil, err
			}
		} else if !errors.Is(err, mappings.ErrNotFound) {
			return nil, err
		}
		out = append(out, store.GrantGrace{CustomerID: ps.CustomerID, SubscriptionNumber: g.SubscriptionNumber, PlanID: g.PlanID,
			ZuoraAccountID: ps.ZuoraAccountID, PastDueSince: ps.PastDueSince, GraceDays: days, GraceUntil: addDays(ps.PastDueSince, days)})
	}
	return out, nil
}

// graceForNewGrants puts the grants of a subscription read after its
// account became past due on grace too (callouts come in any order).
func (s *Service) graceForNewGrants(ctx context.Context, custID, accountID string, grants []store.Grant) error {
	if len(grants) == 0 {
		return nil
	}
	sts, err := s.db.PaymentStatusOf(ctx, custID)
	if err != nil {
		return err
	}
	for _, ps := range sts {
		if ps.ZuoraAccountID != accountID || ps.Status != store.PaymentPastDue {
			continue
		}
		grace, err := s.graceFor(ctx, ps, grants)
		if err != nil {
			return err
		}
		_, err = s.db.SetPaymentStatus(ctx, ps, grace)
		return err
	}
	return nil
}

// syncAccountUpdate processes an account-updated hint (default payment
// method or status changed): the customer's hasPaymentMethod follows Zuora
// (which lets a customer skipped for lacking one sync), without an echo;
// a cancelled account's subscriptions are read again.
func (s *Service) syncAccountUpdate(ctx context.Context, key string) (Result, error) {
	a, err := s.z.GetAccount(ctx, key)
	if err != nil {
		return Result{}, zuoraErr("read account "+key, err)
	}
	acctID := a.BasicInfo.ID
	unlock := s.locks.lock(acctID)
	var res Result
	m, err := s.maps.ByZuoraID(ctx, mappings.Account, acctID)
	if errors.Is(err, mappings.ErrNotFound) {
		// Not billsync's yet: the account-created path imports it.
		res, err = s.ensureCustomer(ctx, a)
		unlock()
		return res, err
	}
	if err != nil {
		unlock()
		return res, err
	}
	res.CustomerID = m.ParentID
	cust, err := s.db.GetCustomer(ctx, m.ParentID)
	if err != nil {
		unlock()
		return res, err
	}
	has := a.BillingAndPayment.DefaultPaymentMethodID != ""
	if has {
		// The default must exist on the account (a stale id is not one).
		pms, err := s.z.GetAccountPaymentMethods(ctx, acctID)
		if err != nil {
			unlock()
			return res, zuoraErr("read payment methods of account "+a.BasicInfo.AccountNumber, err)
		}
		has = pms.DefaultPaymentMethodID != ""
	}
	if cust.HasPaymentMethod != has {
		wasSettled := m.PayloadHash == s.out.AccountHash(cust)
		cust.HasPaymentMethod = has
		stored, _, err := s.db.UpsertCustomer(ctx, cust)
		if err != nil {
			unlock()
			return res, fmt.Errorf("store customer %s: %w", cust.ID, err)
		}
		hash := s.out.AccountHash(stored)
		if wasSettled || m.PayloadHash == hash {
			// What billsync would push is what the account holds: no echo.
			if err := s.maps.SetHash(ctx, mappings.Account, m.LocalID, hash); err != nil {
				unlock()
				return res, err
			}
			if err := s.settle(ctx, store.EntityCustomer, cust.ID, store.Outcome{PayloadHash: hash, ZuoraID: acctID,
				ZuoraNumber: a.BasicInfo.AccountNumber, ZuoraURL: s.z.AccountURL(acctID)}); err != nil {
				unlock()
				return res, err
			}
		}
		res.add("customer %s hasPaymentMethod=%s (from account %s)", cust.ID, strconv.FormatBool(has), a.BasicInfo.AccountNumber)
	} else {
		res.add("customer %s already has hasPaymentMethod=%t", cust.ID, has)
	}
	unlock()
	if a.BasicInfo.Status == "Canceled" || a.BasicInfo.Status == "Cancelled" {
		pr, err := s.PullAccount(ctx, acctID)
		if err != nil {
			return res, err
		}
		res.add("account %s is cancelled: read its %d subscriptions again", a.BasicInfo.AccountNumber, len(pr.Subscriptions))
	}
	return res, nil
}

// syncOrderCompleted processes a scheduled-order-completed hint: the
// account's subscriptions are read again (the order changed some of them).
func (s *Service) syncOrderCompleted(ctx context.Context, accountKey string) (Result, error) {
	pr, err := s.PullAccount(ctx, accountKey)
	res := Result{CustomerID: pr.CustomerID}
	if err != nil {
		return res, err
	}
	res.add("scheduled order completed: read %d subscriptions of account %s again", len(pr.Subscriptions), accountKey)
	return res, nil
}

// ---- reads for the API and the admin page ----

// Invoices returns a customer's invoices, newest first.
func (s *Service) Invoices(ctx context.Context, customerID string) ([]store.Invoice, error) {
	if _, err := s.db.GetCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	return s.db.InvoicesOf(ctx, customerID)
}

// SubscriptionPayment is a subscription's payment status (its Zuora account's).
type SubscriptionPayment struct {
	SubscriptionNumber string `json:"subscriptionNumber"`
	SubscriptionID     string `json:"subscriptionId,omitempty"`
	ZuoraAccountID     string `json:"zuoraAccountId"`
	Status             string `json:"status"` // paid, past_due
	PastDueSince       string `json:"pastDueSince,omitempty"`
}

// Access is one grant as an app checks it: which plan, from, until, grace.
type Access struct {
	PlanID             string       `json:"planId"`
	SubscriptionNumber string       `json:"subscriptionNumber"`
	SubscriptionID     string       `json:"subscriptionId,omitempty"`
	From               string       `json:"from"`
	Until              string       `json:"until,omitempty"` // exclusive; "" open-ended
	Grace              *AccessGrace `json:"grace,omitempty"`
	Active             bool         `json:"active"`
	Reason             string       `json:"reason,omitempty"`
}

// AccessGrace is the grace a grant runs on while its account is past due.
type AccessGrace struct {
	PastDueSince string `json:"pastDueSince"`
	Days         int    `json:"days"`
	Until        string `json:"until"` // exclusive
	Revoked      bool   `json:"revoked"`
}

// CustomerAccess returns a customer's grants with their grace and whether
// each lets the customer in today, and the payment status of each
// subscription.
func (s *Service) CustomerAccess(ctx context.Context, customerID string) ([]Access, []SubscriptionPayment, error) {
	grants, err := s.Grants(ctx, customerID)
	if err != nil {
		return nil, nil, err
	}
	graces, err := s.db.GraceOf(ctx, customerID)
	if err != nil {
		return nil, nil, err
	}
	statuses, err := s.db.PaymentStatusOf(ctx, customerID)
	if err != nil {
		return nil, nil, err
	}
	byAcct := map[string]store.PaymentStatus{}
	for _, p := range statuses {
		byAcct[p.ZuoraAccountID] = p
	}
	graceOf := map[string]store.GrantGrace{}
	for _, g := range graces {
		graceOf[g.SubscriptionNumber+"\x00"+g.PlanID] = g
	}
	today := s.today()
	out := make([]Access, 0, len(grants))
	pay := []SubscriptionPayment{}
	seen := map[string]bool{}
	for _, g := range grants {
		a := Access{PlanID: g.PlanID, SubscriptionNumber: g.SubscriptionNumber, SubscriptionID: g.SubscriptionID, From: g.StartsOn, Until: g.EndsOn,
			Active: g.Active, Reason: g.Reason}
		if gr, ok := graceOf[g.SubscriptionNumber+"\x00"+g.PlanID]; ok {
			a.Grace = &AccessGrace{PastDueSince: gr.PastDueSince, Days: gr.GraceDays, Until: gr.GraceUntil, Revoked: gr.RevokedAt != nil || today >= gr.GraceUntil}
			if a.Grace.Revoked {
				a.Active = false
				a.Reason = joinReason(a.Reason, fmt.Sprintf("past due since %s; %d grace days ran out on %s", gr.PastDueSince, gr.GraceDays, gr.GraceUntil))
			} else {
				a.Reason = joinReason(a.Reason, fmt.Sprintf("past due since %s; grace until %s", gr.PastDueSince, gr.GraceUntil))
			}
		}
		out = append(out, a)
		if !seen[g.SubscriptionNumber] {
			seen[g.SubscriptionNumber] = true
			p := SubscriptionPayment{SubscriptionNumber: g.SubscriptionNumber, SubscriptionID: g.SubscriptionID, ZuoraAccountID: g.ZuoraAccountID, Status: store.PaymentPaid}
			if st, ok := byAcct[g.ZuoraAccountID]; ok {
				p.Status, p.PastDueSince = st.Status, st.PastDueSince
			}
			pay = append(pay, p)
		}
	}
	return out, pay, nil
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// ExpireAccess tells the app about access that ended: grants whose grace ran
// out are revoked (access.revoked), and so are grants whose end date passed
// in the last 30 days (each told once). It reports how many it told.
func (s *Service) ExpireAccess(ctx context.Context) (int, error) {
	today := s.today()
	n := 0
	run, err := s.db.GraceRunOut(ctx, today, 500)
	if err != nil {
		return n, err
	}
	for _, g := range run {
		grant := store.Grant{CustomerID: g.CustomerID, SubscriptionNumber: g.SubscriptionNumber, PlanID: g.PlanID, ZuoraAccountID: g.ZuoraAccountID, EndsOn: g.GraceUntil}
		if gs, err := s.db.GrantsOf(ctx, g.CustomerID); err == nil {
			for _, x := range gs {
				if x.SubscriptionNumber == g.SubscriptionNumber && x.PlanID == g.PlanID {
					grant.StartsOn, grant.SubscriptionID = x.StartsOn, x.SubscriptionID
				}
			}
		} else {
			return n, err
		}
		ev := store.GrantRevokedEvent(grant)
		ev.Data = map[string]any{"customerId": g.CustomerID, "planId": g.PlanID, "subscriptionNumber": g.SubscriptionNumber,
			"subscriptionId": grant.SubscriptionID, "from": grant.StartsOn, "until": g.GraceUntil,
			"reason": fmt.Sprintf("past due since %s; %d grace days ran out", g.PastDueSince, g.GraceDays)}
		done, err := s.db.RevokeGrace(ctx, g, ev)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	ended, err := s.db.GrantsEnded(ctx, addDays(today, -30), today)
	if err != nil {
		return n, err
	}
	for _, g := range ended {
		k, err := s.db.Emit(ctx, store.GrantRevokedEvent(g))
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
