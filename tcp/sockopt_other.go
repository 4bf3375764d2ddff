//go:build !linux

package tcp

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
)

// beforeConnect returns nil: outside Linux the buffer sizes are set after the
// handshake, by setBuffersAfter, so the window scale may not fit them.
func beforeConnect(Options) func(network, address string, rc syscall.RawConn) error {
	return nil
}

// BeforeConnect returns nil outside Linux: SetBuffersAfter sets the sizes.
func BeforeConnect(recv, send int) func(network, address string, rc syscall.RawConn) error {
	return nil
}

// SetBuffersAfter sets SO_RCVBUF and SO_SNDBUF (0 leaves one) on an established TCP
// connection; anything but a *net.TCPConn is left alone.
func SetBuffersAfter(c net.Conn, recv, send int) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	return setBuffersAfter(tc, Options{RecvBuffer: recv, SendBuffer: send})
}

// setBuffersAfter sets SO_RCVBUF and SO_SNDBUF on an established connection.
func setBuffersAfter(c *net.TCPConn, o Options) error {
	if o.RecvBuffer > 0 {
		if err := c.SetReadBuffer(o.RecvBuffer); err != nil {
			return err
		}
	}
	if o.SendBuffer > 0 {
		if err := c.SetWriteBuffer(o.SendBuffer); err != nil {
			return err
		}
	}
	return nil
}

// setBuffers sets SO_RCVBUF and SO_SNDBUF through the net package, which needs a
// *net.TCPConn here; 0 leaves one as it is.
func setBuffers(c syscall.Conn, recv, send int) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("setsockopt SO_RCVBUF on %T: %w on %s", c, errors.ErrUnsupported, runtime.GOOS)
	}
	return setBuffersAfter(tc, Options{RecvBuffer: recv, SendBuffer: send})
}

// getBuffers is not implemented outside Linux.
func getBuffers(syscall.Conn) (recv, send int, err error) {
	return 0, 0, fmt.Errorf("getsockopt SO_RCVBUF: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
