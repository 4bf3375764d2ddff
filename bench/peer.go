package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// A stream cell's server half runs at its peer: at the far end in remote mode
// (Plan.Far: a tcpvsudp serve, through bench/farend), or in this process on one host
// (loopback, and the lab, whose server namespace this process enters: localCell).
// The client half reaches either through a FarCell, and both run the same halves:
// rxHalf receives and accounts, streamTx sends (at a far end ServeStream runs them).
// Only where the server half runs differs, and one capability says it: a oneClock
// FarCell runs its server half in this process, on the client's clock, run id and
// payload (runEnv), so the receive interval runs from the first send and one-way
// latency is measured, and the client half drives its receiver's measured phase:
// socket drops count from the phase's start, the drain ends before the phase does
// (the lab's link figures, TCP_INFO and CPU cover it), and the time line samples
// deliveries live. A far end, on another clock, counts from its first data arrival,
// drains after the client finished, and its time line is merged (mergeSeries).
type oneClock interface {
	receiver() *rxHalf  // receives the client's flows; nil when only the server sends
	received() rxResult // what it counted; after Finish
	// startSenders starts the server's senders, if it has any, once the client's
	// receiver runs: measuring is called as their measured phase starts (the
	// receiver's drops count from there).
	startSenders(measuring func())
}

// streamPeer is a stream cell's server half as its client half sees it.
type streamPeer struct {
	fc  FarCell
	one oneClock // nil: the server half runs at a far end, on another clock
	rx  *rxHalf  // one clock: the server half's receiver, when it receives
	ts  []transport.Transport
	out []transport.Transport // this host sends on these: forward, and bidir's first half
	in  []transport.Transport // and receives on these: reverse, and bidir's second half
	// dur is how long the peer's senders run, warm-up included; 0 = count mode.
	dur        time.Duration
	sendBuffer int      // SO_SNDBUF granted this host's senders (streamOpts.sendBuffer), bytes
	warns      []string // from opening

	sent    sampleLog // this host's half of a far time line
	sampled bool      // sampleSeries ran
	once    sync.Once // guards finish
	fr      FarResult
	finErr  error
}

// openStreamPeer starts the server half of stream cell p and opens its data path:
// at the far end when the run has one (e.far), else in this process (localCell).
func openStreamPeer(ctx context.Context, e *runEnv, nw transport.Network, p report.Params, so streamOpts) (*streamPeer, error) {
	peerSends := p.Reverse || p.Bidir
	if peerSends && (so.readerBps > 0 || so.oneWay != nil || so.seriesStep > 0) {
		return nil, errors.New("a reverse or both-ways stream cannot have a paced reader, one-way latency or a time line")
	}
	sendFor := time.Duration(p.DurationS * float64(time.Second))
	dur := so.warmup + sendFor
	if p.Count > 0 {
		sendFor, dur = 0, 0
	}
	spec := FarSpec{Experiment: report.ExpStream, Transport: nw.Name(), Size: p.Size, Streams: p.Streams,
		Duration: dur, Run: e.run, Drain: so.drain, ReaderBps: so.readerBps, RecvBuffer: so.recvBuffer, SeriesStep: so.seriesStep}
	if peerSends {
		spec.Reverse, spec.Bidir = !p.Bidir, p.Bidir
		spec.Count, spec.SendFor, spec.Warmup, spec.RateBps = p.Count, sendFor, so.warmup, p.RateBps
	}
	var fc FarCell
	var err error
	if e.far != nil {
		if so.oneWay != nil {
			return nil, errors.New("far end: one-way latency needs one clock: it runs only in this process")
		}
		if fc, err = e.openFar(ctx, spec); err != nil {
			return nil, fmt.Errorf("far end: %w", err)
		}
	} else if fc, err = openLocalCell(ctx, e, nw, p, spec, so.oneWay); err != nil {
		return nil, err
	}
	sp := &streamPeer{fc: fc, ts: fc.Transports(), dur: dur}
	if sp.one, _ = fc.(oneClock); sp.one != nil {
		sp.rx = sp.one.receiver()
	}
	k, want := p.Streams, p.Streams // this host sends on the first k paths, and receives on the rest
	if p.Reverse {
		k = 0
	} else if p.Bidir {
		want *= 2
	}
	if len(sp.ts) != want {
		sp.finish(context.Background(), true)
		return nil, fmt.Errorf("far end: opened %d data paths, want %d", len(sp.ts), want)
	}
	sp.out, sp.in = sp.ts[:k], sp.ts[k:]
	_, sp.sendBuffer, sp.warns = setBuffers(sp.out, 0, so.sendBuffer)
	if p.Bidir && sp.one == nil && nw.Name() == "tcp" {
		// The far end orders its TCP paths by these (orderPaths).
		if err := sendPathMarkers(e, sp.ts); err != nil {
			sp.finish(context.Background(), true)
			return nil, fmt.Errorf("far end: %w", err)
		}
	}
	return sp, nil
}

