package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/events"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/schedule"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/switches"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/web"
	"github.com/billsync/billsync/web/admin"
)

const password = "correct horse battery staple"

// fixture is a whole admin page on a real database and the simulator.
type fixture struct {
	t      *testing.T
	e      *enginetest.Env
	in     *inbound.Service
	ledger *usage.Ledger
	sw     *switches.Switches
	sched  *schedule.Scheduler
	adm    *admin.Admin
	conn   *connection.Manager
	ev     *events.Service
	srv    *httptest.Server
	ctx    context.Context
}

type fixtureOptions struct {
	password string
	now      func() time.Time
	subs     int // customers with a subscription each (default 3)

	secureCookies bool
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func proPlan() engine.Plan {
	return engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("49")},
			{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: dec("0.01"), UnitOfMeasure: "Each", Feature: "api-calls"},
		}}}}
}

func customer(id string) engine.Customer {
	return engine.Customer{ID: id, Name: "Customer " + id, Email: id + "@example.test", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States", City: "Boston", State: "MA", PostalCode: "02110"}}
}

func subscription(id, cust string) engine.Subscription {
	return engine.Subscription{ID: id, CustomerID: cust, PlanID: "pro", BillingPeriodID: "pro-monthly", Status: engine.StatusActive,
		StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true}
}

func newFixture(t *testing.T, d store.Dialect, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, e: enginetest.New(t, d, enginetest.Options{}), ctx: context.Background()}
	if o.subs == 0 {
		o.subs = 3
	}
	db := f.e.DB
	f.in = inbound.New(db, f.e.Zuora, f.e.Outbound, inbound.Config{Logger: zerolog.Nop(), MaxAttempts: 1, BackoffUnit: time.Millisecond})
	f.ev = events.New(db, events.Config{Logger: zerolog.Nop(), BackoffUnit: time.Millisecond, MaxBackoff: time.Millisecond})
	f.ledger = usage.New(db, f.e.Zuora, usage.Config{Charges: f.e.Outbound, Logger: zerolog.Nop()})
	f.sw = switches.New(db, nil)
	f.sched = schedule.New(db, zerolog.Nop(), "test", 0)
	require.NoError(t, f.sched.Add(schedule.Job{Name: "reconcile", Spec: "0 * * * *", Period: schedule.Hourly,
		Run: func(context.Context) (string, error) { return "ok", nil }}))
	require.NoError(t, f.sched.Add(schedule.Job{Name: "drift", Spec: "30 * * * *", Period: schedule.Hourly,
		Run: func(context.Context) (string, error) { return "ok", nil }}))
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.sched.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })

	seed(t, f, o.subs)

	sealer, err := connection.NewSealer("the fixture's secret key, 32 characters or more")
	require.NoError(t, err)
	// The connection settings: without stored ones the client talks to the
	// simulator it started with (the "built-in simulator" of serve).
	f.conn = connection.New(connection.Options{Store: db, Client: f.e.Zuora, Sealer: sealer, AllowAny: true, Logger: zerolog.Nop(),
		Fallback: connection.Endpoint{BaseURL: f.e.Server.URL, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret}})
	f.adm, err = admin.New(admin.Options{Password: o.password, Secrets: []string{zuorasim.DefaultClientSecret},
		Store: db, Preview: f.e.Outbound, Mappings: f.e.Outbound.Mappings(), Inbox: f.in, Usage: f.ledger, Switches: f.sw, Zuora: f.e.Zuora,
		Connection: admin.Connection{Environment: "built-in simulator", BaseURL: f.e.Server.URL, LastCall: f.e.Zuora.LastSuccess},
		Settings:   f.conn, Callouts: f.in,
		CalloutSetup: inbound.CalloutSetup{PublicURL: "https://billsync.example.test", Username: "zuora", Password: "webhook-password-0123"},
		Schedule:     f.sched, Tenant: f.in, Events: f.ev, Billing: f.in, Kick: f.e.Pool.Kick, Logger: zerolog.Nop(), Now: o.now, SecureCookies: o.secureCookies})
	require.NoError(t, err)
	// The test clients stand behind a trusted proxy on loopback, so
	// X-Forwarded-For names them (login throttling is per client).
	f.srv = httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: "0123456789abcdef", Admin: f.adm, Inbound: f.in,
		TrustedProxies: []string{"127.0.0.1"}}))
	t.Cleanup(f.srv.Close)
	return f
}

