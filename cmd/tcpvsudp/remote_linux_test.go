package main

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRunServerTwoHosts: 'tcpvsudp serve' in one namespace, 'tcpvsudp run --server'
// in another, joined by a veth pair: stream and pingpong cross a real link between
// two network stacks, and the report is the loopback report's shape with a remote
// link.
func TestRunServerTwoHosts(t *testing.T) {
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	// --timeout: a pingpong request is lost only if unanswered for that long, not
	// when a loaded machine delays it past the default 200 ms.
	rep := runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream,pingpong", "--count", "500", "--rate", "20M", "--sizes", "64,1024", "--warmup", "20ms", "--timeout", lossTimeout)

	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != addr {
		t.Errorf("link %+v, want remote %s", rep.Env.Link, addr)
	}
	if len(rep.Results) != 10 {
		t.Fatalf("%d results, want stream and pingpong × tcp, udp × 64, 1024 B, and UDP streams in textbook I/O too", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		var p50 time.Duration
		if m.RTT != nil && m.RTT.P50 != nil {
			p50 = time.Duration(*m.RTT.P50)
		}
		t.Logf("%s %s %d B across the veth pair: sent %d, recv %d, lost %d, goodput %.4g, RTT p50 %v, server sockets %d",
			r.Experiment, r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, p50, m.ServerSockets)
		if r.Error != "" {
			t.Errorf("%s %s %d B: %s", r.Experiment, r.Transport, r.Params.Size, r.Error)
			continue
		}
		switch r.Experiment {
		case report.ExpPingPong:
			if m.SentMsgs != 500 || m.RecvMsgs+m.LostMsgs != 500 || m.RecvMsgs < 495 || m.ServerSockets != 1 {
				t.Errorf("pingpong %s %d B: sent %d, recv %d, lost %d, server sockets %d; want 500 answered by one server socket",
					r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			}
		case report.ExpStream:
			// Paced at 20 Mbit/s across a veth pair: the known answer is exact.
			if !deliveredOrCounted(m, 500) || m.ServerSockets != 1 {
				t.Errorf("stream %s %d B: sent %d, recv %d, lost %d (kernel drops: socket %v, sender %d), dup %d, reordered %d, server sockets %d; want 500 received once, in order, or dropped and counted by a kernel",
					r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets)
			}
		}
	}

	// The other way: the server's senders, this host's receiver.
	rep = runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream", "--reverse", "--count", "500", "--rate", "20M", "--sizes", "1024", "--warmup", "20ms")
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("reverse stream %s across the veth pair: sent %d, recv %d, lost %d, goodput %.4g", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps)
		if r.Error != "" || !r.Params.Reverse || !deliveredOrCounted(m, 500) {
			t.Errorf("reverse stream %s: error %q, reverse %v, sent %d, recv %d, lost %d (kernel drops: socket %v, sender %d), dup %d, reordered %d; want the server's 500 received once, in order, or dropped and counted by a kernel",
				r.Transport, r.Error, r.Params.Reverse, m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, m.DupMsgs, m.ReorderedMsgs)
		}
	}

	// Both ways at once: this host's sender to the server's receiver, the server's
	// sender to this host's receiver, each direction 500 messages received once.
	rep = runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream", "--bidir", "--count", "500", "--rate", "20M", "--sizes", "1024", "--warmup", "20ms", "--udp-io", "batched")
	if len(rep.Results) != 2 {
		t.Fatalf("bidir: %d results, want one cell per transport", len(rep.Results))
	}
	for _, r := range rep.Results {
		m, obs := r.Metrics, r.Observed
		t.Logf("bidir stream %s across the veth pair: sent %d, recv %d, lost %d, goodput %.4g (forward %v, reverse %v), server sockets %d",
			r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, obs["forward_goodput_bps"], obs["reverse_goodput_bps"], m.ServerSockets)
		if r.Error != "" || !r.Params.Bidir {
			t.Errorf("bidir stream %s: error %q, bidir %v", r.Transport, r.Error, r.Params.Bidir)
			continue
		}
		var goodput float64
		for _, dir := range []string{"forward", "reverse"} {
			n := func(k string) float64 {
				v, ok := obs[dir+"_"+k].(float64) // JSON numbers
				if !ok {
					t.Errorf("bidir stream %s: observed %s_%s = %v, want a number", r.Transport, dir, k, obs[dir+"_"+k])
				}
				return v
			}
			counted := n("drops_sender") // a loaded host may starve a UDP receiver: the kernel's count is then the known answer
			if v, ok := obs[dir+"_drops_socket"].(float64); ok {
				counted += v
			}
			if n("sent_msgs") != 500 || n("recv_msgs")+n("lost_msgs") != 500 || n("lost_msgs") != counted || n("dup_msgs") != 0 || n("reordered_msgs") != 0 {
				t.Errorf("bidir stream %s %s: sent %v, recv %v, lost %v (kernel drops %v), dup %v, reordered %v; want 500 received once, in order, or dropped and counted by a kernel",
					r.Transport, dir, n("sent_msgs"), n("recv_msgs"), n("lost_msgs"), counted, n("dup_msgs"), n("reordered_msgs"))
			}
			if g := n("goodput_bps"); !nearPace(g, 20e6) {
				t.Errorf("bidir stream %s %s: goodput %.4g, want about the paced 20 Mbit/s (%s)", r.Transport, dir, g, paceRange(20e6))
			}
			goodput += n("goodput_bps")
		}
		if !deliveredOrCounted(m, 1000) || m.ServerSockets != 2 ||
			math.Abs(m.GoodputBps-goodput) > 1e-9*goodput {
			t.Errorf("bidir stream %s: sent %d, recv %d, lost %d, dup %d, reordered %d, server sockets %d, goodput %.6g; want both directions summed (1000, goodput %.6g), 2 server sockets",
				r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets, m.GoodputBps, goodput)
		}
	}
	// A slow reader at the server: TCP's flow control holds this host's sender to its
	// pace, UDP's sender outruns it and the server's receive buffer drops the rest.
	const reader = 20e6
	rep = runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "slow-receiver", "--reader-rate", "20M", "-d", "500ms")
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want slow-receiver over tcp and udp", len(rep.Results))
	}
	for _, r := range rep.Results {
		m, obs := r.Metrics, r.Observed
		steady, _ := obs["send_rate_steady_bps"].(float64)
		t.Logf("slow-receiver %s across the veth pair: sent %d, recv %d, lost %d (socket drops %v), send rate %.4g, steady %.4g, goodput %.4g, "+
			"rwnd limited %v ns, buffers %v/%v B, %d samples; observed %v", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket),
			m.SendRateBps, steady, m.GoodputBps, obs["rwnd_limited_ns"], obs["recv_buffer_bytes"], obs["send_buffer_bytes"], len(r.Series), obs)
		if r.Error != "" {
			t.Errorf("slow-receiver %s: %s", r.Transport, r.Error)
			continue
		}
		if len(r.Series) < 5 || m.ServerSockets != 1 {
			t.Errorf("slow-receiver %s: %d samples, %d server sockets; want a time line from one server socket", r.Transport, len(r.Series), m.ServerSockets)
		}
		if !nearPace(m.GoodputBps, reader) {
			t.Errorf("slow-receiver %s: goodput %.4g, want the reader's %.4g (%s)", r.Transport, m.GoodputBps, reader, paceRange(reader))
		}
		switch r.Transport {
		case "tcp":
			if m.LostMsgs != 0 || obs["bytes_delivered_equal_sent"] != true || !nearPace(steady, reader) {
				t.Errorf("slow-receiver tcp: lost %d, bytes equal %v, steady send rate %.4g; want nothing lost, the sender held to %.4g (%s)",
					m.LostMsgs, obs["bytes_delivered_equal_sent"], steady, reader, paceRange(reader))
			}
		case "udp":
			if m.LostMsgs == 0 || obs["drops_account_for_missing"] != true || steady < paceHigh*reader {
				t.Errorf("slow-receiver udp: lost %d, drops account for missing %v, steady send rate %.4g; want the sender far above %.4g, every missing message a counted drop",
					m.LostMsgs, obs["drops_account_for_missing"], steady, reader)
			}
		}
	}
	cs.terminate(t)
}

