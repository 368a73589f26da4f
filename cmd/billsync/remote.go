package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/billsync/billsync/engine/store"
)

// The CLI commands that act on live data (sync, sync usage) ask the running
// service to do it over its API, so the service's workers, its Zuora
// connection and its built-in simulator do the work once. With no service
// answering they do it here, on the same configuration, database and saved
// simulator.

// serviceClient talks to a running billsync over its API.
type serviceClient struct {
	base, key string
	http      *http.Client
}

// bindServiceURL registers --url (BILLSYNC_URL).
func bindServiceURL(fs *flag.FlagSet) *string {
	return fs.String("url", os.Getenv("BILLSYNC_URL"), "the running billsync to act through, over its API with BILLSYNC_API_KEY (env BILLSYNC_URL; default: serve's local address from BILLSYNC_ADDR; when none answers there, the command runs here on the same database)")
}

// remoteService returns a client for the service at rawURL, or at serve's
// local address when rawURL is empty; nil (and no error) when nothing
// answers at the local address. A URL given that does not answer is an
// error: the command never falls back silently from a service named.
func remoteService(ctx context.Context, cfg Config, rawURL string) (*serviceClient, error) {
	explicit := rawURL != ""
	if !explicit {
		rawURL = "http://" + loopbackHostPort(cfg.Addr)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--url %q must be an http(s) URL such as http://127.0.0.1:8080", rawURL)}
	}
	c := &serviceClient{base: strings.TrimSuffix(rawURL, "/"), key: cfg.APIKey, http: &http.Client{Timeout: 2 * time.Minute}}
	var health struct {
		Status string `json:"status"`
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.do(pctx, http.MethodGet, "/healthz", nil, &health); err != nil || health.Status != "ok" {
		if explicit {
			return nil, fmt.Errorf("no billsync answers at %s: %v", c.base, err)
		}
		return nil, nil
	}
	return c, nil
}

// do sends one API request; a non-2xx answer is an error with the problem's detail.
func (c *serviceClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(b, &p)
		return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, p.Title, p.Detail)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// records lists every sync record of kind (all pages).
func (c *serviceClient) records(ctx context.Context, kind, state string) ([]store.SyncRecord, error) {
	var out []store.SyncRecord
	cursor := ""
	for {
		q := url.Values{"kind": {kind}, "limit": {"500"}}
		if state != "" {
			q.Set("state", state)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []store.SyncRecord `json:"data"`
			NextCursor string             `json:"nextCursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/sync-records?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// errWaitTimeout: the service still had work of the kinds after --wait.
var errWaitTimeout = errors.New("the service is still working on records (see billsync sync-records or /admin); not all outcomes are printed")

// syncViaService is `billsync sync <target>` through the running service:
// it asks for the recheck (or drift check), waits until no record of the
// kinds is pending or in flight, and prints the records it settled and the
// counts.
func syncViaService(ctx context.Context, c *serviceClient, target string, kinds []string, wait time.Duration, stdout io.Writer) error {
	start := time.Now().Add(-time.Second)
	var n int64
	if target == "drift" {
		var res struct {
			Queued int64 `json:"queued"`
		}
		if err := c.do(ctx, http.MethodPost, "/api/v1/sync-records/drift-check", nil, &res); err != nil {
			return err
		}
		n = res.Queued
	} else {
		var res struct {
			Rechecked int64 `json:"rechecked"`
		}
		if err := c.do(ctx, http.MethodPost, "/api/v1/sync-records/recheck", map[string]any{"kinds": kinds}, &res); err != nil {
			return err
		}
		n = res.Rechecked
	}
	deadline := time.Now().Add(wait)
	var waitErr error
	for {
		busy := 0
		for _, k := range kinds {
			for _, st := range []string{store.StatePending, store.StateInFlight} {
				recs, err := c.records(ctx, k, st)
				if err != nil {
					return err
				}
				for _, r := range recs {
					if !r.NextAttemptAt.After(time.Now().Add(time.Minute)) { // due, not waiting for a retry backoff
						busy++
					}
				}
			}
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			waitErr = errWaitTimeout
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	counts := map[string]map[string]int64{}
	settled := 0
	for _, k := range kinds {
		recs, err := c.records(ctx, k, "")
		if err != nil {
			return err
		}
		counts[k] = map[string]int64{}
		for _, r := range recs {
			counts[k][r.State]++
			if r.LastAttemptAt != nil && r.LastAttemptAt.After(start) {
				settled++
				what := r.Reason
				if r.LastErrorMessage != "" {
					what = r.LastErrorMessage
				}
				fmt.Fprintf(stdout, "%-12s %-24s %-8s %s\n", r.EntityKind, r.EntityID, r.State, what)
			}
		}
	}
	what := "re-checked"
	if target == "drift" {
		what = "checked for drift"
	}
	fmt.Fprintf(stdout, "\n%s %d records through the service at %s; %d records settled\n", what, n, c.base, settled)
	printCounts(stdout, counts, kinds)
	return waitErr
}

func localServiceURL(cfg Config, given string) string {
	if given != "" {
		return given
	}
	return "http://" + loopbackHostPort(cfg.Addr)
}

// simNote names the built-in simulator's saved state when the command uses it.
func simNote(a *app) string {
	if a.sim == nil {
		return ""
	}
	return " and the built-in simulator's saved state (no BILLSYNC_ZUORA_BASE_URL)"
}
