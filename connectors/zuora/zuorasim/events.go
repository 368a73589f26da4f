package zuorasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// event is a change of a base object that may fire callouts.
type event struct {
	baseObject   string // "Account", "Subscription"
	changeType   string // INSERT, UPDATE, DELETE
	fields       map[string]string
	old          map[string]string
	account      map[string]string
	subscription map[string]string
	category     int // standard event category (1210 subscription created), 0 if none
}

func (s *Sim) accountEvent(a *account, changeType string, old map[string]string) *event {
	f := accountFields(a)
	return &event{baseObject: "Account", changeType: changeType, fields: f, old: old, account: f}
}

func (s *Sim) subscriptionEvent(sub *subscription, changeType string) *event {
	v := sub.latest()
	f := map[string]string{
		"Id": v.ID, "Name": sub.Number, "SubscriptionNumber": sub.Number, "OriginalId": sub.OriginalID, "Version": strconv.Itoa(v.Version),
		"Status": v.Status, "AccountId": sub.AccountID, "TermType": v.TermType, "ContractEffectiveDate": v.ContractEffectiveDate,
		"SubscriptionStartDate": v.SubscriptionStartDate, "SubscriptionEndDate": v.SubscriptionEndDate, "TermStartDate": v.TermStartDate,
		"TermEndDate": v.TermEndDate, "AutoRenew": strconv.FormatBool(v.AutoRenew), "Currency": v.Currency,
		"CreatedDate": v.Created.UTC().Format(time.RFC3339), "UpdatedDate": v.Updated.UTC().Format(time.RFC3339),
	}
	for k, val := range v.Custom {
		f[k] = str(val)
	}
	ev := &event{baseObject: "Subscription", changeType: changeType, fields: f, subscription: f}
	if changeType == "UPDATE" && len(sub.Versions) > 1 {
		// Subscription.<Field>_old: the version the change replaced.
		p := sub.Versions[len(sub.Versions)-2]
		ev.old = map[string]string{"Id": p.ID, "Status": p.Status, "Version": strconv.Itoa(p.Version), "SubscriptionEndDate": p.SubscriptionEndDate,
			"TermEndDate": p.TermEndDate, "AutoRenew": strconv.FormatBool(p.AutoRenew)}
	}
	if a := s.st.accounts[sub.AccountID]; a != nil {
		ev.account = accountFields(a)
		f["AccountNumber"] = a.Number
	}
	if changeType == "INSERT" {
		ev.category = 1210
	}
	return ev
}

// ---- condition evaluation (a small subset of JEXL) ----

func (ev *event) lookup(ident string) (string, bool) {
	if ident == "changeType" {
		return ev.changeType, true
	}
	obj, field, ok := strings.Cut(ident, ".")
	if !ok {
		return "", false
	}
	var src map[string]string
	switch obj {
	case ev.baseObject:
		src = ev.fields
		if base, isOld := strings.CutSuffix(field, "_old"); isOld {
			if ev.old == nil {
				return "", true
			}
			v, found := ev.old[base]
			return v, found || true
		}
	case "Account":
		src = ev.account
	case "Subscription":
		src = ev.subscription
	}
	if src == nil {
		return "", false
	}
	v, found := src[field]
	return v, found || true
}

func (ev *event) operand(tok string) string {
	tok = strings.TrimSpace(tok)
	if len(tok) >= 2 && (tok[0] == '\'' && tok[len(tok)-1] == '\'' || tok[0] == '"' && tok[len(tok)-1] == '"') {
		return tok[1 : len(tok)-1]
	}
	if tok == "null" {
		return ""
	}
	if v, ok := ev.lookup(tok); ok {
		return v
	}
	return tok
}

