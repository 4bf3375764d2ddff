package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxPayloadIPv4 is the largest UDP payload over IPv4, in bytes: 65535 − 20 (IPv4
// header) − 8 (UDP header).
const MaxPayloadIPv4 = 65507

// MaxPayloadIPv6 is the largest UDP payload over IPv6 without jumbograms, in bytes:
// 65535 − 8 (UDP header); the IPv6 header is not counted in the payload length.
const MaxPayloadIPv6 = 65527

// defaultBatch is the number of messages one recvmmsg/sendmmsg call moves when
// Options.Batch is 0.
const defaultBatch = 64

// maxBatch caps Options.Batch at the kernel's UIO_MAXIOV, the most messages one
// recvmmsg/sendmmsg call accepts.
const maxBatch = 1024

// ErrMessageTooLarge reports a message longer than the socket's largest payload
// (MaxPayloadIPv4 or MaxPayloadIPv6). Errors wrapping it say the size; when the kernel
// refused the datagram, they wrap syscall.EMSGSIZE too.
var ErrMessageTooLarge = errors.New("udp: message exceeds 65507 bytes")

// ErrTruncated reports a received datagram larger than the buffer given for it. The
// datagram is gone: the kernel discards what did not fit.
var ErrTruncated = errors.New("udp: datagram larger than the receive buffer")

// ErrNoPeer reports a Send on a server socket with more messages than the most recent
// Recv returned: message i has no source to go back to.
var ErrNoPeer = errors.New("udp: no peer to answer")

// Options tunes a socket at open. The zero value keeps the kernel's defaults.
type Options struct {
	RecvBuffer int // SO_RCVBUF request, bytes; 0 = kernel default
	SendBuffer int // SO_SNDBUF request, bytes; 0 = kernel default
	// Batch is the most entries one recvmmsg or sendmmsg call moves; 0 = 64, at most
	// 1024. An entry is one datagram, except with the offloads on: with GSO a Send
	// entry is a super-datagram of up to 128 messages (64 on kernels before 6.9,
	// found out at the first refusal), so one sendmmsg carries up to Batch × 128
	// messages; with GRO a receive entry is a packet the kernel may have coalesced
	// from many datagrams. Without offloads (NoGSO, a server socket's replies) it is
	// the most datagrams per call, and Batch 1 is one datagram per system call.
	Batch int

	// NoGSO turns off both segmentation offloads: UDP GSO (UDP_SEGMENT) on Send and
	// UDP GRO on Recv, whatever GRO says. By default a Conn sends with GSO when the
	// kernel has it (see Offload).
	NoGSO bool

	// GRO turns on UDP GRO (UDP_GRO) when the kernel has it: the kernel may queue
	// datagrams from one sender coalesced, and Recv (or RecvViews) splits them back.
	// Off by default: it costs 64 KiB of receive room per batch entry, and RecvDrops
	// then counts packets, not datagrams: a receive buffer that overflows drops a
	// whole super-packet and SO_MEMINFO counts it once, however many datagrams it
	// held (RecvViews' Packet.Drops lets a caller that knows its sequence convert).
	GRO bool

	// NoTimestamps leaves the kernel's receive timestamps off. By default a socket
	// asks the kernel to stamp each datagram as it arrives (SO_TIMESTAMPNS, set and
	// read back at open) and RecvStamps returns the stamps (see Timestamps).
	NoTimestamps bool

	// BusyPoll makes Recv spin: it retries a non-blocking recvmmsg until a datagram
	// is there, the read deadline passes or the socket is closed, instead of parking
	// in Go's poller until the kernel wakes it. That saves the wake-up (lower, steadier
	// latency) and costs a full CPU core per socket while Recv waits. It also asks for
	// SO_BUSY_POLL of 50 µs, which the kernel grants only with CAP_NET_ADMIN (above
	// net.core.busy_read) and which polls only devices with NAPI, not loopback:
	// BusyPoll reports what was granted. Linux only; elsewhere Dial and Listen fail.
	BusyPoll bool

	// Blocking makes Recv sleep in the kernel instead of in Go's poller: the socket
	// is put in blocking mode and Recv calls a blocking recvmmsg on the calling
	// goroutine's OS thread, which the arriving datagram wakes directly, saving the
	// poller's wake-up and the scheduler's hand-over (about what sockperf's
	// blocking recvfrom costs). The thread stays blocked while Recv waits, so use it
	// for a few latency-bound sockets (request/response), not for many. Read
	// deadlines and Close work as without it: Close wakes a blocked Recv at once; a
	// deadline is checked at least every 50 ms and honoured to the kernel's timer
	// granularity (a jiffy, 1–10 ms). Send never blocks the thread (MSG_DONTWAIT, the
	// poller waits for room as without it). Not with BusyPoll. Linux only; elsewhere
	// it is ignored and Recv parks in the poller (RecvMode says which).
	Blocking bool
}

// Receive modes, as RecvMode names them.
const (
	RecvPoller   = "poller"    // Recv parks in Go's network poller until the socket is readable
	RecvBlocking = "blocking"  // Recv sleeps in a blocking recvmmsg (Options.Blocking)
	RecvBusyPoll = "busy-poll" // Recv spins on non-blocking recvmmsg (Options.BusyPoll)
)

// A Conn is a UDP socket that moves whole datagrams in batches. A Conn from Dial is
// connected to one peer; a Conn from Listen is a server socket that answers whoever
// sent the messages of its most recent Recv (see the package documentation).
//
// One goroutine may Send while another calls Recv; each has its own scratch space.
type Conn struct {
	uc         *net.UDPConn
	raw        syscall.RawConn
	laddr      net.Addr
	raddr      net.Addr // nil for a server socket
	connected  bool
	maxPayload int         // bytes, for this socket's family (and peer, when connected)
	batch      int         // most messages per system call
	noGSO      bool        // Options.NoGSO
	wantGRO    bool        // Options.GRO
	gso        atomic.Bool // Send coalesces messages with UDP_SEGMENT; cleared for good if the kernel refuses it
	gro        bool        // UDP_GRO is on: Recv may get super-packets and splits them
	rxStamps   bool        // SO_TIMESTAMPNS is on: Recv keeps each datagram's kernel receive time
	busyPoll   bool        // Options.BusyPoll: Recv spins on non-blocking recvmmsg
	busyPollUs int         // SO_BUSY_POLL as read back at open, µs; 0 = off or refused
	blk        blocker     // Options.Blocking: Recv sleeps in a blocking recvmmsg (blocking_linux.go)

	rxqOvfl  atomic.Uint64 // last SO_RXQ_OVFL value seen
	sendErrs atomic.Uint64 // datagrams refused, see SendErrors

	// sendCalls and sentDgrams count the system calls that handed datagrams to the
	// kernel and the datagrams they carried (SendCalls); written by Send.
	sendCalls, sentDgrams atomic.Uint64

	// peerMu guards peers and npeers: the sources of the most recent Recv's messages,
	// written by Recv and read by Send on a server socket.
	peerMu sync.Mutex
	peers  []peerAddr
	npeers int

	sys sysConn // platform part: scratch arrays, in mmsg_linux.go / conn_other.go
}

// Listen opens an unconnected server socket at address ("127.0.0.1:0" for an
// ephemeral port) that serves every peer.
func Listen(ctx context.Context, address string, o Options) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", address)
	if err != nil {
		return nil, fmt.Errorf("udp: listen %s: %w", address, err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok { // cannot happen for network "udp"
		pc.Close()
		return nil, fmt.Errorf("udp: listen %s: got %T, want *net.UDPConn", address, pc)
	}
	return open(uc, false, o)
}

// Dial opens a client socket connected to address. It sends nothing: connecting a UDP
// socket only fixes its peer locally, and the first datagram is the first packet.
func Dial(ctx context.Context, address string, o Options) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "udp", address)
	if err != nil {
		return nil, fmt.Errorf("udp: dial %s: %w", address, err)
	}
	uc, ok := nc.(*net.UDPConn)
	if !ok { // cannot happen for network "udp"
		nc.Close()
		return nil, fmt.Errorf("udp: dial %s: got %T, want *net.UDPConn", address, nc)
	}
	return open(uc, true, o)
}

