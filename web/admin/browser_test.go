package admin_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// chromium finds a Chromium or Chrome binary (BILLSYNC_CHROME overrides).
// Under CI=true a missing browser fails the test; elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	if p := os.Getenv("BILLSYNC_CHROME"); p != "" {
		names = []string{p}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "no Chromium found (looked for " + strings.Join(names, ", ") + "); install it with `apt-get install -y chromium` or set BILLSYNC_CHROME"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where screenshots go: $BILLSYNC_ARTIFACTS, else artifacts/
// at the module root (git-ignored), one folder per database.
func artifactDir(t *testing.T, d store.Dialect) string {
	if dir := os.Getenv("BILLSYNC_ARTIFACTS"); dir != "" {
		dir = filepath.Join(dir, string(d))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return t.TempDir()
		}
		dir = parent
	}
	out := filepath.Join(dir, "artifacts", string(d))
	require.NoError(t, os.MkdirAll(out, 0o755))
	return out
}

// TestBrowser drives the admin page in a real headless Chromium, on each
// database: log in, the dashboard's counts match the database, the charts
// draw with data, search finds a customer by its Zuora number, a failed
// record shows Zuora's message and Retry brings it to synced once the fault
// is lifted, the timeline shows what happened, "Sync usage to Zuora" shows
// the uploaded quantity, and the settings connect to the simulator, test,
// check the tenant, set up callouts and remove the integration.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			browserWalk(t, exe, d)
		})
	}
}