// matches evaluates conditions of the form `a == 'x' && b != 'y' || c == d`.
func (ev *event) matches(cond string) bool {
	cond = strings.TrimSpace(cond)
	if cond == "" || cond == "true" {
		return true
	}
	for _, alt := range strings.Split(cond, "||") {
		all := true
		for _, term := range strings.Split(alt, "&&") {
			term = strings.Trim(strings.TrimSpace(term), "()")
			var ok bool
			switch {
			case strings.Contains(term, "!="):
				l, r, _ := strings.Cut(term, "!=")
				ok = ev.operand(l) != ev.operand(r)
			case strings.Contains(term, "=="):
				l, r, _ := strings.Cut(term, "==")
				ok = ev.operand(l) == ev.operand(r)
			default:
				ok = ev.operand(term) == "true"
			}
			if !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// ---- merge fields ----

var (
	mergeBraces = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.]+)\s*\}\}`)
	mergeAngle  = regexp.MustCompile(`<\s*(DataSource\.[A-Za-z0-9_.]+)\s*>`)
)

func (ev *event) mergeValue(path string) string {
	path = strings.TrimPrefix(path, "DataSource.")
	obj, field, ok := strings.Cut(path, ".")
	if !ok {
		return ""
	}
	var src map[string]string
	switch obj {
	case ev.baseObject:
		src = ev.fields
	case "Account":
		src = ev.account
	case "Subscription":
		src = ev.subscription
	case "Event":
		switch field {
		case "EventType", "ChangeType":
			return ev.changeType
		case "BaseObject":
			return ev.baseObject
		}
		return ""
	}
	if v, ok := src[field]; ok {
		return v
	}
	for k, v := range src { // merge field names are not case-sensitive in practice
		if strings.EqualFold(k, field) {
			return v
		}
	}
	return ""
}

func (ev *event) resolve(tpl string) string {
	out := mergeBraces.ReplaceAllStringFunc(tpl, func(m string) string {
		return ev.mergeValue(mergeBraces.FindStringSubmatch(m)[1])
	})
	return mergeAngle.ReplaceAllStringFunc(out, func(m string) string {
		return ev.mergeValue(mergeAngle.FindStringSubmatch(m)[1])
	})
}

// ---- firing and delivery ----

// CalloutAttempt is one HTTP request the simulator sent for a callout.
type CalloutAttempt struct {
	NotificationID string    `json:"notificationId"` // Zuora-Notification-Id, stable across retries
	RequestID      string    `json:"requestId"`      // Zuora-Request-Id, new for every request
	DefinitionID   string    `json:"definitionId"`
	DefinitionName string    `json:"definitionName"`
	Event          string    `json:"event"` // e.g. "Account INSERT"
	Method         string    `json:"method"`
	URL            string    `json:"url"`
	Body           string    `json:"body"`
	Delivery       int       `json:"delivery"`  // 1-based delivery attempt
	AuthSent       bool      `json:"authSent"`  // Authorization header present
	Challenge      bool      `json:"challenge"` // answered 401 + WWW-Authenticate, resent with credentials
	Status         int       `json:"status"`    // HTTP status, -1 on connection errors
	Error          string    `json:"error,omitempty"`
	Response       string    `json:"response,omitempty"` // response body, truncated to 60 KB
	Success        bool      `json:"success"`
	Time           time.Time `json:"time"`
}

// Callouts returns the callout log.
func (s *Sim) Callouts() []CalloutAttempt {
	s.calloutMu.Lock()
	defer s.calloutMu.Unlock()
	return slices.Clone(s.calloutLog)
}

// WaitCallouts waits until no callout delivery is in progress or pending.
func (s *Sim) WaitCallouts() { s.calloutWG.Wait() }

func (s *Sim) logCallout(a CalloutAttempt) {
	s.calloutMu.Lock()
	s.calloutLog = append(s.calloutLog, a)
	s.calloutMu.Unlock()
}

func (s *Sim) fire(events ...*event) {
	var work []struct {
		def *notificationDef
		ev  *event
	}
	s.mu.Lock()
	for _, ev := range events {
		if ev == nil {
			continue
		}
		names := map[string]bool{}
		for _, id := range s.st.triggerOrder {
			t := s.st.triggers[id]
			if t.Active && t.BaseObject == ev.baseObject && ev.matches(t.Condition) {
				names[t.Name] = true
			}
		}
		for _, id := range s.st.notifOrder {
			d := s.st.notifs[id]
			if !d.Active || !d.CalloutActive || !d.CalloutActiveTpl || d.BaseURL == "" {
				continue
			}
			hit := d.EventTypeName != "" && d.EventTypeNamespace == "user.notification" && names[d.EventTypeName]
			if d.EventCategory != nil && ev.category != 0 && int(*d.EventCategory) == ev.category {
				hit = true
			}
			if hit {
				cp := *d
				cp.Params = maps.Clone(d.Params)
				work = append(work, struct {
					def *notificationDef
					ev  *event
				}{&cp, ev})
			}
		}
	}
	s.mu.Unlock()
	for _, w := range work {
		s.calloutWG.Add(1)
		go s.deliver(w.def, w.ev)
	}
}

func retryableStatus(status int) bool {
	return status < 200 || status == http.StatusForbidden || status == http.StatusRequestTimeout ||
		status == http.StatusTooManyRequests || status >= 500
}

func (s *Sim) deliver(def *notificationDef, ev *event) {
	defer s.calloutWG.Done()
	notifID := strings.ReplaceAll(uuid.NewString(), "-", "")
	target := ev.resolve(def.BaseURL)
	params := make(map[string]string, len(def.Params))
	for k, v := range def.Params {
		params[k] = ev.resolve(v)
	}
	body, _ := json.Marshal(params)
	for n := 1; n <= s.opts.CalloutRetries; n++ {
		status := s.sendCallout(def, ev, target, body, notifID, n)
		if status == http.StatusOK {
			return
		}
		if !def.Retry || !retryableStatus(status) || n == s.opts.CalloutRetries {
			s.log.Warn().Str("notification_id", notifID).Str("definition", def.Name).Int("status", status).Int("delivery", n).Msg("callout failed, giving up")
			return
		}
		s.log.Debug().Str("notification_id", notifID).Str("definition", def.Name).Int("status", status).Int("delivery", n).Msg("callout failed, will retry")
		t := time.NewTimer(s.opts.CalloutRetryInterval)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// sendCallout makes one delivery (two requests on a Basic challenge) and
// returns the final status (-1 on connection errors).
func (s *Sim) sendCallout(def *notificationDef, ev *event, target string, body []byte, notifID string, n int) int {
	withAuth := def.RequiredAuth && def.Auth != nil && def.Auth.Preemptive
	status, hdr := s.sendOne(def, ev, target, body, notifID, n, withAuth, false)
	if status == http.StatusUnauthorized && def.RequiredAuth && def.Auth != nil && !withAuth && hdr.Get("WWW-Authenticate") != "" {
		status, _ = s.sendOne(def, ev, target, body, notifID, n, true, true)
	}
	return status
}

func (s *Sim) sendOne(def *notificationDef, ev *event, target string, body []byte, notifID string, n int, withAuth, challenge bool) (int, http.Header) {
	reqID := strings.ReplaceAll(uuid.NewString(), "-", "")
	method := def.HTTPMethod
	if method == "" {
		method = http.MethodPost
	}
	var rd io.Reader
	if method != http.MethodGet && method != http.MethodDelete {
		rd = bytes.NewReader(body)
	}
	att := CalloutAttempt{NotificationID: notifID, RequestID: reqID, DefinitionID: def.ID, DefinitionName: def.Name,
		Event: ev.baseObject + " " + ev.changeType, Method: method, URL: target, Body: string(body), Delivery: n, AuthSent: withAuth,
		Challenge: challenge, Time: s.Now()}
	req, err := http.NewRequestWithContext(s.ctx, method, target, rd)
	if err != nil {
		att.Status, att.Error = -1, err.Error()
		s.logCallout(att)
		return -1, nil
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Zuora-Request-Id", reqID)
	req.Header.Set("Zuora-Notification-Id", notifID)
	req.Header.Set("X-Amzn-Trace-Id", "Root=1-"+fmt.Sprintf("%08x", time.Now().Unix())+"-"+reqID[:24])
	req.Header.Set("User-Agent", "Zuora-Callout/1.0 (billsync zuorasim)")
	if withAuth {
		req.SetBasicAuth(def.Auth.Username, def.Auth.Password)
	}
	res, err := s.opts.CalloutHTTPClient.Do(req)
	if err != nil {
		att.Status, att.Error = -1, err.Error()
		s.logCallout(att)
		return -1, nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 60<<10))
	_ = res.Body.Close()
	att.Status, att.Response, att.Success = res.StatusCode, string(b), res.StatusCode == http.StatusOK
	s.logCallout(att)
	return res.StatusCode, res.Header
}

// ---- event triggers ----

func (t *eventTrigger) view() map[string]any {
	et := map[string]any{"name": t.Name, "displayName": t.DisplayName, "namespace": t.Namespace}
	if t.Description != "" {
		et["description"] = t.Description
	}
	return map[string]any{"id": t.ID, "active": t.Active, "baseObject": t.BaseObject, "condition": t.Condition, "eventType": et}
}

var baseObjects = set("Account", "Subscription", "Order", "OrderAction", "Product", "ProductRatePlan", "ProductRatePlanCharge", "Usage",
	"Contact", "Invoice", "Payment", "PaymentMethod", "RatePlan", "RatePlanCharge", "Amendment", "CreditMemo", "DebitMemo")

func (s *Sim) postEventTrigger(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.eventErr(http.StatusBadRequest, catMalformed, "Malformed JSON: "+err.Error())
	}
	active, hasActive, fe := boolField(m, "active")
	if fe == nil && !hasActive {
		fe = missing("active")
	}
	var base, cond, name, display, desc string
	if fe == nil {
		base, fe = reqString(m, "baseObject", 100)
	}
	if fe == nil {
		cond, fe = reqString(m, "condition", 5000)
	}
	var et map[string]any
	if fe == nil {
		et, fe = objField(m, "eventType")
		if fe == nil && et == nil {
			fe = missing("eventType")
		}
	}
	if fe == nil {
		name, fe = reqString(et, "name", 200)
	}
	if fe == nil {
		display, fe = reqString(et, "displayName", 500)
	}
	if fe == nil {
		desc, fe = optString(et, "description", 0)
	}
	if fe == nil && !baseObjects[base] && !strings.HasPrefix(base, "default__") {
		fe = invalid("Invalid baseObject %s (base objects are case-sensitive)", base)
	}
	if fe == nil && base == "RatePlan" && strings.Contains(cond, "INSERT") {
		fe = invalid("INSERT is not supported on the RatePlan base object")
	}
	if fe != nil {
		return c.eventErr(http.StatusBadRequest, fe.cat, fe.msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.triggers {
		if t.Name == name {
			return c.eventErr(http.StatusBadRequest, catBusiness, "An event type named "+name+" already exists")
		}
		if t.BaseObject == base && strings.TrimSpace(t.Condition) == strings.TrimSpace(cond) {
			return c.eventErr(http.StatusBadRequest, catBusiness, "A trigger with an identical condition already exists on "+base)
		}
	}
	t := &eventTrigger{ID: uuid.NewString(), Active: active, BaseObject: base, Condition: cond, Name: name, DisplayName: display, Description: desc, Namespace: "user.notification"}
	s.st.triggers[t.ID] = t
	s.st.triggerOrder = append(s.st.triggerOrder, t.ID)
	return jsonResp(http.StatusOK, t.view())
}

func startLimit(c *call) (int, int, *resp) {
	q := c.r.URL.Query()
	start, limit := 0, 20
	if v := q.Get("start"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, c.eventErr(http.StatusBadRequest, catInvalidValue, "'start' should be a non-negative integer")
		}
		start = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, c.eventErr(http.StatusBadRequest, catInvalidValue, "'limit' should be a positive integer")
		}
		limit = n
	}
	return start, limit, nil
}

func pageList(c *call, items []map[string]any, start, limit int) *resp {
	out := map[string]any{"data": []map[string]any{}}
	if start < len(items) {
		end := min(start+limit, len(items))
		out["data"] = items[start:end]
		if end < len(items) {
			q := c.r.URL.Query()
			q.Set("start", strconv.Itoa(end))
			q.Set("limit", strconv.Itoa(limit))
			out["next"] = c.r.URL.Path + "?" + q.Encode()
		}
	}
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) listEventTriggers(c *call) *resp {
	start, limit, bad := startLimit(c)
	if bad != nil {
		return bad
	}
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []map[string]any
	for _, id := range s.st.triggerOrder {
		t := s.st.triggers[id]
		if v := q.Get("baseObject"); v != "" && v != t.BaseObject {
			continue
		}
		if v := q.Get("eventTypeName"); v != "" && v != t.Name {
			continue
		}
		if v := q.Get("active"); v != "" && v != strconv.FormatBool(t.Active) {
			continue
		}
		items = append(items, t.view())
	}
	return pageList(c, items, start, limit)
}

func (s *Sim) getEventTrigger(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.triggers[c.param("id")]
	if t == nil {
		return c.eventErr(http.StatusNotFound, catNotFound, "Event trigger "+c.param("id")+" not found")
	}
	return jsonResp(http.StatusOK, t.view())
}

func (s *Sim) deleteEventTrigger(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.triggers[c.param("id")] == nil {
		return c.eventErr(http.StatusNotFound, catNotFound, "Event trigger "+c.param("id")+" not found")
	}
	delete(s.st.triggers, c.param("id"))
	s.st.triggerOrder = slices.DeleteFunc(s.st.triggerOrder, func(x string) bool { return x == c.param("id") })
	return &resp{status: http.StatusNoContent, header: http.Header{}}
}

// ---- notification definitions ----

const defaultProfileID = "2c9890a5-6c8a-4a77-9bcb-1e02f8a1c001"

func (s *Sim) postNotificationDefinition(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.eventErr(http.StatusBadRequest, catMalformed, "Malformed JSON: "+err.Error())
	}
	d, fe := parseNotification(m)
	if fe != nil {
		return c.eventErr(http.StatusBadRequest, fe.cat, fe.msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.st.notifs {
		if x.Name == d.Name && x.ProfileID == d.ProfileID {
			return c.eventErr(http.StatusBadRequest, catBusiness, "A notification definition named "+d.Name+" already exists in the communication profile")
		}
	}
	if d.EventTypeName != "" && d.EventTypeNamespace == "user.notification" {
		found := false
		for _, t := range s.st.triggers {
			if t.Name == d.EventTypeName {
				found = true
			}
		}
		if !found {
			return c.eventErr(http.StatusBadRequest, catInvalidValue, "Event type "+d.EventTypeName+" does not exist in namespace user.notification")
		}
	}
	d.ID, d.EventID, d.CalloutID = uuid.NewString(), uuid.NewString(), uuid.NewString()
	switch {
	case len(d.TemplateIDs) == 1:
		t := s.st.templates[d.TemplateIDs[0]]
		if t == nil {
			return c.eventErr(http.StatusBadRequest, catInvalidValue, "Callout template "+d.TemplateIDs[0]+" does not exist")
		}
		if t.EventTypeName != d.EventTypeName || !sameCategory(t.EventCategory, d.EventCategory) {
			return c.eventErr(http.StatusBadRequest, catInvalidValue, "Callout template "+t.CalloutName+" belongs to another event")
		}
		t.copyCalloutTo(d)
	case d.BaseURL != "":
		// An inline callout creates a callout template (Zuora: "the name
		// must be unique across all callout templates"); deleting the
		// definition leaves it.
		if s.templateNamed(d.CalloutName) != nil {
			return c.eventErr(http.StatusBadRequest, catBusiness, "A callout template named "+d.CalloutName+" already exists; the name must be unique across all callout templates")
		}
		t := &notificationDef{}
		d.copyCalloutTo(t)
		t.EventTypeName, t.EventTypeNamespace, t.EventCategory = d.EventTypeName, d.EventTypeNamespace, d.EventCategory
		t.Created, t.Updated = c.now, c.now
		s.st.templates[t.CalloutID] = t
		s.st.templateOrder = append(s.st.templateOrder, t.CalloutID)
	}
	d.Created, d.Updated = c.now, c.now
	s.st.notifs[d.ID] = d
	s.st.notifOrder = append(s.st.notifOrder, d.ID)
	return jsonResp(http.StatusOK, d.view())
}

func parseNotification(m map[string]any) (*notificationDef, *fieldErr) {
	d := &notificationDef{Active: true, Retry: true, CalloutActiveTpl: true, Raw: m}
	var fe *fieldErr
	if d.Name, fe = reqString(m, "name", 255); fe != nil {
		return nil, fe
	}
	if d.Description, fe = optString(m, "description", 0); fe != nil {
		return nil, fe
	}
	if v, ok, fe := boolField(m, "active"); fe != nil {
		return nil, fe
	} else if ok {
		d.Active = v
	}
	if d.CalloutActive, _, fe = boolField(m, "calloutActive"); fe != nil {
		return nil, fe
	}
	if d.EmailActive, _, fe = boolField(m, "emailActive"); fe != nil {
		return nil, fe
	}
	if n, ok, fe := numField(m, "eventCategory", false); fe != nil {
		return nil, fe
	} else if ok {
		f, err := n.Float64()
		if err != nil {
			return nil, invalid("'eventCategory' should be a number")
		}
		d.EventCategory = &f
	}
	if d.EventTypeName, fe = optString(m, "eventTypeName", 0); fe != nil {
		return nil, fe
	}
	if (d.EventCategory == nil) == (d.EventTypeName == "") {
		return nil, invalid("Exactly one of eventCategory and eventTypeName is required")
	}
	if d.EventTypeNamespace, fe = enumString(m, "eventTypeNamespace", false, "user.notification", "com.zuora.notification"); fe != nil {
		return nil, fe
	}
	if d.EventTypeNamespace == "" && d.EventTypeName != "" {
		d.EventTypeNamespace = "user.notification"
	}
	if d.ProfileID, fe = optString(m, "communicationProfileId", 0); fe != nil {
		return nil, fe
	}
	if d.ProfileID == "" {
		d.ProfileID = defaultProfileID
	}
	co, fe := objField(m, "callout")
	if fe != nil {
		return nil, fe
	}
	raw, fe := arrField(m, "calloutTemplateIds")
	if fe != nil {
		return nil, fe
	}
	for _, x := range raw {
		id, ok := x.(string)
		if !ok || id == "" {
			return nil, invalid("'calloutTemplateIds' should hold template ids")
		}
		d.TemplateIDs = append(d.TemplateIDs, id)
	}
	if co != nil && len(d.TemplateIDs) > 0 {
		return nil, invalid("Set either 'callout' or 'calloutTemplateIds', not both")
	}
	if len(d.TemplateIDs) > 1 {
		return nil, invalid("The simulator supports one callout template per notification definition")
	}
	if co == nil {
		if d.CalloutActive && len(d.TemplateIDs) == 0 {
			return nil, missing("callout")
		}
		return d, nil
	}
	if fe := parseCallout(co, d); fe != nil {
		return nil, fe
	}
	return d, nil
}

// parseCallout reads a callout (an inline one or a callout template's
// body) into d's callout fields.
func parseCallout(co map[string]any, d *notificationDef) *fieldErr {
	var fe *fieldErr
	if d.CalloutName, fe = reqString(co, "name", 255); fe != nil {
		return fe
	}
	if d.BaseURL, fe = reqString(co, "calloutBaseurl", 1000); fe != nil {
		return fe
	}
	u, err := url.Parse(mergeBraces.ReplaceAllString(d.BaseURL, "x"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid("'calloutBaseurl' should be an absolute https URL")
	}
	// Zuora delivers callouts over HTTPS (docs/zuora-rules.md); the
	// simulator also calls plain http on loopback, for local receivers.
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return invalid("'calloutBaseurl' must be an https URL (the simulator accepts http only for loopback targets such as 127.0.0.1)")
	}
	if d.HTTPMethod, fe = enumString(co, "httpMethod", true, "POST", "GET", "PUT", "PATCH", "DELETE"); fe != nil {
		return fe
	}
	if v, ok, fe := boolField(co, "active"); fe != nil {
		return fe
	} else if ok {
		d.CalloutActiveTpl = v
	}
	if v, ok, fe := boolField(co, "calloutRetry"); fe != nil {
		return fe
	} else if ok {
		d.Retry = v
	}
	params, fe := objField(co, "calloutParams")
	if fe != nil {
		return fe
	}
	d.Params = map[string]string{}
	for k, v := range params {
		sv, ok := v.(string)
		if !ok {
			return invalid("calloutParams.%s should be a string", k)
		}
		d.Params[k] = sv
	}
	if d.RequiredAuth, _, fe = boolField(co, "requiredAuth"); fe != nil {
		return fe
	}
	if ro, _, _ := boolField(co, "requiredOauth2"); ro {
		return invalid("The simulator does not support OAuth 2.0 callouts")
	}
	auth, fe := objField(co, "calloutAuth")
	if fe != nil {
		return fe
	}
	if d.RequiredAuth {
		if auth == nil {
			return missing("callout.calloutAuth")
		}
		d.Auth = &calloutAuth{}
		if d.Auth.Username, fe = reqString(auth, "username", 0); fe != nil {
			return fe
		}
		if d.Auth.Password, fe = reqString(auth, "password", 0); fe != nil {
			return fe
		}
		d.Auth.Domain, _ = getString(auth, "domain")
		if d.Auth.Preemptive, _, fe = boolField(auth, "preemptive"); fe != nil {
			return fe
		}
	}
	return nil
}

func (d *notificationDef) view() map[string]any {
	out := map[string]any{
		"id": d.ID, "name": d.Name, "active": d.Active, "calloutActive": d.CalloutActive, "emailActive": d.EmailActive,
		"eventId": d.EventID, "communicationProfileId": d.ProfileID, "communicationProfileIds": []string{d.ProfileID},
		"createdOn": d.Created.UTC().Format(time.RFC3339), "updatedOn": d.Updated.UTC().Format(time.RFC3339),
		"createdBy": simUserUUID, "updatedBy": simUserUUID, "calloutTemplateIds": []string{},
	}
	if d.Description != "" {
		out["description"] = d.Description
	}
	if d.EventCategory != nil {
		out["eventCategory"] = *d.EventCategory
	}
	if d.EventTypeName != "" {
		out["eventTypeName"] = d.EventTypeName
		out["eventTypeNamespace"] = d.EventTypeNamespace
	}
	if d.BaseURL != "" {
		co := map[string]any{"id": d.CalloutID, "name": d.CalloutName, "active": d.CalloutActiveTpl, "calloutBaseurl": d.BaseURL,
			"httpMethod": d.HTTPMethod, "calloutParams": d.Params, "calloutRetry": d.Retry, "requiredAuth": d.RequiredAuth, "requiredOauth2": false}
		if d.EventTypeName != "" {
			co["eventTypeName"] = d.EventTypeName
		}
		if d.Auth != nil {
			// The password is write-only: never echoed.
			co["calloutAuth"] = map[string]any{"username": d.Auth.Username, "preemptive": d.Auth.Preemptive, "domain": d.Auth.Domain}
		}
		out["callout"] = co
		out["calloutTemplateIds"] = []string{d.CalloutID}
	}
	return out
}

const simUserUUID = "7c9d2f3e-1a4b-4c5d-8e6f-0a1b2c3d4e5f"

func (s *Sim) listNotificationDefinitions(c *call) *resp {
	start, limit, bad := startLimit(c)
	if bad != nil {
		return bad
	}
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []map[string]any
	for _, id := range s.st.notifOrder {
		d := s.st.notifs[id]
		if v := q.Get("eventTypeName"); v != "" && v != d.EventTypeName {
			continue
		}
		if v := q.Get("eventCategory"); v != "" && (d.EventCategory == nil || strconv.FormatFloat(*d.EventCategory, 'f', -1, 64) != v) {
			continue
		}
		if v := q.Get("profileId"); v != "" && v != d.ProfileID {
			continue
		}
		items = append(items, d.view())
	}
	return pageList(c, items, start, limit)
}

func (s *Sim) getNotificationDefinition(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.notifs[c.param("id")]
	if d == nil {
		return c.eventErr(http.StatusNotFound, catNotFound, "Notification definition "+c.param("id")+" not found")
	}
	return jsonResp(http.StatusOK, d.view())
}

func (s *Sim) deleteNotificationDefinition(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.notifs[c.param("id")] == nil {
		return c.eventErr(http.StatusNotFound, catNotFound, "Notification definition "+c.param("id")+" not found")
	}
	delete(s.st.notifs, c.param("id"))
	s.st.notifOrder = slices.DeleteFunc(s.st.notifOrder, func(x string) bool { return x == c.param("id") })
	return &resp{status: http.StatusNoContent, header: http.Header{}}
}

// loopbackHost reports a host name or address on this machine's loopback.
func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ---- callout templates (/notifications/callout-templates) ----

// copyCalloutTo copies the callout fields (the template part) of d into x.
func (d *notificationDef) copyCalloutTo(x *notificationDef) {
	x.CalloutID, x.CalloutName, x.CalloutActiveTpl = d.CalloutID, d.CalloutName, d.CalloutActiveTpl
	x.BaseURL, x.HTTPMethod, x.Retry, x.RequiredAuth = d.BaseURL, d.HTTPMethod, d.Retry, d.RequiredAuth
	x.Params = maps.Clone(d.Params)
	if d.Auth != nil {
		a := *d.Auth
		x.Auth = &a
	} else {
		x.Auth = nil
	}
}

func sameCategory(a, b *float64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// templateNamed returns the callout template with that name; the caller
// holds s.mu.
func (s *Sim) templateNamed(name string) *notificationDef {
	for _, id := range s.st.templateOrder {
		if t := s.st.templates[id]; t.CalloutName == name {
			return t
		}
	}
	return nil
}

func templateView(t *notificationDef) map[string]any {
	out := map[string]any{"id": t.CalloutID, "name": t.CalloutName, "active": t.CalloutActiveTpl, "calloutBaseurl": t.BaseURL,
		"httpMethod": t.HTTPMethod, "calloutParams": t.Params, "calloutRetry": t.Retry, "requiredAuth": t.RequiredAuth,
		"createdOn": t.Created.UTC().Format(time.RFC3339), "updatedOn": t.Updated.UTC().Format(time.RFC3339),
		"createdBy": simUserUUID, "updatedBy": simUserUUID}
	if t.EventTypeName != "" {
		out["eventTypeName"], out["eventTypeNamespace"] = t.EventTypeName, t.EventTypeNamespace
	}
	if t.EventCategory != nil {
		out["eventCategory"] = *t.EventCategory
	}
	if t.Auth != nil {
		// The password is write-only: never echoed.
		out["calloutAuth"] = map[string]any{"username": t.Auth.Username, "preemptive": t.Auth.Preemptive, "domain": t.Auth.Domain}
	}
	return out
}

func (s *Sim) postCalloutTemplate(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.eventErr(http.StatusBadRequest, catMalformed, "Malformed JSON: "+err.Error())
	}
	t := &notificationDef{Retry: true, CalloutActiveTpl: true}
	if fe := parseCallout(m, t); fe != nil {
		return c.eventErr(http.StatusBadRequest, fe.cat, fe.msg)
	}
	if n, ok, fe := numField(m, "eventCategory", false); fe != nil {
		return c.eventErr(http.StatusBadRequest, fe.cat, fe.msg)
	} else if ok {
		f, _ := n.Float64()
		t.EventCategory = &f
	}
	t.EventTypeName, _ = getString(m, "eventTypeName")
	if (t.EventCategory == nil) == (t.EventTypeName == "") {
		return c.eventErr(http.StatusBadRequest, catInvalidValue, "Exactly one of eventCategory and eventTypeName is required (the template's related event)")
	}
	if t.EventTypeName != "" {
		t.EventTypeNamespace = firstNonEmpty(str(m["eventTypeNamespace"]), "user.notification")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.templateNamed(t.CalloutName) != nil {
		return c.eventErr(http.StatusBadRequest, catBusiness, "A callout template named "+t.CalloutName+" already exists; the name must be unique across all callout templates")
	}
	t.CalloutID = uuid.NewString()
	t.Created, t.Updated = c.now, c.now
	s.st.templates[t.CalloutID] = t
	s.st.templateOrder = append(s.st.templateOrder, t.CalloutID)
	return jsonResp(http.StatusOK, templateView(t))
}

func (s *Sim) listCalloutTemplates(c *call) *resp {
	start, limit, bad := startLimit(c)
	if bad != nil {
		return bad
	}
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []map[string]any
	for _, id := range s.st.templateOrder {
		t := s.st.templates[id]
		if v := q.Get("name"); v != "" && v != t.CalloutName {
			continue
		}
		if v := q.Get("eventTypeName"); v != "" && v != t.EventTypeName {
			continue
		}
		items = append(items, templateView(t))
	}
	return pageList(c, items, start, limit)
}

func (s *Sim) getCalloutTemplate(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.templates[c.param("id")]
	if t == nil {
		return c.eventErr(http.StatusNotFound, catNotFound, "Callout template "+c.param("id")+" not found")
	}
	return jsonResp(http.StatusOK, templateView(t))
}

// putCalloutTemplate changes a template in place (fields left out keep
// their value); every notification definition using it follows.
func (s *Sim) putCalloutTemplate(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.eventErr(http.StatusBadRequest, catMalformed, "Malformed JSON: "+err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.templates[c.param("id")]
	if t == nil {
		return c.eventErr(http.StatusNotFound, catNotFound, "Callout template "+c.param("id")+" not found")
	}
	merged := map[string]any{"name": t.CalloutName, "calloutBaseurl": t.BaseURL, "httpMethod": t.HTTPMethod, "active": t.CalloutActiveTpl,
		"calloutRetry": t.Retry, "requiredAuth": t.RequiredAuth}
	params := map[string]any{}
	for k, v := range t.Params {
		params[k] = v
	}
	merged["calloutParams"] = params
	if t.Auth != nil {
		merged["calloutAuth"] = map[string]any{"username": t.Auth.Username, "password": t.Auth.Password, "domain": t.Auth.Domain, "preemptive": t.Auth.Preemptive}
	}
	for k, v := range m {
		merged[k] = v
	}
	nt := &notificationDef{}
	t.copyCalloutTo(nt)
	if fe := parseCallout(merged, nt); fe != nil {
		return c.eventErr(http.StatusBadRequest, fe.cat, fe.msg)
	}
	if nt.CalloutName != t.CalloutName {
		if x := s.templateNamed(nt.CalloutName); x != nil {
			return c.eventErr(http.StatusBadRequest, catBusiness, "A callout template named "+nt.CalloutName+" already exists")
		}
	}
	nt.copyCalloutTo(t)
	t.Updated = c.now
	for _, d := range s.st.notifs {
		if d.CalloutID == t.CalloutID {
			t.copyCalloutTo(d)
			d.Updated = c.now
		}
	}
	return jsonResp(http.StatusOK, templateView(t))
}
