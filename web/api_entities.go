package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// ListBody is the JSON form of a page of a list.
type ListBody[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// queryLimit reads the optional "limit" query parameter (1..max); it writes
// the problem and reports false when it is bad. Absent, it is 0 (the default).
func queryLimit(c *gin.Context, max int) (int, bool) {
	v := c.Query("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		badRequest(c, "limit", "must be an integer between 1 and "+strconv.Itoa(max))
		return 0, false
	}
	return n, true
}

// queryIDCursor reads the optional numeric "cursor" query parameter (the
// nextCursor of a previous page); it writes the problem and reports false when it is bad.
func queryIDCursor(c *gin.Context) (int64, bool) {
	v := c.Query("cursor")
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		badRequest(c, "cursor", "must be the nextCursor of a previous page")
		return 0, false
	}
	return n, true
}

func listOptions(c *gin.Context) (store.ListOptions, bool) {
	o := store.ListOptions{After: c.Query("cursor"), CustomerID: c.Query("customerId"), Kind: c.Query("kind")}
	var ok bool
	if o.Limit, ok = queryLimit(c, 500); !ok {
		return o, false
	}
	if a := c.Query("includeArchived"); a != "" {
		b, err := strconv.ParseBool(a)
		if err != nil {
			badRequest(c, "includeArchived", "must be true or false")
			return o, false
		}
		o.IncludeArchived = b
	}
	return o, true
}

func pathID(c *gin.Context, bodyID string) (string, bool) {
	id := c.Param("id")
	if !engine.ValidID(id) {
		badRequest(c, "id", "the id in the path must be 1-64 characters: letters, digits, '.', '_', ':' or '-'")
		return "", false
	}
	if bodyID != "" && bodyID != id {
		badRequest(c, "id", "the body's id "+strconv.Quote(bodyID)+" differs from the path's "+strconv.Quote(id))
		return "", false
	}
	return id, true
}

func (s *Server) syncSummary(c *gin.Context, kind, id string) *SyncSummary {
	rec, err := s.opts.Store.GetSyncRecord(c.Request.Context(), kind, id)
	if err != nil {
		if !errors.Is(err, engine.ErrNotFound) {
			logger(c).Warn().Err(err).Msg("sync record lookup failed")
		}
		return nil
	}
	return &SyncSummary{State: rec.State, Reason: rec.Reason, Error: rec.LastErrorMessage, ZuoraID: rec.ZuoraID,
		ZuoraNumber: rec.ZuoraNumber, ZuoraURL: rec.ZuoraURL}
}

func writeUpserted(c *gin.Context, created bool, body any) {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, body)
}

func (s *Server) putPlan(c *gin.Context) {
	var b PlanBody
	if !decodeJSON(c, &b) {
		return
	}
	id, ok := pathID(c, b.ID)
	if !ok {
		return
	}
	p, err := b.toDomain(id)
	if err != nil {
		writeError(c, err)
		return
	}
	out, changed, err := s.opts.Store.UpsertPlan(c.Request.Context(), p)
	if err != nil {
		writeError(c, err)
		return
	}
	body := planBody(out)
	body.Sync = s.syncSummary(c, store.EntityPlan, id)
	writeUpserted(c, changed && out.Revision == 1, body)
}

func (s *Server) getPlan(c *gin.Context) {
	p, err := s.opts.Store.GetPlan(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	body := planBody(p)
	body.Sync = s.syncSummary(c, store.EntityPlan, p.ID)
	c.JSON(http.StatusOK, body)
}

func (s *Server) listPlans(c *gin.Context) {
	o, ok := listOptions(c)
	if !ok {
		return
	}
	if o.Kind != "" && o.Kind != string(engine.KindPlan) && o.Kind != string(engine.KindAddon) {
		badRequest(c, "kind", "must be plan or addon")
		return
	}
	page, err := s.opts.Store.ListPlans(c.Request.Context(), o)
	if err != nil {
		writeError(c, err)
		return
	}
	out := ListBody[PlanBody]{Data: []PlanBody{}, NextCursor: page.Next}
	for _, p := range page.Items {
		out.Data = append(out.Data, planBody(p))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) archivePlan(c *gin.Context) {
	p, err := s.opts.Store.ArchivePlan(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, planBody(p))
}

func (s *Server) putCustomer(c *gin.Context) {
	var b CustomerBody
	if !decodeJSON(c, &b) {
		return
	}
	id, ok := pathID(c, b.ID)
	if !ok {
		return
	}
	cust, err := b.toDomain(id)
	if err != nil {
		writeError(c, err)
		return
	}
	out, changed, err := s.opts.Store.UpsertCustomer(c.Request.Context(), cust)
	if err != nil {
		writeError(c, err)
		return
	}
	body := customerBody(out)
	body.Sync = s.syncSummary(c, store.EntityCustomer, id)
	writeUpserted(c, changed && out.Revision == 1, body)
}

func (s *Server) getCustomer(c *gin.Context) {
	cust, err := s.opts.Store.GetCustomer(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	body := customerBody(cust)
	body.Sync = s.syncSummary(c, store.EntityCustomer, cust.ID)
	c.JSON(http.StatusOK, body)
}

func (s *Server) listCustomers(c *gin.Context) {
	o, ok := listOptions(c)
	if !ok {
		return
	}
	page, err := s.opts.Store.ListCustomers(c.Request.Context(), o)
	if err != nil {
		writeError(c, err)
		return
	}
	out := ListBody[CustomerBody]{Data: []CustomerBody{}, NextCursor: page.Next}
	for _, x := range page.Items {
		out.Data = append(out.Data, customerBody(x))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) archiveCustomer(c *gin.Context) {
	cust, err := s.opts.Store.ArchiveCustomer(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, customerBody(cust))
}

func (s *Server) putSubscription(c *gin.Context) {
	var b SubscriptionBody
	if !decodeJSON(c, &b) {
		return
	}
	id, ok := pathID(c, b.ID)
	if !ok {
		return
	}
	sub, err := b.toDomain(id)
	if err != nil {
		writeError(c, err)
		return
	}
	out, changed, err := s.opts.Store.UpsertSubscription(c.Request.Context(), sub)
	if err != nil {
		writeError(c, err)
		return
	}
	body := subscriptionBody(out)
	body.Sync = s.syncSummary(c, store.EntitySubscription, id)
	writeUpserted(c, changed && out.Revision == 1, body)
}

func (s *Server) getSubscription(c *gin.Context) {
	sub, err := s.opts.Store.GetSubscription(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	body := subscriptionBody(sub)
	body.Sync = s.syncSummary(c, store.EntitySubscription, sub.ID)
	c.JSON(http.StatusOK, body)
}

func (s *Server) listSubscriptions(c *gin.Context) {
	o, ok := listOptions(c)
	if !ok {
		return
	}
	page, err := s.opts.Store.ListSubscriptions(c.Request.Context(), o)
	if err != nil {
		writeError(c, err)
		return
	}
	out := ListBody[SubscriptionBody]{Data: []SubscriptionBody{}, NextCursor: page.Next}
	for _, x := range page.Items {
		out.Data = append(out.Data, subscriptionBody(x))
	}
	c.JSON(http.StatusOK, out)
}