func browserWalk(t *testing.T, exe string, dialect store.Dialect) {
	started := time.Now()
	f := newFixture(t, dialect, fixtureOptions{password: password, subs: 4})
	ctx, db := f.ctx, f.e.DB
	shots := artifactDir(t, dialect)
	screenshot := func(bctx context.Context, name string) {
		t.Helper()
		shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), shot, 0o644))
	}

	// A subscription that fails: every order gets a 500 until the fault is lifted.
	f.e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultHTTP500, Probability: 1})
	_, _, err := db.UpsertCustomer(ctx, customer("c-late"))
	require.NoError(t, err)
	_, _, err = db.UpsertSubscription(ctx, subscription("s-late", "c-late"))
	require.NoError(t, err)
	f.e.Converge(30 * time.Second)
	failed, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s-late")
	require.NoError(t, err)
	require.Equal(t, store.StateDead, failed.State)
	require.NotEmpty(t, failed.LastErrorMessage)
	f.ingest("12.5")
	f.callout()
	// A callout about c00's account belongs to c00's timeline.
	c00, err := db.GetSyncRecord(ctx, store.EntityCustomer, "c00")
	require.NoError(t, err)
	require.NotEmpty(t, c00.ZuoraNumber)
	_, err = f.in.Accept(ctx, inbound.Callout{Event: inbound.EventAccountCreated, ObjectID: c00.ZuoraID, NotificationID: "n-c00", Payload: `{}`})
	require.NoError(t, err)

	// The workers run from here on, as in serve.
	pctx, stopPool := context.WithCancel(context.Background())
	poolDone := make(chan struct{})
	go func() { defer close(poolDone); _ = f.e.Pool.Run(pctx) }()
	t.Cleanup(func() { stopPool(); <-poolDone })

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// Start the browser (no timeout on this first call: it would stop the browser).
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`1`)); err != nil {
		t.Fatalf("Chromium (%s) did not start: %v", exe, err)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(c, steps...), what)
	}
	text := func(sel string) string {
		t.Helper()
		c, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.TrimSpace(s)
	}
	base := f.srv.URL

	// Log in: the dashboard redirects to the login form.
	run("login",
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("counts")),
	)

	// The dashboard's counts are the database's.
	c, cancel := context.WithTimeout(bctx, 20*time.Second)
	shown, err := chromedp.Run(c, chromedp.Evaluate[map[string]map[string]string](`Object.fromEntries(
		[...document.querySelectorAll('#counts tbody tr')].map(tr => [tr.dataset.kind,
			Object.fromEntries([...tr.querySelectorAll('[data-state]')].map(e => [e.dataset.state, e.textContent.trim()]))]))`))
	cancel()
	require.NoError(t, err)
	counts, err := db.SyncCounts(ctx)
	require.NoError(t, err)
	require.Len(t, shown, 5, "plans, coupons, customers, subscriptions, credits")
	for kind, states := range shown {
		for state, n := range states {
			require.Equal(t, strconv.FormatInt(counts[kind][state], 10), n, "%s/%s", kind, state)
		}
	}
	require.Equal(t, "2", shown[store.EntitySubscription][store.StateDead], "s-bad and s-late")
	require.Equal(t, "Retry 2 dead", text(`button[data-retry="subscription/dead"]`), "the button's count is what it retries")

	// The trends: the last 24 hours of syncs drawn, with this hour's bars.
	c, cancel = context.WithTimeout(bctx, 20*time.Second)
	bars, err := chromedp.Run(c, chromedp.Evaluate[map[string]int](`({
		activity: document.querySelectorAll('#chart-activity rect.bar').length,
		hours: document.querySelectorAll('#chart-activity rect.hit').length,
		dead: document.querySelectorAll('#chart-activity rect.o-dead').length,
		lag: document.querySelectorAll('#chart-lag rect.hit').length,
		width: Math.round(document.querySelector('#chart-activity').getBoundingClientRect().width)})`))
	cancel()
	require.NoError(t, err)
	require.Equal(t, 24, bars["hours"])
	require.Equal(t, 24, bars["lag"])
	require.Positive(t, bars["activity"])
	require.Positive(t, bars["dead"], "the dead attempts are drawn")
	require.Greater(t, bars["width"], 300, "the chart is drawn at the card's width")

	// Find a customer by its Zuora account number from the header's search box.
	run("search",
		chromedp.SendKeys(chromedp.ID("search"), strings.ToLower(c00.ZuoraNumber)+"\n"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-hit="customer/c00"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-hit="customer/c00"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#record-zuora`)),
	)
	require.Contains(t, text("#record-zuora"), c00.ZuoraNumber)
	require.Contains(t, text("main h1"), "c00")
	run("back to the dashboard", chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.ID("counts")))

	// "Test connection" runs through the script (CSP allows only /admin/assets).
	run("test connection",
		chromedp.Click(chromedp.ID("test-connection")),
		chromedp.WaitVisible(chromedp.CSS(`#test-result.st-ok`)),
	)
	require.Contains(t, text("#test-result"), "Connected")

	screenshot(bctx, "admin-dashboard.png")

	// Open the dead subscriptions from the dashboard, then the failed record: Zuora's message.
	run("open failed record",
		chromedp.Click(chromedp.CSS(`tr[data-kind=subscription] a[data-state=dead]`)),
		chromedp.WaitVisible(chromedp.ID("records")),
		chromedp.Click(chromedp.CSS(`tr[data-entity="subscription/s-late"] td a`)),
		chromedp.WaitVisible(chromedp.ID("record-message")),
	)
	require.Equal(t, "dead", text("#record-state"))
	require.Contains(t, text("#record-message"), failed.LastErrorMessage)
	require.NotEmpty(t, text("#record-advice"), "the page says what to do")
	screenshot(bctx, "admin-failed-record.png")

	// Lift the fault and retry: the page refreshes until the record is synced.
	f.e.Sim.SetFaults()
	run("retry", chromedp.Click(chromedp.ID("retry")))
	deadline := time.Now().Add(30 * time.Second)
	state := ""
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(bctx, 5*time.Second)
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#record-state")))
		cancel()
		if err == nil {
			state = strings.TrimSpace(s)
			if state == "synced" {
				break
			}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("reading the state during a refresh: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, "synced", state, "the retried record settles as synced on the page")
	rec, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s-late")
	require.NoError(t, err)
	require.Equal(t, store.StateSynced, rec.State)
	require.Contains(t, text("#record-zuora"), rec.ZuoraNumber)

	// The timeline, newest first: the synced answer, the dead ones before
	// it, the pushes, and the local change that started it all, with links.
	run("timeline", chromedp.Navigate(base+"/admin/entities/subscription/s-late"), chromedp.WaitVisible(chromedp.ID("timeline")))
	c, cancel = context.WithTimeout(bctx, 20*time.Second)
	lines, err := chromedp.Run(c, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#timeline tbody tr')].map(tr => tr.dataset.kind + ':' + (tr.dataset.outcome || ''))`))
	cancel()
	require.NoError(t, err)
	require.Equal(t, "answer:synced", lines[0], "newest first: %v", lines)
	require.Equal(t, "change:created", lines[len(lines)-1], "the local change comes first in time: %v", lines)
	require.Contains(t, lines, "answer:dead")
	require.Contains(t, lines, "push:")
	require.Contains(t, text(`#timeline tr[data-outcome=dead] td.msg`), "Zuora")
	c, cancel = context.WithTimeout(bctx, 20*time.Second)
	link, err := chromedp.Run(c, chromedp.Evaluate[string](`document.querySelector('#timeline tr[data-kind=push] a').getAttribute('href')`))
	cancel()
	require.NoError(t, err)
	require.Equal(t, "/admin/sync-records/"+strconv.FormatInt(rec.ID, 10), link)
	screenshot(bctx, "admin-timeline.png")
	// A customer's timeline has the callouts about its Zuora account.
	run("customer timeline", chromedp.Navigate(base+"/admin/entities/customer/c00"), chromedp.WaitVisible(chromedp.CSS(`#timeline tr[data-kind=callout]`)))
	require.Contains(t, text(`#timeline tr[data-kind=callout] td.msg`), c00.ZuoraID)

	// A subscription's usage: "Sync usage to Zuora" shows what was sent.
	run("sync usage",
		chromedp.Navigate(base+"/admin/entities/subscription/s00"),
		chromedp.WaitVisible(chromedp.ID("sync-usage")),
		chromedp.Click(chromedp.ID("sync-usage")),
		chromedp.WaitVisible(chromedp.ID("usage-report")),
	)
	require.Equal(t, "12.5", text("#usage-report .sent-qty"))
	// The subscription page shows Zuora's next-invoice preview.
	require.Contains(t, text("#next-invoice-total"), "USD")
	require.Equal(t, "12.5", text("#windows .uploaded"))
	require.Contains(t, text("#usage-report"), "Sent to Zuora: 1 row in 1 call")
	ws, err := f.ledger.Windows(ctx, "s00", usageFilter())
	require.NoError(t, err)
	require.Equal(t, "12.5", ws[0].Uploaded.String())
	c, cancel = context.WithTimeout(bctx, 20*time.Second)
	drawn, err := chromedp.Run(c, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#chart-usage rect.bar')].map(r => r.dataset.series + '=' + r.dataset.value)`))
	cancel()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"ingested=12.5", "sent to Zuora=12.5"}, drawn, "usage per hour: ingested vs sent")
	screenshot(bctx, "admin-usage.png")
	// A pending scheduled change shows on the subscription's page.
	lite := engine.Plan{ID: "lite", Kind: engine.KindPlan, Name: "Lite", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "lite-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "lite-fee", Name: "Fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("9")}}}}}
	_, _, err = db.UpsertPlan(ctx, lite)
	require.NoError(t, err)
	_, _, err = db.SetScheduledChange(ctx, "s00", &engine.ScheduledChange{Timing: engine.ChangeAtTermEnd, Date: "2027-01-01", PlanID: "lite", BillingPeriodID: "lite-monthly"})
	require.NoError(t, err)
	run("pending change", chromedp.Navigate(base+"/admin/entities/subscription/s00"), chromedp.WaitVisible(chromedp.ID("scheduled-change")))
	require.Contains(t, text("#scheduled-change"), "on 2027-01-01")
	require.Contains(t, text("#scheduled-change"), "Zuora scheduled order BSO-")
	// The connection settings, as an operator sets up a tenant: the page
	// starts on the built-in simulator; a wrong secret is refused by Zuora
	// and nothing is saved; the right one is saved (encrypted, never shown
	// again) and used at once; then Test connection, Check tenant, Set up
	// callouts and, after a confirmation, Remove integration.
	secret := zuorasim.DefaultClientSecret
	run("settings", chromedp.Navigate(base+"/admin/settings"), chromedp.WaitVisible(chromedp.ID("connection-form")))
	require.Contains(t, text("#conn-source"), "built-in simulator")
	run("wrong secret",
		chromedp.SendKeys(chromedp.ID("base-url"), f.e.Server.URL),
		chromedp.SendKeys(chromedp.ID("client-id"), zuorasim.DefaultClientID),
		chromedp.SendKeys(chromedp.ID("client-secret"), "not-the-secret-42"),
		chromedp.Click(chromedp.ID("save-connection")),
		chromedp.WaitVisible(chromedp.CSS(`#connection-report[data-ok=false]`)),
	)
	require.Contains(t, text("#connection-report"), "Nothing was saved")
	require.Contains(t, text("#conn-source"), "built-in simulator")
	_, err = db.GetZuoraConnection(ctx)
	require.ErrorIs(t, err, engine.ErrNotFound, "a refused connection is not stored")
	run("right secret",
		chromedp.SendKeys(chromedp.ID("client-secret"), secret),
		chromedp.Click(chromedp.ID("save-connection")),
		chromedp.WaitVisible(chromedp.CSS(`#connection-report[data-ok=true]`)),
	)
	require.Contains(t, text("#connection-report"), "Saved and in use")
	require.Contains(t, text("#conn-source"), "entered on this page")
	require.Contains(t, text("#conn-secret"), "stored encrypted")
	require.Equal(t, f.e.Server.URL, text("#conn-base-url"))
	c, cancel = context.WithTimeout(bctx, 20*time.Second)
	html, err := chromedp.Run(c, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	cancel()
	require.NoError(t, err)
	require.NotContains(t, html, secret, "the secret is never shown again")
	stored, err := db.GetZuoraConnection(ctx)
	require.NoError(t, err)
	require.NotContains(t, stored.SecretSealed, secret)
	require.Equal(t, f.e.Server.URL, f.e.Zuora.BaseURL())
	screenshot(bctx, "admin-settings-connected.png")

	// Test connection: "Last successful call" moves to the test's catalog read.
	before := text("#connection .last-call")
	time.Sleep(1100 * time.Millisecond) // the line has a resolution of a second
	run("test connection on settings",
		chromedp.Click(chromedp.ID("test-connection")),
		chromedp.WaitVisible(chromedp.CSS(`#test-result.st-ok`)),
	)
	after := text("#connection .last-call")
	require.NotEqual(t, before, after, "Last successful call updates after a successful test")
	require.Contains(t, after, "GET /v1/catalog/products")
	at, _ := f.e.Zuora.LastSuccess()
	require.Contains(t, after, at.UTC().Format("2006-01-02 15:04:05"))
	run("check tenant on settings",
		chromedp.Click(chromedp.ID("check-tenant")),
		chromedp.WaitVisible(chromedp.CSS(`#check-result.st-ok, #check-result.st-bad`)),
	)
	require.Contains(t, text("#check-result"), "ime zone")
	run("set up callouts",
		// The page before has a report too (Save and connect's): take it
		// away, so the wait is for this action's report.
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#connection-report')?.remove()`),
		chromedp.Click(chromedp.ID("setup-callouts")),
		chromedp.WaitVisible(chromedp.CSS(`#connection-report[data-ok=true]`)),
	)
	// The report of the previous action is visible until the page is
	// replaced: wait for this one (setup writes 26 objects).
	rep := ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rep = text("#connection-report"); strings.Contains(rep, "Set up callouts") {
			break
		}
	}
	require.Contains(t, rep, "Set up callouts")
	require.Contains(t, rep, "created")
	defs := 0
	for _, err := range f.e.Zuora.ListNotificationDefinitions(ctx, zuora.NotificationDefinitionFilter{}) {
		require.NoError(t, err)
		defs++
	}
	// account created and updated; subscription created, changed and
	// cancelled; invoice posted and paid; payment failed; scheduled order
	// completed (engine/inbound/callouts.go).
	require.Equal(t, 9, defs, "the tenant has billsync's nine notification definitions, once each")
	run("remove integration asks first",
		chromedp.Click(chromedp.ID("remove-integration")),
		chromedp.WaitVisible(chromedp.ID("remove-confirm")),
	)
	require.Contains(t, text("#remove-confirm"), "Remove the integration?")
	screenshot(bctx, "admin-settings-remove.png")
	run("remove integration",
		chromedp.Click(chromedp.ID("confirm-remove")),
		chromedp.WaitVisible(chromedp.CSS(`#connection-report[data-ok=true]`)),
	)
	rep = text("#connection-report")
	require.Contains(t, rep, "removed")
	require.Contains(t, rep, "built-in simulator again")
	require.Contains(t, text("#conn-source"), "built-in simulator")
	defs = 0
	for _, err := range f.e.Zuora.ListNotificationDefinitions(ctx, zuora.NotificationDefinitionFilter{}) {
		require.NoError(t, err)
		defs++
	}
	require.Zero(t, defs, "billsync's callouts are gone from the tenant")
	screenshot(bctx, "admin-settings-removed.png")

	// The lists, for a look at the layout.
	for name, page := range map[string]string{"records": "/admin/sync-records", "inbox": "/admin/inbox", "mappings": "/admin/mappings",
		"settings": "/admin/settings"} {
		run(name, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("main h1")))
		screenshot(bctx, "admin-"+name+".png")
	}
	// A page that does not exist: plain words, the navigation kept.
	run("404", chromedp.Navigate(base+"/admin/no-such-page"), chromedp.WaitVisible(chromedp.ID("error")))
	require.Equal(t, "Page not found", text("#error h1"))
	require.Contains(t, text("header nav"), "Sync records")

	// A phone, 390 px wide: nothing wider than the screen, screenshots kept.
	for name, page := range map[string]string{"dashboard": "/admin", "records": "/admin/sync-records", "entity": "/admin/entities/subscription/s00",
		"settings": "/admin/settings"} {
		run(name+" at 390 px", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("main h1")))
		c, cancel := context.WithTimeout(bctx, 20*time.Second)
		w, err := chromedp.Run(c, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		cancel()
		require.NoError(t, err)
		require.LessOrEqual(t, w, 390, "%s fits 390 px without sideways scrolling of the page", page)
		screenshot(bctx, "admin-390-"+name+".png")
	}
	t.Logf("%s: admin screenshots in %s; the walk took %s", dialect, shots, time.Since(started).Round(time.Millisecond))
}
