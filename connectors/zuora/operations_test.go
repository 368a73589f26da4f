package zuora

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func TestCatalogCRUDAndReads(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	ids := env.seedCatalog(ctx, "Team")

	p, err := env.c.GetProduct(ctx, ids.productID)
	require.NoError(t, err)
	require.Equal(t, "Team", p.Name)
	require.Equal(t, "plan_Team", p.CustomFields["BillsyncId__c"])

	require.NoError(t, env.c.UpdateProduct(ctx, ids.productID, Product{Description: "for teams", CustomFields: map[string]any{"BillsyncId__c": "plan_Team2"}}))
	p, err = env.c.GetProduct(ctx, ids.productID)
	require.NoError(t, err)
	require.Equal(t, "for teams", p.Description)
	require.Equal(t, "plan_Team2", p.CustomFields["BillsyncId__c"])

	rp, err := env.c.GetProductRatePlan(ctx, ids.planID)
	require.NoError(t, err)
	require.Equal(t, ids.productID, rp.ProductID)
	require.NoError(t, env.c.UpdateProductRatePlan(ctx, ids.planID, ProductRatePlan{Description: "monthly"}))

	ch, err := env.c.GetProductRatePlanCharge(ctx, ids.unitID)
	require.NoError(t, err)
	require.Equal(t, ChargeModelPerUnit, ch.ChargeModel)
	ch.Description = "per seat"
	ch.ProductRatePlanChargeTierData = &ChargeTierData{ProductRatePlanChargeTier: []ChargeTier{{Currency: "USD", Price: "12", PriceFormat: PriceFormatPerUnit}}}
	require.NoError(t, env.c.UpdateProductRatePlanCharge(ctx, ids.unitID, ch))

	// REST reads: the catalog, one product, its plans with charges and prices.
	var seen []CatalogProduct
	for cp, err := range env.c.ListProducts(ctx) {
		require.NoError(t, err)
		seen = append(seen, cp)
	}
	require.Len(t, seen, 1)
	require.Equal(t, "plan_Team2", seen[0].CustomFields["BillsyncId__c"])
	require.Nil(t, seen[0].ProductRatePlans, "Zuora-Version ≥ 230.0 returns a URL")
	require.NotEmpty(t, seen[0].ProductRatePlansURL)

	cp, err := env.c.GetCatalogProduct(ctx, "SKU-Team")
	require.NoError(t, err)
	require.Equal(t, ids.productID, cp.ID)

	var plans []CatalogRatePlan
	for rp, err := range env.c.RatePlansOf(ctx, cp) {
		require.NoError(t, err)
		plans = append(plans, rp)
	}
	require.Len(t, plans, 1)
	require.Len(t, plans[0].ProductRatePlanCharges, 3)
	var seats CatalogCharge
	for _, c := range plans[0].ProductRatePlanCharges {
		if c.ID == ids.unitID {
			seats = c
		}
	}
	require.Equal(t, "PerUnit", seats.Model)
	require.Len(t, seats.Pricing, 1)
	price, err := seats.Pricing[0].Price.Decimal()
	require.NoError(t, err)
	require.Equal(t, "12", price.String())

	// One tier's price.
	var tierID string
	for _, c := range env.sim.State().Charges {
		if c.ID == ids.unitID {
			tierID = c.Tiers[0].ID
		}
	}
	require.NotEmpty(t, tierID)
	require.NoError(t, env.c.UpdateChargeTier(ctx, tierID, ChargeTierUpdate{Price: "15", PriceFormat: PriceFormatPerUnit}))
	for _, c := range env.sim.State().Charges {
		if c.ID == ids.unitID {
			require.Equal(t, "15", c.Tiers[0].Price.String())
		}
	}

	// Deletes, then reads answer "not found".
	require.NoError(t, env.c.DeleteProductRatePlanCharge(ctx, ids.usageID))
	_, err = env.c.GetProductRatePlanCharge(ctx, ids.usageID)
	require.True(t, IsNotFound(err), "%v", err)
	require.NoError(t, env.c.DeleteProductRatePlanCharge(ctx, ids.flatID))
	require.NoError(t, env.c.DeleteProductRatePlanCharge(ctx, ids.unitID))
	require.NoError(t, env.c.DeleteProductRatePlan(ctx, ids.planID))
	require.NoError(t, env.c.DeleteProduct(ctx, ids.productID))
	_, err = env.c.GetProduct(ctx, ids.productID)
	require.True(t, IsNotFound(err), "%v", err)
	require.True(t, errors.Is(err, ErrNotFound))
	require.False(t, IsRetryable(err))
	_, err = env.c.GetCatalogProduct(ctx, ids.productID)
	require.True(t, IsNotFound(err), "%v", err)
	require.Empty(t, env.sim.State().Products)
}

