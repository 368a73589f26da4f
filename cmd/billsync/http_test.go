package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
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

// TestBuiltInSimulatorControlIsClosed: the built-in simulator's /_sim/
// endpoints need a token only serve knows; the standalone simulator refuses
// to listen off loopback without one.
func TestBuiltInSimulatorControlIsClosed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", storetest.URL(t, store.SQLite), "--log-level", "warn"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`built-in simulator at (http://[0-9.:]+)`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	for _, p := range []string{"/_sim/state", "/_sim/faults"} {
		resp, err := http.Get(m[1] + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, p)
	}
	cancel()
	require.NoError(t, <-done)

	err = run(t.Context(), []string{"zuora-sim", "--addr", "0.0.0.0:0"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "--control-token")
}
