package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tcpvsudp/tcpvsudp/udp"
)

// Capabilities some transports have beyond Transport and Network, which an
// experiment asks for with a type assertion (as it asks for Caps): a byte stream under
// the messages, a plain kernel datagram socket, one-to-many delivery, sending
// without connecting.

// RawStreamer is a transport with a byte stream under its messages (TCP): the
// boundaries experiment writes and reads it directly, without the framing.
type RawStreamer interface {
	// RawStream returns the connection's byte stream. Use it or the transport's
	// messages for a direction, never both.
	RawStream() net.Conn
}

// RawStream returns the TCP connection under the framing.
func (c tcpConn) RawStream() net.Conn { return c.NetConn() }

// RawDatagramDialer is a network that can open a plain kernel datagram socket, with
// none of the transport's own checks, so the experiment can see what the kernel
// itself says to an oversized datagram.
type RawDatagramDialer interface {
	DialRawDatagram(ctx context.Context, address string) (net.Conn, error)
}

// DialRawDatagram opens a plain connected UDP socket to address.
func (udpNetwork) DialRawDatagram(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", address)
	if err != nil {
		return nil, fmt.Errorf("udp: dial %s: %w", address, err)
	}
	return c, nil
}

var (
	_ RawStreamer       = tcpConn{}
	_ RawDatagramDialer = udpNetwork{}
	_ UnconnectedSender = udpNetwork{}
)

// A Multicaster is a Network that can hand one message to many receivers with one
// send: the network, not the sender, makes the copies (UDP multicast). A Network
// without it is one-to-one: reaching N receivers takes N endpoints and N sends.
type Multicaster interface {
	// ListenGroup opens a receiver joined to group (host:port, as ListenGroup
	// returned it before) and returns it with the group it joined. With group "" it
	// creates a new group on a free port, after checking that one-to-many delivery
	// works on this host: an error wrapping errors.ErrUnsupported means it does not,
	// and says what is missing.
	ListenGroup(ctx context.Context, group string) (rx Transport, joined string, err error)
	// DialGroup opens a sender to group: each message it sends once reaches every
	// receiver joined to the group.
	DialGroup(ctx context.Context, group string) (Transport, error)
}

var _ Multicaster = udpNetwork{}

// ListenGroup opens a UDP multicast receiver on loopback (udp.ListenMulticast). A
// new group is a random one in 239.255.0.0/16 with a port the kernel picks.
func (n udpNetwork) ListenGroup(ctx context.Context, group string) (Transport, string, error) {
	g := udp.LocalGroup()
	if group == "" {
		if err := udp.ProbeMulticast(ctx); err != nil {
			return nil, "", err
		}
	} else {
		var err error
		if g, err = netip.ParseAddrPort(group); err != nil {
			return nil, "", fmt.Errorf("udp: multicast group %q: %w", group, err)
		}
	}
	c, err := udp.ListenMulticast(ctx, g, n.o)
	if err != nil {
		return nil, "", err
	}
	return c, c.LocalAddr().String(), nil
}

// DialGroup opens a UDP multicast sender on loopback (udp.DialMulticast).
func (n udpNetwork) DialGroup(ctx context.Context, group string) (Transport, error) {
	g, err := netip.ParseAddrPort(group)
	if err != nil {
		return nil, fmt.Errorf("udp: multicast group %q: %w", group, err)
	}
	return udp.DialMulticast(ctx, g, n.o)
}

// UnconnectedSender is a Network whose sockets can send without connecting first
// (UDP's sendto). Connection-oriented transports have no such thing.
type UnconnectedSender interface {
	// SendUnconnected sends msg once from a fresh unconnected socket, then listens
	// for wait for any error the kernel passes back.
	SendUnconnected(addr string, msg []byte, wait time.Duration) (sendErr, laterErr error)
}

// SendUnconnected uses the standard library's unconnected UDP socket: the point is
// what the kernel tells a plain sendto caller, which is nothing.
func (udpNetwork) SendUnconnected(addr string, msg []byte, wait time.Duration) (sendErr, laterErr error) {
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err, nil
	}
	network := "udp6"
	if dst.IP.To4() != nil {
		network = "udp4"
	}
	c, err := net.ListenUDP(network, nil) // any local address: dst may be another host's
	if err != nil {
		return err, nil
	}
	defer c.Close()
	if _, err := c.WriteTo(msg, dst); err != nil {
		return err, nil
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64<<10)
	_, _, err = c.ReadFrom(buf)
	if err != nil && !IsTimeout(err) {
		return nil, err
	}
	return nil, nil
}
