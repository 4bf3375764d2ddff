package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestProgressSummary: a progress line says what the cell measured. Requests with
// no reply within --timeout are unanswered (both transports), never lost; refused
// and close say what the property showed, not "lost 1" for refused's probe.
func TestProgressSummary(t *testing.T) {
	p50 := int64(14100)
	rr := func(exp, tr string, sent, timeouts uint64) report.Result {
		return report.Result{Experiment: exp, Transport: tr, Params: report.Params{Size: 64},
			Metrics: report.Metrics{SentMsgs: sent, RecvMsgs: sent - timeouts, Timeouts: timeouts, LostMsgs: timeouts,
				MsgsPerS: 47089, RTT: &report.LatencyStats{P50: &p50}}}
	}
	cell := func(exp, tr string, m report.Metrics, obs map[string]any) report.Result {
		return report.Result{Experiment: exp, Transport: tr, Params: report.Params{Size: 1024}, Metrics: m, Observed: obs}
	}
	probe := report.Metrics{SentMsgs: 1, LostMsgs: 1} // refused's one datagram, as refusedAt counts it
	for _, tc := range []struct {
		name string
		res  report.Result
		want string
	}{
		{"clients tcp", rr(report.ExpClients, "tcp", 47090, 1), "RTT p50 14.1 us, 47089/s, unanswered 1 of 47090"},
		{"pingpong udp", rr(report.ExpPingPong, "udp", 1000, 3), "RTT p50 14.1 us, 47089/s, unanswered 3 of 1000"},
		{"connect tcp", rr(report.ExpConnect, "tcp", 500, 0), "first answer p50 14.1 us, 47089/s, unanswered 0 of 500"},
		{"refused tcp", cell(report.ExpRefused, "tcp", report.Metrics{},
			map[string]any{"refused": true, "refused_at": "dial", "detect_ns": int64(35000), "dial_ns": int64(35000)}),
			"refused at dial after 35.0 us"},
		{"refused udp", cell(report.ExpRefused, "udp", probe,
			map[string]any{"refused": true, "refused_at": "after send", "detect_ns": int64(120000), "first_send_error": ""}),
			"dial succeeded; ECONNREFUSED 120 us after the send"},
		{"refused udp, told nothing", cell(report.ExpRefused, "udp", probe,
			map[string]any{"refused": false, "refused_at": "never", "waited_ns": int64(1e9)}),
			"dial and send succeeded; no refusal within 1.00 s"},
		{"close tcp", cell(report.ExpClose, "tcp", report.Metrics{SentMsgs: 2, RecvMsgs: 2},
			map[string]any{"peer_close_seen": true, "peer_close_detect_ns": int64(61600), "peer_close_result": "end of stream (EOF)",
				"listener_closed_existing_answered": true}),
			"peer close: EOF after 61.6 us; listener closed: client still answered"},
		{"close udp", cell(report.ExpClose, "udp", report.Metrics{SentMsgs: 3, RecvMsgs: 1, Timeouts: 2, LostMsgs: 2},
			map[string]any{"peer_close_seen": false, "peer_close_waited_ns": int64(1e9), "peer_close_result": "nothing: still waiting after 1s",
				"listener_closed_existing_answered": false}),
			"peer close: nothing within 1.00 s; listener closed: client unanswered"},
		{"fanout udp", cell(report.ExpFanout, "udp", report.Metrics{SentMsgs: 100, RecvMsgs: 790, LostMsgs: 10},
			map[string]any{"receivers": 8}),
			"sent 100, received 790, lost 10; 1 observations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bench.Summary(&tc.res); got != tc.want {
				t.Errorf("summary(%s %s, metrics %+v, observed %v) = %q, want %q", tc.res.Experiment, tc.res.Transport, tc.res.Metrics, tc.res.Observed, got, tc.want)
			}
			if bench.RequestResponse(tc.res.Experiment) || tc.res.Experiment == report.ExpRefused {
				if got := bench.Summary(&tc.res); strings.Contains(got, "lost") {
					t.Errorf("summary of a %s cell says lost: %q", tc.res.Experiment, got)
				}
			}
			// A report read back from JSON holds json.Number, not int64: same line.
			b, err := json.Marshal(tc.res)
			if err != nil {
				t.Fatal(err)
			}
			var back report.Result
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&back); err != nil {
				t.Fatal(err)
			}
			if got := bench.Summary(&back); got != tc.want {
				t.Errorf("read back from JSON: summary = %q, want %q", got, tc.want)
			}
		})
	}
}

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
