//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketFamily returns AF_INET or AF_INET6 for the socket fd.
func socketFamily(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, os.NewSyscallError("getsockname", err)
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return unix.AF_INET, nil
	case *unix.SockaddrInet6:
		return unix.AF_INET6, nil
	}
	return 0, fmt.Errorf("getsockname: unexpected address %T", sa)
}

// enableOptions turns on, at open, what every datagram's accounting needs:
// SO_RXQ_OVFL (each received datagram carries the socket's drop count) and
// IP_RECVERR / IPV6_RECVERR (send-side failures and ICMP reports surface as errors
// and error-queue entries instead of vanishing).
func enableOptions(fd, family int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return fmt.Errorf("SO_RXQ_OVFL: %w", os.NewSyscallError("setsockopt", err))
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1); err != nil {
			return fmt.Errorf("IPV6_RECVERR: %w", os.NewSyscallError("setsockopt", err))
		}
		// A dual-stack socket's IPv4 traffic reports errors by the IPv4 rule; an
		// IPv6-only socket may refuse the option, which then does not matter.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
		return fmt.Errorf("IP_RECVERR: %w", os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// probeOffload finds out, once at open, which segmentation offloads the kernel gives
// the socket fd, by setting each option and reading it back; it tries GRO only when
// wantGRO. gro: UDP_GRO set to 1
// reads back as 1, so the kernel may queue coalesced super-packets, announced by a
// UDP_GRO control message, from now on. gso: UDP_SEGMENT exists (set to 0, the
// socket default of no segmentation, and read back as 0), so a sendmsg may carry a
// UDP_SEGMENT control message. Any failure means the offload is off.
func probeOffload(fd int, wantGRO bool) (gso, gro bool) {
	if unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 0) == nil {
		v, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT)
		gso = err == nil && v == 0
	}
	if wantGRO && unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1) == nil {
		v, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO)
		gro = err == nil && v == 1
		if !gro {
			_ = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 0)
		}
	}
	return gso, gro
}

// getsockoptMeminfoDrops reads getsockopt(SOL_SOCKET, SO_MEMINFO), an array of
// SK_MEMINFO_VARS uint32s, and returns its SK_MEMINFO_DROPS entry: the socket's
// sk_drops, datagrams dropped at this socket (receive buffer full, or memory
// pressure, or a socket filter).
func getsockoptMeminfoDrops(fd int) (uint32, error) {
	mem, err := getsockoptMeminfo(fd)
	return mem[unix.SK_MEMINFO_DROPS], err
}

// getsockoptMeminfo reads getsockopt(SOL_SOCKET, SO_MEMINFO) up to its drops entry.
func getsockoptMeminfo(fd int) ([unix.SK_MEMINFO_VARS]uint32, error) {
	var mem [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mem))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return mem, fmt.Errorf("SO_MEMINFO: %w", os.NewSyscallError("getsockopt", e))
	}
	if l < (unix.SK_MEMINFO_DROPS+1)*4 {
		return mem, fmt.Errorf("SO_MEMINFO: kernel returned %d bytes, want at least %d", l, (unix.SK_MEMINFO_DROPS+1)*4)
	}
	return mem, nil
}

// bufferSizes reads back SO_RCVBUF and SO_SNDBUF, in bytes, as the kernel granted them.
func bufferSizes(fd uintptr) (recv, send int, err error) {
	recv, rerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	send, serr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	if rerr != nil || serr != nil {
		return 0, 0, os.NewSyscallError("getsockopt", errors.Join(rerr, serr))
	}
	return recv, send, nil
}

// errMalformedCmsg reports control data that does not parse as cmsghdr records.
var errMalformedCmsg = errors.New("malformed control message")

