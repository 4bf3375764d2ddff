package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// StreamTx is what the far senders of a reverse stream did, as it travels from the
// far end (JSON).
type StreamTx struct {
	Flows       int    `json:"flows"`
	SentMsgs    uint64 `json:"sent_msgs"`    // handed to the transport, refused ones included
	DropsSender uint64 `json:"drops_sender"` // datagrams the far kernel refused to send
	SendSpanNs  int64  `json:"send_span_ns"` // first data send to the last, on the far clock
	InSendNs    int64  `json:"in_send_ns"`   // time inside Send, summed over flows
}

func (st *StreamTx) summary() txSummary {
	return txSummary{flows: st.Flows, sent: st.SentMsgs, refused: st.DropsSender, blocked: time.Duration(st.InSendNs), spanNs: st.SendSpanNs}
}

// ServeStreamTx is the sending half of a reverse stream cell at the far end: one
// flow per endpoint in ts, spec.Warmup of warm-up, then spec.Count messages per flow
// or spec.SendFor of them, paced to spec.RateBps over all flows; it returns what the
// senders did.
//
// When the senders are done, ended (if set) gets each flow's count, by flow: the
// client's receiver learns the end of the stream from it, beside the data path.
func ServeStreamTx(ctx context.Context, spec FarSpec, ts []Transport, ended func(sent []uint64)) (FarResult, error) {
	if spec.Run == 0 || len(ts) == 0 || spec.Streams != len(ts) || spec.Size < HeaderLen || (spec.Count == 0 && spec.SendFor <= 0) {
		return FarResult{}, fmt.Errorf("bench: ServeStreamTx: want a run id, %d endpoints for %d streams, size >= %d and a count or a time; got run %d, size %d, count %d, time %v",
			len(ts), spec.Streams, HeaderLen, spec.Run, spec.Size, spec.Count, spec.SendFor)
	}
	return serveStreamTx(ctx, &runEnv{epoch: time.Now(), run: spec.Run, seed: 1, batch: farBatch(spec)}, spec, ts, ended)
}

