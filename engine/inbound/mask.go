package inbound

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// secretKey matches the names of callout parameters whose values are secret.
var secretKey = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|api[-_]?key|authori[sz]ation|signature|credential|private|cookie|session|card ?number|cvv|iban|routing)`)

// Masked is what replaces a secret value.
const Masked = "••••••"

// MaskPayload returns a stored callout payload with the values of
// secret-like keys (Password, Token, Signature, …) masked, at any depth, as
// compact JSON; a payload that is not JSON is not shown. The API and the
// admin page show payloads only through it.
func MaskPayload(raw string) string {
	var v any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Sprintf("(not JSON: %d bytes, not shown)", len(raw))
	}
	b, err := json.Marshal(maskValue(v))
	if err != nil {
		return "(payload not shown)"
	}
	return string(b)
}

func maskValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretKey.MatchString(k) {
				if s, ok := x.(string); !ok || s != "" {
					t[k] = Masked
				}
				continue
			}
			t[k] = maskValue(x)
		}
	case []any:
		for i := range t {
			t[i] = maskValue(t[i])
		}
	}
	return v
}
