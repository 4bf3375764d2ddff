package farend

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// The property experiments against a far end: refused and close run one data path
// each, with no parameters.

// checkProperty checks a bench.refused or bench.close request.
func checkProperty(req remote.TestRequest) error {
	if req.Streams != 1 {
		return fmt.Errorf("streams: %s runs one data path, got %d", req.Experiment, req.Streams)
	}
	if req.Direction != remote.Bidir {
		return fmt.Errorf("direction: %s runs bidir, got %s", req.Experiment, req.Direction)
	}
	if len(req.Params) > 0 && string(req.Params) != "{}" {
		return fmt.Errorf("params: %s takes none, got %d bytes", req.Experiment, len(req.Params))
	}
	return nil
}

// halfServer returns how the server half of bench experiment x serves each of d's
// transports until its context ends: pingpong's echo, close's echo that closes when
// asked, refused's answer with a port of this host where nobody listens.
func halfServer(x string, d *remote.Data) (func(ctx context.Context, t bench.Transport) error, error) {
	size := d.Request.Size
	switch x {
	case report.ExpClose:
		// A connectionless transport's data socket (UDP) serves the one client and
		// is the test's listener too; a connected one's data listener (TCP) closed
		// when the connection arrived.
		listener := !bench.CapsOf(d.Request.Transport).Connected
		return func(ctx context.Context, t bench.Transport) error {
			return bench.ServeClose(ctx, t, size, batchOf(d.Request), listener)
		}, nil
	case report.ExpRefused:
		port, err := d.ClosedPort()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, t bench.Transport) error {
			return bench.ServeRefused(ctx, t, size, port)
		}, nil
	}
	return func(ctx context.Context, t bench.Transport) error {
		return bench.ServeEcho(ctx, t, size, batchOf(d.Request))
	}, nil
}

// remoteAddrs returns the far ends of d's data path, in the order transports
// returns them.
func remoteAddrs(d *remote.Data) []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range d.Conns {
		var ap netip.AddrPort
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ap = ta.AddrPort()
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	for _, p := range d.Paths {
		out = append(out, p.Peer())
	}
	return out
}

// RemoteAddrs are the server's ends of the cell's data path: the control
// connection's host, and each path's port there (bench.FarAddresser).
func (c *cell) RemoteAddrs() []netip.AddrPort { return c.addrs }

var _ bench.FarAddresser = (*cell)(nil)
