package zuorasim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Invoices, payments and payment methods (docs/zuora-rules.md, "Billing
// objects"): bill runs create invoices (Draft, then Posted), POST
// /_sim/payments pays an invoice or records a declined payment, POST
// /_sim/accounts/{id}/payment-methods sets an account's default payment
// method. Each change fires the Invoice, Payment and Account events Zuora
// raises, so custom event triggers on those base objects see them.

type invoice struct {
	ID, Number, AccountID string
	Date, DueDate         string
	TargetDate            string
	Amount, Balance       decimal.Decimal
	Status                string // Draft, Posted, Canceled
	Subscriptions         []string
	PostedDate            string
	Created, Updated      time.Time
}

type payment struct {
	ID, Number, AccountID string
	InvoiceID             string
	PaymentMethodID       string
	Amount                decimal.Decimal
	Status                string // Processed, Error
	GatewayResponse       string
	EffectiveDate         string
	Created, Updated      time.Time
}

type paymentMethod struct {
	ID, AccountID, Type string
	CardType, Mask      string
	ExpMonth, ExpYear   int
	Created             time.Time
}

// billingState holds the billing objects (part of state: reset with it).
type billingState struct {
	Invoices      map[string]*invoice
	InvoiceOrder  []string
	Payments      map[string]*payment
	PaymentOrder  []string
	Methods       map[string]*paymentMethod
	DefaultMethod map[string]string // account id → payment method id
	BilledOnce    map[string]bool   // one-time charge ids already invoiced
	NInvoice      int
	NPayment      int
	Memos         map[string]*creditMemo // credit memos (creditmemos.go)
	MemoOrder     []string
	NMemo         int
}

func newBillingState() *billingState {
	return &billingState{Invoices: map[string]*invoice{}, Payments: map[string]*payment{}, Methods: map[string]*paymentMethod{},
		DefaultMethod: map[string]string{}, BilledOnce: map[string]bool{}, Memos: map[string]*creditMemo{}}
}

func (st *state) billing() *billingState {
	if st.bill == nil {
		st.bill = newBillingState()
	}
	return st.bill
}

func (b *billingState) invoice(key string) *invoice {
	if inv := b.Invoices[key]; inv != nil {
		return inv
	}
	for _, id := range b.InvoiceOrder {
		if b.Invoices[id].Number == key {
			return b.Invoices[id]
		}
	}
	return nil
}

func (b *billingState) payment(key string) *payment {
	if p := b.Payments[key]; p != nil {
		return p
	}
	for _, id := range b.PaymentOrder {
		if b.Payments[id].Number == key {
			return b.Payments[id]
		}
	}
	return nil
}

func money(d decimal.Decimal) float64 { f, _ := d.Round(2).Float64(); return f }

func invoiceFields(inv *invoice) map[string]string {
	return map[string]string{"Id": inv.ID, "InvoiceNumber": inv.Number, "AccountId": inv.AccountID, "Status": inv.Status,
		"Amount": inv.Amount.String(), "Balance": inv.Balance.String(), "InvoiceDate": inv.Date, "DueDate": inv.DueDate,
		"PostedDate": inv.PostedDate, "UpdatedDate": inv.Updated.UTC().Format(time.RFC3339)}
}

func paymentFields(p *payment) map[string]string {
	return map[string]string{"Id": p.ID, "PaymentNumber": p.Number, "AccountId": p.AccountID, "Status": p.Status,
		"Amount": p.Amount.String(), "EffectiveDate": p.EffectiveDate, "GatewayResponse": p.GatewayResponse,
		"PaymentMethodId": p.PaymentMethodID, "UpdatedDate": p.Updated.UTC().Format(time.RFC3339)}
}

// objectEvent is a change of a billing object; the caller holds s.mu.
func (s *Sim) objectEvent(base, changeType string, fields, old map[string]string, accountID string) *event {
	ev := &event{baseObject: base, changeType: changeType, fields: fields, old: old}
	if a := s.st.accounts[accountID]; a != nil {
		ev.account = accountFields(a)
	}
	return ev
}

// paymentTermDays reads "Net 30" as 30 days, "Due Upon Receipt" as 0.
func paymentTermDays(term string) int {
	if n, err := strconv.Atoi(strings.TrimPrefix(term, "Net ")); err == nil {
		return n
	}
	return 0
}

// invoiceAccount bills one account's subscriptions for [from, target): the
// recurring charges in force on the day before target (price × quantity for
// per-unit charges) and one-time charges not billed yet. The caller holds
// s.mu. It returns nil when there is nothing to bill (Zuora creates no
// invoice then).
func (s *Sim) invoiceAccount(a *account, target string, now time.Time) *invoice {
	b := s.st.billing()
	last := target
	if t, err := time.Parse(dateLayout, target); err == nil {
		last = t.AddDate(0, 0, -1).Format(dateLayout)
	}
	total := decimal.Zero
	var subs []string
	for _, num := range s.st.subOrder {
		sub := s.st.subs[num]
		if sub.InvoiceOwnerID != a.ID && (sub.InvoiceOwnerID != "" || sub.AccountID != a.ID) {
			continue
		}
		v := sub.latest()
		if v.Status != "Active" && v.Status != "Cancelled" {
			continue
		}
		billed := false
		for _, rp := range v.RatePlans {
			for _, ch := range rp.Charges {
				seg := ch.last()
				if seg.Start > last || (seg.End != "" && seg.End <= last && ch.Type != "OneTime") {
					continue
				}
				price, _ := decimal.NewFromString(string(seg.Price))
				qty := decimal.NewFromInt(1)
				if q, err := decimal.NewFromString(string(seg.Quantity)); err == nil && ch.Model != "FlatFee" {
					qty = q
				}
				switch ch.Type {
				case "Recurring":
				case "OneTime":
					if b.BilledOnce[ch.ID] {
						continue
					}
					b.BilledOnce[ch.ID] = true
				default:
					continue
				}
				if amt := price.Mul(qty); amt.IsPositive() {
					total = total.Add(amt)
					billed = true
				}
			}
		}
		if billed {
			subs = append(subs, sub.Number)
		}
	}
	if !total.IsPositive() {
		return nil
	}
	b.NInvoice++
	due := target
	if t, err := time.Parse(dateLayout, target); err == nil {
		due = t.AddDate(0, 0, paymentTermDays(a.PaymentTerm)).Format(dateLayout)
	}
	inv := &invoice{ID: s.st.newID(), Number: fmt.Sprintf("INV%08d", b.NInvoice), AccountID: a.ID, Date: target, DueDate: due,
		TargetDate: target, Amount: total, Balance: total, Status: "Draft", Subscriptions: subs, Created: now, Updated: now}
	b.Invoices[inv.ID] = inv
	b.InvoiceOrder = append(b.InvoiceOrder, inv.ID)
	return inv
}

// ---- POST /_sim/payments ----

// PaymentRequest pays an invoice (or records a declined payment) with the
// account's default payment method, as Zuora's UI or a payment run would.
type PaymentRequest struct {
	Invoice string `json:"invoice"` // invoice id or number
	// Amount defaults to the invoice balance.
	Amount string `json:"amount,omitempty"`
	// Failed records a payment the gateway declined (status Error): the
	// invoice keeps its balance.
	Failed bool   `json:"failed,omitempty"`
	Reason string `json:"reason,omitempty"` // gateway response of a declined payment
}

// PaymentResult is the payment made.
type PaymentResult struct {
	PaymentID     string `json:"paymentId"`
	PaymentNumber string `json:"paymentNumber"`
	Status        string `json:"status"`
	InvoiceNumber string `json:"invoiceNumber"`
	Balance       string `json:"invoiceBalance"`
}

// Pay applies a payment to an invoice (see PaymentRequest) and fires the
// Payment INSERT event, and the Invoice UPDATE event when the balance changes.
func (s *Sim) Pay(req PaymentRequest) (PaymentResult, error) {
	s.mu.Lock()
	b := s.st.billing()
	inv := b.invoice(req.Invoice)
	if inv == nil {
		s.mu.Unlock()
		return PaymentResult{}, fmt.Errorf("invoice %q does not exist", req.Invoice)
	}
	if inv.Status != "Posted" {
		s.mu.Unlock()
		return PaymentResult{}, fmt.Errorf("invoice %s is %s: only posted invoices can be paid", inv.Number, inv.Status)
	}
	pm := b.DefaultMethod[inv.AccountID]
	if pm == "" {
		s.mu.Unlock()
		return PaymentResult{}, errors.New("the account has no default payment method: an electronic payment needs one")
	}
	amount := inv.Balance
	if req.Amount != "" {
		a, err := decimal.NewFromString(req.Amount)
		if err != nil || !a.IsPositive() {
			s.mu.Unlock()
			return PaymentResult{}, fmt.Errorf("amount %q must be a positive number", req.Amount)
		}
		amount = a
	}
	if !amount.IsPositive() || (!req.Failed && amount.GreaterThan(inv.Balance)) {
		s.mu.Unlock()
		return PaymentResult{}, fmt.Errorf("the amount %s exceeds the invoice balance %s", amount, inv.Balance)
	}
	now := s.Now()
	b.NPayment++
	p := &payment{ID: s.st.newID(), Number: fmt.Sprintf("P-%08d", b.NPayment), AccountID: inv.AccountID, InvoiceID: inv.ID,
		PaymentMethodID: pm, Amount: amount, Status: "Processed", GatewayResponse: "Approved", EffectiveDate: now.In(s.tenant.loc).Format(dateLayout),
		Created: now, Updated: now}
	if req.Failed {
		p.Status, p.GatewayResponse = "Error", firstNonEmpty(req.Reason, "Declined")
	}
	b.Payments[p.ID] = p
	b.PaymentOrder = append(b.PaymentOrder, p.ID)
	events := []*event{s.objectEvent("Payment", "INSERT", paymentFields(p), nil, p.AccountID)}
	if !req.Failed {
		old := invoiceFields(inv)
		inv.Balance = inv.Balance.Sub(amount)
		inv.Updated = now
		events = append(events, s.objectEvent("Invoice", "UPDATE", invoiceFields(inv), old, inv.AccountID))
	}
	res := PaymentResult{PaymentID: p.ID, PaymentNumber: p.Number, Status: p.Status, InvoiceNumber: inv.Number, Balance: inv.Balance.String()}
	s.mu.Unlock()
	s.fire(events...)
	s.persist()
	return res, nil
}

func (s *Sim) controlPayment(body []byte) *resp {
	var req PaymentRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	res, err := s.Pay(req)
	if err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	return jsonResp(http.StatusOK, res)
}

// ---- POST /_sim/accounts/{id}/payment-methods ----

// PaymentMethodRequest adds a credit card and makes it the account's default.
type PaymentMethodRequest struct {
	CardType string `json:"cardType,omitempty"` // Visa (default), MasterCard, AmericanExpress, Discover
	LastFour string `json:"lastFour,omitempty"` // default 1111
	ExpMonth int    `json:"expirationMonth,omitempty"`
	ExpYear  int    `json:"expirationYear,omitempty"`
}

// AddPaymentMethod creates a credit card payment method on the account and
// sets it as the default (Account UPDATE event with DefaultPaymentMethodId
// changed); it returns the payment method id.
func (s *Sim) AddPaymentMethod(accountKey string, req PaymentMethodRequest) (string, error) {
	card := firstNonEmpty(req.CardType, "Visa")
	if !slices.Contains([]string{"Visa", "MasterCard", "AmericanExpress", "Discover", "JCB", "Diners"}, card) {
		return "", fmt.Errorf("cardType %q is not a credit card type Zuora knows", card)
	}
	last4 := firstNonEmpty(req.LastFour, "1111")
	if len(last4) != 4 || strings.Trim(last4, "0123456789") != "" {
		return "", errors.New("lastFour must be 4 digits")
	}
	now := s.Now()
	if req.ExpMonth == 0 {
		req.ExpMonth, req.ExpYear = 12, now.Year()+3
	}
	if req.ExpMonth < 1 || req.ExpMonth > 12 || req.ExpYear < now.Year() || (req.ExpYear == now.Year() && req.ExpMonth < int(now.Month())) {
		return "", errors.New("the card is expired or its expiration month is not 1-12")
	}
	s.mu.Lock()
	a := s.st.account(accountKey)
	if a == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("account %q does not exist", accountKey)
	}
	b := s.st.billing()
	old := accountFields(a)
	pm := &paymentMethod{ID: s.st.newID(), AccountID: a.ID, Type: "CreditCard", CardType: card, Mask: "************" + last4,
		ExpMonth: req.ExpMonth, ExpYear: req.ExpYear, Created: now}
	b.Methods[pm.ID] = pm
	b.DefaultMethod[a.ID] = pm.ID
	a.DefaultPaymentMethodID = pm.ID
	a.Updated = now
	ev := s.accountEvent(a, "UPDATE", old)
	s.mu.Unlock()
	s.fire(ev)
	s.persist()
	return pm.ID, nil
}

