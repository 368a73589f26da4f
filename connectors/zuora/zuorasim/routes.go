package zuorasim

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func (s *Sim) buildRoutes() []*route {
	r := func(method, tpl string, fam family, class limitClass, h handlerFunc) *route {
		return &route{method: method, template: tpl, segs: splitPath(tpl), fam: fam, class: class, h: h,
			idem: method == http.MethodPost || method == http.MethodPatch}
	}
	d, hv, oq := classDefault, classHighVolume, classObjectQuery
	return []*route{
		r("POST", "/oauth/token", famAuth, classNone, s.postToken),

		r("POST", "/v1/object/product", famCRUD, d, s.postProduct),
		r("GET", "/v1/object/product/{id}", famCRUD, d, s.getProduct),
		r("PUT", "/v1/object/product/{id}", famCRUD, d, s.putProduct),
		r("DELETE", "/v1/object/product/{id}", famCRUD, d, s.deleteProduct),
		r("POST", "/v1/object/product-rate-plan", famCRUD, d, s.postPlan),
		r("GET", "/v1/object/product-rate-plan/{id}", famCRUD, d, s.getPlan),
		r("PUT", "/v1/object/product-rate-plan/{id}", famCRUD, d, s.putPlan),
		r("DELETE", "/v1/object/product-rate-plan/{id}", famCRUD, d, s.deletePlan),
		r("POST", "/v1/object/product-rate-plan-charge", famCRUD, d, s.postCharge),
		r("GET", "/v1/object/product-rate-plan-charge/{id}", famCRUD, d, s.getCharge),
		r("PUT", "/v1/object/product-rate-plan-charge/{id}", famCRUD, d, s.putCharge),
		r("DELETE", "/v1/object/product-rate-plan-charge/{id}", famCRUD, d, s.deleteCharge),
		r("GET", "/v1/object/product-rate-plan-charge-tier/{id}", famCRUD, d, s.getTier),
		r("PUT", "/v1/object/product-rate-plan-charge-tier/{id}", famCRUD, d, s.putTier),

		r("GET", "/v1/catalog/products", famREST, d, s.getCatalog),
		r("GET", "/v1/catalog/products/{product-key}", famREST, d, s.getCatalogProduct),
		r("GET", "/v1/products/{product-key}/product-rate-plans", famREST, d, s.getProductRatePlans),
		r("GET", "/v1/rateplan/{product-id}/productRatePlan", famREST, d, s.getProductRatePlans),

		r("POST", "/v1/accounts", famREST, hv, s.postAccount),
		r("GET", "/v1/accounts/{account-key}", famREST, d, s.getAccount),
		r("PUT", "/v1/accounts/{account-key}", famREST, d, s.putAccount),
		r("GET", "/v1/accounts/{account-key}/payment-methods", famREST, d, s.getAccountPaymentMethods),
		r("GET", "/v1/invoices/{invoiceKey}", famREST, d, s.getInvoice),
		r("GET", "/v1/payments/{paymentKey}", famREST, d, s.getPayment),
		r("POST", "/v1/credit-memos", famREST, d, s.postCreditMemo),
		r("GET", "/v1/credit-memos", famREST, d, s.listCreditMemos),
		r("GET", "/v1/credit-memos/{creditMemoKey}", famREST, d, s.getCreditMemo),

		r("POST", "/v1/orders", famREST, hv, s.postOrder),
		r("GET", "/v1/orders/{orderNumber}", famREST, d, s.getOrder),
		r("GET", "/v1/orders/subscription/{subscriptionNumber}", famREST, d, s.getOrdersBySubscription),
		r("PUT", "/v1/orders/{orderNumber}/cancel", famREST, d, s.cancelOrder),
		r("POST", "/v1/orders/preview", famREST, hv, s.postOrderPreview),
		r("POST", "/v1/subscriptions/{subscription-key}/preview", famREST, hv, s.postSubscriptionPreview),
		r("GET", "/v1/subscriptions/{subscription-key}", famREST, d, s.getSubscription),
		r("GET", "/v1/subscriptions/{subscription-key}/versions/{version}", famREST, d, s.getSubscriptionVersion),
		r("GET", "/v1/subscriptions/accounts/{account-key}", famREST, d, s.getSubscriptionsByAccount),
		r("PUT", "/v1/subscriptions/{subscriptionNumber}/customFields", famREST, d, s.putSubscriptionCustomFields),

		r("POST", "/v1/action/create", famAction, d, s.postActionCreate),
		r("GET", "/v1/usage/accounts/{account-key}", famREST, d, s.getUsageByAccount),
		r("POST", "/v1/usage", famREST, d, s.postUsageImport),
		r("GET", "/v1/usage/{import-id}/status", famREST, d, s.getUsageImportStatus),

		r("POST", "/events/event-triggers", famEvents, d, s.postEventTrigger),
		r("GET", "/events/event-triggers", famEvents, d, s.listEventTriggers),
		r("GET", "/events/event-triggers/{id}", famEvents, d, s.getEventTrigger),
		r("DELETE", "/events/event-triggers/{id}", famEvents, d, s.deleteEventTrigger),
		r("POST", "/notifications/notification-definitions", famEvents, d, s.postNotificationDefinition),
		r("GET", "/notifications/notification-definitions", famEvents, d, s.listNotificationDefinitions),
		r("GET", "/notifications/notification-definitions/{id}", famEvents, d, s.getNotificationDefinition),
		r("DELETE", "/notifications/notification-definitions/{id}", famEvents, d, s.deleteNotificationDefinition),
		r("POST", "/notifications/callout-templates", famEvents, d, s.postCalloutTemplate),
		r("GET", "/notifications/callout-templates", famEvents, d, s.listCalloutTemplates),
		r("GET", "/notifications/callout-templates/{id}", famEvents, d, s.getCalloutTemplate),
		r("PUT", "/notifications/callout-templates/{id}", famEvents, d, s.putCalloutTemplate),

		r("GET", "/v1/describe/{object}", famREST, d, s.getDescribe),
		r("GET", "/settings/listing", famREST, d, s.getSettingsListing),
		r("POST", "/settings/batch-requests", famREST, d, s.postSettingsBatch),

		r("GET", "/object-query/accounts", famOQ, oq, s.queryAccounts),
		r("GET", "/object-query/subscriptions", famOQ, oq, s.querySubscriptions),
		r("GET", "/object-query/rate-plan-charges", famOQ, oq, s.queryRatePlanCharges),
		r("GET", "/object-query/invoices", famOQ, oq, s.queryInvoices),
		r("GET", "/object-query/payments", famOQ, oq, s.queryPayments),
	}
}

