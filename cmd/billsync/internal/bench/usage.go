package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/usage"
)

// usageCharges are the usage charges of BenchPlan.
var usageCharges = []string{"api", "storage"}

// usageShape spreads the windows over subscriptions × charges × hours: 200
// subscriptions (fewer for small runs) and as many hours as needed.
func usageShape(windows int) (subs, hours int) {
	subs = 200
	for subs > 1 && windows/(subs*len(usageCharges)) < 1 {
		subs /= 2
	}
	hours = max(1, windows/(subs*len(usageCharges)))
	return subs, hours
}

func runUsage(ctx context.Context, e *env) (*Result, error) {
	began := time.Now()
	subs, hours := usageShape(e.o.Windows)
	windows := subs * len(usageCharges) * hours
	perWindow := max(1, e.o.Events/windows)
	events := windows * perWindow
	e.o.Progress("syncing %d subscriptions with usage charges (not measured)", subs)
	if err := seedCatalog(ctx, e.db, 1); err != nil {
		return nil, err
	}
	if err := seedCustomers(ctx, e.db, subs, 1); err != nil {
		return nil, err
	}
	p := e.engine()
	if _, err := e.converge(ctx, p, nil); err != nil {
		return nil, err
	}
	// As many senders as Zuora takes calls; the backlog by calls of 50, or
	// (--usage-files) by usage files polled every 250 ms.
	ucfg := usage.Config{Charges: p.out, Logger: e.log, Senders: e.o.Concurrency, ImportThreshold: -1}
	if e.o.UsageFiles {
		ucfg.ImportThreshold, ucfg.ImportPoll = 1, 250*time.Millisecond
	}
	led := usage.New(e.db, e.z, ucfg)
	r := e.newResult()
	r.Entities = map[string]int{"events": events, "windows": windows}
	r.Setup = time.Since(began)

	// Ingest: batches of usage.MaxBatch, as the API takes them, from a few
	// concurrent clients (one on SQLite, which has one writer).
	e.o.Progress("ingesting %d events into %d hourly windows (%d subscriptions × %d charges × %d hours)", events, windows, subs, len(usageCharges), hours)
	// Windows end at least two hours ago, so the hourly job (15 min grace) seals them all.
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	qty := decimal.RequireFromString("1.5")
	batches := (events + usage.MaxBatch - 1) / usage.MaxBatch
	clients := 4
	if e.db.Dialect == store.SQLite {
		clients = 1
	}
	ingestStart := time.Now()
	err := parallel(ctx, batches, clients, func(ctx context.Context, b int) error {
		evs := make([]usage.Event, 0, usage.MaxBatch)
		for k := b * usage.MaxBatch; k < min(events, (b+1)*usage.MaxBatch); k++ {
			// Event k: window w = k mod windows, its n-th event.
			w, n := k%windows, k/windows
			sub, ch, h := w%subs, (w/subs)%len(usageCharges), w/(subs*len(usageCharges))
			evs = append(evs, usage.Event{IdempotencyKey: fmt.Sprintf("bench-%d", k), SubscriptionID: fmt.Sprintf("sub-%06d", sub),
				ChargeID: usageCharges[ch], Quantity: qty,
				Timestamp: base.Add(-time.Duration(h)*time.Hour + time.Duration(n*59/perWindow)*time.Minute)})
		}
		res, err := led.Ingest(ctx, evs)
		if err != nil {
			return err
		}
		for _, x := range res {
			if x.Status != usage.Accepted {
				return fmt.Errorf("event %s %s: %s %s", x.IdempotencyKey, x.Status, x.Field, x.Reason)
			}
		}
		return nil
	})
	ingest := time.Since(ingestStart)
	if err != nil {
		return nil, err
	}
	rate := float64(events) / ingest.Seconds()
	r.figure("ingest", "%d events in %s: %.0f events/s (%d concurrent clients, %d per batch)", events, ingest.Round(time.Millisecond), rate, clients, usage.MaxBatch)

	// Seal and upload: the hourly job.
	e.o.Progress("sealing and uploading")
	e.resetCounts()
	upStart := time.Now()
	rep, err := led.SealAndUpload(ctx, time.Now())
	r.Wall = time.Since(upStart)
	e.fill(r)
	if err != nil {
		return r, err
	}
	r.finish()
	uploads := r.Calls["POST /v1/action/create"]
	r.figure("seal and upload", "%d windows sealed into %d rows, %d rows sent in %d calls, %d waiting, %d failed",
		rep.WindowsSealed, rep.RowsCreated, rep.RowsSent, rep.Calls, rep.RowsWaiting, rep.RowsFailed)
	r.figure("upload throughput", "%.0f rows/s", float64(rep.RowsSent)/r.Wall.Seconds())
	ingestGoal := 50_000
	if e.db.Dialect == store.SQLite {
		ingestGoal = 25_000
	}
	r.target("ingest rate", fmt.Sprintf("≥ %d events/s", ingestGoal), rate >= float64(ingestGoal), "%.0f events/s", rate)
	if e.o.UsageFiles {
		files := r.Calls["POST /v1/usage"]
		r.figure("usage files", "%d files (POST /v1/usage), %d status reads", files, r.Calls["GET /v1/usage/{import-id}/status"])
		r.target("upload", "every row sent, by files", rep.RowsSent == windows && uploads == 0 && files > 0, "%d rows sent, %d files, %d calls of 50", rep.RowsSent, files, uploads)
		return r, nil
	}
	want := (windows + 49) / 50
	r.target("upload calls", fmt.Sprintf("exactly %d", want), uploads == want && rep.RowsSent == windows, "%d calls, %d rows sent", uploads, rep.RowsSent)
	r.target("upload efficiency", "≥ 0.8, peak in flight = the limit", r.Efficiency >= 0.8 && r.PeakConcurrent >= e.o.Concurrency,
		"%.2f, peak %d of %d", r.Efficiency, r.PeakConcurrent, e.o.Concurrency)
	return r, nil
}
