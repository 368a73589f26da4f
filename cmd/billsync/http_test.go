package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestServeCutsOffSlowBody: a client sending its body a byte at a time is cut
// off after BILLSYNC_HTTP_READ_TIMEOUT instead of holding the connection.
func TestServeCutsOffSlowBody(t *testing.T) {
	t.Parallel()
	base, stop := serveOnce(t, storetest.URL(t, store.SQLite), "--http-read-timeout", "1s")
	defer stop()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprintf(conn, "PUT /api/v1/customers/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	require.NoError(t, err)
	go func() {
		for range 999 {
			time.Sleep(200 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		require.GreaterOrEqual(t, resp.StatusCode, 400, "the half-sent body was not accepted")
	} else {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server was still reading the body after 10 s: %v", err)
	}
	require.Less(t, time.Since(start), 5*time.Second, "cut off about the read timeout (1 s) after the request began")
	// Nothing was stored.
	r2, err := http.Get(base + "/api/v1/customers/slow")
	require.NoError(t, err)
	r2.Body.Close()
	require.Equal(t, http.StatusNotFound, r2.StatusCode)
}

// TestServeBoundsConnections: beyond BILLSYNC_HTTP_MAX_CONNECTIONS a client
// waits until a connection closes.
func TestServeBoundsConnections(t *testing.T) {
	t.Parallel()
	base, stop := serveOnce(t, storetest.URL(t, store.SQLite), "--http-max-connections", "1", "--http-read-timeout", "20s")
	defer stop()
	hold, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	_, err = fmt.Fprintf(hold, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n") // headers never finish
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	c := &http.Client{Timeout: 700 * time.Millisecond}
	_, err = c.Get(base + "/healthz")
	require.Error(t, err, "a second connection is not served while the only slot is held")
	hold.Close()
	c.Timeout = 10 * time.Second
	resp, err := c.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestServeAllowsOnlyItsHostNames: serve answers for the loopback names and
// BILLSYNC_PUBLIC_URL's host, not for a rebinding attacker's name.
func TestServeAllowsOnlyItsHostNames(t *testing.T) {
	t.Parallel()
	base, stop := serveOnce(t, storetest.URL(t, store.SQLite), "--public-url", "https://billsync.example.com")
	defer stop()
	for host, want := range map[string]int{"attacker.example": http.StatusMisdirectedRequest, "localhost": http.StatusOK,
		"127.0.0.1": http.StatusOK, "billsync.example.com": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/plans", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, host)
	}
}

// TestBuiltInSimulatorControlIsClosed: with an API key, the built-in
// simulator's /_sim/ endpoints and pages on serve's listener need it (its
// Zuora API needs Zuora's OAuth); the private port billsync itself calls
// has no control endpoints; the standalone simulator refuses to listen off
// loopback without a token.
func TestBuiltInSimulatorControlIsClosed(t *testing.T) {
	t.Parallel()
	const key = "0123456789abcdef-key"
	base, stop := serveOnce(t, storetest.URL(t, store.SQLite), "--api-key", key)
	for _, p := range []string{"/zuora-sim/_sim/state", "/zuora-sim/_sim/faults", "/zuora-sim/"} {
		st, _ := client{t: t, base: base}.do("GET", p, "")
		require.Equal(t, http.StatusUnauthorized, st, p)
		st, b := client{t: t, base: base, key: key}.do("GET", p, "")
		require.Equal(t, http.StatusOK, st, "%s: %s", p, b)
		req, _ := http.NewRequest("GET", base+p, nil)
		req.SetBasicAuth("admin", key) // a browser
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
	st, _ := client{t: t, base: base}.do("GET", "/zuora-sim/v1/accounts/x", "")
	require.Equal(t, http.StatusUnauthorized, st, "Zuora's API: OAuth")
	stop()

	err := run(t.Context(), []string{"zuora-sim", "--addr", "0.0.0.0:0"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "--control-token")
}
