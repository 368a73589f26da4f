package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/enginetest"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/outbound"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/engine/switches"
	"github.com/billsync/billsync/engine/usage"
	"github.com/billsync/billsync/mappings"
	"github.com/billsync/billsync/web"
	"github.com/billsync/billsync/web/admin"
)

// TestAuth: redirects to the login page, the login form, the session cookie,
// CSRF rejection, expiry, tampering, throttling and the security headers.
func TestAuth(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var skew atomic.Int64 // the clock's offset from now
	setClock := func(d time.Duration) { skew.Store(int64(d)) }
	f := newFixture(t, store.SQLite, fixtureOptions{password: password, now: func() time.Time { return now.Add(time.Duration(skew.Load())) }})

	t.Run("unauthenticated requests go to the login page", func(t *testing.T) {
		c := f.client()
		for _, tc := range []struct{ method, path, want string }{
			{"GET", "/admin", "/admin/login"},
			{"GET", "/admin/sync-records?kind=plan&state=synced", "/admin/login?next=" + url.QueryEscape("/admin/sync-records?kind=plan&state=synced")},
			{"GET", "/admin/entities/subscription/s00", "/admin/login?next=" + url.QueryEscape("/admin/entities/subscription/s00")},
			{"GET", "/admin/mappings", "/admin/login?next=%2Fadmin%2Fmappings"},
			{"GET", "/admin/search?q=c0", "/admin/login?next=" + url.QueryEscape("/admin/search?q=c0")},
			{"GET", "/admin/inbox", "/admin/login?next=%2Fadmin%2Finbox"},
			{"GET", "/admin/settings", "/admin/login?next=%2Fadmin%2Fsettings"},
			{"POST", "/admin/sync-records/1/retry", "/admin/login"},
			{"POST", "/admin/sync-records/retry-all", "/admin/login"},
			{"POST", "/admin/subscriptions/s00/sync-usage", "/admin/login"},
			{"POST", "/admin/inbox/1/retry", "/admin/login"},
			{"POST", "/admin/settings", "/admin/login"},
			{"POST", "/admin/zuora/test", "/admin/login"},
		} {
			var resp *http.Response
			if tc.method == "GET" {
				resp, _ = c.get(tc.path)
			} else {
				resp, _ = c.post(tc.path, url.Values{"switch": {"usage"}, "value": {"off"}})
			}
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, tc.path)
			require.Equal(t, tc.want, resp.Header.Get("Location"), tc.path)
		}
		require.True(t, f.sw.Snapshot()[switches.Usage], "nothing changed without a login")
	})

	t.Run("login form", func(t *testing.T) {
		c := f.client()
		resp, body := c.get("/admin/login?next=" + url.QueryEscape("/admin/mappings?kind=account"))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		tok := csrfOf(t, body)
		// Without or with a wrong token: 403, no session.
		resp, _ = c.post("/admin/login", url.Values{"password": {password}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		resp, _ = c.post("/admin/login", url.Values{"password": {password}, "csrf": {tok + "x"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		// A token without its cookie (another browser): 403.
		resp, _ = f.client().post("/admin/login", url.Values{"password": {password}, "csrf": {tok}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		// Wrong password: 401 and the form again.
		resp, body = c.post("/admin/login", url.Values{"password": {"nope"}, "csrf": {tok}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, body, "Wrong password")
		require.Empty(t, sessionCookie(resp))
		// Right password: a session cookie, HttpOnly and SameSite=Strict, and the page asked for.
		resp, _ = c.post("/admin/login", url.Values{"password": {password}, "csrf": {csrfOf(t, body)}, "next": {"/admin/mappings?kind=account"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/admin/mappings?kind=account", resp.Header.Get("Location"))
		ck := sessionCookie(resp)
		require.NotNil(t, ck)
		require.True(t, ck.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
		require.Equal(t, "/admin", ck.Path)
		require.Greater(t, ck.MaxAge, 0)
		require.NotContains(t, ck.Value, password)
		resp, body = c.get("/admin/mappings?kind=account")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Mappings")
		// An off-site next is ignored.
		c2 := f.client()
		_, body = c2.get("/admin/login")
		resp, _ = c2.post("/admin/login", url.Values{"password": {password}, "csrf": {csrfOf(t, body)}, "next": {"//evil.example/admin"}})
		require.Equal(t, "/admin", resp.Header.Get("Location"))
	})

	t.Run("CSRF", func(t *testing.T) {
		c := f.client()
		tok := c.login(password)
		other := f.client().login(password)
		require.NotEqual(t, tok, other, "tokens are per session")
		rec, err := f.e.DB.GetSyncRecord(f.ctx, store.EntitySubscription, "s-bad")
		require.NoError(t, err)
		for _, bad := range []url.Values{{}, {"csrf": {""}}, {"csrf": {"forged"}}, {"csrf": {other}}} {
			for _, p := range []string{fmt.Sprintf("/admin/sync-records/%d/retry", rec.ID), "/admin/sync-records/retry-all",
				"/admin/subscriptions/s00/sync-usage", "/admin/inbox/1/retry", "/admin/settings", "/admin/zuora/test", "/admin/logout"} {
				form := url.Values{"switch": {"usage"}, "value": {"off"}, "kind": {"subscription"}}
				for k, v := range bad {
					form[k] = v
				}
				resp, body := c.post(p, form)
				require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %v", p, bad)
				require.Contains(t, body, "security token")
			}
		}
		after, err := f.e.DB.GetSyncRecord(f.ctx, store.EntitySubscription, "s-bad")
		require.NoError(t, err)
		require.Equal(t, store.StateDead, after.State, "no retry happened")
		require.True(t, f.sw.Snapshot()[switches.Usage])
		// The session still works.
		resp, _ := c.get("/admin")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("tampered and expired sessions", func(t *testing.T) {
		c := f.client()
		c.login(password)
		orig := c.cookie()
		require.True(t, strings.HasPrefix(orig, "v2."), orig)
		flip := map[byte]byte{'0': '1'}
		last := orig[len(orig)-1]
		if b, ok := flip[last]; ok {
			last = b
		} else {
			last = '0'
		}
		for _, v := range []string{
			orig[:len(orig)-1] + string(last),         // another token
			"v1.9999999999." + orig[3:35] + ".forged", // the old signed format
			"garbage",
		} {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/admin", nil)
			req.AddCookie(&http.Cookie{Name: "billsync_admin", Value: v})
			resp, err := http.DefaultTransport.RoundTrip(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, v)
		}
		// Twelve hours later the session has expired.
		setClock(12*time.Hour + time.Second)
		resp, _ := c.get("/admin")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		setClock(0)
		resp, _ = c.get("/admin")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("logout ends the session on the server", func(t *testing.T) {
		c := f.client()
		tok := c.login(password)
		stolen := c.cookie()
		resp, _ := c.post("/admin/logout", url.Values{"csrf": {tok}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/admin/login", resp.Header.Get("Location"))
		resp, _ = c.get("/admin")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		// The cookie kept from before the logout (a copy, a stolen one) no longer works.
		require.Equal(t, http.StatusSeeOther, withCookie(t, f.srv.URL+"/admin", stolen))
	})

	t.Run("security headers", func(t *testing.T) {
		c := f.client()
		c.login(password)
		for _, p := range []string{"/admin/login", "/admin", "/admin/sync-records", "/admin/assets/admin.css"} {
			resp, _ := c.get(p)
			h := resp.Header
			csp := h.Get("Content-Security-Policy")
			require.Contains(t, csp, "script-src 'self'", p)
			require.Contains(t, csp, "frame-ancestors 'none'", p)
			require.NotContains(t, csp, "unsafe-inline", p)
			require.Equal(t, "DENY", h.Get("X-Frame-Options"), p)
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), p)
			require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), p)
		}
		resp, body := c.get("/admin/assets/admin.js")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Type"), "text/javascript")
		require.Contains(t, body, "progressive enhancement")
		resp, _ = c.get("/admin/assets/../admin.go")
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
		// No inline script or style anywhere.
		_, body = c.get("/admin")
		require.NotRegexp(t, `<script>|<script [^>]*>[^<]|\sstyle=|\son[a-z]+=`, body)
	})

	t.Run("failed logins are throttled per client", func(t *testing.T) {
		attacker := f.clientFrom("198.51.100.7")
		_, body := attacker.get("/admin/login")
		var resp *http.Response
		for range 12 {
			resp, body = attacker.post("/admin/login", url.Values{"password": {"guess"}, "csrf": {csrfOf(t, body)}})
		}
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		resp, _ = attacker.post("/admin/login", url.Values{"password": {password}, "csrf": {csrfOf(t, body)}})
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right password waits, from that client")
		// The operator, from another address, logs in meanwhile.
		f.clientFrom("203.0.113.5").login(password)

		// IPv6 clients count per /64.
		v6 := f.clientFrom("2001:db8:0:1::1")
		_, body = v6.get("/admin/login")
		for range 10 {
			resp, body = v6.post("/admin/login", url.Values{"password": {"guess"}, "csrf": {csrfOf(t, body)}})
		}
		same64 := f.clientFrom("2001:db8:0:1::2")
		_, body = same64.get("/admin/login")
		resp, _ = same64.post("/admin/login", url.Values{"password": {password}, "csrf": {csrfOf(t, body)}})
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		f.clientFrom("2001:db8:0:2::1").login(password)

		setClock(61 * time.Second)
		defer setClock(0)
		_, body = attacker.get("/admin/login")
		resp, _ = attacker.post("/admin/login", url.Values{"password": {password}, "csrf": {csrfOf(t, body)}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	})
}

// TestPasswordChangeEndsSessions: the admin page restarted with another
// password (same database) accepts none of the old sessions, and the
// signing key is random per database, not derived from the password.
func TestPasswordChangeEndsSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, store.SQLite, fixtureOptions{password: password, subs: 1})
	c := f.client()
	c.login(password)
	old := c.cookie()
	require.Equal(t, http.StatusOK, withCookie(t, f.srv.URL+"/admin", old))

	adm, err := admin.New(admin.Options{Password: "another long password", Store: f.e.DB, Mappings: f.e.Outbound.Mappings(), Logger: zerolog.Nop()})
	require.NoError(t, err)
	srv := httptest.NewServer(web.New(web.Options{Store: f.e.DB, Logger: zerolog.Nop(), Admin: adm}))
	t.Cleanup(srv.Close)
	require.Equal(t, http.StatusSeeOther, withCookie(t, srv.URL+"/admin", old), "the new password's page refuses the old session")
	require.Equal(t, http.StatusSeeOther, withCookie(t, f.srv.URL+"/admin", old), "and the session is gone from the table")
	nc := &client{t: t, base: srv.URL, c: f.client().c}
	nc.login("another long password")

	k1, err := f.e.DB.Secret(f.ctx, "admin-session-key", 32)
	require.NoError(t, err)
	require.Len(t, k1, 32)
	other := storetest.Open(t, store.SQLite)
	k2, err := other.Secret(f.ctx, "admin-session-key", 32)
	require.NoError(t, err)
	require.NotEqual(t, k1, k2, "random per database, whatever the password")
}

// TestSecureCookies: with an https public URL the cookies are Secure.
func TestSecureCookies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, store.SQLite, fixtureOptions{password: password, subs: 1, secureCookies: true})
	c := f.client()
	resp, body := c.get("/admin/login")
	for _, ck := range resp.Cookies() {
		require.True(t, ck.Secure, ck.Name)
	}
	resp, _ = c.post("/admin/login", url.Values{"csrf": {csrfOf(t, body)}, "password": {password}})
	ck := sessionCookie(resp)
	require.NotNil(t, ck)
	require.True(t, ck.Secure)
}

// TestAdminFormsRefuseCrossSite: a form posted from another site is refused
// even with the right session (its cookie is SameSite=Strict too) and token.
func TestAdminFormsRefuseCrossSite(t *testing.T) {
	t.Parallel()
	f := newFixture(t, store.SQLite, fixtureOptions{password: password, subs: 1})
	c := f.client()
	tok := c.login(password)
	for _, h := range [][2]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/admin/sync-records/retry-all", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(h[0], h[1])
		resp, _ := c.do(req)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, h)
	}
}

func withCookie(t *testing.T, u, value string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.AddCookie(&http.Cookie{Name: "billsync_admin", Value: value})
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "billsync_admin" && c.Value != "" {
			return c
		}
	}
	return nil
}

// TestOpenOnLoopbackOnly: without a password the page needs no login, says
// so, still checks CSRF, and refuses requests on a non-loopback listener.
func TestOpenOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, store.SQLite, fixtureOptions{subs: 1})
	require.True(t, f.adm.Open())
	c := f.client()
	resp, body := c.get("/admin")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "No admin password is set")
	require.NotContains(t, body, "Log out")
	tok := csrfOf(t, body)
	resp, _ = c.get("/admin/login")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = c.post("/admin/settings", url.Values{"switch": {"usage"}, "value": {"off"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = c.post("/admin/settings", url.Values{"csrf": {tok}, "switch": {"usage"}, "value": {"off"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.False(t, f.sw.Snapshot()[switches.Usage])

	// The same handler reached through a non-loopback listener: 403.
	h := web.New(web.Options{Store: f.e.DB, Logger: zerolog.Nop(), Admin: f.adm})
	for _, addr := range []string{"10.1.2.3:8080", "[2001:db8::1]:8080"} {
		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
		la, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, la))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.Equal(t, http.StatusForbidden, w.Code, addr)
		require.Contains(t, w.Body.String(), "loopback")
	}
}

var tagRE = regexp.MustCompile(`<[^>]+>`)

// text returns a page's visible text with spaces squeezed (for assertions).
func text(body string) string {
	return strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(body, " "))), " ")
}

// TestPages drives every page and action on SQLite and Postgres.
func TestPages(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{password: password, subs: 26})
			c := f.client()
			tok := c.login(password)
			ctx, db := f.ctx, f.e.DB
			bad, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s-bad")
			require.NoError(t, err)

			t.Run("dashboard", func(t *testing.T) {
				f.callout()
				f.ingest("7")
				resp, body := c.get("/admin")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				counts, err := db.SyncCounts(ctx)
				require.NoError(t, err)
				for kind, states := range counts {
					for state, n := range states {
						link := fmt.Sprintf(`href="/admin/sync-records?kind=%s&amp;state=%s">%d</a>`, kind, state, n)
						require.Contains(t, body, link, "%s/%s", kind, state)
					}
				}
				require.Equal(t, int64(26), counts[store.EntitySubscription][store.StateSynced])
				require.Equal(t, int64(1), counts[store.EntitySubscription][store.StateDead])
				txt := text(body)
				require.Contains(t, txt, "Retry 1 dead", "the count is what the button retries: dead only")
				require.NotContains(t, txt, "Retry 0")
				require.Contains(t, body, `name="state" value="dead"`)
				require.Contains(t, txt, "reconcile")
				require.Contains(t, txt, "re-checking 7 records")
				require.Contains(t, txt, "drift never")
				require.Contains(t, txt, "built-in simulator")
				require.Contains(t, txt, "POST /v1/orders")
				require.Contains(t, txt, "Windows pending 1")
				require.Contains(t, txt, "account created A-NOPE")
				require.Contains(t, txt, "1 to process")
			})

			t.Run("test connection", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, c.base+"/admin/zuora/test", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				resp, body := c.do(req)
				require.Equal(t, http.StatusOK, resp.StatusCode, body)
				var res struct {
					OK      bool   `json:"ok"`
					Message string `json:"message"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &res))
				require.True(t, res.OK, res.Message)
				// Without the script: the dashboard with the result.
				resp, body = c.post("/admin/zuora/test", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Contains(t, text(body), "✓ Connected")
				// Zuora failing: the dashboard shows Zuora's answer, never the secret.
				f.e.Sim.SetFaults(zuorasim.Fault{Operation: "GET /v1/catalog/products", Kind: zuorasim.FaultHTTP500, Probability: 1})
				resp, body = c.post("/admin/zuora/test", url.Values{"csrf": {tok}})
				f.e.Sim.SetFaults()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Contains(t, body, `class="st-bad"`)
				require.Contains(t, text(body), "✗")
				require.NotContains(t, body, zuorasim.DefaultClientSecret)
			})

			t.Run("check tenant", func(t *testing.T) {
				resp, body := c.post("/admin/zuora/check", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Contains(t, body, `id="check-tenant"`)
				require.Contains(t, text(body), "✓ The tenant has everything billsync needs (time zone UTC")
				// A fresh tenant lacks billsync's custom fields: listed, per object.
				fresh := zuorasim.FreshTenant()
				require.NoError(t, f.e.Sim.SetTenant(fresh))
				defer func() {
					// The admin creates the fields and checks again: the check
					// refreshes the client's view of the tenant, so the next
					// write sees them (as it would after fixing a real tenant).
					require.NoError(t, f.e.Sim.SetTenant(enginetest.Tenant()))
					_, body := c.post("/admin/zuora/check", url.Values{"csrf": {tok}})
					require.Contains(t, text(body), "✓ The tenant has everything billsync needs")
				}()
				req, _ := http.NewRequest(http.MethodPost, c.base+"/admin/zuora/check", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				resp, body = c.do(req)
				require.Equal(t, http.StatusOK, resp.StatusCode, body)
				require.Contains(t, body, `"ok":false`)
				require.Contains(t, body, "create the text custom field BillsyncId (API name BillsyncId__c, length 255) on RatePlan")
				// The same report from the API.
				areq, _ := http.NewRequest(http.MethodGet, c.base+"/api/v1/zuora/check", nil)
				areq.Header.Set("Authorization", "Bearer 0123456789abcdef")
				aresp, err := http.DefaultClient.Do(areq)
				require.NoError(t, err)
				defer aresp.Body.Close()
				var rep zuora.TenantReport
				require.NoError(t, json.NewDecoder(aresp.Body).Decode(&rep))
				require.False(t, rep.OK)
				require.Len(t, rep.Missing, len(zuora.IDFieldObjects))
				require.Equal(t, "Subscription", rep.Missing[4].Field.Object)
			})

			t.Run("sync records: filter, page, Zuora's message and links", func(t *testing.T) {
				resp, body := c.get("/admin/sync-records?state=dead")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Contains(t, body, `data-entity="subscription/s-bad"`)
				require.Contains(t, text(body), bad.LastErrorMessage)
				require.NotContains(t, body, `data-entity="subscription/s00"`)

				_, body = c.get("/admin/sync-records?kind=subscription&state=synced")
				require.Contains(t, body, `data-entity="subscription/s00"`)
				require.NotContains(t, body, `data-entity="customer/c00"`)
				s00, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s00")
				require.NoError(t, err)
				require.NotEmpty(t, s00.ZuoraURL)
				require.Contains(t, body, `href="`+html.EscapeString(s00.ZuoraURL)+`"`)
				require.Contains(t, body, s00.ZuoraNumber+" ↗")

				_, body = c.get("/admin/sync-records?id=c03")
				require.Equal(t, 1, strings.Count(body, "data-entity="))
				require.Contains(t, body, `data-entity="customer/c03"`)

				// 54 records: a first page of 50 with the dead one first, then 4; and back.
				_, body = c.get("/admin/sync-records")
				require.Equal(t, 50, strings.Count(body, "data-entity="))
				require.Contains(t, text(body), "Sync records 1–50 of 54")
				first := regexp.MustCompile(`data-entity="([^"]+)"`).FindStringSubmatch(body)
				require.Equal(t, "subscription/s-bad", first[1], "problems first")
				require.NotContains(t, body, `rel="prev"`)
				m := regexp.MustCompile(`href="(/admin/sync-records\?page=2)" rel="next"`).FindStringSubmatch(body)
				require.NotNil(t, m)
				_, body = c.get(html.UnescapeString(m[1]))
				require.Equal(t, 4, strings.Count(body, "data-entity="))
				require.Contains(t, text(body), "Sync records 51–54 of 54")
				require.Contains(t, text(body), "page 2 of 2")
				require.NotContains(t, body, `rel="next"`)
				require.Contains(t, body, `href="/admin/sync-records?page=1" rel="prev"`)
				// Retry only where it helps: one Retry button, on the dead record.
				_, body = c.get("/admin/sync-records?kind=subscription")
				require.Equal(t, 1, strings.Count(body, `<button class="small">Retry</button>`))
				require.Contains(t, text(body), "Retry 1 dead Subscriptions")
				require.Contains(t, text(body), "none: needs Retry", "a dead record has no next attempt")

				// Filters: error code and time; totals follow them.
				require.NotEmpty(t, bad.LastErrorCode)
				_, body = c.get("/admin/sync-records?code=" + url.QueryEscape(bad.LastErrorCode))
				require.Equal(t, 1, strings.Count(body, "data-entity="))
				require.Contains(t, body, `<option value="`+bad.LastErrorCode+`" selected>`)
				require.Contains(t, text(body), "1–1 of 1")
				_, body = c.get("/admin/sync-records?code=NOPE")
				require.Contains(t, text(body), "No sync records match these filters.")
				_, body = c.get("/admin/sync-records?since=1h&kind=subscription")
				require.Equal(t, 27, strings.Count(body, "data-entity="), "every subscription was attempted within the hour")
				require.Contains(t, text(body), "1–27 of 27")

				for _, q := range []string{"?kind=nope", "?state=nope", "?page=x", "?page=0", "?since=2y"} {
					resp, _ := c.get("/admin/sync-records" + q)
					require.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
				}
			})

			t.Run("search: id, name, email, Zuora numbers, any case, prefix", func(t *testing.T) {
				c05, err := db.GetSyncRecord(ctx, store.EntityCustomer, "c05")
				require.NoError(t, err)
				require.NotEmpty(t, c05.ZuoraNumber)
				hits := func(q string) []string {
					t.Helper()
					resp, body := c.get("/admin/search?q=" + url.QueryEscape(q))
					require.Equal(t, http.StatusOK, resp.StatusCode)
					var out []string
					for _, m := range regexp.MustCompile(`data-hit="([^"]+)"`).FindAllStringSubmatch(body, -1) {
						out = append(out, m[1])
					}
					return out
				}
				require.Equal(t, []string{"customer/c05"}, hits(strings.ToLower(c05.ZuoraNumber)), "a customer by its Zuora account number")
				require.Equal(t, []string{"subscription/s00"}, hits(s00Number(t, f)), "a subscription by its Zuora number")
				require.Equal(t, []string{"customer/c07"}, hits("C07@EXAMPLE"), "by email, any case")
				require.Len(t, hits("customer c1"), 10, "by name: c10 … c19")
				require.Equal(t, []string{"subscription/s-bad"}, hits("s-b"))
				require.Equal(t, []string{"plan/pro"}, hits("Pro"))
				require.Empty(t, hits("ustomer"), "a prefix, not a substring")
				_, body := c.get("/admin/search?q=" + url.QueryEscape(strconv.FormatInt(bad.ID, 10)))
				require.Contains(t, text(body), "Sync record "+strconv.FormatInt(bad.ID, 10)+" subscription s-bad dead")
				_, body = c.get("/admin/search?q=zzz")
				require.Contains(t, text(body), "Nothing starts with “zzz”")
				// The box is in every page's header, with the last search.
				_, body = c.get("/admin/mappings")
				require.Contains(t, body, `<input type="search" name="q" id="search" value=""`)
				_, body = c.get("/admin/search?q=c0")
				require.Contains(t, body, `id="search" value="c0"`)
				resp, _ := c.get("/admin/search?q=" + strings.Repeat("x", 201))
				require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			})

			t.Run("trends: syncs per hour, lag", func(t *testing.T) {
				act, err := db.SyncActivity(ctx, time.Now().Add(-24*time.Hour))
				require.NoError(t, err)
				synced := map[string]int64{}
				for _, a := range act {
					if a.Outcome == store.StateSynced {
						synced[a.Hour.Format(time.RFC3339)] += a.N
					}
				}
				require.NotEmpty(t, synced)
				_, body := c.get("/admin")
				require.Contains(t, body, `<svg class="chart" id="chart-activity"`)
				require.Contains(t, body, `<svg class="chart" id="chart-lag"`)
				for h, n := range synced {
					// The hour's column names its synced count.
					re := regexp.MustCompile(`data-hour="` + regexp.QuoteMeta(h) + `"><title>[^<]*\b` + strconv.FormatInt(n, 10) + ` synced`)
					require.Regexp(t, re, body, h)
				}
				require.Equal(t, 24, strings.Count(body, `data-hour=`)/2, "24 hours in each chart")
				require.Contains(t, body, `class="bar o-dead"`, "s-bad's dead attempt is drawn")
			})

			t.Run("errors: whose message, what to do, plain error pages", func(t *testing.T) {
				_, body := c.get("/admin/entities/subscription/s-bad")
				require.Contains(t, body, `data-source="zuora"`)
				txt := text(body)
				require.Contains(t, txt, "Zuora's message "+bad.LastErrorMessage)
				require.Contains(t, txt, "What to do")
				require.Contains(t, body, `id="retry"`, "a dead record has Retry")
				_, body2 := c.get("/admin/entities/subscription/s00")
				require.NotContains(t, body2, `id="retry"`, "a synced one has none: it would not help")
				_, body = c.get("/admin/sync-records?state=dead")
				require.Contains(t, text(body), "Zuora's message: "+bad.LastErrorMessage)

				for _, p := range []string{"/admin/no-such-page", "/admin/entities/customer/nobody"} {
					resp, body := c.get(p)
					require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
					require.Contains(t, resp.Header.Get("Content-Type"), "text/html", p)
					require.Contains(t, body, `<nav>`, p)
					require.Contains(t, body, `href="/admin/sync-records"`, p)
					require.Contains(t, text(body), "search box", p)
					require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), p)
				}
				resp, body := c.get("/admin/sync-records?kind=nope")
				require.Equal(t, http.StatusBadRequest, resp.StatusCode)
				require.Contains(t, body, `<nav>`)
				require.Contains(t, text(body), "Nothing was changed.")
				// Outside /admin the API's problem JSON stays.
				resp, _ = c.get("/nope")
				require.Contains(t, resp.Header.Get("Content-Type"), "json")
			})

			t.Run("entity detail", func(t *testing.T) {
				resp, body := c.get("/admin/entities/subscription/s-bad")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				txt := text(body)
				require.Contains(t, txt, "Zuora's message "+bad.LastErrorMessage)
				require.Contains(t, txt, "1990-01-01")
				hist, err := db.SyncHistory(ctx, bad.ID, 10)
				require.NoError(t, err)
				require.NotEmpty(t, hist)
				if hist[0].RequestID != "" {
					require.Contains(t, body, hist[0].RequestID)
				}

				s00, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s00")
				require.NoError(t, err)
				_, body = c.get("/admin/entities/subscription/s00")
				txt = text(body)
				require.Contains(t, txt, "synced")
				require.Contains(t, body, `href="`+html.EscapeString(s00.ZuoraURL)+`"`)
				require.Contains(t, txt, "Subscription s00 "+s00.ZuoraID)
				require.Contains(t, txt, "Sync usage to Zuora")
				h00, err := db.SyncHistory(ctx, s00.ID, 10)
				require.NoError(t, err)
				for _, h := range h00 {
					if h.RequestID != "" {
						require.Contains(t, body, h.RequestID, "the Zuora request id of each attempt")
					}
				}
				require.NotContains(t, body, `http-equiv="refresh"`, "a settled record does not refresh")

				_, body = c.get("/admin/entities/customer/c00")
				txt = text(body)
				require.Contains(t, txt, "c00@example.test")
				require.Contains(t, txt, "s-bad")
				acct, err := f.e.Outbound.Mappings().ByParent(ctx, mappings.Account, "c00")
				require.NoError(t, err)
				require.Len(t, acct, 1)
				require.Contains(t, body, html.EscapeString(f.e.Zuora.AccountURL(acct[0].ZuoraID)))

				_, body = c.get("/admin/entities/plan/pro")
				txt = text(body)
				require.Contains(t, txt, "Billing period pro-monthly")
				require.Contains(t, txt, "Product pro")
				require.Contains(t, txt, "Rate plan pro/pro-monthly")

				resp, _ = c.get("/admin/entities/customer/nobody")
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
				resp, _ = c.get("/admin/entities/widget/x")
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
				resp, _ = c.get(fmt.Sprintf("/admin/sync-records/%d", bad.ID))
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.Equal(t, "/admin/entities/subscription/s-bad", resp.Header.Get("Location"))
			})

			t.Run("drift check now", func(t *testing.T) {
				_, body := c.get("/admin")
				require.Contains(t, body, `action="/admin/sync-records/drift-check"`)
				counts, err := db.SyncCounts(ctx)
				require.NoError(t, err)
				synced := int64(0)
				for _, states := range counts {
					synced += states[store.StateSynced]
				}
				resp, _ := c.post("/admin/sync-records/drift-check", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.Equal(t, fmt.Sprintf("/admin?done=drift-checked&n=%d", synced), resp.Header.Get("Location"))
				_, body = c.get(resp.Header.Get("Location"))
				require.Contains(t, text(body), fmt.Sprintf("Drift check queued for %d synced records", synced))
				f.e.Converge(30 * time.Second)
				after, err := db.SyncCounts(ctx)
				require.NoError(t, err)
				require.Equal(t, counts, after, "nothing differs in Zuora: every checked record is synced again")
				resp, _ = c.post("/admin/sync-records/drift-check", url.Values{})
				require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token, no check")
			})

			t.Run("retry one and retry all", func(t *testing.T) {
				resp, _ := c.post(fmt.Sprintf("/admin/sync-records/%d/retry", bad.ID), url.Values{"csrf": {tok}, "back": {"/admin/sync-records?state=dead"}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.Equal(t, "/admin/sync-records?done=retried&state=dead", resp.Header.Get("Location"))
				rec, err := db.SyncRecordByID(ctx, bad.ID)
				require.NoError(t, err)
				require.Equal(t, store.StatePending, rec.State)
				require.Equal(t, 0, rec.Attempts)
				_, body := c.get("/admin/entities/subscription/s-bad?done=retried")
				require.Contains(t, body, `http-equiv="refresh"`, "a pending record refreshes until it settles")
				require.Contains(t, body, "Retry queued")
				f.e.Converge(30 * time.Second)
				rec, err = db.SyncRecordByID(ctx, bad.ID)
				require.NoError(t, err)
				require.Equal(t, store.StateDead, rec.State, "still refused: the data is wrong: %s %s", rec.Reason, rec.LastErrorMessage)

				resp, _ = c.post("/admin/sync-records/retry-all", url.Values{"csrf": {tok}, "kind": {"subscription"}, "back": {"/admin"}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.Equal(t, "/admin?done=retried-all&kind=subscription&n=1", resp.Header.Get("Location"))
				_, body = c.get(resp.Header.Get("Location"))
				require.Contains(t, text(body), "Retry queued for 1 failed or dead subscription records.")
				rec, err = db.SyncRecordByID(ctx, bad.ID)
				require.NoError(t, err)
				require.Equal(t, store.StatePending, rec.State)
				resp, _ = c.post("/admin/sync-records/retry-all", url.Values{"csrf": {tok}, "kind": {"widget"}})
				require.Equal(t, http.StatusBadRequest, resp.StatusCode)
				resp, _ = c.post("/admin/sync-records/999999/retry", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
				// A pending record is not retried: 409, nothing changes.
				resp, body = c.post(fmt.Sprintf("/admin/sync-records/%d/retry", bad.ID), url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusConflict, resp.StatusCode)
				require.Contains(t, text(body), "not failed or dead")
				require.Contains(t, body, `href="/admin/sync-records"`, "the error page keeps the navigation")
				f.e.Converge(30 * time.Second)
				// Dead again: retry the dead subscriptions only, counted as such.
				resp, _ = c.post("/admin/sync-records/retry-all", url.Values{"csrf": {tok}, "kind": {"subscription"}, "state": {"dead"}, "back": {"/admin"}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				_, body = c.get(resp.Header.Get("Location"))
				require.Contains(t, text(body), "Retry queued for 1 dead subscription records.")
				resp, _ = c.post("/admin/sync-records/retry-all", url.Values{"csrf": {tok}, "kind": {"subscription"}, "state": {"synced"}})
				require.Equal(t, http.StatusBadRequest, resp.StatusCode)
				f.e.Converge(30 * time.Second)
				// An off-site back is ignored.
				resp, _ = c.post(fmt.Sprintf("/admin/sync-records/%d/retry", bad.ID), url.Values{"csrf": {tok}, "back": {"https://evil.example/"}})
				require.Equal(t, "/admin?done=retried", resp.Header.Get("Location"))
				f.e.Converge(30 * time.Second)
			})

			t.Run("sync usage to Zuora", func(t *testing.T) {
				ts := f.ingest("5.5")
				resp, body := c.post("/admin/subscriptions/s00/sync-usage", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusOK, resp.StatusCode, text(body))
				txt := text(body)
				require.Contains(t, txt, "Sent to Zuora: 1 row in 1 call")
				require.Contains(t, body, `<td class="num sent-qty">12.5</td>`)
				ws, err := f.ledger.Windows(ctx, "s00", usageFilter())
				require.NoError(t, err)
				require.Len(t, ws, 1)
				require.Equal(t, ts.Truncate(time.Hour), ws[0].Start)
				require.Equal(t, "12.5", ws[0].Uploaded.String())
				require.True(t, ws[0].Pending.IsZero())
				require.Contains(t, body, `<td class="num uploaded">12.5</td>`)
				var inZuora int
				for _, u := range f.e.Sim.State().Usage {
					if u.SubscriptionNumber == s00Number(t, f) && u.Quantity.String() == "12.5" {
						inZuora++
					}
				}
				require.Equal(t, 1, inZuora, "the simulator holds the uploaded record")
				// The chart: the window's hour, 12.5 ingested and 12.5 sent.
				require.Contains(t, body, `data-series="ingested" data-value="12.5"`)
				require.Contains(t, body, `data-series="sent to Zuora" data-value="12.5"`)
				// Pressing again sends nothing more.
				_, body = c.post("/admin/subscriptions/s00/sync-usage", url.Values{"csrf": {tok}})
				require.Contains(t, text(body), "Sent to Zuora: nothing to send.")
				require.NotContains(t, text(body), "0 rows in 0 calls")
				resp, _ = c.post("/admin/subscriptions/nope/sync-usage", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
				_, body = c.get("/admin")
				require.Contains(t, text(body), "Windows pending 0")
			})

			t.Run("mappings", func(t *testing.T) {
				_, body := c.get("/admin/mappings?kind=account")
				require.Equal(t, 26, strings.Count(body, "<tr>")-1)
				acct, err := f.e.Outbound.Mappings().ByParent(ctx, mappings.Account, "c05")
				require.NoError(t, err)
				require.Contains(t, body, html.EscapeString(f.e.Zuora.AccountURL(acct[0].ZuoraID)))
				_, body = c.get("/admin/mappings?localId=pro")
				txt := text(body)
				require.Contains(t, txt, "Product pro")
				require.Contains(t, txt, "Charge pro/api")
				_, body = c.get("/admin/mappings")
				m := regexp.MustCompile(`href="(/admin/mappings\?after=[^"]+)">next page`).FindStringSubmatch(body)
				require.NotNil(t, m, "more than 50 mappings: paged")
				resp, _ := c.get(html.UnescapeString(m[1]))
				require.Equal(t, http.StatusOK, resp.StatusCode)
				resp, _ = c.get("/admin/mappings?kind=nope")
				require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			})

			t.Run("callout inbox: masked payload, retry", func(t *testing.T) {
				_, err := f.in.Drain(ctx)
				require.NoError(t, err)
				entries, _, err := f.in.RecentInbox(ctx, inbound.RecentFilter{Limit: 1})
				require.NoError(t, err)
				e := entries[0]
				require.Contains(t, []string{inbound.StateDead, inbound.StateFailed}, e.State)
				resp, body := c.get("/admin/inbox")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Contains(t, body, fmt.Sprintf(`data-id="%d"`, e.ID))
				require.Contains(t, body, "A-NOPE")
				require.NotContains(t, body, "hunter2-secret")
				require.NotContains(t, body, "tok-123")
				require.Contains(t, body, `&#34;Password&#34;: &#34;••••••&#34;`)
				_, body = c.get("/admin/inbox?state=" + e.State)
				require.Contains(t, body, "A-NOPE")
				_, body = c.get("/admin/inbox?state=done")
				require.NotContains(t, body, "A-NOPE")
				resp, _ = c.post(fmt.Sprintf("/admin/inbox/%d/retry", e.ID), url.Values{"csrf": {tok}, "back": {"/admin/inbox"}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.Equal(t, "/admin/inbox?done=inbox-retried", resp.Header.Get("Location"))
				entries, _, err = f.in.RecentInbox(ctx, inbound.RecentFilter{Limit: 1})
				require.NoError(t, err)
				require.Equal(t, inbound.StatePending, entries[0].State)
				require.Equal(t, 0, entries[0].Attempts)
				resp, _ = c.post("/admin/inbox/999999/retry", url.Values{"csrf": {tok}})
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
				resp, _ = c.get("/admin/inbox?state=nope")
				require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			})

			t.Run("settings: switches persisted and honoured at once", func(t *testing.T) {
				resp, body := c.get("/admin/settings")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				for _, n := range switches.All {
					require.Contains(t, body, `data-switch="`+n+`"`)
				}
				resp, _ = c.post("/admin/settings", url.Values{"csrf": {tok}, "switch": {"customers"}, "value": {"off"}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.False(t, f.sw.Snapshot()[switches.Customers])
				st, err := db.Settings(ctx)
				require.NoError(t, err)
				require.Equal(t, "false", st["switch.customers"])
				// Another replica's switches see it from the database.
				other := switches.New(db, nil)
				require.NoError(t, other.Refresh(ctx))
				require.False(t, other.Enabled(switches.Customers))
				_, body = c.get("/admin/settings?done=saved")
				require.Contains(t, body, `id="toggle-customers">Switch on`)
				require.Contains(t, body, "Settings saved")
				resp, _ = c.post("/admin/settings", url.Values{"csrf": {tok}, "switch": {"customers"}, "value": {"on"}})
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				require.True(t, f.sw.Snapshot()[switches.Customers])
				for _, bad := range []url.Values{{"switch": {"nope"}, "value": {"on"}}, {"switch": {"usage"}, "value": {"maybe"}}} {
					bad.Set("csrf", tok)
					resp, _ = c.post("/admin/settings", bad)
					require.Equal(t, http.StatusBadRequest, resp.StatusCode)
				}
			})

			t.Run("usage card only with usage charges", func(t *testing.T) {
				_, body := c.get("/admin/entities/subscription/s01")
				require.Contains(t, body, `id="usage"`, "pro has a usage charge")
				basic := engine.Plan{ID: "basic", Kind: engine.KindPlan, Name: "Basic", PricingType: engine.PricingPaid, Currency: "USD",
					BillingPeriods: []engine.BillingPeriod{{ID: "basic-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
						{ID: "fee", Name: "Fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("9")}}}}}
				_, _, err := db.UpsertPlan(ctx, basic)
				require.NoError(t, err)
				sub := subscription("s-basic", "c02")
				sub.PlanID, sub.BillingPeriodID = "basic", "basic-monthly"
				_, _, err = db.UpsertSubscription(ctx, sub)
				require.NoError(t, err)
				resp, body := c.get("/admin/entities/subscription/s-basic")
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.NotContains(t, body, `id="usage"`)
				require.NotContains(t, body, "Sync usage to Zuora")
			})

			t.Run("pending change shown", func(t *testing.T) {
				basic := engine.Plan{ID: "basic", Kind: engine.KindPlan, Name: "Basic", PricingType: engine.PricingPaid, Currency: "USD",
					BillingPeriods: []engine.BillingPeriod{{ID: "basic-monthly", Period: engine.PeriodMonth, Charges: []engine.Charge{
						{ID: "fee", Name: "Fee", Type: engine.ChargeRecurring, Model: engine.ModelFlatFee, Price: dec("9")}}}}}
				_, _, err := db.UpsertPlan(ctx, basic)
				require.NoError(t, err)
				sub, _, err := db.SetScheduledChange(ctx, "s02", &engine.ScheduledChange{Timing: engine.ChangeAtTermEnd, Date: "2027-01-01",
					PlanID: "basic", BillingPeriodID: "basic-monthly"})
				require.NoError(t, err)
				_, body := c.get("/admin/entities/subscription/s02")
				require.Contains(t, body, `id="scheduled-change"`)
				require.Contains(t, body, "on 2027-01-01")
				require.Contains(t, body, outbound.ScheduledOrderNumber(sub))
			})

			t.Run("secrets are never rendered", func(t *testing.T) {
				for _, p := range []string{"/admin", "/admin/sync-records", "/admin/entities/subscription/s00", "/admin/entities/customer/c00",
					"/admin/mappings", "/admin/inbox", "/admin/settings"} {
					_, body := c.get(p)
					require.NotContains(t, body, zuorasim.DefaultClientSecret, p)
					require.NotContains(t, body, password, p)
					require.NotContains(t, body, "0123456789abcdef", p)
				}
			})
		})
	}
}

func usageFilter() usage.WindowFilter { return usage.WindowFilter{} }

func s00Number(t *testing.T, f *fixture) string {
	rec, err := f.e.DB.GetSyncRecord(f.ctx, store.EntitySubscription, "s00")
	require.NoError(t, err)
	return rec.ZuoraNumber
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := admin.New(admin.Options{})
	require.Error(t, err)
}

// TestDashboardShowsLapsedClaims: a claim whose holder died shows on the
// dashboard, with the age of the oldest claim in flight.
func TestDashboardShowsLapsedClaims(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{password: password, subs: 2})
			c := f.client()
			c.login(password)
			_, body := c.get("/admin")
			require.NotContains(t, text(body), "lapsed unfinished")
			_, err := f.e.DB.RecheckAll(f.ctx, []string{store.EntitySubscription})
			require.NoError(t, err)
			recs, err := f.e.DB.Claim(f.ctx, "killed-replica", []string{store.EntitySubscription}, 1, 20*time.Millisecond)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			time.Sleep(50 * time.Millisecond)
			_, body = c.get("/admin")
			txt := text(body)
			require.Contains(t, txt, "1 claim lapsed unfinished", txt)
			require.Contains(t, txt, "Oldest claim in flight: taken")
		})
	}
}

// TestDeadPlanWithItsProduct: a plan whose product reached Zuora but whose
// rate plans did not is dead, and its page shows the product (from the
// mapping, with its link), not "not in Zuora yet"; its timeline has the
// change, the pushes and Zuora's answers.
func TestDeadPlanWithItsProduct(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1})
			ctx, db := f.ctx, f.e.DB
			f.e.Sim.SetFaults(zuorasim.Fault{Operation: "POST /v1/object/product-rate-plan", Kind: zuorasim.FaultHTTP500})
			half := proPlan()
			half.ID, half.Name = "half", "Half"
			half.BillingPeriods[0].ID = "half-monthly"
			_, _, err := db.UpsertPlan(ctx, half)
			require.NoError(t, err)
			f.e.Converge(30 * time.Second)
			f.e.Sim.SetFaults()
			rec, err := db.GetSyncRecord(ctx, store.EntityPlan, "half")
			require.NoError(t, err)
			require.Equal(t, store.StateDead, rec.State)
			require.Empty(t, rec.ZuoraID)
			pm, err := f.e.Outbound.Mappings().Get(ctx, mappings.Product, "half")
			require.NoError(t, err, "the product is in Zuora")

			c := f.client()
			resp, body := c.get("/admin/entities/plan/half")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			txt := text(body)
			require.NotContains(t, txt, "not in Zuora yet")
			require.Contains(t, body, `id="record-from-mapping"`)
			require.Contains(t, body, html.EscapeString(f.e.Zuora.ProductURL(pm.ZuoraID)))
			require.Contains(t, body, `data-kind="change" data-outcome="created"`)
			require.Contains(t, body, `data-kind="answer" data-outcome="dead"`)
			require.Contains(t, body, `data-kind="push"`)

			// A subscription to it says the plan is only partly in Zuora.
			sub := subscription("s-half", "c00")
			sub.PlanID, sub.BillingPeriodID = "half", "half-monthly"
			_, _, err = db.UpsertSubscription(ctx, sub)
			require.NoError(t, err)
			f.e.Converge(30 * time.Second)
			srec, err := db.GetSyncRecord(ctx, store.EntitySubscription, "s-half")
			require.NoError(t, err)
			require.Equal(t, store.StateDead, srec.State)
			require.Contains(t, srec.LastErrorMessage, `plan "half" is only partly in Zuora (product half exists`)
		})
	}
}

// TestConnectionSettingsPage: the connection card's forms without a script:
// CSRF, bad input (422, nothing saved), the confirmation Remove integration
// asks first (nothing removed), a public URL that is not one, and a
// connection from the environment, which wins (shown, no form, 409).
func TestConnectionSettingsPage(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{subs: 1})
			ctx := f.ctx
			c := f.client()
			resp, body := c.get("/admin/settings")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, text(body), "In use the built-in simulator")
			tok := csrfOf(t, body)
			form := url.Values{"base_url": {"ftp://zuora.example"}, "client_id": {"id"}, "client_secret": {"typed-secret-1"}}
			resp, _ = c.post("/admin/zuora/connection", form)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token")
			form.Set("csrf", tok)
			resp, body = c.post("/admin/zuora/connection", form)
			require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
			require.Contains(t, text(body), "Nothing was saved")
			require.NotContains(t, body, "typed-secret-1", "a secret typed in is not shown back")
			_, err := f.e.DB.GetZuoraConnection(ctx)
			require.ErrorIs(t, err, engine.ErrNotFound)

			resp, body = c.post("/admin/zuora/callouts", url.Values{"csrf": {tok}, "public_url": {"billsync.example"}})
			require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
			require.Contains(t, text(body), "Nothing was changed in Zuora")

			resp, body = c.post("/admin/zuora/remove", url.Values{"csrf": {tok}})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, body, `id="remove-confirm"`)
			require.Contains(t, text(body), "Remove the integration?")
			require.NotContains(t, body, `id="connection-report"`, "nothing was done yet")

			// The environment wins: shown as such, no form, a save is refused.
			env := connection.New(connection.Options{Store: f.e.DB, Client: f.e.Zuora, FromEnv: true, Logger: zerolog.Nop()})
			adm, err := admin.New(admin.Options{Store: f.e.DB, Mappings: f.e.Outbound.Mappings(), Zuora: f.e.Zuora, Settings: env,
				Callouts: f.in, Connection: admin.Connection{Environment: "US API Sandbox, Cloud 2", BaseURL: f.e.Server.URL}, Logger: zerolog.Nop()})
			require.NoError(t, err)
			srv := httptest.NewServer(web.New(web.Options{Store: f.e.DB, Logger: zerolog.Nop(), Admin: adm}))
			t.Cleanup(srv.Close)
			ec := f.client()
			ec.base = srv.URL
			resp, body = ec.get("/admin/settings")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, text(body), "from the environment (BILLSYNC_ZUORA_*): it wins over these settings")
			require.NotContains(t, body, `id="connection-form"`)
			require.NotContains(t, body, zuorasim.DefaultClientSecret)
			resp, body = ec.post("/admin/zuora/connection", url.Values{"csrf": {csrfOf(t, body)}, "base_url": {f.e.Server.URL},
				"client_id": {zuorasim.DefaultClientID}, "client_secret": {zuorasim.DefaultClientSecret}})
			require.Equal(t, http.StatusConflict, resp.StatusCode)
			require.Contains(t, text(body), "comes from the environment")
			require.NotContains(t, body, zuorasim.DefaultClientSecret)
		})
	}
}

// TestCouponPage: a coupon has its page like a plan (sync record, local
// data, its Zuora mappings linking back to it) and its row on the dashboard.
func TestCouponPage(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, d, fixtureOptions{})
			_, _, err := f.e.DB.UpsertCoupon(f.ctx, engine.Coupon{ID: "c10", Name: "Ten percent", Type: engine.DiscountPercentage,
				Percentage: decimal.NewFromInt(10), Currency: "USD", Duration: engine.DurationOnce})
			require.NoError(t, err)
			f.e.Converge(30 * time.Second)
			c := f.client()
			resp, body := c.get("/admin/entities/coupon/c10")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, body, `id="coupon"`)
			require.Contains(t, text(body), "10 % · in USD")
			require.Contains(t, body, `href="/admin/entities/coupon/c10"`, "its mappings link back to it")
			require.Contains(t, body, "coupon-c10", "the discount product's SKU")
			_, body = c.get("/admin")
			require.Contains(t, body, `data-kind="coupon"`)
		})
	}
}
