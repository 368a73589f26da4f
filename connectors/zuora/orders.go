package zuora

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Order action types (§6a).
const (
	OrderActionCreateSubscription = "CreateSubscription"
	OrderActionAddProduct         = "AddProduct"
	OrderActionUpdateProduct      = "UpdateProduct"
	OrderActionRemoveProduct      = "RemoveProduct"
	OrderActionCancelSubscription = "CancelSubscription"
	OrderActionRenewSubscription  = "RenewSubscription"
	OrderActionSuspend            = "Suspend"
	OrderActionResume             = "Resume"
	OrderActionTermsAndConditions = "TermsAndConditions"
)

// Cancellation, suspend and resume policies (§6a).
const (
	CancelEndOfCurrentTerm       = "EndOfCurrentTerm"
	CancelEndOfLastInvoicePeriod = "EndOfLastInvoicePeriod"
	CancelSpecificDate           = "SpecificDate"

	SuspendToday                  = "Today"
	SuspendEndOfLastInvoicePeriod = "EndOfLastInvoicePeriod"
	SuspendFixedPeriodsFromToday  = "FixedPeriodsFromToday"
	SuspendSpecificDate           = "SpecificDate"

	ResumeToday                       = "Today"
	ResumeFixedPeriodsFromSuspendDate = "FixedPeriodsFromSuspendDate"
	ResumeFixedPeriodsFromToday       = "FixedPeriodsFromToday"
	ResumeSpecificDate                = "SpecificDate"
	ResumeSuspendDate                 = "SuspendDate"

	TermTypeTermed    = "TERMED"
	TermTypeEvergreen = "EVERGREEN"

	RenewWithSpecificTerm = "RENEW_WITH_SPECIFIC_TERM"
	RenewToEvergreen      = "RENEW_TO_EVERGREEN"
)

// Order is the body of POST /v1/orders (§6a). Set exactly one of
// ExistingAccountNumber and NewAccount.
type Order struct {
	OrderDate             string             `json:"orderDate"` // YYYY-MM-DD
	OrderNumber           string             `json:"orderNumber,omitempty"`
	ExistingAccountNumber string             `json:"existingAccountNumber,omitempty"`
	NewAccount            *OrderNewAccount   `json:"newAccount,omitempty"`
	Description           string             `json:"description,omitempty"`
	Category              string             `json:"category,omitempty"`
	CustomFields          map[string]any     `json:"customFields,omitempty"`
	ProcessingOptions     *ProcessingOptions `json:"processingOptions,omitempty"`
	// Status "Scheduled" with SchedulingOptions saves the order to run on
	// a date (scheduled.go); empty runs it now.
	Status            string              `json:"status,omitempty"`
	SchedulingOptions *SchedulingOptions  `json:"schedulingOptions,omitempty"`
	Subscriptions     []OrderSubscription `json:"subscriptions,omitempty"`
}

// OrderNewAccount creates the account in the same call as its first
// subscription (atomic, §6a). Custom fields go in CustomFields.
type OrderNewAccount struct {
	AccountNumber             string         `json:"accountNumber,omitempty"`
	Name                      string         `json:"name"`
	Currency                  string         `json:"currency"`
	BillCycleDay              int            `json:"billCycleDay"`
	BillToContact             Contact        `json:"billToContact"`
	SoldToContact             *Contact       `json:"soldToContact,omitempty"`
	CrmID                     string         `json:"crmId,omitempty"`
	PaymentTerm               string         `json:"paymentTerm,omitempty"`
	AutoPay                   *bool          `json:"autoPay,omitempty"`
	InvoiceDeliveryPrefsEmail *bool          `json:"invoiceDeliveryPrefsEmail,omitempty"`
	Batch                     string         `json:"batch,omitempty"`
	Notes                     string         `json:"notes,omitempty"`
	CustomFields              map[string]any `json:"customFields,omitempty"`
}

// ProcessingOptions asks Zuora to bill (and collect) as part of the order.
type ProcessingOptions struct {
	RunBilling     *bool `json:"runBilling,omitempty"`
	CollectPayment *bool `json:"collectPayment,omitempty"`
	// WriteOff writes off the unpaid invoices of the subscription the
	// order cancels (credit memos with reason code Write-off). Zuora's
	// tutorial sets runBilling and collectPayment with it (WriteOffOptions).
	WriteOff *bool `json:"writeOff,omitempty"`
}

