package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// billsyncBinary builds the billsync binary once per test process.
func billsyncBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "billsync-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "billsync")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// chaosEnv tunes the process for the test: short claim leases, so that work
// a killed process held is taken over within seconds.
var chaosEnv = []string{"BILLSYNC_CLAIM_LEASE=3s"}

// chaosSub is the desired state of one subscription, as last accepted by the API.
type chaosSub struct {
	ID, Customer, Plan string
	Seats              int
	Extra              bool
	Meter              bool // has the usage add-on (and is never suspended or cancelled)
	Status             string
	Renewals           int
	Start              string
}

func (s chaosSub) body(today string) string {
	addOns := []map[string]any{}
	if s.Meter {
		addOns = append(addOns, map[string]any{"planId": "meter", "billingPeriodId": "meter-monthly", "quantity": "1"})
	}
	if s.Extra {
		addOns = append(addOns, map[string]any{"planId": "extra", "billingPeriodId": "extra-monthly", "quantity": "2"})
	}
	b := map[string]any{"customerId": s.Customer, "planId": s.Plan, "billingPeriodId": s.Plan + "-monthly", "status": s.Status,
		"startDate": s.Start, "termMonths": 12, "autoRenew": true, "renewalCount": s.Renewals, "addOns": addOns,
		"chargeQuantities": map[string]string{s.Plan + "-seats": fmt.Sprint(s.Seats)}}
	switch s.Status {
	case "suspended":
		b["suspendDate"] = today
	case "cancelled":
		b["cancellationPolicy"], b["cancellationDate"] = "specific_date", today
	}
	j, _ := json.Marshal(b)
	return string(j)
}

type chaosAPI struct {
	t   *testing.T
	url func() string
}

// call sends one request; a transport error (the process is being killed)
// is returned, not fatal, so the caller can send the same request again.
func (c chaosAPI) call(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, c.url()+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c chaosAPI) must(method, path, body string, want ...int) []byte {
	c.t.Helper()
	for try := 0; ; try++ {
		st, b, err := c.call(method, path, body)
		if err == nil {
			require.Contains(c.t, want, st, "%s %s %s: %s", method, path, body, b)
			return b
		}
		require.Less(c.t, try, 50, "%s %s: %v", method, path, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRandomizedConvergenceUnderFaultsAndKills drives a real `billsync serve`
// process through its API with a random workload (plan changes, add-ons,
// quantities, renewals, suspensions, resumptions, cancellations, usage with
// resent events), while the simulator loses answers, answers 5xx, 429 and
// lock competition, resets connections and refuses every call for a while,
// and the process is SIGKILLed and restarted. Afterwards: exactly one Zuora
// account and subscription per local one, every subscription's status, rate
// plans, quantities and renewals as desired, and usage in Zuora per
// subscription equal to the distinct ingested quantities, to the unit. Both
// databases; sized to run in about a minute each.
func TestRandomizedConvergenceUnderFaultsAndKills(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			runChaos(t, d)
		})
	}
}

