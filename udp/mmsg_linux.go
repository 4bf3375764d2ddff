//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ctrlSpace is the control-message room per received datagram, in bytes. SO_RXQ_OVFL
// needs CmsgSpace(4): 24 bytes on 64-bit systems, 16 on 32-bit ones.
const ctrlSpace = 64

// A peerAddr is a raw sockaddr_in or sockaddr_in6 as the kernel wrote it (the larger
// of the two fits), with its length.
type peerAddr struct {
	sa  unix.RawSockaddrInet6
	len uint32
}

// addrPort decodes p for error messages; it returns the zero AddrPort for a family it
// does not know.
func (p *peerAddr) addrPort() netip.AddrPort {
	b := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(&p.sa))
	port := binary.BigEndian.Uint16(b[2:4]) // sin_port / sin6_port, network byte order
	switch {
	case p.sa.Family == unix.AF_INET && p.len >= unix.SizeofSockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case p.sa.Family == unix.AF_INET6 && p.len >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(p.sa.Addr), port)
	}
	return netip.AddrPort{}
}

// sysConn is the Linux part of a Conn: prebuilt mmsghdr arrays for recvmmsg and
// sendmmsg, sized by Options.Batch, so that Send and Recv allocate nothing.
type sysConn struct {
	rx mmsgScratch // owned by the goroutine in Recv
	tx mmsgScratch // owned by the goroutine in Send
}

// mmsgScratch is one direction's arrays and the in/out values of its RawConn callback.
// The callback is built once at open: a closure made per call would allocate.
type mmsgScratch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []peerAddr // receive: sources; send: destinations on a server socket
	ctrl  []byte     // receive only: ctrlSpace bytes per message

	vlen  int                   // in: messages to move
	n     int                   // out: messages moved
	errno syscall.Errno         // out: the call's error, 0 if none
	fn    func(fd uintptr) bool // calls recvmmsg or sendmmsg on hdrs[:vlen]
}

func newScratch(batch int, recv bool) mmsgScratch {
	s := mmsgScratch{
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]peerAddr, batch),
	}
	if recv {
		s.ctrl = make([]byte, batch*ctrlSpace)
	}
	for i := range s.hdrs {
		h := &s.hdrs[i].Hdr
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
		if recv {
			h.Name = (*byte)(unsafe.Pointer(&s.names[i].sa))
			h.Control = &s.ctrl[i*ctrlSpace]
		}
	}
	return s
}

func (c *Conn) initSys() error {
	var family int
	var serr error
	cerr := c.raw.Control(func(fd uintptr) {
		family, serr = socketFamily(int(fd))
		if serr == nil {
			serr = enableOptions(int(fd), family)
		}
	})
	if err := errors.Join(cerr, serr); err != nil {
		return fmt.Errorf("udp: socket options on %v: %w", c.laddr, err)
	}
	c.sys.rx = newScratch(c.batch, true)
	c.sys.tx = newScratch(c.batch, false)
	rx, tx := &c.sys.rx, &c.sys.tx
	rx.fn = func(fd uintptr) bool {
		for {
			// MSG_TRUNC as an input flag makes msg_len the datagram's real length.
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&rx.hdrs[0])),
				uintptr(rx.vlen), unix.MSG_TRUNC, 0, 0)
			switch e {
			case 0:
				rx.n = int(r)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits for readability, or the deadline
			default:
				rx.errno = e
				c.drainErrQueue(fd)
				return true
			}
		}
	}
	tx.fn = func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&tx.hdrs[0])),
				uintptr(tx.vlen), 0, 0, 0)
			switch e {
			case 0:
				tx.n = int(r)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits for writability, or the deadline
			default:
				tx.errno = e
				c.drainErrQueue(fd)
				return true
			}
		}
	}
	return nil
}

