package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/mappings"
)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the active section
	CSRF    string
	Open    bool // no password: loopback only
	Flash   string
	Refresh int    // seconds; >0 adds a meta refresh (pending work on the page)
	Query   string // the header search box's text
	AssetV  string
	Data    any
}

var pageNames = []string{"login", "error", "dashboard", "records", "entity", "mappings", "inbox", "settings", "search", "webhooks"}

func (a *Admin) parseTemplates() error {
	a.pages = map[string]*template.Template{}
	funcs := template.FuncMap{
		"ts":       fmtTime,
		"tsp":      fmtTimePtr,
		"ago":      a.ago,
		"agop":     func(t *time.Time) string { return agoPtr(a, t) },
		"redact":   a.redact,
		"query":    query,
		"add":      func(a, b int64) int64 { return a + b },
		"stateCls": stateClass,
		"label":    label,
		"mkind":    func(k mappings.Kind) string { return mappingLabels[k] },
		"trim":     trimText,
		"plural":   plural,
		"dur":      duration,
		"whose":    func(code, msg string) string { return explain(code, msg, "").Label },
		// scheduledOrder names the Zuora order of a pending change.
		"scheduledOrder": outbound.ScheduledOrderNumber,
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("admin: template %s: %w", name, err)
		}
		a.pages[name] = t
	}
	return nil
}

// render executes a page into a buffer first, so a template error never
// leaves half a page.
func (a *Admin) render(c *gin.Context, status int, name string, p page) {
	if s, ok := c.Get("session"); ok {
		p.CSRF = a.csrfToken(s.(session))
	}
	p.Open = a.open
	p.AssetV = a.assetV
	if p.Flash == "" {
		p.Flash = flash(c)
	}
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		a.logger(c).Error().Err(err).Str("page", name).Msg("admin template failed")
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the page could not be rendered; see the server log"))
		c.Abort()
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

type errorData struct{ Message, Hint string }

// errorPage renders a plain error page that keeps the navigation, with a
// hint of what to do for the common statuses.
func (a *Admin) errorPage(c *gin.Context, status int, title, msg string) {
	d := errorData{Message: msg}
	switch status {
	case http.StatusNotFound:
		d.Hint = "The link may be old, or the thing was removed. Use the search box at the top to look for it by id, name, email or Zuora number."
	case http.StatusBadRequest:
		d.Hint = "Nothing was changed. Go back, correct the value and try again."
	case http.StatusConflict:
		d.Hint = "Nothing was changed."
	case http.StatusInternalServerError:
		d.Hint = "Nothing you did caused this. Try again in a moment; if it keeps happening, give the request id to whoever runs billsync."
	}
	a.render(c, status, "error", page{Title: title, Nav: "error", Data: d})
	c.Abort()
}

// NotFound answers an /admin path no route serves (web's NoRoute hands it
// here) with the admin's 404 page and headers.
func (a *Admin) NotFound(c *gin.Context) {
	a.setHeaders(c)
	if s, ok := a.session(c.Request); ok {
		c.Set("session", s)
	}
	a.errorPage(c, http.StatusNotFound, "Page not found", "There is no admin page at "+c.Request.URL.Path+".")
}

// flash turns the fixed message codes of a redirect after a POST into text.
func flash(c *gin.Context) string {
	switch c.Query("done") {
	case "retried":
		return "Retry queued: the workers pick the record up now."
	case "retried-all":
		which := "failed or dead"
		if st := c.Query("rstate"); st == "failed" || st == "dead" {
			which = st
		}
		return fmt.Sprintf("Retry queued for %s %s %s records.", c.Query("n"), which, c.Query("kind"))
	case "drift-checked":
		return fmt.Sprintf("Drift check queued for %s synced records: what differs in Zuora shows as drifted, then is repaired.", c.Query("n"))
	case "inbox-retried":
		return "Callout queued for processing again."
	case "resent":
		return "Delivery queued again: the same event, with the same webhook-id."
	case "endpoint-deleted":
		return "Webhook endpoint removed, with its delivery log."
	case "saved":
		return "Settings saved; they apply at once."
	}
	return ""
}

// redact masks configured secrets wherever they occur.
func (a *Admin) redact(s string) string {
	secrets := a.secrets
	if a.opts.Settings != nil {
		if sec := a.opts.Settings.Secret(); len(sec) >= 4 {
			secrets = append(secrets[:len(secrets):len(secrets)], sec)
		}
	}
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "••••••")
		}
	}
	return s
}

// maskPayload pretty-prints a callout payload masked by inbound.MaskPayload,
// with configured secrets masked anywhere too.
func (a *Admin) maskPayload(raw string) string {
	m := inbound.MaskPayload(raw)
	var b bytes.Buffer
	if json.Indent(&b, []byte(m), "", "  ") == nil {
		m = b.String()
	}
	return a.redact(m)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return fmtTime(*t)
}

func (a *Admin) ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := a.opts.Now().Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func agoPtr(a *Admin, t *time.Time) string {
	if t == nil {
		return ""
	}
	return a.ago(*t)
}

// query builds "?k=v&…" from pairs, leaving out empty values.
func query(kv ...string) template.URL {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return template.URL("?" + v.Encode())
}

func stateClass(s string) string {
	switch s {
	case "synced", "done", "sent", "ok", "on", "delivered", "paid":
		return "st-ok"
	case "failed", "drifted", "error", "past_due":
		return "st-warn"
	case "dead":
		return "st-bad"
	case "pending", "in_flight", "sending", "running":
		return "st-busy"
	default:
		return "st-muted"
	}
}

var labels = map[string]string{
	"plan": "Plans & add-ons", "coupon": "Coupons", "customer": "Customers", "subscription": "Subscriptions", "credit": "Credits",
	"in_flight": "in flight", "catalog": "Catalog (plans, add-ons)", "customers": "Customers (accounts)",
	"subscriptions": "Subscriptions", "usage": "Usage upload", "inbound": "Inbound (callouts, pull, poll)",
	"account_created": "account created", "subscription_created": "subscription created", "subscription_changed": "subscription changed",
}

var mappingLabels = map[mappings.Kind]string{
	mappings.Account: "Account", mappings.Product: "Product", mappings.RatePlan: "Rate plan", mappings.Charge: "Charge",
	mappings.Subscription: "Subscription", mappings.SubscriptionRatePlan: "Subscription rate plan", mappings.SubscriptionCharge: "Subscription charge",
}

func label(s string) string {
	if l, ok := labels[s]; ok {
		return l
	}
	return s
}

// plural writes "1 row", "2 rows".
func plural(n any, one, many string) string {
	s := fmt.Sprint(n)
	if s == "1" {
		return s + " " + one
	}
	return s + " " + many
}

func trimText(n int, s string) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
