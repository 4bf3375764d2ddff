package transport

import (
	"context"
	"net"
	"time"
)

// A Transport moves whole messages. The caller owns every buffer; an implementation
// keeps no reference after a call returns. One sender and one receiver goroutine may
// use it at once.
//
// Send hands the messages to the kernel in order and returns how many were accepted
// whole; on error, n counts those accepted before it. Recv blocks until at least one
// message has arrived, then returns as many as are already waiting (up to len(bufs));
// sizes[i] is the length of message i, written into bufs[i]. A message larger than its
// buffer is an error, never a silent truncation. Close unblocks Send and Recv.
//
// A datagram server socket (see Listener) is shared by every peer: its Send answers the
// sources of the messages returned by its most recent Recv, message i going to the
// source of message i. Only an echo loop that calls Recv then Send in one goroutine may
// use it that way.
type Transport interface {
	Send(msgs [][]byte) (n int, err error)
	Recv(bufs [][]byte, sizes []int) (n int, err error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// A Listener hands out the server-side endpoints of a transport.
//
// A connection-oriented transport (TCP) returns a new Transport per client from Accept.
// A datagram transport (UDP) has no connections: its first Accept returns the single
// socket that serves every client, and later calls block until Close or ctx is done.
// The difference is the point: count what Accept returns to see it.
type Listener interface {
	Accept(ctx context.Context) (Transport, error)
	Addr() net.Addr
	// Close stops accepting. Accepted TCP connections stay open; the one UDP socket
	// is closed with its listener, since it is the listener.
	Close() error
}

// A Network opens both ends of one transport protocol.
type Network interface {
	// Name is the transport's name as reports show it: "tcp" or "udp".
	Name() string
	// Listen opens the server end at address ("127.0.0.1:0" for an ephemeral port).
	Listen(ctx context.Context, address string) (Listener, error)
	// Dial opens a client end to address. For UDP it sends nothing: the socket is
	// connected locally, and the first datagram is the first packet.
	Dial(ctx context.Context, address string) (Transport, error)
	// MaxMessage is the largest message, in bytes, one Send may carry.
	MaxMessage() int
}

// TCPInfoer is a transport that can read the kernel's TCP_INFO for its socket.
type TCPInfoer interface {
	TCPInfo() (TCPInfo, error)
}

// TCPInfo is the part of the kernel's TCP_INFO that reports use.
type TCPInfo struct {
	TotalRetrans  uint32        // segments retransmitted over the connection's life
	RTT           time.Duration // smoothed RTT (srtt)
	RTTVar        time.Duration // RTT variance (rttvar)
	SndCwnd       uint32        // congestion window, segments
	SndMSS        uint32        // sender MSS, bytes
	BusyTime      time.Duration // time with data in flight (tcpi_busy_time)
	RwndLimited   time.Duration // time the peer's receive window held the sender back (tcpi_rwnd_limited): flow control at work
	SndbufLimited time.Duration // time the local send buffer held it back (tcpi_sndbuf_limited)
	BytesAcked    uint64        // payload bytes the peer acknowledged
}

// RecvDropper is a transport that can read how many datagrams the kernel dropped
// because its receive buffer was full (SO_MEMINFO drops; the same count as the
// kernel's Udp: RcvbufErrors for that socket).
type RecvDropper interface {
	RecvDrops() (uint64, error)
}

// RecvQueuer is a transport that can read how many bytes wait unread in its receive
// queue (SO_MEMINFO rmem_alloc): 0 means every datagram that reached it was read.
type RecvQueuer interface {
	RecvQueued() (int, error)
}

// BufferSizer is a transport that reports the socket buffer sizes the kernel granted,
// in bytes (as getsockopt reads them back, after the kernel doubled and capped them).
type BufferSizer interface {
	BufferSizes() (recv, send int, err error)
}

// BufferSetter is a transport whose socket buffers can be resized while it is open:
// SetBuffers asks the kernel for recv bytes of SO_RCVBUF and send bytes of SO_SNDBUF
// (0 leaves that one as it is); read the grant back with BufferSizer. It serves
// endpoints this package did not open (a far end's data path), which a Network's
// options cannot reach.
type BufferSetter interface {
	SetBuffers(recv, send int) error
}

// RecvStamper is a transport whose socket has the kernel stamp each message as it
// arrives (UDP: SO_TIMESTAMPNS). RecvStamps writes the receive times of the messages
// the most recent Recv returned into dst, in order, as ns since the Unix epoch on the
// kernel's CLOCK_REALTIME, and returns how many it wrote: 0 when the socket has no
// kernel timestamps, 0 in dst[i] for a message that carried none. A stamp is taken
// when the message entered the host's receive path, before it waited in the socket
// queue and for the reader to run: the arrival time RFC 3550's jitter wants. Only the
// goroutine that calls Recv may call it, between Recvs.
//
// A TCP connection has no such thing: a byte stream's messages have no arrival of
// their own (one segment carries many, one message spans several), so its arrival
// times are read in user space, and reports say which clock each result used.
type RecvStamper interface {
	RecvStamps(dst []int64) int
}

// BusyPoller is a transport that reports how its Recv waits: spin is true when it
// spins on non-blocking reads instead of sleeping in Go's poller (NetOptions.BusyPoll),
// and kernelUs is its socket's SO_BUSY_POLL as the kernel granted it, in µs (0: off,
// or refused without CAP_NET_ADMIN).
type BusyPoller interface {
	BusyPoll() (spin bool, kernelUs int)
}

// RecvModer is a transport that names how its Recv waits for data: "blocking" (a
// blocking read on the caller's OS thread, outside Go's poller), "poller" (parked
// in Go's network poller) or "busy-poll" (spinning on non-blocking reads).
type RecvModer interface {
	RecvMode() string
}

// RecvModeOf is how t's Recv waits (RecvModer), or "" when t does not say.
func RecvModeOf(t Transport) string {
	if m, ok := t.(RecvModer); ok {
		return m.RecvMode()
	}
	return ""
}
