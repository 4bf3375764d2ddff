package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// rxResult is what the receiving half reports when a stream cell ends.
type rxResult struct {
	tot     rxTotals
	drops   uint64 // receive-buffer drops during the measured phase, datagrams, when dropsOK
	dropsOK bool
	sockets int // endpoints the receiver served
	warns   []string
	drain   time.Duration // the far end's drain, when it drained after this side finished
	far     bool          // measured at the far end: send times are on another clock
	cpu     *float64      // the far process's CPU over the cell

	// dropPkts is the kernel's count of the drops in packets, when the receiver took
	// UDP GRO super-packets: the kernel counts a dropped super-packet once, and drops
	// is then converted to datagrams (grodrops.go). nil without GRO.
	dropPkts *uint64

	// The socket buffers a slow receiver's cell asked for, as the kernel granted
	// them (the smallest over the endpoints), bytes; 0 = not asked for, or not read.
	recvBuffer, sendBuffer int
}

// recvInterval is the receiver's measured interval, ns: from the first data
// message's send time to the last arrival on one host (one clock: the interval
// includes one transit time); from the first arrival to the last across hosts,
// whose clocks are not comparable.
func (r rxResult) recvInterval() int64 {
	t := r.tot
	switch {
	case r.far && t.firstRecvNs >= 0 && t.lastRecvNs > t.firstRecvNs:
		return t.lastRecvNs - t.firstRecvNs
	case !r.far && t.firstSendNs >= 0 && t.lastRecvNs > t.firstSendNs:
		return t.lastRecvNs - t.firstSendNs
	}
	return 0
}

// newStreamRx is a receiver of p's flows over transport, nothing received yet.
func newStreamRx(e *runEnv, p report.Params, transport string) *streamRx {
	rx := &streamRx{e: e, p: p, done: make(chan struct{}), tot: rxTotals{firstSendNs: -1, firstRecvNs: -1},
		sentOf: make([]atomic.Int64, p.Streams), uniqueOf: make([]atomic.Uint64, p.Streams), doneOf: make([]atomic.Bool, p.Streams),
		reliable: transport == "tcp", quietFor: settleQuiet}
	for i := range rx.sentOf {
		rx.sentOf[i].Store(-1)
	}
	if p.RateBps > 0 && p.Size > 0 {
		// A paced flow's messages come this far apart: a quiet spell must outlast a few.
		gap := time.Duration(float64(p.Size*8*max(1, p.Streams)) / p.RateBps * float64(time.Second))
		rx.quietFor = max(rx.quietFor, min(4*gap, 5*time.Second))
	}
	if e.lab != nil {
		rx.idle = func() bool {
			up, down := e.lab.Counts()
			return up.Queued == 0 && down.Queued == 0
		}
	}
	return rx
}

// settleQuiet is the shortest quiet spell that ends a datagram receiver's drain once
// every flow's end is known and nothing is in flight or queued.
const settleQuiet = 50 * time.Millisecond

// rxHalf is the receiving half of a stream cell, wherever it runs: at the far end
// (ServeStream), in this process as the server half of a one-host cell
// (localCell), or on this host for a peer's senders (reverse, bidir). Its receiver
// serves each endpoint on a goroutine of its own, with the receive buffers and the
// time line (rxSeries) a slow receiver's cell asks for. Socket drops count from
// markStart (a receiver on the senders' clock, told where the measured phase starts)
// or else from the first data message, the start of the measured phase as a far
// receiver sees it (warm-up overflow is not the measurement's).
type rxHalf struct {
	rx      *streamRx
	ts      []transport.Transport
	series  *rxSeries // nil: no time line of its own
	gotRecv int       // SO_RCVBUF granted, when asked for (recvBuffer), bytes
	warns   []string
	stopRx  context.CancelFunc
	wg      sync.WaitGroup
	errs    []error
	endOnce sync.Once
	endErr  error

	mu     sync.Mutex // guards drops0, based
	drops0 uint64
	based  bool
}

