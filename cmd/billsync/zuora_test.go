package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

func TestZuoraSetupCalloutsCommand(t *testing.T) {
	t.Parallel()
	tenant := zuora.SimTenant("BillsyncId__c", builtinSimUnits...)
	sim := zuorasim.New(zuorasim.Options{Tenant: &tenant})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	common := []string{"--database-url", filepath.Join(t.TempDir(), "b.db"), "--zuora-base-url", srv.URL, "--zuora-allow-any-url",
		"--zuora-client-id", zuorasim.DefaultClientID, "--zuora-client-secret", zuorasim.DefaultClientSecret,
		"--webhook-password", "callout-password-123", "--log-level", "error"}
	cmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(args, common...), &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := cmd("zuora", "setup-callouts", "--public-url", "https://billsync.example.test")
	require.NoError(t, err, out)
	require.Equal(t, 26, strings.Count("\n"+out, "\ncreated "), out)
	out, err = cmd("zuora", "setup-callouts", "--public-url", "https://billsync.example.test")
	require.NoError(t, err, out)
	require.Equal(t, 0, strings.Count("\n"+out, "\ncreated "), out)
	require.Equal(t, 26, strings.Count("\n"+out, "\nexists "), out)
	out, err = cmd("zuora", "remove-callouts")
	require.NoError(t, err, out)
	require.Equal(t, 26, strings.Count("\n"+out, "\nremoved "), out)
	_, err = cmd("zuora", "setup-callouts")
	require.Error(t, err)
	_, err = cmd("zuora")
	require.Error(t, err)
}

// TestZuoraCheckCommand: against a fresh standalone simulator, `billsync
// zuora check` lists the missing custom fields (object, API name, type,
// length) and the unit of measure the local catalog uses, and exits
// non-zero; once they exist in the tenant it passes.
func TestZuoraCheckCommand(t *testing.T) {
	t.Parallel()
	fresh := zuorasim.FreshTenant()
	sim := zuorasim.New(zuorasim.Options{Tenant: &fresh})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dbPath := filepath.Join(t.TempDir(), "b.db")
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, zerolog.Nop())
	require.NoError(t, err)
	_, err = db.MigrateUp(ctx)
	require.NoError(t, err)
	_, _, err = db.UpsertPlan(ctx, engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: decimal.NewFromInt(10), UnitOfMeasure: "Parsec"}}}}})
	require.NoError(t, err)
	db.Close()
	check := func() (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, []string{"zuora", "check", "--database-url", dbPath, "--zuora-base-url", srv.URL, "--zuora-allow-any-url",
			"--zuora-client-id", zuorasim.DefaultClientID, "--zuora-client-secret", zuorasim.DefaultClientSecret, "--log-level", "error"}, &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := check()
	require.Error(t, err, out)
	for _, obj := range zuora.IDFieldObjects {
		require.Contains(t, out, "missing custom field: object "+obj+", API name BillsyncId__c, type text, length 255", out)
	}
	require.Contains(t, out, "missing unitOfMeasure Parsec (used by plans pro)")
	require.Contains(t, out, "time zone: UTC")
	require.Contains(t, out, "callouts: not set up")

	// The admin creates them (here through the simulator's tenant API,
	// GET and PUT /_sim/tenant over HTTP).
	resp, err := http.Get(srv.URL + "/_sim/tenant")
	require.NoError(t, err)
	var ten zuorasim.Tenant
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ten))
	resp.Body.Close()
	require.Empty(t, ten.CustomFields["Account"], "a fresh tenant has no custom fields")
	ten.AddUnits("Parsec")
	for _, obj := range zuora.IDFieldObjects {
		ten.Define(obj, zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
	}
	b, err := json.Marshal(ten)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/_sim/tenant", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out, err = check()
	require.NoError(t, err, out)
	require.NotContains(t, out, "missing")
	require.Contains(t, out, "ok: the tenant has everything billsync needs")
}
