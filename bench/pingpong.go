package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpPingPong,
		section: report.Section{Title: "Round-trip time (pingpong)", Layout: report.LayoutLatency, Charts: []report.Chart{
			{Kind: report.ChartLatencyCDF, File: "rtt_cdf.svg", Title: "RTT distribution", Heading: "Round-trip time distribution",
				Field: "rtt_ns", XLabel: "RTT (us)", YLabel: "fraction of round trips slower"},
		}},
		help:  "request/response: round-trip time percentiles; a request with no reply within --timeout counts as unanswered. Closed loop by default; --ping-rate N sends N requests/s on a timetable instead",
		place: 100, run: runPingPongCell, measures: true, openLoop: true, requestResponse: true,
		properties: []report.Rule{report.RuleRTT},
		far:        &FarHalf{Blocking: true, Serve: serveEcho}})
}

// runPingPong is closed-loop request/response: one client sends a p.Size-byte
// request, waits for the echo, records the round-trip time, and only then sends the
// next. A request unanswered within e.timeout counts as unanswered (Timeouts) and the
// client moves on, so one lost datagram never stalls the run (PITFALLS 9). Closed-loop figures are
// labelled as such: they hide queueing, by construction.
func runPingPong(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (report.Metrics, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	dur := time.Duration(p.DurationS * float64(time.Second))
	if p.Count > 0 {
		dur = 0 // unknown: the far end bounds it by its own limit
	}
	end, err := openEcho(ctx, e, nw, p.Size, e.warmup+dur, true)
	if err != nil {
		return report.Metrics{}, nil, err
	}
	defer end.finish(ctx)
	t := end.t
	c, stopWatch, err := warmUp(ctx, e, t, p.Size)
	defer stopWatch()
	if err != nil {
		return report.Metrics{}, nil, err
	}

	cost := startRequestCost(t)
	lat := metrics.NewLatency()
	var m report.Metrics
	start := time.Now()
	until := start.Add(time.Duration(p.DurationS * float64(time.Second)))
	for ctx.Err() == nil {
		if p.Count > 0 && m.SentMsgs >= p.Count {
			break
		}
		if p.Count == 0 && !time.Now().Before(until) {
			break
		}
		if err := c.roundTrip(t, wire.KindRequest, &m, lat, -1); err != nil {
			return report.Metrics{}, nil, err
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return report.Metrics{}, nil, fmt.Errorf("stopped after %d round trips: %w", m.SentMsgs, err)
	}
	warns := cost.finish(ctx, &m, lat, p.Size, elapsed, end)
	return m, warns, nil
}

// requestCost is what a request/response cell reads as its measured phase starts
// (CPU, retransmits) to report its costs over it.
type requestCost struct {
	t     transport.Transport
	u0    metrics.Usage
	uerr  error
	retr0 uint64
}

func startRequestCost(t transport.Transport) requestCost {
	c := requestCost{t: t}
	c.u0, c.uerr = metrics.ReadUsage()
	c.retr0, _ = retransmits([]transport.Transport{t})
	return c
}

// finish ends the measured phase: it reads CPU and retransmits, closes the cell's
// server half (end), and fills m's request figures from lat over elapsed, its costs
// and the server's sockets and CPU. It returns the server half's warnings.
func (c requestCost) finish(ctx context.Context, m *report.Metrics, lat *metrics.Latency, size int, elapsed time.Duration, end *reqPeer) []string {
	u1, _ := metrics.ReadUsage()
	retr1, retrOK := retransmits([]transport.Transport{c.t})
	fr := end.finish(ctx)

	finishRequests(m, lat, size, elapsed)
	if retrOK {
		m.Retransmits = u64p(retr1 - c.retr0)
	}
	if c.uerr == nil {
		metrics.SetUsage(m, u1.Sub(c.u0), m.SentBytes+m.RecvBytes)
	}
	m.ServerSockets = fr.ServerSockets
	m.ServerCPUSec = fr.CPUSec
	return fr.Warnings
}

// warmUp arms a watchdog that closes the client's endpoint t when ctx ends
// (unblocking any call on it), and runs e.warmup of round trips over t outside the
// measurement. It returns the requester the cell goes on with, and the watchdog's
// stop, for the caller to defer whatever the error.
func warmUp(ctx context.Context, e *runEnv, t transport.Transport, size int) (*requester, func() bool, error) {
	stopWatch := ctxwatch.OnDone(ctx, func() { t.Close() })
	c := newRequester(e, size)
	var warm report.Metrics
	for until := time.Now().Add(e.warmup); e.warmup > 0 && time.Now().Before(until) && ctx.Err() == nil; {
		if err := c.roundTrip(t, wire.KindWarmup, &warm, nil, -1); err != nil {
			return nil, stopWatch, fmt.Errorf("warm-up: %w", err)
		}
	}
	return c, stopWatch, nil
}

// requester sends one request at a time and waits for its answer.
type requester struct {
	e    *runEnv
	req  []byte
	resp [][]byte
	out  [][]byte
	size []int
	pcrc uint32
	seq  uint64
}

func newRequester(e *runEnv, size int) *requester {
	c := &requester{e: e, req: make([]byte, size), resp: makeBufs(1, size), out: make([][]byte, 1), size: make([]int, 1)}
	wire.FillPayload(c.req[wire.HeaderLen:], e.seed, 0)
	c.pcrc = wire.PayloadCRC(c.req[wire.HeaderLen:])
	return c
}

// roundTrip sends request c.seq and waits up to e.timeout for its reply. A timeout
// counts in m.Timeouts; a reply to an earlier request counts in m.LateMsgs and the
// wait goes on. lat, when not nil, records the time from `from` (ns since the
// epoch; negative means the send) to the reply.
func (c *requester) roundTrip(t transport.Transport, kind wire.Kind, m *report.Metrics, lat *metrics.Latency, from int64) error {
	seq := c.seq
	c.seq++
	sent := c.e.now()
	if from < 0 {
		from = sent
	}
	wire.PutHeader(c.req, wire.Header{Kind: kind, Run: c.e.run, Len: uint32(len(c.req)), Seq: seq, SendNs: sent, PayloadCRC: c.pcrc})
	c.out[0] = c.req
	m.SentMsgs++
	if _, err := t.Send(c.out); err != nil {
		if isDatagramRefusal(err) {
			m.DropsSender++
			m.Timeouts++
			return nil
		}
		return fmt.Errorf("send request %d: %w", seq, err)
	}
	deadline := c.e.epoch.Add(time.Duration(sent) + c.e.timeout)
	if err := t.SetReadDeadline(deadline); err != nil {
		return err
	}
	for {
		n, err := t.Recv(c.resp, c.size)
		if n > 0 {
			now := c.e.now()
			var rj wire.Rejects
			h, ok := rj.Accept(c.resp[0][:c.size[0]], c.e.run, c.e.verify)
			rj.AddTo(m)
			switch {
			case !ok:
			case h.Seq != seq:
				m.LateMsgs++ // the answer to a request already counted lost
			default:
				m.RecvMsgs++
				if lat != nil {
					lat.Record(now - from)
				}
				return nil
			}
		}
		if err != nil {
			switch {
			case transport.IsTimeout(err):
				m.Timeouts++
				return nil
			case transport.IsOversize(err):
				m.MalformedMsgs++
			case isDatagramRefusal(err):
				// ICMP port unreachable reported on a connected socket: the request is lost.
				m.Timeouts++
				return nil
			default:
				return fmt.Errorf("receive reply %d: %w", seq, err)
			}
		}
	}
}

// runPingPongCell runs pingpong closed loop, or open loop when p.PingRate > 0.
// Closed-loop results carry no observations, so their reports stay as they were.
func runPingPongCell(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	if p.PingRate > 0 {
		return runOpenLoop(ctx, e, nw, p)
	}
	m, w, err := runPingPong(ctx, e, nw, p)
	return outcome{m: m, warns: w}, err
}

// maxOpenLoopRing bounds the open-loop ring of outstanding requests (8 bytes each):
// rate × timeout × 2 must fit.
const maxOpenLoopRing = 1 << 22

// openLoopRing is the number of slots the open-loop receiver tracks: a power of two
// ≥ 2 × rate × timeout (and ≥ 64). A reply for request s arrives no earlier than its
// scheduled time; any request x ≤ s − capacity was scheduled at least 2 × timeout
// before s, so its deadline has passed and it is resolved (answered or lost) before
// s takes its slot. The slots are allocated once, per cell, never per request.
func openLoopRing(rate float64, timeout time.Duration) (int, error) {
	need := 2*rate*timeout.Seconds() + 1
	if need > maxOpenLoopRing {
		return 0, fmt.Errorf("open loop: rate %v/s × timeout %v needs %.0f outstanding requests, over %d", rate, timeout, need, maxOpenLoopRing/2)
	}
	n := 64
	for float64(n) < need {
		n <<= 1
	}
	return n, nil
}

// openLoop is one open-loop (fixed-rate) pingpong run. Request i is scheduled at
// t0 + i/rate and sent then (or as soon after as the sender can), whether or not
// earlier replies came back; its RTT is measured from the scheduled time, not the
// actual send, so a stall of the server, the path or the client shows up in every
// request that should have been sent during it (no coordinated omission, PITFALLS 9).
type openLoop struct {
	e    *runEnv
	t    transport.Transport
	n    uint64        // requests in the run
	tt   timetable     // request i is scheduled at tt.at(i), ns since e.epoch
	spin time.Duration // the sender spins this long before each scheduled time (timerOvershoot)

	// sender's, read after it returned
	dropsSender uint64
	maxLag      int64 // most the sender ever fell behind its timetable, ns
	sumLag      int64 // Σ how far behind each send was, ns
	lastSend    int64 // time of the last send, ns since e.epoch

	// receiver's, read after it returned
	m    report.Metrics
	lat  *metrics.Latency
	tags []uint64 // slot seq&mask holds seq+1 once request seq is answered
	mask uint64
	next uint64 // lowest request not yet answered or lost
}

// sched is request i's scheduled send time, ns since e.epoch.
func (o *openLoop) sched(i uint64) int64 { return o.tt.at(i) }

// runOpenLoop is pingpong at a fixed rate of p.PingRate requests/s over one
// connection: a sender goroutine keeps the timetable, a receiver goroutine matches
// replies by sequence number. A request unanswered e.timeout after its scheduled
// time is lost (Timeouts); a reply after that counts in LateMsgs. Neither goroutine
// allocates per request.
func runOpenLoop(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	rate := p.PingRate
	n := p.Count
	if n == 0 {
		n = max(1, uint64(math.Ceil(p.DurationS*rate-1e-9)))
	}
	slots, err := openLoopRing(rate, e.timeout)
	if err != nil {
		return outcome{}, err
	}
	window := time.Duration(float64(n) / rate * float64(time.Second))
	ctx, cancel := context.WithTimeout(ctx, e.warmup+window+e.timeout+30*time.Second)
	defer cancel()
	// Both ends stay in Go's poller: the sender keeps the timetable on the
	// goroutines' processors, and a receiver asleep in the kernel keeps its
	// processor until the runtime's monitor takes it back (20 µs to 10 ms later):
	// with GOMAXPROCS 1 (under taskset) that would delay the sends.
	end, err := openEcho(ctx, e, nw, p.Size, e.warmup+window+e.timeout, false)
	if err != nil {
		return outcome{}, err
	}
	defer end.finish(ctx)
	t := end.t
	c, stopWatch, err := warmUp(ctx, e, t, p.Size)
	defer stopWatch()
	if err != nil {
		return outcome{}, err
	}

	o := &openLoop{e: e, t: t, n: n, lat: metrics.NewLatency(), spin: timerOvershoot(),
		tags: make([]uint64, slots), mask: uint64(slots - 1)}
	cost := startRequestCost(t)
	o.tt = newTimetable(e.now(), rate)

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var sendErr, recvErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if sendErr = o.send(rctx, c); sendErr != nil {
			stop()
		}
	}()
	go func() {
		defer wg.Done()
		if recvErr = o.receive(rctx, p.Size); recvErr != nil {
			stop()
		}
	}()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return outcome{}, fmt.Errorf("stopped after %d of %d requests: %w", o.next, n, err)
	}
	if sendErr != nil && !errors.Is(sendErr, context.Canceled) {
		return outcome{}, sendErr
	}
	if recvErr != nil && !errors.Is(recvErr, context.Canceled) {
		return outcome{}, recvErr
	}
	if sendErr != nil || recvErr != nil {
		return outcome{}, errors.Join(sendErr, recvErr)
	}
	// The measured interval is the timetable actually kept: from request 0's
	// scheduled time to the last send, plus one period (exactly n/rate on schedule).
	elapsed := time.Duration(o.lastSend-o.tt.start) + time.Duration(o.tt.period)
	m := o.m
	m.SentMsgs = n
	m.DropsSender = o.dropsSender
	warns := cost.finish(ctx, &m, o.lat, p.Size, elapsed, end)
	// The RTTs include the sender's own lateness (timer granularity, scheduling):
	// mean_send_lag_ns says how much of the base RTT that is. The sender spins for
	// pacer_spin_ns before each scheduled time to keep that lag small.
	obs := map[string]any{report.ObsMode.Key(): "open-loop", report.ObsRatePerS.Key(): rate, report.ObsMaxSendLagNs.Key(): o.maxLag,
		report.ObsMeanSendLagNs.Key(): o.sumLag / int64(n), report.ObsPacerSpinNs.Key(): int64(o.spin)}
	return outcome{m: m, warns: warns, observed: obs}, nil
}

