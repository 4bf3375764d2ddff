package udp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"
)

// Multicast on loopback, and only there: every group socket uses the loopback
// interface (lo, 127.0.0.1), so no datagram of a test leaves the host.
//
// Linux delivers multicast on lo although lo has no MULTICAST flag: a datagram routed
// out of lo is delivered by lo itself to every socket joined to the group on lo. The
// sender must name lo as its multicast interface (IP_MULTICAST_IF); without it the
// route to 239.255.0.0/16 would be the default one, out of another interface, where
// the receivers are not members.

// loopbackV4 is the address that names the loopback interface in group options.
var loopbackV4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// localScope is the IPv4 local scope of administratively scoped multicast (RFC 2365
// §6.1): groups no router forwards beyond a site, the safe place for a test's group.
var localScope = netip.MustParsePrefix("239.255.0.0/16")

// LocalGroup returns a random IPv4 multicast group in the local scope 239.255.0.0/16
// (RFC 2365), 239.255.1.1 to 239.255.254.254, with port 0. Passed to ListenMulticast
// it lets the kernel choose a free port; the receiver's LocalAddr then names the
// group and port that further receivers and the sender use.
func LocalGroup() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, byte(1 + rand.IntN(254)), byte(1 + rand.IntN(254))}), 0)
}

// ListenMulticast opens a receiver socket for group, an IPv4 multicast address and a
// port: bound to the group's address and port (SO_REUSEADDR, so several receivers
// share them) and joined to the group on the loopback interface
// (IP_ADD_MEMBERSHIP, interface 127.0.0.1). Port 0 picks a free port; LocalAddr
// returns the group with the port chosen.
//
// Every receiver of a group gets its own copy of every datagram sent to the group.
// Bound to the group's address, the socket receives nothing sent to the port at
// another address; with IP_MULTICAST_ALL off it receives the group's datagrams only
// through its own membership, not because another socket on the host joined.
// SO_REUSEPORT is not set: for unicast it would spread datagrams over the sockets
// instead of copying them.
//
// The Conn is a server socket (see Listen): its Send would answer the sources of its
// last Recv. Closing it leaves the group.
//
// When the host cannot do multicast on loopback the error wraps errors.ErrUnsupported
// and says what is missing. Linux only; elsewhere the error wraps
// errors.ErrUnsupported.
func ListenMulticast(ctx context.Context, group netip.AddrPort, o Options) (*Conn, error) {
	return listenGroup(ctx, group, o, true)
}

// listenGroup is ListenMulticast; with join false the socket is bound like a
// receiver but joins nothing (tests show that it then receives nothing).
func listenGroup(ctx context.Context, group netip.AddrPort, o Options, join bool) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := checkGroup(group, true); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("udp: listen on group %v: %w", group, err)
	}
	uc, err := listenMulticast(group, join)
	if err != nil {
		return nil, err
	}
	return open(uc, false, o)
}

// DialMulticast opens a sender socket connected to group, an IPv4 multicast address
// and a nonzero port: bound to 127.0.0.1, sending through the loopback interface
// (IP_MULTICAST_IF 127.0.0.1) with multicast TTL 0, so no datagram can leave the
// host, and IP_MULTICAST_LOOP on. Each datagram it sends is one packet, and every
// socket joined to the group on loopback receives a copy of it.
//
// The options are set, then read back; a mismatch is an error. When the host cannot
// do multicast on loopback the error wraps errors.ErrUnsupported and says what is
// missing. Linux only; elsewhere the error wraps errors.ErrUnsupported.
func DialMulticast(ctx context.Context, group netip.AddrPort, o Options) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := checkGroup(group, false); err != nil {
		return nil, err
	}
	uc, err := dialMulticast(ctx, group)
	if err != nil {
		return nil, err
	}
	return open(uc, true, o)
}

// checkGroup checks that group is an IPv4 multicast address with a port (port 0
// only where zeroOK).
func checkGroup(group netip.AddrPort, zeroOK bool) error {
	a := group.Addr()
	switch {
	case !a.Is4() || !a.IsMulticast():
		return fmt.Errorf("udp: multicast group %v: must be an IPv4 multicast address (224.0.0.0/4; 239.255.0.0/16 for local use)", group)
	case group.Port() == 0 && !zeroOK:
		return fmt.Errorf("udp: multicast group %v: port must be nonzero", group)
	}
	return nil
}

// probeTries and probeWait bound ProbeMulticast: it sends up to probeTries datagrams
// and waits probeWait for each.
const (
	probeTries = 5
	probeWait  = 100 * time.Millisecond
)

// ProbeMulticast checks that multicast works on this host's loopback interface: it
// opens a receiver on a fresh LocalGroup and a sender to it, and sends a datagram
// until one arrives, at most 5 times, 100 ms apart. It returns nil once one
// arrives. Otherwise the error says what failed; when the host lacks something
// (loopback down, a kernel without IP multicast, datagrams that never arrive) it wraps
// errors.ErrUnsupported and says how to enable it.
func ProbeMulticast(ctx context.Context) error {
	rx, err := ListenMulticast(ctx, LocalGroup(), Options{Batch: 1})
	if err != nil {
		return err
	}
	defer rx.Close()
	group, err := netip.ParseAddrPort(rx.LocalAddr().String())
	if err != nil {
		return fmt.Errorf("udp: multicast probe: receiver address %v: %w", rx.LocalAddr(), err)
	}
	tx, err := DialMulticast(ctx, group, Options{Batch: 1})
	if err != nil {
		return err
	}
	defer tx.Close()
	msg := [][]byte{[]byte("tcpvsudp multicast probe")}
	bufs, sizes := [][]byte{make([]byte, 64)}, []int{0}
	for range probeTries {
		if _, err := tx.Send(msg); err != nil {
			return fmt.Errorf("udp: multicast probe: send to %v: %w", group, sendHint(err))
		}
		if err := rx.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
			return fmt.Errorf("udp: multicast probe: %w", err)
		}
		n, err := rx.Recv(bufs, sizes)
		if n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("udp: multicast probe: receive on %v: %w", group, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("udp: multicast probe: %w", err)
		}
	}
	return fmt.Errorf("udp: multicast probe: %d datagrams sent to %v through loopback, none arrived in %v: %w "+
		"(multicast on lo is filtered or disabled here: check firewall rules for %v on lo; "+
		"some kernels need \"ip link set lo multicast on\")",
		probeTries, group, probeTries*probeWait, errors.ErrUnsupported, localScope)
}
