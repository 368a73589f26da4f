package zuorasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// FaultKind is the kind of an injected fault.
type FaultKind string

// Fault kinds.
const (
	FaultHTTP500   FaultKind = "http500"   // HTTP 500 ErrorResponse, nothing written
	FaultHTTP429   FaultKind = "http429"   // HTTP 429 with Retry-After, nothing written
	FaultLatency   FaultKind = "latency"   // Fault.Latency added, then served normally
	FaultConnReset FaultKind = "connreset" // TCP reset before any response, nothing written
	FaultTimeout   FaultKind = "timeout"   // hangs until the client gives up (504 after 120 s)
	// FaultLockContention answers HTTP 200 success:false with a category-50
	// code (REST; 409 from Zuora-Version 2024-05-20) or CRUD LOCK_COMPETITION;
	// nothing written.
	FaultLockContention FaultKind = "lock"
	// FaultLostResponse commits the write, then closes the connection
	// without a response.
	FaultLostResponse FaultKind = "lostresponse"
)

// Fault injects a failure into matching calls.
type Fault struct {
	Operation   string        `json:"operation"`   // "POST /v1/orders", or "*" for every /v1 call
	Kind        FaultKind     `json:"kind"`        // see the Fault* constants
	Probability float64       `json:"probability"` // 0 or ≥1 = always
	Latency     time.Duration `json:"latency"`     // for FaultLatency (JSON: nanoseconds or "250ms")
	Count       int           `json:"count"`       // faults to inject in all; 0 = unlimited
}

// UnmarshalJSON accepts latency as a duration string ("250ms") or nanoseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var raw struct {
		Operation   string          `json:"operation"`
		Kind        FaultKind       `json:"kind"`
		Probability float64         `json:"probability"`
		Latency     json.RawMessage `json:"latency"`
		Count       int             `json:"count"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = Fault{Operation: raw.Operation, Kind: raw.Kind, Probability: raw.Probability, Count: raw.Count}
	if len(raw.Latency) > 0 && string(raw.Latency) != "null" {
		var s string
		if err := json.Unmarshal(raw.Latency, &s); err == nil {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			f.Latency = d
		} else {
			var n int64
			if err := json.Unmarshal(raw.Latency, &n); err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			f.Latency = time.Duration(n)
		}
	}
	switch f.Kind {
	case FaultHTTP500, FaultHTTP429, FaultLatency, FaultConnReset, FaultTimeout, FaultLockContention, FaultLostResponse:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	return nil
}

type faultState struct {
	Fault
	used int
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(f ...Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = s.faults[:0]
	for _, x := range f {
		s.faults = append(s.faults, &faultState{Fault: x})
	}
}

// Faults returns the configured faults (with counts still to inject).
func (s *Sim) Faults() []Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		x := f.Fault
		if x.Count > 0 {
			x.Count -= f.used
		}
		out = append(out, x)
	}
	return out
}

func (s *Sim) pickFault(op string) *Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for _, f := range s.faults {
		if f.Operation != "*" && f.Operation != op {
			continue
		}
		if f.Count > 0 && f.used >= f.Count {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && s.rng.Float64() >= f.Probability {
			continue
		}
		f.used++
		x := f.Fault
		s.log.Debug().Str("operation", op).Str("kind", string(x.Kind)).Msg("injecting fault")
		s.statsMu.Lock()
		s.stats.Faulted++
		s.statsMu.Unlock()
		return &x
	}
	return nil
}

// applyFault acts before the handler runs; done means the call is over.
func (s *Sim) applyFault(w http.ResponseWriter, c *call, f *Fault) (done bool) {
	switch f.Kind {
	case FaultLatency:
		return !sleepCtx(c.r.Context(), f.Latency)
	case FaultHTTP500:
		var res *resp
		switch c.rt.fam {
		case famCRUD, famAction:
			res = jsonResp(http.StatusInternalServerError, crudError("UNKNOWN_ERROR", "An internal error occurred, please retry later"))
		case famOQ:
			res = jsonResp(http.StatusInternalServerError, oqBody(c.reqID, catInternal, "An internal error occurred, please retry later"))
		default:
			res = jsonResp(http.StatusInternalServerError, errorResponse(code(c.resource(), catInternal), "An internal error occurred, please retry later"))
		}
		s.write(w, c.r, res, c.rt.class)
		return true
	case FaultHTTP429:
		s.write(w, c.r, c.tooMany(1, "The request exceeded the limit of requests for this tenant"), c.rt.class)
		return true
	case FaultConnReset:
		s.dropConnection(w, true)
		return true
	case FaultTimeout:
		t := time.NewTimer(120 * time.Second)
		defer t.Stop()
		select {
		case <-c.r.Context().Done():
			return true
		case <-s.ctx.Done():
		case <-t.C:
		}
		s.write(w, c.r, c.fail(http.StatusGatewayTimeout, catTemporary, "Gateway Timeout"), c.rt.class)
		return true
	case FaultLockContention:
		s.write(w, c.r, c.lockContention(), c.rt.class)
		return true
	}
	return false
}

const lockMsg = "Operation failed due to a lock competition, please retry later."

func (c *call) lockContention() *resp {
	switch c.rt.fam {
	case famCRUD:
		return jsonResp(http.StatusOK, map[string]any{"Success": false, "Errors": []map[string]string{{"Code": "LOCK_COMPETITION", "Message": lockMsg}}})
	case famAction:
		return jsonResp(http.StatusOK, []map[string]any{{"Success": false, "Errors": []map[string]string{{"Code": "LOCK_COMPETITION", "Message": lockMsg}}}})
	case famEvents:
		return c.eventErr(http.StatusConflict, catLock, lockMsg)
	default:
		return c.restErr(catLock, lockMsg)
	}
}
