package web

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
)

// ScheduledChangeBody asks for a future-dated change of a subscription: the
// desired future state (fields left out keep the subscription's current
// value; "addOns": [] removes every add-on) and when it applies.
type ScheduledChangeBody struct {
	Timing           string             `json:"timing"`
	Date             string             `json:"date,omitempty"`
	PlanID           *string            `json:"planId,omitempty"`
	BillingPeriodID  *string            `json:"billingPeriodId,omitempty"`
	AddOns           *[]AddOnBody       `json:"addOns,omitempty"`
	ChargeQuantities *map[string]Amount `json:"chargeQuantities,omitempty"`
}

// ScheduledChangeView is a subscription's pending change as the API shows it.
type ScheduledChangeView struct {
	Timing           string            `json:"timing"`
	Date             string            `json:"date"`
	PlanID           string            `json:"planId"`
	BillingPeriodID  string            `json:"billingPeriodId"`
	AddOns           []AddOnBody       `json:"addOns"`
	ChargeQuantities map[string]Amount `json:"chargeQuantities"`
	ZuoraOrderNumber string            `json:"zuoraOrderNumber"`
}

func scheduledView(s engine.Subscription) *ScheduledChangeView {
	c := s.Scheduled
	if c == nil {
		return nil
	}
	v := &ScheduledChangeView{Timing: string(c.Timing), Date: c.Date, PlanID: c.PlanID, BillingPeriodID: c.BillingPeriodID,
		AddOns: []AddOnBody{}, ChargeQuantities: map[string]Amount{}, ZuoraOrderNumber: outbound.ScheduledOrderNumber(s)}
	for _, a := range c.AddOns {
		v.AddOns = append(v.AddOns, AddOnBody{PlanID: a.PlanID, BillingPeriodID: a.BillingPeriodID, Quantity: amountOf(a.Quantity)})
	}
	for id, q := range c.ChargeQuantities {
		v.ChargeQuantities[id] = amountOf(q)
	}
	return v
}

// toChange builds the change from the body and the subscription it is for.
func (b ScheduledChangeBody) toChange(sub engine.Subscription) (engine.ScheduledChange, error) {
	cv := &conv{}
	ch := engine.ScheduledChange{Timing: engine.ChangeTiming(b.Timing), PlanID: sub.PlanID, BillingPeriodID: sub.BillingPeriodID,
		AddOns: sub.AddOns, ChargeQuantities: sub.ChargeQuantities}
	if b.PlanID != nil {
		ch.PlanID = *b.PlanID
	}
	if b.BillingPeriodID != nil {
		ch.BillingPeriodID = *b.BillingPeriodID
	}
	if b.AddOns != nil {
		ch.AddOns = nil
		for i, a := range *b.AddOns {
			ch.AddOns = append(ch.AddOns, engine.AddOn{PlanID: a.PlanID, BillingPeriodID: a.BillingPeriodID,
				Quantity: cv.decimal(fmt.Sprintf("addOns[%d].quantity", i), a.Quantity, "1")})
		}
	}
	if b.ChargeQuantities != nil {
		ch.ChargeQuantities = map[string]decimal.Decimal{}
		for id, q := range *b.ChargeQuantities {
			ch.ChargeQuantities[id] = cv.decimal("chargeQuantities."+id, q, "0")
		}
	}
	return ch, cv.err()
}

// putScheduledChange sets or replaces the subscription's pending change
// (PUT /api/v1/subscriptions/{id}/scheduled-change).
func (s *Server) putScheduledChange(c *gin.Context) {
	var b ScheduledChangeBody
	if !decodeJSON(c, &b) {
		return
	}
	ctx := c.Request.Context()
	sub, err := s.opts.Store.GetSubscription(ctx, c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	ch, err := b.toChange(sub)
	if err != nil {
		writeError(c, err)
		return
	}
	// The billing period the change is counted from is the current one.
	plan, err := s.opts.Store.GetPlan(ctx, sub.PlanID)
	if err != nil {
		writeError(c, err)
		return
	}
	bp, _ := plan.Period(sub.BillingPeriodID)
	if ch.Date, err = engine.ChangeDate(sub, bp.Period, ch.Timing, b.Date, s.opts.Store.Now().Format("2006-01-02")); err != nil {
		writeError(c, err)
		return
	}
	out, _, err := s.opts.Store.SetScheduledChange(ctx, sub.ID, &ch)
	if err != nil {
		writeError(c, err)
		return
	}
	body := subscriptionBody(out)
	body.Sync = s.syncSummary(c, store.EntitySubscription, out.ID)
	c.JSON(http.StatusOK, body)
}

// deleteScheduledChange cancels the subscription's pending change (DELETE
// /api/v1/subscriptions/{id}/scheduled-change); 404 when it has none.
func (s *Server) deleteScheduledChange(c *gin.Context) {
	ctx := c.Request.Context()
	sub, err := s.opts.Store.GetSubscription(ctx, c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	if sub.Scheduled == nil {
		writeError(c, &engine.NotFoundError{Kind: "pending change of subscription", ID: sub.ID})
		return
	}
	out, _, err := s.opts.Store.SetScheduledChange(ctx, sub.ID, nil)
	if err != nil {
		writeError(c, err)
		return
	}
	body := subscriptionBody(out)
	body.Sync = s.syncSummary(c, store.EntitySubscription, out.ID)
	c.JSON(http.StatusOK, body)
}
