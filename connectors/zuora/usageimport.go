package zuora

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// Usage import: POST /v1/usage takes a CSV usage file (multipart part
// "file", file name ≤ 50 characters, ≤ 4 MB) and answers, before the file is
// processed, with its size and the URL of the import's status
// (checkImportStatus). The import is atomic: it is Completed (every row
// imported) or Failed/Canceled (none). docs/zuora-rules.md, "Usage import".

// MaxUsageImportBytes bounds a usage file (Zuora: 4 MB; the stricter
// reading, 4,000,000 bytes).
const MaxUsageImportBytes = 4_000_000

// usageCSVHeader is the usage file's header (POST_Usage; ENDDATE's header is
// required, its value optional).
var usageCSVHeader = []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION"}

// usageCSVDate is the usage file's date format: the user locale's, en_US by
// default (MM/DD/YYYY); dates only, so a record starts at 00:00 of its day
// in the tenant's time zone (the day decides the billing period).
const usageCSVDate = "01/02/2006"

// UsageImportHeaderBytes is the size of the usage file's header line.
var UsageImportHeaderBytes = len(csvLine(usageCSVHeader))

func csvLine(fields []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(fields)
	w.Flush()
	return b.Bytes()
}

func (u Usage) csvFields() []string {
	end := ""
	if !u.EndDateTime.IsZero() {
		end = u.EndDateTime.UTC().Format(usageCSVDate)
	}
	return []string{u.AccountNumber, u.UOM, u.Quantity.String(), u.StartDateTime.UTC().Format(usageCSVDate), end,
		u.SubscriptionNumber, u.ChargeNumber, u.Description}
}

// UsageImportLineBytes is the size of u's line in a usage file.
func UsageImportLineBytes(u Usage) int { return len(csvLine(u.csvFields())) }

// UsageImport is Zuora's answer to an accepted usage file.
type UsageImport struct {
	Size int64 `json:"size"`
	// StatusURL is checkImportStatus: where the import's status is read.
	StatusURL string `json:"checkImportStatus"`
	Success   bool   `json:"success"`
}

// ImportUsage uploads records as one usage file (POST /v1/usage) with the
// Idempotency-Key key (the file's identity: a resend with the key is
// answered with the first import's status URL for 24 h). An EndDateTime is
// sent as the ENDDATE's day when it is on a later day than the start, else
// omitted (Zuora refuses an ENDDATE before the STARTDATE).
func (c *Client) ImportUsage(ctx context.Context, key string, records []Usage) (UsageImport, error) {
	const op = "POST /v1/usage"
	if key == "" {
		return UsageImport{}, fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	if len(records) == 0 {
		return UsageImport{}, fmt.Errorf("zuora %s: no usage records", op)
	}
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	_ = w.Write(usageCSVHeader)
	for i, u := range records {
		if err := u.validate(); err != nil {
			return UsageImport{}, fmt.Errorf("zuora %s: usage[%d]: %w", op, i, err)
		}
		if u.AccountNumber == "" {
			return UsageImport{}, fmt.Errorf("zuora %s: usage[%d]: a usage file names accounts by number", op, i)
		}
		if !u.EndDateTime.IsZero() && u.EndDateTime.UTC().Format("2006-01-02") <= u.StartDateTime.UTC().Format("2006-01-02") {
			u.EndDateTime = time.Time{}
		}
		_ = w.Write(u.csvFields())
	}
	w.Flush()
	if file.Len() > MaxUsageImportBytes {
		return UsageImport{}, fmt.Errorf("zuora %s: usage file of %d bytes (at most %d)", op, file.Len(), MaxUsageImportBytes)
	}
	// A fixed boundary and file name: a resend is the same request.
	id := key
	if len(id) > 24 {
		id = id[:24]
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.SetBoundary("billsync-usage-" + id)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="usage-%s.csv"`, id))
	h.Set("Content-Type", "text/csv")
	part, _ := mw.CreatePart(h)
	_, _ = part.Write(file.Bytes())
	_ = mw.Close()
	var out UsageImport
	_, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/usage", raw: body.Bytes(), rawType: mw.FormDataContentType(),
		idemKey: key}, &out)
	if err != nil {
		return UsageImport{}, err
	}
	if !strings.HasPrefix(out.StatusURL, "/") && !strings.HasPrefix(out.StatusURL, "http") {
		return out, &Error{Op: op, HTTPStatus: http.StatusOK, Code: codeDecode, Message: fmt.Sprintf("Zuora answered no import status URL (%q)", out.StatusURL)}
	}
	return out, nil
}

// Usage import statuses (only Completed means imported).
const (
	ImportPending    = "Pending"
	ImportProcessing = "Processing"
	ImportCompleted  = "Completed"
	ImportCanceled   = "Canceled"
	ImportFailed     = "Failed"
)

// UsageImportStatus is the status of a usage import.
type UsageImportStatus struct {
	ID            string `json:"id"`
	Status        string `json:"importStatus"`
	Message       string `json:"message"`
	TotalCount    int    `json:"totalCount"`
	ImportedCount int    `json:"importedCount"`
	// Errors name the rows that failed the import (1 = the first record).
	Errors []ImportRowError `json:"errors"`
}

// ImportRowError is one row's reason for a failed import.
type ImportRowError struct {
	Row     int    `json:"row"`
	Message string `json:"message"`
}

// GetUsageImportStatus reads an import's status at the URL ImportUsage
// returned (GET /v1/usage/{import-id}/status; not an operation of Zuora's
// OpenAPI file: docs/zuora-rules.md).
func (c *Client) GetUsageImportStatus(ctx context.Context, statusURL string) (UsageImportStatus, error) {
	const op = "GET /v1/usage/{import-id}/status"
	if statusURL == "" {
		return UsageImportStatus{}, fmt.Errorf("zuora %s: no status URL", op)
	}
	var out UsageImportStatus
	_, err := c.doJSON(ctx, call{op: op, method: http.MethodGet, path: statusURL}, &out)
	if err != nil {
		return UsageImportStatus{}, err
	}
	switch out.Status {
	case ImportPending, ImportProcessing, ImportCompleted, ImportCanceled, ImportFailed:
	default:
		return out, &Error{Op: op, HTTPStatus: http.StatusOK, Code: codeDecode, Message: fmt.Sprintf("unknown import status %q", out.Status)}
	}
	return out, nil
}
