package zuorasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

var usageFields = set("AccountId", "AccountNumber", "ChargeId", "ChargeNumber", "Description", "EndDateTime", "ProductRatePlanChargeNumber",
	"Quantity", "StartDateTime", "SubscriptionId", "SubscriptionNumber", "UOM", "UniqueKey")

type saveResult struct {
	ID      string          `json:"Id,omitempty"`
	Success bool            `json:"Success"`
	Errors  []actionErrItem `json:"Errors,omitempty"`
}

type actionErrItem struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

func parseDateTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", dateLayout} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// tenantDateTime reads a usage date-time as Zuora does: a value without
// offset is in the tenant's time zone; one with an offset is converted into
// it (docs.zuora.com "DateTime field behavior after changing your time
// zone"; docs/zuora-rules.md). Usage is rated by its day in that zone.
func tenantDateTime(v string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.In(loc), true
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", dateLayout} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func wsdlVersion(c *call) float64 {
	v := c.r.Header.Get("X-Zuora-WSDL-Version")
	if v == "" {
		return 79
	}
	return versionValue(v)
}

// postActionCreate serves POST /v1/action/create for type Usage.
func (s *Sim) postActionCreate(c *call) *resp {
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.UseNumber()
	var req struct {
		Type    string           `json:"type"`
		Objects []map[string]any `json:"objects"`
	}
	if err := dec.Decode(&req); err != nil {
		return crudBad("INVALID_VALUE", "Malformed JSON body: "+err.Error())
	}
	if req.Type == "" {
		return crudBad("MISSING_REQUIRED_VALUE", "Missing required value: type")
	}
	if req.Objects == nil {
		return crudBad("MISSING_REQUIRED_VALUE", "Missing required value: objects")
	}
	if len(req.Objects) > 50 {
		return crudBad("MAX_RECORDS_EXCEEDED", fmt.Sprintf("A create call accepts at most 50 objects (got %d)", len(req.Objects)))
	}
	if c.r.URL.Query().Get("rejectUnknownFields") == "true" {
		for _, o := range req.Objects {
			if len(unknownKeys(o, usageFields)) > 0 {
				return jsonResp(http.StatusBadRequest, map[string]any{"message": "Error - unrecognised fields"})
			}
		}
	}
	results := make([]saveResult, 0, len(req.Objects))
	if req.Type != "Usage" {
		for range req.Objects {
			results = append(results, saveResult{Errors: []actionErrItem{{Code: "INVALID_TYPE", Message: "The simulator supports only type Usage for action/create (got " + req.Type + ")"}}})
		}
		return jsonResp(http.StatusOK, results)
	}
	wsdl := wsdlVersion(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range req.Objects {
		u, code, msg := s.validateUsage(o, wsdl)
		if u == nil {
			results = append(results, saveResult{Errors: []actionErrItem{{Code: code, Message: msg}}})
			continue
		}
		u.ID = s.st.newID()
		u.Submitted = c.now
		s.st.usage = append(s.st.usage, u)
		s.st.usageByAccount[u.AccountID] = append(s.st.usageByAccount[u.AccountID], u)
		results = append(results, saveResult{ID: u.ID, Success: true})
	}
	return jsonResp(http.StatusOK, results)
}

// validateUsage checks one usage row; the caller holds s.mu.
func (s *Sim) validateUsage(o map[string]any, wsdl float64) (*usageRecord, string, string) {
	st := s.st
	for k, v := range o {
		if v == nil {
			return nil, "INVALID_VALUE", "Null values are not allowed in action calls (" + k + ")"
		}
	}
	u := &usageRecord{Custom: customFields(o)}
	accID, _ := o["AccountId"].(string)
	accNum, _ := o["AccountNumber"].(string)
	if accID == "" && accNum == "" {
		return nil, "MISSING_REQUIRED_VALUE", "AccountId or AccountNumber is required"
	}
	var acc *account
	if accID != "" {
		acc = st.accounts[accID]
		if acc == nil {
			return nil, "INVALID_VALUE", "invalid AccountId " + accID
		}
	}
	if accNum != "" {
		a := st.accountByNumber[accNum]
		if a == nil {
			return nil, "INVALID_VALUE", "invalid AccountNumber " + accNum
		}
		if acc != nil && acc != a {
			return nil, "INVALID_VALUE", "AccountId and AccountNumber refer to different accounts"
		}
		acc = a
	}
	u.AccountID, u.AccountNumber = acc.ID, acc.Number
	uom, ok := o["UOM"].(string)
	if !ok || uom == "" {
		return nil, "MISSING_REQUIRED_VALUE", "Missing required value: UOM"
	}
	if fe := s.tenant.uom(uom); fe != nil {
		return nil, "INVALID_VALUE", fe.msg
	}
	if fe := s.tenant.custom("Usage", o); fe != nil {
		return nil, crudCode(fe.cat), fe.msg
	}
	u.UOM = uom
	q, ok := o["Quantity"].(json.Number)
	if !ok {
		if _, present := o["Quantity"]; present {
			return nil, "INVALID_VALUE", "Quantity should be a number"
		}
		return nil, "MISSING_REQUIRED_VALUE", "Missing required value: Quantity"
	}
	if d, err := decimal.NewFromString(q.String()); err != nil {
		return nil, "INVALID_VALUE", "Quantity should be a number"
	} else if len(d.Truncate(0).Abs().String()) > 13 {
		// The usage import's rule ("The Usage Quantity exceeds 13 digits
		// before the decimal"), read as Zuora's for every usage record.
		return nil, "INVALID_VALUE", "The Usage Quantity exceeds 13 digits before the decimal"
	}
	u.Quantity = q
	sdt, ok := o["StartDateTime"].(string)
	if !ok || sdt == "" {
		return nil, "MISSING_REQUIRED_VALUE", "Missing required value: StartDateTime"
	}
	t, ok := tenantDateTime(sdt, s.tenant.loc)
	if !ok {
		return nil, "INVALID_VALUE", "StartDateTime is not a valid date-time: " + sdt
	}
	u.StartDateTime = t
	if edt, ok := o["EndDateTime"].(string); ok && edt != "" {
		et, ok := tenantDateTime(edt, s.tenant.loc)
		if !ok {
			return nil, "INVALID_VALUE", "EndDateTime is not a valid date-time: " + edt
		}
		u.EndDateTime = &et
	}
	u.Description, _ = o["Description"].(string)
	if len(u.Description) > 200 {
		return nil, "INVALID_VALUE", "Description may not exceed 200 characters"
	}
	if key, ok := o["UniqueKey"].(string); ok && key != "" {
		if wsdl < 114 {
			return nil, "INVALID_FIELD", "UniqueKey requires X-Zuora-WSDL-Version 114 or later"
		}
		u.UniqueKey = key
	}
	if _, ok := o["ProductRatePlanChargeNumber"]; ok && wsdl < 146 {
		return nil, "INVALID_FIELD", "ProductRatePlanChargeNumber requires X-Zuora-WSDL-Version 146 or later"
	}
	subNum, _ := o["SubscriptionNumber"].(string)
	subID, _ := o["SubscriptionId"].(string)
	var sub *subscription
	if subNum != "" {
		sub = st.subs[subNum]
		if sub == nil {
			return nil, "INVALID_VALUE", "invalid SubscriptionNumber " + subNum
		}
	}
	if subID != "" {
		x := st.subByID[subID]
		if x == nil || x.OriginalID != subID {
			return nil, "INVALID_VALUE", "invalid SubscriptionId " + subID + " (the original subscription id is expected)"
		}
		if sub != nil && sub != x {
			return nil, "INVALID_VALUE", "SubscriptionId and SubscriptionNumber refer to different subscriptions"
		}
		sub = x
	}
	if sub != nil && sub.AccountID != acc.ID {
		return nil, "INVALID_VALUE", "The subscription " + sub.Number + " does not belong to account " + acc.Number
	}
	chNum, _ := o["ChargeNumber"].(string)
	chID, _ := o["ChargeId"].(string)
	if chNum != "" || chID != "" {
		var found *subCharge
		var owner *subscription
		candidates := []*subscription{sub}
		if sub == nil {
			candidates = nil
			for _, n := range st.subsByAccount[acc.ID] {
				candidates = append(candidates, st.subs[n])
			}
		}
		for _, cs := range candidates {
			for _, rp := range cs.latest().RatePlans {
				for _, ch := range rp.Charges {
					if (chNum != "" && ch.Number == chNum) || (chNum == "" && ch.OriginalID == chID) {
						found, owner = ch, cs
					}
				}
			}
		}
		if found == nil {
			return nil, "INVALID_VALUE", "invalid ChargeNumber " + firstNonEmpty(chNum, chID) + " for the account/subscription"
		}
		if chID != "" && found.OriginalID != chID {
			return nil, "INVALID_VALUE", "ChargeId and ChargeNumber refer to different charges"
		}
		if found.UOM != uom {
			return nil, "INVALID_VALUE", fmt.Sprintf("The UOM %s does not match the charge %s (UOM %s)", uom, found.Number, found.UOM)
		}
		sub = owner
		u.ChargeNumber, u.ChargeID = found.Number, found.OriginalID
	}
	if sub != nil {
		u.SubscriptionNumber, u.SubscriptionID = sub.Number, sub.OriginalID
	}
	return u, "", ""
}

func (s *Sim) getUsageByAccount(c *call) *resp {
	page, size, bad := c.pageParams(20)
	if bad != nil {
		return bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processImportsLocked(c.now)
	a := s.st.account(c.param("account-key"))
	if a == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("account-key")+"'.")
	}
	rows := append([]*usageRecord(nil), s.st.usageByAccount[a.ID]...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Submitted.After(rows[j].Submitted) })
	from := (page - 1) * size
	to := min(from+size, len(rows))
	list := []map[string]any{}
	if from < len(rows) {
		for _, u := range rows[from:to] {
			x := cloneMap(u.Custom)
			x["id"] = u.ID
			x["accountId"], x["accountNumber"], x["accountName"] = a.ID, a.Number, a.Name
			x["unitOfMeasure"] = u.UOM
			x["quantity"] = numberValue(u.Quantity)
			x["startDateTime"] = u.StartDateTime.In(s.tenant.loc).Format("2006-01-02 15:04:05") // the tenant's time zone
			x["submissionDateTime"] = u.Submitted.UTC().Format("2006-01-02 15:04:05")
			x["status"] = firstNonEmpty(u.Status, "Pending")
			x["sourceName"] = firstNonEmpty(u.Source, "API")
			if u.EndDateTime != nil {
				x["endDateTime"] = u.EndDateTime.In(s.tenant.loc).Format("2006-01-02 15:04:05")
			}
			if u.SubscriptionNumber != "" {
				x["subscriptionNumber"] = u.SubscriptionNumber
			}
			if u.ChargeNumber != "" {
				x["chargeNumber"] = u.ChargeNumber
			}
			if u.Description != "" {
				x["description"] = u.Description
			}
			if u.UniqueKey != "" {
				x["uniqueKey"] = u.UniqueKey
			}
			list = append(list, x)
		}
	}
	out := map[string]any{"success": true, "usage": list}
	if to < len(rows) {
		out["nextPage"] = c.nextPageURL(page, size)
	}
	return jsonResp(http.StatusOK, out)
}

