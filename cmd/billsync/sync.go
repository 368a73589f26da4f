package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/store"
)

var syncTargets = map[string][]string{
	"all":           {store.EntityPlan, store.EntityCoupon, store.EntityCustomer, store.EntitySubscription},
	"drift":         {store.EntityPlan, store.EntityCustomer, store.EntitySubscription},
	"catalog":       {store.EntityPlan, store.EntityCoupon},
	"customers":     {store.EntityCustomer},
	"subscriptions": {store.EntitySubscription},
}

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "usage" {
		return runSyncUsage(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("sync all|catalog|customers|subscriptions|drift [--dry-run] [flags]",
		"Reconciles now: re-checks every record of the kind (no Zuora call when nothing changed),\nretries failed ones, and prints what it did. 'drift' reads every synced record back from\nZuora and repairs what differs. With --dry-run it prints what it would do and calls nothing.", stderr)
	dry := fs.Bool("dry-run", false, "print what would be done; change nothing and call no Zuora API")
	svcURL := bindServiceURL(fs)
	wait := fs.Duration("wait", 2*time.Minute, "through the service: how long to wait for the records' outcomes (e.g. 30s, 5m)")
	cfg, err := loadConfig(fs, args, liveFlags...)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{"sync needs one of: all, catalog, customers, subscriptions, drift"}
	}
	kinds, ok := syncTargets[fs.Arg(0)]
	if !ok {
		if fs.Arg(0) == "usage" {
			return usageError{"put the flags of sync usage after it: billsync sync usage [--subscription ID] [flags]"}
		}
		return usageError{fmt.Sprintf("unknown sync target %q; use all, catalog, customers, subscriptions or drift", fs.Arg(0))}
	}
	if !*dry { // a dry run reads the database only: no service needed
		rc, err := remoteService(ctx, cfg, *svcURL)
		if err != nil {
			return err
		}
		if rc != nil {
			return syncViaService(ctx, rc, fs.Arg(0), kinds, *wait, stdout)
		}
	}
	log := newLogger(cfg)
	var mu sync.Mutex
	a, err := newApp(ctx, cfg, log, nil, func(rec store.SyncRecord, o store.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		what := o.Detail
		if what == "" {
			what = o.Reason
		}
		if o.ErrorMessage != "" {
			what = o.ErrorMessage
		}
		fmt.Fprintf(stdout, "%-12s %-24s %-8s %s\n", rec.EntityKind, rec.EntityID, o.State, what)
	})
	if err != nil {
		return err
	}
	defer a.close()
	if !*dry {
		fmt.Fprintf(stderr, "note: no billsync answers at %s (--url, BILLSYNC_URL): syncing here, on the same database%s\n", localServiceURL(cfg, *svcURL), simNote(a))
	}
	if *dry {
		return explainAll(ctx, a, kinds, stdout)
	}
	var n int64
	if fs.Arg(0) == "drift" {
		// Every synced record is read back from Zuora; what differs is repaired.
		if n, err = a.db.EnqueueDriftChecksNow(ctx); err != nil {
			return err
		}
	} else {
		if n, err = a.db.RecheckAll(ctx, kinds); err != nil {
			return err
		}
		if _, err := a.db.RetryAll(ctx, ""); err != nil {
			return err
		}
	}
	done, err := a.pool.Drain(ctx)
	if err != nil {
		return err
	}
	counts, err := a.db.SyncCounts(ctx)
	if err != nil {
		return err
	}
	what := "re-checked"
	if fs.Arg(0) == "drift" {
		what = "checked for drift"
	}
	fmt.Fprintf(stdout, "\n%s %d records, ran %d reconciles, %d Zuora calls\n", what, n, done, a.pool.Stats().Calls)
	printCounts(stdout, counts, kinds)
	return nil
}

func explainAll(ctx context.Context, a *app, kinds []string, stdout io.Writer) error {
	for _, k := range kinds {
		var after int64
		for {
			recs, next, err := a.db.ListSyncRecords(ctx, store.SyncFilter{Kind: k, AfterID: after, Limit: 200})
			if err != nil {
				return err
			}
			for _, rec := range recs {
				what, err := a.outbound.Explain(ctx, rec)
				if err != nil {
					what = "error: " + err.Error()
				}
				fmt.Fprintf(stdout, "%-12s %-24s %-8s %s\n", rec.EntityKind, rec.EntityID, rec.State, what)
			}
			if next == 0 {
				break
			}
			after = next
		}
	}
	return nil
}

func printCounts(w io.Writer, counts map[string]map[string]int64, kinds []string) {
	for _, k := range kinds {
		states := make([]string, 0, len(counts[k]))
		for s := range counts[k] {
			states = append(states, s)
		}
		sort.Strings(states)
		fmt.Fprintf(w, "%-12s", k)
		for _, s := range states {
			fmt.Fprintf(w, " %s=%d", s, counts[k][s])
		}
		fmt.Fprintln(w)
	}
}

func runZuoraSim(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("zuora-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	tenantFile := fs.String("tenant", "", "tenant configuration file (JSON: unitsOfMeasure, currencies, timeZone, customFields, features; default: a fresh tenant)")
	stateFile := fs.String("state", "", "keep the simulator's objects in this file across restarts (saved before each change is answered; default: in memory)")
	var opts zuorasim.Options
	opts.BindFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: billsync zuora-sim [flags]\n\nRuns the Zuora simulator standalone (OAuth, catalog, accounts, orders,\nsubscriptions, usage, callouts, faults; control endpoints under /_sim/).\nClient credentials default to %s / (see --client-secret).\n\nFlags:\n", zuorasim.DefaultClientID)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if host, _, err := net.SplitHostPort(*addr); opts.ControlToken == "" && (err != nil || !isLoopbackHost(host)) {
		return fmt.Errorf("zuora-sim: listening on %s (not loopback) needs --control-token, or anyone on the network could reset or read the simulator", *addr)
	}
	cfg := DefaultConfig()
	cfg.LogLevel = *logLevel
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *tenantFile != "" {
		b, err := os.ReadFile(*tenantFile)
		if err != nil {
			return fmt.Errorf("zuora-sim --tenant: %w", err)
		}
		t, err := zuorasim.LoadTenantFile(b)
		if err != nil {
			return fmt.Errorf("zuora-sim --tenant %s: %w", *tenantFile, err)
		}
		opts.Tenant = &t
	}
	log := newLogger(cfg)
	opts.Logger = log
	if *stateFile != "" {
		opts.Store = zuorasim.FileStore(*stateFile)
	}
	sim, err := zuorasim.Open(opts)
	if err != nil {
		return fmt.Errorf("zuora-sim --state %s: %w", *stateFile, err)
	}
	defer sim.Close()
	return zuorasim.ListenAndServe(ctx, *addr, sim, log)
}
