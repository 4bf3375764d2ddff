package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpStream,
		section: report.Section{Title: "Throughput (stream)", Layout: report.LayoutThroughput, Charts: []report.Chart{
			{Kind: report.ChartBySize, File: "goodput_by_size.svg", Title: "Goodput by message size",
				Heading: "Stream goodput at the receiver, by message size", Field: "goodput_bps", YLabel: "goodput (receiver)"},
			{Kind: report.ChartBySize, File: "msgs_by_size.svg", Title: "Messages/s by message size",
				Heading: "Stream messages/s at the receiver, by message size", Field: "msgs_per_s", YLabel: "messages/s (receiver)"},
			// Most of the injected-vs-measured bars are stream cells': its section shows it too.
			{Kind: report.ChartInjectedVsMeasured},
		}},
		help:  "one-way bulk transfer: goodput at the receiver, loss after a drain, reordering, duplicates, jitter, retransmits, CPU per GB",
		place: 90, run: runStreamCell, measures: true, summary: streamSummary, labSection: 1,
		cellWarnings: accountingWarnings, runWarnings: jitterClockWarnings,
		streams: true, directions: true, ioModes: true,
		properties: []report.Rule{report.RuleFlowRatio, report.RuleRetransmission, report.RuleLabOrdering, report.RuleDuplicates,
			report.RuleChecksum, report.RuleReliability, report.RuleOrdering, report.RuleThroughput, report.RuleCost},
		far: &FarHalf{Params: streamParamsOf, Parse: parseStream, Serve: func(ctx context.Context, env ServerEnv, spec FarSpec, ts []transport.Transport) (FarResult, error) {
			return ServeStream(ctx, spec, ts, env, env.ReportSent)
		}}})
}

// runStreamCell is stream's experimentFunc, the bulk transfer: p.Streams senders,
// each its own client endpoint and flow, send p.Size-byte messages for p.DurationS or
// exactly p.Count each, unpaced or paced to p.RateBps in all (per direction both
// ways). The receiver accounts every message by flow and sequence number; loss is
// counted after a drain. A both-ways cell keeps its observations, where its
// directions are apart; the other cells keep what their system calls carried.
func runStreamCell(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	o, err := streamCell(ctx, e, nw, p, streamOpts{warmup: e.warmup, drain: e.drain})
	if p.Bidir {
		return o, err
	}
	// Of a one-way stream's observations the report keeps what its system calls
	// carried (UDP): the difference between the I/O modes.
	var obs map[string]any
	for _, k := range []string{"send_calls", "sent_datagrams"} {
		if v, ok := o.observed[k]; ok {
			if obs == nil {
				obs = map[string]any{}
			}
			obs[k] = v
		}
	}
	return outcome{m: o.m, warns: o.warns, observed: obs}, err
}

// streamOpts vary the stream cell for the experiments built on it.
type streamOpts struct {
	warmup     time.Duration
	drain      time.Duration    // longest wait after the last send
	readerBps  float64          // the receiver reads no faster than this, bits/s; 0 = as fast as it can
	seriesStep time.Duration    // sample sent and delivered counts this often; 0 = no series
	oneWay     *metrics.Latency // when set, each new data message's one-way latency (arrival − send time, ns) is recorded here

	// Socket buffers to ask for on endpoints opened elsewhere (a far end's data path,
	// whose Network options cannot reach them), bytes; 0 = leave them.
	recvBuffer, sendBuffer int
}

