package zuorasim

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

var orderActionTypes = []string{"CreateSubscription", "TermsAndConditions", "AddProduct", "UpdateProduct", "RemoveProduct", "RenewSubscription",
	"CancelSubscription", "OwnerTransfer", "Suspend", "Resume", "ChangePlan"}

// orderRun applies one order; the caller holds s.mu. On error every change
// is rolled back (create-account-plus-subscription is atomic).
type orderRun struct {
	s     *Sim
	st    *state
	now   time.Time
	today string

	orderNumber string
	orderDate   string
	acct        *account
	newAcct     bool

	touched   map[*subscription]int // existing subscription → versions before the order
	created   []*subscription
	results   []*subscription
	events    []*event
	numbers   map[string]bool  // charge numbers taken in this order
	writeOff  []map[string]any // processingOptions.writeOff results (creditmemos.go)
	savedCtrs state
	// preview is the account of an order preview's previewAccountInfo
	// (preview.go): the order runs on it and is rolled back.
	preview *account
}

func (s *Sim) newOrderRun(now time.Time) *orderRun {
	st := s.st
	o := &orderRun{s: s, st: st, now: now, today: now.Format(dateLayout), touched: map[*subscription]int{}, numbers: map[string]bool{}}
	o.savedCtrs = state{seq: st.seq, nAccount: st.nAccount, nSub: st.nSub, nCharge: st.nCharge, nOrder: st.nOrder, nRatePlan: st.nRatePlan}
	return o
}

func (o *orderRun) rollback() {
	st := o.st
	st.seq, st.nAccount, st.nSub, st.nCharge, st.nOrder, st.nRatePlan = o.savedCtrs.seq, o.savedCtrs.nAccount, o.savedCtrs.nSub, o.savedCtrs.nCharge, o.savedCtrs.nOrder, o.savedCtrs.nRatePlan
	if o.newAcct && o.acct != nil {
		delete(st.accounts, o.acct.ID)
		delete(st.accountByNumber, o.acct.Number)
		st.accountOrder = slices.DeleteFunc(st.accountOrder, func(x string) bool { return x == o.acct.ID })
	}
	for sub, n := range o.touched {
		sub.Versions = sub.Versions[:n]
	}
	if o.orderNumber != "" && o.st.orders[o.orderNumber] != nil && o.st.orders[o.orderNumber].Created.Equal(o.now) {
		delete(o.st.orders, o.orderNumber)
	}
}

func (o *orderRun) commit() {
	st := o.st
	for _, sub := range o.created {
		st.subs[sub.Number] = sub
		st.subOrder = append(st.subOrder, sub.Number)
		st.subsByAccount[sub.AccountID] = append(st.subsByAccount[sub.AccountID], sub.Number)
	}
	for _, sub := range append(slices.Collect(maps.Keys(o.touched)), o.created...) {
		for _, v := range sub.Versions {
			st.subByID[v.ID] = sub
			for _, rp := range v.RatePlans {
				for _, ch := range rp.Charges {
					st.chargeOwner[ch.Number] = sub
				}
			}
		}
	}
}

func (s *Sim) postOrder(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
	}
	acctKey := str(m["existingAccountNumber"])
	if na, ok := m["newAccount"].(map[string]any); ok && acctKey == "" {
		acctKey = str(na["accountNumber"])
	}
	release, locked := s.lockAccount(acctKey)
	if locked {
		return c.restErr(catLock, lockCompetitionMessage)
	}
	defer release()
	if d := s.opts.OrderProcessingTime; d > 0 && !sleepCtx(c.r.Context(), d) {
		return c.restErr(catTemporary, "the request was cancelled")
	}
	if str(m["status"]) == orderScheduled {
		return s.postScheduledOrder(c, m)
	}
	s.mu.Lock()
	o := s.newOrderRun(c.now)
	fe := o.run(m)
	if fe != nil {
		o.rollback()
		s.mu.Unlock()
		return c.restErr(fe.cat, fe.msg)
	}
	o.commit()
	out := o.response(c)
	events := o.events
	s.mu.Unlock()
	s.fire(events...)
	return jsonResp(http.StatusOK, out)
}

func (o *orderRun) response(c *call) map[string]any {
	returnIDs := c.r.URL.Query().Get("returnIds") == "true"
	out := map[string]any{"success": true, "orderNumber": o.orderNumber, "accountNumber": o.acct.Number, "status": "Completed"}
	if o.writeOff != nil {
		out["writeOff"] = o.writeOff
		var memos []string
		for _, w := range o.writeOff {
			memos = append(memos, w["writeOffCreditMemoNumber"].(string))
		}
		out["creditMemoNumbers"] = memos
	}
	if returnIDs {
		out["accountId"] = o.acct.ID
		out["orderId"] = o.st.orders[o.orderNumber].ID
	}
	if c.versionAtLeast("223.0") {
		subs := make([]map[string]any, 0, len(o.results))
		var ids []string
		for _, sub := range o.results {
			v := sub.latest()
			x := map[string]any{"subscriptionNumber": sub.Number, "status": v.Status}
			if returnIDs {
				x["subscriptionId"] = v.ID
				ids = append(ids, v.ID)
			}
			subs = append(subs, x)
		}
		out["subscriptions"] = subs
		if returnIDs {
			out["subscriptionIds"] = ids
		}
	} else {
		nums := make([]string, 0, len(o.results))
		for _, sub := range o.results {
			nums = append(nums, sub.Number)
		}
		out["subscriptionNumbers"] = nums
	}
	return out
}

