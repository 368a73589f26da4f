package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/billsync/billsync/engine/usage"
)

// UsageService is what the usage API needs; *usage.Ledger implements it.
type UsageService interface {
	Ingest(ctx context.Context, events []usage.Event) ([]usage.Result, error)
	Sync(ctx context.Context, o usage.SyncOptions) (*usage.Report, error)
	Windows(ctx context.Context, subID string, f usage.WindowFilter) ([]usage.Window, error)
}

func (s *Server) registerUsage(api *gin.RouterGroup) {
	api.POST("/usage", s.postUsage)
	api.GET("/subscriptions/:id/usage", s.getSubscriptionUsage)
	api.POST("/subscriptions/:id/sync-usage", s.syncSubscriptionUsage)
	api.POST("/usage/sync", s.syncUsage)
}

// syncUsage is the hourly usage job on demand (`billsync sync usage`):
// windows sealed after their hour and grace, everything pending uploaded.
func (s *Server) syncUsage(c *gin.Context) {
	if c.Request.ContentLength != 0 {
		var in syncUsageIn // includeCurrentHour means nothing without a subscription
		if !decodeJSON(c, &in) {
			return
		}
	}
	rep, err := s.opts.Usage.Sync(c.Request.Context(), usage.SyncOptions{})
	if err != nil {
		writeError(c, err)
		return
	}
	if rep.Sent == nil {
		rep.Sent = []usage.SentRow{}
	}
	c.JSON(http.StatusOK, rep)
}

// usageEventIn is one event as sent. Quantity is a JSON number or a numeric
// string, kept as text: it is parsed exactly, never through float64.
type usageEventIn struct {
	IdempotencyKey string          `json:"idempotencyKey"`
	SubscriptionID string          `json:"subscriptionId"`
	ChargeID       string          `json:"chargeId"`
	Feature        string          `json:"feature"`
	Quantity       json.RawMessage `json:"quantity"`
	Timestamp      string          `json:"timestamp"`
}

type usageBatchIn struct {
	Events []usageEventIn `json:"events"`
}

type usageResultOut struct {
	Index          int        `json:"index"`
	IdempotencyKey string     `json:"idempotencyKey"`
	Status         string     `json:"status"`
	Field          string     `json:"field,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	ChargeID       string     `json:"chargeId,omitempty"`
	WindowStart    *time.Time `json:"windowStart,omitempty"`
}

// postUsage ingests a batch of up to 1,000 events: each gets its own result;
// the accepted ones are stored before the answer even when others are
// rejected.
func (s *Server) postUsage(c *gin.Context) {
	var in usageBatchIn
	if !decodeJSON(c, &in) {
		return
	}
	switch {
	case in.Events == nil:
		badRequest(c, "events", "is required: an array of 1 to 1000 usage events")
		return
	case len(in.Events) == 0:
		badRequest(c, "events", "must hold at least one event")
		return
	case len(in.Events) > usage.MaxBatch:
		badRequest(c, "events", fmt.Sprintf("must hold at most %d events (got %d)", usage.MaxBatch, len(in.Events)))
		return
	}
	out := make([]usageResultOut, len(in.Events))
	events := make([]usage.Event, 0, len(in.Events))
	index := make([]int, 0, len(in.Events))
	for i, e := range in.Events {
		out[i] = usageResultOut{Index: i, IdempotencyKey: e.IdempotencyKey}
		ev := usage.Event{IdempotencyKey: e.IdempotencyKey, SubscriptionID: e.SubscriptionID, ChargeID: e.ChargeID, Feature: e.Feature}
		q, field, msg := parseUsageQuantity(e.Quantity)
		if field == "" && msg != "" {
			badRequest(c, fmt.Sprintf("events[%d].quantity", i), msg)
			return
		}
		if msg != "" {
			out[i].Status, out[i].Field, out[i].Reason = string(usage.Rejected), field, msg
			continue
		}
		ev.Quantity = q
		if e.Timestamp == "" {
			out[i].Status, out[i].Field, out[i].Reason = string(usage.Rejected), "timestamp", "is required (RFC 3339, e.g. 2026-11-20T13:05:00Z)"
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
		if err != nil {
			out[i].Status, out[i].Field, out[i].Reason = string(usage.Rejected), "timestamp", fmt.Sprintf("must be an RFC 3339 date-time, got %q", e.Timestamp)
			continue
		}
		ev.Timestamp = ts
		events = append(events, ev)
		index = append(index, i)
	}
	if len(events) > 0 {
		res, err := s.opts.Usage.Ingest(c.Request.Context(), events)
		if err != nil {
			writeError(c, err)
			return
		}
		for j, r := range res {
			o := &out[index[j]]
			o.Status, o.Field, o.Reason = string(r.Status), r.Field, r.Reason
			if r.Status == usage.Accepted {
				ws := r.WindowStart
				o.ChargeID, o.WindowStart = r.ChargeID, &ws
			}
		}
	}
	counts := map[string]int{}
	for _, o := range out {
		counts[o.Status]++
	}
	c.JSON(http.StatusOK, gin.H{"accepted": counts[string(usage.Accepted)], "duplicates": counts[string(usage.Duplicate)],
		"rejected": counts[string(usage.Rejected)], "results": out})
}

// parseUsageQuantity reads a JSON number or numeric string exactly. A JSON
// value of another type is a bad request (field ""); a bad or negative
// number rejects the event (field "quantity").
func parseUsageQuantity(raw json.RawMessage) (decimal.Decimal, string, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return decimal.Zero, "quantity", "is required: a decimal number ≥ 0"
	}
	text := string(raw)
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return decimal.Zero, "", "must be a number or a numeric string"
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return decimal.Zero, "", "must be a number or a numeric string, got JSON " + jsonKind(raw[0])
	}
	q, err := usage.ParseQuantity(text)
	if err != nil {
		return decimal.Zero, "quantity", err.Error()
	}
	return q, "", ""
}

func jsonKind(b byte) string {
	switch b {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	default:
		return "value"
	}
}

type syncUsageIn struct {
	IncludeCurrentHour bool `json:"includeCurrentHour"`
}

// syncSubscriptionUsage is "Sync usage to Zuora" for one subscription: it
// seals what can be sealed now (the current hour too when asked) and uploads.
func (s *Server) syncSubscriptionUsage(c *gin.Context) {
	var in syncUsageIn
	if c.Request.ContentLength != 0 {
		if !decodeJSON(c, &in) {
			return
		}
	}
	rep, err := s.opts.Usage.Sync(c.Request.Context(), usage.SyncOptions{SubscriptionID: c.Param("id"), IncludeCurrentHour: in.IncludeCurrentHour})
	if err != nil {
		writeError(c, err)
		return
	}
	if rep.Sent == nil {
		rep.Sent = []usage.SentRow{}
	}
	c.JSON(http.StatusOK, rep)
}

// getSubscriptionUsage lists a subscription's windows, newest first: quantity
// ingested, uploaded and pending, and Zuora's usage ids.
func (s *Server) getSubscriptionUsage(c *gin.Context) {
	var f usage.WindowFilter
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				badRequest(c, p.name, "must be an RFC 3339 date-time")
				return
			}
			*p.dst = t
		}
	}
	var ok bool
	if f.Limit, ok = queryLimit(c, 5000); !ok {
		return
	}
	ws, err := s.opts.Usage.Windows(c.Request.Context(), c.Param("id"), f)
	if err != nil {
		writeError(c, err)
		return
	}
	if ws == nil {
		ws = []usage.Window{}
	}
	c.JSON(http.StatusOK, gin.H{"subscriptionId": c.Param("id"), "windows": ws})
}
