package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
)

func (s *Server) registerInboundAPI(api *gin.RouterGroup) {
	api.GET("/inbox", s.listInbox)
	api.GET("/inbox/:id", s.getInbox)
	api.POST("/inbox/:id/retry", s.retryInbox)
	api.POST("/customers/:id/pull", s.pullCustomer)
	api.POST("/zuora/pull", s.pullZuora)
	api.GET("/customers/:id/zuora-accounts", s.listLinks)
	api.PUT("/customers/:id/zuora-accounts/:accountKey", s.putLink)
	api.DELETE("/customers/:id/zuora-accounts/:accountKey", s.deleteLink)
	api.GET("/customers/:id/grants", s.getGrants)
	api.GET("/customers/:id/invoices", s.getInvoices)
	api.GET("/customers/:id/access", s.getAccess)
	api.GET("/zuora/check", s.checkTenant)
}

// checkTenant answers what the Zuora tenant lacks for billsync (200 with
// "ok": false when something is missing; 502 when Zuora cannot be read).
func (s *Server) checkTenant(c *gin.Context) {
	rep, err := s.opts.Inbound.CheckTenant(c.Request.Context())
	if err != nil {
		writeInboundError(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

// writeInboundError maps Zuora's failures to 502 with Zuora's message, and
// everything else as usual.
func writeInboundError(c *gin.Context, err error) {
	var ze *zuora.Error
	if errors.As(err, &ze) {
		msg := ze.Message
		if msg == "" {
			msg = ze.Error()
		}
		logger(c).Warn().Err(err).Msg("Zuora call failed")
		writeProblem(c, Problem{Type: problemBase + "zuora", Title: "Zuora error", Status: http.StatusBadGateway, Detail: msg})
		return
	}
	writeError(c, err)
}

func inboxID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		badRequest(c, "id", "must be a positive integer")
		return 0, false
	}
	return id, true
}

func (s *Server) listInbox(c *gin.Context) {
	f := inbound.InboxFilter{State: c.Query("state"), Event: c.Query("event")}
	switch f.State {
	case "", inbound.StatePending, inbound.StateInFlight, inbound.StateDone, inbound.StateFailed, inbound.StateDead:
	default:
		badRequest(c, "state", "must be one of pending, in_flight, done, failed, dead")
		return
	}
	var ok bool
	if f.AfterID, ok = queryIDCursor(c); !ok {
		return
	}
	if f.Limit, ok = queryLimit(c, 500); !ok {
		return
	}
	items, next, err := s.opts.Inbound.ListInbox(c.Request.Context(), f)
	if err != nil {
		writeError(c, err)
		return
	}
	for i := range items {
		items[i].Payload = inbound.MaskPayload(items[i].Payload)
	}
	body := ListBody[inbound.InboxEntry]{Data: items}
	if next > 0 {
		body.NextCursor = strconv.FormatInt(next, 10)
	}
	c.JSON(http.StatusOK, body)
}

func (s *Server) getInbox(c *gin.Context) {
	id, ok := inboxID(c)
	if !ok {
		return
	}
	e, err := s.opts.Inbound.GetInbox(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	e.Payload = inbound.MaskPayload(e.Payload)
	c.JSON(http.StatusOK, e)
}

func (s *Server) retryInbox(c *gin.Context) {
	id, ok := inboxID(c)
	if !ok {
		return
	}
	e, err := s.opts.Inbound.RetryInbox(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	e.Payload = inbound.MaskPayload(e.Payload)
	c.JSON(http.StatusOK, e)
}

func (s *Server) pullCustomer(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	res, err := s.opts.Inbound.PullCustomer(c.Request.Context(), id)
	if err != nil {
		writeInboundError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// PullRequest is the body of POST /api/v1/zuora/pull.
type PullRequest struct {
	ZuoraAccount string `json:"zuoraAccount"`
}

func (s *Server) pullZuora(c *gin.Context) {
	var b PullRequest
	if !decodeJSON(c, &b) {
		return
	}
	if !validKey(b.ZuoraAccount) {
		badRequest(c, "zuoraAccount", "is required: a Zuora account id or number")
		return
	}
	res, err := s.opts.Inbound.PullAccount(c.Request.Context(), b.ZuoraAccount)
	if err != nil {
		writeInboundError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) listLinks(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	links, err := s.opts.Inbound.Links(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ListBody[inbound.Link]{Data: links})
}

func (s *Server) putLink(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	key := c.Param("accountKey")
	if !validKey(key) {
		badRequest(c, "accountKey", "must be a Zuora account id or number")
		return
	}
	link, created, err := s.opts.Inbound.LinkAccount(c.Request.Context(), id, key)
	if err != nil {
		writeInboundError(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, link)
}

func (s *Server) deleteLink(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	if err := s.opts.Inbound.UnlinkAccount(c.Request.Context(), id, c.Param("accountKey")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) getGrants(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	grants, err := s.opts.Inbound.Grants(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ListBody[inbound.Grant]{Data: grants})
}

func (s *Server) getInvoices(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	invs, err := s.opts.Inbound.Invoices(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ListBody[store.Invoice]{Data: invs})
}

// AccessBody is GET /customers/{id}/access: the grants an app checks to let
// a user in, and each subscription's payment status.
type AccessBody struct {
	CustomerID    string                        `json:"customerId"`
	Access        []inbound.Access              `json:"access"`
	Subscriptions []inbound.SubscriptionPayment `json:"subscriptions"`
}

func (s *Server) getAccess(c *gin.Context) {
	id, ok := pathID(c, "")
	if !ok {
		return
	}
	acc, pay, err := s.opts.Inbound.CustomerAccess(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, AccessBody{CustomerID: id, Access: acc, Subscriptions: pay})
}