// seed: a plan, n customers with a subscription each, one subscription Zuora
// refuses (start date before the account's), a finished job run, usage and a callout.
func seed(t *testing.T, f *fixture, n int) {
	ctx, db := f.ctx, f.e.DB
	_, _, err := db.UpsertPlan(ctx, proPlan())
	require.NoError(t, err)
	for i := range n {
		c := fmt.Sprintf("c%02d", i)
		_, _, err := db.UpsertCustomer(ctx, customer(c))
		require.NoError(t, err)
		_, _, err = db.UpsertSubscription(ctx, subscription("s"+c[1:], c))
		require.NoError(t, err)
	}
	f.e.Converge(30 * time.Second)
	bad := subscription("s-bad", "c00")
	bad.StartDate = "1990-01-01"
	_, _, err = db.UpsertSubscription(ctx, bad)
	require.NoError(t, err)
	f.e.Converge(30 * time.Second)
	rec, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s-bad")
	require.NoError(t, err)
	require.Equal(t, store.StateDead, rec.State)
	require.NotEmpty(t, rec.LastErrorMessage)

	ok, err := db.StartJobRun(ctx, "reconcile", "2026-11-20T13")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, db.FinishJobRun(ctx, "reconcile", "2026-11-20T13", "ok", "re-checking 7 records"))
}

// ingest adds usage to s00 two hours ago (a sealed window once synced).
func (f *fixture) ingest(qty string) time.Time {
	ts := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
	res, err := f.ledger.Ingest(f.ctx, []usage.Event{
		{IdempotencyKey: "e1-" + qty, SubscriptionID: "s00", ChargeID: "api", Quantity: dec(qty), Timestamp: ts},
	})
	require.NoError(f.t, err)
	require.Equal(f.t, usage.Accepted, res[0].Status, res[0].Reason)
	return ts
}

// callout stores one account callout whose payload carries a secret.
func (f *fixture) callout() int64 {
	acc, err := f.in.Accept(f.ctx, inbound.Callout{Event: inbound.EventAccountCreated, ObjectID: "A-NOPE", NotificationID: "n-1",
		Payload: `{"AccountId":"A-NOPE","Password":"hunter2-secret","Token":"tok-123","Note":"` + zuorasim.DefaultClientSecret + `"}`})
	require.NoError(f.t, err)
	return acc.ID
}

// client is a browser without JavaScript: cookies, no automatic redirects.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
	from string // X-Forwarded-For: the client's address
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: f.t, base: f.srv.URL, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// clientFrom is a client at another address (behind the trusted proxy).
func (f *fixture) clientFrom(ip string) *client {
	c := f.client()
	c.from = ip
	return c
}

// cookie is the client's session cookie value.
func (c *client) cookie() string {
	c.t.Helper()
	u, _ := url.Parse(c.base + "/admin")
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == "billsync_admin" {
			return ck.Value
		}
	}
	c.t.Fatal("no session cookie")
	return ""
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	if c.from != "" {
		req.Header.Set("X-Forwarded-For", c.from)
	}
	resp, err := c.c.Do(req)
	require.NoError(c.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	_ = resp.Body.Close()
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	require.NoError(c.t, err)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(t, m, "no CSRF token in the page")
	return m[1]
}

// login logs in and returns the session's CSRF token.
func (c *client) login(pw string) string {
	c.t.Helper()
	resp, body := c.get("/admin/login")
	require.Equal(c.t, http.StatusOK, resp.StatusCode)
	resp, _ = c.post("/admin/login", url.Values{"csrf": {csrfOf(c.t, body)}, "password": {pw}, "next": {"/admin"}})
	require.Equal(c.t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(c.t, "/admin", resp.Header.Get("Location"))
	resp, body = c.get("/admin")
	require.Equal(c.t, http.StatusOK, resp.StatusCode, body)
	return csrfOf(c.t, body)
}
