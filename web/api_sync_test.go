package web_test

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
	"github.com/billsync/billsync/mappings"
	"github.com/billsync/billsync/web"
)

func TestSyncRecordAPI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kicked := 0
		srv := httptest.NewServer(web.New(web.Options{Store: db, Logger: zerolog.Nop(), APIKey: apiKey,
			Sync: db, Mappings: mappings.New(db.Gorm), Kick: func() { kicked++ }}))
		t.Cleanup(srv.Close)
		c := client{t: t, url: srv.URL, key: apiKey}
		for _, p := range []struct{ path, body string }{
			{"/api/v1/plans/pro", planJSON}, {"/api/v1/plans/extra", addonJSON},
			{"/api/v1/customers/acme", customerJSON}, {"/api/v1/subscriptions/sub-1", subJSON},
		} {
			st, body, _ := c.do("PUT", p.path, p.body)
			require.Equal(t, 201, st, "%v", body)
		}
		st, body, _ := c.do("GET", "/api/v1/sync-records?kind=subscription", "")
		require.Equal(t, 200, st)
		data := body["data"].([]any)
		require.Len(t, data, 1)
		rec := data[0].(map[string]any)
		require.Equal(t, "sub-1", rec["entityId"])
		require.Equal(t, "pending", rec["state"])

		st, body, _ = c.do("GET", "/api/v1/sync-records?limit=2", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 2)
		next := body["nextCursor"].(string)
		st, body, _ = c.do("GET", "/api/v1/sync-records?limit=2&cursor="+next, "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 2, "4 records: 2 plans, customer, subscription")

		id := rec["id"].(float64)
		path := "/api/v1/sync-records/" + strconv.Itoa(int(id))
		st, body, _ = c.do("GET", path, "")
		require.Equal(t, 200, st)
		require.Equal(t, "sub-1", body["record"].(map[string]any)["entityId"])
		st, body, _ = c.do("POST", path+"/retry", "")
		require.Equal(t, 202, st, "%v", body)
		require.Equal(t, 1, kicked)
		st, body, _ = c.do("POST", "/api/v1/sync-records/retry", `{"kind":"plan"}`)
		require.Equal(t, 202, st, "%v", body)
		require.Equal(t, float64(0), body["retried"], "nothing failed")
		kicked = 0
		st, body, _ = c.do("POST", "/api/v1/sync-records/recheck", `{"kinds":["subscription"]}`)
		require.Equal(t, 202, st, "%v", body)
		require.Equal(t, float64(0), body["rechecked"], "pending records are due already")
		require.Equal(t, 1, kicked)
		st, body, _ = c.do("POST", "/api/v1/sync-records/recheck", "")
		require.Equal(t, 202, st, "%v", body)
		require.Equal(t, float64(0), body["retried"])
		st, _, _ = c.do("POST", "/api/v1/sync-records/recheck", `{"kinds":["usage"]}`)
		require.Equal(t, 400, st)

		st, body, _ = c.do("GET", "/api/v1/mappings?kind=product", "")
		require.Equal(t, 200, st)
		require.Len(t, body["data"], 0)

		for _, bad := range []struct{ path, field string }{
			{"/api/v1/sync-records?kind=bogus", "kind"}, {"/api/v1/sync-records?state=bogus", "state"},
			{"/api/v1/sync-records?limit=0", "limit"}, {"/api/v1/sync-records?cursor=x", "cursor"},
			{"/api/v1/mappings?kind=bogus", "kind"},
		} {
			st, body, _ = c.do("GET", bad.path, "")
			require.Equal(t, 400, st, bad.path)
			require.Equal(t, bad.field, body["field"], bad.path)
		}
		st, _, _ = c.do("GET", "/api/v1/sync-records/999999", "")
		require.Equal(t, 404, st)
		st, _, _ = c.do("POST", "/api/v1/sync-records/abc/retry", "")
		require.Equal(t, 400, st)
		st, _, _ = c.do("POST", "/api/v1/sync-records/retry", `{"kind":"nope"}`)
		require.Equal(t, 400, st)
	})
}
