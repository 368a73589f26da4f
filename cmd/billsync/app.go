package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/events"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/metrics"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/schedule"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/switches"
	ledger "github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/web"
	"github.com/billsync/billsync/web/admin"
)

// app is the whole service, wired from the configuration.
type app struct {
	cfg    Config
	log    zerolog.Logger
	db     *store.DB
	sim    *zuorasim.Sim // the built-in simulator, when no Zuora is configured
	simURL string        // its REST base URL (a private loopback port)
	simUI  string        // where its pages are (serve's listener, web.ZuoraSimPrefix)
	simSrv *http.Server  // the private listener
	// webhookPassword is the callouts' password: BILLSYNC_WEBHOOK_PASSWORD,
	// or on the built-in simulator one generated and kept in the database.
	webhookPassword string
	world           worldCheck
	zuora           *zuora.Client
	engineZ         Connector // a.zuora as the engine sees it (connector.go)
	switches        *switches.Switches
	outbound        *outbound.Reconcilers
	inbound         *inbound.Service
	events          *events.Service
	pool            *worker.Pool
	sched           *schedule.Scheduler
	usage           *ledger.Ledger
	web             *web.Server
	metrics         *metrics.Metrics
	conn            *connection.Manager
}

// newApp opens the database (migrating if configured), connects to Zuora (or
// starts the built-in simulator) and wires the engine and the HTTP handler.
// ln is serve's listener (the built-in simulator is mounted on it); nil for
// the CLI, which serves the simulator on a private loopback port.
func newApp(ctx context.Context, cfg Config, log zerolog.Logger, ln net.Listener, onOutcome func(store.SyncRecord, store.Outcome)) (*app, error) {
	a := &app{cfg: cfg, log: log, webhookPassword: cfg.WebhookPassword}
	db, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return nil, err
	}
	a.db = db
	if cfg.MigrateOnStart {
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			a.close()
			return nil, err
		}
		if len(applied) > 0 {
			log.Info().Ints64("versions", applied).Msg("migrations applied")
		}
	} else if err := db.Ready(ctx); err != nil {
		a.close()
		return nil, err
	}
	zcfg := zuora.Config{BaseURL: cfg.ZuoraBaseURL, AllowAnyBaseURL: cfg.ZuoraAllowAnyURL, ClientID: cfg.ZuoraClientID,
		ClientSecret: cfg.ZuoraClientSecret, Version: cfg.ZuoraVersion, ConcurrencyLimit: cfg.ZuoraConcurrency,
		RequestsPerMinute: cfg.ZuoraRequestsPerMin, UsageShare: float64(cfg.UsageZuoraShare) / 100}
	if cfg.ZuoraBaseURL == "" {
		if err := a.startSimulator(ctx, ln); err != nil {
			a.close()
			return nil, err
		}
		zcfg.BaseURL, zcfg.AllowAnyBaseURL, zcfg.UIRoot = a.simURL, true, a.simUI
		zcfg.ClientID, zcfg.ClientSecret = zuorasim.DefaultClientID, zuorasim.DefaultClientSecret
	}
	a.metrics = a.newMetrics(ctx)
	// Keep as many idle connections to Zuora as calls may be in flight, so a
	// full sync does not open a new TLS connection per call.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.ZuoraConcurrency
	zc, err := zuora.New(zcfg, log.With().Str("component", "zuora").Logger(), zuora.WithTransport(tr), zuora.WithCallObserver(a.metrics.ObserveCall))
	if err != nil {
		a.close()
		return nil, err
	}
	a.zuora, a.engineZ = zc, zc
	// A connection entered on the admin page is used when the environment
	// configures none (the environment wins); it replaces the built-in
	// simulator at once, here and (within connectionRefresh) on every replica.
	var sealer *connection.Sealer
	if cfg.SecretKey != "" {
		if sealer, err = connection.NewSealer(cfg.SecretKey); err != nil {
			a.close()
			return nil, err
		}
	}
	a.conn = connection.New(connection.Options{Store: db, Client: zc, Sealer: sealer, FromEnv: cfg.ZuoraBaseURL != "",
		AllowAny: cfg.ZuoraAllowAnyURL, Logger: log.With().Str("component", "connection").Logger(),
		Fallback: connection.Endpoint{BaseURL: zcfg.BaseURL, ClientID: zcfg.ClientID, ClientSecret: zcfg.ClientSecret}})
	if err := a.conn.Load(ctx); err != nil {
		a.close()
		return nil, err
	}
	a.switches = switches.New(db, map[string]bool{
		switches.Catalog: cfg.SyncCatalog, switches.Customers: cfg.SyncCustomers, switches.Subscriptions: cfg.SyncSubscriptions,
		switches.Usage: cfg.SyncUsage, switches.Inbound: cfg.SyncInbound,
	})
	if err := a.switches.Refresh(ctx); err != nil {
		a.close()
		return nil, err
	}
	units, _ := outbound.ParseUnitMap(cfg.ZuoraUnitMap) // checked by Validate
	a.outbound = outbound.New(db, a.engineZ, outbound.Config{IDField: cfg.ZuoraIDField, UnitMap: units, AccountNumberPrefix: cfg.ZuoraAccountPrefix,
		SubscriptionNumberPrefix: cfg.ZuoraSubscriptionPfx, Enabled: a.switches.Enabled, PublicURL: cfg.PublicURL,
		CreditChargeID: cfg.ZuoraCreditChargeID, AdoptZuoraChanges: true})
	// A switch turned back on syncs what it held back at once: on this
	// replica when it (or another) turns it on, and at start for a setting
	// changed while billsync was stopped.
	revive := func(ctx context.Context) {
		if n, err := a.outbound.ReviveSwitched(ctx); err != nil {
			log.Warn().Err(err).Msg("making records skipped by a switch due")
		} else if n > 0 {
			log.Info().Int64("records", n).Msg("switch on: records it held back are due")
		}
	}
	a.switches.OnEnable(func(ctx context.Context, _ string) { revive(ctx) })
	revive(ctx)
	// On shutdown, reconciles under way get most of the shutdown timeout to
	// finish; the rest is for releasing the claims.
	a.pool = worker.New(db, a.outbound.Kinds(), worker.Options{Workers: cfg.SyncWorkers, MaxAttempts: cfg.SyncMaxAttempts,
		StopTimeout: cfg.ShutdownTimeout * 4 / 5, Lease: cfg.ClaimLease, DriftChecks: cfg.DriftChecks(cfg.ZuoraConcurrency),
		Logger: log.With().Str("component", "worker").Logger(), ID: cfg.ReplicaID, OnOutcome: a.observeOutcome(onOutcome)})
	a.inbound = inbound.New(db, a.engineZ, a.outbound, inbound.Config{IDField: cfg.ZuoraIDField,
		IdentityField: cfg.InboundIdentityField, GraceField: cfg.InboundGraceField, MaxAttempts: cfg.SyncMaxAttempts,
		Workers: cfg.SyncWorkers, StopTimeout: cfg.ShutdownTimeout * 4 / 5, Lease: cfg.ClaimLease,
		WorkerID: cfg.ReplicaID, Logger: log.With().Str("component", "inbound").Logger(),
		Enabled: func() bool { return a.switches.Enabled(switches.Inbound) }})
	a.events = events.New(db, events.Config{Workers: cfg.SyncWorkers, MaxAttempts: cfg.SyncMaxAttempts, Lease: cfg.ClaimLease,
		StopTimeout: cfg.ShutdownTimeout * 4 / 5, WorkerID: cfg.ReplicaID, Logger: log.With().Str("component", "events").Logger()})
	a.usage = a.newUsage()
	a.sched = schedule.New(db, log.With().Str("component", "scheduler").Logger(), cfg.ReplicaID, cfg.SchedulerLeaseTTL)
	a.sched.OnRun = a.metrics.ObserveJobRun
	if err := a.addJobs(); err != nil {
		a.close()
		return nil, err
	}
	shownURL := zcfg.BaseURL
	if a.sim != nil {
		shownURL = a.simUI // the private port is billsync's own
	}
	adm, err := a.newAdmin(shownURL)
	if err != nil {
		a.close()
		return nil, err
	}
	wh := cfg.InboundConfig
	wh.WebhookPassword = a.webhookPassword
	var simHandler http.Handler
	if a.sim != nil && ln != nil {
		simHandler = a.sim
	}
	a.web = web.New(web.Options{Store: db, Logger: log, APIKey: cfg.APIKey, MaxBodyBytes: cfg.MaxBodyBytes, Version: version,
		Sync: db, Mappings: a.outbound.Mappings(), Kick: a.pool.Kick, Preview: a.outbound,
		Inbound: a.inbound, Webhooks: wh.webhookAuth(cfg.MaxBodyBytes), Events: a.events, Usage: a.usage, Admin: adm, Connection: a.conn, Metrics: a.metrics.Handler(),
		AllowedHosts: cfg.allowedHosts(cfg.Addr), TrustedOrigins: cfg.trustedOrigins(), TrustedProxies: cfg.TrustedProxies, Paused: a.paused,
		ZuoraSim: simHandler})
	return a, nil
}

