package farend

import (
	"context"
	"math"
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

// dialServer starts a server with lim (startServer) and opens a session with it,
// closed when the test ends.
func dialServer(t *testing.T, lim remote.Limits) (*Far, string) {
	t.Helper()
	addr := startServer(t, lim)
	far, err := Dial(context.Background(), addr, testKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { far.Close() })
	return far, addr
}

// TestFarCells: stream and pingpong run through a Far against a real server
// session: every message crosses the authenticated, validated data path, the
// stream's receiver at the server accounts each one (paced on loopback: all
// received, once, in order), every request is answered, for TCP and UDP, and the
// report says the run was remote.
func TestFarCells(t *testing.T) {
	far, addr := dialServer(t, remote.Limits{})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{bench.ExpStream, bench.ExpPingPong}, Transports: []string{"tcp", "udp"}, Sizes: []int{64, 1024},
		Streams: 2, RateBps: 20e6, Count: 500, Warmup: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Drain: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != addr {
		t.Errorf("link %+v, want remote %s", rep.Env.Link, addr)
	}
	if len(rep.Results) != 8 {
		t.Fatalf("%d results, want stream and pingpong × 2 transports × 2 sizes", len(rep.Results))
	}
	if rep.Env.Peer == nil || rep.Env.Peer.Kernel == "" || rep.Env.Peer.CPUs == 0 {
		t.Errorf("peer env %+v, want the server host's", rep.Env.Peer)
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("%s %s %d B: sent %d recv %d lost %d late %d goodput %.4g, server sockets %d, warnings %q", r.Experiment, r.Transport, r.Params.Size,
			m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.LateMsgs, m.GoodputBps, m.ServerSockets, r.Warnings)
		if r.Error != "" {
			t.Errorf("%s %s %d B: %s", r.Experiment, r.Transport, r.Params.Size, r.Error)
			continue
		}
		if m.ServerCPUSec == nil || *m.ServerCPUSec <= 0 {
			t.Errorf("%s %s: server CPU %v, want the server half's", r.Experiment, r.Transport, m.ServerCPUSec)
		}
		if m.CorruptMsgs+m.MalformedMsgs+m.ForeignMsgs != 0 {
			t.Errorf("%s %s: corrupt %d malformed %d foreign %d, want none", r.Experiment, r.Transport, m.CorruptMsgs, m.MalformedMsgs, m.ForeignMsgs)
		}
		switch r.Experiment {
		case bench.ExpPingPong:
			if m.SentMsgs != 500 || m.RecvMsgs+m.LostMsgs != 500 || m.RecvMsgs < 495 || m.ServerSockets != 1 {
				t.Errorf("pingpong %s: sent %d recv %d lost %d sockets %d, want 500 sent, (nearly) all answered by 1 socket", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			}
		case bench.ExpStream:
			if m.SentMsgs != 1000 || m.RecvMsgs != 1000 || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.ServerSockets != 2 {
				t.Errorf("stream %s: sent %d recv %d lost %d dup %d reordered %d sockets %d, want 1000 received once, in order, by 2 sockets",
					r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets)
			}
			if m.GoodputBps < 0.5*20e6 || m.GoodputBps > 1.1*20e6 {
				t.Errorf("stream %s: goodput %.4g, want about the paced 20 Mbit/s (at most +10%%)", r.Transport, m.GoodputBps)
			}
			checkFarGoodput(t, "stream "+r.Transport, m, r.Params.Size)
		}
	}
}

// TestFarReverse: with --reverse the server's senders stream to this host, which
// accounts every message: paced on loopback, all received once and in order; the
// sender's rate is the server's report. Also a time-bound (not counted) run.
func TestFarReverse(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	for _, p := range []bench.Plan{
		{Count: 500},
		{Duration: 300 * time.Millisecond},
	} {
		p.Far, p.Reverse, p.Experiments, p.Transports = far, true, []string{bench.ExpStream}, []string{"tcp", "udp"}
		p.Sizes, p.Streams, p.RateBps, p.Warmup, p.Drain = []int{1024}, 2, 20e6, 20*time.Millisecond, 500*time.Millisecond
		rep, err := bench.Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			m := r.Metrics
			t.Logf("reverse %s (count %d, %v): sent %d recv %d lost %d send rate %.4g goodput %.4g, warnings %q",
				r.Transport, p.Count, p.Duration, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.SendRateBps, m.GoodputBps, r.Warnings)
			if r.Error != "" {
				t.Errorf("reverse %s: %s", r.Transport, r.Error)
				continue
			}
			if m.SentMsgs == 0 || m.RecvMsgs != m.SentMsgs || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.ServerSockets != 2 {
				t.Errorf("reverse %s: sent %d recv %d lost %d dup %d reordered %d sockets %d, want all received once, in order, from 2 server sockets",
					r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets)
			}
			if p.Count > 0 && m.SentMsgs != 1000 {
				t.Errorf("reverse %s: sent %d, want 2 streams × 500", r.Transport, m.SentMsgs)
			}
			// Never above the pace; below it only as far as a loaded host falls behind
			// (the pacer's precision has its own test in bench).
			if m.SendRateBps < 0.5*20e6 || m.SendRateBps > 1.05*20e6 {
				t.Errorf("reverse %s: send rate %.4g, want the paced 20 Mbit/s (at most +5%%)", r.Transport, m.SendRateBps)
			}
			checkFarGoodput(t, "reverse "+r.Transport, m, r.Params.Size)
		}
	}
}

// TestFarBidir: with --bidir both ends send at once through a real server session,
// a path per stream each way: paced at 20 Mbit/s per direction on loopback, each
// direction's 2 × 500 messages are received once and in order by its receiver, and
// the cell's figures are the two directions' sums. Also a time-bound run.
func TestFarBidir(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	for _, p := range []bench.Plan{{Count: 500}, {Duration: 300 * time.Millisecond}} {
		p.Far, p.Bidir, p.Experiments, p.Transports = far, true, []string{bench.ExpStream}, []string{"tcp", "udp"}
		p.Sizes, p.Streams, p.RateBps, p.Warmup, p.Drain = []int{1024}, 2, 20e6, 20*time.Millisecond, 500*time.Millisecond
		checkFarBidir(t, p)
	}
}

// checkFarBidir runs p, a paced bidir plan of 2 streams, and checks each cell: every
// message received once and in order both ways (with a count, exactly 2 × Count),
// each direction at about the pace, the cell the directions' sum.
func checkFarBidir(t *testing.T, p bench.Plan) {
	t.Helper()
	rep, err := bench.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want one bidir cell per transport", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("bidir %s (count %d, %v): sent %d recv %d lost %d goodput %.4g (forward %v, reverse %v), server sockets %d, warnings %q", r.Transport,
			p.Count, p.Duration, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, r.Observed["forward_goodput_bps"], r.Observed["reverse_goodput_bps"], m.ServerSockets, r.Warnings)
		if r.Error != "" || !r.Params.Bidir {
			t.Errorf("bidir %s: error %q, params %+v", r.Transport, r.Error, r.Params)
			continue
		}
		var goodput float64
		var sentBoth uint64
		for _, dir := range []string{"forward", "reverse"} {
			n := func(k string) float64 {
				switch v := r.Observed[dir+"_"+k].(type) {
				case uint64:
					return float64(v)
				case float64:
					return v
				}
				t.Errorf("bidir %s: observed %s_%s = %v, want a number", r.Transport, dir, k, r.Observed[dir+"_"+k])
				return -1
			}
			sent := n("sent_msgs")
			if sent <= 0 || (p.Count > 0 && sent != float64(2*p.Count)) || n("recv_msgs") != sent || n("lost_msgs") != 0 || n("dup_msgs") != 0 || n("reordered_msgs") != 0 {
				t.Errorf("bidir %s %s: sent %v recv %v lost %v dup %v reordered %v; want every message (2 streams × count %d) received once, in order",
					r.Transport, dir, sent, n("recv_msgs"), n("lost_msgs"), n("dup_msgs"), n("reordered_msgs"), p.Count)
			}
			sentBoth += uint64(sent)
			g, s := n("goodput_bps"), n("send_rate_bps")
			if g < 0.5*20e6 || g > 1.1*20e6 || s > 1.05*20e6 || math.Abs(g/s-1) > 0.1 {
				t.Errorf("bidir %s %s: goodput %.4g, sender rate %.4g; want about the paced 20 Mbit/s, within 10%% of each other", r.Transport, dir, g, s)
			}
			goodput += g
		}
		if m.SentMsgs != sentBoth || m.RecvMsgs != sentBoth || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.ServerSockets != 4 {
			t.Errorf("bidir %s: cell sent %d recv %d lost %d dup %d reordered %d sockets %d; want both directions' %d summed, 4 server sockets",
				r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets, sentBoth)
		}
		if math.Abs(m.GoodputBps-goodput) > 1e-9*goodput {
			t.Errorf("bidir %s: cell goodput %.6g, want the directions' sum %.6g", r.Transport, m.GoodputBps, goodput)
		}
		if m.ServerCPUSec == nil || *m.ServerCPUSec <= 0 {
			t.Errorf("bidir %s: server CPU %v, want the server half's", r.Transport, m.ServerCPUSec)
		}
	}
}

