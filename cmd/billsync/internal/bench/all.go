package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// RunAll runs every scenario on one database kind and returns their results
// in Scenarios order (and "initial-big" last when o.BigCustomers is set).
// initial, noop and drift share one seeded database and simulator: the
// hourly reconcile and the drift check run after the measured initial sync,
// as they would in production. usage and callouts get their own.
func RunAll(ctx context.Context, o Options) ([]*Result, error) {
	o = o.withDefaults()
	var out []*Result
	shared, err := runShared(ctx, o)
	out = append(out, shared...)
	if err != nil {
		return out, err
	}
	for _, sc := range []string{"usage", "callouts"} {
		so := o
		so.Scenario = sc
		r, err := Run(ctx, so)
		if r != nil {
			out = append(out, r)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", sc, err)
		}
	}
	if o.BigCustomers > 0 {
		bo := o
		bo.Scenario, bo.Customers = "initial", o.BigCustomers
		r, err := Run(ctx, bo)
		if r != nil {
			r.Scenario = "initial-big"
			r.target("peak RSS", "< 300 MiB", r.MaxRSSBytes < 300<<20, "%s", mib(r.MaxRSSBytes))
			out = append(out, r)
		}
		if err != nil {
			return out, fmt.Errorf("initial at %d customers: %w", o.BigCustomers, err)
		}
	}
	return out, nil
}

// runShared measures initial, noop and drift on one environment.
func runShared(ctx context.Context, o Options) ([]*Result, error) {
	o.Scenario = "initial"
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	mem := startMemSampler()
	began := time.Now()
	if err := e.setupInitial(ctx); err != nil {
		return nil, err
	}
	p := e.engine()
	var out []*Result
	steps := []struct {
		name    string
		measure func(context.Context, engineParts, *Result) (*Result, error)
	}{{"initial", e.measureInitial}, {"noop", e.measureNoop}, {"drift", e.measureDrift}}
	for i, st := range steps {
		e.o.Scenario = st.name
		r := e.newResult()
		if i == 0 {
			r.Setup = time.Since(began)
		}
		r, err := st.measure(ctx, p, r)
		if r != nil {
			r.PeakHeapBytes, r.MaxRSSBytes = mem.peakSoFar(), maxRSSBytes()
			out = append(out, r)
		}
		if err != nil {
			mem.stop()
			return out, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	mem.stop()
	return out, nil
}

// WriteSummary prints one line per scenario: its headline figures, each
// target with what it wants and what it got.
func WriteSummary(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tdatabase\twall\tideal\tefficiency\tZuora calls\tCPU per entity\tstatements per entity\tpeak RSS\ttargets")
	for _, r := range results {
		var ts []string
		for _, t := range r.Targets {
			mark := "met"
			if !t.Met {
				mark = "MISSED"
			}
			ts = append(ts, fmt.Sprintf("%s %s (want %s, got %s)", t.Name, mark, t.Want, t.Got))
		}
		eff := "-"
		if r.Ideal > 0 {
			eff = fmt.Sprintf("%.2f", r.Efficiency)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.1f\t%s\t%s\n", r.Scenario, r.Database, r.Wall.Round(time.Millisecond),
			r.Ideal.Round(time.Millisecond), eff, r.APICalls, r.CPUPerEntity.Round(time.Microsecond), r.StatementsPerEntity,
			mib(r.MaxRSSBytes), strings.Join(ts, "; "))
	}
	return tw.Flush()
}
