package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Credit is an amount granted to a customer (Togai's "Charge ID"): it
// becomes a Zuora credit memo on the customer's account, made from the
// configured credit charge. A credit never changes once granted.
type Credit struct {
	ID         string
	CustomerID string
	// IdempotencyKey is the caller's: a repeated grant with the same key is
	// the same credit.
	IdempotencyKey string
	Amount         decimal.Decimal
	Currency       string
	Reason         string
	// EffectiveDate is the memo's date (default: the day it was granted).
	EffectiveDate Date
	CreatedAt     time.Time
}

// CreditID is the credit's id, derived from the customer and the caller's
// key, so a grant repeated after a lost answer finds the same credit.
func CreditID(customerID, key string) string {
	sum := sha256.Sum256([]byte(customerID + "\x00" + key))
	return "cr_" + hex.EncodeToString(sum[:])[:24]
}

// Validate checks a credit on its own (the store checks the customer).
func (c Credit) Validate() error {
	v := &validator{}
	if !ValidID(c.CustomerID) {
		v.add("customerId", idRule)
	}
	if c.IdempotencyKey == "" || utf8.RuneCountInString(c.IdempotencyKey) > 255 {
		v.add("idempotencyKey", "is required, at most 255 characters")
	}
	v.text("idempotencyKey", c.IdempotencyKey, "reason", c.Reason)
	if utf8.RuneCountInString(c.Reason) > 200 {
		v.add("reason", "at most 200 characters")
	}
	switch {
	case !c.Amount.IsPositive():
		v.add("amount", "must be greater than 0")
	case c.Amount.Exponent() < -2 && !c.Amount.Equal(c.Amount.Round(2)):
		v.add("amount", "at most 2 decimal places (Zuora validates the currency's decimal places)")
	default:
		v.amount("amount", c.Amount)
	}
	if !ValidCurrency(c.Currency) {
		v.add("currency", "must be an ISO 4217 currency code, e.g. USD; got %q", c.Currency)
	}
	v.date("effectiveDate", c.EffectiveDate, false)
	return v.err()
}
