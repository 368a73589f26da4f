package zuorasim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // tenant time zones load on machines without a zoneinfo database
)

// Tenant is the configuration of the simulated Zuora tenant: what an admin
// sets up in Settings > Billing before an integration can write. Writes that
// use an undefined unit of measure, an undefined custom field on that
// object, a currency that is not enabled or a feature that is off are refused
// (docs/zuora-rules.md lists each rule with its Zuora page).
type Tenant struct {
	// UnitsOfMeasure are the active units of measure (Settings > Billing >
	// Customize Units of Measure), case-sensitive.
	UnitsOfMeasure []string `json:"unitsOfMeasure"`
	// Currencies are the active currencies (Customize Currencies).
	Currencies []string `json:"currencies"`
	// TimeZone is the tenant's time zone (an IANA name such as
	// "America/Los_Angeles"), used to place usage in days and periods.
	TimeZone string `json:"timeZone"`
	// CustomFields are the custom fields defined per object: Product,
	// ProductRatePlan, ProductRatePlanCharge, Account, Contact,
	// Subscription, RatePlan, RatePlanCharge, Usage.
	CustomFields map[string][]CustomField `json:"customFields"`
	// Features are the billing features switched on or off, e.g.
	// {"BillingTiming": true}. A feature not listed is on.
	Features map[string]bool `json:"features"`
}

// CustomField is one custom field definition.
type CustomField struct {
	Name   string `json:"name"`             // API name, ends in __c
	Type   string `json:"type"`             // text, picklist, number, date, checkbox
	Length int    `json:"length,omitempty"` // text fields: maximum characters
	Label  string `json:"label,omitempty"`
}

// Custom field objects a tenant can define fields on.
var tenantObjects = []string{"Product", "ProductRatePlan", "ProductRatePlanCharge", "Account", "Contact", "Subscription",
	"RatePlan", "RatePlanCharge", "Usage"}

var customFieldTypes = []string{"text", "picklist", "number", "date", "checkbox"}

// Features the simulator enforces.
const (
	// FeatureBillingTiming allows BillingTiming "In Arrears" on recurring
	// charges.
	FeatureBillingTiming = "BillingTiming"
)

// FreshTenant is a tenant as Zuora provisions it: a few units of measure,
// USD, EUR and GBP, UTC and no custom fields.
func FreshTenant() Tenant {
	return Tenant{
		UnitsOfMeasure: []string{"Each", "License", "Minutes", "GB", "Click"},
		Currencies:     []string{"USD", "EUR", "GBP"},
		TimeZone:       "UTC",
		CustomFields:   map[string][]CustomField{},
		Features:       map[string]bool{FeatureBillingTiming: true},
	}
}

// Define adds (or replaces) a custom field on an object.
func (t *Tenant) Define(object string, f CustomField) {
	if t.CustomFields == nil {
		t.CustomFields = map[string][]CustomField{}
	}
	list := slices.DeleteFunc(t.CustomFields[object], func(x CustomField) bool { return x.Name == f.Name })
	t.CustomFields[object] = append(list, f)
}

