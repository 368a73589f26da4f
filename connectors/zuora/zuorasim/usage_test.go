package zuorasim_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

func TestUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Usage")
	acct, subNum := h.newOrder(c, "Umbrella")
	otherAcct, otherSub := h.newOrder(c, "Other")
	sub := h.subscription(subNum)
	calls := chargeByName(sub, "API calls")["number"].(string)
	seats := chargeByName(sub, "Seats")["number"].(string)

	row := func(over map[string]any) map[string]any {
		r := map[string]any{"AccountNumber": acct, "SubscriptionNumber": subNum, "ChargeNumber": calls, "UOM": "Call", "Quantity": 10,
			"StartDateTime": "2025-01-15T10:00:00Z"}
		for k, v := range over {
			if v == nil {
				delete(r, k)
			} else {
				r[k] = v
			}
		}
		return r
	}
	objs := []any{
		row(nil),
		row(map[string]any{"AccountNumber": "A-NOPE"}),
		row(map[string]any{"SubscriptionNumber": otherSub}),
		row(map[string]any{"ChargeNumber": "C-99999999"}),
		row(map[string]any{"UOM": "Seat", "ChargeNumber": calls}),
		row(map[string]any{"UOM": "Parsec"}),
		row(map[string]any{"ChargeNumber": seats, "UOM": "Seat"}),
		row(map[string]any{"SubscriptionNumber": nil, "ChargeNumber": nil}),
		row(map[string]any{"AccountNumber": otherAcct, "SubscriptionNumber": nil, "ChargeNumber": calls}),
		row(map[string]any{"Description": "tagged", "Quantity": 2.5}),
	}
	r := h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": objs})
	require.Equal(t, 200, r.status, string(r.raw))
	res := r.arr(t)
	require.Len(t, res, len(objs))
	want := []bool{true, false, false, false, false, false, true, true, false, true}
	for i, w := range want {
		row := res[i].(map[string]any)
		require.Equal(t, w, row["Success"], "row %d: %v", i, row)
		if w {
			require.Len(t, row["Id"], 32)
		} else {
			require.NotEmpty(t, row["Errors"].([]any)[0].(map[string]any)["Message"])
		}
	}
	st := h.sim.State()
	require.Len(t, st.Usage, 4)
	require.Equal(t, calls, st.Usage[0].ChargeNumber)

	// UniqueKey needs WSDL ≥ 114.
	r = h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": []any{row(map[string]any{"UniqueKey": "u1"})}})
	require.Equal(t, false, r.arr(t)[0].(map[string]any)["Success"])
	r = h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": []any{row(map[string]any{"UniqueKey": "u1"})}}, "X-Zuora-WSDL-Version", "119")
	require.Equal(t, true, r.arr(t)[0].(map[string]any)["Success"])

	// More than 50 objects.
	var many []any
	for i := 0; i < 51; i++ {
		many = append(many, row(nil))
	}
	r = h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": many})
	require.Equal(t, 400, r.status)
	require.Equal(t, "MAX_RECORDS_EXCEEDED", r.obj(t)["errors"].([]any)[0].(map[string]any)["code"])

	// Reads: newest first, paged.
	r = h.do("GET", "/v1/usage/accounts/"+acct+"?pageSize=2", nil, "Zuora-Version", latest)
	require.Equal(t, 200, r.status, string(r.raw))
	m := r.obj(t)
	require.Len(t, m["usage"], 2)
	u := m["usage"].([]any)[0].(map[string]any)
	require.Equal(t, "Call", u["unitOfMeasure"])
	require.Equal(t, "2025-01-15 10:00:00", u["startDateTime"])
	require.Equal(t, "Pending", u["status"])
	require.Contains(t, m["nextPage"], "page=2")
}

