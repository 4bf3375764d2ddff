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
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
	"github.com/tcpvsudp/tcpvsudp/tcp"
)

// The experiments whose clients open endpoints of their own during the test
// (connect: one per transaction) run in remote's listen mode: the data path keeps
// taking new clients after start, and the server half echoes each of them.

// checkListen checks a listen-mode request: one data path, bidir, no parameters,
// and listen asked for.
func checkListen(req remote.TestRequest) error {
	if !req.Listen {
		return fmt.Errorf("listen: %s needs a data path that takes new clients (listen: true)", req.Experiment)
	}
	return checkProperty(req)
}

// serveListen is the server half of a listen-mode cell: it echoes on the data path
// ts and on every client the listener takes (TCP: each accepted connection, UDP:
// each datagram, to its sender), until ctx ends or the client reported its results.
// ServerSockets is the endpoints the clients needed: a TCP connection each, the one
// UDP socket for all. With footprint (clients), it reads this process's and host's
// footprint before it answers anything on ts (so a client's first answer there says
// the baseline is taken), and again when the client reported its results, every
// client still connected.
func serveListen(ctx context.Context, d *remote.Data, ts []bench.Transport, footprint bool) (bench.FarResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var end func() bench.FootprintDelta
	if footprint {
		end = bench.StartFootprint(ctx)
	}
	fpc := make(chan bench.FootprintDelta, 1)
	if done := d.PeerDone(); done != nil {
		defer ctxwatch.OnClose(done, func() {
			if end != nil {
				fpc <- end() // before cancel closes the clients' connections
			}
			cancel()
		})()
	}
	size := d.Request.Size
	var wg sync.WaitGroup
	errs := make([]error, len(ts))
	for i, t := range ts {
		wg.Go(func() { errs[i] = bench.ServeEcho(ctx, t, size, batchOf(d.Request)) })
	}
	var res bench.FarResult
	var lerr error
	if d.Listener != nil {
		lerr = echoDatagrams(ctx, d.Listener, size)
		res.ServerSockets = 1
		if n := d.Listener.Refused(); n > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the server's listener refused %d replies larger than what their address had sent (the amplification rule)", n))
		}
		if n := d.Listener.Ignored(); n > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the server's listener dropped %d datagrams (another address, token or kind)", n))
		}
	} else {
		lerr = acceptEcho(ctx, d, size, &wg)
		res.ServerSockets = int(d.Accepted())
	}
	wg.Wait()
	select {
	case fp := <-fpc:
		res.Footprint = &fp
	default:
	}
	if ctx.Err() != nil && (errors.Is(lerr, context.Canceled) || errors.Is(lerr, net.ErrClosed)) {
		lerr = nil
	}
	return res, errors.Join(append(errs, lerr)...)
}

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
func (c *cell) Dial(ctx context.Context) (bench.Transport, error) {
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
