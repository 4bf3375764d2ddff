package tcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"time"
)

// DefaultMaxMessage is the MaxMessage used when Options.MaxMessage is 0, in bytes.
const DefaultMaxMessage = 1 << 24

// ErrMessageTooLarge reports a message longer than Options.MaxMessage, or a received
// frame longer than the buffer offered for it. Errors wrap it with the sizes involved.
var ErrMessageTooLarge = errors.New("tcp: message exceeds the maximum size")

// Buffer sizes, in bytes. Each Conn allocates its read buffer on its first Recv and
// its write buffer on its first Send.
const (
	readBufSize  = 256 << 10 // bytes; one read syscall takes up to this much, at most, of frames under directMin
	writeBufSize = 64 << 10  // bytes; small frames are copied here, one write per batch
	initBufSize  = 4 << 10   // bytes; both buffers start here and grow with the traffic, so a
	// short-lived connection (the connect experiment) does not pay for 320 KiB of buffers
	copyMax = 8 << 10 // bytes; larger messages go to writev uncopied
)

// Options configure a Conn. The zero value asks for the kernel's defaults and
// leaves Nagle's algorithm on (TCP_NODELAY off), unlike the net package, which
// turns TCP_NODELAY on for every connection.
type Options struct {
	// NoDelay sets TCP_NODELAY: segments leave without waiting to coalesce small writes.
	NoDelay bool
	// RecvBuffer is the SO_RCVBUF request, in bytes; 0 keeps the kernel default and
	// its receive-buffer autotuning. Linux doubles the request and caps it at
	// net.core.rmem_max: read the grant back with Conn.BufferSizes.
	RecvBuffer int
	// SendBuffer is the SO_SNDBUF request, in bytes; 0 keeps the kernel default.
	// Linux doubles it and caps it at net.core.wmem_max.
	SendBuffer int
	// MaxMessage is the largest message sent or frame accepted, in bytes;
	// 0 means DefaultMaxMessage. At most 4294967295 (the length prefix is 32 bits).
	MaxMessage int
	// BusyPoll makes Recv spin when it must read from the socket: it retries a
	// non-blocking read(2) until bytes are there, the read deadline passes or the
	// Conn is closed, instead of parking in Go's poller until the kernel wakes it.
	// That saves the wake-up (lower, steadier latency) and costs a full CPU core per
	// connection while Recv waits. It also asks for SO_BUSY_POLL of 50 µs, which the
	// kernel grants only with CAP_NET_ADMIN (above net.core.busy_read) and which
	// polls only devices with NAPI, not loopback: Conn.BusyPoll reports what was
	// granted. Linux only; elsewhere Dial and Listen fail.
	BusyPoll bool
	// Blocking makes Recv sleep in the kernel instead of in Go's poller: the socket
	// is put in blocking mode and Recv reads with a blocking read(2) on the calling
	// goroutine's OS thread, which the peer's data wakes directly, saving the
	// poller's wake-up and the scheduler's hand-over (about what sockperf's blocking
	// recv costs). The thread stays blocked while Recv waits: use it for a few
	// latency-bound connections (request/response), not for many. Read deadlines
	// and Close work as without it: Close wakes a blocked Recv at once; a deadline is
	// checked at least every 50 ms and honoured to the kernel's timer granularity (a
	// jiffy, 1–10 ms). Send still goes through the net package: on a full send
	// buffer it sleeps in write(2) at most 10 ms (SO_SNDTIMEO), then in the poller.
	// Not with BusyPoll. Linux only; elsewhere it is ignored (RecvMode says so).
	Blocking bool
}

// Receive modes, as RecvMode names them.
const (
	RecvPoller   = "poller"    // Recv parks in Go's network poller until the socket is readable
	RecvBlocking = "blocking"  // Recv sleeps in a blocking read(2) (Options.Blocking)
	RecvBusyPoll = "busy-poll" // Recv spins on non-blocking reads (Options.BusyPoll)
)

