package zuora

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Object Query reads for the inbound poll (§3): filters use lower-case field
// names, rows come back camelCase (§12 #9); paging is by opaque cursor.

// QueryAccount is an account row from GET /object-query/accounts.
type QueryAccount struct {
	ID            string         `json:"id"`
	AccountNumber string         `json:"accountNumber"`
	Name          string         `json:"name"`
	Status        string         `json:"status"`
	Currency      string         `json:"currency"`
	CrmID         string         `json:"crmId"`
	CreatedDate   string         `json:"createdDate"`
	UpdatedDate   string         `json:"updatedDate"`
	CustomFields  map[string]any `json:"-"`
}

type queryAccountAlias QueryAccount

// UnmarshalJSON collects the custom fields.
func (p *QueryAccount) UnmarshalJSON(b []byte) error {
	var a queryAccountAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = QueryAccount(a)
	p.CustomFields = cf
	return nil
}

// QuerySubscription is a subscription row from GET /object-query/subscriptions.
// Name is the subscription number (Zuora's data model calls it Name).
type QuerySubscription struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	AccountID    string         `json:"accountId"`
	Status       string         `json:"status"`
	Version      int            `json:"version"`
	OriginalID   string         `json:"originalId"`
	CreatedDate  string         `json:"createdDate"`
	UpdatedDate  string         `json:"updatedDate"`
	CustomFields map[string]any `json:"-"`
}

type querySubscriptionAlias QuerySubscription

// UnmarshalJSON collects the custom fields.
func (p *QuerySubscription) UnmarshalJSON(b []byte) error {
	var a querySubscriptionAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = QuerySubscription(a)
	p.CustomFields = cf
	return nil
}

func updatedSinceQuery(since time.Time) url.Values {
	q := url.Values{"pageSize": {strconv.Itoa(objectQueryPageSize)}, "sort[]": {"updateddate.ASC"}}
	if !since.IsZero() {
		// Whole seconds: fractional-second cursors caused overlapping polls
		// elsewhere (§12 #8). GE, not GT: a poll may see a row twice, never
		// miss one; the engine's inbox de-duplicates.
		q.Set("filter[]", "updateddate.GE:"+since.UTC().Truncate(time.Second).Format(time.RFC3339))
	}
	return q
}

// ListAccountsUpdatedSince iterates accounts updated at or after since
// (oldest update first; zero since = all accounts).
func (c *Client) ListAccountsUpdatedSince(ctx context.Context, since time.Time) iter.Seq2[QueryAccount, error] {
	return listCursor[QueryAccount](ctx, c, "GET /object-query/accounts", "/object-query/accounts", updatedSinceQuery(since))
}

// ListSubscriptionsUpdatedSince iterates subscription versions updated at or
// after since (oldest update first).
func (c *Client) ListSubscriptionsUpdatedSince(ctx context.Context, since time.Time) iter.Seq2[QuerySubscription, error] {
	return listCursor[QuerySubscription](ctx, c, "GET /object-query/subscriptions", "/object-query/subscriptions", updatedSinceQuery(since))
}

// QueryRatePlanCharge is a row from GET /object-query/rate-plan-charges.
type QueryRatePlanCharge struct {
	ID                   string `json:"id"`
	ChargeNumber         string `json:"chargeNumber"`
	ChargeType           string `json:"chargeType"`
	SubscriptionID       string `json:"subscriptionId"`
	ProcessedThroughDate string `json:"processedThroughDate"`
	ChargedThroughDate   string `json:"chargedThroughDate"`
}

// ListRatePlanChargesByNumber iterates the rate plan charges (every
// version's) with the given charge numbers: one Object Query for up to 50
// numbers at a time, instead of a subscription read each.
func (c *Client) ListRatePlanChargesByNumber(ctx context.Context, numbers []string) iter.Seq2[QueryRatePlanCharge, error] {
	const op, path = "GET /object-query/rate-plan-charges", "/object-query/rate-plan-charges"
	return func(yield func(QueryRatePlanCharge, error) bool) {
		for len(numbers) > 0 {
			chunk := numbers[:min(len(numbers), 50)]
			numbers = numbers[len(chunk):]
			q := url.Values{"pageSize": {strconv.Itoa(objectQueryPageSize)}, "filter[]": {"chargenumber.IN:[" + strings.Join(chunk, ",") + "]"},
				"fields[]": {"id,chargeNumber,chargeType,subscriptionId,processedThroughDate,chargedThroughDate"}}
			for r, err := range listCursor[QueryRatePlanCharge](ctx, c, op, path, q) {
				if !yield(r, err) || err != nil {
					return
				}
			}
		}
	}
}

// TestConnection checks the base URL and credentials with a fresh token and
// one cheap read (the first catalog product; from Zuora-Version 230.0 on the
// catalog no longer embeds rate plans, so this stays small).
func (c *Client) TestConnection(ctx context.Context) error {
	c.tokens.mu.Lock()
	c.tokens.token = "" // prove the credentials now, not an old token
	c.tokens.mu.Unlock()
	_, err := c.do(ctx, call{op: "GET /v1/catalog/products", method: http.MethodGet, path: "/v1/catalog/products",
		query: url.Values{"page": {"1"}, "pageSize": {"1"}}})
	return err
}