func (o *orderRun) run(m map[string]any) *fieldErr {
	st := o.st
	var fe *fieldErr
	if o.orderDate, fe = dateField(m, "orderDate", true); fe != nil {
		return fe
	}
	if _, fe = enumString(m, "category", false, "NewSales", "Return"); fe != nil {
		return fe
	}
	status, fe := enumString(m, "status", false, "Draft", "Pending", "Completed", "Scheduled", "Executing", "Failed")
	if fe != nil {
		return fe
	}
	if status != "" && status != "Completed" {
		return business("The simulator only processes orders with status Completed (got %s)", status)
	}
	if _, ok := m["schedulingOptions"]; ok {
		// Stricter reading (docs/zuora-rules.md): schedulingOptions belong to
		// an order with status Scheduled.
		return invalid("schedulingOptions is only valid with status Scheduled")
	}
	num, fe := optString(m, "orderNumber", 100)
	if fe != nil {
		return fe
	}
	if strings.ContainsAny(num, "#?/") {
		return invalid("'orderNumber' may not contain #, ? or /")
	}
	if num != "" && st.orders[num] != nil {
		return business("The order number %s already exists", num)
	}
	if _, fe = objField(m, "processingOptions"); fe != nil {
		return fe
	}
	rawSubs0, _ := m["subscriptions"].([]any)
	subs0, _ := objects(rawSubs0, "subscriptions")
	proc, fe := parseProcessing(m, actionTypesOf(subs0))
	if fe != nil {
		return fe
	}
	existingNum, fe := optString(m, "existingAccountNumber", 70)
	if fe != nil {
		return fe
	}
	existingID, fe := optString(m, "existingAccountId", 0)
	if fe != nil {
		return fe
	}
	newAcct, fe := objField(m, "newAccount")
	if fe != nil {
		return fe
	}
	switch {
	case newAcct != nil && (existingNum != "" || existingID != ""):
		return invalid("newAccount cannot be used together with existingAccountNumber or existingAccountId")
	case newAcct != nil:
		in, fe := parseAccount(newAcct, true, true)
		if fe != nil {
			fe.msg = "newAccount: " + fe.msg
			return fe
		}
		a, fe := o.s.createAccount(in, o.now)
		if fe != nil {
			return fe
		}
		o.acct, o.newAcct = a, true
		o.events = append(o.events, o.s.accountEvent(a, "INSERT", nil))
	case existingNum != "" || existingID != "":
		key := existingNum
		if key == "" {
			key = existingID
		}
		o.acct = st.account(key)
		if o.acct == nil {
			return invalid("The account %s does not exist", key)
		}
		if existingNum != "" && existingID != "" && (o.acct.Number != existingNum || o.acct.ID != existingID) {
			return invalid("existingAccountNumber and existingAccountId do not identify the same account")
		}
		if o.acct.Status != "Active" {
			return business("The account %s is not active", o.acct.Number)
		}
	case o.preview != nil:
		o.acct = o.preview
	default:
		return missing("existingAccountNumber or newAccount")
	}

	rawSubs, fe := arrField(m, "subscriptions")
	if fe != nil {
		return fe
	}
	subs, fe := objects(rawSubs, "subscriptions")
	if fe != nil {
		return fe
	}
	if len(subs) > 50 {
		return business("An order can contain at most 50 subscriptions")
	}
	total := 0
	for _, sm := range subs {
		acts, _ := sm["orderActions"].([]any)
		if len(acts) > 50 {
			return business("A subscription can have at most 50 order actions in one order")
		}
		total += len(acts)
	}
	if total > 50 {
		return business("An order can contain at most 50 order actions (got %d)", total)
	}

	st.nOrder++
	if num == "" {
		num = fmt.Sprintf("O-%08d", st.nOrder)
	}
	o.orderNumber = num
	for i, sm := range subs {
		if fe := o.runSubscription(sm); fe != nil {
			fe.msg = fmt.Sprintf("subscriptions[%d]: %s", i, fe.msg)
			return fe
		}
	}
	ord := &order{ID: st.newID(), Number: num, AccountID: o.acct.ID, Date: o.orderDate, Created: o.now}
	for _, sub := range o.results {
		ord.Subscriptions = append(ord.Subscriptions, sub.Number)
	}
	st.orders[num] = ord
	if proc.writeOff {
		o.writeOff = o.writeOffInvoices()
	}
	return nil
}

func (o *orderRun) runSubscription(sm map[string]any) *fieldErr {
	st := o.st
	subNum, fe := optString(sm, "subscriptionNumber", 100)
	if fe != nil {
		return fe
	}
	rawActs, fe := arrField(sm, "orderActions")
	if fe != nil {
		return fe
	}
	acts, fe := objects(rawActs, "orderActions")
	if fe != nil {
		return fe
	}
	if len(acts) == 0 {
		return missing("orderActions")
	}
	subCustom, fe := objField(sm, "customFields")
	if fe != nil {
		return fe
	}
	if fe := o.s.tenant.custom("Subscription", subCustom); fe != nil {
		return fe
	}
	var sub *subscription
	if subNum != "" {
		sub = st.subscription(subNum)
		if sub == nil {
			for _, x := range o.created {
				if x.Number == subNum {
					sub = x
				}
			}
		}
		if sub == nil {
			return invalid("The subscription %s does not exist", subNum)
		}
		if sub.AccountID != o.acct.ID && sub.InvoiceOwnerID != o.acct.ID {
			return invalid("The subscription %s does not belong to account %s", subNum, o.acct.Number)
		}
		if _, seen := o.touched[sub]; !seen && !slices.Contains(o.created, sub) {
			o.touched[sub] = len(sub.Versions)
		}
	}
	for i, a := range acts {
		typ, fe := enumString(a, "type", true, orderActionTypes...)
		if fe != nil {
			return fe
		}
		ce, sa, ca, fe := triggerDates(a, o.orderDate)
		if fe != nil {
			return fe
		}
		if typ == "CreateSubscription" {
			if sub != nil {
				return business("orderActions[%d]: CreateSubscription cannot be applied to the existing subscription %s", i, sub.Number)
			}
			sub, fe = o.createSubscription(a, ce, sa, ca, subCustom)
			if fe != nil {
				fe.msg = fmt.Sprintf("orderActions[%d]: %s", i, fe.msg)
				return fe
			}
			continue
		}
		if sub == nil {
			return missing(fmt.Sprintf("subscriptionNumber (orderActions[%d] of type %s changes an existing subscription)", i, typ))
		}
		cur := sub.latest()
		if cur.Status == "Suspended" && typ != "Resume" {
			return business("orderActions[%d]: the subscription %s is suspended; only a Resume order action is allowed", i, sub.Number)
		}
		if cur.Status == "Cancelled" && typ != "Resume" {
			return business("orderActions[%d]: the subscription %s is cancelled", i, sub.Number)
		}
		nv := o.newVersion(cur)
		switch typ {
		case "AddProduct":
			item, fe := objField(a, "addProduct")
			if fe == nil && item == nil {
				fe = missing("addProduct")
			}
			if fe == nil {
				fe = o.subscribe(nv, item, ce, sa, ca, "Add")
			}
			if fe != nil {
				return prefix(i, fe)
			}
		case "RemoveProduct":
			if fe := o.removeProduct(nv, a, ce); fe != nil {
				return prefix(i, fe)
			}
		case "UpdateProduct":
			if fe := o.updateProduct(nv, a, ce); fe != nil {
				return prefix(i, fe)
			}
		case "CancelSubscription":
			if fe := o.cancel(nv, a, ce); fe != nil {
				return prefix(i, fe)
			}
		case "RenewSubscription":
			if fe := o.renew(nv); fe != nil {
				return prefix(i, fe)
			}
		case "Suspend":
			if fe := o.suspend(nv, a); fe != nil {
				return prefix(i, fe)
			}
		case "Resume":
			if fe := o.resume(nv, a); fe != nil {
				return prefix(i, fe)
			}
		case "TermsAndConditions":
			if fe := o.terms(nv, a); fe != nil {
				return prefix(i, fe)
			}
		default:
			return business("orderActions[%d]: the simulator does not support the order action %s", i, typ)
		}
		for k, v := range customFields(subCustom) {
			nv.Custom[k] = v
		}
		nv.OrderNumber = o.orderNumber
		sub.Versions = append(sub.Versions, nv)
	}
	sub.Orders++
	if !slices.Contains(o.results, sub) {
		o.results = append(o.results, sub)
	}
	if _, existing := o.touched[sub]; existing {
		o.events = append(o.events, o.s.subscriptionEvent(sub, "UPDATE"))
	}
	return nil
}

