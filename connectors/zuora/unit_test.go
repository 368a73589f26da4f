package zuora

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

func validConfig() Config {
	return Config{BaseURL: "https://rest.apisandbox.zuora.com", ClientID: strings.Repeat("a", 36), ClientSecret: "s3cret"}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edit  func(*Config)
		field string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"trailing slash", func(c *Config) { c.BaseURL = "https://rest.zuora.com/" }, ""},
		{"eu production", func(c *Config) { c.BaseURL = "https://rest.eu.zuora.com" }, ""},
		{"missing base", func(c *Config) { c.BaseURL = "" }, "BaseURL"},
		{"unknown host", func(c *Config) { c.BaseURL = "https://evil.example.com" }, "BaseURL"},
		{"unknown host allowed", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080"; c.AllowAnyBaseURL = true }, ""},
		{"relative", func(c *Config) { c.BaseURL = "rest.zuora.com"; c.AllowAnyBaseURL = true }, "BaseURL"},
		{"query", func(c *Config) { c.BaseURL = "https://x.example.com/?a=b"; c.AllowAnyBaseURL = true }, "BaseURL"},
		{"missing id", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"missing secret", func(c *Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"long secret", func(c *Config) { c.ClientSecret = strings.Repeat("x", 43) }, "ClientSecret"},
		{"bad version", func(c *Config) { c.Version = "latest" }, "Version"},
		{"old version ok", func(c *Config) { c.Version = "186.0" }, ""},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout"},
		{"negative limit", func(c *Config) { c.ConcurrencyLimit = -1 }, "ConcurrencyLimit"},
		{"negative rpm", func(c *Config) { c.RequestsPerMinute = -5 }, "RequestsPerMinute"},
		{"attempts", func(c *Config) { c.MaxAttempts = 99 }, "MaxAttempts"},
		{"backoff order", func(c *Config) { c.MinBackoff = time.Second; c.MaxBackoff = time.Millisecond }, "MaxBackoff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field)
			require.NotContains(t, err.Error(), c.ClientSecret+"\"") // never echo the secret
		})
	}
	d := validConfig().withDefaults()
	require.Equal(t, DefaultVersion, d.Version)
	require.True(t, statusMappedVersion(d.Version))
	require.False(t, statusMappedVersion("186.0"))
	require.False(t, statusMappedVersion("2023-01-01"))
}

func TestConfigNeverPrintsTheSecret(t *testing.T) {
	t.Parallel()
	c := validConfig()
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.String()} {
		require.NotContains(t, out, c.ClientSecret)
		require.Contains(t, out, "[redacted]")
	}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.NotContains(t, string(b), c.ClientSecret)
	require.Contains(t, string(b), "rest.apisandbox.zuora.com")
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := IdempotencyKey("order", "cus_1", "hash1")
	require.Equal(t, a, IdempotencyKey("order", "cus_1", "hash1"))
	require.NotEqual(t, a, IdempotencyKey("order", "cus_1", "hash2"))
	require.NotEqual(t, IdempotencyKey("ab", "c"), IdempotencyKey("a", "bc"))
	require.LessOrEqual(t, len(a), 255)
	require.Len(t, IdempotencyKey(strings.Repeat("x", 10000)), len(a))
}

func TestNumber(t *testing.T) {
	t.Parallel()
	var v struct {
		A Number `json:"a"`
		B Number `json:"b"`
		C Number `json:"c"`
		D Number `json:"d"`
		E Number `json:"e,omitempty"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"a": 12.50, "b": "7.7e2", "c": null, "d": ""}`), &v))
	require.Equal(t, Number("12.50"), v.A)
	db, err := v.B.Decimal()
	require.NoError(t, err)
	require.True(t, db.Equal(decimal.NewFromInt(770)))
	require.True(t, v.C.IsZero())
	require.True(t, v.D.IsZero())
	out, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, `{"a":12.50,"b":7.7e2,"c":null,"d":null}`, string(out))
	require.Error(t, json.Unmarshal([]byte(`{"a":"abc"}`), &v))
	_, err = json.Marshal(struct{ N Number }{Number("1; drop")})
	require.Error(t, err)
	n, err := ParseNumber(" 19.99 ")
	require.NoError(t, err)
	require.Equal(t, NumberFromDecimal(decimal.RequireFromString("19.99")), n)
}

func TestCustomFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	p := Product{Name: "Pro", EffectiveStartDate: "2024-01-01", ID: "ignored-on-write",
		CustomFields: map[string]any{"BillsyncId__c": "plan_1"}}
	b, err := json.Marshal(p.forWrite())
	require.NoError(t, err)
	require.JSONEq(t, `{"Name":"Pro","EffectiveStartDate":"2024-01-01","BillsyncId__c":"plan_1"}`, string(b))
	var back Product
	require.NoError(t, json.Unmarshal([]byte(`{"Id":"p1","Name":"Pro","BillsyncId__c":"plan_1","Num__c":3}`), &back))
	require.Equal(t, "p1", back.ID)
	require.Equal(t, "plan_1", back.CustomFields["BillsyncId__c"])
	require.Equal(t, json.Number("3"), back.CustomFields["Num__c"])
	_, err = json.Marshal(Product{CustomFields: map[string]any{"NoSuffix": 1}})
	require.Error(t, err)
	empty, err := json.Marshal(AccountUpdate{CustomFields: map[string]any{"X__c": true}})
	require.NoError(t, err)
	require.JSONEq(t, `{"X__c":true}`, string(empty))
}

func TestCatalogProductPlansEmbeddedOrURL(t *testing.T) {
	t.Parallel()
	var p CatalogProduct
	require.NoError(t, json.Unmarshal([]byte(`{"id":"1","productRatePlans":"/v1/rateplan/1/productRatePlan"}`), &p))
	require.Nil(t, p.ProductRatePlans)
	require.Equal(t, "/v1/rateplan/1/productRatePlan", p.ProductRatePlansURL)
	require.NoError(t, json.Unmarshal([]byte(`{"id":"1","productRatePlans":[{"id":"rp","name":"Monthly","productRatePlanCharges":[{"id":"c","pricing":[{"currency":"USD","price":"9.99"}]}]}]}`), &p))
	require.Len(t, p.ProductRatePlans, 1)
	require.Equal(t, Number("9.99"), p.ProductRatePlans[0].ProductRatePlanCharges[0].Pricing[0].Price)
}