// connectionRefresh is how often a replica rereads the Zuora connection
// stored on the admin page (another replica may have changed it).
const connectionRefresh = 5 * time.Second

// newAdmin builds the /admin page on the app's data sources. Its password is
// BILLSYNC_ADMIN_PASSWORD, else the API key; with neither it answers only on a
// loopback listener (serve's rule for an API without a key).
func (a *app) newAdmin(zuoraBaseURL string) (*admin.Admin, error) {
	env := "custom base URL"
	if a.sim != nil {
		env = "built-in simulator (nothing reaches a real Zuora)"
	} else if e, ok := zuora.EnvironmentFor(zuoraBaseURL); ok {
		env = e.Name
	}
	pw := a.cfg.AdminPassword
	if pw == "" {
		pw = a.cfg.APIKey
	}
	return admin.New(admin.Options{
		Password: pw,
		Secrets:  []string{a.cfg.APIKey, a.cfg.AdminPassword, a.cfg.ZuoraClientSecret, a.webhookPassword, a.cfg.WebhookHMACSecret, a.cfg.SecretKey},
		Store:    a.db,
		Preview:  a.outbound,
		Mappings: a.outbound.Mappings(),
		Inbox:    a.inbound,
		Usage:    a.usage,
		Switches: a.switches,
		Zuora:    a.zuora,
		Connection: admin.Connection{Environment: env, BaseURL: zuoraBaseURL, LastCall: a.zuora.LastSuccess, Paused: a.paused,
			SimulatorURL: a.simPagesURL(), World: a.world.get},
		Schedule:      a.sched,
		Tenant:        a.inbound,
		Events:        a.events,
		Billing:       a.inbound,
		Settings:      a.conn,
		Callouts:      a.inbound,
		CalloutSetup:  inbound.CalloutSetup{PublicURL: a.cfg.PublicURL, Username: a.cfg.WebhookUsername, Password: a.cfg.WebhookPassword},
		Kick:          a.pool.Kick,
		Logger:        a.log.With().Str("component", "admin").Logger(),
		SecureCookies: a.cfg.publicHTTPS(),
	})
}

