// Command testsummary reads `go test -json` on stdin and prints what plain
// `go test` would (package results, and the output of failing tests), then a
// summary of every skipped test with its reason, so that a run that skipped
// tests says so and says how to make them run. It exits 1 when a test or a
// package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	buf := map[string][]string{} // package/test → output lines
	var skipped []string
	reasons := map[string]int{}
	failed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Fprintln(out, string(line)) // not test2json: pass it on (build errors)
			continue
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "build-fail":
			failed = true
		case "output":
			if e.Test == "" {
				if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS") {
					fmt.Fprint(out, e.Output)
				}
				continue
			}
			buf[key] = append(buf[key], e.Output)
		case "fail":
			failed = true
			for _, l := range buf[key] {
				fmt.Fprint(out, l)
			}
			delete(buf, key)
		case "skip":
			if e.Test != "" {
				reason := skipReason(buf[key])
				skipped = append(skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
				reasons[reason]++
			}
			delete(buf, key)
		case "pass":
			delete(buf, key)
		}
		out.Flush()
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		fmt.Fprintf(out, "\n%d tests were SKIPPED, so this was not the whole suite:\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintln(out, "  "+s)
		}
		fmt.Fprintln(out, "\nBy reason:")
		rs := make([]string, 0, len(reasons))
		for r := range reasons {
			rs = append(rs, r)
		}
		sort.Slice(rs, func(i, j int) bool { return reasons[rs[i]] > reasons[rs[j]] })
		for _, r := range rs {
			fmt.Fprintf(out, "  %4d  %s\n", reasons[r], r)
		}
		fmt.Fprintln(out, "\nTo run them: set ZUORA_OPENAPI to Zuora's OpenAPI file (default ../shared/zuora/spec/zuora_openapi.yaml next to the"+
			"\nproject), install Chromium for the admin page's browser test, and run with CI=true, which turns every skip into a failure (.ci/run does all of it).")
	}
	if failed {
		out.Flush()
		os.Exit(1)
	}
}

// skipReason is the message the test gave to t.Skip (the line after "--- SKIP"
// or the last log line), trimmed of its file:line prefix.
func skipReason(lines []string) string {
	reason := "no reason given"
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, msg, ok := strings.Cut(l, ".go:"); ok {
			if _, rest, ok := strings.Cut(msg, ": "); ok {
				l = rest
			}
		}
		reason = l
		break
	}
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	return reason
}
