//go:build linux

package tcp

import (
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// blockingSupported: Options.Blocking reads outside Go's poller here.
const blockingSupported = true

// Bounds of one sleep in the kernel, for Options.Blocking.
const (
	// maxBlockedRead bounds one blocking read(2) (SO_RCVTIMEO): Recv rechecks its
	// read deadline at least this often, so a deadline moved earlier by another
	// goroutine takes effect within it. Close needs no bound: it wakes the read at
	// once (shutdown(2)).
	maxBlockedRead = 50 * time.Millisecond
	// maxBlockedWrite bounds one write(2) on a full send buffer (SO_SNDTIMEO): then
	// the net package's poller waits for room, with the write deadline, as for a
	// non-blocking socket. It is how late a write deadline or Close may be noticed.
	maxBlockedWrite = 10 * time.Millisecond
)

// A blockingReader reads a TCP socket in blocking mode (O_NONBLOCK cleared, for the
// whole open file description): each Read is one read(2) that sleeps in the kernel
// on the calling goroutine's OS thread until bytes arrive, outside Go's poller, so
// the peer's data wakes this thread directly. Each sleep is bounded by SO_RCVTIMEO
// (the read deadline, or maxBlockedRead when that is further away, in whole ms, set
// again only when it changes). Writes keep going through the net package, which on
// a blocking socket sleeps in write(2) at most maxBlockedWrite (SO_SNDTIMEO) and then
// parks in its poller as usual. It allocates nothing per Read. One goroutine at a
// time may Read; close and setDeadline may be called from any.
type blockingReader struct {
	raw    syscall.RawConn
	err    error       // from setting the socket up: every Read returns it
	closed atomic.Bool // set by close before it shuts the receive side
	base   time.Time   // the reference of deadline, on the monotonic clock
	// deadline is the read deadline in ns since base; math.MaxInt64 = none.
	deadline atomic.Int64

	// Owned by the goroutine in Read.
	timeo   int64            // SO_RCVTIMEO now set, ns; 0 = not set yet
	tv      unix.Timeval     // in: the SO_RCVTIMEO to set
	p       []byte           // in: where the callback reads to
	n       int              // out: bytes read
	errno   syscall.Errno    // out: read(2) or setsockopt failed
	again   bool             // out: SO_RCVTIMEO passed with nothing read (EAGAIN)
	read    func(fd uintptr) // built once: a closure per Read would allocate
	setTimo func(fd uintptr) // sets SO_RCVTIMEO to tv
}

// newBlockingReader puts c's socket in blocking mode and returns its reader.
func newBlockingReader(c syscall.Conn) *blockingReader {
	b := &blockingReader{base: time.Now()}
	b.deadline.Store(math.MaxInt64)
	b.raw, b.err = c.SyscallConn()
	if b.err != nil {
		return b
	}
	b.read = func(fd uintptr) {
		for {
			r, _, e := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b.p))), uintptr(len(b.p)))
			switch e {
			case 0:
				b.n = int(r)
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				b.again = true
			default:
				b.errno = e
			}
			return
		}
	}
	b.setTimo = func(fd uintptr) {
		_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO,
			uintptr(unsafe.Pointer(&b.tv)), unsafe.Sizeof(b.tv), 0)
		b.errno = e
	}
	var serr error
	cerr := b.raw.Control(func(fd uintptr) {
		tv := unix.NsecToTimeval(int64(maxBlockedWrite))
		if err := unix.SetsockoptTimeval(int(fd), unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			serr = os.NewSyscallError("setsockopt SO_SNDTIMEO", err)
			return
		}
		if err := unix.SetNonblock(int(fd), false); err != nil {
			serr = os.NewSyscallError("fcntl", err)
		}
	})
	if cerr != nil {
		b.err = cerr
	} else if serr != nil {
		b.err = serr
	}
	return b
}

// Read reads into p as net.Conn's Read does (0 bytes and no error is io.EOF; a
// failed read(2) is an *os.SyscallError), sleeping in the kernel until there are
// bytes. An expired read deadline returns os.ErrDeadlineExceeded, Close
// net.ErrClosed.
func (b *blockingReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// With GOMAXPROCS 1, yield first: a thread asleep in a system call keeps its
	// processor until the runtime's monitor takes it back (20 µs to 10 ms), so a
	// goroutine made runnable meanwhile (the peer's) would wait that long; this runs
	// it first, on this thread (udp's recvBlocking says more).
	if runtime.GOMAXPROCS(0) == 1 {
		runtime.Gosched()
	}
	b.p = p
	defer func() { b.p = nil }() // keep no reference to the caller's buffer
	for {
		if b.closed.Load() {
			return 0, net.ErrClosed
		}
		left := b.deadline.Load() - int64(time.Since(b.base))
		if left <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		wait := min(left, int64(maxBlockedRead))
		wait = (wait + int64(time.Millisecond) - 1) / int64(time.Millisecond) * int64(time.Millisecond)
		if wait != b.timeo {
			b.tv, b.errno = unix.NsecToTimeval(wait), 0
			if err := b.raw.Control(b.setTimo); err != nil {
				return 0, err
			}
			if b.errno != 0 {
				return 0, os.NewSyscallError("setsockopt SO_RCVTIMEO", b.errno)
			}
			b.timeo = wait
		}
		b.n, b.errno, b.again = 0, 0, false
		if err := b.raw.Control(b.read); err != nil {
			return 0, err
		}
		switch {
		case b.closed.Load():
			return 0, net.ErrClosed // a shut receive side reads as end of stream: not the peer's
		case b.again:
		case b.errno != 0:
			return 0, os.NewSyscallError("read", b.errno)
		case b.n == 0:
			return 0, io.EOF
		default:
			return b.n, nil
		}
	}
}

// setDeadline records the read deadline t.
func (b *blockingReader) setDeadline(t time.Time) {
	if t.IsZero() {
		b.deadline.Store(math.MaxInt64)
		return
	}
	b.deadline.Store(int64(t.Sub(b.base)))
}

// close wakes a Read asleep in the kernel: shutdown(SHUT_RD) marks the receive side
// shut and wakes its sleepers (it sends nothing to the peer), and Read, seeing
// closed, returns net.ErrClosed. The caller then closes the connection, which the
// net package does once the woken read has left the socket.
func (b *blockingReader) close() {
	if b.err != nil || b.closed.Swap(true) {
		return
	}
	_ = b.raw.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RD) })
}
