// Package events tells the app what happened: the events the store writes
// with each change (customer, subscription, access, invoice, payment, dead
// sync records) are a feed (ListEvents, GET /api/v1/events) and are
// delivered to the webhook endpoints the operator configures, signed as the
// Standard Webhooks specification describes (webhook-id, webhook-timestamp,
// webhook-signature: v1,base64(HMAC-SHA256(secret, id.timestamp.body))).
//
// Deliveries are a durable queue (one row per endpoint and event, written in
// the transaction of the change) run by the engine's worker pool: leases,
// heartbeats, deadlines, panics as retryable failures, the soft stop; failed
// deliveries are retried with engine/retry's backoff and are dead after
// MaxAttempts, when a person can resend them. Delivery is at least once:
// receivers de-duplicate on webhook-id (stable across retries and resends).
package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/retry"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// SecretPrefix starts every endpoint secret (the Standard Webhooks form:
// whsec_ + base64 of the key bytes).
const SecretPrefix = "whsec_"

// Config tunes delivery. The zero value works.
type Config struct {
	Workers      int           // concurrent deliveries (default 4)
	Lease        time.Duration // claim lifetime (default 1m)
	PollInterval time.Duration // idle wait between claims (default 1s)
	StopTimeout  time.Duration // how long a stop lets deliveries under way finish (default 10s)
	Timeout      time.Duration // one request (default 10s)
	MaxAttempts  int           // failed attempts before dead (default 10)
	BackoffUnit  time.Duration // attempt⁴ × unit between retries (default 1s)
	MaxBackoff   time.Duration // longest delay (default 1h)
	// AllowHTTP lets endpoints use plain http on any host (default: https,
	// or http on loopback only).
	AllowHTTP  bool
	HTTPClient *http.Client
	Logger     zerolog.Logger
	WorkerID   string
	Now        func() time.Time
}

// Service is the feed, the endpoints and their deliveries.
type Service struct {
	db   *store.DB
	cfg  Config
	log  zerolog.Logger
	pool *worker.Pool
}

// New returns the events service.
func New(db *store.DB, cfg Config) *Service {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.BackoffUnit <= 0 {
		cfg.BackoffUnit = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = "ev-" + randomHex(8)
	}
	if cfg.Now == nil {
		cfg.Now = db.Now
	}
	s := &Service{db: db, cfg: cfg, log: cfg.Logger.With().Str("component", "events").Logger()}
	s.pool = worker.NewQueue(deliveryQueue{s}, worker.Options{Workers: cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval,
		Timeout: cfg.Timeout + 5*time.Second, StopTimeout: cfg.StopTimeout, ID: cfg.WorkerID, Logger: s.log})
	return s
}

// Run delivers until ctx ends, then hands back its claims.
func (s *Service) Run(ctx context.Context) error { return s.pool.Run(ctx) }

// Drain delivers until nothing is due and reports how many it tried.
func (s *Service) Drain(ctx context.Context) (int, error) { return s.pool.Drain(ctx) }

