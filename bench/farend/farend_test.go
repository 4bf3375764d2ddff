package farend

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

var testKey = []byte("farend test key, 32 bytes long!!")

// startServer runs a tcpvsudp serve equivalent on loopback with Runner, and stops
// it when the test ends.
func startServer(t *testing.T, lim remote.Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &remote.Server{Key: testKey, Runner: Runner{}, Limits: lim}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return ln.Addr().String()
}

// TestFarPingPong: pingpong run through a Far against a real server session: every
// request crosses the authenticated, validated data path and is answered by the
// server half, for TCP and UDP, and the report says the run was remote.
func TestFarPingPong(t *testing.T) {
	addr := startServer(t, remote.Limits{})
	far, err := Dial(context.Background(), addr, testKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Transports: []string{"tcp", "udp"}, Sizes: []int{64, 1024},
		Count: 500, Warmup: 20 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != addr {
		t.Errorf("link %+v, want remote %s", rep.Env.Link, addr)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want pingpong × 2 transports × 2 sizes", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("%s %d B: sent %d recv %d lost %d late %d, server sockets %d, warnings %q", r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.LateMsgs, m.ServerSockets, r.Warnings)
		if r.Error != "" {
			t.Errorf("%s %d B: %s", r.Transport, r.Params.Size, r.Error)
			continue
		}
		if m.SentMsgs != 500 || m.RecvMsgs+m.LostMsgs != 500 || m.RecvMsgs < 495 {
			t.Errorf("%s %d B: sent %d recv %d lost %d, want 500 sent, (nearly) all answered", r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs)
		}
		if m.ServerSockets != 1 {
			t.Errorf("%s: server sockets %d, want 1 (the server half's)", r.Transport, m.ServerSockets)
		}
		if m.CorruptMsgs+m.MalformedMsgs+m.ForeignMsgs != 0 {
			t.Errorf("%s: corrupt %d malformed %d foreign %d, want none", r.Transport, m.CorruptMsgs, m.MalformedMsgs, m.ForeignMsgs)
		}
	}
}

// TestFarRefused: a cell the server refuses (here: longer than its --max-duration)
// fails with the server's reason, naming the limit, and the session serves the next.
func TestFarRefused(t *testing.T) {
	addr := startServer(t, remote.Limits{MaxDuration: 2 * time.Second})
	far, err := Dial(context.Background(), addr, testKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Transports: []string{"udp"}, Sizes: []int{64},
		Duration: 5 * time.Second, Warmup: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; !strings.Contains(r.Error, "max-duration") {
		t.Errorf("error %q, want the server's refusal naming max-duration", r.Error)
	}
	rep, err = bench.Run(context.Background(), bench.Plan{Far: far, Transports: []string{"udp"}, Sizes: []int{64},
		Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Error != "" || r.Metrics.RecvMsgs == 0 {
		t.Errorf("after a refusal: error %q, recv %d; want the session to serve the next test", r.Error, r.Metrics.RecvMsgs)
	}
}

// TestRunnerCheck: bench's experiments are named "bench.<name>" on the wire; an
// unknown one of that family is refused naming what the server runs, and any other
// name goes to the fallback runner (remote's own stream test).
func TestRunnerCheck(t *testing.T) {
	base := remote.TestRequest{Transport: "udp", Size: 64, Duration: time.Second, Streams: 1, Direction: remote.Bidir}
	for _, tc := range []struct {
		exp  string
		size int
		want string // "" = accepted
	}{
		{"bench.pingpong", 64, ""},
		{"bench.pingpong", 40, "size"},
		{"bench.teleport", 64, "bench.pingpong"},
		{"pingpong", 64, "stream"}, // not ours: the fallback runs only "stream"
		{remote.ExpStream, 64, ""},
	} {
		req := base
		req.Experiment, req.Size = tc.exp, tc.size
		err := Runner{}.Check(req)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%s, %d B) = %v, want %q", tc.exp, tc.size, err, tc.want)
		}
	}
}
