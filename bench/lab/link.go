package lab

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// A Classifier tells the engine which packets carry one application message each
// (for tcpvsudp: a UDP datagram whose payload is a tcpvsudp data message) and its flow.
// It gets the transport payload (after the UDP header); nil means count none. It is
// called from Input's goroutine only and must not keep udpPayload.
type Classifier func(udpPayload []byte) (flow uint32, data bool)

// Counts is what one direction of a Link did, from NewLink on. Every packet taken in
// is Queued until it ends in exactly one of TooBig, Dropped, QueueDropped, Corrupted,
// Flushed, OutErrors or Passed, except that a duplicated packet is passed (or fails
// in out) twice. So every snapshot balances:
//
//	Packets = Queued + TooBig + Dropped + QueueDropped + Corrupted + Flushed + OutErrors + Passed - Duplicated
//
// The same identity holds for Data and for each ByFlow entry. Reordered and Delayed
// say how passed packets went, not what became of them.
//
// The random fates are exclusive, so the counts compare exactly with what a receiver
// measures: a corrupted packet reaches the receiving kernel, whose UDP or TCP checksum
// drops it. For UDP data, what the receiver counts as lost is Data.TooBig +
// Data.Dropped + Data.QueueDropped + Data.Corrupted + Data.Flushed + Data.OutErrors
// (the last three are 0 in a run that drains and whose out never fails); duplicates
// are Data.Duplicated; reordered (RFC 4737) are Data.Reordered, under the conditions
// Impair.Reorder's semantics in NewLink name.
type Counts struct {
	Packets      uint64                `json:"packets"`           // taken in
	Bytes        uint64                `json:"bytes"`             // taken in, IP packet bytes
	Queued       uint64                `json:"queued"`            // a gauge: taken in, not yet released (in Run's queue)
	Passed       uint64                `json:"passed"`            // handed to out intact and accepted (a duplicated packet counts twice)
	TooBig       uint64                `json:"too_big"`           // longer than the MTU: dropped
	Dropped      uint64                `json:"dropped"`           // random loss (Loss, Burst)
	QueueDropped uint64                `json:"queue_dropped"`     // tail-dropped at the rate limiter's full queue
	Corrupted    uint64                `json:"corrupted"`         // handed to out with one bit flipped
	Duplicated   uint64                `json:"duplicated"`        // handed to out twice
	Reordered    uint64                `json:"reordered"`         // held back and overtaken by a later packet of its flow
	Delayed      uint64                `json:"delayed"`           // released later than taken in (delay, jitter, rate or hold)
	Flushed      uint64                `json:"flushed"`           // still queued when Run ended
	OutErrors    uint64                `json:"out_errors"`        // out returned an error: the packet (or copy) is lost
	Data         DataCounts            `json:"data"`              // the same, for packets the Classifier marked as data
	ByFlow       map[uint32]DataCounts `json:"by_flow,omitempty"` // Data per Classifier flow id
}

// DataCounts is Counts for the packets a Classifier marked as data. The fields mean
// what Counts' fields of the same names mean.
type DataCounts struct {
	Packets      uint64 `json:"packets"`
	Queued       uint64 `json:"queued"`
	Passed       uint64 `json:"passed"`
	TooBig       uint64 `json:"too_big"`
	Dropped      uint64 `json:"dropped"`
	QueueDropped uint64 `json:"queue_dropped"`
	Corrupted    uint64 `json:"corrupted"`
	Duplicated   uint64 `json:"duplicated"`
	Reordered    uint64 `json:"reordered"`
	Flushed      uint64 `json:"flushed"`
	OutErrors    uint64 `json:"out_errors"`
}

