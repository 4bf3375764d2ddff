package udp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// listenGroupT opens a receiver on group (joined or not) and closes it when the test
// ends. Without multicast on loopback the test is skipped, saying why.
func listenGroupT(tb testing.TB, group netip.AddrPort, join bool) *Conn {
	tb.Helper()
	c, err := listenGroup(tb.Context(), group, Options{}, join)
	if errors.Is(err, errors.ErrUnsupported) {
		tb.Skipf("multicast on loopback unavailable: %v", err)
	}
	if err != nil {
		tb.Fatalf("ListenMulticast %v (join %v): %v", group, join, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// dialGroupT opens a sender to group and closes it when the test ends.
func dialGroupT(tb testing.TB, group netip.AddrPort) *Conn {
	tb.Helper()
	c, err := DialMulticast(tb.Context(), group, Options{})
	if errors.Is(err, errors.ErrUnsupported) {
		tb.Skipf("multicast on loopback unavailable: %v", err)
	}
	if err != nil {
		tb.Fatalf("DialMulticast %v: %v", group, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// groupOf returns the group and port a receiver is bound to.
func groupOf(tb testing.TB, c *Conn) netip.AddrPort {
	tb.Helper()
	g, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil || !g.Addr().IsMulticast() || g.Port() == 0 {
		tb.Fatalf("receiver bound to %v (%v), want a multicast group and a port", c.LocalAddr(), err)
	}
	return g
}

// sendAll sends count messages of size bytes, message i being payload(i, size), each
// once, in batches of 10.
func sendAll(tb testing.TB, tx *Conn, count, size int) {
	tb.Helper()
	for i := 0; i < count; i += 10 {
		var batch [][]byte
		for j := i; j < min(i+10, count); j++ {
			batch = append(batch, payload(j, size))
		}
		if n, err := tx.Send(batch); err != nil || n != len(batch) {
			tb.Fatalf("Send messages %d..%d: sent %d of %d: %v", i, i+len(batch)-1, n, len(batch), err)
		}
	}
}

func TestProbeMulticast(t *testing.T) {
	err := ProbeMulticast(t.Context())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("multicast on loopback unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestMulticastEveryReceiverGetsEverything: one send per message, four receivers, and
// each receives every message exactly once, whole and in order.
func TestMulticastEveryReceiverGetsEverything(t *testing.T) {
	const receivers, count, size = 4, 100, 512
	first := listenGroupT(t, LocalGroup(), true)
	group := groupOf(t, first)
	rxs := []*Conn{first}
	for range receivers - 1 {
		rxs = append(rxs, listenGroupT(t, group, true))
	}
	tx := dialGroupT(t, group)
	if got := tx.RemoteAddr().String(); got != group.String() {
		t.Errorf("sender connected to %s, want %v", got, group)
	}
	sendAll(t, tx, count, size)
	for r, rx := range rxs {
		got := drain(t, rx, count+1, size+1) // one more than sent: a duplicate would show
		if len(got) != count {
			t.Errorf("receiver %d: %d datagrams, want %d", r, len(got), count)
		}
		for i := range min(len(got), count) {
			if want := payload(i, size); !bytes.Equal(got[i], want) {
				t.Errorf("receiver %d: datagram %d: %d bytes starting % x, want message %d (%d bytes starting % x)",
					r, i, len(got[i]), got[i][:min(8, len(got[i]))], i, size, want[:8])
				break
			}
		}
	}
	if e := tx.SendErrors(); e != 0 {
		t.Errorf("sender counted %d send errors, want 0", e)
	}
}

// TestMulticastOnlyMembersReceive: a socket bound to the group's address and port
// that did not join receives nothing, nor does a member of another group on the same
// port, while a member receives everything.
func TestMulticastOnlyMembersReceive(t *testing.T) {
	const count, size = 20, 64
	member := listenGroupT(t, LocalGroup(), true)
	group := groupOf(t, member)
	notJoined := listenGroupT(t, group, false)
	other := netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, 0, 1}), group.Port())
	if other.Addr() == group.Addr() {
		other = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, 0, 2}), group.Port())
	}
	otherGroup := listenGroupT(t, other, true)
	tx := dialGroupT(t, group)
	sendAll(t, tx, count, size)

	tests := []struct {
		name string
		rx   *Conn
		want int
	}{
		{"member", member, count},
		{"bound, not joined", notJoined, 0},
		{"member of another group, same port", otherGroup, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := drain(t, tc.rx, count+1, size+1); len(got) != tc.want {
				t.Errorf("%s on %v: %d datagrams, want %d", tc.name, tc.rx.LocalAddr(), len(got), tc.want)
			}
		})
	}
}

// TestMulticastClosedReceiverLeaves: after a receiver closes, the others still get
// every datagram and the sender sees no error (nobody tells a UDP sender who left).
func TestMulticastClosedReceiverLeaves(t *testing.T) {
	const count, size = 10, 64
	a := listenGroupT(t, LocalGroup(), true)
	group := groupOf(t, a)
	b := listenGroupT(t, group, true)
	tx := dialGroupT(t, group)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	sendAll(t, tx, count, size)
	if got := drain(t, a, count+1, size+1); len(got) != count {
		t.Errorf("remaining receiver: %d datagrams, want %d", len(got), count)
	}
}

func TestMulticastArguments(t *testing.T) {
	tests := []struct {
		name   string
		group  string
		listen bool
	}{
		{"unicast address", "127.0.0.1:5000", true},
		{"IPv6 group", "[ff02::1]:5000", true},
		{"dial port 0", "239.255.1.1:0", false},
		{"dial unicast", "127.0.0.1:5000", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := netip.MustParseAddrPort(tc.group)
			var c *Conn
			var err error
			if tc.listen {
				c, err = ListenMulticast(t.Context(), g, Options{})
			} else {
				c, err = DialMulticast(t.Context(), g, Options{})
			}
			if err == nil {
				c.Close()
				t.Fatalf("group %s (listen %v): no error", tc.group, tc.listen)
			}
			if errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("group %s: %v: a bad argument must not read as an unsupported host", tc.group, err)
			}
		})
	}
}

func TestLocalGroup(t *testing.T) {
	for range 1000 {
		g := LocalGroup()
		if !localScope.Contains(g.Addr()) || g.Port() != 0 {
			t.Fatalf("LocalGroup() = %v, want 239.255.0.0/16 with port 0", g)
		}
		if b := g.Addr().As4(); b[2] == 0 || b[2] == 255 || b[3] == 0 || b[3] == 255 {
			t.Fatalf("LocalGroup() = %v, want 239.255.1.1 to 239.255.254.254", g)
		}
	}
}
