package zuora

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error categories: the last two digits of Zuora's 8-digit error codes (§8).
const (
	CategoryPermissionDenied      = 10
	CategoryAuthenticationFailed  = 11
	CategoryInvalidValue          = 20
	CategoryUnknownField          = 21
	CategoryMissingRequiredField  = 22
	CategoryMissingQueryParam     = 23
	CategoryInvalidObjectQuery    = 27
	CategoryBusinessRule          = 30
	CategoryNotFound              = 40
	CategoryUnsupportedMethod     = 45
	CategoryLockContention        = 50
	CategoryInternalError         = 60
	CategoryTemporaryError        = 61
	CategoryConcurrencyLimit      = 70
	CategoryMalformedJSON         = 90
	CategoryExternalIntegration   = 99
	maxAttemptsForInternalErrors  = 3 // category 60: retry sparingly (§8)
	codeTransport                 = "TRANSPORT"
	codeTimeout                   = "TIMEOUT"
	codeCanceled                  = "CANCELED"
	codeDecode                    = "DECODE"
	codeHTTP                      = "HTTP"
	codeIdempotencyInProgressHint = "IDEMPOTENCY_IN_PROGRESS"
)

// ErrAmbiguous matches (errors.Is) any error after which a write may or may
// not have been applied by Zuora: a timeout or lost response after the
// request was sent, or a gateway timeout. The caller must look the object up
// (by its billsync custom field or its idempotent result) before creating it
// again.
var ErrAmbiguous = errors.New("zuora: outcome unknown, the write may have been applied")

// ErrNotFound matches (errors.Is) a Zuora "not found" answer.
var ErrNotFound = errors.New("zuora: not found")

// Reason is one code/message pair of a Zuora error body.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a failed Zuora call, whatever dialect Zuora answered in (§8).
type Error struct {
	// Op is the operation, "METHOD /path-template" (e.g. "POST /v1/orders").
	Op string
	// HTTPStatus is the HTTP status received (200 for success:false bodies
	// under old Zuora-Versions and for Actions rows; 0 for transport errors).
	HTTPStatus int
	// Code is Zuora's code: 8 digits for REST (e.g. "53100320"), a SOAP-style
	// enum for CRUD/Actions (e.g. "INVALID_VALUE", "LOCK_COMPETITION"), or
	// one of the client's own: TRANSPORT, TIMEOUT, CANCELED, DECODE, HTTP.
	Code string
	// Category is the 2-digit category of an 8-digit code (0 otherwise).
	Category int
	// Message is Zuora's message, shown to people as is.
	Message string
	// Reasons holds every code/message Zuora returned.
	Reasons []Reason
	// RequestID is Zuora-Request-Id (quote it to Zuora support).
	RequestID string
	// Retryable: repeating the same call may succeed (429, 5xx, lock
	// contention, concurrency limit, temporary errors, timeouts, resets).
	Retryable bool
	// NotFound: the object does not exist (404, category 40, CRUD empty
	// result, INVALID_ID).
	NotFound bool
	// Auth: credentials or permissions were refused (401/403, category 10/11).
	Auth bool
	// Ambiguous: a write may have been applied although the call failed.
	Ambiguous bool
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Attempts is the number of HTTP attempts made.
	Attempts int
	// Err is the underlying transport or decoding error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("zuora ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	}
	if e.Code != "" {
		if e.HTTPStatus != 0 {
			b.WriteString(" ")
		}
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RequestID != "" {
		b.WriteString(" (Zuora-Request-Id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	if e.Ambiguous {
		b.WriteString(" [outcome unknown: look up before re-creating]")
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAmbiguous) and errors.Is(err, ErrNotFound) work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAmbiguous:
		return e.Ambiguous
	case ErrNotFound:
		return e.NotFound
	}
	return false
}

// IsRetryable reports whether err is a Zuora error that a later identical
// call may not hit (429, 5xx, lock contention, timeouts, connection resets).
// The client already retried it up to MaxAttempts; the engine uses this to
// choose between "failed, retry later" and "dead".
func IsRetryable(err error) bool {
	var ze *Error
	return errors.As(err, &ze) && ze.Retryable
}

// IsNotFound reports whether Zuora said the object does not exist.
func IsNotFound(err error) bool {
	var ze *Error
	return errors.As(err, &ze) && ze.NotFound
}

// IsAmbiguous reports whether a write may have been applied despite err.
func IsAmbiguous(err error) bool { return errors.Is(err, ErrAmbiguous) }

// IsAuth reports whether Zuora refused the credentials or permissions.
func IsAuth(err error) bool {
	var ze *Error
	return errors.As(err, &ze) && ze.Auth
}

// AsError returns err as *Error when it is one.
func AsError(err error) (*Error, bool) {
	var ze *Error
	ok := errors.As(err, &ze)
	return ze, ok
}

// retryableCodes are the CRUD/Actions (SOAP-style) codes worth retrying (§8, §9).
var retryableCodes = map[string]bool{
	"LOCK_COMPETITION":       true,
	"TEMPORARY_ERROR":        true,
	"REQUEST_EXCEEDED_LIMIT": true,
	"REQUEST_EXCEEDED_RATE":  true,
	"SERVER_UNAVAILABLE":     true,
}

// categoryOf extracts the category from an 8-digit numeric code.
// CategoryOf returns the 2-digit category of an 8-digit REST error code
// (the last two digits), or 0 for any other code.
func CategoryOf(code string) int { return categoryOf(code) }

func categoryOf(code string) int {
	if len(code) != 8 {
		return 0
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 {
		return 0
	}
	return n % 100
}

// finish derives the classification flags from status, code and category.
func (e *Error) finish() *Error {
	if e.Category == 0 {
		e.Category = categoryOf(e.Code)
	}
	switch e.Category {
	case CategoryLockContention, CategoryInternalError, CategoryTemporaryError,
		CategoryConcurrencyLimit, CategoryExternalIntegration:
		e.Retryable = true
	case CategoryNotFound:
		e.NotFound = true
	case CategoryPermissionDenied, CategoryAuthenticationFailed:
		e.Auth = true
	case 0:
		switch {
		case retryableCodes[e.Code]:
			e.Retryable = true
		case e.Code == "INVALID_ID":
			e.NotFound = true
		case e.HTTPStatus == http.StatusTooManyRequests, e.HTTPStatus == http.StatusRequestTimeout,
			e.HTTPStatus == http.StatusConflict, // lock contention / idempotent request in progress (§8, §10)
			e.HTTPStatus >= 500 && e.HTTPStatus != http.StatusNotImplemented:
			e.Retryable = true
		case e.HTTPStatus == http.StatusNotFound:
			e.NotFound = true
		case e.HTTPStatus == http.StatusUnauthorized, e.HTTPStatus == http.StatusForbidden:
			e.Auth = true
		}
		if strings.HasPrefix(e.Code, "9") && len(e.Code) == 8 {
			e.Auth = true
		}
	}
	if e.HTTPStatus == http.StatusTooManyRequests {
		e.Retryable = true
	}
	if e.Message == "" && len(e.Reasons) > 0 {
		e.Message = e.Reasons[0].Message
	}
	return e
}

// rawError is the union of every error body shape Zuora uses (§8).
type rawError struct {
	Success   *bool           `json:"success"`
	SuccessUC *bool           `json:"Success"`
	Reasons   []rawReason     `json:"reasons"`
	Errors    []rawReason     `json:"errors"`
	ErrorsUC  []rawReason     `json:"Errors"`
	Message   string          `json:"message"`
	MessageUC string          `json:"Message"`
	ErrorDesc string          `json:"error_description"` // OAuth errors
	RequestID string          `json:"requestId"`
	ProcessID string          `json:"processId"`
	Done      *bool           `json:"done"`
	Size      *int            `json:"size"`
	Records   json.RawMessage `json:"records"`
}

type rawReason struct {
	Code      json.RawMessage `json:"code"`
	CodeUC    json.RawMessage `json:"Code"`
	Message   string          `json:"message"`
	MessageUC string          `json:"Message"`
}

func (r rawReason) reason() Reason {
	code := r.Code
	if len(code) == 0 {
		code = r.CodeUC
	}
	msg := r.Message
	if msg == "" {
		msg = r.MessageUC
	}
	return Reason{Code: rawCode(code), Message: msg}
}

// rawCode renders a code that Zuora sends as a number or a string.
func rawCode(b json.RawMessage) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return ""
	}
	if b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) == nil {
			return s
		}
	}
	return string(b)
}

