package outbound_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
)

// TestCatalogShapes pushes every charge type and model and checks what Zuora holds.
func TestCatalogShapes(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			p := engine.Plan{ID: "shapes", Kind: engine.KindPlan, Name: "Shapes", PricingType: engine.PricingPaid, Currency: "EUR",
				BillingPeriods: []engine.BillingPeriod{
					{ID: "q", Period: engine.PeriodQuarter, Charges: []engine.Charge{
						{ID: "flat", Name: "Flat", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("30"), BillingTiming: engine.TimingInArrears},
						{ID: "unit", Name: "Unit", Type: engine.ChargeRecurring, Model: engine.ModelPerUnit, Price: dec("2.5"), UnitOfMeasure: "Each", DefaultQuantity: dec("4")},
						{ID: "setup", Name: "Setup", Type: engine.ChargeOneTime, Model: engine.ModelFlatFee, Price: dec("99")},
						{ID: "tiered", Name: "Tiered", Type: engine.ChargeUsage, Model: engine.ModelTiered, UnitOfMeasure: "Each", Feature: "calls",
							Tiers: []engine.Tier{{UpTo: ptr(dec("100")), Price: dec("0"), PriceFormat: engine.PriceFlatFee}, {Price: dec("0.1"), PriceFormat: engine.PricePerUnit}}},
						{ID: "volume", Name: "Volume", Type: engine.ChargeUsage, Model: engine.ModelVolume, UnitOfMeasure: "Each", Feature: "gb",
							Tiers: []engine.Tier{{UpTo: ptr(dec("10")), Price: dec("1"), PriceFormat: engine.PricePerUnit}, {Price: dec("0.5"), PriceFormat: engine.PricePerUnit}}},
					}},
					{ID: "y", Period: engine.PeriodYear, Charges: []engine.Charge{
						{ID: "flat-y", Name: "Flat yearly", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("300")},
					}},
				}}
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
			e.Converge(10 * time.Second)
			st := e.Sim.State()
			require.Len(t, st.Products, 1)
			require.Equal(t, "shapes", st.Products[0].SKU)
			require.Equal(t, "shapes", st.Products[0].Fields["BillsyncId__c"])
			require.Len(t, st.RatePlans, 2)
			byID := map[string]map[string]any{}
			tiers := map[string]int{}
			for _, c := range st.Charges {
				id := c.Fields["BillsyncId__c"].(string)
				byID[id] = c.Fields
				tiers[id] = len(c.Tiers)
				for _, tr := range c.Tiers {
					require.Equal(t, "EUR", tr.Currency, id)
				}
			}
			want := map[string][4]string{ // ChargeType, ChargeModel, BillingPeriod, BillingTiming
				"shapes/flat":   {"Recurring", "Flat Fee Pricing", "Quarter", "In Arrears"},
				"shapes/unit":   {"Recurring", "Per Unit Pricing", "Quarter", "In Advance"},
				"shapes/setup":  {"OneTime", "Flat Fee Pricing", "Quarter", ""},
				"shapes/tiered": {"Usage", "Tiered Pricing", "Quarter", ""},
				"shapes/volume": {"Usage", "Volume Pricing", "Quarter", ""},
				"shapes/flat-y": {"Recurring", "Flat Fee Pricing", "Annual", "In Advance"},
			}
			for id, w := range want {
				f := byID[id]
				require.NotNil(t, f, id)
				require.Equal(t, w[0], f["ChargeType"], id)
				require.Equal(t, w[1], f["ChargeModel"], id)
				require.Equal(t, w[2], f["BillingPeriod"], id)
				if w[3] != "" {
					require.Equal(t, w[3], f["BillingTiming"], id)
				}
			}
			require.Equal(t, "Each", byID["shapes/unit"]["UOM"])
			require.Equal(t, 2, tiers["shapes/tiered"])
			require.Equal(t, 2, tiers["shapes/volume"])

			// An edit becomes PUTs only for what changed; removing a billing period ends it.
			e.Sim.ResetStats()
			p.Name = "Shapes v2"
			p.BillingPeriods[0].Charges[0].Price = dec("35")
			p.BillingPeriods = p.BillingPeriods[:1]
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
			e.Converge(10 * time.Second)
			calls := e.Sim.Stats().Calls
			require.Equal(t, 1, calls["PUT /v1/object/product/{id}"], "%v", calls)
			require.Equal(t, 1, calls["PUT /v1/object/product-rate-plan-charge/{id}"], "only the repriced charge: %v", calls)
			require.Zero(t, calls["POST /v1/object/product"]+calls["POST /v1/object/product-rate-plan"]+calls["POST /v1/object/product-rate-plan-charge"])
			require.Zero(t, calls["DELETE /v1/object/product-rate-plan/{id}"], "never deleted")
			require.Zero(t, calls["DELETE /v1/object/product-rate-plan-charge/{id}"], "the ended rate plan keeps its charges: %v", calls)
			st = e.Sim.State()
			for _, rp := range st.RatePlans {
				if rp.Fields["BillsyncId__c"] == "shapes/y" {
					require.Len(t, rp.ChargeIDs, 1, "the ended rate plan still has its charge")
				}
			}
			require.Len(t, st.RatePlans, 2, "the removed billing period stays in Zuora")
			ended := 0
			for _, rp := range st.RatePlans {
				if rp.Fields["BillsyncId__c"] == "shapes/y" {
					require.Equal(t, time.Now().UTC().Format("2006-01-02"), rp.Fields["EffectiveEndDate"])
					ended++
				}
			}
			require.Equal(t, 1, ended)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntityPlan, "shapes")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State)
			require.NotEmpty(t, rec.ZuoraURL)

			// Once synced, changing a charge's model is refused with 409-style ConflictError.
			p.BillingPeriods[0].Charges[1].Model = engine.ModelVolume
			p.BillingPeriods[0].Charges[1].Tiers = []engine.Tier{{Price: dec("1"), PriceFormat: engine.PricePerUnit}}
			_, _, err = e.DB.UpsertPlan(ctx, p)
			var ce *engine.ConflictError
			require.ErrorAs(t, err, &ce)
		})
	}
}

