package zuorasim

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	productFields = set("Name", "EffectiveStartDate", "EffectiveEndDate", "SKU", "ProductNumber", "Category", "Description", "AllowFeatureChanges")
	planFields    = set("Name", "ProductId", "EffectiveStartDate", "EffectiveEndDate", "Description", "ProductRatePlanNumber", "ActiveCurrencies", "Grade",
		"ExternalIdSourceSystem", "ExternalRatePlanIds")
	chargeFields = set("AccountingCode", "ApplyDiscountTo", "ApplyToBillingPeriodPartially", "BillCycleDay", "BillCycleType", "BillingPeriod",
		"BillingPeriodAlignment", "BillingTiming", "ChargeFunction", "ChargeModel", "ChargeModelConfiguration", "ChargeType", "CommitmentType",
		"CreditOption", "DefaultQuantity", "DeferredRevenueAccount", "DeliverySchedule", "Description", "DiscountLevel", "DrawdownRate", "DrawdownUom",
		"EndDateCondition", "ExcludeItemBillingFromRevenueAccounting", "ExcludeItemBookingFromRevenueAccounting", "Formula", "IncludedUnits",
		"IsAllocationEligible", "IsPrepaid", "IsRollover", "IsStackedDiscount", "IsUnbilled", "LegacyRevenueReporting", "ListPriceBase", "MaxQuantity",
		"MinQuantity", "Name", "NumberOfPeriod", "OverageCalculationOption", "OverageUnusedUnitsCreditOption", "PrepaidOperationType", "PrepaidQuantity",
		"PrepaidTotalQuantity", "PrepaidUom", "PriceChangeOption", "PriceIncreaseOption", "PriceIncreasePercentage", "ProductCategory", "ProductClass",
		"ProductFamily", "ProductLine", "ProductRatePlanChargeNumber", "ProductRatePlanChargeTierData", "ProductRatePlanId", "ProrationOption",
		"RatingGroup", "RecognizedRevenueAccount", "ReflectDiscountInNetAmount", "RevRecCode", "RevRecTriggerCondition", "RevenueAmortizationMethod",
		"RevenueRecognitionRuleName", "RevenueRecognitionTiming", "RolloverApply", "RolloverPeriodLength", "RolloverPeriods", "SmoothingModel",
		"SpecificBillingPeriod", "SpecificListPriceBase", "TaxCode", "TaxMode", "Taxable", "TriggerEvent", "UOM", "UpToPeriods", "UpToPeriodsType",
		"UsageRecordRatingOption", "UseDiscountSpecificAccountingCode", "UseTenantDefaultForPriceChange", "ValidityPeriodType", "WeeklyBillCycleDay")
	tierFields = set("Price", "PriceFormat", "DiscountPercentage", "DiscountAmount")

	chargeModels = []string{"Discount-Fixed Amount", "Discount-Percentage", "Flat Fee Pricing", "Per Unit Pricing", "Overage Pricing", "Tiered Pricing",
		"Tiered with Overage Pricing", "Volume Pricing", "Delivery Pricing", "MultiAttributePricing", "PreratedPerUnit", "PreratedPricing",
		"HighWatermarkVolumePricing", "HighWatermarkTieredPricing"}
	billCycleTypes = []string{"DefaultFromCustomer", "SpecificDayofMonth", "SubscriptionStartDay", "ChargeTriggerDay", "SpecificDayofWeek", "TermStartDay", "TermEndDay"}
	billingPeriods = []string{"Month", "Quarter", "Annual", "Semi-Annual", "Specific Months", "Subscription Term", "Week", "Specific Weeks", "Specific Days"}
	triggerEvents  = []string{"ContractEffective", "ServiceActivation", "CustomerAcceptance"}
)

// restModel maps CRUD ChargeModel spellings to REST `model` values.
var restModel = map[string]string{
	"Flat Fee Pricing": "FlatFee", "Per Unit Pricing": "PerUnit", "Tiered Pricing": "Tiered", "Volume Pricing": "Volume",
	"Overage Pricing": "Overage", "Tiered with Overage Pricing": "TieredWithOverage", "Discount-Fixed Amount": "DiscountFixedAmount",
	"Discount-Percentage": "DiscountPercentage", "Delivery Pricing": "Delivery",
}

func restModelOf(m string) string {
	if r, ok := restModel[m]; ok {
		return r
	}
	return m
}

func underscore(s string) string {
	return strings.NewReplacer(" ", "_", "-", "_").Replace(s)
}

func restTiming(s string) string {
	switch s {
	case "In Advance":
		return "IN_ADVANCE"
	case "In Arrears":
		return "IN_ARREARS"
	}
	return s
}

func restEndDateCondition(s string) string {
	switch s {
	case "", "SubscriptionEnd":
		return "Subscription_End"
	case "FixedPeriod":
		return "Fixed_Period"
	}
	return s
}

func tieredModel(m string) bool {
	switch m {
	case "Tiered Pricing", "Volume Pricing", "Tiered with Overage Pricing", "HighWatermarkVolumePricing", "HighWatermarkTieredPricing":
		return true
	}
	return false
}

func quantityModel(m string) bool {
	switch m {
	case "Per Unit Pricing", "Tiered Pricing", "Volume Pricing", "Tiered with Overage Pricing", "Overage Pricing", "Delivery Pricing":
		return true
	}
	return false
}

// ---- CRUD plumbing ----

func (c *call) crudBody(known map[string]bool) (map[string]any, *resp) {
	m, err := decodeObject(c.body)
	if err != nil {
		return nil, crudBad("INVALID_VALUE", "Malformed JSON body: "+err.Error())
	}
	if c.r.URL.Query().Get("rejectUnknownFields") == "true" && len(unknownKeys(m, known)) > 0 {
		return nil, jsonResp(http.StatusBadRequest, map[string]any{"message": "Error - unrecognised fields"})
	}
	return m, nil
}

