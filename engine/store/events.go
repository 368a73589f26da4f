package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/billsync/billsync/engine"
)

// Events for the app (issue 16): every event is one row of the feed, keyed
// by what it says (Key: one event per fact however often the change is read
// again), and one pending webhook delivery per enabled endpoint that wants
// its type, both written in the transaction of the change (the outbox).

// Event types billsync emits.
const (
	EventCustomerCreated      = "customer.created"
	EventSubscriptionCreated  = "subscription.created"
	EventSubscriptionUpdated  = "subscription.updated"
	EventSubscriptionCanceled = "subscription.canceled"
	EventAccessGranted        = "access.granted"
	EventAccessRevoked        = "access.revoked"
	EventInvoicePosted        = "invoice.posted"
	EventInvoicePaid          = "invoice.paid"
	EventPaymentFailed        = "payment.failed"
	EventSyncDead             = "sync.dead"
)

// EventTypes lists every type, in the order the docs name them.
var EventTypes = []string{EventCustomerCreated, EventSubscriptionCreated, EventSubscriptionUpdated, EventSubscriptionCanceled,
	EventAccessGranted, EventAccessRevoked, EventInvoicePosted, EventInvoicePaid, EventPaymentFailed, EventSyncDead}

// Delivery states (the queue's pending, in_flight, failed, dead, and delivered).
const DeliveryDelivered = "delivered"

// Event is one entry of the feed.
type Event struct {
	ID         int64           `json:"id"`
	Type       string          `json:"type"`
	CustomerID string          `json:"customerId,omitempty"`
	Subject    string          `json:"subject,omitempty"`
	Data       json.RawMessage `json:"data"`
	CreatedAt  time.Time       `json:"createdAt"`
}

// WebhookID is the event's stable id on the wire (webhook-id).
func (e Event) WebhookID() string { return fmt.Sprintf("evt_%d", e.ID) }

// NewEvent is an event to emit: Key names the fact (e.g. the invoice id for
// invoice.posted); an event whose Type and Key exist is not emitted again.
type NewEvent struct {
	Type       string
	Key        string
	CustomerID string
	Subject    string
	Data       any
}

type eventRow struct {
	ID         int64 `gorm:"primaryKey"`
	Type       string
	DedupKey   string
	CustomerID string
	Subject    string
	Payload    string
	CreatedAt  time.Time
}

func (eventRow) TableName() string { return "events" }

func eventFromRow(r eventRow) Event {
	return Event{ID: r.ID, Type: r.Type, CustomerID: r.CustomerID, Subject: r.Subject, Data: json.RawMessage(r.Payload), CreatedAt: r.CreatedAt.UTC()}
}

// emit writes events and their deliveries inside tx and reports how many
// were new.
func (db *DB) emit(tx *gorm.DB, evs ...NewEvent) (int, error) {
	now := db.Now()
	n := 0
	for _, e := range evs {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return n, fmt.Errorf("event %s: %w", e.Type, err)
		}
		var ids []int64
		if err := tx.Raw(`INSERT INTO events (type, dedup_key, customer_id, subject, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (dedup_key) DO NOTHING RETURNING id`, e.Type, truncate(e.Type+":"+e.Key, 500), e.CustomerID, e.Subject, string(b), now).
			Scan(&ids).Error; err != nil {
			return n, fmt.Errorf("event %s: %w", e.Type, err)
		}
		if len(ids) == 0 {
			continue // this fact was told before
		}
		n++
		if err := tx.Exec(`INSERT INTO webhook_deliveries (endpoint_id, event_id, state, attempts, next_attempt_at, created_at, updated_at)
			SELECT id, ?, ?, 0, ?, ?, ? FROM webhook_endpoints WHERE enabled = ? AND (event_types = '' OR event_types LIKE ?)`,
			ids[0], StatePending, now, now, now, true, "%,"+e.Type+",%").Error; err != nil {
			return n, fmt.Errorf("event deliveries: %w", err)
		}
	}
	return n, nil
}

// Emit writes events (and their deliveries) in one transaction.
func (db *DB) Emit(ctx context.Context, evs ...NewEvent) (int, error) {
	n := 0
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		n, err = db.emit(tx, evs...)
		return err
	})
	return n, err
}

// ListEvents returns up to limit events after the cursor (an event id), in
// order, and the cursor of the next page (the last id returned; after it
// when nothing is left, so a poller keeps its place).
func (db *DB) ListEvents(ctx context.Context, after int64, limit int, types []string, customerID string) ([]Event, int64, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := db.Gorm.WithContext(ctx).Where("id > ?", after).Order("id").Limit(limit)
	if len(types) > 0 {
		q = q.Where("type IN ?", types)
	}
	if customerID != "" {
		q = q.Where("customer_id = ?", customerID)
	}
	var rows []eventRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, after, err
	}
	out := make([]Event, 0, len(rows))
	next := after
	for _, r := range rows {
		out = append(out, eventFromRow(r))
		next = r.ID
	}
	return out, next, nil
}

// ---- webhook endpoints ----

