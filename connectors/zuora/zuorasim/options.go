package zuorasim

import (
	"flag"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// Default client credentials accepted by POST /oauth/token. Zuora client ids
// are exactly 36 characters; secrets at most 42.
const (
	DefaultClientID     = "5f3a1c2e-9b7d-4e8f-a6c1-0d2e3f4a5b6c"
	DefaultClientSecret = "billsync-zuora-sim-secret-0123456789"
)

// Defaults, per API-NOTES §2, §9 and §11c.
const (
	DefaultTokenTTL                   = 3599 * time.Second
	DefaultConcurrencyLimit           = 40
	DefaultHighVolumeConcurrencyLimit = 200
	DefaultObjectQueryConcurrency     = 80
	DefaultRateLimitPerMinute         = 50000
	DefaultAuthRateLimitPerMinute     = 2000
	DefaultCalloutRetries             = 3
	DefaultCalloutRetryInterval       = 30 * time.Minute
	DefaultCalloutTimeout             = 25 * time.Second
)

// Options configure a Sim. The zero value is usable: every field has a default.
type Options struct {
	ClientID, ClientSecret string // defaults DefaultClientID / DefaultClientSecret

	TokenTTL time.Duration // lifetime of minted tokens; default 3599 s
	Latency  time.Duration // added to every /v1 call

	ConcurrencyLimit           int // default 40
	HighVolumeConcurrencyLimit int // default 200 (create account, create order)
	ObjectQueryConcurrency     int // default 80 (/object-query/*)
	RateLimitPerMinute         int // default 50000; 0 = default
	AuthRateLimitPerMinute     int // POST /oauth/token per minute; default 2000

	// IdempotencyReplay409 makes a replayed Idempotency-Key answer 409 with
	// the original body instead of the stored status (API-NOTES §10: the two
	// DOCS pages disagree).
	IdempotencyReplay409 bool

	Now func() time.Time // injectable clock; nil = wall clock + AdvanceClock offset

	CalloutRetries       int           // deliveries in all; default 3
	CalloutRetryInterval time.Duration // default 30 min (tests set ms)
	CalloutHTTPClient    *http.Client  // default: 25 s timeout, redirects not followed

	// OrderProcessingTime is how long an order (POST /v1/orders) holds its
	// account, so concurrent writes to the same account meet Zuora's lock
	// competition (default 0: only while the order runs).
	OrderProcessingTime time.Duration

	// ImportDelay is how long a usage file (POST /v1/usage) waits before it
	// is processed, plus 10 µs per row (default 1 s): its status is Pending,
	// then Processing, then Completed or Failed.
	ImportDelay time.Duration

	// Tenant is the tenant's configuration (units of measure, currencies,
	// time zone, custom fields, features); nil = FreshTenant(). New panics
	// on nothing: an invalid tenant is reported by SetTenant/LoadTenantFile.
	Tenant *Tenant

	Seed   int64 // randomness for probabilistic faults
	Logger zerolog.Logger

	// ControlToken, when set, is required in the X-Sim-Control-Token header
	// of every /_sim/ control request (billsync's built-in simulator sets a
	// random one, so no other local user can reset or read it).
	ControlToken string

	// Store, when set, keeps the objects across restarts (use Open, which
	// loads them): a file for `billsync zuora-sim --state`, a table of
	// billsync's database for the built-in simulator.
	Store Store
}

// BindFlags registers command-line flags for the options on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ClientID, "client-id", DefaultClientID, "OAuth client id accepted by POST /oauth/token (36 chars)")
	fs.StringVar(&o.ClientSecret, "client-secret", DefaultClientSecret, "OAuth client secret accepted by POST /oauth/token")
	fs.DurationVar(&o.TokenTTL, "token-ttl", DefaultTokenTTL, "lifetime of access tokens")
	fs.DurationVar(&o.Latency, "latency", 0, "latency added to every /v1 call")
	fs.IntVar(&o.ConcurrencyLimit, "concurrency-limit", DefaultConcurrencyLimit, "concurrent /v1 calls (default class)")
	fs.IntVar(&o.HighVolumeConcurrencyLimit, "high-volume-concurrency-limit", DefaultHighVolumeConcurrencyLimit, "concurrent calls of the high-volume class (create account, create order)")
	fs.IntVar(&o.RateLimitPerMinute, "rate-limit", DefaultRateLimitPerMinute, "API requests per minute")
	fs.BoolVar(&o.IdempotencyReplay409, "idempotency-replay-409", false, "answer a replayed Idempotency-Key with 409 (and the original body) instead of the stored status")
	fs.IntVar(&o.CalloutRetries, "callout-retries", DefaultCalloutRetries, "callout deliveries in all (1 = no retry)")
	fs.DurationVar(&o.CalloutRetryInterval, "callout-retry-interval", DefaultCalloutRetryInterval, "wait between callout deliveries")
	fs.Int64Var(&o.Seed, "seed", 1, "seed for probabilistic faults")
	fs.StringVar(&o.ControlToken, "control-token", "", "require this value in the X-Sim-Control-Token header of /_sim/ requests (required off loopback)")
}

func (o Options) withDefaults() Options {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.ConcurrencyLimit <= 0 {
		o.ConcurrencyLimit = DefaultConcurrencyLimit
	}
	if o.HighVolumeConcurrencyLimit <= 0 {
		o.HighVolumeConcurrencyLimit = DefaultHighVolumeConcurrencyLimit
	}
	if o.ObjectQueryConcurrency <= 0 {
		o.ObjectQueryConcurrency = DefaultObjectQueryConcurrency
	}
	if o.RateLimitPerMinute <= 0 {
		o.RateLimitPerMinute = DefaultRateLimitPerMinute
	}
	if o.AuthRateLimitPerMinute <= 0 {
		o.AuthRateLimitPerMinute = DefaultAuthRateLimitPerMinute
	}
	if o.CalloutRetries <= 0 {
		o.CalloutRetries = DefaultCalloutRetries
	}
	if o.ImportDelay <= 0 {
		o.ImportDelay = time.Second
	}
	if o.CalloutRetryInterval <= 0 {
		o.CalloutRetryInterval = DefaultCalloutRetryInterval
	}
	if o.CalloutHTTPClient == nil {
		o.CalloutHTTPClient = &http.Client{
			Timeout: DefaultCalloutTimeout,
			// Zuora does not follow redirects on callouts (API-NOTES §11c).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return o
}
