package farend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

var testKey = []byte("farend test key, 32 bytes long!!")

// startServer runs a tcpvsudp serve equivalent on loopback with Runner, and stops
// it when the test ends.
func startServer(t testing.TB, lim remote.Limits) string {
	t.Helper()
	return startServerWith(t, lim, Runner{})
}

// startServerWith is startServer with runner r.
func startServerWith(t testing.TB, lim remote.Limits, r Runner) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &remote.Server{Key: testKey, Runner: r, Limits: lim}
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
func dialServer(t testing.TB, lim remote.Limits) (*Far, string) {
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
// received, once, in order, but for the datagrams a held-up receiver's socket
// dropped and the kernel counted), every request is answered (a 2 s timeout and a
// 5 s drain: a loaded machine is slow, not lossy), for TCP and UDP, and the report
// says the run was remote. Rates are logged, not checked: they are the machine's
// (BenchmarkFarStream reports them).
func TestFarCells(t *testing.T) {
	far, addr := dialServer(t, remote.Limits{})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpStream, report.ExpPingPong}, Transports: []string{"tcp", "udp"}, Sizes: []int{64, 1024},
		Streams: 2, RateBps: 20e6, Count: 500, Warmup: 20 * time.Millisecond, Timeout: 2 * time.Second, Drain: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != addr {
		t.Errorf("link %+v, want remote %s", rep.Env.Link, addr)
	}
	if len(rep.Results) != 10 {
		t.Fatalf("%d results, want stream and pingpong × 2 transports × 2 sizes, and UDP streams in textbook I/O too", len(rep.Results))
	}
	if rep.Env.Peer == nil || rep.Env.Peer.Kernel == "" || rep.Env.Peer.CPUs == 0 {
		t.Errorf("peer env %+v, want the server host's", rep.Env.Peer)
	}
	// The server's pingpong ends receive blocking (outside Go's poller), this host's
	// stay in the poller; each end says so, by transport.
	for _, tr := range []string{"tcp", "udp"} {
		if rep.Env.Peer == nil || rep.Env.Peer.Sockets[tr].Rx["pingpong"] != "blocking" {
			t.Errorf("env.peer.sockets.%s.rx: %v, want pingpong blocking", tr, rep.Env.Peer.Sockets[tr].Rx)
		}
		if got := rep.Env.Sockets[tr].Rx["pingpong"]; got != "poller" {
			t.Errorf("env.sockets.%s.rx.pingpong = %q, want poller", tr, got)
		}
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("%s %s %d B: sent %d recv %d lost %d (socket drops %v) late %d send rate %.4g goodput %.4g, server sockets %d, warnings %q", r.Experiment, r.Transport, r.Params.Size,
			m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.LateMsgs, m.SendRateBps, m.GoodputBps, m.ServerSockets, r.Warnings)
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
		case report.ExpPingPong:
			if m.SentMsgs != 500 || m.RecvMsgs+m.LostMsgs != 500 || m.RecvMsgs < 495 || m.ServerSockets != 1 {
				t.Errorf("pingpong %s: sent %d recv %d lost %d sockets %d, want 500 sent, (nearly) all answered by 1 socket", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			}
		case report.ExpStream:
			what := fmt.Sprintf("stream %s %d B", r.Transport, r.Params.Size)
			if m.SentMsgs != 1000 || m.ServerSockets != 2 {
				t.Errorf("%s: sent %d by %d server sockets, want 1000 by 2", what, m.SentMsgs, m.ServerSockets)
			}
			checkDelivered(t, what, r.Transport, m)
			checkFarGoodput(t, what, m, r.Params.Size)
			for _, w := range r.Warnings { // the far receiver learned each flow's count, in the client's results
				if strings.Contains(w, "end of stream") {
					t.Errorf("%s: warning %q, want the client's per-flow counts to reach the server", what, w)
				}
			}
		}
	}
}

