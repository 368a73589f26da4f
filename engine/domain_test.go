package engine

import (
	"testing"

	"github.com/shopspring/decimal"
)

// TestPlanCloneSharesNothing: a cached plan is handed out as a clone; a
// reconcile changing its copy (slices, tiers, metadata) leaves the cache's.
func TestPlanCloneSharesNothing(t *testing.T) {
	p := Plan{ID: "p", Metadata: map[string]string{"k": "v"}, BillingPeriods: []BillingPeriod{{ID: "m", Charges: []Charge{
		{ID: "c", Price: decimal.NewFromInt(1), Tiers: []Tier{{Price: decimal.NewFromInt(2)}}}}}}}
	c := p.Clone()
	c.Metadata["k"] = "changed"
	c.BillingPeriods[0].ID = "changed"
	c.BillingPeriods[0].Charges[0].ID = "changed"
	c.BillingPeriods[0].Charges[0].Tiers[0].Price = decimal.NewFromInt(9)
	c.BillingPeriods[0].Charges = append(c.BillingPeriods[0].Charges, Charge{ID: "added"})
	if p.Metadata["k"] != "v" || p.BillingPeriods[0].ID != "m" || p.BillingPeriods[0].Charges[0].ID != "c" ||
		!p.BillingPeriods[0].Charges[0].Tiers[0].Price.Equal(decimal.NewFromInt(2)) || len(p.BillingPeriods[0].Charges) != 1 {
		t.Fatalf("the clone shares state with the original: %+v", p)
	}
	if z := (Plan{}).Clone(); z.Metadata != nil || z.BillingPeriods != nil {
		t.Fatalf("a zero plan's clone is not zero: %+v", z)
	}
}