// startRxHalf starts rx receiving on ts, each endpoint asking for recvBuffer bytes
// of receive buffer (0 = leave it), sampled every seriesStep from the first data
// arrival (0 = no time line).
func startRxHalf(ctx context.Context, rx *streamRx, ts []transport.Transport, recvBuffer int, seriesStep time.Duration) *rxHalf {
	h := &rxHalf{rx: rx, ts: ts, errs: make([]error, len(ts))}
	h.gotRecv, _, h.warns = setBuffers(ts, recvBuffer, 0)
	h.series = startRxSeries(rx, seriesStep)
	rx.onFirstData = func() {
		h.mu.Lock()
		if !h.based {
			h.drops0, h.based = recvDrops(ts)
		}
		h.mu.Unlock()
		if h.series != nil {
			h.series.arrived()
		}
	}
	ctx, h.stopRx = context.WithCancel(ctx)
	for i, t := range ts {
		h.wg.Go(func() { h.errs[i] = rx.serve(ctx, t) })
	}
	return h
}

// markStart takes the base of the socket drops now: the measured phase starts.
func (h *rxHalf) markStart() {
	d, _ := recvDrops(h.ts)
	h.mu.Lock()
	h.drops0, h.based = d, true
	h.mu.Unlock()
}

// drops is the endpoints' receive-buffer drops since the base, as the kernel counts
// them (with UDP GRO: packets; streamRx.datagramDrops converts them once every serve
// has returned).
func (h *rxHalf) drops() (uint64, bool) {
	d1, ok := recvDrops(h.ts)
	h.rx.readFinalDrops()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !ok || !h.based {
		return 0, false
	}
	return d1 - min(d1, h.drops0), true
}

// end stops every serve, closes the endpoints, waits for the serves, and returns
// their failures (a closed endpoint is none). Later calls return the same.
func (h *rxHalf) end() error {
	h.endOnce.Do(func() {
		h.stopRx()
		closeAll(h.ts)
		h.wg.Wait()
		var errs []error
		for _, err := range h.errs {
			if err != nil && !isClosed(err) {
				errs = append(errs, err)
			}
		}
		h.endErr = errors.Join(errs...)
	})
	return h.endErr
}

// stop reads the socket drops, stops the receiver and returns what it received,
// drops in datagrams, with the time line if it kept one. drained is how long its
// drain took, for a far receiver's report.
func (h *rxHalf) stop(drained time.Duration) (rxResult, []RecvSample) {
	drops, dropsOK := h.drops()
	serr := h.end()
	r := rxResult{tot: h.rx.totals(), sockets: len(h.ts), recvBuffer: h.gotRecv, drain: drained, dropsOK: dropsOK}
	r.drops, r.dropPkts = h.rx.datagramDrops(drops)
	samples, swarns := h.series.stop()
	r.warns = append(append(r.warns, h.warns...), swarns...)
	if serr != nil {
		r.warns = append(r.warns, fmt.Sprintf("receiver: %v", serr))
	}
	return r, samples
}

// StreamRx is what the receiving half of a stream cell measured, as it travels from
// the far end (JSON).
type StreamRx struct {
	Received      uint64  `json:"received"`
	Unique        uint64  `json:"unique"`
	Dups          uint64  `json:"dups"`
	Reordered     uint64  `json:"reordered"`
	ReorderExtent uint64  `json:"reorder_extent"`
	Stale         uint64  `json:"stale"`
	Corrupt       uint64  `json:"corrupt"`
	Malformed     uint64  `json:"malformed"`
	Foreign       uint64  `json:"foreign"`
	RecvSpanNs    int64   `json:"recv_span_ns"` // first data arrival to the last, on the receiver's clock
	JitterSum     float64 `json:"jitter_sum_ns"`
	JitterFlows   int     `json:"jitter_flows"`
	KernelStamped uint64  `json:"kernel_stamped"`
	AllEnded      bool    `json:"all_ended"`              // the receiver learned every flow's count (SendersEnded) before it stopped
	DropsSocket   *uint64 `json:"drops_socket,omitempty"` // receive-buffer drops from the first data message on, datagrams
	RecvBuffer    int     `json:"recv_buffer,omitempty"`  // SO_RCVBUF granted (FarSpec.RecvBuffer), read back, bytes; the smallest over the endpoints
	DrainNs       int64   `json:"drain_ns"`

	// DropsSocketPackets is the kernel's count of those drops in packets, when the
	// receiver took UDP GRO super-packets (DropsSocket is then converted: grodrops.go).
	DropsSocketPackets *uint64 `json:"drops_socket_packets,omitempty"`
}