// serveStreamTx is ServeStreamTx on e's clock, run id and payload: the far end's
// own, or the client's when the server half runs in its process.
func serveStreamTx(ctx context.Context, e *runEnv, spec FarSpec, ts []Transport, ended func(sent []uint64)) (FarResult, error) {
	p := report.Params{Size: spec.Size, Streams: len(ts), RateBps: spec.RateBps}
	txs := make([]*streamTx, len(ts))
	for i, t := range ts {
		txs[i] = newStreamTx(e, p, uint32(i), t)
	}
	if spec.Warmup > 0 {
		if err := warmAll(ctx, txs, spec.Warmup); err != nil {
			return FarResult{}, err
		}
		select { // the receiver's warm-up stragglers settle, as on one host
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	var until time.Time
	if spec.Count == 0 {
		until = time.Now().Add(spec.SendFor)
	}
	err := sendAll(ctx, txs, spec.Count, until)
	if err == nil && ended != nil {
		ended(sentPerFlow(txs))
	}
	var sum txSummary
	for _, tx := range txs {
		sum.add(tx)
	}
	st := &StreamTx{Flows: sum.flows, SentMsgs: sum.sent, DropsSender: sum.refused, SendSpanNs: sum.span(), InSendNs: int64(sum.blocked)}
	return FarResult{ServerSockets: len(ts), StreamTx: st}, err
}

// streamCellReverse is a stream cell whose senders are at the far end: this host
// receives and accounts every message, and the far end reports what it sent.
func streamCellReverse(ctx context.Context, e *runEnv, nw Network, p report.Params, so streamOpts) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	fc, ts, dur, err := openFarSenders(ctx, e, nw, p, so, false)
	if err != nil {
		return outcome{}, err
	}
	finished := false
	defer func() {
		if !finished {
			abandonFar(fc, ts)
		}
	}()

	rx := newStreamRx(e, p, nw.Name())
	u0, uerr := ReadUsage()
	run := startRx(ctx, rx, ts)
	awaitFarSenders(ctx, e, rx, p, so, dur, fc.Ended(), fc.Senders())
	drainStart := time.Now()
	rx.waitDrained(ctx, so.drain)
	drain := time.Since(drainStart)
	drops, dropsOK := run.drops()
	u1, _ := ReadUsage()
	serr := run.end()
	drops, dropPkts := rx.datagramDrops(drops)
	for _, t := range ts {
		t.Close()
	}
	finished = true
	fr, ferr := fc.Finish(ctx)
	if fr.StreamTx == nil {
		return outcome{}, fmt.Errorf("far end: no sender figures: %w", errors.Join(ferr, errors.New("the server reported none")))
	}

	rr := rxResult{tot: rx.totals(), sockets: fr.ServerSockets, warns: fr.Warnings, far: true, cpu: fr.CPUSec,
		drops: drops, dropsOK: dropsOK, dropPkts: dropPkts}
	m, warns, obs := streamMetrics(p, so, fr.StreamTx.summary(), rr, drain)
	warns = append(rr.warns, warns...)
	if ferr != nil {
		warns = append(warns, fmt.Sprintf("far end: %v", ferr))
	}
	if serr != nil {
		warns = append(warns, fmt.Sprintf("receiver: %v", serr))
	}
	if uerr == nil {
		setUsage(&m, u1.Sub(u0), m.RecvBytes)
	}
	return outcome{m: m, warns: warns, observed: obs}, nil
}

// awaitFarSenders waits, receiving into rx, until the far end's senders are done and
// rx knows each flow's count (senders.Done; rx then drains as a local receiver does).
// A far end that cannot say so leaves rx to end the wait itself: when nothing has
// arrived for a quiet spell once data flowed (the drain, or two messages' time at the
// paced rate, at least 500 ms), when the far end ended the cell (ended), or when the
// senders' time dur (0 = unknown) and the drain have passed; every flow's end is then
// unknown, and the drain that follows ends at once.
func awaitFarSenders(ctx context.Context, e *runEnv, rx *streamRx, p report.Params, so streamOpts, dur time.Duration, ended <-chan struct{}, senders FarPeer) {
	defer rx.endUnknown()
	quietStop := max(so.drain, 500*time.Millisecond)
	if p.RateBps > 0 {
		quietStop = max(quietStop, 2*time.Duration(float64(p.Size*8*p.Streams)/p.RateBps*float64(time.Second)))
	}
	limit := time.NewTimer(cmp.Or(dur, e.cellLimit(p)/2) + so.drain + 5*time.Second)
	defer limit.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-tick.C:
			if last := rx.lastArrival.Load(); last > 0 && rx.e.now()-last > int64(quietStop) {
				return
			}
		case <-senders.Done():
			if sent, err := senders.Sent(); err == nil && len(sent) == p.Streams {
				rx.endFlows(sent)
			}
			return
		case <-ended:
			return
		case <-limit.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// openFarSenders opens a stream cell whose far end sends: reverse, or with bidir both
// ways (2×p.Streams data paths, the far end's flows on the second half). It returns
// the cell, this side's endpoints and how long the far senders run, warm-up
// included (0 in count mode). The caller ends the cell with Finish, or abandonFar.
func openFarSenders(ctx context.Context, e *runEnv, nw Network, p report.Params, so streamOpts, bidir bool) (FarCell, []Transport, time.Duration, error) {
	what, want := "a reverse stream", p.Streams
	if bidir {
		what, want = "a both-ways stream", 2*p.Streams
	}
	if so.readerBps > 0 || so.oneWay != nil || so.seriesStep > 0 {
		return nil, nil, 0, fmt.Errorf("%s cannot have a paced reader, one-way latency or a time line", what)
	}
	sendFor := time.Duration(p.DurationS * float64(time.Second))
	dur := so.warmup + sendFor
	if p.Count > 0 {
		sendFor, dur = 0, 0
	}
	fc, err := e.openFar(ctx, FarSpec{Experiment: report.ExpStream, Transport: nw.Name(), Size: p.Size, Streams: p.Streams,
		Duration: dur, Run: e.run, Drain: so.drain, Reverse: !bidir, Bidir: bidir, Count: p.Count, SendFor: sendFor, Warmup: so.warmup, RateBps: p.RateBps})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("far end: %w", err)
	}
	ts := fc.Transports()
	if len(ts) != want {
		abandonFar(fc, ts)
		return nil, nil, 0, fmt.Errorf("far end: opened %d data paths, want %d", len(ts), want)
	}
	return fc, ts, dur, nil
}

// abandonFar closes this side's endpoints ts and ends fc's far half, its figures
// unread: a cell that failed before Finish.
func abandonFar(fc FarCell, ts []Transport) {
	for _, t := range ts {
		t.Close()
	}
	fc.Finish(context.Background())
}
