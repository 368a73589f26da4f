package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestDatabasePasswordNeverShown: a password in the URL's user info or in
// ?password= is masked in Open's error, in the log and in RedactURL.
func TestDatabasePasswordNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-db-secret"
	for _, u := range []string{
		"postgres://postgres@127.0.0.1:1/test?password=" + secret + "&sslmode=disable",
		"postgres://postgres:" + secret + "@127.0.0.1:1/test?sslmode=disable",
		"postgresql://postgres@127.0.0.1:1/test?sslpassword=" + secret + "&sslmode=disable",
		"postgres://postgres:" + secret + "@[127.0.0.1:1/test", // does not parse
	} {
		require.NotContains(t, store.RedactURL(u), secret, u)
		var logs bytes.Buffer
		_, err := store.Open(context.Background(), u, zerolog.New(&logs).Level(zerolog.TraceLevel))
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret)
		require.NotContains(t, logs.String(), secret)
	}
	require.Equal(t, "./billsync.db", store.RedactURL("./billsync.db"))
}

// TestSQLiteFileIsPrivate: a new SQLite database (and its WAL) is readable
// by its owner only.
func TestSQLiteFileIsPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "billsync.db")
	db := storetest.OpenURL(t, path)
	_, _, err := db.UpsertCustomer(context.Background(), customer("c1"))
	require.NoError(t, err)
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		require.NoError(t, err, p)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), p)
	}
	st, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
}