// result is what the far receiver measured, as this side's receiving half reports
// it; sockets, warnings and CPU are the caller's, from the whole FarResult.
func (s *StreamRx) result() rxResult {
	r := rxResult{far: true, tot: s.totals(), drain: time.Duration(s.DrainNs)}
	if s.DropsSocket != nil {
		r.drops, r.dropsOK = *s.DropsSocket, true
		r.dropPkts = s.DropsSocketPackets
	}
	return r
}

func (s *StreamRx) totals() rxTotals {
	t := rxTotals{received: s.Received, unique: s.Unique, dups: s.Dups, reordered: s.Reordered, extent: s.ReorderExtent,
		stale: s.Stale, jitterSum: s.JitterSum, jitterFlows: s.JitterFlows, kernelStamped: s.KernelStamped,
		firstSendNs: -1, firstRecvNs: -1}
	t.Corrupt, t.Malformed, t.Foreign = s.Corrupt, s.Malformed, s.Foreign
	if s.RecvSpanNs > 0 {
		t.firstRecvNs, t.lastRecvNs = 0, s.RecvSpanNs
	}
	return t
}

// ServeStream is the server half of a stream cell at the far end, as spec asks for
// it: for a forward stream a receiver on ts (one endpoint per stream), for a reverse
// one the senders (serveStreamTx), both ways both at once, the receiver on the first
// spec.Streams endpoints and the senders on the last, in the client's order
// (orderPaths puts TCP's in it). The receiver accounts every message from the first
// until the client's senders are done (peer.Done closes: the client sent
// everything) and it drained: until every flow's messages, as peer.Sent counts them,
// are in, or a quiet spell, or spec.Drain. ended is the senders'. It returns what
// each half measured (FarResult.Stream, FarResult.StreamTx).
func ServeStream(ctx context.Context, spec FarSpec, ts []transport.Transport, peer FarPeer, ended func(sent []uint64)) (FarResult, error) {
	n, paths, sends := spec.Streams, spec.Streams, spec.Reverse || spec.Bidir
	if spec.Bidir {
		paths *= 2
	}
	if spec.Run == 0 || n < 1 || len(ts) != paths || spec.Size < wire.HeaderLen || (spec.Bidir && spec.Reverse) || (sends && spec.Count == 0 && spec.SendFor <= 0) {
		return FarResult{}, fmt.Errorf("bench: ServeStream: want a run id, %d endpoints for %d streams (2 per stream both ways), size >= %d, and for senders a count or a time; got run %d, reverse %v, bidir %v, size %d, count %d, time %v",
			len(ts), n, wire.HeaderLen, spec.Run, spec.Reverse, spec.Bidir, spec.Size, spec.Count, spec.SendFor)
	}
	if spec.ReaderBps < 0 || spec.RecvBuffer < 0 || spec.SeriesStep < 0 || (spec.SeriesStep > 0 && spec.SeriesStep < MinSeriesStep) {
		return FarResult{}, fmt.Errorf("bench: ServeStream: want reader pace, receive buffer >= 0 and series step 0 or >= %v; got %v bit/s, %d B, %v",
			MinSeriesStep, spec.ReaderBps, spec.RecvBuffer, spec.SeriesStep)
	}
	e := &runEnv{epoch: time.Now(), run: spec.Run, seed: 1, batch: farBatch(spec), drain: spec.Drain, verify: spec.Verify}
	switch {
	case spec.Reverse:
		return serveStreamTx(ctx, e, spec, ts, ended, nil)
	case !spec.Bidir:
		return serveStreamRx(ctx, e, spec, ts, peer)
	}
	if spec.Transport == "tcp" {
		ordered, err := orderPaths(ctx, spec.Run, spec.Size, ts)
		if err != nil {
			return FarResult{ServerSockets: len(ts)}, err
		}
		ts = ordered
	}
	var rx, tx FarResult
	var rxErr, txErr error
	var wg sync.WaitGroup
	wg.Go(func() { rx, rxErr = serveStreamRx(ctx, e, spec, ts[:n], peer) })
	wg.Go(func() { tx, txErr = serveStreamTx(ctx, e, spec, ts[n:], ended, nil) })
	wg.Wait()
	res := FarResult{ServerSockets: len(ts), Stream: rx.Stream, StreamTx: tx.StreamTx, Warnings: append(rx.Warnings, tx.Warnings...)}
	if rxErr != nil {
		rxErr = fmt.Errorf("receiver: %w", rxErr)
	}
	if txErr != nil {
		txErr = fmt.Errorf("senders: %w", txErr)
	}
	return res, errors.Join(rxErr, txErr)
}