// Operations lists the "METHOD /path-template" names the simulator serves.
func (s *Sim) Operations() []string {
	out := make([]string, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, rt.name())
	}
	return out
}

func (s *Sim) postToken(c *call) *resp {
	form, err := url.ParseQuery(string(c.body))
	if err != nil || !strings.HasPrefix(c.r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "expected an application/x-www-form-urlencoded body"})
	}
	if c.r.Header.Get("Authorization") != "" || c.r.Header.Get("apiAccessKeyId") != "" {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "the token request must not carry Authorization or apiAccessKeyId headers"})
	}
	if form.Get("grant_type") != "client_credentials" {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"})
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	s.tokMu.Lock()
	want := s.opts.ClientSecret
	s.tokMu.Unlock()
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) != 1 || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		res := jsonResp(http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Invalid client credentials",
			"reasons": []reason{{Code: "90000011", Message: "Invalid client credentials"}}})
		return res
	}
	tok, ttl := s.mintToken(c)
	res := jsonResp(http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "expires_in": ttl,
		"scope": "user.7c9d2f3e1a4b4c5d8e6f0a1b2c3d4e5f entity.1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d service.echo.read tenant.9999",
		"jti":   tok[:16],
	})
	s.limMu.Lock()
	remaining := s.opts.AuthRateLimitPerMinute - s.authCount
	s.limMu.Unlock()
	res.header.Set("X-RateLimit-Limit-minute", strconv.Itoa(s.opts.AuthRateLimitPerMinute))
	res.header.Set("X-RateLimit-Remaining-minute", strconv.Itoa(max(remaining, 0)))
	return res
}
