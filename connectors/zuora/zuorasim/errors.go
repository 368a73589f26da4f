package zuorasim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Error categories: the last two digits of Zuora's 8-digit codes (API-NOTES §8).
const (
	catPermission   = 10
	catAuth         = 11
	catInvalidValue = 20
	catUnknownField = 21
	catMissing      = 22
	catMissingQuery = 23
	catBusiness     = 30
	catNotFound     = 40
	catMethod       = 45
	catLock         = 50
	catInternal     = 60
	catTemporary    = 61
	catLimit        = 70
	catMalformed    = 90
)

// Resource codes: the first six digits (500000–679999). GET/DELETE calls
// without a body report 500000, as Zuora does.
const (
	resGeneric      = 500000
	resAccount      = 500100
	resCatalog      = 510000
	resUsage        = 520000
	resSubscription = 530000
	resOrder        = 531000
)

func code(resource, category int) string {
	return fmt.Sprintf("%06d%02d", resource, category)
}

// statusFor maps a category to the HTTP status used from Zuora-Version
// 2024-05-20 on.
func statusFor(category int) int {
	switch category {
	case catPermission:
		return http.StatusForbidden
	case catAuth:
		return http.StatusUnauthorized
	case catNotFound:
		return http.StatusNotFound
	case catMethod:
		return http.StatusMethodNotAllowed
	case catLock:
		return http.StatusConflict
	case catInternal, catTemporary, 99:
		return http.StatusInternalServerError
	case catLimit:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadRequest
	}
}

// versionValue orders Zuora-Version values: legacy "186.0"… numerically,
// date-style values after every legacy one. No header = a never-upgraded
// tenant on 186.0.
func versionValue(v string) float64 {
	v = strings.TrimSpace(v)
	if v == "" {
		return 186.0
	}
	if len(v) == 10 && v[4] == '-' && v[7] == '-' {
		n, err := strconv.Atoi(v[:4] + v[5:7] + v[8:])
		if err == nil {
			return 100000 + float64(n)
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 186.0
	}
	return f
}

func (c *call) versionAtLeast(v string) bool {
	return versionValue(c.version) >= versionValue(v)
}

// mappedErrors reports whether 8-digit-code errors get mapped 4xx/5xx
// statuses (Zuora-Version ≥ 2024-05-20) instead of HTTP 200.
func (c *call) mappedErrors() bool { return c.versionAtLeast("2024-05-20") }

func (c *call) resource() int {
	if c.r.Method == http.MethodGet || c.r.Method == http.MethodDelete {
		return resGeneric
	}
	p := c.rt.template
	switch {
	case strings.HasPrefix(p, "/v1/orders"):
		return resOrder
	case strings.HasPrefix(p, "/v1/accounts"):
		return resAccount
	case strings.HasPrefix(p, "/v1/subscriptions"):
		return resSubscription
	case strings.HasPrefix(p, "/v1/usage"), strings.HasPrefix(p, "/v1/action"):
		return resUsage
	case strings.HasPrefix(p, "/v1/object"), strings.HasPrefix(p, "/v1/catalog"), strings.HasPrefix(p, "/v1/products"):
		return resCatalog
	}
	return resGeneric
}

type reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// commonError is the CommonResponse error body. The spec types code as a
// string; Zuora's samples show numbers, clients should accept both.
func (c *call) commonError(cd, msg string) map[string]any {
	return map[string]any{
		"success":   false,
		"processId": processID(c.reqID),
		"requestId": c.reqID,
		"reasons":   []reason{{Code: cd, Message: msg}},
	}
}

func processID(reqID string) string {
	return strings.ToUpper(strings.ReplaceAll(reqID, "-", "")[:16])
}

func errorResponse(cd, msg string) map[string]any {
	return map[string]any{"reasons": []reason{{Code: cd, Message: msg}}}
}

// restErr is a CommonResponse business error: HTTP 200 with success:false
// before Zuora-Version 2024-05-20, the mapped status from it on.
func (c *call) restErr(category int, msg string) *resp {
	status := http.StatusOK
	if c.mappedErrors() {
		status = statusFor(category)
	}
	return jsonResp(status, c.commonError(code(c.resource(), category), msg))
}

// fail answers with an explicit status in the operation's dialect (gateway
// answers such as idempotency conflicts and limits, which do not depend on
// Zuora-Version).
func (c *call) fail(status, category int, msg string) *resp {
	switch c.rt.fam {
	case famCRUD, famAction:
		return jsonResp(status, crudError(crudCode(category), msg))
	case famEvents:
		return jsonResp(status, errorResponse(code(c.resource(), category), msg))
	case famOQ:
		return jsonResp(status, oqBody(c.reqID, category, msg))
	default:
		return jsonResp(status, c.commonError(code(c.resource(), category), msg))
	}
}

// crudError is ProxyBadRequestResponse.
func crudError(cd, msg string) map[string]any {
	return map[string]any{"success": false, "errors": []map[string]string{{"code": cd, "message": msg}}}
}

func crudCode(category int) string {
	switch category {
	case catMissing:
		return "MISSING_REQUIRED_VALUE"
	case catUnknownField:
		return "INVALID_FIELD"
	case catNotFound:
		return "INVALID_ID"
	case catLock:
		return "LOCK_COMPETITION"
	case catTemporary:
		return "TEMPORARY_ERROR"
	case catLimit:
		return "REQUEST_EXCEEDED_LIMIT"
	case catInternal:
		return "UNKNOWN_ERROR"
	default:
		return "INVALID_VALUE"
	}
}

// crudBad is a CRUD validation error: HTTP 400 ProxyBadRequestResponse.
func crudBad(cd, msg string) *resp {
	return jsonResp(http.StatusBadRequest, crudError(cd, msg))
}

// eventErr is an ErrorResponse with an explicit status (event and
// notification APIs always use real statuses).
func (c *call) eventErr(status, category int, msg string) *resp {
	return jsonResp(status, errorResponse(code(c.resource(), category), msg))
}