// A Link is one direction of the emulated link: it takes IP packets in (Input),
// impairs them as its Impair says and hands them to out, at once or from Run at their
// release times. Input may run in one goroutine while Run and Counts run in others.
type Link struct {
	// Set by NewLink, then only read.
	classify   Classifier
	out        func(pkt []byte) error
	epoch      time.Time // times are kept as nanoseconds since epoch
	mtu        int
	queued     bool    // every packet goes through the queue: Delay, Jitter or RateBps set
	random     bool    // a fate needs a draw: Loss, Corrupt, Duplicate or Reorder set
	mixed      bool    // Reorder without queued: Input (direct) and Run (held packets) both call out
	parse      bool    // packets need parsing: a classifier, Corrupt or Reorder
	loss       float64 // Impair's probabilities, clamped to 0..1
	corruptP   float64
	dupP       float64
	reorderP   float64
	ge         bool    // Gilbert–Elliott losses
	geP, geR   float64 // Good→Bad and Bad→Good transition probabilities
	delay      int64   // ns
	jitter     int64   // ns
	holdFor    int64   // ns: ReorderBy
	rate       bool
	nsPerByte  float64 // serialization time at RateBps
	queueLimit int

	// Set by the lab before the link is used, when its devices carry segmentation
	// offloads (offload.go); nil otherwise.
	finish     func(pkt []byte)       // makes pkt's transport checksum whole before a bit of it is flipped
	outCorrupt func(pkt []byte) error // hands on a corrupted packet instead of out
	flushOut   func()                 // after Run has handed a batch to out

	// Owned by Input's goroutine: decisions and the serializer.
	rng      *rand.Rand
	geBad    bool
	seq      uint64  // arrival number of the last packet taken in, from 1
	lastDep  int64   // departure of the last packet the serializer took
	waiting  []int64 // ring of serialization start times of packets not yet started
	waitHead int
	waitLen  int
	prevRel  int64  // release time of the last queued packet that was not held
	scratch  []byte // a corrupted copy on the direct path

	// outMu serialises out and the accounting after it between Input's direct path and
	// Run when both release packets (mixed), so that the order in which releases are
	// accounted (for Reordered) is the order in which out saw them. Taken before mu.
	outMu sync.Mutex

	wake chan struct{} // Input tells Run of a new earliest packet; capacity 1, never closed

	mu      sync.Mutex // guards the fields below
	c       Counts     // ByFlow is nil: see byFlow
	byFlow  map[uint32]*DataCounts
	q       []entry          // min-heap by (release, seq)
	free    [][]byte         // buffers of MTU capacity for queued packets
	holds   map[uint64]*hold // per flow key, the held packets not yet released
	stopped bool             // Run has ended: queued packets are flushed at once

	batch []entry // owned by releaseDue's caller (Run): due packets being released
	errs  []error // out's results for batch, two per entry
}

// fate is what the random draw decided for a packet.
type fate uint8

const (
	fatePass fate = iota
	fateDrop
	fateCorrupt
	fateDuplicate
	fateReorder
)

// entry is a queued packet.
type entry struct {
	buf     []byte // from the free list; the packet, corrupted if fate says so
	release int64  // when to hand it to out, ns since epoch
	arrival int64  // when it was taken in
	seq     uint64 // arrival number: orders equal release times, and flows for Reordered
	flowKey uint64
	flow    uint32
	data    bool
	fate    fate // fatePass, fateCorrupt, fateDuplicate or fateReorder
}

// hold tracks one flow's held packets while any is queued.
type hold struct {
	n      int    // held packets of this flow still queued
	maxRel uint64 // highest seq of this flow passed since the first of them was held
}

// Release timing: Run sleeps on a timer until spinWindow before the next release and
// spins (yielding) for the rest. Go's timers wake up to ~1 ms late on Linux once the
// netpoller is in use (epoll_wait takes milliseconds), which would skew an emulated
// 20 ms delay by 5%; the spin bounds the error to the scheduler's latency, at the cost
// of up to spinWindow of CPU per release.
const spinWindow = 1500 * time.Microsecond

// maxFree bounds the free list, so a burst's buffers do not stay allocated forever.
const maxFree = 4096

// defaultReorderBy is what a zero ReorderBy means.
const defaultReorderBy = time.Millisecond

