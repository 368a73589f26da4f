package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
)

// Webhook paths billsync serves, relative to its public URL.
const (
	PathAccountCreated      = "/webhooks/zuora/account-created"
	PathSubscriptionCreated = "/webhooks/zuora/subscription-created"
	PathSubscriptionChanged = "/webhooks/zuora/subscription-changed"
	// Billing events (issue 16): callouts carry ids only; billsync reads
	// the object from Zuora before acting.
	PathInvoicePosted          = "/webhooks/zuora/invoice-posted"
	PathInvoicePaid            = "/webhooks/zuora/invoice-paid"
	PathPaymentFailed          = "/webhooks/zuora/payment-failed"
	PathSubscriptionCancelled  = "/webhooks/zuora/subscription-cancelled"
	PathScheduledOrderComplete = "/webhooks/zuora/scheduled-order-completed"
	PathAccountUpdated         = "/webhooks/zuora/account-updated"
)

// Names of what setup creates in the tenant.
const (
	TriggerAccountCreated      = "BillsyncAccountCreated"
	TriggerSubscriptionChanged = "BillsyncSubscriptionChanged"
	TriggerInvoicePosted       = "BillsyncInvoicePosted"
	TriggerInvoicePaid         = "BillsyncInvoicePaid"
	TriggerPaymentFailed       = "BillsyncPaymentFailed"
	TriggerSubscriptionCancel  = "BillsyncSubscriptionCancelled"
	TriggerOrderCompleted      = "BillsyncScheduledOrderCompleted"
	TriggerAccountUpdated      = "BillsyncAccountUpdated"
	// EventCategorySubscriptionCreated is Zuora's standard "New Subscription Created" event.
	EventCategorySubscriptionCreated = "1210"
	definitionPrefix                 = "billsync-"
	calloutsSetting                  = "inbound.callouts"
)

// CalloutParams are the callout parameters (body fields → merge fields) each
// endpoint expects; the README lists them for manual setup.
var CalloutParams = map[string]map[string]string{
	PathAccountCreated: {"AccountId": "<DataSource.Account.Id>", "AccountNumber": "<DataSource.Account.AccountNumber>"},
	PathSubscriptionCreated: {"SubscriptionId": "<DataSource.Subscription.Id>", "SubscriptionNumber": "<DataSource.Subscription.Name>",
		"AccountId": "<DataSource.Account.Id>", "AccountNumber": "<DataSource.Account.AccountNumber>"},
	PathSubscriptionChanged: {"SubscriptionId": "<DataSource.Subscription.Id>", "SubscriptionNumber": "<DataSource.Subscription.Name>",
		"AccountId": "<DataSource.Account.Id>", "AccountNumber": "<DataSource.Account.AccountNumber>"},
	PathSubscriptionCancelled: {"SubscriptionId": "<DataSource.Subscription.Id>", "SubscriptionNumber": "<DataSource.Subscription.Name>",
		"AccountId": "<DataSource.Account.Id>"},
	PathInvoicePosted:          {"InvoiceId": "<DataSource.Invoice.Id>", "AccountId": "<DataSource.Account.Id>"},
	PathInvoicePaid:            {"InvoiceId": "<DataSource.Invoice.Id>", "AccountId": "<DataSource.Account.Id>"},
	PathPaymentFailed:          {"PaymentId": "<DataSource.Payment.Id>", "AccountId": "<DataSource.Account.Id>"},
	PathScheduledOrderComplete: {"OrderNumber": "<DataSource.Order.OrderNumber>", "AccountId": "<DataSource.Account.Id>"},
	PathAccountUpdated:         {"AccountId": "<DataSource.Account.Id>", "AccountNumber": "<DataSource.Account.AccountNumber>"},
}

// CalloutSetup says where Zuora should call and with which credentials.
type CalloutSetup struct {
	PublicURL string // https://billsync.example.com (no trailing path needed)
	Username  string
	Password  string
	// NonPreemptive makes Zuora wait for the 401 challenge before sending
	// credentials (Zuora's default); setup uses preemptive Basic auth otherwise.
	NonPreemptive bool
}

// CalloutObjects is what setup created (recorded in the settings table so
// remove-callouts removes exactly that).
type CalloutObjects struct {
	Triggers    []string `json:"triggers"`
	Definitions []string `json:"definitions"`
	// Templates are the callout templates setup created or took over;
	// remove deactivates them (Zuora's API cannot delete a template).
	Templates []string `json:"templates,omitempty"`
	// TemplateConfig is, per template id, a digest of what setup last
	// wrote into it (URL, credentials): an unchanged setup writes nothing.
	TemplateConfig map[string]string `json:"templateConfig,omitempty"`
	// Generation counts removals: it is part of the creates' idempotency
	// keys, so a setup after a remove creates again instead of being
	// answered with the removed objects (Zuora replays a key for 24 h).
	Generation int `json:"generation,omitempty"`
}

