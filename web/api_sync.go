package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// SyncService is what the sync-record API needs.
type SyncService interface {
	ListSyncRecords(ctx context.Context, f store.SyncFilter) ([]store.SyncRecord, int64, error)
	SyncRecordByID(ctx context.Context, id int64) (store.SyncRecord, error)
	SyncHistory(ctx context.Context, recordID int64, limit int) ([]store.SyncAttempt, error)
	Retry(ctx context.Context, id int64) (store.SyncRecord, error)
	RetryAll(ctx context.Context, kind string) (int64, error)
	RecheckAll(ctx context.Context, kinds []string) (int64, error)
	EnqueueDriftChecksNow(ctx context.Context) (int64, error)
}

// MappingService lists id mappings.
type MappingService interface {
	List(ctx context.Context, o mappings.ListOptions) ([]mappings.Mapping, string, error)
}

var syncKinds = map[string]bool{store.EntityPlan: true, store.EntityCoupon: true, store.EntityCustomer: true, store.EntitySubscription: true, store.EntityCredit: true}
var syncStates = map[string]bool{store.StatePending: true, store.StateInFlight: true, store.StateSynced: true, store.StateFailed: true,
	store.StateDead: true, store.StateSkipped: true, store.StateDrifted: true}

func (s *Server) registerSync(api *gin.RouterGroup) {
	api.GET("/sync-records", s.listSyncRecords)
	api.GET("/sync-records/:rid", s.getSyncRecord)
	api.POST("/sync-records/:rid/retry", s.retrySyncRecord)
	api.POST("/sync-records/retry", s.retryAllSyncRecords)
	api.POST("/sync-records/drift-check", s.checkDrift)
	api.POST("/sync-records/recheck", s.recheckSyncRecords)
	api.GET("/mappings", s.listMappings)
}

func (s *Server) listSyncRecords(c *gin.Context) {
	f := store.SyncFilter{Kind: c.Query("kind"), State: c.Query("state"), EntityID: c.Query("entityId")}
	if f.Kind != "" && !syncKinds[f.Kind] {
		badRequest(c, "kind", "must be one of plan, coupon, customer, subscription, credit")
		return
	}
	if f.State != "" && !syncStates[f.State] {
		badRequest(c, "state", "must be one of pending, in_flight, synced, failed, dead, skipped, drifted")
		return
	}
	var ok bool
	if f.AfterID, ok = queryIDCursor(c); !ok {
		return
	}
	if f.Limit, ok = queryLimit(c, 500); !ok {
		return
	}
	recs, next, err := s.opts.Sync.ListSyncRecords(c.Request.Context(), f)
	if err != nil {
		writeError(c, err)
		return
	}
	out := gin.H{"data": recs}
	if next != 0 {
		out["nextCursor"] = strconv.FormatInt(next, 10)
	}
	c.JSON(http.StatusOK, out)
}

func recordID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("rid"), 10, 64)
	if err != nil || id <= 0 {
		badRequest(c, "id", "a sync record id is a positive integer")
		return 0, false
	}
	return id, true
}

func (s *Server) getSyncRecord(c *gin.Context) {
	id, ok := recordID(c)
	if !ok {
		return
	}
	rec, err := s.opts.Sync.SyncRecordByID(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	hist, err := s.opts.Sync.SyncHistory(c.Request.Context(), id, 50)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"record": rec, "history": hist})
}

func (s *Server) retrySyncRecord(c *gin.Context) {
	id, ok := recordID(c)
	if !ok {
		return
	}
	rec, err := s.opts.Sync.Retry(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	if s.opts.Kick != nil {
		s.opts.Kick()
	}
	c.JSON(http.StatusAccepted, rec)
}

func (s *Server) retryAllSyncRecords(c *gin.Context) {
	var body struct {
		Kind string `json:"kind"`
	}
	if c.Request.ContentLength != 0 {
		if !decodeJSON(c, &body) {
			return
		}
	}
	if k := c.Query("kind"); k != "" {
		body.Kind = k
	}
	if body.Kind != "" && !syncKinds[body.Kind] {
		badRequest(c, "kind", "must be one of plan, coupon, customer, subscription, credit")
		return
	}
	n, err := s.opts.Sync.RetryAll(c.Request.Context(), body.Kind)
	if err != nil {
		writeError(c, err)
		return
	}
	if s.opts.Kick != nil {
		s.opts.Kick()
	}
	c.JSON(http.StatusAccepted, gin.H{"retried": n})
}

// checkDrift queues a drift check of every synced record now (the hourly
// drift job, on demand); the workers read each object back from Zuora and
// repair what differs.
func (s *Server) checkDrift(c *gin.Context) {
	n, err := s.opts.Sync.EnqueueDriftChecksNow(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	if s.opts.Kick != nil {
		s.opts.Kick()
	}
	c.JSON(http.StatusAccepted, gin.H{"queued": n})
}

// recheckSyncRecords is `billsync sync <kinds>` through the service: every
// record of the kinds is re-checked (reconciled when its payload changed),
// and the failed and dead ones are retried.
func (s *Server) recheckSyncRecords(c *gin.Context) {
	var body struct {
		Kinds []string `json:"kinds"`
	}
	if c.Request.ContentLength != 0 {
		if !decodeJSON(c, &body) {
			return
		}
	}
	if len(body.Kinds) == 0 {
		body.Kinds = []string{store.EntityPlan, store.EntityCoupon, store.EntityCustomer, store.EntitySubscription}
	}
	for _, k := range body.Kinds {
		if !syncKinds[k] {
			badRequest(c, "kinds", "each must be one of plan, coupon, customer, subscription, credit")
			return
		}
	}
	n, err := s.opts.Sync.RecheckAll(c.Request.Context(), body.Kinds)
	if err != nil {
		writeError(c, err)
		return
	}
	var retried int64
	for _, k := range body.Kinds {
		m, err := s.opts.Sync.RetryAll(c.Request.Context(), k)
		if err != nil {
			writeError(c, err)
			return
		}
		retried += m
	}
	if s.opts.Kick != nil {
		s.opts.Kick()
	}
	c.JSON(http.StatusAccepted, gin.H{"rechecked": n, "retried": retried})
}

func (s *Server) listMappings(c *gin.Context) {
	o := mappings.ListOptions{Kind: mappings.Kind(c.Query("kind")), LocalID: c.Query("localId"), After: c.Query("cursor")}
	if o.Kind != "" {
		known := false
		for _, k := range mappings.Kinds {
			known = known || k == o.Kind
		}
		if !known {
			badRequest(c, "kind", "unknown mapping kind")
			return
		}
	}
	var ok bool
	if o.Limit, ok = queryLimit(c, 500); !ok {
		return
	}
	ms, next, err := s.opts.Mappings.List(c.Request.Context(), o)
	if err != nil {
		writeError(c, err)
		return
	}
	out := gin.H{"data": ms}
	if next != "" {
		out["nextCursor"] = next
	}
	c.JSON(http.StatusOK, out)
}
