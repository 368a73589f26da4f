package zuora

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Subscription is GET /v1/subscriptions/{subscription-key} (§6b). Its id
// changes with every new version; SubscriptionNumber is the stable key.
type Subscription struct {
	ID                        string `json:"id"`
	SubscriptionNumber        string `json:"subscriptionNumber"`
	Version                   int    `json:"version"`
	Status                    string `json:"status"`
	AccountID                 string `json:"accountId"`
	AccountNumber             string `json:"accountNumber"`
	AccountName               string `json:"accountName"`
	InvoiceOwnerAccountNumber string `json:"invoiceOwnerAccountNumber"`
	TermType                  string `json:"termType"`
	InitialTerm               int    `json:"initialTerm"`
	InitialTermPeriodType     string `json:"initialTermPeriodType"`
	CurrentTerm               int    `json:"currentTerm"`
	CurrentTermPeriodType     string `json:"currentTermPeriodType"`
	RenewalTerm               int    `json:"renewalTerm"`
	RenewalTermPeriodType     string `json:"renewalTermPeriodType"`
	RenewalSetting            string `json:"renewalSetting"`
	AutoRenew                 bool   `json:"autoRenew"`
	ContractEffectiveDate     string `json:"contractEffectiveDate"`
	ServiceActivationDate     string `json:"serviceActivationDate"`
	CustomerAcceptanceDate    string `json:"customerAcceptanceDate"`
	SubscriptionStartDate     string `json:"subscriptionStartDate"`
	SubscriptionEndDate       string `json:"subscriptionEndDate"`
	TermStartDate             string `json:"termStartDate"`
	TermEndDate               string `json:"termEndDate"`
	CancelReason              string `json:"cancelReason"`
	OrderNumber               string `json:"orderNumber"`
	Currency                  string `json:"currency"`
	Notes                     string `json:"notes"`
	ScheduledCancelDate       string `json:"scheduledCancelDate"`
	// No scheduledSuspendDate/scheduledResumeDate: Zuora fills them from
	// TermsAndConditions scheduled actions, not from Suspend and Resume
	// order actions; billsync reads a suspension from status and
	// statusHistory (Suspension).
	ContractedMrr        Number                 `json:"contractedMrr"`
	TotalContractedValue Number                 `json:"totalContractedValue"`
	StatusHistory        []StatusPeriod         `json:"statusHistory"`
	RatePlans            []SubscriptionRatePlan `json:"ratePlans"`
	CustomFields         map[string]any         `json:"-"`
}

type subscriptionAlias Subscription

// UnmarshalJSON collects the custom fields.
func (p *Subscription) UnmarshalJSON(b []byte) error {
	var a subscriptionAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = Subscription(a)
	p.CustomFields = cf
	return nil
}

// Suspension is the latest suspension in the status history: the date it
// takes effect and the date it ends (resume), "" when there is none or it
// is open. The status follows the latest order action (Suspended from a
// Suspend order on, its date may be ahead); the history says when.
func (s Subscription) Suspension() (suspendOn, resumeOn string) {
	for i := len(s.StatusHistory) - 1; i >= 0; i-- {
		h := s.StatusHistory[i]
		switch h.Status {
		case "Suspended":
			return h.StartDate, h.EndDate
		case "Cancelled", "Expired":
			return "", ""
		}
	}
	return "", ""
}

// StatusPeriod is one entry of a subscription's status history.
type StatusPeriod struct {
	StartDate string `json:"startDate"`
	EndDate   string `json:"endDate"`
	Status    string `json:"status"`
}

// SubscriptionRatePlan is a rate plan on a subscription.
type SubscriptionRatePlan struct {
	ID                    string               `json:"id"`
	ProductID             string               `json:"productId"`
	ProductName           string               `json:"productName"`
	ProductSku            string               `json:"productSku"`
	ProductRatePlanID     string               `json:"productRatePlanId"`
	ProductRatePlanNumber string               `json:"productRatePlanNumber"`
	RatePlanName          string               `json:"ratePlanName"`
	LastChangeType        string               `json:"lastChangeType"`
	RatePlanCharges       []SubscriptionCharge `json:"ratePlanCharges"`
	CustomFields          map[string]any       `json:"-"`
}

type subscriptionRatePlanAlias SubscriptionRatePlan