// WebhookEndpoint is a receiver the operator configured. Secret is set only
// when the endpoint is created (shown once).
type WebhookEndpoint struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Description string    `json:"description,omitempty"`
	EventTypes  []string  `json:"eventTypes"` // empty: every type
	Enabled     bool      `json:"enabled"`
	Secret      string    `json:"secret,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

type endpointRow struct {
	ID          string `gorm:"primaryKey"`
	URL         string
	Description string
	EventTypes  string
	Secret      string
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (endpointRow) TableName() string { return "webhook_endpoints" }

func endpointFromRow(r endpointRow) WebhookEndpoint {
	types := []string{}
	for _, t := range strings.Split(strings.Trim(r.EventTypes, ","), ",") {
		if t != "" {
			types = append(types, t)
		}
	}
	return WebhookEndpoint{ID: r.ID, URL: r.URL, Description: r.Description, EventTypes: types, Enabled: r.Enabled,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func joinTypes(types []string) string {
	if len(types) == 0 {
		return ""
	}
	s := slices.Clone(types)
	slices.Sort(s)
	return "," + strings.Join(slices.Compact(s), ",") + ","
}

// CreateWebhookEndpoint stores an endpoint with its secret.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, e WebhookEndpoint) (WebhookEndpoint, error) {
	now := db.Now()
	r := endpointRow{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: joinTypes(e.EventTypes), Secret: e.Secret,
		Enabled: e.Enabled, CreatedAt: now, UpdatedAt: now}
	if err := db.Gorm.WithContext(ctx).Create(&r).Error; err != nil {
		return WebhookEndpoint{}, err
	}
	return endpointFromRow(r), nil
}

// UpdateWebhookEndpoint changes an endpoint's URL, description, types and
// enabled flag (never its secret).
func (db *DB) UpdateWebhookEndpoint(ctx context.Context, e WebhookEndpoint) (WebhookEndpoint, error) {
	res := db.Gorm.WithContext(ctx).Model(&endpointRow{}).Where("id = ?", e.ID).Updates(map[string]any{"url": e.URL,
		"description": e.Description, "event_types": joinTypes(e.EventTypes), "enabled": e.Enabled, "updated_at": db.Now()})
	if res.Error != nil {
		return WebhookEndpoint{}, res.Error
	}
	if res.RowsAffected == 0 {
		return WebhookEndpoint{}, &engine.NotFoundError{Kind: "webhook endpoint", ID: e.ID}
	}
	return db.GetWebhookEndpoint(ctx, e.ID)
}

// GetWebhookEndpoint returns one endpoint (without its secret).
func (db *DB) GetWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error) {
	var r endpointRow
	err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return WebhookEndpoint{}, &engine.NotFoundError{Kind: "webhook endpoint", ID: id}
	}
	return endpointFromRow(r), err
}

// ListWebhookEndpoints returns every endpoint (without secrets), by id.
func (db *DB) ListWebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	var rows []endpointRow
	if err := db.Gorm.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]WebhookEndpoint, 0, len(rows))
	for _, r := range rows {
		out = append(out, endpointFromRow(r))
	}
	return out, nil
}

// DeleteWebhookEndpoint removes an endpoint and its deliveries.
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&endpointRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return &engine.NotFoundError{Kind: "webhook endpoint", ID: id}
		}
		return tx.Where("endpoint_id = ?", id).Delete(&deliveryRow{}).Error
	})
}

// ---- deliveries: a queue (claim, heartbeat, finish, release) ----

// Delivery is one event for one endpoint.
type Delivery struct {
	ID            int64      `json:"id"`
	EndpointID    string     `json:"endpointId"`
	EventID       int64      `json:"eventId"`
	EventType     string     `json:"eventType"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"nextAttemptAt"`
	LastStatus    int        `json:"lastStatus,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	DeliveredAt   *time.Time `json:"deliveredAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	// For the sender (claimed deliveries only).
	Event      Event  `json:"-"`
	URL        string `json:"-"`
	Secret     string `json:"-"`
	LeaseToken string `json:"-"`
}

