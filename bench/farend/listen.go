package farend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
	"github.com/tcpvsudp/tcpvsudp/tcp"
)

// The experiments whose clients open endpoints of their own during the test
// (connect: one per transaction; clients) run in remote's listen mode: the data
// path keeps taking new clients after start, and the server half
// (bench.FarHalf.Listen) serves them through bench's one accept loop, from the
// listener session.Clients makes of the data path.

// Clients is the new clients of a listen-mode test (bench.ListenEnv) as a bench
// listener: every TCP connection the data path accepts, framed as bench frames it,
// or the data path's one UDP listener socket, which serves every client.
func (s session) Clients() transport.Listener { return &clients{d: s.d, closed: make(chan struct{})} }

// ClientWarnings says what the UDP listener refused or dropped.
func (s session) ClientWarnings() []string {
	l := s.d.Listener
	if l == nil {
		return nil
	}
	var warns []string
	if n := l.Refused(); n > 0 {
		warns = append(warns, fmt.Sprintf("the server's listener refused %d replies larger than what their address had sent (the amplification rule)", n))
	}
	if n := l.Ignored(); n > 0 {
		warns = append(warns, fmt.Sprintf("the server's listener dropped %d datagrams (another address, token or kind)", n))
	}
	return warns
}

var _ bench.ListenEnv = session{}

// clients is a listen-mode data path as a transport.Listener (session.Clients).
type clients struct {
	d         *remote.Data
	once      sync.Once
	closed    chan struct{}
	handedOut bool // the UDP listener's socket was accepted
}

// Accept returns the next TCP client, or, the first time, the UDP listener's one
// socket; then it waits for Close or ctx, as a UDP listener of this host does.
func (c *clients) Accept(ctx context.Context) (transport.Transport, error) {
	if c.d.Listener != nil {
		if !c.handedOut {
			c.handedOut = true
			return &listenerSocket{l: c.d.Listener}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, net.ErrClosed
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := ctxwatch.OnClose(c.closed, cancel)
	defer stop()
	conn, err := c.d.Accept(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, net.ErrClosed
		}
		return nil, err
	}
	return frameClient(conn, c.d.Request)
}

// frameClient frames a new TCP client's connection of a listen-mode test as bench
// frames it, closing it if that fails.
func frameClient(conn net.Conn, req remote.TestRequest) (transport.Transport, error) {
	t, err := tcp.Frame(conn, tcpOptions(req))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

// Addr is where the new clients reach the server.
func (c *clients) Addr() net.Addr { return c.d.ListenAddr() }

// Close stops accepting; the session closes the data path's sockets.
func (c *clients) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// listenerSocket is a listen-mode UDP test's listener socket as a bench transport:
// it receives one client's message at a time, and sends the replies to the client
// that sent it. The listener drops what comes from another address or with another
// token; a reply larger than what its address sent is refused (the amplification
// rule) and counted, not sent (ClientWarnings).
type listenerSocket struct {
	l    *remote.UDPListener
	from netip.AddrPort // the sender of the last message received
}

func (s *listenerSocket) Recv(bufs [][]byte, sizes []int) (int, error) {
	for {
		n, from, err := s.l.ReadFrom(bufs[0])
		switch {
		case err == nil:
			s.from, sizes[0] = from, n
			return 1, nil
		case errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded):
			return 0, err
		}
		// A message too long for the buffers: not this cell's.
	}
}

func (s *listenerSocket) Send(msgs [][]byte) (int, error) {
	for i, m := range msgs {
		if err := s.l.WriteTo(m, s.from); err != nil && !errors.Is(err, remote.ErrBudget) {
			return i, err
		}
	}
	return len(msgs), nil
}

func (s *listenerSocket) SetReadDeadline(t time.Time) error { return s.l.SetReadDeadline(t) }

// Close leaves the socket open: it is the data path's, which the session closes.
func (s *listenerSocket) Close() error { return nil }

// Dial opens one more client endpoint to a listen-mode cell's far end: a new TCP
// connection (framed as bench frames it), or a new UDP socket.
func (c *cell) Dial(ctx context.Context) (transport.Transport, error) {
	if c.data == nil {
		return nil, remote.ErrNotListening
	}
	switch c.data.Request.Transport {
	case "tcp":
		conn, err := c.data.DialConn(ctx)
		if err != nil {
			return nil, err
		}
		return frameClient(conn, c.data.Request)
	default:
		return c.data.DialPath(ctx)
	}
}
