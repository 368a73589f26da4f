package admin

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Cookies. The session cookie holds only its expiry, a random nonce and an
// HMAC of both; the key is derived from the password (PBKDF2), so no secret
// is in the cookie, every replica accepts it, a restart keeps it, a password
// change ends it, and guessing the password from a cookie costs a PBKDF2 run
// per guess.
const (
	sessionCookie = "billsync_admin"
	loginCookie   = "billsync_admin_login"
	csrfField     = "csrf"
)

// maxFailures failed logins per minute (all clients together) before the
// login form answers 429 for the rest of the minute.
const maxFailures = 10

func sessionKey(password string) ([]byte, error) {
	if password == "" {
		// Open admin (loopback only): sessions only carry the CSRF binding; a
		// restart simply issues new ones.
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	}
	return pbkdf2.Key(sha256.New, password, []byte("billsync admin session v1"), 100_000, 32)
}

type session struct {
	nonce   string
	expires time.Time
}

func (a *Admin) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *Admin) encodeSession(s session) string {
	exp := strconv.FormatInt(s.expires.Unix(), 10)
	return "v1." + exp + "." + s.nonce + "." + a.mac("session", "v1", exp, s.nonce)
}

// session returns the request's valid, unexpired session.
func (a *Admin) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return session{}, false
	}
	want := a.mac("session", "v1", parts[1], parts[2])
	if !hmac.Equal([]byte(want), []byte(parts[3])) {
		return session{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !a.opts.Now().Before(time.Unix(exp, 0)) {
		return session{}, false
	}
	return session{nonce: parts[2], expires: time.Unix(exp, 0)}, true
}

func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (a *Admin) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(c.Request)})
}

func (a *Admin) startSession(c *gin.Context) session {
	s := session{nonce: randomToken(16), expires: a.opts.Now().Add(a.opts.SessionTTL).Truncate(time.Second)}
	a.setCookie(c, sessionCookie, a.encodeSession(s), int(a.opts.SessionTTL/time.Second))
	return s
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
			s = a.startSession(c)
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

func (a *Admin) tooManyFailures() bool {
	a.failMu.Lock()
	defer a.failMu.Unlock()
	cut := a.opts.Now().Add(-time.Minute)
	keep := a.failures[:0]
	for _, t := range a.failures {
		if t.After(cut) {
			keep = append(keep, t)
		}
	}
	a.failures = keep
	return len(a.failures) >= maxFailures
}

func (a *Admin) recordFailure() {
	a.failMu.Lock()
	a.failures = append(a.failures, a.opts.Now())
	a.failMu.Unlock()
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
	if a.tooManyFailures() {
		a.renderLogin(c, http.StatusTooManyRequests, next, "Too many failed logins: wait a minute and try again.")
		return
	}
	got := sha256.Sum256([]byte(c.PostForm("password")))
	want := sha256.Sum256([]byte(a.opts.Password))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		a.recordFailure()
		a.logger(c).Warn().Str("remote", c.ClientIP()).Msg("admin login failed")
		a.renderLogin(c, http.StatusUnauthorized, next, "Wrong password.")
		return
	}
	a.setCookie(c, loginCookie, "", -1)
	a.startSession(c)
	a.logger(c).Info().Str("remote", c.ClientIP()).Msg("admin login")
	c.Redirect(http.StatusSeeOther, next)
}

func (a *Admin) logout(c *gin.Context) {
	a.setCookie(c, sessionCookie, "", -1)
	if a.open {
		c.Redirect(http.StatusSeeOther, "/admin")
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/login")
}
