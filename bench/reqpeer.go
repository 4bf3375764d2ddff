package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// closeAll closes every endpoint of ts.
func closeAll(ts []transport.Transport) {
	for _, t := range ts {
		t.Close()
	}
}

// reqPeer is the server half of a request/response cell (pingpong, connect, clients,
// close, refused) as its client half sees it: at the far end when the run has one
// (e.far), else a localServer in this process. Both run the same server half
// (ServeEcho and its kin) on every endpoint of their data path. A peer on this host
// (local) also lets the client half read what the server's endpoints do as they do
// it: what they accepted, and their socket drops.
type reqPeer struct {
	fc    FarCell
	local *localServer        // the server half in this process; nil: at a far end
	t     transport.Transport // the client's endpoint of the cell's data path; nil in listen mode on one host
	// remote is where t's far end is: the server's host and its port there
	// (FarAddresser); invalid when the far end cannot tell.
	remote netip.AddrPort

	once sync.Once
	fr   FarResult
}

// openReqPeer starts spec's server half where the run's server halves run, and opens
// the client's endpoint of its data path (with FarSpec.Listen, new clients dial:
// only a far end has a path of its own then). In this process the half serves with
// sh; a far end serves as its runner does.
func openReqPeer(ctx context.Context, e *runEnv, nw transport.Network, spec FarSpec, sh serverHalf) (*reqPeer, error) {
	rp := &reqPeer{}
	var err error
	if e.far != nil {
		if rp.fc, err = e.openFar(ctx, spec); err != nil {
			return nil, fmt.Errorf("far end: %w", err)
		}
	} else if rp.local, err = openLocalServer(ctx, e, nw, spec, sh); err != nil {
		return nil, err
	} else {
		rp.fc = rp.local
	}
	ts := rp.fc.Transports()
	_, dials := rp.fc.(FarDialer)
	switch {
	case spec.Listen && !dials:
		err = errors.New("far end: it cannot take new clients during a cell (no listen mode)")
	case len(ts) == 1:
		rp.t = ts[0]
		if fa, ok := rp.fc.(FarAddresser); ok {
			if addrs := fa.RemoteAddrs(); len(addrs) == 1 {
				rp.remote = netip.AddrPortFrom(addrs[0].Addr().Unmap(), addrs[0].Port())
			}
		}
	case !spec.Listen || rp.local == nil:
		err = fmt.Errorf("far end: opened %d data paths, want 1", len(ts))
	}
	if err != nil {
		closeAll(ts)
		rp.finish(ctx)
		return nil, err
	}
	return rp, nil
}

// remoteAddr is where the client's endpoint's far end is, for experiment exp that
// reaches the server's host outside the data path.
func (rp *reqPeer) remoteAddr(exp string) (netip.AddrPort, error) {
	if !rp.remote.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("far end: the data path's far address is unknown: %s needs it", exp)
	}
	return rp.remote, nil
}

// dial opens a new client's endpoint to a listen-mode peer (FarSpec.Listen).
func (rp *reqPeer) dial(ctx context.Context) (transport.Transport, error) {
	return rp.fc.(FarDialer).Dial(ctx)
}

// accepted is how many endpoints a server half on this host accepted so far; ok
// false at a far end, which says so only when it finishes.
func (rp *reqPeer) accepted() (n int, ok bool) {
	if rp.local == nil {
		return 0, false
	}
	return rp.local.srv.acceptedCount(), true
}

// drops sums the receive-buffer drops of a server half's endpoints on this host so
// far; ok false when unknown (a far end).
func (rp *reqPeer) drops() (uint64, bool) {
	if rp.local == nil {
		return 0, false
	}
	return recvDrops(rp.local.srv.endpoints())
}

