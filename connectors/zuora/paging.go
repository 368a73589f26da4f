package zuora

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxPages guards iterators against a server that never stops paging.
const maxPages = 100000

// classicPageSize is the largest page the classic v1 list endpoints serve (§3).
const classicPageSize = 40

// objectQueryPageSize is the largest Object Query page (§3).
const objectQueryPageSize = 99

// pageFunc decodes one page: its items and where the next page is ("" = done).
type pageFunc[T any] func(body []byte) (items []T, next string, err error)

// listNextPage iterates a classic v1 list: the first page is path+query,
// later pages follow the response's nextPage, absolute or relative (§3).
func listNextPage[T any](ctx context.Context, c *Client, op, path string, query url.Values, decode pageFunc[T]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		current, err := c.resolve(path, query)
		if err != nil {
			yield(zero, fmt.Errorf("zuora %s: %w", op, err))
			return
		}
		seen := map[string]bool{}
		for range maxPages {
			seen[current] = true
			resp, err := c.do(ctx, call{op: op, method: http.MethodGet, path: current})
			if err != nil {
				yield(zero, err)
				return
			}
			items, next, err := decode(resp.body)
			if err != nil {
				yield(zero, &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "cannot decode page: " + err.Error(), RequestID: resp.requestID, Err: err})
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" || len(items) == 0 {
				return
			}
			nextURL, err := c.nextPageURL(current, next)
			if err != nil {
				yield(zero, fmt.Errorf("zuora %s: nextPage: %w", op, err))
				return
			}
			if seen[nextURL] {
				yield(zero, fmt.Errorf("zuora %s: nextPage %q repeats a page already read", op, next))
				return
			}
			current = nextURL
		}
		yield(zero, fmt.Errorf("zuora %s: more than %d pages", op, maxPages))
	}
}

// nextPageURL resolves nextPage against the page just read. Zuora documents
// it as a URL without saying whether it is absolute; samples show paths
// relative to the host and without the /v1 prefix (§3). All are accepted;
// an absolute URL on another host is refused (it would receive the token).
func (c *Client) nextPageURL(current, next string) (string, error) {
	cur, err := url.Parse(current)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(strings.TrimSpace(next))
	if err != nil {
		return "", fmt.Errorf("bad nextPage %q: %w", next, err)
	}
	u := cur.ResolveReference(ref)
	if !ref.IsAbs() && strings.HasPrefix(next, "/") {
		basePath := strings.TrimRight(c.ep.Load().baseURL.Path, "/")
		p := u.Path
		if basePath != "" && !strings.HasPrefix(p, basePath+"/") {
			p = basePath + p // host-relative path without the base URL's prefix
		}
		rel := strings.TrimPrefix(p, basePath)
		curRel := strings.TrimPrefix(cur.Path, basePath)
		if strings.HasPrefix(curRel, "/v1/") && !strings.HasPrefix(rel, "/v1/") {
			p = basePath + "/v1" + rel // "/payment-runs?page=2" style
		}
		u.Path = p
		u.RawPath = ""
	}
	return c.resolve(u.String(), nil)
}

// listCursor iterates an Object Query list: the response's nextPage is an
// opaque cursor, passed back as the cursor parameter (§3).
func listCursor[T any](ctx context.Context, c *Client, op, path string, query url.Values) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		cursor := ""
		for range maxPages {
			q := url.Values{}
			for k, v := range query {
				q[k] = v
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var page struct {
				NextPage *string           `json:"nextPage"`
				Data     []json.RawMessage `json:"data"`
			}
			if _, err := c.doJSON(ctx, call{op: op, method: http.MethodGet, path: path, query: q}, &page); err != nil {
				yield(zero, err)
				return
			}
			for _, raw := range page.Data {
				var it T
				if err := json.Unmarshal(raw, &it); err != nil {
					yield(zero, &Error{Op: op, Code: codeDecode, Message: "cannot decode row: " + err.Error(), Err: err})
					return
				}
				if !yield(it, nil) {
					return
				}
			}
			if page.NextPage == nil || *page.NextPage == "" || len(page.Data) == 0 || *page.NextPage == cursor {
				return
			}
			cursor = *page.NextPage
		}
		yield(zero, fmt.Errorf("zuora %s: more than %d pages", op, maxPages))
	}
}

// listStartLimit iterates the events/notifications lists, which page with
// start/limit and answer {data, next} (SPEC). next may be a URL or an offset.
func listStartLimit[T any](ctx context.Context, c *Client, op, path string, query url.Values, limit int) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		start := 0
		for range maxPages {
			q := url.Values{}
			for k, v := range query {
				q[k] = v
			}
			q.Set("start", strconv.Itoa(start))
			q.Set("limit", strconv.Itoa(limit))
			var page struct {
				Data []T     `json:"data"`
				Next *string `json:"next"`
			}
			if _, err := c.doJSON(ctx, call{op: op, method: http.MethodGet, path: path, query: q}, &page); err != nil {
				yield(zero, err)
				return
			}
			for _, it := range page.Data {
				if !yield(it, nil) {
					return
				}
			}
			if len(page.Data) == 0 || page.Next == nil || *page.Next == "" {
				return
			}
			next := *page.Next
			if n, err := strconv.Atoi(next); err == nil {
				if n <= start {
					return
				}
				start = n
				continue
			}
			if u, err := url.Parse(next); err == nil {
				if s, err := strconv.Atoi(u.Query().Get("start")); err == nil && s > start {
					start = s
					continue
				}
			}
			start += len(page.Data)
		}
		yield(zero, fmt.Errorf("zuora %s: more than %d pages", op, maxPages))
	}
}

// IdempotencyKey derives a stable Idempotency-Key (§10) from the caller's
// intent, e.g. IdempotencyKey("order", customerID, desiredStateHash). The
// same parts always give the same key; any change in a part gives another.
// The result is "bs-" plus 64 hex digits, far below Zuora's 255-character
// limit. Parts are length-prefixed, so ("ab","c") and ("a","bc") differ.
func IdempotencyKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return "bs-" + hex.EncodeToString(h.Sum(nil))
}
