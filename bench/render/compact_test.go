package render

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// noLabReport is the reference run as `tcpvsudp run --no-lab` reports it: no
// emulated-link section, and where a lab property row replaced a loopback one
// (ordering), the loopback row as such a run of the same build words it.
func noLabReport(tb testing.TB) *report.Report {
	tb.Helper()
	r := referenceReport(tb)
	r.Lab = nil
	var props []report.Property
	for _, p := range r.Properties {
		switch {
		case !strings.HasSuffix(p.Property, labSuffix):
			props = append(props, p)
		case p.ID == "ordering":
			props = append(props, report.Property{ID: "ordering", Property: "ordering and duplicates",
				Claim: "TCP delivers in order and once; UDP may reorder and duplicate (loopback rarely does: the lab shows it)",
				TCP:   "0 reordered, 0 duplicated", UDP: "0 reordered, 0 duplicated",
				Evidence: map[string]any{"experiment": "stream", "link": "loopback",
					"tcp_dup_msgs": 0.0, "tcp_reordered_msgs": 0.0, "udp_dup_msgs": 0.0, "udp_reordered_msgs": 0.0}})
		}
	}
	r.Properties = props
	return r
}

// propertySections are the titles of the property experiments' sections, which
// only -v prints.
var propertySections = []string{
	"Refused connections (refused)", "Peer close (close)", "Many clients (clients)",
	"Message boundaries (boundaries)", "Slow receiver (slow-receiver)", "One sender, many receivers (fanout)",
	"Head-of-line blocking (hol)", "A congested link (bottleneck)",
}

func textLines(t *testing.T, r *report.Report, opts ...TextOption) []string {
	t.Helper()
	var b bytes.Buffer
	if err := Text(&b, r, opts...); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// TestTextCompact (issue 16): in a 100 x 40 terminal, a default run on loopback
// prints the header and the verdict first, then compact tables of the measurements,
// and ends with the verdict still on screen: at most 40 lines. Every table is one
// -v away, and the last line says so and where the full report is.
func TestTextCompact(t *testing.T) {
	// The reference run's figures are medians of 3 runs, some noisy: the last line says
	// what the mark means.
	const footer = "! = runs over 10% apart; -v: every table and 5 warnings; report: results/report.md"
	for _, tc := range []struct {
		name     string
		r        *report.Report
		width    int
		maxLines int // 0: no bound
		tables   []string
	}{
		{"no lab, 100 columns", noLabReport(t), 100, 40, []string{" stream ", " pingpong ", " connect "}},
		{"no lab, 80 columns", noLabReport(t), 80, 0, []string{" stream ", " pingpong ", " connect "}},
		{"lab, 100 columns", referenceReport(t), 100, 0, []string{" stream ", " pingpong ", " connect ", "Across an emulated link", " link vs measured "}},
		{"lab, 80 columns", referenceReport(t), 80, 0, []string{" stream ", " pingpong ", " connect ", "Across an emulated link", " link vs measured "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := textLines(t, tc.r, Width(tc.width), FullReport("results/report.md"))
			out := strings.Join(lines, "\n")
			if !strings.HasPrefix(lines[0], "tcpvsudp: ") {
				t.Errorf("first line %q, want the header", lines[0])
			}
			verdict := -1
			for i, l := range lines {
				if l == "Verdict" {
					verdict = i
					break
				}
				if strings.HasPrefix(l, "+") || strings.HasPrefix(l, " ") && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "  ") {
					t.Fatalf("a table before the verdict, at line %d:\n%s", i+1, out)
				}
			}
			if verdict < 0 || verdict > 6 {
				t.Fatalf("verdict title at line %d, want it right after the header:\n%s", verdict+1, out)
			}
			if tc.maxLines > 0 {
				if len(lines) > tc.maxLines {
					t.Errorf("%d lines, want at most %d:\n%s", len(lines), tc.maxLines, out)
				}
				if last := len(lines) - (tc.maxLines - 1); verdict < last { // a 40-row terminal shows 39 lines and the prompt
					t.Errorf("the verdict starts at line %d of %d: off a %d-row screen", verdict+1, len(lines), tc.maxLines)
				}
			}
			got := lines[len(lines)-1]
			if strings.HasPrefix(got, "  ") { // wrapped onto a second line
				got = lines[len(lines)-2] + " " + strings.TrimSpace(got)
			}
			if got != footer {
				t.Errorf("last line %q, want %q", got, footer)
			}
			for _, want := range tc.tables {
				if !strings.Contains(out, want) {
					t.Errorf("no %q table:\n%s", want, out)
				}
			}
			for _, title := range append(propertySections, "warning:", "Rate:", "Observed:", "What the link did") {
				if strings.Contains(out, title) {
					t.Errorf("%q printed without -v:\n%s", title, out)
				}
			}
			for i, l := range lines {
				if len(l) > tc.width {
					t.Errorf("line %d is %d columns wide:\n%s", i+1, len(l), l)
				}
				if strings.HasSuffix(l, " ") {
					t.Errorf("line %d ends in a space: %q", i+1, l)
				}
			}
		})
	}
}

