package zuora

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// OrderPreview is the body of POST /v1/orders/preview: an order that is
// priced, not made. A new customer's preview names the account's currency
// and bill cycle day in PreviewAccountInfo instead of an existing account.
type OrderPreview struct {
	OrderDate             string              `json:"orderDate"`
	ExistingAccountNumber string              `json:"existingAccountNumber,omitempty"`
	PreviewAccountInfo    *PreviewAccountInfo `json:"previewAccountInfo,omitempty"`
	PreviewOptions        PreviewOptions      `json:"previewOptions"`
	Subscriptions         []OrderSubscription `json:"subscriptions,omitempty"`
}

// PreviewAccountInfo is the account of a preview without one in Zuora.
type PreviewAccountInfo struct {
	Currency     string `json:"currency"`
	BillCycleDay int    `json:"billCycleDay"`
}

// PreviewOptions says what to preview and through when.
type PreviewOptions struct {
	PreviewThruType         string   `json:"previewThruType"` // SpecificDate, TermEnd, NumberOfPeriods
	PreviewTypes            []string `json:"previewTypes"`    // BillingDocs, ...
	SpecificPreviewThruDate string   `json:"specificPreviewThruDate,omitempty"`
	PreviewNumberOfPeriods  int      `json:"previewNumberOfPeriods,omitempty"`
}

// PreviewInvoice is one invoice a preview says Zuora would generate.
type PreviewInvoice struct {
	Amount       Number               `json:"amount"`
	TargetDate   string               `json:"targetDate"`
	InvoiceItems []PreviewInvoiceItem `json:"invoiceItems"`
}

// PreviewInvoiceItem is one line of a previewed invoice: a charge for a
// service period, or a discount (ProcessingType "Discount") applied to the
// charge AppliedToChargeNumber.
type PreviewInvoiceItem struct {
	ServiceStartDate        string `json:"serviceStartDate"`
	ServiceEndDate          string `json:"serviceEndDate"` // inclusive
	AmountWithoutTax        Number `json:"amountWithoutTax"`
	TaxAmount               Number `json:"taxAmount"`
	ChargeName              string `json:"chargeName"`
	ChargeNumber            string `json:"chargeNumber"`
	ProcessingType          string `json:"processingType"`
	ProductName             string `json:"productName"`
	ProductRatePlanChargeID string `json:"productRatePlanChargeId"`
	SubscriptionNumber      string `json:"subscriptionNumber"`
	AppliedToChargeNumber   string `json:"appliedToChargeNumber"`
	UnitPrice               Number `json:"unitPrice"`
	Quantity                Number `json:"quantity"`
	AdditionalInfo          *struct {
		Quantity Number `json:"quantity"`
	} `json:"additionalInfo"`
	// DiscountDetails (subscription previews) names the discounts applied
	// to a charge item.
	DiscountDetails []struct {
		DiscountChargeNumber string `json:"discountChargeNumber"`
	} `json:"discountDetails"`
}

// ItemQuantity is the item's quantity wherever the answer put it.
func (it PreviewInvoiceItem) ItemQuantity() Number {
	if it.AdditionalInfo != nil && it.AdditionalInfo.Quantity != "" {
		return it.AdditionalInfo.Quantity
	}
	return it.Quantity
}

// PreviewOrder prices an order without making it (POST /v1/orders/preview,
// previewTypes BillingDocs): the invoices Zuora would generate through the
// preview's date. Nothing changes in Zuora, so no Idempotency-Key (a saved
// answer would go stale as the subscription changes).
func (c *Client) PreviewOrder(ctx context.Context, p OrderPreview) ([]PreviewInvoice, error) {
	const op = "POST /v1/orders/preview"
	if p.OrderDate == "" {
		return nil, fmt.Errorf("zuora %s: orderDate is required", op)
	}
	if (p.ExistingAccountNumber == "") == (p.PreviewAccountInfo == nil) {
		return nil, fmt.Errorf("zuora %s: exactly one of existingAccountNumber and previewAccountInfo is required", op)
	}
	var res struct {
		PreviewResult struct {
			Invoices []PreviewInvoice `json:"invoices"`
		} `json:"previewResult"`
	}
	if _, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/orders/preview", body: p}, &res); err != nil {
		return nil, err
	}
	return res.PreviewResult.Invoices, nil
}

// PreviewSubscription previews an existing subscription's invoices from
// start through thru (POST /v1/subscriptions/{subscription-key}/preview,
// specific dates): its next invoice, as it stands.
func (c *Client) PreviewSubscription(ctx context.Context, key, start, thru string) ([]PreviewInvoice, error) {
	const op = "POST /v1/subscriptions/{subscription-key}/preview"
	if key == "" || start == "" || thru == "" {
		return nil, errors.New("zuora " + op + ": the subscription key and both dates are required")
	}
	body := map[string]any{
		"previewStartDate":   map[string]any{"previewStartDatePolicy": "specificDate", "specificDate": start},
		"previewThroughDate": map[string]any{"previewThruDatePolicy": "specificDate", "specificDate": thru},
	}
	var res struct {
		Invoices []PreviewInvoice `json:"invoices"`
	}
	if _, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/subscriptions/" + url.PathEscape(key) + "/preview", body: body}, &res); err != nil {
		return nil, err
	}
	return res.Invoices, nil
}