// TestFarRefused: a cell the server refuses (here: longer than its --max-duration)
// fails with the server's reason, naming the limit, and the session serves the next.
func TestFarRefused(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{MaxDuration: 2 * time.Second})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{bench.ExpPingPong}, Transports: []string{"udp"}, Sizes: []int{64},
		Duration: 5 * time.Second, Warmup: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; !strings.Contains(r.Error, "max-duration") {
		t.Errorf("error %q, want the server's refusal naming max-duration", r.Error)
	}
	rep, err = bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{bench.ExpPingPong}, Transports: []string{"udp"}, Sizes: []int{64},
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
		{"bench.stream", 64, "params"}, // a stream needs its run id (below)
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
	bidir := base
	bidir.Experiment, bidir.Streams, bidir.Count = "bench.stream", 2, 10
	for streams, want := range map[int]string{2: "", 3: "streams"} {
		bidir.Streams, bidir.Params = streams, []byte(`{"run":"00000000000000ab","drain_ms":10,"warmup_ms":20}`)
		err := Runner{}.Check(bidir)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("Check(bench.stream bidir, %d streams) = %v, want %q", streams, err, want)
		}
	}
	fwd := base
	fwd.Experiment, fwd.Direction = "bench.stream", remote.Forward
	for params, want := range map[string]string{
		``: "params", `{"run":"0000000000000000","drain_ms":10}`: "params.run", `{"run":"00000000000000ab","drain_ms":99999999}`: "params.drain_ms",
		`{"run":"00000000000000ab","drain_ms":10,"x":1}`: "params", `{"run":"00000000000000ab","drain_ms":10}`: "",
	} {
		fwd.Params = []byte(params)
		err := Runner{}.Check(fwd)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("Check(bench.stream, params %s) = %v, want %q", params, err, want)
		}
	}
}

// checkFarGoodput: across hosts goodput runs from the first arrival to the last on
// the receiver's clock. With everything delivered it is the sender's rate, within
// 10% (both span the same messages, a transit time apart), and msgs/s × size × 8.
func checkFarGoodput(t *testing.T, what string, m bench.Metrics, size int) {
	t.Helper()
	if m.SendRateBps <= 0 || math.Abs(m.GoodputBps/m.SendRateBps-1) > 0.1 {
		t.Errorf("%s: goodput %.4g, sender rate %.4g: want them within 10%%", what, m.GoodputBps, m.SendRateBps)
	}
	if got := m.MsgsPerS * float64(size) * 8; math.Abs(got-m.GoodputBps) > 1e-6*m.GoodputBps {
		t.Errorf("%s: msgs/s × size × 8 = %.6g, goodput %.6g: want equal", what, got, m.GoodputBps)
	}
}
