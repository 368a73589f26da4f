package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
	"github.com/billsync/billsync/mappings"
)

// Reasons recorded when an entity will not be synced (Stigg's rules).
const (
	ReasonSwitchedOffCustomers     = "syncing of customers is switched off"
	ReasonSwitchedOffSubscriptions = "syncing of subscriptions is switched off"
	ReasonSwitchedOffCatalog       = "syncing of the catalog is switched off"
	ReasonNoSubscription           = "the customer has no subscription"
	ReasonNoBillableSubscription   = "the customer has only free, trial or custom-price subscriptions"
	ReasonNoBillingInfo            = "the customer has no billing information (a bill-to contact with first name, last name and country)"
	ReasonNoPaymentMethod          = "the customer has no payment method on file"
	ReasonTrial                    = "trial subscriptions are not synced to Zuora until they become active"
	ReasonFreePlan                 = "subscriptions to free plans are not synced to Zuora"
	ReasonCustomPlan               = "subscriptions to custom-price plans are not synced to Zuora"
	ReasonCancelledUnsynced        = "the subscription was cancelled before it was synced to Zuora"
)

// subscriptionSkipReason tells why a subscription is not billable, or "".
func subscriptionSkipReason(s engine.Subscription, plan engine.Plan, mapped bool) string {
	switch {
	case s.Status == engine.StatusTrial && !mapped:
		return ReasonTrial
	case plan.PricingType == engine.PricingFree:
		return ReasonFreePlan
	case plan.PricingType == engine.PricingCustom:
		return ReasonCustomPlan
	case s.Status == engine.StatusCancelled && !mapped:
		return ReasonCancelledUnsynced
	}
	return ""
}

func customerSkipReason(c engine.Customer) string {
	switch {
	case c.BillTo == nil || !c.BillTo.Complete():
		return ReasonNoBillingInfo
	case !c.HasPaymentMethod:
		return ReasonNoPaymentMethod
	}
	return ""
}

func contact(c engine.Customer) zuora.Contact {
	b := engine.Contact{}
	if c.BillTo != nil {
		b = *c.BillTo
	}
	email := b.Email
	if email == "" {
		email = c.Email
	}
	return zuora.Contact{FirstName: b.FirstName, LastName: b.LastName, Address1: b.Address1, Address2: b.Address2,
		City: b.City, State: b.State, ZipCode: b.PostalCode, Country: b.Country, WorkEmail: email}
}

func (r *Reconcilers) accountUpdate(c engine.Customer) zuora.AccountUpdate {
	// billsync has one contact per customer: it is both bill-to and sold-to
	// (the sold-to contact drives tax), on create and on every edit.
	bt, st := contact(c), contact(c)
	return zuora.AccountUpdate{Name: engine.Truncate(c.Name, 255), BillToContact: &bt, SoldToContact: &st,
		CustomFields: r.customFields(store.EntityCustomer, c.ID, c.Metadata)}
}

// AccountHash is the hash of the account update billsync would push for c. A
// mapping holding it tells the customer reconciler Zuora already has c.
func (r *Reconcilers) AccountHash(c engine.Customer) string {
	return engine.HashJSON(r.accountUpdate(c))
}

// SubscriptionHash is the hash of a subscription's desired state: the
// subscription and the revisions of its plan and add-ons (plans by id).
func SubscriptionHash(sub engine.Subscription, plans map[string]engine.Plan) string {
	return engine.HashJSON(struct {
		Sub   engine.Subscription
		Plans []int
	}{sub, planRevisions(plans)})
}

// RenewalsDone counts the renewals Zuora's subscription has had, from its
// own terms: the current term starts where the initial term plus that many
// renewal terms end ("Renew subscriptions": a renewal extends the
// subscription by a new term of the renewal term's length,
// docs.zuora.com/en/zuora-billing/manage-accounts-subscriptions-and-non-subscriptions/manage-subscription-transactions/orders/order-actions-tutorials/renew-subscriptions).
// Deriving it from Zuora, not from a local counter, is what keeps a renewal
// whose answer was lost from being sent again.
func RenewalsDone(zs zuora.Subscription) int {
	if zs.TermType != "TERMED" || zs.TermStartDate == "" {
		return 0
	}
	start, err1 := time.Parse("2006-01-02", firstNonEmpty(zs.SubscriptionStartDate, zs.ContractEffectiveDate))
	termStart, err2 := time.Parse("2006-01-02", zs.TermStartDate)
	if err1 != nil || err2 != nil || !termStart.After(start) {
		return 0
	}
	initial, okI := termDays(zs.InitialTerm, zs.InitialTermPeriodType)
	renewal, okR := termDays(firstPositive(zs.RenewalTerm, zs.InitialTerm), firstNonEmpty(zs.RenewalTermPeriodType, zs.InitialTermPeriodType))
	if !okI || !okR || renewal <= 0 {
		return 0
	}
	// Days, not calendar arithmetic: month ends (Jan 31 + 1 month) are
	// clamped by Zuora, so the day counts differ by a few days at most.
	days := termStart.Sub(start).Hours()/24 - initial
	if days < -4 {
		return 0
	}
	return int(math.Round(days/renewal)) + 1
}

// termDays is the mean length in days of a term of n periods.
func termDays(n int, periodType string) (float64, bool) {
	switch periodType {
	case "Month", "":
		return float64(n) * 30.436875, true
	case "Year":
		return float64(n) * 365.2425, true
	case "Week":
		return float64(n) * 7, true
	case "Day":
		return float64(n), true
	}
	return 0, false
}

func firstPositive(v ...int) int {
	for _, x := range v {
		if x > 0 {
			return x
		}
	}
	return 0
}

// SubscriptionPlans loads the plan and add-ons of a subscription, by id.
func (r *Reconcilers) SubscriptionPlans(ctx context.Context, sub engine.Subscription) (map[string]engine.Plan, error) {
	cat, err := r.catalog(ctx)
	if err != nil {
		return nil, err
	}
	plans := map[string]engine.Plan{}
	for _, id := range append([]string{sub.PlanID}, addOnIDs(sub)...) {
		p, err := cat.plan(ctx, id)
		if err != nil {
			return nil, err
		}
		plans[id] = p
	}
	return plans, nil
}

// billingAccount returns the Zuora account billsync bills a customer on: the
// one with billsync's deterministic number, else the first linked one.
func (r *Reconcilers) billingAccount(ctx context.Context, customerID string) (mappings.Mapping, bool, error) {
	ms, err := r.maps.ByParent(ctx, mappings.Account, customerID)
	if err != nil || len(ms) == 0 {
		return mappings.Mapping{}, false, err
	}
	want := r.AccountNumber(customerID)
	for _, m := range ms {
		if m.ZuoraNumber == want {
			return m, true, nil
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].CreatedAt.Before(ms[j].CreatedAt) })
	return ms[0], true, nil
}

