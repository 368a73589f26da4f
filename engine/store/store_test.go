package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func proPlan() engine.Plan {
	return engine.Plan{
		ID: "pro", Kind: engine.KindPlan, Name: "Pro", PricingType: engine.PricingPaid, Currency: "USD",
		BillingPeriods: []engine.BillingPeriod{
			{ID: "pro-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
				{ID: "base", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("49.00")},
				{ID: "seats", Name: "Seats", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: dec("10"), UnitOfMeasure: "seat"},
				{ID: "api", Name: "API calls", Type: engine.ChargeUsage, Model: engine.ModelTiered, UnitOfMeasure: "call", Feature: "api-calls",
					Tiers: []engine.Tier{{UpTo: ptr(dec("1000")), Price: dec("0"), PriceFormat: engine.PriceFlatFee}, {Price: dec("0.01"), PriceFormat: engine.PricePerUnit}}},
			}},
			{ID: "pro-yearly", Period: engine.PeriodYear, Charges: []engine.Charge{
				{ID: "base-yearly", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("490")},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func customer(id string) engine.Customer {
	return engine.Customer{ID: id, Name: "Acme " + id, Email: "billing@acme.test", Currency: "USD",
		BillTo: &engine.Contact{FirstName: "Ada", LastName: "Lovelace", Country: "US"}, HasPaymentMethod: true}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		require.NoError(t, db.Ready(ctx))
		st, err := db.MigrationStatus(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, st)
		for _, s := range st {
			require.True(t, s.Applied, "migration %d applied", s.Version)
		}
		last := st[len(st)-1].Version
		v, err := db.MigrateDown(ctx)
		require.NoError(t, err)
		require.Equal(t, last, v)
		require.ErrorContains(t, db.Ready(ctx), "pending migrations")
		applied, err := db.MigrateUp(ctx)
		require.NoError(t, err)
		require.Equal(t, []int64{last}, applied)
		require.NoError(t, db.Ready(ctx))
	})
}

func TestPlanUpsert(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p, changed, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		require.True(t, changed)
		require.Equal(t, 1, p.Revision)
		require.Len(t, p.BillingPeriods, 2)
		c, _, ok := p.Charge("base")
		require.True(t, ok)
		require.True(t, c.Price.Equal(dec("49")))
		require.Equal(t, "USD", c.Currency, "charge currency defaults to the plan's")
		api, _, _ := p.Charge("api")
		require.Len(t, api.Tiers, 2)
		require.Nil(t, api.Tiers[1].UpTo)

		rec, err := db.GetSyncRecord(ctx, store.EntityPlan, "pro")
		require.NoError(t, err)
		require.Equal(t, store.StatePending, rec.State)
		require.Equal(t, 1, rec.DesiredRevision)

		// Same content, different decimal spelling: no change, no new revision.
		same := proPlan()
		same.BillingPeriods[0].Charges[0].Price = dec("49")
		p2, changed, err := db.UpsertPlan(ctx, same)
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, 1, p2.Revision)

		// Dropping the yearly period and the seats charge archives them.
		edited := proPlan()
		edited.Name = "Pro 2"
		edited.BillingPeriods = edited.BillingPeriods[:1]
		edited.BillingPeriods[0].Charges = []engine.Charge{edited.BillingPeriods[0].Charges[0], edited.BillingPeriods[0].Charges[2]}
		p3, changed, err := db.UpsertPlan(ctx, edited)
		require.NoError(t, err)
		require.True(t, changed)
		require.Equal(t, 2, p3.Revision)
		require.Equal(t, "Pro 2", p3.Name)
		yearly, ok := p3.Period("pro-yearly")
		require.True(t, ok, "archived periods are kept")
		require.NotNil(t, yearly.ArchivedAt)
		require.NotNil(t, yearly.Charges[0].ArchivedAt)
		seats, _, ok := p3.Charge("seats")
		require.True(t, ok)
		require.NotNil(t, seats.ArchivedAt)
		require.Len(t, p3.ActivePeriods(), 1)
		rec, err = db.GetSyncRecord(ctx, store.EntityPlan, "pro")
		require.NoError(t, err)
		require.Equal(t, 2, rec.DesiredRevision)

		// Putting them back restores them.
		p4, _, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		require.Len(t, p4.ActivePeriods(), 2)
		seats, _, _ = p4.Charge("seats")
		require.Nil(t, seats.ArchivedAt)

		archived, err := db.ArchivePlan(ctx, "pro")
		require.NoError(t, err)
		require.NotNil(t, archived.ArchivedAt)
		page, err := db.ListPlans(ctx, store.ListOptions{})
		require.NoError(t, err)
		require.Empty(t, page.Items)
		page, err = db.ListPlans(ctx, store.ListOptions{IncludeArchived: true})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
	})
}

