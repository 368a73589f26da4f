package zuora

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxUsagePerCall is the Actions limit: at most 50 objects per call (§7).
const MaxUsagePerCall = 50

// Usage is one usage record for POST /v1/action/create (PascalCase, §7).
// Always set SubscriptionNumber and ChargeNumber: usage without them is
// applied to every matching subscription of the account.
type Usage struct {
	AccountNumber      string
	AccountID          string
	SubscriptionNumber string
	ChargeNumber       string
	UOM                string
	Quantity           Number
	StartDateTime      time.Time
	EndDateTime        time.Time // informational; zero = omitted
	Description        string
	CustomFields       map[string]any
}

type usageWire struct {
	AccountID          string `json:"AccountId,omitempty"`
	AccountNumber      string `json:"AccountNumber,omitempty"`
	SubscriptionNumber string `json:"SubscriptionNumber,omitempty"`
	ChargeNumber       string `json:"ChargeNumber,omitempty"`
	UOM                string `json:"UOM"`
	Quantity           Number `json:"Quantity"`
	StartDateTime      string `json:"StartDateTime"`
	EndDateTime        string `json:"EndDateTime,omitempty"`
	Description        string `json:"Description,omitempty"`
}

// usageDateTime is how usage date-times are sent: the UTC wall clock
// without an offset. Zuora reads a date-time without offset in the
// tenant's time zone and rates usage by its day there (a value with an
// offset is converted into the tenant's zone, which can move a window
// into the next day and billing period: 23:30Z on January 31 is February 1
// in Paris). billsync's windows are UTC hours and its billing periods
// calendar dates, so the UTC wall clock keeps a window in the same day and
// period in Zuora as in billsync, in any tenant (docs/zuora-rules.md).
const usageDateTime = "2006-01-02T15:04:05"

// MarshalJSON writes the Actions spelling, with dates as offset-less
// date-times (usageDateTime).
func (u Usage) MarshalJSON() ([]byte, error) {
	w := usageWire{AccountID: u.AccountID, AccountNumber: u.AccountNumber, SubscriptionNumber: u.SubscriptionNumber,
		ChargeNumber: u.ChargeNumber, UOM: u.UOM, Quantity: u.Quantity, Description: u.Description,
		StartDateTime: u.StartDateTime.UTC().Format(usageDateTime)}
	if !u.EndDateTime.IsZero() {
		w.EndDateTime = u.EndDateTime.UTC().Format(usageDateTime)
	}
	return marshalWithCustom(w, u.CustomFields)
}

func (u Usage) validate() error {
	switch {
	case u.AccountNumber == "" && u.AccountID == "":
		return fmt.Errorf("AccountNumber or AccountId is required")
	case u.UOM == "":
		return fmt.Errorf("UOM is required")
	case u.Quantity.IsZero():
		return fmt.Errorf("quantity is required")
	case u.StartDateTime.IsZero():
		return fmt.Errorf("StartDateTime is required")
	}
	if _, err := u.Quantity.Decimal(); err != nil {
		return fmt.Errorf("quantity: %w", err)
	}
	return nil
}

// ActionResult is one row of an Actions answer (SaveResult, §8 C).
type ActionResult struct {
	ID      string        `json:"Id"`
	Success bool          `json:"Success"`
	Errors  []ActionError `json:"Errors"`
	// RequestID is the call's Zuora-Request-Id (set by CreateUsage).
	RequestID string `json:"-"`
}

// ActionError is one error of an Actions row.
type ActionError struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// Err returns the row's failure as *Error (nil when it succeeded), with the
// row's code, message and the call's Zuora-Request-Id.
func (r ActionResult) Err() error {
	if r.Success {
		return nil
	}
	e := &Error{Op: "POST /v1/action/create", HTTPStatus: http.StatusOK, RequestID: r.RequestID}
	for _, x := range r.Errors {
		e.Reasons = append(e.Reasons, Reason{Code: x.Code, Message: x.Message})
	}
	if len(e.Reasons) > 0 {
		e.Code, e.Message = e.Reasons[0].Code, e.Reasons[0].Message
	} else {
		e.Code, e.Message = "UNKNOWN_ERROR", "row failed without an error"
	}
	return e.finish()
}

