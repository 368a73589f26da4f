package zuorasim_test

import (
	"context"
	"flag"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func TestListenAndServeAndFlags(t *testing.T) {
	t.Parallel()
	var opts zuorasim.Options
	fs := flag.NewFlagSet("zuora-sim", flag.ContinueOnError)
	opts.BindFlags(fs)
	require.NoError(t, fs.Parse([]string{"-rate-limit", "100", "-callout-retry-interval", "5ms", "-latency", "1ms"}))
	require.Equal(t, 100, opts.RateLimitPerMinute)
	require.Equal(t, 5*time.Millisecond, opts.CalloutRetryInterval)
	require.Equal(t, zuorasim.DefaultClientID, opts.ClientID)
	require.Len(t, opts.ClientID, 36)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- zuorasim.ListenAndServe(ctx, addr, zuorasim.New(opts), zerolog.Nop()) }()
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + addr + "/_sim/state")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not stop")
	}
}