// AddUnits adds units of measure that are not there yet.
func (t *Tenant) AddUnits(units ...string) {
	for _, u := range units {
		if !slices.Contains(t.UnitsOfMeasure, u) {
			t.UnitsOfMeasure = append(t.UnitsOfMeasure, u)
		}
	}
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate reports the first problem of a tenant configuration.
func (t Tenant) Validate() error {
	if len(t.Currencies) == 0 {
		return fmt.Errorf("currencies: at least one currency must be enabled")
	}
	for _, c := range t.Currencies {
		if !currencyCode.MatchString(c) {
			return fmt.Errorf("currencies: %q is not an ISO 4217 code such as USD", c)
		}
	}
	for _, u := range t.UnitsOfMeasure {
		if strings.TrimSpace(u) == "" || len([]rune(u)) > 25 {
			return fmt.Errorf("unitsOfMeasure: %q must be 1 to 25 characters", u)
		}
	}
	if _, err := time.LoadLocation(t.TimeZone); err != nil || t.TimeZone == "" {
		return fmt.Errorf("timeZone: %q is not an IANA time zone such as UTC or America/Los_Angeles", t.TimeZone)
	}
	for obj, fields := range t.CustomFields {
		if !slices.Contains(tenantObjects, obj) {
			return fmt.Errorf("customFields: unknown object %q (one of %s)", obj, strings.Join(tenantObjects, ", "))
		}
		for _, f := range fields {
			if !strings.HasSuffix(f.Name, "__c") || len(f.Name) < 4 {
				return fmt.Errorf("customFields.%s: %q must end in __c", obj, f.Name)
			}
			if !slices.Contains(customFieldTypes, f.Type) {
				return fmt.Errorf("customFields.%s.%s: type %q is not one of %s", obj, f.Name, f.Type, strings.Join(customFieldTypes, ", "))
			}
			if f.Type == "text" && (f.Length < 1 || f.Length > 255) {
				return fmt.Errorf("customFields.%s.%s: a text field needs a length of 1 to 255", obj, f.Name)
			}
		}
	}
	return nil
}

func (t Tenant) clone() Tenant {
	out := t
	out.UnitsOfMeasure = slices.Clone(t.UnitsOfMeasure)
	out.Currencies = slices.Clone(t.Currencies)
	out.CustomFields = make(map[string][]CustomField, len(t.CustomFields))
	for k, v := range t.CustomFields {
		out.CustomFields[k] = slices.Clone(v)
	}
	out.Features = maps.Clone(t.Features)
	if out.Features == nil {
		out.Features = map[string]bool{}
	}
	return out
}

// tenantRules is the tenant prepared for look-ups; the caller holds s.mu.
type tenantRules struct {
	t      Tenant
	uoms   map[string]bool
	curs   map[string]bool
	fields map[string]map[string]CustomField
	loc    *time.Location
}

func newTenantRules(t Tenant) *tenantRules {
	r := &tenantRules{t: t.clone(), uoms: map[string]bool{}, curs: map[string]bool{}, fields: map[string]map[string]CustomField{}, loc: time.UTC}
	for _, u := range t.UnitsOfMeasure {
		r.uoms[u] = true
	}
	for _, c := range t.Currencies {
		r.curs[c] = true
	}
	for obj, fs := range t.CustomFields {
		r.fields[obj] = map[string]CustomField{}
		for _, f := range fs {
			r.fields[obj][f.Name] = f
		}
	}
	if loc, err := time.LoadLocation(t.TimeZone); err == nil {
		r.loc = loc
	}
	return r
}

func (r *tenantRules) feature(name string) bool {
	on, listed := r.t.Features[name]
	return !listed || on
}

// currency refuses a currency the tenant has not enabled.
func (r *tenantRules) currency(field, cur string) *fieldErr {
	if r.curs[cur] {
		return nil
	}
	return invalid("%s: the currency %s is not enabled in this tenant (Settings > Billing > Customize Currencies)", field, cur)
}

// uom refuses a unit of measure the tenant does not define.
func (r *tenantRules) uom(u string) *fieldErr {
	if r.uoms[u] {
		return nil
	}
	return invalid("The unit of measure %s does not exist in this tenant (Settings > Billing > Customize Units of Measure)", u)
}

// custom refuses custom fields that are not defined on the object, and
// values that do not fit their definition.
func (r *tenantRules) custom(object string, m map[string]any) *fieldErr {
	keys := make([]string, 0, len(m))
	for k := range m {
		if isCustomField(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := r.fields[object][k]
		if !ok {
			return &fieldErr{cat: catUnknownField, msg: fmt.Sprintf("The custom field %s is not defined on the %s object", k, object)}
		}
		v := m[k]
		if v == nil {
			continue
		}
		switch f.Type {
		case "text", "picklist":
			s, isStr := v.(string)
			if !isStr {
				return invalid("The custom field %s of %s should be a string", k, object)
			}
			if f.Length > 0 && len([]rune(s)) > f.Length {
				return invalid("The custom field %s of %s may not exceed %d characters", k, object, f.Length)
			}
		case "number":
			if _, isNum := v.(json.Number); !isNum {
				return invalid("The custom field %s of %s should be a number", k, object)
			}
		case "checkbox":
			if _, isBool := v.(bool); !isBool {
				return invalid("The custom field %s of %s should be a boolean", k, object)
			}
		case "date":
			s, _ := v.(string)
			if _, err := time.Parse(dateLayout, s); err != nil {
				return invalid("The custom field %s of %s should be a date in the format yyyy-MM-dd", k, object)
			}
		}
	}
	return nil
}

// Tenant returns a copy of the simulator's tenant configuration.
func (s *Sim) Tenant() Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenant.t.clone()
}

// SetTenant replaces the tenant configuration (objects already written
// are kept as they are).
func (s *Sim) SetTenant(t Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.tenant = newTenantRules(t)
	s.mu.Unlock()
	return nil
}

// LoadTenantFile reads a tenant configuration (the JSON of Tenant).
func LoadTenantFile(b []byte) (Tenant, error) {
	var t Tenant
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Tenant{}, fmt.Errorf("tenant file: %w", err)
	}
	if err := t.Validate(); err != nil {
		return Tenant{}, fmt.Errorf("tenant file: %w", err)
	}
	return t, nil
}

