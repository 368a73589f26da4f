package admin

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// Cookies. The session cookie holds a random token; the admin_sessions table
// holds its SHA-256, its expiry and the fingerprint of the password it was
// opened with, so logout deletes it, a password change ends every session,
// and every replica accepts it. The signing key of the CSRF and login tokens
// is random, generated once and kept in the database (never derived from the
// password).
const (
	sessionCookie = "billsync_admin"
	loginCookie   = "billsync_admin_login"
	csrfField     = "csrf"
	secretName    = "admin-session-key"
)

// maxFailures failed logins per minute from one client (an IPv4 address or
// an IPv6 /64) before the login form answers that client 429 for the rest of
// the minute; other clients are not affected.
const maxFailures = 10

// passwordFingerprint identifies the password a session was opened with
// without storing it: PBKDF2 keyed with the database's random secret.
func passwordFingerprint(key []byte, password string) (string, error) {
	if password == "" {
		return "open", nil
	}
	k, err := pbkdf2.Key(sha256.New, password, key, 100_000, 32)
	return hex.EncodeToString(k), err
}

type session struct {
	nonce   string // the cookie's token; the CSRF token is derived from it
	id      string // its SHA-256, the row's key
	expires time.Time
}

func sessionID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (a *Admin) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session returns the request's stored, unexpired session of the current password.
func (a *Admin) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	tok, ok := strings.CutPrefix(ck.Value, "v2.")
	if !ok || len(tok) != 64 {
		return session{}, false
	}
	id := sessionID(tok)
	row, err := a.opts.Store.AdminSessionByID(r.Context(), id)
	if err != nil {
		if !errors.Is(err, engine.ErrNotFound) {
			a.opts.Logger.Error().Err(err).Msg("admin session lookup failed")
		}
		return session{}, false
	}
	if subtle.ConstantTimeCompare([]byte(row.PasswordFP), []byte(a.fp)) != 1 || !a.opts.Now().Before(row.ExpiresAt) {
		return session{}, false
	}
	return session{nonce: tok, id: id, expires: row.ExpiresAt}, true
}

func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (a *Admin) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.opts.SecureCookies || secureRequest(c.Request)})
}

// startSession stores a new session and sets its cookie.
func (a *Admin) startSession(c *gin.Context) (session, error) {
	tok := randomToken(32)
	s := session{nonce: tok, id: sessionID(tok), expires: a.opts.Now().Add(a.opts.SessionTTL).Truncate(time.Second)}
	if err := a.opts.Store.CreateAdminSession(c.Request.Context(), store.AdminSession{ID: s.id, PasswordFP: a.fp, ExpiresAt: s.expires}); err != nil {
		return session{}, err
	}
	a.setCookie(c, sessionCookie, "v2."+tok, int(a.opts.SessionTTL/time.Second))
	return s, nil
}

// csrfToken is the token forms of the session carry.
func (a *Admin) csrfToken(s session) string { return a.mac("csrf", s.nonce) }

// loopbackListener reports whether the request came in on a loopback
// listener (serve's rule for running without an API key).
func loopbackListener(r *http.Request) bool {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticate lets a request with a valid session through; without one it
// redirects to the login page. With no password configured the page is open,
// but only on a loopback listener.
func (a *Admin) authenticate(c *gin.Context) {
	if a.open {
		if !loopbackListener(c.Request) {
			a.errorPage(c, http.StatusForbidden, "Admin page closed",
				"No BILLSYNC_ADMIN_PASSWORD and no BILLSYNC_API_KEY is set, so the admin page answers only on a loopback listener (127.0.0.1). Set a password to use it over the network.")
			return
		}
		s, ok := a.session(c.Request)
		if !ok {
			var err error
			if s, err = a.startSession(c); err != nil {
				a.fail(c, err)
				return
			}
		}
		c.Set("session", s)
		c.Next()
		return
	}
	s, ok := a.session(c.Request)
	if !ok {
		next := ""
		if c.Request.Method == http.MethodGet {
			next = c.Request.URL.RequestURI()
		}
		target := "/admin/login"
		if next != "" && next != "/admin" {
			target += "?next=" + url.QueryEscape(next)
		}
		c.Redirect(http.StatusSeeOther, target)
		c.Abort()
		return
	}
	c.Set("session", s)
	c.Next()
}

func currentSession(c *gin.Context) session {
	s, _ := c.Get("session")
	ss, _ := s.(session)
	return ss
}

// checkCSRF rejects a form without the session's token with 403.
func (a *Admin) checkCSRF(c *gin.Context) {
	s := currentSession(c)
	got := c.PostForm(csrfField)
	if got == "" {
		got = c.GetHeader("X-CSRF-Token")
	}
	if s.nonce == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.csrfToken(s))) != 1 {
		a.errorPage(c, http.StatusForbidden, "Form expired", "The form's security token is missing or wrong. Reload the page and try again.")
		return
	}
	c.Next()
}

