package zuora

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Objects billsync writes its id custom field on (README, "In Zuora").
var IDFieldObjects = []string{"Product", "ProductRatePlan", "ProductRatePlanCharge", "Account", "Subscription", "RatePlan"}

// URLField is the text custom field holding the link to a synced object's
// page on billsync's admin (written when BILLSYNC_PUBLIC_URL is set) on
// Product, Account and Subscription.
const URLField = "BillsyncUrl__c"

// URLFieldObjects are the objects billsync writes URLField on.
var URLFieldObjects = []string{"Product", "Account", "Subscription"}

// IDFieldLength is the length of the text custom field billsync asks for:
// Zuora's maximum for text custom fields.
const IDFieldLength = 255

// RequiredField is a custom field billsync needs in the tenant.
type RequiredField struct {
	Object string `json:"object"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Length int    `json:"length,omitempty"`
}

// RequiredCustomFields lists the custom fields billsync writes: its id field
// (text, 255) on every object it creates.
func RequiredCustomFields(idField string) []RequiredField {
	out := make([]RequiredField, 0, len(IDFieldObjects))
	for _, obj := range IDFieldObjects {
		out = append(out, RequiredField{Object: obj, Name: idField, Type: "text", Length: IDFieldLength})
	}
	return out
}

// DescribedField is one field of GET /v1/describe/{object}.
type DescribedField struct {
	Name      string `xml:"name" json:"name"`
	Label     string `xml:"label" json:"label"`
	Type      string `xml:"type" json:"type"`
	MaxLength int    `xml:"maxlength" json:"maxLength,omitempty"`
	Custom    bool   `xml:"custom" json:"custom"`
}

// Describe lists the fields of a Zuora object (GET /v1/describe/{object},
// an XML document), custom fields included.
func (c *Client) Describe(ctx context.Context, object string) ([]DescribedField, error) {
	resp, err := c.do(ctx, call{op: "GET /v1/describe/{object}", method: http.MethodGet, path: "/v1/describe/" + seg(object)})
	if err != nil {
		return nil, err
	}
	var doc struct {
		Fields []DescribedField `xml:"fields>field"`
	}
	if err := xml.Unmarshal(resp.body, &doc); err != nil {
		return nil, &Error{Op: "GET /v1/describe/{object}", HTTPStatus: resp.status, Code: codeDecode,
			Message: "cannot decode Zuora's describe document: " + err.Error(), RequestID: resp.requestID, Err: err}
	}
	return doc.Fields, nil
}

// TenantSettings is what the Settings API says about the tenant.
type TenantSettings struct {
	UnitsOfMeasure []string `json:"unitsOfMeasure"` // active ones
	Currencies     []string `json:"currencies"`     // active ones
	TimeZone       string   `json:"timeZone"`
}

// HasUnit reports whether the tenant has the active unit of measure u.
func (t TenantSettings) HasUnit(u string) bool { return slices.Contains(t.UnitsOfMeasure, u) }

// Unit returns the tenant's spelling of a unit of measure: u itself, or
// the one active unit equal to it ignoring case ("seat" → "Seat"); "" when
// the tenant has none (or several that differ only in case).
func (t TenantSettings) Unit(u string) string {
	if t.HasUnit(u) {
		return u
	}
	match := ""
	for _, x := range t.UnitsOfMeasure {
		if strings.EqualFold(x, u) {
			if match != "" {
				return ""
			}
			match = x
		}
	}
	return match
}

// HasCurrency reports whether the tenant has the active currency cur.
func (t TenantSettings) HasCurrency(cur string) bool { return slices.Contains(t.Currencies, cur) }

// ReadTenantSettings reads the units of measure, currencies and time zone in
// one POST /settings/batch-requests (a read: no idempotency key needed),
// and refreshes the cache of CachedTenantSettings.
func (c *Client) ReadTenantSettings(ctx context.Context) (TenantSettings, error) {
	v, err := c.readTenantSettings(ctx)
	if err == nil {
		c.tenant.mu.Lock()
		c.tenant.val, c.tenant.err, c.tenant.at, c.tenant.have = v, nil, c.now(), true
		c.tenant.mu.Unlock()
	}
	return v, err
}

func (c *Client) readTenantSettings(ctx context.Context) (TenantSettings, error) {
	const op = "POST /settings/batch-requests"
	body := map[string]any{"requests": []any{
		map[string]any{"id": "uom", "method": "GET", "url": "/units-of-measure"},
		map[string]any{"id": "cur", "method": "GET", "url": "/currencies"},
		map[string]any{"id": "tp", "method": "GET", "url": "/tenant-profile"},
	}}
	var res struct {
		Responses []struct {
			ID       string `json:"id"`
			Response struct {
				Status        string          `json:"status"`
				Body          json.RawMessage `json:"body"`
				ErrorMessages []string        `json:"errorMessages"`
			} `json:"response"`
		} `json:"responses"`
	}
	if _, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/settings/batch-requests", body: body}, &res); err != nil {
		return TenantSettings{}, err
	}
	var out TenantSettings
	for _, r := range res.Responses {
		if !strings.HasPrefix(r.Response.Status, "200") {
			return TenantSettings{}, &Error{Op: op, Code: codeDecode, Message: fmt.Sprintf("settings request %s answered %s: %s", r.ID,
				r.Response.Status, strings.Join(r.Response.ErrorMessages, "; "))}
		}
		switch r.ID {
		case "uom":
			var b struct {
				Units []struct {
					Name   string `json:"name"`
					Active bool   `json:"active"`
				} `json:"unitsOfMeasure"`
			}
			if err := json.Unmarshal(r.Response.Body, &b); err != nil {
				return TenantSettings{}, &Error{Op: op, Code: codeDecode, Message: "units of measure: " + err.Error(), Err: err}
			}
			for _, u := range b.Units {
				if u.Active {
					out.UnitsOfMeasure = append(out.UnitsOfMeasure, u.Name)
				}
			}
		case "cur":
			var b struct {
				Currencies []struct {
					Code   string `json:"currencyCode"`
					Active bool   `json:"active"`
				} `json:"currencies"`
			}
			if err := json.Unmarshal(r.Response.Body, &b); err != nil {
				return TenantSettings{}, &Error{Op: op, Code: codeDecode, Message: "currencies: " + err.Error(), Err: err}
			}
			for _, cur := range b.Currencies {
				if cur.Active {
					out.Currencies = append(out.Currencies, cur.Code)
				}
			}
		case "tp":
			var b struct {
				TimeZone string `json:"timezone"`
			}
			if err := json.Unmarshal(r.Response.Body, &b); err != nil {
				return TenantSettings{}, &Error{Op: op, Code: codeDecode, Message: "tenant profile: " + err.Error(), Err: err}
			}
			out.TimeZone = b.TimeZone
		}
	}
	return out, nil
}

// tenantCacheTTL bounds how old the cached tenant settings may be.
const tenantCacheTTL = time.Minute

type tenantCache struct {
	mu   sync.Mutex
	at   time.Time
	val  TenantSettings
	err  error // a non-retryable failure (e.g. no Settings API permission), cached too
	have bool
}

// CachedTenantSettings is ReadTenantSettings, cached for a minute and shared
// by every caller (the reconcilers check each plan against it). A
// non-retryable failure is cached as well, so a tenant that does not grant
// the Settings API costs one call a minute, not one per plan.
func (c *Client) CachedTenantSettings(ctx context.Context) (TenantSettings, error) {
	c.tenant.mu.Lock()
	if c.tenant.have && c.now().Sub(c.tenant.at) < tenantCacheTTL {
		v, err := c.tenant.val, c.tenant.err
		c.tenant.mu.Unlock()
		return v, err
	}
	c.tenant.mu.Unlock()
	v, err := c.ReadTenantSettings(ctx)
	if err != nil && !IsRetryable(err) {
		c.tenant.mu.Lock()
		c.tenant.val, c.tenant.err, c.tenant.at, c.tenant.have = TenantSettings{}, err, c.now(), true
		c.tenant.mu.Unlock()
	}
	return v, err
}

// TenantNeeds is what billsync's configuration and local catalog need from
// the tenant.
type TenantNeeds struct {
	Fields []RequiredField
	// Units and Currencies map each unit of measure / currency to the
	// local plans using it.
	Units      map[string][]string
	Currencies map[string][]string
}

// Missing is one thing the tenant lacks, with what to do.
type Missing struct {
	Kind   string         `json:"kind"` // customField, unitOfMeasure, currency
	Field  *RequiredField `json:"field,omitempty"`
	Name   string         `json:"name"`
	UsedBy []string       `json:"usedBy,omitempty"`
	Fix    string         `json:"fix"`
}

// TenantReport is the outcome of CheckTenant.
type TenantReport struct {
	OK       bool      `json:"ok"`
	Missing  []Missing `json:"missing"`
	TimeZone string    `json:"timeZone"`
	// Units and Currencies are what the tenant has.
	Units      []string `json:"unitsOfMeasure"`
	Currencies []string `json:"currencies"`
	// Callouts describes the callout setup (filled by the inbound service).
	Callouts string `json:"callouts"`
}

// CheckTenant reads the tenant (describe of each object billsync writes a
// field on, the settings API) and lists what need asks for that it lacks.
func (c *Client) CheckTenant(ctx context.Context, need TenantNeeds) (TenantReport, error) {
	rep := TenantReport{Missing: []Missing{}}
	byObject := map[string][]RequiredField{}
	var objects []string
	for _, f := range need.Fields {
		if _, ok := byObject[f.Object]; !ok {
			objects = append(objects, f.Object)
		}
		byObject[f.Object] = append(byObject[f.Object], f)
	}
	for _, obj := range objects {
		fields, err := c.describeFresh(ctx, obj)
		if err != nil {
			return rep, fmt.Errorf("describe %s: %w", obj, err)
		}
		for _, f := range byObject[obj] {
			i := slices.IndexFunc(fields, func(d DescribedField) bool { return d.Name == f.Name })
			switch {
			case i < 0:
				f := f
				rep.Missing = append(rep.Missing, Missing{Kind: "customField", Field: &f, Name: obj + "." + f.Name,
					Fix: fmt.Sprintf("create the %s custom field %s (API name %s, length %d) on %s (Settings > Billing > Manage Custom Fields, or Object Manager)",
						f.Type, strings.TrimSuffix(f.Name, CustomFieldSuffix), f.Name, f.Length, obj)})
			case f.Type == "text" && fields[i].MaxLength > 0 && fields[i].MaxLength < f.Length:
				f := f
				rep.Missing = append(rep.Missing, Missing{Kind: "customField", Field: &f, Name: obj + "." + f.Name,
					Fix: fmt.Sprintf("%s.%s is only %d characters long; make it %d", obj, f.Name, fields[i].MaxLength, f.Length)})
			}
		}
	}
	st, err := c.ReadTenantSettings(ctx)
	if err != nil {
		return rep, fmt.Errorf("read the tenant's settings: %w", err)
	}
	rep.TimeZone, rep.Units, rep.Currencies = st.TimeZone, st.UnitsOfMeasure, st.Currencies
	for _, u := range sortedKeys(need.Units) {
		if st.Unit(u) == "" {
			rep.Missing = append(rep.Missing, Missing{Kind: "unitOfMeasure", Name: u, UsedBy: need.Units[u],
				Fix: fmt.Sprintf("create the active unit of measure %q (Settings > Billing > Customize Units of Measure)", u)})
		}
	}
	for _, cur := range sortedKeys(need.Currencies) {
		if !st.HasCurrency(cur) {
			rep.Missing = append(rep.Missing, Missing{Kind: "currency", Name: cur, UsedBy: need.Currencies[cur],
				Fix: fmt.Sprintf("activate the currency %s (Settings > Billing > Customize Currencies)", cur)})
		}
	}
	rep.OK = len(rep.Missing) == 0
	return rep, nil
}

// fieldCache holds each object's described fields for tenantCacheTTL.
type fieldCache struct {
	mu   sync.Mutex
	byOb map[string]fieldCacheEntry
	// flight joins concurrent reads of one object: forty workers missing
	// the cache at once make one describe call, not forty.
	flight singleflight.Group
}

type fieldCacheEntry struct {
	at     time.Time
	fields []DescribedField
	err    error // a non-retryable failure (no describe permission), cached too
}

// CachedDescribe is Describe, cached for a minute per object and shared by
// every caller (the reconcilers check each write against it); a
// non-retryable failure is cached as well.
func (c *Client) CachedDescribe(ctx context.Context, object string) ([]DescribedField, error) {
	c.fields.mu.Lock()
	if e, ok := c.fields.byOb[object]; ok && c.now().Sub(e.at) < tenantCacheTTL {
		c.fields.mu.Unlock()
		return e.fields, e.err
	}
	c.fields.mu.Unlock()
	return c.describeFresh(ctx, object)
}

// describeFresh is Describe, refreshing CachedDescribe's cache (the tenant
// check does: after an admin created a field, the next write sees it).
func (c *Client) describeFresh(ctx context.Context, object string) ([]DescribedField, error) {
	v, err, _ := c.fields.flight.Do(object, func() (any, error) {
		fields, err := c.Describe(ctx, object)
		if err != nil && IsRetryable(err) {
			return nil, err
		}
		c.fields.mu.Lock()
		if c.fields.byOb == nil {
			c.fields.byOb = map[string]fieldCacheEntry{}
		}
		c.fields.byOb[object] = fieldCacheEntry{at: c.now(), fields: fields, err: err}
		c.fields.mu.Unlock()
		return fields, err
	})
	fields, _ := v.([]DescribedField)
	return fields, err
}

// LackingFields returns the fields of need the tenant does not define on
// their object (GET /v1/describe, cached): billsync checks them before a
// write carries them. An object whose fields cannot be described (no
// permission, or a failed read) is not checked: Zuora's answer to the write
// says what is wrong.
//
// The cache is trusted for fields it has; a field it lacks is looked up
// afresh once before it is reported (an admin may just have created it).
func (c *Client) LackingFields(ctx context.Context, need []RequiredField) ([]RequiredField, error) {
	var out []RequiredField
	fresh := map[string]bool{}
	for _, f := range need {
		has := func(fields []DescribedField) bool {
			return slices.ContainsFunc(fields, func(d DescribedField) bool { return d.Name == f.Name })
		}
		fields, err := c.CachedDescribe(ctx, f.Object)
		if err == nil && !has(fields) && !fresh[f.Object] {
			fresh[f.Object] = true
			fields, err = c.describeFresh(ctx, f.Object)
		}
		if err != nil {
			// Unreadable now (a fault, a missing permission): not checked.
			// The pre-check is best effort and adds no failure of its own;
			// Zuora's answer to the write says what is wrong.
			continue
		}
		if !has(fields) {
			out = append(out, f)
		}
	}
	return out, nil
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
