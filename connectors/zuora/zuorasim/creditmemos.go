package zuorasim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Credit memos (docs/zuora-rules.md, "Credit memos"): POST /v1/credit-memos
// creates one from a product rate plan charge (POST_CreditMemoFromPrpc), GET
// /v1/credit-memos lists them (GET_CreditMemos) and GET
// /v1/credit-memos/{creditMemoKey} reads one (GET_CreditMemo). An order that
// cancels a subscription with processingOptions.writeOff writes off the
// balance of the subscription's unpaid invoices with credit memos applied to
// them (reason code Write-off), as Zuora's "Cancel a subscription and write
// off all unpaid invoices" describes.

type creditMemo struct {
	ID, Number, AccountID string
	Date                  string // creditMemoDate (the request's effectiveDate)
	Amount, Applied       decimal.Decimal
	Currency              string
	Status                string // Draft, Posted
	ReasonCode, Comment   string
	ChargeIDs             []string // product rate plan charges (a memo from charges)
	ReferredInvoiceID     string   // the invoice a write-off memo settles
	ExcludeFromAutoApply  bool
	PostedOn              time.Time
	Created, Updated      time.Time
}

// memoReasonCodes are the credit memo reason codes of a fresh tenant
// (Billing Settings > Configure Reason Codes). Stricter reading: only these.
var memoReasonCodes = []string{"Correcting invoice error", "Write-off"}

// memoDiscountModels are the charge models a memo cannot be made from.
var memoDiscountModels = []string{"Discount-Fixed Amount", "Discount-Percentage"}

func (b *billingState) memos() map[string]*creditMemo {
	if b.Memos == nil {
		b.Memos = map[string]*creditMemo{}
	}
	return b.Memos
}

func (b *billingState) memo(key string) *creditMemo {
	if m := b.memos()[key]; m != nil {
		return m
	}
	for _, id := range b.MemoOrder {
		if b.Memos[id].Number == key {
			return b.Memos[id]
		}
	}
	return nil
}

// newMemo files a memo; the caller holds s.mu.
func (s *Sim) newMemo(m *creditMemo, number string) *creditMemo {
	b := s.st.billing()
	b.NMemo++
	m.ID = s.st.newID()
	m.Number = number
	if m.Number == "" {
		m.Number = fmt.Sprintf("CM%08d", b.NMemo)
	}
	b.memos()[m.ID] = m
	b.MemoOrder = append(b.MemoOrder, m.ID)
	return m
}

var memoFields = map[string]bool{"accountId": true, "accountNumber": true, "autoPost": true, "charges": true, "comment": true, "currency": true,
	"customRates": true, "effectiveDate": true, "excludeFromAutoApplyRules": true, "number": true, "reasonCode": true}

var memoChargeFields = map[string]bool{"amount": true, "productRatePlanChargeId": true, "quantity": true, "serviceStartDate": true,
	"serviceEndDate": true, "comment": true, "description": true, "excludeItemBillingFromRevenueAccounting": true, "financeInformation": true}

// decimalsOf counts the digits after the point of a JSON number.
func decimalsOf(n string) int {
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		return 99 // exponents are refused as over-precise
	}
	if _, frac, ok := strings.Cut(n, "."); ok {
		return len(strings.TrimRight(frac, "0"))
	}
	return 0
}

