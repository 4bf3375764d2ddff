//go:build linux

package tcp

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A vecReader reads a TCP socket into two buffers with one readv(2), through
// RawConn.Read, so Go's poller waits for data, and the read deadline and Close end the
// wait, as for the socket's own Read. It allocates nothing per read. One goroutine at
// a time may use it.
type vecReader struct {
	raw   syscall.RawConn
	iov   [2]unix.Iovec         // in: the buffers; cleared after each read
	niov  int                   // in: how many of iov to use
	n     int                   // out: bytes read
	errno syscall.Errno         // out: readv(2) failed
	fn    func(fd uintptr) bool // built once: a closure per read would allocate
}

// newVecReader returns a vecReader on c's socket (a *net.TCPConn, or a wrapper that
// offers its socket: Frame), or nil when c has none to offer.
func newVecReader(c syscall.Conn) vectorReader {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	v := &vecReader{raw: raw}
	v.fn = func(fd uintptr) bool {
		for {
			n, _, e := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&v.iov[0])), uintptr(v.niov))
			switch e {
			case 0:
				v.n = int(n)
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // nothing yet: wait in the poller
			default:
				v.errno = e
			}
			return true
		}
	}
	return v
}

// readv reads into a, then b, as one read: b gets bytes only once a is full. It
// returns as net.Conn's Read does: 0 bytes and no error is io.EOF; a failed readv(2)
// is an *os.SyscallError; an expired deadline or Close is RawConn.Read's error, which
// wraps os.ErrDeadlineExceeded or net.ErrClosed. a must not be empty.
func (v *vecReader) readv(a, b []byte) (int, error) {
	v.iov[0].Base = &a[0]
	v.iov[0].SetLen(len(a))
	v.niov = 1
	if len(b) > 0 {
		v.iov[1].Base = &b[0]
		v.iov[1].SetLen(len(b))
		v.niov = 2
	}
	v.n, v.errno = 0, 0
	err := v.raw.Read(v.fn)
	v.iov = [2]unix.Iovec{} // keep no reference to the caller's buffer
	switch {
	case err != nil:
		return 0, err
	case v.errno != 0:
		return 0, os.NewSyscallError("readv", v.errno)
	case v.n == 0:
		return 0, io.EOF
	}
	return v.n, nil
}