// WriteOffOptions are the processing options of a cancellation that writes
// off the unpaid invoices: no final invoice, no payment, write off
// (docs.zuora.com "Cancel a subscription and write off all unpaid invoices
// using the REST API").
func WriteOffOptions() *ProcessingOptions {
	f, t := false, true
	return &ProcessingOptions{RunBilling: &f, CollectPayment: &f, WriteOff: &t}
}

// WriteOffResult is one invoice an order wrote off.
type WriteOffResult struct {
	InvoiceNumber            string  `json:"invoiceNumber"`
	Amount                   float64 `json:"amount"`
	Status                   string  `json:"status"` // Success, Failed
	FailedReason             string  `json:"failedReason"`
	WriteOffCreditMemoNumber string  `json:"writeOffCreditMemoNumber"`
}

// OrderSubscription groups the actions on one subscription. Leave
// SubscriptionNumber empty for a CreateSubscription action (or set it in
// CreateSubscription.SubscriptionNumber to choose the number).
type OrderSubscription struct {
	SubscriptionNumber string         `json:"subscriptionNumber,omitempty"`
	Notes              string         `json:"notes,omitempty"`
	CustomFields       map[string]any `json:"customFields,omitempty"`
	OrderActions       []OrderAction  `json:"orderActions"`
}

// OrderAction is one order action; build it with the *Action constructors.
type OrderAction struct {
	Type               string              `json:"type"`
	TriggerDates       []TriggerDate       `json:"triggerDates,omitempty"`
	CustomFields       map[string]any      `json:"customFields,omitempty"`
	CreateSubscription *CreateSubscription `json:"createSubscription,omitempty"`
	AddProduct         *RatePlanOverride   `json:"addProduct,omitempty"`
	UpdateProduct      *RatePlanUpdate     `json:"updateProduct,omitempty"`
	RemoveProduct      *RemoveProduct      `json:"removeProduct,omitempty"`
	CancelSubscription *CancelSubscription `json:"cancelSubscription,omitempty"`
	RenewSubscription  *RenewSubscription  `json:"renewSubscription,omitempty"`
	Suspend            *Suspend            `json:"suspend,omitempty"`
	Resume             *Resume             `json:"resume,omitempty"`
	TermsAndConditions *TermsAndConditions `json:"termsAndConditions,omitempty"`
}

// TermsAndConditions is the TermsAndConditions payload
// (CreateOrderTermsAndConditions): auto-renew, renewal setting and terms,
// and lastTerm, which changes the current term.
type TermsAndConditions struct {
	AutoRenew      *bool         `json:"autoRenew,omitempty"`
	RenewalSetting string        `json:"renewalSetting,omitempty"`
	RenewalTerms   []RenewalTerm `json:"renewalTerms,omitempty"`
	LastTerm       *LastTerm     `json:"lastTerm,omitempty"`
}

// LastTerm is the subscription's current term in a TermsAndConditions
// action: TERMED with a period, or EVERGREEN.
type LastTerm struct {
	TermType   string `json:"termType"`
	Period     int    `json:"period,omitempty"`
	PeriodType string `json:"periodType,omitempty"`
	StartDate  string `json:"startDate,omitempty"`
}

// TriggerDate sets when an action takes effect for one trigger event.
type TriggerDate struct {
	Name        string `json:"name"`        // ContractEffective, ServiceActivation, CustomerAcceptance
	TriggerDate string `json:"triggerDate"` // YYYY-MM-DD
}

// CreateSubscription is the payload of a CreateSubscription action.
type CreateSubscription struct {
	SubscriptionNumber   string             `json:"subscriptionNumber,omitempty"`
	Terms                SubscriptionTerms  `json:"terms"`
	SubscribeToRatePlans []RatePlanOverride `json:"subscribeToRatePlans,omitempty"`
	InvoiceSeparately    *bool              `json:"invoiceSeparately,omitempty"`
	Notes                string             `json:"notes,omitempty"`
	PaymentTerm          string             `json:"paymentTerm,omitempty"`
}

// SubscriptionTerms are a new subscription's terms.
type SubscriptionTerms struct {
	InitialTerm    InitialTerm   `json:"initialTerm"`
	RenewalSetting string        `json:"renewalSetting,omitempty"`
	RenewalTerms   []RenewalTerm `json:"renewalTerms,omitempty"`
	AutoRenew      *bool         `json:"autoRenew,omitempty"`
}

// InitialTerm is the first term (TermType TERMED or EVERGREEN).
type InitialTerm struct {
	TermType   string `json:"termType"`
	Period     int    `json:"period,omitempty"`
	PeriodType string `json:"periodType,omitempty"` // Month, Year, Day, Week
	StartDate  string `json:"startDate,omitempty"`
}

