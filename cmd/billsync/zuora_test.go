package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
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
	require.Equal(t, 5, strings.Count("\n"+out, "\ncreated "), out)
	out, err = cmd("zuora", "setup-callouts", "--public-url", "https://billsync.example.test")
	require.NoError(t, err, out)
	require.Equal(t, 0, strings.Count("\n"+out, "\ncreated "), out)
	require.Equal(t, 5, strings.Count("\n"+out, "\nexists "), out)
	out, err = cmd("zuora", "remove-callouts")
	require.NoError(t, err, out)
	require.Equal(t, 5, strings.Count("\n"+out, "\nremoved "), out)
	_, err = cmd("zuora", "setup-callouts")
	require.Error(t, err)
	_, err = cmd("zuora")
	require.Error(t, err)
}
