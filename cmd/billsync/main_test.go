package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"net/http/httptest"
	"path/filepath"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"BILLSYNC_ADDR": "8080"}, "BILLSYNC_ADDR"},
		{map[string]string{"BILLSYNC_DATABASE_URL": "mysql://x"}, "BILLSYNC_DATABASE_URL"},
		{map[string]string{"BILLSYNC_LOG_LEVEL": "loud"}, "BILLSYNC_LOG_LEVEL"},
		{map[string]string{"BILLSYNC_LOG_FORMAT": "xml"}, "BILLSYNC_LOG_FORMAT"},
		{map[string]string{"BILLSYNC_MIGRATE_ON_START": "maybe"}, "BILLSYNC_MIGRATE_ON_START"},
		{map[string]string{"BILLSYNC_SHUTDOWN_TIMEOUT": "soon"}, "BILLSYNC_SHUTDOWN_TIMEOUT"},
		{map[string]string{"BILLSYNC_API_KEY": "short"}, "BILLSYNC_API_KEY"},
		{map[string]string{"BILLSYNC_MAX_BODY_BYTES": "12"}, "BILLSYNC_MAX_BODY_BYTES"},
		{map[string]string{"BILLSYNC_ADMIN_PASSWORD": "hunter2hunt"}, "BILLSYNC_ADMIN_PASSWORD"},
		{map[string]string{"BILLSYNC_WEBHOOK_HMAC_SECRET": "short-secret"[:11]}, "BILLSYNC_WEBHOOK_HMAC_SECRET"},
		{map[string]string{"BILLSYNC_WEBHOOK_PASSWORD": "elevenchars"}, "BILLSYNC_WEBHOOK_PASSWORD"},
		{map[string]string{"BILLSYNC_ADMIN_PASSWORD": "twelve-chars", "BILLSYNC_WEBHOOK_HMAC_SECRET": "twelve-chars"}, ""},
		{map[string]string{"BILLSYNC_HTTP_READ_TIMEOUT": "0s"}, "BILLSYNC_HTTP_READ_TIMEOUT"},
		{map[string]string{"BILLSYNC_HTTP_WRITE_TIMEOUT": "2h"}, "BILLSYNC_HTTP_WRITE_TIMEOUT"},
		{map[string]string{"BILLSYNC_HTTP_IDLE_TIMEOUT": "soon"}, "BILLSYNC_HTTP_IDLE_TIMEOUT"},
		{map[string]string{"BILLSYNC_HTTP_MAX_CONNECTIONS": "0"}, "BILLSYNC_HTTP_MAX_CONNECTIONS"},
		{map[string]string{"BILLSYNC_PUBLIC_URL": "billsync.example.com"}, "BILLSYNC_PUBLIC_URL"},
		{map[string]string{"BILLSYNC_ALLOWED_HOSTS": "a.example, http://b.example/"}, "BILLSYNC_ALLOWED_HOSTS"},
		{map[string]string{"BILLSYNC_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "BILLSYNC_TRUSTED_PROXIES"},
		{map[string]string{"BILLSYNC_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1", "BILLSYNC_ALLOWED_HOSTS": "a.example,b.example",
			"BILLSYNC_PUBLIC_URL": "https://a.example"}, ""},
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		err := cfg.LoadEnv(func(k string) string { return tc.env[k] })
		if err == nil {
			err = cfg.Validate()
		}
		if tc.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tc.want)
	}
	cfg := DefaultConfig()
	cfg.Addr = "0.0.0.0:8080"
	require.ErrorContains(t, cfg.CheckListen(), "BILLSYNC_API_KEY")
	cfg.APIKey = "0123456789abcdef"
	require.NoError(t, cfg.CheckListen())
	cfg = DefaultConfig()
	require.NoError(t, cfg.CheckListen(), "loopback needs no key")
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	require.NoError(t, run(t.Context(), []string{"help"}, &out, io.Discard))
	for _, c := range []string{"serve", "migrate", "version"} {
		require.Contains(t, out.String(), c)
	}
	var errb strings.Builder
	err := run(t.Context(), []string{"serve", "-h"}, io.Discard, &errb)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, errb.String(), "BILLSYNC_DATABASE_URL")
	require.Error(t, run(t.Context(), []string{"nope"}, io.Discard, io.Discard))
	// 'zuora --help' is help, not a usage error (it exited 1).
	out.Reset()
	require.NoError(t, run(t.Context(), []string{"zuora", "--help"}, &out, io.Discard))
	require.Contains(t, out.String(), "setup-callouts")
	err = run(t.Context(), []string{"zuora"}, io.Discard, io.Discard)
	require.Equal(t, 2, exitCode(err), "no subcommand is a usage error")
}

