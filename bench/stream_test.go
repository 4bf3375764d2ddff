package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// sendLog wraps a real transport and records, for each Send, the headers of the
// messages the transport accepted.
type sendLog struct {
	transport.Transport
	calls [][]wire.Header
}

func (s *sendLog) Send(msgs [][]byte) (int, error) {
	hs := make([]wire.Header, len(msgs))
	for i, m := range msgs {
		h, err := wire.DecodeHeader(m)
		if err != nil {
			return 0, fmt.Errorf("message %d handed to Send: %w", i, err)
		}
		hs[i] = h
	}
	n, err := s.Transport.Send(msgs)
	s.calls = append(s.calls, hs[:n])
	return n, err
}

// TestStreamSendTimePerBatch: every message handed to the kernel in one Send
// carries one send time, the batch's, read once before the batch was written; send
// times rise from batch to batch, lie within the send phase, and reach the
// receiver as sent. 150 messages in batches of 64: at least three Sends.
func TestStreamSendTimePerBatch(t *testing.T) {
	const count, size = 150, 64
	for _, name := range []string{"udp", "tcp"} {
		t.Run(name, func(t *testing.T) {
			client, server := transporttest.Pair(t, mustNetwork(t, name, transport.NetOptions{NoDelay: true}))
			e := testEnv(t)
			log := &sendLog{Transport: client}
			tx := newStreamTx(e, report.Params{Size: size, Streams: 1}, 0, log)
			tx.reset()
			before := e.now()
			if err := tx.send(context.Background(), wire.KindData, count, time.Time{}); err != nil {
				t.Fatal(err)
			}
			after := e.now()

			sendNs := map[uint64]int64{} // by seq
			var next uint64
			prev := before
			for i, call := range log.calls {
				for j, h := range call {
					if h.Seq != next || h.Kind != wire.KindData {
						t.Fatalf("send %d message %d: %v seq %d, want data seq %d", i, j, h.Kind, h.Seq, next)
					}
					next++
					if h.SendNs != call[0].SendNs {
						t.Fatalf("send %d: message %d (seq %d) sent at %d ns, message 0 at %d ns: want one send time per batch",
							i, j, h.Seq, h.SendNs, call[0].SendNs)
					}
					sendNs[h.Seq] = h.SendNs
				}
				if len(call) > 0 {
					if call[0].SendNs < prev {
						t.Fatalf("send %d at %d ns, before the previous batch or the phase (%d ns)", i, call[0].SendNs, prev)
					}
					prev = call[0].SendNs
				}
			}
			if next != count || len(log.calls) < 3 {
				t.Fatalf("%d messages in %d Sends, want %d in at least 3", next, len(log.calls), count)
			}
			if prev > after || tx.firstNs != log.calls[0][0].SendNs || tx.lastNs < prev || tx.lastNs > after {
				t.Fatalf("phase %d..%d ns: last batch sent at %d ns, firstNs %d (want the first batch's %d), lastNs %d",
					before, after, prev, tx.firstNs, log.calls[0][0].SendNs, tx.lastNs)
			}
			for _, m := range transporttest.RecvN(t, server, count, size) {
				h, err := wire.DecodeHeader(m)
				if err != nil {
					t.Fatal(err)
				}
				if h.SendNs != sendNs[h.Seq] {
					t.Fatalf("seq %d arrived with send time %d ns, was sent with %d ns", h.Seq, h.SendNs, sendNs[h.Seq])
				}
			}
		})
	}
}

// dataMsg returns a valid data message of flow and seq for run, size bytes.
func dataMsg(run uint64, flow uint32, seq uint64, size int) []byte {
	m := make([]byte, size)
	wire.FillPayload(m[wire.HeaderLen:], 1, flow)
	wire.PutHeader(m, wire.Header{Kind: wire.KindData, Run: run, Flow: flow, Len: uint32(size), Seq: seq, SendNs: int64(seq), PayloadCRC: wire.PayloadCRC(m[wire.HeaderLen:])})
	return m
}

// TestStreamPublish: the receiver's unique counts reach the completeness check and
// the series once per Recv (publish), and a flow is complete exactly when its
// unique count reaches the count its sender reported, whichever comes first.
func TestStreamPublish(t *testing.T) {
	e := testEnv(t)
	rx := newStreamRx(e, report.Params{Size: 64, Streams: 2}, "udp")
	flows := make([]*flowRx, 2)
	local := rxTotals{firstSendNs: -1, firstRecvNs: -1}
	recv := func(msgs ...[]byte) {
		for _, m := range msgs {
			rx.account(&local, flows, m, 1, 1, false)
		}
		rx.publish(&local, flows)
	}
	isDone := func() bool {
		select {
		case <-rx.done:
			return true
		default:
			return false
		}
	}
	m := func(flow uint32, seq uint64) []byte { return dataMsg(e.run, flow, seq, 64) }

	for _, msg := range [][]byte{m(0, 0), m(0, 2), m(0, 2), m(1, 0)} {
		rx.account(&local, flows, msg, 1, 1, false)
	}
	if got := rx.deliveredNow(); got != 0 {
		t.Fatalf("before publish: delivered %d, want 0", got)
	}
	rx.publish(&local, flows)
	if got := rx.deliveredNow(); got != 3 {
		t.Fatalf("after publish: delivered %d, want 3 (a duplicate is not delivered)", got)
	}
	rx.endFlows([]uint64{3, 2}) // flow 0 sent 0..2 and lacks 1; flow 1 sent 0..1 and lacks 1
	if c := rx.complete.Load(); c != 0 || isDone() {
		t.Fatalf("complete %d, done %v; want 0 flows, not done", c, isDone())
	}
	recv(m(0, 1))
	if c := rx.complete.Load(); c != 1 || isDone() {
		t.Fatalf("flow 0 whole: complete %d, done %v; want 1 flow, not done", c, isDone())
	}
	recv(m(1, 1), m(1, 1))
	if c := rx.complete.Load(); c != 2 || !isDone() {
		t.Fatalf("both flows whole: complete %d, done %v; want 2 flows, done", c, isDone())
	}
	if got := rx.deliveredNow(); got != 5 {
		t.Fatalf("delivered %d, want 5", got)
	}
}

