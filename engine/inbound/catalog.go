package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

var periodOf = map[string]engine.Period{"Month": engine.PeriodMonth, "Quarter": engine.PeriodQuarter, "Annual": engine.PeriodYear}

var chargeTypeOf = map[string]engine.ChargeType{zuora.ChargeTypeRecurring: engine.ChargeRecurring, zuora.ChargeTypeOneTime: engine.ChargeOneTime,
	zuora.ChargeTypeUsage: engine.ChargeUsage}

var chargeModelOf = map[string]engine.ChargeModel{"FlatFee": engine.ModelFlatFee, "PerUnit": engine.ModelPerUnit, "Tiered": engine.ModelTiered, "Volume": engine.ModelVolume}

// planRef is where a Zuora product rate plan lives locally.
type planRef struct {
	PlanID, PeriodID string
}

// resolveRatePlan returns the local plan and billing period of a Zuora
// product rate plan, importing the product as a local plan when it is unknown.
func (s *Service) resolveRatePlan(ctx context.Context, productID, productRatePlanID, currency string, res *Result) (planRef, error) {
	if ref, ok, err := s.mappedRatePlan(ctx, productRatePlanID); err != nil || ok {
		return ref, err
	}
	unlock := s.locks.lock("product:" + productID)
	defer unlock()
	if ref, ok, err := s.mappedRatePlan(ctx, productRatePlanID); err != nil || ok {
		return ref, err
	}
	notes, err := s.importProduct(ctx, productID, currency, res)
	if err != nil {
		return planRef{}, err
	}
	ref, ok, err := s.mappedRatePlan(ctx, productRatePlanID)
	if err != nil {
		return ref, err
	}
	if !ok {
		msg := fmt.Sprintf("product rate plan %s of product %s could not be imported", productRatePlanID, productID)
		if len(notes) > 0 {
			msg += ": " + strings.Join(notes, "; ")
		}
		return ref, reconcile.Terminal{Err: errors.New(msg)}
	}
	return ref, nil
}

func (s *Service) mappedRatePlan(ctx context.Context, prpID string) (planRef, bool, error) {
	m, err := s.maps.ByZuoraID(ctx, mappings.RatePlan, prpID)
	if errors.Is(err, mappings.ErrNotFound) {
		return planRef{}, false, nil
	}
	if err != nil {
		return planRef{}, false, err
	}
	return planRef{PlanID: m.ParentID, PeriodID: strings.TrimPrefix(m.LocalID, m.ParentID+"/")}, true, nil
}

