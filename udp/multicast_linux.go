//go:build linux

package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// multicastTTL is the sender's multicast TTL. 0 keeps datagrams on this host: the
// kernel loops them back to local members and never transmits them on a link. On lo
// the datagram is delivered by lo itself, and TTL 0 does not stop that.
const multicastTTL = 0

// listenMulticast opens the receiver socket of ListenMulticast. net.ListenPacket
// cannot: given a multicast address it binds the wildcard address instead, and such a
// socket receives every datagram to its port.
func listenMulticast(group netip.AddrPort, join bool) (_ *net.UDPConn, err error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("udp: listen on group %v: %w", group, os.NewSyscallError("socket", err))
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return nil, fmt.Errorf("udp: listen on group %v: SO_REUSEADDR: %w", group, os.NewSyscallError("setsockopt", err))
	}
	// Linux's default, IP_MULTICAST_ALL on, would deliver the group's datagrams to
	// this socket whenever any socket on the host joined the group on any interface.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return nil, fmt.Errorf("udp: listen on group %v: IP_MULTICAST_ALL: %w", group, os.NewSyscallError("setsockopt", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: group.Addr().As4(), Port: int(group.Port())}); err != nil {
		return nil, fmt.Errorf("udp: listen on group %v: %w", group, os.NewSyscallError("bind", err))
	}
	if join {
		mreq := unix.IPMreq{Multiaddr: group.Addr().As4(), Interface: loopbackV4.As4()}
		if err := unix.SetsockoptIPMreq(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &mreq); err != nil {
			return nil, fmt.Errorf("udp: join group %v on loopback (%v): %w", group, loopbackV4, joinHint(os.NewSyscallError("setsockopt IP_ADD_MEMBERSHIP", err)))
		}
	}
	f := os.NewFile(uintptr(fd), "udp-group-"+group.String())
	fd = -1 // f owns it now
	pc, err := net.FilePacketConn(f)
	f.Close() // FilePacketConn made its own copy
	if err != nil {
		return nil, fmt.Errorf("udp: listen on group %v: %w", group, err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok { // cannot happen for a SOCK_DGRAM AF_INET socket
		pc.Close()
		return nil, fmt.Errorf("udp: listen on group %v: got %T, want *net.UDPConn", group, pc)
	}
	return uc, nil
}

// dialMulticast opens the sender socket of DialMulticast and checks its options.
func dialMulticast(ctx context.Context, group netip.AddrPort) (*net.UDPConn, error) {
	d := net.Dialer{
		LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopbackV4, 0)),
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = setSenderOptions(int(fd)) }); err != nil {
				return err
			}
			return serr
		},
	}
	nc, err := d.DialContext(ctx, "udp4", group.String())
	if err != nil {
		return nil, fmt.Errorf("udp: dial group %v: %w", group, sendHint(unwrapOp(err)))
	}
	uc, ok := nc.(*net.UDPConn)
	if !ok { // cannot happen for network "udp4"
		nc.Close()
		return nil, fmt.Errorf("udp: dial group %v: got %T, want *net.UDPConn", group, nc)
	}
	return uc, nil
}

// setSenderOptions sets a group sender's options, then reads them back.
func setSenderOptions(fd int) error {
	if err := unix.SetsockoptInet4Addr(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, loopbackV4.As4()); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF %v: %w", loopbackV4, joinHint(os.NewSyscallError("setsockopt", err)))
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, multicastTTL); err != nil {
		return fmt.Errorf("IP_MULTICAST_TTL %d: %w", multicastTTL, os.NewSyscallError("setsockopt", err))
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1); err != nil {
		return fmt.Errorf("IP_MULTICAST_LOOP: %w", os.NewSyscallError("setsockopt", err))
	}
	ifAddr, err := unix.GetsockoptInet4Addr(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF)
	if err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", os.NewSyscallError("getsockopt", err))
	}
	ttl, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
	if err != nil {
		return fmt.Errorf("IP_MULTICAST_TTL: %w", os.NewSyscallError("getsockopt", err))
	}
	loop, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
	if err != nil {
		return fmt.Errorf("IP_MULTICAST_LOOP: %w", os.NewSyscallError("getsockopt", err))
	}
	if got := netip.AddrFrom4(ifAddr); got != loopbackV4 || ttl != multicastTTL || loop != 1 {
		return fmt.Errorf("multicast options: want interface %v, TTL %d, loop 1; got interface %v, TTL %d, loop %d",
			loopbackV4, multicastTTL, got, ttl, loop)
	}
	return nil
}

// joinHint adds to an error of joining a group, or of naming lo as the multicast
// interface, what the host lacks, wrapping errors.ErrUnsupported, when the errno
// says the host lacks something.
func joinHint(err error) error {
	switch {
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("%w: %w (no interface has %v: bring loopback up with \"ip link set lo up\")", errors.ErrUnsupported, err, loopbackV4)
	case errors.Is(err, unix.ENOPROTOOPT):
		return fmt.Errorf("%w: %w (the kernel has no IP multicast: it needs CONFIG_IP_MULTICAST)", errors.ErrUnsupported, err)
	case errors.Is(err, unix.ENOBUFS):
		return fmt.Errorf("%w: %w (too many memberships: raise net.ipv4.igmp_max_memberships)", errors.ErrUnsupported, err)
	}
	return err
}

// sendHint adds to an error of sending to a group what the host lacks, wrapping
// errors.ErrUnsupported, when the errno says the host lacks something (and no hint
// was added before).
func sendHint(err error) error {
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return err
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.ENETDOWN), errors.Is(err, unix.ENODEV), errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("%w: %w (loopback is down or has no %v: bring it up with \"ip link set lo up\")", errors.ErrUnsupported, err, loopbackV4)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %w (a firewall rule refuses multicast on lo)", errors.ErrUnsupported, err)
	}
	return err
}