// TestChargeRemovalFromAUsedBillingPeriod: Zuora can neither delete nor end a
// charge of a rate plan that subscriptions use, so removing it would leave it
// on sale; the change is refused with what to do instead. Unused, the charge
// is deleted from Zuora.
func TestChargeRemovalFromAUsedBillingPeriod(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{})
			ctx := context.Background()
			p := must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			e.Converge(10 * time.Second)

			// No subscription yet: the yearly period's only charge can go (and a
			// new one replaces it), deleted from Zuora.
			yearly := p
			yearly.BillingPeriods = append([]engine.BillingPeriod{}, p.BillingPeriods...)
			yearly.BillingPeriods[1].Charges = []engine.Charge{{ID: "base-yearly-2", Name: "Base fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("480")}}
			p = must[engine.Plan](t)(e.DB.UpsertPlan(ctx, yearly))
			e.Sim.ResetStats()
			e.Converge(10 * time.Second)
			require.Equal(t, 1, e.Sim.Stats().Calls["DELETE /v1/object/product-rate-plan-charge/{id}"], "%v", e.Sim.Stats().Calls)

			// With a subscription on the monthly period, removing its seats charge is refused.
			must[engine.Customer](t)(e.DB.UpsertCustomer(ctx, customer("c1")))
			must[engine.Subscription](t)(e.DB.UpsertSubscription(ctx, subscription("s1", "c1")))
			e.Converge(20 * time.Second)
			cut := p
			cut.BillingPeriods = append([]engine.BillingPeriod{}, p.BillingPeriods...)
			var kept []engine.Charge
			for _, c := range p.BillingPeriods[0].Charges {
				if c.ID != "seats" && c.ArchivedAt == nil {
					kept = append(kept, c)
				}
			}
			cut.BillingPeriods[0].Charges = kept
			_, _, err := e.DB.UpsertPlan(ctx, cut)
			var ce *engine.ConflictError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "billingPeriods[0].charges", ce.Field)
			require.Contains(t, ce.Message, "Add a new billing period")
			got, err := e.DB.GetPlan(ctx, "pro")
			require.NoError(t, err)
			require.Equal(t, p.Revision, got.Revision, "nothing written")
		})
	}
}

// TestMappingConflictIsTerminal: a plan whose Zuora product (found by its SKU
// after a failed attempt) is mapped to another plan is billsync's own
// permanent conflict: dead at once with the message, not retried 8 times.
func TestMappingConflictIsTerminal(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := enginetest.New(t, d, enginetest.Options{ClientAttempts: 1})
			ctx := context.Background()
			p := must[engine.Plan](t)(e.DB.UpsertPlan(ctx, proPlan()))
			e.Converge(10 * time.Second)
			maps := e.Outbound.Mappings()
			pm, err := maps.Get(ctx, mappings.Product, p.ID)
			require.NoError(t, err)
			// The product's mapping now names another plan.
			require.NoError(t, maps.Delete(ctx, mappings.Product, p.ID))
			require.NoError(t, maps.Put(ctx, mappings.Mapping{Kind: mappings.Product, LocalID: "ghost", ZuoraID: pm.ZuoraID, ZuoraNumber: pm.ZuoraNumber}))
			// One failed create makes the next attempt look the product up by SKU.
			e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/object/product", Kind: zuorasim.FaultHTTP500, Count: 1})
			p.Description = "changed"
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
			e.Converge(10 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntityPlan, p.ID)
			require.NoError(t, err)
			require.Equal(t, store.StateDead, rec.State)
			require.Equal(t, 2, rec.Attempts, "the failed create, then the conflict: no retries of the conflict")
			require.Contains(t, rec.LastErrorMessage, "already mapped to another local id")
			require.Contains(t, rec.LastErrorMessage, `"ghost"`)
			require.Empty(t, rec.LastErrorCode, "billsync's own message: no Zuora code")
		})
	}
}
