package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/web"
)

func usageAPI(t *testing.T, e *enginetest.Env, now time.Time) (client, *usage.Ledger) {
	ctx := context.Background()
	plan := engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "base", Name: "Base", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.RequireFromString("49")},
			{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: decimal.RequireFromString("0.01"), UnitOfMeasure: "Each", Feature: "api-calls"},
		}}}}
	_, _, err := e.DB.UpsertPlan(ctx, plan)
	require.NoError(t, err)
	_, _, err = e.DB.UpsertCustomer(ctx, engine.Customer{ID: "acme", Name: "Acme", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States"}})
	require.NoError(t, err)
	_, _, err = e.DB.UpsertSubscription(ctx, engine.Subscription{ID: "sub-1", CustomerID: "acme", PlanID: "pro", BillingPeriodID: "pro-monthly",
		Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12, AutoRenew: true})
	require.NoError(t, err)
	e.Converge(30 * time.Second)
	l := usage.New(e.DB, e.Zuora, usage.Config{Now: func() time.Time { return now }, Charges: e.Outbound})
	srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Usage: l}))
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL, key: apiKey}, l
}

func TestUsageAPI(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			now := time.Date(2026, 11, 20, 14, 20, 0, 0, time.UTC)
			c, l := usageAPI(t, e, now)

			st, body, _ := c.do(http.MethodPost, "/api/v1/usage", `{"events":[
				{"idempotencyKey":"e1","subscriptionId":"sub-1","chargeId":"api","quantity":"0.1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e2","subscriptionId":"sub-1","feature":"api-calls","quantity":0.2,"timestamp":"2026-11-20T13:10:00+01:00"},
				{"idempotencyKey":"e3","subscriptionId":"sub-1","chargeId":"api","quantity":1234567890123.123456789,"timestamp":"2026-11-20T13:15:00Z"},
				{"idempotencyKey":"e1","subscriptionId":"sub-1","chargeId":"api","quantity":"5","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e4","subscriptionId":"sub-1","chargeId":"api","quantity":"-1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e5","subscriptionId":"nope","chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e6","subscriptionId":"sub-1","chargeId":"base","quantity":"1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e7","subscriptionId":"sub-1","chargeId":"api","quantity":"1","timestamp":"yesterday"},
				{"idempotencyKey":"e8","subscriptionId":"sub-1","chargeId":"api","quantity":"1","timestamp":"2026-11-20T15:00:00Z"},
				{"idempotencyKey":"e9","subscriptionId":"sub-1","chargeId":"api","quantity":"abc","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e10","subscriptionId":"sub-1\u0000","chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e11\u0000","subscriptionId":"sub-1","chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e12","subscriptionId":"sub-1","chargeId":"api","quantity":"12345678901234","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e13","subscriptionId":"sub-1","chargeId":"api","quantity":"1e2000000000","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e14","subscriptionId":"sub-1","chargeId":"api","quantity":"1e-2000000000","timestamp":"2026-11-20T13:05:00Z"}]}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.EqualValues(t, 3, body["accepted"])
			require.EqualValues(t, 1, body["duplicates"])
			require.EqualValues(t, 11, body["rejected"])
			results := body["results"].([]any)
			status := func(i int) (string, string) {
				r := results[i].(map[string]any)
				f, _ := r["field"].(string)
				return r["status"].(string), f
			}
			for i, want := range [][2]string{{"accepted", ""}, {"accepted", ""}, {"accepted", ""}, {"duplicate", ""}, {"rejected", "quantity"},
				{"rejected", "subscriptionId"}, {"rejected", "chargeId"}, {"rejected", "timestamp"}, {"rejected", "timestamp"}, {"rejected", "quantity"},
				{"rejected", "subscriptionId"}, {"rejected", "idempotencyKey"}, {"rejected", "quantity"}, {"rejected", "quantity"}, {"rejected", "quantity"}} {
				s, f := status(i)
				require.Equal(t, want[0], s, "event %d: %v", i, results[i])
				require.Equal(t, want[1], f, "event %d: %v", i, results[i])
			}
			require.Equal(t, "2026-11-20T12:00:00Z", results[1].(map[string]any)["windowStart"], "timestamps are bucketed in UTC")

			// Bad input: a problem naming the field, nothing stored.
			for _, tc := range []struct{ body, field string }{
				{`{}`, "events"},
				{`{"events":[]}`, "events"},
				{`{"events":[{"idempotencyKey":"b1","subscriptionId":"sub-1","chargeId":"api","quantity":true,"timestamp":"2026-11-20T13:05:00Z"}]}`, "events[0].quantity"},
				{`{"events":[{"idempotencyKey":"b2","subscriptionId":"sub-1","chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z","extra":1}]}`, "extra"},
				{`{"events":[{"idempotencyKey":"b3","subscriptionId":7,"chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z"}]}`, "events.subscriptionId"},
				{`{"events":[` + strings.TrimSuffix(strings.Repeat(`{"idempotencyKey":"b4","subscriptionId":"sub-1","chargeId":"api","quantity":"1","timestamp":"2026-11-20T13:05:00Z"},`, 1001), ",") + `]}`, "events"},
			} {
				st, body, h := c.do(http.MethodPost, "/api/v1/usage", tc.body)
				require.Equal(t, http.StatusBadRequest, st, "%s: %v", tc.field, body)
				require.Equal(t, "application/problem+json", h.Get("Content-Type"))
				require.Equal(t, tc.field, body["field"], "%v", body)
			}
			ws, err := l.Windows(context.Background(), "sub-1", usage.WindowFilter{})
			require.NoError(t, err)
			require.Len(t, ws, 2)
			var total decimal.Decimal
			for _, w := range ws {
				total = total.Add(w.Ingested)
			}
			require.Equal(t, "1234567890123.423456789", total.String(), "exact, and nothing of the bad requests stored")

			// The usage view and the manual sync.
			st, body, _ = c.do(http.MethodGet, "/api/v1/subscriptions/sub-1/usage", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			wins := body["windows"].([]any)
			require.Len(t, wins, 2)
			w0 := wins[0].(map[string]any)
			require.Equal(t, "2026-11-20T13:00:00Z", w0["start"])
			require.Equal(t, "1234567890123.223456789", w0["ingested"])
			require.Equal(t, "0", w0["uploaded"])
			require.Equal(t, "1234567890123.223456789", w0["pending"])

			st, body, _ = c.do(http.MethodPost, "/api/v1/subscriptions/sub-1/sync-usage", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.EqualValues(t, 2, body["rowsSent"])
			require.Len(t, body["sent"], 2)

			_, _, _ = c.do(http.MethodPost, "/api/v1/usage", `{"events":[{"idempotencyKey":"late","subscriptionId":"sub-1","chargeId":"api","quantity":"2","timestamp":"2026-11-20T14:01:00Z"}]}`)
			st, body, _ = c.do(http.MethodPost, "/api/v1/subscriptions/sub-1/sync-usage", `{}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.EqualValues(t, 0, body["rowsSent"], "the current hour waits unless asked")
			st, body, _ = c.do(http.MethodPost, "/api/v1/subscriptions/sub-1/sync-usage", `{"includeCurrentHour":true}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.EqualValues(t, 1, body["rowsSent"])
			sent := body["sent"].([]any)[0].(map[string]any)
			require.Equal(t, "2", sent["quantity"])
			require.NotEmpty(t, sent["zuoraUsageId"])

			// The hourly job on demand: nothing left that is due.
			st, body, _ = c.do(http.MethodPost, "/api/v1/usage/sync", `{"includeCurrentHour":false}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.EqualValues(t, 0, body["rowsSent"])
			st, _, _ = c.do(http.MethodPost, "/api/v1/usage/sync", `{"bogus":1}`)
			require.Equal(t, http.StatusBadRequest, st)

			st, body, _ = c.do(http.MethodGet, "/api/v1/subscriptions/sub-1/usage?from=2026-11-20T13:00:00Z&to=2026-11-20T14:00:00Z", "")
			require.Equal(t, http.StatusOK, st, "%v", body)
			wins = body["windows"].([]any)
			require.Len(t, wins, 1)
			w0 = wins[0].(map[string]any)
			require.Equal(t, "0", w0["pending"])
			require.Len(t, w0["zuoraUsageIds"], 1)

			// A key seen before is a duplicate whatever changed since (here the
			// subscription's start moves after the stored event): a client
			// resending its stored event is not told it was refused.
			sub, err := e.DB.GetSubscription(context.Background(), "sub-1")
			require.NoError(t, err)
			sub.StartDate = "2026-11-21" // the stored events now predate the subscription
			_, _, err = e.DB.UpsertSubscription(context.Background(), sub)
			require.NoError(t, err)
			st, body, _ = c.do(http.MethodPost, "/api/v1/usage", `{"events":[
				{"idempotencyKey":"e1","subscriptionId":"sub-1","chargeId":"api","quantity":"0.1","timestamp":"2026-11-20T13:05:00Z"},
				{"idempotencyKey":"e15","subscriptionId":"sub-1","chargeId":"api","quantity":"0.1","timestamp":"2026-11-20T13:05:00Z"}]}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			results = body["results"].([]any)
			require.Equal(t, "duplicate", results[0].(map[string]any)["status"], "%v", results[0])
			require.Equal(t, "rejected", results[1].(map[string]any)["status"], "%v", results[1])

			for _, tc := range []struct {
				method, path, body string
				status             int
				field              string
			}{
				{http.MethodGet, "/api/v1/subscriptions/sub-1/usage?from=%00", "", http.StatusBadRequest, "from"},
				{http.MethodGet, "/api/v1/subscriptions/sub%00/usage", "", http.StatusBadRequest, "id"},
				{http.MethodGet, "/api/v1/subscriptions/nope/usage", "", http.StatusNotFound, ""},
				{http.MethodPost, "/api/v1/subscriptions/nope/sync-usage", "", http.StatusNotFound, ""},
				{http.MethodGet, "/api/v1/subscriptions/sub-1/usage?from=today", "", http.StatusBadRequest, "from"},
				{http.MethodGet, "/api/v1/subscriptions/sub-1/usage?limit=0", "", http.StatusBadRequest, "limit"},
				{http.MethodPost, "/api/v1/subscriptions/sub-1/sync-usage", `{"includeCurrentHour":"yes"}`, http.StatusBadRequest, "includeCurrentHour"},
				{http.MethodPost, "/api/v1/subscriptions/sub-1/sync-usage", `{"now":1}`, http.StatusBadRequest, "now"},
			} {
				st, body, _ := c.do(tc.method, tc.path, tc.body)
				require.Equal(t, tc.status, st, "%s %s: %v", tc.method, tc.path, body)
				if tc.field != "" {
					require.Equal(t, tc.field, body["field"], fmt.Sprint(body))
				}
			}
		})
	}
}

func TestUsageRoutesAbsentWithoutLedger(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, storetest.Dialects[1])
	c := newAPI(t, db)
	st, _, _ := c.do(http.MethodPost, "/api/v1/usage", `{"events":[]}`)
	require.Equal(t, http.StatusNotFound, st)
}