func (s *Sim) controlPaymentMethod(accountKey string, body []byte) *resp {
	var req PaymentMethodRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
		}
	}
	id, err := s.AddPaymentMethod(accountKey, req)
	if err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	return jsonResp(http.StatusOK, map[string]any{"success": true, "paymentMethodId": id})
}

// ---- Zuora read endpoints ----

func (s *Sim) invoiceView(inv *invoice) map[string]any {
	a := s.st.accounts[inv.AccountID]
	d := map[string]any{"id": inv.ID, "invoiceNumber": inv.Number, "accountId": inv.AccountID, "invoiceDate": inv.Date, "dueDate": inv.DueDate,
		"targetDate": inv.TargetDate, "amount": money(inv.Amount), "amountWithoutTax": money(inv.Amount), "taxAmount": 0.0,
		"balance": money(inv.Balance), "paymentAmount": money(inv.Amount.Sub(inv.Balance)), "status": inv.Status,
		"includesRecurring": true, "includesOneTime": true, "includesUsage": false,
		"createdDate": rfc(inv.Created), "updatedDate": rfc(inv.Updated), "createdById": simUserID, "updatedById": simUserID}
	if a != nil {
		d["currency"], d["paymentTerm"] = a.Currency, a.PaymentTerm
	}
	if inv.PostedDate != "" {
		d["postedDate"], d["postedBy"] = inv.PostedDate[:10], simUserID // a date here, a date-time in Object Query
	}
	return d
}