// streamCell runs one stream cell: this host's client half against the cell's server
// half at its peer (openStreamPeer: in this process, or at a far end). This host sends
// on the paths it sends on (forward; bidir's first half) and receives and accounts on
// those it receives on (reverse; bidir's second half); the peer does the rest. It
// returns the cell's figures, observations (sender blocked time, TCP_INFO limits)
// and, when asked, its time line.
func streamCell(ctx context.Context, e *runEnv, nw transport.Network, p report.Params, so streamOpts) (outcome, error) {
	// Every blocking call below ends by this cell's time limit: the watchdog closes the
	// endpoints, which unblocks a sender stuck on a receiver that died.
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	sp, err := openStreamPeer(ctx, e, nw, p, so)
	if err != nil {
		return outcome{}, err
	}
	defer sp.finish(context.Background(), true)
	stopWatch := ctxwatch.OnDone(ctx, func() { closeAll(sp.ts) })
	defer stopWatch()
	txs := make([]*streamTx, len(sp.out))
	for i, t := range sp.out {
		txs[i] = newStreamTx(e, p, uint32(i), t)
	}
	var back *rxHalf // this host's receiver, of the peer's flows
	if len(sp.in) > 0 {
		back = startRxHalf(ctx, newStreamRx(e, p, nw.Name()), sp.in, 0, 0)
		defer back.end()
		if sp.one != nil { // the peer's senders, on this clock: its drops count from their measured phase
			sp.one.startSenders(back.markStart)
		}
	}

	// Warm-up: excluded from every counter and from the sequence space (PITFALLS 14).
	// The peer's senders warm up alike.
	if so.warmup > 0 && len(txs) > 0 {
		if err := warmAll(ctx, txs, so.warmup); err != nil {
			return outcome{}, err
		}
		sp.quiet(ctx)
	}

	e.markMeasured(false)
	u0, uerr := metrics.ReadUsage()
	retr0, _ := retransmits(sp.out)
	lim0, _ := tcpLimits(sp.out)
	if sp.rx != nil { // the peer's receiver, on this clock: its drops count from here
		sp.rx.markStart()
	}
	measureStart := time.Now()
	stopSeries := func() {}
	if so.seriesStep > 0 {
		stopSeries = sp.sampleSeries(measureStart, so.seriesStep, txs)
		defer stopSeries()
	}

	var until time.Time
	if p.Count == 0 {
		until = time.Now().Add(time.Duration(p.DurationS * float64(time.Second)))
	}
	calls0, dgrams0, counted := sendCalls(sp.out)
	g, gctx := errgroup.WithContext(ctx)
	if len(txs) > 0 {
		g.Go(func() error {
			if err := sendAll(gctx, txs, p.Count, until); err != nil {
				return err
			}
			// End of stream travels beside the data path, where it cannot be lost: the
			// receiver's socket then drops data and nothing else (PITFALLS 7).
			sp.fc.SendersEnded(sentPerFlow(txs))
			return nil
		})
	}
	if back != nil {
		g.Go(func() error {
			awaitFarSenders(gctx, e, back.rx, p, so, sp.dur, sp.fc.Ended(), sp.fc.Senders())
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		stopSeries()
		return outcome{}, err
	}

	// Drain: wait for the receivers to have everything, or for a quiet spell, or for
	// the drain period to run out (PITFALLS 7). A far receiver drains after finish.
	drainStart := time.Now()
	if sp.rx != nil {
		sp.rx.rx.waitDrained(ctx, so.drain)
	}
	drain := time.Since(drainStart)
	var backDrain time.Duration
	var rf, rb rxResult
	if back != nil {
		backStart := time.Now()
		back.rx.waitDrained(ctx, so.drain)
		backDrain = time.Since(backStart)
	}
	stopSeries()

	u1, _ := metrics.ReadUsage()
	retr1, retrOK := retransmits(sp.out)
	lim1, limOK := tcpLimits(sp.out)
	calls1, dgrams1, _ := sendCalls(sp.out)
	e.markMeasured(true)
	if back != nil {
		rb, _ = back.stop(backDrain)
		rb.far = sp.one == nil
	}
	fr, ferr := sp.finish(ctx, false)

	var (
		warns, wf, wb []string
		m, mf, mb     report.Metrics
		obs, of, ob   map[string]any
		series        []report.Sample
		pre           string // this host's senders' TCP_INFO: bidir's forward direction's
	)
	if len(txs) > 0 {
		if rf, series, err = sp.forward(); err != nil {
			return outcome{}, err
		}
		if rf.drain > 0 {
			drain = rf.drain // the far end drained after this side finished
		}
		var ts txSummary
		for _, tx := range txs {
			ts.add(tx)
		}
		mf, wf, of = streamMetrics(p, so, ts, rf, drain)
	}
	if back != nil {
		if fr.StreamTx == nil {
			return outcome{}, fmt.Errorf("far end: no sender figures: %w", errors.Join(ferr, errors.New("the server reported none")))
		}
		rb.sockets, rb.cpu = fr.ServerSockets, fr.CPUSec
		mb, wb, ob = streamMetrics(p, so, fr.StreamTx.summary(), rb, backDrain)
	}
	switch {
	case back == nil: // forward
		m, obs, warns = mf, of, append(rf.warns, wf...)
		if retrOK {
			m.Retransmits = u64p(retr1 - retr0)
		}
		if counted {
			// What each system call carried: 1 in textbook I/O, up to --batch batched.
			report.Set(obs, report.ObsSendCalls, calls1-calls0)
			report.Set(obs, report.ObsSentDatagrams, dgrams1-dgrams0)
		}
	case len(txs) == 0: // reverse
		m, obs, warns = mb, ob, append(append(fr.Warnings, rb.warns...), wb...)
	default: // both ways: each direction's figures apart, the cell's their sum (bothWays)
		m, obs, pre = bothWays(mf, mb, rf.tot, rb.tot), map[string]any{}, "forward_"
		m.ServerSockets, m.ServerCPUSec = fr.ServerSockets, fr.CPUSec
		warns = append(append(warns, fr.Warnings...), rb.warns...)
		if sp.one != nil {
			warns = append(warns, rf.warns...) // the receiver's in this process
		}
		warns = append(append(warns, prefixed("forward: ", wf)...), prefixed("reverse: ", wb)...)
		directionObserved(obs, "forward_", mf, of)
		directionObserved(obs, "reverse_", mb, ob)
		if retrOK {
			report.Set(obs, report.ObsForwardRetransmits, retr1-retr0)
		}
	}
	if ferr != nil && back != nil {
		warns = append(warns, fmt.Sprintf("far end: %v", ferr))
	}
	if limOK {
		obs[pre+"rwnd_limited_ns"] = int64(lim1.RwndLimited - lim0.RwndLimited)
		obs[pre+"sndbuf_limited_ns"] = int64(lim1.SndbufLimited - lim0.SndbufLimited)
	}
	if uerr == nil {
		metrics.SetUsage(&m, u1.Sub(u0), m.RecvBytes)
	}
	return outcome{m: m, warns: warns, observed: obs, series: series}, nil
}

// warmAll sends warm-up messages on every stream for d.
func warmAll(ctx context.Context, txs []*streamTx, d time.Duration) error {
	g, gctx := errgroup.WithContext(ctx)
	until := time.Now().Add(d)
	for _, tx := range txs {
		g.Go(func() error { return tx.send(gctx, wire.KindWarmup, 0, until) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// sendAll runs every stream's measured phase at once: count messages each (or
// until, for count 0).
func sendAll(ctx context.Context, txs []*streamTx, count uint64, until time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, tx := range txs {
		tx.reset()
		g.Go(func() error { return tx.send(gctx, wire.KindData, count, until) })
	}
	return g.Wait()
}

// sentPerFlow is how many messages each stream sent, refused ones included, by flow:
// the end of stream the receiver is told.
func sentPerFlow(txs []*streamTx) []uint64 {
	sent := make([]uint64, len(txs))
	for i, tx := range txs {
		sent[i] = tx.sent
	}
	return sent
}

// tcpLimits sums the TCP_INFO time-limited counters over the transports that can
// report them; ok is false when none can.
func tcpLimits(ts []transport.Transport) (sum transport.TCPInfo, ok bool) {
	for _, t := range ts {
		if ti, is := t.(transport.TCPInfoer); is {
			if info, err := ti.TCPInfo(); err == nil {
				sum.RwndLimited += info.RwndLimited
				sum.SndbufLimited += info.SndbufLimited
				sum.BusyTime += info.BusyTime
				ok = true
			}
		}
	}
	return sum, ok
}

// sampleInto records into add, every step from start, how many messages the senders
// have handed over and, with delivered, the receiver has taken in (nil: none here,
// the far end counts them), and once more when it stops, so that the time line ends
// with every message the cell counted (a drain's deliveries after the last step
// too). The function it returns ends the sampling and waits for it; calling it
// again does nothing.
func sampleInto(start time.Time, step time.Duration, txs []*streamTx, delivered func() uint64, add func(report.Sample)) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var sent uint64
		for _, tx := range txs {
			sent += tx.sentNow.Load()
		}
		s := report.Sample{TS: report.Round3(time.Since(start).Seconds()), SentMsgs: sent}
		if delivered != nil {
			s.RecvMsgs = delivered()
		}
		add(s)
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(step)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-done:
				sample() // where the drain ended: the last partial step's deliveries too
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); <-finished })
	}
}

// streamTx is one sending stream: one client endpoint, one flow.
type streamTx struct {
	e      *runEnv
	t      transport.Transport
	flow   uint32
	size   int
	perSec float64 // messages per second when paced; 0 = unpaced
	bufs   [][]byte
	out    [][]byte
	pcrc   uint32

	hdr     wire.HeaderStamper // writes the headers of hdrKind messages
	hdrKind wire.Kind          // the kind whose shared header fields bufs hold; 0 = none yet

	seq     uint64        // next sequence number
	sent    uint64        // messages handed to the transport, refused ones included
	sentNow atomic.Uint64 // sent, for the series sampler
	inSend  time.Duration // time spent inside Send during the measured phase: blocked by flow control
	refused uint64        // sends the kernel refused (drops_sender)
	firstNs int64
	lastNs  int64
}

func newStreamTx(e *runEnv, p report.Params, flow uint32, t transport.Transport) *streamTx {
	batch := max(1, min(e.batch, (1<<20)/p.Size))
	tx := &streamTx{e: e, t: t, flow: flow, size: p.Size, bufs: makeBufs(batch, p.Size), out: make([][]byte, batch)}
	for _, b := range tx.bufs {
		wire.FillPayload(b[wire.HeaderLen:], e.seed, flow)
	}
	tx.pcrc = wire.PayloadCRC(tx.bufs[0][wire.HeaderLen:])
	if p.RateBps > 0 {
		tx.perSec = p.RateBps / float64(p.Streams) / float64(p.Size*8)
	}
	return tx
}

func (tx *streamTx) reset() {
	tx.seq, tx.sent, tx.refused, tx.firstNs, tx.lastNs, tx.inSend = 0, 0, 0, -1, 0, 0
	tx.sentNow.Store(0)
}

// send sends messages of kind until count have been sent (count > 0) or until
// passes. Paced streams follow a timetable from their start, so a late batch is
// caught up rather than stretching the run: the rate over the run is the rate asked
// for. The pacer sleeps and does not spin (unlike open-loop pingpong's): a stream's
// contract is its rate, and a spinning sender would take a core from the receiver.
func (tx *streamTx) send(ctx context.Context, kind wire.Kind, count uint64, until time.Time) error {
	var tt timetable
	if tx.perSec > 0 {
		tt = newTimetable(tx.e.now(), tx.perSec)
	}
	var phaseSent uint64
	for ctx.Err() == nil {
		now := time.Now() // the batch's send time, if it is sent now
		if count == 0 && !now.Before(until) {
			return nil
		}
		if count > 0 && phaseSent >= count {
			return nil
		}
		k := len(tx.bufs)
		if count > 0 {
			k = int(min(uint64(k), count-phaseSent))
		}
		nowNs := int64(now.Sub(tx.e.epoch))
		if tx.perSec > 0 {
			due := tt.due(nowNs)
			if due <= phaseSent {
				next := tx.e.epoch.Add(time.Duration(tt.at(phaseSent)))
				if count == 0 && next.After(until) {
					return nil
				}
				time.Sleep(time.Until(next))
				continue
			}
			k = int(min(uint64(k), due-phaseSent))
		}
		tx.fill(kind, k, nowNs)
		if kind == wire.KindData && tx.firstNs < 0 {
			tx.firstNs = nowNs
		}
		var sendStart, sendEnd time.Time
		if kind == wire.KindData {
			sendStart = time.Now()
		}
		n, err := tx.t.Send(tx.out[:k])
		if kind == wire.KindData {
			sendEnd = time.Now()
			tx.inSend += sendEnd.Sub(sendStart)
		}
		adv := uint64(n)
		if err != nil {
			if !isDatagramRefusal(err) {
				return fmt.Errorf("flow %d: send: %w", tx.flow, err)
			}
			adv++ // the refused message is sent and lost: its number is used up
			if kind == wire.KindData {
				tx.refused++
			}
		}
		tx.seq += adv
		phaseSent += adv
		if kind == wire.KindData {
			tx.sent += adv
			tx.sentNow.Store(tx.sent)
			tx.lastNs = int64(sendEnd.Sub(tx.e.epoch))
		}
	}
	return ctx.Err()
}

// fill writes the headers of the next k messages of kind, from seq tx.seq on, with
// send time sendNs, into tx.bufs and lists those messages in tx.out.
//
// Every message of a batch carries one send time: the time the sender began
// handing the batch to the kernel, read once, just before its headers are written
// and it goes to Send in one call (one sendmmsg, or one GSO super-packet, or one
// writev). Messages of a batch leave together; a time per message would only date
// the writing of its header. So transit times (jitter, one-way latency) run from
// that hand-over and include the wait behind earlier messages of the same batch.
func (tx *streamTx) fill(kind wire.Kind, k int, sendNs int64) {
	if tx.hdrKind != kind {
		tx.hdr = wire.NewHeaderStamper(wire.Header{Kind: kind, Run: tx.e.run, Flow: tx.flow, Len: uint32(tx.size), PayloadCRC: tx.pcrc})
		for _, b := range tx.bufs {
			tx.hdr.PutShared(b)
		}
		tx.hdrKind = kind
	}
	tx.hdr.Stamp(tx.bufs[:k], tx.seq, sendNs)
	copy(tx.out, tx.bufs[:k])
}

// streamRx receives every flow of one stream cell. Each accepted endpoint is read by
// its own goroutine (serve) with its own flow table; tables merge when serve returns.
type streamRx struct {
	e *runEnv
	p report.Params

	lastArrival atomic.Int64 // ns since epoch of the latest read that returned messages

	// End of stream, by flow, as the senders report it beside the data path
	// (endFlows): how many messages each flow sent, −1 until known. A flow is
	// complete once it is known and that many unique messages arrived.
	sentOf   []atomic.Int64
	uniqueOf []atomic.Uint64 // unique intact data messages received so far, by flow
	doneOf   []atomic.Bool   // the flow is complete: counted once in complete
	ended    atomic.Int64    // flows whose count is known
	endedAt  atomic.Int64    // e.now() when the last flow's count became known; 0 = not yet
	unknown  atomic.Bool     // some flow ended with its count unknown (endUnknown)
	complete atomic.Int64    // flows with every sent message received
	doneOnce sync.Once
	done     chan struct{} // closed when every flow is complete

	// When the drain may end before every flow is complete (waitDrained).
	reliable bool                  // TCP: every message arrives in the end, so only completeness or the drain ends the wait
	quietFor time.Duration         // datagrams: nothing arrived for this long since the end was known (at least)
	dataSeen atomic.Bool           // a data message arrived: arrival gaps count from here
	maxGap   atomic.Int64          // the longest wait between two reads that returned messages, once data flowed, ns
	idle     func() bool           // datagrams: the path holds nothing in flight (the lab's link is empty); nil = no such check
	tsMu     sync.Mutex            // guards ts and gaps
	ts       []transport.Transport // the endpoints served, whose receive queues must be empty
	gaps     []*groGaps            // the endpoints served with UDP GRO: their holes, for socket drops in datagrams (grodrops.go)

	readerBps float64 // read no faster than this, bits/s; 0 = unpaced

	onFirstData func()    // when set, called once, as the first data message is accounted
	firstData   sync.Once // guards onFirstData

	mu     sync.Mutex // guards tot and oneWay
	tot    rxTotals
	series sampleLog        // the time line, when sampled
	oneWay *metrics.Latency // nil = not recorded; each serve records into its own and merges here
}

type rxTotals struct {
	received, unique, dups, reordered, extent, stale uint64
	wire.Rejects
	firstSendNs, lastRecvNs int64
	firstRecvNs             int64 // the first data message's arrival, on the receiver's clock; -1 = none
	jitterSum               float64
	jitterFlows             int
	kernelStamped           uint64           // data messages whose jitter arrival time is a kernel stamp
	oneWay                  *metrics.Latency // a serve's own, when streamRx.oneWay is set
	unpublished             []uint32         // flows whose unpublished count is nonzero (publish)
}

type flowRx struct {
	seq         metrics.SeqTracker
	jit         metrics.Jitter
	firstSend   int64
	firstRecv   int64
	lastRecv    int64
	unpublished uint64 // unique data messages accounted here and not yet added to uniqueOf
}

func (rx *streamRx) serve(ctx context.Context, t transport.Transport) error {
	batch := max(1, min(rx.e.batch, (1<<20)/rx.p.Size))
	var paceStart time.Time
	var paceBytes float64
	if rx.readerBps > 0 {
		batch = max(1, min(batch, int(rx.readerBps/8/1000)/rx.p.Size)) // about 1 ms of reading
	}
	// With UDP GRO a receive returns views into the socket's own buffers, packet by
	// packet: up to a batch of packets, each up to groViews datagrams.
	vr, gro := groReceiver(t)
	var views [][]byte
	var pkts []udp.Packet
	var gaps *groGaps
	var bufs [][]byte
	var sizes []int
	if gro {
		nv := batch * groViews
		if rx.readerBps > 0 {
			nv = batch // a slow reader reads about 1 ms at a time
		}
		views, pkts = make([][]byte, nv), make([]udp.Packet, nv)
		gaps = newGroGaps(t, rx.e.run, rx.p.Streams)
		batch = nv
	} else {
		bufs = makeBufs(batch, rx.p.Size)
		sizes = make([]int, batch)
	}
	arr := newArrivals(t, batch) // kernel receive stamps, when the transport has them
	flows := make([]*flowRx, rx.p.Streams)
	var local rxTotals
	local.Memo = &wire.PayloadMemo{} // a flow's payloads repeat: verified by comparison once one passed its CRC
	if rx.oneWay != nil {
		local.oneWay = metrics.NewLatency()
	}
	defer func() { rx.publish(&local, flows); rx.merge(&local, flows) }()
	rx.tsMu.Lock()
	rx.ts = append(rx.ts, t)
	if gaps != nil {
		rx.gaps = append(rx.gaps, gaps)
	}
	rx.tsMu.Unlock()
	for ctx.Err() == nil {
		if err := t.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return err
		}
		var n, np int
		var err error
		if gro {
			n, np, err = vr.RecvViews(views, pkts)
		} else {
			n, err = t.Recv(bufs, sizes)
		}
		if n > 0 {
			tm := time.Now()
			now := int64(tm.Sub(rx.e.epoch)) // rx.e.now(), with the wall clock beside it for arr
			if prev := rx.lastArrival.Swap(now); prev > 0 && rx.dataSeen.Load() {
				storeMax(&rx.maxGap, now-prev)
			}
			arr.read(n, tm, now)
			if gro {
				for i, v := range views[:n] {
					at, kernel := arr.at(i, now)
					rx.account(&local, flows, v, now, at, kernel)
					paceBytes += float64(len(v))
				}
				gaps.packets(views[:n], pkts[:np])
			} else {
				for i := 0; i < n; i++ {
					at, kernel := arr.at(i, now)
					rx.account(&local, flows, bufs[i][:sizes[i]], now, at, kernel)
					paceBytes += float64(sizes[i])
				}
			}
			rx.publish(&local, flows)
			if rx.readerBps > 0 {
				// A slow application: read no faster than readerBps since the first read.
				if paceStart.IsZero() {
					paceStart = time.Now()
				}
				due := paceStart.Add(time.Duration(paceBytes * 8 / rx.readerBps * float64(time.Second)))
				if wait := time.Until(due); wait > 0 {
					time.Sleep(min(wait, pollInterval))
				}
			}
		}
		if err != nil {
			switch {
			case transport.IsTimeout(err):
			case isClosed(err):
				return nil
			case transport.IsOversize(err):
				local.Malformed++ // a datagram too large for its buffer: counted, skipped
			case transport.IsStreamBroken(err):
				local.Malformed++ // a frame too large: the stream cannot be resynchronised
				return err
			default:
				return err
			}
		}
	}
	return nil
}

