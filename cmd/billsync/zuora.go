package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
)

// runZuora runs `billsync zuora setup-callouts|remove-callouts`: it creates
// (idempotently) or removes, in the configured Zuora tenant, the event
// triggers and notification definitions that send callouts to billsync.
func runZuora(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "setup-callouts" && args[0] != "remove-callouts") {
		fmt.Fprint(stderr, `Usage:
  billsync zuora setup-callouts --public-url https://billsync.example.com
  billsync zuora remove-callouts

setup-callouts creates the Account "changeType == 'INSERT'" and Subscription
"changeType == 'UPDATE'" event triggers and three notification definitions
(account created, subscription created [event 1210], subscription changed)
whose callouts POST to <public-url>/webhooks/zuora/… with preemptive Basic auth
(BILLSYNC_WEBHOOK_USERNAME / BILLSYNC_WEBHOOK_PASSWORD). Running it again
creates nothing new. remove-callouts deletes exactly what setup created.
`)
		return usageError{"zuora: expected setup-callouts or remove-callouts"}
	}
	sub := args[0]
	fs := newFlagSet("zuora "+sub, "Manage the Zuora callouts that feed billsync's inbound side.", stderr)
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	publicURL := cfg.PublicURL // --public-url / BILLSYNC_PUBLIC_URL: billsync's public https base URL, as Zuora reaches it
	if cfg.ZuoraBaseURL == "" {
		return errors.New("zuora: BILLSYNC_ZUORA_BASE_URL (with client id and secret) is required: callouts are set up in a real Zuora tenant")
	}
	if sub == "setup-callouts" {
		if publicURL == "" {
			return usageError{"zuora setup-callouts: --public-url (or BILLSYNC_PUBLIC_URL) is required"}
		}
		if cfg.WebhookPassword == "" {
			return errors.New("zuora setup-callouts: set BILLSYNC_WEBHOOK_PASSWORD (Zuora sends it with every callout; billsync checks it)")
		}
		if !strings.HasPrefix(publicURL, "https://") {
			fmt.Fprintln(stderr, "warning: Zuora only calls https URLs on port 443 by default")
		}
	}
	log := newLogger(cfg)
	db, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.MigrateOnStart {
		if _, err := db.MigrateUp(ctx); err != nil {
			return err
		}
	}
	zc, err := zuora.New(zuora.Config{BaseURL: cfg.ZuoraBaseURL, AllowAnyBaseURL: cfg.ZuoraAllowAnyURL, ClientID: cfg.ZuoraClientID,
		ClientSecret: cfg.ZuoraClientSecret, Version: cfg.ZuoraVersion, ConcurrencyLimit: cfg.ZuoraConcurrency,
		RequestsPerMinute: cfg.ZuoraRequestsPerMin}, log.With().Str("component", "zuora").Logger())
	if err != nil {
		return err
	}
	svc := inbound.New(db, zc, outbound.New(db, zc, outbound.Config{IDField: cfg.ZuoraIDField}), inbound.Config{IDField: cfg.ZuoraIDField, Logger: log})
	var rep inbound.SetupReport
	if sub == "setup-callouts" {
		rep, err = svc.SetupCallouts(ctx, inbound.CalloutSetup{PublicURL: publicURL, Username: cfg.WebhookUsername, Password: cfg.WebhookPassword})
	} else {
		rep, err = svc.RemoveCallouts(ctx)
	}
	for _, s := range rep.Created {
		fmt.Fprintln(stdout, "created", s)
	}
	for _, s := range rep.Existed {
		fmt.Fprintln(stdout, "exists ", s)
	}
	for _, s := range rep.Removed {
		fmt.Fprintln(stdout, "removed", s)
	}
	if err == nil && len(rep.Created)+len(rep.Existed)+len(rep.Removed) == 0 {
		fmt.Fprintln(stdout, "nothing to do")
	}
	return err
}
