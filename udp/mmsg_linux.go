//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ctrlSpace is the control-message room per received datagram, in bytes. SO_RXQ_OVFL
// and UDP_GRO need CmsgSpace(4) each (24 bytes on 64-bit systems, 16 on 32-bit ones)
// and SO_TIMESTAMPNS CmsgSpace(16) (32 bytes): 80 in all, and room to spare (a
// control message that does not fit is lost, with MSG_CTRUNC).
const ctrlSpace = 128

// GSO and GRO limits.
const (
	// gsoMaxSegments is the most datagrams one super-datagram carries where the
	// kernel allows it: UDP_MAX_SEGMENTS, 128 since Linux 6.9. gsoOldSegments is
	// the limit before (64), to which a Conn falls back when the kernel refuses a
	// super-datagram of more (EINVAL).
	gsoMaxSegments = 128
	gsoOldSegments = 64
	// gsoMaxSegIPv4 and gsoMaxSegIPv6 are the largest segment sizes Send coalesces,
	// in bytes: a 1500-byte MTU less the IP and UDP headers. The kernel refuses a
	// segment that does not fit the route's MTU (EINVAL); larger messages go alone.
	gsoMaxSegIPv4 = 1500 - 20 - 8
	gsoMaxSegIPv6 = 1500 - 40 - 8
	// groBufSize is the receive room per batch entry with GRO on, in bytes: a
	// super-packet is one UDP datagram of at most 65535 bytes.
	groBufSize = 1 << 16
)

// txCtrlSpace is the control-message room per sendmmsg entry: one UDP_SEGMENT message
// carrying a uint16.
var txCtrlSpace = unix.CmsgSpace(2)

// gsoSegLimit is the most segments a super-datagram of this process carries:
// gsoMaxSegments until some Conn's kernel refused that many with EINVAL (a kernel
// before 6.9), gsoOldSegments from then on. A Conn reads it at open and keeps its own
// copy (sysConn.gsoSegs), so one refusal costs each Conn at most one retried call.
var gsoSegLimit atomic.Int32

func init() { gsoSegLimit.Store(gsoMaxSegments) }

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

	// GSO (owned by the goroutine in Send): one UDP_SEGMENT control message per
	// sendmmsg entry, and how many messages each entry of the current call carries.
	// With GSO, Options.Batch counts entries: one call carries up to batch × gsoSegs
	// messages, whose iovecs (tx.iovs, grown to the largest call) adjacent messages
	// share.
	txCtrl  []byte
	txMsgs  []int
	gsoSeg  int // largest segment coalesced, bytes
	gsoSize int // largest super-datagram payload, bytes
	gsoSegs int // most segments per super-datagram: gsoSegLimit at open, lowered on EINVAL

	gro groScratch // owned by the goroutine in Recv

	// stamps[i] is the kernel receive time (Unix ns) of message i of the most recent
	// Recv, 0 if it carried none; nstamps is that Recv's count. Allocated at open when
	// the socket has timestamps; owned by the goroutine in Recv.
	stamps  []int64
	nstamps int
}