// groViews is how many datagrams a GRO receive takes per packet of its batch: a
// super-packet from a GSO sender holds up to 128 (UDP_MAX_SEGMENTS since Linux 6.9,
// and what udp.Conn sends there); a larger one is returned over two receives.
const groViews = 128

// account counts one received message. now is when the Recv that returned it came
// back (delivery to the application: the goodput interval and one-way latency);
// arrival is when it reached the host, the kernel's stamp when kernel is true, else
// now (the jitter's receive time). Its unique count reaches uniqueOf at the next
// publish.
func (rx *streamRx) account(local *rxTotals, flows []*flowRx, msg []byte, now, arrival int64, kernel bool) {
	h, ok := local.Accept(msg, rx.e.run, rx.e.verify)
	if !ok {
		return
	}
	if int(h.Flow) >= len(flows) {
		local.Foreign++
		return
	}
	f := flows[h.Flow]
	if f == nil {
		f = &flowRx{firstSend: -1, firstRecv: -1}
		flows[h.Flow] = f
	}
	switch h.Kind {
	case wire.KindData:
		if f.firstRecv < 0 {
			rx.dataSeen.Store(true)
			f.firstRecv = now
			if rx.onFirstData != nil {
				rx.firstData.Do(rx.onFirstData)
			}
		}
		if a := f.seq.Add(h.Seq); a == metrics.ArrivalNew || a == metrics.ArrivalReordered {
			if local.oneWay != nil {
				local.oneWay.Record(now - h.SendNs) // one process, one monotonic clock: both ends read e.epoch
			}
			if f.unpublished == 0 {
				local.unpublished = append(local.unpublished, h.Flow)
			}
			f.unpublished++ // publish adds it to uniqueOf after the Recv's last message
		}
		if f.firstSend < 0 || h.SendNs < f.firstSend {
			f.firstSend = h.SendNs
		}
		f.lastRecv = now
		f.jit.Add(h.SendNs, arrival)
		if kernel {
			local.kernelStamped++
		}
	case wire.KindWarmup:
	default:
		local.Malformed++ // a stream carries data and warm-up, nothing else
	}
}

