package zuora

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultVersion is the Zuora-Version header pinned on every REST call.
//
// Why 2025-08-12 (the latest date-style version, §0):
//   - From 2024-05-20 on, errors carrying an 8-digit code map to HTTP 4xx/5xx
//     (category 40 → 404, 50 → 409, 70 → 429, …) instead of HTTP 200 with
//     success:false, so a status-based transport layer (retries, metrics)
//     sees failures as failures. 2025-08-12 adds the same mapping for Object
//     Query parameter errors (category 27 → 400), which the inbound poll uses.
//   - It is ≥ 223.0, so POST /v1/orders returns subscriptions[] with status,
//     and ≥ 230.0, so GET /v1/catalog/products returns productRatePlans as a
//     URL instead of a truncated (≤300) embedded array.
//   - Pinning makes behaviour independent of the tenant's default (a
//     never-upgraded tenant is on 186.0).
//
// The client still parses success:false under HTTP 200 everywhere: Actions
// and CRUD endpoints are excluded from the status mapping, and a caller may
// configure an older Version.
const DefaultVersion = "2025-08-12"

// Defaults applied by New for zero Config fields.
const (
	// DefaultTimeout bounds one HTTP attempt. Zuora answers a request running
	// longer than 120 s with a gateway timeout (§0), so the client waits a
	// little longer than that rather than creating needless ambiguity.
	DefaultTimeout = 125 * time.Second
	// DefaultConcurrencyLimit is Zuora's default tenant concurrency limit (§9).
	DefaultConcurrencyLimit = 40
	// DefaultUsageShare is the usage uploads' part of the concurrency
	// budget while reconciles wait too.
	DefaultUsageShare = 0.25
	// DefaultRequestsPerMinute is the smallest API tier (API Sandbox, 2,500
	// RPM, §9), safe on every tenant; raise it for production tenants.
	DefaultRequestsPerMinute = 2500
	DefaultMaxAttempts       = 6
	DefaultMinBackoff        = 250 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
)

// Config configures a Client. Zero values take the defaults above.
type Config struct {
	// BaseURL is the REST base URL of the tenant's environment, e.g.
	// https://rest.apisandbox.zuora.com (one of Environments, §1).
	BaseURL string
	// AllowAnyBaseURL accepts a BaseURL outside Environments (the simulator,
	// a Production Copy URL issued by Zuora support, a proxy).
	AllowAnyBaseURL bool
	// ClientID and ClientSecret are the OAuth client credentials (§2).
	ClientID     string
	ClientSecret string
	// Version is the Zuora-Version header (DefaultVersion when empty).
	Version string
	// Timeout bounds one HTTP attempt (DefaultTimeout when zero).
	Timeout time.Duration
	// ConcurrencyLimit caps in-flight calls (the tenant's limit, §9).
	ConcurrencyLimit int
	// RequestsPerMinute caps call starts per minute (the tenant's API RPM).
	RequestsPerMinute int
	// UsageShare is the part of ConcurrencyLimit that usage uploads
	// (WithShare(ctx, ShareUsage)) hold while other calls wait, and the
	// other calls hold the rest; a share with nothing waiting lends its
	// slots (DefaultUsageShare when zero; 0 < UsageShare < 1).
	UsageShare float64
	// MaxAttempts bounds attempts per call, the first included.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff between attempts.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// UIRoot, when set, is where UI deep links point (the built-in
	// simulator's pages on billsync's own listener); empty: the
	// environment's UI root, or the base URL itself.
	UIRoot string
}

// String renders the configuration with the client secret redacted, so a
// Config printed with %v or %+v never leaks it.
func (c Config) String() string {
	return fmt.Sprintf("{BaseURL:%s AllowAnyBaseURL:%t ClientID:%s ClientSecret:%s Version:%s Timeout:%s ConcurrencyLimit:%d RequestsPerMinute:%d UsageShare:%g MaxAttempts:%d MinBackoff:%s MaxBackoff:%s}",
		c.BaseURL, c.AllowAnyBaseURL, c.ClientID, redact(c.ClientSecret), c.Version, c.Timeout, c.ConcurrencyLimit,
		c.RequestsPerMinute, c.UsageShare, c.MaxAttempts, c.MinBackoff, c.MaxBackoff)
}

// GoString redacts the secret for %#v too.
func (c Config) GoString() string { return "zuora.Config" + c.String() }

// MarshalJSON redacts the client secret: a Config logged as JSON (zerolog's
// Interface, an admin page) never carries it.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	p := plain(c)
	p.ClientSecret = redact(c.ClientSecret)
	return json.Marshal(p)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// Environment is one Zuora environment (§1).
type Environment struct {
	Name    string
	BaseURL string
	// UIRoot is the web UI's root. For production environments API-NOTES
	// lists none; it is derived like the others (the REST host without its
	// "rest." prefix) and marked Derived.
	UIRoot  string
	Derived bool
}