func TestDetectErrorDialects(t *testing.T) {
	t.Parallel()
	h := http.Header{"Zuora-Request-Id": {"req-1"}}
	cases := []struct {
		name      string
		op        string
		status    int
		body      string
		nilErr    bool
		code      string
		category  int
		retryable bool
		notFound  bool
		auth      bool
	}{
		{"success", "GET /v1/accounts/{account-key}", 200, `{"success":true}`, true, "", 0, false, false, false},
		{"200 success false validation", "POST /v1/orders", 200, `{"success":false,"processId":"P","reasons":[{"code":53100320,"message":"'termType' value should be one of: TERMED, EVERGREEN"}]}`, false, "53100320", 20, false, false, false},
		{"200 success false lock", "POST /v1/orders", 200, `{"success":false,"reasons":[{"code":"50000050","message":"lock"}]}`, false, "50000050", 50, true, false, false},
		{"400 mapped", "POST /v1/accounts", 400, `{"success":false,"reasons":[{"code":"53000022","message":"missing"}]}`, false, "53000022", 22, false, false, false},
		{"404 mapped", "GET /v1/accounts/{account-key}", 404, `{"success":false,"reasons":[{"code":"50000040","message":"no account"}]}`, false, "50000040", 40, false, true, false},
		{"429 concurrency", "POST /v1/orders", 429, `{"success":false,"reasons":[{"code":"50000070","message":"too many"}]}`, false, "50000070", 70, true, false, false},
		{"500 internal", "GET /v1/subscriptions/{subscription-key}", 500, `{"reasons":[{"code":"50000060","message":"oops"}]}`, false, "50000060", 60, true, false, false},
		{"401 auth", "GET /v1/accounts/{account-key}", 401, `{"message":"Authentication error"}`, false, "", 0, false, false, true},
		{"crud 400", "POST /v1/object/product", 400, `{"success":false,"errors":[{"code":"INVALID_VALUE","message":"bad"}]}`, false, "INVALID_VALUE", 0, false, false, false},
		{"crud 200 lock", "PUT /v1/object/product/{id}", 200, `{"Success":false,"Errors":[{"Code":"LOCK_COMPETITION","Message":"lock"}]}`, false, "LOCK_COMPETITION", 0, true, false, false},
		{"crud 404", "GET /v1/object/product/{id}", 404, `{"done":true,"records":[],"size":0}`, false, "NOT_FOUND", 0, false, true, false},
		{"crud invalid id", "DELETE /v1/object/product/{id}", 200, `{"success":false,"errors":[{"code":"INVALID_ID","message":"invalid id"}]}`, false, "INVALID_ID", 0, false, true, false},
		{"object query", "GET /object-query/accounts", 400, `{"reasons":[{"code":50000027,"message":"bad filter"}],"requestId":"r"}`, false, "50000027", 27, false, false, false},
		{"html 502", "GET /v1/catalog/products", 502, `<html>bad gateway</html>`, false, "HTTP", 0, true, false, false},
		{"empty 503", "GET /v1/catalog/products", 503, ``, false, "HTTP", 0, true, false, false},
		{"auth code", "GET /v1/catalog/products", 200, `{"success":false,"reasons":[{"code":90000011,"message":"invalid credentials"}]}`, false, "90000011", 11, false, false, true},
		{"actions array ok", "POST /v1/action/create", 200, `[{"Success":false,"Errors":[{"Code":"INVALID_VALUE","Message":"x"}]}]`, true, "", 0, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := detectError(tc.op, tc.status, h, []byte(tc.body))
			if tc.nilErr {
				require.Nil(t, e)
				return
			}
			require.NotNil(t, e)
			require.Equal(t, tc.code, e.Code)
			require.Equal(t, tc.category, e.Category)
			require.Equal(t, tc.retryable, e.Retryable, "retryable")
			require.Equal(t, tc.notFound, e.NotFound, "not found")
			require.Equal(t, tc.auth, e.Auth, "auth")
			require.Equal(t, "req-1", e.RequestID)
			require.Equal(t, tc.status, e.HTTPStatus)
			require.NotEmpty(t, e.Message)
			var err error = e
			require.Equal(t, tc.retryable, IsRetryable(err))
			require.Equal(t, tc.notFound, IsNotFound(err))
			require.Equal(t, tc.notFound, errors.Is(err, ErrNotFound))
			require.False(t, IsAmbiguous(err))
		})
	}
}

func TestReplayDetection(t *testing.T) {
	t.Parallel()
	require.True(t, isReplayOfSuccess([]byte(`{"success":true,"orderNumber":"O-1"}`)))
	require.True(t, isReplayOfSuccess([]byte(`{"Id":"x","Success":true}`)))
	require.True(t, isReplayOfSuccess([]byte(`[{"Id":"x","Success":true}]`)))
	require.True(t, isReplayOfSuccess([]byte(`{"id":"t1","active":true}`)))
	require.False(t, isReplayOfSuccess([]byte(`{"success":false,"reasons":[{"code":"50000050","message":"in progress"}]}`)))
	require.False(t, isReplayOfSuccess([]byte(`{"reasons":[{"code":"x","message":"in progress"}]}`)))
	require.False(t, isReplayOfSuccess(nil))
}

