package render

import (
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRenderBothEnds: a remote run's markdown says what each end's data sockets got
// and how its datagrams left, this host's and the server's.
func TestRenderBothEnds(t *testing.T) {
	r := testReport()
	r.Env.Link = report.Link{Kind: "remote", Addr: "192.0.2.10:5299"}
	sk := report.Sock{RecvBuffer: 2097152, SendBuffer: 212992, Batch: 1, DataSockets: 2, SendCalls: ptr[uint64](503), SentDatagrams: ptr[uint64](503)}
	r.Env.Sockets = map[string]report.Sock{"udp": sk}
	r.Env.Peer = &report.Env{Host: "far", OS: "linux", Sockets: map[string]report.Sock{"udp": sk}}
	var b strings.Builder
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"granted to this host's data sockets: udp receive 2,097,152 B, send 212,992 B, 503 datagrams sent in 503 calls (batch 1, without GSO).",
		"To the server's: udp receive 2,097,152 B, send 212,992 B, 503 datagrams sent in 503 calls (batch 1, without GSO).",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}

// TestRenderDirection: the tables say which way a stream ran. Bidir cells beside
// forward ones get a direction column; a report of bidir cells only says in its
// note that each figure is both directions summed. A forward-only report says
// nothing of direction (the golden files).
func TestRenderDirection(t *testing.T) {
	r := testReport()
	r.Properties = nil
	var fwd []report.Result
	for _, res := range r.Results {
		if res.Experiment == report.ExpStream {
			fwd = append(fwd, res)
		}
	}
	if len(fwd) == 0 {
		t.Fatal("the test report has no stream results")
	}
	var bidir []report.Result
	for _, res := range fwd {
		res.Params.Bidir = true
		res.Observed = map[string]any{"forward_goodput_bps": 1e6, "reverse_goodput_bps": 2e6}
		bidir = append(bidir, res)
	}
	r.Results = append(append([]report.Result(nil), fwd...), bidir...)
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		for _, want := range []string{"direction", "forward", "bidir", "forward goodput", "reverse goodput"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: forward and bidir cells: no %q:\n%s", name, want, out)
			}
		}
	}
	r.Results = bidir
	text, md = renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		if !strings.Contains(out, "both ways at once") || !strings.Contains(out, "summed") {
			t.Errorf("%s: bidir cells only: the note does not say both ways, summed:\n%s", name, out)
		}
	}
}

// TestRenderRxUnknown: a far end that did not say how it received (an older server)
// is reported unknown, beside this host's mode.
func TestRenderRxUnknown(t *testing.T) {
	r := &report.Report{Env: report.Env{
		Sockets: map[string]report.Sock{"udp": {RecvBuffer: 1, SendBuffer: 1, Rx: map[string]string{"pingpong": "poller"}}},
		Peer:    &report.Env{Sockets: map[string]report.Sock{"udp": {RecvBuffer: 1, SendBuffer: 1}}},
	}}
	got := mdIntro(r)
	for _, want := range []string{"pingpong receives poller", "its receive mode is unknown"} {
		if !strings.Contains(got, want) {
			t.Errorf("markdown intro %q: want it to say %q", got, want)
		}
	}
	r.Env.Peer.Sockets["udp"] = report.Sock{RecvBuffer: 1, SendBuffer: 1, Rx: map[string]string{"pingpong": "blocking"}}
	if got := mdIntro(r); strings.Contains(got, "unknown") || !strings.Contains(got, "pingpong receives blocking") {
		t.Errorf("markdown intro %q: want the server's mode, not unknown", got)
	}
}

// TestSocketsTextRx: the report says how each experiment's endpoints received.
func TestSocketsTextRx(t *testing.T) {
	got := socketsText([]string{"udp"}, map[string]report.Sock{"udp": {RecvBuffer: 1, SendBuffer: 1, Rx: map[string]string{"pingpong": "blocking"}}})
	if !strings.Contains(got, "pingpong receives blocking") {
		t.Errorf("socketsText = %q, want it to say pingpong receives blocking", got)
	}
}