// importProduct imports (or refreshes) a Zuora product as a local plan
// (Togai's style): product → plan (an add-on when its category is "Add On
// Services"), each rate plan → billing period, each charge → charge, priced
// in currency, with their mappings recorded before the plan is stored and the
// outbound hashes settled, so nothing is pushed back. It returns notes on rate
// plans it could not take.
func (s *Service) importProduct(ctx context.Context, productID, currency string, res *Result) ([]string, error) {
	p, err := s.z.GetCatalogProduct(ctx, productID)
	if err != nil {
		return nil, zuoraErr("read product "+productID, err)
	}
	if bid := customString(p.CustomFields, s.cfg.IDField); bid != "" {
		if _, err := s.maps.ByZuoraID(ctx, mappings.Product, p.ID); errors.Is(err, mappings.ErrNotFound) {
			return nil, reconcile.Terminal{Err: fmt.Errorf("product %s carries billsync id %q but is not mapped; billsync does not re-import its own catalog (sync plan %q outbound first)", p.ID, bid, bid)}
		}
		return nil, reconcile.Terminal{Err: fmt.Errorf("product %s belongs to billsync plan %q; rate plans added to it in Zuora are not imported", p.ID, bid)}
	}
	planID := ""
	existing := engine.Plan{}
	if pm, err := s.maps.ByZuoraID(ctx, mappings.Product, p.ID); err == nil {
		planID = pm.LocalID
		if existing, err = s.db.GetPlan(ctx, planID); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, err
		}
		if existing.Currency != "" {
			currency = existing.Currency
		}
	} else if !errors.Is(err, mappings.ErrNotFound) {
		return nil, err
	} else {
		planID, err = s.freePlanID(ctx, p)
		if err != nil {
			return nil, err
		}
	}
	plan := engine.Plan{ID: planID, Kind: engine.KindPlan, Name: engine.Truncate(strings.TrimSpace(p.Name), 100), Description: engine.Truncate(p.Description, 500),
		PricingType: engine.PricingPaid, Currency: currency}
	if p.Category == "Add On Services" {
		plan.Kind = engine.KindAddon
	}
	if existing.ID != "" {
		plan.Kind = existing.Kind
	}
	if plan.Name == "" {
		plan.Name = engine.Truncate(p.SKU, 100)
	}
	var notes []string
	type rpMap struct {
		rp      zuora.CatalogRatePlan
		bpID    string
		charges map[string]string // local charge id -> zuora charge id
	}
	var took []rpMap
	usedBP, usedCharge := map[string]bool{}, map[string]bool{}
	for rp, err := range s.z.RatePlansOf(ctx, p) {
		if err != nil {
			return nil, zuoraErr("read rate plans of product "+p.ID, err)
		}
		bp, chargeIDs, note, err := s.billingPeriodFrom(ctx, planID, rp, currency, usedBP, usedCharge)
		if err != nil {
			return nil, err
		}
		if note != "" {
			notes = append(notes, note)
			continue
		}
		plan.BillingPeriods = append(plan.BillingPeriods, bp)
		took = append(took, rpMap{rp: rp, bpID: bp.ID, charges: chargeIDs})
	}
	if len(plan.BillingPeriods) == 0 {
		return notes, reconcile.Terminal{Err: fmt.Errorf("product %s (%s) has no rate plan billsync can import: %s", p.ID, p.Name, strings.Join(notes, "; "))}
	}
	if err := plan.Validate(); err != nil {
		return notes, reconcile.Terminal{Err: fmt.Errorf("product %s cannot become a billsync plan: %w", p.ID, err)}
	}
	// Mappings first, with the hashes of what outbound would push.
	want := s.out.CatalogPayloads(plan)
	if err := s.maps.Put(ctx, mappings.Mapping{Kind: mappings.Product, LocalID: planID, ZuoraID: p.ID, ZuoraNumber: p.SKU, PayloadHash: engine.HashJSON(want.Product)}); err != nil {
		return notes, err
	}
	for _, t := range took {
		key := mappings.Key(planID, t.bpID)
		for _, rpw := range want.RatePlans {
			if rpw.Key != key {
				continue
			}
			payload := rpw.Payload
			payload.ProductID = p.ID
			if err := s.maps.Put(ctx, mappings.Mapping{Kind: mappings.RatePlan, LocalID: key, ZuoraID: t.rp.ID, ZuoraNumber: t.rp.ProductRatePlanNumber,
				ParentID: planID, PayloadHash: engine.HashJSON(payload)}); err != nil {
				return notes, err
			}
		}
		for _, chw := range want.Charges {
			if chw.RatePlanKey != key {
				continue
			}
			zid := t.charges[strings.TrimPrefix(chw.Key, planID+"/")]
			if zid == "" {
				continue
			}
			payload := chw.Payload
			payload.ProductRatePlanID = t.rp.ID
			if err := s.maps.Put(ctx, mappings.Mapping{Kind: mappings.Charge, LocalID: chw.Key, ZuoraID: zid, ParentID: key, PayloadHash: engine.HashJSON(payload)}); err != nil {
				return notes, err
			}
		}
	}
	if err := s.at(ctx, "plan-mapped"); err != nil {
		return notes, err
	}
	stored, changed, err := s.db.UpsertPlan(ctx, plan)
	if err != nil {
		return notes, fmt.Errorf("store plan %s imported from product %s: %w", planID, p.ID, err)
	}
	if err := s.settle(ctx, store.EntityPlan, planID, store.Outcome{PayloadHash: engine.HashJSON(s.out.CatalogPayloads(stored)),
		ZuoraID: p.ID, ZuoraNumber: p.SKU, ZuoraURL: s.z.ProductURL(p.ID)}); err != nil {
		return notes, err
	}
	if changed {
		res.add("imported product %s as %s %s (%d billing periods)", p.ID, plan.Kind, planID, len(plan.BillingPeriods))
	}
	return notes, nil
}

// freePlanID picks the local id of a newly imported product: its SKU, else
// its id, made unique.
func (s *Service) freePlanID(ctx context.Context, p zuora.CatalogProduct) (string, error) {
	base := p.SKU
	if base == "" {
		base = p.ProductNumber
	}
	if base == "" {
		base = p.ID
	}
	id := localID("zp", base)
	for i := 0; ; i++ {
		cand := id
		if i > 0 {
			cand = localID("zp", fmt.Sprintf("%s-%d", engine.Truncate(id, 56), i+1))
		}
		_, err := s.db.GetPlan(ctx, cand)
		if errors.Is(err, engine.ErrNotFound) {
			return cand, nil
		}
		if err != nil {
			return "", err
		}
	}
}

func uniqueIn(used map[string]bool, id string) string {
	out := id
	for i := 2; used[out]; i++ {
		out = engine.Truncate(id, 58) + fmt.Sprintf("-%d", i)
	}
	used[out] = true
	return out
}