func TestPlanChangesRefusedOnceSynced(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, _, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		// Before syncing, anything may change.
		p := proPlan()
		p.BillingPeriods[0].Charges[1].Model = engine.ModelVolume
		p.BillingPeriods[0].Charges[1].Tiers = []engine.Tier{{Price: dec("9"), PriceFormat: engine.PricePerUnit}}
		_, _, err = db.UpsertPlan(ctx, p)
		require.NoError(t, err)

		now := time.Now().UTC()
		require.NoError(t, db.Gorm.Exec(`INSERT INTO id_mappings(kind, local_id, zuora_id, created_at, updated_at) VALUES
			('product','pro','P1',?,?), ('rate_plan','pro/pro-monthly','RP1',?,?), ('charge','pro/seats','C1',?,?)`,
			now, now, now, now, now, now).Error)

		cases := []struct {
			name  string
			edit  func(p *engine.Plan)
			field string
		}{
			{"model", func(p *engine.Plan) {}, "billingPeriods[0].charges[1].model"},
			{"type", func(p *engine.Plan) {
				p.BillingPeriods[0].Charges[1].Model = engine.ModelVolume
				p.BillingPeriods[0].Charges[1].Tiers = []engine.Tier{{Price: dec("9"), PriceFormat: engine.PricePerUnit}}
				p.BillingPeriods[0].Charges[1].Type = engine.ChargeOneTime
			}, "billingPeriods[0].charges[1].type"},
			{"period", func(p *engine.Plan) {
				p.BillingPeriods[0].Charges[1].Model = engine.ModelVolume
				p.BillingPeriods[0].Charges[1].Tiers = []engine.Tier{{Price: dec("9"), PriceFormat: engine.PricePerUnit}}
				p.BillingPeriods[0].Period = engine.PeriodQuarter
			}, "billingPeriods[0].period"},
			{"currency", func(p *engine.Plan) { p.Currency = "EUR" }, "currency"},
		}
		for _, tc := range cases {
			p := proPlan()
			tc.edit(&p)
			before, err := db.GetPlan(ctx, "pro")
			require.NoError(t, err)
			_, _, err = db.UpsertPlan(ctx, p)
			var ce *engine.ConflictError
			require.True(t, errors.As(err, &ce), "%s: got %v", tc.name, err)
			require.Equal(t, tc.field, ce.Field, tc.name)
			after, err := db.GetPlan(ctx, "pro")
			require.NoError(t, err)
			require.Equal(t, before, after, "%s: nothing written", tc.name)
		}
	})
}

func TestSubscriptionRefs(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, _, err := db.UpsertPlan(ctx, proPlan())
		require.NoError(t, err)
		addon := engine.Plan{ID: "extra", Kind: engine.KindAddon, Name: "Extra storage", PricingType: engine.PricingPaid, Currency: "USD",
			BillingPeriods: []engine.BillingPeriod{{ID: "extra-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
				{ID: "extra-fee", Name: "Extra", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: dec("5"), UnitOfMeasure: "GB"}}}}}
		_, _, err = db.UpsertPlan(ctx, addon)
		require.NoError(t, err)
		_, _, err = db.UpsertCustomer(ctx, customer("c1"))
		require.NoError(t, err)
		eur := customer("c-eur")
		eur.Currency = "EUR"
		_, _, err = db.UpsertCustomer(ctx, eur)
		require.NoError(t, err)

		good := engine.Subscription{ID: "s1", CustomerID: "c1", PlanID: "pro", BillingPeriodID: "pro-monthly",
			AddOns:           []engine.AddOn{{PlanID: "extra", BillingPeriodID: "extra-monthly", Quantity: dec("2")}},
			ChargeQuantities: map[string]decimal.Decimal{"seats": dec("5")}, Status: engine.StatusActive, StartDate: "2026-01-01", TermMonths: 12}
		s, changed, err := db.UpsertSubscription(ctx, good)
		require.NoError(t, err)
		require.True(t, changed)
		require.True(t, s.ChargeQuantities["seats"].Equal(dec("5")))
		require.Len(t, s.AddOns, 1)

		bad := []struct {
			name  string
			edit  func(s *engine.Subscription)
			field string
		}{
			{"unknown customer", func(s *engine.Subscription) { s.ID = "s2"; s.CustomerID = "nobody" }, "customerId"},
			{"unknown plan", func(s *engine.Subscription) { s.ID = "s2"; s.PlanID = "nope" }, "planId"},
			{"unknown period", func(s *engine.Subscription) { s.ID = "s2"; s.BillingPeriodID = "weekly" }, "billingPeriodId"},
			{"currency mismatch", func(s *engine.Subscription) { s.ID = "s2"; s.CustomerID = "c-eur" }, "planId"},
			{"addon as plan", func(s *engine.Subscription) { s.ID = "s2"; s.PlanID = "extra"; s.BillingPeriodID = "extra-monthly" }, "planId"},
			{"flat charge quantity", func(s *engine.Subscription) {
				s.ID = "s2"
				s.ChargeQuantities = map[string]decimal.Decimal{"base": dec("1")}
			}, "chargeQuantities.base"},
		}
		for _, tc := range bad {
			s := good
			tc.edit(&s)
			_, _, err := db.UpsertSubscription(ctx, s)
			var ve *engine.ValidationError
			require.True(t, errors.As(err, &ve), "%s: %v", tc.name, err)
			require.Equal(t, tc.field, ve.Errors[0].Field, tc.name)
			_, err = db.GetSubscription(ctx, "s2")
			require.ErrorIs(t, err, engine.ErrNotFound, tc.name)
		}
		page, err := db.ListSubscriptions(ctx, store.ListOptions{CustomerID: "c1"})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
	})
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			_, _, err := db.UpsertCustomer(ctx, customer(id))
			require.NoError(t, err)
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			page, err := db.ListCustomers(ctx, store.ListOptions{After: after, Limit: 2})
			require.NoError(t, err)
			for _, c := range page.Items {
				got = append(got, c.ID)
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		require.Equal(t, []string{"a", "b", "c", "d", "e"}, got)
		_, err := db.ArchiveCustomer(ctx, "c")
		require.NoError(t, err)
		page, err := db.ListCustomers(ctx, store.ListOptions{})
		require.NoError(t, err)
		require.Len(t, page.Items, 4)
	})
}