// groScratch holds what one recvmmsg call into the Conn's own buffers received (with
// GRO on, or for RecvViews), and the datagrams of it not yet returned: entries
// pend..n-1, from offset off of entry pend. Its arrays are allocated by the first
// call that uses them.
type groScratch struct {
	buf   []byte     // groBufSize bytes per batch entry
	lens  []int      // per entry: bytes received
	segs  []int      // per entry: GRO segment size, 0 for a single datagram
	stamp []int64    // per entry: kernel receive time, Unix ns; 0 = none (or no timestamps)
	drops []uint32   // per entry: the socket's drop counter it carried (SO_RXQ_OVFL), 0 = none
	trunc []bool     // per entry: larger than groBufSize (MSG_TRUNC)
	peers []peerAddr // per returned message: its source
	pend  int
	n     int
	off   int
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
	again bool                  // out (receive, busy polling): nothing was queued (EAGAIN)
	fn    func(fd uintptr) bool // calls recvmmsg or sendmmsg on hdrs[:vlen]
	spin  func(fd uintptr) bool // receive, busy polling: calls recvmmsg once, never waits
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
	if !c.noGSO {
		var gso, gro bool
		if err := c.raw.Control(func(fd uintptr) { gso, gro = probeOffload(int(fd), c.wantGRO) }); err != nil {
			return fmt.Errorf("udp: socket options on %v: %w", c.laddr, err)
		}
		c.gso.Store(gso && c.connected) // a server's replies go to many peers: no GSO
		c.gro = gro
	}
	c.sys.rx = newScratch(c.batch, true)
	c.sys.tx = newScratch(c.batch, false)
	if c.gso.Load() {
		c.sys.txCtrl = make([]byte, c.batch*txCtrlSpace)
		c.sys.txMsgs = make([]int, c.batch)
		for i := range c.batch {
			h := (*unix.Cmsghdr)(unsafe.Pointer(&c.sys.txCtrl[i*txCtrlSpace]))
			h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			h.SetLen(unix.CmsgLen(2))
		}
		c.sys.gsoSeg, c.sys.gsoSize = gsoMaxSegIPv4, c.maxPayload
		c.sys.gsoSegs = int(gsoSegLimit.Load())
		if c.maxPayload == MaxPayloadIPv6 {
			c.sys.gsoSeg = gsoMaxSegIPv6
		}
	}
	if c.rxStamps {
		c.sys.stamps = make([]int64, c.batch)
	}
	rx, tx := &c.sys.rx, &c.sys.tx
	// recvmmsg receives what is queued into hdrs[:vlen]; false means nothing was.
	recvmmsg := func(fd uintptr) bool {
		for {
			// MSG_TRUNC as an input flag makes msg_len the datagram's real length.
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&rx.hdrs[0])),
				uintptr(rx.vlen), unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				rx.n = int(r)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			default:
				rx.errno = e
				c.drainErrQueue(fd)
				return true
			}
		}
	}
	rx.fn = recvmmsg // false: the poller waits for readability, or the deadline
	rx.spin = func(fd uintptr) bool {
		rx.again = !recvmmsg(fd)
		return true // never wait in the poller: Recv retries
	}
	tx.fn = func(fd uintptr) bool {
		for {
			// MSG_DONTWAIT: never sleep here, even on a socket in blocking mode
			// (Options.Blocking); the poller waits for room, or the deadline.
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&tx.hdrs[0])),
				uintptr(tx.vlen), unix.MSG_DONTWAIT, 0, 0)
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
	c.sys.nstamps = 0
	if c.gro || c.sys.gro.pend < c.sys.gro.n { // what a RecvViews left comes first
		return c.recvGRO(bufs, sizes)
	}
	rx := &c.sys.rx
	defer clearIovs(rx.iovs[:len(bufs)])
	for i, b := range bufs {
		pointIov(&rx.iovs[i], b)
	}
	if err := c.recvmmsg(len(bufs)); err != nil {
		return 0, err
	}
	n := rx.n
	for i := range n {
		m := &rx.hdrs[i]
		if m.Hdr.Controllen > 0 {
			ctrl := rx.ctrl[i*ctrlSpace : i*ctrlSpace+int(m.Hdr.Controllen)]
			if v, ok, _ := parseRxqOvfl(ctrl); ok {
				c.rxqOvfl.Store(uint64(v))
			}
			if c.rxStamps {
				c.sys.stamps[i] = recvStamp(ctrl)
			}
		} else if c.rxStamps {
			c.sys.stamps[i] = 0
		}
	}
	for i := range n {
		m := &rx.hdrs[i]
		rx.names[i].len = m.Hdr.Namelen
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.sys.nstamps = i
			if !c.connected {
				c.setPeers(rx.names[:i])
			}
			return i, c.recvErr(fmt.Errorf("%w: message %d of the batch is %d bytes, its buffer %d bytes (%d later datagrams of the batch discarded)",
				ErrTruncated, i, m.Len, len(bufs[i]), n-i-1))
		}
		sizes[i] = int(m.Len)
	}
	c.sys.nstamps = n
	if !c.connected {
		c.setPeers(rx.names[:n])
	}
	return n, nil
}

