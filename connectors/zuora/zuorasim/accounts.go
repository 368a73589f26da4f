package zuorasim

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

var (
	contactFields = set("firstName", "lastName", "address1", "address2", "city", "state", "zipCode", "country", "county", "workEmail",
		"personalEmail", "workPhone", "homePhone", "mobilePhone", "fax", "nickname", "otherPhone", "otherPhoneType", "taxRegion")
	basicFields = []string{"crmId", "batch", "notes", "parentId", "salesRep", "communicationProfileId", "invoiceTemplateId", "purchaseOrderNumber",
		"customerServiceRepName", "creditMemoTemplateId", "debitMemoTemplateId", "sequenceSetId", "summaryStatementTemplateId", "profileNumber", "organizationLabel"}
	paymentTerms = set("Due Upon Receipt", "Net 15", "Net 30", "Net 45", "Net 60", "Net 90")
)

// accountInput is the validated body of POST /v1/accounts or an order's newAccount.
type accountInput struct {
	number, name, currency, paymentTerm string
	billCycleDay                        int
	autoPay, emailPrefs, printPrefs     bool
	basic                               map[string]any
	billTo, soldTo, shipTo              map[string]any
	custom                              map[string]any
}

func parseContact(m map[string]any, k string, required bool) (map[string]any, *fieldErr) {
	o, e := objField(m, k)
	if e != nil {
		return nil, e
	}
	if o == nil {
		if required {
			return nil, missing(k)
		}
		return nil, nil
	}
	if _, e := reqString(o, "firstName", 100); e != nil {
		if e.cat == catMissing {
			return nil, missing(k + ".firstName")
		}
		return nil, e
	}
	if _, e := reqString(o, "lastName", 100); e != nil {
		if e.cat == catMissing {
			return nil, missing(k + ".lastName")
		}
		return nil, e
	}
	for _, f := range []string{"city", "state", "county", "taxRegion"} {
		if _, e := optString(o, f, 100); e != nil {
			return nil, e
		}
	}
	if _, e := optString(o, "personalEmail", 80); e != nil {
		return nil, e
	}
	out := pick(o, contactFields)
	// Orders spell the postal code postalCode (the accounts API zipCode):
	// keep it either way, stored as zipCode.
	if pc, ok := o["postalCode"]; ok && pc != nil {
		if _, e := optString(o, "postalCode", 20); e != nil {
			return nil, e
		}
		out["zipCode"] = pc
	}
	return out, nil
}

