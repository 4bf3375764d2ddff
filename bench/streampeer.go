package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
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
