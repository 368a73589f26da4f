package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/billsync/billsync/engine/store"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve [flags]", "Runs the JSON API (/api/v1), the admin page (/admin), Zuora webhooks,\n/healthz, /readyz and the sync workers until SIGINT or SIGTERM.", stderr)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if err := cfg.CheckListen(); err != nil {
		return err
	}
	log := newLogger(cfg)
	// Listen first: the built-in simulator is served on the same listener.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	a, err := newApp(ctx, cfg, log, ln, nil)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.close()
	zuoraTarget := cfg.ZuoraBaseURL
	if zuoraTarget == "" {
		zuoraTarget = "built-in simulator at " + a.simUI + "/"
	}
	log.Info().Str("addr", ln.Addr().String()).Str("database", string(a.db.Dialect)).Str("zuora", zuoraTarget).Str("version", version).Msg("billsync serving")
	fmt.Fprintf(stdout, "billsync listening on http://%s (database: %s; Zuora: %s)\n", ln.Addr(), a.db.Dialect, zuoraTarget)
	if err := a.run(ctx, ln); err != nil {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate up|down|status [flags]", "up applies every pending migration; down rolls back the latest one;\nstatus lists migrations and whether each is applied.", stderr)
	cfg, err := loadConfig(fs, args, "database-url", "log-level", "log-format")
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{"migrate needs exactly one of: up, down, status"}
	}
	log := newLogger(cfg)
	db, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	switch fs.Arg(0) {
	case "up":
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "nothing to apply: the database is up to date")
		}
		for _, v := range applied {
			fmt.Fprintf(stdout, "applied %05d\n", v)
		}
	case "down":
		v, err := db.MigrateDown(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rolled back %05d\n", v)
	case "status":
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if s.Applied {
				state = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%05d  %-40s %s\n", s.Version, s.Name, state)
		}
	default:
		fs.Usage()
		return usageError{fmt.Sprintf("unknown migrate action %q; use up, down or status", fs.Arg(0))}
	}
	return nil
}
