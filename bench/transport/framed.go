package transport

import (
	"net"

	"github.com/tcpvsudp/tcpvsudp/tcp"
)

// FramedTCP makes c, a TCP connection framed over a stream opened elsewhere
// (tcp.Frame over a far end's data path), a Transport with the capabilities its
// socket has: TCPInfoer (retransmits, the time the receive window or the send buffer
// limited the sender), BufferSizer and BufferSetter; and, with raw (the stream c
// frames) not nil, rawStreamer, for boundaries to write and read the stream
// unframed. Where c has no socket under it, they return errors and the cell
// reports without them.
func FramedTCP(c *tcp.Conn, raw net.Conn) Transport {
	if raw == nil {
		return framedTCP{c}
	}
	return framedRawTCP{framedTCP{c}, raw}
}

// framedTCP is tcpConn over a stream opened elsewhere.
type framedTCP struct{ *tcp.Conn }

func (c framedTCP) TCPInfo() (TCPInfo, error) { return tcpConn{c.Conn}.TCPInfo() }

// framedRawTCP is a framedTCP that offers the stream under its framing.
type framedRawTCP struct {
	framedTCP
	raw net.Conn
}

// RawStream returns the stream under the framing.
func (c framedRawTCP) RawStream() net.Conn { return c.raw }

var (
	_ TCPInfoer    = framedTCP{}
	_ BufferSizer  = framedTCP{}
	_ BufferSetter = framedTCP{}
	_ RawStreamer  = framedRawTCP{}
)
