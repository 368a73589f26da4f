package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

const (
	farFuture  = "2099-12-31"
	catalogDay = "2000-01-01"
)

// catalogPayloads is the whole Zuora shape of one plan.
type catalogPayloads struct {
	Product   zuora.Product
	RatePlans []ratePlanPayload
	Charges   []chargePayload
}

type ratePlanPayload struct {
	Key      string // planID/billingPeriodID
	Archived bool
	Payload  zuora.ProductRatePlan
}

type chargePayload struct {
	Key         string // planID/chargeID
	RatePlanKey string
	Archived    bool
	Payload     zuora.ProductRatePlanCharge
}

var zuoraPeriod = map[engine.Period]string{engine.PeriodMonth: "Month", engine.PeriodQuarter: "Quarter", engine.PeriodYear: "Annual"}
var periodLabel = map[engine.Period]string{engine.PeriodMonth: "Monthly", engine.PeriodQuarter: "Quarterly", engine.PeriodYear: "Annual"}
var zuoraChargeType = map[engine.ChargeType]string{engine.ChargeRecurring: zuora.ChargeTypeRecurring, engine.ChargeOneTime: zuora.ChargeTypeOneTime, engine.ChargeUsage: zuora.ChargeTypeUsage}
var zuoraChargeModel = map[engine.ChargeModel]string{engine.ModelFlatFee: zuora.ChargeModelFlatFee, engine.ModelPerUnit: zuora.ChargeModelPerUnit,
	engine.ModelTiered: zuora.ChargeModelTiered, engine.ModelVolume: zuora.ChargeModelVolume}

// nextTierStart is the StartingUnit after a tier ending at upTo. Zuora's
// tier ranges are inclusive ("101 - 200 minutes": StartingUnit 101), so the
// next tier starts one step later: 1 for whole units, 0.1 after 2.5, 0.01
// after 2.25 (docs/zuora-rules.md).
func nextTierStart(upTo decimal.Decimal) decimal.Decimal {
	places := max(-upTo.Exponent(), 0)
	return upTo.Add(decimal.New(1, -places))
}

// CatalogPayloads builds the Zuora product, rate plans and charges of a plan.
func (r *Reconcilers) CatalogPayloads(p engine.Plan) catalogPayloads {
	end := farFuture
	if p.ArchivedAt != nil {
		end = p.ArchivedAt.UTC().Format("2006-01-02")
	}
	category := "Base Products"
	if p.Kind == engine.KindAddon {
		category = "Add On Services"
	}
	out := catalogPayloads{Product: zuora.Product{
		Name: engine.Truncate(p.Name, 100), SKU: number("", p.ID, 50), Category: category, Description: engine.Truncate(p.Description, 500),
		EffectiveStartDate: catalogDay, EffectiveEndDate: end, CustomFields: r.customFields(store.EntityPlan, p.ID, p.Metadata),
	}}
	for _, bp := range p.BillingPeriods {
		key := mappings.Key(p.ID, bp.ID)
		rpEnd := end
		if bp.ArchivedAt != nil {
			rpEnd = bp.ArchivedAt.UTC().Format("2006-01-02")
		}
		out.RatePlans = append(out.RatePlans, ratePlanPayload{Key: key, Archived: bp.ArchivedAt != nil, Payload: zuora.ProductRatePlan{
			Name: engine.Truncate(fmt.Sprintf("%s %s (%s)", p.Name, periodLabel[bp.Period], bp.ID), 255), EffectiveStartDate: catalogDay,
			EffectiveEndDate: rpEnd, ActiveCurrencies: []string{p.Currency}, CustomFields: map[string]any{r.cfg.IDField: key},
		}})
		for _, c := range bp.Charges {
			out.Charges = append(out.Charges, chargePayload{Key: mappings.Key(p.ID, c.ID), RatePlanKey: key,
				Archived: c.ArchivedAt != nil || bp.ArchivedAt != nil, Payload: r.chargePayload(p, bp, c)})
		}
	}
	return out
}

