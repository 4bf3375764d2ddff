package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpFanout,
		section: report.Section{Title: "One sender, many receivers (fanout)", Layout: report.LayoutTable, Params: []string{report.ParamReceivers}},
		help:    "one sender, --receivers receivers: one UDP multicast send reaches all; TCP needs a connection and a copy per receiver",
		place:   60, run: runFanout, properties: []report.Rule{report.RuleFanout}, notRemote: "fanout does not run against a remote server: its one-to-many half is a multicast group, which the server's data paths (validated, one peer each) do not carry; run it on one host, or on a network whose multicast you control"})
}

const (
	// fanoutCount is how many messages one fanout cell sends when Params.Count is 0.
	fanoutCount = 2000
	// fanoutRate is the pace of the messages when Params.RateBps is 0, in payload
	// bits/s before copies: gentle enough that no receiver overflows. Loss is not
	// what fanout shows; it is counted all the same.
	fanoutRate = 20e6
	// fanoutQuiet ends a one-to-many drain early: after the last send, this long
	// without an arrival at any receiver means nothing more is coming. A one-to-one
	// fanout's connections deliver everything, however late a busy host runs them,
	// so they wait for every delivery (or the drain period).
	fanoutQuiet = 100 * time.Millisecond
	// fanoutAccept bounds each Accept of the one-to-one setup.
	fanoutAccept = 2 * time.Second
)

// runFanout sends one stream of messages to p.Receivers receivers, and counts what
// it takes. Over a Multicaster, the receivers join one group and the sender sends
// each message once, from one socket: the network copies it. Over any other Network,
// the sender needs one endpoint per receiver (N connections through one listener) and
// sends each message N times, once per endpoint.
//
// The cell sends a fixed count of p.Size-byte messages (p.Count, else 2000), paced to
// p.RateBps (else 20 Mbit/s) before copies, with no warm-up: its figures are counts
// and costs, not rates. Every receiver accounts every message by sequence number.
// Metrics: sent_msgs and sent_bytes are what the sender handed to its transport
// (copies included); recv_msgs, dup_msgs and lost_msgs sum over receivers (lost =
// Σ count − unique); recv_bytes, goodput and cpu_s_per_gb count delivered bytes;
// drops_sender counts refused sends, drops_socket the receivers' socket drops in
// deliveries. CPU is the whole process: both ends run here. Without multicast on the
// host (errors.ErrUnsupported), the cell has no figures: a warning and
// observed "multicast" say why.
func runFanout(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	n := p.Receivers
	if n <= 0 {
		n = 8
	}
	count := p.Count
	if count == 0 {
		count = fanoutCount
	}
	rate := p.RateBps
	if rate <= 0 {
		rate = fanoutRate
	}
	perSec := rate / float64(p.Size*8) // messages per second
	sendTime := time.Duration(float64(count) / perSec * float64(time.Second))
	ctx, cancel := context.WithTimeout(ctx, sendTime+e.drain+30*time.Second)
	defer cancel()

	f := &fanout{e: e, size: p.Size, count: count, perSec: perSec, obs: map[string]any{report.ObsReceivers.Key(): n, report.ObsRateBps.Key(): rate}}
	defer f.closeAll()
	if mc, ok := nw.(transport.Multicaster); ok {
		err := f.openGroup(ctx, mc, n)
		if errors.Is(err, errors.ErrUnsupported) {
			f.closeAll()
			report.Set(f.obs, report.ObsMulticast, "unavailable: "+err.Error())
			return outcome{warns: []string{fmt.Sprintf("%s: no one-to-many delivery on this host, nothing measured: %v", nw.Name(), err)},
				observed: f.obs}, nil
		}
		if err != nil {
			return outcome{}, err
		}
		report.Set(f.obs, report.ObsMulticast, "available")
	} else if err := f.openPairs(ctx, nw, n); err != nil {
		return outcome{}, err
	}
	// Whatever blocks below ends by the cell's time limit: closing the endpoints
	// unblocks a sender stuck on a receiver that died.
	stopWatch := ctxwatch.OnDone(ctx, f.closeAll)
	defer stopWatch()
	return f.run(ctx)
}

