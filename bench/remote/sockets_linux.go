package remote

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// bufferControl returns a Control function that sets SO_RCVBUF and SO_SNDBUF (0
// leaves one) before listen(2) or connect(2): a TCP connection's window scale is
// fixed by its handshake, and accepted connections inherit the listener's sizes.
func bufferControl(recv, send int) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
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
}

// tcpBuffersAfter does nothing here: bufferControl set the sizes before the handshake.
func tcpBuffersAfter(net.Conn, SocketOptions) error { return nil }
