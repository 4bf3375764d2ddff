package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/tcpvsudp/tcpvsudp/tcp"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// The leaf transports satisfy the interfaces declared here.
var (
	_ Transport   = (*tcp.Conn)(nil)
	_ Transport   = (*udp.Conn)(nil)
	_ RecvDropper = (*udp.Conn)(nil)
	_ BufferSizer = (*udp.Conn)(nil)
	_ BufferSizer = (*tcp.Conn)(nil)
	_ TCPInfoer   = tcpConn{}
	_ RecvStamper = (*udp.Conn)(nil)
	_ BusyPoller  = (*udp.Conn)(nil)
	_ BusyPoller  = tcpConn{}
	_ RecvModer   = (*udp.Conn)(nil)
	_ RecvModer   = tcpConn{}
	// The slow receiver resizes its endpoints' buffers while they are open.
	_ BufferSetter = (*tcp.Conn)(nil)
	_ BufferSetter = (*udp.Conn)(nil)
	_ BufferSetter = tcpConn{}
)

// NetOptions shape the sockets every transport opens.
type NetOptions struct {
	RecvBuffer int  // SO_RCVBUF request, bytes; 0 = kernel default
	SendBuffer int  // SO_SNDBUF request, bytes; 0 = kernel default
	NoDelay    bool // TCP_NODELAY (TCP only: UDP has no Nagle)
	NoGSO      bool // UDP only: send one datagram per message, without UDP GSO (udp.Options.NoGSO)
	// Batch is the most messages one send or receive system call moves (--batch);
	// 0 = the transport's default. UDP: udp.Options.Batch, sendmmsg/recvmmsg entries,
	// each one datagram, or with GSO a super-datagram of up to 128 messages and with
	// GRO a coalesced packet, so a Send of Batch messages is one system call. TCP has
	// no such option: a Send of any number of messages is one write or writev.
	Batch int
	// BusyPoll makes every receiver spin on non-blocking reads instead of sleeping
	// until data arrives, and asks for SO_BUSY_POLL (tcp.Options.BusyPoll,
	// udp.Options.BusyPoll): lower latency for a full CPU core per receiving socket.
	BusyPoll bool
}

type tcpNetwork struct{ o tcp.Options }

func (tcpNetwork) Name() string    { return "tcp" }
func (tcpNetwork) MaxMessage() int { return tcp.DefaultMaxMessage }

func (n tcpNetwork) Listen(ctx context.Context, address string) (Listener, error) {
	l, err := tcp.Listen(ctx, address, n.o)
	if err != nil {
		return nil, err
	}
	return tcpListener{l}, nil
}

func (n tcpNetwork) Dial(ctx context.Context, address string) (Transport, error) {
	c, err := tcp.Dial(ctx, address, n.o)
	if err != nil {
		return nil, err
	}
	return tcpConn{c}, nil
}

type tcpListener struct{ l *tcp.Listener }

func (l tcpListener) Accept(ctx context.Context) (Transport, error) {
	c, err := l.l.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return tcpConn{c}, nil
}
func (l tcpListener) Addr() net.Addr { return l.l.Addr() }
func (l tcpListener) Close() error   { return l.l.Close() }

// tcpConn adds the TCPInfoer capability to a tcp.Conn.
type tcpConn struct{ *tcp.Conn }

func (c tcpConn) TCPInfo() (TCPInfo, error) {
	i, err := c.Info()
	if err != nil {
		return TCPInfo{}, err
	}
	return TCPInfo{TotalRetrans: i.TotalRetrans, RTT: i.RTT, RTTVar: i.RTTVar, SndCwnd: i.SndCwnd, SndMSS: i.SndMSS,
		BusyTime: i.BusyTime, RwndLimited: i.RwndLimited, SndbufLimited: i.SndbufLimited, BytesAcked: i.BytesAcked}, nil
}

type udpNetwork struct{ o udp.Options }

func (udpNetwork) Name() string    { return "udp" }
func (udpNetwork) MaxMessage() int { return udp.MaxPayloadIPv4 }

func (n udpNetwork) Listen(ctx context.Context, address string) (Listener, error) {
	c, err := udp.Listen(ctx, address, n.o)
	if err != nil {
		return nil, err
	}
	return &udpListener{c: c, closed: make(chan struct{})}, nil
}