// BillRunResult is what a bill run did for one account.
type BillRunResult struct {
	AccountNumber string `json:"accountNumber"`
	BilledThrough string `json:"billedThrough"`
	// UsageProcessed are the usage records rated by this run; UsageLeft
	// the records of days billed by an earlier run, never rated (Zuora
	// leaves usage of a billed period Pending).
	UsageProcessed int `json:"usageProcessed"`
	UsageLeft      int `json:"usageLeftPending"`
	// InvoiceNumber is the invoice the run created ("" when there was
	// nothing to bill).
	InvoiceNumber string `json:"invoiceNumber,omitempty"`
	InvoiceID     string `json:"invoiceId,omitempty"`
}

// BillRun invoices every account up to (not including) targetDate and posts
// the invoices (a bill run with auto-post): usage whose day (in the tenant's
// time zone) is before it and after the account's previous bill run becomes
// Processed; usage of an already billed day stays Pending for good; the
// recurring and one-time charges become one invoice per account (Invoice
// INSERT as Draft, then UPDATE to Posted). Accounts limits the run (nil: all).
func (s *Sim) BillRun(targetDate string, accounts ...string) ([]BillRunResult, error) {
	if _, err := time.Parse(dateLayout, targetDate); err != nil {
		return nil, fmt.Errorf("targetDate %q is not a yyyy-MM-dd date", targetDate)
	}
	s.mu.Lock()
	st := s.st
	now := s.Now()
	var out []BillRunResult
	var events []*event
	for _, id := range st.accountOrder {
		a := st.accounts[id]
		if len(accounts) > 0 && !slices.Contains(accounts, a.Number) {
			continue
		}
		prev := st.billedThrough[a.ID]
		if prev != "" && targetDate <= prev {
			out = append(out, BillRunResult{AccountNumber: a.Number, BilledThrough: prev})
			continue
		}
		res := BillRunResult{AccountNumber: a.Number, BilledThrough: targetDate}
		for _, u := range st.usageByAccount[a.ID] {
			if u.Status == "Processed" {
				continue
			}
			day := u.StartDateTime.In(s.tenant.loc).Format(dateLayout)
			switch {
			case day >= targetDate:
			case prev != "" && day < prev:
				res.UsageLeft++
			default:
				u.Status = "Processed"
				res.UsageProcessed++
			}
		}
		if inv := s.invoiceAccount(a, targetDate, now); inv != nil {
			events = append(events, s.objectEvent("Invoice", "INSERT", invoiceFields(inv), nil, a.ID))
			old := invoiceFields(inv)
			inv.Status, inv.PostedDate = "Posted", rfc(now)
			events = append(events, s.objectEvent("Invoice", "UPDATE", invoiceFields(inv), old, a.ID))
			res.InvoiceNumber, res.InvoiceID = inv.Number, inv.ID
		}
		st.billedThrough[a.ID] = targetDate
		out = append(out, res)
	}
	s.mu.Unlock()
	s.fire(events...)
	s.persist()
	return out, nil
}

func (s *Sim) controlBillRun(body []byte) *resp {
	var req struct {
		TargetDate string   `json:"targetDate"`
		Accounts   []string `json:"accounts"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	res, err := s.BillRun(req.TargetDate, req.Accounts...)
	if err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	return jsonResp(http.StatusOK, map[string]any{"accounts": res})
}
