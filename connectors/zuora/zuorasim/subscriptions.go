package zuorasim

import (
	"maps"
	"net/http"
	"strconv"
)

// segmentFor picks the segment to show for charge-detail.
func segmentFor(ch *subCharge, detail, asOf, today string) *segment {
	switch detail {
	case "current-segment", "specific-segment":
		d := today
		if detail == "specific-segment" && asOf != "" {
			d = asOf
		}
		for _, sg := range ch.Segments {
			if sg.Start <= d && (sg.End == "" || d < sg.End) {
				return sg
			}
		}
		if detail == "specific-segment" {
			return nil
		}
	}
	return ch.last()
}

func segmentView(sg *segment) map[string]any {
	out := map[string]any{"segment": sg.Segment, "effectiveStartDate": sg.Start}
	if sg.End != "" {
		out["effectiveEndDate"] = sg.End
	}
	if sg.Quantity != "" {
		out["quantity"] = numberValue(sg.Quantity)
	}
	if sg.Price != "" {
		out["price"] = numberValue(sg.Price)
	}
	if len(sg.Tiers) > 0 {
		ts := make([]map[string]any, 0, len(sg.Tiers))
		for _, t := range sg.Tiers {
			x := map[string]any{"tier": t.Tier, "priceFormat": map[string]string{"Flat Fee": "FlatFee", "Per Unit": "PerUnit"}[t.PriceFormat]}
			if x["priceFormat"] == "" {
				x["priceFormat"] = "PerUnit"
			}
			if t.StartingUnit != "" {
				x["startingUnit"] = numberValue(t.StartingUnit)
			}
			if t.EndingUnit != "" {
				x["endingUnit"] = numberValue(t.EndingUnit)
			}
			if t.Price != "" {
				x["price"] = numberValue(t.Price)
			}
			ts = append(ts, x)
		}
		out["tiers"] = ts
	}
	return out
}

