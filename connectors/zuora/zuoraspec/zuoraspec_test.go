package zuoraspec_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuoraspec"
)

func TestValidatorRequestsAndResponses(t *testing.T) {
	t.Parallel()
	v := zuoraspec.Load(t)

	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/oauth/token",
		strings.NewReader("client_id=123456789012345678901234567890123456&client_secret=s&grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body := []byte("client_id=123456789012345678901234567890123456&client_secret=s&grant_type=client_credentials")
	require.NoError(t, v.ValidateRequest(req, body))
	id, name, err := v.Operation(req)
	require.NoError(t, err)
	require.Equal(t, "createToken", id)
	require.Equal(t, "POST /oauth/token", name)

	bad := []byte("client_id=short&client_secret=s&grant_type=password")
	require.Error(t, v.ValidateRequest(req, bad))

	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Zuora-Request-Id", "123e4567-e89b-12d3-a456-426614174000")
	ok := []byte(`{"access_token":"abc","token_type":"bearer","expires_in":3599,"scope":"x","jti":"j"}`)
	require.NoError(t, v.ValidateResponse(req, body, 200, h, ok))
	// 418 is documented nowhere: a violation.
	require.Error(t, v.ValidateResponse(req, body, 418, h, ok))

	sim := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/_sim/state", nil)
	_, _, err = v.Operation(sim)
	require.ErrorIs(t, err, zuoraspec.ErrNoRoute)
}

func TestRecordingTransport(t *testing.T) {
	t.Parallel()
	v := zuoraspec.Load(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Zuora-Request-Id", "123e4567-e89b-12d3-a456-426614174000")
		_, _ = w.Write([]byte(`{"access_token":"abc","token_type":"bearer","expires_in":3599}`))
	}))
	defer srv.Close()
	rt := v.Transport(t, nil)
	c := &http.Client{Transport: rt}
	resp, err := c.PostForm(srv.URL+"/oauth/token", map[string][]string{
		"client_id": {"123456789012345678901234567890123456"}, "client_secret": {"s"}, "grant_type": {"client_credentials"},
	})
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = c.Get(srv.URL + "/_sim/state")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, []string{"createToken"}, rt.Operations())
	require.Equal(t, 1, rt.Skipped()["GET /_sim/state"])
}
