package web

import (
	"context"
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // Zuora's callout HMAC offers MD5; only used when configured so
	"crypto/sha1" //nolint:gosec // idem, SHA-1
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
)

// Inbound is what the webhook and inbound API handlers need.
type Inbound interface {
	Accept(ctx context.Context, c inbound.Callout) (inbound.Accepted, error)
	ListInbox(ctx context.Context, f inbound.InboxFilter) ([]inbound.InboxEntry, int64, error)
	GetInbox(ctx context.Context, id int64) (inbound.InboxEntry, error)
	RetryInbox(ctx context.Context, id int64) (inbound.InboxEntry, error)
	PullCustomer(ctx context.Context, customerID string) (inbound.PullResult, error)
	PullAccount(ctx context.Context, accountKey string) (inbound.PullResult, error)
	LinkAccount(ctx context.Context, customerID, accountKey string) (inbound.Link, bool, error)
	UnlinkAccount(ctx context.Context, customerID, accountKey string) error
	Links(ctx context.Context, customerID string) ([]inbound.Link, error)
	Grants(ctx context.Context, customerID string) ([]inbound.Grant, error)
	Invoices(ctx context.Context, customerID string) ([]store.Invoice, error)
	CustomerAccess(ctx context.Context, customerID string) ([]inbound.Access, []inbound.SubscriptionPayment, error)
	CheckTenant(ctx context.Context) (zuora.TenantReport, error)
}