// send keeps the timetable: request i goes at its scheduled time, or at once when
// the sender is behind. A refused datagram counts in dropsSender; the receiver
// counts it lost when its deadline passes.
func (o *openLoop) send(ctx context.Context, c *requester) error {
	timer := newStoppedTimer()
	defer timer.Stop()
	for i := uint64(0); i < o.n; i++ {
		at := o.tt.at(i)
		if err := waitUntil(ctx, o.e.now, at, o.spin, timer); err != nil {
			return err
		}
		now := o.e.now()
		o.maxLag = max(o.maxLag, now-at)
		o.sumLag += now - at
		o.lastSend = now
		wire.PutHeader(c.req, wire.Header{Kind: wire.KindRequest, Run: o.e.run, Len: uint32(len(c.req)), Seq: i, SendNs: now, PayloadCRC: c.pcrc})
		c.out[0] = c.req
		if _, err := o.t.Send(c.out); err != nil {
			if isDatagramRefusal(err) {
				o.dropsSender++
				continue
			}
			return fmt.Errorf("send request %d: %w", i, err)
		}
	}
	return nil
}

// sweep resolves, in order, the requests answered or past their deadline at now.
func (o *openLoop) sweep(now int64) {
	for o.next < o.n {
		switch {
		case o.tags[o.next&o.mask] == o.next+1:
		case o.sched(o.next)+int64(o.e.timeout) <= now:
			o.m.Timeouts++
		default:
			return
		}
		o.next++
	}
}

