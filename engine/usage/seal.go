package usage

import (
	"context"
	"fmt"
	"time"
)

// description names a window (and a correction) in Zuora; the 24 h look-up
// finds upload rows by it.
func description(subID, chargeID string, start time.Time, seq int) string {
	d := fmt.Sprintf("billsync %s/%s %s", subID, chargeID, start.UTC().Format("2006-01-02T15:04Z"))
	if seq > 0 {
		d += fmt.Sprintf(" (correction %d)", seq)
	}
	if len(d) > 200 {
		d = d[:200]
	}
	return d
}

// seal turns the unsealed quantity of every dirty window that starts at or
// before cutoff (of one subscription when subID is set) into upload rows. It
// returns the windows sealed and the rows created.
func (l *Ledger) seal(ctx context.Context, now, cutoff time.Time, subID string) (windows, rows int, err error) {
	return l.db.SealUsageWindows(ctx, now, cutoff, subID, description)
}
