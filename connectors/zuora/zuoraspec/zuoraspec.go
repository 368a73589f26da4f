// Package zuoraspec validates HTTP requests and responses against Zuora's own
// OpenAPI file (shared/zuora/spec/zuora_openapi.yaml), the contract both the
// Zuora client and the Zuora simulator are tested against.
//
// The file is never copied into the project: it is read from the path in the
// ZUORA_OPENAPI environment variable, or else from
// <dir holding go.mod>/../shared/zuora/spec/zuora_openapi.yaml.
// It is loaded once per process.
package zuoraspec

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvSpecPath names the environment variable holding the spec's path.
const EnvSpecPath = "ZUORA_OPENAPI"

// ErrNotFound is returned (wrapped) by LoadFile when the spec file is absent.
var ErrNotFound = errors.New("zuora openapi file not found")

// Validator checks requests and responses against the spec.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	path   string
}

var (
	loadOnce sync.Once
	loaded   *Validator
	loadErr  error
)

// SpecPath returns where the spec is expected: $ZUORA_OPENAPI, or the default
// relative to the module root found by walking up from the working directory.
func SpecPath() string {
	if p := os.Getenv(EnvSpecPath); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "zuora", "spec", "zuora_openapi.yaml")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Default loads the spec from SpecPath once per process.
func Default() (*Validator, error) {
	loadOnce.Do(func() {
		loaded, loadErr = LoadFile(SpecPath())
	})
	return loaded, loadErr
}

// Load returns the process-wide validator for a test. When the spec file is
// missing it skips the test, unless CI=true, in which case it fails it.
func Load(t testing.TB) *Validator {
	t.Helper()
	v, err := Default()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("zuoraspec: %v (set %s; CI=true so this is a failure)", err, EnvSpecPath)
			}
			t.Skipf("zuoraspec: %v; skipping contract validation (set %s to Zuora's OpenAPI file to run it)", err, EnvSpecPath)
		}
		t.Fatalf("zuoraspec: %v", err)
	}
	return v
}

// LoadFile reads and parses the spec at path and builds a router over it.
func LoadFile(path string) (*Validator, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no path (no go.mod found and %s unset)", ErrNotFound, EnvSpecPath)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w at %s", ErrNotFound, path)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(patchExternalRefs(raw))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// Servers list Zuora's hosts; requests here go to 127.0.0.1. With no
	// servers the router matches any host on the path alone.
	doc.Servers = nil
	relax(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router over %s: %w", path, err)
	}
	return &Validator{doc: doc, router: router, path: path}, nil
}

// patchExternalRefs replaces in memory the six $refs to files Zuora did not
// publish with the spec (see shared/zuora/spec/README.md): the actiontype ones
// become `type: string` (dropping the ref when a sibling `type: string` exists),
// the others `type: object`.
func patchExternalRefs(raw []byte) []byte {
	lines := bytes.Split(raw, []byte("\n"))
	out := make([][]byte, 0, len(lines))
	for i, line := range lines {
		trimmed := bytes.TrimSpace(line)
		if !bytes.HasPrefix(trimmed, []byte("$ref:")) {
			out = append(out, line)
			continue
		}
		target := strings.Trim(strings.TrimSpace(string(trimmed[len("$ref:"):])), `'"`)
		if strings.HasPrefix(target, "#") {
			out = append(out, line)
			continue
		}
		indent := line[:len(line)-len(bytes.TrimLeft(line, " "))]
		if strings.HasSuffix(target, "actiontype.yaml") {
			if i+1 < len(lines) && bytes.Equal(bytes.TrimSpace(lines[i+1]), []byte("type: string")) {
				continue // the sibling line already says type: string
			}
			out = append(out, append(append([]byte{}, indent...), "type: string"...))
			continue
		}
		out = append(out, append(append([]byte{}, indent...), "type: object"...))
	}
	return bytes.Join(out, []byte("\n"))
}

// Path is the file the validator was loaded from.
func (v *Validator) Path() string { return v.path }

// ErrNoRoute is returned (wrapped) when a request matches no operation of the
// spec. Callers treat such requests as skipped, not as violations.
var ErrNoRoute = errors.New("no operation in the spec")

// Operation finds the spec operation for a request: its operationId and its
// "METHOD /path-template" name.
func (v *Validator) Operation(req *http.Request) (operationID, name string, err error) {
	route, _, err := v.route(req)
	if err != nil {
		return "", "", err
	}
	return route.Operation.OperationID, req.Method + " " + route.Path, nil
}

func (v *Validator) route(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %v", ErrNoRoute, req.Method, req.URL.Path, err)
	}
	return route, params, nil
}

// options are the validation settings; each relaxation is explained.
func options() *openapi3filter.Options {
	return &openapi3filter.Options{
		// Security: the spec declares bearerAuth/basicAuth on most operations;
		// credentials are the server's business (the simulator answers 401),
		// not a contract-shape question.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		// The validator must not mutate the request it checks.
		SkipSettingDefaults: true,
		MultiError:          true,
		// An undocumented status is a violation, except the gateway statuses
		// handled in ValidateResponse.
		IncludeResponseStatus: true,
	}
}