func (n udpNetwork) Dial(ctx context.Context, address string) (Transport, error) {
	return udp.Dial(ctx, address, n.o)
}

// udpListener makes a datagram socket look like a listener: the first Accept returns
// the one socket that serves every peer; later ones wait for Close.
type udpListener struct {
	c         *udp.Conn
	mu        sync.Mutex // guards accepted
	accepted  bool
	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

func (l *udpListener) Accept(ctx context.Context) (Transport, error) {
	l.mu.Lock()
	first := !l.accepted
	l.accepted = true
	l.mu.Unlock()
	select {
	case <-l.closed:
		return nil, fmt.Errorf("udp: accept on %v: %w", l.c.LocalAddr(), net.ErrClosed)
	default:
	}
	if first {
		return l.c, nil
	}
	select {
	case <-l.closed:
		return nil, fmt.Errorf("udp: accept on %v: %w", l.c.LocalAddr(), net.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *udpListener) Addr() net.Addr { return l.c.LocalAddr() }

func (l *udpListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.c.Close()
	})
	return err
}

// timestamper is a transport that says whether its kernel stamps arrivals
// (udp.Conn.Timestamps: SO_TIMESTAMPNS set and read back at open).
type Timestamper interface{ Timestamps() bool }

var _ Timestamper = (*udp.Conn)(nil)

// isOversize reports a datagram that did not fit its buffer: that one is lost to the
// reader, the socket reads on.
func IsOversize(err error) bool { return errors.Is(err, udp.ErrTruncated) }

// isStreamBroken reports a frame too large to read: a byte stream cannot skip it, so
// the connection is done.
func IsStreamBroken(err error) bool { return errors.Is(err, tcp.ErrMessageTooLarge) }

// blockingOpener is a Network that can open endpoints whose Recv sleeps in the
// kernel, on the caller's OS thread, outside Go's poller (tcp.Options.Blocking,
// udp.Options.Blocking): the request/response experiments' ends, whose latency
// the poller's wake-up would otherwise add to (the --busy-poll path stays as it is).
type BlockingOpener interface{ WithBlocking() Network }

func (n tcpNetwork) WithBlocking() Network {
	n.o.Blocking = !n.o.BusyPoll
	return n
}

func (n udpNetwork) WithBlocking() Network {
	n.o.Blocking = !n.o.BusyPoll
	return n
}

// blockingNet is nw opening blocking endpoints (blockingOpener), or nw as it is
// when it cannot.
func BlockingNet(nw Network) Network {
	if b, ok := nw.(BlockingOpener); ok {
		return b.WithBlocking()
	}
	return nw
}

// optionable is a Network that can open the same transport with socket buffers of
// other sizes: the slow-receiver experiment shrinks them so flow control shows
// within milliseconds, not after megabytes.
type Optionable interface {
	WithBuffers(recv, send int) Network
}

func (n tcpNetwork) WithBuffers(recv, send int) Network {
	n.o.RecvBuffer, n.o.SendBuffer = recv, send
	return n
}

// streamReceiver is a Network whose stream receivers can take UDP GRO super-packets:
// a stream cell listens with the Network it returns. Only stream receivers do:
// GRO gives each socket 64 KiB of receive room per batch entry.
type streamReceiver interface {
	forStreams() Network
}

// forStreams turns on UDP GRO (udp.Options.GRO) unless NoGSO turned the offloads off.
func (n udpNetwork) forStreams() Network {
	n.o.GRO = !n.o.NoGSO
	return n
}

// receiverNetwork is nw as a stream cell's receiver listens with it.
func ReceiverNetwork(nw Network) Network {
	if s, ok := nw.(streamReceiver); ok {
		return s.forStreams()
	}
	return nw
}

func (n udpNetwork) WithBuffers(recv, send int) Network {
	n.o.RecvBuffer, n.o.SendBuffer = recv, send
	return n
}

// isTimeout reports whether err is an expired deadline.
func IsTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// NewUDPNetwork is the UDP network whose sockets take o, for a test that needs an
// option no flag sets (NetworkByName builds the usual one from NetOptions).
func NewUDPNetwork(o udp.Options) Network { return udpNetwork{o} }