func (r *Reconcilers) chargePayload(p engine.Plan, bp engine.BillingPeriod, c engine.Charge) zuora.ProductRatePlanCharge {
	cur := c.Currency
	if cur == "" {
		cur = p.Currency
	}
	pc := zuora.ProductRatePlanCharge{
		Name: engine.Truncate(c.Name, 100), ChargeType: zuoraChargeType[c.Type], ChargeModel: zuoraChargeModel[c.Model],
		BillCycleType: zuora.BillCycleDefaultFromCustomer, BillingPeriod: zuoraPeriod[bp.Period],
		TriggerEvent: zuora.TriggerContractEffective, CustomFields: map[string]any{r.cfg.IDField: mappings.Key(p.ID, c.ID)},
	}
	if c.Type == engine.ChargeRecurring {
		pc.BillingTiming = zuora.BillingTimingInAdvance
		if c.BillingTiming == engine.TimingInArrears {
			pc.BillingTiming = zuora.BillingTimingInArrears
		}
		pc.ListPriceBase = "Per Billing Period"
	}
	if c.Model != engine.ModelFlatFee {
		pc.UOM = c.UnitOfMeasure
		if u, ok := r.cfg.UnitMap[c.UnitOfMeasure]; ok {
			pc.UOM = u
		}
	}
	if c.Model == engine.ModelPerUnit && c.Type != engine.ChargeUsage {
		q := c.DefaultQuantity
		if q.IsZero() {
			q = decimal.NewFromInt(1)
		}
		pc.DefaultQuantity = zuora.NumberFromDecimal(q)
	}
	var tiers []zuora.ChargeTier
	switch c.Model {
	case engine.ModelFlatFee:
		tiers = []zuora.ChargeTier{{Currency: cur, Price: zuora.NumberFromDecimal(c.Price)}}
	case engine.ModelPerUnit:
		tiers = []zuora.ChargeTier{{Currency: cur, Price: zuora.NumberFromDecimal(c.Price), PriceFormat: zuora.PriceFormatPerUnit}}
	default:
		start := decimal.Zero
		for _, t := range c.Tiers {
			zt := zuora.ChargeTier{Currency: cur, Price: zuora.NumberFromDecimal(t.Price), StartingUnit: zuora.NumberFromDecimal(start),
				PriceFormat: zuora.PriceFormatPerUnit}
			if t.PriceFormat == engine.PriceFlatFee {
				zt.PriceFormat = zuora.PriceFormatFlatFee
			}
			if t.UpTo != nil {
				zt.EndingUnit = zuora.NumberFromDecimal(*t.UpTo)
				start = nextTierStart(*t.UpTo)
			}
			tiers = append(tiers, zt)
		}
	}
	pc.ProductRatePlanChargeTierData = &zuora.ChargeTierData{ProductRatePlanChargeTier: tiers}
	return pc
}

func (r *Reconcilers) reconcilePlan(ctx context.Context, rec store.SyncRecord, s *session) (worker.Result, error) {
	if !r.cfg.Enabled(SwitchCatalog) {
		return worker.Result{Skipped: ReasonSwitchedOffCatalog}, nil
	}
	p, err := r.db.GetPlan(ctx, rec.EntityID)
	if errors.Is(err, engine.ErrNotFound) {
		return worker.Result{Skipped: "the plan no longer exists"}, nil
	}
	if err != nil {
		return worker.Result{}, err
	}
	return r.reconcileCatalog(ctx, rec, s, p.ID, r.CatalogPayloads(p), nil)
}

