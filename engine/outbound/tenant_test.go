package outbound_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// TestPlanNeedsTheTenant: a plan whose unit of measure or currency the
// tenant lacks is skipped with that reason before any write (no half-created
// product); once the admin creates them, the re-check syncs it, with the
// unit spelled as the tenant spells it.
func TestPlanNeedsTheTenant(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			tenant := zuorasim.FreshTenant()
			for _, obj := range []string{"Product", "ProductRatePlan", "ProductRatePlanCharge", "Account", "Subscription", "RatePlan"} {
				tenant.Define(obj, zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
			}
			e := enginetest.New(t, d, enginetest.Options{Sim: zuorasim.Options{Tenant: &tenant}})
			ctx := context.Background()
			p := proPlan()
			p.Currency = "CHF"
			p.BillingPeriods[0].Charges[1].UnitOfMeasure = "seat"
			must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
			e.Converge(20 * time.Second)
			rec, err := e.DB.GetSyncRecord(ctx, store.EntityPlan, "pro")
			require.NoError(t, err)
			require.Equal(t, store.StateSkipped, rec.State, "%s %s", rec.Reason, rec.LastErrorMessage)
			require.Contains(t, rec.Reason, `the Zuora tenant lacks the unit of measure "seat" and the currency CHF`)
			require.Empty(t, e.Sim.State().Products, "nothing was written")
			require.Zero(t, e.Sim.Stats().Calls["POST /v1/object/product"])

			// The admin activates CHF and creates "Seat"; billsync sends "Seat".
			tenant.Currencies = append(tenant.Currencies, "CHF")
			tenant.AddUnits("Seat")
			require.NoError(t, e.Sim.SetTenant(tenant))
			// A fresh read (the admin's "Check tenant") refreshes the client's
			// one-minute cache; the hourly re-check makes skipped plans due.
			_, err = e.Zuora.ReadTenantSettings(ctx)
			require.NoError(t, err)
			_, err = e.DB.RecheckAll(ctx, []string{store.EntityPlan})
			require.NoError(t, err)
			e.Converge(20 * time.Second)
			rec, err = e.DB.GetSyncRecord(ctx, store.EntityPlan, "pro")
			require.NoError(t, err)
			require.Equal(t, store.StateSynced, rec.State, "%s %s", rec.Reason, rec.LastErrorMessage)
			var uoms []string
			for _, ch := range e.Sim.State().Charges {
				if u, _ := ch.Fields["UOM"].(string); u != "" {
					uoms = append(uoms, u)
				}
			}
			require.Contains(t, uoms, "Seat")
			require.NotContains(t, uoms, "seat")
		})
	}
}

// TestUnitMap: a configured mapping sends the tenant's unit for the plan's
// (seat → License, which a fresh tenant has); bad mappings are refused.
func TestUnitMap(t *testing.T) {
	t.Parallel()
	m, err := outbound.ParseUnitMap("seat=License, api call = Each")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"seat": "License", "api call": "Each"}, m)
	for _, bad := range []string{"seat", "=x", "seat=", "a=b,a=c", "a=" + strings.Repeat("x", 26)} {
		_, err := outbound.ParseUnitMap(bad)
		require.Error(t, err, bad)
	}

	tenant := zuorasim.FreshTenant()
	for _, obj := range zuora.IDFieldObjects {
		tenant.Define(obj, zuorasim.CustomField{Name: "BillsyncId__c", Type: "text", Length: 255})
	}
	e := enginetest.New(t, storetest.Dialects[0], enginetest.Options{Sim: zuorasim.Options{Tenant: &tenant}})
	r := outbound.New(e.DB, e.Zuora, outbound.Config{UnitMap: map[string]string{"seat": "License"}})
	ctx := context.Background()
	p := proPlan()
	p.BillingPeriods[0].Charges[1].UnitOfMeasure = "seat"
	p.BillingPeriods[0].Charges[2].UnitOfMeasure = "Each"
	must[engine.Plan](t)(e.DB.UpsertPlan(ctx, p))
	need, err := r.TenantNeeds(ctx)
	require.NoError(t, err)
	require.Contains(t, need.Units, "License")
	require.NotContains(t, need.Units, "seat")
}