// postCreditMemo serves POST /v1/credit-memos (create a credit memo from a charge).
func (s *Sim) postCreditMemo(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
	}
	for k := range m {
		if !memoFields[k] && !isCustomField(k) {
			return c.restErr(catUnknownField, "Unknown field '"+k+"' in the request body")
		}
	}
	if _, ok := m["customRates"]; ok {
		return c.restErr(catInvalidValue, "'customRates' needs the Multiple Currencies feature, which this tenant does not have")
	}
	fail := func(fe *fieldErr) *resp { return c.restErr(fe.cat, fe.msg) }
	acctID, fe := optString(m, "accountId", 32)
	if fe != nil {
		return fail(fe)
	}
	acctNum, fe := optString(m, "accountNumber", 70)
	if fe != nil {
		return fail(fe)
	}
	comment, fe := optString(m, "comment", 255)
	if fe != nil {
		return fail(fe)
	}
	number, fe := optString(m, "number", 32)
	if fe != nil {
		return fail(fe)
	}
	reasonCode, fe := optString(m, "reasonCode", 0)
	if fe != nil {
		return fail(fe)
	}
	if reasonCode != "" && !slices.Contains(memoReasonCodes, reasonCode) {
		return c.restErr(catInvalidValue, "The reason code "+reasonCode+" does not exist (Billing Settings > Configure Reason Codes)")
	}
	date, fe := dateField(m, "effectiveDate", false)
	if fe != nil {
		return fail(fe)
	}
	currency, fe := optString(m, "currency", 3)
	if fe != nil {
		return fail(fe)
	}
	autoPost, _, fe := boolField(m, "autoPost")
	if fe != nil {
		return fail(fe)
	}
	exclude, _, fe := boolField(m, "excludeFromAutoApplyRules")
	if fe != nil {
		return fail(fe)
	}
	rawCharges, fe := arrField(m, "charges")
	if fe != nil {
		return fail(fe)
	}
	charges, fe := objects(rawCharges, "charges")
	if fe != nil {
		return fail(fe)
	}
	if len(charges) == 0 {
		return fail(missing("charges"))
	}
	if len(charges) > 1000 {
		return c.restErr(catInvalidValue, "A credit memo can have at most 1000 charges")
	}
	if fe := s.tenant.custom("CreditMemo", m); fe != nil {
		return fail(fe)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if acctID == "" && acctNum == "" {
		return fail(missing("accountId or accountNumber"))
	}
	key := acctID
	if key == "" {
		key = acctNum
	}
	a := s.st.account(key)
	if a == nil {
		return c.restErr(catInvalidValue, "The account "+key+" does not exist")
	}
	if acctID != "" && acctNum != "" && (a.ID != acctID || a.Number != acctNum) {
		return c.restErr(catInvalidValue, "accountId and accountNumber do not identify the same account")
	}
	if a.Status != "Active" {
		return c.restErr(catBusiness, "The account "+a.Number+" is not active")
	}
	if currency != "" && currency != a.Currency {
		return c.restErr(catInvalidValue, fmt.Sprintf("The currency %s is not the account's currency %s", currency, a.Currency))
	}
	b := s.st.billing()
	if number != "" && b.memo(number) != nil {
		return c.restErr(catBusiness, "The credit memo number "+number+" already exists")
	}
	total := decimal.Zero
	var ids []string
	for i, ch := range charges {
		for k := range ch {
			if !memoChargeFields[k] && !isCustomField(k) {
				return c.restErr(catUnknownField, fmt.Sprintf("charges[%d]: unknown field '%s'", i, k))
			}
		}
		id, fe := optString(ch, "productRatePlanChargeId", 32)
		if fe != nil {
			return fail(fe)
		}
		if id == "" {
			return fail(missing(fmt.Sprintf("charges[%d].productRatePlanChargeId", i)))
		}
		pc := s.st.charges[id]
		if pc == nil {
			return c.restErr(catInvalidValue, fmt.Sprintf("charges[%d]: the product rate plan charge %s does not exist", i, id))
		}
		if slices.Contains(memoDiscountModels, str(pc.Fields["ChargeModel"])) {
			return c.restErr(catBusiness, fmt.Sprintf("charges[%d]: a credit memo cannot be created from a discount charge (%s)", i, str(pc.Fields["ChargeModel"])))
		}
		amt, ok, fe := numField(ch, "amount", false)
		if fe != nil {
			return fail(fe)
		}
		if !ok {
			return fail(missing(fmt.Sprintf("charges[%d].amount", i)))
		}
		d, err := decimal.NewFromString(amt.String())
		if err != nil || !d.IsPositive() {
			return c.restErr(catInvalidValue, fmt.Sprintf("charges[%d]: the amount must be greater than 0", i))
		}
		if decimalsOf(amt.String()) > 2 {
			return c.restErr(catInvalidValue, fmt.Sprintf("charges[%d]: the amount %s has more decimal places than the currency %s allows (2)", i, amt, a.Currency))
		}
		if q, ok, fe := numField(ch, "quantity", false); fe != nil {
			return fail(fe)
		} else if ok {
			if qd, err := decimal.NewFromString(q.String()); err != nil || !qd.IsPositive() {
				return c.restErr(catInvalidValue, fmt.Sprintf("charges[%d]: the quantity must be greater than 0", i))
			}
		}
		start, fe := dateField(ch, "serviceStartDate", false)
		if fe != nil {
			return fail(fe)
		}
		end, fe := dateField(ch, "serviceEndDate", false)
		if fe != nil {
			return fail(fe)
		}
		if start != "" && end != "" && end < start {
			return c.restErr(catInvalidValue, fmt.Sprintf("charges[%d]: serviceEndDate %s is before serviceStartDate %s", i, end, start))
		}
		if fe := s.tenant.custom("CreditMemoItem", ch); fe != nil {
			return fail(fe)
		}
		total = total.Add(d)
		ids = append(ids, id)
	}
	now := c.now
	if date == "" {
		date = now.In(s.tenant.loc).Format(dateLayout)
	}
	memo := s.newMemo(&creditMemo{AccountID: a.ID, Date: date, Amount: total, Currency: a.Currency, Status: "Draft", ReasonCode: reasonCode,
		Comment: comment, ChargeIDs: ids, ExcludeFromAutoApply: exclude, Created: now, Updated: now}, number)
	if memo.ReasonCode == "" {
		memo.ReasonCode = memoReasonCodes[0]
	}
	if autoPost {
		memo.Status, memo.PostedOn = "Posted", now
	}
	out := s.memoView(memo)
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) memoView(m *creditMemo) map[string]any {
	d := map[string]any{"id": m.ID, "number": m.Number, "accountId": m.AccountID, "amount": money(m.Amount), "appliedAmount": money(m.Applied),
		"unappliedAmount": money(m.Amount.Sub(m.Applied)), "refundAmount": 0.0, "taxAmount": 0.0, "totalTaxExemptAmount": 0.0,
		"creditMemoDate": m.Date, "currency": m.Currency, "status": m.Status, "reasonCode": m.ReasonCode, "comment": m.Comment,
		"excludeFromAutoApplyRules": m.ExcludeFromAutoApply, "autoApplyUponPosting": false, "reversed": false,
		"transferredToAccounting": "No", "source": "AdhocFromPrpc", "sourceType": "Standalone", "taxStatus": "Complete",
		"createdDate": rfc(m.Created), "updatedDate": rfc(m.Updated), "createdById": simUserID, "updatedById": simUserID}
	if a := s.st.accounts[m.AccountID]; a != nil {
		d["accountNumber"] = a.Number
	}
	if m.ReferredInvoiceID != "" {
		d["referredInvoiceId"], d["source"], d["sourceType"] = m.ReferredInvoiceID, "AdhocFromInvoice", "Invoice"
	}
	if m.Status == "Posted" {
		d["postedOn"], d["postedById"] = rfc(m.PostedOn), simUserID
	}
	return d
}