// reconcileCatalog brings a plan's or a coupon's product (want, its
// product mapping's local id ownerID) in line with Zuora: unchanged when
// the record's hash matches; the will-not-be-synced rules before any write
// (the tenant must have the units of measure and currency, or nothing is
// written: no half-created product; and billsync's id field on each
// catalog object); then beforePush, if set, may skip; then pushCatalog.
func (r *Reconcilers) reconcileCatalog(ctx context.Context, rec store.SyncRecord, s *session, ownerID string, want catalogPayloads,
	beforePush func() (skip string, err error)) (worker.Result, error) {
	fullHash := engine.HashJSON(want)
	if rec.PayloadHash == fullHash && rec.ZuoraID != "" {
		return worker.Result{PayloadHash: fullHash, ZuoraID: rec.ZuoraID, ZuoraNumber: rec.ZuoraNumber, ZuoraURL: rec.ZuoraURL, Detail: "unchanged"}, nil
	}
	if lacks, err := r.fitTenant(ctx, &want); err != nil {
		return worker.Result{}, err
	} else if lacks != "" {
		return worker.Result{Skipped: lacks}, nil
	}
	if lacks, err := r.lackingFields(ctx, append(fieldNeeds("Product", want.Product.CustomFields), r.idNeeds("ProductRatePlan", "ProductRatePlanCharge")...)...); err != nil {
		return worker.Result{}, err
	} else if lacks != "" {
		return worker.Result{Skipped: lacks}, nil
	}
	if beforePush != nil {
		if skip, err := beforePush(); err != nil || skip != "" {
			return worker.Result{Skipped: skip}, err
		}
	}
	res, err := r.pushCatalog(ctx, s, ownerID, want)
	if err != nil {
		return worker.Result{}, err
	}
	res.PayloadHash = fullHash
	return res, nil
}