func paymentView(p *payment) map[string]any {
	return map[string]any{"id": p.ID, "number": p.Number, "accountId": p.AccountID, "amount": money(p.Amount), "status": p.Status,
		"type": "Electronic", "effectiveDate": rfc(p.Created), "gatewayResponse": p.GatewayResponse, "paymentMethodId": p.PaymentMethodID,
		"appliedAmount": money(appliedAmount(p)), "unappliedAmount": 0.0, "refundAmount": 0.0, "creditBalanceAmount": 0.0,
		"createdDate": rfc(p.Created), "updatedDate": rfc(p.Updated),
		"createdById": simUserID, "updatedById": simUserID}
}

func appliedAmount(p *payment) decimal.Decimal {
	if p.Status == "Processed" {
		return p.Amount
	}
	return decimal.Zero
}

// getInvoice serves GET /v1/invoices/{invoiceKey} (id or number).
func (s *Sim) getInvoice(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.st.billing().invoice(c.param("invoiceKey"))
	if inv == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("invoiceKey")+"'.")
	}
	out := s.invoiceView(inv)
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

// getPayment serves GET /v1/payments/{paymentKey} (id or number).
func (s *Sim) getPayment(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.billing().payment(c.param("paymentKey"))
	if p == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("paymentKey")+"'.")
	}
	out := paymentView(p)
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