// resolve checks o and fills in its defaults.
func (o Options) resolve() (Options, error) {
	switch {
	case o.RecvBuffer < 0:
		return o, fmt.Errorf("tcp: Options.RecvBuffer: must be >= 0 bytes, got %d", o.RecvBuffer)
	case o.SendBuffer < 0:
		return o, fmt.Errorf("tcp: Options.SendBuffer: must be >= 0 bytes, got %d", o.SendBuffer)
	case o.MaxMessage < 0 || uint64(o.MaxMessage) > maxFrameLen:
		return o, fmt.Errorf("tcp: Options.MaxMessage: must be 0..%d bytes, got %d", uint64(maxFrameLen), o.MaxMessage)
	case o.BusyPoll && !busyPollSupported:
		return o, fmt.Errorf("tcp: Options.BusyPoll: %w on %s", errors.ErrUnsupported, runtime.GOOS)
	case o.BusyPoll && o.Blocking:
		return o, errors.New("tcp: Options.Blocking and Options.BusyPoll: choose one way for Recv to wait, got both")
	}
	o.Blocking = o.Blocking && blockingSupported
	if o.MaxMessage == 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	return o, nil
}

// A Conn is one end of a TCP connection that moves whole messages, framed as the
// package doc describes.
//
// One goroutine may call Send while another calls Recv; neither method may be
// called by two goroutines at once. Close may be called at any time and unblocks
// both.
type Conn struct {
	nc    net.Conn     // the byte stream: deadlines, Close, addresses
	tcp   *net.TCPConn // nc as a TCP socket; nil when Frame got another net.Conn
	raw   syscall.Conn // the socket, for socket options and TCP_INFO: tcp, or a wrapper's (Frame); nil = none
	raddr net.Addr     // for errors
	rd    frameReader
	wr    frameWriter

	busyPoll   bool // Options.BusyPoll: rd reads through a spinReader
	busyPollUs int  // SO_BUSY_POLL as read back at open, µs; 0 = off or refused
	// blk, with Options.Blocking, is what rd reads through: blocking read(2)s
	// outside Go's poller (blocking_linux.go); nil otherwise.
	blk *blockingReader
}

func newConn(c *net.TCPConn, o Options) *Conn {
	cn := &Conn{
		nc:    c,
		tcp:   c,
		raw:   c,
		raddr: c.RemoteAddr(),
		rd:    frameReader{src: c, max: o.MaxMessage},
		wr:    frameWriter{dst: c, copyMax: copyMax, max: o.MaxMessage},
	}
	if o.BusyPoll {
		var src io.Reader
		src, cn.busyPollUs = newSpinReader(c)
		cn.rd.src, cn.busyPoll = src, true
	} else {
		cn.rd.vec = newVecReader(c) // reads the socket as c.Read does, two buffers at once
	}
	if o.Blocking {
		cn.blk = newBlockingReader(c)
		// Every read goes through blk, one read(2) at a time: the vectored reader
		// would wait in Go's poller, which a blocking socket must not.
		cn.rd.src, cn.rd.vec = cn.blk, nil
	}
	return cn
}

// Frame frames messages over c, an established byte stream that is not necessarily a
// *net.TCPConn (remote mode wraps its data connections to pace them). Socket options
// (Options.RecvBuffer, SendBuffer, NoDelay) are refused unless c is a *net.TCPConn.
// A wrapper that implements syscall.Conn (its socket's) still has BufferSizes,
// SetBuffers and Info, and may ask for Options.BusyPoll or Blocking: Recv then spins, or sleeps, on the
// socket itself, which is what the wrapper's Read would read (a wrapper that changes
// what is read must not offer its socket); without BusyPoll, Recv reads the ends of
// large messages from that socket with readv(2), as on a *net.TCPConn. Without syscall.Conn they return errors
// wrapping errors.ErrUnsupported. The Conn owns c: Close closes it.
func Frame(c net.Conn, o Options) (*Conn, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// An established connection: buffer sizes set now no longer shape the
		// handshake's window scale.
		err := tc.SetNoDelay(o.NoDelay)
		if err == nil && o.RecvBuffer > 0 {
			err = tc.SetReadBuffer(o.RecvBuffer)
		}
		if err == nil && o.SendBuffer > 0 {
			err = tc.SetWriteBuffer(o.SendBuffer)
		}
		if err != nil {
			return nil, wrap("configure connection to", tc.RemoteAddr().String(), err)
		}
		return newConn(tc, o), nil
	}
	raw, _ := c.(syscall.Conn)
	if o.RecvBuffer != 0 || o.SendBuffer != 0 || o.NoDelay || ((o.BusyPoll || o.Blocking) && raw == nil) {
		return nil, fmt.Errorf("tcp: Frame: socket options need a *net.TCPConn, got %T: %w", c, errors.ErrUnsupported)
	}
	cn := &Conn{
		nc:    c,
		raw:   raw,
		raddr: c.RemoteAddr(),
		rd:    frameReader{src: c, max: o.MaxMessage},
		wr:    frameWriter{dst: c, copyMax: copyMax, max: o.MaxMessage},
	}
	if o.BusyPoll {
		var src io.Reader
		src, cn.busyPollUs = newSpinReader(raw)
		cn.rd.src, cn.busyPoll = src, true
	} else if raw != nil {
		cn.rd.vec = newVecReader(raw) // the socket the wrapper's Read reads
	}
	if o.Blocking {
		cn.blk = newBlockingReader(raw)
		cn.rd.src, cn.rd.vec = cn.blk, nil // as in newConn
	}
	return cn, nil
}

