package main

import (
	"net"
	"strconv"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestWarmupZeroKernelCount: with --warmup 0 a UDP stream cell sends its messages and
// nothing else (end of stream travels beside the data socket), so in a fresh network
// namespace the kernel's own count of datagrams that reached a UDP socket (Udp:
// InDatagrams, plus RcvbufErrors for those the socket's full buffer dropped) is
// exactly the cell's sent messages. A warm-up that still ran (the defaults once
// applied twice turned --warmup 0 into 200 ms) shows as thousands more; end markers
// on the data socket, as 3 more.
func TestWarmupZeroKernelCount(t *testing.T) {
	const count = 2000
	p := newServePair(t)
	before := udpSNMP(t, p)
	// --no-gso: one datagram per packet, so the kernel's counts are datagrams (with
	// GRO they count packets: TestGROSocketDropsKernelCount).
	rep := runIn(t, p, nil, "-e", "stream", "-t", "udp", "--sizes", "1024", "--count", strconv.Itoa(count), "--rate", "100M", "--warmup", "0", "--no-lab", "--udp-io", "batched", "--no-gso")
	after := udpSNMP(t, p)
	m := oneCell(t, rep)
	in, rcvbuf := after["InDatagrams"]-before["InDatagrams"], after["RcvbufErrors"]-before["RcvbufErrors"]
	t.Logf("cell: sent %d, recv %d, lost %d, drops_socket %v; kernel: InDatagrams %d, RcvbufErrors %d; config warmup %v s",
		m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), in, rcvbuf, rep.Config.WarmupS)
	if rep.Config.WarmupS != 0 {
		t.Errorf("report config warmup_s %v, want 0", rep.Config.WarmupS)
	}
	if m.SentMsgs != count {
		t.Fatalf("sent %d, want %d", m.SentMsgs, count)
	}
	checkKernelCount(t, m, in, rcvbuf)
}

// TestSocketDropsKernelCount: a UDP stream that overflows its receiver's socket
// buffer (unpaced into a small --rcvbuf) in a fresh network namespace. Its data
// socket carries data only, so the cell's drops_socket is exactly the kernel's
// RcvbufErrors, and the receiver's losses are exactly the socket's, the sender's
// and none in the network (loopback in a namespace of its own drops nothing else).
// With end markers on the data socket, each marker the socket dropped was taken out
// of drops_socket (and one lost elsewhere moved a drop to the network's column):
// then the kernel saw 3 datagrams more than were sent.
func TestSocketDropsKernelCount(t *testing.T) {
	const count = 20000
	p := newServePair(t)
	before := udpSNMP(t, p)
	rep := runIn(t, p, nil, "-e", "stream", "-t", "udp", "--sizes", "1024", "--count", strconv.Itoa(count), "--rcvbuf", "4096", "--warmup", "0", "--no-lab", "--udp-io", "batched", "--no-gso")
	after := udpSNMP(t, p)
	m := oneCell(t, rep)
	in, rcvbuf := after["InDatagrams"]-before["InDatagrams"], after["RcvbufErrors"]-before["RcvbufErrors"]
	t.Logf("cell: sent %d, recv %d, lost %d, drops_socket %v, drops_sender %d, drops_network %v; kernel: InDatagrams %d, RcvbufErrors %d",
		m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, deref(m.DropsNetwork), in, rcvbuf)
	if m.SentMsgs != count {
		t.Fatalf("sent %d, want %d", m.SentMsgs, count)
	}
	if rcvbuf == 0 {
		t.Logf("the receiver kept up with an unpaced sender into a 4 KiB buffer: no socket drops to attribute this time")
	}
	checkKernelCount(t, m, in, rcvbuf)
	if m.DropsNetwork == nil || *m.DropsNetwork != 0 {
		t.Errorf("drops_network %v, want 0: nothing but the socket and the sender drops on loopback in a namespace of its own", deref(m.DropsNetwork))
	}
	if m.DropsSocket != nil && m.LostMsgs != *m.DropsSocket+m.DropsSender {
		t.Errorf("lost %d, want drops_socket %d + drops_sender %d", m.LostMsgs, *m.DropsSocket, m.DropsSender)
	}
}

