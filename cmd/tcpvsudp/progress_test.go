package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

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
			if got := summary(&tc.res); got != tc.want {
				t.Errorf("summary(%s %s, metrics %+v, observed %v) = %q, want %q", tc.res.Experiment, tc.res.Transport, tc.res.Metrics, tc.res.Observed, got, tc.want)
			}
			if report.RequestResponse(tc.res.Experiment) || tc.res.Experiment == report.ExpRefused {
				if got := summary(&tc.res); strings.Contains(got, "lost") {
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
			if got := summary(&back); got != tc.want {
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
