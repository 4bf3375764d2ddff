package bench

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// TestPingPongBlocking: closed-loop pingpong's ends receive blocking (outside Go's
// poller) unless --busy-poll, every request is answered exactly once, and the run
// records each end's mode; open loop keeps both ends in the poller.
func TestPingPongBlocking(t *testing.T) {
	for _, tc := range []struct {
		name, transport string
		o               transport.NetOptions
		rate            float64 // open loop when > 0
		want            string  // e.rx's pingpong entry
	}{
		{"udp", "udp", transport.NetOptions{}, 0, "blocking"},
		{"tcp", "tcp", transport.NetOptions{NoDelay: true}, 0, "blocking"},
		{"udp busy-poll", "udp", transport.NetOptions{BusyPoll: true}, 0, "busy-poll"},
		{"tcp busy-poll", "tcp", transport.NetOptions{NoDelay: true, BusyPoll: true}, 0, "busy-poll"},
		{"udp open loop", "udp", transport.NetOptions{}, 2000, "poller"},
		{"tcp open loop", "tcp", transport.NetOptions{NoDelay: true}, 2000, "poller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEnv(t)
			e.timeout = patience // every request is answered on loopback
			e.rx = &rxModes{}
			const n = 1000
			o, err := runPingPongCell(context.Background(), e, mustNetwork(t, tc.transport, tc.o), report.Params{Size: 64, Count: n, PingRate: tc.rate})
			if err != nil {
				t.Fatal(err)
			}
			m := o.m
			if m.SentMsgs != n || m.RecvMsgs != n || m.Timeouts != 0 || m.LateMsgs != 0 || m.RTT == nil || m.RTT.Samples != n {
				t.Errorf("sent %d recv %d timeouts %d late %d, want %d %d 0 0 and %d RTT samples (%+v)", m.SentMsgs, m.RecvMsgs, m.Timeouts, m.LateMsgs, n, n, n, m.RTT)
			}
			socks := map[string]report.Sock{tc.transport: {}}
			e.rx.addTo(socks)
			if got := socks[tc.transport].Rx["pingpong"]; got != tc.want {
				t.Errorf("env.sockets.%s.rx.pingpong = %q, want %q", tc.transport, got, tc.want)
			}
		})
	}
}

// answerDropper is a Network whose servers do not answer the requests the set
// names; everything else is the real network, blocking ends included.
type answerDropper struct {
	transport.Network
	drop map[uint64]bool
}

func (n answerDropper) WithBlocking() transport.Network {
	return answerDropper{Network: transport.BlockingNet(n.Network), drop: n.drop}
}

func (n answerDropper) Listen(ctx context.Context, addr string) (transport.Listener, error) {
	l, err := n.Network.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	return droppingListener{Listener: l, drop: n.drop}, nil
}

type droppingListener struct {
	transport.Listener
	drop map[uint64]bool
}

func (l droppingListener) Accept(ctx context.Context) (transport.Transport, error) {
	t, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return &droppingServer{Transport: t, drop: l.drop, out: make([][]byte, 0, 64)}, nil
}

// droppingServer leaves the named requests unanswered: its Send skips them.
type droppingServer struct {
	transport.Transport
	drop map[uint64]bool
	out  [][]byte
}

func (s *droppingServer) RecvMode() string { return transport.RecvModeOf(s.Transport) }

func (s *droppingServer) Send(msgs [][]byte) (int, error) {
	s.out = s.out[:0]
	for _, m := range msgs {
		if h, err := wire.DecodeHeader(m); err == nil && h.Kind == wire.KindRequest && s.drop[h.Seq] {
			continue
		}
		s.out = append(s.out, m)
	}
	if len(s.out) > 0 {
		if _, err := s.Transport.Send(s.out); err != nil {
			return 0, err
		}
	}
	return len(msgs), nil
}