func methodView(pm *paymentMethod, isDefault bool) map[string]any {
	return map[string]any{"id": pm.ID, "type": pm.Type, "isDefault": isDefault, "status": "Active", "creditCardType": pm.CardType,
		"creditCardMaskNumber": pm.Mask, "creditCardExpirationMonth": pm.ExpMonth, "creditCardExpirationYear": pm.ExpYear,
		"numConsecutiveFailures": 0, "createdOn": rfc(pm.Created), "updatedOn": rfc(pm.Created)}
}

// getAccountPaymentMethods serves GET /v1/accounts/{account-key}/payment-methods.
func (s *Sim) getAccountPaymentMethods(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.account(c.param("account-key"))
	if a == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("account-key")+"'.")
	}
	b := s.st.billing()
	onlyDefault := c.r.URL.Query().Get("isDefaultOnly") == "true"
	list := []map[string]any{}
	for _, pm := range b.Methods {
		if pm.AccountID != a.ID || (onlyDefault && pm.ID != b.DefaultMethod[a.ID]) {
			continue
		}
		list = append(list, methodView(pm, pm.ID == b.DefaultMethod[a.ID]))
	}
	slices.SortFunc(list, func(x, y map[string]any) int { return strings.Compare(x["id"].(string), y["id"].(string)) })
	out := map[string]any{"success": true, "returnedPaymentMethodType": list}
	if d := b.DefaultMethod[a.ID]; d != "" {
		out["defaultPaymentMethodId"] = d
	}
	return jsonResp(http.StatusOK, out)
}

