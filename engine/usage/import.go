package usage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
)

// Usage files (DESIGN.md §3): a backlog of at least ImportThreshold rows goes
// to Zuora as usage files of up to ImportRows rows (POST /v1/usage), each an
// import batch on the same queue as the calls of 50. Exactly once, across
// both paths:
//
//   - The batch (its rows marked sending, its id the Idempotency-Key) is
//     recorded before the upload. Until Zuora's answer is recorded the file
//     is uploaded again as is, with the same key: Zuora answers a replay with
//     the first import's status URL, so a crash or a lost answer between
//     upload and record makes no second import.
//   - Once the status URL is recorded the batch is only polled (its work,
//     under its lease: wait ImportPoll, read the status), never uploaded
//     again.
//   - Zuora's import is atomic: Completed means every row is in Zuora
//     (recorded sent, with the import's id), Failed or Canceled that none is.
//     Then the rows Zuora names go back alone (Zuora's refusal: counted,
//     held after MaxAttempts) and the others go back as they were; all get a
//     new attempt number, and rows tried before go by calls of 50 (per-row
//     answers), never into a file again.
//   - A file whose answer stays unknown for longer than Zuora keeps keys is
//     looked up row by row (lookUp) before anything is sent again.

// importKind is the OnBatch outcome of an accepted file or a poll that
// found the import still running.
const importKind = "import_pending"

// importID is the import's id in its status URL (/v1/usage/{id}/status).
func importID(statusURL string) string {
	p := strings.TrimSuffix(strings.TrimRight(statusURL, "/"), "/status")
	return p[strings.LastIndex(p, "/")+1:]
}

// sendImport uploads an import batch's file, or reads its import's status.
func (l *Ledger) sendImport(ctx context.Context, now time.Time, b store.UsageBatch, rep *Report) (attempt, error) {
	if b.ImportStatusURL != "" {
		return l.pollImport(ctx, now, b, rep)
	}
	recs := make([]zuora.Usage, len(b.Rows))
	for i, r := range b.Rows {
		rec, err := record(r)
		if err != nil {
			return attempt{}, reconcile.Terminal{Err: err}
		}
		recs[i] = rec
	}
	rep.add(func(rep *Report) { rep.Calls++ })
	imp, err := l.z.ImportUsage(ctx, b.ID, recs)
	if ctx.Err() != nil {
		return attempt{}, ctx.Err()
	}
	if err != nil {
		failure := reconcile.Classify(err)
		_, isZ := zuora.AsError(err)
		if !failure.Credentials && (!isZ || !failure.Retryable) {
			// Refused for sure (nothing imported): the rows go by calls.
			l.log.Warn().Err(err).Str("batch", b.ID).Int("rows", len(b.Rows)).Msg("usage file refused; its rows go by calls")
			o := store.UsageBatchOutcome{State: store.UsageBatchFailed, Outcome: "usage file refused: " + failure.Message, Error: failure.Message, CountAttempt: true}
			for _, r := range b.Rows {
				o.Release = append(o.Release, store.UsageRelease{RowID: r.ID, Error: "its usage file was refused: " + failure.Message, NextAttempt: now})
			}
			return attempt{o: o, kind: "refused"}, nil
		}
		return attempt{}, err // unknown: the same file, the same key, later
	}
	l.log.Info().Str("batch", b.ID).Int("rows", len(b.Rows)).Int64("bytes", imp.Size).Str("import", importID(imp.StatusURL)).Msg("usage file accepted by Zuora")
	return attempt{o: store.UsageBatchOutcome{State: store.UsageBatchSending, ImportStatusURL: imp.StatusURL, NextAttempt: now,
		Outcome: fmt.Sprintf("usage file of %d rows (%d bytes) accepted; import %s pending", len(b.Rows), imp.Size, importID(imp.StatusURL))},
		kind: importKind, polling: true}, nil
}

// pollImport reads an accepted file's import status, ImportPoll after the
// batch was claimed (the sender waits: the batch is due at once, so a sync
// whose clock stands still polls too), and once it ended records its rows.
func (l *Ledger) pollImport(ctx context.Context, now time.Time, b store.UsageBatch, rep *Report) (attempt, error) {
	t := time.NewTimer(l.cfg.ImportPoll)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return attempt{}, ctx.Err()
	}
	rep.add(func(rep *Report) { rep.Calls++ })
	st, err := l.z.GetUsageImportStatus(ctx, b.ImportStatusURL)
	if ctx.Err() != nil {
		return attempt{}, ctx.Err()
	}
	if err != nil {
		return attempt{}, fmt.Errorf("usage import status: %w", err) // read again after the retry wait
	}
	id := importID(b.ImportStatusURL)
	switch st.Status {
	case zuora.ImportPending, zuora.ImportProcessing:
		return attempt{o: store.UsageBatchOutcome{State: store.UsageBatchSending, NextAttempt: now,
			Outcome: "import " + id + " " + strings.ToLower(st.Status)}, kind: importKind, polling: true}, nil
	case zuora.ImportCompleted:
		o := store.UsageBatchOutcome{State: store.UsageBatchDone, CountAttempt: true, Sent: make(map[int64]string, len(b.Rows)),
			Outcome: fmt.Sprintf("import %s completed: %d rows", id, len(b.Rows))}
		for _, r := range b.Rows {
			o.Sent[r.ID] = "import:" + id
		}
		return attempt{o: o, kind: "stored"}, nil
	}
	// Failed or Canceled: nothing was imported.
	bad := make(map[int]string, len(st.Errors))
	for _, e := range st.Errors {
		bad[e.Row] = e.Message
	}
	msg := st.Message
	if msg == "" {
		msg = "import " + strings.ToLower(st.Status)
	}
	o := store.UsageBatchOutcome{State: store.UsageBatchFailed, CountAttempt: true, Error: msg,
		Outcome: fmt.Sprintf("import %s %s (%d rows named): nothing imported; the rows go by calls", id, strings.ToLower(st.Status), len(bad))}
	for i, r := range b.Rows {
		if m, ok := bad[i+1]; ok {
			o.Release = append(o.Release, l.rejected(now, r, true, "Zuora's usage import refused the row: "+m))
			continue
		}
		o.Release = append(o.Release, store.UsageRelease{RowID: r.ID, NextAttempt: now,
			Error: "its usage file's import " + strings.ToLower(st.Status) + " (" + msg + "); sent again by calls"})
	}
	l.log.Warn().Str("batch", b.ID).Str("import", id).Str("status", st.Status).Int("rows_refused", len(bad)).Str("message", msg).
		Msg("usage import ended without importing; its rows go by calls")
	return attempt{o: o, kind: "refused"}, nil
}