// pushCatalog writes a product, its rate plans and charges (want) to
// Zuora, object by object with per-object hashes in the mappings: creates
// what is missing (looked up first after a failed attempt), updates what
// changed. ownerID is the product mapping's local id (a plan id, or
// store.CouponMappingID for a coupon's discount product).
func (r *Reconcilers) pushCatalog(ctx context.Context, s *session, ownerID string, want catalogPayloads) (worker.Result, error) {
	// Product.
	prodHash := engine.HashJSON(want.Product)
	pm, err := r.maps.Get(ctx, mappings.Product, ownerID)
	if err != nil && !errors.Is(err, mappings.ErrNotFound) {
		return worker.Result{}, err
	}
	productID := pm.ZuoraID
	created, updated := 0, 0
	if productID == "" && s.lookup {
		s.calls++
		cp, err := r.z.GetCatalogProduct(ctx, want.Product.SKU)
		switch {
		case err == nil && cp.ID != "":
			productID = cp.ID
			if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Product, LocalID: ownerID, ZuoraID: cp.ID, ZuoraNumber: want.Product.SKU}); err != nil {
				return worker.Result{}, err
			}
			pm.PayloadHash = "" // push our definition over what was found
		case err != nil && !zuora.IsNotFound(err):
			return worker.Result{}, err
		}
	}
	if productID == "" {
		s.calls++
		id, err := r.z.CreateProduct(ctx, zuora.IdempotencyKey("product", ownerID, prodHash), want.Product)
		if err != nil {
			return worker.Result{}, err
		}
		productID = id
		created++
		if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Product, LocalID: ownerID, ZuoraID: id, ZuoraNumber: want.Product.SKU, PayloadHash: prodHash}); err != nil {
			return worker.Result{}, err
		}
	} else if pm.PayloadHash != prodHash {
		s.calls++
		if err := r.z.UpdateProduct(ctx, productID, want.Product); err != nil {
			return worker.Result{}, err
		}
		updated++
		if err := r.maps.SetHash(ctx, mappings.Product, ownerID, prodHash); err != nil {
			return worker.Result{}, err
		}
	}

	// Rate plans and charges already in Zuora, read only when a previous attempt failed.
	var found map[string]string
	lookupExisting := func() (map[string]string, error) {
		if found != nil {
			return found, nil
		}
		found = map[string]string{}
		s.calls++
		for rp, err := range r.z.ListProductRatePlans(ctx, productID) {
			if err != nil {
				return nil, err
			}
			if k, ok := rp.CustomFields[r.cfg.IDField].(string); ok {
				found["rp:"+k] = rp.ID
			}
			for _, ch := range rp.ProductRatePlanCharges {
				if k, ok := ch.CustomFields[r.cfg.IDField].(string); ok {
					found["ch:"+k] = ch.ID
				}
			}
		}
		return found, nil
	}

	rpIDs := map[string]string{}
	for _, rp := range want.RatePlans {
		m, err := r.maps.Get(ctx, mappings.RatePlan, rp.Key)
		if err != nil && !errors.Is(err, mappings.ErrNotFound) {
			return worker.Result{}, err
		}
		payload := rp.Payload
		payload.ProductID = productID
		h := engine.HashJSON(payload)
		id := m.ZuoraID
		if id == "" && rp.Archived {
			continue // never pushed; nothing to end
		}
		if id == "" && s.lookup {
			f, err := lookupExisting()
			if err != nil {
				return worker.Result{}, err
			}
			if fid := f["rp:"+rp.Key]; fid != "" {
				id = fid
				if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.RatePlan, LocalID: rp.Key, ZuoraID: id, ParentID: ownerID}); err != nil {
					return worker.Result{}, err
				}
				m.PayloadHash = ""
			}
		}
		if id == "" {
			s.calls++
			nid, err := r.z.CreateProductRatePlan(ctx, zuora.IdempotencyKey("rate-plan", rp.Key, h), payload)
			if err != nil {
				return worker.Result{}, err
			}
			id = nid
			created++
			if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.RatePlan, LocalID: rp.Key, ZuoraID: id, ParentID: ownerID, PayloadHash: h}); err != nil {
				return worker.Result{}, err
			}
		} else if m.PayloadHash != h {
			s.calls++
			if err := r.z.UpdateProductRatePlan(ctx, id, payload); err != nil {
				return worker.Result{}, err
			}
			updated++
			if err := r.maps.SetHash(ctx, mappings.RatePlan, rp.Key, h); err != nil {
				return worker.Result{}, err
			}
		}
		rpIDs[rp.Key] = id
	}

	archivedPlans := map[string]bool{}
	for _, rp := range want.RatePlans {
		archivedPlans[rp.Key] = rp.Archived
	}
	deleted, kept := 0, 0
	for _, ch := range want.Charges {
		m, err := r.maps.Get(ctx, mappings.Charge, ch.Key)
		if err != nil && !errors.Is(err, mappings.ErrNotFound) {
			return worker.Result{}, err
		}
		if ch.Archived {
			if m.ZuoraID == "" {
				continue
			}
			if archivedPlans[ch.RatePlanKey] {
				// The whole rate plan is ended: Zuora keeps history, so its
				// charges stay as they are (end, never delete).
				kept++
				continue
			}
			used, err := r.db.ChargeInUse(ctx, ownerID, ch.RatePlanKey)
			if err != nil {
				return worker.Result{}, err
			}
			if used {
				// The API refuses this; a subscription created meanwhile can
				// still get here. Zuora can neither delete nor end one charge
				// of a rate plan in use, and the rate plan stays on sale.
				return worker.Result{}, worker.Terminal{Err: fmt.Errorf("charge %s was removed from billing period %s, which subscriptions use: Zuora keeps that charge on the rate plan, so new subscriptions would still be billed for it. "+
					"Put the charge back, or add a new billing period with the charges you want and archive this one", ch.Key, ch.RatePlanKey)}
			}
			s.calls++
			if err := r.z.DeleteProductRatePlanCharge(ctx, m.ZuoraID); err != nil && !zuora.IsNotFound(err) {
				return worker.Result{}, err
			}
			deleted++
			if err := r.maps.Delete(ctx, mappings.Charge, ch.Key); err != nil {
				return worker.Result{}, err
			}
			continue
		}
		rpID := rpIDs[ch.RatePlanKey]
		if rpID == "" {
			continue
		}
		payload := ch.Payload
		payload.ProductRatePlanID = rpID
		h := engine.HashJSON(payload)
		id := m.ZuoraID
		if id == "" && s.lookup {
			f, err := lookupExisting()
			if err != nil {
				return worker.Result{}, err
			}
			if fid := f["ch:"+ch.Key]; fid != "" {
				id = fid
				if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Charge, LocalID: ch.Key, ZuoraID: id, ParentID: ch.RatePlanKey}); err != nil {
					return worker.Result{}, err
				}
				m.PayloadHash = ""
			}
		}
		if id == "" {
			s.calls++
			nid, err := r.z.CreateProductRatePlanCharge(ctx, zuora.IdempotencyKey("charge", ch.Key, h), payload)
			if err != nil {
				return worker.Result{}, err
			}
			created++
			if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Charge, LocalID: ch.Key, ZuoraID: nid, ParentID: ch.RatePlanKey, PayloadHash: h}); err != nil {
				return worker.Result{}, err
			}
		} else if m.PayloadHash != h {
			s.calls++
			if err := r.z.UpdateProductRatePlanCharge(ctx, id, payload); err != nil {
				return worker.Result{}, err
			}
			updated++
			if err := r.maps.SetHash(ctx, mappings.Charge, ch.Key, h); err != nil {
				return worker.Result{}, err
			}
		}
	}
	detail := fmt.Sprintf("created %d, updated %d, deleted %d Zuora catalog objects", created, updated, deleted)
	if kept > 0 {
		detail += fmt.Sprintf("; %d charges of ended rate plans stay in Zuora (history is kept)", kept)
	}
	return worker.Result{ZuoraID: productID, ZuoraNumber: want.Product.SKU,
		ZuoraURL: r.z.ProductURL(productID), Detail: detail}, nil
}

