package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"encoding/json"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/web"
)

// creditEnv is a customer with a synced subscription (so a Zuora account)
// behind billsync's API; attempts of 1 make a lost answer reach the
// reconcile, as a crash between the call and its record would.
func creditEnv(t *testing.T, d store.Dialect, opts ...enginetest.Options) (*enginetest.Env, client) {
	t.Helper()
	o := enginetest.Options{ClientAttempts: 1, NoKeepAlive: true}
	if len(opts) > 0 {
		o = opts[0]
	}
	e := enginetest.New(t, d, o)
	srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Sync: e.DB,
		Mappings: e.Outbound.Mappings(), Kick: e.Pool.Kick}))
	t.Cleanup(srv.Close)
	c := client{t: t, url: srv.URL, key: apiKey}
	c.want(http.MethodPut, "/api/v1/plans/pro", `{"kind":"plan","name":"Pro","pricingType":"paid","currency":"USD",
	 "billingPeriods":[{"id":"monthly","period":"month","charges":[{"id":"fee","name":"Fee","type":"recurring","model":"flat_fee","price":30}]}]}`, 201)
	c.want(http.MethodPut, "/api/v1/customers/acme", `{"name":"Acme","currency":"USD","hasPaymentMethod":true,
	 "billTo":{"firstName":"Ada","lastName":"Lovelace","country":"United States"}}`, 201)
	c.want(http.MethodPut, "/api/v1/subscriptions/sub-1", `{"customerId":"acme","planId":"pro","billingPeriodId":"monthly","status":"active",
	 "startDate":"`+time.Now().UTC().AddDate(0, -1, 0).Format("2006-01-02")+`"}`, 201)
	e.Converge(30 * time.Second)
	return e, c
}

func (c client) want(method, path, body string, status int) map[string]any {
	c.t.Helper()
	st, b, _ := c.do(method, path, body)
	require.Equal(c.t, status, st, "%s %s: %v", method, path, b)
	return b
}