func TestObjectQuery(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, zuorasim.Options{Now: func() time.Time { return start }}).login()
	c := h.seedCatalog("OQ")
	var accts []string
	for i := 0; i < 3; i++ {
		a, _ := h.newOrder(c, fmt.Sprintf("OQ%d", i))
		accts = append(accts, a)
		h.sim.AdvanceClock(time.Minute)
	}
	r := h.do("GET", "/object-query/accounts?pageSize=2", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	m := r.obj(t)
	require.Len(t, m["data"], 2)
	cursor := m["nextPage"].(string)
	require.NotEmpty(t, cursor)
	r = h.do("GET", "/object-query/accounts?pageSize=2&cursor="+url.QueryEscape(cursor), nil)
	require.Len(t, r.obj(t)["data"], 1)
	require.Nil(t, r.obj(t)["nextPage"])

	since := start.Add(30 * time.Second).Format(time.RFC3339)
	r = h.do("GET", "/object-query/accounts?filter[]="+url.QueryEscape("updateddate.GT:"+since), nil)
	require.Equal(t, 200, r.status, string(r.raw))
	data := r.obj(t)["data"].([]any)
	require.Len(t, data, 2)
	require.Equal(t, accts[1], data[0].(map[string]any)["accountNumber"])
	require.Equal(t, "cust_OQ1", data[0].(map[string]any)["BillsyncId__c"])
	r = h.do("GET", "/object-query/accounts?filter[]="+url.QueryEscape("accountnumber.EQ:"+accts[2]), nil)
	require.Len(t, r.obj(t)["data"], 1)

	// Subscriptions: one record per version; isLatestVersion filters.
	acct := accts[0]
	subNum := h.sim.State().Subscriptions[0].SubscriptionNumber
	h.order(existing(acct, subNum, map[string]any{"type": "RenewSubscription", "renewSubscription": map[string]any{}}))
	r = h.do("GET", "/object-query/subscriptions?pageSize=99", nil)
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, r.obj(t)["data"], 4)
	r = h.do("GET", "/object-query/subscriptions?filter[]=islatestversion.EQ:true&filter[]="+url.QueryEscape("name.EQ:"+subNum), nil)
	d := r.obj(t)["data"].([]any)
	require.Len(t, d, 1)
	require.EqualValues(t, 2, d[0].(map[string]any)["version"])

	r = h.do("GET", "/object-query/accounts?filter[]=bogus", nil)
	require.Equal(t, 400, r.status)
	r = h.bad("GET", "/object-query/accounts?pageSize=500", nil)
	require.Equal(t, 400, r.status)
}

func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Ctl")
	h.newOrder(c, "Ctl")
	r := h.do("GET", "/_sim/state", nil)
	require.Equal(t, 200, r.status)
	st := r.obj(t)
	require.Len(t, st["products"], 1)
	require.Len(t, st["charges"], 3)
	require.Len(t, st["accounts"], 1)
	require.Len(t, st["subscriptions"], 1)
	require.Equal(t, "7", st["products"].([]any)[0].(map[string]any)["fields"].(map[string]any)["GracePeriod__c"])
	r = h.do("GET", "/_sim/stats", nil)
	require.Equal(t, 200, r.status)
	require.EqualValues(t, 1, r.obj(t)["calls"].(map[string]any)["POST /v1/orders"])
	r = h.do("POST", "/_sim/clock", map[string]any{"advance": "25h"})
	require.Equal(t, 200, r.status)
	r = h.do("POST", "/_sim/reset", nil)
	require.Equal(t, 200, r.status)
	require.Empty(t, h.sim.State().Products)
	require.Equal(t, 401, h.do("GET", "/v1/catalog/products", nil).status, "tokens are reset too")
	require.Equal(t, 404, h.do("GET", "/_sim/nope", nil).status)
	require.Contains(t, h.sim.Operations(), "GET /v1/subscriptions/{subscription-key}")
}

// TestBillRunsClosePeriods: a bill run rates the usage of the days it
// bills (Processed); usage that arrives later for a billed day stays
// Pending, also through later bill runs, as Zuora does.
func TestBillRunsClosePeriods(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{}).login()
	c := h.seedCatalog("Bill")
	acct, subNum := h.newOrder(c, "Billed")
	calls := chargeByName(h.subscription(subNum), "API calls")["number"].(string)
	upload := func(start string) {
		r := h.do("POST", "/v1/action/create", map[string]any{"type": "Usage", "objects": []any{map[string]any{"AccountNumber": acct,
			"SubscriptionNumber": subNum, "ChargeNumber": calls, "UOM": "Call", "Quantity": 5, "StartDateTime": start}}})
		require.Equal(t, 200, r.status, string(r.raw))
		require.Equal(t, true, r.arr(t)[0].(map[string]any)["Success"], string(r.raw))
	}
	upload("2025-01-15T10:00:00")
	res, err := h.sim.BillRun("2025-02-01")
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.NotEmpty(t, res[0].InvoiceNumber, "the run invoices the recurring charges")
	res[0].InvoiceNumber, res[0].InvoiceID = "", ""
	require.Equal(t, []zuorasim.BillRunResult{{AccountNumber: acct, BilledThrough: "2025-02-01", UsageProcessed: 1}}, res)

	upload("2025-01-20T10:00:00") // late: January is billed
	upload("2025-02-10T10:00:00")
	res, err = h.sim.BillRun("2025-03-01")
	require.NoError(t, err)
	require.Equal(t, 1, res[0].UsageProcessed)
	require.Equal(t, 1, res[0].UsageLeft, "usage of a billed day is not rated")
	status := map[string]string{}
	for _, u := range h.sim.State().Usage {
		status[u.StartDateTime.Format("2006-01-02")] = u.Status
	}
	require.Equal(t, map[string]string{"2025-01-15": "Processed", "2025-01-20": "Pending", "2025-02-10": "Processed"}, status)
	ch := chargeByName(h.subscription(subNum), "API calls")
	require.Equal(t, "2025-03-01", ch["processedThroughDate"])
	_, err = h.sim.BillRun("March")
	require.Error(t, err)
}
