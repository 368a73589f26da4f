package zuorasim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ---- stored objects ----

type product struct {
	ID               string
	Fields           map[string]any // PascalCase CRUD fields as written (known ones, *__c, *__NS)
	Number           string
	Plans            []string
	Created, Updated time.Time
}

type ratePlan struct {
	ID               string
	ProductID        string
	Fields           map[string]any
	Number           string
	Charges          []string
	Created, Updated time.Time
}

type prpCharge struct {
	ID               string
	PlanID           string
	Fields           map[string]any
	Number           string
	Tiers            []*prpTier
	Created, Updated time.Time
}

type prpTier struct {
	ID             string
	ChargeID       string
	Tier           int
	Currency       string
	Price          json.Number `json:",omitempty"`
	StartingUnit   json.Number `json:",omitempty"`
	EndingUnit     json.Number `json:",omitempty"`
	PriceFormat    string
	IsOveragePrice bool
	DiscountAmount json.Number `json:",omitempty"`
	DiscountPct    json.Number `json:",omitempty"`
}

type contact struct {
	ID     string
	Fields map[string]any // camelCase, including custom *__c
}

type account struct {
	ID, Number, Name, Currency, Status string
	Basic                              map[string]any // crmId, batch, notes, salesRep, ... (camelCase)
	BillCycleDay                       int
	PaymentTerm                        string
	AutoPay                            bool
	InvoiceDeliveryPrefsEmail          bool
	InvoiceDeliveryPrefsPrint          bool
	BillTo, SoldTo, ShipTo             *contact
	Custom                             map[string]any
	DefaultPaymentMethodID             string
	Created, Updated                   time.Time
}

type statusSpan struct {
	Start, End, Status string
}

type segment struct {
	Segment        int
	Start, End     string
	Quantity       json.Number `json:",omitempty"`
	Price          json.Number `json:",omitempty"`
	Tiers          []*prpTier
	AmendedByOrder string
}

type subCharge struct {
	ID, OriginalID, Number    string
	PRPCID                    string
	Name, Type, Model, UOM    string
	BillingPeriod, BillingDay string
	BillingTiming, ListPrice  string
	EndDateCondition          string
	TriggerEvent              string
	Currency                  string
	Version                   int
	Segments                  []*segment
	Custom                    map[string]any
	UniqueToken               string
}

func (ch *subCharge) last() *segment { return ch.Segments[len(ch.Segments)-1] }

type subRatePlan struct {
	ID, Number                  string
	ProductID, ProductName, SKU string
	ProductRatePlanID, Name     string
	ProductRatePlanNumber       string
	LastChangeType              string
	UniqueToken                 string
	PastIDs                     []string // ids of this rate plan in earlier versions
	Custom                      map[string]any
	Charges                     []*subCharge
}

type subVersion struct {
	ID                     string
	Version                int
	Status                 string
	TermType               string
	InitialTerm            int
	InitialTermPeriodType  string
	CurrentTerm            int
	CurrentTermPeriodType  string
	RenewalTerm            int
	RenewalTermPeriodType  string
	RenewalSetting         string
	AutoRenew              bool
	ContractEffectiveDate  string
	ServiceActivationDate  string
	CustomerAcceptanceDate string
	SubscriptionStartDate  string
	SubscriptionEndDate    string
	TermStartDate          string
	TermEndDate            string
	CancelledDate          string
	// SuspendDate and ResumeDate are the dates of the latest Suspend and
	// Resume order actions; Zuora shows them in statusHistory only
	// (scheduledSuspendDate/scheduledResumeDate belong to the
	// TermsAndConditions scheduled actions, which the simulator does not model).
	SuspendDate       string
	ResumeDate        string
	OrderNumber       string
	Currency          string
	Notes             string
	InvoiceSeparately bool
	Custom            map[string]any
	RatePlans         []*subRatePlan
	StatusHistory     []statusSpan
	Created, Updated  time.Time
}

type subscription struct {
	Number         string
	AccountID      string
	InvoiceOwnerID string
	OriginalID     string
	Versions       []*subVersion
	Orders         int
}

func (s *subscription) latest() *subVersion { return s.Versions[len(s.Versions)-1] }