func prefix(i int, fe *fieldErr) *fieldErr {
	fe.msg = fmt.Sprintf("orderActions[%d]: %s", i, fe.msg)
	return fe
}

func triggerDates(a map[string]any, orderDate string) (ce, sa, ca string, fe *fieldErr) {
	ce, sa, ca = orderDate, orderDate, orderDate
	raw, fe := arrField(a, "triggerDates")
	if fe != nil {
		return "", "", "", fe
	}
	tds, fe := objects(raw, "triggerDates")
	if fe != nil {
		return "", "", "", fe
	}
	for _, td := range tds {
		name, fe := enumString(td, "name", true, "ContractEffective", "ServiceActivation", "CustomerAcceptance")
		if fe != nil {
			return "", "", "", fe
		}
		d, fe := dateField(td, "triggerDate", true)
		if fe != nil {
			return "", "", "", fe
		}
		switch name {
		case "ContractEffective":
			ce = d
		case "ServiceActivation":
			sa = d
		default:
			ca = d
		}
	}
	return ce, sa, ca, nil
}

// newVersion clones v into a new version: new ids for the subscription,
// its rate plans and charges; numbers stay.
func (o *orderRun) newVersion(v *subVersion) *subVersion {
	st := o.st
	nv := *v
	nv.ID = st.newID()
	nv.Version = v.Version + 1
	nv.Custom = cloneMap(v.Custom)
	nv.StatusHistory = slices.Clone(v.StatusHistory)
	nv.Created, nv.Updated = o.now, o.now
	nv.RatePlans = make([]*subRatePlan, 0, len(v.RatePlans))
	for _, rp := range v.RatePlans {
		nrp := *rp
		nrp.PastIDs = append(slices.Clone(rp.PastIDs), rp.ID)
		nrp.ID = st.newID()
		nrp.Custom = cloneMap(rp.Custom)
		nrp.Charges = make([]*subCharge, 0, len(rp.Charges))
		for _, ch := range rp.Charges {
			nch := *ch
			nch.ID = st.newID()
			nch.Version = ch.Version + 1
			nch.Custom = cloneMap(ch.Custom)
			nch.Segments = make([]*segment, 0, len(ch.Segments))
			for _, sg := range ch.Segments {
				nsg := *sg
				nch.Segments = append(nch.Segments, &nsg)
			}
			nrp.Charges = append(nrp.Charges, &nch)
		}
		nv.RatePlans = append(nv.RatePlans, &nrp)
	}
	return &nv
}