func (s *Sim) subscriptionView(c *call, sub *subscription, v *subVersion) map[string]any {
	st := s.st
	q := c.r.URL.Query()
	detail := q.Get("charge-detail")
	asOf := q.Get("as-of-date")
	excludeEmpty := q.Get("exclude-rate-plans-with-no-charges") == "true"
	today := c.now.Format(dateLayout)
	out := maps.Clone(v.Custom)
	if out == nil {
		out = map[string]any{}
	}
	acc := st.accounts[sub.AccountID]
	inv := st.accounts[sub.InvoiceOwnerID]
	out["id"] = v.ID
	out["subscriptionNumber"] = sub.Number
	out["version"] = v.Version
	out["isLatestVersion"] = v == sub.latest()
	out["status"] = v.Status
	if v != sub.latest() {
		out["status"] = "Expired" // an amendment expires the version it replaces
	}
	out["accountId"] = sub.AccountID
	if acc != nil {
		out["accountNumber"], out["accountName"] = acc.Number, acc.Name
	}
	if inv != nil {
		out["invoiceOwnerAccountId"], out["invoiceOwnerAccountNumber"], out["invoiceOwnerAccountName"] = inv.ID, inv.Number, inv.Name
	}
	out["termType"] = v.TermType
	if v.TermType == "TERMED" {
		out["initialTerm"], out["initialTermPeriodType"] = v.InitialTerm, v.InitialTermPeriodType
		out["currentTerm"], out["currentTermPeriodType"] = v.CurrentTerm, v.CurrentTermPeriodType
		out["renewalTerm"], out["renewalTermPeriodType"] = v.RenewalTerm, v.RenewalTermPeriodType
	}
	out["renewalSetting"] = v.RenewalSetting
	out["autoRenew"] = v.AutoRenew
	out["contractEffectiveDate"] = v.ContractEffectiveDate
	out["serviceActivationDate"] = v.ServiceActivationDate
	out["customerAcceptanceDate"] = v.CustomerAcceptanceDate
	out["subscriptionStartDate"] = v.SubscriptionStartDate
	out["termStartDate"] = v.TermStartDate
	// No scheduledSuspendDate/scheduledResumeDate: those are the
	// TermsAndConditions scheduled actions', which the simulator does not
	// model; a Suspend or Resume order action shows in status and statusHistory.
	for k, d := range map[string]string{"subscriptionEndDate": v.SubscriptionEndDate, "termEndDate": v.TermEndDate} {
		if d != "" {
			out[k] = d
		}
	}
	if v.Status == "Cancelled" && v.CancelledDate > today {
		out["scheduledCancelDate"] = v.CancelledDate
	}
	out["orderNumber"] = v.OrderNumber
	out["currency"] = v.Currency
	if v.Notes != "" {
		out["notes"] = v.Notes
	}
	out["invoiceSeparately"] = v.InvoiceSeparately
	out["contractedMrr"] = 0
	out["totalContractedValue"] = 0
	hist := make([]map[string]any, 0, len(v.StatusHistory))
	for _, h := range v.StatusHistory {
		x := map[string]any{"startDate": h.Start, "status": h.Status}
		if h.End != "" {
			x["endDate"] = h.End
		}
		hist = append(hist, x)
	}
	out["statusHistory"] = hist
	plans := make([]map[string]any, 0, len(v.RatePlans))
	for i, rp := range v.RatePlans {
		if i >= 300 {
			break
		}
		x := maps.Clone(rp.Custom)
		if x == nil {
			x = map[string]any{}
		}
		x["id"] = rp.ID
		x["productId"] = rp.ProductID
		x["productName"] = rp.ProductName
		x["productSku"] = rp.SKU
		x["productRatePlanId"] = rp.ProductRatePlanID
		x["productRatePlanNumber"] = rp.ProductRatePlanNumber
		x["ratePlanName"] = rp.Name
		x["subscriptionRatePlanNumber"] = rp.Number
		x["contractedMrr"] = 0
		if rp.LastChangeType != "" {
			x["lastChangeType"] = rp.LastChangeType
		}
		if rp.UniqueToken != "" {
			x["uniqueToken"] = rp.UniqueToken
		}
		x["subscriptionProductFeatures"] = []any{}
		charges := make([]map[string]any, 0, len(rp.Charges))
		for _, ch := range rp.Charges {
			sg := segmentFor(ch, detail, asOf, today)
			if sg == nil {
				continue
			}
			cx := maps.Clone(ch.Custom)
			if cx == nil {
				cx = map[string]any{}
			}
			maps.Copy(cx, segmentView(sg))
			cx["id"] = ch.ID
			cx["originalChargeId"] = ch.OriginalID
			cx["number"] = ch.Number
			cx["name"] = ch.Name
			cx["type"] = ch.Type
			cx["model"] = ch.Model
			cx["productRatePlanChargeId"] = ch.PRPCID
			cx["version"] = ch.Version
			cx["triggerEvent"] = ch.TriggerEvent
			cx["triggerDate"] = ch.Segments[0].Start
			cx["currency"] = ch.Currency
			cx["billingPeriod"] = ch.BillingPeriod
			cx["billingDay"] = ch.BillingDay
			cx["endDateCondition"] = ch.EndDateCondition
			cx["done"] = false
			if bt := st.billedThrough[sub.AccountID]; bt != "" {
				// Billed (and, for usage, rated) up to the last bill run.
				if ch.Type == "Usage" {
					cx["processedThroughDate"] = bt
				} else {
					cx["chargedThroughDate"] = bt
				}
			}
			cx["mrr"], cx["dmrc"], cx["tcv"], cx["dtcv"] = 0, 0, 0, 0
			if ch.UOM != "" {
				cx["uom"] = ch.UOM
			}
			if ch.BillingTiming != "" {
				cx["billingTiming"] = ch.BillingTiming
			}
			if ch.ListPrice != "" {
				cx["listPriceBase"] = ch.ListPrice
			}
			if detail == "all-segments" {
				segs := make([]map[string]any, 0, len(ch.Segments))
				for _, sg := range ch.Segments {
					segs = append(segs, segmentView(sg))
				}
				cx["chargeSegments"] = segs
			}
			charges = append(charges, cx)
		}
		if excludeEmpty && len(charges) == 0 {
			continue
		}
		x["ratePlanCharges"] = charges
		plans = append(plans, x)
	}
	out["ratePlans"] = plans
	return out
}