// Kick wakes the workers.
func (s *Service) Kick() { s.pool.Kick() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- the feed ----

// ListEvents returns events after the cursor, oldest first, and the next cursor.
func (s *Service) ListEvents(ctx context.Context, after int64, limit int, types []string, customerID string) ([]store.Event, int64, error) {
	for _, t := range types {
		if !slices.Contains(store.EventTypes, t) {
			return nil, after, &engine.ValidationError{Errors: []engine.FieldError{{Field: "type", Message: "unknown event type " + strconv.Quote(t) +
				"; one of " + strings.Join(store.EventTypes, ", ")}}}
		}
	}
	return s.db.ListEvents(ctx, after, limit, types, customerID)
}

// ---- endpoints ----

// EndpointInput is what the operator sets on an endpoint.
type EndpointInput struct {
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"eventTypes"`
	Enabled     *bool    `json:"enabled"`
}

func (s *Service) check(in EndpointInput) error {
	var errs []engine.FieldError
	u, err := url.Parse(in.URL)
	switch {
	case in.URL == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, engine.FieldError{Field: "url", Message: "must be an absolute https URL"})
	case u.User != nil:
		errs = append(errs, engine.FieldError{Field: "url", Message: "must not carry credentials (deliveries are signed)"})
	case u.Scheme == "http" && !s.cfg.AllowHTTP && !loopback(u.Hostname()):
		errs = append(errs, engine.FieldError{Field: "url", Message: "must be https (plain http only to a loopback address)"})
	case len(in.URL) > 2000:
		errs = append(errs, engine.FieldError{Field: "url", Message: "must be at most 2000 characters"})
	}
	if m := engine.CheckText(in.Description); m != "" || len(in.Description) > 500 {
		errs = append(errs, engine.FieldError{Field: "description", Message: "must be text of at most 500 characters"})
	}
	for _, t := range in.EventTypes {
		if !slices.Contains(store.EventTypes, t) {
			errs = append(errs, engine.FieldError{Field: "eventTypes", Message: "unknown event type " + strconv.Quote(t) + "; one of " + strings.Join(store.EventTypes, ", ")})
		}
	}
	if len(errs) > 0 {
		return &engine.ValidationError{Errors: errs}
	}
	return nil
}

func loopback(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// CreateEndpoint stores a new endpoint and returns it with its signing
// secret: the only time the secret is shown.
func (s *Service) CreateEndpoint(ctx context.Context, in EndpointInput) (store.WebhookEndpoint, error) {
	if err := s.check(in); err != nil {
		return store.WebhookEndpoint{}, err
	}
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return store.WebhookEndpoint{}, err
	}
	secret := SecretPrefix + base64.StdEncoding.EncodeToString(key)
	e := store.WebhookEndpoint{ID: "we_" + randomHex(8), URL: in.URL, Description: in.Description, EventTypes: in.EventTypes,
		Enabled: in.Enabled == nil || *in.Enabled, Secret: secret}
	out, err := s.db.CreateWebhookEndpoint(ctx, e)
	if err != nil {
		return out, err
	}
	out.Secret = secret
	return out, nil
}

// UpdateEndpoint changes an endpoint (fields left empty keep their value,
// except eventTypes, which an explicit empty list sets to every type).
func (s *Service) UpdateEndpoint(ctx context.Context, id string, in EndpointInput, typesGiven bool) (store.WebhookEndpoint, error) {
	cur, err := s.db.GetWebhookEndpoint(ctx, id)
	if err != nil {
		return cur, err
	}
	if in.URL == "" {
		in.URL = cur.URL
	}
	if !typesGiven {
		in.EventTypes = cur.EventTypes
	}
	if err := s.check(in); err != nil {
		return cur, err
	}
	cur.URL, cur.Description, cur.EventTypes = in.URL, in.Description, in.EventTypes
	if in.Enabled != nil {
		cur.Enabled = *in.Enabled
	}
	return s.db.UpdateWebhookEndpoint(ctx, cur)
}

// Endpoint returns one endpoint (never its secret).
func (s *Service) Endpoint(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	return s.db.GetWebhookEndpoint(ctx, id)
}

// Endpoints lists the endpoints (never their secrets).
func (s *Service) Endpoints(ctx context.Context) ([]store.WebhookEndpoint, error) {
	return s.db.ListWebhookEndpoints(ctx)
}

// DeleteEndpoint removes an endpoint and its deliveries.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	return s.db.DeleteWebhookEndpoint(ctx, id)
}

// Deliveries lists an endpoint's newest deliveries.
func (s *Service) Deliveries(ctx context.Context, endpointID string, limit int) ([]store.Delivery, error) {
	if _, err := s.db.GetWebhookEndpoint(ctx, endpointID); err != nil {
		return nil, err
	}
	return s.db.ListDeliveries(ctx, endpointID, limit)
}

// DeliveryCounts returns, per endpoint, the deliveries per state.
func (s *Service) DeliveryCounts(ctx context.Context) (map[string]map[string]int64, error) {
	return s.db.DeliveryCounts(ctx)
}

// Resend makes a delivery due again (same event, same webhook-id).
func (s *Service) Resend(ctx context.Context, endpointID string, id int64) error {
	ok, err := s.db.ResendDelivery(ctx, endpointID, id)
	if err != nil {
		return err
	}
	if !ok {
		return &engine.ConflictError{Field: "delivery", Message: "no such delivery of this endpoint, or it is being sent right now"}
	}
	s.Kick()
	return nil
}

// ---- signing ----

// Body is what a delivery POSTs: the event as JSON.
func Body(e store.Event) []byte {
	b, _ := json.Marshal(struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		Timestamp  string          `json:"timestamp"`
		CustomerID string          `json:"customerId,omitempty"`
		Data       json.RawMessage `json:"data"`
	}{e.WebhookID(), e.Type, e.CreatedAt.UTC().Format(time.RFC3339Nano), e.CustomerID, e.Data})
	return b
}

// Sign returns the webhook-signature value for a message.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return "", fmt.Errorf("the endpoint secret is not base64: %w", err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", msgID, ts.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// ---- the delivery queue ----

type deliveryQueue struct{ s *Service }

func (q deliveryQueue) Claim(ctx context.Context, holder string, n int, lease time.Duration) ([]worker.Job, error) {
	ds, err := q.s.db.ClaimDeliveries(ctx, holder, n, lease)
	jobs := make([]worker.Job, len(ds))
	for i, d := range ds {
		jobs[i] = worker.Job{Lease: store.Lease{RecordID: d.ID, Token: d.LeaseToken}, Kind: d.EventType, ID: d.Event.WebhookID(), Item: d}
	}
	return jobs, err
}

func (q deliveryQueue) Heartbeat(ctx context.Context, holder string, leases []store.Lease, lease time.Duration) (map[int64]bool, error) {
	return q.s.db.HeartbeatDeliveries(ctx, holder, leases, lease)
}

func (q deliveryQueue) Release(ctx context.Context, holder string) error {
	return q.s.db.ReleaseDeliveries(ctx, holder)
}

func (q deliveryQueue) LeaseLost(worker.Job, worker.Attempt) {}

// statusError is a receiver's non-2xx answer.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("the endpoint answered %d %s", e.status, strings.TrimSpace(e.body))
}

// Work POSTs the signed event.
func (q deliveryQueue) Work(ctx context.Context, job worker.Job) (any, error) {
	s := q.s
	d := job.Item.(store.Delivery)
	if d.URL == "" {
		return nil, reconcile.Terminal{Err: fmt.Errorf("endpoint %s is gone", d.EndpointID)}
	}
	body := Body(d.Event)
	ts := s.cfg.Now()
	sig, err := Sign(d.Secret, d.Event.WebhookID(), ts, body)
	if err != nil {
		return nil, reconcile.Terminal{Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return nil, reconcile.Terminal{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "billsync-webhooks/1")
	req.Header.Set("webhook-id", d.Event.WebhookID())
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	res, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, &statusError{status: res.StatusCode, body: string(b)}
	}
	return res.StatusCode, nil
}

// Finish records the attempt: delivered on 2xx, else failed with backoff
// (Retry-After is not read: receivers are the app's) and dead after
// MaxAttempts.
func (q deliveryQueue) Finish(ctx context.Context, holder string, job worker.Job, a worker.Attempt) error {
	s := q.s
	d := job.Item.(store.Delivery)
	o := store.DeliveryOutcome{Attempts: d.Attempts + 1}
	if a.Err == nil {
		o.State = store.DeliveryDelivered
		o.Status, _ = a.Result.(int)
	} else {
		o.Error = a.Err.Error()
		if se, ok := a.Err.(*statusError); ok {
			o.Status = se.status
		}
		f := reconcile.Classify(a.Err)
		switch {
		case !f.Retryable || o.Attempts >= s.cfg.MaxAttempts:
			o.State = store.StateDead
		default:
			o.State = store.StateFailed
			o.NextAttempt = s.cfg.Now().Add(retry.Policy{Unit: s.cfg.BackoffUnit, Max: s.cfg.MaxBackoff}.Delay(o.Attempts, 0))
		}
		a.Log.Warn().Str("endpoint", d.EndpointID).Int("attempt", o.Attempts).Str("error", o.Error).Msg("webhook delivery failed")
	}
	return s.db.FinishDelivery(ctx, d, holder, o)
}
