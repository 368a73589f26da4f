package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/billsync/billsync/engine/schedule"
	ledger "github.com/billsync/billsync/engine/usage"
)

// newUsage builds the usage ledger: uploads go through the app's Zuora client,
// charge numbers missing from the mappings are recorded by the outbound
// engine, and the "usage" switch stops uploads (not ingestion).
func (a *app) newUsage() *ledger.Ledger {
	return ledger.New(a.db, a.engineZ, ledger.Config{
		Enabled: a.switches.Enabled,
		Charges: a.outbound,
		Logger:  a.log,
		Owner:   a.cfg.ReplicaID,
		// A batch's lease is the sync records' claim lease: extended while
		// its call runs; a batch cut off by a crash is sent again (same
		// Idempotency-Key, so Zuora never counts it twice) once it lapsed.
		ClaimTTL:    a.cfg.ClaimLease,
		StopTimeout: a.cfg.ShutdownTimeout * 4 / 5,
		OnBatch:     a.metrics.ObserveUsageBatch,
		// As many senders as Zuora takes calls: the client's usage share
		// keeps them from crowding out the reconciles.
		Senders:         a.cfg.ZuoraConcurrency,
		ImportThreshold: a.cfg.importThreshold(),
	})
}

// usageJob is the hourly upload: at minute 20, windows of the hour that ended
// (past the 15-minute grace) are sealed and batched; the usage pool (Run)
// sends the batches.
func (a *app) usageJob() schedule.Job {
	return schedule.Job{Name: "usage", Spec: "20 * * * *", Period: schedule.Hourly, Run: func(ctx context.Context) (string, error) {
		rep, err := a.usage.Enqueue(ctx, time.Now())
		s := fmt.Sprintf("%d windows sealed into %d rows; pending rows batched for the usage senders, %d waiting, %d held",
			rep.WindowsSealed, rep.RowsCreated, rep.RowsWaiting, rep.RowsHeld)
		if rep.Skipped != "" {
			s += "; " + rep.Skipped
		}
		return s, err
	}}
}

func usageSummary(rep *ledger.Report) string {
	s := fmt.Sprintf("%d windows sealed into %d rows; %d calls, %d rows sent, %d failed (retried alone), %d waiting, %d batches with unknown outcome",
		rep.WindowsSealed, rep.RowsCreated, rep.Calls, rep.RowsSent, rep.RowsFailed, rep.RowsWaiting, rep.BatchesUnknown)
	if rep.RowsLookedUp > 0 {
		s += fmt.Sprintf(", %d rows looked up in Zuora", rep.RowsLookedUp)
	}
	if rep.Skipped != "" {
		s += "; " + rep.Skipped
	}
	return s
}

// runSyncUsage is `billsync sync usage [--subscription ID] [--include-current-hour]`:
// the same ledger call as the hourly job (without --subscription) or the
// API's sync-usage action (with it).
func runSyncUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sync usage [--subscription ID] [--include-current-hour] [flags]",
		"Seals usage windows and uploads pending usage to Zuora now. Without --subscription it does\nwhat the hourly job does (windows sealed after hour end + grace); with it, every window of\nthat subscription whose hour is over is sealed at once (and the current hour with\n--include-current-hour).", stderr)
	sub := fs.String("subscription", "", "only this subscription (the \"Sync usage to Zuora\" action)")
	current := fs.Bool("include-current-hour", false, "with --subscription: also seal the current, partial hour")
	svcURL := bindServiceURL(fs)
	cfg, err := loadConfig(fs, args, liveFlags...)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usageError{"sync usage takes no arguments besides its flags"}
	}
	if *current && *sub == "" {
		return usageError{"--include-current-hour needs --subscription"}
	}
	rc, err := remoteService(ctx, cfg, *svcURL)
	if err != nil {
		return err
	}
	if rc != nil {
		var rep ledger.Report
		path := "/api/v1/usage/sync"
		if *sub != "" {
			path = "/api/v1/subscriptions/" + url.PathEscape(*sub) + "/sync-usage"
		}
		if err := rc.do(ctx, http.MethodPost, path, map[string]any{"includeCurrentHour": *current}, &rep); err != nil {
			return err
		}
		printUsageReport(stdout, &rep)
		fmt.Fprintf(stdout, "(through the service at %s)\n", rc.base)
		return nil
	}
	a, err := newApp(ctx, cfg, newLogger(cfg), nil, nil)
	if err != nil {
		return err
	}
	defer a.close()
	fmt.Fprintf(stderr, "note: no billsync answers at %s (--url, BILLSYNC_URL): uploading from here, on the same database%s\n", localServiceURL(cfg, *svcURL), simNote(a))
	rep, err := a.usage.Sync(ctx, ledger.SyncOptions{SubscriptionID: *sub, IncludeCurrentHour: *current})
	if rep != nil {
		printUsageReport(stdout, rep)
	}
	if err != nil {
		return err
	}
	st, err := a.usage.Stats(ctx)
	if err != nil {
		return err
	}
	if st.OldestPendingWindow != nil {
		fmt.Fprintf(stdout, "pending: %d windows, the oldest from %s\n", st.PendingWindows, st.OldestPendingWindow.Format("2006-01-02T15:04Z"))
	} else {
		fmt.Fprintln(stdout, "pending: nothing")
	}
	return nil
}

// printUsageReport prints what a usage sync did, row by row.
func printUsageReport(stdout io.Writer, rep *ledger.Report) {
	for _, r := range rep.Sent {
		fmt.Fprintf(stdout, "sent    %-20s %-16s %s  %s  -> %s\n", r.SubscriptionID, r.ChargeID, r.WindowStart.Format("2006-01-02T15:04Z"), r.Quantity, r.ZuoraUsageID)
	}
	for _, r := range rep.Failed {
		fmt.Fprintf(stdout, "failed  %-20s %-16s %s  %s  %s\n", r.SubscriptionID, r.ChargeID, r.WindowStart.Format("2006-01-02T15:04Z"), r.Quantity, r.Reason)
	}
	for _, r := range rep.Waiting {
		fmt.Fprintf(stdout, "waiting %-20s %-16s %s  %s  %s\n", r.SubscriptionID, r.ChargeID, r.WindowStart.Format("2006-01-02T15:04Z"), r.Quantity, r.Reason)
	}
	fmt.Fprintln(stdout, usageSummary(rep))
}