// finish closes the client's endpoint, stops the server half and returns what it
// reported, its error among the warnings. Later calls return the first's.
func (rp *reqPeer) finish(ctx context.Context) FarResult {
	rp.once.Do(func() {
		if rp.t != nil {
			rp.t.Close()
		}
		r, err := rp.fc.Finish(ctx)
		if err != nil {
			where := "far end"
			if rp.local != nil {
				where = "server"
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %v", where, err))
		}
		rp.fr = r
	})
	return rp.fr
}

// addFar adds what the far end reported of one part of a cell that runs several far
// tests (close, boundaries): its warnings, and its CPU to the cell's server CPU.
func (o *outcome) addFar(r FarResult) {
	o.warns = append(o.warns, r.Warnings...)
	switch {
	case r.CPUSec == nil:
	case o.m.ServerCPUSec == nil:
		o.m.ServerCPUSec = f64p(*r.CPUSec)
	default:
		*o.m.ServerCPUSec += *r.CPUSec
	}
}

// A serverHalf is how a request/response cell's server half serves in this process:
// serve runs on each endpoint its listener accepts, as a far end runs it on each of
// its data path's.
type serverHalf struct {
	serve func(ctx context.Context, t transport.Transport) error
	// half, instead of serve, serves the client's one endpoint as a far end does,
	// with this process as its ServerEnv: Finish says the client is done and waits
	// for half's report, which is Finish's. In listen mode (FarSpec.Listen) half
	// is the whole server half, as at a far end: it serves the listener's clients
	// (ListenEnv.Clients) through the one accept loop, and no endpoint of its own.
	half ServeFunc
	// blocking: both ends receive blocking (blockingNet: a blocking recvmsg or read
	// on the goroutine's OS thread, unless --busy-poll); a far end picks its own.
	blocking bool
	rx       bool // record both ends' receive modes (e.rx, env.sockets.*.rx)
	// oneClient: the listener closes once it accepted the client's endpoint, as
	// remote mode's TCP data listener does once its path's connection arrived.
	oneClient bool
}

// localServer is a request/response cell's server half in this process: the peer of
// a one-host run. Its listener accepts the client's endpoints (a UDP listener's one
// socket serves every client) and sh.serve serves each; with FarSpec.Listen it takes
// new clients (Dial), has no endpoint of the client's own, and sh.half serves the
// listener as a far end's server half serves its new clients (a ListenEnv).
type localServer struct {
	e       *runEnv
	nw      transport.Network
	exp     string
	sh      serverHalf
	spec    FarSpec
	done    chan struct{}         // closed by Finish: the client half is done (ServerEnv.Done)
	sent    []uint64              // the client's flows' counts (SendersEnded); read after done closed
	halfRes chan halfResult       // sh.half's report, from the first endpoint it served (listen mode: from the listener)
	srv     *server               // listen mode: the half's, from serving
	addr    string                // where srv listens
	ts      []transport.Transport // the client's endpoint, dialled at open; none in listen mode
	clients transport.Listener    // listen mode: the listener the half serves (Clients)
	ready   chan struct{}         // listen mode: closed by serving, the half takes clients
}

func openLocalServer(ctx context.Context, e *runEnv, nw transport.Network, spec FarSpec, sh serverHalf) (*localServer, error) {
	if sh.blocking {
		nw = transport.BlockingNet(nw)
	}
	c := &localServer{e: e, nw: nw, exp: spec.Experiment, sh: sh, spec: spec, done: make(chan struct{}), halfRes: make(chan halfResult, 1)}
	if spec.Listen {
		return c, c.listen(ctx)
	}
	serve, started := sh.serve, make(chan struct{})
	if sh.half != nil {
		serve = func(ctx context.Context, t transport.Transport) error {
			r, err := sh.half(ctx, c, spec, []transport.Transport{t})
			select {
			case c.halfRes <- halfResult{r, err}:
			default: // not the client's endpoint: the first one served is
			}
			return err
		}
	}
	if sh.oneClient {
		serve = func(ctx context.Context, t transport.Transport) error {
			<-started // c.srv is set
			c.srv.closeListener()
			return sh.serve(ctx, t)
		}
	}
	var err error
	if c.srv, err = startServer(ctx, e, nw, serve); err != nil {
		return nil, err
	}
	close(started)
	c.addr = c.srv.addr()
	t, err := c.Dial(ctx)
	if err != nil {
		c.srv.stop()
		return nil, fmt.Errorf("dial %s: %w", c.addr, err)
	}
	c.ts = []transport.Transport{t}
	return c, nil
}

// listen starts a listen-mode server half: a listener for the new clients, and
// sh.half serving it until Finish. It returns once the half takes clients (so a
// footprint it reads first has none of them) or has failed.
func (c *localServer) listen(ctx context.Context) error {
	if c.sh.half == nil {
		return fmt.Errorf("bench: %s: a listen-mode server half is a ServeFunc (serverHalf.half)", c.exp)
	}
	l, err := c.nw.Listen(ctx, c.e.address)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", c.nw.Name(), c.e.address, err)
	}
	c.clients, c.addr, c.ready = l, l.Addr().String(), make(chan struct{})
	go func() {
		r, err := c.sh.half(ctx, c, c.spec, nil)
		c.halfRes <- halfResult{r, err}
	}()
	select {
	case <-c.ready:
		return nil
	case h := <-c.halfRes:
		l.Close()
		return cmp.Or(h.err, fmt.Errorf("bench: %s: the server half ended before it took a client", c.exp))
	}
}