// Environments lists the REST base URLs a Config may use without
// AllowAnyBaseURL (§1).
var Environments = []Environment{
	{Name: "US Developer & Central Sandbox", BaseURL: "https://rest.test.zuora.com", UIRoot: "https://test.zuora.com"},
	{Name: "US API Sandbox, Cloud 1", BaseURL: "https://rest.sandbox.na.zuora.com", UIRoot: "https://sandbox.na.zuora.com"},
	{Name: "US API Sandbox, Cloud 2", BaseURL: "https://rest.apisandbox.zuora.com", UIRoot: "https://apisandbox.zuora.com"},
	{Name: "US Production, Cloud 1", BaseURL: "https://rest.na.zuora.com", UIRoot: "https://na.zuora.com", Derived: true},
	{Name: "US Production, Cloud 2", BaseURL: "https://rest.zuora.com", UIRoot: "https://www.zuora.com", Derived: true},
	{Name: "EU Developer & Central Sandbox", BaseURL: "https://rest.test.eu.zuora.com", UIRoot: "https://test.eu.zuora.com"},
	{Name: "EU API Sandbox", BaseURL: "https://rest.sandbox.eu.zuora.com", UIRoot: "https://sandbox.eu.zuora.com"},
	{Name: "EU Production", BaseURL: "https://rest.eu.zuora.com", UIRoot: "https://eu.zuora.com", Derived: true},
	{Name: "APAC Developer & Central Sandbox", BaseURL: "https://rest.test.ap.zuora.com", UIRoot: "https://test.ap.zuora.com"},
	{Name: "APAC Production", BaseURL: "https://rest.ap.zuora.com", UIRoot: "https://ap.zuora.com", Derived: true},
	{Name: "US Performance Test", BaseURL: "https://rest.pt1.zuora.com", UIRoot: "https://pt1.zuora.com", Derived: true},
}

// EnvironmentFor returns the environment whose BaseURL equals baseURL
// (ignoring a trailing slash and case).
func EnvironmentFor(baseURL string) (Environment, bool) {
	b := strings.ToLower(strings.TrimRight(strings.TrimSpace(baseURL), "/"))
	for _, e := range Environments {
		if e.BaseURL == b {
			return e, true
		}
	}
	return Environment{}, false
}

// withDefaults returns c with zero fields defaulted.
func (c Config) withDefaults() Config {
	c.BaseURL = strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConcurrencyLimit == 0 {
		c.ConcurrencyLimit = DefaultConcurrencyLimit
	}
	if c.RequestsPerMinute == 0 {
		c.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if c.UsageShare == 0 {
		c.UsageShare = DefaultUsageShare
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}

// Validate reports the first bad setting by name. Zero durations and limits
// are fine (defaults apply); negative ones are not. It never echoes secrets.
func (c Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("zuora config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch u, err := url.Parse(d.BaseURL); {
	case d.BaseURL == "":
		bad("BaseURL", "required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		bad("BaseURL", "%q is not an absolute http(s) URL", d.BaseURL)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		bad("BaseURL", "%q must not carry a query, fragment or user info", d.BaseURL)
	case !d.AllowAnyBaseURL:
		if _, ok := EnvironmentFor(d.BaseURL); !ok {
			bad("BaseURL", "%q is not a Zuora environment (see zuora.Environments); set AllowAnyBaseURL for a simulator or a Production Copy URL", d.BaseURL)
		}
	}
	if strings.TrimSpace(c.ClientID) == "" {
		bad("ClientID", "required")
	} else if len(c.ClientID) > 36 {
		bad("ClientID", "longer than 36 characters")
	}
	if c.ClientSecret == "" {
		bad("ClientSecret", "required")
	} else if len(c.ClientSecret) > 42 {
		bad("ClientSecret", "longer than 42 characters")
	}
	if !validVersion(d.Version) {
		bad("Version", "%q is neither a date-style (2024-05-20) nor a numeric (186.0) Zuora-Version", d.Version)
	}
	if c.Timeout < 0 {
		bad("Timeout", "negative")
	}
	if c.ConcurrencyLimit < 0 || c.ConcurrencyLimit > 1000 {
		bad("ConcurrencyLimit", "%d outside 0..1000", c.ConcurrencyLimit)
	}
	if c.RequestsPerMinute < 0 {
		bad("RequestsPerMinute", "negative")
	}
	if c.UsageShare < 0 || c.UsageShare >= 1 {
		bad("UsageShare", "%g outside 0..1 (exclusive)", c.UsageShare)
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > 50 {
		bad("MaxAttempts", "%d outside 0..50", c.MaxAttempts)
	}
	if c.MinBackoff < 0 {
		bad("MinBackoff", "negative")
	}
	if c.MaxBackoff < 0 {
		bad("MaxBackoff", "negative")
	}
	if d.MaxBackoff < d.MinBackoff {
		bad("MaxBackoff", "%s is below MinBackoff %s", d.MaxBackoff, d.MinBackoff)
	}
	return errors.Join(errs...)
}

func validVersion(v string) bool {
	if _, err := time.Parse("2006-01-02", v); err == nil {
		return true
	}
	dot := strings.IndexByte(v, '.')
	if dot <= 0 || dot == len(v)-1 {
		return false
	}
	for i, r := range v {
		if i != dot && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// statusMappedVersion reports whether v maps 8-digit error codes to HTTP
// statuses (date-style versions, 2024-05-20 and later, §0/§8).
func statusMappedVersion(v string) bool {
	t, err := time.Parse("2006-01-02", v)
	return err == nil && !t.Before(time.Date(2024, 5, 20, 0, 0, 0, 0, time.UTC))
}
