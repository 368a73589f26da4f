package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// client is a test's view of a running serve.
type client struct {
	t    *testing.T
	base string
	key  string
}

func (c client) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b
}

func (c client) put(path, body string) {
	c.t.Helper()
	st, b := c.do("PUT", path, body)
	require.Contains(c.t, []int{200, 201}, st, "%s: %s", path, b)
}

type syncRec struct {
	EntityKind  string `json:"entityKind"`
	EntityID    string `json:"entityId"`
	State       string `json:"state"`
	ZuoraID     string `json:"zuoraId"`
	ZuoraNumber string `json:"zuoraNumber"`
	ZuoraURL    string `json:"zuoraUrl"`
	LastError   string `json:"lastError"`
}

func (c client) records() []syncRec {
	c.t.Helper()
	st, b := c.do("GET", "/api/v1/sync-records?limit=500", "")
	require.Equal(c.t, 200, st, string(b))
	var body struct {
		Data []syncRec `json:"data"`
	}
	require.NoError(c.t, json.Unmarshal(b, &body))
	return body.Data
}

// waitSynced waits until there are n records, all synced.
func (c client) waitSynced(n int) []syncRec {
	c.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		recs := c.records()
		ok := len(recs) == n
		for _, r := range recs {
			ok = ok && r.State == "synced"
		}
		if ok {
			return recs
		}
		require.True(c.t, time.Now().Before(deadline), "not all synced in time: %+v", recs)
		time.Sleep(200 * time.Millisecond)
	}
}

type simState struct {
	Products []struct {
		ID string `json:"id"`
	} `json:"products"`
	Accounts []struct {
		ID            string `json:"id"`
		AccountNumber string `json:"accountNumber"`
		Name          string `json:"name"`
	} `json:"accounts"`
	Subscriptions []struct {
		ID                 string   `json:"id"`
		SubscriptionNumber string   `json:"subscriptionNumber"`
		VersionIDs         []string `json:"versionIds"`
		Status             string   `json:"status"`
	} `json:"subscriptions"`
	NotificationDefinitions []struct {
		URL string `json:"calloutBaseurl"`
	} `json:"notificationDefinitions"`
}

func (c client) simState() simState {
	c.t.Helper()
	st, b := c.do("GET", "/zuora-sim/_sim/state", "")
	require.Equal(c.t, 200, st, string(b))
	var s simState
	require.NoError(c.t, json.Unmarshal(b, &s))
	return s
}

// requireWorldMatches: every synced record's Zuora object is in the
// simulator, and the simulator holds nothing billsync does not map.
func (c client) requireWorldMatches(recs []syncRec) {
	c.t.Helper()
	sim := c.simState()
	products, accounts, subs := map[string]bool{}, map[string]string{}, map[string]bool{}
	for _, p := range sim.Products {
		products[p.ID] = true
	}
	for _, a := range sim.Accounts {
		accounts[a.ID] = a.AccountNumber
	}
	for _, s := range sim.Subscriptions {
		subs[s.SubscriptionNumber] = true
	}
	n := map[string]int{}
	for _, r := range recs {
		n[r.EntityKind]++
		switch r.EntityKind {
		case "plan":
			require.True(c.t, products[r.ZuoraID], "plan %s: product %s not in the simulator", r.EntityID, r.ZuoraID)
		case "customer":
			require.Equal(c.t, r.ZuoraNumber, accounts[r.ZuoraID], "customer %s", r.EntityID)
		case "subscription":
			require.True(c.t, subs[r.ZuoraNumber], "subscription %s: %s not in the simulator", r.EntityID, r.ZuoraNumber)
		}
		if r.ZuoraURL != "" {
			// serve's listener (the tests' port changes at each start)
			require.Regexp(c.t, `^http://127\.0\.0\.1:\d+/zuora-sim/apps/\w+\.do\?method=view&id=8ad0`, r.ZuoraURL)
		}
	}
	require.Len(c.t, sim.Products, n["plan"])
	require.Len(c.t, sim.Accounts, n["customer"])
	require.Len(c.t, sim.Subscriptions, n["subscription"])
}

const (
	worldPlan     = `{"name":"Basic","currency":"EUR","billingPeriods":[{"id":"m","period":"month","charges":[{"id":"fee","name":"Fee","type":"recurring","model":"flat_fee","price":"9"}]}]}`
	worldCustomer = `{"name":"C1","currency":"EUR","hasPaymentMethod":true,"billTo":{"firstName":"Ada","lastName":"Lovelace","country":"DE"}}`
	worldSub      = `{"customerId":"c1","planId":"basic","billingPeriodId":"m","startDate":"2026-02-01"}`
)

