package zuorasim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

const dateLayout = "2006-01-02"

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

func isCustomField(k string) bool {
	return strings.HasSuffix(k, "__c") || strings.HasSuffix(k, "__NS") || strings.HasSuffix(k, "__QT")
}

func customFields(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if isCustomField(k) {
			out[k] = v
		}
	}
	return out
}

// fieldErr is a validation failure: category plus message; field names the
// offending field for CRUD codes.
type fieldErr struct {
	cat int
	msg string
}

func (e *fieldErr) Error() string { return e.msg }

func missing(field string) *fieldErr {
	return &fieldErr{cat: catMissing, msg: fmt.Sprintf("Missing required value: %s", field)}
}

func invalid(format string, args ...any) *fieldErr {
	return &fieldErr{cat: catInvalidValue, msg: fmt.Sprintf(format, args...)}
}

func business(format string, args ...any) *fieldErr {
	return &fieldErr{cat: catBusiness, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *fieldErr {
	return &fieldErr{cat: catNotFound, msg: fmt.Sprintf(format, args...)}
}

// getString returns a string field; wrong type is an error, absence is "".
func getString(m map[string]any, k string) (string, *fieldErr) {
	v, ok := m[k]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", invalid("'%s' should be a string", k)
	}
	return s, nil
}

func reqString(m map[string]any, k string, maxLen int) (string, *fieldErr) {
	s, err := getString(m, k)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", missing(k)
	}
	if maxLen > 0 && len([]rune(s)) > maxLen {
		return "", invalid("'%s' may not exceed %d characters", k, maxLen)
	}
	return s, nil
}

func optString(m map[string]any, k string, maxLen int) (string, *fieldErr) {
	s, err := getString(m, k)
	if err != nil {
		return "", err
	}
	if maxLen > 0 && len([]rune(s)) > maxLen {
		return "", invalid("'%s' may not exceed %d characters", k, maxLen)
	}
	return s, nil
}

func enumString(m map[string]any, k string, required bool, allowed ...string) (string, *fieldErr) {
	s, err := getString(m, k)
	if err != nil {
		return "", err
	}
	if s == "" {
		if required {
			return "", missing(k)
		}
		return "", nil
	}
	if !slices.Contains(allowed, s) {
		return "", invalid("'%s' value should be one of: %s", k, strings.Join(allowed, ", "))
	}
	return s, nil
}

func dateField(m map[string]any, k string, required bool) (string, *fieldErr) {
	s, err := getString(m, k)
	if err != nil {
		return "", err
	}
	if s == "" {
		if required {
			return "", missing(k)
		}
		return "", nil
	}
	if _, perr := time.Parse(dateLayout, s); perr != nil {
		return "", invalid("'%s' should be a date in the format yyyy-MM-dd", k)
	}
	return s, nil
}

// numField returns a JSON number. Quoted numbers are rejected: Zuora wants
// bare decimals in CRUD/Actions bodies.
func numField(m map[string]any, k string, required bool) (json.Number, bool, *fieldErr) {
	v, ok := m[k]
	if !ok || v == nil {
		if required {
			return "", false, missing(k)
		}
		return "", false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return "", false, invalid("'%s' should be a number", k)
	}
	return n, true, nil
}

func intField(m map[string]any, k string) (int, bool, *fieldErr) {
	n, ok, err := numField(m, k, false)
	if err != nil || !ok {
		return 0, ok, err
	}
	i, perr := strconv.Atoi(n.String())
	if perr != nil {
		return 0, false, invalid("'%s' should be an integer", k)
	}
	return i, true, nil
}

func boolField(m map[string]any, k string) (bool, bool, *fieldErr) {
	v, ok := m[k]
	if !ok || v == nil {
		return false, false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, false, invalid("'%s' should be a boolean", k)
	}
	return b, true, nil
}

func objField(m map[string]any, k string) (map[string]any, *fieldErr) {
	v, ok := m[k]
	if !ok || v == nil {
		return nil, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("'%s' should be an object", k)
	}
	return o, nil
}

func arrField(m map[string]any, k string) ([]any, *fieldErr) {
	v, ok := m[k]
	if !ok || v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, invalid("'%s' should be an array", k)
	}
	return a, nil
}

func objects(a []any, k string) ([]map[string]any, *fieldErr) {
	out := make([]map[string]any, 0, len(a))
	for _, x := range a {
		o, ok := x.(map[string]any)
		if !ok {
			return nil, invalid("items of '%s' should be objects", k)
		}
		out = append(out, o)
	}
	return out, nil
}

// pick copies the known and custom keys of m.
func pick(m map[string]any, known map[string]bool) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if known[k] || isCustomField(k) {
			out[k] = v
		}
	}
	return out
}

func unknownKeys(m map[string]any, known map[string]bool) []string {
	var out []string
	for k := range m {
		if !known[k] && !isCustomField(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

func addDate(d string, n int, unit string) string {
	t, err := time.Parse(dateLayout, d)
	if err != nil {
		return d
	}
	switch unit {
	case "Day":
		t = t.AddDate(0, 0, n)
	case "Week":
		t = t.AddDate(0, 0, 7*n)
	case "Year":
		t = t.AddDate(n, 0, 0)
	default: // Month
		t = t.AddDate(0, n, 0)
	}
	return t.Format(dateLayout)
}

func daysBetween(a, b string) int {
	ta, err1 := time.Parse(dateLayout, a)
	tb, err2 := time.Parse(dateLayout, b)
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(tb.Sub(ta).Hours() / 24)
}

// decimalString renders a JSON number as Zuora's REST reads do (strings
// typed "decimal" in the spec).
func decimalString(n json.Number) string {
	if n == "" {
		return ""
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		return n.String()
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func numberValue(n json.Number) any {
	if n == "" {
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil
	}
	return f
}