// UnmarshalJSON collects the custom fields.
func (p *SubscriptionRatePlan) UnmarshalJSON(b []byte) error {
	var a subscriptionRatePlanAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = SubscriptionRatePlan(a)
	p.CustomFields = cf
	return nil
}

// SubscriptionCharge is a charge on a subscription rate plan. Number (the
// charge number, REST field "number") is stable across segments; ID is not.
type SubscriptionCharge struct {
	ID                      string         `json:"id"`
	OriginalChargeID        string         `json:"originalChargeId"`
	Number                  string         `json:"number"`
	Name                    string         `json:"name"`
	Type                    string         `json:"type"`
	Model                   string         `json:"model"`
	ProductRatePlanChargeID string         `json:"productRatePlanChargeId"`
	Segment                 int            `json:"segment"`
	Version                 int            `json:"version"`
	EffectiveStartDate      string         `json:"effectiveStartDate"`
	EffectiveEndDate        string         `json:"effectiveEndDate"`
	TriggerEvent            string         `json:"triggerEvent"`
	ChargedThroughDate      string         `json:"chargedThroughDate"`
	Quantity                Number         `json:"quantity"`
	Price                   Number         `json:"price"`
	Tiers                   []CatalogTier  `json:"tiers"`
	UOM                     string         `json:"uom"`
	Currency                string         `json:"currency"`
	BillingPeriod           string         `json:"billingPeriod"`
	BillingTiming           string         `json:"billingTiming"`
	ListPriceBase           string         `json:"listPriceBase"`
	Mrr                     Number         `json:"mrr"`
	Tcv                     Number         `json:"tcv"`
	CustomFields            map[string]any `json:"-"`
}

type subscriptionChargeAlias SubscriptionCharge

// UnmarshalJSON collects the custom fields.
func (p *SubscriptionCharge) UnmarshalJSON(b []byte) error {
	var a subscriptionChargeAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = SubscriptionCharge(a)
	p.CustomFields = cf
	return nil
}

// GetSubscription reads the latest version of a subscription by number or
// id (GET /v1/subscriptions/{subscription-key}).
func (c *Client) GetSubscription(ctx context.Context, key string) (Subscription, error) {
	var s Subscription
	if key == "" {
		return s, fmt.Errorf("zuora GET /v1/subscriptions/{subscription-key}: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/subscriptions/{subscription-key}", method: http.MethodGet,
		path: "/v1/subscriptions/" + seg(key)}, &s)
	return s, err
}

// ListSubscriptionsByAccount iterates every subscription of an account
// (GET /v1/subscriptions/accounts/{account-key}).
func (c *Client) ListSubscriptionsByAccount(ctx context.Context, accountKey string) iter.Seq2[Subscription, error] {
	const op = "GET /v1/subscriptions/accounts/{account-key}"
	if accountKey == "" {
		return func(yield func(Subscription, error) bool) {
			yield(Subscription{}, fmt.Errorf("zuora %s: account key is required", op))
		}
	}
	q := url.Values{"page": {"1"}, "pageSize": {strconv.Itoa(classicPageSize)}}
	return listNextPage(ctx, c, op, "/v1/subscriptions/accounts/"+seg(accountKey), q,
		func(b []byte) ([]Subscription, string, error) {
			var page struct {
				Subscriptions []Subscription `json:"subscriptions"`
				NextPage      string         `json:"nextPage"`
			}
			err := json.Unmarshal(b, &page)
			return page.Subscriptions, page.NextPage, err
		})
}

// UpdateSubscriptionCustomFields changes the custom fields of a
// subscription's latest version in place (PUT
// /v1/subscriptions/{subscriptionNumber}/customFields, no new version).
func (c *Client) UpdateSubscriptionCustomFields(ctx context.Context, number string, fields map[string]any) error {
	if number == "" {
		return fmt.Errorf("zuora PUT /v1/subscriptions/{subscriptionNumber}/customFields: number is required")
	}
	_, err := c.doJSON(ctx, call{op: "PUT /v1/subscriptions/{subscriptionNumber}/customFields", method: http.MethodPut,
		path: "/v1/subscriptions/" + seg(number) + "/customFields", body: map[string]any{"customFields": fields}}, nil)
	return err
}