// TestServeSurvivesRestart is the newcomer's Ctrl-C and `make run` again,
// on both databases: the built-in simulator keeps its objects, an edit after
// the restart reaches them, new objects get ids that do not collide, and
// billsync's mappings and the simulator agree throughout.
func TestServeSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbURL := storetest.URL(t, d)
			base, stop := serveOnce(t, dbURL)
			c := client{t: t, base: base}
			c.put("/api/v1/plans/basic", worldPlan)
			c.put("/api/v1/customers/c1", worldCustomer)
			c.put("/api/v1/subscriptions/s1", worldSub)
			c.requireWorldMatches(c.waitSynced(3))
			stop()

			base, stop = serveOnce(t, dbURL)
			defer stop()
			c = client{t: t, base: base}
			require.Len(t, c.simState().Accounts, 1, "the simulator kept its objects")
			// Edit what was synced before the restart, and create more.
			c.put("/api/v1/customers/c1", strings.Replace(worldCustomer, `"C1"`, `"C1 renamed"`, 1))
			c.put("/api/v1/subscriptions/s1", strings.Replace(worldSub, `"startDate"`, `"addOns":[],"startDate"`, 1))
			c.put("/api/v1/plans/plus", strings.Replace(worldPlan, "Basic", "Plus", 1))
			c.put("/api/v1/customers/c2", strings.Replace(worldCustomer, `"C1"`, `"C2"`, 1))
			c.put("/api/v1/subscriptions/s2", strings.NewReplacer(`"c1"`, `"c2"`, `"basic"`, `"plus"`).Replace(worldSub))
			recs := c.waitSynced(6)
			c.requireWorldMatches(recs)
			names := map[string]bool{}
			for _, a := range c.simState().Accounts {
				names[a.Name] = true
			}
			require.True(t, names["C1 renamed"], "the edit after the restart reached the simulator: %v", names)
			for _, path := range []string{"/api/v1/plans/basic", "/api/v1/customers/c1", "/api/v1/subscriptions/s1", "/readyz"} {
				st, b := c.do("GET", path, "")
				require.Equal(t, 200, st, "%s: %s", path, b)
			}
			// The built-in simulator's callouts point at this listener.
			for _, n := range c.simState().NotificationDefinitions {
				require.True(t, strings.HasPrefix(n.URL, base+"/webhooks/zuora/"), n.URL)
			}
		})
	}
}

// TestInboundByDefault: with nothing configured but a database, an account
// and a subscription created in the built-in simulator (as the README's
// curl lines do) appear in billsync within seconds: the simulator's
// callouts were set up at start with a generated password.
func TestInboundByDefault(t *testing.T) {
	t.Parallel()
	base, stop := serveOnce(t, storetest.URL(t, store.SQLite))
	defer stop()
	c := client{t: t, base: base}
	c.put("/api/v1/plans/basic", worldPlan)
	c.waitSynced(1)
	var ratePlan string
	for _, rp := range c.simRatePlans() {
		ratePlan = rp
	}
	require.NotEmpty(t, ratePlan)
	st, b := c.do("POST", "/zuora-sim/_sim/accounts", `{"name":"Globex","currency":"EUR","billToContact":{"firstName":"Hank","lastName":"Scorpio","country":"DE"}}`)
	require.Equal(t, 200, st, string(b))
	var acct struct {
		AccountNumber string `json:"accountNumber"`
	}
	require.NoError(t, json.Unmarshal(b, &acct))
	st, b = c.do("POST", "/zuora-sim/_sim/subscriptions", `{"accountNumber":"`+acct.AccountNumber+`","productRatePlanIds":["`+ratePlan+`"]}`)
	require.Equal(t, 200, st, string(b))
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, cust := c.do("GET", "/api/v1/customers", "")
		_, subs := c.do("GET", "/api/v1/subscriptions", "")
		if strings.Contains(string(cust), "Globex") && strings.Contains(string(subs), `"planId":"basic"`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "customer and subscription did not appear: %s %s", cust, subs)
		time.Sleep(200 * time.Millisecond)
	}
}

