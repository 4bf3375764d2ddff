//go:build linux

package tcp

import (
	"io"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// busyPollSupported: Options.BusyPoll works here.
const busyPollSupported = true

// busyPollUs is the SO_BUSY_POLL a busy-polling socket asks for, in µs.
const busyPollUs = 50

// A spinReader reads a TCP socket without ever parking in Go's poller: each Read
// tries a non-blocking read(2) through RawConn.Read, which first checks the read
// deadline and Close, and yields the processor (runtime.Gosched) between tries.
// It allocates nothing per Read. One goroutine at a time may use it.
type spinReader struct {
	raw syscall.RawConn
	err error // from SyscallConn: every Read returns it

	p     []byte                // in: where the callback reads to
	n     int                   // out: bytes read
	errno syscall.Errno         // out: read(2) failed
	again bool                  // out: nothing to read yet (EAGAIN)
	fn    func(fd uintptr) bool // built once: a closure per Read would allocate
}

// newSpinReader returns a spinReader on c's socket (a *net.TCPConn, or a wrapper
// that offers its socket: Frame) and asks for SO_BUSY_POLL on it,
// returning what the socket reads back (µs; 0 when refused: raising it above
// net.core.busy_read needs CAP_NET_ADMIN).
func newSpinReader(c syscall.Conn) (*spinReader, int) {
	s := &spinReader{}
	s.raw, s.err = c.SyscallConn()
	if s.err != nil {
		return s, 0
	}
	s.fn = func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), s.p)
			switch err {
			case nil:
				s.n = n
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				s.again = true
			default:
				s.errno, _ = err.(syscall.Errno)
				if s.errno == 0 {
					s.errno = unix.EIO // cannot happen: x/sys returns Errno values
				}
			}
			return true // never wait in the poller: Read retries
		}
	}
	var us int
	_ = s.raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BUSY_POLL, busyPollUs) // refused: read back what stays
		us, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BUSY_POLL)
	})
	return s, us
}

// Read reads into p as net.Conn's Read does (0 bytes and no error is io.EOF; a
// failed read(2) is an *os.SyscallError), spinning until there are bytes to read.
// An expired read deadline or Close ends it with RawConn.Read's error, which wraps
// os.ErrDeadlineExceeded or net.ErrClosed.
func (s *spinReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	s.p = p
	defer func() { s.p = nil }() // keep no reference to the caller's buffer
	for {
		s.n, s.errno, s.again = 0, 0, false
		if err := s.raw.Read(s.fn); err != nil {
			return 0, err
		}
		switch {
		case s.again:
			runtime.Gosched()
		case s.errno != 0:
			return 0, os.NewSyscallError("read", s.errno)
		case s.n == 0:
			return 0, io.EOF
		default:
			return s.n, nil
		}
	}
}