// publish adds the unique messages account counted since the last publish to
// uniqueOf, and counts the flows that are now complete: once per Recv, where
// account would need an atomic add per message. serve calls it after accounting
// each Recv's messages, so a flow is seen complete as soon as the Recv that
// completes it is accounted.
func (rx *streamRx) publish(local *rxTotals, flows []*flowRx) {
	for _, i := range local.unpublished {
		f := flows[i]
		// After the count, then the sender's figure: endFlows stores first and
		// counts after, so one of the two sees the flow complete.
		u := rx.uniqueOf[i].Add(f.unpublished)
		f.unpublished = 0
		if sent := rx.sentOf[i].Load(); sent >= 0 && u >= uint64(sent) {
			rx.flowDone(int(i))
		}
	}
	local.unpublished = local.unpublished[:0]
}

// endFlows tells the receiver how many messages each flow sent, by flow: the end of
// stream, which reaches it beside the data path (a call in this process, the
// control connection across hosts), so no data socket ever drops it and every drop
// the socket counts is data. A flow told twice keeps its first count.
func (rx *streamRx) endFlows(sent []uint64) {
	for i, n := range sent[:min(len(sent), len(rx.sentOf))] {
		if !rx.sentOf[i].CompareAndSwap(-1, int64(min(n, math.MaxInt64))) {
			continue
		}
		rx.flowEnded()
		if rx.uniqueOf[i].Load() >= n {
			rx.flowDone(i)
		}
	}
}