func (s *Sim) controlTenant(method string, body []byte) *resp {
	if method == http.MethodPut {
		t, err := LoadTenantFile(body)
		if err != nil {
			return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
		}
		if err := s.SetTenant(t); err != nil {
			return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
		}
	}
	return jsonResp(http.StatusOK, s.Tenant())
}

// ---- GET /v1/describe/{object} ----

// describeObjects maps the object names describe accepts to the tenant's
// custom-field object and the standard fields billsync's objects have.
var describeStandard = map[string][]describeField{
	"Product": {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 100}, {Name: "SKU", Type: "text", MaxLength: 50},
		{Name: "Description", Type: "text", MaxLength: 500}, {Name: "EffectiveStartDate", Type: "date"}, {Name: "EffectiveEndDate", Type: "date"}},
	"ProductRatePlan": {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 255}, {Name: "ProductId", Type: "text"},
		{Name: "EffectiveStartDate", Type: "date"}, {Name: "EffectiveEndDate", Type: "date"}},
	"ProductRatePlanCharge": {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 100}, {Name: "ChargeModel", Type: "picklist"},
		{Name: "ChargeType", Type: "picklist"}, {Name: "UOM", Type: "text", MaxLength: 25}},
	"Account": {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 255}, {Name: "AccountNumber", Type: "text", MaxLength: 70},
		{Name: "Currency", Type: "picklist"}},
	"Contact":        {{Name: "Id", Type: "text"}, {Name: "FirstName", Type: "text", MaxLength: 100}, {Name: "LastName", Type: "text", MaxLength: 100}, {Name: "PostalCode", Type: "text", MaxLength: 20}},
	"Subscription":   {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 100}, {Name: "Status", Type: "picklist"}, {Name: "AutoRenew", Type: "boolean"}},
	"RatePlan":       {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 255}, {Name: "ProductRatePlanId", Type: "text"}},
	"RatePlanCharge": {{Name: "Id", Type: "text"}, {Name: "Name", Type: "text", MaxLength: 100}, {Name: "Quantity", Type: "decimal"}},
	"Usage":          {{Name: "Id", Type: "text"}, {Name: "UOM", Type: "text"}, {Name: "Quantity", Type: "decimal"}, {Name: "StartDateTime", Type: "datetime"}},
}

type describeField struct {
	XMLName   xml.Name `xml:"field"`
	Name      string   `xml:"name"`
	Label     string   `xml:"label"`
	Type      string   `xml:"type"`
	MaxLength int      `xml:"maxlength,omitempty"`
	Custom    bool     `xml:"custom"`
	Contexts  []string `xml:"contexts>context"`
}

type describeDoc struct {
	XMLName xml.Name        `xml:"object"`
	Name    string          `xml:"name"`
	Label   string          `xml:"label"`
	Fields  []describeField `xml:"fields>field"`
}

var describeTypes = map[string]string{"text": "text", "picklist": "picklist", "number": "decimal", "date": "date", "checkbox": "boolean"}

