// Package admin is billsync's admin page at /admin: server-rendered HTML from
// html/template with templates and assets embedded in the binary, a login with
// the admin password into a signed session cookie, a CSRF token on every form,
// and the pages people use when a sync goes wrong (dashboard, sync records,
// entity detail with usage, mappings, callout inbox, settings).
//
// Handlers read and act through small interfaces (the store, the mapping
// store, the inbound service, the usage ledger, the switches, the Zuora
// client); they never touch gorm.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/mappings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Store is what the pages read from and do to billsync's store (*store.DB).
type Store interface {
	SyncCounts(ctx context.Context) (map[string]map[string]int64, error)
	SyncRecordByID(ctx context.Context, id int64) (store.SyncRecord, error)
	GetSyncRecord(ctx context.Context, kind, id string) (store.SyncRecord, error)
	SyncHistory(ctx context.Context, recordID int64, limit int) ([]store.SyncAttempt, error)
	Timeline(ctx context.Context, q store.TimelineQuery) ([]store.TimelineEvent, error)
	Retry(ctx context.Context, id int64) (store.SyncRecord, error)
	RetryAll(ctx context.Context, kind string) (int64, error)
	RetryProblem(ctx context.Context, id int64) (store.SyncRecord, bool, error)
	RetryState(ctx context.Context, kind, state string) (int64, error)
	EnqueueDriftChecksNow(ctx context.Context) (int64, error)
	QueryRecords(ctx context.Context, q store.RecordQuery) (store.RecordPage, error)
	ErrorCodes(ctx context.Context) ([]string, error)
	Search(ctx context.Context, q string, limit int) ([]store.SearchHit, error)
	SyncActivity(ctx context.Context, since time.Time) ([]store.HourCount, error)
	SyncLag(ctx context.Context, since time.Time) ([]store.HourLag, error)
	OldestDue(ctx context.Context) (time.Time, bool, error)
	ClaimAges(ctx context.Context) (time.Time, bool, int64, error)
	LastJobRuns(ctx context.Context) (map[string]store.JobRun, error)
	GetPlan(ctx context.Context, id string) (engine.Plan, error)
	GetCustomer(ctx context.Context, id string) (engine.Customer, error)
	GetSubscription(ctx context.Context, id string) (engine.Subscription, error)
	ListSubscriptions(ctx context.Context, o store.ListOptions) (store.Page[engine.Subscription], error)
	ListCredits(ctx context.Context, customerID string) ([]engine.Credit, error)
	GetCredit(ctx context.Context, id string) (engine.Credit, error)

	// Sessions: the signing key and the server-side session table.
	Secret(ctx context.Context, name string, n int) ([]byte, error)
	CreateAdminSession(ctx context.Context, s store.AdminSession) error
	AdminSessionByID(ctx context.Context, id string) (store.AdminSession, error)
	DeleteAdminSession(ctx context.Context, id string) error
	EndAdminSessionsExcept(ctx context.Context, fp string) (int64, error)
}

// Mappings lists id mappings (*mappings.Store).
type Mappings interface {
	List(ctx context.Context, o mappings.ListOptions) ([]mappings.Mapping, string, error)
}

// Inbox is the callout inbox (*inbound.Service).
type Inbox interface {
	RecentInbox(ctx context.Context, f inbound.RecentFilter) ([]inbound.InboxEntry, int64, error)
	RetryInbox(ctx context.Context, id int64) (inbound.InboxEntry, error)
	InboxCounts(ctx context.Context) (map[string]int64, error)
}

// Usage is the usage ledger (*usage.Ledger); the button runs the same Sync as the API.
type Usage interface {
	Windows(ctx context.Context, subID string, f usage.WindowFilter) ([]usage.Window, error)
	Sync(ctx context.Context, o usage.SyncOptions) (*usage.Report, error)
	Stats(ctx context.Context) (usage.Stats, error)
}

// Switches are the persisted sync switches (*switches.Switches).
type Switches interface {
	Snapshot() map[string]bool
	Set(ctx context.Context, name string, on bool) error
}

// Zuora is the Zuora client (*zuora.Client): the connection test and UI links.
type Zuora interface {
	TestConnection(ctx context.Context) error
	AccountURL(id string) string
	SubscriptionURL(id string) string
	ProductURL(id string) string
}