func TestAccountsOrdersSubscriptions(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	team := env.seedCatalog(ctx, "Team")
	addon := env.seedCatalog(ctx, "Addon")

	res := env.newCustomer(ctx, "Initech", team.planID, false)
	require.NotEmpty(t, res.OrderNumber)
	require.NotEmpty(t, res.AccountID)
	require.Equal(t, "Active", res.Subscriptions[0].Status)
	subNum := res.Subscriptions[0].SubscriptionNumber

	acct, err := env.c.GetAccount(ctx, res.AccountNumber)
	require.NoError(t, err)
	require.Equal(t, "Initech", acct.BasicInfo.Name)
	require.Equal(t, "cust_Initech", acct.BasicInfo.CustomFields["BillsyncId__c"])
	require.Equal(t, "USD", acct.BillingAndPayment.Currency)
	require.Equal(t, "Ada", acct.BillToContact.FirstName)

	require.NoError(t, env.c.UpdateAccount(ctx, res.AccountNumber, AccountUpdate{Notes: "synced",
		CustomFields: map[string]any{"BillsyncId__c": "cust_42"}}))
	acct, err = env.c.GetAccount(ctx, res.AccountID)
	require.NoError(t, err)
	require.Equal(t, "cust_42", acct.BasicInfo.CustomFields["BillsyncId__c"])

	// A standalone account.
	bcd := 1
	ac, err := env.c.CreateAccount(ctx, IdempotencyKey("account", "Hooli"), AccountCreate{Name: "Hooli", Currency: "USD", BillCycleDay: &bcd,
		BillToContact: Contact{FirstName: "Gavin", LastName: "Belson", Country: "US", PostalCode: "94000"},
		CustomFields:  map[string]any{"BillsyncId__c": "cust_hooli"}})
	require.NoError(t, err)
	require.NotEmpty(t, ac.AccountNumber)

	sub, err := env.c.GetSubscription(ctx, subNum)
	require.NoError(t, err)
	require.Equal(t, 1, sub.Version)
	require.Equal(t, "sub_Initech", sub.CustomFields["BillsyncSubId__c"])
	require.Len(t, sub.RatePlans, 1)
	var seats SubscriptionCharge
	for _, ch := range sub.RatePlans[0].RatePlanCharges {
		if ch.Name == "Seats" {
			seats = ch
		}
	}
	require.NotEmpty(t, seats.Number)

	order := func(key string, actions ...OrderAction) OrderResult {
		t.Helper()
		r, err := env.c.CreateOrder(ctx, IdempotencyKey("change", subNum, key), Order{OrderDate: "2025-02-01",
			ExistingAccountNumber: res.AccountNumber,
			Subscriptions:         []OrderSubscription{{SubscriptionNumber: subNum, OrderActions: actions}}})
		require.NoError(t, err, key)
		return r
	}
	// Quantity change.
	order("seats-8", UpdateProductAction(RatePlanUpdate{RatePlanID: sub.RatePlans[0].ID, ChargeUpdates: []ChargeUpdate{{
		ChargeNumber: seats.Number, Pricing: &Pricing{RecurringPerUnit: &PriceOverride{Quantity: "8"}}}}}))
	sub, err = env.c.GetSubscription(ctx, subNum)
	require.NoError(t, err)
	require.Equal(t, 2, sub.Version)
	for _, ch := range sub.RatePlans[0].RatePlanCharges {
		if ch.Number == seats.Number {
			q, _ := ch.Quantity.Decimal()
			require.Equal(t, "8", q.String())
		}
	}
	// Add-on, then upgrade-style Remove+Add in one order.
	order("addon", AddProductAction(RatePlanOverride{ProductRatePlanID: addon.planID, ChargeOverrides: []ChargeOverride{{
		ProductRatePlanChargeID: addon.unitID, Pricing: &Pricing{RecurringPerUnit: &PriceOverride{Quantity: "3", ListPrice: "7.50"}}}}}))
	sub, err = env.c.GetSubscription(ctx, subNum)
	require.NoError(t, err)
	require.Len(t, sub.RatePlans, 2)
	order("swap", RemoveProductAction(RemoveProduct{RatePlanID: sub.RatePlans[1].ID}),
		AddProductAction(RatePlanOverride{ProductRatePlanID: addon.planID}))
	order("suspend", SuspendAction(Suspend{SuspendPolicy: SuspendSpecificDate, SuspendSpecificDate: "2025-04-01"}))
	order("resume", ResumeAction(Resume{ResumePolicy: ResumeSpecificDate, ResumeSpecificDate: "2025-05-01"}))
	order("renew", RenewSubscriptionAction())
	r := order("cancel", CancelSubscriptionAction(CancelEndOfCurrentTerm, ""))
	require.Equal(t, "Cancelled", r.Subscriptions[0].Status)

	// The other two cancellation policies on fresh subscriptions.
	for i, policy := range []string{CancelSpecificDate, CancelEndOfLastInvoicePeriod} {
		o := newAccountOrder("Other", team.planID, false)
		o.NewAccount = nil
		o.ExistingAccountNumber = res.AccountNumber
		cr, err := env.c.CreateOrder(ctx, IdempotencyKey("extra", fmt.Sprint(i)), o)
		require.NoError(t, err)
		date := ""
		if policy == CancelSpecificDate {
			date = "2025-06-15"
		}
		_, err = env.c.CreateOrder(ctx, IdempotencyKey("cancel-extra", fmt.Sprint(i)), Order{OrderDate: "2025-03-01",
			ExistingAccountNumber: res.AccountNumber, Subscriptions: []OrderSubscription{{
				SubscriptionNumber: cr.Subscriptions[0].SubscriptionNumber,
				OrderActions:       []OrderAction{CancelSubscriptionAction(policy, date)}}}})
		require.NoError(t, err, policy)
	}

	var all []Subscription
	for s, err := range env.c.ListSubscriptionsByAccount(ctx, res.AccountNumber) {
		require.NoError(t, err)
		all = append(all, s)
	}
	require.Len(t, all, 3)
	for _, s := range all {
		require.Equal(t, "Cancelled", s.Status, s.SubscriptionNumber)
	}

	// A validation error is terminal and carries Zuora's message and request id.
	_, err = env.c.CreateOrder(ctx, IdempotencyKey("bad"), Order{OrderDate: "2025-02-01", ExistingAccountNumber: "A-NOPE",
		Subscriptions: []OrderSubscription{{SubscriptionNumber: subNum, OrderActions: []OrderAction{RenewSubscriptionAction()}}}})
	require.Error(t, err)
	ze, ok := AsError(err)
	require.True(t, ok)
	require.False(t, ze.Retryable)
	require.NotEmpty(t, ze.Message)
	require.NotEmpty(t, ze.RequestID)
	require.GreaterOrEqual(t, ze.HTTPStatus, 400)
	require.Equal(t, 1, ze.Attempts)

	_, err = env.c.GetSubscription(ctx, "A-S-NOPE")
	require.True(t, IsNotFound(err), "%v", err)
	_, err = env.c.GetAccount(ctx, "A-NOPE")
	require.True(t, IsNotFound(err), "%v", err)

	// UI links.
	require.Equal(t, env.srv.URL+"/apps/CustomerAccount.do?method=view&id="+res.AccountID, env.c.AccountURL(res.AccountID))
	require.Contains(t, env.c.SubscriptionURL(sub.ID), "/apps/Subscription.do?method=view&id=")
}