// tenantReader is the part of the Zuora client that reads the tenant's
// units of measure and currencies (cached for a minute).
type tenantReader interface {
	CachedTenantSettings(ctx context.Context) (zuora.TenantSettings, error)
}

type fieldChecker interface {
	LackingFields(ctx context.Context, need []zuora.RequiredField) ([]zuora.RequiredField, error)
}

// idNeeds is billsync's id field on each of objects.
func (r *Reconcilers) idNeeds(objects ...string) []zuora.RequiredField {
	need := make([]zuora.RequiredField, 0, len(objects))
	for _, o := range objects {
		need = append(need, zuora.RequiredField{Object: o, Name: r.cfg.IDField, Type: "text", Length: zuora.IDFieldLength})
	}
	return need
}

// lackingFields reports, as a skip reason, the fields of need the tenant
// does not define on their object: a write that carried one would be
// refused (or, on CRUD, the field silently dropped), so nothing is written
// until an admin creates it.
func (r *Reconcilers) lackingFields(ctx context.Context, need ...zuora.RequiredField) (string, error) {
	fc, ok := r.z.(fieldChecker)
	if !ok {
		return "", nil
	}
	lack, err := fc.LackingFields(ctx, need)
	if err != nil || len(lack) == 0 {
		return "", err
	}
	byField := map[string][]string{}
	var names []string
	for _, f := range lack {
		if _, ok := byField[f.Name]; !ok {
			names = append(names, f.Name)
		}
		byField[f.Name] = append(byField[f.Name], f.Object)
	}
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("the custom field %s (text, %d) on %s", n, zuora.IDFieldLength, strings.Join(byField[n], ", ")))
	}
	return "the Zuora tenant lacks " + strings.Join(parts, " and ") +
		": create it in Zuora (Object Manager, or Settings > Billing > Manage Custom Fields; `billsync zuora check` lists what is missing); the hourly re-check then syncs it", nil
}

// payloadNeeds returns the units of measure and currencies a plan's Zuora
// payloads use (archived charges and rate plans included: they are written
// too).
func payloadNeeds(want catalogPayloads) (units, currencies []string) {
	seen := map[string]bool{}
	add := func(list *[]string, v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			*list = append(*list, v)
		}
	}
	for _, rp := range want.RatePlans {
		for _, cur := range rp.Payload.ActiveCurrencies {
			add(&currencies, cur)
		}
	}
	for _, ch := range want.Charges {
		add(&units, ch.Payload.UOM)
		if ch.Payload.ProductRatePlanChargeTierData != nil {
			for _, t := range ch.Payload.ProductRatePlanChargeTierData.ProductRatePlanChargeTier {
				add(&currencies, t.Currency)
			}
		}
	}
	return units, currencies
}

