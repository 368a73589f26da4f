package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/web"
)

// TestDriftCheckOnDemand: POST /api/v1/sync-records/drift-check queues a
// check of every synced record; the workers find the account edited in Zuora
// and repair it, without waiting for the hourly job.
func TestDriftCheckOnDemand(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			plan := engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
				BillingPeriods: []engine.BillingPeriod{{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
					{ID: "base", Name: "Base", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.RequireFromString("49")}}}}}
			_, _, err := e.DB.UpsertPlan(ctx, plan)
			require.NoError(t, err)
			_, _, err = e.DB.UpsertCustomer(ctx, engine.Customer{ID: "acme", Name: "Acme", Currency: "USD", HasPaymentMethod: true,
				BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States", City: "Boston"}})
			require.NoError(t, err)
			_, _, err = e.DB.UpsertSubscription(ctx, engine.Subscription{ID: "sub-1", CustomerID: "acme", PlanID: "pro", BillingPeriodID: "pro-monthly",
				Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true})
			require.NoError(t, err)
			e.Converge(30 * time.Second)
			srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Sync: e.DB,
				Mappings: e.Outbound.Mappings(), Kick: e.Pool.Kick}))
			t.Cleanup(srv.Close)
			c := client{t: t, url: srv.URL, key: apiKey}

			acct := e.Sim.State().Accounts[0]
			require.NoError(t, e.Zuora.UpdateAccount(ctx, acct.ID, zuora.AccountUpdate{Name: "Renamed in Zuora"}))
			st, body, _ := c.do(http.MethodPost, "/api/v1/sync-records/drift-check", "")
			require.Equal(t, http.StatusAccepted, st, "%v", body)
			require.EqualValues(t, 3, body["queued"], "plan, customer and subscription")
			e.Converge(30 * time.Second)
			require.Equal(t, "Acme", e.Sim.State().Accounts[0].Name, "repaired")
		})
	}
}
