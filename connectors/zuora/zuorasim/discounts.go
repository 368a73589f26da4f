package zuorasim

import (
	"strings"

	"github.com/shopspring/decimal"
)

// Discount charges (docs/zuora-rules.md, "Discounts"):
//
//   - "A discount charge behaves in the same way as a one-time charge or
//     recurring charge" (Discount charge models): a discount charge is
//     OneTime or Recurring, never Usage.
//   - Its scope is DiscountLevel (rateplan, subscription, account) and
//     ApplyDiscountTo (the charge types it discounts) ("Specify the discount
//     scope"); both are required on a discount charge and refused on any
//     other (stricter reading: the pages describe them only for discounts).
//   - Tier data: DiscountAmount "is required if ChargeModel is
//     Discount-Fixed Amount", "any positive decimal value", one per currency;
//     DiscountPercentage "is required if ChargeModel is Discount-Percentage",
//     "a decimal value between -100 and 100, exclusive" (Data Loader
//     dictionary, Product Rate Plan Charge Tier).
//   - "Orders or Order Metrics does not support account-level discounts":
//     an order that subscribes to one is refused.

func discountModel(m string) bool { return m == "Discount-Fixed Amount" || m == "Discount-Percentage" }

// applyDiscountToValues are ApplyDiscountTo's values as the OpenAPI file
// spells them ("RECURRING (2)"); the SOAP examples' bare names are refused
// (stricter reading: the REST contract is the spec's enum).
var applyDiscountToValues = set("ONETIME (1)", "RECURRING (2)", "ONETIMERECURRING (3)", "USAGE (4)", "ONETIMEUSAGE (5)", "RECURRINGUSAGE (6)", "ONETIMERECURRINGUSAGE (7)")

// discountTypes reads ApplyDiscountTo as the charge types it names.
func discountTypes(v string) map[string]bool {
	v = strings.Fields(v + " ")[0]
	out := map[string]bool{}
	for _, p := range []struct{ name, typ string }{{"ONETIME", "OneTime"}, {"RECURRING", "Recurring"}, {"USAGE", "Usage"}} {
		if strings.Contains(v, p.name) {
			out[p.typ] = true
		}
	}
	return out
}

// validateDiscount applies the discount rules to a charge body and its
// parsed tiers.
func validateDiscount(m map[string]any, tiers []*prpTier) *fieldErr {
	model := str(m["ChargeModel"])
	level, hasLevel := m["DiscountLevel"]
	apply, hasApply := m["ApplyDiscountTo"]
	if !discountModel(model) {
		if hasLevel && level != nil {
			return invalid("DiscountLevel is only for discount charges (Discount-Fixed Amount, Discount-Percentage), not %s", model)
		}
		if hasApply && apply != nil {
			return invalid("ApplyDiscountTo is only for discount charges (Discount-Fixed Amount, Discount-Percentage), not %s", model)
		}
		return nil
	}
	if ct := str(m["ChargeType"]); ct != "OneTime" && ct != "Recurring" {
		return invalid("A %s charge must be OneTime or Recurring, not %s", model, ct)
	}
	if _, e := enumString(m, "DiscountLevel", true, "rateplan", "subscription", "account"); e != nil {
		return e
	}
	a, e := reqString(m, "ApplyDiscountTo", 0)
	if e != nil {
		return e
	}
	if !applyDiscountToValues[a] {
		return invalid("ApplyDiscountTo %q is not one of ONETIME (1), RECURRING (2), ONETIMERECURRING (3), USAGE (4), ONETIMEUSAGE (5), RECURRINGUSAGE (6), ONETIMERECURRINGUSAGE (7)", a)
	}
	if len(tiers) == 0 {
		return missing("ProductRatePlanChargeTier")
	}
	hundred := decimal.NewFromInt(100)
	for _, t := range tiers {
		switch model {
		case "Discount-Fixed Amount":
			if t.DiscountPct != "" {
				return invalid("DiscountPercentage is for Discount-Percentage charges, not Discount-Fixed Amount")
			}
			d, err := decimal.NewFromString(string(t.DiscountAmount))
			if t.DiscountAmount == "" || err != nil {
				return missing("ProductRatePlanChargeTier.DiscountAmount")
			}
			if !d.IsPositive() {
				return invalid("DiscountAmount must be a positive decimal value (currency %s)", t.Currency)
			}
		default:
			if t.DiscountAmount != "" {
				return invalid("DiscountAmount is for Discount-Fixed Amount charges, not Discount-Percentage")
			}
			d, err := decimal.NewFromString(string(t.DiscountPct))
			if t.DiscountPct == "" || err != nil {
				return missing("ProductRatePlanChargeTier.DiscountPercentage")
			}
			if !d.GreaterThan(hundred.Neg()) || !d.LessThan(hundred) {
				return invalid("DiscountPercentage must be between -100 and 100, exclusive")
			}
		}
	}
	return nil
}

// checkOrderDiscount refuses, in an order, a discount charge Orders cannot take.
func checkOrderDiscount(pc *prpCharge) *fieldErr {
	if discountModel(str(pc.Fields["ChargeModel"])) && str(pc.Fields["DiscountLevel"]) == "account" {
		return business("Orders does not support account-level discounts: the charge %s (%s) has DiscountLevel account", str(pc.Fields["Name"]), pc.ID)
	}
	return nil
}
