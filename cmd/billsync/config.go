package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
)

// Config is billsync's whole configuration: defaults, then BILLSYNC_* environment
// variables, then command-line flags. Validate names the bad setting.
type Config struct {
	Addr            string
	DatabaseURL     string
	APIKey          string
	AdminPassword   string
	LogLevel        string
	LogFormat       string
	MigrateOnStart  bool
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	InboundConfig   // Zuora callouts (config_inbound.go)
	ScaleConfig     // several replicas (config_scale.go)
	HTTPConfig      // HTTP server bounds, hosts, origins, proxies (config_http.go)
	UsageConfig     // usage upload (config_usage.go)

	// Zuora. With no base URL, billsync starts its built-in Zuora simulator.
	ZuoraBaseURL      string
	ZuoraClientID     string
	ZuoraClientSecret string
	ZuoraAllowAnyURL  bool
	// SecretKey seals the Zuora client secret entered on the admin page.
	SecretKey            string
	ZuoraConcurrency     int
	ZuoraRequestsPerMin  int
	ZuoraVersion         string
	ZuoraIDField         string
	ZuoraUnitMap         string
	ZuoraAccountPrefix   string
	ZuoraSubscriptionPfx string
	ZuoraCreditChargeID  string

	// Sync engine.
	SyncWorkers       int
	SyncMaxAttempts   int
	SyncCatalog       bool
	SyncCustomers     bool
	SyncSubscriptions bool
	SyncUsage         bool
	SyncInbound       bool
	ReplicaID         string
}

// setting is one configuration value: its variable, its flag, and where it goes.
type setting struct {
	env, flag, help string
	target          any // *string, *bool, *int, *int64, *time.Duration or a flag.Value
}

func (c *Config) settings() []setting {
	return append([]setting{
		{"BILLSYNC_ADDR", "addr", "HTTP listen address", &c.Addr},
		{"BILLSYNC_DATABASE_URL", "database-url", "postgres://… URL, or a SQLite file path", &c.DatabaseURL},
		{"BILLSYNC_API_KEY", "api-key", "bearer key required on /api/v1 (required unless listening on loopback)", &c.APIKey},
		{"BILLSYNC_ADMIN_PASSWORD", "admin-password", "password of the /admin page (defaults to the API key)", &c.AdminPassword},
		{"BILLSYNC_LOG_LEVEL", "log-level", "trace, debug, info, warn or error", &c.LogLevel},
		{"BILLSYNC_LOG_FORMAT", "log-format", "json or console", &c.LogFormat},
		{"BILLSYNC_MIGRATE_ON_START", "migrate", "apply pending migrations when serve starts", &c.MigrateOnStart},
		{"BILLSYNC_MAX_BODY_BYTES", "max-body-bytes", "largest accepted request body", &c.MaxBodyBytes},
		{"BILLSYNC_SHUTDOWN_TIMEOUT", "shutdown-timeout", "how long a graceful shutdown may take", &c.ShutdownTimeout},
		{"BILLSYNC_ZUORA_BASE_URL", "zuora-base-url", "Zuora REST base URL, e.g. https://rest.test.zuora.com (empty: the built-in simulator)", &c.ZuoraBaseURL},
		{"BILLSYNC_ZUORA_CLIENT_ID", "zuora-client-id", "Zuora OAuth client id", &c.ZuoraClientID},
		{"BILLSYNC_ZUORA_CLIENT_SECRET", "zuora-client-secret", "Zuora OAuth client secret", &c.ZuoraClientSecret},
		{"BILLSYNC_ZUORA_ALLOW_ANY_URL", "zuora-allow-any-url", "accept a base URL that is not a known Zuora environment (e.g. a standalone simulator)", &c.ZuoraAllowAnyURL},
		{"BILLSYNC_SECRET_KEY", "secret-key", "key (at least 32 characters) that encrypts the Zuora client secret entered on the admin page (empty: the page cannot store a connection)", &c.SecretKey},
		{"BILLSYNC_ZUORA_CONCURRENCY", "zuora-concurrency", "the tenant's concurrency limit (in-flight calls)", &c.ZuoraConcurrency},
		{"BILLSYNC_ZUORA_REQUESTS_PER_MINUTE", "zuora-requests-per-minute", "the tenant's per-minute request budget", &c.ZuoraRequestsPerMin},
		{"BILLSYNC_ZUORA_VERSION", "zuora-version", "Zuora-Version header (default: the client's pinned version)", &c.ZuoraVersion},
		{"BILLSYNC_ZUORA_ID_FIELD", "zuora-id-field", "custom field holding billsync's id on Zuora objects", &c.ZuoraIDField},
		{"BILLSYNC_ZUORA_UNIT_MAP", "zuora-unit-map", "plan unit of measure → Zuora unit, e.g. seat=License,call=Each (default: as written)", &c.ZuoraUnitMap},
		{"BILLSYNC_ZUORA_ACCOUNT_PREFIX", "zuora-account-prefix", "prefix of the account numbers billsync creates", &c.ZuoraAccountPrefix},
		{"BILLSYNC_ZUORA_SUBSCRIPTION_PREFIX", "zuora-subscription-prefix", "prefix of the subscription numbers billsync creates", &c.ZuoraSubscriptionPfx},
		{"BILLSYNC_ZUORA_CREDIT_CHARGE_ID", "zuora-credit-charge-id", "product rate plan charge credit memos are made from (default: billsync creates one)", &c.ZuoraCreditChargeID},
		{"BILLSYNC_SYNC_WORKERS", "sync-workers", "concurrent reconciles (and callout processors); at least BILLSYNC_ZUORA_CONCURRENCY to sync at Zuora's pace", &c.SyncWorkers},
		{"BILLSYNC_SYNC_MAX_ATTEMPTS", "sync-max-attempts", "failed attempts before a record is dead", &c.SyncMaxAttempts},
		{"BILLSYNC_SYNC_CATALOG", "sync-catalog", "sync plans and add-ons (initial value; the admin page can change it)", &c.SyncCatalog},
		{"BILLSYNC_SYNC_CUSTOMERS", "sync-customers", "sync customers to accounts (initial value)", &c.SyncCustomers},
		{"BILLSYNC_SYNC_SUBSCRIPTIONS", "sync-subscriptions", "sync subscriptions (initial value)", &c.SyncSubscriptions},
		{"BILLSYNC_SYNC_USAGE", "sync-usage", "upload usage (initial value)", &c.SyncUsage},
		{"BILLSYNC_SYNC_INBOUND", "sync-inbound", "process Zuora callouts (initial value)", &c.SyncInbound},
		{"BILLSYNC_REPLICA_ID", "replica-id", "this replica's name in leases and claims (default: random)", &c.ReplicaID},
	}, append(append(append(c.InboundConfig.settings(), c.ScaleConfig.settings()...), c.HTTPConfig.settings()...), c.UsageConfig.settings()...)...)
}