// receive reads replies until every request is answered or lost. Every Recv is
// bounded by a deadline: the earlier of the next request's and pollInterval.
func (o *openLoop) receive(ctx context.Context, size int) error {
	batch := max(1, min(o.e.batch, (64<<10)/size))
	bufs := makeBufs(batch, size)
	sizes := make([]int, batch)
	timeout := int64(o.e.timeout)
	for o.next < o.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		dl := min(o.e.now()+int64(pollInterval), o.sched(o.next)+timeout)
		if err := o.t.SetReadDeadline(o.e.epoch.Add(time.Duration(dl))); err != nil {
			return err
		}
		k, err := o.t.Recv(bufs, sizes)
		now := o.e.now()
		o.sweep(now) // whatever expired while we waited is lost, even if its reply is here
		for i := 0; i < k; i++ {
			msg := bufs[i][:sizes[i]]
			var rj wire.Rejects
			h, ok := rj.Accept(msg, o.e.run, o.e.verify)
			rj.AddTo(&o.m)
			switch {
			case !ok:
			case h.Kind == wire.KindWarmup:
				// a warm-up straggler: outside the measurement and its sequence space
			case h.Kind != wire.KindRequest || h.Seq >= o.n:
				o.m.MalformedMsgs++
			case h.Seq < o.next:
				o.m.LateMsgs++ // already answered or counted lost
			default:
				for h.Seq >= o.next+uint64(len(o.tags)) { // cannot happen (see openLoopRing); stay correct anyway
					if o.tags[o.next&o.mask] != o.next+1 {
						o.m.Timeouts++
					}
					o.next++
				}
				slot := &o.tags[h.Seq&o.mask]
				if *slot == h.Seq+1 {
					o.m.DupMsgs++
					continue
				}
				*slot = h.Seq + 1
				o.m.RecvMsgs++
				o.lat.Record(now - o.sched(h.Seq))
			}
		}
		o.sweep(now)
		if err != nil {
			switch {
			case transport.IsTimeout(err), isDatagramRefusal(err):
				// a deadline, or ICMP for a request the sweep will count lost
			case transport.IsOversize(err):
				o.m.MalformedMsgs++
			default:
				return fmt.Errorf("receive replies: %w", err)
			}
		}
	}
	return nil
}

// openEcho starts the echo server half of a request/response cell (ServeEcho) at
// its peer and opens the client's endpoint to it, for at most dur; the caller must
// call finish. With blocking (closed loop, whose one goroutine sends and then waits),
// both ends in this process receive blocking (serverHalf.blocking); each end's mode
// is recorded in e.rx.
func openEcho(ctx context.Context, e *runEnv, nw transport.Network, size int, dur time.Duration, blocking bool) (*reqPeer, error) {
	sh := echoHalf(e, size)
	sh.blocking, sh.rx = blocking, true
	return openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpPingPong, Transport: nw.Name(), Size: size, Streams: 1, Duration: dur}, sh)
}
