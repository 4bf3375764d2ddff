package tcp

import (
	"context"
	"net"
)

// Dial connects to address ("host:port") and returns the client end as a Conn.
// Options.RecvBuffer and SendBuffer are set before connect(2) on Linux, so the
// handshake advertises a window scale that fits them; elsewhere they are set after.
// A refused connection is an error satisfying errors.Is(err, syscall.ECONNREFUSED).
func Dial(ctx context.Context, address string, o Options) (*Conn, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Control: beforeConnect(o)}
	nc, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, wrap("dial", address, err)
	}
	c := nc.(*net.TCPConn)
	if err := afterConnect(c, o); err != nil {
		_ = c.Close() // the configuration error is the one to report
		return nil, wrap("configure connection to", address, err)
	}
	return newConn(c, o), nil
}

// afterConnect applies the options that can wait for an established connection:
// TCP_NODELAY, and on systems without beforeConnect the buffer sizes.
func afterConnect(c *net.TCPConn, o Options) error {
	if err := c.SetNoDelay(o.NoDelay); err != nil {
		return err
	}
	return setBuffersAfter(c, o)
}