func (s setting) set(v string) error {
	switch p := s.target.(type) {
	case *string:
		*p = v
	case *bool:
		x, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*p = x
	case *int64:
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("must be an integer")
		}
		*p = x
	case *int:
		x, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("must be an integer")
		}
		*p = x
	case *time.Duration:
		x, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("must be a duration such as 30s or 5m")
		}
		*p = x
	case flag.Value:
		return p.Set(v)
	}
	return nil
}

// secretSettings are never shown as a flag's default in -h (the value may
// come from the environment); the database URL is shown redacted.
var secretSettings = map[string]func(string) string{
	"BILLSYNC_DATABASE_URL":        store.RedactURL,
	"BILLSYNC_API_KEY":             hideSecret,
	"BILLSYNC_ADMIN_PASSWORD":      hideSecret,
	"BILLSYNC_ZUORA_CLIENT_SECRET": hideSecret,
	"BILLSYNC_SECRET_KEY":          hideSecret,
	"BILLSYNC_WEBHOOK_PASSWORD":    hideSecret,
	"BILLSYNC_WEBHOOK_HMAC_SECRET": hideSecret,
}

func hideSecret(v string) string {
	if v == "" {
		return ""
	}
	return "(set)"
}

// shownString is a string flag whose default is printed through show.
type shownString struct {
	p    *string
	show func(string) string
}

func (v *shownString) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.show(*v.p)
}

func (v *shownString) Set(x string) error { *v.p = x; return nil }

func (s setting) bind(fs *flag.FlagSet) {
	help := s.help + " (env " + s.env + ")"
	switch p := s.target.(type) {
	case *string:
		if show, ok := secretSettings[s.env]; ok {
			fs.Var(&shownString{p: p, show: show}, s.flag, help)
			return
		}
		fs.StringVar(p, s.flag, *p, help)
	case *bool:
		fs.BoolVar(p, s.flag, *p, help)
	case *int64:
		fs.Int64Var(p, s.flag, *p, help)
	case *int:
		fs.IntVar(p, s.flag, *p, help)
	case *time.Duration:
		fs.DurationVar(p, s.flag, *p, help)
	case flag.Value:
		fs.Var(p, s.flag, help)
	}
}

// DefaultConfig is the configuration with nothing set: the embedded SQLite
// database on loopback.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DatabaseURL:     "./billsync.db",
		LogLevel:        "info",
		LogFormat:       "console",
		MigrateOnStart:  true,
		MaxBodyBytes:    1 << 20,
		ShutdownTimeout: 15 * time.Second,
		InboundConfig:   defaultInboundConfig(),
		ScaleConfig:     defaultScaleConfig(),
		HTTPConfig:      defaultHTTPConfig(),
		UsageConfig:     defaultUsageConfig(),

		ZuoraConcurrency:     40,
		ZuoraRequestsPerMin:  2500,
		ZuoraIDField:         "BillsyncId__c",
		ZuoraAccountPrefix:   "BS-",
		ZuoraSubscriptionPfx: "BS-",

		SyncWorkers:       40,
		SyncMaxAttempts:   8,
		SyncCatalog:       true,
		SyncCustomers:     true,
		SyncSubscriptions: true,
		SyncUsage:         true,
		SyncInbound:       true,
	}
}