// closeAll closes every endpoint of ts.
func closeAll(ts []transport.Transport) {
	for _, t := range ts {
		t.Close()
	}
}

// quiet waits for the warm-up's stragglers: a far receiver keeps them out of every
// counter by their kind anyway, so a moment is enough there.
func (sp *streamPeer) quiet(ctx context.Context) {
	if sp.rx != nil {
		sp.rx.rx.waitQuiet(ctx, 10*time.Millisecond, 250*time.Millisecond)
		return
	}
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
	}
}

// sampleSeries samples what the senders handed over and, on one clock, what the
// receiver delivered; a far receiver samples its deliveries itself, and forward
// merges both once finish brought them.
func (sp *streamPeer) sampleSeries(start time.Time, step time.Duration, txs []*streamTx) func() {
	if sp.rx != nil {
		return sampleInto(start, step, txs, sp.rx.rx.deliveredNow, sp.rx.rx.series.add)
	}
	sp.sampled = true
	return sampleInto(start, step, txs, nil, sp.sent.add)
}

// finish ends the cell and collects what the server half reports. This host's
// endpoints close first when it receives, or abandons the cell (its figures unread:
// a cell that failed); a forward stream's close after the far end's figures came
// (its receiver drains on the data path). Later calls return the first's.
func (sp *streamPeer) finish(ctx context.Context, abandon bool) (FarResult, error) {
	sp.once.Do(func() {
		if abandon || len(sp.in) > 0 {
			closeAll(sp.ts)
		}
		sp.fr, sp.finErr = sp.fc.Finish(ctx)
		closeAll(sp.ts)
	})
	return sp.fr, sp.finErr
}

// forward is what the peer's receiver counted of this host's flows (bidir: those of
// the first half of the paths), with the time line when one was sampled.
func (sp *streamPeer) forward() (rxResult, []report.Sample, error) {
	if sp.one != nil {
		return sp.one.received(), sp.rx.rx.series.result(), nil
	}
	res := sp.fr
	if res.Stream == nil {
		return rxResult{}, nil, fmt.Errorf("far end: no receiver figures: %w", errors.Join(sp.finErr, errors.New("the server reported none")))
	}
	rr := res.Stream.result()
	rr.sockets, rr.cpu, rr.sendBuffer, rr.recvBuffer = res.ServerSockets, res.CPUSec, sp.sendBuffer, res.Stream.RecvBuffer
	rr.warns = append(append(rr.warns, sp.warns...), res.Warnings...)
	if sp.finErr != nil {
		rr.warns = append(rr.warns, fmt.Sprintf("far end: %v", sp.finErr))
	}
	if !sp.sampled {
		return rr, nil, nil
	}
	if len(res.Series) == 0 {
		rr.warns = append(rr.warns, "series: the far end sent no time line: delivered counts are 0")
	} else {
		rr.warns = append(rr.warns, seriesAlignWarning)
	}
	return rr, mergeSeries(sp.sent.result(), res.Series), nil
}

// localCell is a stream cell's server half in this process: the peer of a one-host
// run. It opens both ends of the data path with the cell's Network (in the lab, the
// server's ends in its server namespace) and serves its half with the halves a far
// end runs, on the client's clock (oneClock). The paths the client sends on are its
// dials to one listener, as one host's server takes them (a UDP server's one socket
// serves every flow); each path the server sends on is its dial to a listener of the
// client's.
type localCell struct {
	ts  []transport.Transport // the client's ends: the paths it sends on, then those it receives on
	srv []transport.Transport // the server half's ends
	ls  []transport.Listener
	rx  *rxHalf // receives the client's flows; nil when only the server sends

	cancel      context.CancelFunc
	startTx     func(measuring func()) // starts the server's senders (startSenders); nil when only the client sends
	txDone      chan struct{}          // closed when the server's senders returned; nil until they started
	failed      chan struct{}          // closed when they failed (Ended)
	sendersDone chan struct{}          // closed when they are done and farSent is set
	farSent     []uint64
	txRes       FarResult // written before txDone closes
	txErr       error

	once sync.Once
	res  rxResult
}

