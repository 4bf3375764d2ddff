package remote

import (
	"net"
	"syscall"

	"github.com/tcpvsudp/tcpvsudp/tcp"
)

// bufferControl returns a Control function that sets SO_RCVBUF and SO_SNDBUF (0
// leaves one) before listen(2) or connect(2), where the system can (tcp.BeforeConnect):
// a TCP connection's window scale is fixed by its handshake, and accepted
// connections inherit the listener's sizes. Elsewhere it is nil, and
// tcpBuffersAfter sets them.
func bufferControl(recv, send int) func(network, address string, rc syscall.RawConn) error {
	return tcp.BeforeConnect(recv, send)
}

// tcpBuffersAfter sets o's buffer sizes on an established TCP data connection where
// bufferControl could not (tcp.SetBuffersAfter); on Linux it does nothing.
func tcpBuffersAfter(c net.Conn, o SocketOptions) error {
	return tcp.SetBuffersAfter(c, o.RecvBuffer, o.SendBuffer)
}