// nextCmsg splits the first control message (a struct cmsghdr record, aligned to the
// native word) off b. It allocates nothing and never panics: malformed input is an
// error.
func nextCmsg(b []byte) (level, typ int32, data, rest []byte, err error) {
	const hdrLen = unix.SizeofCmsghdr
	const lenField = hdrLen - 8 // cmsg_len is a size_t; cmsg_level and cmsg_type are ints
	if len(b) < hdrLen {
		return 0, 0, nil, nil, fmt.Errorf("%w: %d trailing bytes", errMalformedCmsg, len(b))
	}
	var l uint64
	if lenField == 8 {
		l = binary.NativeEndian.Uint64(b)
	} else {
		l = uint64(binary.NativeEndian.Uint32(b))
	}
	if l < hdrLen || l > uint64(len(b)) {
		return 0, 0, nil, nil, fmt.Errorf("%w: cmsg_len %d with %d bytes left", errMalformedCmsg, l, len(b))
	}
	level = int32(binary.NativeEndian.Uint32(b[lenField:]))
	typ = int32(binary.NativeEndian.Uint32(b[lenField+4:]))
	data = b[hdrLen:l]
	if next := uint64(unix.CmsgSpace(len(data))); next < uint64(len(b)) {
		rest = b[next:]
	}
	return level, typ, data, rest, nil
}

// parseRxqOvfl returns the uint32 of the last SOL_SOCKET/SO_RXQ_OVFL control message
// in b, and whether there was one.
func parseRxqOvfl(b []byte) (drops uint32, ok bool, err error) {
	drops, ok, _, _, err = parseRecvCmsgs(b)
	return drops, ok, err
}

// parseRecvCmsgs returns what a received datagram's control data b says: the uint32
// of the last SOL_SOCKET/SO_RXQ_OVFL message (drops, dropsOK) and the segment size of
// the last SOL_UDP/UDP_GRO message (seg, segOK: the datagram is a super-packet of
// datagrams of seg bytes, the last one possibly shorter). What parsed before a
// malformed record is returned with the error.
func parseRecvCmsgs(b []byte) (drops uint32, dropsOK bool, seg int, segOK bool, err error) {
	for len(b) > 0 {
		level, typ, data, rest, err := nextCmsg(b)
		if err != nil {
			return drops, dropsOK, seg, segOK, err
		}
		switch {
		case level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL:
			if len(data) < 4 {
				return drops, dropsOK, seg, segOK, fmt.Errorf("%w: SO_RXQ_OVFL with %d data bytes, want 4", errMalformedCmsg, len(data))
			}
			drops, dropsOK = binary.NativeEndian.Uint32(data), true
		case level == unix.SOL_UDP && typ == unix.UDP_GRO:
			if len(data) < 4 {
				return drops, dropsOK, seg, segOK, fmt.Errorf("%w: UDP_GRO with %d data bytes, want 4", errMalformedCmsg, len(data))
			}
			seg, segOK = int(int32(binary.NativeEndian.Uint32(data))), true
		}
		b = rest
	}
	return drops, dropsOK, seg, segOK, nil
}

// errQueueOrigin returns the ee_origin of the struct sock_extended_err in an error
// queue entry's control data (IP_RECVERR or IPV6_RECVERR): SO_EE_ORIGIN_ICMP or
// _ICMP6 for a report from the network, SO_EE_ORIGIN_LOCAL for the local stack.
func errQueueOrigin(b []byte) (origin uint8, ok bool, err error) {
	for len(b) > 0 {
		level, typ, data, rest, err := nextCmsg(b)
		if err != nil {
			return 0, false, err
		}
		if (level == unix.SOL_IP && typ == unix.IP_RECVERR) || (level == unix.SOL_IPV6 && typ == unix.IPV6_RECVERR) {
			if len(data) < int(unsafe.Sizeof(unix.SockExtendedErr{})) {
				return 0, false, fmt.Errorf("%w: sock_extended_err of %d bytes, want %d", errMalformedCmsg, len(data), int(unsafe.Sizeof(unix.SockExtendedErr{})))
			}
			return data[4], true, nil // ee_errno (uint32), then ee_origin (uint8)
		}
		b = rest
	}
	return 0, false, nil
}