// WebhookAuth is how Zuora's callouts authenticate: Basic credentials
// (required), and optionally an HMAC signature header as configured in the
// callout template (§11b).
type WebhookAuth struct {
	Username string
	Password string
	// HMACSecret enables the signature check: Header carries
	// Format(HMAC-Algorithm(secret, body)).
	HMACSecret    string
	HMACHeader    string // default X-Zuora-Signature
	HMACAlgorithm string // MD5, SHA-1, SHA-224, SHA-256 (default), SHA-384, SHA-512
	HMACFormat    string // BASE64 (default) or HEX
	MaxBodyBytes  int64  // default 64 KiB
	// MaxAge bounds replays of a signed callout: with the HMAC check on, a
	// body carrying a Timestamp parameter (a date-time merge field of the
	// event's object, signed with the body) older than MaxAge is refused,
	// and de-duplication is on the signed body, whatever its notification
	// id. Default 24 h.
	MaxAge time.Duration
	// RequireTimestamp refuses signed callouts without a Timestamp parameter.
	RequireTimestamp bool
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// timestampLayouts are the date-time forms a Timestamp parameter may take
// (Zuora renders date-times with an offset; a form without one is read as UTC).
var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// checkTimestamp reads a signed callout's Timestamp parameter: msg is why it
// is refused (not a date-time, older than maxAge, in the future), present
// whether the body had one.
func checkTimestamp(v string, now time.Time, maxAge time.Duration) (present bool, msg string) {
	if v == "" {
		return false, ""
	}
	for i, layout := range timestampLayouts {
		t, err := time.Parse(layout, v)
		if err != nil {
			continue
		}
		skew := 5 * time.Minute
		if i >= 3 { // no offset: the tenant's time zone may be up to 14 h ahead of UTC
			skew += 14 * time.Hour
		}
		switch {
		case t.Before(now.Add(-maxAge)):
			return true, fmt.Sprintf("the signed Timestamp %s is older than %s: a replayed callout is refused", v, maxAge)
		case t.After(now.Add(skew)):
			return true, fmt.Sprintf("the signed Timestamp %s is in the future", v)
		}
		return true, ""
	}
	return true, fmt.Sprintf("parameter Timestamp=%q is not a date-time such as 2026-11-20T13:05:00.000+01:00", v)
}

// HMACAlgorithms lists the algorithms Zuora's callout templates offer.
var HMACAlgorithms = map[string]func() hash.Hash{
	"MD5": md5.New, "SHA-1": sha1.New, "SHA-224": sha256.New224, "SHA-256": sha256.New, "SHA-384": sha512.New384, "SHA-512": sha512.New,
}

func (s *Server) registerInbound(g *gin.Engine, api *gin.RouterGroup) {
	wh := g.Group("/webhooks/zuora")
	wh.POST("/account-created", s.webhook(inbound.EventAccountCreated))
	wh.POST("/subscription-created", s.webhook(inbound.EventSubscriptionCreated))
	wh.POST("/subscription-changed", s.webhook(inbound.EventSubscriptionChanged))
	wh.POST("/subscription-cancelled", s.webhook(inbound.EventSubscriptionCancelled))
	wh.POST("/invoice-posted", s.webhook(inbound.EventInvoicePosted))
	wh.POST("/invoice-paid", s.webhook(inbound.EventInvoicePaid))
	wh.POST("/payment-failed", s.webhook(inbound.EventPaymentFailed))
	wh.POST("/scheduled-order-completed", s.webhook(inbound.EventOrderCompleted))
	wh.POST("/account-updated", s.webhook(inbound.EventAccountUpdated))
	s.registerInboundAPI(api)
}

// webhookProblem answers a callout without a problem body's bulk: Zuora keeps
// the response (60 KB) in its callout history, where a short reason helps.
func webhookFail(c *gin.Context, status int, msg string) {
	c.Abort()
	c.JSON(status, gin.H{"success": false, "message": msg})
}

func equalSecret(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// webhook accepts one kind of Zuora callout: authenticate (Basic with a 401
// challenge, as Zuora's non-preemptive mode expects), cap and check the body,
// write it to the inbox, answer 200. Anything rejected is not stored: 401
// unauthenticated, 400 malformed or incomplete (Zuora does not retry 4xx
// other than 403/408/429), 413 too large.
func (s *Server) webhook(event string) gin.HandlerFunc {
	a := s.opts.Webhooks
	if a.MaxBodyBytes <= 0 {
		a.MaxBodyBytes = 64 << 10
	}
	if a.HMACHeader == "" {
		a.HMACHeader = "X-Zuora-Signature"
	}
	if a.MaxAge <= 0 {
		a.MaxAge = 24 * time.Hour
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	newHash := HMACAlgorithms[strings.ToUpper(a.HMACAlgorithm)]
	if newHash == nil {
		newHash = sha256.New
	}
	return func(c *gin.Context) {
		if a.Username == "" || a.Password == "" {
			// Misconfigured: a 5xx makes Zuora retry later instead of dropping the callout.
			logger(c).Error().Msg("Zuora callout refused: webhook credentials are not configured")
			webhookFail(c, http.StatusServiceUnavailable, "webhook credentials are not configured on billsync")
			return
		}
		user, pass, ok := c.Request.BasicAuth()
		if !ok || !(equalSecret(user, a.Username) && equalSecret(pass, a.Password)) {
			c.Header("WWW-Authenticate", `Basic realm="billsync", charset="UTF-8"`)
			webhookFail(c, http.StatusUnauthorized, "authentication required")
			return
		}
		if c.Request.ContentLength > a.MaxBodyBytes {
			webhookFail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body must be at most %d bytes", a.MaxBodyBytes))
			return
		}
		body, err := io.ReadAll(io.LimitReader(c.Request.Body, a.MaxBodyBytes+1))
		if err != nil {
			webhookFail(c, http.StatusBadRequest, "could not read the body")
			return
		}
		if int64(len(body)) > a.MaxBodyBytes {
			webhookFail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body must be at most %d bytes", a.MaxBodyBytes))
			return
		}
		if a.HMACSecret != "" {
			m := hmac.New(newHash, []byte(a.HMACSecret))
			m.Write(body)
			sum := m.Sum(nil)
			want := base64.StdEncoding.EncodeToString(sum)
			if strings.EqualFold(a.HMACFormat, "HEX") {
				want = hex.EncodeToString(sum)
			}
			got := strings.TrimSpace(c.GetHeader(a.HMACHeader))
			if strings.EqualFold(a.HMACFormat, "HEX") {
				got = strings.ToLower(got)
			}
			if got == "" || !equalSecret(got, want) {
				webhookFail(c, http.StatusUnauthorized, "missing or wrong signature header "+a.HMACHeader)
				return
			}
		}
		params, msg := parseCalloutBody(body)
		if msg != "" {
			webhookFail(c, http.StatusBadRequest, msg)
			return
		}
		objectID, msg := calloutObject(event, params)
		if msg != "" {
			webhookFail(c, http.StatusBadRequest, msg)
			return
		}
		for _, h := range []string{"Zuora-Notification-Id", "Zuora-Request-Id"} {
			if m := engine.CheckText(c.GetHeader(h)); m != "" {
				webhookFail(c, http.StatusBadRequest, "header "+h+" "+m)
				return
			}
		}
		notificationID := trimHeader(c.GetHeader("Zuora-Notification-Id"), 100)
		if a.HMACSecret != "" {
			present, msg := checkTimestamp(params["timestamp"], a.Now(), a.MaxAge)
			switch {
			case msg != "":
				logger(c).Warn().Str("event", event).Str("object", objectID).Msg("signed callout refused: " + msg)
				webhookFail(c, http.StatusUnauthorized, msg)
				return
			case present:
				// The signed body names the object's state at a point in
				// time: the same body again is the same callout, whatever
				// notification id a replay carries.
				sum := sha256.Sum256(body)
				logger(c).Debug().Str("notification_id", notificationID).Msg("signed callout de-duplicated on its body")
				notificationID = "sig:" + hex.EncodeToString(sum[:16])
			case a.RequireTimestamp:
				webhookFail(c, http.StatusBadRequest, "the callout needs a signed Timestamp parameter (a date-time merge field)")
				return
			}
		}
		acc, err := s.opts.Inbound.Accept(c.Request.Context(), inbound.Callout{Event: event, ObjectID: objectID,
			NotificationID: notificationID, RequestID: trimHeader(c.GetHeader("Zuora-Request-Id"), 64),
			Source: inbound.SourceCallout, Payload: string(body)})
		if err != nil {
			logger(c).Error().Err(err).Str("event", event).Msg("writing the callout to the inbox failed")
			webhookFail(c, http.StatusServiceUnavailable, "the callout could not be stored; retry later")
			return
		}
		c.JSON(http.StatusOK, gin.H{"success": true, "inboxId": acc.ID, "duplicate": acc.Duplicate})
	}
}

func trimHeader(v string, n int) string {
	v = strings.TrimSpace(v)
	if len(v) > n {
		return v[:n]
	}
	return v
}

// parseCalloutBody reads Zuora's flat JSON object of string parameters; keys
// are matched case-insensitively.
func parseCalloutBody(body []byte) (map[string]string, string) {
	if msg := engine.CheckText(string(body)); msg != "" {
		return nil, "the body " + msg
	}
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, "the body must be a flat JSON object of callout parameters"
	}
	if dec.More() {
		return nil, "the body must hold exactly one JSON object"
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if msg := engine.CheckText(k); msg != "" {
			return nil, "parameter names " + msg
		}
		switch x := v.(type) {
		case string:
			if msg := engine.CheckText(x); msg != "" {
				return nil, fmt.Sprintf("parameter %q %s", k, msg)
			}
			out[strings.ToLower(k)] = strings.TrimSpace(x)
		case json.Number:
			out[strings.ToLower(k)] = x.String()
		case nil:
		default:
			return nil, fmt.Sprintf("parameter %q must be a string (callout bodies are flat)", k)
		}
	}
	return out, ""
}

func validKey(v string) bool {
	if v == "" || len(v) > 100 || strings.ContainsAny(v, "<>{}/ \t\n") {
		return false
	}
	return true
}

// calloutObject picks the object the callout is about.
func calloutObject(event string, p map[string]string) (string, string) {
	var names []string
	what := "a SubscriptionNumber or SubscriptionId"
	switch event {
	case inbound.EventAccountCreated, inbound.EventAccountUpdated, inbound.EventOrderCompleted:
		// A completed scheduled order is reconciled through its account.
		names, what = []string{"accountid", "accountnumber"}, "an AccountId or AccountNumber"
	case inbound.EventInvoicePosted, inbound.EventInvoicePaid:
		names, what = []string{"invoiceid", "invoicenumber"}, "an InvoiceId or InvoiceNumber"
	case inbound.EventPaymentFailed:
		names, what = []string{"paymentid", "paymentnumber"}, "a PaymentId or PaymentNumber"
	default:
		names = []string{"subscriptionnumber", "subscriptionid"}
	}
	for _, n := range names {
		if v, ok := p[n]; ok && v != "" {
			if !validKey(v) {
				return "", fmt.Sprintf("parameter %s=%q is not a Zuora id or number (an unresolved merge field?)", n, v)
			}
			return v, ""
		}
	}
	return "", "the callout needs " + what + " parameter"
}