// RenewalTerm is one renewal term.
type RenewalTerm struct {
	Period     int    `json:"period"`
	PeriodType string `json:"periodType"`
}

// RatePlanOverride subscribes to a product rate plan (CreateSubscription's
// subscribeToRatePlans items and the AddProduct payload).
type RatePlanOverride struct {
	ProductRatePlanID     string           `json:"productRatePlanId,omitempty"`
	ProductRatePlanNumber string           `json:"productRatePlanNumber,omitempty"`
	UniqueToken           string           `json:"uniqueToken,omitempty"`
	ChargeOverrides       []ChargeOverride `json:"chargeOverrides,omitempty"`
	CustomFields          map[string]any   `json:"customFields,omitempty"`
}

// ChargeOverride overrides one charge of the subscribed plan (price,
// quantity, start).
type ChargeOverride struct {
	ProductRatePlanChargeID string         `json:"productRatePlanChargeId"`
	UniqueToken             string         `json:"uniqueToken,omitempty"`
	Pricing                 *Pricing       `json:"pricing,omitempty"`
	StartDate               *TriggerParams `json:"startDate,omitempty"`
	CustomFields            map[string]any `json:"customFields,omitempty"`
}

// Pricing holds a charge's price override; set the member matching the
// charge's type and model. In ChargeUpdate only CreateOrderPricingUpdate's
// members are valid: no one-time member.
type Pricing struct {
	RecurringFlatFee *PriceOverride `json:"recurringFlatFee,omitempty"`
	RecurringPerUnit *PriceOverride `json:"recurringPerUnit,omitempty"`
	RecurringTiered  *PriceOverride `json:"recurringTiered,omitempty"`
	RecurringVolume  *PriceOverride `json:"recurringVolume,omitempty"`
	UsageFlatFee     *PriceOverride `json:"usageFlatFee,omitempty"`
	UsagePerUnit     *PriceOverride `json:"usagePerUnit,omitempty"`
	UsageTiered      *PriceOverride `json:"usageTiered,omitempty"`
	UsageVolume      *PriceOverride `json:"usageVolume,omitempty"`
	OneTimeFlatFee   *PriceOverride `json:"oneTimeFlatFee,omitempty"`
	OneTimePerUnit   *PriceOverride `json:"oneTimePerUnit,omitempty"`
	OneTimeTiered    *PriceOverride `json:"oneTimeTiered,omitempty"`
	OneTimeVolume    *PriceOverride `json:"oneTimeVolume,omitempty"`
}

// PriceOverride is a list price, a quantity and/or tiers.
type PriceOverride struct {
	ListPrice Number      `json:"listPrice,omitempty"`
	Quantity  Number      `json:"quantity,omitempty"`
	Tiers     []OrderTier `json:"tiers,omitempty"`
}

// OrderTier is one tier of a tiered/volume price override (REST spelling:
// priceFormat FlatFee / PerUnit).
type OrderTier struct {
	Tier         int    `json:"tier"`
	StartingUnit Number `json:"startingUnit"`
	EndingUnit   Number `json:"endingUnit,omitempty"`
	Price        Number `json:"price"`
	PriceFormat  string `json:"priceFormat"`
}

// TriggerParams sets when a charge (or a charge update) starts.
type TriggerParams struct {
	TriggerEvent        string `json:"triggerEvent,omitempty"` // ContractEffective, ServiceActivation, CustomerAcceptance, SpecificDate
	SpecificTriggerDate string `json:"specificTriggerDate,omitempty"`
}

// RatePlanUpdate is the UpdateProduct payload: identify the subscription's
// rate plan (RatePlanID, or SubscriptionRatePlanNumber, ProductRatePlanNumber
// or UniqueToken) and list the charge updates.
type RatePlanUpdate struct {
	RatePlanID                 string         `json:"ratePlanId,omitempty"`
	SubscriptionRatePlanNumber string         `json:"subscriptionRatePlanNumber,omitempty"`
	ProductRatePlanNumber      string         `json:"productRatePlanNumber,omitempty"`
	UniqueToken                string         `json:"uniqueToken,omitempty"`
	ChargeUpdates              []ChargeUpdate `json:"chargeUpdates,omitempty"`
	SpecificUpdateDate         string         `json:"specificUpdateDate,omitempty"`
	CustomFields               map[string]any `json:"customFields,omitempty"`
}