func crudFieldErr(e *fieldErr) *resp {
	return crudBad(crudCode(e.cat), e.msg)
}

func crudOK(id string) *resp {
	return jsonResp(http.StatusOK, map[string]any{"Id": id, "Success": true})
}

func crudNotFound() *resp {
	return jsonResp(http.StatusNotFound, map[string]any{"done": true, "records": []any{}, "size": 0})
}

func crudDeleted(id string) *resp {
	return jsonResp(http.StatusOK, map[string]any{"id": id, "success": true})
}

// crudView renders a stored object for a CRUD GET, honouring ?fields=.
func (c *call) crudView(id string, fields map[string]any, created, updated time.Time) *resp {
	out := cloneMap(fields)
	out["Id"] = id
	out["CreatedDate"] = created.UTC().Format(time.RFC3339)
	out["UpdatedDate"] = updated.UTC().Format(time.RFC3339)
	out["CreatedById"] = simUserID
	out["UpdatedById"] = simUserID
	if f := c.r.URL.Query().Get("fields"); f != "" {
		want := map[string]bool{"id": true}
		for _, x := range strings.Split(f, ",") {
			want[strings.ToLower(strings.TrimSpace(x))] = true
		}
		for k := range out {
			if !want[strings.ToLower(k)] {
				delete(out, k)
			}
		}
	}
	return jsonResp(http.StatusOK, out)
}

const simUserID = "2c93808457d787030157e031fcd34e19"

// ---- products ----

func validateProduct(m map[string]any, create bool) *fieldErr {
	if create {
		if _, e := reqString(m, "Name", 100); e != nil {
			return e
		}
	} else if _, e := optString(m, "Name", 100); e != nil {
		return e
	}
	for _, k := range []string{"EffectiveStartDate", "EffectiveEndDate"} {
		if _, e := dateField(m, k, create); e != nil {
			return e
		}
	}
	if _, e := optString(m, "SKU", 50); e != nil {
		return e
	}
	if _, e := optString(m, "Description", 500); e != nil {
		return e
	}
	if _, e := optString(m, "Category", 100); e != nil {
		return e
	}
	if _, e := optString(m, "ProductNumber", 100); e != nil {
		return e
	}
	if _, _, e := boolField(m, "AllowFeatureChanges"); e != nil {
		return e
	}
	if str(m["EffectiveStartDate"]) != "" && str(m["EffectiveEndDate"]) != "" && str(m["EffectiveEndDate"]) < str(m["EffectiveStartDate"]) {
		return invalid("EffectiveEndDate must not be before EffectiveStartDate")
	}
	return nil
}