// TestRunServerTwoHostsProperties: refused and close across the veth pair, against a
// server with --data-ports, give the loopback answers. TCP: a dial to the server's
// closed port (one of the range) is refused at once; the server's close reaches the
// reader as end of stream well within closeWait (1 s); with the data listener closed
// the accepted connection answers and a new dial is refused. UDP: the dial and send
// succeed and the ICMP refusal comes after on a connected socket, never on an
// unconnected one; the server's close is never seen; its closed socket answers no
// one. boundaries, with the server as the reader: TCP's 200 writes of 1000 B come as
// fewer reads, some coalesced, in order, and a 1 MiB message (the server's
// --max-size) arrives whole; UDP's come as 200 reads of one write each (less any the
// far socket dropped while a loaded host held its reader up, each counted), the largest
// message is 65490 bytes (65507 less the data path's 17-byte prefix) and arrives
// whole, a plain datagram past 65507 is refused with EMSGSIZE, and 1 MiB is refused.
func TestRunServerTwoHostsProperties(t *testing.T) {
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key, "--data-ports", "41000-41015")
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	rep := runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "refused,close,boundaries")
	if len(rep.Results) != 6 {
		t.Fatalf("%d results, want refused, close and boundaries × tcp, udp", len(rep.Results))
	}
	for _, r := range rep.Results {
		o := r.Observed
		t.Logf("%s %s across the veth pair: observed %v, warnings %q", r.Experiment, r.Transport, o, r.Warnings)
		if r.Error != "" || len(r.Warnings) != 0 {
			t.Errorf("%s %s: error %q, warnings %q; want neither", r.Experiment, r.Transport, r.Error, r.Warnings)
			continue
		}
		num := func(k string) float64 { f, _ := o[k].(float64); return f }
		tcp := r.Transport == "tcp"
		switch r.Experiment {
		case report.ExpRefused:
			host, port, err := net.SplitHostPort(fmt.Sprint(o["address"]))
			if n, _ := strconv.Atoi(port); err != nil || host != lab.PairServerAddr || n < 41000 || n > 41015 {
				t.Errorf("refused %s: address %v, want %s and a port of --data-ports 41000-41015", r.Transport, o["address"], lab.PairServerAddr)
			}
			if o["refused"] != true || (tcp && (o["refused_at"] != "dial" || !strings.Contains(fmt.Sprint(o["dial_error"]), "connection refused"))) {
				t.Errorf("refused tcp: observed %v; want ECONNREFUSED at dial", o)
			}
			if !tcp && (o["dial_error"] != "" || o["first_send_error"] != "" || o["refused_at"] != "after send" || num("detect_ns") <= 0 ||
				o["unconnected_send_error"] != "" || o["unconnected_told"] != false) {
				t.Errorf("refused udp: observed %v; want dial and send to succeed, ECONNREFUSED after the send, an unconnected socket told nothing", o)
			}
		case report.ExpClose:
			raw, rtt, detect := num("peer_close_request_to_eof_ns"), num("echo_rtt_ns"), num("peer_close_detect_ns")
			if tcp && (o["peer_close_seen"] != true || raw <= 0 || rtt <= 0 || detect != max(0, raw-rtt) || detect >= closeDetectMax ||
				o["listener_closed_existing_answered"] != true || o["listener_closed_new_refused"] != true) {
				t.Errorf("close tcp: observed %v; want EOF seen, detect = max(0, request to EOF − echo RTT) under %v, the connection answered, a new dial refused", o, time.Duration(closeDetectMax))
			}
			if !tcp && (o["peer_close_seen"] != false || num("peer_close_waited_ns") != 1e9 || o["listener_closed_existing_answered"] != false ||
				o["listener_closed_new_refused"] != false || !strings.HasPrefix(fmt.Sprint(o["listener_closed_new_client"]), "dial succeeded; request unanswered")) {
				t.Errorf("close udp: observed %v; want nothing seen within 1 s, and no one answered once the socket closed", o)
			}
		case report.ExpBoundaries:
			m := r.Metrics
			t.Logf("boundaries %s: sent %d recv %d lost %d, server sockets %d", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			// UDP's burst comes 50 datagrams at a time, 10 ms apart: a loaded host can
			// hold the far reader up past its buffer, and the far socket counts the drops.
			if !deliveredOrCounted(m, 200) || m.RecvBytes != m.RecvMsgs*1000 || o["bytes_in_order"] != (m.LostMsgs == 0) || o["max_message_ok"] != true || m.ServerSockets != 1 {
				t.Errorf("boundaries %s: sent %d recv %d (%d B) lost %d (kernel drops: socket %v, sender %d) dup %d reordered %d, server sockets %d, observed %v; want 200 writes of 1000 B back in order (but for counted drops), the largest message whole, 1 server socket",
					r.Transport, m.SentMsgs, m.RecvMsgs, m.RecvBytes, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets, o)
			}
			if tcp && (o["raw_stream"] != true || o["reads_equal_to_writes"] != false || num("reads") < 1 || num("reads") >= 200 || num("coalesced_reads") < 1 ||
				num("max_message_bytes") != 1<<20 || o["one_mib_send_ok"] != true || num("one_mib_reads") < 2 || o["one_mib_raw_in_order"] != true ||
				o["max_plus_one_emsgsize"] != false) {
				t.Errorf("boundaries tcp: observed %v; want fewer reads than writes, some coalesced, 1 MiB (--max-size) whole, framed and raw", o)
			}
			if !tcp && (o["raw_stream"] != false || o["reads_equal_to_writes"] != true || num("reads") != float64(m.RecvMsgs) || num("coalesced_reads") != 0 ||
				num("split_reads") != 0 || fmt.Sprint(o["read_sizes"]) != fmt.Sprintf("map[1000:%d]", m.RecvMsgs) || num("max_message_bytes") != 65490 ||
				o["max_plus_one_emsgsize"] != true || !strings.Contains(fmt.Sprint(o["max_plus_one_kernel_error"]), "message too long") ||
				o["one_mib_send_ok"] != false || o["one_mib_send_error"] == "") {
				t.Errorf("boundaries udp: observed %v; want a read of 1000 B per datagram received (%d), the largest message 65490 B whole, EMSGSIZE past 65507, 1 MiB refused", o, m.RecvMsgs)
			}
		}
	}
	cs.terminate(t)
}

