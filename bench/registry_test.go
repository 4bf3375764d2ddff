package bench

import (
	"slices"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRegistryKinds: what the registry entries say of their experiments, which the
// command and the far end ask for instead of naming experiments: which count
// replies (unanswered, never lost), which run in the lab section and in what
// order, and the progress line of a cell of each kind.
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

	p50 := int64(21500)
	for _, tc := range []struct {
		res  report.Result
		want string
	}{
		{report.Result{Experiment: report.ExpPingPong, Transport: "udp",
			Metrics: report.Metrics{SentMsgs: 1000, Timeouts: 3, MsgsPerS: 45000, RTT: &report.LatencyStats{P50: &p50}}},
			"RTT p50 21.5 us, 45000/s, unanswered 3 of 1000"},
		{report.Result{Experiment: report.ExpConnect, Transport: "tcp",
			Metrics: report.Metrics{SentMsgs: 10, MsgsPerS: 9000, RTT: &report.LatencyStats{P50: &p50}}},
			"first answer p50 21.5 us, 9000/s, unanswered 0 of 10"},
		{report.Result{Experiment: report.ExpStream, Transport: "udp",
			Metrics: report.Metrics{SentMsgs: 200, LostMsgs: 50, GoodputBps: 1e9}},
			"goodput 1.00 Gbit/s (receiver), sent 200, lost 50 (25.00%)"},
		{report.Result{Experiment: report.ExpBoundaries, Transport: "tcp",
			Metrics: report.Metrics{SentMsgs: 5, RecvMsgs: 3, LostMsgs: 2}, Observed: map[string]any{"a": 1}},
			"sent 5, received 3, lost 2; 1 observations"},
		{report.Result{Experiment: report.ExpStream, Transport: "udp", Error: "dial: refused"}, "not measured: dial: refused"},
	} {
		if got := Summary(&tc.res); got != tc.want {
			t.Errorf("Summary(%s over %s) = %q, want %q", tc.res.Experiment, tc.res.Transport, got, tc.want)
		}
	}
}