type usageRecord struct {
	ID                 string
	AccountID          string
	AccountNumber      string
	SubscriptionNumber string
	SubscriptionID     string
	ChargeNumber       string
	ChargeID           string
	UOM                string
	Quantity           json.Number `json:",omitempty"`
	StartDateTime      time.Time
	EndDateTime        *time.Time
	Description        string
	UniqueKey          string
	Custom             map[string]any
	Submitted          time.Time
	Status             string // Pending until a bill run rates it: Processed
	Source             string // "Import" for a usage file's rows (else API)
	ImportID           string // the usage import that made it
}

type eventTrigger struct {
	ID          string
	Active      bool
	BaseObject  string
	Condition   string
	Name        string
	DisplayName string
	Description string
	Namespace   string
}

type calloutAuth struct {
	Username, Password, Domain string
	Preemptive                 bool
}

type notificationDef struct {
	ID                 string
	EventID            string
	Name               string
	Description        string
	Active             bool
	CalloutActive      bool
	EmailActive        bool
	EventCategory      *float64
	EventTypeName      string
	EventTypeNamespace string
	ProfileID          string
	CalloutID          string
	CalloutName        string
	CalloutActiveTpl   bool
	BaseURL            string
	HTTPMethod         string
	Params             map[string]string
	Retry              bool
	RequiredAuth       bool
	Auth               *calloutAuth
	Raw                map[string]any
	TemplateIDs        []string // calloutTemplateIds given on create
	Created, Updated   time.Time
}

type order struct {
	ID, Number, AccountID string
	Date                  string
	Subscriptions         []string
	Created               time.Time
	// Scheduled orders (scheduled.go): Status is "" for an order that ran
	// when placed (Completed), else Scheduled, Completed, Cancelled or
	// Failed; Body is the order as placed, run on ScheduledDate.
	Status        string          `json:",omitempty"`
	ScheduledDate string          `json:",omitempty"`
	Body          json.RawMessage `json:",omitempty"`
	CancelReason  string          `json:",omitempty"`
	FailureReason string          `json:",omitempty"`
	Updated       time.Time
}

type state struct {
	// epoch is random per fresh state: ids of a reset or new simulator
	// never repeat those of an earlier one (billsync maps objects by id).
	epoch uint32
	seq   int64

	products     map[string]*product
	productOrder []string
	plans        map[string]*ratePlan
	charges      map[string]*prpCharge
	tiers        map[string]*prpTier

	accounts        map[string]*account
	accountByNumber map[string]*account
	accountOrder    []string

	subs          map[string]*subscription // by number
	subByID       map[string]*subscription // by any version id
	subOrder      []string
	subsByAccount map[string][]string // account id → subscription numbers
	chargeOwner   map[string]*subscription

	usage          []*usageRecord
	usageByAccount map[string][]*usageRecord
	imports        map[string]*usageImport // usage files (POST /v1/usage), by import id

	triggers     map[string]*eventTrigger
	triggerOrder []string
	notifs       map[string]*notificationDef
	notifOrder   []string
	// templates are callout templates: the callout fields of a
	// notificationDef (CalloutID is the template id, CalloutName its name).
	templates     map[string]*notificationDef
	templateOrder []string

	orders map[string]*order
	// scheduledOrders are the numbers of the orders still Scheduled.
	scheduledOrders []string

	// billedThrough is, per account id, the target date of its last bill
	// run: usage of a day before it that came later is never rated.
	billedThrough map[string]string

	// bill holds invoices, payments and payment methods (billing.go).
	bill *billingState

	nAccount, nSub, nCharge, nOrder, nProduct, nPlan, nPRPC, nRatePlan int
}

func newState() *state {
	return &state{
		epoch:           newEpoch(),
		products:        map[string]*product{},
		plans:           map[string]*ratePlan{},
		charges:         map[string]*prpCharge{},
		tiers:           map[string]*prpTier{},
		accounts:        map[string]*account{},
		accountByNumber: map[string]*account{},
		subs:            map[string]*subscription{},
		subByID:         map[string]*subscription{},
		subsByAccount:   map[string][]string{},
		chargeOwner:     map[string]*subscription{},
		usageByAccount:  map[string][]*usageRecord{},
		imports:         map[string]*usageImport{},
		triggers:        map[string]*eventTrigger{},
		notifs:          map[string]*notificationDef{},
		templates:       map[string]*notificationDef{},
		billedThrough:   map[string]string{},
		orders:          map[string]*order{},
	}
}

// newID returns a 32-hex-character Zuora-style id.
func (st *state) newID() string {
	st.seq++
	return fmt.Sprintf("8ad0%08x%020x", st.epoch, st.seq)
}