// builtinSimUnits are the units of measure of the built-in simulator's
// tenant beyond a fresh tenant's: those of the README's first session.
var builtinSimUnits = []string{"seat", "call"}

// simStore keeps the built-in simulator's objects in billsync's database
// (table zuora_sim_state), so both sides survive a restart together.
type simStore struct{ db *store.DB }

func (s simStore) Load() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.db.SimState(ctx)
}

func (s simStore) Save(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.db.SaveSimState(ctx, b)
}

// webhookPasswordSecret names the generated password of the built-in
// simulator's callouts (table secrets; never logged or shown).
const webhookPasswordSecret = "builtin-sim-webhook-password"

// startSimulator opens the built-in simulator on its saved state. billsync's
// own calls reach it on a private loopback port (they take none of serve's
// connection slots), whose /_sim/ control endpoints answer 404. People and
// the callouts' setup see it on serve's listener under web.ZuoraSimPrefix
// (the CLI has no listener: its links still name serve's address).
func (a *app) startSimulator(ctx context.Context, ln net.Listener) error {
	// The built-in simulator's tenant is set up as the README tells an
	// admin to set up a real one, with the units of the README's example.
	tenant := zuora.SimTenant(a.cfg.ZuoraIDField, builtinSimUnits...)
	opts := zuorasim.Options{Tenant: &tenant, Logger: a.log.With().Str("component", "zuorasim").Logger(), Store: simStore{a.db}}
	if a.cfg.WebhookPassword == "" {
		pw, err := a.db.Secret(ctx, webhookPasswordSecret, 24)
		if err != nil {
			return err
		}
		a.webhookPassword = hex.EncodeToString(pw)
	}
	a.simUI = a.serviceURL(ln) + web.ZuoraSimPrefix
	sim, err := zuorasim.Open(opts)
	if err != nil {
		return fmt.Errorf("start the built-in Zuora simulator: %w", err)
	}
	a.sim = sim
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the built-in Zuora simulator: %w", err)
	}
	a.simURL = "http://" + pln.Addr().String()
	private := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			http.NotFound(w, r)
			return
		}
		a.sim.ServeHTTP(w, r)
	})
	a.simSrv = &http.Server{Handler: private, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.simSrv.Serve(pln) }()
	a.log.Warn().Str("url", a.simUI+"/").Msg("no BILLSYNC_ZUORA_BASE_URL: using the built-in Zuora simulator (nothing reaches a real Zuora; its objects are kept in the database)")
	return nil
}

