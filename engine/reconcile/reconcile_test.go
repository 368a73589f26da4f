package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/mappings"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	throttled := &zuora.Error{Op: "POST /v1/orders", HTTPStatus: 429, Code: "TOO_MANY_REQUESTS", Message: "slow down", RequestID: "r1",
		Retryable: true, RetryAfter: 7 * time.Second}
	invalid := &zuora.Error{Op: "POST /v1/orders", HTTPStatus: 400, Code: "53100020", Message: "invalid value", RequestID: "r2"}
	lost := &zuora.Error{Op: "POST /v1/orders", Code: "TIMEOUT", Message: "request timed out", Ambiguous: true}
	cases := []struct {
		name string
		err  error
		want reconcile.Failure
	}{
		{"nil", nil, reconcile.Failure{}},
		{"a 429 is retryable with Retry-After", fmt.Errorf("create order: %w", throttled),
			reconcile.Failure{Retryable: true, Code: "TOO_MANY_REQUESTS", Message: "slow down", RequestID: "r1", RetryAfter: 7 * time.Second}},
		{"a validation error is terminal with Zuora's message", invalid,
			reconcile.Failure{Code: "53100020", Message: "invalid value", RequestID: "r2"}},
		{"an unknown outcome is retryable", lost, reconcile.Failure{Retryable: true, Code: "TIMEOUT", Message: "request timed out"}},
		{"Terminal overrides a retryable Zuora error", reconcile.Terminal{Err: throttled},
			reconcile.Failure{Code: "TOO_MANY_REQUESTS", Message: "slow down", RequestID: "r1", RetryAfter: 7 * time.Second}},
		{"a database error is retryable", errors.New("connection refused"), reconcile.Failure{Retryable: true, Message: "connection refused"}},
		{"a cancelled context is retryable", context.Canceled, reconcile.Failure{Retryable: true, Message: "context canceled"}},
		{"a mapping conflict is billsync's own and terminal", fmt.Errorf("map product: %w", fmt.Errorf("%w: product P1 is mapped to \"ghost\", not \"pro\"", mappings.ErrConflict)),
			reconcile.Failure{Message: `map product: zuora object already mapped to another local id: product P1 is mapped to "ghost", not "pro"`}},
		{"a conflict with local data is terminal", fmt.Errorf("link: %w", &engine.ConflictError{Field: "accountKey", Message: "linked elsewhere"}),
			reconcile.Failure{Message: "link: accountKey: linked elsewhere"}},
		{"invalid local data is terminal", &engine.ValidationError{Errors: []engine.FieldError{{Field: "planId", Message: "unknown plan"}}},
			reconcile.Failure{Message: "invalid input: planId: unknown plan"}},
		{"a plain Terminal", reconcile.Terminal{Err: errors.New("no such kind")}, reconcile.Failure{Message: "no such kind"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.want, reconcile.Classify(c.err))
		})
	}
}
