package zuorasim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// ControlTokenHeader carries Options.ControlToken.
const ControlTokenHeader = "X-Sim-Control-Token"

// serveControl serves /_sim/*: endpoints that exist only in the simulator.
// POST /_sim/accounts and /_sim/subscriptions stand for Zuora's UI.
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	if !s.controlAuthorized(w, r) {
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.write(w, r, jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()}), classNone)
		return
	}
	now := s.Now()
	res := func() *resp {
		switch r.Method + " " + r.URL.Path {
		case "GET /_sim/state":
			return jsonResp(http.StatusOK, s.State())
		case "GET /_sim/stats":
			return jsonResp(http.StatusOK, s.Stats())
		case "GET /_sim/callouts":
			return jsonResp(http.StatusOK, map[string]any{"callouts": s.Callouts()})
		case "GET /_sim/tenant", "PUT /_sim/tenant":
			return s.controlTenant(r.Method, body)
		case "POST /_sim/bill-runs":
			return s.controlBillRun(body)
		case "POST /_sim/reset":
			s.Reset()
			return jsonResp(http.StatusOK, map[string]any{"success": true})
		case "GET /_sim/faults":
			return jsonResp(http.StatusOK, map[string]any{"faults": s.Faults()})
		case "POST /_sim/faults":
			return s.controlFaults(body)
		case "POST /_sim/clock":
			var req struct {
				Advance string `json:"advance"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
			}
			d, err := time.ParseDuration(req.Advance)
			if err != nil || d < 0 {
				return jsonResp(http.StatusBadRequest, map[string]any{"error": "advance must be a non-negative duration such as \"25h\""})
			}
			ran := s.AdvanceClock(d)
			return jsonResp(http.StatusOK, map[string]any{"now": s.Now().UTC().Format(time.RFC3339), "scheduledOrdersRun": ran})
		case "POST /_sim/accounts":
			return s.controlAccount(body, now)
		case "POST /_sim/subscriptions":
			return s.controlSubscription(body, now)
		case "POST /_sim/payments":
			return s.controlPayment(body)
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/_sim/accounts/"); ok && r.Method == http.MethodPost {
			if key, ok := strings.CutSuffix(rest, "/payment-methods"); ok && key != "" && !strings.Contains(key, "/") {
				return s.controlPaymentMethod(key, body)
			}
		}
		return jsonResp(http.StatusNotFound, map[string]any{"error": "no such control endpoint " + r.Method + " " + r.URL.Path})
	}()
	if r.Method != http.MethodGet && r.URL.Path != "/_sim/reset" { // Reset saves itself
		s.persist()
	}
	s.write(w, r, res, classNone)
}

func (s *Sim) controlFaults(body []byte) *resp {
	var faults []Fault
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(body, &faults); err != nil {
			return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
		}
	} else {
		var req struct {
			Faults []Fault `json:"faults"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
		}
		faults = req.Faults
	}
	s.SetFaults(faults...)
	return jsonResp(http.StatusOK, map[string]any{"faults": s.Faults()})
}

// controlAccount creates an account as Zuora's UI would (body as POST
// /v1/accounts; billCycleDay optional) and fires the account callouts.
func (s *Sim) controlAccount(body []byte, now time.Time) *resp {
	m, err := decodeObject(body)
	if err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	in, fe := parseAccount(m, false, false)
	if fe != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": fe.msg})
	}
	s.mu.Lock()
	a, fe := s.createAccount(in, now)
	if fe != nil {
		s.mu.Unlock()
		return jsonResp(http.StatusBadRequest, map[string]any{"error": fe.msg})
	}
	ev := s.accountEvent(a, "INSERT", nil)
	s.mu.Unlock()
	s.fire(ev)
	return jsonResp(http.StatusOK, map[string]any{"success": true, "accountId": a.ID, "accountNumber": a.Number})
}

// controlSubscription creates a subscription as Zuora's UI would. Body:
//
//	{"accountNumber": "A00000001", "subscriptionNumber": "optional",
//	 "contractEffectiveDate": "2025-01-01", "termType": "TERMED", "initialTerm": 12, "periodType": "Month",
//	 "autoRenew": true, "productRatePlanIds": ["..."] | "subscribeToRatePlans": [{...as in orders...}],
//	 "customFields": {"X__c": "..."}}
func (s *Sim) controlSubscription(body []byte, now time.Time) *resp {
	m, err := decodeObject(body)
	if err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"error": err.Error()})
	}
	acct := firstNonEmpty(str(m["accountNumber"]), str(m["accountId"]))
	ced := firstNonEmpty(str(m["contractEffectiveDate"]), now.Format(dateLayout))
	termType := firstNonEmpty(str(m["termType"]), "TERMED")
	initial := map[string]any{"termType": termType, "periodType": firstNonEmpty(str(m["periodType"]), "Month")}
	if termType == "TERMED" {
		initial["period"] = json.Number(firstNonEmpty(str(m["initialTerm"]), "12"))
	}
	var rps []any
	if x, ok := m["subscribeToRatePlans"].([]any); ok {
		rps = x
	}
	if ids, ok := m["productRatePlanIds"].([]any); ok {
		for _, id := range ids {
			rps = append(rps, map[string]any{"productRatePlanId": id})
		}
	}
	cs := map[string]any{"terms": map[string]any{"initialTerm": initial, "autoRenew": m["autoRenew"] == true}, "subscribeToRatePlans": rps}
	if n := str(m["subscriptionNumber"]); n != "" {
		cs["subscriptionNumber"] = n
	}
	sub := map[string]any{"orderActions": []any{map[string]any{"type": "CreateSubscription", "createSubscription": cs}}}
	if cf, ok := m["customFields"].(map[string]any); ok {
		sub["customFields"] = cf
	}
	order := map[string]any{"orderDate": ced, "existingAccountNumber": acct, "subscriptions": []any{sub}}
	s.mu.Lock()
	o := s.newOrderRun(now)
	if a := s.st.account(acct); a != nil {
		order["existingAccountNumber"] = a.Number
	}
	if fe := o.run(order); fe != nil {
		o.rollback()
		s.mu.Unlock()
		return jsonResp(http.StatusBadRequest, map[string]any{"error": fe.msg})
	}
	o.commit()
	created := o.results[0]
	events := o.events
	out := map[string]any{"success": true, "subscriptionId": created.latest().ID, "subscriptionNumber": created.Number, "orderNumber": o.orderNumber}
	s.mu.Unlock()
	s.fire(events...)
	return jsonResp(http.StatusOK, out)
}

// controlAuthorized checks Options.ControlToken (control endpoints and
// pages), answering 401 when it is missing or wrong.
func (s *Sim) controlAuthorized(w http.ResponseWriter, r *http.Request) bool {
	t := s.opts.ControlToken
	if t == "" {
		return true
	}
	got := sha256.Sum256([]byte(r.Header.Get(ControlTokenHeader)))
	want := sha256.Sum256([]byte(t))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		s.write(w, r, jsonResp(http.StatusUnauthorized, map[string]any{"error": "control endpoints and pages need the " + ControlTokenHeader + " header"}), classNone)
		return false
	}
	return true
}

// ListenAndServe serves s on addr until ctx is cancelled, then shuts down
// gracefully (10 s deadline) and stops pending callouts.
func ListenAndServe(ctx context.Context, addr string, s *Sim, log zerolog.Logger) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info().Str("addr", ln.Addr().String()).Str("client_id", s.opts.ClientID).Msg("zuora simulator listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	s.Close()
	log.Info().Msg("zuora simulator stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