func (o *orderRun) createSubscription(a map[string]any, ce, sa, ca string, subCustom map[string]any) (*subscription, *fieldErr) {
	st := o.st
	cs, fe := objField(a, "createSubscription")
	if fe != nil {
		return nil, fe
	}
	if cs == nil {
		return nil, missing("createSubscription")
	}
	num, fe := optString(cs, "subscriptionNumber", 100)
	if fe != nil {
		return nil, fe
	}
	if num != "" {
		if strings.ContainsAny(num, "#?/") {
			return nil, invalid("'subscriptionNumber' may not contain #, ? or /")
		}
		if st.subs[num] != nil || slices.ContainsFunc(o.created, func(x *subscription) bool { return x.Number == num }) {
			return nil, business("The subscription number %s already exists", num)
		}
	}
	if owner, _ := getString(cs, "subscriptionOwnerAccountNumber"); owner != "" && owner != o.acct.Number {
		return nil, business("The simulator does not support a subscription owner different from the order's account")
	}
	invoiceOwner := o.acct
	if io, _ := getString(cs, "invoiceOwnerAccountNumber"); io != "" {
		invoiceOwner = st.account(io)
		if invoiceOwner == nil {
			return nil, invalid("The invoice owner account %s does not exist", io)
		}
	}
	currency, fe := optString(cs, "currency", 3)
	if fe != nil {
		return nil, fe
	}
	if currency == "" {
		currency = o.acct.Currency
	}
	if fe := o.s.tenant.currency("currency", currency); fe != nil {
		return nil, fe
	}
	notes, fe := optString(cs, "notes", 500)
	if fe != nil {
		return nil, fe
	}
	terms, fe := objField(cs, "terms")
	if fe != nil {
		return nil, fe
	}
	if terms == nil {
		return nil, missing("terms")
	}
	it, fe := objField(terms, "initialTerm")
	if fe != nil {
		return nil, fe
	}
	if it == nil {
		return nil, missing("terms.initialTerm")
	}
	termType, fe := enumString(it, "termType", true, "TERMED", "EVERGREEN")
	if fe != nil {
		fe.msg = strings.Replace(fe.msg, "'termType'", "'termType'", 1)
		return nil, fe
	}
	period, hasPeriod, fe := intField(it, "period")
	if fe != nil {
		return nil, fe
	}
	periodType, fe := enumString(it, "periodType", false, "Month", "Year", "Day", "Week")
	if fe != nil {
		return nil, fe
	}
	if periodType == "" {
		periodType = "Month"
	}
	start, fe := dateField(it, "startDate", false)
	if fe != nil {
		return nil, fe
	}
	if start == "" {
		start = ce
	}
	v := &subVersion{ID: st.newID(), Version: 1, Status: "Active", TermType: termType, ContractEffectiveDate: ce, ServiceActivationDate: sa,
		CustomerAcceptanceDate: ca, SubscriptionStartDate: ce, TermStartDate: start, OrderNumber: o.orderNumber, Currency: currency, Notes: notes,
		Custom: customFields(subCustom), Created: o.now, Updated: o.now}
	if termType == "TERMED" {
		if !hasPeriod || period <= 0 {
			return nil, missing("terms.initialTerm.period (required for TERMED subscriptions)")
		}
		v.InitialTerm, v.InitialTermPeriodType = period, periodType
		v.CurrentTerm, v.CurrentTermPeriodType = period, periodType
		v.TermEndDate = addDate(start, period, periodType)
		v.SubscriptionEndDate = v.TermEndDate
	}
	if v.RenewalSetting, fe = enumString(terms, "renewalSetting", false, "RENEW_WITH_SPECIFIC_TERM", "RENEW_TO_EVERGREEN"); fe != nil {
		return nil, fe
	}
	if v.RenewalSetting == "" {
		v.RenewalSetting = "RENEW_WITH_SPECIFIC_TERM"
	}
	if v.AutoRenew, _, fe = boolField(terms, "autoRenew"); fe != nil {
		return nil, fe
	}
	rts, fe := arrField(terms, "renewalTerms")
	if fe != nil {
		return nil, fe
	}
	rtObjs, fe := objects(rts, "renewalTerms")
	if fe != nil {
		return nil, fe
	}
	v.RenewalTerm, v.RenewalTermPeriodType = v.InitialTerm, v.InitialTermPeriodType
	if len(rtObjs) > 0 {
		p, _, fe := intField(rtObjs[0], "period")
		if fe != nil {
			return nil, fe
		}
		pt, fe := enumString(rtObjs[0], "periodType", false, "Month", "Year", "Day", "Week")
		if fe != nil {
			return nil, fe
		}
		v.RenewalTerm = p
		if pt != "" {
			v.RenewalTermPeriodType = pt
		}
	}
	if termType == "TERMED" && v.RenewalTermPeriodType == "" {
		v.RenewalTermPeriodType = "Month"
	}
	v.StatusHistory = []statusSpan{{Start: ce, Status: "Active"}}
	raw, fe := arrField(cs, "subscribeToRatePlans")
	if fe != nil {
		return nil, fe
	}
	items, fe := objects(raw, "subscribeToRatePlans")
	if fe != nil {
		return nil, fe
	}
	for j, item := range items {
		if fe := o.subscribe(v, item, ce, sa, ca, ""); fe != nil {
			fe.msg = fmt.Sprintf("subscribeToRatePlans[%d]: %s", j, fe.msg)
			return nil, fe
		}
	}
	st.nSub++
	if num == "" {
		num = fmt.Sprintf("A-S%08d", st.nSub)
	}
	sub := &subscription{Number: num, AccountID: o.acct.ID, InvoiceOwnerID: invoiceOwner.ID, OriginalID: v.ID, Versions: []*subVersion{v}}
	o.created = append(o.created, sub)
	ev := o.s.subscriptionEvent(sub, "INSERT")
	if o.newAcct {
		ev.account = accountFields(o.acct)
	}
	o.events = append(o.events, ev)
	return sub, nil
}

func (o *orderRun) findPlan(item map[string]any) (*ratePlan, *fieldErr) {
	id, fe := getString(item, "productRatePlanId")
	if fe != nil {
		return nil, fe
	}
	num, fe := getString(item, "productRatePlanNumber")
	if fe != nil {
		return nil, fe
	}
	switch {
	case id != "":
		if rp := o.st.plans[id]; rp != nil {
			return rp, nil
		}
		return nil, invalid("Invalid productRatePlanId %s", id)
	case num != "":
		for _, rp := range o.st.plans {
			if rp.Number == num {
				return rp, nil
			}
		}
		return nil, invalid("Invalid productRatePlanNumber %s", num)
	}
	return nil, missing("productRatePlanId")
}

// pricingKey is the member of an order's pricing object that fits a charge
// of this type (OneTime, Recurring, Usage) and REST model: ChargeOverride's
// pricing for subscribe/add, CreateOrderPricingUpdate for updates.
func pricingKey(chargeType, model string) string {
	prefix := map[string]string{"OneTime": "oneTime", "Recurring": "recurring", "Usage": "usage"}[chargeType]
	switch model {
	case "FlatFee", "PerUnit", "Tiered", "Volume":
		return prefix + model
	case "Overage", "TieredWithOverage":
		return "usage" + model
	case "Delivery":
		return "recurringDeliveryBased"
	case "DiscountFixedAmount", "DiscountPercentage":
		return "discount"
	}
	return ""
}

// updatePricingKeys are CreateOrderPricingUpdate's members: no one-time
// key, a one-time charge's price or quantity cannot be updated.
var updatePricingKeys = set("chargeModelData", "discount", "recurringCalculated", "recurringDeliveryBased", "recurringFlatFee", "recurringPerUnit",
	"recurringTiered", "recurringVolume", "usageFlatFee", "usageOverage", "usagePerUnit", "usageTiered", "usageTieredWithOverage", "usageVolume")