func TestUsagePartialSuccess(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	ids := env.seedCatalog(ctx, "Metered")
	res := env.newCustomer(ctx, "Umbrella", ids.planID, false)
	sub, err := env.c.GetSubscription(ctx, res.Subscriptions[0].SubscriptionNumber)
	require.NoError(t, err)
	var chargeNum string
	for _, ch := range sub.RatePlans[0].RatePlanCharges {
		if ch.Name == "API calls" {
			chargeNum = ch.Number
		}
	}
	require.NotEmpty(t, chargeNum)
	start := time.Date(2025, 1, 10, 13, 0, 0, 0, time.UTC)
	rows := []Usage{
		{AccountNumber: res.AccountNumber, SubscriptionNumber: sub.SubscriptionNumber, ChargeNumber: chargeNum, UOM: "Call", Quantity: "120", StartDateTime: start},
		{AccountNumber: "A-DOES-NOT-EXIST", SubscriptionNumber: sub.SubscriptionNumber, ChargeNumber: chargeNum, UOM: "Call", Quantity: "1", StartDateTime: start},
		{AccountNumber: res.AccountNumber, SubscriptionNumber: sub.SubscriptionNumber, ChargeNumber: chargeNum, UOM: "Call", Quantity: "7.5", StartDateTime: start.Add(time.Hour)},
	}
	results, err := env.c.CreateUsage(ctx, IdempotencyKey("usage", "batch-1"), rows)
	require.NoError(t, err, "partial success is not a call failure")
	require.Len(t, results, 3)
	require.True(t, results[0].Success)
	require.NotEmpty(t, results[0].ID)
	require.NoError(t, results[0].Err())
	require.False(t, results[1].Success)
	rowErr := results[1].Err()
	require.Error(t, rowErr)
	ze, _ := AsError(rowErr)
	require.NotEmpty(t, ze.Code)
	require.NotEmpty(t, ze.Message)
	require.False(t, ze.Retryable)
	require.True(t, results[2].Success)
	require.Len(t, env.sim.State().Usage, 2)

	// The same batch again (same key) is answered with the original ids.
	again, err := env.c.CreateUsage(ctx, IdempotencyKey("usage", "batch-1"), rows)
	require.NoError(t, err)
	require.Equal(t, results[0].ID, again[0].ID)
	require.Len(t, env.sim.State().Usage, 2)

	var listed []UsageRecord
	for u, err := range env.c.ListUsageByAccount(ctx, res.AccountNumber) {
		require.NoError(t, err)
		listed = append(listed, u)
	}
	require.Len(t, listed, 2)
	require.Equal(t, chargeNum, listed[0].ChargeNumber)

	_, err = env.c.CreateUsage(ctx, "k", make([]Usage, 51))
	require.Error(t, err)
}

