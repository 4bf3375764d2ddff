package bench

import (
	"cmp"
	"context"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
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

// serveStreamTx is the sending half of a stream cell whose server sends (reverse,
// bidir), on e's clock, run id and payload: the far end's own (ServeStream), or the
// client's when the server half runs in its process (localCell). One flow per
// endpoint in ts, spec.Warmup of warm-up, then spec.Count messages per flow or
// spec.SendFor of them, paced to spec.RateBps over all flows; it returns what the
// senders did. measuring (if set) is called as the measured phase starts, after the
// warm-up. When they are done, ended (if set) gets each flow's count, by flow: the
// client's receiver learns the end of the stream from it, beside the data path.
func serveStreamTx(ctx context.Context, e *runEnv, spec FarSpec, ts []transport.Transport, ended func(sent []uint64), measuring func()) (FarResult, error) {
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
	if measuring != nil {
		measuring()
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
