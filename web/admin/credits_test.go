package admin_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestCustomerPageShowsCredits: a credit shows on its customer's page with
// its Zuora credit memo number and link, and has a page of its own (its
// sync record, history and Retry, like every entity).
func TestCustomerPageShowsCredits(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{password: password, subs: 1})
			c := f.client()
			c.login(password)
			cr, created, err := f.e.DB.GrantCredit(f.ctx, engine.Credit{CustomerID: "c00", IdempotencyKey: "k1", Amount: dec("7.25"),
				Currency: "USD", Reason: "Late delivery"})
			require.NoError(t, err)
			require.True(t, created)
			f.e.Converge(30 * time.Second)
			rec, err := f.e.DB.GetSyncRecord(f.ctx, store.EntityCredit, cr.ID)
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "%+v", rec)

			resp, body := c.get("/admin/entities/customer/c00")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, body, `id="credits"`)
			require.Contains(t, body, rec.ZuoraNumber)
			require.Contains(t, body, "7.25 USD")
			require.Contains(t, body, "Late delivery")
			resp, body = c.get("/admin/entities/credit/" + cr.ID)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, body, rec.ZuoraNumber)
			require.Contains(t, body, "k1")
		})
	}
}
