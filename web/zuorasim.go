package web

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// ZuoraSimPrefix is where serve mounts the built-in Zuora simulator
// (Options.ZuoraSim) on its own listener: its REST API, its control
// endpoints (<prefix>/_sim/…) and its pages (<prefix>/, the UI deep links
// <prefix>/apps/…).
const ZuoraSimPrefix = "/zuora-sim"

// simAPIRoots are the simulator's Zuora API paths: they authenticate with
// Zuora's OAuth, as Zuora does. Everything else under the prefix (control
// endpoints, pages) needs the API key when one is set.
var simAPIRoots = []string{"/oauth/", "/v1/", "/events/", "/notifications/", "/settings/", "/object-query/"}

func (s *Server) registerZuoraSim(g *gin.Engine) {
	strip := http.StripPrefix(ZuoraSimPrefix, s.opts.ZuoraSim)
	g.GET(ZuoraSimPrefix, func(c *gin.Context) { c.Redirect(http.StatusFound, ZuoraSimPrefix+"/") })
	g.Any(ZuoraSimPrefix+"/*path", func(c *gin.Context) {
		path := c.Param("path")
		api := false
		for _, p := range simAPIRoots {
			api = api || strings.HasPrefix(path, p)
		}
		if !api && !s.simAuthorized(c.Request) {
			c.Header("WWW-Authenticate", `Basic realm="billsync Zuora simulator"`)
			writeProblem(c, Problem{Type: problemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
				Detail: "send Authorization: Bearer <BILLSYNC_API_KEY> (or Basic auth with the API key as the password)"})
			return
		}
		strip.ServeHTTP(c.Writer, c.Request)
	})
}

// simAuthorized: the simulator's pages and control endpoints answer with the
// API key (Bearer, or Basic with the key as password for a browser); with
// no key (a loopback listener) anyone local may use them.
func (s *Server) simAuthorized(r *http.Request) bool {
	if s.opts.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.APIKey)) == 1
}
