package zuorasim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

type received struct {
	auth, requestID, notificationID string
	body                            map[string]string
}

// receiver is a callout endpoint that answers from a script of statuses
// (the last one repeats) and challenges requests without credentials when
// basic is set.
type receiver struct {
	mu       sync.Mutex
	got      []received
	statuses []int
	basic    bool
	srv      *httptest.Server
}

func newReceiver(t *testing.T, basic bool, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses, basic: basic}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]string
		_ = json.Unmarshal(raw, &body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{auth: r.Header.Get("Authorization"), requestID: r.Header.Get("Zuora-Request-Id"),
			notificationID: r.Header.Get("Zuora-Notification-Id"), body: body})
		if rc.basic {
			if u, p, ok := r.BasicAuth(); !ok || u != "zuora" || p != "s3cret" {
				rc.mu.Unlock()
				w.Header().Set("WWW-Authenticate", `Basic realm="billsync"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		status := 200
		if len(rc.statuses) > 0 {
			status = rc.statuses[0]
			if len(rc.statuses) > 1 {
				rc.statuses = rc.statuses[1:]
			}
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func accountTrigger(h *harness) {
	r := h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "Account", "condition": "changeType == 'INSERT'",
		"eventType": map[string]any{"name": "AccountCreated", "displayName": "Account Created", "description": "billsync inbound"}})
	require.Equal(h.t, 200, r.status, string(r.raw))
}

func definition(h *harness, name, url string, event map[string]any, auth map[string]any) string {
	callout := map[string]any{"name": name, "calloutBaseurl": url, "httpMethod": "POST", "active": true, "calloutRetry": true,
		"calloutParams": map[string]any{"AccountId": "{{DataSource.Account.Id}}", "AccountNumber": "<DataSource.Account.AccountNumber>",
			"Short": "{{Account.Id}}", "BillsyncId": "{{DataSource.Account.BillsyncId__c}}", "SubscriptionNumber": "{{DataSource.Subscription.Name}}"},
		"requiredAuth": auth != nil}
	if auth != nil {
		callout["calloutAuth"] = auth
	}
	body := map[string]any{"name": name, "active": true, "calloutActive": true, "callout": callout}
	for k, v := range event {
		body[k] = v
	}
	r := h.do("POST", "/notifications/notification-definitions", body)
	require.Equal(h.t, 200, r.status, string(r.raw))
	d := r.obj(h.t)
	require.NotContains(h.t, mustJSON(d), "s3cret", "the callout password is never echoed")
	return d["id"].(string)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCallouts(t *testing.T) {
	t.Parallel()
	t.Run("basic auth challenge, merge fields, via API order", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		rc := newReceiver(t, true)
		accountTrigger(h)
		definition(h, "account-created", rc.srv.URL+"/webhooks/zuora/{{DataSource.Account.AccountNumber}}", map[string]any{"eventTypeName": "AccountCreated"},
			map[string]any{"username": "zuora", "password": "s3cret", "preemptive": false})
		c := h.seedCatalog("Callout")
		acct, _ := h.newOrder(c, "Hooli")
		h.sim.WaitCallouts()
		got := rc.requests()
		require.Len(t, got, 2, "challenge, then the request with credentials")
		require.Empty(t, got[0].auth)
		require.NotEmpty(t, got[1].auth)
		require.Equal(t, got[0].notificationID, got[1].notificationID)
		require.NotEqual(t, got[0].requestID, got[1].requestID)
		require.Len(t, got[1].requestID, 32, "Zuora-Request-Id without hyphens")
		st := h.sim.State()
		require.Equal(t, st.Accounts[0].ID, got[1].body["AccountId"])
		require.Equal(t, acct, got[1].body["AccountNumber"])
		require.Equal(t, st.Accounts[0].ID, got[1].body["Short"])
		require.Equal(t, "cust_Hooli", got[1].body["BillsyncId"])
		log := h.sim.Callouts()
		require.Len(t, log, 2)
		require.True(t, log[1].Challenge)
		require.True(t, log[1].Success)
		require.Equal(t, rc.srv.URL+"/webhooks/zuora/"+acct, log[1].URL)
	})
	t.Run("preemptive, via UI control endpoint", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		rc := newReceiver(t, true)
		accountTrigger(h)
		definition(h, "preemptive", rc.srv.URL, map[string]any{"eventTypeName": "AccountCreated"},
			map[string]any{"username": "zuora", "password": "s3cret", "preemptive": true})
		r := h.do("POST", "/_sim/accounts", map[string]any{"name": "UI Co", "currency": "USD",
			"billToContact": map[string]any{"firstName": "U", "lastName": "I"}, "BillsyncId__c": "x"})
		require.Equal(t, 200, r.status, string(r.raw))
		h.sim.WaitCallouts()
		got := rc.requests()
		require.Len(t, got, 1)
		require.NotEmpty(t, got[0].auth)
		require.Equal(t, r.obj(t)["accountId"], got[0].body["AccountId"])
	})
	t.Run("retries keep the notification id", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{CalloutRetries: 3, CalloutRetryInterval: 10 * time.Millisecond}).login()
		rc := newReceiver(t, false, 503, 429, 200)
		accountTrigger(h)
		definition(h, "retry", rc.srv.URL, map[string]any{"eventTypeName": "AccountCreated"}, nil)
		h.do("POST", "/_sim/accounts", map[string]any{"name": "Retry", "currency": "USD", "billToContact": map[string]any{"firstName": "R", "lastName": "T"}})
		h.sim.WaitCallouts()
		got := rc.requests()
		require.Len(t, got, 3)
		ids := map[string]bool{}
		for _, g := range got {
			require.Equal(t, got[0].notificationID, g.notificationID)
			ids[g.requestID] = true
		}
		require.Len(t, ids, 3, "a new Zuora-Request-Id per delivery")
		log := h.sim.Callouts()
		require.Equal(t, []int{503, 429, 200}, []int{log[0].Status, log[1].Status, log[2].Status})
		require.Equal(t, 3, log[2].Delivery)
	})
	t.Run("no retry on 400, gives up after the configured deliveries", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{CalloutRetries: 2, CalloutRetryInterval: time.Millisecond}).login()
		rc400 := newReceiver(t, false, 400)
		rc500 := newReceiver(t, false, 500)
		accountTrigger(h)
		definition(h, "bad-request", rc400.srv.URL, map[string]any{"eventTypeName": "AccountCreated"}, nil)
		definition(h, "down", rc500.srv.URL, map[string]any{"eventTypeName": "AccountCreated"}, nil)
		h.do("POST", "/_sim/accounts", map[string]any{"name": "NoRetry", "currency": "USD", "billToContact": map[string]any{"firstName": "N", "lastName": "R"}})
		h.sim.WaitCallouts()
		require.Len(t, rc400.requests(), 1)
		require.Len(t, rc500.requests(), 2)
	})
	t.Run("subscription created (standard event 1210) via UI and API", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, zuorasim.Options{}).login()
		rc := newReceiver(t, false)
		definition(h, "sub-created", rc.srv.URL, map[string]any{"eventCategory": 1210}, nil)
		c := h.seedCatalog("Sub")
		_, subNum := h.newOrder(c, "SubCo")
		r := h.do("POST", "/_sim/subscriptions", map[string]any{"accountNumber": h.sim.State().Accounts[0].AccountNumber,
			"productRatePlanIds": []any{c.planID}, "contractEffectiveDate": "2025-02-01"})
		require.Equal(t, 200, r.status, string(r.raw))
		uiSub := r.obj(t)["subscriptionNumber"].(string)
		// An amendment does not fire 1210.
		acct := h.sim.State().Accounts[0].AccountNumber
		h.order(existing(acct, subNum, map[string]any{"type": "RenewSubscription", "renewSubscription": map[string]any{}}))
		h.sim.WaitCallouts()
		got := rc.requests()
		require.Len(t, got, 2)
		nums := []string{got[0].body["SubscriptionNumber"], got[1].body["SubscriptionNumber"]}
		require.ElementsMatch(t, []string{subNum, uiSub}, nums)
		r = h.do("GET", "/_sim/callouts", nil)
		require.Equal(t, 200, r.status)
		require.Len(t, r.obj(t)["callouts"], 2)
	})
}

func TestEventTriggersAndDefinitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	accountTrigger(h)
	r := h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "Account", "condition": "changeType == 'INSERT'",
		"eventType": map[string]any{"name": "Other", "displayName": "Other"}})
	require.Equal(t, 400, r.status, "identical condition on the same base object")
	r = h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "account", "condition": "changeType == 'UPDATE'",
		"eventType": map[string]any{"name": "Lower", "displayName": "Lower"}})
	require.Equal(t, 400, r.status, "base objects are case-sensitive")
	r = h.do("POST", "/events/event-triggers", map[string]any{"active": true, "baseObject": "Account",
		"condition": "changeType == 'UPDATE' && Account.Status == 'Active' && Account.Name_old != Account.Name",
		"eventType": map[string]any{"name": "AccountRenamed", "displayName": "Account Renamed"}})
	require.Equal(t, 200, r.status, string(r.raw))
	tr := r.obj(t)
	require.Equal(t, "user.notification", tr["eventType"].(map[string]any)["namespace"])

	r = h.do("GET", "/events/event-triggers?baseObject=Account&limit=1", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, r.obj(t)["data"], 1)
	require.NotEmpty(t, r.obj(t)["next"])
	r = h.do("GET", "/events/event-triggers/"+tr["id"].(string), nil)
	require.Equal(t, 200, r.status)
	require.Equal(t, "AccountRenamed", r.obj(t)["eventType"].(map[string]any)["name"])

	// The rename trigger fires on a rename only.
	rc := newReceiver(t, false)
	id := definition(h, "renamed", rc.srv.URL, map[string]any{"eventTypeName": "AccountRenamed"}, nil)
	r = h.do("POST", "/_sim/accounts", map[string]any{"name": "Before", "currency": "USD", "billToContact": map[string]any{"firstName": "A", "lastName": "B"}})
	num := r.obj(t)["accountNumber"].(string)
	require.Equal(t, 200, h.do("PUT", "/v1/accounts/"+num, map[string]any{"notes": "no rename"}).status)
	require.Equal(t, 200, h.do("PUT", "/v1/accounts/"+num, map[string]any{"name": "After"}).status)
	h.sim.WaitCallouts()
	require.Len(t, rc.requests(), 1)

	r = h.do("GET", "/notifications/notification-definitions?eventTypeName=AccountRenamed", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, r.obj(t)["data"], 1)
	r = h.do("GET", "/notifications/notification-definitions/"+id, nil)
	require.Equal(t, 200, r.status)
	require.Equal(t, "renamed", r.obj(t)["name"])
	require.Equal(t, rc.srv.URL, r.obj(t)["callout"].(map[string]any)["calloutBaseurl"])
	// Unknown event type; both eventCategory and eventTypeName.
	r = h.do("POST", "/notifications/notification-definitions", map[string]any{"name": "x", "eventTypeName": "Nope", "calloutActive": false})
	require.Equal(t, 400, r.status)
	r = h.do("POST", "/notifications/notification-definitions", map[string]any{"name": "y", "eventTypeName": "AccountRenamed", "eventCategory": 1210})
	require.Equal(t, 400, r.status)

	r = h.do("DELETE", "/notifications/notification-definitions/"+id, nil)
	require.Equal(t, 204, r.status)
	require.Equal(t, 404, h.do("GET", "/notifications/notification-definitions/"+id, nil).status)
	r = h.do("DELETE", "/events/event-triggers/"+tr["id"].(string), nil)
	require.Equal(t, 204, r.status)
	require.Equal(t, 404, h.do("DELETE", "/events/event-triggers/"+tr["id"].(string), nil).status)
	require.Len(t, h.sim.State().EventTriggers, 1)
}

// TestCalloutsHTTPSOnly: Zuora delivers callouts over HTTPS; the simulator
// takes plain http only for loopback receivers, and says so.
func TestCalloutsHTTPSOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	accountTrigger(h)
	n := 0
	def := func(base string) reply {
		n++
		return h.do("POST", "/notifications/notification-definitions", map[string]any{"name": fmt.Sprintf("n%d", n), "eventTypeName": "AccountCreated",
			"calloutActive": true, "callout": map[string]any{"name": fmt.Sprintf("c%d", n), "calloutBaseurl": base, "httpMethod": "POST"}})
	}
	r := def("http://billsync.example.com/webhooks/zuora/account-created")
	require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
	require.Contains(t, string(r.raw), "must be an https URL")
	for _, ok := range []string{"https://billsync.example.com/webhooks/zuora/account-created", "http://127.0.0.1:8080/webhooks/zuora/account-created",
		"http://localhost:8080/webhooks/zuora/account-created"} {
		r := def(ok)
		require.Equal(t, http.StatusOK, r.status, string(r.raw))
	}
}
