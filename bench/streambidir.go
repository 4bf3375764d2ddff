package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// A both-ways stream (Plan.Bidir, like iperf3 --bidir) is one cell with 2×Streams
// data paths to its server half (openStreamPeer): the first Streams carry this host's
// flows to the server's receiver, the last Streams the server's senders' flows to
// this host's receiver, whether the server half runs at a far end or in this
// process. Both
// directions run at once, each paced to the cell's rate (RateBps is per direction),
// each counted by its own receiver exactly as a forward or a reverse stream is
// (streamMetrics). The cell's Metrics are the two directions together; Observed
// keeps each apart, prefixed forward_ and reverse_.
//
// Path order at a far end: UDP paths are in the server's port order on both sides,
// but TCP connections reach the server in the order their tokens were read, which
// need not be the order they were dialled. So on TCP this host first sends one header-only
// KindWarmup message on every path, its flow id the path's index here, and the far
// end orders its paths by it (orderPaths) before anything else crosses them.

// pathMarkerWait bounds the far end's wait for the path markers.
const pathMarkerWait = 5 * time.Second

// sendPathMarkers sends on each of ts its index, as a header-only KindWarmup
// message of run e.run whose flow id is the index.
func sendPathMarkers(e *runEnv, ts []transport.Transport) error {
	m := make([]byte, wire.HeaderLen)
	crc := wire.PayloadCRC(nil)
	for i, t := range ts {
		wire.PutHeader(m, wire.Header{Kind: wire.KindWarmup, Run: e.run, Flow: uint32(i), Len: wire.HeaderLen, SendNs: e.now(), PayloadCRC: crc})
		if _, err := t.Send([][]byte{m}); err != nil {
			return fmt.Errorf("data path %d: sending its path marker: %w", i, err)
		}
	}
	return nil
}