// FromConn makes a Conn of uc, a UDP socket already connected to peer: by Dial, or
// by a connect(2) of its own, after which uc.RemoteAddr may be nil. Send goes to the
// connected peer, with batching and GSO as for a Dial'd Conn, and the kernel filters
// what Recv gets to that peer's datagrams. The Conn owns uc from then on; on error
// FromConn leaves uc open and as it was, but for socket options it set.
func FromConn(uc *net.UDPConn, peer net.Addr, o Options) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if peer == nil {
		return nil, errors.New("udp: FromConn: no peer address")
	}
	return openConn(uc, peer, o)
}

func (o Options) check() error {
	switch {
	case o.RecvBuffer < 0:
		return fmt.Errorf("udp: Options.RecvBuffer: must be ≥ 0 bytes, got %d", o.RecvBuffer)
	case o.SendBuffer < 0:
		return fmt.Errorf("udp: Options.SendBuffer: must be ≥ 0 bytes, got %d", o.SendBuffer)
	case o.Batch < 0 || o.Batch > maxBatch:
		return fmt.Errorf("udp: Options.Batch: must be 0..%d messages, got %d", maxBatch, o.Batch)
	case o.Blocking && o.BusyPoll:
		return errors.New("udp: Options.Blocking and Options.BusyPoll: choose one way for Recv to wait, got both")
	}
	return nil
}

