package remote

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// kernelConnects: connectUDP connects the socket in the kernel, so the kernel drops
// other sources and batched I/O is safe.
const kernelConnects = true

// connectUDP connects the server's UDP data socket to the validated peer: the kernel
// then drops datagrams from every other address, and reports an ICMP unreachable
// from the peer as ECONNREFUSED on the next send or receive, which stops the
// sender (ErrPeerLost).
func connectUDP(c *net.UDPConn, peer netip.AddrPort) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("remote: udp connect: %w", err)
	}
	var sa unix.Sockaddr
	if local, ok := c.LocalAddr().(*net.UDPAddr); ok && local.IP.To4() != nil {
		if !peer.Addr().Is4() {
			return fmt.Errorf("remote: udp connect: IPv4 socket, IPv6 peer %v", peer)
		}
		sa = &unix.SockaddrInet4{Port: int(peer.Port()), Addr: peer.Addr().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(peer.Port()), Addr: peer.Addr().As16()}
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sa) }); err != nil {
		return fmt.Errorf("remote: udp connect: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("remote: udp connect to %v: %w", peer, os.NewSyscallError("connect", cerr))
	}
	return nil
}
