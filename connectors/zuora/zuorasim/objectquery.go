package zuorasim

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// oqFilter is one filter[] term: field.OP:value (field names lower-case,
// Object Query style).
type oqFilter struct {
	field, op, value string
}

var oqOps = set("EQ", "NE", "LT", "GT", "LE", "GE", "SW", "IN")

func parseOQFilters(vals []string) ([]oqFilter, string) {
	var out []oqFilter
	for _, v := range vals {
		lhs, value, ok := strings.Cut(v, ":")
		if !ok {
			return nil, "invalid filter " + v + " (expected field.OP:value)"
		}
		dot := strings.LastIndex(lhs, ".")
		if dot < 0 {
			return nil, "invalid filter " + v + " (expected field.OP:value)"
		}
		f := oqFilter{field: strings.ToLower(lhs[:dot]), op: strings.ToUpper(lhs[dot+1:]), value: value}
		if !oqOps[f.op] {
			return nil, "invalid filter operator " + f.op
		}
		out = append(out, f)
	}
	return out, ""
}

// oqRow is a record plus its lower-cased field index for filtering.
type oqRow struct {
	data    map[string]any
	lower   map[string]string
	updated time.Time
	id      string
}

func newOQRow(data map[string]any, updated time.Time, id string) oqRow {
	lower := make(map[string]string, len(data))
	for k, v := range data {
		switch x := v.(type) {
		case map[string]any, []any, []map[string]any:
			continue
		default:
			lower[strings.ToLower(k)] = str(x)
		}
	}
	return oqRow{data: data, lower: lower, updated: updated, id: id}
}