func open(uc *net.UDPConn, connected bool, o Options) (*Conn, error) {
	var peer net.Addr
	if connected {
		peer = uc.RemoteAddr()
	}
	c, err := openConn(uc, peer, o)
	if err != nil {
		uc.Close()
	}
	return c, err
}

// openConn is open without closing uc on error; peer is the connected peer, nil for
// a server socket.
func openConn(uc *net.UDPConn, peer net.Addr, o Options) (*Conn, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	c := &Conn{
		uc:        uc,
		raw:       raw,
		laddr:     uc.LocalAddr(),
		raddr:     peer,
		connected: peer != nil,
		batch:     o.Batch,
		noGSO:     o.NoGSO,
		wantGRO:   o.GRO,
	}
	if c.batch == 0 {
		c.batch = defaultBatch
	}
	if o.RecvBuffer > 0 {
		if err := uc.SetReadBuffer(o.RecvBuffer); err != nil {
			return nil, fmt.Errorf("udp: receive buffer %d bytes: %w", o.RecvBuffer, err)
		}
	}
	if o.SendBuffer > 0 {
		if err := uc.SetWriteBuffer(o.SendBuffer); err != nil {
			return nil, fmt.Errorf("udp: send buffer %d bytes: %w", o.SendBuffer, err)
		}
	}
	c.maxPayload = maxPayloadFor(c.laddr, c.raddr)
	c.peers = make([]peerAddr, c.batch)
	if err := c.initRecvModes(o); err != nil {
		return nil, err
	}
	if err := c.initSys(); err != nil {
		return nil, err
	}
	if err := c.initBlocking(o); err != nil {
		return nil, err
	}
	return c, nil
}