// endUnknown ends every flow whose count is still unknown, with none: the senders
// are done but did not say how many they sent (a far end that reports no counts).
// Those flows never complete; the drain ends on a quiet spell.
func (rx *streamRx) endUnknown() {
	for i := range rx.sentOf {
		if rx.sentOf[i].CompareAndSwap(-1, math.MaxInt64) {
			rx.unknown.Store(true)
			rx.flowEnded()
		}
	}
}

// quiet is the quiet spell that settles a datagram receiver: quietFor, or four times
// the longest gap between arrivals once data flowed (at most a second), whichever is
// longer. A host too busy to deliver promptly (softirq work deferred, the reader
// descheduled) shows it in those gaps, and the last datagrams may still be on their
// way for as long.
func (rx *streamRx) quiet() time.Duration {
	return max(rx.quietFor, min(4*time.Duration(rx.maxGap.Load()), time.Second))
}

// deliveredNow is how many unique intact data messages have arrived so far, over
// every flow: the series' delivered count.
func (rx *streamRx) deliveredNow() uint64 {
	var n uint64
	for i := range rx.uniqueOf {
		n += rx.uniqueOf[i].Load()
	}
	return n
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old; old = a.Load() {
		if a.CompareAndSwap(old, v) {
			return
		}
	}
}

