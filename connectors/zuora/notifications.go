package zuora

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// ---- Event triggers (§11a) ----

// EventTrigger is a custom event trigger, e.g. base object Account with
// condition "changeType == 'INSERT'".
type EventTrigger struct {
	ID          string    `json:"id,omitempty"`
	Active      bool      `json:"active"`
	BaseObject  string    `json:"baseObject"`
	Condition   string    `json:"condition"`
	Description string    `json:"description,omitempty"`
	EventType   EventType `json:"eventType"`
}

// EventType names the event a trigger raises.
type EventType struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Description string `json:"description,omitempty"`
	Namespace   string `json:"namespace,omitempty"` // read only: user.notification
}

// EventTriggerFilter narrows ListEventTriggers (empty fields: no filter).
type EventTriggerFilter struct {
	BaseObject    string
	EventTypeName string
	Active        *bool
}

// CreateEventTrigger creates a custom event trigger (POST /events/event-triggers).
func (c *Client) CreateEventTrigger(ctx context.Context, idempotencyKey string, t EventTrigger) (EventTrigger, error) {
	const op = "POST /events/event-triggers"
	var out EventTrigger
	if idempotencyKey == "" {
		return out, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	t.ID = ""
	t.EventType.Namespace = ""
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/events/event-triggers", body: t, idemKey: idempotencyKey}, &out)
	if err == nil && out.ID == "" {
		err = &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "event trigger answered without an id", RequestID: resp.requestID}
	}
	return out, err
}

// ListEventTriggers iterates the tenant's event triggers (GET /events/event-triggers).
func (c *Client) ListEventTriggers(ctx context.Context, f EventTriggerFilter) iter.Seq2[EventTrigger, error] {
	q := url.Values{}
	if f.BaseObject != "" {
		q.Set("baseObject", f.BaseObject)
	}
	if f.EventTypeName != "" {
		q.Set("eventTypeName", f.EventTypeName)
	}
	if f.Active != nil {
		q.Set("active", strconv.FormatBool(*f.Active))
	}
	return listStartLimit[EventTrigger](ctx, c, "GET /events/event-triggers", "/events/event-triggers", q, 50)
}

// DeleteEventTrigger deletes an event trigger (DELETE /events/event-triggers/{id}).
func (c *Client) DeleteEventTrigger(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("zuora DELETE /events/event-triggers/{id}: id is required")
	}
	_, err := c.do(ctx, call{op: "DELETE /events/event-triggers/{id}", method: http.MethodDelete, path: "/events/event-triggers/" + seg(id)})
	return err
}

// ---- Notification definitions with an inline callout (§11b) ----

// NotificationDefinition routes an event to a callout. Set EventCategory
// (standard events, e.g. 1210 Subscription Created) or EventTypeName (custom
// events, e.g. the name of an EventTrigger's event type).
type NotificationDefinition struct {
	ID                 string   `json:"id,omitempty"`
	Name               string   `json:"name"`
	Description        string   `json:"description,omitempty"`
	Active             *bool    `json:"active,omitempty"`
	EventCategory      Number   `json:"eventCategory,omitempty"`
	EventTypeName      string   `json:"eventTypeName,omitempty"`
	EventTypeNamespace string   `json:"eventTypeNamespace,omitempty"`
	CalloutActive      *bool    `json:"calloutActive,omitempty"` // Zuora's default is false: set it
	EmailActive        *bool    `json:"emailActive,omitempty"`
	Callout            *Callout `json:"callout,omitempty"`
	CalloutTemplateIDs []string `json:"calloutTemplateIds,omitempty"`
	CreatedOn          string   `json:"createdOn,omitempty"`
	UpdatedOn          string   `json:"updatedOn,omitempty"`
}

// Callout is a notification's inline callout (creates a callout template).
// CalloutParams maps body field names to merge fields, e.g.
// {"AccountId": "<DataSource.Account.Id>"}; the receiver gets a flat JSON
// object (§11c).
type Callout struct {
	Name           string            `json:"name"`
	EventTypeName  string            `json:"eventTypeName,omitempty"`
	CalloutBaseURL string            `json:"calloutBaseurl"`
	HTTPMethod     string            `json:"httpMethod"`
	CalloutParams  map[string]string `json:"calloutParams,omitempty"`
	CalloutRetry   *bool             `json:"calloutRetry,omitempty"`
	Active         *bool             `json:"active,omitempty"`
	RequiredAuth   *bool             `json:"requiredAuth,omitempty"`
	CalloutAuth    *CalloutAuth      `json:"calloutAuth,omitempty"`
}

// CalloutAuth is the Basic credentials Zuora sends to the callout receiver.
// Set Preemptive, or Zuora first calls without credentials and expects a 401
// challenge (§11c). The password is write-only: never logged by this client.
type CalloutAuth struct {
	Username   string `json:"username"`
	Password   string `json:"password,omitempty"`
	Domain     string `json:"domain,omitempty"`
	Preemptive bool   `json:"preemptive"`
}

// NotificationDefinitionFilter narrows ListNotificationDefinitions.
type NotificationDefinitionFilter struct {
	EventCategory string
	EventTypeName string
}