// parseAccount validates an account body. In orders (newAccount) custom
// fields come in customFields{}; in POST /v1/accounts as top-level *__c.
func parseAccount(m map[string]any, inOrder, bcdRequired bool) (*accountInput, *fieldErr) {
	in := &accountInput{basic: map[string]any{}}
	var e *fieldErr
	if in.name, e = reqString(m, "name", 255); e != nil {
		return nil, e
	}
	if in.currency, e = reqString(m, "currency", 3); e != nil {
		return nil, e
	}
	maxNum := 50
	if inOrder {
		maxNum = 70
	}
	if in.number, e = optString(m, "accountNumber", maxNum); e != nil {
		return nil, e
	}
	if strings.ContainsAny(in.number, "#?/") {
		return nil, invalid("'accountNumber' may not contain #, ? or /")
	}
	bcd, ok, e := intField(m, "billCycleDay")
	if e != nil {
		return nil, e
	}
	if !ok && bcdRequired {
		return nil, missing("billCycleDay")
	}
	if bcd < 0 || bcd > 31 {
		return nil, invalid("'billCycleDay' should be between 0 and 31")
	}
	in.billCycleDay = bcd
	if in.paymentTerm, e = optString(m, "paymentTerm", 0); e != nil {
		return nil, e
	}
	if in.paymentTerm != "" && !paymentTerms[in.paymentTerm] {
		return nil, invalid("The payment term %s does not exist", in.paymentTerm)
	}
	if in.paymentTerm == "" {
		in.paymentTerm = "Due Upon Receipt"
	}
	if in.autoPay, _, e = boolField(m, "autoPay"); e != nil {
		return nil, e
	}
	if in.autoPay && m["paymentMethod"] == nil && m["creditCard"] == nil && m["hpmCreditCardPaymentMethodId"] == nil {
		return nil, business("autoPay requires a payment method (paymentMethod, creditCard or hpmCreditCardPaymentMethodId)")
	}
	if in.emailPrefs, _, e = boolField(m, "invoiceDeliveryPrefsEmail"); e != nil {
		return nil, e
	}
	if in.printPrefs, _, e = boolField(m, "invoiceDeliveryPrefsPrint"); e != nil {
		return nil, e
	}
	if _, e = optString(m, "crmId", 100); e != nil {
		return nil, e
	}
	for _, k := range basicFields {
		if v, ok := m[k]; ok && v != nil {
			in.basic[k] = v
		}
	}
	if _, ok := in.basic["batch"]; !ok {
		in.basic["batch"] = "Batch1"
	}
	if in.billTo, e = parseContact(m, "billToContact", true); e != nil {
		return nil, e
	}
	if in.soldTo, e = parseContact(m, "soldToContact", false); e != nil {
		return nil, e
	}
	if in.shipTo, e = parseContact(m, "shipToContact", false); e != nil {
		return nil, e
	}
	if inOrder {
		cf, e := objField(m, "customFields")
		if e != nil {
			return nil, e
		}
		in.custom = customFields(cf)
		for k := range cf {
			if !isCustomField(k) {
				return nil, invalid("Unknown custom field %s", k)
			}
		}
	} else {
		in.custom = customFields(m)
	}
	return in, nil
}

// createAccount inserts an account; the caller holds s.mu.
func (s *Sim) createAccount(in *accountInput, now time.Time) (*account, *fieldErr) {
	st := s.st
	if fe := s.tenant.currency("currency", in.currency); fe != nil {
		return nil, fe
	}
	if fe := s.tenant.custom("Account", in.custom); fe != nil {
		return nil, fe
	}
	for _, ct := range []map[string]any{in.billTo, in.soldTo, in.shipTo} {
		if fe := s.tenant.custom("Contact", ct); fe != nil {
			return nil, fe
		}
	}
	if in.number != "" {
		if st.accountByNumber[in.number] != nil {
			return nil, business("The account number %s is already in use", in.number)
		}
		if strings.HasPrefix(in.number, "A0") {
			return nil, invalid("The account number may not start with the auto-number prefix A0")
		}
	}
	st.nAccount++
	num := in.number
	if num == "" {
		num = fmt.Sprintf("A%08d", st.nAccount)
	}
	a := &account{ID: st.newID(), Number: num, Name: in.name, Currency: in.currency, Status: "Active", Basic: in.basic,
		BillCycleDay: in.billCycleDay, PaymentTerm: in.paymentTerm, AutoPay: in.autoPay, InvoiceDeliveryPrefsEmail: in.emailPrefs,
		InvoiceDeliveryPrefsPrint: in.printPrefs, Custom: in.custom, Created: now, Updated: now}
	a.BillTo = &contact{ID: st.newID(), Fields: in.billTo}
	if in.soldTo != nil {
		a.SoldTo = &contact{ID: st.newID(), Fields: in.soldTo}
	} else {
		a.SoldTo = &contact{ID: st.newID(), Fields: maps.Clone(in.billTo)}
	}
	if in.shipTo != nil {
		a.ShipTo = &contact{ID: st.newID(), Fields: in.shipTo}
	}
	if a.Custom == nil {
		a.Custom = map[string]any{}
	}
	st.accounts[a.ID] = a
	st.accountByNumber[a.Number] = a
	st.accountOrder = append(st.accountOrder, a.ID)
	return a, nil
}