// flowEnded counts one more flow whose end is known, and when that is the last, when.
func (rx *streamRx) flowEnded() {
	if rx.ended.Add(1) == int64(rx.p.Streams) {
		rx.endedAt.Store(max(1, rx.e.now()))
	}
}

// settled says a datagram receiver has everything it will get, though some flow is
// not complete: every flow's end is known, the path holds nothing in flight (the
// lab's link is empty, every endpoint's receive queue is read), and nothing arrived
// for quietFor since. A TCP receiver is never settled short of complete, unless some
// flow's count is unknown (nothing better tells it the stream ended).
func (rx *streamRx) settled() bool {
	endedAt := rx.endedAt.Load()
	if endedAt == 0 || rx.reliable && !rx.unknown.Load() {
		return false
	}
	if rx.e.now()-max(endedAt, rx.lastArrival.Load()) < int64(rx.quiet()) {
		return false
	}
	if rx.idle != nil && !rx.idle() {
		return false
	}
	rx.tsMu.Lock()
	defer rx.tsMu.Unlock()
	for _, t := range rx.ts {
		if q, ok := t.(transport.RecvQueuer); ok {
			if n, err := q.RecvQueued(); err == nil && n > 0 {
				return false
			}
		}
	}
	return true
}

// flowDone counts flow i complete, once.
func (rx *streamRx) flowDone(i int) {
	if !rx.doneOf[i].CompareAndSwap(false, true) {
		return
	}
	if rx.complete.Add(1) == int64(rx.p.Streams) {
		rx.doneOnce.Do(func() { close(rx.done) })
	}
}

