package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/cmd/billsync/internal/bench"
	"github.com/billsync/billsync/engine/store"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	var asJSON, verbose bool
	fs.StringVar(&o.Scenario, "scenario", "initial", "scenario: "+strings.Join(bench.Scenarios, "|")+", or all (one table of every scenario and its goals)")
	fs.IntVar(&o.BigCustomers, "big-customers", 0, "all: also an initial sync at this many customers (memory flat in N)")
	fs.BoolVar(&o.SQLite, "sqlite", false, "run on a fresh SQLite file instead of a fresh Postgres schema")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.DurationVar(&o.Latency, "latency", 100*time.Millisecond, "latency the simulator adds to every Zuora call")
	fs.IntVar(&o.Concurrency, "concurrency", 40, "Zuora's concurrency limit (simulator and client)")
	fs.IntVar(&o.Customers, "customers", 10_000, "initial/noop/drift: customers, one subscription each")
	fs.IntVar(&o.Plans, "plans", 20, "initial/noop/drift: plans")
	fs.IntVar(&o.Workers, "workers", 0, "concurrent reconciles (default 2 × concurrency)")
	fs.IntVar(&o.Events, "events", 1_000_000, "usage: events to ingest")
	fs.IntVar(&o.Windows, "windows", 100_000, "usage: hourly windows the events fall into")
	fs.IntVar(&o.DriftShare, "drift-share", 25, "drift: percentage of the concurrency limit the drift checks may take (serve's BILLSYNC_DRIFT_SHARE)")
	fs.BoolVar(&o.UsageFiles, "usage-files", false, "usage: upload the backlog as usage files (POST /v1/usage) instead of calls of 50")
	fs.IntVar(&o.Callouts, "callouts", 10_000, "callouts: account-created callouts to send")
	fs.IntVar(&o.Rate, "rate", 500, "callouts: callouts per second")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "bound on the measured part")
	fs.BoolVar(&verbose, "v", false, "log billsync's warnings to stderr")
	fs.BoolVar(&o.Trace, "trace", false, "print the Zuora calls in flight every second while syncing")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured part to this file")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: billsync bench --scenario initial|noop|drift|usage|callouts|all [flags]

Starts the Zuora simulator in-process with the given latency and concurrency
limit, seeds data, runs the scenario on a fresh schema of BILLSYNC_DATABASE_URL
(Postgres; default the local test database) or on SQLite (--sqlite), and prints
calls by operation, calls per entity, wall and ideal wall time, efficiency,
429s, peak memory and the scenario's targets. Exits 1 when a target is missed.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageError{"bench takes no arguments"}
	}
	if u := os.Getenv("BILLSYNC_DATABASE_URL"); store.IsPostgresURL(u) {
		o.DatabaseURL = u
	}
	o.Logger = zerolog.Nop()
	if verbose {
		o.Logger = zerolog.New(zerolog.ConsoleWriter{Out: stderr}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	}
	o.Progress = func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench %s: %s\n", o.Scenario, fmt.Sprintf(format, args...))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	if o.Scenario == "all" {
		return benchAll(ctx, o, asJSON, stdout)
	}
	res, err := bench.Run(ctx, o)
	if res != nil {
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				return jerr
			}
		} else if terr := res.WriteTable(stdout); terr != nil {
			return terr
		}
	}
	if err != nil {
		return err
	}
	if !res.Met() {
		return errors.New("bench: a target was missed")
	}
	return nil
}

// benchAll runs every scenario and prints one table (or a JSON array).
func benchAll(ctx context.Context, o bench.Options, asJSON bool, stdout io.Writer) error {
	results, err := bench.RunAll(ctx, o)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(results); jerr != nil {
			return jerr
		}
	} else if terr := bench.WriteSummary(stdout, results); terr != nil {
		return terr
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if !r.Met() {
			return errors.New("bench: a target was missed")
		}
	}
	return nil
}