// TestCreditsEndToEnd (issue 15, Togai's "Charge ID"): a credit granted
// through the API becomes one posted Zuora credit memo on the customer's
// account, made from the credit charge billsync creates, shown with its
// number and link; the answer of the create is lost and Zuora forgets the
// idempotency key before the retry, which finds the memo by its marker
// instead of making a second; the caller's repeated POST is the same
// credit; bad input changes nothing.
func TestCreditsEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e, c := creditEnv(t, d)
			grant := `{"idempotencyKey":"refund-42","amount":"12.50","reason":"Outage on 1 March"}`

			for _, bad := range []struct{ path, body, field string }{
				{"/api/v1/customers/acme/credits", `{"idempotencyKey":"x","amount":"-1"}`, "amount"},
				{"/api/v1/customers/acme/credits", `{"idempotencyKey":"x","amount":"1.005"}`, "amount"},
				{"/api/v1/customers/acme/credits", `{"amount":"1"}`, "idempotencyKey"},
				{"/api/v1/customers/acme/credits", `{"idempotencyKey":"x"}`, "amount"},
				{"/api/v1/customers/acme/credits", `{"idempotencyKey":"x","amount":"1","currency":"EUR"}`, "currency"},
				{"/api/v1/customers/acme/credits", `{"idempotencyKey":"x","amount":"1","effectiveDate":"2026-02-30"}`, "effectiveDate"},
			} {
				b := c.want(http.MethodPost, bad.path, bad.body, http.StatusUnprocessableEntity)
				require.Contains(t, mustString(b), bad.field)
			}
			c.want(http.MethodPost, "/api/v1/customers/nobody/credits", grant, http.StatusNotFound)

			// The memo is made but its answer is lost; Zuora then forgets the key.
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/credit-memos", Kind: zuorasim.FaultLostResponse, Count: 1})
			first := c.want(http.MethodPost, "/api/v1/customers/acme/credits", grant, http.StatusCreated)
			id := first["id"].(string)
			again := c.want(http.MethodPost, "/api/v1/customers/acme/credits", grant, http.StatusOK)
			require.Equal(t, id, again["id"], "the caller's key makes a repeated POST the same credit")
			b := c.want(http.MethodPost, "/api/v1/customers/acme/credits", `{"idempotencyKey":"refund-42","amount":"99"}`, http.StatusConflict)
			require.Contains(t, mustString(b), "different credit")

			ctx := t.Context()
			// A pool whose retries wait an hour: the failed attempt stays failed.
			slow := worker.New(e.DB, e.Outbound.Kinds(), worker.Options{Workers: 1, Logger: zerolog.Nop(), Lease: time.Minute,
				BackoffUnit: time.Hour, MaxBackoff: 2 * time.Hour, PollInterval: 5 * time.Millisecond})
			stop := enginetest.Start(slow)
			deadline := time.Now().Add(20 * time.Second)
			var rec store.SyncRecord
			for {
				var err error
				rec, err = e.DB.GetSyncRecord(ctx, store.EntityCredit, id)
				require.NoError(t, err)
				if rec.State == store.StateFailed {
					break
				}
				require.True(t, time.Now().Before(deadline), "the lost answer was never seen: %+v", rec)
				time.Sleep(5 * time.Millisecond)
			}
			stop()
			require.Len(t, e.Sim.CreditMemos(), 1, "Zuora made the memo whose answer was lost: %+v", rec)
			e.Sim.AdvanceClock(25 * time.Hour) // the idempotency key is forgotten
			_, err := e.DB.Retry(ctx, rec.ID)  // the operator's "Retry now"
			require.NoError(t, err)
			e.Converge(30 * time.Second)

			memos := e.Sim.CreditMemos()
			require.Len(t, memos, 1, "nothing twice: the retry found the memo by its marker")
			m := memos[0]
			require.Equal(t, "12.5", m.Amount)
			require.Equal(t, "Posted", m.Status)
			require.Contains(t, m.Comment, "Outage on 1 March")
			require.Contains(t, m.Comment, id)
			st := e.Sim.State()
			require.Len(t, st.Accounts, 1)
			require.Equal(t, st.Accounts[0].ID, m.AccountID)
			var chargeSKU bool
			for _, p := range st.Products {
				chargeSKU = chargeSKU || p.SKU == "_billsync-credits"
			}
			require.True(t, chargeSKU, "the credit charge's product was created")
			require.Len(t, m.ChargeIDs, 1)

			list := c.want(http.MethodGet, "/api/v1/customers/acme/credits", "", http.StatusOK)
			data := list["data"].([]any)
			require.Len(t, data, 1)
			cr := data[0].(map[string]any)
			require.Equal(t, id, cr["id"])
			require.Equal(t, "12.5", cr["amount"])
			require.Equal(t, "USD", cr["currency"])
			sync := cr["sync"].(map[string]any)
			require.Equal(t, store.StateSynced, sync["state"])
			require.Equal(t, m.Number, sync["zuoraNumber"])
			require.Contains(t, sync["zuoraUrl"], m.ID)
			hist, err := e.DB.SyncHistory(ctx, rec.ID, 10)
			require.NoError(t, err)
			found := false
			for _, h := range hist {
				found = found || strings.Contains(h.Detail, "found (an earlier attempt made it)")
			}
			require.True(t, found, "the retry looked the memo up: %+v", hist)

			// A second credit reuses the charge; a repeat after the sync is still one credit.
			c.want(http.MethodPost, "/api/v1/customers/acme/credits", `{"idempotencyKey":"goodwill-1","amount":"5"}`, http.StatusCreated)
			c.want(http.MethodPost, "/api/v1/customers/acme/credits", grant, http.StatusOK)
			e.Converge(30 * time.Second)
			memos = e.Sim.CreditMemos()
			require.Len(t, memos, 2)
			require.Equal(t, memos[0].ChargeIDs, memos[1].ChargeIDs, "one credit charge")
			require.Equal(t, 2, e.Sim.Stats().Calls["POST /v1/object/product-rate-plan-charge"], "the plan's charge, and the credit charge once")
		})
	}
}