// fanout is one fanout cell: its endpoints, counters and observations.
type fanout struct {
	e      *runEnv
	size   int
	count  uint64
	perSec float64 // messages per second, by the timetable
	obs    map[string]any

	mode      string                // "one-to-many" or "one-to-one"
	senders   []transport.Transport // one per copy of each message
	receivers []*fanRx
	listener  transport.Listener // one-to-one only; closed once every receiver is accepted
	closed    atomic.Bool

	// Sender figures, written by run's goroutine only.
	sendCalls, refused uint64
	firstNs, lastNs    int64

	lastArrival atomic.Int64 // ns since epoch of the latest arrival at any receiver
	complete    atomic.Int64 // receivers with every message
}

// fanRx is one receiver. Its fields belong to its receive goroutine until run has
// waited for it.
type fanRx struct {
	t   transport.Transport
	seq metrics.SeqTracker
	wire.Rejects
	firstSendNs, lastRecvNs int64
	done                    bool // every message arrived
}

// openGroup opens n receivers joined to one new group and one sender to it.
func (f *fanout) openGroup(ctx context.Context, mc transport.Multicaster, n int) error {
	f.mode = "one-to-many"
	rx, group, err := mc.ListenGroup(ctx, "")
	if err != nil {
		return fmt.Errorf("receiver 0: %w", err)
	}
	f.receivers = append(f.receivers, &fanRx{t: rx, firstSendNs: -1})
	for i := 1; i < n; i++ {
		rx, _, err := mc.ListenGroup(ctx, group)
		if err != nil {
			return fmt.Errorf("receiver %d: join %s: %w", i, group, err)
		}
		f.receivers = append(f.receivers, &fanRx{t: rx, firstSendNs: -1})
	}
	tx, err := mc.DialGroup(ctx, group)
	if err != nil {
		return fmt.Errorf("sender to %s: %w", group, err)
	}
	f.senders = []transport.Transport{tx}
	report.Set(f.obs, report.ObsGroup, group)
	report.Set(f.obs, report.ObsListeningSockets, 0)
	return nil
}

// openPairs opens one listener and n endpoint pairs through it: the sender dials n
// times, and each accepted endpoint is a receiver.
func (f *fanout) openPairs(ctx context.Context, nw transport.Network, n int) error {
	f.mode = "one-to-one"
	l, err := nw.Listen(ctx, f.e.address)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", nw.Name(), f.e.address, err)
	}
	f.listener = l
	seen := make(map[transport.Transport]bool)
	for i := range n {
		tx, err := nw.Dial(ctx, l.Addr().String())
		if err != nil {
			return fmt.Errorf("sender endpoint %d: dial %v: %w", i, l.Addr(), err)
		}
		f.senders = append(f.senders, tx)
		actx, cancel := context.WithTimeout(ctx, fanoutAccept)
		rx, err := l.Accept(actx)
		cancel()
		if err != nil {
			return fmt.Errorf("receiver %d: accept on %v: %w", i, l.Addr(), err)
		}
		if seen[rx] {
			return fmt.Errorf("receiver %d: accept on %v returned an endpoint it had returned before", i, l.Addr())
		}
		seen[rx] = true
		f.receivers = append(f.receivers, &fanRx{t: rx, firstSendNs: -1})
	}
	// Accepted connections outlive their listener; the cell no longer needs it.
	if err := l.Close(); err != nil && !isClosed(err) {
		return fmt.Errorf("close listener %v: %w", l.Addr(), err)
	}
	report.Set(f.obs, report.ObsListeningSockets, 1)
	return nil
}

// closeAll closes every endpoint; later calls do nothing.
func (f *fanout) closeAll() {
	if !f.closed.CompareAndSwap(false, true) {
		return
	}
	if f.listener != nil {
		f.listener.Close()
	}
	for _, t := range f.senders {
		t.Close()
	}
	for _, r := range f.receivers {
		r.t.Close()
	}
}