func TestNotificationsAndTriggers(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	tr, err := env.c.CreateEventTrigger(ctx, IdempotencyKey("trigger", "account-created"), EventTrigger{Active: true, BaseObject: "Account",
		Condition: "changeType == 'INSERT'", Description: "billsync: account created",
		EventType: EventType{Name: "BillsyncAccountCreated", DisplayName: "Billsync account created"}})
	require.NoError(t, err)
	require.NotEmpty(t, tr.ID)

	yes := true
	nd, err := env.c.CreateNotificationDefinition(ctx, IdempotencyKey("notif", "account-created"), NotificationDefinition{
		Name: "billsync account created", EventTypeName: "BillsyncAccountCreated", Active: &yes, CalloutActive: &yes,
		Callout: &Callout{Name: "billsync account created", CalloutBaseURL: "https://billsync.example.com/webhooks/zuora/account",
			HTTPMethod: "POST", CalloutParams: map[string]string{"AccountId": "<DataSource.Account.Id>"},
			RequiredAuth: &yes, CalloutAuth: &CalloutAuth{Username: "zuora", Password: "callout-pass", Preemptive: true}}})
	require.NoError(t, err)
	require.NotEmpty(t, nd.ID)
	category := Number("1210")
	nd2, err := env.c.CreateNotificationDefinition(ctx, IdempotencyKey("notif", "sub-created"), NotificationDefinition{
		Name: "billsync subscription created", EventCategory: category, Active: &yes, CalloutActive: &yes,
		Callout: &Callout{Name: "billsync subscription created", CalloutBaseURL: "https://billsync.example.com/webhooks/zuora/subscription",
			HTTPMethod: "POST", CalloutParams: map[string]string{"SubscriptionNumber": "<DataSource.Subscription.Name>"}}})
	require.NoError(t, err)

	var triggers []EventTrigger
	for x, err := range env.c.ListEventTriggers(ctx, EventTriggerFilter{BaseObject: "Account"}) {
		require.NoError(t, err)
		triggers = append(triggers, x)
	}
	require.Len(t, triggers, 1)
	require.Equal(t, "BillsyncAccountCreated", triggers[0].EventType.Name)
	var defs []NotificationDefinition
	for x, err := range env.c.ListNotificationDefinitions(ctx, NotificationDefinitionFilter{}) {
		require.NoError(t, err)
		defs = append(defs, x)
	}
	require.Len(t, defs, 2)

	require.NoError(t, env.c.DeleteNotificationDefinition(ctx, nd.ID))
	require.NoError(t, env.c.DeleteNotificationDefinition(ctx, nd2.ID))
	require.NoError(t, env.c.DeleteEventTrigger(ctx, tr.ID))
	st := env.sim.State()
	require.Empty(t, st.EventTriggers)
	require.Empty(t, st.NotificationDefinitions)
	err = env.c.DeleteEventTrigger(ctx, tr.ID)
	require.True(t, IsNotFound(err), "%v", err)
	require.NotContains(t, env.logs.String(), "callout-pass")
}