// recvmmsg calls recvmmsg on the first vlen entries of the receive scratch, whose
// iovecs the caller has set, until it returns datagrams or fails.
func (c *Conn) recvmmsg(vlen int) error {
	rx := &c.sys.rx
	for {
		for i := range vlen {
			m := &rx.hdrs[i]
			m.Hdr.Namelen = unix.SizeofSockaddrInet6
			m.Hdr.SetControllen(ctrlSpace)
			m.Hdr.Flags = 0
			m.Len = 0
		}
		rx.vlen, rx.n, rx.errno = vlen, 0, 0
		if err := c.readRx(); err != nil {
			return c.recvErr(unwrapOp(err))
		}
		if rx.errno == 0 {
			return nil
		}
		// A server socket serves many peers: an ICMP report about a reply to one of
		// them (counted by drainErrQueue) is no failure of this Recv.
		if !c.connected && asyncErr(rx.errno) {
			continue
		}
		return c.recvErr(rx.errno)
	}
}

// readRx runs the receive callback on the first rx.vlen entries until it received
// datagrams or failed. By default it parks in Go's poller until the socket is
// readable; with Options.Blocking it sleeps in the kernel (recvBlocking); with busy polling it spins instead: one non-blocking recvmmsg per
// RawConn.Read, which checks the read deadline and Close before each, and a
// runtime.Gosched between tries, so other goroutines (the sender, on a small
// machine) still run.
func (c *Conn) readRx() error {
	rx := &c.sys.rx
	if c.blk.on {
		return c.recvBlocking()
	}
	if !c.busyPoll {
		return c.raw.Read(rx.fn)
	}
	for {
		rx.again = false
		if err := c.raw.Read(rx.spin); err != nil {
			return err
		}
		if !rx.again {
			return nil
		}
		runtime.Gosched()
	}
}

// recvGRO is recv with UDP_GRO on. The kernel may hand over a super-packet, several
// datagrams from one source coalesced, with their segment size in a UDP_GRO control
// message: it receives into its own 64 KiB buffers, splits each entry back into
// datagrams and copies each datagram into one caller buffer. Datagrams that do not
// fit this call's buffers wait in the Conn and come first, without a system call,
// in the next Recv.
func (c *Conn) recvGRO(bufs [][]byte, sizes []int) (int, error) {
	g := &c.sys.gro
	if g.pend >= g.n {
		// Each entry holds at least one datagram: no more entries than buffers.
		if err := c.fillGRO(len(bufs)); err != nil {
			return 0, err
		}
	}
	k := 0
	var err error
	for k < len(bufs) && g.pend < g.n {
		start, l, e, terr := g.next()
		if terr != nil {
			err = terr
			break
		}
		if l > len(bufs[k]) {
			err = fmt.Errorf("%w: message %d of the batch is %d bytes, its buffer %d bytes", ErrTruncated, k, l, len(bufs[k]))
			break
		}
		sizes[k] = copy(bufs[k], g.buf[start:start+l])
		c.keepSource(k, e)
		k++
	}
	return c.endSplit(k, err)
}

// recvViews is RecvViews: the entries of one recvmmsg call into the Conn's own
// buffers, returned as views, packet by packet.
func (c *Conn) recvViews(views [][]byte, pkts []Packet) (int, int, error) {
	g := &c.sys.gro
	if g.pend >= g.n {
		if err := c.fillGRO(len(views)); err != nil {
			return 0, 0, err
		}
	}
	if len(c.sys.stamps) < len(views) && c.rxStamps {
		c.sys.stamps = make([]int64, len(views)) // once, for the largest call
	}
	if len(g.peers) < len(views) && !c.connected {
		g.peers = make([]peerAddr, len(views))
	}
	k, np := 0, 0
	var err error
	// Entry by entry: the datagrams of one packet, as many as views has room for,
	// cut at its segment size as next cuts them.
	for k < len(views) && g.pend < g.n && np < len(pkts) {
		e := g.pend
		if g.trunc[e] {
			_, _, _, err = g.next() // skips the entry, with the error
			break
		}
		total, seg, off := g.lens[e], g.segs[e], g.off
		if seg <= 0 || seg > total {
			seg = total
		}
		k0, base := k, e*groBufSize
		for k < len(views) {
			l := min(seg, total-off)
			s := base + off
			views[k] = g.buf[s : s+l : s+l]
			off += l
			k++
			if off >= total {
				break
			}
		}
		if off >= total {
			g.pend, g.off = e+1, 0
		} else {
			g.off = off
		}
		pkts[np] = Packet{Datagrams: k - k0, Drops: g.drops[e]}
		np++
		if !c.connected {
			p := c.sys.rx.names[e]
			for i := k0; i < k; i++ {
				g.peers[i] = p
			}
		}
		if c.rxStamps {
			st := g.stamp[e] // one super-packet, one arrival
			for i := k0; i < k; i++ {
				c.sys.stamps[i] = st
			}
		}
	}
	n, err := c.endSplit(k, err)
	return n, np, err
}

