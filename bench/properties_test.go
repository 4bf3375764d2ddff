package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRunPropertyExperiments runs the six property experiments end to end and checks
// that each gives its properties row, for both transports, from measured numbers.
func TestRunPropertyExperiments(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every property experiment")
	}
	p := Plan{Experiments: []string{report.ExpRefused, report.ExpClose, report.ExpClients, report.ExpBoundaries, report.ExpSlowReceiver, report.ExpFanout},
		Duration: 300 * time.Millisecond, Clients: 20, Receivers: 3, Count: 0, Warmup: NoWarmup, Drain: 300 * time.Millisecond,
		// A round trip that must be answered (close's before the listener closes) is
		// an error when it times out: the timeout is a hang guard. Those that must not
		// be answered end on the ICMP refusal.
		Timeout: patience}
	rep, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s %s: %s", r.Experiment, r.Transport, r.Error)
		}
		if len(r.Observed) == 0 {
			t.Errorf("%s %s: nothing observed", r.Experiment, r.Transport)
		}
	}
	ids := map[string]report.Property{}
	for _, pr := range rep.Properties {
		ids[pr.ID] = pr
	}
	for _, id := range []string{"refused", "close", "per-client-socket", "boundaries", "flow-control", "fanout"} {
		pr, ok := ids[id]
		if !ok {
			t.Errorf("no %q row; rows: %v", id, rep.Properties)
			continue
		}
		if pr.TCP == "" || pr.UDP == "" || len(pr.Evidence) < 3 {
			t.Errorf("%s: tcp %q udp %q evidence %v: want both sides and evidence", id, pr.TCP, pr.UDP, pr.Evidence)
		}
	}
}

func TestHonestyWarnings(t *testing.T) {
	tests := []struct {
		name string
		r    report.Result
		want string
	}{
		{"udp fragments", report.Result{Experiment: report.ExpStream, Transport: "udp", Params: report.Params{Size: 8192}, Metrics: report.Metrics{SentMsgs: 1, RecvMsgs: 1}}, "6 IP fragments"},
		{"udp fits", report.Result{Experiment: report.ExpStream, Transport: "udp", Params: report.Params{Size: 1472}, Metrics: report.Metrics{SentMsgs: 1, RecvMsgs: 1}}, ""},
		{"tcp large", report.Result{Experiment: report.ExpStream, Transport: "tcp", Params: report.Params{Size: 8192}, Metrics: report.Metrics{SentMsgs: 1, RecvMsgs: 1}}, ""},
		{"identity broken", report.Result{Experiment: report.ExpStream, Transport: "udp", Params: report.Params{Size: 64}, Metrics: report.Metrics{SentMsgs: 10, RecvMsgs: 9, LostMsgs: 2}}, "does not add up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := strings.Join(honesty(tc.r, report.Link{Kind: "loopback"}), "\n")
			if (tc.want == "") != (w == "") || !strings.Contains(w, tc.want) {
				t.Fatalf("warnings %q, want %q", w, tc.want)
			}
		})
	}
}
