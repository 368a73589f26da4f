package zuora

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestSetEndpoint: a running client switches tenants at once (a new token is
// minted at the new one, its calls land there), Probe checks credentials
// without touching the running client, a bad endpoint is refused and changes
// nothing, and LastSuccess follows the successful calls.
func TestSetEndpoint(t *testing.T) {
	t.Parallel()
	simA, simB := zuorasim.New(zuorasim.Options{}), zuorasim.New(zuorasim.Options{})
	a, b := httptest.NewServer(simA), httptest.NewServer(simB)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	c, err := New(Config{BaseURL: a.URL, AllowAnyBaseURL: true, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret,
		MaxAttempts: 1}, zerolog.Nop())
	require.NoError(t, err)
	ctx := context.Background()
	at, _ := c.LastSuccess()
	require.True(t, at.IsZero())
	require.NoError(t, c.TestConnection(ctx))
	at, op := c.LastSuccess()
	require.False(t, at.IsZero())
	require.Equal(t, "GET /v1/catalog/products", op)

	// Probe: a wrong secret at B is refused; the running client stays on A.
	err = c.Probe(ctx, b.URL, zuorasim.DefaultClientID, "wrong-secret", true)
	ze, ok := AsError(err)
	require.True(t, ok, "%v", err)
	require.True(t, ze.Auth)
	require.NoError(t, c.Probe(ctx, b.URL, zuorasim.DefaultClientID, zuorasim.DefaultClientSecret, true))
	require.Equal(t, a.URL, c.BaseURL())
	require.Error(t, c.Probe(ctx, b.URL, zuorasim.DefaultClientID, zuorasim.DefaultClientSecret, false), "not a Zuora environment")

	// A bad endpoint is refused and changes nothing.
	require.Error(t, c.SetEndpoint("ftp://nowhere", "id", "secret", true))
	require.Equal(t, a.URL, c.BaseURL())

	before := simB.Stats().Calls["POST /oauth/token"]
	require.NoError(t, c.SetEndpoint(b.URL, zuorasim.DefaultClientID, zuorasim.DefaultClientSecret, true))
	require.Equal(t, b.URL, c.BaseURL())
	require.Equal(t, b.URL, c.Config().BaseURL)
	require.Equal(t, b.URL, c.UIRoot())
	aCalls := simA.Stats().Calls["GET /v1/catalog/products"]
	require.NoError(t, c.TestConnection(ctx))
	require.Equal(t, aCalls, simA.Stats().Calls["GET /v1/catalog/products"], "nothing more reaches A")
	require.Equal(t, before+1, simB.Stats().Calls["POST /oauth/token"], "a token minted at B")
	require.Positive(t, simB.Stats().Calls["GET /v1/catalog/products"])

	// Credentials B refuses: the next call fails with Zuora's refusal.
	require.NoError(t, c.SetEndpoint(b.URL, zuorasim.DefaultClientID, "not-the-secret", true))
	err = c.TestConnection(ctx)
	ze, ok = AsError(err)
	require.True(t, ok, "%v", err)
	require.True(t, ze.Auth)
}