// TestGROSocketDropsKernelCount: the same overflow with the offloads on (the
// default): the sender hands the kernel super-datagrams of 64 messages of 64 bytes
// (one GSO send each), the receiver takes them with UDP GRO, and a full buffer drops
// them whole. The kernel then counts packets: each of Udp: RcvbufErrors, InErrors,
// SO_MEMINFO's drops (drops_socket_packets) adds 1 per dropped super-packet, and
// InDatagrams 1 per packet read, so InDatagrams + RcvbufErrors is the cell's sends
// of 64. drops_socket, in datagrams, is then exactly 64 times the kernel's count,
// and the losses are the socket's and the sender's, none the network's.
func TestGROSocketDropsKernelCount(t *testing.T) {
	const count, perPacket = 64 * 400, 64
	p := newServePair(t)
	before := udpSNMP(t, p)
	rep := runIn(t, p, nil, "-e", "stream", "-t", "udp", "--sizes", "64", "--count", strconv.Itoa(count), "--rcvbuf", "4096", "--warmup", "0", "--no-lab", "--udp-io", "batched")
	after := udpSNMP(t, p)
	m := oneCell(t, rep)
	d := func(k string) uint64 { return after[k] - before[k] }
	in, rcvbuf, inErrs := d("InDatagrams"), d("RcvbufErrors"), d("InErrors")
	t.Logf("cell: sent %d, recv %d, lost %d, drops_socket %v (packets %v), drops_sender %d, drops_network %v; kernel: InDatagrams %d, RcvbufErrors %d, InErrors %d; env.sockets.udp %+v",
		m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), deref(m.DropsSocketPackets), m.DropsSender, deref(m.DropsNetwork), in, rcvbuf, inErrs, rep.Env.Sockets["udp"])
	if m.SentMsgs != count {
		t.Fatalf("sent %d, want %d", m.SentMsgs, count)
	}
	if s := rep.Env.Sockets["udp"]; !s.GSO || !s.GRO {
		t.Errorf("env.sockets.udp gso %v gro %v, want both: the offloads are the default", s.GSO, s.GRO)
	}
	if m.DropsSocketPackets == nil || m.DropsSocket == nil {
		t.Fatalf("drops_socket %v, drops_socket_packets %v: want both, the receiver took GRO super-packets", deref(m.DropsSocket), deref(m.DropsSocketPackets))
	}
	if rcvbuf == 0 {
		t.Logf("the receiver kept up with an unpaced sender into a 4 KiB buffer: no socket drops to attribute this time")
	}
	if *m.DropsSocketPackets != rcvbuf || inErrs != rcvbuf {
		t.Errorf("drops_socket_packets %d, InErrors %d; want the kernel's RcvbufErrors %d", *m.DropsSocketPackets, inErrs, rcvbuf)
	}
	if *m.DropsSocket != perPacket*rcvbuf {
		t.Errorf("drops_socket %d datagrams, want %d: %d dropped super-packets of %d", *m.DropsSocket, perPacket*rcvbuf, rcvbuf, perPacket)
	}
	if m.DropsSender == 0 && in+rcvbuf != count/perPacket {
		t.Errorf("kernel: InDatagrams %d + RcvbufErrors %d packets, want the %d super-datagrams sent", in, rcvbuf, count/perPacket)
	}
	if m.DropsNetwork == nil || *m.DropsNetwork != 0 || m.LostMsgs != *m.DropsSocket+m.DropsSender {
		t.Errorf("lost %d, drops_network %v; want drops_socket %d + drops_sender %d, none the network's", m.LostMsgs, deref(m.DropsNetwork), *m.DropsSocket, m.DropsSender)
	}
}

// checkKernelCount checks a UDP stream cell run alone in a fresh namespace against the
// kernel's Udp: counters over the run (in InDatagrams, rcvbuf RcvbufErrors): every
// datagram that reached a socket was one of the cell's messages, and the socket's
// drops are exactly the cell's drops_socket.
func checkKernelCount(t *testing.T, m report.Metrics, in, rcvbuf uint64) {
	t.Helper()
	if sent := m.SentMsgs - m.DropsSender; in+rcvbuf != sent {
		t.Errorf("kernel: InDatagrams %d + RcvbufErrors %d = %d datagrams reached a UDP socket; want the cell's %d sent, less %d its kernel refused to send, = %d",
			in, rcvbuf, in+rcvbuf, m.SentMsgs, m.DropsSender, sent)
	}
	if m.DropsSocket == nil || *m.DropsSocket != rcvbuf {
		t.Errorf("drops_socket %v, want the kernel's RcvbufErrors %d", deref(m.DropsSocket), rcvbuf)
	}
}