// NewLink returns one direction of the link. seed makes every decision reproducible:
// the same seed and the same packet sequence give the same decisions. classify may
// be nil (no data counts). out hands a packet on (writes it to the receiving TUN
// device); it must neither keep nor modify pkt after it returns, and it is never
// called by two goroutines at once. An error from out loses the packet and counts it.
//
// # Decisions
//
// Each packet no longer than the MTU takes one uniform draw u from a PCG source
// seeded with seed, which picks exactly one fate by partitioning [0, 1) in this
// order: drop (Loss) | corrupt (Corrupt) | duplicate (Duplicate) | reorder (Reorder) |
// pass. Probabilities whose sum exceeds 1 cut the later fates short. Packets longer
// than the MTU are dropped (TooBig) without a draw.
//
// With Burst > 1, losses come from a Gilbert–Elliott chain instead: in state Bad
// every packet is lost, in Good none; after each packet the chain moves Bad→Good with
// probability r = 1/Burst and Good→Bad with p = Loss·r/(1−Loss) (a second draw), so the
// long-run loss rate p/(p+r) is Loss and the mean loss burst 1/r is Burst. The chain
// starts in Good. A packet in Good takes its fate from u mapped onto the part of
// [0, 1) after Loss, so Corrupt, Duplicate and Reorder keep their long-run rates.
// (p is capped at 1: above Loss = Burst/(Burst+1) the rate falls short of Loss.)
//
// Corrupt flips one bit of the transport payload, chosen by u, never the IP header:
// see corruptRegion. Packets that cannot be corrupted so (unparseable, not UDP or
// TCP) pass untouched and count as Passed. Duplicate delivers the packet twice, back
// to back, on the same path: it occupies the rate limiter once.
//
// # Timing
//
// A packet's release time is its departure from the rate limiter (its arrival
// without RateBps) + Delay + a uniform draw from [−Jitter, +Jitter], no earlier than
// its departure, and no earlier than the release of the previous packet that was
// not held, so jitter alone never reorders. Packets with equal release times leave
// in arrival order. With no Delay, Jitter or RateBps, Input hands packets to out
// itself, at once, without a copy or a timer: the fast path.
//
// RateBps makes a serializer: each packet occupies the link for len(pkt)·8/RateBps;
// its departure is max(arrival, previous departure) + that time. The packets whose
// serialization has not begun wait in the queue; one arriving when Queue (default
// DefaultQueue) are waiting is tail-dropped (QueueDropped) and takes no link time. So
// a burst into an idle link passes Queue+1 packets: the one being serialized and the
// Queue waiting behind it. Packets dropped by their fate take no link time either.
//
// # Reordering
//
// A reordered packet goes through the rate limiter and delay like the others, and is
// then held back ReorderBy (default 1 ms) more, so packets that arrive within that
// time overtake it. It counts in Reordered only when a later packet of its flow (the
// Classifier's flow for data, else its addresses, protocol and ports) was actually
// passed before it; a held packet nothing overtook is just Passed. So Data.Reordered
// is what an RFC 4737 receiver counts (a sequence number below the highest seen), as
// long as each flow's packets reach the link in sequence order and the receiver gets
// every intact packet the link passed. The caveats: a held packet may overtake an
// earlier held one under jitter, and then the earlier counts, as RFC 4737 counts it;
// a packet overtaken only by packets that are then lost beyond the link (a full
// receive buffer) is counted here but not by the receiver; and a flow that reaches
// the link out of order (several sending threads) is reordered before it.
func NewLink(im Impair, seed int64, classify Classifier, out func(pkt []byte) error) *Link {
	l := &Link{
		classify: classify,
		out:      out,
		epoch:    time.Now(),
		mtu:      im.MTU,
		loss:     clamp01(im.Loss),
		corruptP: clamp01(im.Corrupt),
		dupP:     clamp01(im.Duplicate),
		reorderP: clamp01(im.Reorder),
		delay:    max(int64(im.Delay), 0),
		jitter:   max(int64(im.Jitter), 0),
		holdFor:  int64(im.ReorderBy),
		rng:      rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		wake:     make(chan struct{}, 1),
		byFlow:   map[uint32]*DataCounts{},
		holds:    map[uint64]*hold{},
	}
	if l.mtu <= 0 {
		l.mtu = DefaultMTU
	}
	if l.holdFor <= 0 {
		l.holdFor = int64(defaultReorderBy)
	}
	if im.RateBps > 0 && !math.IsInf(im.RateBps, 0) {
		l.rate = true
		l.nsPerByte = 8e9 / im.RateBps
		l.queueLimit = im.Queue
		if l.queueLimit <= 0 {
			l.queueLimit = DefaultQueue
		}
		l.waiting = make([]int64, l.queueLimit)
	}
	if im.Burst > 1 && l.loss > 0 && l.loss < 1 {
		l.ge = true
		l.geR = 1 / im.Burst
		l.geP = min(l.loss*l.geR/(1-l.loss), 1)
	}
	l.queued = l.delay > 0 || l.jitter > 0 || l.rate
	l.random = l.loss > 0 || l.corruptP > 0 || l.dupP > 0 || l.reorderP > 0
	l.mixed = l.reorderP > 0 && !l.queued
	l.parse = classify != nil || l.corruptP > 0 || l.reorderP > 0
	if l.corruptP > 0 {
		l.scratch = make([]byte, l.mtu)
	}
	return l
}

