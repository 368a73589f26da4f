package admin

import (
	"context"
	"errors"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// creditRow is a credit on its customer's page: its Zuora credit memo
// (number and link, from the credit's sync record) and sync state.
type creditRow struct {
	engine.Credit
	State, ZuoraNumber, ZuoraURL string
}

// creditsOf lists the customer's credits with their memos.
func (a *Admin) creditsOf(ctx context.Context, d *entityData) error {
	credits, err := a.opts.Store.ListCredits(ctx, d.Customer.ID)
	if err != nil {
		return err
	}
	for _, c := range credits {
		row := creditRow{Credit: c, State: "pending"}
		rec, err := a.opts.Store.GetSyncRecord(ctx, store.EntityCredit, c.ID)
		switch {
		case err == nil:
			row.State, row.ZuoraNumber, row.ZuoraURL = rec.State, rec.ZuoraNumber, rec.ZuoraURL
		case !errors.Is(err, engine.ErrNotFound):
			return err
		}
		d.Credits = append(d.Credits, row)
	}
	return nil
}