func (s *Sim) postAccount(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
	}
	if m["subscription"] != nil {
		return c.restErr(catBusiness, "The simulator does not support the legacy inline 'subscription'; use POST /v1/orders")
	}
	in, fe := parseAccount(m, false, true)
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	s.mu.Lock()
	a, fe := s.createAccount(in, c.now)
	if fe != nil {
		s.mu.Unlock()
		return c.restErr(fe.cat, fe.msg)
	}
	ev := s.accountEvent(a, "INSERT", nil)
	out := map[string]any{"success": true, "accountId": a.ID, "accountNumber": a.Number, "billToContactId": a.BillTo.ID, "soldToContactId": a.SoldTo.ID}
	if a.ShipTo != nil {
		out["shipToContactId"] = a.ShipTo.ID
	}
	s.mu.Unlock()
	s.fire(ev)
	return jsonResp(http.StatusOK, out)
}

func contactView(ct *contact, bill, sold, ship bool) map[string]any {
	if ct == nil {
		return nil
	}
	out := maps.Clone(ct.Fields)
	out["id"] = ct.ID
	out["asBillTo"], out["asSoldTo"], out["asShipTo"] = bill, sold, ship
	return out
}

func accountBasic(a *account) map[string]any {
	out := maps.Clone(a.Basic)
	maps.Copy(out, a.Custom)
	out["id"] = a.ID
	out["accountNumber"] = a.Number
	out["name"] = a.Name
	out["status"] = a.Status
	return out
}

func (s *Sim) getAccount(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.account(c.param("account-key"))
	if a == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("account-key")+"'.")
	}
	out := map[string]any{
		"success":   true,
		"basicInfo": accountBasic(a),
		"billingAndPayment": map[string]any{
			"billCycleDay": a.BillCycleDay, "currency": a.Currency, "paymentTerm": a.PaymentTerm, "autoPay": a.AutoPay,
			"invoiceDeliveryPrefsEmail": a.InvoiceDeliveryPrefsEmail, "invoiceDeliveryPrefsPrint": a.InvoiceDeliveryPrefsPrint,
			"additionalEmailAddresses": []string{}, "bcdSettingOption": bcdOption(a.BillCycleDay),
		},
		"metrics":       map[string]any{"balance": "0", "totalInvoiceBalance": "0", "creditBalance": "0", "contractedMrr": "0"},
		"billToContact": contactView(a.BillTo, true, a.SoldTo == nil, a.ShipTo == nil),
		"soldToContact": contactView(a.SoldTo, false, true, false),
	}
	if a.ShipTo != nil {
		out["shipToContact"] = contactView(a.ShipTo, false, false, true)
	}
	if a.DefaultPaymentMethodID != "" {
		out["billingAndPayment"].(map[string]any)["defaultPaymentMethodId"] = a.DefaultPaymentMethodID
	}
	return jsonResp(http.StatusOK, out)
}

func bcdOption(bcd int) string {
	if bcd == 0 {
		return "AutoSet"
	}
	return "ManualSet"
}

var accountPutFields = set("name", "crmId", "notes", "batch", "billCycleDay", "paymentTerm", "autoPay", "billToContact", "soldToContact", "shipToContact",
	"billToContactId", "soldToContactId", "shipToContactId", "defaultPaymentMethodId", "invoiceDeliveryPrefsEmail", "invoiceDeliveryPrefsPrint",
	"parentId", "salesRep", "taxInfo", "communicationProfileId", "invoiceTemplateId", "purchaseOrderNumber", "additionalEmailAddresses",
	"customerServiceRepName", "creditMemoTemplateId", "debitMemoTemplateId", "sequenceSetId", "summaryStatementTemplateId", "profileNumber",
	"tagging", "paymentGateway", "partnerAccount", "gatewayRoutingEligible", "einvoiceProfile")

