package farend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestFarConnect: connect against a real server session, each transaction a new
// client of the far end's listen-mode data path. Known answer: 300 transactions,
// each answered (within a 5 s timeout: a loaded machine is slow, not lossy); the far
// end accepted one TCP socket per measured client (the warm-up's excluded) and
// served every UDP client from one socket.
func TestFarConnect(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpConnect}, Transports: []string{"tcp", "udp"},
		Sizes: []int{64}, Count: 300, Warmup: 50 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want connect × tcp, udp", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		var p50 time.Duration
		if m.RTT != nil && m.RTT.P50 != nil {
			p50 = time.Duration(*m.RTT.P50)
		}
		t.Logf("connect %s: sent %d, answered %d, lost %d, server sockets %d, first answer p50 %v, server CPU %v, warnings %q",
			r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets, p50, m.ServerCPUSec, r.Warnings)
		if r.Error != "" {
			t.Errorf("connect %s: %s", r.Transport, r.Error)
			continue
		}
		want := 300
		if r.Transport == "udp" {
			want = 1
		}
		if m.SentMsgs != 300 || m.RecvMsgs != 300 || m.LostMsgs != 0 || m.ServerSockets != want {
			t.Errorf("connect %s: sent %d, answered %d, lost %d, server sockets %d; want 300 answered by %d server socket(s)",
				r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets, want)
		}
		if p50 <= 0 || m.ServerCPUSec == nil {
			t.Errorf("connect %s: first answer p50 %v, server CPU %v; want both", r.Transport, p50, m.ServerCPUSec)
		}
	}
}

// TestFarClients: 50 clients of a real server session at once, 20 round trips each,
// every one answered (within a 5 s timeout); the far end accepted one TCP socket per client and served
// every UDP client from one socket, and reported its own footprint. (Here the far
// end shares this process, so its descriptor and goroutine counts include the
// clients'; the two-namespace test in cmd checks them exactly.)
func TestFarClients(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpClients}, Transports: []string{"tcp", "udp"},
		Clients: 50, Count: 20, Warmup: bench.NoWarmup, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		m, o := r.Metrics, r.Observed
		t.Logf("clients %s: sent %d, answered %d, server sockets %d, observed %v, warnings %q", r.Transport, m.SentMsgs, m.RecvMsgs, m.ServerSockets, o, r.Warnings)
		if r.Error != "" {
			t.Errorf("clients %s: %s", r.Transport, r.Error)
			continue
		}
		want := 50
		if r.Transport == "udp" {
			want = 1
		}
		if m.SentMsgs != 1000 || m.RecvMsgs != 1000 || m.ServerSockets != want || o["footprint_of"] == nil || o["server_goroutines"] == nil {
			t.Errorf("clients %s: sent %d, answered %d, server sockets %d, footprint %v; want 1000 answered by %d server socket(s), the far end's footprint",
				r.Transport, m.SentMsgs, m.RecvMsgs, m.ServerSockets, o["footprint_of"], want)
		}
	}
}

// TestClientsNotListening: the listener session.Clients makes of a data path that
// is not in listen mode fails at once, naming why, instead of waiting; it has no
// address, and closing it twice is no error.
func TestClientsNotListening(t *testing.T) {
	c := session{clientPeer{d: &remote.Data{}}}.Clients()
	if _, err := c.Accept(context.Background()); !errors.Is(err, remote.ErrNotListening) {
		t.Errorf("Accept = %v, want remote.ErrNotListening", err)
	}
	if a := c.Addr(); a != nil {
		t.Errorf("Addr = %v, want none", a)
	}
	if err1, err2 := c.Close(), c.Close(); err1 != nil || err2 != nil {
		t.Errorf("Close twice: %v, %v", err1, err2)
	}
	if w := (session{clientPeer{d: &remote.Data{}}}).ClientWarnings(); w != nil {
		t.Errorf("ClientWarnings of a TCP data path = %q, want none", w)
	}
}
