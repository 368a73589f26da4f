package outbound

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
)

// Run with: go test ./engine/outbound -run '^$' -bench . -benchmem

func benchPlan() engine.Plan {
	return engine.Plan{ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.NewFromInt(49)},
			{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: decimal.NewFromInt(10), UnitOfMeasure: "Each"},
			{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: decimal.RequireFromString("0.01"), UnitOfMeasure: "Each"},
		}}}}
}

func benchSub(i int) engine.Subscription {
	return engine.Subscription{ID: fmt.Sprintf("sub-%06d", i), CustomerID: fmt.Sprintf("cust-%06d", i), PlanID: "pro", BillingPeriodID: "pro-monthly",
		ChargeQuantities: map[string]decimal.Decimal{"seats": decimal.NewFromInt(3)}, Status: engine.StatusActive, StartDate: "2026-01-01",
		TermMonths: 12, AutoRenew: true, Revision: 1}
}

// BenchmarkPayloadHash: the hashes a reconcile (and the hourly re-check)
// compares with what was pushed: a plan's whole catalog payload, a
// subscription's desired state, a customer's account update.
func BenchmarkPayloadHash(b *testing.B) {
	r := &Reconcilers{cfg: Config{IDField: "BillsyncId__c", AccountNumberPrefix: "BS-", SubscriptionNumberPrefix: "BS-"}}
	plan := benchPlan()
	plans := map[string]engine.Plan{"pro": plan}
	cust := engine.Customer{ID: "cust-1", Name: "Customer 1", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States"}}
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			_ = engine.HashJSON(r.CatalogPayloads(plan))
		}
	})
	b.Run("subscription", func(b *testing.B) {
		sub := benchSub(1)
		for b.Loop() {
			_ = engine.HashJSON(struct {
				Sub   engine.Subscription
				Plans []int
			}{sub, planRevisions(plans)})
		}
	})
	b.Run("customer", func(b *testing.B) {
		for b.Loop() {
			_ = engine.HashJSON(r.accountUpdate(cust))
		}
	})
}

// BenchmarkBuildOrderPayload builds the order that creates an account with
// its first subscription (as reconcileSubscription does) and encodes it as
// the client sends it.
func BenchmarkBuildOrderPayload(b *testing.B) {
	r := &Reconcilers{cfg: Config{IDField: "BillsyncId__c", AccountNumberPrefix: "BS-", SubscriptionNumberPrefix: "BS-"}}
	plan := benchPlan()
	d := desiredRatePlan{Key: "pro/pro-monthly", PlanID: "pro", ProductRP: "8a8f0000000000000000000000000001",
		Quantities: map[string]decimal.Decimal{"8a8f0000000000000000000000000003": decimal.NewFromInt(3)},
		ChargeKind: map[string]engine.Charge{"8a8f0000000000000000000000000003": plan.BillingPeriods[0].Charges[1]}}
	cust := engine.Customer{ID: "cust-1", Name: "Customer 1", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "United States"}}
	i := 0
	for b.Loop() {
		i++
		sub := benchSub(i)
		order := zuora.Order{OrderDate: sub.StartDate, ProcessingOptions: &zuora.ProcessingOptions{RunBilling: ptr(false)}}
		cs := &zuora.CreateSubscription{SubscriptionNumber: r.SubscriptionNumber(sub.ID), Terms: terms(sub)}
		cs.SubscribeToRatePlans = append(cs.SubscribeToRatePlans, r.ratePlanOverride(sub.ID, d))
		order.Subscriptions = []zuora.OrderSubscription{{CustomFields: map[string]any{r.cfg.IDField: sub.ID},
			OrderActions: []zuora.OrderAction{{Type: "CreateSubscription", TriggerDates: triggers(sub.StartDate), CreateSubscription: cs}}}}
		upd := r.accountUpdate(cust)
		order.NewAccount = &zuora.OrderNewAccount{AccountNumber: r.AccountNumber(cust.ID), Name: upd.Name, Currency: cust.Currency,
			BillToContact: contact(cust), AutoPay: ptr(false), CustomFields: map[string]any{r.cfg.IDField: cust.ID}}
		key := zuora.IdempotencyKey("create-subscription", sub.ID, engine.HashJSON(sub))
		body, err := json.Marshal(order)
		if err != nil || key == "" || len(body) == 0 {
			b.Fatal(err)
		}
	}
}
