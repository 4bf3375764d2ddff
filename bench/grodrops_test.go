package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// gapMsgs builds the intact data messages seq first..first+n-1 of flow, size bytes
// each, of run.
func gapMsgs(run uint64, kind wire.Kind, flow uint32, first uint64, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		m := make([]byte, size)
		wire.FillPayload(m[wire.HeaderLen:], 7, flow)
		wire.PutHeader(m, wire.Header{Kind: kind, Run: run, Flow: flow, Len: uint32(size), Seq: first + uint64(i), PayloadCRC: wire.PayloadCRC(m[wire.HeaderLen:])})
		out[i] = m
	}
	return out
}

// TestGroGapsKnownAnswers: the holes a GRO receiver's socket made, from packets of
// known sequence numbers and drop counters (grodrops.go's definition): a hole counts
// when the counter advanced across it, a flow's tail when it advanced after the
// flow's last packet; holes the counter did not cross are not the socket's.
func TestGroGapsKnownAnswers(t *testing.T) {
	const run = 99
	type pkt struct {
		kind  wire.Kind
		flow  uint32
		first uint64
		n     int
		drops uint32
		bad   int // 1: the first datagram is corrupt; 2: the last is
	}
	for _, tc := range []struct {
		name  string
		base  uint32
		pkts  []pkt
		sent  []int64
		final uint32
		want  uint64
	}{
		{"none lost", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 64, 64, 0, 0}}, []int64{128}, 0, 0},
		{"one super-packet dropped", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 128, 64, 1, 0}}, []int64{192}, 1, 64},
		{"counter up by 2 across one hole", 0, []pkt{{wire.KindData, 0, 0, 46, 0, 0}, {wire.KindData, 0, 64, 46, 2, 0}}, []int64{110}, 2, 18},
		{"a network hole", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 70, 58, 0, 0}}, []int64{128}, 0, 0},
		{"a hole inside a packet is the network's", 0, []pkt{{wire.KindData, 0, 0, 10, 0, 0}}, []int64{10}, 0, 0},
		{"tail dropped", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}}, []int64{192}, 2, 128},
		{"tail lost elsewhere", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}}, []int64{100}, 0, 0},
		{"tail unknown", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}}, []int64{-1}, 2, 0},
		{"first data dropped", 5, []pkt{{wire.KindData, 0, 64, 64, 6, 0}}, []int64{128}, 6, 64},
		{"warm-up drops before data", 0, []pkt{{wire.KindWarmup, 0, 0, 64, 0, 0}, {wire.KindWarmup, 0, 128, 64, 1, 0}, {wire.KindData, 0, 0, 64, 1, 0}}, []int64{64}, 1, 0},
		{"other flow's drop", 0, []pkt{
			{wire.KindData, 0, 0, 10, 0, 0}, {wire.KindData, 1, 0, 10, 0, 0}, {wire.KindData, 1, 20, 10, 1, 0}, {wire.KindData, 0, 10, 10, 1, 0},
		}, []int64{20, 30}, 1, 10},
		{"counter wraps", 0xfffffffe, []pkt{{wire.KindData, 0, 0, 64, 0xfffffffe, 0}, {wire.KindData, 0, 128, 64, 1, 0}}, []int64{192}, 1, 64},
		{"an older counter is no advance", 3, []pkt{{wire.KindData, 0, 0, 64, 3, 0}, {wire.KindData, 0, 64, 64, 2, 0}, {wire.KindData, 0, 200, 8, 3, 0}}, []int64{208}, 3, 0},
		{"a count read after the drops behind the packet", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 64, 64, 5, 0}, {wire.KindData, 0, 448, 64, 5, 0}}, []int64{512}, 5, 320},
		{"a path hole one packet after a socket hole counts as the socket's", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 128, 64, 1, 0}, {wire.KindData, 0, 200, 64, 1, 0}}, []int64{264}, 1, 64 + 8},
		{"a path hole two packets after is the path's", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 128, 64, 1, 0}, {wire.KindData, 0, 192, 64, 1, 0}, {wire.KindData, 0, 260, 4, 1, 0}}, []int64{264}, 1, 64},
		{"corrupt first datagram: packet skipped", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 0}, {wire.KindData, 0, 64, 64, 0, 1}, {wire.KindData, 0, 128, 64, 0, 0}}, []int64{192}, 0, 0},
		{"corrupt last datagram: packet counted", 0, []pkt{{wire.KindData, 0, 0, 64, 0, 2}, {wire.KindData, 0, 128, 64, 1, 0}}, []int64{192}, 1, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &groGaps{run: run, flows: make([]gapFlow, len(tc.sent))}
			for i := range g.flows {
				g.flows[i].last, g.flows[i].before = tc.base, tc.base
			}
			for _, p := range tc.pkts {
				msgs := gapMsgs(run, p.kind, p.flow, p.first, p.n, 64)
				switch p.bad {
				case 1:
					msgs[0][wire.HeaderLen] ^= 1
					msgs[0][30] ^= 1 // the header's seq: its CRC fails
				case 2:
					msgs[p.n-1][30] ^= 1
				}
				g.packets(msgs, []udp.Packet{{Datagrams: p.n, Drops: p.drops}})
			}
			g.final, g.finalOK = tc.final, true
			if got := g.dropped(tc.sent); got != tc.want {
				t.Errorf("packets %+v, sent %v, final counter %d: socket dropped %d datagrams, want %d", tc.pkts, tc.sent, tc.final, got, tc.want)
			}
		})
	}
}