// gatewayStatus reports statuses that Zuora's gateway may return on any
// operation although the compact spec lists them only on some: 429 (rate and
// concurrency limits, DOCS rate-limits: every /v1 call), 409/422
// (idempotency), 401 (expired or
// missing token), 500/502/503/504 (internal errors, gateway timeouts).
func gatewayStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusUnauthorized,
		// Idempotency-Key answers (DOCS idempotent-requests): 409 while the
		// first request is in flight (or a replay), 422 on reuse with
		// another URL or method, on every POST/PATCH.
		http.StatusConflict, http.StatusUnprocessableEntity,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// ValidateRequest validates a request (with its body given separately, since
// req.Body may already be consumed) against the spec.
func (v *Validator) ValidateRequest(req *http.Request, body []byte) error {
	route, params, err := v.route(req)
	if err != nil {
		return err
	}
	in := v.requestInput(req, body, route, params)
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		return fmt.Errorf("%s (%s %s): request: %w", route.Operation.OperationID, req.Method, route.Path, err)
	}
	return nil
}

func (v *Validator) requestInput(req *http.Request, body []byte, route *routers.Route, params map[string]string) *openapi3filter.RequestValidationInput {
	r := req.Clone(contextOf(req))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = nil
	return &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options:    options(),
	}
}

func contextOf(req *http.Request) context.Context {
	if ctx := req.Context(); ctx != nil {
		return ctx
	}
	return context.TODO()
}

// ValidateResponse validates a response to req against the spec. reqBody is
// the request body (needed for the request input only).
func (v *Validator) ValidateResponse(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) error {
	route, params, err := v.route(req)
	if err != nil {
		return err
	}
	if route.Operation.Responses.Status(status) == nil && route.Operation.Responses.Default() == nil {
		if gatewayStatus(status) {
			// Undocumented gateway status (see gatewayStatus): nothing in the
			// spec to validate it against.
			return nil
		}
		if status == http.StatusBadRequest && (strings.HasPrefix(route.Path, "/v1/object/") || strings.HasPrefix(route.Path, "/v1/action/")) {
			// CRUD and Actions validation errors: the compact spec lists the
			// 400 ProxyBadRequestResponse only on some CRUD operations (e.g.
			// the creates, not the updates); validate against that shape.
			return v.validateSchema("ProxyBadRequestResponse", respBody, route, req.Method, status)
		}
	}
	if status == http.StatusOK && (route.Operation.OperationID == "GET_Catalog" || route.Operation.OperationID == "GET_Product") {
		// Before Zuora-Version 230.0 productRatePlans is an embedded array
		// (API-NOTES §0c, §4c); the spec only describes the URL form. Swap
		// an embedded array for a URL before validating the rest.
		respBody = urlForEmbeddedPlans(respBody)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: v.requestInput(req, reqBody, route, params),
		Status:                 status,
		Header:                 header,
		Options:                options(),
	}
	in.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s (%s %s): response %d: %w", route.Operation.OperationID, req.Method, route.Path, status, err)
	}
	return nil
}

// RecordingTransport validates every request and response passing through it
// and records the operations seen.
type RecordingTransport struct {
	v     *Validator
	t     testing.TB
	inner http.RoundTripper

	mu      sync.Mutex
	ops     map[string]struct{}
	skipped map[string]int
	checked int
}

// Transport wraps inner (http.DefaultTransport when nil).
func (v *Validator) Transport(t testing.TB, inner http.RoundTripper) *RecordingTransport {
	if inner == nil {
		inner = http.DefaultTransport
	}
	return &RecordingTransport{v: v, t: t, inner: inner, ops: map[string]struct{}{}, skipped: map[string]int{}}
}

// RoundTrip implements http.RoundTripper.
func (rt *RecordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	route, _, routeErr := rt.v.route(req)
	if routeErr != nil {
		rt.mu.Lock()
		rt.skipped[req.Method+" "+req.URL.Path]++
		rt.mu.Unlock()
		return rt.inner.RoundTrip(req)
	}
	opID := route.Operation.OperationID
	if err := rt.v.ValidateRequest(req, reqBody); err != nil {
		rt.t.Errorf("zuoraspec: operation %s: %v", opID, err)
	}
	resp, err := rt.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		// The transport failed mid-body (e.g. a connection reset): hand the
		// error back to the caller, nothing to validate.
		return resp, nil
	}
	body := respBody
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		if b, gzErr := gunzip(respBody); gzErr == nil {
			body = b
		}
	}
	if err := rt.v.ValidateResponse(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		rt.t.Errorf("zuoraspec: operation %s: %v", opID, err)
	}
	rt.mu.Lock()
	rt.ops[opID] = struct{}{}
	rt.checked++
	rt.mu.Unlock()
	return resp, nil
}

