package zuorasim

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scheduled orders ("Scheduled orders", docs.zuora.com/en/zuora-billing/
// manage-accounts-subscriptions-and-non-subscriptions/manage-subscription-transactions/
// orders/orders-introduction/scheduled-orders; "Create scheduled orders using
// the REST API"): POST /v1/orders with status Scheduled and
// schedulingOptions {scheduledDatePolicy: SpecificDate, scheduledDate} saves
// the order without running it; on its date (the simulator's clock) it runs
// like any order, becomes Completed (Failed when it no longer applies), and
// fires the Order UPDATE event (Status Scheduled → Completed) besides the
// subscription's own. PUT /v1/orders/{orderNumber}/cancel cancels it while it
// is Scheduled; GET /v1/orders/{orderNumber} and
// GET /v1/orders/subscription/{subscriptionNumber}?status= read orders.

const (
	orderScheduled = "Scheduled"
	orderCompleted = "Completed"
	orderCancelled = "Cancelled"
	orderFailed    = "Failed"
)

// postScheduledOrder saves an order with status Scheduled. The order is run
// once against the current subscription and rolled back, so an order that
// could not run today is refused now, as Zuora validates it on creation.
func (s *Sim) postScheduledOrder(c *call, m map[string]any) *resp {
	so, fe := objField(m, "schedulingOptions")
	if fe == nil && so == nil {
		fe = missing("schedulingOptions (an order with status Scheduled needs schedulingOptions.scheduledDatePolicy and scheduledDate)")
	}
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	if _, fe := enumString(so, "scheduledDatePolicy", true, "SpecificDate"); fe != nil {
		return c.restErr(fe.cat, "schedulingOptions."+fe.msg)
	}
	date, fe := dateField(so, "scheduledDate", true)
	if fe != nil {
		return c.restErr(fe.cat, "schedulingOptions."+fe.msg)
	}
	today := c.now.UTC().Format(dateLayout)
	if date <= today {
		return c.restErr(catBusiness, "The scheduled date "+date+" must be a future date (today is "+today+")")
	}
	if _, ok := m["newAccount"]; ok {
		// Stricter reading (docs/zuora-rules.md): Zuora documents scheduled
		// orders under an existing account only.
		return c.restErr(catBusiness, "A scheduled order must be placed under an existing account (existingAccountNumber)")
	}
	body := runnable(m)
	s.mu.Lock()
	o := s.newOrderRun(c.now)
	fe = o.run(body)
	if fe == nil && len(o.created) > 0 {
		fe = business("The simulator schedules changes of existing subscriptions only")
	}
	num, acct := o.orderNumber, o.acct
	var subs []map[string]any
	if fe == nil {
		for _, sub := range o.results {
			subs = append(subs, map[string]any{"subscriptionNumber": sub.Number, "status": sub.Versions[o.touched[sub]-1].Status})
		}
	}
	o.rollback()
	for sub := range o.touched {
		sub.Orders--
	}
	if fe == nil && str(m["orderNumber"]) == "" {
		s.st.nOrder++ // the generated number stays taken
	}
	if fe != nil {
		s.mu.Unlock()
		return c.restErr(fe.cat, fe.msg)
	}
	raw, _ := json.Marshal(m)
	ord := &order{ID: s.st.newID(), Number: num, AccountID: acct.ID, Date: o.orderDate, Created: c.now, Updated: c.now,
		Status: orderScheduled, ScheduledDate: date, Body: raw}
	for _, x := range subs {
		ord.Subscriptions = append(ord.Subscriptions, x["subscriptionNumber"].(string))
	}
	s.st.orders[num] = ord
	s.st.scheduledOrders = append(s.st.scheduledOrders, num)
	s.mu.Unlock()
	out := map[string]any{"success": true, "orderNumber": num, "accountNumber": acct.Number, "status": orderScheduled, "subscriptions": subs}
	if c.r.URL.Query().Get("returnIds") == "true" {
		out["accountId"], out["orderId"] = acct.ID, ord.ID
	}
	return jsonResp(http.StatusOK, out)
}

// runnable is the order as it runs: without status and schedulingOptions.
func runnable(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != "status" && k != "schedulingOptions" {
			out[k] = v
		}
	}
	return out
}

