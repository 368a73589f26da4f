// Command billsync runs the billing sync engine between billsync's catalog and
// subscriptions and Zuora Billing. See `billsync help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP API, admin page, webhooks and sync workers", runServe},
		{"migrate", "apply, roll back or list database migrations (up|down|status)", runMigrate},
		{"zuora", "set up or remove the Zuora callouts that feed billsync (setup-callouts|remove-callouts)", runZuora},
		{"sync", "reconcile now: all|catalog|customers|subscriptions [--dry-run]", runSync},
		{"zuora-sim", "run the Zuora simulator standalone (for demos, tests and benchmarks)", runZuoraSim},
		{"bench", "measure billsync against the simulator: initial|noop|usage|callouts", runBench},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "billsync", version)
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `billsync keeps a product catalog and subscriptions in sync with Zuora Billing, both ways.

Usage:
  billsync <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'billsync <command> -h' for a command's flags. Every flag can also be set with
its BILLSYNC_* environment variable (shown in the flag's help); flags win.

With no configuration, 'billsync serve' listens on 127.0.0.1:8080, stores data in
./billsync.db (embedded SQLite) and talks to a built-in Zuora simulator.
`)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "billsync:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// loadConfig builds the configuration from defaults, environment and flags.
// With flags named, only those settings are flags of the command (its -h
// lists them, not serve's forty); every setting still comes from its
// BILLSYNC_* variable.
func loadConfig(fs *flag.FlagSet, args []string, flags ...string) (Config, error) {
	cfg := DefaultConfig()
	if err := cfg.LoadEnv(os.Getenv); err != nil {
		return cfg, err
	}
	if flags == nil {
		cfg.BindFlags(fs)
	} else {
		for _, s := range cfg.settings() {
			if slices.Contains(flags, s.flag) {
				s.bind(fs)
			}
		}
	}
	if err := parseInterspersed(fs, args); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// The flags of the commands besides serve (the rest from the environment).
var (
	dbFlags    = []string{"database-url", "migrate", "log-level", "log-format"}
	zuoraFlags = []string{"zuora-base-url", "zuora-allow-any-url", "zuora-client-id", "zuora-client-secret", "zuora-version"}
	// The CLI acting on live data: the service's address and key, or the
	// same database and Zuora when no service runs.
	liveFlags = slices.Concat([]string{"addr", "api-key"}, dbFlags, zuoraFlags)
	// zuora setup-callouts and its siblings.
	calloutFlags = slices.Concat(dbFlags, zuoraFlags, []string{"public-url", "webhook-username", "webhook-password", "zuora-id-field", "inbound-identity-field"})
)

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("sync all --dry-run" as well as "sync --dry-run all"); fs.Args()
// then holds the positional arguments in order. Everything after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		consumed := len(rest) - fs.NArg()
		if consumed > 0 && rest[consumed-1] == "--" {
			pos = append(pos, fs.Args()...)
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: billsync %s\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
