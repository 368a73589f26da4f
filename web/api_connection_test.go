package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

const secretKey = "a-secret-key-of-at-least-32-characters!"

// TestConnectionAPI: PUT checks the credentials against the simulator first
// (a wrong secret is 422 and stores nothing), then stores them sealed and
// switches the running client at once; GET never shows the secret; DELETE
// goes back to the fallback; the environment wins (409).
func TestConnectionAPI(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			// The running client starts on another tenant (the "built-in" one).
			other := httptest.NewServer(zuorasim.New(zuorasim.Options{}))
			t.Cleanup(other.Close)
			fallback := connection.Endpoint{BaseURL: other.URL, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret}
			require.NoError(t, e.Zuora.SetEndpoint(fallback.BaseURL, fallback.ClientID, fallback.ClientSecret, true))
			sealer, err := connection.NewSealer(secretKey)
			require.NoError(t, err)
			m := connection.New(connection.Options{Store: e.DB, Client: e.Zuora, Sealer: sealer, AllowAny: true, Fallback: fallback, Logger: zerolog.Nop()})
			srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Connection: m}))
			t.Cleanup(srv.Close)
			c := client{t: t, url: srv.URL, key: apiKey}
			ctx := context.Background()

			status, body, _ := c.do(http.MethodGet, "/api/v1/zuora/connection", "")
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, connection.SourceBuiltin, body["source"])
			require.Equal(t, other.URL, body["baseUrl"])

			// A wrong secret: Zuora refuses, nothing is stored, the client is unchanged.
			status, body, _ = c.do(http.MethodPut, "/api/v1/zuora/connection",
				`{"baseUrl":"`+e.Server.URL+`","clientId":"`+zuorasim.DefaultClientID+`","clientSecret":"wrong-secret-123"}`)
			require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
			require.Contains(t, body["detail"], "nothing was saved")
			require.NotContains(t, body["detail"], "wrong-secret-123")
			_, err = e.DB.GetZuoraConnection(ctx)
			require.ErrorIs(t, err, engine.ErrNotFound)
			require.Equal(t, other.URL, e.Zuora.BaseURL())
			// Bad input: 422 naming the field.
			status, body, _ = c.do(http.MethodPut, "/api/v1/zuora/connection", `{"baseUrl":"ftp://x","clientId":"id","clientSecret":"s3cret"}`)
			require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)

			// The right one: stored sealed, in use at once.
			status, body, _ = c.do(http.MethodPut, "/api/v1/zuora/connection",
				`{"baseUrl":"`+e.Server.URL+`","clientId":"`+zuorasim.DefaultClientID+`","clientSecret":"`+zuorasim.DefaultClientSecret+`"}`)
			require.Equal(t, http.StatusOK, status, "%v", body)
			require.Equal(t, true, body["report"].(map[string]any)["saved"])
			conn := body["connection"].(map[string]any)
			require.Equal(t, connection.SourceSettings, conn["source"])
			require.Equal(t, true, conn["secretStored"])
			require.Equal(t, e.Server.URL, e.Zuora.BaseURL(), "the running client switched without a restart")
			stored, err := e.DB.GetZuoraConnection(ctx)
			require.NoError(t, err)
			require.NotContains(t, stored.SecretSealed, zuorasim.DefaultClientSecret, "sealed, not in the clear")
			require.Equal(t, sealer.KeyID(), stored.KeyID)
			status, body, _ = c.do(http.MethodGet, "/api/v1/zuora/connection", "")
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, connection.SourceSettings, body["source"])
			for _, v := range body {
				if s, ok := v.(string); ok {
					require.NotContains(t, s, zuorasim.DefaultClientSecret)
				}
			}
			// A new client id with an empty secret keeps the stored secret.
			status, body, _ = c.do(http.MethodPut, "/api/v1/zuora/connection", `{"baseUrl":"`+e.Server.URL+`","clientId":"`+zuorasim.DefaultClientID+`"}`)
			require.Equal(t, http.StatusOK, status, "%v", body)

			// Another replica (a second manager on the same database) picks it up.
			other2 := httptest.NewServer(zuorasim.New(zuorasim.Options{}))
			t.Cleanup(other2.Close)
			z2, err := zuora.New(zuora.Config{BaseURL: other2.URL, AllowAnyBaseURL: true, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret}, zerolog.Nop())
			require.NoError(t, err)
			m2 := connection.New(connection.Options{Store: e.DB, Client: z2, Sealer: sealer, AllowAny: true, Logger: zerolog.Nop()})
			require.NoError(t, m2.Load(ctx))
			require.Equal(t, e.Server.URL, z2.BaseURL())
			require.Equal(t, zuorasim.DefaultClientSecret, m2.Secret())
			// With another key the stored secret is not used, and the status says why.
			wrongKey, err := connection.NewSealer(strings.Repeat("k", 40))
			require.NoError(t, err)
			m3 := connection.New(connection.Options{Store: e.DB, Client: z2, Sealer: wrongKey, AllowAny: true, Logger: zerolog.Nop()})
			require.NoError(t, m3.Load(ctx))
			st, err := m3.Status(ctx)
			require.NoError(t, err)
			require.Contains(t, st.Problem, "another BILLSYNC_SECRET_KEY")

			// DELETE forgets it: back to the fallback.
			status, body, _ = c.do(http.MethodDelete, "/api/v1/zuora/connection", "")
			require.Equal(t, http.StatusOK, status, "%v", body)
			require.Equal(t, connection.SourceBuiltin, body["connection"].(map[string]any)["source"])
			require.Equal(t, other.URL, e.Zuora.BaseURL())

			// The environment wins: 409, nothing stored.
			envM := connection.New(connection.Options{Store: e.DB, Client: e.Zuora, Sealer: sealer, FromEnv: true, Logger: zerolog.Nop()})
			envSrv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Connection: envM}))
			t.Cleanup(envSrv.Close)
			ec := client{t: t, url: envSrv.URL, key: apiKey}
			status, body, _ = ec.do(http.MethodPut, "/api/v1/zuora/connection",
				`{"baseUrl":"`+e.Server.URL+`","clientId":"`+zuorasim.DefaultClientID+`","clientSecret":"`+zuorasim.DefaultClientSecret+`"}`)
			require.Equal(t, http.StatusConflict, status, "%v", body)
			require.Contains(t, body["detail"], "environment")
			status, body, _ = ec.do(http.MethodGet, "/api/v1/zuora/connection", "")
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, connection.SourceEnvironment, body["source"])
		})
	}
}