// queryInvoices serves GET /object-query/invoices.
func (s *Sim) queryInvoices(c *call) *resp {
	s.mu.Lock()
	b := s.st.billing()
	rows := make([]oqRow, 0, len(b.InvoiceOrder))
	for _, id := range b.InvoiceOrder {
		inv := b.Invoices[id]
		d := s.invoiceView(inv)
		if inv.PostedDate != "" {
			d["postedDate"] = inv.PostedDate
		}
		rows = append(rows, newOQRow(d, inv.Updated, inv.ID))
	}
	s.mu.Unlock()
	return s.objectQuery(c, rows)
}

// queryPayments serves GET /object-query/payments.
func (s *Sim) queryPayments(c *call) *resp {
	s.mu.Lock()
	b := s.st.billing()
	rows := make([]oqRow, 0, len(b.PaymentOrder))
	for _, id := range b.PaymentOrder {
		p := b.Payments[id]
		d := paymentView(p)
		delete(d, "number")
		d["paymentNumber"] = p.Number
		d["effectiveDate"] = p.EffectiveDate // a date here, a date-time in GET /v1/payments/{key}
		rows = append(rows, newOQRow(d, p.Updated, p.ID))
	}
	s.mu.Unlock()
	return s.objectQuery(c, rows)
}

// InvoiceSnapshot is an invoice, for assertions.
type InvoiceSnapshot struct {
	ID            string   `json:"id"`
	Number        string   `json:"invoiceNumber"`
	AccountID     string   `json:"accountId"`
	Date          string   `json:"invoiceDate"`
	DueDate       string   `json:"dueDate"`
	Amount        string   `json:"amount"`
	Balance       string   `json:"balance"`
	Status        string   `json:"status"`
	Subscriptions []string `json:"subscriptionNumbers"`
}

// Invoices returns every invoice, oldest first.
func (s *Sim) Invoices() []InvoiceSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.billing()
	out := []InvoiceSnapshot{}
	for _, id := range b.InvoiceOrder {
		inv := b.Invoices[id]
		out = append(out, InvoiceSnapshot{ID: inv.ID, Number: inv.Number, AccountID: inv.AccountID, Date: inv.Date, DueDate: inv.DueDate,
			Amount: inv.Amount.String(), Balance: inv.Balance.String(), Status: inv.Status, Subscriptions: slices.Clone(inv.Subscriptions)})
	}
	return out
}