// fillGRO receives up to min(vlen, batch) entries into the Conn's own buffers and
// records each entry's length, segment size, stamp, drop counter and source.
func (c *Conn) fillGRO(vlen int) error {
	g := &c.sys.gro
	rx := &c.sys.rx
	if g.buf == nil {
		g.buf = make([]byte, c.batch*groBufSize)
		g.lens = make([]int, c.batch)
		g.segs = make([]int, c.batch)
		g.trunc = make([]bool, c.batch)
		g.drops = make([]uint32, c.batch)
		g.stamp = make([]int64, c.batch)
		if len(g.peers) < c.batch {
			g.peers = make([]peerAddr, c.batch)
		}
	}
	vlen = min(vlen, c.batch)
	for i := range vlen { // every call: a copying Recv without GRO points them at the caller's buffers
		rx.iovs[i].Base = &g.buf[i*groBufSize]
		rx.iovs[i].SetLen(groBufSize)
	}
	if err := c.recvmmsg(vlen); err != nil {
		return err
	}
	for i := range rx.n {
		m := &rx.hdrs[i]
		g.segs[i], g.stamp[i], g.drops[i] = 0, 0, 0
		if m.Hdr.Controllen > 0 {
			ctrl := rx.ctrl[i*ctrlSpace : i*ctrlSpace+int(m.Hdr.Controllen)]
			drops, dok, seg, sok, _ := parseRecvCmsgs(ctrl)
			if dok {
				c.rxqOvfl.Store(uint64(drops))
				g.drops[i] = drops
			}
			if sok {
				g.segs[i] = seg
			}
			if c.rxStamps {
				g.stamp[i] = recvStamp(ctrl)
			}
		}
		rx.names[i].len = m.Hdr.Namelen
		g.lens[i] = int(m.Len)
		g.trunc[i] = m.Hdr.Flags&unix.MSG_TRUNC != 0
	}
	g.pend, g.n, g.off = 0, rx.n, 0
	return nil
}

// next takes the next pending datagram: its offset and length in buf and its entry.
// A truncated entry (which cannot happen: a UDP datagram fits groBufSize) is
// skipped whole with an error wrapping ErrTruncated. The last segment of a
// super-packet may be shorter than the segment size; a segment size of 0, or
// larger than the entry, means one datagram.
func (g *groScratch) next() (start, l, e int, err error) {
	e = g.pend
	total := g.lens[e]
	if g.trunc[e] {
		g.pend, g.off = e+1, 0
		return 0, 0, e, fmt.Errorf("%w: a datagram of %d bytes exceeds %d", ErrTruncated, total, groBufSize)
	}
	seg := g.segs[e]
	if seg <= 0 || seg > total {
		seg = total
	}
	l = min(seg, total-g.off)
	start = e*groBufSize + g.off
	if g.off += l; g.off >= total {
		g.pend, g.off = e+1, 0
	}
	return start, l, e, nil
}

// keepSource records the source and stamp of returned message k, from entry e.
func (c *Conn) keepSource(k, e int) {
	g := &c.sys.gro
	if !c.connected {
		g.peers[k] = c.sys.rx.names[e]
	}
	if c.rxStamps {
		c.sys.stamps[k] = g.stamp[e] // one super-packet, one arrival
	}
}

