package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// CreditBody is the JSON form of a credit: POST /customers/{id}/credits
// grants one (idempotencyKey is the caller's: the same key is the same
// credit), GET lists them with their Zuora credit memo.
type CreditBody struct {
	ID             string       `json:"id,omitempty"`
	CustomerID     string       `json:"customerId,omitempty"`
	IdempotencyKey string       `json:"idempotencyKey"`
	Amount         Amount       `json:"amount"`
	Currency       string       `json:"currency,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	EffectiveDate  string       `json:"effectiveDate,omitempty"`
	CreatedAt      *time.Time   `json:"createdAt,omitempty"`
	Sync           *SyncSummary `json:"sync,omitempty"`
}

func creditBody(c engine.Credit) CreditBody {
	return CreditBody{ID: c.ID, CustomerID: c.CustomerID, IdempotencyKey: c.IdempotencyKey, Amount: amountOf(c.Amount), Currency: c.Currency,
		Reason: c.Reason, EffectiveDate: c.EffectiveDate, CreatedAt: timePtr(c.CreatedAt)}
}

func (s *Server) postCredit(c *gin.Context) {
	var b CreditBody
	if !decodeJSON(c, &b) {
		return
	}
	id, ok := pathID(c, b.CustomerID)
	if !ok {
		return
	}
	if b.ID != "" {
		badRequest(c, "id", "is chosen by billsync (from the customer and the idempotency key)")
		return
	}
	if !b.Amount.set {
		writeError(c, &engine.ValidationError{Errors: []engine.FieldError{{Field: "amount", Message: "is required"}}})
		return
	}
	cv := &conv{}
	amt := cv.decimal("amount", b.Amount, "0")
	if err := cv.err(); err != nil {
		writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	cur := b.Currency
	if cur == "" {
		cust, err := s.opts.Store.GetCustomer(ctx, id)
		if err != nil {
			writeError(c, err)
			return
		}
		cur = cust.Currency
	}
	out, created, err := s.opts.Store.GrantCredit(ctx, engine.Credit{CustomerID: id, IdempotencyKey: b.IdempotencyKey, Amount: amt,
		Currency: cur, Reason: b.Reason, EffectiveDate: b.EffectiveDate})
	if err != nil {
		writeError(c, err)
		return
	}
	if created && s.opts.Kick != nil {
		s.opts.Kick()
	}
	body := creditBody(out)
	body.Sync = s.syncSummary(c, store.EntityCredit, out.ID)
	writeUpserted(c, created, body)
}

func (s *Server) listCredits(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if _, err := s.opts.Store.GetCustomer(ctx, id); err != nil {
		writeError(c, err)
		return
	}
	credits, err := s.opts.Store.ListCredits(ctx, id)
	if err != nil {
		writeError(c, err)
		return
	}
	out := ListBody[CreditBody]{Data: []CreditBody{}}
	for _, cr := range credits {
		b := creditBody(cr)
		b.Sync = s.syncSummary(c, store.EntityCredit, cr.ID)
		out.Data = append(out.Data, b)
	}
	c.JSON(http.StatusOK, out)
}