// billingPeriodFrom converts one Zuora rate plan. A non-empty note means the
// rate plan was left out, and why.
func (s *Service) billingPeriodFrom(ctx context.Context, planID string, rp zuora.CatalogRatePlan, currency string, usedBP, usedCharge map[string]bool) (engine.BillingPeriod, map[string]string, string, error) {
	var bp engine.BillingPeriod
	if m, err := s.maps.ByZuoraID(ctx, mappings.RatePlan, rp.ID); err == nil {
		bp.ID = strings.TrimPrefix(m.LocalID, planID+"/")
		usedBP[bp.ID] = true
	} else if !errors.Is(err, mappings.ErrNotFound) {
		return bp, nil, "", err
	} else {
		base := rp.ProductRatePlanNumber
		if base == "" {
			base = rp.ID
		}
		bp.ID = uniqueIn(usedBP, localID("zrp", base))
	}
	if len(rp.ProductRatePlanCharges) == 0 {
		return bp, nil, fmt.Sprintf("rate plan %s (%s) has no charges", rp.ID, rp.Name), nil
	}
	// The period: the first recurring charge's, else the first charge's.
	periodName := ""
	for _, ch := range rp.ProductRatePlanCharges {
		if ch.Type == zuora.ChargeTypeRecurring {
			periodName = ch.BillingPeriod
			break
		}
	}
	if periodName == "" {
		periodName = rp.ProductRatePlanCharges[0].BillingPeriod
	}
	if periodName == "" {
		periodName = "Month"
	}
	period, ok := periodOf[periodName]
	if !ok {
		return bp, nil, fmt.Sprintf("rate plan %s (%s) bills per %s; billsync supports Month, Quarter and Annual", rp.ID, rp.Name, periodName), nil
	}
	bp.Period = period
	ids := map[string]string{}
	for _, zc := range rp.ProductRatePlanCharges {
		c, note := chargeFrom(zc, currency)
		if note != "" {
			return bp, nil, fmt.Sprintf("rate plan %s (%s): %s", rp.ID, rp.Name, note), nil
		}
		if m, err := s.maps.ByZuoraID(ctx, mappings.Charge, zc.ID); err == nil {
			c.ID = strings.TrimPrefix(m.LocalID, planID+"/")
			usedCharge[c.ID] = true
		} else if !errors.Is(err, mappings.ErrNotFound) {
			return bp, nil, "", err
		} else {
			base := zc.ProductRatePlanChargeNumber
			if base == "" {
				base = zc.ID
			}
			c.ID = uniqueIn(usedCharge, localID("zc", base))
		}
		ids[c.ID] = zc.ID
		bp.Charges = append(bp.Charges, c)
	}
	return bp, ids, "", nil
}

func num(n zuora.Number) decimal.Decimal {
	d, err := n.Decimal()
	if err != nil {
		return decimal.Zero
	}
	return d
}

// chargeFrom converts a catalog charge priced in currency; a note says why it cannot be.
func chargeFrom(zc zuora.CatalogCharge, currency string) (engine.Charge, string) {
	c := engine.Charge{Name: engine.Truncate(strings.TrimSpace(zc.Name), 100), Currency: currency, UnitOfMeasure: engine.Truncate(zc.UOM, 25), DefaultQuantity: num(zc.DefaultQuantity)}
	if c.Name == "" {
		c.Name = zc.ID
	}
	var ok bool
	if c.Type, ok = chargeTypeOf[zc.Type]; !ok {
		return c, fmt.Sprintf("charge %s has type %q", zc.Name, zc.Type)
	}
	if c.Model, ok = chargeModelOf[zc.Model]; !ok {
		return c, fmt.Sprintf("charge %s uses the %s model; billsync supports FlatFee, PerUnit, Tiered and Volume", zc.Name, zc.Model)
	}
	if c.Type == engine.ChargeUsage && c.Model == engine.ModelFlatFee {
		return c, fmt.Sprintf("charge %s is a flat-fee usage charge", zc.Name)
	}
	var price *zuora.CatalogPricing
	for i := range zc.Pricing {
		if zc.Pricing[i].Currency == currency {
			price = &zc.Pricing[i]
		}
	}
	if price == nil {
		return c, fmt.Sprintf("charge %s has no price in %s", zc.Name, currency)
	}
	if c.Model != engine.ModelFlatFee && c.UnitOfMeasure == "" {
		c.UnitOfMeasure = "Each"
	}
	if c.Type == engine.ChargeUsage {
		c.Feature = localID("f", firstNonEmpty(zc.UOM, zc.Name))
	}
	if c.Type == engine.ChargeRecurring {
		c.BillingTiming = engine.TimingInAdvance
		if zc.BillingTiming == "IN_ARREARS" || zc.BillingTiming == "In Arrears" {
			c.BillingTiming = engine.TimingInArrears
		}
	}
	switch c.Model {
	case engine.ModelTiered, engine.ModelVolume:
		for i, t := range price.Tiers {
			tier := engine.Tier{Price: num(t.Price), PriceFormat: engine.PricePerUnit}
			if t.PriceFormat == "FlatFee" || t.PriceFormat == "Flat Fee" {
				tier.PriceFormat = engine.PriceFlatFee
			}
			if up := num(t.EndingUnit); i < len(price.Tiers)-1 || up.IsPositive() {
				tier.UpTo = &up
			}
			c.Tiers = append(c.Tiers, tier)
		}
	default:
		c.Price = num(price.Price)
		if c.Price.IsZero() && len(price.Tiers) > 0 {
			c.Price = num(price.Tiers[0].Price)
		}
	}
	return c, ""
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