func (rx *streamRx) allEnded() bool { return rx.ended.Load() >= int64(rx.p.Streams) }

// waitQuiet waits until no message has arrived for quiet, for at most limit.
func (rx *streamRx) waitQuiet(ctx context.Context, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if rx.e.now()-rx.lastArrival.Load() >= int64(quiet) {
			return
		}
		time.Sleep(quiet / 4)
	}
}

// waitDrained waits until every flow is complete; or, for datagrams, until the
// receiver settled (every flow's end known, nothing in flight or queued, a quiet
// spell); or until drain has passed.
func (rx *streamRx) waitDrained(ctx context.Context, drain time.Duration) {
	deadline := time.NewTimer(drain)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-rx.done:
			return
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
			if rx.settled() {
				return
			}
		}
	}
}

func (rx *streamRx) merge(local *rxTotals, flows []*flowRx) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	t := &rx.tot
	t.Corrupt += local.Corrupt
	t.Malformed += local.Malformed
	t.Foreign += local.Foreign
	t.kernelStamped += local.kernelStamped
	if local.oneWay != nil {
		rx.oneWay.Merge(local.oneWay)
	}
	for _, f := range flows {
		if f == nil {
			continue
		}
		c := f.seq.Counts()
		t.received += c.Received
		t.unique += c.Unique
		t.dups += c.Duplicates
		t.reordered += c.Reordered
		t.extent = max(t.extent, c.MaxReorderExtent)
		t.stale += c.Stale
		if c.Unique > 0 {
			if t.firstSendNs < 0 || f.firstSend < t.firstSendNs {
				t.firstSendNs = f.firstSend
			}
			if t.firstRecvNs < 0 || (f.firstRecv >= 0 && f.firstRecv < t.firstRecvNs) {
				t.firstRecvNs = f.firstRecv
			}
			t.lastRecvNs = max(t.lastRecvNs, f.lastRecv)
		}
		if f.jit.Samples() > 0 {
			t.jitterSum += f.jit.Value()
			t.jitterFlows++
		}
	}
}