// RunDueOrders runs every scheduled order whose date has come by the
// simulator's clock, in date order, and fires their events. It reports how
// many ran (completed or failed).
func (s *Sim) RunDueOrders() int {
	n, events := s.runDueOrders(s.Now())
	s.fire(events...)
	if n > 0 {
		s.persist()
	}
	return n
}

func (s *Sim) runDueOrders(now time.Time) (int, []*event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if len(st.scheduledOrders) == 0 {
		return 0, nil
	}
	today := now.UTC().Format(dateLayout)
	var due []*order
	for _, num := range st.scheduledOrders {
		if ord := st.orders[num]; ord != nil && ord.Status == orderScheduled && ord.ScheduledDate <= today {
			due = append(due, ord)
		}
	}
	sort.SliceStable(due, func(i, j int) bool {
		if due[i].ScheduledDate != due[j].ScheduledDate {
			return due[i].ScheduledDate < due[j].ScheduledDate
		}
		return due[i].Created.Before(due[j].Created)
	})
	var events []*event
	for _, ord := range due {
		events = append(events, s.execute(ord, now)...)
	}
	st.scheduledOrders = slices.DeleteFunc(st.scheduledOrders, func(num string) bool {
		ord := st.orders[num]
		return ord == nil || ord.Status != orderScheduled
	})
	return len(due), events
}

// execute runs a scheduled order on its date; the caller holds s.mu.
func (s *Sim) execute(ord *order, now time.Time) []*event {
	st := s.st
	m, err := decodeObject(ord.Body)
	if err != nil {
		ord.Status, ord.FailureReason, ord.Updated = orderFailed, "unreadable order: "+err.Error(), now
		return []*event{s.orderEvent(ord, orderScheduled)}
	}
	on, _ := time.Parse(dateLayout, ord.ScheduledDate)
	delete(st.orders, ord.Number) // its own number is not a duplicate
	o := s.newOrderRun(on.Add(now.Sub(now.Truncate(24 * time.Hour))))
	fe := o.run(runnable(m))
	if fe != nil {
		o.rollback()
		st.orders[ord.Number] = ord
		ord.Status, ord.FailureReason, ord.Updated = orderFailed, fe.msg, now
		return []*event{s.orderEvent(ord, orderScheduled)}
	}
	o.commit()
	ran := st.orders[ord.Number]
	ord.Subscriptions = ran.Subscriptions
	st.orders[ord.Number] = ord
	ord.Status, ord.Updated = orderCompleted, now
	return append(o.events, s.orderEvent(ord, orderScheduled))
}

// orderEvent is the Order UPDATE event of a scheduled order that ran
// (Order.Status_old Scheduled): the event the "scheduled order completed"
// trigger listens to.
func (s *Sim) orderEvent(ord *order, oldStatus string) *event {
	f := map[string]string{"Id": ord.ID, "OrderNumber": ord.Number, "Status": ord.Status, "AccountId": ord.AccountID,
		"OrderDate": ord.Date, "ScheduledDate": ord.ScheduledDate, "UpdatedDate": ord.Updated.UTC().Format(time.RFC3339)}
	ev := &event{baseObject: "Order", changeType: "UPDATE", fields: f, old: map[string]string{"Status": oldStatus}}
	if a := s.st.accounts[ord.AccountID]; a != nil {
		ev.account = accountFields(a)
		f["AccountNumber"] = a.Number
	}
	return ev
}

