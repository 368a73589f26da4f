package admin

import (
	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/store"
)

// explanation says whose an error message is and what a person can do.
type explanation struct {
	// Source is "zuora" (Zuora's answer), "connection" (billsync could not
	// talk to Zuora) or "billsync" (billsync's own refusal, such as a mapping
	// conflict).
	Source string
	Label  string // "Zuora's message", …
	Advice string
}

// explain reads a record's last error: Zuora's errors carry Zuora's code
// (8 digits or a SOAP-style name); the client's own codes name connection
// problems; an error without a code is billsync's own.
func explain(code, message, state string) explanation {
	if message == "" && code == "" {
		return explanation{}
	}
	retried := "billsync tries again by itself at the next attempt."
	if state == store.StateDead {
		retried = "billsync has stopped trying: press Retry once the cause is fixed."
	}
	switch code {
	case "":
		return explanation{Source: "billsync", Label: "billsync's message",
			Advice: "billsync refused this itself, before or after talking to Zuora (for example a mapping conflict, or data Zuora cannot take). " +
				"Fix the data in billsync or the mapping it names, then Retry; retrying unchanged data fails the same way."}
	case "TRANSPORT", "TIMEOUT", "CANCELED":
		return explanation{Source: "connection", Label: "Connection to Zuora",
			Advice: "billsync could not reach Zuora or got no answer in time (network, DNS, TLS, or Zuora unavailable). " +
				"Check the connection on the dashboard (Test connection). " + retried}
	case "HTTP", "DECODE":
		return explanation{Source: "zuora", Label: "Zuora's answer",
			Advice: "Zuora answered with an HTTP error billsync could not read as a Zuora error. This is usually temporary. " + retried +
				" If it persists, quote the Zuora request id to Zuora support."}
	case "LOCK_COMPETITION", "REQUEST_EXCEEDED_LIMIT", "REQUEST_EXCEEDED_RATE", "TEMPORARY_ERROR", "SERVER_UNAVAILABLE":
		return explanation{Source: "zuora", Label: "Zuora's message",
			Advice: "A temporary condition in Zuora (a lock or a rate limit). " + retried}
	}
	e := explanation{Source: "zuora", Label: "Zuora's message"}
	switch zuora.CategoryOf(code) {
	case zuora.CategoryPermissionDenied, zuora.CategoryAuthenticationFailed:
		e.Advice = "Zuora refused billsync's credentials or permissions. Check the OAuth client (id, secret and its role) in Zuora, then Retry."
	case zuora.CategoryInvalidValue, zuora.CategoryUnknownField, zuora.CategoryMissingRequiredField, zuora.CategoryMissingQueryParam,
		zuora.CategoryInvalidObjectQuery, zuora.CategoryMalformedJSON:
		e.Advice = "Zuora refused a value. Correct the billsync data the message names, then Retry; retrying unchanged data fails the same way."
	case zuora.CategoryBusinessRule:
		e.Advice = "A Zuora business rule refused the change; the message says which. Change the data in billsync (or the object in Zuora), then Retry."
	case zuora.CategoryNotFound:
		e.Advice = "Zuora does not have an object this change refers to (deleted or never created in this tenant). Check the entity's mappings below, then Retry."
	case zuora.CategoryLockContention, zuora.CategoryInternalError, zuora.CategoryTemporaryError, zuora.CategoryConcurrencyLimit,
		zuora.CategoryExternalIntegration:
		e.Advice = "A temporary condition in Zuora. " + retried
	default:
		e.Advice = "Read Zuora's message; if it is unclear, quote the Zuora request id to Zuora support."
	}
	return e
}