type deliveryRow struct {
	ID            int64 `gorm:"primaryKey"`
	EndpointID    string
	EventID       int64
	State         string
	Attempts      int
	NextAttemptAt time.Time
	ClaimedBy     string
	ClaimedUntil  *time.Time
	LeaseToken    string
	LastStatus    int
	LastError     string
	DeliveredAt   *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (deliveryRow) TableName() string { return "webhook_deliveries" }

func deliveryFromRow(r deliveryRow) Delivery {
	return Delivery{ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, State: r.State, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(), LastStatus: r.LastStatus, LastError: r.LastError, DeliveredAt: utcPtr(r.DeliveredAt),
		CreatedAt: r.CreatedAt.UTC(), LeaseToken: r.LeaseToken}
}

// ClaimDeliveries takes up to n due deliveries (pending or failed whose time
// came, in-flight ones whose lease lapsed) with a new lease token, with their
// event, URL and secret.
func (db *DB) ClaimDeliveries(ctx context.Context, holder string, n int, lease time.Duration) ([]Delivery, error) {
	now := db.Now()
	lock := ""
	if db.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []deliveryRow
	err := db.Gorm.WithContext(ctx).Raw(`UPDATE webhook_deliveries SET state = ?, claimed_by = ?, lease_token = ?, claimed_until = ?, updated_at = ?
		WHERE id IN (SELECT id FROM webhook_deliveries
			WHERE (state IN (?, ?) AND next_attempt_at <= ?) OR (state = ? AND claimed_until < ?)
			ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
		RETURNING *`, StateInFlight, holder, holder+"/"+randomToken(), now.Add(lease), now,
		StatePending, StateFailed, now, StateInFlight, now, n).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	slices.SortFunc(rows, func(a, b deliveryRow) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		d := deliveryFromRow(r)
		var ev eventRow
		if err := db.Gorm.WithContext(ctx).Where("id = ?", r.EventID).Take(&ev).Error; err != nil {
			return out, fmt.Errorf("delivery %d: event %d: %w", r.ID, r.EventID, err)
		}
		var ep endpointRow
		if err := db.Gorm.WithContext(ctx).Where("id = ?", r.EndpointID).Take(&ep).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return out, err
		}
		d.Event, d.EventType, d.URL, d.Secret = eventFromRow(ev), ev.Type, ep.URL, ep.Secret
		out = append(out, d)
	}
	return out, nil
}

// HeartbeatDeliveries extends the leases holder still holds.
func (db *DB) HeartbeatDeliveries(ctx context.Context, holder string, leases []Lease, lease time.Duration) (map[int64]bool, error) {
	return db.heartbeat(ctx, "webhook_deliveries", holder, leases, lease)
}

// DeliveryOutcome is what one attempt came to.
type DeliveryOutcome struct {
	State       string // DeliveryDelivered, StateFailed or StateDead
	Attempts    int
	Status      int // the receiver's HTTP status (0: no answer)
	Error       string
	NextAttempt time.Time
}

// FinishDelivery records an attempt, or refuses with ErrLeaseLost.
func (db *DB) FinishDelivery(ctx context.Context, d Delivery, holder string, o DeliveryOutcome) error {
	now := db.Now()
	upd := map[string]any{"state": o.State, "attempts": o.Attempts, "last_status": o.Status, "last_error": truncate(o.Error, 2000),
		"claimed_by": "", "lease_token": "", "claimed_until": nil, "updated_at": now}
	if o.State == DeliveryDelivered {
		upd["delivered_at"] = now
	}
	if !o.NextAttempt.IsZero() {
		upd["next_attempt_at"] = o.NextAttempt
	}
	return db.finishHeld(ctx, &deliveryRow{}, d.ID, holder, d.LeaseToken, now, upd)
}

// ReleaseDeliveries hands back the deliveries holder still holds.
func (db *DB) ReleaseDeliveries(ctx context.Context, holder string) error {
	return db.releaseHeld(ctx, &deliveryRow{}, holder)
}

// ListDeliveries returns an endpoint's newest deliveries first.
func (db *DB) ListDeliveries(ctx context.Context, endpointID string, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var rows []deliveryRow
	if err := db.Gorm.WithContext(ctx).Where("endpoint_id = ?", endpointID).Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(rows))
	types := map[int64]string{}
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.EventID)
	}
	if len(ids) > 0 {
		var evs []eventRow
		if err := db.Gorm.WithContext(ctx).Select("id, type").Where("id IN ?", ids).Find(&evs).Error; err != nil {
			return nil, err
		}
		for _, e := range evs {
			types[e.ID] = e.Type
		}
	}
	for _, r := range rows {
		d := deliveryFromRow(r)
		d.EventType = types[r.EventID]
		out = append(out, d)
	}
	return out, nil
}

// ResendDelivery makes a delivery that is not in flight due now with its
// attempts reset (the same event, the same webhook-id); it reports whether
// it changed one.
func (db *DB) ResendDelivery(ctx context.Context, endpointID string, id int64) (bool, error) {
	now := db.Now()
	res := db.Gorm.WithContext(ctx).Model(&deliveryRow{}).Where("id = ? AND endpoint_id = ? AND state <> ?", id, endpointID, StateInFlight).
		Updates(map[string]any{"state": StatePending, "attempts": 0, "next_attempt_at": now, "updated_at": now})
	return res.RowsAffected > 0, res.Error
}

// DeliveryCounts returns, per endpoint, the number of deliveries per state.
func (db *DB) DeliveryCounts(ctx context.Context) (map[string]map[string]int64, error) {
	var rows []struct {
		EndpointID string
		State      string
		N          int64
	}
	err := db.Gorm.WithContext(ctx).Model(&deliveryRow{}).Select("endpoint_id, state, count(*) AS n").Group("endpoint_id, state").Scan(&rows).Error
	out := map[string]map[string]int64{}
	for _, r := range rows {
		if out[r.EndpointID] == nil {
			out[r.EndpointID] = map[string]int64{}
		}
		out[r.EndpointID][r.State] = r.N
	}
	return out, err
}