func (rx *streamRx) totals() rxTotals {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return rx.tot
}

// streamSummary is a stream cell's line: goodput, and what was sent and lost.
func streamSummary(r *report.Result) string {
	m := r.Metrics
	lost := 0.0
	if m.SentMsgs > 0 {
		lost = 100 * float64(m.LostMsgs) / float64(m.SentMsgs)
	}
	return fmt.Sprintf("goodput %s (receiver), sent %d, lost %d (%.2f%%)", units.Bps(m.GoodputBps), m.SentMsgs, m.LostMsgs, lost)
}

// jitterClockWarnings flags the stream results (rs, stream's) whose jitter used arrival times read
// in user space, for all or some messages (PITFALLS 8): kernel receive timestamps are
// used wherever the transport has them (UDP on Linux); a byte stream (TCP) has none.
func jitterClockWarnings(rs []report.Result) []string {
	var user []string
	streamUser := false // a transport with no datagrams (TCP) has no per-message arrival to stamp
	for _, r := range rs {
		m := r.Metrics
		if r.Error != "" || m.JitterNs == nil {
			continue
		}
		var k uint64
		if m.JitterKernelMsgs != nil {
			k = *m.JitterKernelMsgs
		}
		if k >= m.RecvMsgs {
			continue
		}
		what := r.Transport
		if k > 0 {
			what += fmt.Sprintf(" (size %d: %d of %d messages)", r.Params.Size, m.RecvMsgs-k, m.RecvMsgs)
		}
		if !slices.Contains(user, what) {
			user = append(user, what)
		}
		streamUser = streamUser || !transport.CapsOf(r.Transport).Datagrams
	}
	if len(user) == 0 {
		return nil
	}
	w := "jitter of stream over " + strings.Join(user, ", ") + ": arrival times are read in user space after each receive call, " +
		"not taken from kernel timestamps (SO_TIMESTAMPNS), so jitter includes the receiver's scheduling delay"
	if streamUser {
		w += " (TCP cannot do better: a byte stream has no per-message arrival)"
	}
	return []string{w}
}

// accountingWarnings says when a stream cell's counts break the identity every
// measured stream keeps: sent = received - duplicates + lost.
func accountingWarnings(r report.Result) []string {
	m := r.Metrics
	if r.Error == "" && m.RecvMsgs >= m.DupMsgs && m.SentMsgs != m.RecvMsgs-m.DupMsgs+m.LostMsgs {
		return []string{fmt.Sprintf("accounting does not add up: sent %d != received %d - duplicates %d + lost %d", m.SentMsgs, m.RecvMsgs, m.DupMsgs, m.LostMsgs)}
	}
	return nil
}
