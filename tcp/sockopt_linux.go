package tcp

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// beforeConnect is BeforeConnect with o's sizes.
func beforeConnect(o Options) func(network, address string, rc syscall.RawConn) error {
	return BeforeConnect(o.RecvBuffer, o.SendBuffer)
}

// BeforeConnect returns a Control function for net.Dialer and net.ListenConfig that
// sets SO_RCVBUF and SO_SNDBUF (0 leaves one) before connect(2) or listen(2): the
// window scale is fixed by the handshake, and accepted sockets inherit the
// listener's sizes. It returns nil when both are 0. Outside Linux it returns nil and
// SetBuffersAfter sets the sizes instead.
func BeforeConnect(recv, send int) func(network, address string, rc syscall.RawConn) error {
	if recv == 0 && send == 0 {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error { return setRawBuffers(rc, recv, send) }
}

// SetBuffersAfter sets SO_RCVBUF and SO_SNDBUF on an established TCP connection
// where BeforeConnect could not; on Linux it does nothing: BeforeConnect set them.
func SetBuffersAfter(net.Conn, int, int) error { return nil }

// setBuffersAfter does nothing on Linux: beforeConnect set the sizes.
func setBuffersAfter(*net.TCPConn, Options) error { return nil }

// setBuffers sets SO_RCVBUF and SO_SNDBUF on an open socket; 0 leaves one as it is.
func setBuffers(c syscall.Conn, recv, send int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return setRawBuffers(rc, recv, send)
}

// setRawBuffers sets SO_RCVBUF and SO_SNDBUF on rc's socket; 0 leaves one as it is.
func setRawBuffers(rc syscall.RawConn, recv, send int) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		if recv > 0 {
			if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, recv); err != nil {
				err = os.NewSyscallError("setsockopt SO_RCVBUF", err)
				return
			}
		}
		if send > 0 {
			if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, send); err != nil {
				err = os.NewSyscallError("setsockopt SO_SNDBUF", err)
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// getBuffers reads SO_RCVBUF and SO_SNDBUF back, in bytes.
func getBuffers(c syscall.Conn) (recv, send int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	cerr := rc.Control(func(fd uintptr) {
		recv, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err != nil {
			err = os.NewSyscallError("getsockopt SO_RCVBUF", err)
			return
		}
		send, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err != nil {
			err = os.NewSyscallError("getsockopt SO_SNDBUF", err)
		}
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	return recv, send, err
}