// TestStreamOffloadModes: a UDP stream of known count, paced so that nothing need
// drop, in both receive modes: with the offloads (GSO senders, a GRO receiver taking
// views) and with --no-gso (one datagram per packet). Every message arrives once,
// in order; whatever a loaded host dropped is the socket's, exactly; the GRO
// receiver reports the kernel's packet count beside drops_socket, the other none.
func TestStreamOffloadModes(t *testing.T) {
	for _, noGSO := range []bool{false, true} {
		for _, size := range []int{64, 1400} {
			t.Run(fmt.Sprintf("no-gso=%v/size=%d", noGSO, size), func(t *testing.T) {
				const count = 64 * 50
				e := testEnv(t)
				e.drain = patience
				nw := mustNetwork(t, "udp", transport.NetOptions{NoGSO: noGSO, RecvBuffer: 4 << 20})
				m, _, err := runStream(context.Background(), e, nw, report.Params{Size: size, Streams: 2, Count: count, RateBps: 100e6})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("sent %d recv %d lost %d dup %d reord %d corrupt %d drops socket %v (packets %v) sender %d network %v",
					m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.CorruptMsgs, deref(m.DropsSocket), deref(m.DropsSocketPackets), m.DropsSender, deref(m.DropsNetwork))
				if m.SentMsgs != 2*count || m.RecvMsgs+m.LostMsgs != 2*count || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.CorruptMsgs != 0 || m.MalformedMsgs != 0 {
					t.Fatalf("want %d sent, each received once or lost", 2*count)
				}
				if m.DropsSocket == nil || m.LostMsgs != *m.DropsSocket+m.DropsSender || m.DropsNetwork == nil || *m.DropsNetwork != 0 {
					t.Errorf("lost %d, want drops_socket + drops_sender, nothing in the network", m.LostMsgs)
				}
				if gro := m.DropsSocketPackets != nil; gro == noGSO {
					t.Errorf("drops_socket_packets %v with no-gso %v: want it exactly when the receiver takes GRO super-packets", deref(m.DropsSocketPackets), noGSO)
				}
			})
		}
	}
}