// LoadEnv applies BILLSYNC_* variables from getenv.
func (c *Config) LoadEnv(getenv func(string) string) error {
	for _, s := range c.settings() {
		if v := getenv(s.env); v != "" {
			if err := s.set(v); err != nil {
				return fmt.Errorf("config: %s: %v", s.env, err)
			}
		}
	}
	return nil
}

// BindFlags registers every setting as a flag on fs (flags override the environment).
func (c *Config) BindFlags(fs *flag.FlagSet) {
	for _, s := range c.settings() {
		s.bind(fs)
	}
}

// Validate checks the configuration and names the first bad setting.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("config: BILLSYNC_ADDR %q must be host:port, e.g. 127.0.0.1:8080", c.Addr)
	}
	if c.DatabaseURL == "" {
		return errors.New("config: BILLSYNC_DATABASE_URL must be a postgres:// URL or a SQLite file path")
	}
	if strings.Contains(c.DatabaseURL, "://") && !store.IsPostgresURL(c.DatabaseURL) && !strings.HasPrefix(c.DatabaseURL, "sqlite://") {
		return fmt.Errorf("config: BILLSYNC_DATABASE_URL %q: only postgres:// URLs or SQLite paths are supported", store.RedactURL(c.DatabaseURL))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		return fmt.Errorf("config: BILLSYNC_LOG_LEVEL %q must be one of trace, debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("config: BILLSYNC_LOG_FORMAT %q must be json or console", c.LogFormat)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("config: BILLSYNC_MAX_BODY_BYTES %d must be between 1024 and 67108864", c.MaxBodyBytes)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("config: BILLSYNC_SHUTDOWN_TIMEOUT must be positive")
	}
	if c.ZuoraBaseURL != "" && (c.ZuoraClientID == "" || c.ZuoraClientSecret == "") {
		return errors.New("config: BILLSYNC_ZUORA_BASE_URL is set, so BILLSYNC_ZUORA_CLIENT_ID and BILLSYNC_ZUORA_CLIENT_SECRET are required")
	}
	if c.SecretKey != "" && len(c.SecretKey) < connection.MinKeyLength {
		return fmt.Errorf("config: BILLSYNC_SECRET_KEY must be at least %d characters", connection.MinKeyLength)
	}
	if c.ZuoraConcurrency < 1 || c.ZuoraConcurrency > 1000 {
		return fmt.Errorf("config: BILLSYNC_ZUORA_CONCURRENCY %d must be between 1 and 1000", c.ZuoraConcurrency)
	}
	if c.ZuoraRequestsPerMin < 1 {
		return fmt.Errorf("config: BILLSYNC_ZUORA_REQUESTS_PER_MINUTE %d must be positive", c.ZuoraRequestsPerMin)
	}
	if _, err := outbound.ParseUnitMap(c.ZuoraUnitMap); err != nil {
		return fmt.Errorf("config: BILLSYNC_ZUORA_UNIT_MAP: %w", err)
	}
	if !strings.HasSuffix(c.ZuoraIDField, "__c") {
		return fmt.Errorf("config: BILLSYNC_ZUORA_ID_FIELD %q must be a custom field name ending in __c", c.ZuoraIDField)
	}
	if c.SyncWorkers < 1 || c.SyncWorkers > 256 {
		return fmt.Errorf("config: BILLSYNC_SYNC_WORKERS %d must be between 1 and 256", c.SyncWorkers)
	}
	if c.SyncMaxAttempts < 1 {
		return fmt.Errorf("config: BILLSYNC_SYNC_MAX_ATTEMPTS %d must be positive", c.SyncMaxAttempts)
	}
	if c.APIKey != "" && len(c.APIKey) < 16 {
		return errors.New("config: BILLSYNC_API_KEY must be at least 16 characters")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 12 {
		return errors.New("config: BILLSYNC_ADMIN_PASSWORD must be at least 12 characters")
	}
	if err := c.ScaleConfig.validate(); err != nil {
		return err
	}
	if err := c.UsageConfig.validate(); err != nil {
		return err
	}
	if err := c.HTTPConfig.validate(); err != nil {
		return err
	}
	return c.InboundConfig.validate()
}

// CheckListen refuses to serve an unauthenticated API on a non-loopback address.
func (c *Config) CheckListen() error {
	if c.APIKey != "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	if isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("config: refusing to listen on %s without BILLSYNC_API_KEY: anyone on the network could change billing data. Set BILLSYNC_API_KEY, or listen on 127.0.0.1", c.Addr)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(c Config) zerolog.Logger {
	lvl, _ := zerolog.ParseLevel(c.LogLevel)
	var l zerolog.Logger
	if c.LogFormat == "console" {
		// Colours only on a terminal: a file or a pipe gets plain text.
		fi, err := os.Stderr.Stat()
		tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339, NoColor: !tty})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(lvl).With().Timestamp().Logger()
}
