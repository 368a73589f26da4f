package zuora

import (
	"context"
	"fmt"
	"net/http"
)

// Contact is a bill-to / sold-to contact (§5). Orders' newAccount contacts
// spell the postal code postalCode, the accounts API zipCode; CreateOrder
// moves ZipCode to PostalCode for you.
type Contact struct {
	ID            string         `json:"id,omitempty"`
	FirstName     string         `json:"firstName,omitempty"`
	LastName      string         `json:"lastName,omitempty"`
	Nickname      string         `json:"nickname,omitempty"`
	Address1      string         `json:"address1,omitempty"`
	Address2      string         `json:"address2,omitempty"`
	City          string         `json:"city,omitempty"`
	State         string         `json:"state,omitempty"`
	County        string         `json:"county,omitempty"`
	ZipCode       string         `json:"zipCode,omitempty"`
	PostalCode    string         `json:"postalCode,omitempty"`
	Country       string         `json:"country,omitempty"`
	WorkEmail     string         `json:"workEmail,omitempty"`
	PersonalEmail string         `json:"personalEmail,omitempty"`
	WorkPhone     string         `json:"workPhone,omitempty"`
	MobilePhone   string         `json:"mobilePhone,omitempty"`
	TaxRegion     string         `json:"taxRegion,omitempty"`
	CustomFields  map[string]any `json:"-"`
}

type contactAlias Contact

// MarshalJSON adds the custom fields at the top level.
func (p Contact) MarshalJSON() ([]byte, error) {
	return marshalWithCustom(contactAlias(p), p.CustomFields)
}

// UnmarshalJSON collects the custom fields.
func (p *Contact) UnmarshalJSON(b []byte) error {
	var a contactAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = Contact(a)
	p.CustomFields = cf
	return nil
}

func (p *Contact) forWrite(postal bool) *Contact {
	if p == nil {
		return nil
	}
	cp := *p
	cp.ID = ""
	if postal {
		if cp.PostalCode == "" {
			cp.PostalCode = cp.ZipCode
		}
		cp.ZipCode = ""
	} else {
		if cp.ZipCode == "" {
			cp.ZipCode = cp.PostalCode
		}
		cp.PostalCode = ""
	}
	return &cp
}

// AccountCreate is the body of POST /v1/accounts (§5). Prefer creating the
// account with its first subscription in one order (OrderNewAccount).
type AccountCreate struct {
	AccountNumber             string   `json:"accountNumber,omitempty"`
	Name                      string   `json:"name"`
	Currency                  string   `json:"currency"`
	BillCycleDay              *int     `json:"billCycleDay,omitempty"`
	BillToContact             Contact  `json:"billToContact"`
	SoldToContact             *Contact `json:"soldToContact,omitempty"`
	CrmID                     string   `json:"crmId,omitempty"`
	PaymentTerm               string   `json:"paymentTerm,omitempty"`
	AutoPay                   *bool    `json:"autoPay,omitempty"`
	InvoiceDeliveryPrefsEmail *bool    `json:"invoiceDeliveryPrefsEmail,omitempty"`
	Batch                     string   `json:"batch,omitempty"`
	Notes                     string   `json:"notes,omitempty"`
	// CustomFields are the account's *__c fields (top-level keys).
	CustomFields map[string]any `json:"-"`
}

type accountCreateAlias AccountCreate

// MarshalJSON adds the custom fields at the top level.
func (a AccountCreate) MarshalJSON() ([]byte, error) {
	return marshalWithCustom(accountCreateAlias(a), a.CustomFields)
}

// AccountCreateResult is what POST /v1/accounts returns.
type AccountCreateResult struct {
	AccountID          string `json:"accountId"`
	AccountNumber      string `json:"accountNumber"`
	BillToContactID    string `json:"billToContactId"`
	SoldToContactID    string `json:"soldToContactId"`
	SubscriptionID     string `json:"subscriptionId"`
	SubscriptionNumber string `json:"subscriptionNumber"`
}

// AccountUpdate is the body of PUT /v1/accounts/{account-key}: a partial
// update, empty fields are left unchanged.
type AccountUpdate struct {
	Name                      string         `json:"name,omitempty"`
	CrmID                     string         `json:"crmId,omitempty"`
	Notes                     string         `json:"notes,omitempty"`
	Batch                     string         `json:"batch,omitempty"`
	BillCycleDay              *int           `json:"billCycleDay,omitempty"`
	PaymentTerm               string         `json:"paymentTerm,omitempty"`
	AutoPay                   *bool          `json:"autoPay,omitempty"`
	InvoiceDeliveryPrefsEmail *bool          `json:"invoiceDeliveryPrefsEmail,omitempty"`
	BillToContact             *Contact       `json:"billToContact,omitempty"`
	SoldToContact             *Contact       `json:"soldToContact,omitempty"`
	CustomFields              map[string]any `json:"-"`
}