// maxPayloadFor returns the largest payload for a socket bound to laddr (and
// connected to raddr, if not nil). A dual-stack IPv6 socket may reach IPv4 peers,
// for which the kernel enforces the IPv4 limit itself (EMSGSIZE).
func maxPayloadFor(laddr, raddr net.Addr) int {
	if ra, ok := raddr.(*net.UDPAddr); ok {
		if ra.IP.To4() != nil {
			return MaxPayloadIPv4
		}
		return MaxPayloadIPv6
	}
	if la, ok := laddr.(*net.UDPAddr); ok && la.IP.To4() == nil && len(la.IP) == net.IPv6len {
		return MaxPayloadIPv6
	}
	return MaxPayloadIPv4
}

// Send hands msgs to the kernel, one datagram per message, in order, and returns how
// many it accepted. On error, n counts the messages accepted before the failing one.
//
// On a connected socket every message goes to the peer. On a server socket message i
// goes to the source of message i of the most recent Recv; if there is no such message,
// Send stops there with an error wrapping ErrNoPeer. A message longer than the
// socket's largest payload fails the whole call before anything is sent, with an
// error wrapping ErrMessageTooLarge.
func (c *Conn) Send(msgs [][]byte) (n int, err error) {
	for i, m := range msgs {
		if len(m) > c.maxPayload {
			return 0, fmt.Errorf("%w: message %d is %d bytes, limit %d on %v", ErrMessageTooLarge, i, len(m), c.maxPayload, c.laddr)
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	return c.send(msgs)
}

// Recv blocks until at least one datagram has arrived, then returns every datagram
// already queued, up to min(len(bufs), len(sizes), Options.Batch), without blocking
// again. Datagram i is written into bufs[i] and its length into sizes[i].
//
// A datagram longer than its buffer ends the batch: Recv returns the datagrams before
// it and an error wrapping ErrTruncated. An expired read deadline returns an error
// satisfying errors.Is(err, os.ErrDeadlineExceeded); Close returns one wrapping
// net.ErrClosed.
func (c *Conn) Recv(bufs [][]byte, sizes []int) (n int, err error) {
	if len(sizes) < len(bufs) {
		bufs = bufs[:len(sizes)]
	}
	if len(bufs) > c.batch {
		bufs = bufs[:c.batch]
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	return c.recv(bufs, sizes)
}

// A Packet describes one packet the kernel queued at the socket, as RecvViews
// returns it: a datagram, or with UDP GRO a super-packet, several datagrams of one
// source coalesced, cut back into its datagrams.
type Packet struct {
	// Datagrams is how many of the returned datagrams the packet holds, one after
	// another: the first packet's come first. A super-packet that did not fit the
	// call ends its first part here and goes on as the next call's first packet.
	Datagrams int
	// Drops is the socket's drop counter as the kernel read it when it queued the
	// packet (SO_RXQ_OVFL; 0 when the packet carried none): how many packets the
	// socket had dropped since it opened, a dropped super-packet counting once
	// however many datagrams it held (what Linux counts, measured on 6.18). It is a
	// 32-bit counter and wraps; compare two readings by their uint32 difference.
	Drops uint32
}

// RecvViews is Recv without the copy: it blocks until at least one datagram has
// arrived, then returns every datagram already queued as views into the Conn's own
// receive buffers, up to len(views) datagrams (not limited to Options.Batch: one
// packet may hold many), and describes the packets they came in. views[i] is
// datagram i; pkts[:np] are the packets, in order, whose Datagrams sum to n. A
// view is valid until the next Recv or RecvViews; the caller must not write to it.
// With UDP GRO on (Offload) one system call returns up to Options.Batch packets and
// each may hold many datagrams; without, each packet is one datagram. Datagrams that
// do not fit views (or packets beyond len(pkts)) come first in the next call,
// without a system call. RecvStamps covers the datagrams returned, as after Recv.
//
// Errors are as for Recv. Elsewhere than on Linux it returns one datagram per call.
func (c *Conn) RecvViews(views [][]byte, pkts []Packet) (n, np int, err error) {
	if len(views) == 0 || len(pkts) == 0 {
		return 0, 0, nil
	}
	return c.recvViews(views, pkts)
}

// SetReadDeadline bounds Recv: after t, a blocked or new Recv returns an error
// satisfying errors.Is(err, os.ErrDeadlineExceeded). The zero time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.blk.on {
		c.setBlockingDeadline(t)
	}
	return c.uc.SetReadDeadline(t)
}

// SetWriteDeadline bounds Send while the send buffer is full; a datagram still waiting
// at t counts in SendErrors. The zero time means no deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// Close closes the socket and unblocks Send and Recv, which then return errors
// wrapping net.ErrClosed.
func (c *Conn) Close() error {
	c.closeBlocking()
	return c.uc.Close()
}

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer of a connected socket, or nil for a server socket.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// RecvDrops returns how many datagrams the kernel dropped at this socket since it
// was opened, mostly because its receive buffer was full (SO_MEMINFO's drops field,
// the per-socket share of Udp: RcvbufErrors). With UDP GRO on it counts packets: a
// dropped super-packet counts once. The count is exact and final,
// including drops after the last datagram read; it is a 32-bit kernel counter and
// wraps. Linux only; elsewhere the error wraps errors.ErrUnsupported.
func (c *Conn) RecvDrops() (uint64, error) { return c.recvDrops() }

// RecvQueued returns the bytes the kernel holds in the socket's receive queue,
// datagrams not yet read, counted with their overhead (SO_MEMINFO's rmem_alloc); 0
// when every datagram that reached the socket was read. Linux only; elsewhere the
// error wraps errors.ErrUnsupported.
func (c *Conn) RecvQueued() (int, error) { return c.recvQueued() }

// RxqOverflow returns the drop count carried by the most recently received datagram
// that carried one (SO_RXQ_OVFL): drops up to when that datagram was queued, never
// later ones. It is 0 until a datagram arrives after a drop, and always on systems
// without SO_RXQ_OVFL. For the final figure use RecvDrops.
func (c *Conn) RxqOverflow() uint64 { return c.rxqOvfl.Load() }

// Offload reports the segmentation offloads the socket uses, as probed at open
// (set, then read back): gso when Send hands runs of equal-sized messages to the
// kernel as one UDP_SEGMENT super-datagram, gro when UDP_GRO is on (Options.GRO) and
// Recv splits the kernel's coalesced super-packets back into datagrams. Both are
// false with Options.NoGSO and on systems other than Linux; gso is false on server sockets
// (from Listen), whose replies go to many peers. gso turns false for good if the
// kernel refuses a super-datagram (EIO, EINVAL, EMSGSIZE: a device without checksum
// offload, a route MTU below the segment size).
func (c *Conn) Offload() (gso, gro bool) { return c.gso.Load(), c.gro }

// RecvStamps writes into dst the kernel's receive times of the datagrams the most
// recent Recv returned, in order, and returns how many it wrote: min(len(dst), that
// Recv's count), or 0 when the socket has no kernel timestamps (Timestamps is false).
// A stamp is in ns since the Unix epoch on the kernel's CLOCK_REALTIME, taken when
// the datagram entered the host's receive path, before it waited in the socket's
// queue and for the reader to be scheduled; 0 for a datagram that carried none. The
// datagrams of one GRO super-packet share its stamp. Only the goroutine that calls
// Recv may call it, between Recvs; it allocates nothing.
func (c *Conn) RecvStamps(dst []int64) int {
	if !c.rxStamps {
		return 0
	}
	return c.recvStamps(dst)
}

// Batch returns the most entries one system call of the Conn moves (Options.Batch,
// 64 when it was 0): datagrams, or with the offloads on super-datagrams and
// coalesced packets (see Options.Batch).
func (c *Conn) Batch() int { return c.batch }

// Timestamps reports whether the kernel stamps each datagram the socket receives
// (SO_TIMESTAMPNS, set and read back at open): false with Options.NoTimestamps and
// on systems other than Linux.
func (c *Conn) Timestamps() bool { return c.rxStamps }

// BusyPoll reports how Recv waits, as set at open: spin is true when it spins on
// non-blocking reads (Options.BusyPoll), and kernelUs is the socket's SO_BUSY_POLL
// as read back, in µs: 50 when the kernel granted the request, else what it kept
// (net.core.busy_read, 0 by default).
func (c *Conn) BusyPoll() (spin bool, kernelUs int) { return c.busyPoll, c.busyPollUs }

// RecvMode names how Recv waits for a datagram, as set at open: RecvBlocking
// (Options.Blocking, on Linux), RecvBusyPoll (Options.BusyPoll) or RecvPoller.
func (c *Conn) RecvMode() string {
	switch {
	case c.blk.on:
		return RecvBlocking
	case c.busyPoll:
		return RecvBusyPoll
	}
	return RecvPoller
}

// SendErrors returns how many datagrams the kernel refused since the socket opened:
// those Send could not hand over (ENOBUFS, ECONNREFUSED, EAGAIN past the write
// deadline, ...) plus those reported refused afterwards through the socket's error
// queue (an ICMP port unreachable, for example), one per report.
func (c *Conn) SendErrors() uint64 { return c.sendErrs.Load() }

// SendCalls returns how many system calls Send made that handed datagrams to the
// kernel (sendmmsg on Linux; one write or sendto per datagram elsewhere), and how many
// datagrams they carried, since the socket opened. A UDP_SEGMENT super-datagram
// counts as the datagrams the kernel cuts it into. datagrams/calls is what batching
// and GSO bought: without GSO 1 with Options.Batch 1 and up to Batch per call
// otherwise; with GSO up to Batch super-datagrams of up to 128 (64 on kernels
// before 6.9) datagrams each, as many as one Send call hands over.
func (c *Conn) SendCalls() (calls, datagrams uint64) {
	return c.sendCalls.Load(), c.sentDgrams.Load()
}

// BufferSizes returns the receive and send buffer sizes the kernel granted, in bytes,
// as getsockopt reads them back (Linux doubles a request and caps it at
// net.core.rmem_max / wmem_max).
func (c *Conn) BufferSizes() (recv, send int, err error) {
	var serr error
	cerr := c.raw.Control(func(fd uintptr) {
		recv, send, serr = bufferSizes(fd)
	})
	if err := errors.Join(cerr, serr); err != nil {
		return 0, 0, fmt.Errorf("udp: buffer sizes on %v: %w", c.laddr, err)
	}
	return recv, send, nil
}

// SetBuffers asks the kernel for recv bytes of SO_RCVBUF and send bytes of SO_SNDBUF
// on the open socket; 0 leaves that one as it is. Read the grant back with
// BufferSizes.
func (c *Conn) SetBuffers(recv, send int) error {
	if recv < 0 || send < 0 {
		return fmt.Errorf("udp: SetBuffers: sizes must be >= 0 bytes, got %d, %d", recv, send)
	}
	if recv > 0 {
		if err := c.uc.SetReadBuffer(recv); err != nil {
			return fmt.Errorf("udp: receive buffer on %v: %w", c.laddr, err)
		}
	}
	if send > 0 {
		if err := c.uc.SetWriteBuffer(send); err != nil {
			return fmt.Errorf("udp: send buffer on %v: %w", c.laddr, err)
		}
	}
	return nil
}

// setPeers records the sources of the messages a Recv returned, for Send on a server
// socket.
func (c *Conn) setPeers(src []peerAddr) {
	c.peerMu.Lock()
	c.npeers = copy(c.peers, src)
	c.peerMu.Unlock()
}

// unwrapOp strips the *net.OpError that syscall.RawConn adds, so that errors read
// "udp: recvmmsg on ...: i/o timeout" while errors.Is still finds
// os.ErrDeadlineExceeded or net.ErrClosed.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
