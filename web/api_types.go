package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine"
)

// Amount is a decimal written as a JSON string ("49.90") or number (49.9).
// It is parsed exactly, never through float64.
type Amount struct {
	raw string
	set bool
}

// UnmarshalJSON keeps the literal for exact parsing.
func (a *Amount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*a = Amount{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Amount{raw: s, set: true}
		return nil
	}
	*a = Amount{raw: string(b), set: true}
	return nil
}

// MarshalJSON writes the amount as a string.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.raw) }

func amountOf(d decimal.Decimal) Amount { return Amount{raw: d.String(), set: true} }

func amountPtr(d *decimal.Decimal) *Amount {
	if d == nil {
		return nil
	}
	a := amountOf(*d)
	return &a
}

// conv collects conversion errors with their field paths.
type conv struct{ errs []engine.FieldError }

func (c *conv) decimal(field string, a Amount, def string) decimal.Decimal {
	if !a.set {
		return decimal.RequireFromString(def)
	}
	d, err := decimal.NewFromString(a.raw)
	if err != nil || len(a.raw) > 40 {
		c.errs = append(c.errs, engine.FieldError{Field: field, Message: fmt.Sprintf("must be a decimal number, got %q", a.raw)})
		return decimal.Zero
	}
	return d
}

func (c *conv) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return &engine.ValidationError{Errors: c.errs}
}

// PlanBody is the JSON form of a plan (or add-on) with its billing periods and charges.
type PlanBody struct {
	ID             string              `json:"id,omitempty"`
	Kind           string              `json:"kind"`
	Name           string              `json:"name"`
	Description    string              `json:"description,omitempty"`
	PricingType    string              `json:"pricingType"`
	TrialDays      int                 `json:"trialDays"`
	Currency       string              `json:"currency"`
	BillingPeriods []BillingPeriodBody `json:"billingPeriods"`
	Metadata       map[string]string   `json:"metadata,omitempty"`
	Revision       int                 `json:"revision,omitempty"`
	ArchivedAt     *time.Time          `json:"archivedAt,omitempty"`
	CreatedAt      *time.Time          `json:"createdAt,omitempty"`
	UpdatedAt      *time.Time          `json:"updatedAt,omitempty"`
	Sync           *SyncSummary        `json:"sync,omitempty"`
}

// BillingPeriodBody is the JSON form of a billing period.
type BillingPeriodBody struct {
	ID         string       `json:"id"`
	Period     string       `json:"period"`
	Charges    []ChargeBody `json:"charges"`
	ArchivedAt *time.Time   `json:"archivedAt,omitempty"`
}

// ChargeBody is the JSON form of a charge.
type ChargeBody struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	Type            string     `json:"type"`
	Model           string     `json:"model"`
	Currency        string     `json:"currency,omitempty"`
	Price           Amount     `json:"price"`
	Tiers           []TierBody `json:"tiers,omitempty"`
	UnitOfMeasure   string     `json:"unitOfMeasure,omitempty"`
	Feature         string     `json:"feature,omitempty"`
	BillingTiming   string     `json:"billingTiming,omitempty"`
	DefaultQuantity *Amount    `json:"defaultQuantity,omitempty"`
	ArchivedAt      *time.Time `json:"archivedAt,omitempty"`
}

// TierBody is the JSON form of a price tier; upTo null or absent means "and above".
type TierBody struct {
	UpTo        *Amount `json:"upTo,omitempty"`
	Price       Amount  `json:"price"`
	PriceFormat string  `json:"priceFormat,omitempty"`
}

// SyncSummary is an entity's Zuora sync status as shown with the entity.
type SyncSummary struct {
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	ZuoraID     string `json:"zuoraId,omitempty"`
	ZuoraNumber string `json:"zuoraNumber,omitempty"`
	ZuoraURL    string `json:"zuoraUrl,omitempty"`
}

func (b PlanBody) toDomain(id string) (engine.Plan, error) {
	c := &conv{}
	p := engine.Plan{ID: id, Kind: engine.PlanKind(or(b.Kind, "plan")), Name: b.Name, Description: b.Description,
		PricingType: engine.PricingType(or(b.PricingType, "paid")), TrialDays: b.TrialDays, Currency: b.Currency, Metadata: b.Metadata}
	for i, bp := range b.BillingPeriods {
		dbp := engine.BillingPeriod{ID: bp.ID, Period: engine.Period(bp.Period)}
		for j, ch := range bp.Charges {
			f := fmt.Sprintf("billingPeriods[%d].charges[%d]", i, j)
			dc := engine.Charge{ID: ch.ID, Name: ch.Name, Type: engine.ChargeType(ch.Type), Model: engine.ChargeModel(ch.Model),
				Currency: ch.Currency, Price: c.decimal(f+".price", ch.Price, "0"), UnitOfMeasure: ch.UnitOfMeasure,
				Feature: ch.Feature, BillingTiming: engine.BillingTiming(ch.BillingTiming)}
			if ch.DefaultQuantity != nil {
				dc.DefaultQuantity = c.decimal(f+".defaultQuantity", *ch.DefaultQuantity, "0")
			}
			for k, t := range ch.Tiers {
				tf := fmt.Sprintf("%s.tiers[%d]", f, k)
				dt := engine.Tier{Price: c.decimal(tf+".price", t.Price, "0"), PriceFormat: engine.PriceFormat(or(t.PriceFormat, "per_unit"))}
				if t.UpTo != nil && t.UpTo.set {
					d := c.decimal(tf+".upTo", *t.UpTo, "0")
					dt.UpTo = &d
				}
				dc.Tiers = append(dc.Tiers, dt)
			}
			dbp.Charges = append(dbp.Charges, dc)
		}
		p.BillingPeriods = append(p.BillingPeriods, dbp)
	}
	if err := c.err(); err != nil {
		return p, err
	}
	return p, p.Validate()
}