// TestFarReverse: with --reverse the server's senders stream to this host, which
// accounts every message: paced on loopback, all received once and in order (but for
// the datagrams this host's socket dropped, counted); the sender's rate is the
// server's report, never above the pace. Also a time-bound (not counted) run.
func TestFarReverse(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	for _, p := range []bench.Plan{
		{Count: 500},
		{Duration: 300 * time.Millisecond},
	} {
		p.Far, p.Reverse, p.Experiments, p.Transports = far, true, []string{report.ExpStream}, []string{"tcp", "udp"}
		p.Sizes, p.Streams, p.RateBps, p.Warmup, p.Drain = []int{1024}, 2, 20e6, 20*time.Millisecond, 5*time.Second
		p.UDPIO = []string{report.IOBatched}
		rep, err := bench.Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			m := r.Metrics
			t.Logf("reverse %s (count %d, %v): sent %d recv %d lost %d (socket drops %v) send rate %.4g goodput %.4g, warnings %q",
				r.Transport, p.Count, p.Duration, m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.SendRateBps, m.GoodputBps, r.Warnings)
			if r.Error != "" {
				t.Errorf("reverse %s: %s", r.Transport, r.Error)
				continue
			}
			what := "reverse " + r.Transport
			if m.ServerSockets != 2 {
				t.Errorf("%s: %d server sockets, want 2", what, m.ServerSockets)
			}
			checkDelivered(t, what, r.Transport, m)
			if p.Count > 0 && m.SentMsgs != 1000 {
				t.Errorf("%s: sent %d, want 2 streams × 500", what, m.SentMsgs)
			}
			// Never above the pace (the sender keeps a timetable, whatever the load);
			// below it only as far as a loaded host falls behind.
			if m.SendRateBps < 0.5*20e6 || m.SendRateBps > 1.05*20e6 {
				t.Errorf("%s: send rate %.4g, want the paced 20 Mbit/s (at most +5%%, at least half)", what, m.SendRateBps)
			}
			checkFarGoodput(t, what, m, r.Params.Size)
		}
	}
}

// TestFarBidir: with --bidir both ends send at once through a real server session,
// a path per stream each way: paced at 20 Mbit/s per direction on loopback, each
// direction's 2 × 500 messages are received once and in order by its receiver (but
// for counted socket drops), and the cell's figures are the two directions' sums.
// Also a time-bound run.
func TestFarBidir(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	for _, p := range []bench.Plan{{Count: 500}, {Duration: 300 * time.Millisecond}} {
		p.Far, p.Bidir, p.Experiments, p.Transports = far, true, []string{report.ExpStream}, []string{"tcp", "udp"}
		p.Sizes, p.Streams, p.RateBps, p.Warmup, p.Drain = []int{1024}, 2, 20e6, 20*time.Millisecond, 5*time.Second
		p.UDPIO = []string{report.IOBatched}
		checkFarBidir(t, p)
	}
}

// checkFarBidir runs p, a paced bidir plan of 2 streams, and checks each cell: every
// message received once and in order both ways but for counted socket drops (with a
// count, exactly 2 × Count sent), each direction's sender never above the pace (its
// goodput logged), the cell the directions' sum.
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
			if sent <= 0 || (p.Count > 0 && sent != float64(2*p.Count)) {
				t.Errorf("bidir %s %s: sent %v; want 2 streams × count %d", r.Transport, dir, sent, p.Count)
			}
			var drops *uint64
			if _, ok := r.Observed[dir+"_drops_socket"]; ok {
				d := uint64(n("drops_socket"))
				drops = &d
			}
			checkDelivered(t, "bidir "+r.Transport+" "+dir, r.Transport, report.Metrics{SentMsgs: uint64(sent), RecvMsgs: uint64(n("recv_msgs")),
				LostMsgs: uint64(n("lost_msgs")), DupMsgs: uint64(n("dup_msgs")), ReorderedMsgs: uint64(n("reordered_msgs")),
				DropsSender: uint64(n("drops_sender")), DropsSocket: drops})
			sentBoth += uint64(sent)
			g, s := n("goodput_bps"), n("send_rate_bps")
			t.Logf("bidir %s %s: goodput %.4g, sender rate %.4g (goodput/send %.3f)", r.Transport, dir, g, s, g/s)
			if g <= 0 || s <= 0 || s > 1.05*20e6 {
				t.Errorf("bidir %s %s: goodput %.4g, sender rate %.4g; want both positive, the sender at most the paced 20 Mbit/s (+5%%)", r.Transport, dir, g, s)
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
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpPingPong}, Transports: []string{"udp"}, Sizes: []int{64},
		Duration: 5 * time.Second, Warmup: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; !strings.Contains(r.Error, "max-duration") {
		t.Errorf("error %q, want the server's refusal naming max-duration", r.Error)
	}
	rep, err = bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpPingPong}, Transports: []string{"udp"}, Sizes: []int{64},
		Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Error != "" || r.Metrics.RecvMsgs == 0 {
		t.Errorf("after a refusal: error %q, recv %d; want the session to serve the next test", r.Error, r.Metrics.RecvMsgs)
	}
}

