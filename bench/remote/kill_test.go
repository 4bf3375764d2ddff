package remote

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// tcpData opens a raw client's TCP data connection for an accept.
func tcpData(t *testing.T, acc *Accept) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), acc.Ports[0]).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(acc.Token); err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitData reads c until a data datagram of the test with token arrives, for up to
// 10 s.
func awaitData(t *testing.T, c *net.UDPConn, token []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no data from the server: %v", err)
		}
		if kind, _, err := parseDatagram(buf[:n], token); err == nil && kind == kindData {
			return
		}
	}
}

func tcpTest(t *testing.T, r *raw, id uint32, d time.Duration) *Accept {
	t.Helper()
	req := TestRequest{ID: id, Experiment: ExpStream, Transport: "tcp", Size: 1000, Duration: d, RateBps: 10e6, Streams: 1, Direction: Forward}
	r.send(req.wire())
	return recvAs[*Accept](r)
}

// TestClientKilled: a client that vanishes at any phase leaves the server serving,
// with its goroutines (checked by leakcheck at the end of the package) and its
// descriptors released.
func TestClientKilled(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)
	serveOne := func(t *testing.T) {
		t.Helper()
		c := dial(t, addr, testKey)
		runQuick(t, c, "tcp", Forward)
		runQuick(t, c, "udp", Reverse)
		c.Close()
	}
	serveOne(t)
	idle := func(t *testing.T) {
		t.Helper()
		waitfor.True(t, 15*time.Second, "every control connection closed", func() bool { return s.Stats().Conns == 0 })
	}
	idle(t)
	baseFDs := openFDs()
	hello, _ := Encode(&Hello{})

	for _, tc := range []struct {
		name string
		kill func(t *testing.T, r *raw)
	}{
		{"on connect", func(t *testing.T, r *raw) {}},
		{"mid hello", func(t *testing.T, r *raw) { r.c.Write(hello[:7]) }},
		{"after hello", func(t *testing.T, r *raw) {
			r.send(&Hello{})
			recvAs[*Challenge](r)
		}},
		{"after auth", func(t *testing.T, r *raw) { r.handshake(testKey) }},
		{"after test request", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			tcpTest(t, r, 1, time.Second)
		}},
		{"tcp data opened, no start", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			tcpData(t, tcpTest(t, r, 1, time.Second))
		}},
		{"udp probing", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			acc := udpTest(t, r, 1, Reverse, time.Second, 1e6)
			if _, err := probe(t.Context(), udpTo(t, acc.Ports[0]), acc.Token); err != nil {
				t.Fatal(err)
			}
		}},
		{"running tcp", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			acc := tcpTest(t, r, 1, 10*time.Second)
			dc := tcpData(t, acc)
			r.send(&Start{ID: 1})
			recvAs[*Start](r)
			dc.Write(make([]byte, 100000))
		}},
		{"running udp", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			acc := udpTest(t, r, 1, Reverse, 10*time.Second, 2e6)
			u := udpTo(t, acc.Ports[0])
			proof, err := probe(t.Context(), u, acc.Token)
			if err != nil {
				t.Fatal(err)
			}
			r.send(&Start{ID: 1, Paths: [][]byte{proof}})
			recvAs[*Start](r)
			awaitData(t, u, acc.Token) // killed while data flows
		}},
		{"mid frame while running", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			acc := tcpTest(t, r, 1, 10*time.Second)
			tcpData(t, acc)
			r.send(&Start{ID: 1})
			recvAs[*Start](r)
			hb, _ := Encode(&Heartbeat{})
			r.c.Write(hb[:5])
		}},
		{"after sending results", func(t *testing.T, r *raw) {
			r.handshake(testKey)
			acc := tcpTest(t, r, 1, 200*time.Millisecond)
			dc := tcpData(t, acc)
			r.send(&Start{ID: 1})
			recvAs[*Start](r)
			dc.Write(make([]byte, 10000))
			dc.(*net.TCPConn).CloseWrite()
			// The server's half ends at the end of stream: the session then waits for
			// these results, as it does after a test that ran its course.
			waitfor.True(t, 10*time.Second, "the server's Runner returned", func() bool { return runnerReturned(s) })
			r.send(&ResultsMsg{ID: 1, Complete: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			tc.kill(t, r)
			r.c.Close()
			idle(t)
			serveOne(t)
			idle(t)
		})
	}
	if baseFDs >= 0 {
		waitfor.True(t, 10*time.Second, "descriptors released", func() bool { return openFDs() <= baseFDs })
	}
	st := s.Stats()
	t.Logf("stats %+v", st)
	if st.PreAuthRejected != 0 || st.SessionsRefused != 0 {
		t.Errorf("the server refused legitimate clients: %+v", st)
	}
}