// run sends the messages, drains the receivers and computes the figures.
func (f *fanout) run(ctx context.Context) (outcome, error) {
	n := len(f.receivers)
	rctx, stopRx := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(rctx)
	for i, r := range f.receivers {
		g.Go(func() error {
			if err := f.receive(gctx, r); err != nil {
				return fmt.Errorf("receiver %d: %w", i, err)
			}
			return nil
		})
	}

	u0, uerr := metrics.ReadUsage()
	retr0, _ := retransmits(f.senders)
	drops0, _ := recvDrops(f.transports())
	sendErr := f.send(gctx)
	drainStart := time.Now()
	if sendErr == nil {
		f.waitDrained(gctx, n)
	}
	drain := time.Since(drainStart)
	u1, _ := metrics.ReadUsage()
	retr1, retrOK := retransmits(f.senders)
	drops1, dropsOK := recvDrops(f.transports())
	stopRx()
	rxErr := g.Wait()
	if err := errors.Join(sendErr, rxErr); err != nil {
		if ctx.Err() != nil {
			return outcome{}, fmt.Errorf("%w (cell time limit)", err)
		}
		return outcome{}, err
	}

	var warns []string
	var m report.Metrics
	copies := uint64(len(f.senders))
	m.SentMsgs = f.count * copies
	m.SentBytes = m.SentMsgs * uint64(f.size)
	m.DropsSender = f.refused
	if f.lastNs > f.firstNs {
		m.SendIntervalS = seconds(f.lastNs - f.firstNs)
		m.SendRateBps = float64(m.SentBytes) * 8 / m.SendIntervalS
		m.SendMsgsPerS = float64(m.SentMsgs) / m.SendIntervalS
	}
	var unique, minU, maxU uint64
	var firstSend, lastRecv int64 = -1, 0
	for i, r := range f.receivers {
		c := r.seq.Counts()
		m.RecvMsgs += c.Received
		m.DupMsgs += c.Duplicates
		m.ReorderedMsgs += c.Reordered
		m.ReorderExtent = max(m.ReorderExtent, c.MaxReorderExtent)
		m.CorruptMsgs += r.Corrupt
		m.MalformedMsgs += r.Malformed
		m.ForeignMsgs += r.Foreign
		m.LostMsgs += f.count - min(c.Unique, f.count)
		unique += c.Unique
		if i == 0 || c.Unique < minU {
			minU = c.Unique
		}
		maxU = max(maxU, c.Unique)
		if c.Unique > f.count {
			warns = append(warns, fmt.Sprintf("receiver %d: %d unique messages but %d were sent: accounting error", i, c.Unique, f.count))
		}
		if c.Stale > 0 {
			warns = append(warns, fmt.Sprintf("receiver %d: %d messages too late to tell new from duplicate", i, c.Stale))
		}
		if c.Unique > 0 {
			if firstSend < 0 || r.firstSendNs < firstSend {
				firstSend = r.firstSendNs
			}
			lastRecv = max(lastRecv, r.lastRecvNs)
		}
	}
	m.RecvBytes = unique * uint64(f.size)
	if firstSend >= 0 && lastRecv > firstSend {
		m.RecvIntervalS = seconds(lastRecv - firstSend)
		m.GoodputBps = float64(m.RecvBytes) * 8 / m.RecvIntervalS
		m.MsgsPerS = float64(unique) / m.RecvIntervalS
	}
	m.DrainS = drain.Seconds()
	if retrOK {
		m.Retransmits = u64p(retr1 - retr0)
	}
	if dropsOK {
		// One refused send loses a delivery at every receiver it would have reached.
		sock := drops1 - drops0
		m.DropsSocket = u64p(sock)
		senderLost := f.refused * (uint64(n) / copies)
		var netw uint64
		if m.LostMsgs > sock+senderLost {
			netw = m.LostMsgs - sock - senderLost
		}
		m.DropsNetwork = u64p(netw)
	}
	var cpu time.Duration
	if uerr == nil {
		d := u1.Sub(u0)
		cpu = d.CPU()
		metrics.SetUsage(&m, d, m.RecvBytes)
	}
	m.ServerSockets = n
	if m.LostMsgs > 0 {
		warns = append(warns, fmt.Sprintf("%d of %d deliveries never arrived (%d messages × %d receivers)", m.LostMsgs, f.count*uint64(n), f.count, n))
	}

	o := f.obs
	report.Set(o, report.ObsMode, f.mode)
	report.Set(o, report.ObsSenderSockets, len(f.senders))
	report.Set(o, report.ObsReceiverSockets, n)
	report.Set(o, report.ObsCopiesPerMessage, copies)
	report.Set(o, report.ObsSendCalls, f.sendCalls)
	report.Set(o, report.ObsDeliveries, unique)
	report.Set(o, report.ObsDeliveredMin, minU)
	report.Set(o, report.ObsDeliveredMax, maxU)
	if unique > 0 {
		report.Set(o, report.ObsSenderBytesPerDeliveredByte, float64(m.SentBytes)/float64(m.RecvBytes))
		if uerr == nil {
			report.Set(o, report.ObsCPUNsPerDelivery, float64(cpu.Nanoseconds())/float64(unique))
		}
	}
	return outcome{m: m, warns: warns, observed: o}, nil
}

