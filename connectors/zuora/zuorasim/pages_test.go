package zuorasim_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// TestPages: the UI deep links billsync renders answer with the object's
// page (fields and related objects, linked to each other); the index lists
// the objects, and its forms create an account and a subscription.
func TestPages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Team")
	acctNum, subNum := h.newOrder(c, "Initech")
	st := h.sim.State()
	acct, sub := st.Accounts[0], st.Subscriptions[0]
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := browser.Get(h.srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/apps/CustomerAccount.do?method=view&id=" + acct.ID)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "Initech")
	require.Contains(t, body, acctNum)
	require.Contains(t, body, `href="Subscription.do?method=view&amp;id=`+sub.ID+`"`, "links to its subscription")
	require.Contains(t, body, "Lovelace", "bill-to contact")

	code, body = get("/apps/Subscription.do?method=view&id=" + sub.ID)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, subNum)
	require.Contains(t, body, "Seats", "its charges")
	require.Contains(t, body, `href="Product.do?method=view&amp;id=`+c.productID+`"`)
	require.Contains(t, body, `href="CustomerAccount.do?method=view&amp;id=`+acct.ID+`"`)

	code, body = get("/apps/Product.do?method=view&id=" + c.productID)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "Team Monthly")
	require.Contains(t, body, "USD 49")
	require.Contains(t, body, subNum, "subscriptions to it")

	code, _ = get("/apps/Product.do?method=view&id=8ad0nope")
	require.Equal(t, 404, code)

	code, body = get("/")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `href="apps/CustomerAccount.do?method=view&amp;id=`+acct.ID+`"`)
	require.Contains(t, body, `id="create-account"`)
	require.Contains(t, body, `id="create-subscription"`)

	post := func(path string, form url.Values, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := browser.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := post("/ui/accounts", url.Values{"name": {"Hooli"}, "currency": {"USD"}, "firstName": {"Gavin"}, "lastName": {"Belson"}, "country": {"US"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Len(t, h.sim.State().Accounts, 2)
	hooli := h.sim.State().Accounts[1]
	require.Equal(t, "../apps/CustomerAccount.do?method=view&id="+hooli.ID, resp.Header.Get("Location"))

	resp = post("/ui/subscriptions", url.Values{"accountNumber": {hooli.AccountNumber}, "productRatePlanId": {c.planID}, "contractEffectiveDate": {"2025-03-01"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Len(t, h.sim.State().Subscriptions, 2)
	require.Contains(t, resp.Header.Get("Location"), "../apps/Subscription.do?method=view&id=")

	resp = post("/ui/accounts", url.Values{"name": {"No currency"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Location"), "../?error=", "refused, shown on the index")
	require.Len(t, h.sim.State().Accounts, 2)

	resp = post("/ui/accounts", url.Values{"name": {"Evil"}, "currency": {"USD"}}, "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp = post("/apps/Product.do", nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "pages are read-only")
	require.Len(t, h.sim.State().Accounts, 2)
}