// TestErrorsAndHelpHideSecrets: the database password and the secrets set in
// the environment appear neither in -h nor in a start error.
func TestErrorsAndHelpHideSecrets(t *testing.T) {
	const secret = "hunter2-db-secret"
	t.Setenv("BILLSYNC_DATABASE_URL", "postgres://postgres:"+secret+"@127.0.0.1:1/test?sslmode=disable&password="+secret)
	t.Setenv("BILLSYNC_API_KEY", "api-key-"+secret)
	t.Setenv("BILLSYNC_ADMIN_PASSWORD", "admin-"+secret)
	t.Setenv("BILLSYNC_ZUORA_CLIENT_SECRET", "zuora-"+secret)
	var errb strings.Builder
	require.ErrorIs(t, run(t.Context(), []string{"serve", "-h"}, io.Discard, &errb), flag.ErrHelp)
	require.Contains(t, errb.String(), "postgres://postgres:xxxxx@127.0.0.1:1/test")
	require.NotContains(t, errb.String(), secret)
	errb.Reset()
	err := run(t.Context(), []string{"serve"}, io.Discard, &errb)
	require.Error(t, err)
	require.NotContains(t, err.Error()+errb.String(), secret)
	err = run(t.Context(), []string{"migrate", "status"}, io.Discard, &errb)
	require.Error(t, err)
	require.NotContains(t, err.Error()+errb.String(), secret)
}

// serveOnce runs `billsync serve` in-process on a free port and returns its base URL and a stop function.
func serveOnce(t *testing.T, dbURL string, extra ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--log-level", "warn"}, extra...), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := strings.Fields(strings.TrimPrefix(line, "billsync listening on "))[0]
	return base, func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	path := storetest.URL(t, store.SQLite)
	var out strings.Builder
	require.NoError(t, run(t.Context(), []string{"migrate", "--database-url", path, "status"}, &out, io.Discard))
	require.Contains(t, out.String(), "pending")
	out.Reset()
	require.NoError(t, run(t.Context(), []string{"migrate", "--database-url", path, "up"}, &out, io.Discard))
	require.Contains(t, out.String(), "applied 00001")
	out.Reset()
	require.NoError(t, run(t.Context(), []string{"migrate", "--database-url", path, "down"}, &out, io.Discard))
	require.Regexp(t, `rolled back \d+`, out.String())
	require.Error(t, run(t.Context(), []string{"migrate", "--database-url", path, "sideways"}, io.Discard, io.Discard))
	_, err := os.Stat(path)
	require.NoError(t, err)
}

