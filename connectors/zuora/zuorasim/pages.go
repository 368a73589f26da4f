package zuorasim

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// The simulator's pages stand for Zuora's UI: the deep links billsync
// renders (<UI root>/apps/<Page>.do?method=view&id=<id>) answer with a small
// read-only page of the object, its fields and related objects, and the
// index (/) lists every object with forms to create an account and a
// subscription as a user of Zuora's UI would (the callouts fire). Links are
// relative, so the pages work under any prefix (billsync's /zuora-sim/).

func isPage(path string) bool {
	return path == "/" || strings.HasPrefix(path, "/apps/") || strings.HasPrefix(path, "/ui/")
}

type pageField struct{ Name, Value string }

type pageLink struct{ Text, Href, Note string }

type pageSection struct {
	Title string
	Links []pageLink
	Rows  [][]string // a table (first row: header)
}

type pageData struct {
	Title    string
	Kind     string
	Index    string // link back to the index
	Fields   []pageField
	Sections []pageSection
	// index only
	Accounts  []pageLink
	RatePlans []pageLink // Href holds the product rate plan id
	Error     string
	Today     string
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Zuora simulator</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}.muted{color:#777}form{margin:1em 0;padding:1em;border:1px solid #ddd}label{display:inline-block;margin-right:1em}.error{color:#b00}</style>
</head><body>
<p class="muted"><a href="{{.Index}}">Zuora simulator</a> · a stand-in for Zuora's UI (read-only pages; nothing here is a real Zuora)</p>
<h1>{{if .Kind}}{{.Kind}}: {{end}}{{.Title}}</h1>
{{with .Error}}<p class="error" id="error">{{.}}</p>{{end}}
{{if .Fields}}<table id="fields">{{range .Fields}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}</table>{{end}}
{{range .Sections}}<h2>{{.Title}}</h2>
{{if .Links}}<ul>{{range .Links}}<li>{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}} {{with .Note}}<span class="muted">{{.}}</span>{{end}}</li>{{end}}</ul>{{end}}
{{if .Rows}}<table>{{range $i, $r := .Rows}}<tr>{{range $r}}{{if eq $i 0}}<th>{{.}}</th>{{else}}<td>{{.}}</td>{{end}}{{end}}</tr>{{end}}</table>{{end}}
{{if and (not .Links) (not .Rows)}}<p class="muted">none</p>{{end}}
{{end}}
{{if .Today}}
<h2>Create an account</h2>
<form method="post" action="ui/accounts" id="create-account">
<label>Name <input name="name" required></label>
<label>Currency <input name="currency" value="USD" size="4" required></label>
<label>Bill-to first name <input name="firstName" value="Ada" required></label>
<label>last name <input name="lastName" value="Lovelace" required></label>
<label>country <input name="country" value="US" size="4" required></label>
<button>Create account</button>
</form>
<h2>Create a subscription</h2>
{{if and .Accounts .RatePlans}}
<form method="post" action="ui/subscriptions" id="create-subscription">
<label>Account <select name="accountNumber">{{range .Accounts}}<option value="{{.Href}}">{{.Text}}</option>{{end}}</select></label>
<label>Rate plan <select name="productRatePlanId">{{range .RatePlans}}<option value="{{.Href}}">{{.Text}}</option>{{end}}</select></label>
<label>Contract effective <input name="contractEffectiveDate" value="{{.Today}}" size="10"></label>
<button>Create subscription</button>
</form>
{{else}}<p class="muted">Needs an account and a product rate plan.</p>{{end}}
{{end}}
</body></html>
`))

func (s *Sim) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	if strings.HasPrefix(r.URL.Path, "/ui/") {
		s.servePageForm(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the simulator's pages are read-only", http.StatusMethodNotAllowed)
		return
	}
	st := s.State()
	var d pageData
	found := true
	switch r.URL.Path {
	case "/":
		d = s.indexPage(st, r.URL.Query().Get("error"))
	case "/apps/CustomerAccount.do":
		d, found = accountPage(st, r.URL.Query().Get("id"))
	case "/apps/Subscription.do":
		d, found = subscriptionPage(st, r.URL.Query().Get("id"))
	case "/apps/Product.do":
		d, found = productPage(st, r.URL.Query().Get("id"))
	case "/apps/CreditMemo.do":
		d, found = s.memoPage(r.URL.Query().Get("id"))
	default:
		found = false
		d = pageData{Title: "No such page", Index: "../"}
	}
	if !found {
		d.Error = "The simulator holds no such object (a reset or another simulator?)."
		w.WriteHeader(http.StatusNotFound)
	}
	if err := pageTmpl.Execute(w, d); err != nil {
		s.log.Warn().Err(err).Msg("zuorasim: rendering a page")
	}
}

func (s *Sim) indexPage(st StateSnapshot, errMsg string) pageData {
	d := pageData{Title: "Zuora simulator", Index: "./", Error: errMsg, Today: s.Now().Format(dateLayout)}
	products := pageSection{Title: fmt.Sprintf("Products (%d)", len(st.Products))}
	plans := map[string]RatePlanSnapshot{}
	for _, rp := range st.RatePlans {
		plans[rp.ID] = rp
	}
	for _, p := range st.Products {
		products.Links = append(products.Links, pageLink{Text: p.Name, Href: link("Product", p.ID), Note: p.ID})
		for _, id := range p.RatePlanIDs {
			d.RatePlans = append(d.RatePlans, pageLink{Text: p.Name + " · " + plans[id].Name, Href: id})
		}
	}
	accounts := pageSection{Title: fmt.Sprintf("Accounts (%d)", len(st.Accounts))}
	for _, a := range st.Accounts {
		accounts.Links = append(accounts.Links, pageLink{Text: a.AccountNumber + " " + a.Name, Href: link("CustomerAccount", a.ID), Note: a.Currency + ", " + a.Status})
		d.Accounts = append(d.Accounts, pageLink{Text: a.AccountNumber + " " + a.Name, Href: a.AccountNumber})
	}
	subs := pageSection{Title: fmt.Sprintf("Subscriptions (%d)", len(st.Subscriptions))}
	for _, sub := range st.Subscriptions {
		subs.Links = append(subs.Links, pageLink{Text: sub.SubscriptionNumber, Href: link("Subscription", sub.ID), Note: fmt.Sprintf("%s, account %s, version %d", sub.Status, sub.AccountNumber, sub.Version)})
	}
	d.Sections = []pageSection{products, accounts, subs}
	return d
}

// link is a deep link relative to the index; pages under /apps/ drop the prefix.
func link(page, id string) string {
	return "apps/" + page + ".do?method=view&id=" + url.QueryEscape(id)
}

func rel(href string) string { return strings.TrimPrefix(href, "apps/") }

func fieldsOf(m map[string]any) []pageField {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]pageField, 0, len(keys))
	for _, k := range keys {
		out = append(out, pageField{k, show(m[k])})
	}
	return out
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func accountPage(st StateSnapshot, id string) (pageData, bool) {
	i := slices.IndexFunc(st.Accounts, func(a AccountSnapshot) bool { return a.ID == id || a.AccountNumber == id })
	if i < 0 {
		return pageData{Title: id, Kind: "Account", Index: "../"}, false
	}
	a := st.Accounts[i]
	d := pageData{Title: a.AccountNumber + " " + a.Name, Kind: "Account", Index: "../", Fields: []pageField{
		{"Id", a.ID}, {"AccountNumber", a.AccountNumber}, {"Name", a.Name}, {"Currency", a.Currency}, {"Status", a.Status},
		{"BillCycleDay", fmt.Sprint(a.BillCycleDay)}, {"CreatedDate", a.CreatedDate.UTC().Format("2006-01-02 15:04:05Z")},
		{"UpdatedDate", a.UpdatedDate.UTC().Format("2006-01-02 15:04:05Z")}}}
	d.Fields = append(d.Fields, fieldsOf(a.CustomFields)...)
	contact := pageSection{Title: "Bill-to contact"}
	for _, f := range fieldsOf(a.BillTo) {
		contact.Links = append(contact.Links, pageLink{Text: f.Name + ": " + f.Value})
	}
	subs := pageSection{Title: "Subscriptions"}
	for _, sub := range st.Subscriptions {
		if sub.AccountID == a.ID {
			subs.Links = append(subs.Links, pageLink{Text: sub.SubscriptionNumber, Href: rel(link("Subscription", sub.ID)), Note: fmt.Sprintf("%s, version %d", sub.Status, sub.Version)})
		}
	}
	usage := pageSection{Title: "Usage", Rows: [][]string{{"Start", "Subscription", "Charge", "UOM", "Quantity", "Status"}}}
	for _, u := range st.Usage {
		if u.AccountID == a.ID {
			usage.Rows = append(usage.Rows, []string{u.StartDateTime.UTC().Format("2006-01-02 15:04Z"), u.SubscriptionNumber, u.ChargeNumber, u.UOM, u.Quantity.String(), u.Status})
		}
	}
	if len(usage.Rows) == 1 {
		usage.Rows = nil
	}
	d.Sections = []pageSection{contact, subs, usage}
	return d, true
}

func subscriptionPage(st StateSnapshot, id string) (pageData, bool) {
	i := slices.IndexFunc(st.Subscriptions, func(s SubscriptionSnapshot) bool {
		return s.SubscriptionNumber == id || slices.Contains(s.VersionIDs, id)
	})
	if i < 0 {
		return pageData{Title: id, Kind: "Subscription", Index: "../"}, false
	}
	sub := st.Subscriptions[i]
	d := pageData{Title: sub.SubscriptionNumber, Kind: "Subscription", Index: "../", Fields: []pageField{
		{"Id", sub.ID}, {"SubscriptionNumber", sub.SubscriptionNumber}, {"Version", fmt.Sprint(sub.Version)}, {"Status", sub.Status},
		{"TermType", sub.TermType}, {"TermStartDate", sub.TermStartDate}, {"TermEndDate", sub.TermEndDate},
		{"SubscriptionEndDate", sub.SubscriptionEnd}, {"CancelledDate", sub.CancelledDate}}}
	d.Fields = append(d.Fields, fieldsOf(sub.CustomFields)...)
	if id != sub.ID {
		d.Error = "This is an earlier version's id; the page shows the latest version."
		if id == sub.SubscriptionNumber {
			d.Error = ""
		}
	}
	acct := pageSection{Title: "Account"}
	acct.Links = append(acct.Links, pageLink{Text: sub.AccountNumber, Href: rel(link("CustomerAccount", sub.AccountID))})
	productOf := map[string]string{}
	for _, rp := range st.RatePlans {
		productOf[rp.ID] = rp.ProductID
	}
	plans := pageSection{Title: "Rate plans and charges", Rows: [][]string{{"Rate plan", "Product", "Charge", "Number", "Type", "Model", "Quantity", "Price", "Segment", "Effective"}}}
	for _, rp := range sub.RatePlans {
		for _, ch := range rp.Charges {
			plans.Rows = append(plans.Rows, []string{rp.Name, productOf[rp.ProductRatePlanID], ch.Name, ch.Number, ch.Type, ch.Model,
				ch.Quantity.String(), ch.Price.String(), fmt.Sprint(ch.Segment), ch.EffectiveStartDate + " – " + ch.EffectiveEndDate})
		}
	}
	products := pageSection{Title: "Products"}
	seen := map[string]bool{}
	for _, rp := range sub.RatePlans {
		if p := productOf[rp.ProductRatePlanID]; p != "" && !seen[p] {
			seen[p] = true
			products.Links = append(products.Links, pageLink{Text: rp.Name, Href: rel(link("Product", p)), Note: p})
		}
	}
	versions := pageSection{Title: "Versions"}
	for n, v := range sub.VersionIDs {
		versions.Links = append(versions.Links, pageLink{Text: fmt.Sprintf("version %d", n+1), Note: v})
	}
	d.Sections = []pageSection{acct, plans, products, versions}
	return d, true
}

func productPage(st StateSnapshot, id string) (pageData, bool) {
	i := slices.IndexFunc(st.Products, func(p ProductSnapshot) bool { return p.ID == id })
	if i < 0 {
		return pageData{Title: id, Kind: "Product", Index: "../"}, false
	}
	p := st.Products[i]
	d := pageData{Title: p.Name, Kind: "Product", Index: "../", Fields: append([]pageField{{"Id", p.ID}, {"ProductNumber", p.Number}}, fieldsOf(p.Fields)...)}
	charges := map[string][]ChargeSnapshot{}
	for _, ch := range st.Charges {
		charges[ch.RatePlanID] = append(charges[ch.RatePlanID], ch)
	}
	plans := pageSection{Title: "Rate plans and charges", Rows: [][]string{{"Rate plan", "Rate plan id", "Charge", "Type", "Model", "Prices"}}}
	inPlan := map[string]bool{}
	for _, rp := range st.RatePlans {
		if rp.ProductID != p.ID {
			continue
		}
		inPlan[rp.ID] = true
		for _, ch := range charges[rp.ID] {
			var prices []string
			for _, t := range ch.Tiers {
				prices = append(prices, t.Currency+" "+t.Price.String())
			}
			plans.Rows = append(plans.Rows, []string{rp.Name, rp.ID, ch.Name, show(ch.Fields["ChargeType"]), show(ch.Fields["ChargeModel"]), strings.Join(prices, ", ")})
		}
	}
	subs := pageSection{Title: "Subscriptions"}
	for _, sub := range st.Subscriptions {
		if slices.ContainsFunc(sub.RatePlans, func(rp SubRatePlanSnapshot) bool { return inPlan[rp.ProductRatePlanID] }) {
			subs.Links = append(subs.Links, pageLink{Text: sub.SubscriptionNumber, Href: rel(link("Subscription", sub.ID)), Note: sub.Status + ", account " + sub.AccountNumber})
		}
	}
	d.Sections = []pageSection{plans, subs}
	return d, true
}

// servePageForm creates an account or a subscription from the index's forms
// (the control endpoints' rules and callouts), then shows the new object.
func (s *Sim) servePageForm(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST the index page's form", http.StatusMethodNotAllowed)
		return
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		http.Error(w, "cross-site form posts are refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "unreadable form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	var res *resp
	var page, key string
	now := s.Now()
	switch r.URL.Path {
	case "/ui/accounts":
		body, _ := json.Marshal(map[string]any{"name": f.Get("name"), "currency": f.Get("currency"), "billCycleDay": 1,
			"billToContact": map[string]any{"firstName": f.Get("firstName"), "lastName": f.Get("lastName"), "country": f.Get("country")}})
		res, page, key = s.controlAccount(body, now), "CustomerAccount", "accountId"
	case "/ui/subscriptions":
		body, _ := json.Marshal(map[string]any{"accountNumber": f.Get("accountNumber"), "contractEffectiveDate": f.Get("contractEffectiveDate"),
			"productRatePlanIds": []string{f.Get("productRatePlanId")}})
		res, page, key = s.controlSubscription(body, now), "Subscription", "subscriptionId"
	default:
		http.NotFound(w, r)
		return
	}
	s.persist()
	var out map[string]any
	_ = json.Unmarshal(res.body, &out)
	// Relative Locations (not http.Redirect, which makes them absolute from
	// the path it sees): the pages may be served under a prefix.
	loc := "../" + link(page, show(out[key]))
	if res.status != http.StatusOK {
		loc = "../?error=" + url.QueryEscape(show(out["error"]))
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}