// checkPricingKeys refuses a pricing member that does not fit the charge
// (e.g. oneTimePerUnit on a one-time tiered charge), and in updates any
// member CreateOrderPricingUpdate does not have.
func checkPricingKeys(pricing map[string]any, chargeType, model, charge string, update bool) *fieldErr {
	want := pricingKey(chargeType, model)
	keys := make([]string, 0, len(pricing))
	for k := range pricing {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "chargeModelData" {
			continue
		}
		if update && !updatePricingKeys[k] {
			return invalid("chargeUpdates[].pricing.%s is not a field of an update's pricing (CreateOrderPricingUpdate); the %s %s charge %s cannot be updated that way",
				k, chargeType, model, charge)
		}
		if k != want {
			return invalid("pricing.%s does not fit the %s %s charge %s: use pricing.%s", k, chargeType, model, charge, want)
		}
	}
	return nil
}

// overrideNumber reads pricing.<model>.<field> from a charge override/update.
func overrideNumber(pricing map[string]any, field string) (json.Number, bool, *fieldErr) {
	for _, v := range pricing {
		sub, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if n, ok, fe := numField(sub, field, false); fe != nil || ok {
			return n, ok, fe
		}
	}
	return "", false, nil
}

func (o *orderRun) nextChargeNumber(custom string) (string, *fieldErr) {
	if custom != "" {
		if o.st.chargeOwner[custom] != nil || o.numbers[custom] {
			return "", business("The charge number %s already exists", custom)
		}
		o.numbers[custom] = true
		return custom, nil
	}
	o.st.nCharge++
	n := fmt.Sprintf("C-%08d", o.st.nCharge)
	o.numbers[n] = true
	return n, nil
}

var periodMonths = map[string]int{"Month": 1, "Quarter": 3, "Semi-Annual": 6, "Annual": 12}

func (o *orderRun) subscribe(v *subVersion, item map[string]any, ce, sa, ca, changeType string) *fieldErr {
	st := o.st
	rp, fe := o.findPlan(item)
	if fe != nil {
		return fe
	}
	if status := planStatus(rp, ce); status != "Active" {
		return business("The product rate plan %s is not effective on %s (%s)", rp.ID, ce, status)
	}
	p := st.products[rp.ProductID]
	rawOv, fe := arrField(item, "chargeOverrides")
	if fe != nil {
		return fe
	}
	ovs, fe := objects(rawOv, "chargeOverrides")
	if fe != nil {
		return fe
	}
	byPRPC := map[string]map[string]any{}
	for _, ov := range ovs {
		id, fe := reqString(ov, "productRatePlanChargeId", 0)
		if fe != nil {
			return fe
		}
		if !slices.Contains(rp.Charges, id) {
			return invalid("The charge override productRatePlanChargeId %s is not a charge of product rate plan %s", id, rp.ID)
		}
		byPRPC[id] = ov
	}
	rpCustom, fe := objField(item, "customFields")
	if fe != nil {
		return fe
	}
	if fe := o.s.tenant.custom("RatePlan", rpCustom); fe != nil {
		return fe
	}
	token, _ := getString(item, "uniqueToken")
	st.nRatePlan++
	srp := &subRatePlan{ID: st.newID(), Number: fmt.Sprintf("RP-%08d", st.nRatePlan), ProductID: p.ID, ProductName: str(p.Fields["Name"]),
		SKU: str(p.Fields["SKU"]), ProductRatePlanID: rp.ID, ProductRatePlanNumber: rp.Number, Name: str(rp.Fields["Name"]),
		LastChangeType: changeType, UniqueToken: token, Custom: customFields(rpCustom)}
	for _, cid := range rp.Charges {
		pc := st.charges[cid]
		if fe := checkOrderDiscount(pc); fe != nil {
			return fe
		}
		model := str(pc.Fields["ChargeModel"])
		var tiers []*prpTier
		for _, t := range pc.Tiers {
			if t.Currency == v.Currency {
				tiers = append(tiers, t)
			}
		}
		if len(tiers) == 0 {
			return business("The charge %s (%s) has no price in currency %s", str(pc.Fields["Name"]), pc.ID, v.Currency)
		}
		ov := byPRPC[cid]
		customNum, _ := getString(ov, "chargeNumber")
		num, fe := o.nextChargeNumber(customNum)
		if fe != nil {
			return fe
		}
		start := ce
		switch str(pc.Fields["TriggerEvent"]) {
		case "ServiceActivation":
			start = sa
		case "CustomerAcceptance":
			start = ca
		}
		seg := &segment{Segment: 1, Start: start, End: v.SubscriptionEndDate, AmendedByOrder: o.orderNumber}
		if str(pc.Fields["ChargeType"]) == "OneTime" {
			seg.End = addDate(start, 1, "Day")
		}
		if str(pc.Fields["EndDateCondition"]) == "FixedPeriod" {
			n, _ := strconv.Atoi(str(pc.Fields["UpToPeriods"]))
			end := fixedPeriodEnd(start, n, str(pc.Fields["UpToPeriodsType"]), str(pc.Fields["BillingPeriod"]))
			if seg.End == "" || end < seg.End {
				seg.End = end
			}
		}
		if quantityModel(model) {
			q, _ := pc.Fields["DefaultQuantity"].(json.Number)
			seg.Quantity = q
		}
		if tieredModel(model) {
			seg.Tiers = tiers
		} else {
			seg.Price = orZero(tiers[0].Price, "")
		}
		custom := map[string]any{}
		if ov != nil {
			pricing, fe := objField(ov, "pricing")
			if fe != nil {
				return fe
			}
			if fe := checkPricingKeys(pricing, str(pc.Fields["ChargeType"]), restModelOf(model), pc.ID, false); fe != nil {
				return fe
			}
			if q, ok, fe := overrideNumber(pricing, "quantity"); fe != nil {
				return fe
			} else if ok {
				if !quantityModel(model) {
					return invalid("Quantity cannot be set on the %s charge %s", model, pc.ID)
				}
				if f, _ := q.Float64(); f < 0 {
					return invalid("Quantity must not be negative")
				}
				seg.Quantity = q
			}
			if lp, ok, fe := overrideNumber(pricing, "listPrice"); fe != nil {
				return fe
			} else if ok {
				seg.Price = lp
			}
			cf, fe := objField(ov, "customFields")
			if fe != nil {
				return fe
			}
			if fe := o.s.tenant.custom("RatePlanCharge", cf); fe != nil {
				return fe
			}
			custom = customFields(cf)
		}
		if err := checkQuantityBounds(pc, seg.Quantity); err != nil {
			return err
		}
		ch := &subCharge{ID: st.newID(), Number: num, PRPCID: pc.ID, Name: str(pc.Fields["Name"]), Type: str(pc.Fields["ChargeType"]),
			Model: restModelOf(model), UOM: str(pc.Fields["UOM"]), BillingPeriod: underscore(str(pc.Fields["BillingPeriod"])),
			BillingDay: str(pc.Fields["BillCycleType"]), BillingTiming: restTiming(str(pc.Fields["BillingTiming"])),
			ListPrice: underscore(str(pc.Fields["ListPriceBase"])), EndDateCondition: restEndDateCondition(str(pc.Fields["EndDateCondition"])),
			TriggerEvent: str(pc.Fields["TriggerEvent"]), Currency: v.Currency, Version: 1, Segments: []*segment{seg}, Custom: custom}
		ch.OriginalID = ch.ID
		srp.Charges = append(srp.Charges, ch)
	}
	v.RatePlans = append(v.RatePlans, srp)
	return nil
}