// closeDetectMax bounds how long after the server's close TCP's reader sees end of
// stream, in ns: half of closeWait (1 s), which UDP's reader waits out in vain. On an
// idle machine it is well under 1 ms.
const closeDetectMax = 500e6

// A paced rate is near its pace from pace/paceLow to pace×paceHigh: wide enough
// that a loaded machine (a stalled pacer or reader, children built with -race)
// stays inside, narrow enough to catch a pace off by a bits-for-bytes factor (8) or
// none at all (unpaced, these runs reach hundreds of Mbit/s).
const paceLow, paceHigh = 4, 2

func nearPace(got, pace float64) bool { return got >= pace/paceLow && got <= pace*paceHigh }

func paceRange(pace float64) string {
	return fmt.Sprintf("%.4g..%.4g", pace/paceLow, pace*paceHigh)
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

// runIn runs 'tcpvsudp run ARGS --out DIR' as a child process in p's client
// namespace, waits for it (60 s at most) and returns the report it wrote. cs is the
// server whose log a failure shows, or nil.
func runIn(t *testing.T, p *lab.Pair, cs *childServe, args ...string) report.Report {
	t.Helper()
	rep, status, stderr := runInStatus(t, p, cs, args...)
	if status != 0 {
		server := "none"
		if cs != nil {
			server = cs.logs.String()
		}
		t.Fatalf("run %v: exit status %d\nstderr:\n%s\nserver:\n%s", args, status, stderr, server)
	}
	return rep
}

// deliveredOrCounted reports whether m's want messages were each received once, in
// order, or dropped and counted by a kernel (the sender's, or the receiving
// socket's): the known answer of a paced stream. Idle, nothing is dropped; a loaded
// host can starve a UDP receiver past its buffer, and then the kernel's count is the
// answer. TCP has no drop counts, so for it every message must arrive.
func deliveredOrCounted(m report.Metrics, want uint64) bool {
	dropped := m.DropsSender
	if m.DropsSocket != nil {
		dropped += *m.DropsSocket
	}
	return m.SentMsgs == want && m.RecvMsgs+m.LostMsgs == want && m.LostMsgs == dropped && m.DupMsgs == 0 && m.ReorderedMsgs == 0
}
