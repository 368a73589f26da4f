package zuorasim_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// usageFile is a multipart body with one file part.
func usageFile(t *testing.T, name, content string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, err := mw.CreateFormFile("file", name)
	require.NoError(t, err)
	_, _ = w.Write([]byte(content))
	require.NoError(t, mw.Close())
	return b.Bytes(), mw.FormDataContentType()
}

// TestUsageImport: a usage file is accepted at once and processed later
// (Pending/Processing, then Completed); a file with a bad row fails as a
// whole, naming the row, and imports nothing; upload failures (size, name,
// type, encoding) are refused at once.
func TestUsageImport(t *testing.T) {
	t.Parallel()
	h := newHarness(t, zuorasim.Options{ImportDelay: 150 * time.Millisecond}).login()
	c := h.seedCatalog("Import")
	acct, subNum := h.newOrder(c, "Importer")
	sub := h.subscription(subNum)
	calls := chargeByName(sub, "API calls")["number"].(string)
	seats := chargeByName(sub, "Seats")["number"].(string)
	const header = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\n"
	line := func(qty, date, desc string) string {
		return fmt.Sprintf("%s,Call,%s,%s,,%s,%s,%s\n", acct, qty, date, subNum, calls, desc)
	}
	upload := func(name, content string) reply {
		body, ct := usageFile(t, name, content)
		return h.do("POST", "/v1/usage", body, "Content-Type", ct)
	}
	status := func(url string) map[string]any { return h.do("GET", url, nil).obj(t) }
	before := len(h.sim.State().Usage)

	r := upload("good.csv", header+line("10", "01/15/2025", "one")+line("2.5", "01/16/2025", "two"))
	require.Equal(t, 200, r.status, string(r.raw))
	got := r.obj(t)
	require.Equal(t, true, got["success"])
	url := got["checkImportStatus"].(string)
	require.Contains(t, []string{"Pending", "Processing"}, status(url)["importStatus"], "processed asynchronously")
	require.Eventually(t, func() bool { return status(url)["importStatus"] == "Completed" }, 5*time.Second, 20*time.Millisecond)
	st := status(url)
	require.EqualValues(t, 2, st["importedCount"])
	require.Len(t, h.sim.State().Usage, before+2)

	// One bad row (a charge that is not a usage charge; an emoticon; a
	// negative quantity) fails the whole file.
	bad := header + line("1", "01/15/2025", "ok") + fmt.Sprintf("%s,Seat,1,01/15/2025,,%s,%s,x\n", acct, subNum, seats) +
		line("1", "01/15/2025", "party \U0001F389") + line("-1", "01/15/2025", "neg") + line("1", "2025-01-15", "iso")
	r = upload("bad.csv", bad)
	require.Equal(t, 200, r.status, string(r.raw))
	url = r.obj(t)["checkImportStatus"].(string)
	require.Eventually(t, func() bool { return status(url)["importStatus"] == "Failed" }, 5*time.Second, 20*time.Millisecond)
	st = status(url)
	errs := st["errors"].([]any)
	require.Len(t, errs, 4, "%v", st)
	rows := []float64{}
	for _, e := range errs {
		rows = append(rows, e.(map[string]any)["row"].(float64))
	}
	require.Equal(t, []float64{2, 3, 4, 5}, rows)
	require.Len(t, h.sim.State().Usage, before+2, "a failed import imports nothing")

	// Upload failures.
	for name, tc := range map[string]struct{ name, content string }{
		"too large":  {"big.csv", header + strings.Repeat(line("1", "01/15/2025", strings.Repeat("x", 150)), 4_000_000/200+10)},
		"long name":  {strings.Repeat("n", 47) + ".csv", header},
		"not a csv":  {"usage.xlsx", header},
		"not utf-8":  {"latin.csv", header + "\xff\xfe\n"},
		"no name":    {"", header},
		"wrong part": {"-", ""},
	} {
		var body []byte
		var ct string
		if tc.name == "-" {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			require.NoError(t, mw.WriteField("other", "x"))
			require.NoError(t, mw.Close())
			r := h.bad("POST", "/v1/usage", string(b.Bytes()), "Content-Type", mw.FormDataContentType(), "Zuora-Version", latest)
			require.GreaterOrEqual(t, r.status, 400, "%s: %s", name, r.raw)
			continue
		} else {
			body, ct = usageFile(t, tc.name, tc.content)
		}
		r := h.do("POST", "/v1/usage", body, "Content-Type", ct, "Zuora-Version", latest)
		require.GreaterOrEqual(t, r.status, 400, "%s: %s", name, r.raw)
		require.Contains(t, string(r.raw), `"success":false`, name)
	}
	r = h.bad("POST", "/v1/usage", map[string]any{"file": "x"}, "Zuora-Version", latest)
	require.GreaterOrEqual(t, r.status, 400, "a JSON body is no usage file: %s", r.raw)
	r = h.do("GET", "/v1/usage/nope/status", nil, "Zuora-Version", latest)
	require.Equal(t, 404, r.status, string(r.raw))
}
