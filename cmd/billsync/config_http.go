package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// HTTPConfig bounds what one client can hold of serve's HTTP server and says
// which names, origins and proxies the server trusts.
type HTTPConfig struct {
	// ReadTimeout bounds reading a whole request (headers and body): a body
	// sent a byte at a time is cut off when it lapses.
	ReadTimeout time.Duration
	// WriteTimeout bounds a handler and writing its response.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long.
	IdleTimeout time.Duration
	// MaxConnections bounds open connections (further ones wait in the
	// listen backlog), hence the goroutines clients can hold.
	MaxConnections int
	// PublicURL is the address people and Zuora use (e.g. https://billsync.example.com):
	// its host is an allowed Host, its origin an allowed Origin, and https
	// makes the admin cookies Secure.
	PublicURL string
	// AllowedHosts are the Host names accepted (DNS-rebinding defence); empty:
	// the public URL's host, the listen host and the loopback names.
	AllowedHosts []string
	// TrustedProxies are the proxies (IPs or CIDRs) whose X-Forwarded-For is
	// believed; none by default.
	TrustedProxies []string
}

func defaultHTTPConfig() HTTPConfig {
	return HTTPConfig{ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxConnections: 1000}
}

func (c *HTTPConfig) settings() []setting {
	return []setting{
		{"BILLSYNC_HTTP_READ_TIMEOUT", "http-read-timeout", "longest time to read one request, headers and body (a slower client is cut off)", &c.ReadTimeout},
		{"BILLSYNC_HTTP_WRITE_TIMEOUT", "http-write-timeout", "longest time to handle a request and write its response", &c.WriteTimeout},
		{"BILLSYNC_HTTP_IDLE_TIMEOUT", "http-idle-timeout", "how long an idle keep-alive connection stays open", &c.IdleTimeout},
		{"BILLSYNC_HTTP_MAX_CONNECTIONS", "http-max-connections", "open HTTP connections at most (more wait to be accepted)", &c.MaxConnections},
		{"BILLSYNC_PUBLIC_URL", "public-url", "the URL people and Zuora reach billsync at, e.g. https://billsync.example.com (allowed host and origin; https makes cookies Secure)", &c.PublicURL},
		{"BILLSYNC_ALLOWED_HOSTS", "allowed-hosts", "comma-separated Host names accepted (default: the public URL's host, the listen host, localhost, 127.0.0.1, ::1; * accepts any)", (*stringList)(&c.AllowedHosts)},
		{"BILLSYNC_TRUSTED_PROXIES", "trusted-proxies", "comma-separated proxy IPs or CIDRs whose X-Forwarded-For is believed (default: none)", (*stringList)(&c.TrustedProxies)},
	}
}

// stringList is a comma-separated setting.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = nil
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func (c *HTTPConfig) validate() error {
	for _, d := range []struct {
		env string
		v   time.Duration
	}{{"BILLSYNC_HTTP_READ_TIMEOUT", c.ReadTimeout}, {"BILLSYNC_HTTP_WRITE_TIMEOUT", c.WriteTimeout}, {"BILLSYNC_HTTP_IDLE_TIMEOUT", c.IdleTimeout}} {
		if d.v < 100*time.Millisecond || d.v > time.Hour {
			return fmt.Errorf("config: %s %s must be between 100ms and 1h", d.env, d.v)
		}
	}
	if c.MaxConnections < 1 || c.MaxConnections > 100_000 {
		return fmt.Errorf("config: BILLSYNC_HTTP_MAX_CONNECTIONS %d must be between 1 and 100000", c.MaxConnections)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("config: BILLSYNC_PUBLIC_URL %q must be an http:// or https:// URL such as https://billsync.example.com", c.PublicURL)
		}
	}
	for _, h := range c.AllowedHosts {
		if strings.ContainsAny(h, "/@ ") {
			return fmt.Errorf("config: BILLSYNC_ALLOWED_HOSTS: %q must be a host name, e.g. billsync.example.com", h)
		}
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return fmt.Errorf("config: BILLSYNC_TRUSTED_PROXIES: %q must be an IP address or a CIDR such as 10.0.0.0/8", p)
			}
		}
	}
	return nil
}

// publicHTTPS reports whether the public URL is https (cookies get Secure).
func (c *HTTPConfig) publicHTTPS() bool {
	return strings.HasPrefix(strings.ToLower(c.PublicURL), "https://")
}

// trustedOrigins is the public URL's origin (a proxy may rewrite Host).
func (c *HTTPConfig) trustedOrigins() []string {
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}

// allowedHosts is the Host allow-list: the configured one, else the public
// URL's host, the listen host (unless a wildcard) and the loopback names.
func (c *HTTPConfig) allowedHosts(addr string) []string {
	if len(c.AllowedHosts) > 0 {
		return c.AllowedHosts
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