// Dial opens a new client's endpoint to the server half.
func (c *localServer) Dial(ctx context.Context) (transport.Transport, error) {
	return c.nw.Dial(ctx, c.addr)
}

func (c *localServer) Transports() []transport.Transport { return c.ts }

// RemoteAddrs is the listener's address, the far end of every client endpoint.
func (c *localServer) RemoteAddrs() []netip.AddrPort {
	ap, _ := netip.ParseAddrPort(c.addr)
	return []netip.AddrPort{ap}
}

func (c *localServer) SendersEnded(sent []uint64) { c.sent = sent }
func (c *localServer) Senders() FarPeer           { return nil }
func (c *localServer) Ended() <-chan struct{}     { return nil }

// The server half's ServerEnv: the client is done at Finish.
func (c *localServer) Done() <-chan struct{}   { return c.done }
func (c *localServer) Sent() ([]uint64, error) { return c.sent, nil }
func (c *localServer) ReportSent([]uint64)     {}

// Clients is the listener of a listen-mode cell's new clients; nil otherwise.
func (c *localServer) Clients() transport.Listener { return c.clients }

// ClientWarnings is nothing: this process's listener refuses no client.
func (c *localServer) ClientWarnings() []string { return nil }

// serving is told the accept loop of the listen-mode server half (serveListen), so
// that the client half can read what it accepted, and its endpoints' drops, while
// it serves (reqPeer.accepted, drops). From then on the half takes clients.
func (c *localServer) serving(s *server) {
	c.srv = s
	close(c.ready)
}

// ClosedPort is a port of this host that was just bound and released.
func (c *localServer) ClosedPort() (uint16, error) {
	addr, err := closedPort(context.Background(), c.e, c.nw)
	if err != nil {
		return 0, err
	}
	ap, err := netip.ParseAddrPort(addr)
	return ap.Port(), err
}

// halfResult is what a serverHalf.half reported.
type halfResult struct {
	r   FarResult
	err error
}

// Finish stops the server half: its listener and every endpoint close, and its
// goroutines return. A serverHalf.half is told the client is done first, and its
// report and error are Finish's, as a far end's are; a serve's error is a warning,
// as that server half measured nothing.
func (c *localServer) Finish(ctx context.Context) (FarResult, error) {
	var fr FarResult
	var herr error
	close(c.done)
	if c.sh.half != nil {
		select {
		case h := <-c.halfRes:
			fr, herr = h.r, h.err
		case <-ctx.Done():
			herr = ctx.Err()
		}
	}
	if err := c.srv.stop(); err != nil && herr == nil {
		fr.Warnings = append(fr.Warnings, fmt.Sprintf("server: %v", err))
	}
	fr.ServerSockets = c.srv.acceptedCount()
	if c.sh.rx && len(c.ts) == 1 {
		c.e.rx.note(c.nw.Name(), c.exp, transport.RecvModeOf(c.ts[0]), c.srv.recvMode())
	}
	return fr, herr
}