// TestCancelWritesOffOpenBalance (issue 15): a cancellation asked to write
// off (writeOff on the subscription's cancel) sends the cancel order with
// processingOptions.writeOff; Zuora writes the unpaid invoice off with a
// credit memo; the answer of the order is lost and the retry sends nothing
// twice. writeOff without a cancellation is refused.
func TestCancelWritesOffOpenBalance(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e, c := creditEnv(t, d)
			acct := e.Sim.State().Accounts[0]
			runs, err := e.Sim.BillRun(e.Sim.Now().UTC().Format("2006-01-02"), acct.AccountNumber)
			require.NoError(t, err)
			require.NotEmpty(t, runs[0].InvoiceNumber)
			require.Equal(t, "30", e.Sim.Invoices()[0].Balance)

			sub := c.want(http.MethodGet, "/api/v1/subscriptions/sub-1", "", http.StatusOK)
			b := c.want(http.MethodPut, "/api/v1/subscriptions/sub-1", `{"customerId":"acme","planId":"pro","billingPeriodId":"monthly","status":"active",
			 "startDate":"`+sub["startDate"].(string)+`","writeOff":true}`, http.StatusUnprocessableEntity)
			require.Contains(t, mustString(b), "writeOff")

			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/orders", Kind: zuorasim.FaultLostResponse, Count: 1})
			today := time.Now().UTC().Format("2006-01-02")
			c.want(http.MethodPut, "/api/v1/subscriptions/sub-1", `{"customerId":"acme","planId":"pro","billingPeriodId":"monthly","status":"cancelled",
			 "startDate":"`+sub["startDate"].(string)+`","cancellationPolicy":"specific_date","cancellationDate":"`+today+`","writeOff":true}`, http.StatusOK)
			e.Converge(30 * time.Second)

			require.Equal(t, "Cancelled", e.Sim.State().Subscriptions[0].Status)
			require.Equal(t, "0", e.Sim.Invoices()[0].Balance, "the open balance is written off")
			memos := e.Sim.CreditMemos()
			require.Len(t, memos, 1, "written off once")
			require.Equal(t, "Write-off", memos[0].ReasonCode)
			require.Equal(t, runs[0].InvoiceID, memos[0].ReferredInvoiceID)
			srec, err := e.DB.GetSyncRecord(t.Context(), store.EntitySubscription, "sub-1")
			require.NoError(t, err)
			hist, err := e.DB.SyncHistory(t.Context(), srec.ID, 10)
			require.NoError(t, err)
			require.Equal(t, 2, e.Sim.Stats().Calls["POST /v1/orders"], "the first order and the cancellation, whose lost answer was not resent: %+v", hist)
			require.Contains(t, hist[0].Detail, "cancelled in Zuora", "the retry found the cancellation made")
			got := c.want(http.MethodGet, "/api/v1/subscriptions/sub-1", "", http.StatusOK)
			require.Equal(t, true, got["writeOff"])
			require.Equal(t, store.StateSynced, got["sync"].(map[string]any)["state"])
		})
	}
}

func mustString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCreditSurvivesACrash: billsync dies (its claims kept, as a killed
// process leaves them) while the credit memo call is on its way; the memo
// was not made, and once the lease lapses another worker makes it, once.
func TestCreditSurvivesACrash(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e, c := creditEnv(t, d, enginetest.Options{ClientAttempts: 1, NoKeepAlive: true, Lease: 3 * time.Second, KeepClaimsOnStop: true})
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/credit-memos", Kind: zuorasim.FaultLatency, Latency: 5 * time.Second, Count: 1})
			cr := c.want(http.MethodPost, "/api/v1/customers/acme/credits", `{"idempotencyKey":"crash-1","amount":"3"}`, http.StatusCreated)
			stop := enginetest.Start(e.Pool)
			deadline := time.Now().Add(20 * time.Second)
			for e.Sim.Stats().Calls["POST /v1/credit-memos"] == 0 {
				require.True(t, time.Now().Before(deadline), "the memo call never started")
				time.Sleep(5 * time.Millisecond)
			}
			stop() // the crash: the call is cut off, the claim stays
			rec, err := e.DB.GetSyncRecord(t.Context(), store.EntityCredit, cr["id"].(string))
			require.NoError(t, err)
			require.Equal(t, store.StateInFlight, rec.State, "the dead process still holds the claim")
			require.Empty(t, e.Sim.CreditMemos(), "nothing reached Zuora")
			e.Converge(30 * time.Second) // the lease lapses; the sweeper and a new worker take over
			memos := e.Sim.CreditMemos()
			require.Len(t, memos, 1, "nothing lost, nothing twice")
			require.Equal(t, "3", memos[0].Amount)
			rec, err = e.DB.GetSyncRecord(t.Context(), store.EntityCredit, cr["id"].(string))
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State)
			require.Equal(t, memos[0].Number, rec.ZuoraNumber)
		})
	}
}