// ChargeUpdate changes one subscription charge (identified by its stable
// charge number), e.g. its quantity.
type ChargeUpdate struct {
	ChargeNumber  string         `json:"chargeNumber,omitempty"`
	UniqueToken   string         `json:"uniqueToken,omitempty"`
	Pricing       *Pricing       `json:"pricing,omitempty"`
	EffectiveDate *TriggerParams `json:"effectiveDate,omitempty"`
	CustomFields  map[string]any `json:"customFields,omitempty"`
}

// RemoveProduct is the RemoveProduct payload.
type RemoveProduct struct {
	RatePlanID                 string         `json:"ratePlanId,omitempty"`
	SubscriptionRatePlanNumber string         `json:"subscriptionRatePlanNumber,omitempty"`
	ProductRatePlanNumber      string         `json:"productRatePlanNumber,omitempty"`
	UniqueToken                string         `json:"uniqueToken,omitempty"`
	CustomFields               map[string]any `json:"customFields,omitempty"`
}

// CancelSubscription is the CancelSubscription payload.
type CancelSubscription struct {
	CancellationPolicy        string `json:"cancellationPolicy"`
	CancellationEffectiveDate string `json:"cancellationEffectiveDate,omitempty"` // with SpecificDate
}

// RenewSubscription is the RenewSubscription payload (overrides only).
type RenewSubscription struct {
	PaymentTerm string `json:"paymentTerm,omitempty"`
}

// Suspend is the Suspend payload.
type Suspend struct {
	SuspendPolicy       string `json:"suspendPolicy"`
	SuspendPeriods      int    `json:"suspendPeriods,omitempty"`
	SuspendPeriodsType  string `json:"suspendPeriodsType,omitempty"`
	SuspendSpecificDate string `json:"suspendSpecificDate,omitempty"`
}

// Resume is the Resume payload.
type Resume struct {
	ResumePolicy       string `json:"resumePolicy"`
	ResumePeriods      int    `json:"resumePeriods,omitempty"`
	ResumePeriodsType  string `json:"resumePeriodsType,omitempty"`
	ResumeSpecificDate string `json:"resumeSpecificDate,omitempty"`
	ExtendsTerm        *bool  `json:"extendsTerm,omitempty"`
}

// CreateSubscriptionAction builds a CreateSubscription action.
func CreateSubscriptionAction(cs CreateSubscription, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionCreateSubscription, CreateSubscription: &cs, TriggerDates: triggers}
}

// AddProductAction builds an AddProduct action.
func AddProductAction(rp RatePlanOverride, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionAddProduct, AddProduct: &rp, TriggerDates: triggers}
}

// UpdateProductAction builds an UpdateProduct action.
func UpdateProductAction(u RatePlanUpdate, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionUpdateProduct, UpdateProduct: &u, TriggerDates: triggers}
}

// RemoveProductAction builds a RemoveProduct action.
func RemoveProductAction(r RemoveProduct, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionRemoveProduct, RemoveProduct: &r, TriggerDates: triggers}
}

// CancelSubscriptionAction builds a CancelSubscription action.
func CancelSubscriptionAction(policy, effectiveDate string, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionCancelSubscription, TriggerDates: triggers,
		CancelSubscription: &CancelSubscription{CancellationPolicy: policy, CancellationEffectiveDate: effectiveDate}}
}

// RenewSubscriptionAction builds a RenewSubscription action.
func RenewSubscriptionAction(triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionRenewSubscription, RenewSubscription: &RenewSubscription{}, TriggerDates: triggers}
}

// SuspendAction builds a Suspend action.
func SuspendAction(s Suspend, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionSuspend, Suspend: &s, TriggerDates: triggers}
}

// ResumeAction builds a Resume action.
func ResumeAction(r Resume, triggers ...TriggerDate) OrderAction {
	return OrderAction{Type: OrderActionResume, Resume: &r, TriggerDates: triggers}
}

// OrderResult is what POST /v1/orders returns (with returnIds=true).
type OrderResult struct {
	OrderNumber   string                    `json:"orderNumber"`
	OrderID       string                    `json:"orderId"`
	AccountNumber string                    `json:"accountNumber"`
	AccountID     string                    `json:"accountId"`
	Status        string                    `json:"status"`
	Subscriptions []OrderSubscriptionResult `json:"subscriptions"`
	// SubscriptionNumbers is the pre-223.0 shape; CreateOrder copies it into
	// Subscriptions when that is empty.
	SubscriptionNumbers []string         `json:"subscriptionNumbers"`
	SubscriptionIDs     []string         `json:"subscriptionIds"`
	InvoiceNumbers      []string         `json:"invoiceNumbers"`
	WriteOff            []WriteOffResult `json:"writeOff"`
}

