package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRegistryKinds: what the registry entries say of their experiments, which the
// command and the far end ask for instead of naming experiments: which count
// replies (unanswered, never lost), which run in the lab section and in what
// order.
func TestRegistryKinds(t *testing.T) {
	var rr []string
	for _, x := range Experiments() {
		if RequestResponse(x) {
			rr = append(rr, x)
		}
	}
	if want := []string{report.ExpClose, report.ExpClients, report.ExpPingPong, report.ExpConnect}; !slices.Equal(rr, want) {
		t.Errorf("request/response experiments %q, want %q", rr, want)
	}
	if RequestResponse("no-such") {
		t.Error("RequestResponse of an unregistered name: true, want false")
	}
	if got, want := LabSection(), []string{report.ExpStream, report.ExpHOL, report.ExpBottleneck}; !slices.Equal(got, want) {
		t.Errorf("LabSection() = %q, want %q", got, want)
	}

}

// TestSummary: a progress line says what the cell measured. Requests with
// no reply within --timeout are unanswered (both transports), never lost; refused
// and close say what the property showed, not "lost 1" for refused's probe.
func TestSummary(t *testing.T) {
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
		{"stream udp", cell(report.ExpStream, "udp", report.Metrics{SentMsgs: 200, LostMsgs: 50, GoodputBps: 1e9}, nil),
			"goodput 1.00 Gbit/s (receiver), sent 200, lost 50 (25.00%)"},
		{"stream tcp, failed", report.Result{Experiment: report.ExpStream, Transport: "tcp", Error: "dial: refused"},
			"not measured: dial: refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summary(&tc.res); got != tc.want {
				t.Errorf("summary(%s %s, metrics %+v, observed %v) = %q, want %q", tc.res.Experiment, tc.res.Transport, tc.res.Metrics, tc.res.Observed, got, tc.want)
			}
			if RequestResponse(tc.res.Experiment) || tc.res.Experiment == report.ExpRefused {
				if got := Summary(&tc.res); strings.Contains(got, "lost") {
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
			if got := Summary(&back); got != tc.want {
				t.Errorf("read back from JSON: summary = %q, want %q", got, tc.want)
			}
		})
	}
}