// drainErrQueue reads the socket's error queue (MSG_ERRQUEUE) until it is empty,
// without blocking, and counts in SendErrors each ICMP report: one datagram refused
// after the kernel had accepted it. Reports of local origin (EMSGSIZE) are about a
// datagram whose send failed, already counted there. Emptying the queue also clears
// the pending socket error, so one ICMP report fails one call, not several.
func (c *Conn) drainErrQueue(fd uintptr) {
	var buf [64]byte
	var oob [128]byte // struct sock_extended_err and the offender's address
	for range 4096 {  // bounded: the queue is bounded by the receive buffer anyway
		_, oobn, _, _, err := unix.Recvmsg(int(fd), buf[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		origin, ok, _ := errQueueOrigin(oob[:oobn])
		if ok && (origin == unix.SO_EE_ORIGIN_ICMP || origin == unix.SO_EE_ORIGIN_ICMP6) {
			c.sendErrs.Add(1)
		}
	}
}

// asyncErr reports whether errno can be a pending socket error, set by an ICMP
// report about an earlier datagram rather than by the current call.
func asyncErr(errno syscall.Errno) bool {
	switch errno {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN,
		unix.ENETDOWN, unix.EPROTO, unix.EMSGSIZE, unix.ENONET, unix.EACCES:
		return true
	}
	return false
}

func (c *Conn) recv(bufs [][]byte, sizes []int) (int, error) {
	rx := &c.sys.rx
	defer clearIovs(rx.iovs[:len(bufs)])
	for {
		for i, b := range bufs {
			iov := &rx.iovs[i]
			iov.Base = nil
			if len(b) > 0 {
				iov.Base = &b[0]
			}
			iov.SetLen(len(b))
			m := &rx.hdrs[i]
			m.Hdr.Namelen = unix.SizeofSockaddrInet6
			m.Hdr.SetControllen(ctrlSpace)
			m.Hdr.Flags = 0
			m.Len = 0
		}
		rx.vlen, rx.n, rx.errno = len(bufs), 0, 0
		if err := c.raw.Read(rx.fn); err != nil {
			return 0, c.recvErr(unwrapOp(err))
		}
		if rx.errno == 0 {
			break
		}
		// A server socket serves many peers: an ICMP report about a reply to one of
		// them (counted by drainErrQueue) is no failure of this Recv.
		if !c.connected && asyncErr(rx.errno) {
			continue
		}
		return 0, c.recvErr(rx.errno)
	}
	n := rx.n
	for i := range n {
		m := &rx.hdrs[i]
		if m.Hdr.Controllen > 0 {
			if v, ok, _ := parseRxqOvfl(rx.ctrl[i*ctrlSpace : i*ctrlSpace+int(m.Hdr.Controllen)]); ok {
				c.rxqOvfl.Store(uint64(v))
			}
		}
	}
	for i := range n {
		m := &rx.hdrs[i]
		rx.names[i].len = m.Hdr.Namelen
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			if !c.connected {
				c.setPeers(rx.names[:i])
			}
			return i, c.recvErr(fmt.Errorf("%w: message %d of the batch is %d bytes, its buffer %d bytes (%d later datagrams of the batch discarded)",
				ErrTruncated, i, m.Len, len(bufs[i]), n-i-1))
		}
		sizes[i] = int(m.Len)
	}
	if !c.connected {
		c.setPeers(rx.names[:n])
	}
	return n, nil
}

func (c *Conn) recvErr(err error) error {
	if c.connected {
		return fmt.Errorf("udp: recvmmsg from %v: %w", c.raddr, err)
	}
	return fmt.Errorf("udp: recvmmsg on %v: %w", c.laddr, err)
}

func clearIovs(iovs []unix.Iovec) {
	for i := range iovs {
		iovs[i].Base = nil // keep no reference to the caller's buffers
	}
}

func (c *Conn) send(msgs [][]byte) (int, error) {
	tx := &c.sys.tx
	todo := msgs
	var noPeer error
	if !c.connected {
		c.peerMu.Lock()
		np := copy(tx.names, c.peers[:c.npeers])
		c.peerMu.Unlock()
		if len(todo) > np {
			todo = todo[:np]
			noPeer = fmt.Errorf("%w: message %d, the last Recv returned %d", ErrNoPeer, np, np)
		}
	}
	defer clearIovs(tx.iovs[:min(len(todo), len(tx.iovs))])
	sent, retried := 0, -1
	for sent < len(todo) {
		chunk := todo[sent:min(len(todo), sent+c.batch)]
		for i, m := range chunk {
			iov := &tx.iovs[i]
			iov.Base = nil
			if len(m) > 0 {
				iov.Base = &m[0]
			}
			iov.SetLen(len(m))
			h := &tx.hdrs[i].Hdr
			if !c.connected {
				p := &tx.names[sent+i]
				h.Name = (*byte)(unsafe.Pointer(&p.sa))
				h.Namelen = p.len
			}
		}
		tx.vlen, tx.n, tx.errno = len(chunk), 0, 0
		if err := c.raw.Write(tx.fn); err != nil {
			err = unwrapOp(err)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.sendErrs.Add(1) // the kernel kept saying EAGAIN until the deadline
			}
			return sent, c.sendErr(sent, err)
		}
		if tx.errno == 0 {
			sent += tx.n
			continue
		}
		// sendmmsg reports an error only when the first datagram of the call failed.
		if !c.connected && retried != sent && tx.errno != unix.EMSGSIZE && asyncErr(tx.errno) {
			// Maybe the pending error of an ICMP report about an earlier reply to
			// some other peer (counted when drained): try this datagram once more.
			retried = sent
			continue
		}
		c.sendErrs.Add(1)
		err := error(tx.errno)
		if tx.errno == unix.EMSGSIZE {
			err = fmt.Errorf("%w (message %d is %d bytes): %w", ErrMessageTooLarge, sent, len(todo[sent]), err)
		}
		return sent, c.sendErr(sent, err)
	}
	if noPeer != nil {
		return sent, fmt.Errorf("udp: sendmmsg on %v: %w", c.laddr, noPeer)
	}
	return sent, nil
}

func (c *Conn) sendErr(i int, err error) error {
	if c.connected {
		return fmt.Errorf("udp: sendmmsg to %v: %w", c.raddr, err)
	}
	return fmt.Errorf("udp: sendmmsg to %v: %w", c.sys.tx.names[i].addrPort(), err)
}

func (c *Conn) recvDrops() (uint64, error) {
	var drops uint32
	var serr error
	cerr := c.raw.Control(func(fd uintptr) {
		drops, serr = getsockoptMeminfoDrops(int(fd))
	})
	if err := errors.Join(cerr, serr); err != nil {
		return 0, fmt.Errorf("udp: receive drops on %v: %w", c.laddr, err)
	}
	return uint64(drops), nil
}