func (s *Sim) putAccount(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
	}
	release, locked := s.lockAccount(s.accountNumberOf(c.param("account-key")))
	if locked {
		return c.restErr(catLock, lockCompetitionMessage)
	}
	defer release()
	if v, ok := m["name"]; ok {
		if n, _ := v.(string); strings.TrimSpace(n) == "" {
			return c.restErr(catInvalidValue, "'name' may not be empty")
		}
		if _, fe := reqString(m, "name", 255); fe != nil {
			return c.restErr(fe.cat, fe.msg)
		}
	}
	if _, fe := optString(m, "crmId", 100); fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	bcd, hasBCD, fe := intField(m, "billCycleDay")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	if hasBCD && (bcd < 0 || bcd > 31) {
		return c.restErr(catInvalidValue, "'billCycleDay' should be between 0 and 31")
	}
	pt, fe := optString(m, "paymentTerm", 0)
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	if pt != "" && !paymentTerms[pt] {
		return c.restErr(catInvalidValue, "The payment term "+pt+" does not exist")
	}
	autoPay, hasAutoPay, fe := boolField(m, "autoPay")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	email, hasEmail, fe := boolField(m, "invoiceDeliveryPrefsEmail")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	contacts := map[string]map[string]any{}
	for _, k := range []string{"billToContact", "soldToContact", "shipToContact"} {
		o, fe := objField(m, k)
		if fe != nil {
			return c.restErr(fe.cat, fe.msg)
		}
		if o != nil {
			contacts[k] = pick(o, contactFields)
		}
	}
	s.mu.Lock()
	a := s.st.account(c.param("account-key"))
	if a == nil {
		s.mu.Unlock()
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("account-key")+"'.")
	}
	if fe := s.tenant.custom("Account", customFields(m)); fe != nil {
		s.mu.Unlock()
		return c.restErr(fe.cat, fe.msg)
	}
	old := accountFields(a)
	if n, ok := m["name"].(string); ok {
		a.Name = n
	}
	if hasBCD {
		a.BillCycleDay = bcd
	}
	if pt != "" {
		a.PaymentTerm = pt
	}
	if hasAutoPay {
		a.AutoPay = autoPay
	}
	if hasEmail {
		a.InvoiceDeliveryPrefsEmail = email
	}
	for _, k := range basicFields {
		if v, ok := m[k]; ok {
			a.Basic[k] = v
		}
	}
	for k, v := range customFields(m) {
		a.Custom[k] = v
	}
	for k, fields := range contacts {
		var ct **contact
		switch k {
		case "billToContact":
			ct = &a.BillTo
		case "soldToContact":
			ct = &a.SoldTo
		default:
			ct = &a.ShipTo
		}
		if *ct == nil {
			*ct = &contact{ID: s.st.newID(), Fields: map[string]any{}}
		}
		maps.Copy((*ct).Fields, fields)
	}
	a.Updated = c.now
	ev := s.accountEvent(a, "UPDATE", old)
	s.mu.Unlock()
	s.fire(ev)
	return jsonResp(http.StatusOK, map[string]any{"success": true})
}

// accountFields are the merge/condition fields of an account (Zuora's
// object field names, PascalCase).
func accountFields(a *account) map[string]string {
	f := map[string]string{
		"Id": a.ID, "AccountNumber": a.Number, "Name": a.Name, "Status": a.Status, "Currency": a.Currency,
		"BillCycleDay": fmt.Sprint(a.BillCycleDay), "PaymentTerm": a.PaymentTerm, "CrmId": str(a.Basic["crmId"]),
		"Batch": str(a.Basic["batch"]), "Notes": str(a.Basic["notes"]), "SalesRepName": str(a.Basic["salesRep"]),
		"CreatedDate": a.Created.UTC().Format(time.RFC3339), "UpdatedDate": a.Updated.UTC().Format(time.RFC3339),
		"DefaultPaymentMethodId": a.DefaultPaymentMethodID,
	}
	for k, v := range a.Custom {
		f[k] = str(v)
	}
	return f
}