// orderPaths reads the path marker sendPathMarkers sent first on each of ts and
// returns ts in the sender's order. Every marker must arrive within pathMarkerWait,
// name run, and name each index below len(ts) once.
func orderPaths(ctx context.Context, run uint64, size int, ts []transport.Transport) ([]transport.Transport, error) {
	out := make([]transport.Transport, len(ts))
	bufs, sizes := [][]byte{make([]byte, max(size, wire.HeaderLen))}, []int{0}
	deadline := time.Now().Add(pathMarkerWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for i, t := range ts {
		if err := t.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		n, err := 0, error(nil)
		for n == 0 && err == nil && time.Now().Before(deadline) {
			n, err = t.Recv(bufs, sizes)
		}
		if n == 0 {
			return nil, fmt.Errorf("data path %d: no path marker within %v: %w", i, pathMarkerWait, cmp.Or(err, errors.New("nothing arrived")))
		}
		h, err := wire.DecodeHeader(bufs[0][:sizes[0]])
		if err != nil {
			return nil, fmt.Errorf("data path %d: path marker: %w", i, err)
		}
		if h.Kind != wire.KindWarmup || h.Run != run || int64(h.Flow) >= int64(len(ts)) || out[h.Flow] != nil {
			return nil, fmt.Errorf("data path %d: path marker %s of run %#x for path %d: want a warmup marker of run %#x naming one of paths 0..%d once",
				i, h.Kind, h.Run, h.Flow, run, len(ts)-1)
		}
		out[h.Flow] = t
	}
	for _, t := range ts {
		t.SetReadDeadline(time.Time{}) // the receiver and senders set their own
	}
	return out, nil
}

// directionObserved puts one direction's figures into obs, each key prefixed:
// enough to check the cell's sums (bothWays) and each direction's goodput against
// its sender's rate. obs of streamMetrics (the senders' time in Send) follow,
// prefixed too.
func directionObserved(obs map[string]any, prefix string, m report.Metrics, dirObs map[string]any) {
	obs[prefix+"goodput_bps"] = m.GoodputBps
	obs[prefix+"msgs_per_s"] = m.MsgsPerS
	obs[prefix+"send_rate_bps"] = m.SendRateBps
	obs[prefix+"recv_interval_s"] = m.RecvIntervalS
	obs[prefix+"sent_msgs"] = m.SentMsgs
	obs[prefix+"recv_msgs"] = m.RecvMsgs
	obs[prefix+"lost_msgs"] = m.LostMsgs
	obs[prefix+"dup_msgs"] = m.DupMsgs
	obs[prefix+"reordered_msgs"] = m.ReorderedMsgs
	obs[prefix+"drops_sender"] = m.DropsSender
	if m.DropsSocket != nil {
		obs[prefix+"drops_socket"] = *m.DropsSocket
	}
	if m.JitterNs != nil {
		obs[prefix+"jitter_ns"] = *m.JitterNs
	}
	for k, v := range dirObs {
		obs[prefix+k] = v
	}
}

// bothWays is a both-ways cell's Metrics from its two directions': counts and bytes
// add up, and so do goodput, msgs/s and the send rates (both directions ran at once,
// each rate over its own interval: the sum is what crossed the link both ways);
// the reorder extent, intervals and drain are the larger; jitter is the mean over
// the flows of both directions, as one direction's is over its flows (fj, rj: the
// receivers' totals). Socket and network drops are there only when both receivers
// could count them. Retransmits are left out: only this host's senders' are known.
func bothWays(f, r report.Metrics, fj, rj rxTotals) report.Metrics {
	m := report.Metrics{
		SentMsgs: f.SentMsgs + r.SentMsgs, RecvMsgs: f.RecvMsgs + r.RecvMsgs, LostMsgs: f.LostMsgs + r.LostMsgs,
		DupMsgs: f.DupMsgs + r.DupMsgs, ReorderedMsgs: f.ReorderedMsgs + r.ReorderedMsgs,
		ReorderExtent: max(f.ReorderExtent, r.ReorderExtent),
		CorruptMsgs:   f.CorruptMsgs + r.CorruptMsgs, MalformedMsgs: f.MalformedMsgs + r.MalformedMsgs, ForeignMsgs: f.ForeignMsgs + r.ForeignMsgs,
		SentBytes: f.SentBytes + r.SentBytes, RecvBytes: f.RecvBytes + r.RecvBytes,
		GoodputBps: f.GoodputBps + r.GoodputBps, MsgsPerS: f.MsgsPerS + r.MsgsPerS,
		SendRateBps: f.SendRateBps + r.SendRateBps, SendMsgsPerS: f.SendMsgsPerS + r.SendMsgsPerS,
		RecvIntervalS: max(f.RecvIntervalS, r.RecvIntervalS), SendIntervalS: max(f.SendIntervalS, r.SendIntervalS),
		DrainS:      max(f.DrainS, r.DrainS),
		DropsSender: f.DropsSender + r.DropsSender,
	}
	if flows := fj.jitterFlows + rj.jitterFlows; flows > 0 {
		m.JitterNs = f64p((fj.jitterSum + rj.jitterSum) / float64(flows))
	}
	if f.JitterKernelMsgs != nil && r.JitterKernelMsgs != nil {
		m.JitterKernelMsgs = u64p(*f.JitterKernelMsgs + *r.JitterKernelMsgs)
	}
	if f.DropsSocket != nil && r.DropsSocket != nil {
		m.DropsSocket = u64p(*f.DropsSocket + *r.DropsSocket)
	}
	if f.DropsSocketPackets != nil && r.DropsSocketPackets != nil {
		m.DropsSocketPackets = u64p(*f.DropsSocketPackets + *r.DropsSocketPackets)
	}
	if f.DropsNetwork != nil && r.DropsNetwork != nil {
		m.DropsNetwork = u64p(*f.DropsNetwork + *r.DropsNetwork)
	}
	return m
}