// TenantChecker lists what the Zuora tenant lacks (*inbound.Service).
type TenantChecker interface {
	CheckTenant(ctx context.Context) (zuora.TenantReport, error)
}

// Schedule is the job scheduler (*schedule.Scheduler).
type Schedule interface {
	Jobs() []string
	Next() map[string]time.Time
	IsLeader() bool
}

// Connection describes the Zuora the service talks to.
type Connection struct {
	Environment string // "Sandbox (US)", "built-in simulator", …
	BaseURL     string
	// LastCall returns the time and operation of Zuora's last successful call (zero: none yet).
	LastCall func() (time.Time, string)
	// Paused reports that work is paused because Zuora refused billsync's
	// credentials, with Zuora's message (nil: never).
	Paused func() (bool, string)
	// SimulatorURL is the built-in simulator's index page ("" without one).
	SimulatorURL string
	// World reports what billsync found at start about the tenant (mapped
	// objects missing: reset or replaced); "" when all is well.
	World func() string
}

// Previewer asks Zuora for a subscription's next invoice (outbound.Reconcilers.Preview).
type Previewer interface {
	Preview(ctx context.Context, subID string, proposed *engine.Subscription, through string) (engine.Preview, error)
}

// Options configures the admin page. Store and Mappings are required; the
// other sources are optional and their sections say "not configured" when nil.
type Options struct {
	// Password is BILLSYNC_ADMIN_PASSWORD (or the API key). Empty: the page
	// needs no login and answers only on a loopback listener.
	Password string
	// Secrets are values never rendered (Zuora client secret, webhook
	// password, API key, …): any occurrence in a message or payload is masked.
	Secrets []string

	Store      Store
	Mappings   Mappings
	Inbox      Inbox
	Usage      Usage
	Switches   Switches
	Zuora      Zuora
	Connection Connection
	Schedule   Schedule
	// Tenant checks the Zuora tenant (the "Check tenant" button); nil hides it.
	Tenant TenantChecker
	// Settings keeps the Zuora connection entered on the settings page; nil
	// hides the form.
	Settings ConnectionSettings
	// Callouts sets up and removes billsync's callouts in the tenant, with
	// CalloutSetup (public URL, webhook user and password from the
	// configuration; the page may give the public URL).
	Callouts     Callouts
	CalloutSetup inbound.CalloutSetup
	// Events serves the webhooks page (endpoints, delivery log, resend); nil hides it.
	Events Events
	// Billing adds invoices, payment status and access to the customer page; nil hides them.
	Billing Billing
	// Preview adds Zuora's next-invoice preview to the subscription page; nil hides it.
	Preview Previewer
	// Kick wakes the sync workers after a retry.
	Kick   func()
	Logger zerolog.Logger
	// SessionTTL is how long a login lasts (default 12 h).
	SessionTTL time.Duration
	// SecureCookies marks the cookies Secure (the public URL is https); they
	// are also Secure on a TLS request.
	SecureCookies bool
	Now           func() time.Time
}

// Admin serves /admin.
type Admin struct {
	opts    Options
	open    bool
	key     []byte // CSRF and login-form signing key (random, in the database)
	fp      string // the password's fingerprint on its sessions
	pages   map[string]*template.Template
	assetV  string
	secrets []string

	failMu   sync.Mutex
	failures map[string][]time.Time // failed logins of the last minute per client
}

