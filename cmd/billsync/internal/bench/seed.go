package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// BenchPlan is plan i of a benchmark catalog: a monthly billing period with a
// flat base fee, per-seat pricing and two usage charges (api, storage).
func BenchPlan(i int) engine.Plan {
	id := fmt.Sprintf("plan-%02d", i)
	return engine.Plan{
		ID: id, Kind: engine.KindPlan, Name: fmt.Sprintf("Bench plan %02d", i), PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{{ID: id + "-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
			{ID: "base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: decimal.NewFromInt(int64(20 + i))},
			{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: decimal.NewFromInt(5), UnitOfMeasure: "Each"},
			{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: decimal.RequireFromString("0.01"), UnitOfMeasure: "Each", Feature: "api-calls"},
			{ID: "storage", Name: "Storage", Type: engine.ChargeUsage, Model: engine.ModelPerUnit, Price: decimal.RequireFromString("0.10"), UnitOfMeasure: "GB", Feature: "storage-gb"},
		}}},
	}
}

// BenchCustomer is customer i: billable (complete bill-to, payment method).
func BenchCustomer(i int) engine.Customer {
	id := fmt.Sprintf("cust-%06d", i)
	return engine.Customer{ID: id, Name: "Customer " + id, Email: id + "@example.test", Currency: "USD", HasPaymentMethod: true,
		BillTo: &engine.Contact{FirstName: "Ada", LastName: fmt.Sprintf("Bench%06d", i), Address1: "1 Main St", City: "Boston", State: "MA",
			PostalCode: "02110", Country: "United States"}}
}

// BenchSubscription is customer i's subscription to plan i mod plans.
func BenchSubscription(i, plans int) engine.Subscription {
	plan := fmt.Sprintf("plan-%02d", i%plans)
	return engine.Subscription{ID: fmt.Sprintf("sub-%06d", i), CustomerID: fmt.Sprintf("cust-%06d", i), PlanID: plan, BillingPeriodID: plan + "-monthly",
		ChargeQuantities: map[string]decimal.Decimal{"seats": decimal.NewFromInt(int64(1 + i%10))},
		Status:           engine.StatusActive, StartDate: time.Now().UTC().AddDate(0, -2, 0).Format("2006-01-02"), TermMonths: 12, AutoRenew: true}
}

// seedCatalog stores plans 0..n-1.
func seedCatalog(ctx context.Context, db *store.DB, n int) error {
	for i := range n {
		if _, _, err := db.UpsertPlan(ctx, BenchPlan(i)); err != nil {
			return fmt.Errorf("seed plan %d: %w", i, err)
		}
	}
	return nil
}

// seedCustomers stores customers 0..n-1, each with one subscription, as an
// API client would (customer, then its subscription).
func seedCustomers(ctx context.Context, db *store.DB, n, plans int) error {
	k := 8
	if db.Dialect == store.SQLite {
		k = 1
	}
	return parallel(ctx, n, k, func(ctx context.Context, i int) error {
		if _, _, err := db.UpsertCustomer(ctx, BenchCustomer(i)); err != nil {
			return fmt.Errorf("seed customer %d: %w", i, err)
		}
		if _, _, err := db.UpsertSubscription(ctx, BenchSubscription(i, plans)); err != nil {
			return fmt.Errorf("seed subscription %d: %w", i, err)
		}
		return nil
	})
}
