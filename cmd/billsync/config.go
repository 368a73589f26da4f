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
}

// setting is one configuration value: its variable, its flag, and where it goes.
type setting struct {
	env, flag, help string
	target          any // *string, *bool, *int64 or *time.Duration
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
	}, c.InboundConfig.settings()...)
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
	}
	return nil
}

func (s setting) bind(fs *flag.FlagSet) {
	help := s.help + " (env " + s.env + ")"
	switch p := s.target.(type) {
	case *string:
		fs.StringVar(p, s.flag, *p, help)
	case *bool:
		fs.BoolVar(p, s.flag, *p, help)
	case *int64:
		fs.Int64Var(p, s.flag, *p, help)
	case *int:
		fs.IntVar(p, s.flag, *p, help)
	case *time.Duration:
		fs.DurationVar(p, s.flag, *p, help)
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
	if c.APIKey != "" && len(c.APIKey) < 16 {
		return errors.New("config: BILLSYNC_API_KEY must be at least 16 characters")
	}
	return c.InboundConfig.validate()
}

// CheckListen refuses to serve an unauthenticated API on a non-loopback address.
func (c *Config) CheckListen() error {
	if c.APIKey != "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("config: refusing to listen on %s without BILLSYNC_API_KEY: anyone on the network could change billing data. Set BILLSYNC_API_KEY, or listen on 127.0.0.1", c.Addr)
}

func newLogger(c Config) zerolog.Logger {
	lvl, _ := zerolog.ParseLevel(c.LogLevel)
	var l zerolog.Logger
	if c.LogFormat == "console" {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(lvl).With().Timestamp().Logger()
}