func planBody(p engine.Plan) PlanBody {
	b := PlanBody{ID: p.ID, Kind: string(p.Kind), Name: p.Name, Description: p.Description, PricingType: string(p.PricingType),
		TrialDays: p.TrialDays, Currency: p.Currency, Revision: p.Revision, ArchivedAt: p.ArchivedAt, Metadata: p.Metadata,
		CreatedAt: timePtr(p.CreatedAt), UpdatedAt: timePtr(p.UpdatedAt), BillingPeriods: []BillingPeriodBody{}}
	for _, bp := range p.BillingPeriods {
		bb := BillingPeriodBody{ID: bp.ID, Period: string(bp.Period), ArchivedAt: bp.ArchivedAt, Charges: []ChargeBody{}}
		for _, ch := range bp.Charges {
			cb := ChargeBody{ID: ch.ID, Name: ch.Name, Type: string(ch.Type), Model: string(ch.Model), Currency: ch.Currency,
				Price: amountOf(ch.Price), UnitOfMeasure: ch.UnitOfMeasure, Feature: ch.Feature, BillingTiming: string(ch.BillingTiming),
				ArchivedAt: ch.ArchivedAt}
			if !ch.DefaultQuantity.IsZero() {
				a := amountOf(ch.DefaultQuantity)
				cb.DefaultQuantity = &a
			}
			for _, t := range ch.Tiers {
				cb.Tiers = append(cb.Tiers, TierBody{UpTo: amountPtr(t.UpTo), Price: amountOf(t.Price), PriceFormat: string(t.PriceFormat)})
			}
			bb.Charges = append(bb.Charges, cb)
		}
		b.BillingPeriods = append(b.BillingPeriods, bb)
	}
	return b
}

// ContactBody is the JSON form of a bill-to contact.
type ContactBody struct {
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
	Email      string `json:"email,omitempty"`
	Address1   string `json:"address1,omitempty"`
	Address2   string `json:"address2,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	Country    string `json:"country"`
}

// CustomerBody is the JSON form of a customer.
type CustomerBody struct {
	ID               string            `json:"id,omitempty"`
	Name             string            `json:"name"`
	Email            string            `json:"email,omitempty"`
	Currency         string            `json:"currency"`
	BillTo           *ContactBody      `json:"billTo,omitempty"`
	HasPaymentMethod bool              `json:"hasPaymentMethod"`
	BillingID        string            `json:"billingId,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	Revision         int               `json:"revision,omitempty"`
	ArchivedAt       *time.Time        `json:"archivedAt,omitempty"`
	CreatedAt        *time.Time        `json:"createdAt,omitempty"`
	UpdatedAt        *time.Time        `json:"updatedAt,omitempty"`
	Sync             *SyncSummary      `json:"sync,omitempty"`
}

func (b CustomerBody) toDomain(id string) (engine.Customer, error) {
	c := engine.Customer{ID: id, Name: b.Name, Email: b.Email, Currency: b.Currency, HasPaymentMethod: b.HasPaymentMethod,
		BillingID: b.BillingID, Metadata: b.Metadata}
	if b.BillTo != nil {
		ct := engine.Contact(*b.BillTo)
		c.BillTo = &ct
	}
	return c, c.Validate()
}

func customerBody(c engine.Customer) CustomerBody {
	b := CustomerBody{ID: c.ID, Name: c.Name, Email: c.Email, Currency: c.Currency, HasPaymentMethod: c.HasPaymentMethod,
		BillingID: c.BillingID, Metadata: c.Metadata,
		Revision: c.Revision, ArchivedAt: c.ArchivedAt, CreatedAt: timePtr(c.CreatedAt), UpdatedAt: timePtr(c.UpdatedAt)}
	if c.BillTo != nil {
		ct := ContactBody(*c.BillTo)
		b.BillTo = &ct
	}
	return b
}