// adoptAccount records a Zuora account found for the customer (created by
// an earlier attempt whose answer was lost, or by the customer's other
// subscription) and settles the customer's record at once when the account
// already holds what billsync would push, so no extra update follows; when
// it differs, the record is made due and the update goes out now.
func (r *Reconcilers) adoptAccount(ctx context.Context, cust engine.Customer, za zuora.Account) error {
	hash := ""
	if upd := r.accountUpdate(cust); len(accountDiff(upd, za)) == 0 {
		hash = engine.HashJSON(upd) // = AccountHash(cust)
	}
	if err := r.putAccount(ctx, cust.ID, za.BasicInfo.ID, za.BasicInfo.AccountNumber, hash); err != nil {
		return err
	}
	if hash != "" {
		settled, err := r.db.SettleSynced(ctx, store.EntityCustomer, cust.ID, cust.Revision, store.Outcome{PayloadHash: hash,
			ZuoraID: za.BasicInfo.ID, ZuoraNumber: za.BasicInfo.AccountNumber, ZuoraURL: r.z.AccountURL(za.BasicInfo.ID),
			Detail: "account " + za.BasicInfo.AccountNumber + " found in Zuora, as billsync would write it"})
		if err != nil || settled {
			return err
		}
	}
	return r.db.MarkPending(ctx, store.EntityCustomer, cust.ID)
}

// linkAccount adopts the Zuora account a customer's billingId names.
func (r *Reconcilers) linkAccount(ctx context.Context, c engine.Customer, s *session) (mappings.Mapping, error) {
	s.calls++
	za, err := r.z.GetAccount(ctx, c.BillingID)
	if zuora.IsNotFound(err) {
		return mappings.Mapping{}, worker.Terminal{Err: fmt.Errorf("billingId: Zuora has no account %s", c.BillingID)}
	}
	if err != nil {
		return mappings.Mapping{}, err
	}
	if m, err := r.maps.ByZuoraID(ctx, mappings.Account, za.BasicInfo.ID); err == nil && m.ParentID != c.ID {
		return mappings.Mapping{}, worker.Terminal{Err: fmt.Errorf("billingId: Zuora's account %s is already mapped to customer %q", za.BasicInfo.AccountNumber, m.ParentID)}
	} else if err != nil && !errors.Is(err, mappings.ErrNotFound) {
		return mappings.Mapping{}, err
	}
	if cur := za.BillingAndPayment.Currency; cur != "" && cur != c.Currency {
		return mappings.Mapping{}, worker.Terminal{Err: fmt.Errorf("billingId: Zuora's account %s bills in %s, the customer in %s", za.BasicInfo.AccountNumber, cur, c.Currency)}
	}
	if err := r.putAccount(ctx, c.ID, za.BasicInfo.ID, za.BasicInfo.AccountNumber, ""); err != nil {
		return mappings.Mapping{}, err
	}
	m, _, err := r.billingAccount(ctx, c.ID)
	return m, err
}

func (r *Reconcilers) putAccount(ctx context.Context, customerID, id, number, hash string) error {
	return r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Account, LocalID: mappings.Key(customerID, id), ZuoraID: id,
		ZuoraNumber: number, ParentID: customerID, PayloadHash: hash})
}

func (r *Reconcilers) reconcileCustomer(ctx context.Context, rec store.SyncRecord, s *session) (worker.Result, error) {
	if !r.cfg.Enabled(SwitchCustomers) {
		return worker.Result{Skipped: ReasonSwitchedOffCustomers}, nil
	}
	c, err := r.db.GetCustomer(ctx, rec.EntityID)
	if errors.Is(err, engine.ErrNotFound) {
		return worker.Result{Skipped: "the customer no longer exists"}, nil
	}
	if err != nil {
		return worker.Result{}, err
	}
	upd := r.accountUpdate(c)
	h := engine.HashJSON(upd)
	acct, ok, err := r.billingAccount(ctx, c.ID)
	if err != nil {
		return worker.Result{}, err
	}
	if !ok && c.BillingID != "" {
		// Linked to an existing Zuora account: adopt it (mapping; the update
		// below writes the id field, metadata and back-link) instead of
		// creating one, whatever the will-not-be-synced rules say.
		if acct, err = r.linkAccount(ctx, c, s); err != nil {
			return worker.Result{}, err
		}
		ok = true
	}
	if ok {
		res := worker.Result{PayloadHash: h, ZuoraID: acct.ZuoraID, ZuoraNumber: acct.ZuoraNumber, ZuoraURL: r.z.AccountURL(acct.ZuoraID)}
		if acct.PayloadHash == h {
			res.Detail = "unchanged"
			return res, nil
		}
		if lacks, err := r.lackingFields(ctx, fieldNeeds("Account", upd.CustomFields)...); err != nil {
			return worker.Result{}, err
		} else if lacks != "" {
			return worker.Result{Skipped: lacks}, nil
		}
		s.calls++
		if err := r.z.UpdateAccount(ctx, acct.ZuoraID, upd); err != nil {
			return worker.Result{}, err
		}
		res.Detail = "updated the account"
		return res, r.maps.SetHash(ctx, mappings.Account, acct.LocalID, h)
	}
	// Not in Zuora yet: the account is created with the first billable
	// subscription. While one is on its way, wait for it without further reads
	// (the full check below would come to the same wait).
	if customerSkipReason(c) == "" {
		subID, found, err := r.db.UnsettledBillableSubscriptionOf(ctx, c.ID)
		if err != nil {
			return worker.Result{}, err
		}
		if found {
			return worker.Result{Wait: 30 * r.cfg.DependencyWait, WaitReason: fmt.Sprintf("the account is created with subscription %q (one order)", subID)}, nil
		}
	}
	subs, err := r.allSubscriptions(ctx, c.ID)
	if err != nil {
		return worker.Result{}, err
	}
	if len(subs) == 0 {
		return worker.Result{Skipped: ReasonNoSubscription}, nil
	}
	var billable []string
	for _, sub := range subs {
		plan, err := r.db.GetPlan(ctx, sub.PlanID)
		if err != nil {
			return worker.Result{}, err
		}
		if subscriptionSkipReason(sub, plan, false) == "" {
			billable = append(billable, sub.ID)
		}
	}
	if len(billable) == 0 {
		return worker.Result{Skipped: ReasonNoBillableSubscription}, nil
	}
	if reason := customerSkipReason(c); reason != "" {
		return worker.Result{Skipped: reason}, nil
	}
	// The account is created by the first billable subscription's order. Wait
	// for it unless every such subscription has given up.
	var dead, skipped []string
	for _, id := range billable {
		sr, err := r.db.GetSyncRecord(ctx, store.EntitySubscription, id)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return worker.Result{}, err
		}
		if err == nil && sr.State == store.StateDead {
			dead = append(dead, fmt.Sprintf("%s (%s)", id, firstNonEmpty(sr.LastErrorMessage, sr.Reason)))
			continue
		}
		if err == nil && sr.State == store.StateSkipped {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", id, sr.Reason))
			continue
		}
		// The subscription makes this record due again when it creates the
		// account; the wait is only a safety net.
		return worker.Result{Wait: 30 * r.cfg.DependencyWait, WaitReason: fmt.Sprintf("the account is created with subscription %q (one order)", id)}, nil
	}
	if len(skipped) > 0 {
		// Made due again when a subscription creates the account.
		return worker.Result{Skipped: "the account is created with the first billable subscription, and none is synced yet: " + strings.Join(append(skipped, dead...), "; ")}, nil
	}
	return worker.Result{}, worker.Terminal{Err: fmt.Errorf("the account is created with the first billable subscription, and every one failed: %s", strings.Join(dead, "; "))}
}