// serveStreamRx is ServeStream's receiver.
func serveStreamRx(ctx context.Context, e *runEnv, spec FarSpec, ts []transport.Transport, peer FarPeer) (FarResult, error) {
	rx := newStreamRx(e, report.Params{Size: spec.Size, Streams: spec.Streams}, spec.Transport)
	rx.readerBps = spec.ReaderBps
	h := startRxHalf(ctx, rx, ts, spec.RecvBuffer, spec.SeriesStep)
	var warns []string
	select {
	case <-peer.Done():
		if sent, err := peer.Sent(); err != nil {
			warns = append(warns, fmt.Sprintf("the client's end of stream: %v: the drain ends on a quiet spell", err))
		} else if len(sent) != spec.Streams {
			warns = append(warns, fmt.Sprintf("the client's end of stream counts %d flows, want %d: the drain ends on a quiet spell", len(sent), spec.Streams))
		} else {
			h.rx.endFlows(sent)
		}
		h.rx.endUnknown()
	case <-ctx.Done():
	}
	drainStart := time.Now()
	h.rx.waitDrained(ctx, spec.Drain)
	allEnded := h.rx.allEnded()
	r, samples := h.stop(time.Since(drainStart))
	sr := r.wire()
	sr.AllEnded = allEnded
	return FarResult{ServerSockets: len(ts), Stream: sr, Warnings: append(warns, r.warns...), Series: samples}, ctx.Err()
}

// wire is what a far receiver measured, as it travels to the client.
func (r rxResult) wire() *StreamRx {
	t := r.tot
	sr := &StreamRx{Received: t.received, Unique: t.unique, Dups: t.dups, Reordered: t.reordered, ReorderExtent: t.extent,
		Stale: t.stale, Corrupt: t.Corrupt, Malformed: t.Malformed, Foreign: t.Foreign,
		JitterSum: t.jitterSum, JitterFlows: t.jitterFlows, KernelStamped: t.kernelStamped,
		DrainNs: int64(r.drain), RecvBuffer: r.recvBuffer}
	if t.firstRecvNs >= 0 && t.lastRecvNs > t.firstRecvNs {
		sr.RecvSpanNs = t.lastRecvNs - t.firstRecvNs
	}
	if r.dropsOK {
		sr.DropsSocket, sr.DropsSocketPackets = u64p(r.drops), r.dropPkts
	}
	return sr
}
