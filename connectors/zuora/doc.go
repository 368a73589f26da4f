// Package zuora is billsync's Zuora Billing REST client.
//
// It hides Zuora's operational quirks from the engine:
//
//   - three error dialects (CommonResponse with success:false, also under
//     HTTP 200; CRUD errors; Actions per-row results) become one *Error type
//     that says whether retrying can help (IsRetryable), whether the object is
//     missing (IsNotFound) and whether a write may have happened although the
//     call failed (IsAmbiguous);
//   - OAuth client-credentials tokens are cached, shared, refreshed before they
//     expire, minted once under concurrency and re-minted once on a 401;
//   - retries use exponential backoff with jitter, honour Retry-After, are
//     bounded and respect the context deadline; a retried POST carries the
//     same Idempotency-Key, and a 409 replay of the original result is a
//     success;
//   - a limiter keeps in-flight calls under the tenant's concurrency limit
//     (adapting to Concurrency-Limit-Remaining) and under a per-minute budget;
//   - list endpoints are exposed as iterators that follow nextPage (absolute
//     or relative) or Object Query cursors.
//
// Reference: shared/zuora/API-NOTES.md (sections are cited as §n in comments)
// and Zuora's OpenAPI file, which the tests validate every exchange against.
package zuora