// endSplit ends a call that returned k messages from the scratch, with err.
func (c *Conn) endSplit(k int, err error) (int, error) {
	if c.rxStamps {
		c.sys.nstamps = k
	}
	if !c.connected {
		c.setPeers(c.sys.gro.peers[:k])
	}
	if err != nil {
		return k, c.recvErr(err)
	}
	return k, nil
}

func (c *Conn) recvErr(err error) error {
	if c.connected {
		return fmt.Errorf("udp: recvmmsg from %v: %w", c.raddr, err)
	}
	return fmt.Errorf("udp: recvmmsg on %v: %w", c.laddr, err)
}

// pointIov points iov at b (at nothing when b is empty).
func pointIov(iov *unix.Iovec, b []byte) {
	iov.Base = nil
	if len(b) > 0 {
		iov.Base = &b[0]
	}
	iov.SetLen(len(b))
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
	// used is how many iovecs the calls so far pointed at the caller's messages.
	used := 0
	defer func() { clearIovs(tx.iovs[:used]) }()
	sent, retried := 0, -1
	for sent < len(todo) {
		gso := c.gso.Load()
		var take int // messages this call's entries carry
		if gso {
			var niov int
			tx.vlen, take, niov = c.gsoEntries(todo[sent:])
			used = max(used, niov)
		} else {
			chunk := todo[sent:min(len(todo), sent+c.batch)]
			for i, m := range chunk {
				pointIov(&tx.iovs[i], m)
			}
			used = max(used, len(chunk))
			for i := range chunk {
				h := &tx.hdrs[i].Hdr
				h.Iov = &tx.iovs[i]
				h.SetIovlen(1)
				h.Control = nil
				h.SetControllen(0)
				if !c.connected {
					p := &tx.names[sent+i]
					h.Name = (*byte)(unsafe.Pointer(&p.sa))
					h.Namelen = p.len
				}
			}
			tx.vlen, take = len(chunk), len(chunk)
		}
		// first is how many messages the call's first entry carries.
		first := 1
		if gso {
			first = c.sys.txMsgs[0]
		}
		tx.n, tx.errno = 0, 0
		if err := c.raw.Write(tx.fn); err != nil {
			err = unwrapOp(err)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.sendErrs.Add(uint64(first)) // the kernel kept saying EAGAIN until the deadline
			}
			return sent, c.sendErr(sent, err)
		}
		if tx.errno == 0 {
			before := sent
			if !gso || tx.n == tx.vlen {
				sent += take
			} else {
				for _, k := range c.sys.txMsgs[:tx.n] {
					sent += k
				}
			}
			c.sendCalls.Add(1)
			c.sentDgrams.Add(uint64(sent - before))
			continue
		}
		if gso && first > gsoOldSegments && tx.errno == unix.EINVAL {
			// A kernel before 6.9 allows 64 segments per super-datagram: use that
			// from now on, in this Conn and in those opened later.
			c.sys.gsoSegs = gsoOldSegments
			gsoSegLimit.Store(gsoOldSegments)
			continue
		}
		if gso && first > 1 && (tx.errno == unix.EIO || tx.errno == unix.EINVAL || tx.errno == unix.EMSGSIZE) {
			// The kernel or the route refuses super-datagrams (no checksum offload, an
			// MTU below the segment size): send one datagram per message from now on.
			c.gso.Store(false)
			continue
		}
		// sendmmsg reports an error only when the first datagram of the call failed.
		if !c.connected && retried != sent && tx.errno != unix.EMSGSIZE && asyncErr(tx.errno) {
			// Maybe the pending error of an ICMP report about an earlier reply to
			// some other peer (counted when drained): try this datagram once more.
			retried = sent
			continue
		}
		c.sendErrs.Add(uint64(first))
		err := error(tx.errno)
		if tx.errno == unix.EMSGSIZE {
			err = fmt.Errorf("%w (message %d is %d bytes): %w", ErrMessageTooLarge, sent, len(todo[sent]), err)
		}
		return sent, c.sendErr(sent, err)
	}
	// The iovecs of a run of adjacent messages point into the first only: keep the
	// others' memory alive until the kernel has copied them.
	runtime.KeepAlive(todo)
	if noPeer != nil {
		return sent, fmt.Errorf("udp: sendmmsg on %v: %w", c.laddr, noPeer)
	}
	return sent, nil
}

