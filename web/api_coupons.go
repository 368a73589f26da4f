package web

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// CouponStore is what the coupon API needs from storage; the routes exist
// when Options.Store has it.
type CouponStore interface {
	UpsertCoupon(ctx context.Context, c engine.Coupon) (engine.Coupon, bool, error)
	GetCoupon(ctx context.Context, id string) (engine.Coupon, error)
	ListCoupons(ctx context.Context, o store.ListOptions) (store.Page[engine.Coupon], error)
	ArchiveCoupon(ctx context.Context, id string) (engine.Coupon, error)
}

// CouponAppliesTo is a coupon's optional restriction.
type CouponAppliesTo struct {
	PlanIDs     []string `json:"planIds,omitempty"`
	ChargeTypes []string `json:"chargeTypes,omitempty"`
}

// CouponBody is the JSON form of a coupon.
type CouponBody struct {
	ID            string           `json:"id,omitempty"`
	Name          string           `json:"name"`
	Description   string           `json:"description,omitempty"`
	Type          string           `json:"type"`
	Percentage    *Amount          `json:"percentage,omitempty"`
	Amount        *Amount          `json:"amount,omitempty"`
	Currency      string           `json:"currency"`
	Duration      string           `json:"duration"`
	Periods       int              `json:"periods,omitempty"`
	BillingPeriod string           `json:"billingPeriod,omitempty"`
	AppliesTo     *CouponAppliesTo `json:"appliesTo,omitempty"`
	Revision      int              `json:"revision,omitempty"`
	ArchivedAt    *time.Time       `json:"archivedAt,omitempty"`
	CreatedAt     *time.Time       `json:"createdAt,omitempty"`
	UpdatedAt     *time.Time       `json:"updatedAt,omitempty"`
	Sync          *SyncSummary     `json:"sync,omitempty"`
}

func (b CouponBody) toDomain(id string) (engine.Coupon, error) {
	c := &conv{}
	out := engine.Coupon{ID: id, Name: b.Name, Description: b.Description, Type: engine.DiscountType(b.Type), Currency: b.Currency,
		Duration: engine.CouponDuration(b.Duration), Periods: b.Periods, BillingPeriod: engine.Period(or(b.BillingPeriod, string(engine.PeriodMonth)))}
	if b.Percentage != nil {
		out.Percentage = c.decimal("percentage", *b.Percentage, "0")
	}
	if b.Amount != nil {
		out.Amount = c.decimal("amount", *b.Amount, "0")
	}
	if b.AppliesTo != nil {
		out.PlanIDs = b.AppliesTo.PlanIDs
		for _, t := range b.AppliesTo.ChargeTypes {
			out.ChargeTypes = append(out.ChargeTypes, engine.ChargeType(t))
		}
	}
	if err := c.err(); err != nil {
		return out, err
	}
	return out, out.Validate()
}

func couponBody(c engine.Coupon) CouponBody {
	b := CouponBody{ID: c.ID, Name: c.Name, Description: c.Description, Type: string(c.Type), Currency: c.Currency,
		Duration: string(c.Duration), Periods: c.Periods, BillingPeriod: string(c.BillingPeriod), Revision: c.Revision,
		ArchivedAt: c.ArchivedAt, CreatedAt: timePtr(c.CreatedAt), UpdatedAt: timePtr(c.UpdatedAt)}
	if c.Type == engine.DiscountPercentage {
		a := amountOf(c.Percentage)
		b.Percentage = &a
	} else {
		a := amountOf(c.Amount)
		b.Amount = &a
	}
	if len(c.PlanIDs) > 0 || len(c.ChargeTypes) > 0 {
		b.AppliesTo = &CouponAppliesTo{PlanIDs: c.PlanIDs}
		for _, t := range c.ChargeTypes {
			b.AppliesTo.ChargeTypes = append(b.AppliesTo.ChargeTypes, string(t))
		}
	}
	return b
}

func (s *Server) registerCoupons(api gin.IRouter, cs CouponStore) {
	api.PUT("/coupons/:id", func(c *gin.Context) {
		var b CouponBody
		if !decodeJSON(c, &b) {
			return
		}
		id, ok := pathID(c, b.ID)
		if !ok {
			return
		}
		cp, err := b.toDomain(id)
		if err != nil {
			writeError(c, err)
			return
		}
		out, changed, err := cs.UpsertCoupon(c.Request.Context(), cp)
		if err != nil {
			writeError(c, err)
			return
		}
		body := couponBody(out)
		body.Sync = s.syncSummary(c, store.EntityCoupon, id)
		writeUpserted(c, changed && out.Revision == 1, body)
	})
	api.GET("/coupons/:id", func(c *gin.Context) {
		cp, err := cs.GetCoupon(c.Request.Context(), c.Param("id"))
		if err != nil {
			writeError(c, err)
			return
		}
		body := couponBody(cp)
		body.Sync = s.syncSummary(c, store.EntityCoupon, cp.ID)
		c.JSON(http.StatusOK, body)
	})
	api.GET("/coupons", func(c *gin.Context) {
		o, ok := listOptions(c)
		if !ok {
			return
		}
		page, err := cs.ListCoupons(c.Request.Context(), o)
		if err != nil {
			writeError(c, err)
			return
		}
		out := ListBody[CouponBody]{Data: []CouponBody{}, NextCursor: page.Next}
		for _, cp := range page.Items {
			out.Data = append(out.Data, couponBody(cp))
		}
		c.JSON(http.StatusOK, out)
	})
	api.DELETE("/coupons/:id", func(c *gin.Context) {
		cp, err := cs.ArchiveCoupon(c.Request.Context(), c.Param("id"))
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, couponBody(cp))
	})
}