// plainRunner is a stand-in Fallback and its Driver: it runs only the experiment it
// names, measuring nothing, and reports every test complete.
type plainRunner string

func (p plainRunner) Check(req remote.TestRequest) error {
	if req.Experiment != string(p) {
		return fmt.Errorf("experiment %q: the fallback runs only %q", req.Experiment, string(p))
	}
	return nil
}

func (plainRunner) Serve(context.Context, *remote.Data) (remote.Results, error) {
	return remote.Results{Complete: true}, nil
}

func (plainRunner) Drive(context.Context, *remote.Data) (remote.Results, error) {
	return remote.Results{Complete: true}, nil
}

// TestRunnerCheck: bench's experiments are named "bench.<name>" on the wire; an
// unknown one of that family is refused naming what the server runs, and any other
// name goes to the fallback runner, or, without one, is refused naming the
// experiment and saying the server runs bench's.
func TestRunnerCheck(t *testing.T) {
	base := remote.TestRequest{Transport: "udp", Size: 64, Duration: time.Second, Streams: 1, Direction: remote.Bidir}
	plain := Runner{Fallback: plainRunner("plain")}
	for _, tc := range []struct {
		r    Runner
		exp  string
		size int
		want string // "" = accepted
	}{
		{Runner{}, "bench.pingpong", 64, ""},
		{Runner{}, "bench.stream", 64, "params"}, // a stream needs its run id (below)
		{Runner{}, "bench.pingpong", 40, "size"},
		{Runner{}, "bench.teleport", 64, "bench.pingpong"},
		{plain, "bench.teleport", 64, "bench.pingpong"}, // bench's family never reaches the fallback
		{plain, "bench.pingpong", 64, ""},
		{plain, "pingpong", 64, `experiment "pingpong": the fallback runs only "plain"`},
		{plain, "plain", 64, ""},
		{Runner{}, "plain", 64, `experiment "plain": this server runs bench experiments, named bench.<name> (bench.`},
		{Runner{}, "stream", 64, `experiment "stream": this server runs bench experiments, named bench.<name> (bench.`},
	} {
		req := base
		req.Experiment, req.Size = tc.exp, tc.size
		err := tc.r.Check(req)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Runner{Fallback: %v}.Check(%s, %d B) = %v, want %q", tc.r.Fallback, tc.exp, tc.size, err, tc.want)
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
// the receiver's clock, and is msgs/s × size × 8 (exact). With everything delivered
// it is about the sender's rate (both span the same messages, a transit time apart),
// but a receiver held up by a loaded machine shifts its span: the two are logged,
// not compared (BenchmarkFarStream reports them).
func checkFarGoodput(t *testing.T, what string, m report.Metrics, size int) {
	t.Helper()
	t.Logf("%s: goodput %.4g, sender rate %.4g (goodput/send %.3f)", what, m.GoodputBps, m.SendRateBps, m.GoodputBps/m.SendRateBps)
	if m.SendRateBps <= 0 || m.GoodputBps <= 0 {
		t.Errorf("%s: goodput %.4g, sender rate %.4g: want both positive", what, m.GoodputBps, m.SendRateBps)
	}
	if got := m.MsgsPerS * float64(size) * 8; math.Abs(got-m.GoodputBps) > 1e-6*m.GoodputBps {
		t.Errorf("%s: msgs/s × size × 8 = %.6g, goodput %.6g: want equal", what, got, m.GoodputBps)
	}
}

// checkDelivered checks a stream's known answer on loopback: every message sent
// arrived once and in order, except, over UDP, those the kernel dropped and counted
// (the receiving socket's buffer overflowing while a loaded machine held its reader
// up, or a send refused): lost is exactly those, and no other message is missing.
func checkDelivered(t *testing.T, what, transport string, m report.Metrics) {
	t.Helper()
	var dropped uint64
	if transport == "udp" {
		dropped = m.DropsSender
		if m.DropsSocket != nil {
			dropped += *m.DropsSocket
		}
	}
	if dropped > 0 {
		t.Logf("%s: %d of %d messages dropped by the kernel (socket %v, sender %d), counted", what, dropped, m.SentMsgs, deref(m.DropsSocket), m.DropsSender)
	}
	if m.SentMsgs == 0 || m.LostMsgs != dropped || m.RecvMsgs+m.LostMsgs != m.SentMsgs || m.DupMsgs != 0 || m.ReorderedMsgs != 0 {
		t.Errorf("%s: sent %d recv %d lost %d (kernel drops: socket %v, sender %d) dup %d reordered %d; want every message received once, in order, or dropped and counted by the kernel",
			what, m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, m.DupMsgs, m.ReorderedMsgs)
	}
}

// BenchmarkFarStream reports what the tests only log: how close a paced stream
// through a real server session comes to its pace, at the sender (the far end's
// report in reverse) and at the receiver, and the fraction lost, per direction and
// transport.
func BenchmarkFarStream(b *testing.B) {
	far, _ := dialServer(b, remote.Limits{})
	const pace = 10e6
	for _, dir := range []string{"forward", "reverse"} {
		for _, transport := range []string{"tcp", "udp"} {
			b.Run(fmt.Sprintf("dir=%s/transport=%s", dir, transport), func(b *testing.B) {
				var send, goodput, lost, sent float64
				for b.Loop() {
					rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Reverse: dir == "reverse", Experiments: []string{report.ExpStream},
						Transports: []string{transport}, Sizes: []int{256}, Streams: 2, RateBps: pace, Count: 1000, Warmup: bench.NoWarmup, Drain: 5 * time.Second})
					if err != nil {
						b.Fatal(err)
					}
					r := rep.Results[0]
					if r.Error != "" {
						b.Fatal(r.Error)
					}
					m := r.Metrics
					send += m.SendRateBps
					goodput += m.GoodputBps
					lost += float64(m.LostMsgs)
					sent += float64(m.SentMsgs)
				}
				n := float64(b.N)
				b.ReportMetric(send/n/pace, "send/pace")
				b.ReportMetric(goodput/n/pace, "goodput/pace")
				b.ReportMetric(lost/max(sent, 1), "lost/msg")
			})
		}
	}
}