// Operations returns the sorted operationIds validated so far.
func (rt *RecordingTransport) Operations() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]string, 0, len(rt.ops))
	for op := range rt.ops {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// Skipped returns the requests not in the spec ("METHOD /path" → count),
// e.g. /_sim/* control calls and GET /v1/usage/accounts/{key}.
func (rt *RecordingTransport) Skipped() map[string]int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make(map[string]int, len(rt.skipped))
	for k, n := range rt.skipped {
		out[k] = n
	}
	return out
}

// Checked is the number of exchanges validated.
func (rt *RecordingTransport) Checked() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.checked
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer func() { _ = zr.Close() }()
	return io.ReadAll(zr)
}

// relax adapts, in memory, schema constructs of the compact spec that no
// valid payload could satisfy under strict JSON Schema semantics:
//
//   - oneOf without a discriminator becomes anyOf. Zuora's variants overlap
//     (e.g. the notification callout's "common" variant also matches every
//     basic-auth callout, because additional properties are allowed), so a
//     strict oneOf rejects valid payloads as "matches more than one".
//   - An allOf member with no properties and a typed additionalProperties
//     (DataAccessControlField: additionalProperties {type: string}) would
//     force every property of the combined object to that type (a newAccount
//     with an integer billCycleDay and an object billToContact could never
//     pass). Zuora means "extra string fields are allowed": the member's
//     additionalProperties is made free-form.
//   - Object Query records: see the comment in the loop below.
//   - Amounts with minimum 9 and maximum 22 (decimal precision rendered as
//     bounds): see the comment in visit.
func relax(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		sc := ref.Value
		seen[sc] = true
		// GET /v1/describe's field type enum spells date "data"; the
		// operation's page (developer.zuora.com GET_Describe) lists date.
		if slices.Contains(sc.Enum, any("data")) && slices.Contains(sc.Enum, any("datetime")) && !slices.Contains(sc.Enum, any("date")) {
			sc.Enum = append(sc.Enum, "date")
		}
		// Zuora renders decimal(22,9) amounts (the order response's
		// writeOff[].amount) as minimum 9, maximum 22: no amount above 22
		// could pass. The bounds are dropped.
		if sc.Min != nil && sc.Max != nil && *sc.Min == 9 && *sc.Max == 22 {
			sc.Min, sc.Max = nil, nil
		}
		if len(sc.OneOf) > 0 && sc.Discriminator == nil {
			sc.AnyOf = append(sc.AnyOf, sc.OneOf...)
			sc.OneOf = nil
		}
		for _, m := range sc.AllOf {
			if m.Value != nil && len(m.Value.Properties) == 0 && m.Value.AdditionalProperties.Schema != nil {
				m.Value.AdditionalProperties = openapi3.AdditionalProperties{}
			}
		}
		for _, p := range sc.Properties {
			visit(p)
		}
		visit(sc.Items)
		visit(sc.Not)
		visit(sc.AdditionalProperties.Schema)
		for _, list := range [][]*openapi3.SchemaRef{sc.AllOf, sc.AnyOf, sc.OneOf} {
			for _, x := range list {
				visit(x)
			}
		}
	}
	for name, sc := range doc.Components.Schemas {
		// Object Query records (Expanded*) declare additionalProperties
		// {type: object}, which fits expanded children but not the scalar
		// custom fields (*__c) Object Query returns as top-level keys.
		if strings.HasPrefix(name, "Expanded") && sc.Value != nil && sc.Value.AdditionalProperties.Schema != nil {
			sc.Value.AdditionalProperties = openapi3.AdditionalProperties{}
		}
		visit(sc)
	}
	for _, pi := range doc.Paths.Map() {
		for _, op := range pi.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil {
					visit(p.Value.Schema)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					visit(mt.Schema)
				}
			}
			for _, r := range op.Responses.Map() {
				if r.Value == nil {
					continue
				}
				for _, mt := range r.Value.Content {
					visit(mt.Schema)
				}
			}
		}
	}
}

func (v *Validator) validateSchema(name string, body []byte, route *routers.Route, method string, status int) error {
	ref := v.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("zuoraspec: schema %s missing", name)
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("%s (%s %s): response %d: body is not JSON: %w", route.Operation.OperationID, method, route.Path, status, err)
	}
	if err := ref.Value.VisitJSON(val, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("%s (%s %s): response %d as %s: %w", route.Operation.OperationID, method, route.Path, status, name, err)
	}
	return nil
}

func urlForEmbeddedPlans(body []byte) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	changed := false
	fix := func(p map[string]any) {
		if _, isArr := p["productRatePlans"].([]any); isArr {
			p["productRatePlans"] = "/v1/rateplan/embedded/productRatePlan"
			changed = true
		}
	}
	fix(m)
	if ps, ok := m["products"].([]any); ok {
		for _, p := range ps {
			if pm, ok := p.(map[string]any); ok {
				fix(pm)
			}
		}
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}