func clamp01(p float64) float64 {
	if !(p > 0) { // also NaN
		return 0
	}
	return min(p, 1)
}

// decide draws pkt's fate; frac is u's place within the corrupt band, for the bit.
func (l *Link) decide() (f fate, frac float64) {
	u := l.rng.Float64()
	if l.ge {
		bad := l.geBad
		v := l.rng.Float64()
		if bad {
			l.geBad = v >= l.geR
		} else {
			l.geBad = v < l.geP
		}
		if bad {
			return fateDrop, 0
		}
		u = l.loss + u*(1-l.loss) // Good: the fates after the loss band
	}
	if u < l.loss {
		return fateDrop, 0
	}
	u -= l.loss
	if u < l.corruptP {
		return fateCorrupt, u / l.corruptP
	}
	u -= l.corruptP
	if u < l.dupP {
		return fateDuplicate, 0
	}
	u -= l.dupP
	if u < l.reorderP {
		return fateReorder, 0
	}
	return fatePass, 0
}

// Input takes one IP packet read from the sending side at time now. It copies pkt
// (the caller reuses its buffer), decides its fate, and either hands it to out at
// once (no delay, no rate, not held) or queues it for Run. Safe to call from one
// goroutine (the reader) while Run runs in another.
//
// On the fast path out gets pkt itself (or a corrupted copy) before Input returns,
// without a copy; a queued packet is copied into a buffer from a free list. now
// matters only to queued packets: it is when the packet reached the link.
func (l *Link) Input(pkt []byte, now time.Time) {
	l.seq++
	seq := l.seq
	var (
		info   packetInfo
		parsed bool
		flow   uint32
		data   bool
	)
	if l.parse {
		info, parsed = parse(pkt)
		if l.classify != nil && parsed {
			if p, ok := udpPayload(pkt, info); ok {
				flow, data = l.classify(p)
			}
		}
	}
	n := len(pkt)
	if n > l.mtu {
		l.mu.Lock()
		l.takenLocked(n, data, flow)
		l.countLocked(data, flow, outTooBig, 1)
		l.mu.Unlock()
		return
	}
	f, frac := fatePass, 0.0
	if l.random {
		f, frac = l.decide()
	}
	if f == fateDrop {
		l.mu.Lock()
		l.takenLocked(n, data, flow)
		l.countLocked(data, flow, outDropped, 1)
		l.mu.Unlock()
		return
	}
	var flowKey uint64
	if l.reorderP > 0 {
		if data {
			flowKey = dataFlowKey(flow)
		} else {
			flowKey = flowHash(pkt, info, parsed)
		}
	}
	if !l.queued && f != fateReorder {
		l.direct(pkt, n, info, parsed, f, frac, seq, flowKey, flow, data)
		return
	}

	// The queued path: serializer, delay, hold.
	arr := int64(now.Sub(l.epoch))
	dep := arr
	if l.rate {
		for l.waitLen > 0 && l.waiting[l.waitHead] <= arr {
			l.waitHead = (l.waitHead + 1) % len(l.waiting)
			l.waitLen--
		}
		if l.waitLen == l.queueLimit {
			l.mu.Lock()
			l.takenLocked(n, data, flow)
			l.countLocked(data, flow, outQueueDropped, 1)
			l.mu.Unlock()
			return
		}
		start := max(arr, l.lastDep)
		if start > arr {
			l.waiting[(l.waitHead+l.waitLen)%len(l.waiting)] = start
			l.waitLen++
		}
		dep = start + int64(math.Round(float64(n)*l.nsPerByte))
		l.lastDep = dep
	}
	rel := dep + l.delay
	if l.jitter > 0 {
		rel += l.rng.Int64N(2*l.jitter+1) - l.jitter
	}
	rel = max(rel, dep, l.prevRel)
	if f == fateReorder {
		rel += l.holdFor
	} else {
		l.prevRel = rel
	}

	l.mu.Lock()
	l.takenLocked(n, data, flow)
	if l.stopped {
		l.countLocked(data, flow, outFlushed, 1)
		l.mu.Unlock()
		return
	}
	buf := l.bufLocked()[:n]
	copy(buf, pkt)
	if f == fateCorrupt {
		if l.finish != nil {
			l.finish(buf)
		}
		if _, ok := corrupt(buf, info, frac); !ok { // untouched: not UDP or TCP, unparseable
			f = fatePass
		}
	}
	if f == fateReorder {
		h := l.holds[flowKey]
		if h == nil {
			h = &hold{}
			l.holds[flowKey] = h
		}
		h.n++
	}
	l.countLocked(data, flow, outQueued, 1)
	l.pushLocked(entry{buf: buf, release: rel, arrival: arr, seq: seq, flowKey: flowKey, flow: flow, data: data, fate: f})
	first := l.q[0].seq == seq
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// inputWhole takes k packets of n bytes in all that cross as one super-packet, when
// nothing could happen to any of them but passing at once: no random fate, no delay
// or rate, and none longer than the MTU (largest, the longest of them). It counts
// them as Input would, k packets passed, around one call of out, which hands the
// super-packet on; it returns false, having done nothing, when the link would treat
// them one by one. The fast path of fast paths: one read and one write for up to 64
// KiB.
//
// udp is a UDP super-packet's payload (nil for TCP), size bytes of it per packet:
// with a classifier the link reads each packet's payload there, in place, to count
// the data packets and their flows as Input counts them, without cutting the
// super-packet. A super-packet of more flows than flowsPerSuper goes one by one.
func (l *Link) inputWhole(k, n, largest int, udp []byte, size int, out func() error) bool {
	if l.random || l.queued || l.mixed || largest > l.mtu || k <= 0 {
		return false
	}
	var flows [flowsPerSuper]flowCount
	nf := 0
	if l.classify != nil && udp != nil && size > 0 {
		for off := 0; off < len(udp); off += size {
			flow, data := l.classify(udp[off:min(off+size, len(udp))])
			if !data {
				continue
			}
			i := 0
			for i < nf && flows[i].flow != flow {
				i++
			}
			if i == nf {
				if nf == len(flows) {
					return false
				}
				flows[nf] = flowCount{flow: flow}
				nf++
			}
			flows[i].n++
		}
	}
	l.seq += uint64(k)
	l.mu.Lock()
	l.c.Packets += uint64(k)
	l.c.Bytes += uint64(n)
	l.c.Queued += uint64(k) // in flight while out runs, so every snapshot balances
	for _, f := range flows[:nf] {
		l.c.Data.Packets += f.n
		fc := l.flowLocked(f.flow)
		fc.Packets += f.n
		addOutcome(&l.c.Data, outQueued, f.n)
		addOutcome(fc, outQueued, f.n)
	}
	l.mu.Unlock()
	err := out()
	o := outPassed
	if err != nil {
		o = outOutErrors
	}
	l.mu.Lock()
	l.c.Queued -= uint64(k)
	addTotal(&l.c, o, uint64(k))
	for _, f := range flows[:nf] {
		fc := l.flowLocked(f.flow)
		addOutcome(&l.c.Data, outQueued, -f.n)
		addOutcome(fc, outQueued, -f.n)
		addOutcome(&l.c.Data, o, f.n)
		addOutcome(fc, o, f.n)
	}
	l.mu.Unlock()
	return true
}

// flowsPerSuper is the most data flows inputWhole counts in one super-packet: one
// socket's send is one flow, so a super-packet of more is none the emulator sees.
const flowsPerSuper = 4

// A flowCount is how many data packets of one flow a super-packet holds.
type flowCount struct {
	flow uint32
	n    uint64
}

// direct hands a packet to out from Input: the fast path.
func (l *Link) direct(pkt []byte, n int, info packetInfo, parsed bool, f fate, frac float64, seq, flowKey uint64, flow uint32, data bool) {
	if f == fateCorrupt {
		f = fatePass
		if parsed {
			buf := l.scratch[:n]
			copy(buf, pkt)
			if l.finish != nil {
				l.finish(buf)
			}
			if _, ok := corrupt(buf, info, frac); ok {
				pkt, f = buf, fateCorrupt
			}
		}
	}
	if l.mixed {
		l.outMu.Lock()
	}
	// Count the packet in before out hands it on: a reader that already has it must
	// find it counted. It is Queued while out runs, so every snapshot balances.
	l.mu.Lock()
	l.takenLocked(n, data, flow)
	l.countLocked(data, flow, outQueued, 1)
	l.mu.Unlock()
	err0 := l.hand(pkt, f)
	var err1 error
	if f == fateDuplicate {
		err1 = l.out(pkt)
	}
	l.mu.Lock()
	l.countLocked(data, flow, outQueued, ^uint64(0))
	l.releasedLocked(entry{seq: seq, flowKey: flowKey, flow: flow, data: data, fate: f}, err0, err1)
	l.mu.Unlock()
	if l.mixed {
		l.outMu.Unlock()
	}
}

// hand passes pkt to out, or to outCorrupt when it is corrupted and that is set.
func (l *Link) hand(pkt []byte, f fate) error {
	if f == fateCorrupt && l.outCorrupt != nil {
		return l.outCorrupt(pkt)
	}
	return l.out(pkt)
}

// Run releases queued packets to out at their times until ctx is done; then it
// returns ctx.Err() after dropping what is still queued (counted as Flushed). Run
// once per Link; packets Input queues after Run has returned are flushed at once.
func (l *Link) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		next, ok := l.releaseDue(l.now())
		if ok {
			d := time.Duration(next - l.now())
			if d <= spinWindow {
				if l.spin(ctx, next) {
					l.flush()
					return ctx.Err()
				}
				continue
			}
			timer.Reset(d - spinWindow)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			l.flush()
			return ctx.Err()
		case <-timer.C:
		case <-l.wake:
		}
	}
}

