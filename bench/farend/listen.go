package farend

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// (bench.FarHalf.Listen) has them echoed (session.EchoClients).

// EchoClients is the new clients of a listen-mode test (bench.ListenEnv): it echoes
// every TCP client the data path accepts on a goroutine of its own, or every
// datagram its UDP listener takes, to its sender, until ctx ends. A TCP client
// needs a connection each; the UDP listener is one socket for all.
func (s session) EchoClients(ctx context.Context, size int) (sockets int, warns []string, err error) {
	d := s.d
	if d.Listener != nil {
		err = echoDatagrams(ctx, d.Listener, size)
		if n := d.Listener.Refused(); n > 0 {
			warns = append(warns, fmt.Sprintf("the server's listener refused %d replies larger than what their address had sent (the amplification rule)", n))
		}
		if n := d.Listener.Ignored(); n > 0 {
			warns = append(warns, fmt.Sprintf("the server's listener dropped %d datagrams (another address, token or kind)", n))
		}
		sockets = 1
	} else {
		var wg sync.WaitGroup
		err = acceptEcho(ctx, d, size, &wg)
		wg.Wait()
		sockets = int(d.Accepted())
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed)) {
		err = nil
	}
	return sockets, warns, err
}

var _ bench.ListenEnv = session{}

// acceptEcho takes each new TCP client of d and echoes its messages on a goroutine
// of its own (added to wg), until ctx ends.
func acceptEcho(ctx context.Context, d *remote.Data, size int, wg *sync.WaitGroup) error {
	for {
		c, err := d.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		t, err := tcp.Frame(c, tcpOptions(d.Request))
		if err != nil {
			c.Close()
			return err
		}
		wg.Go(func() {
			defer t.Close()
			bench.ServeEcho(ctx, t, size, 1) // a client's end (EOF, reset) ends it; nothing to report
		})
	}
}

// echoDatagrams returns every message the UDP listener takes to its sender, until
// ctx ends.
func echoDatagrams(ctx context.Context, l *remote.UDPListener, size int) error {
	buf := make([]byte, size)
	stop := ctxwatch.OnDone(ctx, func() { l.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for ctx.Err() == nil {
		n, from, err := l.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			continue // a message too long for size: not this cell's
		}
		if err := l.WriteTo(buf[:n], from); err != nil && !errors.Is(err, remote.ErrBudget) {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

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
		t, err := tcp.Frame(conn, tcpOptions(c.data.Request))
		if err != nil {
			conn.Close()
			return nil, err
		}
		return t, nil
	default:
		return c.data.DialPath(ctx)
	}
}