// orderView is an Order as GET /v1/orders/{orderNumber} shows it.
func (s *Sim) orderView(ord *order) map[string]any {
	status := firstNonEmpty(ord.Status, orderCompleted)
	out := map[string]any{"orderNumber": ord.Number, "orderDate": ord.Date, "status": status,
		"createdDate": rfc(ord.Created), "updatedDate": rfc(firstTime(ord.Updated, ord.Created))}
	if a := s.st.accounts[ord.AccountID]; a != nil {
		out["existingAccountNumber"] = a.Number
	}
	if ord.ScheduledDate != "" {
		out["schedulingOptions"] = map[string]any{"scheduledDatePolicy": "SpecificDate", "scheduledDate": ord.ScheduledDate}
	}
	subs := []map[string]any{}
	var body map[string]any
	if len(ord.Body) > 0 {
		body, _ = decodeObject(ord.Body)
	}
	raw, _ := body["subscriptions"].([]any)
	for i, num := range ord.Subscriptions {
		x := map[string]any{"subscriptionNumber": num}
		if i < len(raw) {
			if sm, ok := raw[i].(map[string]any); ok {
				if acts, ok := sm["orderActions"].([]any); ok {
					x["orderActions"] = acts
				}
			}
		}
		subs = append(subs, x)
	}
	out["subscriptions"] = subs
	return out
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func (s *Sim) getOrder(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	ord := s.st.orders[c.param("orderNumber")]
	if ord == nil {
		return c.restErr(catNotFound, "The order "+c.param("orderNumber")+" does not exist")
	}
	return jsonResp(http.StatusOK, map[string]any{"success": true, "order": s.orderView(ord)})
}

// getOrdersBySubscription lists the orders that changed a subscription, the
// newest first, filtered by status (all by default), paged (pageSize ≤ 40).
func (s *Sim) getOrdersBySubscription(c *call) *resp {
	q := c.r.URL.Query()
	status := strings.ToLower(firstNonEmpty(q.Get("status"), "all"))
	switch status {
	case "all", "cancelled", "completed", "draft", "executing", "failed", "pending", "scheduled":
	default:
		return c.restErr(catInvalidValue, "'status' value should be one of: all, cancelled, completed, draft, executing, failed, pending, scheduled")
	}
	page, size := 1, 20
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c.restErr(catInvalidValue, "'page' must be a positive integer")
		}
		page = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 40 {
			return c.restErr(catInvalidValue, "'pageSize' must be between 1 and 40")
		}
		size = n
	}
	num := c.param("subscriptionNumber")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.subscription(num) == nil {
		return c.restErr(catNotFound, "The subscription "+num+" does not exist")
	}
	var hits []*order
	for _, ord := range s.st.orders {
		if !slices.Contains(ord.Subscriptions, num) {
			continue
		}
		if status != "all" && !strings.EqualFold(firstNonEmpty(ord.Status, orderCompleted), status) {
			continue
		}
		hits = append(hits, ord)
	}
	sort.Slice(hits, func(i, j int) bool {
		if !hits[i].Created.Equal(hits[j].Created) {
			return hits[i].Created.After(hits[j].Created)
		}
		return hits[i].Number > hits[j].Number
	})
	out := map[string]any{"success": true}
	views := []map[string]any{}
	start := (page - 1) * size
	for i := start; i < len(hits) && i < start+size; i++ {
		views = append(views, s.orderView(hits[i]))
	}
	out["orders"] = views
	if start+size < len(hits) {
		nq := c.r.URL.Query()
		nq.Set("page", strconv.Itoa(page+1))
		nq.Set("pageSize", strconv.Itoa(size))
		out["nextPage"] = c.r.URL.Path + "?" + nq.Encode()
	}
	return jsonResp(http.StatusOK, out)
}

// cancelOrder cancels a draft or scheduled order ("Cancel an order":
// cancellation is only valid for draft or scheduled orders).
func (s *Sim) cancelOrder(c *call) *resp {
	var reason string
	if len(strings.TrimSpace(string(c.body))) > 0 {
		m, err := decodeObject(c.body)
		if err != nil {
			return c.restErr(catMalformed, "Malformed JSON: "+err.Error())
		}
		r, fe := optString(m, "cancelReason", 255)
		if fe != nil {
			return c.restErr(fe.cat, fe.msg)
		}
		reason = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ord := s.st.orders[c.param("orderNumber")]
	if ord == nil {
		return c.restErr(catNotFound, "The order "+c.param("orderNumber")+" does not exist")
	}
	if ord.Status != orderScheduled {
		return c.restErr(catBusiness, "Only draft or scheduled orders can be cancelled; the order "+ord.Number+" is "+firstNonEmpty(ord.Status, orderCompleted))
	}
	ord.Status, ord.CancelReason, ord.Updated = orderCancelled, reason, c.now
	s.st.scheduledOrders = slices.DeleteFunc(s.st.scheduledOrders, func(n string) bool { return n == ord.Number })
	out := map[string]any{"success": true, "orderNumber": ord.Number, "status": orderCancelled}
	if a := s.st.accounts[ord.AccountID]; a != nil {
		out["accountNumber"] = a.Number
	}
	if reason != "" {
		out["cancelReason"] = reason
	}
	return jsonResp(http.StatusOK, out)
}
