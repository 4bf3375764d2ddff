package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestProgressLine: a finished cell's line, as a non-terminal stderr shows it.
func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	pr := &progress{w: &b}
	res := report.Result{Experiment: report.ExpRefused, Transport: "udp", Params: report.Params{Size: 1024},
		Metrics:  report.Metrics{SentMsgs: 1, LostMsgs: 1},
		Observed: map[string]any{"refused": true, "refused_at": "after send", "detect_ns": int64(120000)}}
	pr.event(bench.ProgressEvent{Index: 1, Total: 20, Done: true, Result: &res})
	want := "[1/20] refused udp size=1024: dial succeeded; ECONNREFUSED 120 us after the send\n"
	if got := b.String(); got != want {
		t.Errorf("progress line = %q, want %q", got, want)
	}
}

// TestProgressWholeRun: one count over the whole run, the emulated-link section
// named when it starts and counted after the suite's cells; the first line gives
// the estimate of both.
func TestProgressWholeRun(t *testing.T) {
	var b bytes.Buffer
	suite := progressSection{est: bench.Estimate{Cells: []time.Duration{3 * time.Second, 2 * time.Second}, Known: true}}
	lab := progressSection{name: "emulated-link section", about: "across a link with loss=2%", label: "lab: ",
		est: bench.Estimate{Cells: []time.Duration{time.Second}, Setup: 500 * time.Millisecond, Known: true}}
	pr := newProgress(&b, suite, lab)
	res := func(exp, tr string) *report.Result {
		return &report.Result{Experiment: exp, Transport: tr, Params: report.Params{Size: 1024}, Error: "boom"}
	}
	for i, tr := range []string{"tcp", "udp"} {
		pr.event(bench.ProgressEvent{Index: i + 1, Total: 2, Result: res("stream", tr)})
		pr.event(bench.ProgressEvent{Index: i + 1, Total: 2, Done: true, Result: res("stream", tr)})
	}
	pr.section(lab)
	pr.event(bench.ProgressEvent{Index: 1, Total: 1, Result: res("hol", "tcp")})
	pr.event(bench.ProgressEvent{Index: 1, Total: 1, Done: true, Result: res("hol", "tcp")})
	pr.close()
	want := `tcpvsudp: about 7s: 2 cells, then 1 in the emulated-link section (Ctrl-C stops early and keeps what
  was measured)
[1/3] stream tcp size=1024: not measured: boom
[2/3] stream udp size=1024: not measured: boom
emulated-link section: 1 cells, about 2s, across a link with loss=2%
[3/3] hol tcp size=1024: not measured: boom
`
	if got := b.String(); got != want {
		t.Errorf("progress:\n%s\nwant:\n%s", got, want)
	}
}

// TestProgressLeft: the time left is the estimate of the cells after the running
// one, and of what the running one should still take.
func TestProgressLeft(t *testing.T) {
	var b bytes.Buffer
	pr := newProgress(&b, progressSection{est: bench.Estimate{Cells: []time.Duration{3 * time.Second, 2 * time.Second, 4 * time.Second}, Known: true}})
	res := &report.Result{Experiment: "stream", Transport: "tcp", Params: report.Params{Size: 64}}
	pr.event(bench.ProgressEvent{Index: 1, Total: 3, Done: false, Result: res})
	pr.event(bench.ProgressEvent{Index: 1, Total: 3, Done: true, Result: res})
	pr.event(bench.ProgressEvent{Index: 2, Total: 3, Done: false, Result: res})
	start := pr.cellStart
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  time.Duration
	}{
		{"cell started", 0, 6 * time.Second},
		{"cell half done", time.Second, 5 * time.Second},
		{"cell overdue", 5 * time.Second, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr.mu.Lock()
			got, ok := pr.left(start.Add(tc.after))
			pr.mu.Unlock()
			if !ok || got != tc.want {
				t.Errorf("left %v into the second cell = %v, %v; want %v", tc.after, got, ok, tc.want)
			}
		})
	}
	if got := pr.status(start.Add(time.Second)); got != " stream tcp size=64, about 5s left" {
		t.Errorf("status = %q", got)
	}
}

// TestWarningsOnce: a warning is printed once, after the tables on stdout; stderr
// says where it is when stdout is not the terminal.
func TestWarningsOnce(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		t.Run(fmt.Sprintf("verbose=%v", verbose), func(t *testing.T) {
			var out, errb bytes.Buffer
			// An 8192-byte UDP datagram exceeds a 1500-byte MTU: a warning.
			args := []string{"run", "-e", "pingpong", "-t", "udp", "--sizes", "8192", "--duration", "10ms", "--warmup", "0", "--no-files"}
			if verbose {
				args = append(args, "-v")
			}
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Fatalf("run: %v\nstderr:\n%s", err, errb.String())
			}
			for _, l := range strings.Split(errb.String(), "\n") { // wrapped like stdout: 100 columns off a terminal
				if len(l) > 100 {
					t.Errorf("stderr line of %d columns, want at most 100: %q", len(l), l)
				}
			}
			const mtu = "exceed a 1500-byte MTU"
			inOut, inErr := strings.Count(out.String(), mtu), strings.Count(strings.Join(strings.Fields(errb.String()), " "), mtu) // stderr wraps
			switch {
			case verbose && (inOut != 1 || inErr != 0 || !strings.Contains(errb.String(), "they follow the tables on stdout")):
				t.Errorf("-v: the MTU warning %d times on stdout, %d on stderr; want once on stdout, and a pointer to it on stderr\nstdout:\n%s\nstderr:\n%s",
					inOut, inErr, out.String(), errb.String())
			case !verbose && (inOut != 0 || inErr != 1 || !strings.Contains(out.String(), "and 1 warning")):
				t.Errorf("the MTU warning %d times on stdout, %d on stderr; want once on stderr, counted on stdout\nstdout:\n%s\nstderr:\n%s",
					inOut, inErr, out.String(), errb.String())
			}
		})
	}
}

// TestCollectWarningsOnce: stderr's list names each warning once, the emulated-link
// section's too. A stream cell's batched and textbook UDP I/O share a prefix: their
// one MTU warning was listed twice, word for word.
func TestCollectWarningsOnce(t *testing.T) {
	const mtu = "8192-byte datagrams exceed a 1500-byte MTU"
	const jitter = "jitter of stream over tcp: user-space arrival times"
	udp := func(io string, ws ...string) report.Result {
		return report.Result{Experiment: "stream", Transport: "udp", Params: report.Params{Size: 8192, IO: io}, Warnings: ws}
	}
	rep := &report.Report{
		Warnings: []string{jitter},
		Results:  []report.Result{udp(report.IOBatched, mtu), udp(report.IOTextbook, mtu)},
		Lab: &report.Report{
			Warnings: []string{jitter, "link queue full"},
			Results:  []report.Result{udp(report.IOBatched, mtu), {Experiment: "hol", Transport: "tcp", Params: report.Params{Size: 200}, Error: "timed out"}},
		},
	}
	want := []string{
		jitter,
		"stream udp size=8192: " + mtu,
		"lab: link queue full",
		"lab stream udp size=8192: " + mtu,
		"lab hol tcp size=200: not measured: timed out",
	}
	if got := collectWarnings(rep); !slices.Equal(got, want) {
		t.Errorf("collectWarnings =\n %q\nwant\n %q", got, want)
	}
}