func TestObjectQueryPollAndPagination(t *testing.T) {
	t.Parallel()
	env := newSimEnv(t, zuorasim.Options{}, nil)
	ctx := ctxT(t)
	ids := env.seedCatalog(ctx, "Base")

	// More than 40 products: the catalog pages by 40 and follows nextPage.
	const extra = 44
	for i := range extra {
		_, err := env.c.CreateProduct(ctx, IdempotencyKey("bulk", fmt.Sprint(i)), Product{Name: fmt.Sprintf("Bulk %02d", i),
			EffectiveStartDate: "2020-01-01", EffectiveEndDate: "2099-12-31"})
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	for p, err := range env.c.ListProducts(ctx) {
		require.NoError(t, err)
		require.False(t, seen[p.ID], "product listed twice")
		seen[p.ID] = true
	}
	require.Len(t, seen, extra+1)
	require.GreaterOrEqual(t, env.sim.Stats().Calls["GET /v1/catalog/products"], 2)

	// Stopping early stops paging.
	n := 0
	for _, err := range env.c.ListProducts(ctx) {
		require.NoError(t, err)
		n++
		if n == 3 {
			break
		}
	}

	// More than 40 subscriptions on one account.
	first := env.newCustomer(ctx, "Wide", ids.planID, true)
	since := time.Now().Add(-time.Hour)
	const subs = 42
	for i := 1; i < subs; i++ {
		o := newAccountOrder("Wide", ids.planID, true)
		o.NewAccount, o.ExistingAccountNumber = nil, first.AccountNumber
		_, err := env.c.CreateOrder(ctx, IdempotencyKey("wide", fmt.Sprint(i)), o)
		require.NoError(t, err)
	}
	count := 0
	for _, err := range env.c.ListSubscriptionsByAccount(ctx, first.AccountNumber) {
		require.NoError(t, err)
		count++
	}
	require.Equal(t, subs, count)

	// Object Query: accounts and subscriptions updated since a time.
	for i := range 3 {
		env.newCustomer(ctx, fmt.Sprintf("Poll%d", i), ids.planID, false)
	}
	var accts []QueryAccount
	for a, err := range env.c.ListAccountsUpdatedSince(ctx, since) {
		require.NoError(t, err)
		accts = append(accts, a)
	}
	require.Len(t, accts, 4)
	require.NotEmpty(t, accts[0].AccountNumber)
	require.Equal(t, "cust_Poll2", accts[3].CustomFields["BillsyncId__c"], "custom fields ride along, oldest update first")
	nSubs := 0
	for s, err := range env.c.ListSubscriptionsUpdatedSince(ctx, since) {
		require.NoError(t, err)
		require.NotEmpty(t, s.Name)
		nSubs++
	}
	require.GreaterOrEqual(t, nSubs, subs+3)
	none := 0
	for _, err := range env.c.ListAccountsUpdatedSince(ctx, env.sim.Now().Add(time.Hour)) {
		require.NoError(t, err)
		none++
	}
	require.Zero(t, none)

	require.NoError(t, env.c.TestConnection(ctx))
}

func TestHTTP200ErrorsUnderOldVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version    string
		wantStatus int
	}{{"186.0", http.StatusOK}, {"2024-05-20", http.StatusNotFound}, {DefaultVersion, http.StatusNotFound}} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			env := newSimEnv(t, zuorasim.Options{}, func(c *Config) { c.Version = tc.version })
			ctx := ctxT(t)
			_, err := env.c.GetAccount(ctx, "A-MISSING")
			require.Error(t, err)
			ze, ok := AsError(err)
			require.True(t, ok)
			require.Equal(t, tc.wantStatus, ze.HTTPStatus)
			require.True(t, ze.NotFound)
			require.Equal(t, CategoryNotFound, ze.Category)
			require.NotEmpty(t, ze.Message)

			// A validation error in an order: success:false (under 200 on 186.0).
			ids := env.seedCatalog(ctx, "V")
			o := newAccountOrder("Bad", ids.planID, false)
			o.Subscriptions[0].OrderActions[0].CreateSubscription.SubscribeToRatePlans[0].ProductRatePlanID = "8a8aa0000000000000000000000000ff"
			_, err = env.c.CreateOrder(ctx, IdempotencyKey("bad-order", tc.version), o)
			require.Error(t, err)
			ze, _ = AsError(err)
			require.False(t, ze.Retryable)
			require.Equal(t, 1, ze.Attempts)
			if tc.version == "186.0" {
				require.Equal(t, http.StatusOK, ze.HTTPStatus)
			} else {
				require.Equal(t, http.StatusBadRequest, ze.HTTPStatus)
			}
			require.Empty(t, env.sim.State().Accounts, "nothing was created")

			// Under 186.0 the catalog embeds the rate plans (before 230.0).
			cp, err := env.c.GetCatalogProduct(ctx, ids.productID)
			require.NoError(t, err)
			if tc.version == "186.0" {
				require.Len(t, cp.ProductRatePlans, 1)
			} else {
				require.Nil(t, cp.ProductRatePlans)
			}
			n := 0
			for _, err := range env.c.RatePlansOf(ctx, cp) {
				require.NoError(t, err)
				n++
			}
			require.Equal(t, 1, n)
			// Orders answer subscriptionNumbers[] before 223.0; CreateOrder
			// fills Subscriptions either way.
			res, err := env.c.CreateOrder(ctx, IdempotencyKey("good-order", tc.version), newAccountOrder("Good", ids.planID, false))
			require.NoError(t, err)
			require.Len(t, res.Subscriptions, 1)
			require.NotEmpty(t, res.Subscriptions[0].SubscriptionNumber)
		})
	}
}
