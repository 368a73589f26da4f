// Package web is billsync's HTTP surface: the JSON API under /api/v1, health
// and readiness probes, and (in later files) the admin page and Zuora webhooks.
// Handlers decode, call a service and map the error; they never touch gorm.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// Store is what the API handlers need from storage.
type Store interface {
	UpsertPlan(ctx context.Context, p engine.Plan) (engine.Plan, bool, error)
	GetPlan(ctx context.Context, id string) (engine.Plan, error)
	ListPlans(ctx context.Context, o store.ListOptions) (store.Page[engine.Plan], error)
	ArchivePlan(ctx context.Context, id string) (engine.Plan, error)
	UpsertCustomer(ctx context.Context, c engine.Customer) (engine.Customer, bool, error)
	GetCustomer(ctx context.Context, id string) (engine.Customer, error)
	ListCustomers(ctx context.Context, o store.ListOptions) (store.Page[engine.Customer], error)
	ArchiveCustomer(ctx context.Context, id string) (engine.Customer, error)
	UpsertSubscription(ctx context.Context, s engine.Subscription) (engine.Subscription, bool, error)
	GetSubscription(ctx context.Context, id string) (engine.Subscription, error)
	ListSubscriptions(ctx context.Context, o store.ListOptions) (store.Page[engine.Subscription], error)
	GetSyncRecord(ctx context.Context, kind, id string) (store.SyncRecord, error)
	SetScheduledChange(ctx context.Context, id string, c *engine.ScheduledChange) (engine.Subscription, bool, error)
	Now() time.Time
	GrantCredit(ctx context.Context, c engine.Credit) (engine.Credit, bool, error)
	ListCredits(ctx context.Context, customerID string) ([]engine.Credit, error)
	Ready(ctx context.Context) error
}

// Options configures the HTTP handler.
type Options struct {
	// Inbound enables the Zuora webhooks and the inbox, pull, link and grant API
	// (nil: routes absent); Webhooks is how callouts authenticate.
	Inbound  Inbound
	Webhooks WebhookAuth
	// Events enables the event feed and the webhook endpoint API (nil: routes absent).
	Events Events

	Store        Store
	Logger       zerolog.Logger
	APIKey       string
	MaxBodyBytes int64
	Version      string
	// Sync and Mappings enable the sync-record and mapping API; Kick wakes the workers after a retry.
	Sync     SyncService
	Mappings MappingService
	Kick     func()
	// Paused, when it reports true, makes /readyz answer 503: Zuora refuses
	// billsync's credentials and sync work is paused.
	Paused func() (bool, string)
	// Preview enables POST /api/v1/subscriptions/{id}/preview (Zuora's
	// invoice previews); nil: route absent.
	Preview Previewer
	// Usage enables the usage API (POST /usage, GET and sync-usage per subscription); nil: routes absent.
	Usage UsageService
	// Admin serves the /admin pages (package web/admin); nil: routes absent.
	Admin AdminPages
	// Connection enables GET/PUT/DELETE /api/v1/zuora/connection, the Zuora
	// connection the admin page's settings keep; nil: routes absent.
	Connection ConnectionService
	// Metrics serves GET /metrics (Prometheus text format, no API key, like
	// /healthz: expose it only where scrapers can reach it); nil: route absent.
	Metrics http.Handler
	// ZuoraSim is the built-in Zuora simulator, served under ZuoraSimPrefix
	// (nil: not mounted).
	ZuoraSim http.Handler

	// AllowedHosts are the Host names served (DNS-rebinding defence; "*":
	// any); the probes and /metrics answer any Host. Nil: no check.
	AllowedHosts []string
	// TrustedOrigins are origins besides the request's own host allowed to
	// send state-changing requests (e.g. the public URL behind a proxy that
	// rewrites Host), as scheme://host[:port].
	TrustedOrigins []string
	// TrustedProxies are the proxy IPs or CIDRs whose X-Forwarded-For gives
	// the client address (access logs, login throttling); nil: none.
	TrustedProxies []string
}

// AdminPages registers the admin page's routes.
type AdminPages interface {
	Register(r gin.IRouter)
}

const (
	ctxRequestID = "requestID"
	ctxLogger    = "logger"
)

// Server holds the handler's dependencies.
type Server struct {
	opts   Options
	engine *gin.Engine
	cop    *http.CrossOriginProtection
}

