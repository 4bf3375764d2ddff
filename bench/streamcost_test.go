package bench

import (
	"fmt"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// The stream's user-space cost per message, without sockets: what the sender does
// to a batch before handing it to the kernel, and what the receiver does with a
// batch the kernel returned. ns/msg is ns/op divided by the batch's messages.

var streamCostSizes = []int{64, 1400}

const streamCostBatch = 64

// BenchmarkStreamSendBatch is the sender's header building for one batch of
// streamCostBatch messages (one op), as streamTx.send does it before each Send.
func BenchmarkStreamSendBatch(b *testing.B) {
	for _, size := range streamCostSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			e := testEnv(b)
			tx := newStreamTx(e, report.Params{Size: size, Streams: 1}, 0, nil)
			if len(tx.bufs) != streamCostBatch {
				b.Fatalf("batch of %d messages, want %d", len(tx.bufs), streamCostBatch)
			}
			tx.reset()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tx.fill(wire.KindData, streamCostBatch, e.now())
				tx.seq += streamCostBatch
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/streamCostBatch, "ns/msg")
			if _, err := wire.DecodeHeader(tx.out[streamCostBatch-1]); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkStreamRecvBatch is the receiver's accounting of one batch of
// streamCostBatch in-order data messages of one flow (one op), with kernel arrival
// stamps, as streamRx.serve does it after each Recv: decode, payload CRC, sequence,
// jitter, completeness. The messages come from a ring of ringMsgs already in memory
// (as the kernel leaves them), re-numbered with the timer stopped when the ring
// wraps, so every message is new.
func BenchmarkStreamRecvBatch(b *testing.B) {
	for _, size := range streamCostSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			e := testEnv(b)
			p := report.Params{Size: size, Streams: 1}
			ringMsgs := max(streamCostBatch, min(4096, (512<<10)/size/streamCostBatch*streamCostBatch))
			tx := newStreamTx(e, p, 0, nil)
			tx.reset()
			ring := makeBufs(ringMsgs, size)
			for _, m := range ring {
				wire.FillPayload(m[wire.HeaderLen:], e.seed, 0)
			}
			const sendGap, transit = 50, 20_000 // ns: the messages' spacing and time in flight
			var sendNs int64 = 1e9
			restamp := func() {
				for _, m := range ring {
					wire.PutHeader(m, wire.Header{Kind: wire.KindData, Run: e.run, Flow: 0, Len: uint32(size),
						Seq: tx.seq, SendNs: sendNs, PayloadCRC: tx.pcrc})
					tx.seq++
					sendNs += sendGap
				}
			}
			restamp()
			rx := newStreamRx(e, p, "udp")
			flows := make([]*flowRx, p.Streams)
			local := rxTotals{firstSendNs: -1, firstRecvNs: -1}
			local.Memo = &wire.PayloadMemo{} // as serve sets it
			arr := &arrivals{stamps: make([]int64, streamCostBatch)}
			sizes := make([]int, streamCostBatch)
			for i := range sizes {
				sizes[i] = size
			}
			var now int64 = 2e9
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off := i * streamCostBatch % ringMsgs
				if off == 0 && i > 0 {
					b.StopTimer()
					restamp()
					b.StartTimer()
				}
				bufs := ring[off : off+streamCostBatch]
				// Kernel stamps as arrivals.read leaves them: wall-clock ns, offset 0.
				now += streamCostBatch * sendGap
				arr.k = streamCostBatch
				for j := range arr.stamps {
					arr.stamps[j] = now - int64(streamCostBatch-j)*sendGap - transit + int64(j&3)
				}
				for j := range bufs {
					at, kernel := arr.at(j, now)
					rx.account(&local, flows, bufs[j][:sizes[j]], now, at, kernel)
				}
				rx.publish(&local, flows)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/streamCostBatch, "ns/msg")
			c := flows[0].seq.Counts()
			if want := uint64(b.N) * streamCostBatch; c.Unique != want || c.Received != want || local.Corrupt+local.Malformed+local.Foreign != 0 || rx.deliveredNow() != want {
				b.Fatalf("accounted %+v, rejects %+v, delivered %d; want %d unique", c, local.Rejects, rx.deliveredNow(), want)
			}
		})
	}
}
