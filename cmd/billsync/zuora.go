package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
)

// runZuora runs `billsync zuora check|setup-callouts|remove-callouts`:
// check lists what the configured Zuora tenant lacks for billsync; the
// others create (idempotently) or remove, in the tenant, the event triggers
// and notification definitions that send callouts to billsync.
func runZuora(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	help := len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")
	if help || len(args) == 0 || (args[0] != "setup-callouts" && args[0] != "remove-callouts" && args[0] != "check") {
		out := stderr
		if help {
			out = stdout
		}
		fmt.Fprint(out, `Usage:
  billsync zuora check [--json]
  billsync zuora setup-callouts --public-url https://billsync.example.com
  billsync zuora remove-callouts

check reads the tenant (describe of each object, the settings API) and lists
every custom field billsync needs that is missing (object, API name, type,
length), every unit of measure and currency the local catalog uses that the
tenant lacks, the tenant's time zone and whether callouts are set up. It
exits non-zero when something is missing.

setup-callouts creates the Account "changeType == 'INSERT'" and Subscription
"changeType == 'UPDATE'" event triggers, and three callout templates with their
notification definitions (account created, subscription created [event 1210],
subscription changed) whose callouts POST to <public-url>/webhooks/zuora/… with
preemptive Basic auth (BILLSYNC_WEBHOOK_USERNAME / BILLSYNC_WEBHOOK_PASSWORD).
Running it again creates nothing new; with another URL or password it changes
the templates in place. remove-callouts deletes the definitions and triggers
setup created and deactivates its templates (Zuora cannot delete templates).
`)
		if help {
			return nil
		}
		return usageError{"zuora: expected check, setup-callouts or remove-callouts"}
	}
	sub := args[0]
	fs := newFlagSet("zuora "+sub, "Check the Zuora tenant, or manage the Zuora callouts that feed billsync's inbound side.", stderr)
	asJSON := false
	if sub == "check" {
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	}
	cfg, err := loadConfig(fs, args[1:], calloutFlags...)
	if err != nil {
		return err
	}
	publicURL := cfg.PublicURL // --public-url / BILLSYNC_PUBLIC_URL: billsync's public https base URL, as Zuora reaches it
	if cfg.ZuoraBaseURL == "" {
		return errors.New("zuora: BILLSYNC_ZUORA_BASE_URL (with client id and secret) is required: the command works on a real Zuora tenant (or a standalone simulator)")
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
	units, _ := outbound.ParseUnitMap(cfg.ZuoraUnitMap) // checked by Validate
	svc := inbound.New(db, zc, outbound.New(db, zc, outbound.Config{IDField: cfg.ZuoraIDField, UnitMap: units, PublicURL: cfg.PublicURL}), inbound.Config{IDField: cfg.ZuoraIDField,
		IdentityField: cfg.InboundIdentityField, Logger: log})
	if sub == "check" {
		return printTenantCheck(ctx, svc, asJSON, stdout)
	}
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

// errTenantIncomplete makes `billsync zuora check` exit non-zero.
var errTenantIncomplete = errors.New("zuora check: the tenant lacks what is listed above")

func printTenantCheck(ctx context.Context, svc *inbound.Service, asJSON bool, stdout io.Writer) error {
	rep, err := svc.CheckTenant(ctx)
	if err != nil {
		return fmt.Errorf("zuora check: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, m := range rep.Missing {
			line := "missing " + m.Kind + " " + m.Name
			if m.Field != nil {
				line = fmt.Sprintf("missing custom field: object %s, API name %s, type %s, length %d", m.Field.Object, m.Field.Name, m.Field.Type, m.Field.Length)
			}
			if len(m.UsedBy) > 0 {
				line += " (used by plans " + strings.Join(m.UsedBy, ", ") + ")"
			}
			fmt.Fprintf(stdout, "%s\n    fix: %s\n", line, m.Fix)
		}
		fmt.Fprintf(stdout, "time zone: %s\n", rep.TimeZone)
		fmt.Fprintf(stdout, "units of measure: %s\n", strings.Join(rep.Units, ", "))
		fmt.Fprintf(stdout, "currencies: %s\n", strings.Join(rep.Currencies, ", "))
		fmt.Fprintf(stdout, "callouts: %s\n", rep.Callouts)
		if rep.OK {
			fmt.Fprintln(stdout, "ok: the tenant has everything billsync needs")
		}
	}
	if !rep.OK {
		return errTenantIncomplete
	}
	return nil
}