// now is the current time in ns since epoch.
func (l *Link) now() int64 { return int64(time.Since(l.epoch)) }

// spin waits, yielding, until next or a wake-up; it reports whether ctx is done.
func (l *Link) spin(ctx context.Context, next int64) bool {
	for l.now() < next {
		select {
		case <-ctx.Done():
			return true
		case <-l.wake:
			return false
		default:
		}
		runtime.Gosched()
	}
	return false
}

// releaseDue hands every packet due at now (ns since epoch) to out, in release
// order, and returns the release time of the next queued packet, if any. One caller
// at a time (Run, or a test driving time itself).
func (l *Link) releaseDue(now int64) (next int64, ok bool) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	l.mu.Lock()
	l.batch = l.batch[:0]
	for len(l.q) > 0 && l.q[0].release <= now {
		l.batch = append(l.batch, l.popLocked())
	}
	l.mu.Unlock()
	if len(l.batch) > 0 {
		l.errs = l.errs[:0]
		for _, e := range l.batch {
			err0 := l.hand(e.buf, e.fate)
			var err1 error
			if e.fate == fateDuplicate {
				err1 = l.out(e.buf)
			}
			l.errs = append(l.errs, err0, err1)
		}
		if l.flushOut != nil {
			l.flushOut()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.batch {
		if e.release > e.arrival {
			l.c.Delayed++
		}
		l.countLocked(e.data, e.flow, outQueued, ^uint64(0))
		l.releasedLocked(e, l.errs[2*i], l.errs[2*i+1])
		l.putBufLocked(e.buf)
		l.batch[i] = entry{}
		l.errs[2*i], l.errs[2*i+1] = nil, nil
	}
	if len(l.q) == 0 {
		return 0, false
	}
	return l.q[0].release, true
}

// flush drops every queued packet (Flushed) and makes later ones flush at once.
func (l *Link) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	for _, e := range l.q {
		l.countLocked(e.data, e.flow, outQueued, ^uint64(0))
		l.countLocked(e.data, e.flow, outFlushed, 1)
		l.putBufLocked(e.buf)
	}
	clear(l.q)
	l.q = l.q[:0]
	clear(l.holds)
}

