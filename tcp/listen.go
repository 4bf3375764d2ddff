package tcp

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

// A Listener accepts TCP connections and hands each out as a Conn.
type Listener struct {
	tcp *net.TCPListener
	o   Options // resolved: applied to every accepted Conn

	mu sync.Mutex // guards cancelled and the listener's deadline
	// cancelled counts Accept calls whose context is done and whose past deadline,
	// set to unblock them, is still in force.
	cancelled int
}

// Listen opens a TCP listener on address ("127.0.0.1:0" for an ephemeral port).
// Options.RecvBuffer and SendBuffer are set on the listening socket before listen(2)
// on Linux, so accepted connections inherit them before their handshake fixes the
// window scale; elsewhere they are set on each accepted connection.
func Listen(ctx context.Context, address string, o Options) (*Listener, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: beforeConnect(o)}
	ln, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return nil, wrap("listen on", address, err)
	}
	return &Listener{tcp: ln.(*net.TCPListener), o: o}, nil
}

// Accept waits for the next connection and returns it as a Conn with the
// listener's Options applied. It returns promptly, with an error wrapping ctx.Err(),
// when ctx is done; that leaves the listener open for later calls. After Close it
// returns an error wrapping net.ErrClosed.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, wrap("accept on", l.Addr(), err)
		}
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			l.mu.Lock()
			defer l.mu.Unlock()
			l.cancelled++
			_ = l.tcp.SetDeadline(aLongTimeAgo) // fails only once closed: Accept returns then anyway
		})
		c, err := l.tcp.AcceptTCP()
		if !stop() {
			<-fired
			l.mu.Lock()
			if l.cancelled--; l.cancelled == 0 {
				_ = l.tcp.SetDeadline(time.Time{})
			}
			l.mu.Unlock()
		}
		if err == nil {
			return l.configure(c)
		}
		if ctx.Err() != nil {
			return nil, wrap("accept on", l.Addr(), ctx.Err())
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, wrap("accept on", l.Addr(), err)
		}
		// Another Accept's context ended and set the deadline: wait for it to clear.
		runtime.Gosched()
	}
}

// aLongTimeAgo is a deadline in the past, which unblocks a pending call at once.
var aLongTimeAgo = time.Unix(1, 0)

func (l *Listener) configure(c *net.TCPConn) (*Conn, error) {
	if err := afterConnect(c, l.o); err != nil {
		_ = c.Close() // the configuration error is the one to report
		return nil, wrap("configure connection from", c.RemoteAddr(), err)
	}
	return newConn(c, l.o), nil
}

// Addr returns the listener's address, a *net.TCPAddr.
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }

// Close stops accepting and unblocks Accept calls, which return errors wrapping
// net.ErrClosed. Connections already accepted stay open.
func (l *Listener) Close() error {
	if err := l.tcp.Close(); err != nil {
		return wrap("close listener on", l.Addr(), err)
	}
	return nil
}
