package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// A stream cell's server half runs at its peer: at the far end in remote mode
// (Plan.Far: a tcpvsudp serve, through bench/farend), or in this process on one host
// (loopback, and the lab, whose server namespace this process enters: localCell).
// The client half reaches either through a FarCell, and both run the same halves:
// rxHalf receives and accounts, streamTx sends (ServeStreamRx and ServeStreamTx at a
// far end). Only where the server half runs differs, and one capability says it:
// a peer in this process shares the client's clock (oneClock).

// A oneClock FarCell runs its server half in this process, on the client's clock,
// run id and payload (runEnv): send times and arrival times are on one clock, so the
// receive interval runs from the first send and one-way latency is measured. The
// client half takes its receiver's measured-phase edges itself: the receiver is
// told the measured phase starts (its socket drops count from there), drains before
// the phase ends here (so the lab's link figures, TCP_INFO and CPU cover the drain),
// and its time line samples deliveries live. A far end, on another clock, measures
// from its first data arrival, drains after the client finished, and its time line
// is merged (mergeSeries).
type oneClock interface {
	// quiet waits for the warm-up's stragglers to reach the receiver.
	quiet(ctx context.Context)
	// markStart tells the receiver the measured phase starts.
	markStart()
	// sampleSeries samples, every step from start, what txs sent and the receiver
	// delivered; the function it returns stops it.
	sampleSeries(start time.Time, step time.Duration, txs []*streamTx) (stop func())
	series() []report.Sample
	// drain waits for the receiver to have everything, for a quiet spell, or for d.
	drain(ctx context.Context, d time.Duration)
	// received is what the receiver counted; after Finish.
	received() rxResult
}

// streamPeer is a stream cell's server half as its client half sees it.
type streamPeer struct {
	fc  FarCell
	one oneClock // nil: the server half runs at a far end, on another clock
	ts  []Transport
	out []Transport // this host sends on these: forward, and bidir's first half
	in  []Transport // and receives on these: reverse, and bidir's second half
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
func openStreamPeer(ctx context.Context, e *runEnv, nw Network, p report.Params, so streamOpts) (*streamPeer, error) {
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
	sp.one, _ = fc.(oneClock)
	n := p.Streams
	switch {
	case p.Bidir && len(sp.ts) == 2*n:
		sp.out, sp.in = sp.ts[:n], sp.ts[n:]
	case p.Reverse && len(sp.ts) == n:
		sp.in = sp.ts
	case !peerSends && len(sp.ts) == n:
		sp.out = sp.ts
	default:
		sp.abandon()
		return nil, fmt.Errorf("far end: opened %d data paths, want %d", len(sp.ts), len(sp.out)+len(sp.in))
	}
	_, sp.sendBuffer, sp.warns = setBuffers(sp.out, 0, so.sendBuffer)
	if p.Bidir && sp.one == nil && nw.Name() == "tcp" {
		// The far end orders its TCP paths by these (orderPaths).
		if err := sendPathMarkers(e, sp.ts); err != nil {
			sp.abandon()
			return nil, fmt.Errorf("far end: %w", err)
		}
	}
	return sp, nil
}

func (sp *streamPeer) closeEnds() {
	for _, t := range sp.ts {
		t.Close()
	}
}

// quiet waits for the warm-up's stragglers: a far receiver keeps them out of every
// counter by their kind anyway, so a moment is enough.
func (sp *streamPeer) quiet(ctx context.Context) {
	if sp.one != nil {
		sp.one.quiet(ctx)
		return
	}
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
	}
}

func (sp *streamPeer) markStart() {
	if sp.one != nil && len(sp.out) > 0 {
		sp.one.markStart()
	}
}

// drain waits for the peer's receiver to drain, when it shares this host's clock; a
// far receiver drains after Finish.
func (sp *streamPeer) drain(ctx context.Context, d time.Duration) {
	if sp.one != nil && len(sp.out) > 0 {
		sp.one.drain(ctx, d)
	}
}

// sampleSeries samples what the senders handed over and, on one clock, what the
// receiver delivered. A far receiver samples its deliveries itself: here the senders
// are sampled once more as it stops (no drain here follows the sending: the last
// step's sends would be missing), and series merges both once finish brought them.
func (sp *streamPeer) sampleSeries(start time.Time, step time.Duration, txs []*streamTx) func() {
	if sp.one != nil {
		return sp.one.sampleSeries(start, step, txs)
	}
	sp.sampled = true
	stop := sampleInto(start, step, txs, nil, sp.sent.add)
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			var sent uint64
			for _, tx := range txs {
				sent += tx.sentNow.Load()
			}
			sp.sent.add(report.Sample{TS: report.Round3(time.Since(start).Seconds()), SentMsgs: sent})
		})
	}
}

// finish ends the cell: it closes this host's endpoints (a forward stream's after
// the far end's figures came: its receiver drains on the data path) and collects
// what the server half reports.
func (sp *streamPeer) finish(ctx context.Context) (FarResult, error) {
	sp.once.Do(func() {
		if len(sp.in) > 0 {
			sp.closeEnds()
		}
		sp.fr, sp.finErr = sp.fc.Finish(ctx)
		sp.closeEnds()
	})
	return sp.fr, sp.finErr
}

// abandon closes this side's endpoints and ends the server half, its figures
// unread: a cell that failed before finish.
func (sp *streamPeer) abandon() {
	sp.once.Do(func() {
		sp.closeEnds()
		sp.fc.Finish(context.Background())
	})
}