// TestStreamGROCorruptInSuperPacket: one GSO send of 64 messages to a GRO receiver
// arrives as one super-packet, and every datagram in it is checked on its own: with
// the payload of message 30 corrupted (its CRC no longer matches), the receiver
// counts 1 corrupt and 63 intact, and no socket drop for the one missing. With the
// first message's header corrupted instead, the packet's sequence is unknown to the
// hole-finder, and still nothing is called a socket drop.
func TestStreamGROCorruptInSuperPacket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt int
		header  bool
	}{
		{"payload in the middle", 30, false},
		{"header of the first", 0, true},
		{"payload of the last", 63, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEnv(t)
			p := report.Params{Size: 256, Streams: 1}
			rx := newStreamRx(e, p, "udp")
			srv, err := udp.Listen(t.Context(), "127.0.0.1:0", udp.Options{GRO: true, RecvBuffer: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if _, gro := srv.Offload(); !gro {
				t.Skip("no UDP GRO here")
			}
			cli, err := udp.Dial(t.Context(), srv.LocalAddr().String(), udp.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if gso, _ := cli.Offload(); !gso {
				t.Skip("no UDP GSO here")
			}
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			var serr error
			wg.Go(func() { serr = rx.serve(ctx, srv) })
			msgs := gapMsgs(e.run, wire.KindData, 0, 0, 64, p.Size)
			if tc.header {
				msgs[tc.corrupt][30] ^= 0x40
			} else {
				msgs[tc.corrupt][p.Size-1] ^= 0x40
			}
			if n, err := cli.Send(msgs); n != 64 || err != nil {
				t.Fatalf("Send = %d, %v", n, err)
			}
			rx.endFlows([]uint64{64})
			ok := waitfor.Cond(patience, func() bool { return rx.uniqueOf[0].Load() == 63 })
			rx.readFinalDrops()
			cancel()
			wg.Wait()
			if serr != nil {
				t.Fatal(serr)
			}
			if !ok {
				t.Fatalf("unique %d after %v, want 63", rx.uniqueOf[0].Load(), patience)
			}
			tot := rx.totals()
			drops, pkts := rx.datagramDrops(0)
			t.Logf("received %d unique %d corrupt %d; socket drops %d datagrams (%v packets)", tot.received, tot.unique, tot.Corrupt, drops, deref(pkts))
			if tot.unique != 63 || tot.received != 63 || tot.Corrupt != 1 || tot.dups != 0 || tot.reordered != 0 {
				t.Errorf("received %d, unique %d, corrupt %d, dups %d, reordered %d; want 63, 63, 1, 0, 0", tot.received, tot.unique, tot.Corrupt, tot.dups, tot.reordered)
			}
			if pkts == nil || drops != 0 {
				t.Errorf("socket drops %d datagrams (packets %v): want the GRO receiver's 0", drops, deref(pkts))
			}
		})
	}
}

// TestStreamGROReceiveAllocs pins a GRO stream receiver's hot path at 0
// allocations per message: RecvViews, accounting each view, following the holes.
func TestStreamGROReceiveAllocs(t *testing.T) {
	for _, size := range []int{64, 1400} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			e := testEnv(t)
			p := report.Params{Size: size, Streams: 1}
			rx := newStreamRx(e, p, "udp")
			srv, err := udp.Listen(t.Context(), "127.0.0.1:0", udp.Options{GRO: true, RecvBuffer: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := udp.Dial(t.Context(), srv.LocalAddr().String(), udp.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if err := srv.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			views, pk := make([][]byte, 64*groViews), make([]udp.Packet, 64*groViews)
			gaps := newGroGaps(srv, e.run, 1)
			flows := make([]*flowRx, 1)
			var local rxTotals
			msgs := gapMsgs(e.run, wire.KindData, 0, 0, 64, size)
			seq := uint64(0)
			var failed error
			allocs := testing.AllocsPerRun(100, func() {
				for i, m := range msgs {
					wire.PutHeader(m, wire.Header{Kind: wire.KindData, Run: e.run, Flow: 0, Len: uint32(size), Seq: seq + uint64(i), PayloadCRC: wire.PayloadCRC(m[wire.HeaderLen:])})
				}
				seq += uint64(len(msgs))
				if n, err := cli.Send(msgs); n != len(msgs) || err != nil {
					failed = fmt.Errorf("Send = %d, %v", n, err)
					return
				}
				for got := 0; got < len(msgs); {
					n, np, err := srv.RecvViews(views, pk)
					if err != nil {
						failed = err
						return
					}
					for _, v := range views[:n] {
						rx.account(&local, flows, v, 1, 1, false)
					}
					gaps.packets(views[:n], pk[:np])
					got += n
				}
			})
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("a GRO stream receive of %d messages: %v allocations, want 0", len(msgs), allocs)
			}
			if c := flows[0].seq.Counts(); c.Unique != seq || local.Corrupt != 0 {
				t.Errorf("unique %d corrupt %d, want %d 0", c.Unique, local.Corrupt, seq)
			}
		})
	}
}