// detectError inspects a response and returns the Zuora error it carries,
// or nil when it is a success. It understands (§8):
//   - CommonResponse / ErrorResponse / Object Query errors: {success?, reasons[{code, message}], requestId?}
//   - CRUD: {success:false, errors[{code, message}]}, 401 {message}, GET 404 {done:true, records:[], size:0}
//   - Actions-style single bodies: {Success:false, Errors[{Code, Message}]}
//
// A body with success:false is an error whatever the status (HTTP-200 errors
// under Zuora-Version < 2024-05-20, and on CRUD/Actions endpoints).
func detectError(op string, status int, header http.Header, body []byte) *Error {
	trimmed := bytes.TrimSpace(body)
	isObject := len(trimmed) > 0 && trimmed[0] == '{'
	var raw rawError
	parsed := isObject && json.Unmarshal(trimmed, &raw) == nil
	success := status >= 200 && status < 300
	if parsed {
		if (raw.Success != nil && !*raw.Success) || (raw.SuccessUC != nil && !*raw.SuccessUC) {
			success = false
		}
		if raw.Done != nil && *raw.Done && raw.Size != nil && *raw.Size == 0 && strings.HasPrefix(op, http.MethodGet+" /v1/object/") {
			// CRUD GET of a missing object (§8 B).
			return (&Error{Op: op, HTTPStatus: status, Code: "NOT_FOUND", Message: "no such object", NotFound: true,
				RequestID: header.Get("Zuora-Request-Id")}).finish()
		}
	}
	if success {
		return nil
	}
	e := &Error{Op: op, HTTPStatus: status, RequestID: header.Get("Zuora-Request-Id")}
	if parsed {
		for _, list := range [][]rawReason{raw.Reasons, raw.Errors, raw.ErrorsUC} {
			for _, r := range list {
				e.Reasons = append(e.Reasons, r.reason())
			}
		}
		if len(e.Reasons) > 0 {
			e.Code = e.Reasons[0].Code
			e.Message = e.Reasons[0].Message
		}
		if e.Message == "" {
			e.Message = raw.Message
		}
		if e.Message == "" {
			e.Message = raw.MessageUC
		}
		if e.Message == "" {
			e.Message = raw.ErrorDesc
		}
		if e.RequestID == "" {
			e.RequestID = raw.RequestID
		}
	}
	if e.Code == "" && e.Message == "" {
		e.Code = codeHTTP
		e.Message = http.StatusText(status)
		if len(trimmed) > 0 && !isObject {
			e.Message = strings.TrimSpace(truncate(string(trimmed), 200))
		}
	}
	return e.finish()
}

// parseRetryAfter reads Retry-After as seconds (integer or decimal) or an
// HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// truncate cuts an error body for a message, never inside a UTF-8
// sequence (the connector does not import engine; engine.Truncate is the
// same rule for everything billsync writes).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