// oneCell is the metrics of a report's one cell, which must have measured.
func oneCell(t *testing.T, rep report.Report) report.Metrics {
	t.Helper()
	if len(rep.Results) != 1 || rep.Results[0].Error != "" {
		t.Fatalf("results %+v, want one measured udp stream cell", rep.Results)
	}
	return rep.Results[0].Metrics
}

// udpSNMP reads the Udp: line pair of /proc/net/snmp in p's client namespace.
func udpSNMP(t *testing.T, p *lab.Pair) map[string]uint64 {
	t.Helper()
	return udpSNMPIn(t, p.InClient)
}

// TestRemoteGROSocketDropsKernelCount: the far end's receiver takes GRO
// super-packets too, and converts its drops the same way. A UDP stream from one
// namespace to 'tcpvsudp serve' in another, across a veth pair (which carries a GSO
// super-datagram whole), overflowing the server's 4 KiB receive buffer: each end
// reports the offloads it used (env.sockets: the client's GSO; env.peer.sockets: the
// server's GRO), and the server's drops_socket is its kernel's count of packets
// (RcvbufErrors in the server's namespace) times the 64 datagrams each held.
func TestRemoteGROSocketDropsKernelCount(t *testing.T) {
	const count, perPacket = 64 * 400, 64
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	before := udpSNMPIn(t, p.InServer)
	rep := runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream", "-t", "udp", "--sizes", "64",
		"--count", strconv.Itoa(count), "--rcvbuf", "4096", "--warmup", "0", "--udp-io", "batched")
	after := udpSNMPIn(t, p.InServer)
	m := oneCell(t, rep)
	rcvbuf := after["RcvbufErrors"] - before["RcvbufErrors"]
	var peer report.Sock
	if rep.Env.Peer != nil {
		peer = rep.Env.Peer.Sockets["udp"]
	}
	t.Logf("cell: sent %d, recv %d, lost %d, drops_socket %v (packets %v), drops_sender %d, drops_network %v; server's kernel: RcvbufErrors %d; sockets: client %+v, server %+v",
		m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), deref(m.DropsSocketPackets), m.DropsSender, deref(m.DropsNetwork), rcvbuf, rep.Env.Sockets["udp"], peer)
	if !rep.Env.Sockets["udp"].GSO || !peer.GRO {
		t.Errorf("client gso %v, server gro %v: want both, the offloads are the default", rep.Env.Sockets["udp"].GSO, peer.GRO)
	}
	if m.DropsSocketPackets == nil || m.DropsSocket == nil {
		t.Fatalf("drops_socket %v, drops_socket_packets %v: want both from a GRO receiver", deref(m.DropsSocket), deref(m.DropsSocketPackets))
	}
	// A far receiver's kernel count starts at its first data message: drops of a
	// sender that outran it before that are the kernel's, not in the count. The
	// holes count from the socket's opening: drops_socket has them all.
	if *m.DropsSocketPackets > rcvbuf {
		t.Errorf("drops_socket_packets %d, want at most the server's RcvbufErrors %d", *m.DropsSocketPackets, rcvbuf)
	}
	if *m.DropsSocket != perPacket*rcvbuf {
		t.Errorf("drops_socket %d datagrams, want %d: %d dropped super-packets of %d", *m.DropsSocket, perPacket*rcvbuf, rcvbuf, perPacket)
	}
	if m.DropsNetwork == nil || *m.DropsNetwork != 0 || m.LostMsgs != *m.DropsSocket+m.DropsSender {
		t.Errorf("lost %d, drops_network %v; want drops_socket %d + drops_sender %d, none the path's", m.LostMsgs, deref(m.DropsNetwork), *m.DropsSocket, m.DropsSender)
	}
}