func (st *state) account(key string) *account {
	if a, ok := st.accounts[key]; ok {
		return a
	}
	return st.accountByNumber[key]
}

func (st *state) subscription(key string) *subscription {
	if s, ok := st.subs[key]; ok {
		return s
	}
	return st.subByID[key]
}

// ---- snapshot (GET /_sim/state) ----

// StateSnapshot is every object the simulator holds, for assertions.
type StateSnapshot struct {
	Products                []ProductSnapshot      `json:"products"`
	RatePlans               []RatePlanSnapshot     `json:"ratePlans"`
	Charges                 []ChargeSnapshot       `json:"charges"`
	Accounts                []AccountSnapshot      `json:"accounts"`
	Subscriptions           []SubscriptionSnapshot `json:"subscriptions"`
	Usage                   []UsageSnapshot        `json:"usage"`
	EventTriggers           []EventTriggerSnapshot `json:"eventTriggers"`
	NotificationDefinitions []NotificationSnapshot `json:"notificationDefinitions"`
	Callouts                []CalloutAttempt       `json:"callouts"`
}

// ProductSnapshot is a product with its CRUD fields (custom fields included).
type ProductSnapshot struct {
	ID          string         `json:"id"`
	Number      string         `json:"productNumber"`
	Name        string         `json:"name"`
	SKU         string         `json:"sku,omitempty"`
	Fields      map[string]any `json:"fields"`
	RatePlanIDs []string       `json:"ratePlanIds"`
}

// RatePlanSnapshot is a product rate plan.
type RatePlanSnapshot struct {
	ID        string         `json:"id"`
	ProductID string         `json:"productId"`
	Number    string         `json:"productRatePlanNumber"`
	Name      string         `json:"name"`
	Fields    map[string]any `json:"fields"`
	ChargeIDs []string       `json:"chargeIds"`
}

// ChargeSnapshot is a product rate plan charge with its tiers.
type ChargeSnapshot struct {
	ID         string         `json:"id"`
	RatePlanID string         `json:"productRatePlanId"`
	Number     string         `json:"productRatePlanChargeNumber"`
	Name       string         `json:"name"`
	Fields     map[string]any `json:"fields"`
	Tiers      []TierSnapshot `json:"tiers"`
}

// TierSnapshot is one price tier.
type TierSnapshot struct {
	ID             string      `json:"id"`
	Tier           int         `json:"tier"`
	Currency       string      `json:"currency"`
	Price          json.Number `json:"price,omitempty"`
	StartingUnit   json.Number `json:"startingUnit,omitempty"`
	EndingUnit     json.Number `json:"endingUnit,omitempty"`
	PriceFormat    string      `json:"priceFormat,omitempty"`
	IsOveragePrice bool        `json:"isOveragePrice,omitempty"`
}

// AccountSnapshot is an account with contacts and custom fields.
type AccountSnapshot struct {
	ID            string         `json:"id"`
	AccountNumber string         `json:"accountNumber"`
	Name          string         `json:"name"`
	Currency      string         `json:"currency"`
	Status        string         `json:"status"`
	BillCycleDay  int            `json:"billCycleDay"`
	CustomFields  map[string]any `json:"customFields"`
	BillTo        map[string]any `json:"billToContact,omitempty"`
	SoldTo        map[string]any `json:"soldToContact,omitempty"`
	CreatedDate   time.Time      `json:"createdDate"`
	UpdatedDate   time.Time      `json:"updatedDate"`
}

// SubscriptionSnapshot is a subscription's latest version.
type SubscriptionSnapshot struct {
	ID                 string                `json:"id"`
	OriginalID         string                `json:"originalId"`
	SubscriptionNumber string                `json:"subscriptionNumber"`
	Version            int                   `json:"version"`
	VersionIDs         []string              `json:"versionIds"`
	Status             string                `json:"status"`
	AccountID          string                `json:"accountId"`
	AccountNumber      string                `json:"accountNumber"`
	TermType           string                `json:"termType"`
	TermStartDate      string                `json:"termStartDate,omitempty"`
	TermEndDate        string                `json:"termEndDate,omitempty"`
	SubscriptionEnd    string                `json:"subscriptionEndDate,omitempty"`
	CancelledDate      string                `json:"cancelledDate,omitempty"`
	SuspendDate        string                `json:"suspendDate,omitempty"`
	ResumeDate         string                `json:"resumeDate,omitempty"`
	CustomFields       map[string]any        `json:"customFields"`
	RatePlans          []SubRatePlanSnapshot `json:"ratePlans"`
}

