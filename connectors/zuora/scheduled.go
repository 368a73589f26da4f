package zuora

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Order statuses (GET /v1/orders/{orderNumber}, "Order Status").
const (
	OrderStatusScheduled = "Scheduled"
	OrderStatusExecuting = "Executing"
	OrderStatusCompleted = "Completed"
	OrderStatusCancelled = "Cancelled"
	OrderStatusFailed    = "Failed"
)

// SchedulingOptions makes an order with Status "Scheduled" run on a date
// ("Create scheduled orders using the REST API": scheduledDatePolicy
// SpecificDate and a future scheduledDate).
type SchedulingOptions struct {
	ScheduledDatePolicy string `json:"scheduledDatePolicy"`
	ScheduledDate       string `json:"scheduledDate"`
}

// OrderInfo is an order as Zuora's order reads show it (the Order schema).
type OrderInfo struct {
	OrderNumber           string             `json:"orderNumber"`
	OrderDate             string             `json:"orderDate"`
	Status                string             `json:"status"`
	ExistingAccountNumber string             `json:"existingAccountNumber"`
	SchedulingOptions     *SchedulingOptions `json:"schedulingOptions,omitempty"`
	Subscriptions         []struct {
		SubscriptionNumber string `json:"subscriptionNumber"`
	} `json:"subscriptions"`
}

// ScheduledDate is the date a scheduled order runs on, "" for others.
func (o OrderInfo) ScheduledDate() string {
	if o.SchedulingOptions == nil {
		return ""
	}
	return o.SchedulingOptions.ScheduledDate
}

// GetOrder reads one order (GET /v1/orders/{orderNumber}).
func (c *Client) GetOrder(ctx context.Context, number string) (OrderInfo, error) {
	const op = "GET /v1/orders/{orderNumber}"
	if number == "" {
		return OrderInfo{}, fmt.Errorf("zuora %s: order number is required", op)
	}
	var out struct {
		Order OrderInfo `json:"order"`
	}
	_, err := c.doJSON(ctx, call{op: op, method: http.MethodGet, path: "/v1/orders/" + seg(number)}, &out)
	return out.Order, err
}

// ListSubscriptionOrders iterates the orders of a subscription with the
// given status ("scheduled", "all", …; GET
// /v1/orders/subscription/{subscriptionNumber}).
func (c *Client) ListSubscriptionOrders(ctx context.Context, subscriptionNumber, status string) iter.Seq2[OrderInfo, error] {
	const op = "GET /v1/orders/subscription/{subscriptionNumber}"
	if subscriptionNumber == "" {
		return func(yield func(OrderInfo, error) bool) {
			yield(OrderInfo{}, fmt.Errorf("zuora %s: subscription number is required", op))
		}
	}
	q := url.Values{"page": {"1"}, "pageSize": {strconv.Itoa(classicPageSize)}}
	if status != "" {
		q.Set("status", status)
	}
	return listNextPage(ctx, c, op, "/v1/orders/subscription/"+seg(subscriptionNumber), q,
		func(b []byte) ([]OrderInfo, string, error) {
			var page struct {
				Orders   []OrderInfo `json:"orders"`
				NextPage string      `json:"nextPage"`
			}
			err := json.Unmarshal(b, &page)
			return page.Orders, page.NextPage, err
		})
}

// CancelOrder cancels a scheduled (or draft) order (PUT
// /v1/orders/{orderNumber}/cancel); Zuora refuses it for other statuses.
func (c *Client) CancelOrder(ctx context.Context, number, reason string) error {
	const op = "PUT /v1/orders/{orderNumber}/cancel"
	if number == "" {
		return fmt.Errorf("zuora %s: order number is required", op)
	}
	body := map[string]any{}
	if reason != "" {
		body["cancelReason"] = reason
	}
	_, err := c.doJSON(ctx, call{op: op, method: http.MethodPut, path: "/v1/orders/" + seg(number) + "/cancel", body: body}, nil)
	return err
}