func compareValues(a, b string) int {
	if ta, ok := parseDateTime(a); ok {
		if tb, ok := parseDateTime(b); ok {
			return ta.Compare(tb)
		}
	}
	if fa, err := strconv.ParseFloat(a, 64); err == nil {
		if fb, err := strconv.ParseFloat(b, 64); err == nil {
			switch {
			case fa < fb:
				return -1
			case fa > fb:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(a, b)
}

func (r oqRow) match(fs []oqFilter) bool {
	for _, f := range fs {
		v, ok := r.lower[f.field]
		if !ok {
			if f.op == "NE" {
				continue
			}
			return false
		}
		var hit bool
		switch f.op {
		case "EQ":
			hit = compareValues(v, f.value) == 0
		case "NE":
			hit = compareValues(v, f.value) != 0
		case "LT":
			hit = compareValues(v, f.value) < 0
		case "GT":
			hit = compareValues(v, f.value) > 0
		case "LE":
			hit = compareValues(v, f.value) <= 0
		case "GE":
			hit = compareValues(v, f.value) >= 0
		case "SW":
			hit = strings.HasPrefix(v, f.value)
		case "IN":
			for _, x := range strings.Split(strings.Trim(f.value, "[]"), ",") {
				if compareValues(v, strings.TrimSpace(x)) == 0 {
					hit = true
				}
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// oqReason is an Object Query error reason: the spec types its code as an
// integer (CommonOQErrorResponse), unlike CommonResponse.
type oqReason struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func oqBody(reqID string, category int, msg string) map[string]any {
	return map[string]any{"reasons": []oqReason{{Code: resGeneric*100 + category, Message: msg}}, "requestId": reqID}
}

func (c *call) oqErr(status int, msg string) *resp {
	return jsonResp(status, oqBody(c.reqID, 27, msg))
}

func (s *Sim) objectQuery(c *call, rows []oqRow) *resp {
	q := c.r.URL.Query()
	size := 10
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 99 {
			return c.oqErr(http.StatusBadRequest, "pageSize must be between 1 and 99")
		}
		size = n
	}
	filters, msg := parseOQFilters(q["filter[]"])
	if msg != "" {
		return c.oqErr(http.StatusBadRequest, msg)
	}
	var sortField string
	desc := false
	if ss := q["sort[]"]; len(ss) > 0 {
		f, dir, _ := strings.Cut(ss[0], ".")
		sortField = strings.ToLower(f)
		desc = strings.EqualFold(dir, "DESC")
	}
	matched := rows[:0:0]
	for _, r := range rows {
		if r.match(filters) {
			matched = append(matched, r)
		}
	}
	sort.SliceStable(matched, func(i, j int) bool {
		if sortField != "" {
			cmp := compareValues(matched[i].lower[sortField], matched[j].lower[sortField])
			if cmp != 0 {
				return (cmp < 0) != desc
			}
			return matched[i].id < matched[j].id
		}
		if !matched[i].updated.Equal(matched[j].updated) {
			return matched[i].updated.Before(matched[j].updated)
		}
		return matched[i].id < matched[j].id
	})
	offset := 0
	if cur := q.Get("cursor"); cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 {
			return c.oqErr(http.StatusBadRequest, "invalid cursor")
		}
		offset = n
	}
	fields := map[string]bool{}
	for _, f := range q["fields[]"] {
		for _, x := range strings.Split(f, ",") {
			fields[strings.ToLower(strings.TrimSpace(x))] = true
		}
	}
	data := []map[string]any{}
	end := min(offset+size, len(matched))
	for i := offset; i < end; i++ {
		d := matched[i].data
		if len(fields) > 0 {
			x := map[string]any{}
			for k, v := range d {
				if fields[strings.ToLower(k)] || k == "id" {
					x[k] = v
				}
			}
			d = x
		}
		data = append(data, d)
	}
	out := map[string]any{"data": data}
	if end < len(matched) {
		out["nextPage"] = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return jsonResp(http.StatusOK, out)
}

func rfc(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (s *Sim) queryAccounts(c *call) *resp {
	s.mu.Lock()
	rows := make([]oqRow, 0, len(s.st.accountOrder))
	for _, id := range s.st.accountOrder {
		a := s.st.accounts[id]
		d := cloneMap(a.Custom)
		d["id"] = a.ID
		d["accountNumber"] = a.Number
		d["name"] = a.Name
		d["status"] = a.Status
		d["currency"] = a.Currency
		d["billCycleDay"] = a.BillCycleDay
		d["paymentTerm"] = a.PaymentTerm
		d["autoPay"] = a.AutoPay
		d["batch"] = str(a.Basic["batch"])
		if v := str(a.Basic["crmId"]); v != "" {
			d["crmId"] = v
		}
		if v := str(a.Basic["notes"]); v != "" {
			d["notes"] = v
		}
		d["billToId"] = a.BillTo.ID
		d["soldToId"] = a.SoldTo.ID
		d["invoiceDeliveryPrefsEmail"] = a.InvoiceDeliveryPrefsEmail
		d["invoiceDeliveryPrefsPrint"] = a.InvoiceDeliveryPrefsPrint
		d["createdDate"] = rfc(a.Created)
		d["updatedDate"] = rfc(a.Updated)
		d["createdById"], d["updatedById"] = simUserID, simUserID
		rows = append(rows, newOQRow(d, a.Updated, a.ID))
	}
	s.mu.Unlock()
	return s.objectQuery(c, rows)
}

// querySubscriptions lists every subscription version (as Zuora's data
// model holds one record per version); filter isLatestVersion.EQ:true for
// the current ones.
func (s *Sim) querySubscriptions(c *call) *resp {
	s.mu.Lock()
	rows := make([]oqRow, 0, len(s.st.subOrder))
	for _, num := range s.st.subOrder {
		sub := s.st.subs[num]
		latest := sub.latest()
		var prev string
		for _, v := range sub.Versions {
			d := cloneMap(v.Custom)
			d["id"] = v.ID
			d["name"] = sub.Number
			d["originalId"] = sub.OriginalID
			if prev != "" {
				d["previousSubscriptionId"] = prev
			}
			prev = v.ID
			d["version"] = v.Version
			d["isLatestVersion"] = v == latest
			d["status"] = v.Status
			d["accountId"] = sub.AccountID
			d["invoiceOwnerId"] = sub.InvoiceOwnerID
			d["termType"] = v.TermType
			if v.TermType == "TERMED" {
				d["initialTerm"], d["initialTermPeriodType"] = v.InitialTerm, v.InitialTermPeriodType
				d["currentTerm"], d["currentTermPeriodType"] = v.CurrentTerm, v.CurrentTermPeriodType
				d["renewalTerm"], d["renewalTermPeriodType"] = v.RenewalTerm, v.RenewalTermPeriodType
				d["termEndDate"] = v.TermEndDate
			}
			d["renewalSetting"] = v.RenewalSetting
			d["autoRenew"] = v.AutoRenew
			d["contractEffectiveDate"] = v.ContractEffectiveDate
			d["serviceActivationDate"] = v.ServiceActivationDate
			d["subscriptionStartDate"] = v.SubscriptionStartDate
			if v.SubscriptionEndDate != "" {
				d["subscriptionEndDate"] = v.SubscriptionEndDate
			}
			if v.CancelledDate != "" {
				d["cancelledDate"] = v.CancelledDate
			}
			d["termStartDate"] = v.TermStartDate
			d["currency"] = v.Currency
			d["isInvoiceSeparate"] = v.InvoiceSeparately
			d["createdDate"] = rfc(v.Created)
			d["updatedDate"] = rfc(v.Updated)
			d["originalCreatedDate"] = rfc(sub.Versions[0].Created)
			d["createdById"], d["updatedById"] = simUserID, simUserID
			rows = append(rows, newOQRow(d, v.Updated, v.ID))
		}
	}
	s.mu.Unlock()
	return s.objectQuery(c, rows)
}

// queryRatePlanCharges serves GET /object-query/rate-plan-charges: one row
// per charge of every subscription version (as Zuora's data model holds
// them); filter[] is required (the OpenAPI file).
func (s *Sim) queryRatePlanCharges(c *call) *resp {
	if len(c.r.URL.Query()["filter[]"]) == 0 {
		return c.oqErr(http.StatusBadRequest, "filter[] is required")
	}
	s.mu.Lock()
	var rows []oqRow
	for _, num := range s.st.subOrder {
		sub := s.st.subs[num]
		bt := s.st.billedThrough[sub.AccountID]
		for _, v := range sub.Versions {
			for _, rp := range v.RatePlans {
				for _, ch := range rp.Charges {
					d := cloneMap(ch.Custom)
					d["id"] = ch.ID
					d["originalId"] = ch.OriginalID
					d["chargeNumber"] = ch.Number
					d["name"] = ch.Name
					d["chargeType"] = ch.Type
					d["chargeModel"] = ch.Model
					d["productRatePlanChargeId"] = ch.PRPCID
					d["ratePlanId"] = rp.ID
					d["subscriptionId"] = v.ID
					d["subscriptionOwnerId"] = sub.AccountID
					d["version"] = ch.Version
					d["isLastSegment"] = true
					if ch.UOM != "" {
						d["uOM"] = ch.UOM
					}
					if bt != "" {
						if ch.Type == "Usage" {
							d["processedThroughDate"] = bt
						} else {
							d["chargedThroughDate"] = bt
						}
					}
					d["createdDate"] = rfc(v.Created)
					d["updatedDate"] = rfc(v.Updated)
					d["createdById"], d["updatedById"] = simUserID, simUserID
					rows = append(rows, newOQRow(d, v.Updated, ch.ID+"/"+v.ID))
				}
			}
		}
	}
	s.mu.Unlock()
	return s.objectQuery(c, rows)
}
