package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine/events"
	"github.com/billsync/billsync/engine/store"
)

// Events is what the event feed and the webhook endpoint API need.
type Events interface {
	ListEvents(ctx context.Context, after int64, limit int, types []string, customerID string) ([]store.Event, int64, error)
	CreateEndpoint(ctx context.Context, in events.EndpointInput) (store.WebhookEndpoint, error)
	UpdateEndpoint(ctx context.Context, id string, in events.EndpointInput, typesGiven bool) (store.WebhookEndpoint, error)
	Endpoint(ctx context.Context, id string) (store.WebhookEndpoint, error)
	Endpoints(ctx context.Context) ([]store.WebhookEndpoint, error)
	DeleteEndpoint(ctx context.Context, id string) error
	Deliveries(ctx context.Context, endpointID string, limit int) ([]store.Delivery, error)
	Resend(ctx context.Context, endpointID string, id int64) error
}

func (s *Server) registerEvents(api *gin.RouterGroup) {
	api.GET("/events", s.listEvents)
	api.POST("/webhook-endpoints", s.createEndpoint)
	api.GET("/webhook-endpoints", s.listEndpoints)
	api.GET("/webhook-endpoints/:id", s.getEndpoint)
	api.PATCH("/webhook-endpoints/:id", s.patchEndpoint)
	api.DELETE("/webhook-endpoints/:id", s.deleteEndpoint)
	api.GET("/webhook-endpoints/:id/deliveries", s.listDeliveries)
	api.POST("/webhook-endpoints/:id/deliveries/:delivery/resend", s.resendDelivery)
}

// EventsBody is a page of the feed: next is the cursor to pass as after
// (the last id returned, or the given cursor when nothing is new).
type EventsBody struct {
	Data []store.Event `json:"data"`
	Next string        `json:"next"`
}

func (s *Server) listEvents(c *gin.Context) {
	var after int64
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			badRequest(c, "after", "must be an event id (a non-negative integer) from an earlier page")
			return
		}
		after = n
	}
	limit, ok := queryLimit(c, 500)
	if !ok {
		return
	}
	var types []string
	for _, t := range c.QueryArray("type") {
		types = append(types, strings.Split(t, ",")...)
	}
	evs, next, err := s.opts.Events.ListEvents(c.Request.Context(), after, limit, types, c.Query("customerId"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, EventsBody{Data: evs, Next: strconv.FormatInt(next, 10)})
}

func endpointID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !strings.HasPrefix(id, "we_") || len(id) > 40 || strings.Trim(id[3:], "0123456789abcdef") != "" {
		badRequest(c, "id", "must be a webhook endpoint id such as we_0123456789abcdef")
		return "", false
	}
	return id, true
}

func (s *Server) createEndpoint(c *gin.Context) {
	var in events.EndpointInput
	if !decodeJSON(c, &in) {
		return
	}
	ep, err := s.opts.Events.CreateEndpoint(c.Request.Context(), in)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, ep)
}

func (s *Server) listEndpoints(c *gin.Context) {
	eps, err := s.opts.Events.Endpoints(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ListBody[store.WebhookEndpoint]{Data: eps})
}

func (s *Server) getEndpoint(c *gin.Context) {
	id, ok := endpointID(c)
	if !ok {
		return
	}
	ep, err := s.opts.Events.Endpoint(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ep)
}

func (s *Server) patchEndpoint(c *gin.Context) {
	id, ok := endpointID(c)
	if !ok {
		return
	}
	var in struct {
		URL         string    `json:"url"`
		Description *string   `json:"description"`
		EventTypes  *[]string `json:"eventTypes"`
		Enabled     *bool     `json:"enabled"`
	}
	if !decodeJSON(c, &in) {
		return
	}
	cur, err := s.opts.Events.Endpoint(c.Request.Context(), id)
	if err != nil {
		writeError(c, err)
		return
	}
	upd := events.EndpointInput{URL: in.URL, Description: cur.Description, Enabled: in.Enabled}
	if in.Description != nil {
		upd.Description = *in.Description
	}
	if in.EventTypes != nil {
		upd.EventTypes = *in.EventTypes
	}
	ep, err := s.opts.Events.UpdateEndpoint(c.Request.Context(), id, upd, in.EventTypes != nil)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ep)
}

func (s *Server) deleteEndpoint(c *gin.Context) {
	id, ok := endpointID(c)
	if !ok {
		return
	}
	if err := s.opts.Events.DeleteEndpoint(c.Request.Context(), id); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) listDeliveries(c *gin.Context) {
	id, ok := endpointID(c)
	if !ok {
		return
	}
	limit, ok := queryLimit(c, 500)
	if !ok {
		return
	}
	ds, err := s.opts.Events.Deliveries(c.Request.Context(), id, limit)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ListBody[store.Delivery]{Data: ds})
}

func (s *Server) resendDelivery(c *gin.Context) {
	id, ok := endpointID(c)
	if !ok {
		return
	}
	did, err := strconv.ParseInt(c.Param("delivery"), 10, 64)
	if err != nil || did <= 0 {
		badRequest(c, "delivery", "must be a positive integer")
		return
	}
	if err := s.opts.Events.Resend(c.Request.Context(), id, did); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"resent": did})
}
