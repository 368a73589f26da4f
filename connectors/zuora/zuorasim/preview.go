package zuorasim

import (
	"net/http"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Previews (docs/zuora-rules.md, "Previews"): POST /v1/orders/preview runs
// the order on the simulator's state, computes the invoice its
// subscriptions would get through the target date, and rolls everything
// back; POST /v1/subscriptions/{subscription-key}/preview does the same for
// an existing subscription as it stands. Nothing is written, no event fires.
//
// What the invoice holds (the simulator's model of a bill run):
//   - Recurring charges bill per billing period (Month, Quarter, Annual),
//     aligned to the account's bill cycle day (an account with bill cycle
//     day 0 takes the day its first subscription started). A charge that
//     starts or ends between two bill cycle dates is prorated by days: the
//     days it is in force over the days of the billing period.
//   - In advance: a period is billed when it starts on or before the target
//     date; in arrears, when it ends by then. One-time charges bill once, on
//     their start date. Periods before the account's last bill run are
//     billed already and left out.
//   - Flat fee: the price; per unit: price × quantity; tiered: each tier's
//     units at its price (a flat-fee tier its price once); volume: the tier
//     the quantity falls in, price × quantity (flat-fee tier: its price).
//   - Discount charges: an item of every charge of their scope (the
//     subscription, or their own rate plan) and of the charge types in
//     ApplyDiscountTo, whose period starts while the discount is in force,
//     gets a Discount item: percentage × amount, or the fixed amount
//     (prorated like the item) up to the item's amount.
//   - Not modelled: usage (previews bill no usage), tax (0), credits for
//     periods already billed that a change shortens, rounding rules other
//     than half-up to 2 decimals, bill cycle types other than the account's
//     day, and billing period alignments other than AlignToCharge.

type previewItem struct {
	Start, End  string // service period, End exclusive
	Amount      decimal.Decimal
	Quantity    decimal.Decimal
	UnitPrice   decimal.Decimal
	Factor      decimal.Decimal // share of a full period (1 = full)
	Charge      *subCharge
	RatePlan    *subRatePlan
	Sub         *subscription
	ProductName string
	Discount    bool
	AppliedTo   string
	// DiscountedBy lists the discounts applied to a charge item (the
	// existing-subscription preview's discountDetails).
	DiscountedBy []map[string]any
}

func (s *Sim) postOrderPreview(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
	}
	opts, fe := objField(m, "previewOptions")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	if opts == nil {
		return c.restErr(catMissing, "'previewOptions' is required")
	}
	orderDate, fe := dateField(m, "orderDate", true)
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	thruType, fe := enumString(opts, "previewThruType", true, "SpecificDate", "TermEnd", "NumberOfPeriods")
	if fe != nil {
		return c.restErr(fe.cat, "previewOptions."+fe.msg)
	}
	rawTypes, fe := arrField(opts, "previewTypes")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	billingDocs := false
	for _, t := range rawTypes {
		switch str(t) {
		case "BillingDocs":
			billingDocs = true
		case "ChargeMetrics", "OrderDeltaMetrics", "OrderMetrics", "RampMetrics", "RampDeltaMetrics":
		default:
			return c.restErr(catInvalidValue, "previewOptions.previewTypes: "+str(t)+" is not a preview type")
		}
	}
	if len(rawTypes) == 0 {
		return c.restErr(catMissing, "'previewOptions.previewTypes' is required")
	}
	var thru string
	periods := 0
	switch thruType {
	case "SpecificDate":
		if thru, fe = dateField(opts, "specificPreviewThruDate", true); fe != nil {
			return c.restErr(fe.cat, "previewOptions."+fe.msg)
		}
		if thru < orderDate {
			return c.restErr(catInvalidValue, "previewOptions.specificPreviewThruDate must not be before orderDate")
		}
	case "NumberOfPeriods":
		n, ok, fe := intField(opts, "previewNumberOfPeriods")
		if fe != nil {
			return c.restErr(fe.cat, fe.msg)
		}
		if !ok || n < 1 {
			return c.restErr(catMissing, "'previewOptions.previewNumberOfPeriods' is required (at least 1) with previewThruType NumberOfPeriods")
		}
		periods = n
	}
	if _, ok := m["newAccount"]; ok {
		return c.restErr(catInvalidValue, "newAccount is not a field of an order preview: use previewAccountInfo")
	}
	pai, fe := objField(m, "previewAccountInfo")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	existing := str(m["existingAccountNumber"]) != "" || str(m["existingAccountId"]) != ""
	if pai != nil && existing {
		return c.restErr(catInvalidValue, "previewAccountInfo cannot be used together with existingAccountNumber or existingAccountId")
	}
	var previewAcct *account
	if pai != nil {
		cur, fe := reqString(pai, "currency", 3)
		if fe != nil {
			return c.restErr(fe.cat, "previewAccountInfo."+fe.msg)
		}
		if fe := s.tenant.currency("previewAccountInfo.currency", cur); fe != nil {
			return c.restErr(fe.cat, fe.msg)
		}
		bcd, ok, fe := intField(pai, "billCycleDay")
		if fe != nil {
			return c.restErr(fe.cat, fe.msg)
		}
		if !ok {
			return c.restErr(catMissing, "'previewAccountInfo.billCycleDay' is required")
		}
		if bcd < 0 || bcd > 31 {
			return c.restErr(catInvalidValue, "'previewAccountInfo.billCycleDay' should be between 0 and 31")
		}
		previewAcct = &account{ID: "preview", Number: "PREVIEW", Currency: cur, BillCycleDay: bcd, Status: "Active"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.newOrderRun(c.now)
	o.preview = previewAcct
	if fe := o.run(m); fe != nil {
		o.rollback()
		return c.restErr(fe.cat, fe.msg)
	}
	defer o.rollback()
	out := map[string]any{"success": true}
	if !billingDocs {
		out["previewResult"] = map[string]any{}
		return jsonResp(http.StatusOK, out)
	}
	var items []previewItem
	for _, sub := range o.results {
		v := sub.latest()
		t := thru
		switch thruType {
		case "TermEnd":
			if v.TermEndDate == "" {
				return c.restErr(catInvalidValue, "previewThruType TermEnd needs a termed subscription; "+sub.Number+" is evergreen")
			}
			t = addDate(v.TermEndDate, -1, "Day")
		case "NumberOfPeriods":
			t = addDate(addDate(orderDate, periods, "Month"), -1, "Day")
		}
		items = append(items, s.previewSubscription(o.acct, sub, v, "", t)...)
	}
	invoices := []any{}
	if len(items) > 0 {
		invoices = append(invoices, previewInvoice(items, thru, false))
	}
	out["previewResult"] = map[string]any{"invoices": invoices}
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) postSubscriptionPreview(c *call) *resp {
	m := map[string]any{}
	if len(c.body) > 0 {
		var err error
		if m, err = decodeObject(c.body); err != nil {
			return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := c.param("subscription-key")
	sub := s.st.subscription(key)
	if sub == nil {
		return c.restErr(catNotFound, "The subscription "+key+" does not exist")
	}
	v := sub.latest()
	today := c.now.Format(dateLayout)
	start := today
	if ps, fe := objField(m, "previewStartDate"); fe != nil {
		return c.restErr(fe.cat, fe.msg)
	} else if ps != nil {
		pol, fe := enumString(ps, "previewStartDatePolicy", true, "startOfTerm", "today", "specificDate")
		if fe != nil {
			return c.restErr(fe.cat, "previewStartDate."+fe.msg)
		}
		switch pol {
		case "startOfTerm":
			start = v.TermStartDate
		case "specificDate":
			if start, fe = dateField(ps, "specificDate", true); fe != nil {
				return c.restErr(fe.cat, "previewStartDate."+fe.msg)
			}
		}
	}
	thru := addDate(addDate(start, 1, "Month"), -1, "Day")
	if pt, fe := objField(m, "previewThroughDate"); fe != nil {
		return c.restErr(fe.cat, fe.msg)
	} else if pt != nil {
		pol, fe := enumString(pt, "previewThruDatePolicy", true, "nextBillingPeriods", "endOfTerm", "specificDate")
		if fe != nil {
			return c.restErr(fe.cat, "previewThroughDate."+fe.msg)
		}
		switch pol {
		case "nextBillingPeriods":
			n, ok, fe := intField(pt, "nextBillingPeriods")
			if fe != nil {
				return c.restErr(fe.cat, fe.msg)
			}
			if !ok || n < 1 {
				return c.restErr(catMissing, "'previewThroughDate.nextBillingPeriods' is required (at least 1) with policy nextBillingPeriods")
			}
			thru = addDate(addDate(start, n, "Month"), -1, "Day")
		case "endOfTerm":
			if v.TermEndDate == "" {
				return c.restErr(catInvalidValue, "previewThruDatePolicy endOfTerm needs a termed subscription; "+sub.Number+" is evergreen")
			}
			thru = addDate(v.TermEndDate, -1, "Day")
		case "specificDate":
			if thru, fe = dateField(pt, "specificDate", true); fe != nil {
				return c.restErr(fe.cat, "previewThroughDate."+fe.msg)
			}
		}
	}
	if thru < start {
		return c.restErr(catInvalidValue, "the preview's through date is before its start date")
	}
	acct := s.st.accounts[sub.AccountID]
	items := s.previewSubscription(acct, sub, v, start, thru)
	invoices := []any{}
	if len(items) > 0 {
		invoices = append(invoices, previewInvoice(items, thru, true))
	}
	return jsonResp(http.StatusOK, map[string]any{"success": true, "invoices": invoices})
}

// previewSubscription lists what the version v of sub bills from `from`
// ("" = the first unbilled day) through `thru`.
func (s *Sim) previewSubscription(acct *account, sub *subscription, v *subVersion, from, thru string) []previewItem {
	st := s.st
	billed := ""
	if acct != nil {
		billed = st.billedThrough[acct.ID]
	}
	if from < billed {
		from = billed
	}
	bcd := s.billCycleDay(acct, v)
	var items []previewItem
	for _, rp := range v.RatePlans {
		productName := rp.ProductName
		for _, ch := range rp.Charges {
			if ch.Model == "DiscountFixedAmount" || ch.Model == "DiscountPercentage" || ch.Type == "Usage" {
				continue
			}
			for _, seg := range ch.Segments {
				for _, p := range chargePeriods(ch, seg, bcd, thru) {
					if p.Start < from {
						continue
					}
					if ch.Type == "OneTime" && (st.billing().BilledOnce[ch.ID] || st.billing().BilledOnce[ch.OriginalID]) {
						continue
					}
					amt, unit := segmentAmount(ch, seg)
					items = append(items, previewItem{Start: p.Start, End: p.End, Amount: amt.Mul(p.Factor).Round(2), Quantity: quantityOf(ch, seg),
						UnitPrice: unit, Factor: p.Factor, Charge: ch, RatePlan: rp, Sub: sub, ProductName: productName})
				}
			}
		}
	}
	// Discounts, on the items they apply to.
	var discounts []previewItem
	for _, rp := range v.RatePlans {
		for _, ch := range rp.Charges {
			pc := st.charges[ch.PRPCID]
			if pc == nil || !discountModel(str(pc.Fields["ChargeModel"])) {
				continue
			}
			level := str(pc.Fields["DiscountLevel"])
			types := discountTypes(str(pc.Fields["ApplyDiscountTo"]))
			var tier *prpTier
			for _, t := range pc.Tiers {
				if t.Currency == ch.Currency {
					tier = t
				}
			}
			if tier == nil {
				continue
			}
			for _, seg := range ch.Segments {
				budget := map[string]decimal.Decimal{} // fixed amount left per period start
				for i := range items {
					it := &items[i]
					if it.Start < seg.Start || (seg.End != "" && it.Start >= seg.End) || !types[it.Charge.Type] {
						continue
					}
					if level == "rateplan" && it.RatePlan != rp {
						continue
					}
					var off decimal.Decimal
					if str(pc.Fields["ChargeModel"]) == "Discount-Percentage" {
						pct, _ := decimal.NewFromString(string(tier.DiscountPct))
						off = it.Amount.Mul(pct).Div(decimal.NewFromInt(100)).Round(2)
					} else {
						amt, _ := decimal.NewFromString(string(tier.DiscountAmount))
						left, ok := budget[it.Start]
						if !ok {
							left = amt.Mul(it.Factor).Round(2)
						}
						off = decimal.Min(left, it.Amount)
						budget[it.Start] = left.Sub(off)
					}
					if !off.IsPositive() {
						continue
					}
					rate := 0.0
					if pct, err := decimal.NewFromString(string(tier.DiscountPct)); err == nil {
						rate, _ = pct.Float64()
					}
					it.DiscountedBy = append(it.DiscountedBy, map[string]any{"discountChargeName": ch.Name, "discountChargeNumber": ch.Number,
						"discountRate": rate, "serviceStartDate": it.Start, "serviceEndDate": addDate(it.End, -1, "Day")})
					discounts = append(discounts, previewItem{Start: it.Start, End: it.End, Amount: off.Neg(), Factor: it.Factor, Charge: ch, RatePlan: rp,
						Sub: sub, ProductName: rp.ProductName, Discount: true, AppliedTo: it.Charge.Number})
				}
			}
		}
	}
	return append(items, discounts...)
}

// billCycleDay is the account's bill cycle day; 0 (auto) takes the day the
// account's first subscription started (or this one, when it has none).
func (s *Sim) billCycleDay(acct *account, v *subVersion) int {
	if acct != nil && acct.BillCycleDay > 0 {
		return acct.BillCycleDay
	}
	first := v.ContractEffectiveDate
	if acct != nil {
		for _, num := range s.st.subsByAccount[acct.ID] {
			if sub := s.st.subs[num]; sub != nil && len(sub.Versions) > 0 {
				if d := sub.Versions[0].ContractEffectiveDate; d != "" && (first == "" || d < first) {
					first = d
				}
			}
		}
	}
	t, err := time.Parse(dateLayout, first)
	if err != nil {
		return 1
	}
	return t.Day()
}

type period struct {
	Start, End string
	Factor     decimal.Decimal
}

// cycleDate is the bill cycle date of a month: day bcd, or the month's last day.
func cycleDate(year int, month time.Month, bcd int) time.Time {
	last := time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return time.Date(year, month, min(bcd, last), 0, 0, 0, 0, time.UTC)
}

// chargePeriods lists the billing periods of one charge segment billed
// through thru, each with its share of a full period.
func chargePeriods(ch *subCharge, seg *segment, bcd int, thru string) []period {
	start, err := time.Parse(dateLayout, seg.Start)
	if err != nil {
		return nil
	}
	if ch.Type == "OneTime" {
		if seg.Start > thru {
			return nil
		}
		return []period{{Start: seg.Start, End: addDate(seg.Start, 1, "Day"), Factor: decimal.NewFromInt(1)}}
	}
	months := periodMonths[firstNonEmpty(map[string]string{"Month": "Month", "Quarter": "Quarter", "Annual": "Annual", "Semi_Annual": "Semi-Annual"}[ch.BillingPeriod], "Month")]
	if months == 0 {
		months = 1
	}
	var end time.Time
	if seg.End != "" {
		if end, err = time.Parse(dateLayout, seg.End); err != nil {
			return nil
		}
	}
	limit, _ := time.Parse(dateLayout, thru)
	arrears := ch.BillingTiming == "IN_ARREARS"
	// The first bill cycle date on or after the start.
	anchor := cycleDate(start.Year(), start.Month(), bcd)
	if anchor.Before(start) {
		anchor = cycleDate(start.Year(), start.Month()+1, bcd)
	}
	var out []period
	add := func(ps, pe, fullStart, fullEnd time.Time) {
		if !end.IsZero() && !ps.Before(end) {
			return
		}
		if !end.IsZero() && end.Before(pe) {
			pe = end
		}
		if !pe.After(ps) {
			return
		}
		if arrears && pe.After(limit.AddDate(0, 0, 1)) || !arrears && ps.After(limit) {
			return
		}
		days := decimal.NewFromInt(int64(pe.Sub(ps).Hours() / 24))
		full := decimal.NewFromInt(int64(fullEnd.Sub(fullStart).Hours() / 24))
		out = append(out, period{Start: ps.Format(dateLayout), End: pe.Format(dateLayout), Factor: days.Div(full)})
	}
	if start.Before(anchor) {
		prev := cycleDate(anchor.Year(), anchor.Month()-time.Month(months), bcd)
		add(start, anchor, prev, anchor)
	}
	for i := 0; i < 1200; i++ {
		ps := cycleDate(anchor.Year(), anchor.Month()+time.Month(i*months), bcd)
		pe := cycleDate(anchor.Year(), anchor.Month()+time.Month((i+1)*months), bcd)
		if ps.After(limit) || (!end.IsZero() && !ps.Before(end)) {
			break
		}
		add(ps, pe, ps, pe)
	}
	return out
}

func quantityOf(ch *subCharge, seg *segment) decimal.Decimal {
	if ch.Model == "FlatFee" {
		return decimal.NewFromInt(1)
	}
	q, err := decimal.NewFromString(string(seg.Quantity))
	if err != nil {
		return decimal.NewFromInt(1)
	}
	return q
}

// segmentAmount is a full period's amount of a charge segment, and its unit price.
func segmentAmount(ch *subCharge, seg *segment) (decimal.Decimal, decimal.Decimal) {
	price, _ := decimal.NewFromString(string(seg.Price))
	q := quantityOf(ch, seg)
	switch ch.Model {
	case "FlatFee":
		return price, price
	case "PerUnit":
		return price.Mul(q), price
	case "Tiered", "Volume":
		tiers := append([]*prpTier(nil), seg.Tiers...)
		sort.Slice(tiers, func(i, j int) bool { return tiers[i].Tier < tiers[j].Tier })
		total, lower := decimal.Zero, decimal.Zero
		for i, t := range tiers {
			p, _ := decimal.NewFromString(string(t.Price))
			upper, err := decimal.NewFromString(string(t.EndingUnit))
			open := t.EndingUnit == "" || err != nil
			if ch.Model == "Volume" {
				if open || q.LessThanOrEqual(upper) || i == len(tiers)-1 {
					if t.PriceFormat == "Flat Fee" {
						return p, p
					}
					return p.Mul(q), p
				}
				continue
			}
			n := q
			if !open && upper.LessThan(q) {
				n = upper
			}
			n = n.Sub(lower)
			if n.IsPositive() {
				if t.PriceFormat == "Flat Fee" {
					total = total.Add(p)
				} else {
					total = total.Add(p.Mul(n))
				}
			}
			if open {
				break
			}
			lower = upper
		}
		if q.IsZero() {
			return decimal.Zero, decimal.Zero
		}
		return total, total.Div(q).Round(9)
	}
	return price.Mul(q), price
}

func money2(d decimal.Decimal) float64 { f, _ := d.Round(2).Float64(); return f }

// previewInvoice is one previewed invoice (existing: the subscription
// preview's item shape, with quantity and unitOfMeasure at the top).
func previewInvoice(items []previewItem, target string, existing bool) map[string]any {
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].Start != items[j].Start {
			return items[i].Start < items[j].Start
		}
		return !items[i].Discount && items[j].Discount
	})
	total := decimal.Zero
	out := make([]any, 0, len(items))
	for _, it := range items {
		total = total.Add(it.Amount)
		x := map[string]any{"serviceStartDate": it.Start, "serviceEndDate": addDate(it.End, -1, "Day"), "amountWithoutTax": money2(it.Amount),
			"taxAmount": 0, "chargeName": it.Charge.Name, "chargeNumber": it.Charge.Number, "productName": it.ProductName,
			"productRatePlanChargeId": it.Charge.PRPCID, "processingType": "Charge", "chargeDescription": ""}
		if it.Discount {
			x["processingType"] = "Discount"
		} else {
			x["unitPrice"], _ = it.UnitPrice.Float64()
		}
		q, _ := it.Quantity.Float64()
		if existing {
			if !it.Discount {
				x["quantity"] = q
				if it.Charge.UOM != "" {
					x["unitOfMeasure"] = it.Charge.UOM
				}
				if len(it.DiscountedBy) > 0 {
					x["discountDetails"] = it.DiscountedBy
				}
			}
		} else {
			x["subscriptionNumber"] = it.Sub.Number
			if it.Discount {
				x["appliedToChargeNumber"] = it.AppliedTo
			} else {
				info := map[string]any{"quantity": q}
				if it.Charge.UOM != "" {
					info["unitOfMeasure"] = it.Charge.UOM
				}
				x["additionalInfo"] = info
			}
		}
		out = append(out, x)
	}
	inv := map[string]any{"amount": money2(total), "amountWithoutTax": money2(total), "taxAmount": 0, "invoiceItems": out}
	if target != "" {
		inv["targetDate"] = target
	}
	return inv
}