func (s *Sim) getSubscription(c *call) *resp {
	if d := c.r.URL.Query().Get("charge-detail"); d != "" {
		switch d {
		case "last-segment", "current-segment", "all-segments", "specific-segment":
		default:
			return c.restErr(catInvalidValue, "'charge-detail' value should be one of: last-segment, current-segment, all-segments, specific-segment")
		}
		if d == "specific-segment" && c.r.URL.Query().Get("as-of-date") == "" {
			return c.restErr(catMissingQuery, "'as-of-date' is required with charge-detail=specific-segment")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := c.param("subscription-key")
	sub := s.st.subscription(key)
	if sub == nil {
		return c.restErr(catNotFound, "The subscription "+key+" does not exist")
	}
	// Any version's id or the number: the latest version (API-NOTES §6);
	// earlier versions, Expired, through /versions/{version}.
	out := s.subscriptionView(c, sub, sub.latest())
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) getSubscriptionVersion(c *call) *resp {
	n, err := strconv.Atoi(c.param("version"))
	if err != nil || n < 1 {
		return c.restErr(catInvalidValue, "'version' should be a positive integer")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.st.subscription(c.param("subscription-key"))
	if sub == nil || n > len(sub.Versions) {
		return c.restErr(catNotFound, "The subscription version does not exist")
	}
	out := s.subscriptionView(c, sub, sub.Versions[n-1])
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) getSubscriptionsByAccount(c *call) *resp {
	page, size, bad := c.pageParams(20)
	if bad != nil {
		return bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.account(c.param("account-key"))
	if a == nil {
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("account-key")+"'.")
	}
	nums := s.st.subsByAccount[a.ID]
	from := (page - 1) * size
	to := min(from+size, len(nums))
	list := []map[string]any{}
	if from < len(nums) {
		for _, n := range nums[from:to] {
			sub := s.st.subs[n]
			list = append(list, s.subscriptionView(c, sub, sub.latest()))
		}
	}
	out := map[string]any{"success": true, "subscriptions": list}
	if to < len(nums) {
		out["nextPage"] = c.nextPageURL(page, size)
	}
	return jsonResp(http.StatusOK, out)
}

// putSubscriptionCustomFields is PUT /v1/subscriptions/{subscriptionNumber}/customFields
// (PUT_UpdateSubscriptionCustomFields): it changes the custom fields of the
// latest version in place (no new version, no order), each checked against
// the tenant's definitions for Subscription (and RatePlan for ratePlans[]).
func (s *Sim) putSubscriptionCustomFields(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.st.subscription(c.param("subscriptionNumber"))
	if sub == nil || sub.Number != c.param("subscriptionNumber") {
		return c.restErr(catNotFound, "The subscription number "+c.param("subscriptionNumber")+" does not exist")
	}
	cf, fe := objField(m, "customFields")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	if fe := s.tenant.custom("Subscription", cf); fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	for k := range m {
		if k != "customFields" {
			// ratePlans[] is in the spec; billsync does not use it and the
			// simulator does not model it: refused rather than ignored.
			return c.restErr(catInvalidValue, "'"+k+"' is not supported by this simulator's PUT /v1/subscriptions/{subscriptionNumber}/customFields")
		}
	}
	v := sub.latest()
	if v.Custom == nil {
		v.Custom = map[string]any{}
	}
	maps.Copy(v.Custom, customFields(cf))
	v.Updated = c.now
	return jsonResp(http.StatusOK, map[string]any{"success": true})
}
