package zuorasim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Usage import (POST /v1/usage, docs/zuora-rules.md "Usage import"): a CSV
// usage file is accepted (or refused: upload failures) at once and processed
// later, asynchronously: Pending, Processing, then Completed (every row
// imported) or Failed (none: the import is atomic; the status names the rows
// that failed). Pages: developer.zuora.com POST_Usage; docs.zuora.com "Usage
// file format" and "Troubleshooting usage import failures".

// usageImport is one uploaded usage file.
type usageImport struct {
	ID       string
	FileName string
	Size     int
	CSV      string
	Uploaded time.Time
	Status   string // Pending until processed, then Completed or Failed
	Message  string
	Total    int
	Imported int
	Errors   []importRowErr
}

type importRowErr struct {
	Row     int    `json:"row"`
	Message string `json:"message"`
}

// Upload limits (POST_Usage): a .csv file, a name of at most 50
// characters, at most 4 MB (read as 4,000,000 bytes), UTF-8.
const (
	maxImportBytes    = 4_000_000
	maxImportFileName = 50
)

var (
	importRequired = []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE"}
	importColumns  = set("ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION",
		"PRODUCT_RATE_PLAN_CHARGE_ID", "UNIQUE_KEY")
)

// importDelay is how long an import waits before it is processed.
func (s *Sim) importDelay(rows int) time.Duration {
	return s.opts.ImportDelay + time.Duration(rows)*10*time.Microsecond
}

// postUsageImport serves POST /v1/usage.
func (s *Sim) postUsageImport(c *call) *resp {
	mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return c.restErr(catInvalidValue, "The request must be multipart/form-data with the usage file in the part named file")
	}
	mr := multipart.NewReader(bytes.NewReader(c.body), params["boundary"])
	var (
		name string
		data []byte
		seen bool
	)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c.restErr(catMalformed, "Unable to read the multipart body: "+err.Error())
		}
		if p.FormName() != "file" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, maxImportBytes+1))
		if err != nil {
			return c.restErr(catMalformed, "Unable to read the usage file: "+err.Error())
		}
		name, data, seen = p.FileName(), b, true
	}
	switch {
	case !seen:
		return c.restErr(catMissing, "Missing required value: file")
	case name == "":
		return c.restErr(catInvalidValue, "The system cannot detect the file name; provide it in the file part's Content-Disposition")
	case utf8.RuneCountInString(name) > maxImportFileName:
		return c.restErr(catInvalidValue, fmt.Sprintf("The file name %q is longer than %d characters", name, maxImportFileName))
	case !strings.EqualFold(name[max(0, len(name)-4):], ".csv"):
		return c.restErr(catInvalidValue, "The file type is not recognized: the usage file must be a .csv file")
	case len(data) > maxImportBytes:
		return c.restErr(catInvalidValue, fmt.Sprintf("The file is too large (more than %d bytes); split it", maxImportBytes))
	case !utf8.Valid(data):
		return c.restErr(catInvalidValue, "The file is not encoded in UTF-8")
	}
	s.mu.Lock()
	imp := &usageImport{ID: s.st.newID(), FileName: name, Size: len(data), CSV: string(data), Uploaded: c.now, Status: "Pending"}
	s.st.imports[imp.ID] = imp
	s.mu.Unlock()
	return jsonResp(http.StatusOK, map[string]any{"success": true, "size": len(data), "checkImportStatus": "/v1/usage/" + imp.ID + "/status"})
}

// getUsageImportStatus serves GET /v1/usage/{import-id}/status.
func (s *Sim) getUsageImportStatus(c *call) *resp {
	s.mu.Lock()
	imp := s.st.imports[c.param("import-id")]
	if imp == nil {
		s.mu.Unlock()
		return c.restErr(catNotFound, "Cannot find entity by key: '"+c.param("import-id")+"'.")
	}
	processed := s.processImportLocked(imp, c.now)
	status := imp.Status
	if status == "Pending" && c.now.Sub(imp.Uploaded) >= s.importDelay(0)/2 {
		status = "Processing"
	}
	out := map[string]any{"success": true, "id": imp.ID, "importStatus": status, "message": imp.Message,
		"totalCount": imp.Total, "importedCount": imp.Imported, "errors": append([]importRowErr{}, imp.Errors...)}
	s.mu.Unlock()
	if processed {
		s.persist()
	}
	return jsonResp(http.StatusOK, out)
}

// processImportsLocked processes every import whose time has come (the
// simulator's asynchronous processing, run before requests and snapshots).
func (s *Sim) processImportsLocked(now time.Time) {
	for _, imp := range s.st.imports {
		s.processImportLocked(imp, now)
	}
}

