package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSyncUsageCommand(t *testing.T) {
	t.Parallel()
	dbPath := filepath.Join(t.TempDir(), "billsync.db")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"sync", "usage", "--database-url", dbPath, "--log-level", "error"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	require.Contains(t, out.String(), "0 windows sealed into 0 rows; 0 calls")
	require.Contains(t, out.String(), "pending: nothing")

	out.Reset()
	err = run(context.Background(), []string{"sync", "usage", "--subscription", "nope", "--database-url", dbPath, "--log-level", "error"}, &out, &errOut)
	require.ErrorContains(t, err, `subscription "nope" not found`)

	err = run(context.Background(), []string{"sync", "usage", "--include-current-hour", "--database-url", dbPath}, &out, &errOut)
	require.ErrorContains(t, err, "--include-current-hour needs --subscription")
}
