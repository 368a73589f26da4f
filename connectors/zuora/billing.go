package zuora

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Invoices, payments and payment methods (read only): billsync reads them
// when a callout says one changed (the callout carries ids only).

// Invoice is an invoice as GET /v1/invoices/{invoiceKey} and Object Query
// answer it. Zuora has no "Paid" status: a paid invoice is Posted with
// balance 0.
type Invoice struct {
	ID            string  `json:"id"`
	InvoiceNumber string  `json:"invoiceNumber"`
	AccountID     string  `json:"accountId"`
	InvoiceDate   string  `json:"invoiceDate"`
	DueDate       string  `json:"dueDate"`
	Amount        float64 `json:"amount"`
	Balance       float64 `json:"balance"`
	Currency      string  `json:"currency"`
	Status        string  `json:"status"` // Draft, Posted, Canceled, Error
	PostedDate    string  `json:"postedDate"`
	UpdatedDate   string  `json:"updatedDate"`
}

// Payment is a payment (GET /v1/payments/{paymentKey}; Object Query names
// the number paymentNumber).
type Payment struct {
	ID              string  `json:"id"`
	Number          string  `json:"number"`
	PaymentNumber   string  `json:"paymentNumber"`
	AccountID       string  `json:"accountId"`
	Amount          float64 `json:"amount"`
	Status          string  `json:"status"` // Processed, Error, …
	EffectiveDate   string  `json:"effectiveDate"`
	GatewayResponse string  `json:"gatewayResponse"`
	PaymentMethodID string  `json:"paymentMethodId"`
	CreatedDate     string  `json:"createdDate"`
}

// AccountPaymentMethods is GET /v1/accounts/{account-key}/payment-methods.
type AccountPaymentMethods struct {
	DefaultPaymentMethodID string `json:"defaultPaymentMethodId"`
	Methods                []struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		IsDefault bool   `json:"isDefault"`
		Status    string `json:"status"`
	} `json:"returnedPaymentMethodType"`
}

// GetInvoice reads an invoice by id or number.
func (c *Client) GetInvoice(ctx context.Context, key string) (Invoice, error) {
	var inv Invoice
	if key == "" {
		return inv, fmt.Errorf("zuora GET /v1/invoices/{invoiceKey}: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/invoices/{invoiceKey}", method: http.MethodGet, path: "/v1/invoices/" + seg(key)}, &inv)
	return inv, err
}

// GetPayment reads a payment by id or number.
func (c *Client) GetPayment(ctx context.Context, key string) (Payment, error) {
	var p Payment
	if key == "" {
		return p, fmt.Errorf("zuora GET /v1/payments/{paymentKey}: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/payments/{paymentKey}", method: http.MethodGet, path: "/v1/payments/" + seg(key)}, &p)
	return p, err
}

// GetAccountPaymentMethods reads an account's payment methods and its default.
func (c *Client) GetAccountPaymentMethods(ctx context.Context, accountKey string) (AccountPaymentMethods, error) {
	var out AccountPaymentMethods
	if accountKey == "" {
		return out, fmt.Errorf("zuora GET /v1/accounts/{account-key}/payment-methods: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/accounts/{account-key}/payment-methods", method: http.MethodGet,
		path: "/v1/accounts/" + seg(accountKey) + "/payment-methods"}, &out)
	return out, err
}

func accountQuery(accountID string) url.Values {
	return url.Values{"pageSize": {strconv.Itoa(objectQueryPageSize)}, "filter[]": {"accountid.EQ:" + accountID}}
}

// ListInvoicesByAccount iterates an account's invoices (Object Query).
func (c *Client) ListInvoicesByAccount(ctx context.Context, accountID string) iter.Seq2[Invoice, error] {
	return listCursor[Invoice](ctx, c, "GET /object-query/invoices", "/object-query/invoices", accountQuery(accountID))
}

// ListPaymentsByAccount iterates an account's payments (Object Query).
func (c *Client) ListPaymentsByAccount(ctx context.Context, accountID string) iter.Seq2[Payment, error] {
	return listCursor[Payment](ctx, c, "GET /object-query/payments", "/object-query/payments", accountQuery(accountID))
}

// InvoiceURL links to an invoice (by id) in Zuora's UI.
func (c *Client) InvoiceURL(id string) string { return c.uiLink("Invoice", id) }
