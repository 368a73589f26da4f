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
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
	"github.com/billsync/billsync/web"
)

// TestLinkToExistingZuoraRecords (issue 15): through the public API, a
// customer and a subscription with a billingId adopt the Zuora account and
// subscription that already exist (no new ones), the linked customer syncs
// though it has no payment method, ZUORA__ metadata reaches the custom
// field of that name on Product, Account and Subscription, every synced
// object carries the back-link to its admin page (BILLSYNC_PUBLIC_URL), a
// second link to the same Zuora record is a 409, and a ZUORA__ key the
// tenant does not define skips the record naming it.
func TestLinkToExistingZuoraRecords(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const public = "https://billsync.example.test"
			ten := enginetest.Tenant()
			ten.Define("Product", zuorasim.CustomField{Name: "Family__c", Type: "text", Length: 50})
			ten.Define("Account", zuorasim.CustomField{Name: "Region__c", Type: "text", Length: 50})
			ten.Define("Subscription", zuorasim.CustomField{Name: "Tier__c", Type: "text", Length: 50})
			e := enginetest.New(t, d, enginetest.Options{PublicURL: public, Sim: zuorasim.Options{Tenant: &ten}})
			ctx := context.Background()
			srv := httptest.NewServer(web.New(web.Options{Store: e.DB, Logger: zerolog.Nop(), APIKey: apiKey, Sync: e.DB,
				Mappings: e.Outbound.Mappings(), Kick: e.Pool.Kick}))
			t.Cleanup(srv.Close)
			c := client{t: t, url: srv.URL, key: apiKey}
			put := func(path, body string, want int) map[string]any {
				t.Helper()
				st, b, _ := c.do(http.MethodPut, path, body)
				require.Equal(t, want, st, "%s: %v", path, b)
				return b
			}

			put("/api/v1/plans/pro", `{"kind":"plan","name":"Pro","pricingType":"paid","currency":"USD","metadata":{"ZUORA__Family__c":"core","owner":"growth"},
			 "billingPeriods":[{"id":"pro-monthly","period":"month","charges":[
			   {"id":"seats","name":"Seats","type":"recurring","model":"per_unit","price":10,"unitOfMeasure":"seat"}]}]}`, 201)
			e.Converge(30 * time.Second)
			prod := e.Sim.State().Products[0]
			require.Equal(t, "core", prod.Fields["Family__c"])
			require.Equal(t, public+"/admin/entities/plan/pro", prod.Fields[zuora.URLField])

			// What already exists in Zuora: an account and a subscription to
			// billsync's product, made by a Zuora user.
			yes := true
			rp, err := e.Outbound.Mappings().Get(ctx, mappings.RatePlan, "pro/pro-monthly")
			require.NoError(t, err)
			ch, err := e.Outbound.Mappings().Get(ctx, mappings.Charge, "pro/seats")
			require.NoError(t, err)
			res, err := e.Zuora.CreateOrder(ctx, zuora.IdempotencyKey("existing"), zuora.Order{OrderDate: "2026-01-01",
				NewAccount: &zuora.OrderNewAccount{Name: "Acme (Zuora)", Currency: "USD", BillCycleDay: 1, AutoPay: new(bool),
					BillToContact: zuora.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States"}},
				Subscriptions: []zuora.OrderSubscription{{OrderActions: []zuora.OrderAction{{Type: "CreateSubscription",
					TriggerDates: []zuora.TriggerDate{{Name: zuora.TriggerContractEffective, TriggerDate: "2026-01-01"}},
					CreateSubscription: &zuora.CreateSubscription{Terms: zuora.SubscriptionTerms{InitialTerm: zuora.InitialTerm{Period: 12, PeriodType: "Month", TermType: "TERMED", StartDate: "2026-01-01"},
						RenewalTerms: []zuora.RenewalTerm{{Period: 12, PeriodType: "Month"}}, AutoRenew: &yes, RenewalSetting: "RENEW_WITH_SPECIFIC_TERM"},
						SubscribeToRatePlans: []zuora.RatePlanOverride{{ProductRatePlanID: rp.ZuoraID, ChargeOverrides: []zuora.ChargeOverride{{
							ProductRatePlanChargeID: ch.ZuoraID, Pricing: &zuora.Pricing{RecurringPerUnit: &zuora.PriceOverride{Quantity: zuora.NumberFromDecimal(decimal.NewFromInt(2))}}}}}}}}}}}})
			require.NoError(t, err)
			require.NotEmpty(t, res.Subscriptions, "%+v", res)
			acctNum, subNum := res.AccountNumber, res.Subscriptions[0].SubscriptionNumber

			put("/api/v1/customers/acme", `{"name":"Acme","currency":"USD","hasPaymentMethod":false,"billingId":"`+acctNum+`",
			 "metadata":{"ZUORA__Region__c":"EMEA","crm":"hub-1"},"billTo":{"firstName":"Ada","lastName":"Lovelace","country":"United States"}}`, 201)
			put("/api/v1/subscriptions/sub-1", `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","status":"active","startDate":"2026-01-01",
			 "chargeQuantities":{"seats":"5"},"billingId":"`+subNum+`","metadata":{"ZUORA__Tier__c":"gold"}}`, 201)
			e.Converge(30 * time.Second)
			st := e.Sim.State()
			require.Len(t, st.Accounts, 1, "the existing account was adopted, none created")
			require.Equal(t, acctNum, st.Accounts[0].AccountNumber)
			require.Equal(t, "acme", st.Accounts[0].CustomFields["BillsyncId__c"])
			require.Equal(t, "EMEA", st.Accounts[0].CustomFields["Region__c"])
			require.NotContains(t, st.Accounts[0].CustomFields, "crm__c")
			require.Equal(t, public+"/admin/entities/customer/acme", st.Accounts[0].CustomFields[zuora.URLField])
			require.Equal(t, subNum, st.Subscriptions[0].SubscriptionNumber, "the existing subscription was adopted")
			for _, s := range st.Subscriptions {
				require.Equal(t, subNum, s.SubscriptionNumber, "no second subscription")
			}
			z, err := e.Zuora.GetSubscription(ctx, subNum)
			require.NoError(t, err)
			require.Equal(t, "sub-1", z.CustomFields["BillsyncId__c"])
			require.Equal(t, "gold", z.CustomFields["Tier__c"])
			require.Equal(t, public+"/admin/entities/subscription/sub-1", z.CustomFields[zuora.URLField])
			q, _ := z.RatePlans[0].RatePlanCharges[0].Quantity.Decimal()
			require.Equal(t, "5", q.String(), "then synced like its own")
			for _, kind := range []string{store.EntityCustomer, store.EntitySubscription} {
				rec, err := e.DB.GetSyncRecord(ctx, kind, map[string]string{store.EntityCustomer: "acme", store.EntitySubscription: "sub-1"}[kind])
				require.NoError(t, err)
				require.Equal(t, store.StateSynced, rec.State, "%s: %s %s", kind, rec.Reason, rec.LastErrorMessage)
			}
			_, b, _ := c.do(http.MethodGet, "/api/v1/customers/acme", "")
			require.Equal(t, acctNum, b["billingId"])
			require.Equal(t, map[string]any{"ZUORA__Region__c": "EMEA", "crm": "hub-1"}, b["metadata"])

			// Conflicts and bad input.
			b = put("/api/v1/customers/other", `{"name":"Other","currency":"USD","billingId":"`+acctNum+`"}`, 409)
			require.Equal(t, "billingId", b["field"])
			put("/api/v1/subscriptions/sub-2", `{"customerId":"acme","planId":"pro","billingPeriodId":"pro-monthly","startDate":"2026-01-01","billingId":"`+subNum+`"}`, 409)
			put("/api/v1/customers/bad", `{"name":"Bad","currency":"USD","metadata":{"ZUORA__nope":"x"}}`, 422)

			// A ZUORA__ field the tenant does not define: skipped before any write, naming it.
			put("/api/v1/customers/acme", `{"name":"Acme","currency":"USD","hasPaymentMethod":false,"billingId":"`+acctNum+`",
			 "metadata":{"ZUORA__Segment__c":"smb"},"billTo":{"firstName":"Ada","lastName":"Lovelace","country":"United States"}}`, 200)
			e.Converge(30 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntityCustomer, "acme")
			require.NoError(t, err)
			require.Equal(t, store.StateSkipped, rec.State)
			require.Contains(t, rec.Reason, "Segment__c (text, 255) on Account")
		})
	}
}