// openLocalCell opens stream cell p's data path in this process and starts spec's
// server half on it; oneWay, when set, records each new data message's one-way
// latency.
func openLocalCell(ctx context.Context, e *runEnv, nw transport.Network, p report.Params, spec FarSpec, oneWay *metrics.Latency) (_ *localCell, err error) {
	c := &localCell{sendersDone: make(chan struct{}), failed: make(chan struct{})}
	sctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	defer func() {
		if err != nil {
			c.Finish(ctx)
		}
	}()
	if !spec.Reverse { // the client's flows: its dials to one listener, as one host's server takes them
		dialled, accepted, err := c.connect(ctx, nw, e.address, spec.Streams)
		if err != nil {
			return nil, err
		}
		c.ts, c.srv = append(c.ts, dialled...), append(c.srv, accepted...)
		rx := newStreamRx(e, p, nw.Name())
		rx.readerBps, rx.oneWay = spec.ReaderBps, oneWay
		c.rx = startRxHalf(sctx, rx, accepted, 0, 0)
	}
	if spec.Reverse || spec.Bidir { // the server's flows: each its dial to a listener of the client's
		host, _, _ := net.SplitHostPort(e.address)
		var out []transport.Transport
		for range spec.Streams {
			dialled, accepted, err := c.connect(ctx, nw, net.JoinHostPort(host, "0"), 1)
			if err != nil {
				return nil, err
			}
			c.ts, c.srv, out = append(c.ts, accepted...), append(c.srv, dialled...), append(out, dialled...)
		}
		c.startTx = func(measuring func()) {
			c.txDone = make(chan struct{})
			go func() {
				defer close(c.txDone)
				c.txRes, c.txErr = serveStreamTx(sctx, e, spec, out, c.farEnded, measuring)
				if c.txErr != nil {
					close(c.failed)
				}
			}()
		}
	}
	return c, nil
}

func (c *localCell) startSenders(measuring func()) {
	if c.startTx != nil {
		c.startTx(measuring)
		c.startTx = nil
	}
}

// connect opens n paths of nw: dials to a receiver's listener at addr, and the
// endpoints that listener accepts (a UDP listener's one socket serves every path).
func (c *localCell) connect(ctx context.Context, nw transport.Network, addr string, n int) (dialled, accepted []transport.Transport, err error) {
	defer func() {
		if err != nil {
			closeAll(append(dialled, accepted...))
		}
	}()
	l, err := transport.ReceiverNetwork(nw).Listen(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: listen on %s: %w", nw.Name(), addr, err)
	}
	c.ls = append(c.ls, l)
	oneServesAll := !transport.CapsOf(nw.Name()).Connected // a connectionless listener's one endpoint serves every peer
	for range n {
		t, err := nw.Dial(ctx, l.Addr().String())
		if err != nil {
			return dialled, nil, fmt.Errorf("dial %s: %w", l.Addr(), err)
		}
		dialled = append(dialled, t)
	}
	for len(accepted) < n {
		t, err := l.Accept(ctx)
		if err != nil {
			return dialled, accepted, fmt.Errorf("%s: accept on %s: %w", nw.Name(), l.Addr(), err)
		}
		if accepted = append(accepted, t); oneServesAll {
			break
		}
	}
	return dialled, accepted, nil
}

func (c *localCell) Transports() []transport.Transport { return c.ts }

// SendersEnded tells the receiver each of the client's flows' count.
func (c *localCell) SendersEnded(sent []uint64) {
	if c.rx != nil {
		c.rx.rx.endFlows(sent)
	}
}

// farEnded is the server's senders' end of stream.
func (c *localCell) farEnded(sent []uint64) {
	c.farSent = sent
	close(c.sendersDone)
}

