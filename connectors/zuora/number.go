package zuora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Number is a decimal amount or quantity as Zuora sends and expects it.
//
// It marshals as a bare JSON number (Zuora's CRUD/Actions bodies want `5`, not
// `"5"`, §0) and unmarshals from a JSON number or a numeric string (REST read
// endpoints spell some amounts as strings). The empty Number means "absent":
// it is dropped by `omitempty` and marshals as null otherwise. Money is never
// a float64: convert with Decimal / NumberFromDecimal.
type Number string

// NumberFromDecimal converts a decimal to a Number.
func NumberFromDecimal(d decimal.Decimal) Number { return Number(d.String()) }

// NumberFromInt converts an integer to a Number.
func NumberFromInt(i int64) Number { return Number(fmt.Sprintf("%d", i)) }

// ParseNumber validates s as a decimal and returns it as a Number.
func ParseNumber(s string) (Number, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("zuora: %q is not a decimal number: %w", s, err)
	}
	return Number(d.String()), nil
}

// IsZero reports whether n is absent.
func (n Number) IsZero() bool { return n == "" }

// String returns the number's text.
func (n Number) String() string { return string(n) }

// Decimal parses n; the absent Number is zero.
func (n Number) Decimal() (decimal.Decimal, error) {
	if n == "" {
		return decimal.Zero, nil
	}
	return decimal.NewFromString(string(n))
}

// MarshalJSON writes a bare number.
func (n Number) MarshalJSON() ([]byte, error) {
	if n == "" {
		return []byte("null"), nil
	}
	if !json.Valid([]byte(n)) || strings.ContainsAny(string(n), `"{}[]tfn`) {
		return nil, fmt.Errorf("zuora: invalid number %q", string(n))
	}
	return []byte(n), nil
}

// UnmarshalJSON accepts a number, a numeric string, "" or null.
func (n *Number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = ""
			return nil
		}
		if _, err := decimal.NewFromString(s); err != nil {
			return fmt.Errorf("zuora: %q is not a number", s)
		}
		*n = Number(s)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return fmt.Errorf("zuora: %s is not a number", b)
	}
	*n = Number(num.String())
	return nil
}