// fitTenant maps the plan's units of measure to the tenant's spelling and
// reports, as a skip reason, the units and currencies the tenant lacks. A
// tenant whose settings cannot be read (no permission for the Settings
// API) is not checked: Zuora's own answer to the write then says what is
// wrong.
func (r *Reconcilers) fitTenant(ctx context.Context, want *catalogPayloads) (string, error) {
	tr, ok := r.z.(tenantReader)
	if !ok {
		return "", nil
	}
	st, err := tr.CachedTenantSettings(ctx)
	if err != nil {
		if zuora.IsRetryable(err) {
			return "", err
		}
		return "", nil
	}
	units, currencies := payloadNeeds(*want)
	var lack []string
	for _, u := range units {
		if st.Unit(u) == "" {
			lack = append(lack, fmt.Sprintf("the unit of measure %q", u))
		}
	}
	for _, cur := range currencies {
		if !st.HasCurrency(cur) {
			lack = append(lack, "the currency "+cur)
		}
	}
	if len(lack) > 0 {
		return "the Zuora tenant lacks " + strings.Join(lack, " and ") +
			": create it in Zuora (Settings > Billing; `billsync zuora check` lists what is missing); the hourly re-check then syncs the plan", nil
	}
	for i := range want.Charges {
		if u := want.Charges[i].Payload.UOM; u != "" {
			want.Charges[i].Payload.UOM = st.Unit(u)
		}
	}
	return "", nil
}

// TenantNeeds is what billsync needs from the Zuora tenant: its id custom
// field on every object it writes, and the units of measure and currencies
// of the local catalog (each with the plans using it).
func (r *Reconcilers) TenantNeeds(ctx context.Context) (zuora.TenantNeeds, error) {
	need := zuora.TenantNeeds{Fields: zuora.RequiredCustomFields(r.cfg.IDField), Units: map[string][]string{}, Currencies: map[string][]string{}}
	if r.cfg.PublicURL != "" {
		for _, o := range zuora.URLFieldObjects {
			need.Fields = append(need.Fields, zuora.RequiredField{Object: o, Name: zuora.URLField, Type: "text", Length: zuora.IDFieldLength})
		}
	}
	after := ""
	for {
		page, err := r.db.ListPlans(ctx, store.ListOptions{After: after, Limit: 500})
		if err != nil {
			return need, err
		}
		for _, p := range page.Items {
			units, currencies := payloadNeeds(r.CatalogPayloads(p))
			for _, u := range units {
				need.Units[u] = append(need.Units[u], p.ID)
			}
			for _, cur := range currencies {
				need.Currencies[cur] = append(need.Currencies[cur], p.ID)
			}
		}
		if page.Next == "" {
			return need, nil
		}
		after = page.Next
	}
}

// ParseUnitMap reads a unit-of-measure mapping, "local=Zuora" pairs
// separated by commas ("seat=License,api call=Each"); names are kept as
// written (spaces inside allowed), at most 25 characters on the Zuora side.
func ParseUnitMap(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		local, z, ok := strings.Cut(pair, "=")
		local, z = strings.TrimSpace(local), strings.TrimSpace(z)
		if !ok || local == "" || z == "" {
			return nil, fmt.Errorf("%q is not a local=Zuora pair", strings.TrimSpace(pair))
		}
		if utf8.RuneCountInString(z) > 25 {
			return nil, fmt.Errorf("the Zuora unit %q is longer than Zuora's 25 characters", z)
		}
		if _, dup := out[local]; dup {
			return nil, fmt.Errorf("the unit %q is mapped twice", local)
		}
		out[local] = z
	}
	return out, nil
}