// Senders are the server's senders, as the client sees them; Ended closes when they
// failed.
func (c *localCell) Senders() FarPeer        { return c }
func (c *localCell) Ended() <-chan struct{}  { return c.failed }
func (c *localCell) Done() <-chan struct{}   { return c.sendersDone }
func (c *localCell) Sent() ([]uint64, error) { return c.farSent, nil }
func (c *localCell) receiver() *rxHalf       { return c.rx }
func (c *localCell) received() rxResult      { return c.res }

// Finish stops the server half: the receiver takes its socket drops and stops, then
// every endpoint closes and the server's senders stop. Later calls return the
// first's figures.
func (c *localCell) Finish(context.Context) (FarResult, error) {
	c.once.Do(func() {
		if c.rx != nil {
			c.res, _ = c.rx.stop(0)
		}
		closeAll(c.ts)
		c.cancel()
		closeAll(c.srv)
		for _, l := range c.ls {
			l.Close()
		}
		if c.txDone != nil {
			<-c.txDone
		}
	})
	fr := c.txRes
	fr.ServerSockets = len(c.srv)
	return fr, c.txErr
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
	// for half's report, which is Finish's.
	half ServeFunc
	// blocking: both ends receive blocking (blockingNet: a blocking recvmsg or read
	// on the goroutine's OS thread, unless --busy-poll); a far end picks its own.
	blocking bool
	rx       bool // record both ends' receive modes (e.rx, env.sockets.*.rx)
	// footprint: read the process's and kernel's footprint before the server half
	// starts and again as it finishes, clients still connected (FarResult.Footprint),
	// as a far end's clients half does (StartFootprint).
	footprint bool
	// oneClient: the listener closes once it accepted the client's endpoint, as
	// remote mode's TCP data listener does once its path's connection arrived.
	oneClient bool
}

// localServer is a request/response cell's server half in this process: the peer of
// a one-host run. Its listener accepts the client's endpoints (a UDP listener's one
// socket serves every client) and sh.serve serves each; with FarSpec.Listen it takes
// new clients (Dial) and has no endpoint of the client's own.
type localServer struct {
	e         *runEnv
	nw        transport.Network
	exp       string
	sh        serverHalf
	spec      FarSpec
	done      chan struct{}   // closed by Finish: the client half is done (ServerEnv.Done)
	sent      []uint64        // the client's flows' counts (SendersEnded); read after done closed
	halfRes   chan halfResult // sh.half's report, from the first endpoint it served
	srv       *server
	addr      string                // where srv listens
	ts        []transport.Transport // the client's endpoint, dialled at open; none in listen mode
	footprint func() FootprintDelta // with sh.footprint: what was gained since before the server started
}

func openLocalServer(ctx context.Context, e *runEnv, nw transport.Network, spec FarSpec, sh serverHalf) (*localServer, error) {
	if sh.blocking {
		nw = transport.BlockingNet(nw)
	}
	c := &localServer{e: e, nw: nw, exp: spec.Experiment, sh: sh, spec: spec, done: make(chan struct{}), halfRes: make(chan halfResult, 1)}
	if sh.footprint {
		// The runtime's poller opens its own descriptors on first network use: open
		// and close one endpoint first, so the baseline already has them.
		if l, err := nw.Listen(ctx, e.address); err == nil {
			l.Close()
		}
		c.footprint = StartFootprint(ctx)
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
	if !spec.Listen {
		t, err := c.Dial(ctx)
		if err != nil {
			c.srv.stop()
			return nil, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		c.ts = []transport.Transport{t}
	}
	return c, nil
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

// Finish reads the footprint, when asked for, and stops the server half: its
// listener and every endpoint close, and its goroutines return. A serverHalf.half
// is told the client is done first, and its report and error are Finish's, as a
// far end's are; a serve's error is a warning, as that server half measured nothing.
func (c *localServer) Finish(ctx context.Context) (FarResult, error) {
	var fr FarResult
	var herr error
	close(c.done)
	if c.sh.half != nil && !c.spec.Listen {
		select {
		case h := <-c.halfRes:
			fr, herr = h.r, h.err
		case <-ctx.Done():
			herr = ctx.Err()
		}
	}
	if c.footprint != nil {
		fp := c.footprint()
		fr.Footprint = &fp
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
