package tcp

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// beforeConnect returns a Control function for net.Dialer and net.ListenConfig that
// sets SO_RCVBUF and SO_SNDBUF before connect(2) or listen(2): the window scale is
// fixed by the handshake, and accepted sockets inherit the listener's sizes.
// It returns nil when o asks for the kernel defaults.
func beforeConnect(o Options) func(network, address string, rc syscall.RawConn) error {
	if o.RecvBuffer == 0 && o.SendBuffer == 0 {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			if o.RecvBuffer > 0 {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, o.RecvBuffer)
				if err != nil {
					err = os.NewSyscallError("setsockopt SO_RCVBUF", err)
					return
				}
			}
			if o.SendBuffer > 0 {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, o.SendBuffer)
				if err != nil {
					err = os.NewSyscallError("setsockopt SO_SNDBUF", err)
				}
			}
		})
		if cerr != nil {
			return cerr
		}
		return err
	}
}

// setBuffersAfter does nothing on Linux: beforeConnect set the sizes.
func setBuffersAfter(*net.TCPConn, Options) error { return nil }

// setBuffers sets SO_RCVBUF and SO_SNDBUF on an open socket; 0 leaves one as it is.
func setBuffers(c syscall.Conn, recv, send int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
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