func (s *Sim) getDescribe(c *call) *resp {
	obj := c.param("object")
	std, ok := describeStandard[obj]
	if !ok {
		h := http.Header{}
		h.Set("Content-Type", "text/xml; charset=utf-8")
		return &resp{status: http.StatusNotFound, header: h, body: []byte(`<?xml version="1.0" encoding="UTF-8"?><error>Object ` + xmlEscape(obj) + ` not found</error>`)}
	}
	s.mu.Lock()
	custom := slices.Clone(s.tenant.t.CustomFields[obj])
	s.mu.Unlock()
	doc := describeDoc{Name: obj, Label: obj}
	for _, f := range std {
		f.Label = f.Name
		f.Contexts = []string{"export"}
		doc.Fields = append(doc.Fields, f)
	}
	for _, f := range custom {
		label := f.Label
		if label == "" {
			label = strings.TrimSuffix(f.Name, "__c")
		}
		doc.Fields = append(doc.Fields, describeField{Name: f.Name, Label: label, Type: describeTypes[f.Type], MaxLength: f.Length, Custom: true,
			Contexts: []string{"export"}})
	}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return c.restErr(catInternal, "describe failed")
	}
	h := http.Header{}
	h.Set("Content-Type", "text/xml")
	return &resp{status: http.StatusOK, header: h, body: append([]byte(xml.Header), b...)}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ---- Settings API: GET /settings/listing, POST /settings/batch-requests ----

func (s *Sim) getSettingsListing(c *call) *resp {
	item := func(key, path string) map[string]any {
		return map[string]any{"key": key, "context": "Tenant", "pathPattern": path,
			"httpOperations": []any{map[string]any{"method": "GET", "url": path, "parameters": []any{}}}}
	}
	return jsonResp(http.StatusOK, map[string]any{"settings": []any{
		item("UnitsOfMeasure", "/units-of-measure"),
		item("Currencies", "/currencies"),
		item("TenantProfile", "/tenant-profile"),
	}})
}

func (s *Sim) settingsBody(url string) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant.t
	switch strings.TrimPrefix(url, "/settings") {
	case "/units-of-measure":
		list := make([]any, 0, len(t.UnitsOfMeasure))
		for i, u := range t.UnitsOfMeasure {
			list = append(list, map[string]any{"id": fmt.Sprintf("2c92c0f9446cd495014475%010d", i+1), "name": u, "displayAs": u,
				"precision": 0, "roundingMode": "Up", "active": true, "usageLogFileLabel": u})
		}
		return http.StatusOK, map[string]any{"unitsOfMeasure": list}
	case "/currencies":
		list := make([]any, 0, len(t.Currencies))
		for _, cur := range t.Currencies {
			list = append(list, map[string]any{"currencyCode": cur, "active": true, "roundingMode": "HALF_UP", "decimalPlaces": 2})
		}
		return http.StatusOK, map[string]any{"currencies": list}
	case "/tenant-profile":
		return http.StatusOK, map[string]any{"timezone": t.TimeZone, "companyName": "billsync simulator"}
	}
	return http.StatusNotFound, nil
}

func (s *Sim) postSettingsBatch(c *call) *resp {
	m, err := decodeObject(c.body)
	if err != nil {
		return c.restErr(catMalformed, "Malformed JSON body: "+err.Error())
	}
	raw, fe := arrField(m, "requests")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	reqs, fe := objects(raw, "requests")
	if fe != nil {
		return c.restErr(fe.cat, fe.msg)
	}
	if len(reqs) == 0 {
		return c.restErr(catMissing, "requests must hold at least one request")
	}
	if len(reqs) > 100 {
		return c.restErr(catInvalidValue, "A batch may hold at most 100 requests")
	}
	out := make([]any, 0, len(reqs))
	for _, r := range reqs {
		method, url := str(r["method"]), str(r["url"])
		res := map[string]any{"id": str(r["id"]), "method": method, "url": url}
		if method != http.MethodGet {
			res["response"] = map[string]any{"status": "405 METHOD_NOT_ALLOWED", "errorMessages": []string{"the simulator serves settings reads only"}}
			out = append(out, res)
			continue
		}
		status, body := s.settingsBody(url)
		if body == nil {
			res["response"] = map[string]any{"status": "404 NOT_FOUND", "errorMessages": []string{"no setting at " + url}}
		} else {
			res["response"] = map[string]any{"status": fmt.Sprintf("%d OK", status), "body": body}
		}
		out = append(out, res)
	}
	return jsonResp(http.StatusOK, map[string]any{"responses": out})
}
