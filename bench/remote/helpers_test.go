package remote

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testKey = []byte("test-key-0123456789abcdef")

// startServer serves s on 127.0.0.1:0 and returns its address; cleanup closes it and
// checks that Serve returned.
func startServer(tb testing.TB, s *Server) string {
	tb.Helper()
	return startServerOn(tb, s, "127.0.0.1:0")
}

// startServerOn serves s on addr (startServer). A server that names no Runner runs
// StreamTest, as most of this package's tests ask.
func startServerOn(tb testing.TB, s *Server, addr string) string {
	tb.Helper()
	if s.Runner == nil {
		s.Runner = StreamTest{}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	tb.Cleanup(func() {
		s.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				tb.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("Serve did not return 10 s after Close")
		}
	})
	return ln.Addr().String()
}

// dial opens a session, closed at cleanup.
func dial(tb testing.TB, addr string, key []byte) *Client {
	tb.Helper()
	c, err := dialStream(tb.Context(), addr, key)
	if err != nil {
		tb.Fatalf("dialStream(%s): %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// quickRequest is a short paced stream test.
func quickRequest(transport string, dir Direction) TestRequest {
	return TestRequest{Experiment: ExpStream, Transport: transport, Size: 1000, Duration: 300 * time.Millisecond,
		RateBps: 20e6, Streams: 1, Direction: dir}
}

// runQuick runs quickRequest and checks it completed with data received.
func runQuick(tb testing.TB, c *Client, transport string, dir Direction) TestResults {
	tb.Helper()
	res, err := c.Run(tb.Context(), quickRequest(transport, dir))
	if err != nil {
		tb.Fatalf("Run(%s %s): %v", transport, dir, err)
	}
	if !res.Complete {
		tb.Fatalf("Run(%s %s): incomplete: %+v", transport, dir, res)
	}
	return res
}

func counters(tb testing.TB, r Results) StreamCounters {
	tb.Helper()
	var c StreamCounters
	if err := json.Unmarshal(r.Counters, &c); err != nil {
		tb.Fatalf("counters %s: %v", r.Counters, err)
	}
	return c
}

// runnerReturned reports whether a test is running on s and every running test's
// Runner has returned: the server's half is over and its session waits for the
// client's results. (A Runner that returns early met an error: a lost path, say.)
func runnerReturned(s *Server) bool {
	s.testsMu.Lock()
	defer s.testsMu.Unlock()
	for t := range s.running {
		if !t.returned {
			return false
		}
	}
	return len(s.running) > 0
}

// raw is a hand-driven client speaking the control protocol, for the tests that
// misbehave on purpose.
type raw struct {
	tb     testing.TB
	c      net.Conn
	cc     *ControlConn
	hb     sync.WaitGroup
	hbc    chan struct{}
	lastHB atomic.Int64 // when the last heartbeat was about to be written, UnixNano; 0 = none
}

func dialRaw(tb testing.TB, addr string) *raw {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	r := &raw{tb: tb, c: c, cc: NewControlConn(c)}
	tb.Cleanup(func() { r.stopHeartbeats(); c.Close() })
	return r
}

func (r *raw) send(m Msg) {
	r.tb.Helper()
	if err := r.cc.WriteMsg(m); err != nil {
		r.tb.Fatalf("send %s: %v", m.Type(), err)
	}
}

// recv reads the next message that is not a heartbeat.
func (r *raw) recv() Msg {
	r.tb.Helper()
	for {
		m, err := r.cc.ReadMsg(context.Background(), 10*time.Second)
		if err != nil {
			r.tb.Fatalf("recv: %v", err)
		}
		if _, ok := m.(*Heartbeat); !ok {
			return m
		}
	}
}

func recvAs[T Msg](r *raw) T {
	r.tb.Helper()
	m := r.recv()
	t, ok := m.(T)
	if !ok {
		r.tb.Fatalf("received %#v, want %T", m, t)
	}
	return t
}

// handshake authenticates with key; it returns the challenge and the auth sent.
func (r *raw) handshake(key []byte) (*Challenge, *Auth) {
	r.tb.Helper()
	r.send(&Hello{Software: "raw test client"})
	ch := recvAs[*Challenge](r)
	cn, _ := newNonce()
	a := &Auth{Nonce: cn}
	if key != nil {
		a.MAC = ClientMAC(key, ch.Nonce, cn)
	}
	r.send(a)
	recvAs[*AuthOK](r)
	return ch, a
}

// startHeartbeats sends a heartbeat every HeartbeatInterval until stopHeartbeats (or
// a write fails), noting in lastHB when each was about to be written: the server
// hears it no earlier.
func (r *raw) startHeartbeats() {
	r.hbc = make(chan struct{})
	r.hb.Add(1)
	go func() {
		defer r.hb.Done()
		tick := time.NewTicker(HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-r.hbc:
				return
			case <-tick.C:
				r.lastHB.Store(time.Now().UnixNano())
				if r.cc.WriteMsg(&Heartbeat{}) != nil {
					return
				}
			}
		}
	}()
}

// lastHeartbeat is when the last heartbeat was about to be written; zero if none was.
func (r *raw) lastHeartbeat() time.Time {
	if ns := r.lastHB.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (r *raw) stopHeartbeats() {
	if r.hbc != nil {
		close(r.hbc)
		r.hb.Wait()
		r.hbc = nil
	}
}

// expectClosed reads until the peer closes c and fails if that takes over timeout.
func expectClosed(tb testing.TB, c net.Conn, timeout time.Duration) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if isTimeout(err) {
			tb.Fatalf("connection still open after %v", timeout)
		}
		return
	}
}

// udpTo opens a UDP socket connected to the server's data port.
func udpTo(tb testing.TB, port uint16) *net.UDPConn {
	tb.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// openFDs counts this process's open descriptors, or -1 where /proc is missing.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// runOutcome is what a Run in the background returned.
type runOutcome struct {
	res TestResults
	err error
}

// runInBackground runs req on c in a goroutine of its own and sends what Run
// returned on the channel it returns (buffered: the goroutine never blocks on it).
func runInBackground(ctx context.Context, c *Client, req TestRequest) <-chan runOutcome {
	done := make(chan runOutcome, 1)
	go func() {
		res, err := c.Run(ctx, req)
		done <- runOutcome{res, err}
	}()
	return done
}