// safeNext returns an /admin path to go to after login, or /admin.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/admin"
	}
	return next
}

type loginData struct {
	Next  string
	Error string
	Token string
}

func (a *Admin) loginPage(c *gin.Context) {
	if a.open {
		c.Redirect(http.StatusSeeOther, "/admin")
		return
	}
	if _, ok := a.session(c.Request); ok {
		c.Redirect(http.StatusSeeOther, safeNext(c.Query("next")))
		return
	}
	a.renderLogin(c, http.StatusOK, safeNext(c.Query("next")), "")
}

func (a *Admin) renderLogin(c *gin.Context, status int, next, msg string) {
	nonce := randomToken(16)
	a.setCookie(c, loginCookie, nonce, 3600)
	a.render(c, status, "login", page{Title: "Log in", Data: loginData{Next: next, Error: msg, Token: a.mac("login", nonce)}})
}

// throttleKey is the client a failed login counts against: its address, or
// its /64 for IPv6 (one host usually has a whole /64).
func throttleKey(ip string) string {
	p := net.ParseIP(ip)
	if p == nil {
		return ip
	}
	if p.To4() == nil {
		return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return p.String()
}

func (a *Admin) tooManyFailures(client string) bool {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	cut := a.opts.Now().Add(-time.Minute)
	n := 0
	for _, t := range a.failures[client] {
		if t.After(cut) {
			n++
		}
	}
	return n >= maxFailures
}

func (a *Admin) recordFailure(client string) {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	now := a.opts.Now()
	cut := now.Add(-time.Minute)
	if len(a.failures) > 1024 { // forget clients quiet for a minute
		for k, ts := range a.failures {
			if len(ts) == 0 || !ts[len(ts)-1].After(cut) {
				delete(a.failures, k)
			}
		}
	}
	keep := a.failures[client][:0]
	for _, t := range a.failures[client] {
		if t.After(cut) {
			keep = append(keep, t)
		}
	}
	a.failures[client] = append(keep, now)
}

func (a *Admin) login(c *gin.Context) {
	if a.open {
		c.Redirect(http.StatusSeeOther, "/admin")
		return
	}
	next := safeNext(c.PostForm("next"))
	ck, err := c.Request.Cookie(loginCookie)
	tok := c.PostForm(csrfField)
	if err != nil || tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(a.mac("login", ck.Value))) != 1 {
		a.errorPage(c, http.StatusForbidden, "Form expired", "The login form's security token is missing or wrong. Reload the login page and try again.")
		return
	}
	client := throttleKey(c.ClientIP())
	if a.tooManyFailures(client) {
		a.logger(c).Warn().Str("remote", c.ClientIP()).Msg("admin login throttled")
		a.renderLogin(c, http.StatusTooManyRequests, next, "Too many failed logins: wait a minute and try again.")
		return
	}
	got := sha256.Sum256([]byte(c.PostForm("password")))
	want := sha256.Sum256([]byte(a.opts.Password))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		a.recordFailure(client)
		a.logger(c).Warn().Str("remote", c.ClientIP()).Msg("admin login failed")
		a.renderLogin(c, http.StatusUnauthorized, next, "Wrong password.")
		return
	}
	a.setCookie(c, loginCookie, "", -1)
	if _, err := a.startSession(c); err != nil {
		a.fail(c, err)
		return
	}
	a.logger(c).Info().Str("remote", c.ClientIP()).Msg("admin login")
	c.Redirect(http.StatusSeeOther, next)
}

func (a *Admin) logout(c *gin.Context) {
	if err := a.opts.Store.DeleteAdminSession(c.Request.Context(), currentSession(c).id); err != nil {
		a.fail(c, err)
		return
	}
	a.setCookie(c, sessionCookie, "", -1)
	if a.open {
		c.Redirect(http.StatusSeeOther, "/admin")
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/login")
}
