package web

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine"
)

// Previewer asks Zuora what a subscription would be invoiced
// (outbound.Reconcilers.Preview): its next invoice (proposed nil), or that
// of a proposed state; nothing changes.
type Previewer interface {
	Preview(ctx context.Context, subID string, proposed *engine.Subscription, through string) (engine.Preview, error)
}

// PreviewInput is the body of POST /api/v1/subscriptions/{id}/preview.
type PreviewInput struct {
	Subscription *SubscriptionBody `json:"subscription,omitempty"`
	Through      string            `json:"through,omitempty"`
}

// PreviewItemBody is one previewed invoice line.
type PreviewItemBody struct {
	Type                  string `json:"type"`
	Name                  string `json:"name"`
	PlanID                string `json:"planId,omitempty"`
	ChargeID              string `json:"chargeId,omitempty"`
	CouponID              string `json:"couponId,omitempty"`
	ChargeNumber          string `json:"chargeNumber,omitempty"`
	AppliedToChargeNumber string `json:"appliedToChargeNumber,omitempty"`
	Quantity              string `json:"quantity,omitempty"`
	UnitPrice             string `json:"unitPrice,omitempty"`
	Amount                string `json:"amount"`
	PeriodStart           string `json:"periodStart"`
	PeriodEnd             string `json:"periodEnd"`
	Prorated              bool   `json:"prorated"`
}

// PreviewBody is the JSON form of a preview.
type PreviewBody struct {
	Kind           string            `json:"kind"`
	SubscriptionID string            `json:"subscriptionId"`
	ZuoraOperation string            `json:"zuoraOperation,omitempty"`
	Through        string            `json:"through"`
	Currency       string            `json:"currency"`
	Total          string            `json:"total"`
	Items          []PreviewItemBody `json:"items"`
}

// PreviewBodyOf is the JSON form of p (the admin page shows the same).
func PreviewBodyOf(p engine.Preview) PreviewBody {
	b := PreviewBody{Kind: p.Kind, SubscriptionID: p.SubscriptionID, ZuoraOperation: p.ZuoraOperation, Through: p.Through,
		Currency: p.Currency, Total: p.Total.StringFixed(2), Items: []PreviewItemBody{}}
	for _, it := range p.Items {
		x := PreviewItemBody{Type: it.Type, Name: it.Name, PlanID: it.PlanID, ChargeID: it.ChargeID, CouponID: it.CouponID,
			ChargeNumber: it.ChargeNumber, AppliedToChargeNumber: it.AppliedToChargeNumber, Amount: it.Amount.StringFixed(2),
			PeriodStart: it.PeriodStart, PeriodEnd: it.PeriodEnd, Prorated: it.Prorated}
		if it.Type == "charge" {
			x.Quantity, x.UnitPrice = it.Quantity.String(), it.UnitPrice.String()
		}
		b.Items = append(b.Items, x)
	}
	return b
}

func (s *Server) previewSubscription(c *gin.Context) {
	var b PreviewInput
	if !decodeJSON(c, &b) {
		return
	}
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	var proposed *engine.Subscription
	if b.Subscription != nil {
		if _, ok := pathID(c, b.Subscription.ID); !ok {
			return
		}
		sub, err := b.Subscription.toDomain(id)
		if err != nil {
			writeError(c, err)
			return
		}
		proposed = &sub
	}
	if b.Through != "" {
		if _, err := engine.AddMonths(b.Through, 0); err != nil {
			badRequest(c, "through", "must be a date, YYYY-MM-DD")
			return
		}
	}
	p, err := s.opts.Preview.Preview(c.Request.Context(), id, proposed, b.Through)
	if err != nil {
		writeInboundError(c, err)
		return
	}
	c.JSON(http.StatusOK, PreviewBodyOf(p))
}
