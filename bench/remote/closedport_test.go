package remote

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

// TestClosedPort: with --data-ports the closed port comes from the range, skipping a
// port in use, and nobody listens on it: a TCP dial is refused. The client's Data has
// no ports to offer.
func TestClosedPort(t *testing.T) {
	r := freeRange(t, 3)
	s := &Server{Key: testKey, Runner: StreamTest{}, Limits: Limits{MaxStreams: 3, DataPorts: r}}
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	busy, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(lo, r.Lo+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, transport := range []string{"tcp", "udp"} {
		d := &Data{Request: TestRequest{Transport: transport}, ports: s.openPort, localIP: lo}
		for range 4 { // more than the range holds: it wraps round
			port, err := d.ClosedPort()
			if err != nil {
				t.Fatalf("%s: ClosedPort: %v", transport, err)
			}
			if port < r.Lo || port > r.Hi || (transport == "tcp" && port == r.Lo+1) {
				t.Errorf("%s: port %d, want one of %s but %d (in use)", transport, port, r, r.Lo+1)
			}
			if transport == "tcp" {
				c, err := net.Dial("tcp4", netip.AddrPortFrom(lo, port).String())
				if err == nil {
					c.Close()
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("dial the closed port %d: %v, want ECONNREFUSED", port, err)
				}
			}
		}
	}
	if _, err := (&Data{Request: TestRequest{Transport: "tcp"}}).ClosedPort(); err == nil || !strings.Contains(err.Error(), "server") {
		t.Errorf("ClosedPort on the client's Data: %v, want an error saying only the server has ports", err)
	}
}