// TestSocketOptionsOnTheWire: a run without socket flags asks for nothing (the
// default batch of 64 travels as none), so a server without the "sockets" capability
// still runs it; any flag travels, and the server reads back the run's flags.
func TestSocketOptionsOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		net    transport.NetOptions
		batch  int
		verify wire.Verify
		zero   bool
	}{
		{"defaults", transport.NetOptions{}, 64, wire.VerifyPayloadCRC, true},
		{"nodelay is not a socket option here", transport.NetOptions{NoDelay: true}, 64, wire.VerifyPayloadCRC, true},
		{"batch 1", transport.NetOptions{}, 1, wire.VerifyPayloadCRC, false},
		{"rcvbuf", transport.NetOptions{RecvBuffer: 1 << 20}, 64, wire.VerifyPayloadCRC, false},
		{"no gso", transport.NetOptions{NoGSO: true}, 64, wire.VerifyPayloadCRC, false},
		{"busy poll", transport.NetOptions{BusyPoll: true}, 64, wire.VerifyPayloadCRC, false},
		{"verify header", transport.NetOptions{}, 64, wire.VerifyHeaderCRC, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := socketOptions(tc.net, tc.batch, tc.verify)
			if so.IsZero() != tc.zero {
				t.Errorf("socketOptions(%+v, %d, %v) = %+v; zero %v, want %v", tc.net, tc.batch, tc.verify, so, so.IsZero(), tc.zero)
			}
			req := remote.TestRequest{Transport: "udp", Sockets: so}
			back := netOptions(so)
			back.NoDelay = tc.net.NoDelay
			want := tc.net
			want.Batch = tc.batch // the sockets' batch is the calls'
			if back != want || batchOf(req) != tc.batch || verifyOf(req) != tc.verify {
				t.Errorf("the server reads %+v, batch %d, verify %v; want %+v, batch %d, verify %v",
					back, batchOf(req), verifyOf(req), want, tc.batch, tc.verify)
			}
		})
	}
}