// New parses the templates, reads (or creates) the signing key and ends the
// sessions of another password.
func New(opts Options) (*Admin, error) {
	if opts.Store == nil || opts.Mappings == nil {
		return nil, errors.New("admin: Store and Mappings are required")
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Admin{opts: opts, open: opts.Password == "", failures: map[string][]time.Time{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if a.key, err = opts.Store.Secret(ctx, secretName, 32); err != nil {
		return nil, fmt.Errorf("admin: session key: %w", err)
	}
	if a.fp, err = passwordFingerprint(a.key, opts.Password); err != nil {
		return nil, err
	}
	if n, err := opts.Store.EndAdminSessionsExcept(ctx, a.fp); err != nil {
		return nil, fmt.Errorf("admin: sessions: %w", err)
	} else if n > 0 {
		opts.Logger.Info().Int64("sessions", n).Msg("admin sessions of another password or expired ended")
	}
	for _, s := range append([]string{opts.Password}, opts.Secrets...) {
		if len(s) >= 4 {
			a.secrets = append(a.secrets, s)
		}
	}
	if err := a.parseTemplates(); err != nil {
		return nil, err
	}
	h := sha256.New()
	_ = fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := assetFS.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	a.assetV = hex.EncodeToString(h.Sum(nil))[:10]
	return a, nil
}

// Open reports whether the page needs no login (no password configured).
func (a *Admin) Open() bool { return a.open }

// Register adds the /admin routes to r.
func (a *Admin) Register(r gin.IRouter) {
	g := r.Group("/admin", a.headers)
	g.GET("/assets/*file", a.asset)
	g.GET("/login", a.loginPage)
	g.POST("/login", a.limitForm, a.login)

	p := g.Group("", a.authenticate)
	p.GET("", a.dashboard)
	p.GET("/search", a.search)
	p.GET("/sync-records", a.syncRecords)
	p.GET("/sync-records/:rid", a.syncRecord)
	p.GET("/entities/:kind/*id", a.entity)
	p.GET("/mappings", a.mappingsPage)
	p.GET("/inbox", a.inboxPage)
	p.GET("/settings", a.settingsPage)
	p.GET("/webhooks", a.webhooksPage)
	p.GET("/webhooks/:id", a.webhooksPage)

	post := p.Group("", a.limitForm, a.checkCSRF)
	post.POST("/logout", a.logout)
	post.POST("/zuora/test", a.testConnection)
	post.POST("/zuora/check", a.checkTenant)
	post.POST("/zuora/connection", a.saveConnection)
	post.POST("/zuora/callouts", a.setupCallouts)
	post.POST("/zuora/remove", a.removeIntegration)
	post.POST("/sync-records/:rid/retry", a.retryRecord)
	post.POST("/sync-records/retry-all", a.retryAll)
	post.POST("/sync-records/drift-check", a.driftCheck)
	post.POST("/subscriptions/:id/sync-usage", a.syncUsage)
	post.POST("/inbox/:id/retry", a.retryInbox)
	post.POST("/settings", a.saveSettings)
	post.POST("/webhooks", a.createEndpoint)
	post.POST("/webhooks/:id/delete", a.deleteEndpoint)
	post.POST("/webhooks/:id/deliveries/:did/resend", a.resendDelivery)
}

// headers sets the security headers of every admin response.
func (a *Admin) headers(c *gin.Context) {
	a.setHeaders(c)
	c.Next()
}

func (a *Admin) setHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(c.Request.URL.Path, "/admin/assets/") {
		h.Set("Cache-Control", "no-store")
	}
}

// limitForm caps form bodies at 64 KiB.
func (a *Admin) limitForm(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)
	c.Next()
}

func (a *Admin) asset(c *gin.Context) {
	name := path.Clean("assets/" + strings.TrimPrefix(c.Param("file"), "/"))
	b, err := assetFS.ReadFile(name)
	if err != nil || !strings.HasPrefix(name, "assets/") {
		c.String(http.StatusNotFound, "not found")
		return
	}
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	}
	c.Header("Cache-Control", "public, max-age=86400")
	c.Data(http.StatusOK, ct, b)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logger returns the request's logger (set by package web) or the configured one.
func (a *Admin) logger(c *gin.Context) *zerolog.Logger {
	if l, ok := c.Get("logger"); ok {
		if lg, ok := l.(zerolog.Logger); ok {
			return &lg
		}
	}
	return &a.opts.Logger
}

// fail renders an error page for err: 404 for unknown things, 409 for
// conflicts, 500 (logged, message hidden) otherwise.
func (a *Admin) fail(c *gin.Context, err error) {
	var nf *engine.NotFoundError
	var ce *engine.ConflictError
	switch {
	case errors.As(err, &nf), errors.Is(err, engine.ErrNotFound), errors.Is(err, mappings.ErrNotFound):
		a.errorPage(c, http.StatusNotFound, "Not found", "billsync has no such thing: "+a.redact(err.Error())+".")
	case errors.As(err, &ce):
		a.errorPage(c, http.StatusConflict, "Conflict", a.redact(err.Error()))
	default:
		a.logger(c).Error().Err(err).Str("path", c.Request.URL.Path).Msg("admin page failed")
		a.errorPage(c, http.StatusInternalServerError, "Something went wrong on our side", fmt.Sprintf("billsync could not finish this request. The details are in the server log under request id %s.", c.GetString("requestID")))
	}
}