// SubRatePlanSnapshot is a subscription rate plan.
type SubRatePlanSnapshot struct {
	ID                string              `json:"id"`
	ProductRatePlanID string              `json:"productRatePlanId"`
	Name              string              `json:"ratePlanName"`
	LastChangeType    string              `json:"lastChangeType,omitempty"`
	Charges           []SubChargeSnapshot `json:"ratePlanCharges"`
}

// SubChargeSnapshot is a subscription charge (last segment).
type SubChargeSnapshot struct {
	ID                 string      `json:"id"`
	Number             string      `json:"number"`
	ProductRatePlanChg string      `json:"productRatePlanChargeId"`
	Name               string      `json:"name"`
	Type               string      `json:"type"`
	Model              string      `json:"model"`
	UOM                string      `json:"uom,omitempty"`
	Quantity           json.Number `json:"quantity,omitempty"`
	Price              json.Number `json:"price,omitempty"`
	Segment            int         `json:"segment"`
	EffectiveStartDate string      `json:"effectiveStartDate"`
	EffectiveEndDate   string      `json:"effectiveEndDate,omitempty"`
}

// UsageSnapshot is one usage record.
type UsageSnapshot struct {
	ID                 string         `json:"id"`
	AccountID          string         `json:"accountId"`
	AccountNumber      string         `json:"accountNumber"`
	SubscriptionNumber string         `json:"subscriptionNumber,omitempty"`
	ChargeNumber       string         `json:"chargeNumber,omitempty"`
	UOM                string         `json:"uom"`
	Quantity           json.Number    `json:"quantity"`
	StartDateTime      time.Time      `json:"startDateTime"`
	UniqueKey          string         `json:"uniqueKey,omitempty"`
	Description        string         `json:"description,omitempty"`
	CustomFields       map[string]any `json:"customFields,omitempty"`
	Status             string         `json:"status"` // Pending, Processed
	// ImportID is the usage import (POST /v1/usage) that made the record.
	ImportID string `json:"importId,omitempty"`
}

// EventTriggerSnapshot is a custom event trigger.
type EventTriggerSnapshot struct {
	ID         string `json:"id"`
	Active     bool   `json:"active"`
	BaseObject string `json:"baseObject"`
	Condition  string `json:"condition"`
	EventType  string `json:"eventTypeName"`
}

// NotificationSnapshot is a notification definition with its callout.
type NotificationSnapshot struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Active        bool              `json:"active"`
	CalloutActive bool              `json:"calloutActive"`
	EventCategory *float64          `json:"eventCategory,omitempty"`
	EventTypeName string            `json:"eventTypeName,omitempty"`
	URL           string            `json:"calloutBaseurl"`
	HTTPMethod    string            `json:"httpMethod"`
	Params        map[string]string `json:"calloutParams"`
	RequiredAuth  bool              `json:"requiredAuth"`
	Preemptive    bool              `json:"preemptive"`
}