// TestStreamCompleteRace: however the end of stream (endFlows) and the last
// publish interleave, the flow is seen complete.
func TestStreamCompleteRace(t *testing.T) {
	const rounds, count = 300, 8
	e := testEnv(t)
	msgs := make([][]byte, count)
	for i := range msgs {
		msgs[i] = dataMsg(e.run, 0, uint64(i), 64)
	}
	for r := range rounds {
		rx := newStreamRx(e, report.Params{Size: 64, Streams: 1}, "udp")
		flows := make([]*flowRx, 1)
		local := rxTotals{firstSendNs: -1, firstRecvNs: -1}
		var wg sync.WaitGroup
		wg.Go(func() {
			for i, m := range msgs {
				rx.account(&local, flows, m, 1, 1, false)
				if i%3 == 2 || i == len(msgs)-1 {
					rx.publish(&local, flows)
				}
			}
		})
		wg.Go(func() { rx.endFlows([]uint64{count}) })
		wg.Wait()
		select {
		case <-rx.done:
		default:
			t.Fatalf("round %d: %d of %d messages delivered and the end known, but the flow is not complete", r, rx.deliveredNow(), count)
		}
	}
}

// TestStreamHotPathAllocs: the sender's header writing and the receiver's
// accounting take no allocation per message once running.
func TestStreamHotPathAllocs(t *testing.T) {
	e := testEnv(t)
	p := report.Params{Size: 64, Streams: 1}
	tx := newStreamTx(e, p, 0, nil)
	tx.reset()
	tx.fill(wire.KindData, len(tx.bufs), e.now())
	if a := testing.AllocsPerRun(1000, func() {
		tx.fill(wire.KindData, len(tx.bufs), e.now())
		tx.seq += uint64(len(tx.bufs))
	}); a != 0 {
		t.Errorf("streamTx.fill: %v allocations per batch, want 0", a)
	}

	rx := newStreamRx(e, p, "udp")
	flows := make([]*flowRx, 1)
	local := rxTotals{firstSendNs: -1, firstRecvNs: -1}
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = dataMsg(e.run, 0, uint64(i), 64)
	}
	var seq uint64
	batch := func() {
		for _, m := range msgs {
			wire.PutHeader(m, wire.Header{Kind: wire.KindData, Run: e.run, Flow: 0, Len: 64, Seq: seq, SendNs: int64(seq), PayloadCRC: wire.PayloadCRC(m[wire.HeaderLen:])})
			seq++
			rx.account(&local, flows, m, int64(seq), int64(seq), true)
		}
		rx.publish(&local, flows)
	}
	batch()
	if a := testing.AllocsPerRun(100, batch); a != 0 {
		t.Errorf("streamRx.account and publish: %v allocations per batch of 64, want 0", a)
	}
}

// TestStreamServeCompletes: a receiver serving a real endpoint sees the flow
// complete once every message it was told of has arrived, over each transport;
// nothing else (no drain deadline, no quiet spell) is waited for.
func TestStreamServeCompletes(t *testing.T) {
	const count, size = 1000, 256
	for _, name := range []string{"udp", "tcp"} {
		t.Run(name, func(t *testing.T) {
			client, server := transporttest.Pair(t, mustNetwork(t, name, transport.NetOptions{NoDelay: true, RecvBuffer: 1 << 20}))
			e := testEnv(t)
			p := report.Params{Size: size, Streams: 1, RateBps: 20e6} // paced, and a large buffer: nothing for a loopback socket to drop
			rx := newStreamRx(e, p, name)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- rx.serve(ctx, server) }()
			defer func() {
				cancel()
				if err := <-served; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			tx := newStreamTx(e, p, 0, client)
			tx.reset()
			if err := tx.send(ctx, wire.KindData, count, time.Time{}); err != nil {
				t.Fatal(err)
			}
			rx.endFlows([]uint64{tx.sent})
			waitfor.True(t, patience, "flow complete", func() bool {
				select {
				case <-rx.done:
					return true
				default:
					return false
				}
			})
			if got := rx.deliveredNow(); got != count {
				t.Fatalf("delivered %d, want %d", got, count)
			}
		})
	}
}

// runStream runs a stream cell as the stream experiment does, and returns its
// metrics and warnings.
func runStream(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (report.Metrics, []string, error) {
	o, err := streamCell(ctx, e, nw, p, streamOpts{warmup: e.warmup, drain: e.drain})
	return o.m, o.warns, err
}