// New builds the HTTP handler.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	g.HandleMethodNotAllowed = true
	if err := g.SetTrustedProxies(opts.TrustedProxies); err != nil {
		opts.Logger.Error().Err(err).Msg("trusted proxies refused: trusting none")
		_ = g.SetTrustedProxies(nil)
	}
	s := &Server{opts: opts, engine: g, cop: http.NewCrossOriginProtection()}
	for _, o := range opts.TrustedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			opts.Logger.Error().Err(err).Str("origin", o).Msg("trusted origin refused")
		}
	}
	g.Use(s.requestContext, s.recoverer, s.securityHeaders, s.checkHost, s.checkOrigin, checkParams)
	g.NoRoute(func(c *gin.Context) {
		if nf, ok := opts.Admin.(interface{ NotFound(*gin.Context) }); ok && (c.Request.URL.Path == "/admin" || strings.HasPrefix(c.Request.URL.Path, "/admin/")) {
			nf.NotFound(c) // the admin page's own 404, with its navigation
			return
		}
		writeProblem(c, Problem{Title: "Not found", Status: http.StatusNotFound, Detail: "no route " + c.Request.Method + " " + c.Request.URL.Path})
	})
	g.NoMethod(func(c *gin.Context) {
		writeProblem(c, Problem{Title: "Method not allowed", Status: http.StatusMethodNotAllowed, Detail: c.Request.Method + " is not allowed on " + c.Request.URL.Path})
	})
	g.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok", "version": opts.Version}) })
	g.GET("/readyz", s.ready)
	g.GET("/api/v1/openapi.json", s.openAPIJSON)
	if opts.Metrics != nil {
		g.GET("/metrics", gin.WrapH(opts.Metrics))
	}

	api := g.Group("/api/v1", s.limitBody, s.requireAPIKey, requireJSONBody)
	if opts.Inbound != nil {
		s.registerInbound(g, api)
	}
	if opts.Events != nil {
		s.registerEvents(api)
	}
	api.PUT("/plans/:id", s.putPlan)
	api.GET("/plans/:id", s.getPlan)
	api.GET("/plans", s.listPlans)
	api.DELETE("/plans/:id", s.archivePlan)
	api.PUT("/customers/:id", s.putCustomer)
	api.GET("/customers/:id", s.getCustomer)
	api.GET("/customers", s.listCustomers)
	api.DELETE("/customers/:id", s.archiveCustomer)
	api.POST("/customers/:id/credits", s.postCredit)
	api.GET("/customers/:id/credits", s.listCredits)
	api.PUT("/subscriptions/:id", s.putSubscription)
	api.GET("/subscriptions/:id", s.getSubscription)
	api.PUT("/subscriptions/:id/scheduled-change", s.putScheduledChange)
	api.DELETE("/subscriptions/:id/scheduled-change", s.deleteScheduledChange)
	api.GET("/subscriptions", s.listSubscriptions)
	if cs, ok := opts.Store.(CouponStore); ok {
		s.registerCoupons(api, cs)
	}
	if opts.Preview != nil {
		api.POST("/subscriptions/:id/preview", s.previewSubscription)
	}
	if opts.Sync != nil && opts.Mappings != nil {
		s.registerSync(api)
	}
	if opts.Usage != nil {
		s.registerUsage(api)
	}
	if opts.Connection != nil {
		s.registerConnection(api)
	}
	if opts.Admin != nil {
		opts.Admin.Register(g)
	}
	if opts.ZuoraSim != nil {
		s.registerZuoraSim(g)
	}
	return s
}

// Gin exposes the router so other parts of package web can add routes.
func (s *Server) Gin() *gin.Engine { return s.engine }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) requestContext(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	l := s.opts.Logger.With().Str("request_id", id).Logger()
	c.Set(ctxLogger, l)
	start := time.Now()
	c.Next()
	ev := l.Info()
	if p := c.Request.URL.Path; p == "/readyz" || p == "/healthz" || strings.HasPrefix(p, ZuoraSimPrefix+"/") {
		ev = l.Debug() // probes and billsync's own calls to the built-in simulator
	}
	ev.Str("method", c.Request.Method).Str("path", c.Request.URL.Path).Int("status", c.Writer.Status()).
		Int("bytes", c.Writer.Size()).Stringer("duration", time.Since(start)).Str("remote", c.ClientIP()).Msg("http request")
}

func logger(c *gin.Context) *zerolog.Logger {
	if l, ok := c.Get(ctxLogger); ok {
		lg := l.(zerolog.Logger)
		return &lg
	}
	nop := zerolog.Nop()
	return &nop
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			logger(c).Error().Interface("panic", r).Msg("handler panicked")
			writeProblem(c, Problem{Title: "Internal error", Status: http.StatusInternalServerError, Detail: "the request failed"})
		}
	}()
	c.Next()
}