// TestFarVerify: --verify reaches the server, and the report records what each end's
// receivers checked (env.sockets, env.peer.sockets) beside the flag (config.verify),
// for the default and for header-only checks, forward and reverse.
func TestFarVerify(t *testing.T) {
	for _, tc := range []struct {
		verify  wire.Verify
		reverse bool
	}{
		{wire.VerifyPayloadCRC, false},
		{wire.VerifyHeaderCRC, false},
		{wire.VerifyHeaderCRC, true},
	} {
		far, _ := dialServer(t, remote.Limits{}) // a session's env.sockets describe its cells since it opened
		rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpStream}, Transports: []string{"tcp"},
			Sizes: []int{1024}, Count: 200, RateBps: 20e6, Warmup: bench.NoWarmup, Drain: 5 * time.Second, Verify: tc.verify, Reverse: tc.reverse})
		if err != nil {
			t.Fatal(err)
		}
		want := tc.verify.String()
		if r := rep.Results[0]; r.Error != "" || r.Metrics.RecvMsgs != 200 || r.Metrics.CorruptMsgs != 0 {
			t.Errorf("verify %s reverse %v: error %q, recv %d corrupt %d; want 200 intact", want, tc.reverse, r.Error, r.Metrics.RecvMsgs, r.Metrics.CorruptMsgs)
		}
		if rep.Env.Peer == nil {
			t.Fatalf("verify %s: no peer env", want)
		}
		if got, peer := rep.Env.Sockets["tcp"].Verify, rep.Env.Peer.Sockets["tcp"].Verify; rep.Config.Verify != want || got != want || peer != want {
			t.Errorf("verify %s reverse %v: config %q, this host %q, server %q; want %q for each", want, tc.reverse, rep.Config.Verify, got, peer, want)
		}
		if rep.Config.PayloadsVerified() != (tc.verify == wire.VerifyPayloadCRC) {
			t.Errorf("verify %s: PayloadsVerified %v", want, rep.Config.PayloadsVerified())
		}
	}
}

// TestRunnerFallback: through a real server, an experiment not of bench's family
// runs on the Fallback; without one the server refuses it, saying it runs bench's
// experiments, and the session goes on.
func TestRunnerFallback(t *testing.T) {
	req := remote.TestRequest{Experiment: "plain", Transport: "tcp", Size: 64, Duration: time.Second, Streams: 1, Direction: remote.Forward}
	for _, tc := range []struct {
		name string
		r    Runner
		want string // "" = complete
	}{
		{"fallback", Runner{Fallback: plainRunner("plain")}, ""},
		{"none", Runner{}, `experiment "plain": this server runs bench experiments, named bench.<name>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServerWith(t, remote.Limits{}, tc.r)
			cl, err := (&remote.Dialer{Key: testKey, Timeout: 5 * time.Second, Driver: plainRunner("plain")}).Dial(t.Context(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for range 2 { // the session goes on after either
				res, err := cl.Run(t.Context(), req)
				var re *remote.RefusedError
				switch {
				case tc.want == "" && (err != nil || !res.Complete):
					t.Fatalf("Run(plain) = %v, complete %v; want it complete on the fallback", err, res.Complete)
				case tc.want != "" && (!errors.As(err, &re) || re.ID == 0 || !strings.Contains(re.Reason, tc.want)):
					t.Fatalf("Run(plain) = %v; want the test refused saying %q", err, tc.want)
				}
				if cl.Broken() != nil {
					t.Fatalf("the session broke: %v", cl.Broken())
				}
			}
		})
	}
}
