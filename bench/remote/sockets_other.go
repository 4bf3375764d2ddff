//go:build !linux

package remote

import (
	"net"
	"syscall"
)

// bufferControl returns nil here: the buffer sizes are set on each connection once it
// is established (tcpBuffersAfter), so its window scale may not fit them.
func bufferControl(recv, send int) func(network, address string, rc syscall.RawConn) error {
	return nil
}

// tcpBuffersAfter sets o's buffer sizes on an established TCP data connection.
func tcpBuffersAfter(c net.Conn, o SocketOptions) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	if o.RecvBuffer > 0 {
		if err := tc.SetReadBuffer(o.RecvBuffer); err != nil {
			return err
		}
	}
	if o.SendBuffer > 0 {
		if err := tc.SetWriteBuffer(o.SendBuffer); err != nil {
			return err
		}
	}
	return nil
}
