package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine/events"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/store"
)

// Events is the webhook endpoints and their delivery log (nil hides the page).
type Events interface {
	CreateEndpoint(ctx context.Context, in events.EndpointInput) (store.WebhookEndpoint, error)
	Endpoints(ctx context.Context) ([]store.WebhookEndpoint, error)
	DeleteEndpoint(ctx context.Context, id string) error
	Deliveries(ctx context.Context, endpointID string, limit int) ([]store.Delivery, error)
	DeliveryCounts(ctx context.Context) (map[string]map[string]int64, error)
	Resend(ctx context.Context, endpointID string, id int64) error
}

// Billing is what the customer page shows from Zuora's billing (nil hides it).
type Billing interface {
	Invoices(ctx context.Context, customerID string) ([]store.Invoice, error)
	CustomerAccess(ctx context.Context, customerID string) ([]inbound.Access, []inbound.SubscriptionPayment, error)
}

type endpointRow struct {
	store.WebhookEndpoint
	Counts map[string]int64
}

type webhooksData struct {
	Enabled    bool
	Endpoints  []endpointRow
	Types      []string
	Secret     string // the secret of the endpoint just created: shown once
	SecretFor  string
	Selected   *store.WebhookEndpoint
	Deliveries []store.Delivery
	Error      string
	URL        string
}

func (a *Admin) webhooksData(c *gin.Context, d *webhooksData) bool {
	d.Enabled, d.Types = a.opts.Events != nil, store.EventTypes
	if !d.Enabled {
		return true
	}
	ctx := c.Request.Context()
	eps, err := a.opts.Events.Endpoints(ctx)
	if err != nil {
		a.fail(c, err)
		return false
	}
	counts, err := a.opts.Events.DeliveryCounts(ctx)
	if err != nil {
		a.fail(c, err)
		return false
	}
	for _, e := range eps {
		d.Endpoints = append(d.Endpoints, endpointRow{WebhookEndpoint: e, Counts: counts[e.ID]})
	}
	if id := c.Param("id"); id != "" {
		for i := range eps {
			if eps[i].ID == id {
				d.Selected = &eps[i]
			}
		}
		if d.Selected == nil {
			a.errorPage(c, http.StatusNotFound, "No such endpoint", "There is no webhook endpoint "+id+".")
			return false
		}
		if d.Deliveries, err = a.opts.Events.Deliveries(ctx, id, 100); err != nil {
			a.fail(c, err)
			return false
		}
		for i := range d.Deliveries {
			d.Deliveries[i].LastError = a.redact(d.Deliveries[i].LastError)
		}
	}
	return true
}

// webhooksPage lists the endpoints, the form to add one and, for one
// endpoint, its delivery log with "Resend".
func (a *Admin) webhooksPage(c *gin.Context) {
	var d webhooksData
	if a.webhooksData(c, &d) {
		a.render(c, http.StatusOK, "webhooks", page{Title: "Webhooks", Nav: "webhooks", Data: d})
	}
}

func (a *Admin) createEndpoint(c *gin.Context) {
	if a.opts.Events == nil {
		a.errorPage(c, http.StatusNotFound, "No webhooks", "Events are not configured on this server.")
		return
	}
	var types []string
	for _, t := range c.PostFormArray("types") {
		if t != "" {
			types = append(types, t)
		}
	}
	in := events.EndpointInput{URL: strings.TrimSpace(c.PostForm("url")), Description: strings.TrimSpace(c.PostForm("description")), EventTypes: types}
	ep, err := a.opts.Events.CreateEndpoint(c.Request.Context(), in)
	var d webhooksData
	if err != nil {
		d.Error, d.URL = err.Error(), in.URL
	} else {
		a.logger(c).Info().Str("endpoint", ep.ID).Msg("admin: webhook endpoint added")
		d.Secret, d.SecretFor = ep.Secret, ep.ID
	}
	if !a.webhooksData(c, &d) {
		return
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusBadRequest
	}
	// The answer to the POST shows the secret; it is never shown again.
	c.Header("Cache-Control", "no-store")
	a.render(c, status, "webhooks", page{Title: "Webhooks", Nav: "webhooks", Data: d})
}

func (a *Admin) deleteEndpoint(c *gin.Context) {
	if a.opts.Events == nil {
		a.errorPage(c, http.StatusNotFound, "No webhooks", "Events are not configured on this server.")
		return
	}
	if err := a.opts.Events.DeleteEndpoint(c.Request.Context(), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, withDone("/admin/webhooks", "done", "endpoint-deleted"))
}

func (a *Admin) resendDelivery(c *gin.Context) {
	if a.opts.Events == nil {
		a.errorPage(c, http.StatusNotFound, "No webhooks", "Events are not configured on this server.")
		return
	}
	id, err := strconv.ParseInt(c.Param("did"), 10, 64)
	if err != nil || id <= 0 {
		a.errorPage(c, http.StatusBadRequest, "Bad delivery id", "a delivery id is a positive integer")
		return
	}
	if err := a.opts.Events.Resend(c.Request.Context(), c.Param("id"), id); err != nil {
		a.fail(c, err)
		return
	}
	a.logger(c).Info().Int64("delivery", id).Msg("admin: webhook resend")
	c.Redirect(http.StatusSeeOther, withDone("/admin/webhooks/"+c.Param("id"), "done", "resent"))
}

// billingOf fills a customer page's invoices, access and payment status.
func (a *Admin) billingOf(ctx context.Context, d *entityData) {
	if a.opts.Billing == nil || d.Customer == nil {
		return
	}
	d.Billing = &billingData{}
	var err error
	if d.Billing.Invoices, err = a.opts.Billing.Invoices(ctx, d.Customer.ID); err != nil {
		d.Billing.Error = err.Error()
		return
	}
	if d.Billing.Access, d.Billing.Payments, err = a.opts.Billing.CustomerAccess(ctx, d.Customer.ID); err != nil {
		d.Billing.Error = err.Error()
	}
}

type billingData struct {
	Invoices []store.Invoice
	Access   []inbound.Access
	Payments []inbound.SubscriptionPayment
	Error    string
}