func checkQuantityBounds(pc *prpCharge, q json.Number) *fieldErr {
	if q == "" {
		return nil
	}
	f, _ := q.Float64()
	if mn, ok := pc.Fields["MinQuantity"].(json.Number); ok {
		if m, _ := mn.Float64(); f < m {
			return invalid("Quantity %s is below the minimum quantity %s of charge %s", q, mn, pc.ID)
		}
	}
	if mx, ok := pc.Fields["MaxQuantity"].(json.Number); ok {
		if m, _ := mx.Float64(); m > 0 && f > m {
			return invalid("Quantity %s is above the maximum quantity %s of charge %s", q, mx, pc.ID)
		}
	}
	return nil
}

func fixedPeriodEnd(start string, n int, typ, billingPeriod string) string {
	switch typ {
	case "Days":
		return addDate(start, n, "Day")
	case "Weeks":
		return addDate(start, n, "Week")
	case "Months":
		return addDate(start, n, "Month")
	case "Years":
		return addDate(start, n, "Year")
	}
	if billingPeriod == "Week" {
		return addDate(start, n, "Week")
	}
	months := periodMonths[billingPeriod]
	if months == 0 {
		months = 1
	}
	return addDate(start, n*months, "Month")
}

// findRatePlan locates a subscription rate plan by any of Zuora's keys.
func findRatePlan(v *subVersion, m map[string]any) (*subRatePlan, *fieldErr) {
	id, _ := getString(m, "ratePlanId")
	num, _ := getString(m, "subscriptionRatePlanNumber")
	prpNum, _ := getString(m, "productRatePlanNumber")
	token, _ := getString(m, "uniqueToken")
	if id == "" && num == "" && prpNum == "" && token == "" {
		return nil, missing("ratePlanId")
	}
	for _, rp := range v.RatePlans {
		if rp.LastChangeType == "Remove" {
			continue
		}
		switch {
		case id != "" && (rp.ID == id || slices.Contains(rp.PastIDs, id)),
			num != "" && rp.Number == num,
			prpNum != "" && rp.ProductRatePlanNumber == prpNum,
			token != "" && rp.UniqueToken == token:
			return rp, nil
		}
	}
	return nil, invalid("The rate plan %s is not an active rate plan of the subscription", firstNonEmpty(id, num, prpNum, token))
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

func (o *orderRun) removeProduct(v *subVersion, a map[string]any, ce string) *fieldErr {
	rm, fe := objField(a, "removeProduct")
	if fe != nil {
		return fe
	}
	if rm == nil {
		return missing("removeProduct")
	}
	rp, fe := findRatePlan(v, rm)
	if fe != nil {
		return fe
	}
	if ce < v.ContractEffectiveDate {
		return invalid("The remove date %s is before the subscription's contract effective date", ce)
	}
	rp.LastChangeType = "Remove"
	for _, ch := range rp.Charges {
		seg := ch.last()
		if seg.End == "" || ce < seg.End {
			seg.End = ce
		}
	}
	return nil
}

func (o *orderRun) updateProduct(v *subVersion, a map[string]any, ce string) *fieldErr {
	up, fe := objField(a, "updateProduct")
	if fe != nil {
		return fe
	}
	if up == nil {
		return missing("updateProduct")
	}
	rp, fe := findRatePlan(v, up)
	if fe != nil {
		return fe
	}
	date := ce
	if d, fe := dateField(up, "specificUpdateDate", false); fe != nil {
		return fe
	} else if d != "" {
		date = d
	}
	raw, fe := arrField(up, "chargeUpdates")
	if fe != nil {
		return fe
	}
	cus, fe := objects(raw, "chargeUpdates")
	if fe != nil {
		return fe
	}
	for _, cu := range cus {
		num, _ := getString(cu, "chargeNumber")
		prpc, _ := getString(cu, "productRatePlanChargeId")
		var ch *subCharge
		for _, x := range rp.Charges {
			if (num != "" && x.Number == num) || (num == "" && prpc != "" && x.PRPCID == prpc) {
				ch = x
			}
		}
		if ch == nil {
			return invalid("The charge %s is not a charge of rate plan %s", firstNonEmpty(num, prpc), rp.ID)
		}
		d := date
		if eff, fe := objField(cu, "effectiveDate"); fe != nil {
			return fe
		} else if eff != nil {
			ev, fe := enumString(eff, "triggerEvent", false, "ContractEffective", "ServiceActivation", "CustomerAcceptance", "SpecificDate")
			if fe != nil {
				return fe
			}
			sd, fe := dateField(eff, "specificTriggerDate", ev == "SpecificDate")
			if fe != nil {
				return fe
			}
			if sd != "" && ev != "SpecificDate" {
				// Stricter reading (docs/zuora-rules.md): a specific date goes
				// with triggerEvent SpecificDate, as Zuora's guide sends it.
				return invalid("chargeUpdates[].effectiveDate.specificTriggerDate needs triggerEvent SpecificDate")
			}
			if sd != "" {
				d = sd
			}
		}
		pricing, fe := objField(cu, "pricing")
		if fe != nil {
			return fe
		}
		if fe := checkPricingKeys(pricing, ch.Type, ch.Model, ch.Number, true); fe != nil {
			return fe
		}
		q, hasQ, fe := overrideNumber(pricing, "quantity")
		if fe != nil {
			return fe
		}
		lp, hasP, fe := overrideNumber(pricing, "listPrice")
		if fe != nil {
			return fe
		}
		if hasQ && ch.Model != "PerUnit" && ch.Model != "Tiered" && ch.Model != "Volume" && ch.Model != "TieredWithOverage" && ch.Model != "Overage" && ch.Model != "Delivery" {
			return invalid("Quantity cannot be updated on the %s charge %s", ch.Model, ch.Number)
		}
		if hasQ {
			if f, _ := q.Float64(); f < 0 {
				return invalid("Quantity must not be negative")
			}
		}
		last := ch.last()
		if d < last.Start {
			return invalid("The update date %s is before the start %s of the charge's last segment", d, last.Start)
		}
		if last.End != "" && d >= last.End {
			return invalid("The update date %s is not before the charge's end date %s", d, last.End)
		}
		nseg := *last
		nseg.Segment = last.Segment + 1
		nseg.Start = d
		nseg.AmendedByOrder = o.orderNumber
		if hasQ {
			nseg.Quantity = q
		}
		if hasP {
			nseg.Price = lp
		}
		if d == last.Start {
			ch.Segments[len(ch.Segments)-1] = &nseg
			nseg.Segment = last.Segment
		} else {
			last.End = d
			ch.Segments = append(ch.Segments, &nseg)
		}
		if cf, fe := objField(cu, "customFields"); fe != nil {
			return fe
		} else if fe := o.s.tenant.custom("RatePlanCharge", cf); fe != nil {
			return fe
		} else {
			maps.Copy(ch.Custom, customFields(cf))
		}
	}
	if cf, fe := objField(up, "customFields"); fe != nil {
		return fe
	} else if fe := o.s.tenant.custom("RatePlan", cf); fe != nil {
		return fe
	} else {
		maps.Copy(rp.Custom, customFields(cf))
	}
	rp.LastChangeType = "Update"
	return nil
}

func (o *orderRun) cancel(v *subVersion, a map[string]any, ce string) *fieldErr {
	cs, fe := objField(a, "cancelSubscription")
	if fe != nil {
		return fe
	}
	if cs == nil {
		return missing("cancelSubscription")
	}
	policy, fe := enumString(cs, "cancellationPolicy", true, "EndOfCurrentTerm", "EndOfLastInvoicePeriod", "SpecificDate")
	if fe != nil {
		return fe
	}
	var date string
	switch policy {
	case "EndOfCurrentTerm":
		if v.TermType == "EVERGREEN" {
			return business("EndOfCurrentTerm cannot be used to cancel an EVERGREEN subscription")
		}
		date = v.TermEndDate
	case "EndOfLastInvoicePeriod":
		// The simulator bills nothing: the last invoiced period ends where
		// the action takes effect.
		date = ce
	case "SpecificDate":
		d, fe := dateField(cs, "cancellationEffectiveDate", true)
		if fe != nil {
			return fe
		}
		date = d
	}
	if date < v.ContractEffectiveDate {
		return invalid("The cancellation date %s is before the subscription's contract effective date %s", date, v.ContractEffectiveDate)
	}
	if v.TermEndDate != "" && date > v.TermEndDate {
		return invalid("The cancellation date %s is after the end of the current term %s", date, v.TermEndDate)
	}
	v.Status = "Cancelled"
	v.CancelledDate = date
	v.SubscriptionEndDate = date
	v.SuspendDate, v.ResumeDate = "", ""
	if n := len(v.StatusHistory); n > 0 {
		v.StatusHistory[n-1].End = date
	}
	v.StatusHistory = append(v.StatusHistory, statusSpan{Start: date, Status: "Cancelled"})
	for _, rp := range v.RatePlans {
		for _, ch := range rp.Charges {
			seg := ch.last()
			if seg.End == "" || date < seg.End {
				seg.End = date
			}
		}
	}
	return nil
}

func (o *orderRun) renew(v *subVersion) *fieldErr {
	if v.TermType != "TERMED" {
		return business("Only TERMED subscriptions can be renewed")
	}
	oldEnd := v.TermEndDate
	if v.RenewalSetting == "RENEW_TO_EVERGREEN" {
		v.TermType = "EVERGREEN"
		v.TermStartDate = oldEnd
		v.TermEndDate, v.SubscriptionEndDate = "", ""
		v.CurrentTerm = 0
	} else {
		term, unit := v.RenewalTerm, v.RenewalTermPeriodType
		if term <= 0 {
			term, unit = v.InitialTerm, v.InitialTermPeriodType
		}
		v.TermStartDate = oldEnd
		v.TermEndDate = addDate(oldEnd, term, unit)
		v.SubscriptionEndDate = v.TermEndDate
		v.CurrentTerm, v.CurrentTermPeriodType = term, unit
	}
	for _, rp := range v.RatePlans {
		if rp.LastChangeType == "Remove" {
			continue
		}
		for _, ch := range rp.Charges {
			if seg := ch.last(); seg.End == oldEnd {
				seg.End = v.TermEndDate
			}
		}
	}
	return nil
}

func periodUnit(t string) string {
	if t == "" {
		return "Month"
	}
	return t
}

func (o *orderRun) suspend(v *subVersion, a map[string]any) *fieldErr {
	sp, fe := objField(a, "suspend")
	if fe != nil {
		return fe
	}
	if sp == nil {
		return missing("suspend")
	}
	policy, fe := enumString(sp, "suspendPolicy", true, "Today", "EndOfLastInvoicePeriod", "FixedPeriodsFromToday", "SpecificDate")
	if fe != nil {
		return fe
	}
	var date string
	switch policy {
	case "Today", "EndOfLastInvoicePeriod":
		date = o.today
	case "FixedPeriodsFromToday":
		n, ok, fe := intField(sp, "suspendPeriods")
		if fe != nil {
			return fe
		}
		if !ok {
			return missing("suspendPeriods")
		}
		pt, fe := enumString(sp, "suspendPeriodsType", true, "Day", "Week", "Month", "Year")
		if fe != nil {
			return fe
		}
		date = addDate(o.today, n, periodUnit(pt))
	case "SpecificDate":
		d, fe := dateField(sp, "suspendSpecificDate", true)
		if fe != nil {
			return fe
		}
		date = d
	}
	if date < v.ContractEffectiveDate {
		return invalid("The suspend date %s is before the subscription's contract effective date", date)
	}
	if v.SubscriptionEndDate != "" && date >= v.SubscriptionEndDate {
		return invalid("The suspend date %s is not before the subscription end date %s", date, v.SubscriptionEndDate)
	}
	// The status follows the order action, not the date: "After you
	// suspended a subscription, the status of the subscription changes to
	// Suspended" (a future suspend date included); the statusHistory shows
	// when the suspension takes effect.
	v.Status = "Suspended"
	v.SuspendDate, v.ResumeDate = date, ""
	if n := len(v.StatusHistory); n > 0 {
		v.StatusHistory[n-1].End = date
	}
	v.StatusHistory = append(v.StatusHistory, statusSpan{Start: date, Status: "Suspended"})
	return nil
}

func (o *orderRun) resume(v *subVersion, a map[string]any) *fieldErr {
	if v.Status != "Suspended" {
		return business("Only a suspended subscription can be resumed")
	}
	rs, fe := objField(a, "resume")
	if fe != nil {
		return fe
	}
	if rs == nil {
		return missing("resume")
	}
	policy, fe := enumString(rs, "resumePolicy", true, "Today", "FixedPeriodsFromSuspendDate", "FixedPeriodsFromToday", "SpecificDate", "SuspendDate")
	if fe != nil {
		return fe
	}
	var date string
	switch policy {
	case "Today":
		date = o.today
	case "SuspendDate":
		date = v.SuspendDate
	case "SpecificDate":
		d, fe := dateField(rs, "resumeSpecificDate", true)
		if fe != nil {
			return fe
		}
		date = d
	default:
		n, ok, fe := intField(rs, "resumePeriods")
		if fe != nil {
			return fe
		}
		if !ok {
			return missing("resumePeriods")
		}
		pt, fe := enumString(rs, "resumePeriodsType", true, "Day", "Week", "Month", "Year")
		if fe != nil {
			return fe
		}
		base := o.today
		if policy == "FixedPeriodsFromSuspendDate" {
			base = v.SuspendDate
		}
		date = addDate(base, n, periodUnit(pt))
	}
	if date < v.SuspendDate {
		return invalid("The resume date %s is before the suspend date %s", date, v.SuspendDate)
	}
	extends, _, fe := boolField(rs, "extendsTerm")
	if fe != nil {
		return fe
	}
	if extends && v.TermEndDate != "" {
		days := daysBetween(v.SuspendDate, date)
		oldEnd := v.TermEndDate
		v.TermEndDate = addDate(oldEnd, days, "Day")
		v.SubscriptionEndDate = v.TermEndDate
		for _, rp := range v.RatePlans {
			for _, ch := range rp.Charges {
				if seg := ch.last(); seg.End == oldEnd {
					seg.End = v.TermEndDate
				}
			}
		}
	}
	// Active from this order on, though a future resume date leaves the
	// suspension in force until then (statusHistory).
	v.Status = "Active"
	v.ResumeDate = date
	if n := len(v.StatusHistory); n > 0 {
		v.StatusHistory[n-1].End = date
	}
	v.StatusHistory = append(v.StatusHistory, statusSpan{Start: date, Status: "Active"})
	return nil
}

func (o *orderRun) terms(v *subVersion, a map[string]any) *fieldErr {
	tc, fe := objField(a, "termsAndConditions")
	if fe != nil {
		return fe
	}
	if tc == nil {
		return missing("termsAndConditions")
	}
	if ar, ok, fe := boolField(tc, "autoRenew"); fe != nil {
		return fe
	} else if ok {
		v.AutoRenew = ar
	}
	if rs, fe := enumString(tc, "renewalSetting", false, "RENEW_WITH_SPECIFIC_TERM", "RENEW_TO_EVERGREEN"); fe != nil {
		return fe
	} else if rs != "" {
		v.RenewalSetting = rs
	}
	rts, fe := arrField(tc, "renewalTerms")
	if fe != nil {
		return fe
	}
	rtObjs, fe := objects(rts, "renewalTerms")
	if fe != nil {
		return fe
	}
	if len(rtObjs) > 0 {
		p, ok, fe := intField(rtObjs[0], "period")
		if fe != nil {
			return fe
		}
		if !ok || p <= 0 {
			return missing("termsAndConditions.renewalTerms[0].period")
		}
		pt, fe := enumString(rtObjs[0], "periodType", false, "Month", "Year", "Day", "Week")
		if fe != nil {
			return fe
		}
		v.RenewalTerm, v.RenewalTermPeriodType = p, firstNonEmpty(pt, "Month")
	}
	lt, fe := objField(tc, "lastTerm")
	if fe != nil || lt == nil {
		return fe
	}
	// lastTerm changes the current term (LastTerm: termType required).
	tt, fe := enumString(lt, "termType", true, "TERMED", "EVERGREEN")
	if fe != nil {
		return fe
	}
	if start, fe := dateField(lt, "startDate", false); fe != nil {
		return fe
	} else if start != "" {
		v.TermStartDate = start
	}
	if tt == "EVERGREEN" {
		v.TermType, v.CurrentTerm, v.CurrentTermPeriodType = "EVERGREEN", 0, ""
		v.TermEndDate, v.SubscriptionEndDate = "", ""
		return nil
	}
	p, ok, fe := intField(lt, "period")
	if fe != nil {
		return fe
	}
	if !ok || p <= 0 {
		return missing("termsAndConditions.lastTerm.period (required for a TERMED term)")
	}
	pt, fe := enumString(lt, "periodType", false, "Month", "Year", "Day", "Week")
	if fe != nil {
		return fe
	}
	pt = firstNonEmpty(pt, "Month")
	v.TermType, v.CurrentTerm, v.CurrentTermPeriodType = "TERMED", p, pt
	if v.InitialTerm == 0 {
		v.InitialTerm, v.InitialTermPeriodType = p, pt
	}
	if v.RenewalTerm == 0 {
		v.RenewalTerm, v.RenewalTermPeriodType = p, pt
	}
	v.TermEndDate = addDate(v.TermStartDate, p, pt)
	v.SubscriptionEndDate = v.TermEndDate
	return nil
}
