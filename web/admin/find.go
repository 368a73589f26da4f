package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine/store"
)

// ---- search ----

type searchGroup struct {
	Kind string
	Hits []store.SearchHit
}

type searchData struct {
	Q      string
	Total  int
	Groups []searchGroup
	Record *recordRow // the sync record when q is a record id
}

// search is the header's search box: plans, customers and subscriptions by
// id, name, email, Zuora id or number (prefix, any case), and a sync record by its id.
func (a *Admin) search(c *gin.Context) {
	d := searchData{Q: strings.TrimSpace(c.Query("q"))}
	if len([]rune(d.Q)) > 200 {
		a.errorPage(c, http.StatusBadRequest, "Search too long", "Search for at most 200 characters: the start of an id, a name, an email or a Zuora number.")
		return
	}
	ctx := c.Request.Context()
	if d.Q != "" {
		hits, err := a.opts.Store.Search(ctx, d.Q, 50)
		if err != nil {
			a.fail(c, err)
			return
		}
		d.Total = len(hits)
		for _, k := range entityKinds {
			g := searchGroup{Kind: k}
			for _, h := range hits {
				if h.Kind == k {
					g.Hits = append(g.Hits, h)
				}
			}
			if len(g.Hits) > 0 {
				d.Groups = append(d.Groups, g)
			}
		}
		if id, err := strconv.ParseInt(strings.TrimPrefix(d.Q, "#"), 10, 64); err == nil && id > 0 {
			switch r, err := a.opts.Store.SyncRecordByID(ctx, id); {
			case err == nil:
				row := toRecordRow(r)
				d.Record = &row
				d.Total++
			case !notFound(err):
				a.fail(c, err)
				return
			}
		}
	}
	a.render(c, http.StatusOK, "search", page{Title: "Search", Nav: "search", Query: d.Q, Data: d})
}

// ---- sync records ----

type retryButton struct {
	Kind, State string
	N           int64
}

type recordsData struct {
	Kind, State, Code, Since, ID string
	Kinds, States, Codes         []string
	SinceOptions                 []sinceOption
	Records                      []recordRow
	Total                        int64
	Page, Pages                  int
	First, Last                  int64 // positions of the page's first and last record
	Prev, Next                   string
	Retry                        []retryButton
	Back                         string
}

type sinceOption struct{ Value, Label string }

var sinceOptions = []sinceOption{{"1h", "last hour"}, {"24h", "last 24 hours"}, {"7d", "last 7 days"}}

var sinceDur = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

const recordsPerPage = 50

func (a *Admin) syncRecords(c *gin.Context) {
	d := recordsData{Kind: c.Query("kind"), State: c.Query("state"), Code: strings.TrimSpace(c.Query("code")), Since: c.Query("since"),
		ID: strings.TrimSpace(c.Query("id")), Kinds: entityKinds, States: syncStates, SinceOptions: sinceOptions, Back: c.Request.URL.RequestURI()}
	if d.Kind != "" && !oneOf(d.Kind, entityKinds) {
		a.errorPage(c, http.StatusBadRequest, "Unknown kind", "kind must be one of plan, customer, subscription")
		return
	}
	if d.State != "" && !oneOf(d.State, syncStates) {
		a.errorPage(c, http.StatusBadRequest, "Unknown state", "state must be one of "+strings.Join(syncStates, ", "))
		return
	}
	q := store.RecordQuery{Kind: d.Kind, State: d.State, ErrorCode: d.Code, EntityID: d.ID, Page: 1, PerPage: recordsPerPage}
	if d.Since != "" {
		dur, ok := sinceDur[d.Since]
		if !ok {
			a.errorPage(c, http.StatusBadRequest, "Unknown time range", "since must be 1h, 24h or 7d")
			return
		}
		q.Since = a.opts.Now().Add(-dur)
	}
	if v := c.Query("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			a.errorPage(c, http.StatusBadRequest, "Bad page", "page is a page number, 1 or more")
			return
		}
		q.Page = n
	}
	ctx := c.Request.Context()
	res, err := a.opts.Store.QueryRecords(ctx, q)
	if err != nil {
		a.fail(c, err)
		return
	}
	if d.Codes, err = a.opts.Store.ErrorCodes(ctx); err != nil {
		a.fail(c, err)
		return
	}
	if d.Code != "" && !oneOf(d.Code, d.Codes) {
		d.Codes = append(d.Codes, d.Code)
	}
	for _, r := range res.Records {
		d.Records = append(d.Records, toRecordRow(r))
	}
	d.Total, d.Page, d.Pages = res.Total, res.Page, res.Pages
	if len(d.Records) > 0 {
		d.First = int64((d.Page-1)*recordsPerPage + 1)
		d.Last = d.First + int64(len(d.Records)) - 1
	}
	link := func(p int) string {
		return "/admin/sync-records" + string(query("kind", d.Kind, "state", d.State, "code", d.Code, "since", d.Since, "id", d.ID, "page", strconv.Itoa(p)))
	}
	if d.Page > 1 {
		d.Prev = link(min(d.Page-1, max(d.Pages, 1)))
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	counts, err := a.opts.Store.SyncCounts(ctx)
	if err != nil {
		a.fail(c, err)
		return
	}
	for _, k := range entityKinds {
		if d.Kind != "" && d.Kind != k {
			continue
		}
		for _, st := range []string{store.StateDead, store.StateFailed} {
			if d.State != "" && d.State != st {
				continue
			}
			if n := counts[k][st]; n > 0 {
				d.Retry = append(d.Retry, retryButton{Kind: k, State: st, N: n})
			}
		}
	}
	a.render(c, http.StatusOK, "records", page{Title: "Sync records", Nav: "records", Data: d})
}