// CreateNotificationDefinition creates a notification definition
// (POST /notifications/notification-definitions).
func (c *Client) CreateNotificationDefinition(ctx context.Context, idempotencyKey string, d NotificationDefinition) (NotificationDefinition, error) {
	const op = "POST /notifications/notification-definitions"
	var out NotificationDefinition
	if idempotencyKey == "" {
		return out, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	if (d.EventCategory == "") == (d.EventTypeName == "") {
		return out, fmt.Errorf("zuora %s: set exactly one of EventCategory and EventTypeName", op)
	}
	d.ID, d.CreatedOn, d.UpdatedOn = "", "", ""
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/notifications/notification-definitions", body: d, idemKey: idempotencyKey}, &out)
	if err == nil && out.ID == "" {
		err = &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "notification definition answered without an id", RequestID: resp.requestID}
	}
	return out, err
}

// ListNotificationDefinitions iterates notification definitions
// (GET /notifications/notification-definitions).
func (c *Client) ListNotificationDefinitions(ctx context.Context, f NotificationDefinitionFilter) iter.Seq2[NotificationDefinition, error] {
	q := url.Values{}
	if f.EventCategory != "" {
		q.Set("eventCategory", f.EventCategory)
	}
	if f.EventTypeName != "" {
		q.Set("eventTypeName", f.EventTypeName)
	}
	return listStartLimit[NotificationDefinition](ctx, c, "GET /notifications/notification-definitions", "/notifications/notification-definitions", q, 50)
}

// DeleteNotificationDefinition deletes a notification definition.
func (c *Client) DeleteNotificationDefinition(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("zuora DELETE /notifications/notification-definitions/{id}: id is required")
	}
	_, err := c.do(ctx, call{op: "DELETE /notifications/notification-definitions/{id}", method: http.MethodDelete,
		path: "/notifications/notification-definitions/" + seg(id)})
	return err
}

// ---- Callout templates (/notifications/callout-templates) ----

// CalloutTemplate is a callout template: the request a notification
// definition sends (URL, method, body parameters, Basic auth), tied to one
// event. Names are unique across the tenant; the API has no delete, so a
// template is reused and changed in place (PUT).
type CalloutTemplate struct {
	ID                 string            `json:"id,omitempty"`
	Name               string            `json:"name"`
	EventCategory      Number            `json:"eventCategory,omitempty"`
	EventTypeName      string            `json:"eventTypeName,omitempty"`
	EventTypeNamespace string            `json:"eventTypeNamespace,omitempty"`
	Active             *bool             `json:"active,omitempty"`
	CalloutBaseURL     string            `json:"calloutBaseurl"`
	HTTPMethod         string            `json:"httpMethod"`
	CalloutParams      map[string]string `json:"calloutParams,omitempty"`
	CalloutRetry       *bool             `json:"calloutRetry,omitempty"`
	RequiredAuth       *bool             `json:"requiredAuth,omitempty"`
	CalloutAuth        *CalloutAuth      `json:"calloutAuth,omitempty"`
}

// calloutTemplateUpdate is the PUT body: the event cannot change.
type calloutTemplateUpdate struct {
	Name           string            `json:"name,omitempty"`
	Active         *bool             `json:"active,omitempty"`
	CalloutBaseURL string            `json:"calloutBaseurl,omitempty"`
	HTTPMethod     string            `json:"httpMethod,omitempty"`
	CalloutParams  map[string]string `json:"calloutParams,omitempty"`
	CalloutRetry   *bool             `json:"calloutRetry,omitempty"`
	RequiredAuth   *bool             `json:"requiredAuth,omitempty"`
	CalloutAuth    *CalloutAuth      `json:"calloutAuth,omitempty"`
}

// CreateCalloutTemplate creates a callout template
// (POST /notifications/callout-templates).
func (c *Client) CreateCalloutTemplate(ctx context.Context, idempotencyKey string, t CalloutTemplate) (CalloutTemplate, error) {
	const op = "POST /notifications/callout-templates"
	var out CalloutTemplate
	if idempotencyKey == "" {
		return out, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	t.ID = ""
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/notifications/callout-templates", body: t, idemKey: idempotencyKey}, &out)
	if err == nil && out.ID == "" {
		err = &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "callout template answered without an id", RequestID: resp.requestID}
	}
	return out, err
}

// ListCalloutTemplates iterates the callout templates, those named name
// only when it is not empty (GET /notifications/callout-templates).
func (c *Client) ListCalloutTemplates(ctx context.Context, name string) iter.Seq2[CalloutTemplate, error] {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	return listStartLimit[CalloutTemplate](ctx, c, "GET /notifications/callout-templates", "/notifications/callout-templates", q, 50)
}

// UpdateCalloutTemplate changes a callout template in place
// (PUT /notifications/callout-templates/{id}); the definitions using it
// follow. The event (category or type) stays.
func (c *Client) UpdateCalloutTemplate(ctx context.Context, id string, t CalloutTemplate) error {
	if id == "" {
		return fmt.Errorf("zuora PUT /notifications/callout-templates/{id}: id is required")
	}
	body := calloutTemplateUpdate{Name: t.Name, Active: t.Active, CalloutBaseURL: t.CalloutBaseURL, HTTPMethod: t.HTTPMethod,
		CalloutParams: t.CalloutParams, CalloutRetry: t.CalloutRetry, RequiredAuth: t.RequiredAuth, CalloutAuth: t.CalloutAuth}
	_, err := c.do(ctx, call{op: "PUT /notifications/callout-templates/{id}", method: http.MethodPut,
		path: "/notifications/callout-templates/" + seg(id), body: body})
	return err
}