// Counts returns a snapshot of what the link did (safe concurrently).
func (l *Link) Counts() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.c
	c.ByFlow = make(map[uint32]DataCounts, len(l.byFlow))
	for f, d := range l.byFlow {
		c.ByFlow[f] = *d
	}
	return c
}

// outcome is a count a packet adds to.
type outcome uint8

const (
	outPassed outcome = iota
	outTooBig
	outDropped
	outQueueDropped
	outCorrupted
	outDuplicated
	outReordered
	outFlushed
	outOutErrors
	outQueued // k is added modulo 2^64: ^uint64(0) takes one away
)

// takenLocked counts a packet taken in.
func (l *Link) takenLocked(n int, data bool, flow uint32) {
	l.c.Packets++
	l.c.Bytes += uint64(n)
	if data {
		l.c.Data.Packets++
		l.flowLocked(flow).Packets++
	}
}

// countLocked adds k to o's count in the totals and, for data, in Data and ByFlow.
func (l *Link) countLocked(data bool, flow uint32, o outcome, k uint64) {
	if data {
		addOutcome(&l.c.Data, o, k)
		addOutcome(l.flowLocked(flow), o, k)
	}
	addTotal(&l.c, o, k)
}

// addTotal adds k to o's field of the totals c.
func addTotal(c *Counts, o outcome, k uint64) {
	switch o { // the totals mirror DataCounts field by field
	case outPassed:
		c.Passed += k
	case outTooBig:
		c.TooBig += k
	case outDropped:
		c.Dropped += k
	case outQueueDropped:
		c.QueueDropped += k
	case outCorrupted:
		c.Corrupted += k
	case outDuplicated:
		c.Duplicated += k
	case outReordered:
		c.Reordered += k
	case outFlushed:
		c.Flushed += k
	case outOutErrors:
		c.OutErrors += k
	case outQueued:
		c.Queued += k
	}
}

