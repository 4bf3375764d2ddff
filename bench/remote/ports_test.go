package remote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
)

// freeRange returns n consecutive loopback ports that are free now for both TCP and
// UDP, below Linux's ephemeral range (32768-60999) so that the kernel does not hand
// them to anyone meanwhile, or skips.
func freeRange(tb testing.TB, n int) PortRange {
	tb.Helper()
	for range 50 {
		lo := 20000 + rand.IntN(10000-n)
		ok := true
		for p := lo; p < lo+n && ok; p++ {
			ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))
			ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(ap))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return PortRange{uint16(lo), uint16(lo + n - 1)}
		}
	}
	tb.Skipf("no %d consecutive free ports found in 20000-29999", n)
	return PortRange{}
}

// portRecorder is StreamTest as a Driver, recording the server ports of each test's
// data path, each once.
type portRecorder struct {
	StreamTest
	mu    sync.Mutex // guards ports
	ports [][]uint16
}

func (p *portRecorder) Drive(ctx context.Context, d *Data) (Results, error) {
	var ports []uint16
	for _, c := range d.Conns { // every stream to the test's one listener
		if p := uint16(c.RemoteAddr().(*net.TCPAddr).Port); !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	for _, u := range d.Paths {
		ports = append(ports, u.Peer().Port())
	}
	p.mu.Lock()
	p.ports = append(p.ports, ports)
	p.mu.Unlock()
	return p.StreamTest.Drive(ctx, d)
}

func (p *portRecorder) last() []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ports[len(p.ports)-1]
}

// TestDataPorts: with --data-ports every data socket opens in the range; a test that
// finds the range full is refused naming --data-ports, and the session goes on.
func TestDataPorts(t *testing.T) {
	const streams = 3
	r := freeRange(t, streams)
	logs := &logLines{}
	s := &Server{Key: testKey, Limits: Limits{MaxStreams: streams, DataPorts: r}, Logf: logs.logf}
	addr := startServer(t, s)
	rec := &portRecorder{}
	c, err := (&Dialer{Key: testKey, Driver: rec}).Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := func(ports []uint16) bool {
		for _, p := range ports {
			if p < r.Lo || p > r.Hi {
				return false
			}
		}
		return len(ports) > 0
	}
	run := func(transport string, n int) []uint16 {
		t.Helper()
		req := quickRequest(transport, Bidir)
		req.Streams = n
		res, err := c.Run(t.Context(), req)
		if err != nil || !res.Complete {
			t.Fatalf("%s test with %d streams in --data-ports %s: %v, complete %v", transport, n, r, err, res.Complete)
		}
		return rec.last()
	}

	for _, tc := range []struct {
		transport string
		streams   int
	}{{"tcp", streams}, {"udp", streams}, {"udp", 1}, {"tcp", 1}} {
		ports := run(tc.transport, tc.streams)
		want := 1
		if tc.transport == "udp" {
			want = tc.streams
		}
		if len(ports) != want || !in(ports) {
			t.Errorf("%s test with %d streams: server data ports %v; want %d in %s", tc.transport, tc.streams, ports, want, r)
		}
	}

	// Hold every port of the range, first for UDP only, then for TCP too.
	var held []interface{ Close() error }
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	for p := r.Lo; p <= r.Hi; p++ {
		u, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p)))
		if err != nil {
			t.Skipf("port %d taken meanwhile: %v", p, err)
		}
		held = append(held, u)
	}
	refused := func(transport string) {
		t.Helper()
		req := quickRequest(transport, Forward)
		_, err := c.Run(t.Context(), req)
		var re *RefusedError
		want := fmt.Sprintf("no free port in the server's --data-ports %s: %d tried, all in use", r, streams)
		if !errors.As(err, &re) || re.Limit != "data-ports" || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s test with every port of --data-ports %s held: %v; want a refusal by data-ports saying %q", transport, r, err, want)
		}
	}
	refused("udp")
	if ports := run("tcp", 1); !in(ports) { // the session goes on, and TCP ports are free
		t.Errorf("tcp test with the UDP ports held: server data ports %v; want in %s", ports, r)
	}
	for p := r.Lo; p <= r.Hi; p++ {
		ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p)))
		if err != nil {
			t.Skipf("port %d taken meanwhile: %v", p, err)
		}
		held = append(held, ln)
	}
	refused("tcp")
	logs.wait(t, fmt.Sprintf(`test \d+ refused by --data-ports: no free port in the server's --data-ports %s: %d tried, all in use`, r, streams))

	// Free one port (both protocols): a one-stream UDP test takes it.
	held[0].Close()
	held[streams].Close()
	if ports := run("udp", 1); len(ports) != 1 || ports[0] != r.Lo {
		t.Errorf("udp test with only port %d free: server data ports %v", r.Lo, ports)
	}
	if st := s.Stats(); st.TestsRefused != 2 {
		t.Errorf("TestsRefused = %d, want 2", st.TestsRefused)
	}
}