// processImportLocked imports a pending file once its delay passed: all
// rows, or none when any row fails. The caller holds s.mu.
func (s *Sim) processImportLocked(imp *usageImport, now time.Time) bool {
	if imp.Status != "Pending" {
		return false
	}
	r := csv.NewReader(strings.NewReader(imp.CSV))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	rows := max(0, len(recs)-1)
	if now.Sub(imp.Uploaded) < s.importDelay(rows) {
		return false
	}
	fail := func(msg string) bool {
		imp.Status, imp.Message = "Failed", msg
		return true
	}
	if err != nil {
		return fail("File Import Failed: the file is not a valid CSV file: " + err.Error())
	}
	if len(recs) == 0 {
		return fail("File Import Failed: the file is empty")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		h = strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !importColumns[h] {
			return fail("File Import Failed: unknown column " + h)
		}
		col[h] = i
	}
	for _, h := range importRequired {
		if _, ok := col[h]; !ok {
			return fail("File Import Failed: the column " + h + " is missing")
		}
	}
	imp.Total = rows
	var made []*usageRecord
	for i, rec := range recs[1:] {
		get := func(h string) string {
			if j, ok := col[h]; ok && j < len(rec) {
				return strings.TrimSpace(rec[j])
			}
			return ""
		}
		u, msg := s.importRow(get)
		if msg != "" {
			imp.Errors = append(imp.Errors, importRowErr{Row: i + 1, Message: msg})
			continue
		}
		made = append(made, u)
	}
	if len(imp.Errors) > 0 {
		return fail(fmt.Sprintf("File Import Failed: %d of %d rows failed; nothing was imported", len(imp.Errors), rows))
	}
	for _, u := range made {
		u.ID = s.st.newID()
		u.Submitted = now
		u.Source = "Import"
		u.ImportID = imp.ID
		s.st.usage = append(s.st.usage, u)
		s.st.usageByAccount[u.AccountID] = append(s.st.usageByAccount[u.AccountID], u)
	}
	imp.Status, imp.Imported = "Completed", len(made)
	return true
}

// importRow checks one row of a usage file (Zuora's import failure
// messages); the caller holds s.mu.
func (s *Sim) importRow(get func(string) string) (*usageRecord, string) {
	acct, uom, qty, start, end := get("ACCOUNT_ID"), get("UOM"), get("QTY"), get("STARTDATE"), get("ENDDATE")
	switch {
	case acct == "":
		return nil, "The ACCOUNT_ID is missing"
	case uom == "":
		return nil, "The UOM is missing"
	case qty == "":
		return nil, "The QTY is missing"
	}
	q, err := decimal.NewFromString(qty)
	if err != nil {
		return nil, "The QTY " + qty + " is not a number"
	}
	if q.IsNegative() {
		return nil, "The QTY cannot be less than 0"
	}
	if len(q.Truncate(0).Abs().String()) > 13 {
		return nil, "The Usage Quantity exceeds 13 digits before the decimal"
	}
	a := s.st.accountByNumber[acct]
	if a == nil {
		return nil, "The ACCOUNT_ID does not match"
	}
	if a.Status != "Active" {
		return nil, "The Account status is not active"
	}
	sd, err := time.Parse("01/02/2006", start)
	if err != nil {
		return nil, "The STARTDATE " + start + " is not a date in the MM/DD/YYYY format"
	}
	o := map[string]any{"AccountNumber": acct, "UOM": uom, "Quantity": json.Number(qty), "StartDateTime": sd.Format(dateLayout)}
	if end != "" {
		ed, err := time.Parse("01/02/2006", end)
		if err != nil {
			return nil, "The ENDDATE " + end + " is not a date in the MM/DD/YYYY format"
		}
		if ed.Before(sd) {
			return nil, "The Usage STARTDATE cannot be after the ENDDATE"
		}
		o["EndDateTime"] = ed.Format(dateLayout)
	}
	if d := get("DESCRIPTION"); d != "" {
		if utf8.RuneCountInString(d) > 200 {
			return nil, "DESCRIPTION length is longer than the 200 character maximum"
		}
		for _, r := range d {
			if r > 0xFFFF { // outside the Basic Multilingual Plane: emoji and the like
				return nil, "Failed to import usage: An invalid character (emoticon) was identified"
			}
		}
		o["Description"] = d
	}
	if get("UNIQUE_KEY") != "" {
		return nil, "UNIQUE_KEY needs Unbilled Usage or Prepaid with Drawdown, which this tenant does not have"
	}
	if get("PRODUCT_RATE_PLAN_CHARGE_ID") != "" {
		return nil, "PRODUCT_RATE_PLAN_CHARGE_ID needs dynamic usage charges, which this tenant does not have"
	}
	if v := get("SUBSCRIPTION_ID"); v != "" {
		if s.st.subs[v] == nil {
			return nil, "Invalid Subscription ID"
		}
		o["SubscriptionNumber"] = v
	}
	if v := get("CHARGE_ID"); v != "" {
		o["ChargeNumber"] = v
	}
	u, _, msg := s.validateUsage(o, 79)
	if u == nil {
		return nil, msg
	}
	if u.ChargeNumber != "" {
		if sub := s.st.subs[u.SubscriptionNumber]; sub != nil {
			for _, rp := range sub.latest().RatePlans {
				for _, ch := range rp.Charges {
					if ch.Number == u.ChargeNumber && ch.Type != "Usage" {
						return nil, "The Charge Type is not Usage"
					}
				}
			}
		}
	}
	return u, ""
}
