package store

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine"
)

type planRow struct {
	ID          string `gorm:"primaryKey"`
	Kind        string
	Name        string
	Description string
	PricingType string
	TrialDays   int
	Currency    string
	Metadata    string
	Revision    int
	ContentHash string
	ArchivedAt  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (planRow) TableName() string { return "plans" }

type billingPeriodRow struct {
	PlanID     string `gorm:"primaryKey"`
	ID         string `gorm:"primaryKey"`
	Period     string
	Position   int
	ArchivedAt *time.Time
}

func (billingPeriodRow) TableName() string { return "billing_periods" }

type chargeRow struct {
	PlanID          string `gorm:"primaryKey"`
	ID              string `gorm:"primaryKey"`
	BillingPeriodID string
	Position        int
	Name            string
	Type            string
	Model           string
	Currency        string
	Price           string
	Tiers           string
	UnitOfMeasure   string
	Feature         string
	BillingTiming   string
	DefaultQuantity string
	ArchivedAt      *time.Time
}

func (chargeRow) TableName() string { return "charges" }

type tierJSON struct {
	UpTo        *decimal.Decimal `json:"upTo"`
	Price       decimal.Decimal  `json:"price"`
	PriceFormat string           `json:"priceFormat"`
}

type customerRow struct {
	ID               string `gorm:"primaryKey"`
	Name             string
	Email            string
	Currency         string
	BillTo           *string
	HasPaymentMethod bool
	BillingID        string
	Metadata         string
	Revision         int
	ContentHash      string
	ArchivedAt       *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

func (customerRow) TableName() string { return "customers" }

type subscriptionRow struct {
	ID                 string `gorm:"primaryKey"`
	CustomerID         string
	PlanID             string
	BillingPeriodID    string
	AddOns             string
	ChargeQuantities   string
	Status             string
	StartDate          string
	TermMonths         int
	AutoRenew          bool
	RenewalCount       int
	SuspendDate        string
	ResumeDate         string
	CancellationPolicy string
	CancellationDate   string
	WriteOff           bool
	BillingID          string
	Metadata           string
	ScheduledChange    string
	Coupons            string
	Revision           int
	ContentHash        string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

func (subscriptionRow) TableName() string { return "subscriptions" }

type addOnJSON struct {
	PlanID          string          `json:"planId"`
	BillingPeriodID string          `json:"billingPeriodId"`
	Quantity        decimal.Decimal `json:"quantity"`
}

func planFromRows(p planRow, bps []billingPeriodRow, charges []chargeRow) engine.Plan {
	out := engine.Plan{
		ID: p.ID, Kind: engine.PlanKind(p.Kind), Name: p.Name, Description: p.Description,
		PricingType: engine.PricingType(p.PricingType), TrialDays: p.TrialDays, Currency: p.Currency,
		Revision: p.Revision, ArchivedAt: utcPtr(p.ArchivedAt), CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
		Metadata: metadataFrom(p.Metadata),
	}
	byBP := map[string][]engine.Charge{}
	for _, c := range charges {
		byBP[c.BillingPeriodID] = append(byBP[c.BillingPeriodID], chargeFromRow(c))
	}
	for _, bp := range bps {
		out.BillingPeriods = append(out.BillingPeriods, engine.BillingPeriod{
			ID: bp.ID, Period: engine.Period(bp.Period), Charges: byBP[bp.ID], ArchivedAt: utcPtr(bp.ArchivedAt),
		})
	}
	return out
}

func chargeFromRow(c chargeRow) engine.Charge {
	var tiers []tierJSON
	_ = json.Unmarshal([]byte(c.Tiers), &tiers)
	out := engine.Charge{
		ID: c.ID, Name: c.Name, Type: engine.ChargeType(c.Type), Model: engine.ChargeModel(c.Model),
		Currency: c.Currency, Price: mustDecimal(c.Price), UnitOfMeasure: c.UnitOfMeasure, Feature: c.Feature,
		BillingTiming: engine.BillingTiming(c.BillingTiming), DefaultQuantity: mustDecimal(c.DefaultQuantity),
		ArchivedAt: utcPtr(c.ArchivedAt),
	}
	for _, t := range tiers {
		out.Tiers = append(out.Tiers, engine.Tier{UpTo: t.UpTo, Price: t.Price, PriceFormat: engine.PriceFormat(t.PriceFormat)})
	}
	return out
}

func chargeToRow(planID, bpID string, pos int, c engine.Charge) chargeRow {
	tiers := make([]tierJSON, 0, len(c.Tiers))
	for _, t := range c.Tiers {
		tiers = append(tiers, tierJSON{UpTo: t.UpTo, Price: t.Price, PriceFormat: string(t.PriceFormat)})
	}
	tb, _ := json.Marshal(tiers)
	return chargeRow{
		PlanID: planID, ID: c.ID, BillingPeriodID: bpID, Position: pos, Name: c.Name, Type: string(c.Type),
		Model: string(c.Model), Currency: c.Currency, Price: c.Price.String(), Tiers: string(tb),
		UnitOfMeasure: c.UnitOfMeasure, Feature: c.Feature, BillingTiming: string(c.BillingTiming),
		DefaultQuantity: c.DefaultQuantity.String(), ArchivedAt: c.ArchivedAt,
	}
}

func customerFromRow(r customerRow) engine.Customer {
	c := engine.Customer{
		ID: r.ID, Name: r.Name, Email: r.Email, Currency: r.Currency, HasPaymentMethod: r.HasPaymentMethod,
		Revision: r.Revision, ArchivedAt: utcPtr(r.ArchivedAt), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		BillingID: r.BillingID, Metadata: metadataFrom(r.Metadata),
	}
	if r.BillTo != nil {
		var b engine.Contact
		if json.Unmarshal([]byte(*r.BillTo), &b) == nil {
			c.BillTo = &b
		}
	}
	return c
}

func customerToRow(c engine.Customer) customerRow {
	r := customerRow{
		ID: c.ID, Name: c.Name, Email: c.Email, Currency: c.Currency, HasPaymentMethod: c.HasPaymentMethod,
		Revision: c.Revision, ArchivedAt: c.ArchivedAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		BillingID: c.BillingID, Metadata: metadataTo(c.Metadata),
	}
	if c.BillTo != nil {
		b, _ := json.Marshal(c.BillTo)
		s := string(b)
		r.BillTo = &s
	}
	return r
}

func subscriptionFromRow(r subscriptionRow) engine.Subscription {
	s := engine.Subscription{
		ID: r.ID, CustomerID: r.CustomerID, PlanID: r.PlanID, BillingPeriodID: r.BillingPeriodID,
		Status: engine.SubscriptionStatus(r.Status), StartDate: r.StartDate, TermMonths: r.TermMonths,
		AutoRenew: r.AutoRenew, RenewalCount: r.RenewalCount, SuspendDate: r.SuspendDate, ResumeDate: r.ResumeDate,
		CancellationPolicy: engine.CancellationPolicy(r.CancellationPolicy), CancellationDate: r.CancellationDate,
		Revision: r.Revision, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		BillingID: r.BillingID, Metadata: metadataFrom(r.Metadata), WriteOff: r.WriteOff,
	}
	var addOns []addOnJSON
	_ = json.Unmarshal([]byte(r.AddOns), &addOns)
	for _, a := range addOns {
		s.AddOns = append(s.AddOns, engine.AddOn{PlanID: a.PlanID, BillingPeriodID: a.BillingPeriodID, Quantity: a.Quantity})
	}
	_ = json.Unmarshal([]byte(r.ChargeQuantities), &s.ChargeQuantities)
	if r.ScheduledChange != "" {
		var c engine.ScheduledChange
		if json.Unmarshal([]byte(r.ScheduledChange), &c) == nil {
			s.Scheduled = &c
		}
	}
	_ = json.Unmarshal([]byte(r.Coupons), &s.Coupons)
	return s
}

func subscriptionToRow(s engine.Subscription) subscriptionRow {
	addOns := make([]addOnJSON, 0, len(s.AddOns))
	for _, a := range s.AddOns {
		addOns = append(addOns, addOnJSON{PlanID: a.PlanID, BillingPeriodID: a.BillingPeriodID, Quantity: a.Quantity})
	}
	ab, _ := json.Marshal(addOns)
	q := s.ChargeQuantities
	if q == nil {
		q = map[string]decimal.Decimal{}
	}
	qb, _ := json.Marshal(q)
	cb, _ := json.Marshal(append([]string{}, s.Coupons...))
	return subscriptionRow{Coupons: string(cb),
		ID: s.ID, CustomerID: s.CustomerID, PlanID: s.PlanID, BillingPeriodID: s.BillingPeriodID,
		AddOns: string(ab), ChargeQuantities: string(qb), Status: string(s.Status), StartDate: s.StartDate,
		TermMonths: s.TermMonths, AutoRenew: s.AutoRenew, RenewalCount: s.RenewalCount, SuspendDate: s.SuspendDate,
		ResumeDate: s.ResumeDate, CancellationPolicy: string(s.CancellationPolicy), CancellationDate: s.CancellationDate,
		Revision: s.Revision, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		BillingID: s.BillingID, Metadata: metadataTo(s.Metadata), ScheduledChange: scheduledTo(s.Scheduled), WriteOff: s.WriteOff,
	}
}

// scheduledTo is the scheduled_change column: the change as JSON, ” for none.
func scheduledTo(c *engine.ScheduledChange) string {
	if c == nil {
		return ""
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// metadataFrom reads a metadata column (a JSON object), nil when empty.
func metadataFrom(s string) map[string]string {
	var m map[string]string
	_ = json.Unmarshal([]byte(s), &m)
	if len(m) == 0 {
		return nil
	}
	return m
}

func metadataTo(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func mustDecimal(s string) decimal.Decimal {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero
	}
	return d
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