// OrderSubscriptionResult is one subscription touched by an order.
type OrderSubscriptionResult struct {
	SubscriptionNumber string `json:"subscriptionNumber"`
	SubscriptionID     string `json:"subscriptionId"`
	Status             string `json:"status"`
}

// Validate checks the order's shape before it is sent.
func (o Order) Validate() error {
	var errs []error
	if o.OrderDate == "" {
		errs = append(errs, errors.New("orderDate is required"))
	}
	if (o.ExistingAccountNumber == "") == (o.NewAccount == nil) {
		errs = append(errs, errors.New("exactly one of existingAccountNumber and newAccount is required"))
	}
	if len(o.Subscriptions) == 0 || len(o.Subscriptions) > 50 {
		errs = append(errs, fmt.Errorf("%d subscriptions (1..50 allowed)", len(o.Subscriptions)))
	}
	actions := 0
	for i, s := range o.Subscriptions {
		if len(s.OrderActions) == 0 || len(s.OrderActions) > 50 {
			errs = append(errs, fmt.Errorf("subscriptions[%d]: %d order actions (1..50 allowed)", i, len(s.OrderActions)))
		}
		actions += len(s.OrderActions)
		for j, a := range s.OrderActions {
			if err := a.validate(); err != nil {
				errs = append(errs, fmt.Errorf("subscriptions[%d].orderActions[%d]: %w", i, j, err))
			}
			if a.Type != OrderActionCreateSubscription && s.SubscriptionNumber == "" {
				errs = append(errs, fmt.Errorf("subscriptions[%d]: subscriptionNumber is required for %s", i, a.Type))
			}
		}
	}
	if actions > 50 {
		errs = append(errs, fmt.Errorf("%d order actions in one order (≤50)", actions))
	}
	return errors.Join(errs...)
}

func (a OrderAction) validate() error {
	payloads := map[string]bool{
		OrderActionCreateSubscription: a.CreateSubscription != nil,
		OrderActionAddProduct:         a.AddProduct != nil,
		OrderActionUpdateProduct:      a.UpdateProduct != nil,
		OrderActionRemoveProduct:      a.RemoveProduct != nil,
		OrderActionCancelSubscription: a.CancelSubscription != nil,
		OrderActionRenewSubscription:  a.RenewSubscription != nil,
		OrderActionSuspend:            a.Suspend != nil,
		OrderActionResume:             a.Resume != nil,
		OrderActionTermsAndConditions: a.TermsAndConditions != nil,
	}
	set, known := payloads[a.Type]
	if !known {
		return fmt.Errorf("unsupported order action type %q", a.Type)
	}
	if !set {
		return fmt.Errorf("%s action without its payload", a.Type)
	}
	for typ, has := range payloads {
		if has && typ != a.Type {
			return fmt.Errorf("%s action carries a %s payload", a.Type, typ)
		}
	}
	return nil
}

// CreateOrder sends an order (POST /v1/orders?returnIds=true). idempotencyKey
// must be derived from the intent (IdempotencyKey): a retry after a lost
// response then returns the original order instead of a second one. A
// timed-out order may still complete in Zuora (§0): on IsAmbiguous, look the
// subscription up before sending a different order.
func (c *Client) CreateOrder(ctx context.Context, idempotencyKey string, o Order) (OrderResult, error) {
	const op = "POST /v1/orders"
	var res OrderResult
	if idempotencyKey == "" {
		return res, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	if err := o.Validate(); err != nil {
		return res, fmt.Errorf("zuora %s: invalid order: %w", op, err)
	}
	if o.NewAccount != nil {
		na := *o.NewAccount
		na.BillToContact = *na.BillToContact.forWrite(true)
		na.SoldToContact = na.SoldToContact.forWrite(true)
		o.NewAccount = &na
	}
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/orders",
		query: url.Values{"returnIds": {"true"}}, body: o, idemKey: idempotencyKey}, &res)
	if err != nil {
		return res, err
	}
	if len(res.Subscriptions) == 0 {
		for i, n := range res.SubscriptionNumbers {
			s := OrderSubscriptionResult{SubscriptionNumber: n}
			if i < len(res.SubscriptionIDs) {
				s.SubscriptionID = res.SubscriptionIDs[i]
			}
			res.Subscriptions = append(res.Subscriptions, s)
		}
	}
	if res.OrderNumber == "" {
		return res, &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "order answered without an orderNumber", RequestID: resp.requestID}
	}
	return res, nil
}