// addOutcome adds k to o's field of d.
func addOutcome(d *DataCounts, o outcome, k uint64) {
	switch o {
	case outPassed:
		d.Passed += k
	case outTooBig:
		d.TooBig += k
	case outDropped:
		d.Dropped += k
	case outQueueDropped:
		d.QueueDropped += k
	case outCorrupted:
		d.Corrupted += k
	case outDuplicated:
		d.Duplicated += k
	case outReordered:
		d.Reordered += k
	case outFlushed:
		d.Flushed += k
	case outOutErrors:
		d.OutErrors += k
	case outQueued:
		d.Queued += k
	}
}

func (l *Link) flowLocked(flow uint32) *DataCounts {
	d := l.byFlow[flow]
	if d == nil {
		d = &DataCounts{}
		l.byFlow[flow] = d
	}
	return d
}

// releasedLocked accounts a packet handed to out (err0 for its copy, err1 for the
// duplicate's) and keeps the per-flow reordering state, in the order out saw them.
func (l *Link) releasedLocked(e entry, err0, err1 error) {
	copies := 1
	if e.fate == fateDuplicate {
		copies = 2
		l.countLocked(e.data, e.flow, outDuplicated, 1)
	}
	delivered := false // an intact copy reached out's receiver
	for i := range copies {
		err := err0
		if i == 1 {
			err = err1
		}
		switch {
		case err != nil:
			l.countLocked(e.data, e.flow, outOutErrors, 1)
		case e.fate == fateCorrupt:
			l.countLocked(e.data, e.flow, outCorrupted, 1)
		default:
			l.countLocked(e.data, e.flow, outPassed, 1)
			delivered = true
		}
	}
	if len(l.holds) == 0 {
		return
	}
	h := l.holds[e.flowKey]
	if h == nil {
		return
	}
	if e.fate == fateReorder {
		if delivered && h.maxRel > e.seq {
			l.countLocked(e.data, e.flow, outReordered, 1)
		}
		if h.n--; h.n == 0 {
			delete(l.holds, e.flowKey)
			return
		}
	}
	if delivered {
		h.maxRel = max(h.maxRel, e.seq)
	}
}

// bufLocked takes a buffer of MTU capacity from the free list.
func (l *Link) bufLocked() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return b[:cap(b)]
	}
	return make([]byte, l.mtu)
}

func (l *Link) putBufLocked(b []byte) {
	if b != nil && len(l.free) < maxFree {
		l.free = append(l.free, b)
	}
}

// The queue is a binary min-heap by (release, seq), kept by hand so that entries
// stay values (no allocation per packet, as container/heap's interface would cost).

func (e *entry) before(o *entry) bool {
	return e.release < o.release || (e.release == o.release && e.seq < o.seq)
}

func (l *Link) pushLocked(e entry) {
	l.q = append(l.q, e)
	q := l.q
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].before(&q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (l *Link) popLocked() entry {
	q := l.q
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = entry{}
	q = q[:last]
	i := 0
	for {
		c := 2*i + 1
		if c >= len(q) {
			break
		}
		if c+1 < len(q) && q[c+1].before(&q[c]) {
			c++
		}
		if !q[c].before(&q[i]) {
			break
		}
		q[i], q[c] = q[c], q[i]
		i = c
	}
	l.q = q
	return top
}
