package bench

import "github.com/tcpvsudp/tcpvsudp/tcp"

// FramedTCP makes c, a TCP connection framed over a stream opened elsewhere
// (tcp.Frame over a far end's data path), a Transport with the capabilities its
// socket has: TCPInfoer (retransmits, the time the receive window or the send buffer
// limited the sender), BufferSizer and BufferSetter. Where c has no socket under it,
// they return errors and the cell reports without them.
func FramedTCP(c *tcp.Conn) Transport { return framedTCP{c} }

// framedTCP is tcpConn without the raw stream: a framed connection's bytes are
// the framing's.
type framedTCP struct{ *tcp.Conn }

func (c framedTCP) TCPInfo() (TCPInfo, error) { return tcpConn{c.Conn}.TCPInfo() }

var (
	_ TCPInfoer    = framedTCP{}
	_ BufferSizer  = framedTCP{}
	_ BufferSetter = framedTCP{}
)