// getCreditMemo serves GET /v1/credit-memos/{creditMemoKey} (id or number).
func (s *Sim) getCreditMemo(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.billing().memo(c.param("creditMemoKey"))
	if m == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("creditMemoKey")+"'.")
	}
	out := s.memoView(m)
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

// listFilters are the GET /v1/credit-memos filters the simulator applies;
// the others in the spec are refused rather than ignored (an ignored filter
// would answer memos the caller did not ask for).
var memoListFilters = []string{"accountId", "accountNumber", "number", "status", "page", "pageSize"}

// listCreditMemos serves GET /v1/credit-memos, oldest first.
func (s *Sim) listCreditMemos(c *call) *resp {
	page, size, bad := c.pageParams(20)
	if bad != nil {
		return bad
	}
	q := c.r.URL.Query()
	for k := range q {
		if !slices.Contains(memoListFilters, k) {
			return c.restErr(catInvalidValue, "The filter '"+k+"' is not supported by this simulator's GET /v1/credit-memos")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.billing()
	var match []*creditMemo
	for _, id := range b.MemoOrder {
		m := b.Memos[id]
		a := s.st.accounts[m.AccountID]
		switch {
		case q.Get("accountId") != "" && m.AccountID != q.Get("accountId"),
			q.Get("accountNumber") != "" && (a == nil || a.Number != q.Get("accountNumber")),
			q.Get("number") != "" && m.Number != q.Get("number"),
			q.Get("status") != "" && m.Status != q.Get("status"):
			continue
		}
		match = append(match, m)
	}
	from := (page - 1) * size
	to := min(from+size, len(match))
	list := []map[string]any{}
	if from < len(match) {
		for _, m := range match[from:to] {
			list = append(list, s.memoView(m))
		}
	}
	out := map[string]any{"success": true, "creditmemos": list}
	if to < len(match) {
		out["nextPage"] = c.nextPageURL(page, size)
	}
	return jsonResp(http.StatusOK, out)
}

// processing is an order's processingOptions, as far as the simulator
// models them.
type processing struct {
	writeOff bool
}

// parseProcessing checks an order's processingOptions. writeOff (write off
// the unpaid invoices of the cancelled subscriptions) needs runBilling and
// collectPayment given and false: the simulator does not bill in an order,
// and Zuora's write-off tutorial sets collectPayment false. A refund is not
// modelled and is refused.
func parseProcessing(m map[string]any, actions []string) (processing, *fieldErr) {
	var p processing
	po, fe := objField(m, "processingOptions")
	if fe != nil || po == nil {
		return p, fe
	}
	allowed := []string{"runBilling", "collectPayment", "writeOff", "writeOffBehavior", "billingOptions", "electronicPaymentOptions", "applyCreditBalance",
		"refund", "refundAmount", "refundReasonCode"}
	for k := range po {
		if !slices.Contains(allowed, k) {
			return p, &fieldErr{cat: catUnknownField, msg: "Unknown field 'processingOptions." + k + "'"}
		}
	}
	run, runSet, fe := boolField(po, "runBilling")
	if fe != nil {
		return p, fe
	}
	collect, collectSet, fe := boolField(po, "collectPayment")
	if fe != nil {
		return p, fe
	}
	wo, _, fe := boolField(po, "writeOff")
	if fe != nil {
		return p, fe
	}
	refund, _, fe := boolField(po, "refund")
	if fe != nil {
		return p, fe
	}
	if refund {
		return p, business("processingOptions.refund is not modelled by the simulator (a refund needs payments to refund)")
	}
	if wob, fe := objField(po, "writeOffBehavior"); fe != nil {
		return p, fe
	} else if wob != nil {
		if !wo {
			return p, invalid("processingOptions.writeOffBehavior is only allowed with writeOff true")
		}
		for k := range wob {
			if k != "financeInformation" {
				return p, &fieldErr{cat: catUnknownField, msg: "Unknown field 'processingOptions.writeOffBehavior." + k + "'"}
			}
		}
	}
	if !wo {
		return p, nil
	}
	switch {
	case !slices.Contains(actions, "CancelSubscription"):
		return p, business("processingOptions.writeOff writes off the unpaid invoices of a cancelled subscription: the order has no CancelSubscription action")
	case !runSet || !collectSet:
		return p, missing("processingOptions.runBilling and processingOptions.collectPayment (required with writeOff)")
	case collect:
		return p, business("processingOptions.writeOff cannot be combined with collectPayment true: write off unpaid invoices, or collect them")
	case run:
		return p, business("processingOptions.runBilling true with writeOff is not modelled by the simulator (it bills in bill runs); send runBilling false")
	}
	p.writeOff = true
	return p, nil
}

// actionTypesOf lists the action types of an order's subscriptions.
func actionTypesOf(subs []map[string]any) []string {
	var out []string
	for _, sm := range subs {
		acts, _ := sm["orderActions"].([]any)
		for _, a := range acts {
			if am, ok := a.(map[string]any); ok {
				out = append(out, str(am["type"]))
			}
		}
	}
	return out
}

// writeOffInvoices writes off every posted invoice with a balance that bills
// one of the subscriptions the order cancelled: a Posted credit memo
// (reason code Write-off) for the balance, applied to the invoice, whose
// balance becomes 0, with the Invoice UPDATE event. The caller holds s.mu.
func (o *orderRun) writeOffInvoices() []map[string]any {
	out := []map[string]any{}
	b := o.st.billing()
	for _, id := range b.InvoiceOrder {
		inv := b.Invoices[id]
		if inv.Status != "Posted" || !inv.Balance.IsPositive() || inv.AccountID != o.acct.ID {
			continue
		}
		hit := false
		for _, sub := range o.results {
			if sub.latest().Status == "Cancelled" && slices.Contains(inv.Subscriptions, sub.Number) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		old := invoiceFields(inv)
		memo := o.s.newMemo(&creditMemo{AccountID: inv.AccountID, Date: o.today, Amount: inv.Balance, Applied: inv.Balance, Currency: o.acct.Currency,
			Status: "Posted", ReasonCode: "Write-off", ReferredInvoiceID: inv.ID, PostedOn: o.now, Created: o.now, Updated: o.now}, "")
		out = append(out, map[string]any{"invoiceNumber": inv.Number, "amount": money(inv.Balance), "status": "Success", "writeOffCreditMemoNumber": memo.Number})
		inv.Balance = decimal.Zero
		inv.Updated = o.now
		o.events = append(o.events, o.s.objectEvent("Invoice", "UPDATE", invoiceFields(inv), old, inv.AccountID))
	}
	return out
}

// MemoSnapshot is a credit memo, for assertions.
type MemoSnapshot struct {
	ID, Number, AccountID string
	Amount, Applied       string
	Status, ReasonCode    string
	Comment               string
	ReferredInvoiceID     string
	ChargeIDs             []string
}

// CreditMemos returns every credit memo, oldest first.
func (s *Sim) CreditMemos() []MemoSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.billing()
	out := []MemoSnapshot{}
	for _, id := range b.MemoOrder {
		m := b.Memos[id]
		out = append(out, MemoSnapshot{ID: m.ID, Number: m.Number, AccountID: m.AccountID, Amount: m.Amount.String(), Applied: m.Applied.String(),
			Status: m.Status, ReasonCode: m.ReasonCode, Comment: m.Comment, ReferredInvoiceID: m.ReferredInvoiceID, ChargeIDs: slices.Clone(m.ChargeIDs)})
	}
	return out
}

// memoPage is the credit memo's page in the simulator's UI.
func (s *Sim) memoPage(id string) (pageData, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.billing().memo(id)
	if m == nil {
		return pageData{Title: id, Kind: "CreditMemo", Index: "../"}, false
	}
	acct := ""
	if a := s.st.accounts[m.AccountID]; a != nil {
		acct = a.Number
	}
	return pageData{Title: m.Number, Kind: "CreditMemo", Index: "../", Fields: []pageField{{"Id", m.ID}, {"Number", m.Number},
		{"Account", acct}, {"Amount", m.Amount.String() + " " + m.Currency}, {"AppliedAmount", m.Applied.String()}, {"Status", m.Status},
		{"ReasonCode", m.ReasonCode}, {"Comment", m.Comment}, {"CreditMemoDate", m.Date}, {"ReferredInvoiceId", m.ReferredInvoiceID}}}, true
}
