package zuorasim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/billsync/billsync/connectors/zuora/zuorasim"
)

// benchClient talks to a simulator without the contract validator.
type benchClient struct {
	b     *testing.B
	url   string
	token string
	c     *http.Client
}

func newBench(b *testing.B) (*benchClient, *zuorasim.Sim) {
	sim := zuorasim.New(zuorasim.Options{})
	srv := httptest.NewServer(sim)
	b.Cleanup(func() { srv.Close(); sim.Close() })
	bc := &benchClient{b: b, url: srv.URL, c: srv.Client()}
	form := url.Values{"client_id": {zuorasim.DefaultClientID}, "client_secret": {zuorasim.DefaultClientSecret}, "grant_type": {"client_credentials"}}
	res, err := bc.c.PostForm(srv.URL+"/oauth/token", form)
	if err != nil {
		b.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	bc.token = tok["access_token"].(string)
	return bc, sim
}

func (bc *benchClient) post(path string, body any) map[string]any {
	buf, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", bc.url+path, bytes.NewReader(buf))
	req.Header.Set("Authorization", "Bearer "+bc.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Zuora-Version", latest)
	res, err := bc.c.Do(req)
	if err != nil {
		bc.b.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if strings.HasPrefix(string(raw), "{") {
		_ = json.Unmarshal(raw, &m)
	}
	if res.StatusCode != 200 {
		bc.b.Fatalf("%s: %d %s", path, res.StatusCode, raw)
	}
	return m
}

func (bc *benchClient) catalog() (planID string) {
	p := bc.post("/v1/object/product", map[string]any{"Name": "Bench", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2099-01-01"})
	rp := bc.post("/v1/object/product-rate-plan", map[string]any{"Name": "Bench", "ProductId": p["Id"]})
	bc.post("/v1/object/product-rate-plan-charge", map[string]any{"Name": "Calls", "ProductRatePlanId": rp["Id"], "ChargeType": "Usage",
		"ChargeModel": "Per Unit Pricing", "UOM": "Call", "BillCycleType": "DefaultFromCustomer", "BillingPeriod": "Month",
		"TriggerEvent": "ContractEffective", "UseDiscountSpecificAccountingCode": false,
		"ProductRatePlanChargeTierData": map[string]any{"ProductRatePlanChargeTier": []any{map[string]any{"Currency": "USD", "Price": 0.01}}}})
	return rp["Id"].(string)
}

func BenchmarkOrders(b *testing.B) {
	bc, _ := newBench(b)
	plan := bc.catalog()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bc.post("/v1/orders", map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody(fmt.Sprint("B", i)),
			"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(plan)}}}})
	}
}

func BenchmarkUsage50(b *testing.B) {
	bc, sim := newBench(b)
	plan := bc.catalog()
	o := bc.post("/v1/orders", map[string]any{"orderDate": "2025-01-01", "newAccount": newAccountBody("U"),
		"subscriptions": []any{map[string]any{"orderActions": []any{createSubscriptionAction(plan)}}}})
	acct := o["accountNumber"].(string)
	sub := o["subscriptions"].([]any)[0].(map[string]any)["subscriptionNumber"].(string)
	charge := sim.State().Subscriptions[0].RatePlans[0].Charges[0].Number
	rows := make([]any, 50)
	for i := range rows {
		rows[i] = map[string]any{"AccountNumber": acct, "SubscriptionNumber": sub, "ChargeNumber": charge, "UOM": "Call", "Quantity": i + 1,
			"StartDateTime": "2025-01-02T10:00:00Z"}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _ := json.Marshal(map[string]any{"type": "Usage", "objects": rows})
		req, _ := http.NewRequest("POST", bc.url+"/v1/action/create", bytes.NewReader(buf))
		req.Header.Set("Authorization", "Bearer "+bc.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := bc.c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	b.ReportMetric(float64(50*b.N)/b.Elapsed().Seconds(), "rows/s")
}