// Send writes msgs, each as one frame, in order, with as few syscalls as it can:
// messages up to 8 KiB are copied into a buffer with their length prefixes, larger
// ones are passed to writev as they are. It returns how many messages were written
// whole; on error, n counts those written before it and the error wraps the cause
// (errno values stay reachable with errors.Is).
//
// A message longer than MaxMessage is not written at all: Send writes the messages
// before it and returns an error wrapping ErrMessageTooLarge. Zero-length messages
// are allowed.
//
// If a write deadline expires in the middle of a frame, Send copies the frame's
// unwritten rest and counts the message as sent; the next Send writes that rest
// first, so the stream stays framed and the caller resends only msgs[n:]. After any
// other error the connection is unusable for sending.
func (c *Conn) Send(msgs [][]byte) (n int, err error) {
	if need := batchBytes(msgs); cap(c.wr.buf) < need && cap(c.wr.buf) < writeBufSize {
		// Grow between calls only: a write in progress references buf.
		c.wr.buf = make([]byte, 0, min(writeBufSize, max(initBufSize, 2*cap(c.wr.buf), need)))
	}
	n, err = c.wr.write(msgs)
	if err != nil {
		return n, c.opError("send to", err)
	}
	return n, nil
}

// Recv blocks until at least one whole message has arrived, then returns as many as
// are already buffered in user space (up to min(len(bufs), len(sizes))) without
// blocking again. Message i is copied into bufs[i] and sizes[i] is its length.
//
// Recv returns (0, io.EOF) when the peer closed the connection between messages, and
// an error wrapping io.ErrUnexpectedEOF when it closed inside one. A frame longer
// than MaxMessage is an error wrapping ErrMessageTooLarge after which the stream is
// unusable; a frame longer than the buffer offered for it is the same error, but
// nothing is consumed and a Recv with a larger buffer returns it.
//
// A read deadline that expires returns an error satisfying
// errors.Is(err, os.ErrDeadlineExceeded) and loses nothing: a frame that was partly
// read, even partly through its length prefix, is resumed exactly by the next Recv.
// Messages already copied in a call are returned with a nil error.
func (c *Conn) Recv(bufs [][]byte, sizes []int) (n int, err error) {
	if c.rd.buf == nil {
		c.rd.buf = make([]byte, initBufSize)
		c.rd.grow = readBufSize
	}
	n, err = c.rd.read(bufs, sizes)
	if err != nil && err != io.EOF {
		return n, c.opError("recv from", err)
	}
	return n, err
}

// SetReadDeadline sets the deadline for Recv; see net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.blk != nil {
		c.blk.setDeadline(t)
	}
	if err := c.nc.SetReadDeadline(t); err != nil {
		return c.opError("set read deadline on", err)
	}
	return nil
}

// SetWriteDeadline sets the deadline for Send; see net.Conn and Send.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if err := c.nc.SetWriteDeadline(t); err != nil {
		return c.opError("set write deadline on", err)
	}
	return nil
}

// Close closes the connection. Blocked Send and Recv calls return errors wrapping
// net.ErrClosed, as do later calls.
func (c *Conn) Close() error {
	if c.blk != nil {
		c.blk.close()
	}
	if err := c.nc.Close(); err != nil {
		return c.opError("close connection to", err)
	}
	return nil
}