func runChaos(t *testing.T, d store.Dialect) {
	bin := billsyncBinary(t)
	dbURL := storetest.URL(t, d)
	tenant := zuora.SimTenant("BillsyncId__c", "Each") // set up as the README says
	sim := zuorasim.New(zuorasim.Options{Latency: 15 * time.Millisecond, Tenant: &tenant, Logger: zerolog.Nop()})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	env := []string{"BILLSYNC_DATABASE_URL=" + dbURL, "BILLSYNC_ZUORA_BASE_URL=" + srv.URL, "BILLSYNC_ZUORA_ALLOW_ANY_URL=true",
		"BILLSYNC_ZUORA_CLIENT_ID=" + zuorasim.DefaultClientID, "BILLSYNC_ZUORA_CLIENT_SECRET=" + zuorasim.DefaultClientSecret,
		"BILLSYNC_ZUORA_REQUESTS_PER_MINUTE=1000000", "BILLSYNC_SYNC_WORKERS=8", "BILLSYNC_LOG_FORMAT=json", "BILLSYNC_LOG_LEVEL=warn",
		"BILLSYNC_SCHEDULER_LEASE_TTL=3s", "BILLSYNC_SWEEP_INTERVAL=1s"}
	env = append(env, chaosEnv...)
	var (
		mu  sync.Mutex
		cur *replica
		gen int
	)
	start := func() {
		mu.Lock()
		defer mu.Unlock()
		gen++
		cur = startReplica(t, bin, fmt.Sprintf("chaos-%d", gen), env)
	}
	kill := func() {
		mu.Lock()
		r := cur
		mu.Unlock()
		require.NoError(t, r.cmd.Process.Kill()) // SIGKILL: no soft stop, claims left behind
		<-r.done
	}
	start()
	api := chaosAPI{t: t, url: func() string { mu.Lock(); defer mu.Unlock(); return cur.url }}

	rng := rand.New(rand.NewPCG(42, uint64(len(d))))
	now := time.Now().UTC()
	today := now.Format("2006-01-02")
	subStart := now.AddDate(0, 0, -20).Format("2006-01-02")

	plan := func(id, name string, price, seatPrice int) string {
		return fmt.Sprintf(`{"kind":"plan","name":%q,"currency":"USD","billingPeriods":[{"id":"%s-monthly","period":"month","charges":[
			{"id":"%s-base","name":"Base","type":"recurring","model":"flat_fee","price":"%d"},
			{"id":"%s-seats","name":"Seats","type":"recurring","model":"per_unit","price":"%d","unitOfMeasure":"Each"}]}]}`, name, id, id, price, id, seatPrice)
	}
	api.must("PUT", "/api/v1/plans/basic", plan("basic", "Basic", 10, 5), 200, 201)
	api.must("PUT", "/api/v1/plans/pro", plan("pro", "Pro", 50, 8), 200, 201)
	api.must("PUT", "/api/v1/plans/meter", `{"kind":"addon","name":"Metered calls","currency":"USD","billingPeriods":[{"id":"meter-monthly","period":"month",
		"charges":[{"id":"calls","name":"Calls","type":"usage","model":"per_unit","price":"0.01","unitOfMeasure":"Each","feature":"calls"}]}]}`, 200, 201)
	api.must("PUT", "/api/v1/plans/extra", `{"kind":"addon","name":"Extra storage","currency":"USD","billingPeriods":[{"id":"extra-monthly","period":"month",
		"charges":[{"id":"storage","name":"Storage","type":"recurring","model":"per_unit","price":"2","unitOfMeasure":"Each"}]}]}`, 200, 201)

	const n = 20
	subs := make([]*chaosSub, n)
	for i := range n {
		c := fmt.Sprintf("c%02d", i)
		api.must("PUT", "/api/v1/customers/"+c, fmt.Sprintf(`{"name":"Customer %d","email":"%s@example.test","currency":"USD","hasPaymentMethod":true,
			"billTo":{"firstName":"Ada","lastName":"Lovelace","country":"United States","city":"Boston","state":"MA","postalCode":"02110"}}`, i, c), 200, 201)
		s := &chaosSub{ID: fmt.Sprintf("s%02d", i), Customer: c, Plan: []string{"basic", "pro"}[i%2], Seats: 1 + i%4, Meter: i%2 == 0,
			Extra: i%3 == 0, Status: "active", Start: subStart}
		subs[i] = s
		api.must("PUT", "/api/v1/subscriptions/"+s.ID, s.body(today), 200, 201)
	}

	faults := func() {
		var fs []zuorasim.Fault
		for _, k := range []zuorasim.FaultKind{zuorasim.FaultHTTP500, zuorasim.FaultHTTP429, zuorasim.FaultConnReset, zuorasim.FaultLostResponse, zuorasim.FaultLockContention} {
			fs = append(fs, zuorasim.Fault{Operation: "*", Kind: k, Probability: 0.03})
		}
		sim.SetFaults(fs...)
	}
	faults()

	usageTotal := map[string]decimal.Decimal{} // subscription → distinct accepted quantity
	sent := map[string]string{}                // idempotency key → "sub|qty", to resend
	var keys []string
	eventSeq := 0
	const ops = 240
	for op := range ops {
		switch op {
		case ops / 4, ops / 2, 3 * ops / 4:
			kill()
			start()
		case 5 * ops / 8:
			// An outage: every Zuora call refused for two seconds.
			sim.SetFaults(zuorasim.Fault{Operation: "*", Kind: zuorasim.FaultConnReset, Probability: 1})
			time.Sleep(2 * time.Second)
			faults()
		}
		s := subs[rng.IntN(n)]
		if s.Status == "cancelled" {
			continue
		}
		if s.Status == "suspended" {
			if rng.IntN(3) == 0 && !s.Meter {
				s.Status = "cancelled"
			} else {
				s.Status = "active"
			}
			api.must("PUT", "/api/v1/subscriptions/"+s.ID, s.body(today), 200)
			continue
		}
		switch k := rng.IntN(100); {
		case k < 20:
			s.Plan = map[string]string{"basic": "pro", "pro": "basic"}[s.Plan]
		case k < 40:
			s.Seats = 1 + rng.IntN(9)
		case k < 50:
			s.Extra = !s.Extra
		case k < 60:
			s.Renewals++
		case k < 85 && s.Meter:
			// A batch of usage, some of it resent (as a client retrying would).
			var evs []string
			for range 5 {
				var key, line string
				if len(keys) > 0 && rng.IntN(4) == 0 {
					key = keys[rng.IntN(len(keys))]
					line = sent[key]
				} else {
					eventSeq++
					key = fmt.Sprintf("ev-%d", eventSeq)
					line = fmt.Sprintf("%s|%d", s.ID, 1+rng.IntN(100))
				}
				sub, qty, _ := strings.Cut(line, "|")
				at := now.Add(-time.Duration(rng.IntN(50)) * time.Minute).Format(time.RFC3339)
				evs = append(evs, fmt.Sprintf(`{"idempotencyKey":%q,"subscriptionId":%q,"chargeId":"calls","quantity":%q,"timestamp":%q}`, key, sub, qty, at))
			}
			b := api.must("POST", "/api/v1/usage", `{"events":[`+strings.Join(evs, ",")+`]}`, 200)
			var res struct {
				Results []struct {
					IdempotencyKey, Status, Reason string
				}
			}
			require.NoError(t, json.Unmarshal(b, &res))
			for _, r := range res.Results {
				require.NotEqual(t, "rejected", r.Status, "%s: %s", r.IdempotencyKey, r.Reason)
			}
			for i, r := range res.Results {
				var ev struct{ IdempotencyKey, SubscriptionID, Quantity string }
				require.NoError(t, json.Unmarshal([]byte(evs[i]), &ev))
				if r.Status == "accepted" {
					sent[ev.IdempotencyKey] = ev.SubscriptionID + "|" + ev.Quantity
					keys = append(keys, ev.IdempotencyKey)
					usageTotal[ev.SubscriptionID] = usageTotal[ev.SubscriptionID].Add(decimal.RequireFromString(ev.Quantity))
				}
			}
			continue
		case k < 95 && !s.Meter:
			s.Status = "suspended"
		case k < 98 && !s.Meter:
			s.Status = "cancelled"
		default:
			s.Seats = 1 + rng.IntN(9)
		}
		api.must("PUT", "/api/v1/subscriptions/"+s.ID, s.body(today), 200)
		time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
	}

	// Faults end; what failed meanwhile is retried (as an operator would
	// after an outage) until everything is synced or skipped.
	sim.SetFaults()
	var unsettledList []string
	unsettled := func() int {
		unsettledList = nil
		for _, st := range []string{store.StatePending, store.StateInFlight, store.StateFailed, store.StateDead, store.StateDrifted} {
			var page struct {
				Data []struct{ EntityKind, EntityID, State, Reason, LastErrorMessage string }
			}
			require.NoError(t, json.Unmarshal(api.must("GET", "/api/v1/sync-records?limit=500&state="+st, "", 200), &page))
			for _, r := range page.Data {
				unsettledList = append(unsettledList, fmt.Sprintf("%s/%s %s %q %q", r.EntityKind, r.EntityID, r.State, r.Reason, r.LastErrorMessage))
			}
		}
		return len(unsettledList)
	}
	deadline := time.Now().Add(2 * time.Minute)
	var last time.Time
	for unsettled() > 0 {
		require.True(t, time.Now().Before(deadline), "not converged: %d records unsettled:\n%s", len(unsettledList), strings.Join(unsettledList, "\n"))
		if time.Since(last) > 5*time.Second {
			api.must("POST", "/api/v1/sync-records/retry", "", 202)
			last = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range subs {
		if !s.Meter {
			continue
		}
		for try := 0; ; try++ {
			var rep struct{ RowsWaiting, RowsFailed, RowsHeld int }
			require.NoError(t, json.Unmarshal(api.must("POST", "/api/v1/subscriptions/"+s.ID+"/sync-usage", `{"includeCurrentHour":true}`, 200), &rep))
			require.Zero(t, rep.RowsHeld, s.ID)
			if rep.RowsWaiting+rep.RowsFailed == 0 {
				break
			}
			require.Less(t, try, 30, "%s: usage still waiting: %+v", s.ID, rep)
			time.Sleep(300 * time.Millisecond)
		}
	}

	// Zuora as desired: one account and one subscription per local one that
	// reached Zuora (a subscription cancelled before its first sync is
	// skipped, and so is its customer: nothing of them is in Zuora).
	inZuora := map[string]bool{}
	for _, s := range subs {
		var page struct {
			Data []struct{ State, Reason string }
		}
		require.NoError(t, json.Unmarshal(api.must("GET", "/api/v1/sync-records?kind=subscription&entityId="+s.ID, "", 200), &page))
		require.Len(t, page.Data, 1, s.ID)
		switch page.Data[0].State {
		case store.StateSynced:
			inZuora[s.ID] = true
		case store.StateSkipped:
			require.Equal(t, "cancelled", s.Status, "%s skipped: %s", s.ID, page.Data[0].Reason)
		default:
			t.Fatalf("%s: %s", s.ID, page.Data[0].State)
		}
	}
	st := sim.State()
	accounts := map[string]int{}
	for _, a := range st.Accounts {
		accounts[fmt.Sprint(a.CustomFields["BillsyncId__c"])]++
	}
	for _, s := range subs {
		want := 0
		if inZuora[s.ID] {
			want = 1
		}
		require.Equal(t, want, accounts[s.Customer], "Zuora accounts of customer %s", s.Customer)
	}
	require.Len(t, accounts, len(inZuora), "no other account")
	bySub := map[string]zuorasim.SubscriptionSnapshot{}
	for _, zs := range st.Subscriptions {
		_, dup := bySub[zs.SubscriptionNumber]
		require.False(t, dup, "subscription %s twice", zs.SubscriptionNumber)
		bySub[zs.SubscriptionNumber] = zs
	}
	require.Len(t, bySub, len(inZuora), "one Zuora subscription per local one in Zuora")
	usageBySub := map[string]decimal.Decimal{}
	for _, u := range st.Usage {
		usageBySub[u.SubscriptionNumber] = usageBySub[u.SubscriptionNumber].Add(decimal.RequireFromString(string(u.Quantity)))
	}
	for _, s := range subs {
		if !inZuora[s.ID] {
			continue
		}
		zs, ok := bySub["BS-"+s.ID]
		require.True(t, ok, s.ID)
		want := map[string]string{"active": "Active", "suspended": "Suspended", "cancelled": "Cancelled"}[s.Status]
		require.Equal(t, want, zs.Status, "%s status", s.ID)
		require.Equal(t, usageTotal[s.ID].String(), usageBySub["BS-"+s.ID].String(), "%s usage to the unit", s.ID)
		if s.Status == "cancelled" {
			continue
		}
		var plans []string
		seats := ""
		for _, rp := range zs.RatePlans {
			if rp.LastChangeType == "Remove" {
				continue
			}
			name := rp.Name[strings.LastIndex(rp.Name, "(")+1 : len(rp.Name)-1]
			plans = append(plans, name)
			for _, ch := range rp.Charges {
				if ch.Name == "Seats" {
					seats = string(ch.Quantity)
				}
			}
		}
		sort.Strings(plans)
		wantPlans := []string{s.Plan + "-monthly"}
		if s.Extra {
			wantPlans = append(wantPlans, "extra-monthly")
		}
		if s.Meter {
			wantPlans = append(wantPlans, "meter-monthly")
		}
		sort.Strings(wantPlans)
		require.Equal(t, wantPlans, plans, "%s rate plans", s.ID)
		require.True(t, decimal.RequireFromString(seats).Equal(decimal.NewFromInt(int64(s.Seats))), "%s seats %s, want %d", s.ID, seats, s.Seats)
		wantTerm, err := engine.AddMonths(s.Start, 12*s.Renewals)
		require.NoError(t, err)
		require.Equal(t, wantTerm, zs.TermStartDate, "%s: %d renewals", s.ID, s.Renewals)
	}
	var b bytes.Buffer
	for _, s := range subs {
		fmt.Fprintf(&b, "%s:%s/%s/r%d ", s.ID, s.Plan, s.Status, s.Renewals)
	}
	units := decimal.Zero
	for _, q := range usageTotal {
		units = units.Add(q)
	}
	t.Logf("converged after %d ops, 3 kills and an outage: %s; %d Zuora calls (faults %d); %s usage units in Zuora as ingested",
		ops, b.String(), sumCalls(sim.Stats().Calls), sim.Stats().Faulted, units)
}

func sumCalls(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