func (c client) simRatePlans() []string {
	c.t.Helper()
	st, b := c.do("GET", "/zuora-sim/_sim/state", "")
	require.Equal(c.t, 200, st, string(b))
	var s struct {
		RatePlans []struct {
			ID string `json:"id"`
		} `json:"ratePlans"`
	}
	require.NoError(c.t, json.Unmarshal(b, &s))
	var out []string
	for _, rp := range s.RatePlans {
		out = append(out, rp.ID)
	}
	return out
}

// readmeBlock returns the first ```sh block after the line starting with heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "\n"+heading)
	require.GreaterOrEqual(t, i, 0, "README has no %q", heading)
	s = s[i:]
	j := strings.Index(s, "```sh\n")
	require.GreaterOrEqual(t, j, 0)
	s = s[j+len("```sh\n"):]
	return s[:strings.Index(s, "```")]
}

// runShell runs a README block with bash, serve's address for localhost:8080.
func runShell(t *testing.T, base, script string) string {
	t.Helper()
	hostport := strings.TrimPrefix(base, "http://")
	script = strings.NewReplacer("localhost:8080", hostport, "127.0.0.1:8080", hostport).Replace(script)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", script, out)
	return string(out)
}

// TestREADMEWalkthroughs runs the README's first session (curl), the
// inbound walkthrough and the CLI lines as written, against a running
// default serve (its address for localhost:8080). Each CLI line leaves the
// service's records as they were but for what it is for; with no service
// running, `sync` works on the same database and the same saved simulator.
func TestREADMEWalkthroughs(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed to run the README's walkthroughs", tool)
			}
			t.Skipf("%s is not installed: the README's walkthroughs need it (install %s to run this test)", tool, tool)
		}
	}
	dbURL := storetest.URL(t, store.SQLite)
	base, stop := serveOnce(t, dbURL)
	c := client{t: t, base: base}

	out := runShell(t, base, readmeBlock(t, "### A first session with curl"))
	require.Contains(t, out, `"id":"acme-pro"`)
	before := c.waitSynced(3)
	c.requireWorldMatches(before)

	out = runShell(t, base, readmeBlock(t, "### Try inbound on the built-in simulator"))
	require.Contains(t, out, `"name":"Globex"`, out)
	require.Contains(t, out, `"planId":"pro"`, out)
	before = c.waitSynced(5)
	c.requireWorldMatches(before)

	key := func(r syncRec) string { return r.EntityKind + "/" + r.EntityID }
	index := func(recs []syncRec) map[string]syncRec {
		m := map[string]syncRec{}
		for _, r := range recs {
			m[key(r)] = r
		}
		return m
	}
	for _, line := range strings.Split(readmeBlock(t, "From the command line"), "\n") {
		line, _, _ = strings.Cut(line, "#")
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		require.Equal(t, "billsync", args[0], line)
		var stdout, stderr strings.Builder
		err := run(t.Context(), append(args[1:], "--url", base, "--database-url", dbURL, "--log-level", "warn"), &stdout, &stderr)
		require.NoError(t, err, "%s\n%s%s", line, stdout.String(), stderr.String())
		after := c.waitSynced(len(before))
		require.Equal(t, index(before), index(after), "%s changed the service's records:\n%s", line, stdout.String())
		if !strings.Contains(line, "--dry-run") && !strings.Contains(line, "usage") {
			require.Contains(t, stdout.String(), "through the service at "+base, line)
		}
	}
	c.requireWorldMatches(before)
	stop()

	// No service: the same database and the same saved simulator (port 1:
	// nothing answers at the default address).
	var stdout, stderr strings.Builder
	require.NoError(t, run(t.Context(), []string{"sync", "all", "--addr", "127.0.0.1:1", "--database-url", dbURL, "--log-level", "warn"}, &stdout, &stderr), stderr.String())
	require.Contains(t, stderr.String(), "the built-in simulator's saved state", stderr.String())
	require.NotContains(t, stdout.String(), "failed", stdout.String())
	base, stop = serveOnce(t, dbURL)
	defer stop()
	c = client{t: t, base: base}
	after := c.waitSynced(len(before))
	c.requireWorldMatches(after)
	for i := range after {
		after[i].ZuoraURL = "" // the CLI's links name its --addr
	}
	for i := range before {
		before[i].ZuoraURL = ""
	}
	require.Equal(t, index(before), index(after), "the CLI without a service kept both sides as they were:\n%s", stdout.String())
}