func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	c.Next()
}

// checkHost refuses a Host name not configured (a DNS-rebinding page reaches
// a loopback listener under its own name), except on the probes and /metrics.
func (s *Server) checkHost(c *gin.Context) {
	if s.opts.AllowedHosts == nil || hostAllowed(c.Request.Host, s.opts.AllowedHosts) {
		c.Next()
		return
	}
	switch c.Request.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
			c.Next()
			return
		}
	}
	logger(c).Warn().Str("host", c.Request.Host).Msg("request for a host name not allowed")
	writeProblem(c, Problem{Type: problemBase + "host-not-allowed", Title: "Host not allowed", Status: http.StatusMisdirectedRequest,
		Detail: "this server does not answer for that host name; add it to BILLSYNC_ALLOWED_HOSTS (or set BILLSYNC_PUBLIC_URL)"})
}

func hostAllowed(host string, allowed []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(host, strings.TrimSuffix(a, ".")) {
			return true
		}
	}
	return false
}

// checkOrigin refuses state-changing requests a browser sends cross-site
// (Sec-Fetch-Site, else Origin against Host): a page in the operator's
// browser can neither post to the API nor submit the admin forms. Requests
// without either header (curl, Zuora's callouts) pass.
func (s *Server) checkOrigin(c *gin.Context) {
	if err := s.cop.Check(c.Request); err != nil {
		logger(c).Warn().Str("origin", c.GetHeader("Origin")).Str("sec_fetch_site", c.GetHeader("Sec-Fetch-Site")).Msg("cross-origin request refused")
		writeProblem(c, Problem{Type: problemBase + "cross-origin", Title: "Cross-origin request refused", Status: http.StatusForbidden,
			Detail: "state-changing requests must come from billsync's own pages or from a non-browser client"})
		return
	}
	c.Next()
}

// requireJSONBody answers 415 to an API request whose body is not
// application/json (a browser can send text/plain or no type cross-site
// without a preflight).
func requireJSONBody(c *gin.Context) {
	if c.Request.ContentLength != 0 && c.Request.Body != nil && c.Request.Body != http.NoBody && c.ContentType() != "application/json" {
		writeProblem(c, Problem{Type: problemBase + "unsupported-media-type", Title: "Unsupported media type",
			Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json (Content-Type: application/json)"})
		return
	}
	c.Next()
}

func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.opts.MaxBodyBytes {
		writeProblem(c, Problem{Type: problemBase + "too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: "the body must be at most " + strconv.FormatInt(s.opts.MaxBodyBytes, 10) + " bytes"})
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.opts.MaxBodyBytes)
	c.Next()
}

// checkParams refuses path and query parameters that are not valid UTF-8
// or hold NUL bytes (the databases cannot store or compare them), naming
// the parameter, before any handler reads them.
func checkParams(c *gin.Context) {
	for _, p := range c.Params {
		if msg := engine.CheckText(p.Value); msg != "" {
			badRequest(c, p.Key, msg)
			return
		}
	}
	if c.Request.URL.RawQuery != "" {
		for k, vs := range c.Request.URL.Query() {
			msg := engine.CheckText(k)
			for _, v := range vs {
				if msg == "" {
					msg = engine.CheckText(v)
				}
			}
			if msg != "" {
				badRequest(c, k, msg)
				return
			}
		}
	}
	c.Next()
}

func (s *Server) requireAPIKey(c *gin.Context) {
	if s.opts.APIKey == "" {
		c.Next()
		return
	}
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.APIKey)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="billsync"`)
		writeProblem(c, Problem{Type: problemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "send Authorization: Bearer <BILLSYNC_API_KEY>"})
		return
	}
	c.Next()
}

func (s *Server) ready(c *gin.Context) {
	if err := s.opts.Store.Ready(c.Request.Context()); err != nil {
		// The probe is unauthenticated: the cause goes to the log only.
		logger(c).Error().Err(err).Msg("not ready")
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable",
			"error": "the database is unreachable or has pending migrations; see the server log for request id " + c.GetString(ctxRequestID)})
		return
	}
	if s.opts.Paused != nil {
		if paused, _ := s.opts.Paused(); paused {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "paused",
				"error": "Zuora refuses billsync's credentials: sync work is paused until they are fixed (see the admin page)"})
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