func (s *Sim) postProduct(c *call) *resp {
	m, bad := c.crudBody(productFields)
	if bad != nil {
		return bad
	}
	if e := validateProduct(m, true); e != nil {
		return crudFieldErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if fe := s.tenant.custom("Product", m); fe != nil {
		return crudFieldErr(fe)
	}
	fields := pick(m, productFields)
	if sku := str(fields["SKU"]); sku != "" {
		for _, p := range st.products {
			if str(p.Fields["SKU"]) == sku {
				return crudBad("DUPLICATE_VALUE", fmt.Sprintf("The SKU %s is already used by another product", sku))
			}
		}
	}
	num := str(fields["ProductNumber"])
	if num != "" {
		for _, p := range st.products {
			if p.Number == num {
				return crudBad("DUPLICATE_VALUE", fmt.Sprintf("The product number %s is already used", num))
			}
		}
	}
	st.nProduct++
	if num == "" {
		num = fmt.Sprintf("PC-%08d", st.nProduct)
	}
	if str(fields["SKU"]) == "" {
		fields["SKU"] = fmt.Sprintf("SKU-%08d", st.nProduct)
	}
	fields["ProductNumber"] = num
	p := &product{ID: st.newID(), Fields: fields, Number: num, Created: c.now, Updated: c.now}
	st.products[p.ID] = p
	st.productOrder = append(st.productOrder, p.ID)
	return crudOK(p.ID)
}

func (s *Sim) putProduct(c *call) *resp {
	m, bad := c.crudBody(productFields)
	if bad != nil {
		return bad
	}
	if e := validateProduct(m, false); e != nil {
		return crudFieldErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.products[c.param("id")]
	if p == nil {
		return crudBad("INVALID_ID", "invalid product id "+c.param("id"))
	}
	if fe := s.tenant.custom("Product", m); fe != nil {
		return crudFieldErr(fe)
	}
	for k, v := range pick(m, productFields) {
		p.Fields[k] = v
	}
	if n := str(m["ProductNumber"]); n != "" {
		p.Number = n
	}
	if str(p.Fields["EffectiveEndDate"]) < str(p.Fields["EffectiveStartDate"]) {
		return crudBad("INVALID_VALUE", "EffectiveEndDate must not be before EffectiveStartDate")
	}
	p.Updated = c.now
	return crudOK(p.ID)
}

func (s *Sim) getProduct(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.products[c.param("id")]
	if p == nil {
		return crudNotFound()
	}
	return c.crudView(p.ID, p.Fields, p.Created, p.Updated)
}

func (s *Sim) inUseProductRatePlans() map[string]bool {
	used := map[string]bool{}
	for _, sub := range s.st.subs {
		for _, v := range sub.Versions {
			for _, rp := range v.RatePlans {
				used[rp.ProductRatePlanID] = true
			}
		}
	}
	return used
}

func (s *Sim) deleteProduct(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	p := st.products[c.param("id")]
	if p == nil {
		return crudBad("INVALID_ID", "invalid product id "+c.param("id"))
	}
	used := s.inUseProductRatePlans()
	for _, pid := range p.Plans {
		if used[pid] {
			return crudBad("INVALID_VALUE", "The product cannot be deleted because it is used by subscriptions")
		}
	}
	for _, pid := range slices.Clone(p.Plans) {
		s.dropPlan(pid)
	}
	delete(st.products, p.ID)
	st.productOrder = slices.DeleteFunc(st.productOrder, func(x string) bool { return x == p.ID })
	return crudDeleted(p.ID)
}

// ---- product rate plans ----

func validatePlan(m map[string]any, create bool) *fieldErr {
	if create {
		if _, e := reqString(m, "Name", 255); e != nil {
			return e
		}
		if _, e := reqString(m, "ProductId", 32); e != nil {
			return e
		}
	} else {
		if _, e := optString(m, "Name", 255); e != nil {
			return e
		}
		if _, e := optString(m, "ProductId", 32); e != nil {
			return e
		}
	}
	for _, k := range []string{"EffectiveStartDate", "EffectiveEndDate"} {
		if _, e := dateField(m, k, false); e != nil {
			return e
		}
	}
	if _, e := optString(m, "Description", 500); e != nil {
		return e
	}
	if _, e := optString(m, "ProductRatePlanNumber", 100); e != nil {
		return e
	}
	if _, _, e := numField(m, "Grade", false); e != nil {
		return e
	}
	if a, e := arrField(m, "ActiveCurrencies"); e != nil {
		return e
	} else {
		for _, x := range a {
			if _, ok := x.(string); !ok {
				return invalid("ActiveCurrencies contains a value that is not a currency code: %v", x)
			}
		}
	}
	return nil
}

// planTenant checks a rate plan body against the tenant; the caller holds s.mu.
func (s *Sim) planTenant(m map[string]any) *fieldErr {
	if a, ok := m["ActiveCurrencies"].([]any); ok {
		for _, x := range a {
			if fe := s.tenant.currency("ActiveCurrencies", str(x)); fe != nil {
				return fe
			}
		}
	}
	return s.tenant.custom("ProductRatePlan", m)
}

func (s *Sim) postPlan(c *call) *resp {
	m, bad := c.crudBody(planFields)
	if bad != nil {
		return bad
	}
	if e := validatePlan(m, true); e != nil {
		return crudFieldErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	p := st.products[str(m["ProductId"])]
	if p == nil {
		return crudBad("INVALID_VALUE", "invalid product id "+str(m["ProductId"]))
	}
	if fe := s.planTenant(m); fe != nil {
		return crudFieldErr(fe)
	}
	fields := pick(m, planFields)
	num := str(fields["ProductRatePlanNumber"])
	if num != "" {
		for _, rp := range st.plans {
			if rp.Number == num {
				return crudBad("DUPLICATE_VALUE", "The product rate plan number "+num+" is already used")
			}
		}
	}
	st.nPlan++
	if num == "" {
		num = fmt.Sprintf("PRP-%08d", st.nPlan)
	}
	fields["ProductRatePlanNumber"] = num
	if str(fields["EffectiveStartDate"]) == "" {
		fields["EffectiveStartDate"] = p.Fields["EffectiveStartDate"]
	}
	if str(fields["EffectiveEndDate"]) == "" {
		fields["EffectiveEndDate"] = p.Fields["EffectiveEndDate"]
	}
	rp := &ratePlan{ID: st.newID(), ProductID: p.ID, Fields: fields, Number: num, Created: c.now, Updated: c.now}
	st.plans[rp.ID] = rp
	p.Plans = append(p.Plans, rp.ID)
	p.Updated = c.now
	return crudOK(rp.ID)
}

func (s *Sim) putPlan(c *call) *resp {
	m, bad := c.crudBody(planFields)
	if bad != nil {
		return bad
	}
	if e := validatePlan(m, false); e != nil {
		return crudFieldErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.st.plans[c.param("id")]
	if rp == nil {
		return crudBad("INVALID_ID", "invalid product rate plan id "+c.param("id"))
	}
	if pid := str(m["ProductId"]); pid != "" && pid != rp.ProductID {
		return crudBad("INVALID_VALUE", "ProductId of a product rate plan cannot be changed")
	}
	if fe := s.planTenant(m); fe != nil {
		return crudFieldErr(fe)
	}
	for k, v := range pick(m, planFields) {
		rp.Fields[k] = v
	}
	if n := str(m["ProductRatePlanNumber"]); n != "" {
		rp.Number = n
	}
	rp.Updated = c.now
	if p := s.st.products[rp.ProductID]; p != nil {
		p.Updated = c.now
	}
	return crudOK(rp.ID)
}

func (s *Sim) getPlan(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.st.plans[c.param("id")]
	if rp == nil {
		return crudNotFound()
	}
	f := cloneMap(rp.Fields)
	f["ProductId"] = rp.ProductID
	return c.crudView(rp.ID, f, rp.Created, rp.Updated)
}

func (s *Sim) dropPlan(id string) {
	st := s.st
	rp := st.plans[id]
	if rp == nil {
		return
	}
	for _, cid := range rp.Charges {
		if ch := st.charges[cid]; ch != nil {
			for _, t := range ch.Tiers {
				delete(st.tiers, t.ID)
			}
		}
		delete(st.charges, cid)
	}
	delete(st.plans, id)
	if p := st.products[rp.ProductID]; p != nil {
		p.Plans = slices.DeleteFunc(p.Plans, func(x string) bool { return x == id })
	}
}

func (s *Sim) deletePlan(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.st.plans[c.param("id")]
	if rp == nil {
		return crudBad("INVALID_ID", "invalid product rate plan id "+c.param("id"))
	}
	if s.inUseProductRatePlans()[rp.ID] {
		return crudBad("INVALID_VALUE", "The product rate plan cannot be deleted because it is used by subscriptions")
	}
	s.dropPlan(rp.ID)
	return crudDeleted(rp.ID)
}

// ---- product rate plan charges ----

func validateCharge(m map[string]any, create bool) *fieldErr {
	if create {
		if _, e := reqString(m, "Name", 100); e != nil {
			return e
		}
		if _, e := enumString(m, "ChargeType", true, "OneTime", "Recurring", "Usage"); e != nil {
			return e
		}
	} else {
		if _, e := optString(m, "Name", 100); e != nil {
			return e
		}
		if _, e := enumString(m, "ChargeType", false, "OneTime", "Recurring", "Usage"); e != nil {
			return e
		}
	}
	// Required on both create and update in the spec (ProxyModifyProductRatePlanCharge).
	if _, e := reqString(m, "ProductRatePlanId", 32); e != nil {
		return e
	}
	model, e := enumString(m, "ChargeModel", true, chargeModels...)
	if e != nil {
		return e
	}
	bct, e := enumString(m, "BillCycleType", true, billCycleTypes...)
	if e != nil {
		return e
	}
	bp, e := enumString(m, "BillingPeriod", true, billingPeriods...)
	if e != nil {
		return e
	}
	if _, e := enumString(m, "TriggerEvent", true, triggerEvents...); e != nil {
		return e
	}
	if v, ok := m["UseDiscountSpecificAccountingCode"]; !ok {
		return missing("UseDiscountSpecificAccountingCode")
	} else if _, isBool := v.(bool); v != nil && !isBool {
		return invalid("'UseDiscountSpecificAccountingCode' should be a boolean")
	}
	if _, ok := m["ProductRatePlanChargeTierData"]; !ok {
		return missing("ProductRatePlanChargeTierData")
	}
	if _, e := enumString(m, "BillingTiming", false, "In Advance", "In Arrears"); e != nil {
		return e
	}
	if _, e := enumString(m, "BillingPeriodAlignment", false, "AlignToCharge", "AlignToSubscriptionStart", "AlignToTermStart", "AlignToTermEnd"); e != nil {
		return e
	}
	if _, e := enumString(m, "ListPriceBase", false, "Per Billing Period", "Per Month", "Per Week", "Per Year", "Per Specific Months"); e != nil {
		return e
	}
	edc, e := enumString(m, "EndDateCondition", false, "SubscriptionEnd", "FixedPeriod")
	if e != nil {
		return e
	}
	if _, e := enumString(m, "WeeklyBillCycleDay", false, "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"); e != nil {
		return e
	}
	if _, e := enumString(m, "UpToPeriodsType", false, "Billing Periods", "Days", "Weeks", "Months", "Years"); e != nil {
		return e
	}
	if _, e := enumString(m, "TaxMode", false, "TaxExclusive", "TaxInclusive"); e != nil {
		return e
	}
	if _, e := enumString(m, "RevenueRecognitionRuleName", false, "Recognize upon invoicing", "Recognize daily over time"); e != nil {
		return e
	}
	if _, e := enumString(m, "ProrationOption", false, "NoProration", "TimeBasedProration", "DefaultFromTenantSetting", "ChargeFullPeriod"); e != nil {
		return e
	}
	if _, e := enumString(m, "PriceChangeOption", false, "NoChange", "SpecificPercentageValue", "UseLatestProductCatalogPricing"); e != nil {
		return e
	}
	if _, e := enumString(m, "ChargeFunction", false, "Standard", "Prepayment", "CommitmentTrueUp", "Drawdown", "CreditCommitment", "DrawdownAndCreditCommitment"); e != nil {
		return e
	}
	if _, e := optString(m, "Description", 500); e != nil {
		return e
	}
	uom, e := optString(m, "UOM", 25)
	if e != nil {
		return e
	}
	switch model {
	case "Per Unit Pricing", "Volume Pricing", "Overage Pricing", "Tiered Pricing", "Tiered with Overage Pricing":
		if uom == "" {
			return missing("UOM")
		}
	}
	for _, k := range []string{"DefaultQuantity", "IncludedUnits", "MinQuantity", "MaxQuantity"} {
		if _, _, e := numField(m, k, false); e != nil {
			return e
		}
	}
	if bct == "SpecificDayofMonth" {
		d, ok, e := intField(m, "BillCycleDay")
		if e != nil {
			return e
		}
		if !ok {
			return missing("BillCycleDay")
		}
		if d < 1 || d > 31 {
			return invalid("'BillCycleDay' should be between 1 and 31")
		}
	}
	if bct == "SpecificDayofWeek" && str(m["WeeklyBillCycleDay"]) == "" {
		return missing("WeeklyBillCycleDay")
	}
	if bp == "Specific Months" || bp == "Specific Weeks" || bp == "Specific Days" {
		if _, ok, e := intField(m, "SpecificBillingPeriod"); e != nil {
			return e
		} else if !ok {
			return missing("SpecificBillingPeriod")
		}
	}
	if edc == "FixedPeriod" {
		if _, ok, e := intField(m, "UpToPeriods"); e != nil {
			return e
		} else if !ok {
			return missing("UpToPeriods")
		}
		if str(m["UpToPeriodsType"]) == "" {
			return missing("UpToPeriodsType")
		}
	}
	return nil
}

// chargeTenant checks a charge body against the tenant: its unit of
// measure, custom fields and the billing-timing feature. The caller holds s.mu.
func (s *Sim) chargeTenant(m map[string]any) *fieldErr {
	if u := str(m["UOM"]); u != "" {
		if fe := s.tenant.uom(u); fe != nil {
			return fe
		}
	}
	if str(m["BillingTiming"]) == "In Arrears" && !s.tenant.feature(FeatureBillingTiming) {
		return business("BillingTiming In Arrears needs the Billing Timing feature, which is not enabled in this tenant")
	}
	return s.tenant.custom("ProductRatePlanCharge", m)
}

// parseTiers reads ProductRatePlanChargeTierData.
func parseTiers(m map[string]any, model string, defaultCurrency string, tenant *tenantRules) ([]*prpTier, *fieldErr) {
	td, e := objField(m, "ProductRatePlanChargeTierData")
	if e != nil {
		return nil, e
	}
	if td == nil {
		return nil, missing("ProductRatePlanChargeTierData")
	}
	raw, e := arrField(td, "ProductRatePlanChargeTier")
	if e != nil {
		return nil, e
	}
	items, e := objects(raw, "ProductRatePlanChargeTier")
	if e != nil {
		return nil, e
	}
	var out []*prpTier
	perCurrency := map[string]int{}
	for _, it := range items {
		cur, e := optString(it, "Currency", 3)
		if e != nil {
			return nil, e
		}
		if cur == "" {
			cur = defaultCurrency
		}
		if fe := tenant.currency("ProductRatePlanChargeTier.Currency", cur); fe != nil {
			return nil, fe
		}
		t := &prpTier{Currency: cur}
		var ok bool
		if t.Price, _, e = numField(it, "Price", false); e != nil {
			return nil, e
		}
		if t.StartingUnit, _, e = numField(it, "StartingUnit", false); e != nil {
			return nil, e
		}
		if t.EndingUnit, _, e = numField(it, "EndingUnit", false); e != nil {
			return nil, e
		}
		if t.DiscountAmount, _, e = numField(it, "DiscountAmount", false); e != nil {
			return nil, e
		}
		if t.DiscountPct, _, e = numField(it, "DiscountPercentage", false); e != nil {
			return nil, e
		}
		if t.PriceFormat, e = enumString(it, "PriceFormat", false, "Flat Fee", "Per Unit"); e != nil {
			return nil, e
		}
		if t.IsOveragePrice, ok, e = boolField(it, "IsOveragePrice"); e != nil {
			return nil, e
		}
		_ = ok
		if t.PriceFormat == "" {
			switch {
			case model == "Flat Fee Pricing":
				t.PriceFormat = "Flat Fee"
			case quantityModel(model):
				t.PriceFormat = "Per Unit"
			}
		}
		if !tieredModel(model) && perCurrency[cur] > 0 && !t.IsOveragePrice {
			return nil, invalid("Only one price per currency is allowed for the charge model %s", model)
		}
		perCurrency[cur]++
		t.Tier = perCurrency[cur]
		out = append(out, t)
	}
	return out, nil
}

func (s *Sim) postCharge(c *call) *resp {
	return s.writeCharge(c, true)
}

func (s *Sim) putCharge(c *call) *resp {
	return s.writeCharge(c, false)
}

func (s *Sim) writeCharge(c *call, create bool) *resp {
	m, bad := c.crudBody(chargeFields)
	if bad != nil {
		return bad
	}
	if e := validateCharge(m, create); e != nil {
		return crudFieldErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	var ch *prpCharge
	if !create {
		ch = st.charges[c.param("id")]
		if ch == nil {
			return crudBad("INVALID_ID", "invalid product rate plan charge id "+c.param("id"))
		}
		if str(m["ProductRatePlanId"]) != ch.PlanID {
			return crudBad("INVALID_VALUE", "ProductRatePlanId of a charge cannot be changed")
		}
	}
	rp := st.plans[str(m["ProductRatePlanId"])]
	if rp == nil {
		return crudBad("INVALID_VALUE", "invalid product rate plan id "+str(m["ProductRatePlanId"]))
	}
	defCur := "USD"
	if ac, ok := rp.Fields["ActiveCurrencies"].([]any); ok && len(ac) > 0 {
		defCur = str(ac[0])
	}
	tiers, e := parseTiers(m, str(m["ChargeModel"]), defCur, s.tenant)
	if e != nil {
		return crudFieldErr(e)
	}
	if e := checkTierRanges(tiers, str(m["ChargeModel"])); e != nil {
		return crudFieldErr(e)
	}
	if e := validateDiscount(m, tiers); e != nil {
		return crudFieldErr(e)
	}
	if e := s.chargeTenant(m); e != nil {
		return crudFieldErr(e)
	}
	fields := pick(m, chargeFields)
	delete(fields, "ProductRatePlanChargeTierData")
	if create {
		num := str(fields["ProductRatePlanChargeNumber"])
		if num != "" {
			for _, x := range st.charges {
				if x.Number == num {
					return crudBad("DUPLICATE_VALUE", "The product rate plan charge number "+num+" is already used")
				}
			}
		}
		st.nPRPC++
		if num == "" {
			num = fmt.Sprintf("PRPC-%08d", st.nPRPC)
		}
		fields["ProductRatePlanChargeNumber"] = num
		if str(fields["EndDateCondition"]) == "" {
			fields["EndDateCondition"] = "SubscriptionEnd"
		}
		if str(fields["ListPriceBase"]) == "" && str(fields["ChargeType"]) == "Recurring" {
			fields["ListPriceBase"] = "Per Billing Period"
		}
		if str(fields["BillingTiming"]) == "" && str(fields["ChargeType"]) == "Recurring" {
			fields["BillingTiming"] = "In Advance"
		}
		if _, ok := fields["DefaultQuantity"]; !ok && quantityModel(str(fields["ChargeModel"])) {
			fields["DefaultQuantity"] = json.Number("0")
			if str(fields["ChargeModel"]) == "Per Unit Pricing" {
				fields["DefaultQuantity"] = json.Number("1")
			}
		}
		ch = &prpCharge{ID: st.newID(), PlanID: rp.ID, Fields: fields, Number: num, Created: c.now}
		st.charges[ch.ID] = ch
		rp.Charges = append(rp.Charges, ch.ID)
	} else {
		for k, v := range fields {
			ch.Fields[k] = v
		}
		if n := str(fields["ProductRatePlanChargeNumber"]); n != "" {
			ch.Number = n
		}
		for _, t := range ch.Tiers {
			delete(st.tiers, t.ID)
		}
	}
	for _, t := range tiers {
		t.ID = st.newID()
		t.ChargeID = ch.ID
		st.tiers[t.ID] = t
	}
	ch.Tiers = tiers
	ch.Updated = c.now
	rp.Updated = c.now
	if p := st.products[rp.ProductID]; p != nil {
		p.Updated = c.now
	}
	return crudOK(ch.ID)
}

func (s *Sim) getCharge(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.st.charges[c.param("id")]
	if ch == nil {
		return crudNotFound()
	}
	f := cloneMap(ch.Fields)
	f["ProductRatePlanId"] = ch.PlanID
	return c.crudView(ch.ID, f, ch.Created, ch.Updated)
}

func (s *Sim) deleteCharge(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	ch := st.charges[c.param("id")]
	if ch == nil {
		return crudBad("INVALID_ID", "invalid product rate plan charge id "+c.param("id"))
	}
	if s.inUseProductRatePlans()[ch.PlanID] {
		return crudBad("INVALID_VALUE", "The charge cannot be deleted because its rate plan is used by subscriptions")
	}
	for _, t := range ch.Tiers {
		delete(st.tiers, t.ID)
	}
	delete(st.charges, ch.ID)
	if rp := st.plans[ch.PlanID]; rp != nil {
		rp.Charges = slices.DeleteFunc(rp.Charges, func(x string) bool { return x == ch.ID })
	}
	return crudDeleted(ch.ID)
}

func (s *Sim) putTier(c *call) *resp {
	m, bad := c.crudBody(tierFields)
	if bad != nil {
		return bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.tiers[c.param("id")]
	if t == nil {
		return crudBad("INVALID_ID", "invalid product rate plan charge tier id "+c.param("id"))
	}
	price, okP, e := numField(m, "Price", false)
	if e != nil {
		return crudFieldErr(e)
	}
	da, okA, e := numField(m, "DiscountAmount", false)
	if e != nil {
		return crudFieldErr(e)
	}
	dp, okD, e := numField(m, "DiscountPercentage", false)
	if e != nil {
		return crudFieldErr(e)
	}
	pf, e := enumString(m, "PriceFormat", false, "Flat Fee", "Per Unit")
	if e != nil {
		return crudFieldErr(e)
	}
	if okP {
		t.Price = price
	}
	if okA {
		t.DiscountAmount = da
	}
	if okD {
		t.DiscountPct = dp
	}
	if pf != "" {
		t.PriceFormat = pf
	}
	if ch := s.st.charges[t.ChargeID]; ch != nil {
		ch.Updated = c.now
		if rp := s.st.plans[ch.PlanID]; rp != nil {
			rp.Updated = c.now
			if p := s.st.products[rp.ProductID]; p != nil {
				p.Updated = c.now
			}
		}
	}
	return crudOK(t.ID)
}

func (s *Sim) getTier(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.tiers[c.param("id")]
	if t == nil {
		return crudNotFound()
	}
	f := map[string]any{"Currency": t.Currency, "Tier": t.Tier, "ProductRatePlanChargeId": t.ChargeID, "IsOveragePrice": t.IsOveragePrice}
	for k, v := range map[string]json.Number{"Price": t.Price, "StartingUnit": t.StartingUnit, "EndingUnit": t.EndingUnit, "DiscountAmount": t.DiscountAmount, "DiscountPercentage": t.DiscountPct} {
		if v != "" {
			f[k] = v
		}
	}
	if t.PriceFormat != "" {
		f["PriceFormat"] = t.PriceFormat
	}
	return c.crudView(t.ID, f, time.Time{}, time.Time{})
}

// ---- REST catalog reads ----

func (s *Sim) findProduct(key string) *product {
	if p, ok := s.st.products[key]; ok {
		return p
	}
	for _, id := range s.st.productOrder {
		p := s.st.products[id]
		if p.Number == key || str(p.Fields["SKU"]) == key {
			return p
		}
	}
	return nil
}

func planStatus(rp *ratePlan, today string) string {
	start, end := str(rp.Fields["EffectiveStartDate"]), str(rp.Fields["EffectiveEndDate"])
	switch {
	case start != "" && today < start:
		return "NotStarted"
	case end != "" && today >= end:
		return "Expired"
	}
	return "Active"
}

func (s *Sim) restProduct(c *call, p *product, embedded bool) map[string]any {
	out := customFields(p.Fields)
	out["id"] = p.ID
	out["name"] = str(p.Fields["Name"])
	out["sku"] = str(p.Fields["SKU"])
	out["productNumber"] = p.Number
	out["effectiveStartDate"] = str(p.Fields["EffectiveStartDate"])
	out["effectiveEndDate"] = str(p.Fields["EffectiveEndDate"])
	if d := str(p.Fields["Description"]); d != "" {
		out["description"] = d
	}
	if d := str(p.Fields["Category"]); d != "" {
		out["category"] = d
	}
	out["productFeatures"] = []any{}
	if embedded {
		plans := make([]map[string]any, 0, len(p.Plans))
		for i, pid := range p.Plans {
			if i >= 300 {
				break
			}
			plans = append(plans, s.restPlan(c, s.st.plans[pid], true))
		}
		out["productRatePlans"] = plans
	} else {
		out["productRatePlans"] = "/v1/rateplan/" + p.ID + "/productRatePlan"
	}
	return out
}

func (s *Sim) restPlan(c *call, rp *ratePlan, withCharges bool) map[string]any {
	out := customFields(rp.Fields)
	out["id"] = rp.ID
	out["name"] = str(rp.Fields["Name"])
	out["status"] = planStatus(rp, c.now.Format(dateLayout))
	out["productRatePlanNumber"] = rp.Number
	if d := str(rp.Fields["EffectiveStartDate"]); d != "" {
		out["effectiveStartDate"] = d
	}
	if d := str(rp.Fields["EffectiveEndDate"]); d != "" {
		out["effectiveEndDate"] = d
	}
	if d := str(rp.Fields["Description"]); d != "" {
		out["description"] = d
	}
	if g, ok := rp.Fields["Grade"].(json.Number); ok {
		out["grade"] = numberValue(g)
	}
	if withCharges {
		charges := make([]map[string]any, 0, len(rp.Charges))
		for i, cid := range rp.Charges {
			if i >= 300 {
				break
			}
			charges = append(charges, restCharge(s.st.charges[cid]))
		}
		out["productRatePlanCharges"] = charges
	}
	return out
}

func restCharge(ch *prpCharge) map[string]any {
	f := ch.Fields
	model := str(f["ChargeModel"])
	out := customFields(f)
	out["id"] = ch.ID
	out["name"] = str(f["Name"])
	out["type"] = str(f["ChargeType"])
	out["model"] = restModelOf(model)
	out["productRatePlanChargeNumber"] = ch.Number
	out["billingDay"] = str(f["BillCycleType"])
	out["billingPeriod"] = underscore(str(f["BillingPeriod"]))
	out["triggerEvent"] = str(f["TriggerEvent"])
	out["endDateCondition"] = restEndDateCondition(str(f["EndDateCondition"]))
	if v := str(f["UOM"]); v != "" {
		out["uom"] = v
	}
	if v := str(f["Description"]); v != "" {
		out["description"] = v
	}
	if v := str(f["BillingTiming"]); v != "" {
		out["billingTiming"] = restTiming(v)
	}
	if v := str(f["BillingPeriodAlignment"]); v != "" {
		out["billingPeriodAlignment"] = v
	}
	if v := str(f["ListPriceBase"]); v != "" {
		out["listPriceBase"] = underscore(v)
	}
	if v, ok := f["DefaultQuantity"].(json.Number); ok {
		out["defaultQuantity"] = decimalString(v)
	}
	if v, ok := f["IncludedUnits"].(json.Number); ok {
		out["includedUnits"] = decimalString(v)
	}
	if v, ok := f["Taxable"].(bool); ok {
		out["taxable"] = v
	}
	if v := str(f["TaxCode"]); v != "" {
		out["taxCode"] = v
	}
	if v := str(f["TaxMode"]); v != "" {
		out["taxMode"] = v
	}
	if v, ok := f["SpecificBillingPeriod"].(json.Number); ok {
		if n, err := strconv.Atoi(v.String()); err == nil {
			out["specificBillingPeriod"] = n
		}
	}
	if v, ok := f["UseDiscountSpecificAccountingCode"].(bool); ok {
		out["useDiscountSpecificAccountingCode"] = v
	}
	pricing, summary := restPricing(ch.Tiers, model, str(f["UOM"]))
	out["pricing"] = pricing
	out["pricingSummary"] = summary
	return out
}

func restPricing(tiers []*prpTier, model, uom string) ([]map[string]any, []string) {
	byCur := map[string][]*prpTier{}
	var order []string
	for _, t := range tiers {
		if _, ok := byCur[t.Currency]; !ok {
			order = append(order, t.Currency)
		}
		byCur[t.Currency] = append(byCur[t.Currency], t)
	}
	pricing := make([]map[string]any, 0, len(order))
	summary := make([]string, 0, len(order))
	for _, cur := range order {
		ts := byCur[cur]
		p := map[string]any{"currency": cur}
		if tieredModel(model) {
			list := make([]map[string]any, 0, len(ts))
			for _, t := range ts {
				x := map[string]any{"tier": t.Tier, "priceFormat": strings.ReplaceAll(t.PriceFormat, " ", "")}
				if t.StartingUnit != "" {
					x["startingUnit"] = decimalString(t.StartingUnit)
				}
				if t.EndingUnit != "" {
					x["endingUnit"] = decimalString(t.EndingUnit)
				}
				if t.Price != "" {
					x["price"] = decimalString(t.Price)
				}
				list = append(list, x)
			}
			p["tiers"] = list
			summary = append(summary, fmt.Sprintf("%s%s tiered", cur, decimalString(ts[0].Price)))
		} else {
			t := ts[0]
			switch model {
			case "Discount-Fixed Amount":
				p["discountAmount"] = decimalString(orZero(t.DiscountAmount, t.Price))
			case "Discount-Percentage":
				p["discountPercentage"] = decimalString(orZero(t.DiscountPct, t.Price))
			default:
				p["price"] = decimalString(orZero(t.Price, ""))
			}
			if uom != "" && model != "Flat Fee Pricing" {
				summary = append(summary, fmt.Sprintf("%s%s/%s", cur, decimalString(orZero(t.Price, "")), uom))
			} else {
				summary = append(summary, cur+decimalString(orZero(t.Price, "")))
			}
		}
		pricing = append(pricing, p)
	}
	return pricing, summary
}

func orZero(a, b json.Number) json.Number {
	if a != "" {
		return a
	}
	if b != "" {
		return b
	}
	return "0"
}

// pageParams reads page/pageSize (pageSize capped at 40).
func (c *call) pageParams(def int) (page, size int, bad *resp) {
	q := c.r.URL.Query()
	page, size = 1, def
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, c.restErr(catInvalidValue, "'pageSize' should be a positive integer")
		}
		size = min(n, 40)
		if p := q.Get("page"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				return 0, 0, c.restErr(catInvalidValue, "'page' should be a positive integer")
			}
			page = n
		}
	}
	return page, size, nil
}

func (c *call) nextPageURL(page, size int) string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	q := c.r.URL.Query()
	q.Set("page", strconv.Itoa(page+1))
	q.Set("pageSize", strconv.Itoa(size))
	return fmt.Sprintf("%s://%s%s?%s", scheme, c.r.Host, c.r.URL.Path, q.Encode())
}

func (s *Sim) getCatalog(c *call) *resp {
	page, size, bad := c.pageParams(10)
	if bad != nil {
		return bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*product, 0, len(s.st.products))
	for _, id := range s.st.productOrder {
		ps = append(ps, s.st.products[id])
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Updated.After(ps[j].Updated) })
	from := (page - 1) * size
	to := min(from+size, len(ps))
	embedded := !c.versionAtLeast("230.0")
	out := map[string]any{"success": true}
	list := []map[string]any{}
	if from < len(ps) {
		for _, p := range ps[from:to] {
			list = append(list, s.restProduct(c, p, embedded))
		}
	}
	out["products"] = list
	if to < len(ps) {
		out["nextPage"] = c.nextPageURL(page, size)
	}
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) getCatalogProduct(c *call) *resp {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.findProduct(c.param("product-key"))
	if p == nil {
		return c.restErr(catNotFound, "The product "+c.param("product-key")+" does not exist")
	}
	out := s.restProduct(c, p, !c.versionAtLeast("230.0"))
	out["success"] = true
	return jsonResp(http.StatusOK, out)
}

func (s *Sim) getProductRatePlans(c *call) *resp {
	page, size, bad := c.pageParams(20)
	if bad != nil {
		return bad
	}
	key := c.param("product-key")
	if key == "" {
		key = c.param("product-id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.findProduct(key)
	if p == nil {
		return c.restErr(catNotFound, "The product "+key+" does not exist")
	}
	from := (page - 1) * size
	to := min(from+size, len(p.Plans))
	list := []map[string]any{}
	if from < len(p.Plans) {
		for _, pid := range p.Plans[from:to] {
			list = append(list, s.restPlan(c, s.st.plans[pid], true))
		}
	}
	out := map[string]any{"success": true, "productRatePlans": list}
	if to < len(p.Plans) {
		out["nextPage"] = c.nextPageURL(page, size)
	}
	return jsonResp(http.StatusOK, out)
}

// checkTierRanges refuses tiers of a tiered or volume charge that overlap
// or leave a gap. Zuora's ranges are inclusive ("101 - 200 minutes" is
// StartingUnit 101, EndingUnit 200): per currency, the first tier starts at
// 0 or 1, each next one starts after the previous EndingUnit and at most one
// unit later (a fractional unit may start at EndingUnit plus its step), and
// only the last tier may leave EndingUnit empty (docs/zuora-rules.md).
func checkTierRanges(tiers []*prpTier, model string) *fieldErr {
	switch model {
	case "Tiered Pricing", "Volume Pricing", "Tiered with Overage Pricing":
	default:
		return nil
	}
	byCur := map[string][]*prpTier{}
	var curs []string
	for _, t := range tiers {
		if t.IsOveragePrice {
			continue
		}
		if _, ok := byCur[t.Currency]; !ok {
			curs = append(curs, t.Currency)
		}
		byCur[t.Currency] = append(byCur[t.Currency], t)
	}
	one := big.NewRat(1, 1)
	for _, cur := range curs {
		var prevEnd *big.Rat
		ts := byCur[cur]
		for i, t := range ts {
			start, ok := new(big.Rat).SetString(string(t.StartingUnit))
			if !ok {
				return missing(fmt.Sprintf("ProductRatePlanChargeTier[%s tier %d].StartingUnit", cur, i+1))
			}
			if i == 0 && start.Cmp(one) > 0 {
				return invalid("The first %s tier must start at 0 or 1, not %s", cur, t.StartingUnit)
			}
			if prevEnd != nil {
				if start.Cmp(prevEnd) <= 0 {
					return invalid("The %s tiers %d and %d overlap: tier %d starts at %s, tier %d ends at %s", cur, i, i+1, i+1, t.StartingUnit, i, ts[i-1].EndingUnit)
				}
				if new(big.Rat).Sub(start, prevEnd).Cmp(one) > 0 {
					return invalid("The %s tiers %d and %d leave a gap: tier %d ends at %s, tier %d starts at %s", cur, i, i+1, i, ts[i-1].EndingUnit, i+1, t.StartingUnit)
				}
			}
			if t.EndingUnit == "" {
				if i != len(ts)-1 {
					return missing(fmt.Sprintf("ProductRatePlanChargeTier[%s tier %d].EndingUnit", cur, i+1))
				}
				break
			}
			end, ok := new(big.Rat).SetString(string(t.EndingUnit))
			if !ok || end.Cmp(start) < 0 {
				return invalid("The %s tier %d ends at %s, before its start %s", cur, i+1, t.EndingUnit, t.StartingUnit)
			}
			prevEnd = end
		}
	}
	return nil
}
