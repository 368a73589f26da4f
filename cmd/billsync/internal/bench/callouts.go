package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/web"
)

const (
	calloutUser = "zuora-callouts"
	calloutPass = "bench-callout-password"
)

// runCallouts creates accounts in the simulator (as Zuora's UI would), then
// sends one account-created callout per account to billsync's webhook at a
// steady rate, measuring each acknowledgement, and waits until every inbox
// entry is processed (the account read back from Zuora, a local customer
// created and billsync's id written back into the account).
func runCallouts(ctx context.Context, e *env) (*Result, error) {
	began := time.Now()
	n := e.o.Callouts
	e.o.Progress("creating %d accounts in the simulator (not measured)", n)
	type acct struct{ id, number string }
	accts := make([]acct, n)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	err := parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		body, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("Zuora customer %06d", i), "currency": "USD", "billCycleDay": 1,
			"accountNumber": fmt.Sprintf("ZA-%06d", i),
			"billToContact": map[string]any{"firstName": "Grace", "lastName": fmt.Sprintf("Hopper%06d", i), "country": "United States"}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.simURL+"/_sim/accounts", bytes.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct{ AccountID, AccountNumber string }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccountID == "" {
			return fmt.Errorf("create account %d: status %d: %v", i, resp.StatusCode, err)
		}
		accts[i] = acct{out.AccountID, out.AccountNumber}
		return nil
	})
	if err != nil {
		return nil, err
	}

	p := e.engine()
	svc := inbound.New(e.db, e.z, p.out, inbound.Config{Workers: e.o.Workers, Logger: e.log, PollInterval: 100 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: web.New(web.Options{Store: e.db, Logger: e.log, Inbound: svc,
		Webhooks: web.WebhookAuth{Username: calloutUser, Password: calloutPass}}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	r := e.newResult()
	r.Entities = map[string]int{"callouts": n}
	r.Setup = time.Since(began)

	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(rctx) }()
	defer func() { stop(); wg.Wait() }()

	e.o.Progress("sending %d callouts at %d/s", n, e.o.Rate)
	e.resetCounts()
	start := time.Now()
	acks := make([]time.Duration, n)
	failed := 0
	var mu sync.Mutex
	tick := time.NewTicker(time.Second / time.Duration(e.o.Rate))
	defer tick.Stop()
	var sends sync.WaitGroup
	for i := range n {
		<-tick.C
		sends.Add(1)
		go func(i int) {
			defer sends.Done()
			body := fmt.Sprintf(`{"AccountId":%q,"AccountNumber":%q}`, accts[i].id, accts[i].number)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+inbound.PathAccountCreated, bytes.NewReader([]byte(body)))
			req.SetBasicAuth(calloutUser, calloutPass)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Zuora-Notification-Id", fmt.Sprintf("bench-%06d", i))
			t0 := time.Now()
			resp, err := hc.Do(req)
			d := time.Since(t0)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			acks[i] = d
			if !ok {
				failed++
			}
			mu.Unlock()
		}(i)
	}
	sends.Wait()
	sent := time.Since(start)
	e.o.Progress("all sent in %s; waiting until processed", sent.Round(time.Millisecond))
	tctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	var counts map[string]int64
	for {
		counts, err = svc.InboxCounts(tctx)
		if err != nil {
			return r, err
		}
		if counts[inbound.StateDone]+counts[inbound.StateDead] >= int64(n) {
			break
		}
		select {
		case <-tctx.Done():
			return r, fmt.Errorf("callouts not processed after %s: %v", e.o.Timeout, counts)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.Wall = time.Since(start)
	e.fill(r)
	r.finish()
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	p50, p99, maxAck := acks[n/2], acks[n*99/100], acks[n-1]
	r.figure("callouts sent", "%d in %s (%.0f/s), %d not acknowledged with 200", n, sent.Round(time.Millisecond), float64(n)/sent.Seconds(), failed)
	r.figure("ack latency", "p50 %s, p99 %s, max %s", p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), maxAck.Round(time.Millisecond))
	r.figure("time to processed", "%s after the first callout (%s after the last); %d done, %d dead",
		r.Wall.Round(time.Millisecond), (r.Wall - sent).Round(time.Millisecond), counts[inbound.StateDone], counts[inbound.StateDead])
	r.target("ack p99", "< 50ms", p99 < 50*time.Millisecond && failed == 0, "%s (%d failed)", p99.Round(10*time.Microsecond), failed)
	r.target("every callout processed", fmt.Sprintf("%d done", n), counts[inbound.StateDone] == int64(n), "%d done", counts[inbound.StateDone])
	return r, nil
}
