package engine

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Bounds on what one entity may hold. Every value that turns into work (order
// actions, charges, tiers, rate plans) is bounded here, so no single record
// can make a reconcile build an unbounded payload.
const (
	MaxBillingPeriods    = 20   // billing periods (Zuora rate plans) per plan
	MaxChargesPerPeriod  = 50   // charges per billing period
	MaxTiers             = 100  // tiers per charge
	MaxAddOns            = 40   // add-ons per subscription (one order holds at most 50 actions)
	MaxChargeQuantities  = 200  // chargeQuantities entries per subscription
	MaxRenewalCount      = 1000 // Zuora allows at most 1,000 orders per subscription
	MaxOrderActions      = 50   // Zuora: at most 50 order actions per subscription in one order
	MaxIntegerDigits     = 13   // Zuora keeps 13 digits before the decimal point …
	MaxDecimalPlaces     = 9    // … and 9 after it
	MinDate, MaxDate     = "1900-01-01", "2099-12-31"
	maxDecimalTextDigits = 40
)

// CheckAmount says what is wrong with a decimal Zuora would have to store,
// or "" when it fits: at most 13 digits before the decimal point and 9 after
// ("Rounding and precision in Zuora",
// docs.zuora.com/en/basics/about-zuora/rounding-and-precision/rounding-and-precision-in-zuora).
// It looks at the coefficient and exponent only, so a value such as 1e2000000000
// is refused without ever being expanded.
func CheckAmount(d decimal.Decimal) string {
	if d.IsZero() {
		return ""
	}
	coef := strings.TrimPrefix(d.Coefficient().String(), "-")
	exp := int(d.Exponent())
	if len(coef) > maxDecimalTextDigits {
		return "has too many digits"
	}
	for exp < 0 && len(coef) > 1 && coef[len(coef)-1] == '0' {
		coef, exp = coef[:len(coef)-1], exp+1
	}
	switch {
	case exp < -MaxDecimalPlaces:
		return "has more than 9 decimal places"
	case len(coef)+exp > MaxIntegerDigits:
		return "has more than 13 digits before the decimal point (Zuora's limit)"
	}
	return ""
}

// CheckText says what is wrong with a string that will be stored and sent to
// Zuora, or "" when it is fine: it must be valid UTF-8 without NUL bytes
// (Postgres refuses both; Zuora cannot store them).
func CheckText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL characters"
	}
	return ""
}

// checkDate says what is wrong with a calendar day, or "" when it is a date
// YYYY-MM-DD between MinDate and MaxDate.
func checkDate(s string) string {
	if _, err := time.Parse("2006-01-02", s); err != nil {
		return "must be a date YYYY-MM-DD"
	}
	if s < MinDate || s > MaxDate {
		return "must be between " + MinDate + " and " + MaxDate
	}
	return ""
}

// AddMonths adds n months to a YYYY-MM-DD date, keeping the day where the
// month has it and the month's last day otherwise (Jan 31 + 1 month = Feb 28),
// as Zuora computes term and billing period ends.
func AddMonths(date string, n int) (string, error) {
	t, err := time.Parse("2006-01-02", date)
	if err != nil {
		return "", err
	}
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, 0, 0, 0, 0, time.UTC).Format("2006-01-02"), nil
}