// transports returns the receivers' endpoints.
func (f *fanout) transports() []transport.Transport {
	ts := make([]transport.Transport, len(f.receivers))
	for i, r := range f.receivers {
		ts[i] = r.t
	}
	return ts
}

// send sends f.count messages on a timetable, each to every sender endpoint: once over
// a group, once per receiver otherwise.
func (f *fanout) send(ctx context.Context) error {
	batch := max(1, min(f.e.batch, (1<<20)/f.size))
	bufs := makeBufs(batch, f.size)
	out := make([][]byte, batch)
	for _, b := range bufs {
		wire.FillPayload(b[wire.HeaderLen:], f.e.seed, 0)
	}
	pcrc := wire.PayloadCRC(bufs[0][wire.HeaderLen:])
	tt := newTimetable(f.e.now(), f.perSec)
	f.firstNs = tt.start
	var seq uint64
	for seq < f.count {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sent %d of %d messages: %w", seq, f.count, err)
		}
		due := min(f.count, tt.due(f.e.now()))
		if due <= seq {
			time.Sleep(time.Duration(tt.at(seq) - f.e.now()))
			continue
		}
		k := int(min(uint64(batch), due-seq))
		now := f.e.now()
		for i := range k {
			wire.PutHeader(bufs[i], wire.Header{Kind: wire.KindData, Run: f.e.run, Len: uint32(f.size), Seq: seq + uint64(i), SendNs: now, PayloadCRC: pcrc})
			out[i] = bufs[i]
		}
		for c, t := range f.senders {
			if err := f.sendAll(t, out[:k]); err != nil {
				return fmt.Errorf("copy %d of messages %d..%d: %w", c, seq, seq+uint64(k)-1, err)
			}
		}
		seq += uint64(k)
		f.lastNs = f.e.now()
	}
	return nil
}

// sendAll hands msgs to t, going on past messages the kernel refuses (counted in
// f.refused: they are sent, and lost).
func (f *fanout) sendAll(t transport.Transport, msgs [][]byte) error {
	for len(msgs) > 0 {
		f.sendCalls++
		n, err := t.Send(msgs)
		if err != nil {
			if !isDatagramRefusal(err) {
				return err
			}
			f.refused++
			n++
		}
		msgs = msgs[min(n, len(msgs)):]
	}
	return nil
}

// receive reads r's endpoint until ctx is done or the endpoint is closed, and
// accounts every message.
func (f *fanout) receive(ctx context.Context, r *fanRx) error {
	batch := max(1, min(f.e.batch, (1<<20)/f.size))
	bufs := makeBufs(batch, f.size)
	sizes := make([]int, batch)
	for ctx.Err() == nil {
		if err := r.t.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			if isClosed(err) {
				return nil
			}
			return err
		}
		n, err := r.t.Recv(bufs, sizes)
		if n > 0 {
			now := f.e.now()
			f.lastArrival.Store(now)
			for i := range n {
				f.account(r, bufs[i][:sizes[i]], now)
			}
		}
		if err != nil {
			switch {
			case transport.IsTimeout(err):
			case isClosed(err):
				return nil
			case transport.IsOversize(err):
				r.Malformed++ // too large for its buffer: not one of ours
			default:
				return err
			}
		}
	}
	return nil
}

func (f *fanout) account(r *fanRx, msg []byte, now int64) {
	h, ok := r.Accept(msg, f.e.run, f.e.verify)
	if !ok {
		return
	}
	if h.Flow != 0 || h.Kind != wire.KindData {
		r.Foreign++
		return
	}
	r.seq.Add(h.Seq)
	if r.firstSendNs < 0 || h.SendNs < r.firstSendNs {
		r.firstSendNs = h.SendNs
	}
	r.lastRecvNs = now
	if !r.done && r.seq.Counts().Unique >= f.count {
		r.done = true
		f.complete.Add(1)
	}
}

// waitDrained waits until every receiver has every message, or (one-to-many) nothing
// has arrived anywhere for fanoutQuiet, or the drain period has passed.
func (f *fanout) waitDrained(ctx context.Context, n int) {
	deadline := time.Now().Add(f.e.drain)
	quietEnds := f.mode == "one-to-many"
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if f.complete.Load() >= int64(n) {
			return
		}
		if quietEnds && f.e.now()-max(f.lastArrival.Load(), f.lastNs) >= int64(fanoutQuiet) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