type accountUpdateAlias AccountUpdate

// MarshalJSON adds the custom fields at the top level.
func (a AccountUpdate) MarshalJSON() ([]byte, error) {
	return marshalWithCustom(accountUpdateAlias(a), a.CustomFields)
}

// Account is GET /v1/accounts/{account-key}.
type Account struct {
	BasicInfo         AccountBasicInfo         `json:"basicInfo"`
	BillingAndPayment AccountBillingAndPayment `json:"billingAndPayment"`
	BillToContact     *Contact                 `json:"billToContact"`
	SoldToContact     *Contact                 `json:"soldToContact"`
	Metrics           *AccountMetrics          `json:"metrics"`
}

// AccountBasicInfo holds the account's identity; its custom fields live here
// on reads (§0).
type AccountBasicInfo struct {
	ID            string         `json:"id"`
	AccountNumber string         `json:"accountNumber"`
	Name          string         `json:"name"`
	Status        string         `json:"status"`
	CrmID         string         `json:"crmId"`
	Batch         string         `json:"batch"`
	Notes         string         `json:"notes"`
	ParentID      string         `json:"parentId"`
	CustomFields  map[string]any `json:"-"`
}

type accountBasicInfoAlias AccountBasicInfo

// UnmarshalJSON collects the custom fields.
func (p *AccountBasicInfo) UnmarshalJSON(b []byte) error {
	var a accountBasicInfoAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = AccountBasicInfo(a)
	p.CustomFields = cf
	return nil
}

// AccountBillingAndPayment is the billing part of an account read.
type AccountBillingAndPayment struct {
	BillCycleDay           Number `json:"billCycleDay"`
	Currency               string `json:"currency"`
	PaymentTerm            string `json:"paymentTerm"`
	AutoPay                bool   `json:"autoPay"`
	DefaultPaymentMethodID string `json:"defaultPaymentMethodId"`
}

// AccountMetrics are the account's balances.
type AccountMetrics struct {
	Balance             Number `json:"balance"`
	TotalInvoiceBalance Number `json:"totalInvoiceBalance"`
	CreditBalance       Number `json:"creditBalance"`
	ContractedMrr       Number `json:"contractedMrr"`
}

// CreateAccount creates an account (POST /v1/accounts).
func (c *Client) CreateAccount(ctx context.Context, idempotencyKey string, a AccountCreate) (AccountCreateResult, error) {
	const op = "POST /v1/accounts"
	var res AccountCreateResult
	if idempotencyKey == "" {
		return res, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	a.BillToContact = *a.BillToContact.forWrite(false)
	a.SoldToContact = a.SoldToContact.forWrite(false)
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/accounts", body: a, idemKey: idempotencyKey}, &res)
	if err == nil && res.AccountID == "" && res.AccountNumber == "" {
		err = &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "create account answered without an account id or number", RequestID: resp.requestID}
	}
	return res, err
}

// GetAccount reads an account by id or number (GET /v1/accounts/{account-key}).
func (c *Client) GetAccount(ctx context.Context, key string) (Account, error) {
	var a Account
	if key == "" {
		return a, fmt.Errorf("zuora GET /v1/accounts/{account-key}: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/accounts/{account-key}", method: http.MethodGet, path: "/v1/accounts/" + seg(key)}, &a)
	return a, err
}

// UpdateAccount updates an account (PUT /v1/accounts/{account-key}), e.g.
// to write billsync's id into its custom field.
func (c *Client) UpdateAccount(ctx context.Context, key string, u AccountUpdate) error {
	if key == "" {
		return fmt.Errorf("zuora PUT /v1/accounts/{account-key}: key is required")
	}
	u.BillToContact = u.BillToContact.forWrite(false)
	u.SoldToContact = u.SoldToContact.forWrite(false)
	_, err := c.doJSON(ctx, call{op: "PUT /v1/accounts/{account-key}", method: http.MethodPut, path: "/v1/accounts/" + seg(key), body: u}, nil)
	return err
}