// State returns a snapshot of every object.
func (s *Sim) State() StateSnapshot {
	s.mu.Lock()
	s.processImportsLocked(s.Now())
	st := s.st
	out := StateSnapshot{}
	for _, id := range st.productOrder {
		p := st.products[id]
		out.Products = append(out.Products, ProductSnapshot{ID: p.ID, Number: p.Number, Name: str(p.Fields["Name"]), SKU: str(p.Fields["SKU"]), Fields: maps.Clone(p.Fields), RatePlanIDs: slices.Clone(p.Plans)})
		for _, pid := range p.Plans {
			rp := st.plans[pid]
			out.RatePlans = append(out.RatePlans, RatePlanSnapshot{ID: rp.ID, ProductID: rp.ProductID, Number: rp.Number, Name: str(rp.Fields["Name"]), Fields: maps.Clone(rp.Fields), ChargeIDs: slices.Clone(rp.Charges)})
			for _, cid := range rp.Charges {
				ch := st.charges[cid]
				cs := ChargeSnapshot{ID: ch.ID, RatePlanID: ch.PlanID, Number: ch.Number, Name: str(ch.Fields["Name"]), Fields: maps.Clone(ch.Fields)}
				for _, t := range ch.Tiers {
					cs.Tiers = append(cs.Tiers, TierSnapshot{ID: t.ID, Tier: t.Tier, Currency: t.Currency, Price: t.Price, StartingUnit: t.StartingUnit, EndingUnit: t.EndingUnit, PriceFormat: t.PriceFormat, IsOveragePrice: t.IsOveragePrice})
				}
				out.Charges = append(out.Charges, cs)
			}
		}
	}
	for _, id := range st.accountOrder {
		a := st.accounts[id]
		as := AccountSnapshot{ID: a.ID, AccountNumber: a.Number, Name: a.Name, Currency: a.Currency, Status: a.Status, BillCycleDay: a.BillCycleDay, CustomFields: maps.Clone(a.Custom), CreatedDate: a.Created, UpdatedDate: a.Updated}
		if a.BillTo != nil {
			as.BillTo = maps.Clone(a.BillTo.Fields)
		}
		if a.SoldTo != nil {
			as.SoldTo = maps.Clone(a.SoldTo.Fields)
		}
		out.Accounts = append(out.Accounts, as)
	}
	for _, num := range st.subOrder {
		sub := st.subs[num]
		v := sub.latest()
		acc := st.accounts[sub.AccountID]
		ss := SubscriptionSnapshot{ID: v.ID, OriginalID: sub.OriginalID, SubscriptionNumber: sub.Number, Version: v.Version, Status: v.Status,
			AccountID: sub.AccountID, TermType: v.TermType, TermStartDate: v.TermStartDate, TermEndDate: v.TermEndDate, SubscriptionEnd: v.SubscriptionEndDate,
			CancelledDate: v.CancelledDate, SuspendDate: v.SuspendDate, ResumeDate: v.ResumeDate, CustomFields: maps.Clone(v.Custom)}
		if acc != nil {
			ss.AccountNumber = acc.Number
		}
		for _, ver := range sub.Versions {
			ss.VersionIDs = append(ss.VersionIDs, ver.ID)
		}
		for _, rp := range v.RatePlans {
			rs := SubRatePlanSnapshot{ID: rp.ID, ProductRatePlanID: rp.ProductRatePlanID, Name: rp.Name, LastChangeType: rp.LastChangeType}
			for _, ch := range rp.Charges {
				seg := ch.last()
				rs.Charges = append(rs.Charges, SubChargeSnapshot{ID: ch.ID, Number: ch.Number, ProductRatePlanChg: ch.PRPCID, Name: ch.Name, Type: ch.Type, Model: ch.Model, UOM: ch.UOM,
					Quantity: seg.Quantity, Price: seg.Price, Segment: seg.Segment, EffectiveStartDate: seg.Start, EffectiveEndDate: seg.End})
			}
			ss.RatePlans = append(ss.RatePlans, rs)
		}
		out.Subscriptions = append(out.Subscriptions, ss)
	}
	for _, u := range st.usage {
		out.Usage = append(out.Usage, UsageSnapshot{ID: u.ID, ImportID: u.ImportID, AccountID: u.AccountID, AccountNumber: u.AccountNumber, SubscriptionNumber: u.SubscriptionNumber, ChargeNumber: u.ChargeNumber,
			UOM: u.UOM, Quantity: u.Quantity, StartDateTime: u.StartDateTime, UniqueKey: u.UniqueKey, Description: u.Description, CustomFields: maps.Clone(u.Custom),
			Status: firstNonEmpty(u.Status, "Pending")})
	}
	for _, id := range st.triggerOrder {
		t := st.triggers[id]
		out.EventTriggers = append(out.EventTriggers, EventTriggerSnapshot{ID: t.ID, Active: t.Active, BaseObject: t.BaseObject, Condition: t.Condition, EventType: t.Name})
	}
	for _, id := range st.notifOrder {
		n := st.notifs[id]
		ns := NotificationSnapshot{ID: n.ID, Name: n.Name, Active: n.Active, CalloutActive: n.CalloutActive, EventCategory: n.EventCategory, EventTypeName: n.EventTypeName,
			URL: n.BaseURL, HTTPMethod: n.HTTPMethod, Params: maps.Clone(n.Params), RequiredAuth: n.RequiredAuth}
		if n.Auth != nil {
			ns.Preemptive = n.Auth.Preemptive
		}
		out.NotificationDefinitions = append(out.NotificationDefinitions, ns)
	}
	s.mu.Unlock()
	out.Callouts = s.Callouts()
	return out
}