// CreateUsage uploads up to 50 usage records in one call
// (POST /v1/action/create, type Usage). The call's error is non-nil only
// when the whole call failed; otherwise every record has its own result, in
// order (partial success is possible: check each ActionResult.Success / Err).
// The idempotency key must identify exactly this batch (e.g. the upload
// rows' ids), so a retry is answered with the original ids.
func (c *Client) CreateUsage(ctx context.Context, idempotencyKey string, records []Usage) ([]ActionResult, error) {
	const op = "POST /v1/action/create"
	if idempotencyKey == "" {
		return nil, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	if len(records) == 0 || len(records) > MaxUsagePerCall {
		return nil, fmt.Errorf("zuora %s: %d usage records (1..%d per call)", op, len(records), MaxUsagePerCall)
	}
	for i, u := range records {
		if err := u.validate(); err != nil {
			return nil, fmt.Errorf("zuora %s: usage[%d]: %w", op, i, err)
		}
	}
	body := struct {
		Type    string  `json:"type"`
		Objects []Usage `json:"objects"`
	}{Type: "Usage", Objects: records}
	var results []ActionResult
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/action/create", body: body,
		idemKey: idempotencyKey, check: wholeCallRetryable}, &results)
	if err != nil {
		return nil, err
	}
	if len(results) != len(records) {
		return results, &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, RequestID: resp.requestID,
			Message: fmt.Sprintf("Zuora answered %d results for %d records", len(results), len(records))}
	}
	for i := range results {
		results[i].RequestID = resp.requestID
	}
	return results, nil
}

// wholeCallRetryable turns an Actions answer in which every row failed with
// a retryable code (lock contention, temporary error, limits) into a
// retryable call error: nothing was created, so the call is retried as a
// whole. Mixed answers are returned row by row.
func wholeCallRetryable(body []byte) *Error {
	var rows []ActionResult
	if json.Unmarshal(body, &rows) != nil || len(rows) == 0 {
		return nil
	}
	var first *Error
	for _, r := range rows {
		if r.Success {
			return nil
		}
		e, _ := AsError(r.Err())
		if e == nil || !e.Retryable {
			return nil
		}
		if first == nil {
			first = e
		}
	}
	return first
}

// UsageRecord is a usage row from GET /v1/usage/accounts/{account-key}.
type UsageRecord struct {
	ID                 string `json:"id"`
	AccountID          string `json:"accountId"`
	AccountNumber      string `json:"accountNumber"`
	SubscriptionNumber string `json:"subscriptionNumber"`
	ChargeNumber       string `json:"chargeNumber"`
	UnitOfMeasure      string `json:"unitOfMeasure"`
	Quantity           Number `json:"quantity"`
	StartDateTime      string `json:"startDateTime"`
	SubmissionDateTime string `json:"submissionDateTime"`
	Status             string `json:"status"`
	SourceName         string `json:"sourceName"`
	UniqueKey          string `json:"uniqueKey"`
	Description        string `json:"description"`
}

// ListUsageByAccount iterates an account's usage, newest first
// (GET /v1/usage/accounts/{account-key}; in Zuora's "older API" reference,
// not in the 2026 spec, §7).
func (c *Client) ListUsageByAccount(ctx context.Context, accountKey string) iter.Seq2[UsageRecord, error] {
	const op = "GET /v1/usage/accounts/{account-key}"
	if accountKey == "" {
		return func(yield func(UsageRecord, error) bool) {
			yield(UsageRecord{}, fmt.Errorf("zuora %s: account key is required", op))
		}
	}
	q := url.Values{"page": {"1"}, "pageSize": {strconv.Itoa(classicPageSize)}}
	return listNextPage(ctx, c, op, "/v1/usage/accounts/"+seg(accountKey), q,
		func(b []byte) ([]UsageRecord, string, error) {
			var page struct {
				Usage    []UsageRecord `json:"usage"`
				NextPage string        `json:"nextPage"`
			}
			err := json.Unmarshal(b, &page)
			return page.Usage, page.NextPage, err
		})
}