// forward is what the peer's receiver counted of this host's flows (bidir: those of
// the first half of the paths), with the time line when one was sampled.
func (sp *streamPeer) forward() (rxResult, []report.Sample, error) {
	if sp.one != nil {
		return sp.one.received(), sp.one.series(), nil
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
	ts  []Transport // the client's ends: the paths it sends on, then those it receives on
	srv []Transport // the server half's ends
	ls  []Listener
	rx  *rxHalf // receives the client's flows; nil when only the server sends

	cancel      context.CancelFunc
	txDone      chan struct{} // closed when the server's senders returned; nil when only the client sends
	failed      chan struct{} // closed when they failed (Ended)
	sendersDone chan struct{} // closed when they are done and farSent is set
	farSent     []uint64
	txRes       FarResult // written before txDone closes
	txErr       error

	once sync.Once
	res  rxResult
}

// sharedEndpoint is a Listener whose first Accept returns the one endpoint that
// serves every peer (a datagram socket), and no other.
type sharedEndpoint interface{ sharesEndpoint() }

func (*udpListener) sharesEndpoint() {}

// openLocalCell opens stream cell p's data path in this process and starts spec's
// server half on it; oneWay, when set, records each new data message's one-way
// latency.
func openLocalCell(ctx context.Context, e *runEnv, nw Network, p report.Params, spec FarSpec, oneWay *Latency) (_ *localCell, err error) {
	c := &localCell{sendersDone: make(chan struct{}), failed: make(chan struct{})}
	sctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	defer func() {
		if err != nil {
			c.Finish(ctx)
		}
	}()
	if !spec.Reverse {
		rnw := receiverNetwork(nw)
		l, err := rnw.Listen(ctx, e.address)
		if err != nil {
			return nil, fmt.Errorf("%s: listen on %s: %w", nw.Name(), e.address, err)
		}
		c.ls = append(c.ls, l)
		for range spec.Streams {
			t, err := nw.Dial(ctx, l.Addr().String())
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", l.Addr(), err)
			}
			c.ts = append(c.ts, t)
		}
		var in []Transport
		for len(in) < spec.Streams {
			t, err := l.Accept(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: accept on %s: %w", nw.Name(), l.Addr(), err)
			}
			in = append(in, t)
			c.srv = append(c.srv, t)
			if _, one := l.(sharedEndpoint); one {
				break
			}
		}
		rx := newStreamRx(e, p, nw.Name())
		rx.readerBps, rx.oneWay = spec.ReaderBps, oneWay
		c.rx = startRxHalf(sctx, rx, in, 0, 0)
	}
	if spec.Reverse || spec.Bidir {
		host, _, _ := net.SplitHostPort(e.address)
		addr := net.JoinHostPort(host, "0")
		var out []Transport
		for range spec.Streams {
			l, err := receiverNetwork(nw).Listen(ctx, addr) // the client's receiving end
			if err != nil {
				return nil, fmt.Errorf("%s: listen on %s: %w", nw.Name(), addr, err)
			}
			c.ls = append(c.ls, l)
			st, err := nw.Dial(ctx, l.Addr().String()) // the server's sending end
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", l.Addr(), err)
			}
			c.srv, out = append(c.srv, st), append(out, st)
			ct, err := l.Accept(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: accept on %s: %w", nw.Name(), l.Addr(), err)
			}
			c.ts = append(c.ts, ct)
		}
		c.txDone = make(chan struct{})
		go func() {
			defer close(c.txDone)
			c.txRes, c.txErr = serveStreamTx(sctx, e, spec, out, c.farEnded)
			if c.txErr != nil {
				close(c.failed)
			}
		}()
	}
	return c, nil
}

func (c *localCell) Transports() []Transport { return c.ts }

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

// Senders are the server's senders, as the client sees them.
func (c *localCell) Senders() FarPeer { return localSenders{c} }

// Ended closes when the server's senders failed.
func (c *localCell) Ended() <-chan struct{} { return c.failed }

type localSenders struct{ c *localCell }

func (s localSenders) Done() <-chan struct{}   { return s.c.sendersDone }
func (s localSenders) Sent() ([]uint64, error) { return s.c.farSent, nil }

func (c *localCell) quiet(ctx context.Context) {
	c.rx.rx.waitQuiet(ctx, 10*time.Millisecond, 250*time.Millisecond)
}
func (c *localCell) markStart() { c.rx.run.markStart() }
func (c *localCell) sampleSeries(start time.Time, step time.Duration, txs []*streamTx) func() {
	return sampleSeries(start, step, txs, c.rx.rx)
}
func (c *localCell) series() []report.Sample { return c.rx.rx.series.result() }
func (c *localCell) drain(ctx context.Context, d time.Duration) {
	c.rx.rx.waitDrained(ctx, d)
}
func (c *localCell) received() rxResult { return c.res }

// Finish stops the server half: the receiver takes its socket drops and stops, then
// every endpoint closes and the server's senders stop. Later calls return the
// first's figures.
func (c *localCell) Finish(context.Context) (FarResult, error) {
	c.once.Do(func() {
		if c.rx != nil {
			c.res, _ = c.rx.stop(0)
		}
		for _, t := range c.ts {
			t.Close()
		}
		c.cancel()
		for _, t := range c.srv {
			t.Close()
		}
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