// TestServeSyncsToBuiltInSimulator is the newcomer's path: no configuration but
// a database, and the plan, customer and subscription reach the built-in simulator.
func TestServeSyncsToBuiltInSimulator(t *testing.T) {
	t.Parallel()
	base, stop := serveOnce(t, storetest.URL(t, store.SQLite))
	defer stop()
	put := func(path, body string) {
		req, _ := http.NewRequest("PUT", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 201, resp.StatusCode, path)
	}
	put("/api/v1/plans/pro", `{"name":"Pro","currency":"USD","billingPeriods":[{"id":"m","period":"month","charges":[{"id":"fee","name":"Fee","type":"recurring","model":"flat_fee","price":"49"}]}]}`)
	put("/api/v1/customers/acme", `{"name":"Acme","currency":"USD","hasPaymentMethod":true,"billTo":{"firstName":"Ada","lastName":"Lovelace","country":"US"}}`)
	put("/api/v1/subscriptions/acme-pro", `{"customerId":"acme","planId":"pro","billingPeriodId":"m","startDate":"2026-01-01"}`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/sync-records?state=synced")
		require.NoError(t, err)
		var body struct {
			Data []struct {
				EntityKind  string `json:"entityKind"`
				ZuoraNumber string `json:"zuoraNumber"`
			} `json:"data"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		if len(body.Data) == 3 {
			for _, r := range body.Data {
				if r.EntityKind == "subscription" {
					require.Equal(t, "BS-acme-pro", r.ZuoraNumber)
				}
				if r.EntityKind == "customer" {
					require.Equal(t, "BS-acme", r.ZuoraNumber)
				}
			}
			return
		}
		require.True(t, time.Now().Before(deadline), "not synced in time: %+v", body.Data)
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFlagsAnywhere: flags may follow the subcommand and its arguments, as
// the README writes them ("billsync sync all --dry-run").
func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"all", "--dry-run", "--log-level", "warn"}, {"--dry-run", "all"}, {"--log-level=warn", "all", "--dry-run"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		dry := fs.Bool("dry-run", false, "")
		lvl := fs.String("log-level", "info", "")
		require.NoError(t, parseInterspersed(fs, args), args)
		require.True(t, *dry, args)
		require.Equal(t, []string{"all"}, fs.Args(), args)
		if len(args) > 2 {
			require.Equal(t, "warn", *lvl, args)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "")
	require.NoError(t, parseInterspersed(fs, []string{"a", "--", "--dry-run", "b"}))
	require.False(t, *dry, "after -- everything is positional")
	require.Equal(t, []string{"a", "--dry-run", "b"}, fs.Args())

	// The README's line runs as written against a fresh SQLite database.
	dir := t.TempDir()
	var out, errOut strings.Builder
	err := run(context.Background(), []string{"sync", "all", "--dry-run", "--database-url", "sqlite://" + dir + "/b.db"}, &out, &errOut)
	require.NoError(t, err, "%s", errOut.String())
}

// TestSyncDriftCommand: 'billsync sync drift' reads every synced record back
// from Zuora and repairs what differs (an account renamed in Zuora).
func TestSyncDriftCommand(t *testing.T) {
	t.Parallel()
	tenant := zuora.SimTenant("BillsyncId__c", "Each")
	sim := zuorasim.New(zuorasim.Options{Tenant: &tenant, Logger: zerolog.Nop()})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dbPath := filepath.Join(t.TempDir(), "b.db")
	args := []string{"--database-url", dbPath, "--zuora-base-url", srv.URL, "--zuora-allow-any-url", "--zuora-client-id", zuorasim.DefaultClientID,
		"--zuora-client-secret", zuorasim.DefaultClientSecret, "--log-level", "error"}
	db := storetest.OpenURL(t, dbPath)
	ctx := context.Background()
	_, _, err := db.UpsertPlan(ctx, engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "m", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "base", Name: "Base", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.NewFromInt(10)}}}}})
	require.NoError(t, err)
	_, _, err = db.UpsertCustomer(ctx, engine.Customer{ID: "acme", Name: "Acme", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States"}})
	require.NoError(t, err)
	_, _, err = db.UpsertSubscription(ctx, engine.Subscription{ID: "s1", CustomerID: "acme", PlanID: "pro", BillingPeriodID: "m",
		Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true})
	require.NoError(t, err)
	var out, errOut strings.Builder
	// 'sync all' reconciles what is due; the subscription waits for its plan
	// and the customer for the subscription, so it takes a few runs.
	for try := 0; len(sim.State().Accounts) == 0 || len(sim.State().Subscriptions) == 0; try++ {
		require.Less(t, try, 20, out.String())
		require.NoError(t, run(ctx, append([]string{"sync", "all"}, args...), &out, &errOut), errOut.String())
		time.Sleep(250 * time.Millisecond)
	}
	acct := sim.State().Accounts[0]
	cl, err := zuora.New(zuora.Config{BaseURL: srv.URL, AllowAnyBaseURL: true, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret}, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, cl.UpdateAccount(ctx, acct.ID, zuora.AccountUpdate{Name: "Renamed in Zuora"}))

	out.Reset()
	require.NoError(t, run(ctx, append([]string{"sync", "drift"}, args...), &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "checked for drift 3 records", out.String())
	require.Contains(t, out.String(), "differs in Zuora (name)", out.String())
	require.Equal(t, "Acme", sim.State().Accounts[0].Name, "repaired")
}