func (r *Reconcilers) allSubscriptions(ctx context.Context, customerID string) ([]engine.Subscription, error) {
	var out []engine.Subscription
	o := store.ListOptions{CustomerID: customerID, Limit: 500}
	for {
		page, err := r.db.ListSubscriptions(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		o.After = page.Next
	}
}

// pushedSubscription is what billsync scheduled in Zuora that Zuora's
// subscription does not show: the scheduled order of the pending change
// (scheduled.go). Renewals are counted from Zuora's own terms
// (RenewalsDone) and a pending suspension shows in the status and
// statusHistory (zuora.Subscription.Suspension).
type pushedSubscription struct {
	ScheduledOrder string `json:",omitempty"`
}

// desiredRatePlan is one product rate plan the subscription should have.
type desiredRatePlan struct {
	Key        string // planID/billingPeriodID
	PlanID     string
	ProductRP  string
	Quantities map[string]decimal.Decimal // Zuora product rate plan charge id -> quantity
	ChargeKind map[string]engine.Charge   // Zuora product rate plan charge id -> charge
}

var errNotReady = errors.New("catalog not synced yet")

func (r *Reconcilers) desiredRatePlans(ctx context.Context, sub engine.Subscription, plans map[string]engine.Plan) ([]desiredRatePlan, []string, error) {
	type want struct {
		planID, bpID string
		qty          func(engine.Charge) decimal.Decimal
	}
	wants := []want{{sub.PlanID, sub.BillingPeriodID, func(c engine.Charge) decimal.Decimal {
		if q, ok := sub.ChargeQuantities[c.ID]; ok {
			return q
		}
		if !c.DefaultQuantity.IsZero() {
			return c.DefaultQuantity
		}
		return decimal.NewFromInt(1)
	}}}
	for _, a := range sub.AddOns {
		q := a.Quantity
		wants = append(wants, want{a.PlanID, a.BillingPeriodID, func(engine.Charge) decimal.Decimal { return q }})
	}
	cat, err := r.catalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []desiredRatePlan
	var missing []string
	for _, w := range wants {
		p := plans[w.planID]
		key := mappings.Key(w.planID, w.bpID)
		m, err := cat.ratePlan(ctx, key)
		if errors.Is(err, mappings.ErrNotFound) {
			missing = append(missing, w.planID)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		d := desiredRatePlan{Key: key, PlanID: w.planID, ProductRP: m.ZuoraID, Quantities: map[string]decimal.Decimal{}, ChargeKind: map[string]engine.Charge{}}
		bp, _ := p.Period(w.bpID)
		// The charges' mappings, in one read (their parent is the rate plan key).
		cms, err := cat.charges(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		byKey := make(map[string]mappings.Mapping, len(cms))
		for _, cm := range cms {
			byKey[cm.LocalID] = cm
		}
		for _, c := range bp.Charges {
			if c.ArchivedAt != nil {
				continue
			}
			cm, ok := byKey[mappings.Key(w.planID, c.ID)]
			if !ok {
				missing = append(missing, w.planID)
				break
			}
			d.ChargeKind[cm.ZuoraID] = c
			if quantityCharge(c) {
				d.Quantities[cm.ZuoraID] = w.qty(c)
			}
		}
		out = append(out, d)
	}
	return out, missing, nil
}

// waiveOneTime prices the rate plan's flat-fee and per-unit one-time charges
// at 0 in an AddProduct: a one-time charge is billed once per subscription,
// so a subscription switching back to a plan it had is not billed its setup
// fee again (a tiered or volume one-time charge keeps its price).
func waiveOneTime(o *zuora.RatePlanOverride, d desiredRatePlan) {
	zero := zuora.NumberFromDecimal(decimal.Zero)
	ids := make([]string, 0, len(d.ChargeKind))
	for id, c := range d.ChargeKind {
		if c.Type == engine.ChargeOneTime {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := d.ChargeKind[id]
		var ov *zuora.ChargeOverride
		for i := range o.ChargeOverrides {
			if o.ChargeOverrides[i].ProductRatePlanChargeID == id {
				ov = &o.ChargeOverrides[i]
			}
		}
		switch c.Model {
		case engine.ModelFlatFee:
			o.ChargeOverrides = append(o.ChargeOverrides, zuora.ChargeOverride{ProductRatePlanChargeID: id,
				Pricing: &zuora.Pricing{OneTimeFlatFee: &zuora.PriceOverride{ListPrice: zero}}})
		case engine.ModelPerUnit:
			if ov != nil && ov.Pricing != nil && ov.Pricing.OneTimePerUnit != nil {
				ov.Pricing.OneTimePerUnit.ListPrice = zero
			}
		}
	}
}

func quantityCharge(c engine.Charge) bool {
	return c.Type != engine.ChargeUsage && c.Model != engine.ModelFlatFee
}

// quantityPricing is the pricing member that carries a quantity for the
// charge's type and model (oneTimePerUnit/oneTimeTiered/oneTimeVolume,
// recurringPerUnit/recurringTiered/recurringVolume): Zuora refuses a member
// that does not fit the charge (docs/zuora-rules.md).
func quantityPricing(c engine.Charge, q decimal.Decimal) *zuora.Pricing {
	po := &zuora.PriceOverride{Quantity: zuora.NumberFromDecimal(q)}
	switch {
	case c.Type == engine.ChargeOneTime && c.Model == engine.ModelPerUnit:
		return &zuora.Pricing{OneTimePerUnit: po}
	case c.Type == engine.ChargeOneTime && c.Model == engine.ModelTiered:
		return &zuora.Pricing{OneTimeTiered: po}
	case c.Type == engine.ChargeOneTime:
		return &zuora.Pricing{OneTimeVolume: po}
	case c.Model == engine.ModelPerUnit:
		return &zuora.Pricing{RecurringPerUnit: po}
	case c.Model == engine.ModelTiered:
		return &zuora.Pricing{RecurringTiered: po}
	default:
		return &zuora.Pricing{RecurringVolume: po}
	}
}

func (r *Reconcilers) ratePlanOverride(subID string, d desiredRatePlan) zuora.RatePlanOverride {
	o := zuora.RatePlanOverride{ProductRatePlanID: d.ProductRP, CustomFields: map[string]any{r.cfg.IDField: mappings.Key(subID, d.PlanID)}}
	ids := make([]string, 0, len(d.Quantities))
	for id := range d.Quantities {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o.ChargeOverrides = append(o.ChargeOverrides, zuora.ChargeOverride{ProductRatePlanChargeID: id, Pricing: quantityPricing(d.ChargeKind[id], d.Quantities[id])})
	}
	return o
}

func terms(s engine.Subscription) zuora.SubscriptionTerms {
	if s.TermMonths == 0 {
		return zuora.SubscriptionTerms{InitialTerm: zuora.InitialTerm{TermType: "EVERGREEN", StartDate: s.StartDate}}
	}
	ar := s.AutoRenew
	return zuora.SubscriptionTerms{
		InitialTerm:    zuora.InitialTerm{TermType: "TERMED", Period: s.TermMonths, PeriodType: "Month", StartDate: s.StartDate},
		RenewalSetting: "RENEW_WITH_SPECIFIC_TERM", RenewalTerms: []zuora.RenewalTerm{{Period: s.TermMonths, PeriodType: "Month"}},
		AutoRenew: &ar,
	}
}

// termsChange returns the TermsAndConditions that make Zuora's terms those
// of sub (nil when they already are): evergreen for TermMonths 0, else a
// TERMED current term and renewal term of TermMonths months, and autoRenew.
func termsChange(sub engine.Subscription, actual zuora.Subscription) *zuora.TermsAndConditions {
	if sub.TermMonths == 0 {
		if actual.TermType == "EVERGREEN" {
			return nil
		}
		return &zuora.TermsAndConditions{LastTerm: &zuora.LastTerm{TermType: "EVERGREEN"}}
	}
	termOK := actual.TermType == "TERMED" && actual.CurrentTerm == sub.TermMonths && actual.CurrentTermPeriodType == "Month" &&
		actual.RenewalTerm == sub.TermMonths && actual.RenewalTermPeriodType == "Month"
	if termOK && actual.AutoRenew == sub.AutoRenew {
		return nil
	}
	ar := sub.AutoRenew
	tc := &zuora.TermsAndConditions{AutoRenew: &ar}
	if !termOK {
		tc.RenewalSetting = "RENEW_WITH_SPECIFIC_TERM"
		tc.RenewalTerms = []zuora.RenewalTerm{{Period: sub.TermMonths, PeriodType: "Month"}}
		tc.LastTerm = &zuora.LastTerm{TermType: "TERMED", Period: sub.TermMonths, PeriodType: "Month"}
	}
	return tc
}

func triggers(date string) []zuora.TriggerDate {
	return []zuora.TriggerDate{{Name: zuora.TriggerContractEffective, TriggerDate: date},
		{Name: zuora.TriggerServiceActivation, TriggerDate: date}, {Name: zuora.TriggerCustomerAcceptance, TriggerDate: date}}
}

func (r *Reconcilers) reconcileSubscription(ctx context.Context, rec store.SyncRecord, s *session) (worker.Result, error) {
	if !r.cfg.Enabled(SwitchSubscriptions) {
		return worker.Result{Skipped: ReasonSwitchedOffSubscriptions}, nil
	}
	sub, err := r.db.GetSubscription(ctx, rec.EntityID)
	if errors.Is(err, engine.ErrNotFound) {
		return worker.Result{Skipped: "the subscription no longer exists"}, nil
	}
	if err != nil {
		return worker.Result{}, err
	}
	sm, err := r.maps.Get(ctx, mappings.Subscription, sub.ID)
	mapped := err == nil
	if err != nil && !errors.Is(err, mappings.ErrNotFound) {
		return worker.Result{}, err
	}
	plans, err := r.SubscriptionPlans(ctx, sub)
	if err != nil {
		return worker.Result{}, err
	}
	if !mapped && sub.BillingID != "" {
		// Linked to an existing Zuora subscription: adopt it (and its
		// account), then converge it like one billsync made.
		s.calls++
		zs, err := r.z.GetSubscription(ctx, sub.BillingID)
		if zuora.IsNotFound(err) {
			return worker.Result{}, worker.Terminal{Err: fmt.Errorf("billingId: Zuora has no subscription %s", sub.BillingID)}
		}
		if err != nil {
			return worker.Result{}, err
		}
		if acct, have, err := r.billingAccount(ctx, sub.CustomerID); err != nil {
			return worker.Result{}, err
		} else if have && acct.ZuoraID != zs.AccountID {
			return worker.Result{}, worker.Terminal{Err: fmt.Errorf("billingId: Zuora's subscription %s belongs to account %s, not to the customer's account %s",
				zs.SubscriptionNumber, zs.AccountNumber, acct.ZuoraNumber)}
		}
		if err := r.adoptSubscription(ctx, sub, zs); err != nil {
			return worker.Result{}, err
		}
		sm, mapped = mappings.Mapping{ZuoraID: zs.ID, ZuoraNumber: zs.SubscriptionNumber}, true
	}
	number := r.SubscriptionNumber(sub.ID)
	if !mapped && s.lookup {
		// An earlier attempt may have created it although its answer was lost;
		// find it before deciding anything (even a skip).
		s.calls++
		zs, err := r.z.GetSubscription(ctx, number)
		switch {
		case err == nil:
			if err := r.adoptSubscription(ctx, sub, zs); err != nil {
				return worker.Result{}, err
			}
			sm, mapped = mappings.Mapping{ZuoraID: zs.ID, ZuoraNumber: zs.SubscriptionNumber}, true
		case !zuora.IsNotFound(err):
			return worker.Result{}, err
		}
	}
	if reason := subscriptionSkipReason(sub, plans[sub.PlanID], mapped); reason != "" {
		return worker.Result{Skipped: reason}, nil
	}
	cust, err := r.db.GetCustomer(ctx, sub.CustomerID)
	if err != nil {
		return worker.Result{}, err
	}
	desiredHash := SubscriptionHash(sub, plans)
	if mapped && rec.PayloadHash == desiredHash {
		return worker.Result{PayloadHash: desiredHash, ZuoraID: sm.ZuoraID, ZuoraNumber: sm.ZuoraNumber, ZuoraURL: r.z.SubscriptionURL(sm.ZuoraID), Detail: "unchanged"}, nil
	}
	acct, haveAcct, err := r.billingAccount(ctx, cust.ID)
	if err != nil {
		return worker.Result{}, err
	}
	if !mapped && !haveAcct {
		if reason := customerSkipReason(cust); reason != "" {
			return worker.Result{Skipped: reason}, nil
		}
	}
	desired, missing, err := r.desiredRatePlans(ctx, sub, plans)
	if err != nil {
		return worker.Result{}, err
	}
	if len(missing) > 0 {
		for _, id := range uniq(missing) {
			pr, err := r.db.GetSyncRecord(ctx, store.EntityPlan, id)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return worker.Result{}, err
			}
			if err == nil && (pr.State == store.StateDead || pr.State == store.StateSkipped) {
				// A product may be in Zuora while the plan's rate plans are not:
				// say so rather than "not in Zuora".
				where := "is not in Zuora"
				if pm, err := r.maps.Get(ctx, mappings.Product, id); err == nil {
					where = fmt.Sprintf("is only partly in Zuora (product %s exists, not the rate plans the subscription needs)", firstNonEmpty(pm.ZuoraNumber, pm.ZuoraID))
				} else if !errors.Is(err, mappings.ErrNotFound) {
					return worker.Result{}, err
				}
				return worker.Result{}, worker.Terminal{Err: fmt.Errorf("plan %q %s (%s: %s)", id, where, pr.State, firstNonEmpty(pr.LastErrorMessage, pr.Reason))}
			}
			if err := r.db.MarkPending(ctx, store.EntityPlan, id); err != nil {
				return worker.Result{}, err
			}
		}
		return worker.Result{Wait: r.cfg.DependencyWait, WaitReason: "waiting for plan " + strings.Join(uniq(missing), ", ") + " to be synced to Zuora"}, nil
	}
	// Coupons are discount rate plans of their own (coupons.go).
	cds, wait, err := r.desiredCoupons(ctx, sub)
	if err != nil {
		return worker.Result{}, err
	}
	if wait != nil {
		return *wait, nil
	}
	desired = append(desired, cds...)
	if !mapped && s.lookup {
		if !haveAcct {
			s.calls++
			za, err := r.z.GetAccount(ctx, r.AccountNumber(cust.ID))
			switch {
			case err == nil:
				if err := r.adoptAccount(ctx, cust, za); err != nil {
					return worker.Result{}, err
				}
				acct, haveAcct, err = r.billingAccount(ctx, cust.ID)
				if err != nil {
					return worker.Result{}, err
				}
			case !zuora.IsNotFound(err):
				return worker.Result{}, err
			}
		}
	}

	// Before any write: the tenant must define billsync's id field on every
	// object the order writes it on (the subscription, its rate plans, a
	// new account).
	subFields := r.customFields(store.EntitySubscription, sub.ID, sub.Metadata)
	need := append(fieldNeeds("Subscription", subFields), r.idNeeds("RatePlan")...)
	if !mapped && !haveAcct {
		need = append(need, fieldNeeds("Account", r.accountUpdate(cust).CustomFields)...)
	}
	if lacks, err := r.lackingFields(ctx, need...); err != nil {
		return worker.Result{}, err
	} else if lacks != "" {
		return worker.Result{Skipped: lacks}, nil
	}

	var detail []string
	if !mapped {
		order := zuora.Order{OrderDate: sub.StartDate, ProcessingOptions: &zuora.ProcessingOptions{RunBilling: ptr(false)}}
		cs := &zuora.CreateSubscription{SubscriptionNumber: number, Terms: terms(sub)}
		for _, d := range desired {
			cs.SubscribeToRatePlans = append(cs.SubscribeToRatePlans, r.ratePlanOverride(sub.ID, d))
		}
		order.Subscriptions = []zuora.OrderSubscription{{
			CustomFields: subFields,
			OrderActions: []zuora.OrderAction{{Type: "CreateSubscription", TriggerDates: triggers(sub.StartDate), CreateSubscription: cs}},
		}}
		accountHash := ""
		if haveAcct {
			order.ExistingAccountNumber = acct.ZuoraNumber
		} else {
			upd := r.accountUpdate(cust)
			accountHash = r.AccountHash(cust)
			bt := contact(cust)
			order.NewAccount = &zuora.OrderNewAccount{AccountNumber: r.AccountNumber(cust.ID), Name: upd.Name, Currency: cust.Currency,
				BillCycleDay: 0, BillToContact: bt, AutoPay: ptr(false), CustomFields: upd.CustomFields}
		}
		s.calls++
		res, err := r.z.CreateOrder(ctx, zuora.IdempotencyKey("create-subscription", sub.ID, desiredHash, order.ExistingAccountNumber), order)
		if err != nil && !haveAcct && !zuora.IsRetryable(err) {
			// Another first subscription of this customer may have created
			// the account (billsync's own deterministic number) meanwhile:
			// Zuora then refuses newAccount ("The account number … is
			// already in use"). Look it up and order on it, never go dead.
			s.calls++
			if za, gerr := r.z.GetAccount(ctx, r.AccountNumber(cust.ID)); gerr == nil {
				if err := r.putAccount(ctx, cust.ID, za.BasicInfo.ID, za.BasicInfo.AccountNumber, ""); err != nil {
					return worker.Result{}, err
				}
				return worker.Result{Wait: time.Millisecond, WaitReason: "the customer's account " + za.BasicInfo.AccountNumber +
					" was created by another order meanwhile; ordering on it"}, nil
			}
		}
		if err != nil {
			return worker.Result{}, err
		}
		subNumber, subID := number, ""
		if len(res.Subscriptions) > 0 {
			subNumber, subID = res.Subscriptions[0].SubscriptionNumber, res.Subscriptions[0].SubscriptionID
		} else if len(res.SubscriptionNumbers) > 0 {
			subNumber = res.SubscriptionNumbers[0]
		}
		if subID == "" && len(res.SubscriptionIDs) > 0 {
			subID = res.SubscriptionIDs[0]
		}
		if subID == "" {
			subID = subNumber
		}
		if !haveAcct {
			if err := r.putAccount(ctx, cust.ID, res.AccountID, res.AccountNumber, accountHash); err != nil {
				return worker.Result{}, err
			}
			detail = append(detail, "created account "+res.AccountNumber)
			// The customer's record settles on the new account without a
			// reconcile of its own; if it is in flight or changed meanwhile,
			// it is made due and settles (without a call) when reconciled.
			settled, err := r.db.SettleSynced(ctx, store.EntityCustomer, cust.ID, cust.Revision, store.Outcome{PayloadHash: accountHash,
				ZuoraID: res.AccountID, ZuoraNumber: res.AccountNumber, ZuoraURL: r.z.AccountURL(res.AccountID),
				Detail: fmt.Sprintf("account %s created with subscription %s in order %s", res.AccountNumber, sub.ID, res.OrderNumber)})
			if err != nil {
				return worker.Result{}, err
			}
			if !settled {
				if err := r.db.MarkPending(ctx, store.EntityCustomer, cust.ID); err != nil {
					return worker.Result{}, err
				}
			}
		}
		if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Subscription, LocalID: sub.ID, ZuoraID: subID, ZuoraNumber: subNumber, ParentID: cust.ID}); err != nil {
			return worker.Result{}, err
		}
		detail = append(detail, "created subscription "+subNumber+" in order "+res.OrderNumber)
		sm = mappings.Mapping{ZuoraID: subID, ZuoraNumber: subNumber}
		if sub.Status == engine.StatusActive && sub.RenewalCount == 0 && sub.Scheduled == nil {
			return worker.Result{PayloadHash: desiredHash, ZuoraID: subID, ZuoraNumber: subNumber,
				ZuoraURL: r.z.SubscriptionURL(subID), Detail: strings.Join(detail, "; ")}, nil
		}
		// Created without renewals or a later status: the diff below adds them.
	}

	// Compare with Zuora and apply the difference as one order.
	s.calls++
	actual, err := r.z.GetSubscription(ctx, sm.ZuoraNumber)
	if err != nil {
		return worker.Result{}, err
	}
	if err := r.adoptSubscription(ctx, sub, actual); err != nil {
		return worker.Result{}, err
	}
	var pushed pushedSubscription
	if rec.PushedState != "" {
		_ = json.Unmarshal([]byte(rec.PushedState), &pushed)
	}
	// A scheduled order that ran (or was cancelled) in Zuora is taken in
	// first: its change is then the local state, never undone below.
	listed, ran, err := r.scheduledFate(ctx, sub, rec, actual, pushed, s)
	if err != nil || ran != nil {
		return ran.orZero(), err
	}
	actions, notes, err := r.diff(ctx, sub, desired, actual, &pushed)
	if err != nil {
		return worker.Result{}, err
	}
	detail = append(detail, notes...)
	// Zuora takes at most 50 order actions per subscription in one order: a
	// longer change goes as several orders, each computed afresh from
	// Zuora's state, so none is sent twice.
	partial := len(actions) > engine.MaxOrderActions
	if partial {
		actions = actions[:engine.MaxOrderActions]
	}
	zuoraID := actual.ID
	if len(actions) > 0 {
		order := zuora.Order{OrderDate: r.today(), ExistingAccountNumber: actual.AccountNumber,
			ProcessingOptions: processingFor(sub, actions),
			Subscriptions:     []zuora.OrderSubscription{{SubscriptionNumber: actual.SubscriptionNumber, OrderActions: actions}}}
		s.calls++
		res, err := r.z.CreateOrder(ctx, zuora.IdempotencyKey("order", sub.ID, desiredHash, actual.ID), order)
		applied := func(res zuora.OrderResult, acts []zuora.OrderAction) error {
			var types []string
			for _, a := range acts {
				types = append(types, a.Type)
			}
			detail = append(detail, "order "+res.OrderNumber+": "+strings.Join(types, ", ")+writeOffDetail(res))
			// The order made a new version: the record and the mapping point at
			// it, not at the version read before the order.
			for _, rs := range res.Subscriptions {
				if rs.SubscriptionNumber == actual.SubscriptionNumber && rs.SubscriptionID != "" && rs.SubscriptionID != zuoraID {
					zuoraID = rs.SubscriptionID
					if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Subscription, LocalID: sub.ID, ZuoraID: zuoraID,
						ZuoraNumber: actual.SubscriptionNumber, ParentID: sub.CustomerID}); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if err != nil {
			parts := splitActions(actions)
			if reconcile.Classify(err).Retryable || len(parts) < 2 {
				return worker.Result{}, err
			}
			// Zuora refuses an order as a whole (orders are atomic): one bad
			// change would hold back every other change of the subscription.
			// Each change goes as its own order instead; the refused ones are
			// held with Zuora's reason on the record, the others go out. The
			// next attempt (a new revision, or a retry) diffs afresh, so what
			// went out is not sent again.
			var held []string
			for i, part := range parts {
				order.Subscriptions[0].OrderActions = part
				order.ProcessingOptions = processingFor(sub, part)
				s.calls++
				pres, perr := r.z.CreateOrder(ctx, zuora.IdempotencyKey("order-part", sub.ID, desiredHash, actual.ID, strconv.Itoa(i)), order)
				if perr != nil {
					if reconcile.Classify(perr).Retryable {
						return worker.Result{}, perr
					}
					held = append(held, fmt.Sprintf("%s held: %s", describeAction(part[0]), reconcile.Classify(perr).Message))
					continue
				}
				if err := applied(pres, part); err != nil {
					return worker.Result{}, err
				}
			}
			if len(held) == len(parts) {
				return worker.Result{}, err
			}
			return worker.Result{}, worker.Terminal{Err: fmt.Errorf("Zuora refused part of the change (it refuses an order as a whole, so each change went alone): %s; applied: %s",
				strings.Join(held, "; "), strings.Join(detail, "; "))}
		}
		if err := applied(res, actions); err != nil {
			return worker.Result{}, err
		}
		if partial {
			return worker.Result{Wait: time.Millisecond, WaitReason: fmt.Sprintf("%s; the change needs more than %d order actions: the rest follow in the next order",
				strings.Join(detail, "; "), engine.MaxOrderActions)}, nil
		}
	}
	// Custom fields (id, back-link, ZUORA__ metadata) change in place, no order.
	if cf := changedFields(subFields, actual.CustomFields); len(cf) > 0 {
		s.calls++
		if err := r.z.UpdateSubscriptionCustomFields(ctx, actual.SubscriptionNumber, cf); err != nil {
			return worker.Result{}, err
		}
		detail = append(detail, "custom fields "+strings.Join(slices.Sorted(maps.Keys(cf)), ", "))
	}
	if notes, err := r.convergeScheduled(ctx, sub, &actual, listed, len(actions) > 0, &pushed, s); err != nil {
		if res, ok := r.asWait(err); ok {
			return res, nil
		}
		return worker.Result{}, err
	} else {
		detail = append(detail, notes...)
	}
	if len(detail) == 0 {
		detail = append(detail, "Zuora already matches")
	}
	pushedJSON, _ := json.Marshal(pushed)
	return worker.Result{PayloadHash: desiredHash, PushedState: string(pushedJSON), ZuoraID: zuoraID, ZuoraNumber: actual.SubscriptionNumber,
		ZuoraURL: r.z.SubscriptionURL(zuoraID), Detail: strings.Join(detail, "; ")}, nil
}

// changedFields returns the fields of want whose value differs in got.
func changedFields(want, got map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range want {
		if fmt.Sprint(v) != fmt.Sprint(got[k]) {
			out[k] = v
		}
	}
	return out
}

// splitActions cuts an order's actions into changes that can go alone, in
// their order: each action, and an UpdateProduct per charge update (one bad
// charge must not hold back the others of its rate plan). A Resume, which
// the diff puts first, goes alone first: the later parts find the
// subscription resumed.
func splitActions(actions []zuora.OrderAction) [][]zuora.OrderAction {
	var parts [][]zuora.OrderAction
	for _, a := range actions {
		if a.Type == "UpdateProduct" && a.UpdateProduct != nil && len(a.UpdateProduct.ChargeUpdates) > 1 {
			for _, cu := range a.UpdateProduct.ChargeUpdates {
				one, up := a, *a.UpdateProduct
				up.ChargeUpdates = []zuora.ChargeUpdate{cu}
				one.UpdateProduct = &up
				parts = append(parts, []zuora.OrderAction{one})
			}
			continue
		}
		parts = append(parts, []zuora.OrderAction{a})
	}
	return parts
}

// describeAction names an order action for a record's reason.
func describeAction(a zuora.OrderAction) string {
	switch {
	case a.Type == "Resume" || a.Type == "Suspend":
		return a.Type
	case a.AddProduct != nil:
		return "AddProduct of rate plan " + a.AddProduct.ProductRatePlanID
	case a.UpdateProduct != nil && len(a.UpdateProduct.ChargeUpdates) == 1:
		return "UpdateProduct of charge " + a.UpdateProduct.ChargeUpdates[0].ChargeNumber
	case a.RemoveProduct != nil:
		return "RemoveProduct of rate plan " + a.RemoveProduct.RatePlanID
	}
	return a.Type
}

// adoptSubscription records the mappings of a Zuora subscription: the
// subscription, its account, its rate plans and its charge numbers.
func (r *Reconcilers) adoptSubscription(ctx context.Context, sub engine.Subscription, zs zuora.Subscription) error {
	if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.Subscription, LocalID: sub.ID, ZuoraID: zs.ID, ZuoraNumber: zs.SubscriptionNumber, ParentID: sub.CustomerID}); err != nil {
		return err
	}
	if zs.AccountID != "" {
		if _, err := r.maps.ByZuoraID(ctx, mappings.Account, zs.AccountID); errors.Is(err, mappings.ErrNotFound) {
			// A cut-off create: the subscription's order made the account.
			za, gerr := r.z.GetAccount(ctx, zs.AccountID)
			cust, cerr := r.db.GetCustomer(ctx, sub.CustomerID)
			if gerr == nil && cerr == nil {
				return errors.Join(r.adoptAccount(ctx, cust, za), r.RecordCharges(ctx, sub.ID, zs))
			}
			if err := r.putAccount(ctx, sub.CustomerID, zs.AccountID, zs.AccountNumber, ""); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return r.RecordCharges(ctx, sub.ID, zs)
}

// RecordCharges stores the subscription's rate plan ids and charge numbers per
// local plan and charge, from a Zuora subscription read.
func (r *Reconcilers) RecordCharges(ctx context.Context, subID string, zs zuora.Subscription) error {
	for _, rp := range zs.RatePlans {
		if rp.LastChangeType == "Remove" {
			continue
		}
		rpm, err := r.maps.ByZuoraID(ctx, mappings.RatePlan, rp.ProductRatePlanID)
		if errors.Is(err, mappings.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		planID := rpm.ParentID
		if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.SubscriptionRatePlan, LocalID: mappings.Key(subID, planID), ZuoraID: rp.ID, ParentID: subID}); err != nil {
			return err
		}
		for _, ch := range rp.RatePlanCharges {
			cm, err := r.maps.ByZuoraID(ctx, mappings.Charge, ch.ProductRatePlanChargeID)
			if errors.Is(err, mappings.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			local := mappings.Key(subID, cm.LocalID) // subID/planID/chargeID
			if err := r.maps.Put(ctx, mappings.Mapping{Kind: mappings.SubscriptionCharge, LocalID: local, ZuoraID: ch.Number, ZuoraNumber: ch.Number, ParentID: subID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// diff computes the order actions that take Zuora's subscription to the desired state.
// diff computes the order actions that make Zuora's subscription match sub;
// it records in pushed what billsync schedules that Zuora does not show.
func (r *Reconcilers) diff(ctx context.Context, sub engine.Subscription, desired []desiredRatePlan, actual zuora.Subscription, pushed *pushedSubscription) ([]zuora.OrderAction, []string, error) {
	return r.diffOn(ctx, sub, desired, actual, pushed, r.today())
}

// diffOn is diff with the changes taking effect on today (a scheduled
// change's date for its scheduled order).
func (r *Reconcilers) diffOn(ctx context.Context, sub engine.Subscription, desired []desiredRatePlan, actual zuora.Subscription, _ *pushedSubscription, today string) ([]zuora.OrderAction, []string, error) {
	var notes []string
	if actual.Status == "Cancelled" {
		if sub.Status != engine.StatusCancelled {
			return nil, nil, worker.Terminal{Err: fmt.Errorf("subscription %s is cancelled in Zuora and cannot be reactivated; create a new subscription instead", actual.SubscriptionNumber)}
		}
		return nil, []string{"cancelled in Zuora"}, nil
	}
	type actualRP struct {
		id      string
		charges map[string]zuora.SubscriptionCharge // by product rate plan charge id
	}
	have := map[string]actualRP{}
	for _, rp := range actual.RatePlans {
		if rp.LastChangeType == "Remove" {
			continue
		}
		m, err := r.maps.ByZuoraID(ctx, mappings.RatePlan, rp.ProductRatePlanID)
		if errors.Is(err, mappings.ErrNotFound) {
			notes = append(notes, fmt.Sprintf("rate plan %q was added in Zuora and is left alone", rp.RatePlanName))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		a := actualRP{id: rp.ID, charges: map[string]zuora.SubscriptionCharge{}}
		for _, ch := range rp.RatePlanCharges {
			a.charges[ch.ProductRatePlanChargeID] = ch
		}
		have[m.LocalID] = a
	}
	// Rate plans the subscription had and lost: their one-time charges were billed already.
	hadBefore := map[string]bool{}
	for _, rp := range actual.RatePlans {
		if rp.LastChangeType == "Remove" {
			hadBefore[rp.ProductRatePlanID] = true
		}
	}
	var structural []zuora.OrderAction
	want := map[string]bool{}
	for _, d := range desired {
		want[d.Key] = true
		a, ok := have[d.Key]
		if !ok {
			o := r.ratePlanOverride(sub.ID, d)
			if hadBefore[d.ProductRP] {
				// Switching back: the one-time charges (a setup fee) were
				// billed when the subscription first had this rate plan.
				waiveOneTime(&o, d)
			}
			structural = append(structural, zuora.OrderAction{Type: "AddProduct", TriggerDates: triggers(today), AddProduct: &o})
			continue
		}
		var updates []zuora.ChargeUpdate
		ids := make([]string, 0, len(d.Quantities))
		for id := range d.Quantities {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			ch, ok := a.charges[id]
			if !ok {
				continue
			}
			q, _ := ch.Quantity.Decimal()
			// A one-time charge's quantity cannot be updated (an update's
			// pricing, CreateOrderPricingUpdate, has no one-time member):
			// it was charged once, with the quantity it had then.
			if !q.Equal(d.Quantities[id]) && d.ChargeKind[id].Type != engine.ChargeOneTime {
				updates = append(updates, zuora.ChargeUpdate{ChargeNumber: ch.Number, Pricing: quantityPricing(d.ChargeKind[id], d.Quantities[id]),
					EffectiveDate: &zuora.TriggerParams{TriggerEvent: "SpecificDate", SpecificTriggerDate: today}})
			}
		}
		if len(updates) > 0 {
			structural = append(structural, zuora.OrderAction{Type: "UpdateProduct", TriggerDates: triggers(today),
				UpdateProduct: &zuora.RatePlanUpdate{RatePlanID: a.id, ChargeUpdates: updates}})
		}
	}
	keys := make([]string, 0, len(have))
	for k := range have {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var removes []zuora.OrderAction
	for _, k := range keys {
		if !want[k] {
			removes = append(removes, zuora.OrderAction{Type: "RemoveProduct", TriggerDates: triggers(today), RemoveProduct: &zuora.RemoveProduct{RatePlanID: have[k].id}})
		}
	}
	structural = append(removes, structural...)
	done := RenewalsDone(actual)
	renew := sub.RenewalCount > done && sub.Status != engine.StatusCancelled
	// Terms (autoRenew, termMonths) are part of the diff: a change is one
	// TermsAndConditions action (lastTerm changes the current term).
	var termsAction *zuora.OrderAction
	if sub.Status != engine.StatusCancelled {
		if tc := termsChange(sub, actual); tc != nil {
			termsAction = &zuora.OrderAction{Type: zuora.OrderActionTermsAndConditions, TriggerDates: triggers(today), TermsAndConditions: tc}
		}
	}

	var actions []zuora.OrderAction
	// Zuora's status follows the latest order action: Suspended from a
	// Suspend order on, even when its date is ahead; Active from a Resume
	// order on, even when the suspension lasts until a later resume date.
	// The dates are in statusHistory (Suspension), never in the
	// scheduled*Date fields (TermsAndConditions scheduled actions).
	suspended := actual.Status == "Suspended"
	suspendOn, resumeOn := actual.Suspension()
	resumeScheduled := !suspended && resumeOn > today
	needsActive := len(structural) > 0 || renew || sub.Status == engine.StatusCancelled || (sub.Status == engine.StatusActive && !resumeScheduled)
	// A pending suspension moved to another date: taken back, then ordered anew.
	moved := suspended && suspendOn > today && sub.Status == engine.StatusSuspended && sub.SuspendDate != suspendOn
	if suspended && (needsActive || moved) {
		if suspendOn > today && !(sub.Status == engine.StatusActive && sub.ResumeDate > suspendOn) {
			// A future suspension taken back before its date: resume on
			// the suspend date (a suspension of no days), as Zuora's
			// Resume policy SuspendDate does.
			actions = append(actions, zuora.OrderAction{Type: "Resume", TriggerDates: triggers(today),
				Resume: &zuora.Resume{ResumePolicy: zuora.ResumeSuspendDate}})
		} else {
			actions = append(actions, r.resume(sub, today))
		}
		suspended = false
	}
	actions = append(actions, structural...)
	if termsAction != nil {
		actions = append(actions, *termsAction)
	}
	if renew {
		// At most one order's worth: the rest follow in the next order.
		for i := done; i < sub.RenewalCount && i <= done+engine.MaxOrderActions; i++ {
			actions = append(actions, zuora.OrderAction{Type: "RenewSubscription", TriggerDates: triggers(today), RenewSubscription: &zuora.RenewSubscription{}})
		}
	}
	switch sub.Status {
	case engine.StatusCancelled:
		c := &zuora.CancelSubscription{}
		switch sub.CancellationPolicy {
		case engine.CancelEndOfLastInvoicePeriod:
			c.CancellationPolicy = "EndOfLastInvoicePeriod"
		case engine.CancelSpecificDate:
			c.CancellationPolicy, c.CancellationEffectiveDate = "SpecificDate", sub.CancellationDate
		default:
			c.CancellationPolicy = "EndOfCurrentTerm"
		}
		actions = append(actions, zuora.OrderAction{Type: "CancelSubscription", TriggerDates: triggers(today), CancelSubscription: c})
	case engine.StatusSuspended:
		if !suspended {
			sp := &zuora.Suspend{SuspendPolicy: "Today"}
			if sub.SuspendDate > today {
				sp.SuspendPolicy, sp.SuspendSpecificDate = "SpecificDate", sub.SuspendDate
			}
			actions = append(actions, zuora.OrderAction{Type: "Suspend", TriggerDates: triggers(today), Suspend: sp})
		}
	}
	return actions, notes, nil
}

func (r *Reconcilers) resume(sub engine.Subscription, today string) zuora.OrderAction {
	rs := &zuora.Resume{ResumePolicy: "Today"}
	if sub.Status == engine.StatusActive && sub.ResumeDate > today {
		rs.ResumePolicy, rs.ResumeSpecificDate = "SpecificDate", sub.ResumeDate
	}
	return zuora.OrderAction{Type: "Resume", TriggerDates: triggers(today), Resume: rs}
}

func addOnIDs(s engine.Subscription) []string {
	out := make([]string, 0, len(s.AddOns))
	for _, a := range s.AddOns {
		out = append(out, a.PlanID)
	}
	return out
}

func planRevisions(plans map[string]engine.Plan) []int {
	ids := make([]string, 0, len(plans))
	for id := range plans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		out = append(out, plans[id].Revision)
	}
	return out
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