// templateDigest fingerprints a template's target and credentials (salted
// with the template id; the password itself is never stored).
func templateDigest(id string, t zuora.CalloutTemplate) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", id, t.CalloutBaseURL, t.HTTPMethod)
	if t.CalloutAuth != nil {
		fmt.Fprintf(h, "%s\x00%s\x00%t", t.CalloutAuth.Username, t.CalloutAuth.Password, t.CalloutAuth.Preemptive)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SetupReport tells what setup or remove did.
type SetupReport struct {
	Created []string `json:"created"`
	Existed []string `json:"existed"`
	Removed []string `json:"removed"`
}

type triggerSpec struct {
	name, base, condition, display, desc string
}

type definitionSpec struct {
	name, path, trigger, category, desc string
}

var triggers = []triggerSpec{
	{TriggerAccountCreated, "Account", "changeType == 'INSERT'", "billsync: account created", "A Zuora account was created (billsync imports it as a customer)"},
	{TriggerSubscriptionChanged, "Subscription", "changeType == 'UPDATE'", "billsync: subscription changed", "A Zuora subscription changed through an order or amendment"},
	{TriggerSubscriptionCancel, "Subscription", "changeType == 'UPDATE' && Subscription.Status == 'Cancelled' && Subscription.Status_old != 'Cancelled'",
		"billsync: subscription cancelled", "A Zuora subscription was cancelled (through the API or Zuora's UI)"},
	{TriggerInvoicePosted, "Invoice", "changeType == 'UPDATE' && Invoice.Status == 'Posted' && Invoice.Status_old != 'Posted'",
		"billsync: invoice posted", "A Zuora invoice was posted"},
	{TriggerInvoicePaid, "Invoice", "changeType == 'UPDATE' && Invoice.Status == 'Posted' && Invoice.Balance == 0 && Invoice.Balance_old != 0",
		"billsync: invoice paid", "A payment brought a posted invoice's balance to zero"},
	{TriggerPaymentFailed, "Payment", "changeType == 'INSERT' && Payment.Status == 'Error'", "billsync: payment failed", "A payment was declined"},
	{TriggerOrderCompleted, "Order", "changeType == 'UPDATE' && Order.Status == 'Completed' && Order.Status_old == 'Scheduled'",
		"billsync: scheduled order completed", "A scheduled order ran"},
	// && binds tighter than || (JEXL): either the default payment method or the status changed.
	{TriggerAccountUpdated, "Account", "changeType == 'UPDATE' && Account.DefaultPaymentMethodId != Account.DefaultPaymentMethodId_old || " +
		"changeType == 'UPDATE' && Account.Status != Account.Status_old", "billsync: account updated",
		"A Zuora account's default payment method or status changed"},
}

var definitions = []definitionSpec{
	{definitionPrefix + "account-created", PathAccountCreated, TriggerAccountCreated, "", "Tells billsync about new accounts"},
	{definitionPrefix + "subscription-created", PathSubscriptionCreated, "", EventCategorySubscriptionCreated, "Tells billsync about new subscriptions"},
	{definitionPrefix + "subscription-changed", PathSubscriptionChanged, TriggerSubscriptionChanged, "", "Tells billsync about changed subscriptions"},
	{definitionPrefix + "subscription-cancelled", PathSubscriptionCancelled, TriggerSubscriptionCancel, "", "Tells billsync about cancelled subscriptions"},
	{definitionPrefix + "invoice-posted", PathInvoicePosted, TriggerInvoicePosted, "", "Tells billsync about posted invoices"},
	{definitionPrefix + "invoice-paid", PathInvoicePaid, TriggerInvoicePaid, "", "Tells billsync about paid invoices"},
	{definitionPrefix + "payment-failed", PathPaymentFailed, TriggerPaymentFailed, "", "Tells billsync about declined payments"},
	{definitionPrefix + "scheduled-order-completed", PathScheduledOrderComplete, TriggerOrderCompleted, "", "Tells billsync about scheduled orders that ran"},
	{definitionPrefix + "account-updated", PathAccountUpdated, TriggerAccountUpdated, "", "Tells billsync about payment method and status changes of accounts"},
}

func (s *Service) recorded(ctx context.Context) (CalloutObjects, error) {
	var o CalloutObjects
	all, err := s.db.Settings(ctx)
	if err != nil {
		return o, err
	}
	if v := all[calloutsSetting]; v != "" {
		if err := json.Unmarshal([]byte(v), &o); err != nil {
			return o, fmt.Errorf("setting %s: %w", calloutsSetting, err)
		}
	}
	return o, nil
}

func (s *Service) record(ctx context.Context, o CalloutObjects) error {
	b, _ := json.Marshal(o)
	return s.db.SetSetting(ctx, calloutsSetting, string(b))
}

// SetupCallouts creates, idempotently, the Account INSERT and Subscription
// UPDATE event triggers and the three notification definitions (inline
// callouts with Basic auth and the CalloutParams) in the Zuora tenant.
// Objects that already exist by name are reused, never duplicated; what is
// created is recorded for RemoveCallouts.
func (s *Service) SetupCallouts(ctx context.Context, in CalloutSetup) (SetupReport, error) {
	rep := SetupReport{Created: []string{}, Existed: []string{}, Removed: []string{}}
	u, err := url.Parse(in.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return rep, fmt.Errorf("the public URL must be an absolute https URL, got %q", in.PublicURL)
	}
	if in.Username == "" || in.Password == "" {
		return rep, errors.New("the webhook username and password are required (Zuora sends them with every callout)")
	}
	base := strings.TrimRight(in.PublicURL, "/")
	rec, err := s.recorded(ctx)
	if err != nil {
		return rep, err
	}
	for _, t := range triggers {
		found := ""
		for et, err := range s.z.ListEventTriggers(ctx, zuora.EventTriggerFilter{EventTypeName: t.name}) {
			if err != nil {
				return rep, fmt.Errorf("list event triggers: %w", err)
			}
			if et.EventType.Name == t.name {
				found = et.ID
			}
		}
		if found != "" {
			rep.Existed = append(rep.Existed, "event trigger "+t.name)
			continue
		}
		et, err := s.z.CreateEventTrigger(ctx, zuora.IdempotencyKey("billsync-trigger", t.name, t.condition, strconv.Itoa(rec.Generation)), zuora.EventTrigger{
			Active: true, BaseObject: t.base, Condition: t.condition, Description: t.desc,
			EventType: zuora.EventType{Name: t.name, DisplayName: t.display, Description: t.desc}})
		if err != nil {
			return rep, fmt.Errorf("create event trigger %s: %w", t.name, err)
		}
		rec.Triggers = append(rec.Triggers, et.ID)
		if err := s.record(ctx, rec); err != nil {
			return rep, err
		}
		rep.Created = append(rep.Created, "event trigger "+t.name)
	}
	yes := true
	for _, d := range definitions {
		// The callout template: one per definition, named like it. Zuora
		// cannot delete templates and wants their names unique, so an
		// existing one is changed in place (URL, password) and reused.
		target := base + d.path
		tpl := zuora.CalloutTemplate{Name: d.name, CalloutBaseURL: target, HTTPMethod: "POST", CalloutParams: CalloutParams[d.path],
			CalloutRetry: &yes, Active: &yes, RequiredAuth: &yes,
			CalloutAuth: &zuora.CalloutAuth{Username: in.Username, Password: in.Password, Preemptive: !in.NonPreemptive}}
		if d.category != "" {
			tpl.EventCategory = zuora.Number(d.category)
		} else {
			tpl.EventTypeName, tpl.EventTypeNamespace = d.trigger, "user.notification"
		}
		tplID := ""
		for t, err := range s.z.ListCalloutTemplates(ctx, d.name) {
			if err != nil {
				return rep, fmt.Errorf("list callout templates: %w", err)
			}
			if t.Name == d.name {
				tplID = t.ID
			}
		}
		switch {
		case tplID != "" && rec.TemplateConfig[tplID] == templateDigest(tplID, tpl):
			rep.Existed = append(rep.Existed, "callout template "+d.name)
		case tplID != "":
			if err := s.z.UpdateCalloutTemplate(ctx, tplID, tpl); err != nil {
				return rep, fmt.Errorf("update callout template %s: %w", d.name, err)
			}
			rep.Existed = append(rep.Existed, "callout template "+d.name+" (updated in place → "+target+")")
		default:
			created, err := s.z.CreateCalloutTemplate(ctx, zuora.IdempotencyKey("billsync-callout-template", d.name, target), tpl)
			if err != nil {
				return rep, fmt.Errorf("create callout template %s: %w", d.name, err)
			}
			tplID = created.ID
			rep.Created = append(rep.Created, "callout template "+d.name+" → "+target)
		}
		if !slices.Contains(rec.Templates, tplID) {
			rec.Templates = append(rec.Templates, tplID)
		}
		if rec.TemplateConfig == nil {
			rec.TemplateConfig = map[string]string{}
		}
		rec.TemplateConfig[tplID] = templateDigest(tplID, tpl)
		if err := s.record(ctx, rec); err != nil {
			return rep, err
		}

		found := false
		for nd, err := range s.z.ListNotificationDefinitions(ctx, zuora.NotificationDefinitionFilter{}) {
			if err != nil {
				return rep, fmt.Errorf("list notification definitions: %w", err)
			}
			if nd.Name == d.name {
				found = true
			}
		}
		if found {
			rep.Existed = append(rep.Existed, "notification definition "+d.name)
			continue
		}
		nd := zuora.NotificationDefinition{Name: d.name, Description: d.desc, Active: &yes, CalloutActive: &yes, CalloutTemplateIDs: []string{tplID}}
		if d.category != "" {
			nd.EventCategory = zuora.Number(d.category)
		} else {
			nd.EventTypeName = d.trigger
			nd.EventTypeNamespace = "user.notification"
		}
		created, err := s.z.CreateNotificationDefinition(ctx, zuora.IdempotencyKey("billsync-notification", d.name, tplID, strconv.Itoa(rec.Generation)), nd)
		if err != nil {
			return rep, fmt.Errorf("create notification definition %s: %w", d.name, err)
		}
		rec.Definitions = append(rec.Definitions, created.ID)
		if err := s.record(ctx, rec); err != nil {
			return rep, err
		}
		rep.Created = append(rep.Created, "notification definition "+d.name+" → "+target)
	}
	return rep, nil
}

// RemoveCallouts deletes exactly the triggers and definitions SetupCallouts
// created (definitions first), and forgets them.
func (s *Service) RemoveCallouts(ctx context.Context) (SetupReport, error) {
	rep := SetupReport{Created: []string{}, Existed: []string{}, Removed: []string{}}
	rec, err := s.recorded(ctx)
	if err != nil {
		return rep, err
	}
	left := CalloutObjects{Generation: rec.Generation + 1}
	var firstErr error
	for _, id := range rec.Definitions {
		if err := s.z.DeleteNotificationDefinition(ctx, id); err != nil && !zuora.IsNotFound(err) {
			left.Definitions = append(left.Definitions, id)
			firstErr = errors.Join(firstErr, fmt.Errorf("delete notification definition %s: %w", id, err))
			continue
		}
		rep.Removed = append(rep.Removed, "notification definition "+id)
	}
	for _, id := range rec.Triggers {
		if err := s.z.DeleteEventTrigger(ctx, id); err != nil && !zuora.IsNotFound(err) {
			left.Triggers = append(left.Triggers, id)
			firstErr = errors.Join(firstErr, fmt.Errorf("delete event trigger %s: %w", id, err))
			continue
		}
		rep.Removed = append(rep.Removed, "event trigger "+id)
	}
	// Zuora's API cannot delete a callout template: deactivate it; the next
	// setup takes it over again, so nothing is left behind twice.
	no := false
	for _, id := range rec.Templates {
		if err := s.z.UpdateCalloutTemplate(ctx, id, zuora.CalloutTemplate{Active: &no}); err != nil && !zuora.IsNotFound(err) {
			left.Templates = append(left.Templates, id)
			firstErr = errors.Join(firstErr, fmt.Errorf("deactivate callout template %s: %w", id, err))
			continue
		}
		rep.Removed = append(rep.Removed, "callout template "+id+" (deactivated: Zuora keeps templates)")
	}
	if err := s.record(ctx, left); err != nil {
		return rep, err
	}
	return rep, firstErr
}

// CheckTenant reads the Zuora tenant and lists what billsync needs that it
// lacks: the id custom field on every object billsync writes (and the
// identity field on Account when one is configured), the units of measure
// and currencies of the local catalog; it also reports the time zone and
// whether the callouts billsync's setup creates exist (inbound only: not
// counted as missing).
func (s *Service) CheckTenant(ctx context.Context) (zuora.TenantReport, error) {
	need, err := s.out.TenantNeeds(ctx)
	if err != nil {
		return zuora.TenantReport{}, err
	}
	if s.cfg.IdentityField != "" {
		need.Fields = append(need.Fields, zuora.RequiredField{Object: "Account", Name: s.cfg.IdentityField, Type: "text", Length: zuora.IDFieldLength})
	}
	rep, err := s.z.CheckTenant(ctx, need)
	if err != nil {
		return rep, err
	}
	have := map[string]bool{}
	for nd, err := range s.z.ListNotificationDefinitions(ctx, zuora.NotificationDefinitionFilter{}) {
		if err != nil {
			return rep, fmt.Errorf("list notification definitions: %w", err)
		}
		have[nd.Name] = true
	}
	var lacking []string
	for _, d := range definitions {
		if !have[d.name] {
			lacking = append(lacking, d.name)
		}
	}
	switch {
	case len(lacking) == 0:
		rep.Callouts = fmt.Sprintf("set up (%d notification definitions)", len(definitions))
	case len(lacking) == len(definitions):
		rep.Callouts = "not set up (inbound sync needs them): run billsync zuora setup-callouts --public-url https://…"
	default:
		rep.Callouts = fmt.Sprintf("incomplete, missing %s: run billsync zuora setup-callouts --public-url https://…", strings.Join(lacking, ", "))
	}
	return rep, nil
}
