package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a scenario measured.
type Result struct {
	Scenario         string        `json:"scenario"`
	Database         string        `json:"database"`
	Latency          time.Duration `json:"latencyNs"`
	ConcurrencyLimit int           `json:"concurrencyLimit"`
	Workers          int           `json:"workers"`

	// Entities counts what the scenario synced, by kind.
	Entities map[string]int `json:"entities"`
	// Calls counts Zuora calls by operation ("POST /v1/orders"), as the
	// simulator served them (retries included; token mints listed too).
	Calls map[string]int `json:"calls"`
	// APICalls is the number of /v1 calls (what the concurrency limit applies to).
	APICalls       int           `json:"apiCalls"`
	CallsPerEntity float64       `json:"callsPerEntity"`
	Wall           time.Duration `json:"wallNs"`
	// Ideal is APICalls × latency ÷ concurrency limit; Efficiency is Ideal ÷ Wall.
	Ideal      time.Duration `json:"idealNs"`
	Efficiency float64       `json:"efficiency"`
	// Responses429 is how many 429s the simulator sent; Throttled how many
	// the client saw, FailedFor429 how many calls still failed with a 429
	// after the client's retries (must be 0).
	Responses429   int `json:"responses429"`
	Throttled      int `json:"throttled"`
	FailedFor429   int `json:"failedFor429"`
	Retries        int `json:"retries"`
	FailedCalls    int `json:"failedCalls"`
	PeakConcurrent int `json:"peakConcurrent"`
	// PeakHeapBytes is the Go runtime's peak of memory in use (sampled);
	// MaxRSSBytes the process's maximum resident set (whole process life).
	PeakHeapBytes uint64 `json:"peakHeapBytes"`
	MaxRSSBytes   uint64 `json:"maxRssBytes"`

	// CPU is the process's CPU time (user + system) during the measured
	// part: billsync and the in-process simulator together. Statements
	// counts billsync's database statements in it (transactions' BEGIN and
	// COMMIT not included).
	CPU        time.Duration `json:"cpuNs"`
	Statements int           `json:"dbStatements"`
	// CPUPerEntity and StatementsPerEntity divide them by the entities.
	CPUPerEntity        time.Duration `json:"cpuPerEntityNs"`
	StatementsPerEntity float64       `json:"dbStatementsPerEntity"`

	// Figures specific to a scenario, in display order.
	Figures []Figure `json:"figures,omitempty"`
	// Targets and whether they were met.
	Targets []Target `json:"targets"`
	// Setup is how long seeding and preparation took (not measured).
	Setup time.Duration `json:"setupNs"`
}

// Figure is one named measurement.
type Figure struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Target is one goal of the scenario.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Met reports whether every target was met.
func (r *Result) Met() bool {
	for _, t := range r.Targets {
		if !t.Met {
			return false
		}
	}
	return true
}

func (r *Result) figure(name, format string, args ...any) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: fmt.Sprintf(format, args...)})
}

func (r *Result) target(name, want string, met bool, gotFormat string, args ...any) {
	r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: fmt.Sprintf(gotFormat, args...), Met: met})
}

// finish computes the derived figures.
func (r *Result) finish() {
	r.APICalls = 0
	for op, n := range r.Calls {
		if strings.Contains(op, " /v1/") {
			r.APICalls += n
		}
	}
	entities := 0
	for _, n := range r.Entities {
		entities += n
	}
	if entities > 0 {
		r.CallsPerEntity = float64(r.APICalls) / float64(entities)
		r.CPUPerEntity = r.CPU / time.Duration(entities)
		r.StatementsPerEntity = float64(r.Statements) / float64(entities)
	}
	if r.ConcurrencyLimit > 0 {
		r.Ideal = time.Duration(int64(r.APICalls) * int64(r.Latency) / int64(r.ConcurrencyLimit))
	}
	if r.Wall > 0 && r.Ideal > 0 {
		r.Efficiency = float64(r.Ideal) / float64(r.Wall)
	}
}

// WriteTable prints the result as a two-column table.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("scenario", "%s (%s; latency %s, concurrency limit %d, %d workers)", r.Scenario, r.Database, r.Latency, r.ConcurrencyLimit, r.Workers)
	var ents []string
	for _, k := range sortedKeys(r.Entities) {
		ents = append(ents, fmt.Sprintf("%d %s", r.Entities[k], k))
	}
	row("entities", "%s", strings.Join(ents, ", "))
	if len(r.Calls) == 0 {
		row("Zuora calls", "0")
	}
	for _, op := range sortedKeys(r.Calls) {
		row("  "+op, "%d", r.Calls[op])
	}
	row("Zuora /v1 calls", "%d", r.APICalls)
	row("calls per entity", "%.3f", r.CallsPerEntity)
	row("wall time", "%s", r.Wall.Round(time.Millisecond))
	if r.Ideal > 0 {
		row("ideal wall time", "%s (calls × latency ÷ concurrency limit)", r.Ideal.Round(time.Millisecond))
		row("efficiency", "%.2f", r.Efficiency)
	}
	row("peak concurrent calls", "%d", r.PeakConcurrent)
	row("429s received", "%d (failed after retries: %d; client retries: %d; failed calls: %d)", r.Responses429, r.FailedFor429, r.Retries, r.FailedCalls)
	if r.CPU > 0 {
		row("CPU time", "%s (%s per entity; billsync and the simulator)", r.CPU.Round(time.Millisecond), r.CPUPerEntity.Round(time.Microsecond))
	}
	if r.Statements > 0 {
		row("database statements", "%d (%.1f per entity)", r.Statements, r.StatementsPerEntity)
	}
	row("peak memory", "Go runtime %s, max RSS %s", mib(r.PeakHeapBytes), mib(r.MaxRSSBytes))
	for _, f := range r.Figures {
		row(f.Name, "%s", f.Value)
	}
	row("set-up (not measured)", "%s", r.Setup.Round(time.Millisecond))
	for _, t := range r.Targets {
		mark := "MET"
		if !t.Met {
			mark = "MISSED"
		}
		row("target: "+t.Name, "%s (want %s, got %s)", mark, t.Want, t.Got)
	}
	return tw.Flush()
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
