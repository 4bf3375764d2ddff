package remote

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// portOpener opens one data socket with open on a port of the server's choosing and
// returns the port it got (Server.openPort).
type portOpener func(open func(port uint16) (uint16, error)) (uint16, error)

// ClosedPort returns a port on which nobody listens for the test's transport, on
// the server's address of the data path (the one the client reaches the control
// connection at): a port it bound and released just now. With --data-ports the port
// comes from that range, as a data socket's would, so a firewall that opens only the
// range lets through what a client's attempt on it brings back (a TCP reset, an ICMP
// port unreachable). It names no address but the server's own, so it cannot point
// anyone at a third party. Nothing stops another program from binding the port
// afterwards; the caller must use it at once. Server side only.
func (d *Data) ClosedPort() (uint16, error) {
	if d.ports == nil || !d.localIP.IsValid() {
		return 0, errors.New("remote: ClosedPort: only the server's side of a test has ports to offer")
	}
	ip := d.localIP
	family := "4"
	if ip.Is6() {
		family = "6"
	}
	var release func() error
	port, err := d.ports(func(port uint16) (uint16, error) {
		switch d.Request.Transport {
		case "tcp":
			ln, err := net.ListenTCP("tcp"+family, net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
			if err != nil {
				return 0, err
			}
			release = ln.Close
			return uint16(ln.Addr().(*net.TCPAddr).Port), nil
		case "udp":
			c, err := net.ListenUDP("udp"+family, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
			if err != nil {
				return 0, err
			}
			release = c.Close
			return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
		}
		return 0, fmt.Errorf("remote: ClosedPort: transport %q", d.Request.Transport)
	})
	if err != nil {
		return 0, fmt.Errorf("remote: a closed %s port on %v: %w", d.Request.Transport, ip, err)
	}
	if err := release(); err != nil {
		return 0, fmt.Errorf("remote: release %s port %d: %w", d.Request.Transport, port, err)
	}
	return port, nil
}
