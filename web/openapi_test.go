package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/events"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/mappings"
	"github.com/billsync/billsync/web"
)

var apiRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := web.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc.Servers = nil // match on the path alone, whatever the test server's address
	return gorillamux.NewRouter(doc)
})

// checkAgainstOpenAPI validates one exchange of an API test against
// web/openapi.yaml: every answer must be described (status and body), and a
// request billsync accepted (2xx) must be one the description allows, so the
// description cannot drift from the handlers.
func checkAgainstOpenAPI(t *testing.T, method, rawURL, reqBody string, status int, header http.Header, respBody []byte) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	if !strings.HasPrefix(u.Path, "/api/v1/") && u.Path != "/healthz" && u.Path != "/readyz" {
		return // admin pages, metrics and webhooks are not part of /api/v1
	}
	if status == http.StatusMethodNotAllowed || (status == http.StatusNotFound && strings.Contains(string(respBody), "no route")) {
		return // no such operation: nothing to validate against
	}
	router, err := apiRouter()
	require.NoError(t, err, "web/openapi.yaml")
	req, err := http.NewRequest(method, u.String(), strings.NewReader(reqBody))
	require.NoError(t, err)
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	route, params, err := router.FindRoute(req)
	require.NoError(t, err, "%s %s is not in web/openapi.yaml", method, u.Path)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true,
		MultiError: true, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if status >= 200 && status < 300 {
		require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "%s %s: an accepted request the description refuses", method, u.Path)
	}
	req.Body = io.NopCloser(strings.NewReader(reqBody))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(respBody)
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "%s %s: answer %d not as described: %s", method, u.Path, status, respBody)
}

// TestOpenAPIServed: the description is served, is OpenAPI 3.1, and names
// every /api/v1 route the server has.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "served without the API key")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(b)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater())

	// Every route of a fully wired server is described.
	full := web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey, Sync: db, Mappings: mappings.New(db.Gorm),
		Usage: usage.New(db, nil, usage.Config{}), Inbound: inbound.New(db, nil, nil, inbound.Config{}), Connection: connection.New(connection.Options{Store: db}),
		Events: events.New(db, events.Config{})})
	for _, r := range full.Gin().Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		p := r.Path
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, ":") {
				p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
			}
		}
		item := doc.Paths.Find(p)
		require.NotNil(t, item, "route %s %s is not in web/openapi.yaml", r.Method, p)
		require.NotNil(t, item.GetOperation(r.Method), "route %s %s is not in web/openapi.yaml", r.Method, p)
	}
}