// AddOnBody is the JSON form of an add-on on a subscription.
type AddOnBody struct {
	PlanID          string `json:"planId"`
	BillingPeriodID string `json:"billingPeriodId"`
	Quantity        Amount `json:"quantity"`
}

// SubscriptionBody is the JSON form of a subscription.
type SubscriptionBody struct {
	ID                 string            `json:"id,omitempty"`
	CustomerID         string            `json:"customerId"`
	PlanID             string            `json:"planId"`
	BillingPeriodID    string            `json:"billingPeriodId"`
	AddOns             []AddOnBody       `json:"addOns"`
	ChargeQuantities   map[string]Amount `json:"chargeQuantities"`
	Status             string            `json:"status"`
	StartDate          string            `json:"startDate"`
	TermMonths         *int              `json:"termMonths,omitempty"`
	AutoRenew          *bool             `json:"autoRenew,omitempty"`
	RenewalCount       int               `json:"renewalCount"`
	SuspendDate        string            `json:"suspendDate,omitempty"`
	ResumeDate         string            `json:"resumeDate,omitempty"`
	CancellationPolicy string            `json:"cancellationPolicy,omitempty"`
	CancellationDate   string            `json:"cancellationDate,omitempty"`
	WriteOff           bool              `json:"writeOff,omitempty"`
	BillingID          string            `json:"billingId,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	Coupons            []string          `json:"coupons,omitempty"`
	// ScheduledChange is the pending future change (read-only here; set
	// with PUT /subscriptions/{id}/scheduled-change).
	ScheduledChange *ScheduledChangeView `json:"scheduledChange,omitempty"`
	Revision        int                  `json:"revision,omitempty"`
	CreatedAt       *time.Time           `json:"createdAt,omitempty"`
	UpdatedAt       *time.Time           `json:"updatedAt,omitempty"`
	Sync            *SyncSummary         `json:"sync,omitempty"`
}

func (b SubscriptionBody) toDomain(id string) (engine.Subscription, error) {
	c := &conv{}
	s := engine.Subscription{ID: id, CustomerID: b.CustomerID, PlanID: b.PlanID, BillingPeriodID: b.BillingPeriodID,
		Status: engine.SubscriptionStatus(or(b.Status, "active")), StartDate: b.StartDate, TermMonths: 12, AutoRenew: true,
		RenewalCount: b.RenewalCount, SuspendDate: b.SuspendDate, ResumeDate: b.ResumeDate,
		CancellationPolicy: engine.CancellationPolicy(b.CancellationPolicy), CancellationDate: b.CancellationDate,
		BillingID: b.BillingID, Metadata: b.Metadata, Coupons: b.Coupons, WriteOff: b.WriteOff}
	if b.TermMonths != nil {
		s.TermMonths = *b.TermMonths
	}
	if b.AutoRenew != nil {
		s.AutoRenew = *b.AutoRenew
	}
	for i, a := range b.AddOns {
		s.AddOns = append(s.AddOns, engine.AddOn{PlanID: a.PlanID, BillingPeriodID: a.BillingPeriodID,
			Quantity: c.decimal(fmt.Sprintf("addOns[%d].quantity", i), a.Quantity, "1")})
	}
	if len(b.ChargeQuantities) > 0 {
		s.ChargeQuantities = map[string]decimal.Decimal{}
		for id, q := range b.ChargeQuantities {
			s.ChargeQuantities[id] = c.decimal("chargeQuantities."+id, q, "0")
		}
	}
	if err := c.err(); err != nil {
		return s, err
	}
	return s, s.Validate()
}

func subscriptionBody(s engine.Subscription) SubscriptionBody {
	tm, ar := s.TermMonths, s.AutoRenew
	b := SubscriptionBody{ID: s.ID, CustomerID: s.CustomerID, PlanID: s.PlanID, BillingPeriodID: s.BillingPeriodID,
		AddOns: []AddOnBody{}, ChargeQuantities: map[string]Amount{}, Status: string(s.Status), StartDate: s.StartDate,
		TermMonths: &tm, AutoRenew: &ar, RenewalCount: s.RenewalCount, SuspendDate: s.SuspendDate, ResumeDate: s.ResumeDate,
		CancellationPolicy: string(s.CancellationPolicy), CancellationDate: s.CancellationDate, Revision: s.Revision,
		BillingID: s.BillingID, Metadata: s.Metadata, ScheduledChange: scheduledView(s), Coupons: s.Coupons, WriteOff: s.WriteOff,
		CreatedAt: timePtr(s.CreatedAt), UpdatedAt: timePtr(s.UpdatedAt)}
	for _, a := range s.AddOns {
		b.AddOns = append(b.AddOns, AddOnBody{PlanID: a.PlanID, BillingPeriodID: a.BillingPeriodID, Quantity: amountOf(a.Quantity)})
	}
	for id, q := range s.ChargeQuantities {
		b.ChargeQuantities[id] = amountOf(q)
	}
	return b
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
