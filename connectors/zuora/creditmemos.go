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

// Credit memos (Invoice Settlement): billsync grants credits as memos made
// from a product rate plan charge (POST /v1/credit-memos,
// https://developer.zuora.com/api-references/api/operation/POST_CreditMemoFromPrpc/)
// and looks them up per account (GET /v1/credit-memos, GET_CreditMemos)
// before creating one again after a lost answer.

// CreditMemoCharge is one item of a memo made from charges.
type CreditMemoCharge struct {
	ProductRatePlanChargeID string `json:"productRatePlanChargeId"`
	Amount                  Number `json:"amount"`
	ServiceStartDate        string `json:"serviceStartDate,omitempty"`
	ServiceEndDate          string `json:"serviceEndDate,omitempty"`
}

// CreditMemoRequest is the body of POST /v1/credit-memos (CreditMemoFromChargeRequest).
type CreditMemoRequest struct {
	AccountID     string             `json:"accountId,omitempty"`
	AccountNumber string             `json:"accountNumber,omitempty"`
	AutoPost      bool               `json:"autoPost"`
	Charges       []CreditMemoCharge `json:"charges"`
	Comment       string             `json:"comment,omitempty"`
	Currency      string             `json:"currency,omitempty"`
	EffectiveDate string             `json:"effectiveDate,omitempty"`
	ReasonCode    string             `json:"reasonCode,omitempty"`
}

// CreditMemo is a credit memo as Zuora answers it (GETCreditMemoType).
type CreditMemo struct {
	ID              string  `json:"id"`
	Number          string  `json:"number"`
	AccountID       string  `json:"accountId"`
	AccountNumber   string  `json:"accountNumber"`
	Amount          float64 `json:"amount"`
	AppliedAmount   float64 `json:"appliedAmount"`
	UnappliedAmount float64 `json:"unappliedAmount"`
	Currency        string  `json:"currency"`
	Status          string  `json:"status"` // Draft, Posted, Canceled, …
	CreditMemoDate  string  `json:"creditMemoDate"`
	ReasonCode      string  `json:"reasonCode"`
	Comment         string  `json:"comment"`
}

// CreateCreditMemo creates a credit memo from charges. idempotencyKey must be
// derived from the intent: a retry after a lost answer returns the same memo.
func (c *Client) CreateCreditMemo(ctx context.Context, idempotencyKey string, req CreditMemoRequest) (CreditMemo, error) {
	const op = "POST /v1/credit-memos"
	var m CreditMemo
	if idempotencyKey == "" {
		return m, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	if (req.AccountID == "" && req.AccountNumber == "") || len(req.Charges) == 0 {
		return m, fmt.Errorf("zuora %s: an account and at least one charge are required", op)
	}
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/credit-memos", body: req, idemKey: idempotencyKey}, &m)
	if err != nil {
		return m, err
	}
	if m.ID == "" || m.Number == "" {
		return m, &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "credit memo answered without an id or number", RequestID: resp.requestID}
	}
	return m, nil
}

// GetCreditMemo reads a credit memo by id or number.
func (c *Client) GetCreditMemo(ctx context.Context, key string) (CreditMemo, error) {
	var m CreditMemo
	if key == "" {
		return m, fmt.Errorf("zuora GET /v1/credit-memos/{creditMemoKey}: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/credit-memos/{creditMemoKey}", method: http.MethodGet, path: "/v1/credit-memos/" + seg(key)}, &m)
	return m, err
}

// ListCreditMemos iterates an account's credit memos.
func (c *Client) ListCreditMemos(ctx context.Context, accountID string) iter.Seq2[CreditMemo, error] {
	const op = "GET /v1/credit-memos"
	q := url.Values{"accountId": {accountID}, "page": {"1"}, "pageSize": {strconv.Itoa(classicPageSize)}}
	return listNextPage(ctx, c, op, "/v1/credit-memos", q, func(b []byte) ([]CreditMemo, string, error) {
		var page struct {
			CreditMemos []CreditMemo `json:"creditmemos"`
			NextPage    string       `json:"nextPage"`
		}
		err := json.Unmarshal(b, &page)
		return page.CreditMemos, page.NextPage, err
	})
}

// CreditMemoURL links to a credit memo (by id) in Zuora's UI.
func (c *Client) CreditMemoURL(id string) string { return c.uiLink("CreditMemo", id) }