// gsoEntries fills the send scratch's entries for the first messages of msgs, up
// to Options.Batch entries: each entry carries the run of messages gsoRun picks,
// with a UDP_SEGMENT control message when the run has more than one, and one iovec
// per stretch of messages adjacent in memory (a run from one buffer is one iovec,
// as a single write's would be). It returns the number of entries, of messages they
// carry and of iovecs they use.
func (c *Conn) gsoEntries(msgs [][]byte) (entries, taken, iovecs int) {
	tx := &c.sys.tx
	if need := min(len(msgs), c.batch*c.sys.gsoSegs); len(tx.iovs) < need {
		tx.iovs = make([]unix.Iovec, need) // once, for the largest call; the old ones point nowhere
	}
	ne, i, iv := 0, 0, 0
	for i < len(msgs) && ne < c.batch {
		k, seg := gsoRun(msgs[i:], c.sys.gsoSeg, c.sys.gsoSize, c.sys.gsoSegs)
		start := iv
		var end uintptr // one past the last byte the current iovec covers
		for _, m := range msgs[i : i+k] {
			if len(m) == 0 { // only alone in its entry
				tx.iovs[iv].Base = nil
				tx.iovs[iv].SetLen(0)
				iv++
				continue
			}
			p := uintptr(unsafe.Pointer(&m[0]))
			if iv > start && p == end {
				tx.iovs[iv-1].SetLen(int(tx.iovs[iv-1].Len) + len(m))
			} else {
				tx.iovs[iv].Base = &m[0]
				tx.iovs[iv].SetLen(len(m))
				iv++
			}
			end = p + uintptr(len(m))
		}
		h := &tx.hdrs[ne].Hdr
		h.Iov = &tx.iovs[start]
		h.SetIovlen(iv - start)
		if seg > 0 {
			ctrl := c.sys.txCtrl[ne*txCtrlSpace : (ne+1)*txCtrlSpace]
			binary.NativeEndian.PutUint16(ctrl[unix.CmsgLen(0):], uint16(seg))
			h.Control = &ctrl[0]
			h.SetControllen(txCtrlSpace)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		c.sys.txMsgs[ne] = k
		i += k
		ne++
	}
	return ne, i, iv
}

// gsoRun returns how many messages from the start of msgs one UDP_SEGMENT
// super-datagram carries, and its segment size (0: the first message goes alone,
// without a control message). A run is messages of the first one's length L, with
// 0 < L ≤ maxSeg, optionally ended by one shorter non-empty message (the kernel
// allows a short last segment), at most maxSegs messages and maxTotal bytes.
func gsoRun(msgs [][]byte, maxSeg, maxTotal, maxSegs int) (n, seg int) {
	if len(msgs) == 0 {
		return 0, 0
	}
	l := len(msgs[0])
	if l == 0 || l > maxSeg {
		return 1, 0
	}
	n, total := 1, l
	for _, m := range msgs[1:] {
		if n == maxSegs || total+len(m) > maxTotal || len(m) == 0 || len(m) > l {
			break
		}
		n, total = n+1, total+len(m)
		if len(m) < l {
			break
		}
	}
	if n == 1 {
		return 1, 0
	}
	return n, l
}

func (c *Conn) sendErr(i int, err error) error {
	if c.connected {
		return fmt.Errorf("udp: sendmmsg to %v: %w", c.raddr, err)
	}
	return fmt.Errorf("udp: sendmmsg to %v: %w", c.sys.tx.names[i].addrPort(), err)
}

func (c *Conn) recvQueued() (int, error) {
	var mem [unix.SK_MEMINFO_VARS]uint32
	var serr error
	cerr := c.raw.Control(func(fd uintptr) {
		mem, serr = getsockoptMeminfo(int(fd))
	})
	if err := errors.Join(cerr, serr); err != nil {
		return 0, fmt.Errorf("udp: receive queue on %v: %w", c.laddr, err)
	}
	return int(mem[unix.SK_MEMINFO_RMEM_ALLOC]), nil
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