func TestRetryAfterAndBackoff(t *testing.T) {
	t.Parallel()
	now := time.Now()
	require.Equal(t, 2*time.Second, parseRetryAfter(http.Header{"Retry-After": {"2"}}, now))
	require.Equal(t, 1500*time.Millisecond, parseRetryAfter(http.Header{"Retry-After": {"1.5"}}, now))
	require.Zero(t, parseRetryAfter(http.Header{}, now))
	date := now.Add(3 * time.Second).UTC().Format(http.TimeFormat)
	require.InDelta(t, float64(3*time.Second), float64(parseRetryAfter(http.Header{"Retry-After": {date}}, now)), float64(time.Second))

	cfg := validConfig()
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 80*time.Millisecond
	c, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	for attempt := 1; attempt <= 8; attempt++ {
		d := c.backoff(attempt, 0)
		ceiling := min(cfg.MinBackoff<<(attempt-1), cfg.MaxBackoff)
		require.GreaterOrEqual(t, d, ceiling/2)
		require.LessOrEqual(t, d, ceiling)
	}
	require.Equal(t, time.Second, c.backoff(1, time.Second), "Retry-After is a floor")
}

func TestNextPageURL(t *testing.T) {
	t.Parallel()
	cfg := validConfig()
	c, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	cur := "https://rest.apisandbox.zuora.com/v1/catalog/products?page=1&pageSize=40"
	cases := map[string]string{
		"https://rest.apisandbox.zuora.com/v1/catalog/products?page=2&pageSize=40": "https://rest.apisandbox.zuora.com/v1/catalog/products?page=2&pageSize=40",
		"/v1/catalog/products?page=2&pageSize=40":                                  "https://rest.apisandbox.zuora.com/v1/catalog/products?page=2&pageSize=40",
		"/catalog/products?page=2&pageSize=40":                                     "https://rest.apisandbox.zuora.com/v1/catalog/products?page=2&pageSize=40",
		"?page=3&pageSize=40":                                                      "https://rest.apisandbox.zuora.com/v1/catalog/products?page=3&pageSize=40",
	}
	for next, want := range cases {
		got, err := c.nextPageURL(cur, next)
		require.NoError(t, err, next)
		require.Equal(t, want, got, next)
	}
	_, err = c.nextPageURL(cur, "https://attacker.example.com/v1/catalog/products?page=2")
	require.Error(t, err, "the token must never go to another host")
}

func TestLinks(t *testing.T) {
	t.Parallel()
	c, err := New(validConfig(), zerolog.Nop())
	require.NoError(t, err)
	require.Equal(t, "https://apisandbox.zuora.com/apps/CustomerAccount.do?method=view&id=abc", c.AccountURL("abc"))
	require.Equal(t, "https://apisandbox.zuora.com/apps/Subscription.do?method=view&id=s1", c.SubscriptionURL("s1"))
	require.Equal(t, "https://apisandbox.zuora.com/apps/Product.do?method=view&id=p1", c.ProductURL("p1"))
	require.Empty(t, c.ProductURL(""))
	cfg := validConfig()
	cfg.BaseURL, cfg.AllowAnyBaseURL = "http://127.0.0.1:9999/", true
	sim, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9999/apps/CustomerAccount.do?method=view&id=a%2Fb", sim.AccountURL("a/b"))
}

func TestOrderValidate(t *testing.T) {
	t.Parallel()
	ok := Order{OrderDate: "2024-01-01", ExistingAccountNumber: "A1", Subscriptions: []OrderSubscription{{
		SubscriptionNumber: "S1", OrderActions: []OrderAction{CancelSubscriptionAction(CancelEndOfCurrentTerm, "")}}}}
	require.NoError(t, ok.Validate())
	bad := ok
	bad.NewAccount = &OrderNewAccount{Name: "x"}
	require.ErrorContains(t, bad.Validate(), "exactly one")
	bad = ok
	bad.Subscriptions = []OrderSubscription{{OrderActions: []OrderAction{{Type: OrderActionSuspend}}}}
	err := bad.Validate()
	require.ErrorContains(t, err, "without its payload")
	require.ErrorContains(t, err, "subscriptionNumber is required")
}
