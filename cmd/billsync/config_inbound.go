package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/billsync/billsync/web"
)

// InboundConfig configures the Zuora → billsync side: how callouts
// authenticate and how Zuora accounts become customers.
type InboundConfig struct {
	WebhookUsername      string
	WebhookPassword      string
	WebhookHMACSecret    string
	WebhookHMACHeader    string
	WebhookHMACAlgorithm string
	WebhookHMACFormat    string
	WebhookMaxAge        time.Duration
	WebhookRequireTS     bool
	InboundIdentityField string
	InboundGraceField    string
}

func defaultInboundConfig() InboundConfig {
	return InboundConfig{WebhookUsername: "zuora", WebhookHMACHeader: "X-Zuora-Signature", WebhookHMACAlgorithm: "SHA-256",
		WebhookHMACFormat: "BASE64", WebhookMaxAge: 24 * time.Hour, InboundGraceField: "GracePeriod__c"}
}

func (c *InboundConfig) settings() []setting {
	return []setting{
		{"BILLSYNC_WEBHOOK_USERNAME", "webhook-username", "Basic auth user Zuora's callouts must send", &c.WebhookUsername},
		{"BILLSYNC_WEBHOOK_PASSWORD", "webhook-password", "Basic auth password Zuora's callouts must send (empty: webhooks answer 503)", &c.WebhookPassword},
		{"BILLSYNC_WEBHOOK_HMAC_SECRET", "webhook-hmac-secret", "optional: also require the callout template's HMAC signature header", &c.WebhookHMACSecret},
		{"BILLSYNC_WEBHOOK_HMAC_HEADER", "webhook-hmac-header", "header carrying the HMAC signature", &c.WebhookHMACHeader},
		{"BILLSYNC_WEBHOOK_HMAC_ALGORITHM", "webhook-hmac-algorithm", "MD5, SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512 (as in the callout template)", &c.WebhookHMACAlgorithm},
		{"BILLSYNC_WEBHOOK_HMAC_FORMAT", "webhook-hmac-format", "BASE64 or HEX (as in the callout template)", &c.WebhookHMACFormat},
		{"BILLSYNC_WEBHOOK_MAX_AGE", "webhook-max-age", "with HMAC: a signed callout whose Timestamp parameter is older is refused as a replay (docs/inbound.md)", &c.WebhookMaxAge},
		{"BILLSYNC_WEBHOOK_REQUIRE_TIMESTAMP", "webhook-require-timestamp", "with HMAC: refuse signed callouts without a Timestamp parameter", &c.WebhookRequireTS},
		{"BILLSYNC_INBOUND_IDENTITY_FIELD", "inbound-identity-field", "Zuora account custom field whose value becomes the customer id (e.g. Gigya_Id__c; empty: the account number)", &c.InboundIdentityField},
		{"BILLSYNC_INBOUND_GRACE_FIELD", "inbound-grace-field", "Zuora product custom field with the grace days after a suspension", &c.InboundGraceField},
	}
}

func (c *InboundConfig) validate() error {
	if c.WebhookPassword != "" && len(c.WebhookPassword) < 12 {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_PASSWORD must be at least 12 characters")
	}
	if c.WebhookHMACSecret != "" && len(c.WebhookHMACSecret) < 12 {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_HMAC_SECRET must be at least 12 characters")
	}
	if c.WebhookPassword != "" && c.WebhookUsername == "" {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_USERNAME is required with BILLSYNC_WEBHOOK_PASSWORD")
	}
	if _, ok := web.HMACAlgorithms[strings.ToUpper(c.WebhookHMACAlgorithm)]; !ok {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_HMAC_ALGORITHM %q must be one of MD5, SHA-1, SHA-224, SHA-256, SHA-384, SHA-512", c.WebhookHMACAlgorithm)
	}
	if f := strings.ToUpper(c.WebhookHMACFormat); f != "BASE64" && f != "HEX" {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_HMAC_FORMAT %q must be BASE64 or HEX", c.WebhookHMACFormat)
	}
	if c.WebhookMaxAge < time.Minute || c.WebhookMaxAge > 30*24*time.Hour {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_MAX_AGE %s must be between 1m and 720h", c.WebhookMaxAge)
	}
	if c.WebhookRequireTS && c.WebhookHMACSecret == "" {
		return fmt.Errorf("config: BILLSYNC_WEBHOOK_REQUIRE_TIMESTAMP needs BILLSYNC_WEBHOOK_HMAC_SECRET (an unsigned timestamp bounds nothing)")
	}
	if c.InboundIdentityField != "" && !strings.HasSuffix(c.InboundIdentityField, "__c") {
		return fmt.Errorf("config: BILLSYNC_INBOUND_IDENTITY_FIELD %q must be a custom field name ending in __c", c.InboundIdentityField)
	}
	if !strings.HasSuffix(c.InboundGraceField, "__c") {
		return fmt.Errorf("config: BILLSYNC_INBOUND_GRACE_FIELD %q must be a custom field name ending in __c", c.InboundGraceField)
	}
	return nil
}

// webhookAuth is the web layer's view of the webhook settings.
func (c *InboundConfig) webhookAuth(maxBody int64) web.WebhookAuth {
	return web.WebhookAuth{Username: c.WebhookUsername, Password: c.WebhookPassword, HMACSecret: c.WebhookHMACSecret,
		HMACHeader: c.WebhookHMACHeader, HMACAlgorithm: c.WebhookHMACAlgorithm, HMACFormat: c.WebhookHMACFormat, MaxBodyBytes: min(maxBody, 256<<10),
		MaxAge: c.WebhookMaxAge, RequireTimestamp: c.WebhookRequireTS}
}