// TestTextVerboseEveryTable: -v prints every section, every table and every
// warning, and no pointer to -v.
func TestTextVerboseEveryTable(t *testing.T) {
	r := referenceReport(t)
	for _, width := range []int{100, 80} {
		out := strings.Join(textLines(t, r, Width(width), Verbose(true), FullReport("results/report.md")), "\n")
		for _, want := range append(propertySections, "Throughput (stream)", "Round-trip time (pingpong)", "Connection setup (connect)",
			"Rate:", "Loss, order and jitter:", "Observed:", "Across an emulated link", "What the link did:", "What the transports measured:",
			"RTT p99.9 tcp", "transactions/s udp", "Properties in detail") {
			if !strings.Contains(out, want) {
				t.Errorf("width %d: -v lacks %q", width, want)
			}
		}
		if got, want := strings.Count(out, "\nwarning: "), len(warnings(r)); got != want {
			t.Errorf("width %d: -v prints %d warnings, want %d", width, got, want)
		}
		if strings.Contains(out, "-v: every table") {
			t.Errorf("width %d: -v points to -v", width)
		}
	}
}

// TestTextCompactNotMeasured: a cell without figures is not hidden by the compact
// rendering: a measurement's table says "not measured" and why below it; a
// property experiment, whose table only -v shows, gets one line that counts them.
func TestTextCompactNotMeasured(t *testing.T) {
	r := noLabReport(t)
	for i := range r.Results {
		res := &r.Results[i]
		switch {
		case res.Experiment == report.ExpClose && res.Transport == "udp":
			res.Error, res.Observed = "close over udp (size 1024): listen: address in use", nil
		case res.Experiment == report.ExpPingPong && res.Transport == "tcp" && res.Params.Size == 1024:
			res.Error = "pingpong over tcp (size 1024): dial: connection refused"
		}
	}
	out := strings.Join(textLines(t, r, Width(100)), "\n")
	for _, want := range []string{
		"\nPeer close (close): 1 cell not measured (-v says why)\n",
		"\nnot measured: tcp, size 1024 B: dial: connection refused\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^ 1024 B +not measured +[0-9.]+ us`).MatchString(out) {
		t.Errorf("the pingpong table has no 1024 B row saying tcp was not measured:\n%s", out)
	}
}

// TestLabWarningsShown: the emulated-link section's warnings, its own and its
// cells', are listed once with -v and in the markdown report, marked as the lab's;
// one the loopback run has too is not repeated. They were left out.
func TestLabWarningsShown(t *testing.T) {
	r := referenceReport(t)
	r.Warnings = append(r.Warnings, "shared warning")
	r.Lab.Warnings = append(r.Lab.Warnings, "shared warning", "the link's queue overflowed")
	r.Lab.Results[0].Warnings = append(r.Lab.Results[0].Warnings, "a lab cell's warning")
	var md bytes.Buffer
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(textLines(t, r, Width(100), Verbose(true)), "\n")
	for name, out := range map[string]string{"-v": text, "markdown": md.String()} {
		res := r.Lab.Results[0]
		cell := fmt.Sprintf("lab %s %s, %s: a lab cell's warning", res.Experiment, res.Transport, paramsLabel(res.Params))
		out = strings.Join(strings.Fields(out), " ") // -v wraps its lines
		for _, want := range []string{"shared warning", "lab: the link's queue overflowed", cell} {
			if n := strings.Count(out, want); n != 1 {
				t.Errorf("%s: %q %d times, want once", name, want, n)
			}
		}
	}
}
