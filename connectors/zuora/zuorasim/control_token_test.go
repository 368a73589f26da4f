package zuorasim_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestControlToken: with a control token, /_sim/ answers 401 without it;
// Zuora's own endpoints are unaffected.
func TestControlToken(t *testing.T) {
	t.Parallel()
	sim := zuorasim.New(zuorasim.Options{ControlToken: "control-token-0123456789"})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/_sim/state", "", http.StatusUnauthorized},
		{"POST", "/_sim/reset", "wrong", http.StatusUnauthorized},
		{"GET", "/_sim/state", "control-token-0123456789", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if tc.token != "" {
			req.Header.Set(zuorasim.ControlTokenHeader, tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, "%s %s %q", tc.method, tc.path, tc.token)
	}
	resp, err := http.PostForm(srv.URL+"/oauth/token", map[string][]string{"client_id": {zuorasim.DefaultClientID},
		"client_secret": {zuorasim.DefaultClientSecret}, "grant_type": {"client_credentials"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