// serviceURL is billsync's own base URL: BILLSYNC_PUBLIC_URL, else the
// listener's (or, for the CLI, the configured) address, with a loopback host
// for an unspecified one.
func (a *app) serviceURL(ln net.Listener) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimSuffix(a.cfg.PublicURL, "/")
	}
	if ln != nil {
		return "http://" + loopbackAddr(ln.Addr())
	}
	return "http://" + loopbackHostPort(a.cfg.Addr)
}

func loopbackAddr(addr net.Addr) string { return loopbackHostPort(addr.String()) }

// loopbackHostPort replaces an unspecified host (":8080", "0.0.0.0:8080") by 127.0.0.1.
func loopbackHostPort(hp string) string {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return hp
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// simPagesURL is the built-in simulator's index page ("" without one).
func (a *app) simPagesURL() string {
	if a.sim == nil {
		return ""
	}
	return a.simUI + "/"
}

// addJobs registers the scheduled jobs. They only enqueue or do bounded work.
func (a *app) addJobs() error {
	var swept atomic.Int64
	jobs := []schedule.Job{
		{Name: "reconcile", Spec: "0 * * * *", Period: schedule.Hourly, Run: func(ctx context.Context) (string, error) {
			// Bulk hash comparison: only records whose payload changed (and
			// skipped ones) are reconciled; a quiet hour makes no Zuora call.
			rep, err := a.outbound.Recheck(ctx)
			a.pool.Kick()
			return rep.String(), err
		}},
		{Name: "drift", Spec: "30 * * * *", Period: schedule.Hourly, Run: func(ctx context.Context) (string, error) {
			// Only enqueues: the pool's workers run the checks (a Zuora read
			// each) with their bounded concurrency, retries and metrics.
			n, err := a.db.EnqueueDriftChecks(ctx, schedule.Hourly(time.Now()))
			a.pool.Kick()
			return fmt.Sprintf("queued a drift check of %d synced records", n), err
		}},
		{Name: "sweeper", Spec: "@every " + a.cfg.SweepInterval.String(), Period: schedule.Every(a.cfg.SweepInterval), Run: func(ctx context.Context) (string, error) {
			n, err := a.db.ReleaseExpired(ctx)
			swept.Store(n)
			if n > 0 {
				a.pool.Kick()
			}
			return fmt.Sprintf("released %d stuck records", n), err
		}, Idle: func() bool { return swept.Load() == 0 }}, // an empty sweep every minute: debug
		{Name: "inbound-poll", Spec: "15 * * * *", Period: schedule.Hourly, Run: func(ctx context.Context) (string, error) {
			if !a.switches.Enabled(switches.Inbound) {
				return "inbound is switched off", nil
			}
			rep, err := a.inbound.Poll(ctx)
			return fmt.Sprintf("%d accounts and %d subscriptions changed since %s; %d queued", rep.Accounts, rep.Subscriptions, rep.Since.Format(time.RFC3339), rep.Enqueued), err
		}},
		{Name: "access-expiry", Spec: "5 * * * *", Period: schedule.Hourly, Run: func(ctx context.Context) (string, error) {
			// Grants whose grace ran out, or whose end passed, are told as
			// access.revoked (each once).
			n, err := a.inbound.ExpireAccess(ctx)
			return fmt.Sprintf("told %d revoked grants", n), err
		}},
		{Name: "inbox-prune", Spec: "45 3 * * *", Period: schedule.Hourly, Run: func(ctx context.Context) (string, error) {
			n, err := a.inbound.PruneInbox(ctx, 30*24*time.Hour)
			return fmt.Sprintf("pruned %d processed callouts older than 30 days", n), err
		}},
	}
	jobs = append(jobs, a.usageJob())
	for _, j := range jobs {
		if err := a.sched.Add(j); err != nil {
			return err
		}
	}
	return nil
}

// run serves HTTP on ln and runs the workers and the scheduler until ctx ends,
// then stops the workers softly and shuts HTTP down within the deadline.
func (a *app) run(ctx context.Context, ln net.Listener) error {
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); a.conn.Run(wctx, connectionRefresh) }()
	go func() { defer wg.Done(); _ = a.pool.Run(wctx) }()
	go func() { defer wg.Done(); _ = a.inbound.Run(wctx) }()
	go func() { defer wg.Done(); _ = a.usage.Run(wctx) }()
	go func() { defer wg.Done(); _ = a.events.Run(wctx) }()
	go func() { defer wg.Done(); a.sched.Run(wctx) }()
	hs := a.httpServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(netutil.LimitListener(ln, a.cfg.MaxConnections)) }()
	// With HTTP up (the built-in simulator is on it): callouts of the
	// built-in simulator, then whether Zuora holds what the mappings name.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if a.sim != nil {
			a.setupBuiltinCallouts(wctx, ln)
		}
		a.checkWorld(wctx)
	}()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	a.log.Info().Msg("shutting down: stopping workers")
	stopWorkers()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.cfg.ShutdownTimeout):
		a.log.Warn().Msg("workers did not stop in time")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// httpServer is serve's server: every phase of a request is bounded, so a
// slow client holds a connection (one of MaxConnections) for ReadTimeout at most.
func (a *app) httpServer() *http.Server {
	return &http.Server{Handler: a.web, ReadHeaderTimeout: min(10*time.Second, a.cfg.ReadTimeout), ReadTimeout: a.cfg.ReadTimeout,
		WriteTimeout: a.cfg.WriteTimeout, IdleTimeout: a.cfg.IdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: stdlog.New(a.log.With().Str("component", "http").Logger(), "", 0)}
}

func (a *app) close() {
	if a.simSrv != nil {
		_ = a.simSrv.Close()
	}
	if a.sim != nil {
		a.sim.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
}

// paused reports whether sync or callout work is paused because Zuora
// refused billsync's credentials (the pools resume by themselves).
func (a *app) paused() (bool, string) {
	if p, msg := a.pool.Paused(); p {
		return p, msg
	}
	return a.inbound.Paused()
}