// TestPingPongBlockingUnanswered: a reply the server never sends leaves the blocking
// client's receive to its deadline: the request counts unanswered once --timeout
// passed, and the run goes on to answer every other one.
func TestPingPongBlockingUnanswered(t *testing.T) {
	for _, name := range []string{"udp", "tcp"} {
		t.Run(name, func(t *testing.T) {
			e := testEnv(t)
			// Only the dropped request may time out: the others are answered in far
			// less than 2 s, however busy the host.
			e.timeout = 2 * time.Second
			e.warmup = 0 // sequence numbers from the first measured request
			e.rx = &rxModes{}
			nw := answerDropper{Network: mustNetwork(t, name, transport.NetOptions{NoDelay: true}), drop: map[uint64]bool{17: true}}
			m, _, err := runPingPong(context.Background(), e, nw, report.Params{Size: 64, Count: 50})
			if err != nil {
				t.Fatal(err)
			}
			if m.SentMsgs != 50 || m.RecvMsgs != 49 || m.Timeouts != 1 || m.LostMsgs != 1 || m.LateMsgs != 0 || m.RTT.Samples != 49 {
				t.Errorf("sent %d recv %d timeouts %d lost %d late %d samples %d, want 50 49 1 1 0 49",
					m.SentMsgs, m.RecvMsgs, m.Timeouts, m.LostMsgs, m.LateMsgs, m.RTT.Samples)
			}
			socks := map[string]report.Sock{name: {}}
			e.rx.addTo(socks)
			if got := socks[name].Rx["pingpong"]; got != "blocking" {
				t.Errorf("rx.pingpong = %q, want blocking", got)
			}
		})
	}
}

// TestEchoServerBlockingStops: an echo server whose endpoint sleeps in the kernel
// stops when its context ends, with no goroutine or thread left blocked (the
// package's leak check runs after every test).
func TestEchoServerBlockingStops(t *testing.T) {
	for _, name := range []string{"udp", "tcp"} {
		t.Run(name, func(t *testing.T) {
			e := testEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv, err := startEchoServer(ctx, e, transport.BlockingNet(mustNetwork(t, name, transport.NetOptions{})), 64)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial(name, srv.addr())
			if err != nil {
				srv.stop()
				t.Fatal(err)
			}
			defer c.Close()
			if err := waitfor.InSyscall("bench.serveMessages(", nil, patience); err != nil {
				srv.stop()
				t.Fatal(err)
			}
			if got := srv.recvMode(); got != "blocking" {
				t.Errorf("server endpoint's mode %q, want blocking", got)
			}
			done := make(chan error, 1)
			go func() { done <- srv.stop() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("stop: %v", err)
				}
			case <-time.After(patience):
				t.Fatal("the echo server did not stop")
			}
		})
	}
}

// TestSockRx: receive modes merge by experiment, once each.
func TestSockRx(t *testing.T) {
	var s report.Sock
	s.Merge(report.Sock{DataSockets: 1, Rx: map[string]string{"pingpong": "blocking"}})
	s.Merge(report.Sock{DataSockets: 1, Rx: map[string]string{"pingpong": "blocking", "stream": "poller"}})
	s.Merge(report.Sock{DataSockets: 1, Rx: map[string]string{"pingpong": "busy-poll"}})
	want := map[string]string{"pingpong": "blocking, busy-poll", "stream": "poller"}
	if len(s.Rx) != len(want) || s.Rx["pingpong"] != want["pingpong"] || s.Rx["stream"] != want["stream"] {
		t.Errorf("merged Rx = %v, want %v", s.Rx, want)
	}
}

// startEchoServer starts an echo server (ServeEcho on every endpoint it accepts)
// whose endpoints receive as nw's do.
func startEchoServer(ctx context.Context, e *runEnv, nw transport.Network, size int) (*server, error) {
	return startServer(ctx, e, nw, func(ctx context.Context, t transport.Transport) error {
		return ServeEcho(ctx, t, size, e.batch)
	})
}
