package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Field     string              `json:"field,omitempty"`
	Errors    []engine.FieldError `json:"errors,omitempty"`
	RequestID string              `json:"requestId,omitempty"`
}

const problemBase = "https://billsync.dev/problems/"

func writeProblem(c *gin.Context, p Problem) {
	p.RequestID = c.GetString(ctxRequestID)
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Field == "" && len(p.Errors) > 0 {
		p.Field = p.Errors[0].Field
	}
	b, _ := json.Marshal(p)
	c.Abort()
	c.Data(p.Status, "application/problem+json", b)
}

func badRequest(c *gin.Context, field, detail string) {
	writeProblem(c, Problem{Type: problemBase + "invalid-request", Title: "Invalid request", Status: http.StatusBadRequest,
		Detail: detail, Field: field, Errors: []engine.FieldError{{Field: field, Message: detail}}})
}

// writeError maps a service error to a problem response.
func writeError(c *gin.Context, err error) {
	var ve *engine.ValidationError
	var ce *engine.ConflictError
	var nf *engine.NotFoundError
	switch {
	case errors.As(err, &ve):
		writeProblem(c, Problem{Type: problemBase + "validation", Title: "Validation failed", Status: http.StatusUnprocessableEntity,
			Detail: ve.Error(), Errors: ve.Errors})
	case errors.As(err, &ce):
		writeProblem(c, Problem{Type: problemBase + "conflict", Title: "Conflict", Status: http.StatusConflict,
			Detail: ce.Error(), Field: ce.Field})
	case errors.As(err, &nf):
		writeProblem(c, Problem{Type: problemBase + "not-found", Title: "Not found", Status: http.StatusNotFound, Detail: nf.Error()})
	case errors.Is(err, engine.ErrNotFound):
		writeProblem(c, Problem{Type: problemBase + "not-found", Title: "Not found", Status: http.StatusNotFound, Detail: err.Error()})
	default:
		logger(c).Error().Err(err).Msg("request failed")
		writeProblem(c, Problem{Type: problemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the request failed; see the server log for request id " + c.GetString(ctxRequestID)})
	}
}

// decodeJSON strictly decodes the request body into v: unknown fields, wrong
// types, trailing data and oversized bodies are rejected with a problem naming
// the field (the API group has already refused a body that is not
// application/json). It reports false after writing the problem.
func decodeJSON(c *gin.Context, v any) bool {
	body, err := io.ReadAll(c.Request.Body)
	if err == nil && !utf8.Valid(body) {
		badRequest(c, "", "the body must be UTF-8 text")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(v)
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			badRequest(c, "", "the body must hold exactly one JSON object")
			return false
		}
		return true
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var fe *fieldError
	switch {
	case errors.As(err, &mbe):
		writeProblem(c, Problem{Type: problemBase + "too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body must be at most %d bytes", mbe.Limit)})
	case errors.Is(err, io.EOF):
		badRequest(c, "", "the body is empty; send a JSON object")
	case errors.As(err, &se):
		badRequest(c, "", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.Is(err, io.ErrUnexpectedEOF):
		badRequest(c, "", "malformed JSON: the body ends early")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		badRequest(c, field, fmt.Sprintf("must be %s, got JSON %s", jsonTypeName(te.Type.Kind().String()), te.Value))
	case errors.As(err, &fe):
		badRequest(c, fe.field, fe.msg)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		badRequest(c, name, fmt.Sprintf("unknown field %q", name))
	default:
		badRequest(c, "", "invalid JSON: "+err.Error())
	}
	return false
}

type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "float64":
		return "a number"
	default:
		return "a " + kind
	}
}