// LocalAddr returns the local address, a *net.TCPAddr.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's address, a *net.TCPAddr.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// NetConn returns the underlying byte stream, for experiments that bypass framing.
// Bytes that Recv already buffered are not visible through it, and writing to it
// between Sends corrupts the framing the peer expects: use either the Conn's
// messages or the raw stream for a given direction, not both. It is nil for a Conn
// that Frame made over another net.Conn.
func (c *Conn) NetConn() *net.TCPConn { return c.tcp }

// BufferSizes reads back the socket's receive and send buffer sizes, in bytes, as the
// kernel granted them (SO_RCVBUF and SO_SNDBUF; Linux doubles requests and caps them
// at net.core.rmem_max and wmem_max). Elsewhere it returns an error wrapping
// errors.ErrUnsupported.
func (c *Conn) BufferSizes() (recv, send int, err error) {
	if c.raw == nil {
		return 0, 0, c.opError("read buffer sizes of connection to", errNotTCP)
	}
	recv, send, err = getBuffers(c.raw)
	if err != nil {
		return 0, 0, c.opError("read buffer sizes of connection to", err)
	}
	return recv, send, nil
}

// SetBuffers asks the kernel for recv bytes of SO_RCVBUF and send bytes of SO_SNDBUF
// on the open connection; 0 leaves that one as it is. Read the grant back with
// BufferSizes (Linux doubles a request and caps it at net.core.rmem_max and
// wmem_max). A size set now turns the kernel's autotuning off for that buffer, and
// cannot grow the window past the scale the handshake fixed: it is for shrinking.
// Off Linux it works only on a *net.TCPConn.
func (c *Conn) SetBuffers(recv, send int) error {
	if recv < 0 || send < 0 {
		return fmt.Errorf("tcp: SetBuffers: sizes must be >= 0 bytes, got %d, %d", recv, send)
	}
	if c.raw == nil {
		return c.opError("set buffer sizes of connection to", errNotTCP)
	}
	if err := setBuffers(c.raw, recv, send); err != nil {
		return c.opError("set buffer sizes of connection to", err)
	}
	return nil
}

// BusyPoll reports how Recv waits, as set at open: spin is true when it spins on
// non-blocking reads (Options.BusyPoll), and kernelUs is the socket's SO_BUSY_POLL
// as read back, in µs: 50 when the kernel granted the request, else what it kept
// (net.core.busy_read, 0 by default).
func (c *Conn) BusyPoll() (spin bool, kernelUs int) { return c.busyPoll, c.busyPollUs }

// RecvMode names how Recv waits for data, as set at open: RecvBlocking
// (Options.Blocking, on Linux), RecvBusyPoll (Options.BusyPoll) or RecvPoller.
func (c *Conn) RecvMode() string {
	switch {
	case c.blk != nil:
		return RecvBlocking
	case c.busyPoll:
		return RecvBusyPoll
	}
	return RecvPoller
}

// Info returns a snapshot of the kernel's TCP_INFO for the connection. On systems
// other than Linux it returns an error wrapping errors.ErrUnsupported.
func (c *Conn) Info() (Info, error) {
	if c.raw == nil {
		return Info{}, c.opError("read TCP_INFO of connection to", errNotTCP)
	}
	info, err := getInfo(c.raw)
	if err != nil {
		return Info{}, c.opError("read TCP_INFO of connection to", err)
	}
	return info, nil
}

// errNotTCP is the error of a socket query on a Conn that Frame made over a stream
// that is neither a *net.TCPConn nor a syscall.Conn.
var errNotTCP = fmt.Errorf("no socket under the stream (tcp.Frame): %w", errors.ErrUnsupported)

// opError wraps err as "tcp: <op> <peer>: <cause>". The net package's *net.OpError
// layer is dropped, since it repeats the operation and the addresses; the cause
// under it (a *os.SyscallError, os.ErrDeadlineExceeded, net.ErrClosed) is kept.
func (c *Conn) opError(op string, err error) error {
	return wrap(op, c.raddr, err)
}

func wrap(op string, addr any, err error) error {
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
		err = oe.Err
	}
	return fmt.Errorf("tcp: %s %v: %w", op, addr, err)
}

// batchBytes is the room the copied frames of msgs take in the write buffer.
func batchBytes(msgs [][]byte) int {
	n := 0
	for _, m := range msgs {
		n += headerLen
		if len(m) <= copyMax {
			n += len(m)
		}
	}
	return n
}
