package bench

import (
	"cmp"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
)

// TestFarBidir: a both-ways stream against the in-process far end, paced at 20
// Mbit/s per direction on loopback: each direction's 2 × 500 messages are received
// once and in order by its own receiver (this host's senders to the far receiver,
// the far senders to this host's), each direction's goodput is its sender's rate,
// and the cell's figures are the two directions' sums.
func TestFarBidir(t *testing.T) {
	far := &loopFar{}
	rep, err := Run(context.Background(), Plan{Far: far, Bidir: true, Experiments: []string{report.ExpStream}, Transports: []string{"tcp", "udp"},
		Sizes: []int{1024}, Streams: 2, RateBps: 20e6, Count: 500, Warmup: 20 * time.Millisecond, Drain: patience, UDPIO: []string{report.IOBatched}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want one bidir stream cell per transport", len(rep.Results))
	}
	for _, r := range rep.Results {
		checkBidir(t, r, 2, 500, 20e6)
	}
	var bidir int
	for _, sp := range far.specs {
		if sp.Bidir {
			bidir++
			if sp.Streams != 2 || sp.Count != 500 || sp.RateBps != 20e6 || sp.Reverse {
				t.Errorf("far end asked for %+v: want bidir, 2 streams each way, count 500, 20 Mbit/s", sp)
			}
		}
	}
	if bidir != 2 {
		t.Errorf("far end asked for %d bidir cells, want 2 (one test per cell)", bidir)
	}
}

// checkBidir checks a paced both-ways cell of streams × count messages per
// direction that lost nothing: each direction exact, the cell their sum. A busy host
// can starve a UDP receiver until its socket drops: then that direction's every lost
// message must be a counted drop, and the rest arrive once, in order.
func checkBidir(t *testing.T, r report.Result, streams int, count uint64, rate float64) {
	t.Helper()
	m, obs := r.Metrics, r.Observed
	t.Logf("bidir %s %d B: sent %d recv %d lost %d goodput %.4g (forward %v, reverse %v), server sockets %d, warnings %q",
		r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, obs["forward_goodput_bps"], obs["reverse_goodput_bps"], m.ServerSockets, r.Warnings)
	if r.Error != "" || !r.Params.Bidir {
		t.Errorf("bidir %s: error %q, params %+v; want a bidir cell", r.Transport, r.Error, r.Params)
		return
	}
	want := uint64(streams) * count
	var lostAll float64
	for _, dir := range []string{"forward", "reverse"} {
		got := map[string]float64{}
		for _, k := range []string{"sent_msgs", "recv_msgs", "lost_msgs", "dup_msgs", "reordered_msgs", "goodput_bps", "send_rate_bps", "msgs_per_s", "recv_interval_s"} {
			v, ok := report.NumAt(obs, dir+"_"+k)
			if !ok {
				t.Errorf("bidir %s: observed %s_%s missing", r.Transport, dir, k)
			}
			got[k] = v
		}
		var lost float64
		if sock, ok := report.NumAt(obs, dir+"_drops_socket"); ok && sock > 0 {
			sender, _ := report.NumAt(obs, dir+"_drops_sender")
			if got["lost_msgs"] != sock+sender {
				t.Errorf("bidir %s %s: lost %v, socket drops %v, sender drops %v: want lost = socket + sender", r.Transport, dir, got["lost_msgs"], sock, sender)
			}
			t.Logf("bidir %s %s: host too busy for a clean run: %v socket drops, all accounted", r.Transport, dir, sock)
			lost = got["lost_msgs"]
			lostAll += lost
		}
		if got["sent_msgs"] != float64(want) || got["recv_msgs"] != float64(want)-lost || got["lost_msgs"] != lost || got["dup_msgs"] != 0 || got["reordered_msgs"] != 0 {
			t.Errorf("bidir %s %s: sent %v recv %v lost %v dup %v reordered %v; want %d sent, %v received once, in order",
				r.Transport, dir, got["sent_msgs"], got["recv_msgs"], got["lost_msgs"], got["dup_msgs"], got["reordered_msgs"], want, float64(want)-lost)
		}
		// Never above the pace; below it only as far as a loaded host falls behind.
		if s := got["send_rate_bps"]; s < 0.5*rate || s > 1.05*rate {
			t.Errorf("bidir %s %s: send rate %.4g, want the paced %.4g: never above it, not half of it", r.Transport, dir, s, rate)
		}
		// Goodput runs from the first arrival to the last on the receiver's clock: a
		// busy host's stall at the first arrival shortens it. Over 400 ms, only a
		// hang could halve it; the ratio (within 10% on an idle host) is logged.
		ratio := got["goodput_bps"] / got["send_rate_bps"]
		t.Logf("bidir %s %s: goodput / sender rate %.3f over %.3f s", r.Transport, dir, ratio, got["recv_interval_s"])
		if !(ratio >= 0.5 && ratio <= 2) {
			t.Errorf("bidir %s %s: goodput %.4g, sender rate %.4g: want them within a factor of 2", r.Transport, dir, got["goodput_bps"], got["send_rate_bps"])
		}
		if mb := got["msgs_per_s"] * float64(r.Params.Size) * 8; math.Abs(mb-got["goodput_bps"]) > 1e-6*got["goodput_bps"] {
			t.Errorf("bidir %s %s: msgs/s × size × 8 = %.6g, goodput %.6g: want equal", r.Transport, dir, mb, got["goodput_bps"])
		}
	}
	if m.SentMsgs != 2*want || m.RecvMsgs != 2*want-uint64(lostAll) || m.LostMsgs != uint64(lostAll) || m.DupMsgs != 0 || m.ReorderedMsgs != 0 {
		t.Errorf("bidir %s: cell sent %d recv %d lost %d dup %d reordered %d; want both directions' %d summed, %v lost",
			r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, 2*want, lostAll)
	}
	for _, k := range []struct {
		key  string
		cell float64
	}{{"goodput_bps", m.GoodputBps}, {"send_rate_bps", m.SendRateBps}, {"msgs_per_s", m.MsgsPerS}} {
		f, _ := report.NumAt(obs, "forward_"+k.key)
		b, _ := report.NumAt(obs, "reverse_"+k.key)
		if math.Abs(k.cell-(f+b)) > 1e-9*k.cell || k.cell == 0 {
			t.Errorf("bidir %s: cell %s %.6g, want forward %.6g + reverse %.6g", r.Transport, k.key, k.cell, f, b)
		}
	}
	if wantBytes := (2*want - uint64(lostAll)) * uint64(r.Params.Size); m.RecvBytes != wantBytes {
		t.Errorf("bidir %s: recv bytes %d, want %d", r.Transport, m.RecvBytes, wantBytes)
	}
	if m.ServerSockets != 2*streams || m.ServerCPUSec == nil {
		t.Errorf("bidir %s: server sockets %d, server CPU %v; want %d sockets (a path per stream each way) and the far end's CPU",
			r.Transport, m.ServerSockets, m.ServerCPUSec, 2*streams)
	}
	if r.Transport == "udp" {
		f, fok := report.NumAt(obs, "forward_drops_socket")
		b, bok := report.NumAt(obs, "reverse_drops_socket")
		if !fok || !bok || m.DropsSocket == nil || float64(*m.DropsSocket) != f+b {
			t.Errorf("bidir udp: socket drops forward %v reverse %v cell %v, want both receivers' counts, summed", obs["forward_drops_socket"], obs["reverse_drops_socket"], deref(m.DropsSocket))
		}
	}
}

// TestBothWays: the cell's figures from two directions' (known answers): counts and
// rates add, extents and intervals take the larger, jitter is the mean over every
// flow, socket drops only when both receivers counted them.
func TestBothWays(t *testing.T) {
	f := report.Metrics{SentMsgs: 10, RecvMsgs: 9, LostMsgs: 1, DupMsgs: 1, ReorderedMsgs: 2, ReorderExtent: 3, SentBytes: 1000, RecvBytes: 800,
		GoodputBps: 100, MsgsPerS: 5, SendRateBps: 120, RecvIntervalS: 2, DrainS: 0.1, DropsSocket: u64p(1), DropsNetwork: u64p(0), JitterKernelMsgs: u64p(4)}
	r := report.Metrics{SentMsgs: 20, RecvMsgs: 20, ReorderExtent: 1, SentBytes: 2000, RecvBytes: 2000,
		GoodputBps: 200, MsgsPerS: 10, SendRateBps: 210, RecvIntervalS: 1.5, DrainS: 0.3, JitterKernelMsgs: u64p(6)}
	fj := rxTotals{jitterSum: 30, jitterFlows: 1} // one flow of 30 ns
	rj := rxTotals{jitterSum: 30, jitterFlows: 2} // two flows of 15 ns each
	m := bothWays(f, r, fj, rj)
	if m.SentMsgs != 30 || m.RecvMsgs != 29 || m.LostMsgs != 1 || m.DupMsgs != 1 || m.ReorderedMsgs != 2 || m.ReorderExtent != 3 ||
		m.SentBytes != 3000 || m.RecvBytes != 2800 {
		t.Errorf("counts %+v, want sums (extent the larger)", m)
	}
	if m.GoodputBps != 300 || m.MsgsPerS != 15 || m.SendRateBps != 330 || m.RecvIntervalS != 2 || m.DrainS != 0.3 {
		t.Errorf("rates %+v, want sums; intervals and drain the larger", m)
	}
	if m.JitterNs == nil || *m.JitterNs != 20 {
		t.Errorf("jitter %v, want 60 ns / 3 flows = 20", m.JitterNs)
	}
	if m.JitterKernelMsgs == nil || *m.JitterKernelMsgs != 10 {
		t.Errorf("jitter kernel msgs %v, want 10", m.JitterKernelMsgs)
	}
	if m.DropsSocket != nil || m.DropsNetwork != nil || m.Retransmits != nil {
		t.Errorf("drops socket %v network %v, retransmits %v: want none, one receiver did not count them", m.DropsSocket, m.DropsNetwork, m.Retransmits)
	}
}

// TestOrderPaths: TCP paths reach a server in any order; the markers put them back
// in the client's, and a marker of another run, or a path named twice, is refused.
func TestOrderPaths(t *testing.T) {
	nw, err := transport.NetworkByName("tcp", transport.NetOptions{NoDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &runEnv{epoch: time.Now(), run: 0xab}
	var cs, ss []transport.Transport
	for range 3 {
		c, s := transporttest.Pair(t, nw)
		cs, ss = append(cs, c), append(ss, s)
	}
	if err := sendPathMarkers(e, cs); err != nil {
		t.Fatal(err)
	}
	shuffled := []transport.Transport{ss[2], ss[0], ss[1]}
	got, err := orderPaths(context.Background(), e.run, 1024, shuffled)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ss {
		if got[i] != ss[i] {
			t.Errorf("path %d: got server end %d, want %d", i, indexOf(ss, got[i]), i)
		}
	}

	if err := sendPathMarkers(&runEnv{epoch: time.Now(), run: 0xcd}, cs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := orderPaths(context.Background(), e.run, 1024, ss[:1]); err == nil || !strings.Contains(err.Error(), "run 0xcd") {
		t.Errorf("orderPaths of another run's marker: %v, want a refusal naming it", err)
	}
	if err := sendPathMarkers(e, cs[:1]); err != nil { // path 0 ...
		t.Fatal(err)
	}
	if err := sendPathMarkers(e, cs[1:2]); err != nil { // ... named twice
		t.Fatal(err)
	}
	if _, err := orderPaths(context.Background(), e.run, 1024, ss[:2]); err == nil || !strings.Contains(err.Error(), "once") {
		t.Errorf("orderPaths with path 0 named twice: %v, want a refusal", err)
	}
}

func indexOf(ts []transport.Transport, t transport.Transport) int {
	for i, x := range ts {
		if x == t {
			return i
		}
	}
	return -1
}

// TestLoopbackReverseBidir: on one host, with no far end, a reverse and a both-ways
// stream run through the same halves a remote run uses, the server half in this
// process (localCell). Known answers: over TCP each direction's 2000 messages arrive
// once and in order, none lost, counted by that direction's receiver; the server
// half's sockets are one per path it sends on (and, both ways, one per TCP stream it
// receives). UDP, paced or not, delivers everything a kernel did not count as
// dropped.
func TestLoopbackReverseBidir(t *testing.T) {
	for _, tc := range []struct {
		name           string
		reverse, bidir bool
		transport      string
		streams        int
		count          uint64
		rate           float64
		sockets        uint64
		io             string // UDP: batched unless set
	}{
		{name: "reverse/tcp", reverse: true, transport: "tcp", streams: 1, count: 2000, sockets: 1},
		{name: "bidir/tcp", bidir: true, transport: "tcp", streams: 1, count: 2000, sockets: 2},
		{name: "reverse/udp", reverse: true, transport: "udp", streams: 2, count: 300, rate: 20e6, sockets: 2},
		{name: "bidir/udp", bidir: true, transport: "udp", streams: 2, count: 300, rate: 20e6, sockets: 3}, // one socket takes both of this host's flows
		// Unpaced, the receivers' sockets overflow: every loss is still a counted drop,
		// since each receiver's drops count from its senders' measured phase.
		{name: "reverse/udp-unpaced", reverse: true, transport: "udp", streams: 1, count: 20000, sockets: 1, io: report.IOTextbook},
		{name: "bidir/udp-unpaced", bidir: true, transport: "udp", streams: 1, count: 20000, sockets: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), Plan{Reverse: tc.reverse, Bidir: tc.bidir, Experiments: []string{report.ExpStream},
				Transports: []string{tc.transport}, Sizes: []int{1024}, Streams: tc.streams, Count: tc.count, RateBps: tc.rate,
				Warmup: 20 * time.Millisecond, Drain: patience, UDPIO: []string{cmp.Or(tc.io, report.IOBatched)}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 1 || rep.Env.Link.Kind != "loopback" {
				t.Fatalf("%d results on a %q link, want one loopback cell", len(rep.Results), rep.Env.Link.Kind)
			}
			r := rep.Results[0]
			m := r.Metrics
			t.Logf("%s: sent %d recv %d lost %d goodput %.4g, server sockets %d, warnings %q", tc.name, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, m.ServerSockets, r.Warnings)
			if r.Error != "" || r.Params.Reverse != tc.reverse || r.Params.Bidir != tc.bidir {
				t.Fatalf("%s: error %q, params %+v", tc.name, r.Error, r.Params)
			}
			if m.ServerSockets != int(tc.sockets) {
				t.Errorf("%s: %d server sockets, want %d", tc.name, m.ServerSockets, tc.sockets)
			}
			want := uint64(tc.streams) * tc.count
			dirs := []string{""}
			if tc.bidir {
				dirs = []string{"forward_", "reverse_"}
			}
			for _, dir := range dirs {
				got := map[string]float64{}
				for _, k := range []string{"sent_msgs", "recv_msgs", "lost_msgs", "dup_msgs", "reordered_msgs", "goodput_bps"} {
					v, ok := report.NumAt(r.Observed, dir+k)
					if dir == "" {
						v, ok = map[string]float64{"sent_msgs": float64(m.SentMsgs), "recv_msgs": float64(m.RecvMsgs), "lost_msgs": float64(m.LostMsgs),
							"dup_msgs": float64(m.DupMsgs), "reordered_msgs": float64(m.ReorderedMsgs), "goodput_bps": m.GoodputBps}[k], true
					}
					if !ok {
						t.Errorf("%s: observed %s%s missing", tc.name, dir, k)
					}
					got[k] = v
				}
				lost := 0.0
				if tc.transport == "udp" {
					lost = got["lost_msgs"] // counted by a kernel, or checked below
					sock, _ := report.NumAt(r.Observed, dir+"drops_socket")
					if dir == "" && m.DropsSocket != nil {
						sock = float64(*m.DropsSocket)
					}
					sender, _ := report.NumAt(r.Observed, dir+"drops_sender")
					if dir == "" {
						sender = float64(m.DropsSender)
					}
					if lost != sock+sender {
						t.Errorf("%s %s: lost %v, socket drops %v, sender drops %v: want every lost message a counted drop", tc.name, dir, lost, sock, sender)
					}
				}
				if got["sent_msgs"] != float64(want) || got["recv_msgs"] != float64(want)-lost || got["dup_msgs"] != 0 || got["reordered_msgs"] != 0 || (got["goodput_bps"] > 0) != (got["recv_msgs"] > 0) {
					// An unpaced direction may deliver nothing at all: on a loaded host its
					// receiver can miss the whole warm-up, whose datagrams then fill the
					// socket and every measured one is a counted drop (checked above).
					t.Errorf("%s %s: sent %v recv %v lost %v dup %v reordered %v goodput %v; want %d sent, %v received once, in order",
						tc.name, dir, got["sent_msgs"], got["recv_msgs"], got["lost_msgs"], got["dup_msgs"], got["reordered_msgs"], got["goodput_bps"], want, float64(want)-lost)
				}
			}
			if tc.bidir && (m.SentMsgs != 2*want || m.RecvMsgs+m.LostMsgs != 2*want) {
				t.Errorf("%s: cell sent %d recv %d lost %d; want both directions' %d summed", tc.name, m.SentMsgs, m.RecvMsgs, m.LostMsgs, 2*want)
			}
		})
	}
}
