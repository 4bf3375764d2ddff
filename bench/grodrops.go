package bench

import (
	"sync"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// Socket drops with UDP GRO, in datagrams.
//
// A receiver with UDP GRO gets super-packets: the datagrams of one GSO send (on one
// host), or consecutive datagrams of one sender that the receiving host's GRO
// coalesced, queued at the socket as one packet. A full receive buffer drops such a
// packet whole, and Linux counts it once, however many datagrams it held: measured
// on 6.18 in a fresh network namespace (cmd/tcpvsudp TestGROSocketDropsKernelCount),
// SO_MEMINFO's drops, the SO_RXQ_OVFL each queued packet carries, Udp: RcvbufErrors
// and InErrors all add 1 per dropped packet, and InDatagrams 1 per packet read.
// Without GRO the kernel cuts super-packets into datagrams before queueing them, and
// every counter counts datagrams.
//
// So with GRO the receiver converts. Definition: a datagram was dropped at the
// socket when it is missing from a flow's sequence (it never arrived) and the
// socket's drop counter advanced across the hole: from the counter the flow's
// packets before the hole carried (SO_RXQ_OVFL) to the one the packet after it
// carried, or to SO_MEMINFO's when the receiver finds the hole (for the flow's
// tail, at the end of the cell). The socket drops whole packets, each a run of
// consecutive datagrams of one flow, so a hole it made is exactly the datagrams of
// the packets it dropped there, and the counter tells the receiver that it dropped
// some there. drops_socket is the sum of those holes; the kernel's count of packets
// is reported beside it (drops_socket_packets). A hole across which the counter did
// not move is not the socket's (the network's, or a refused send's).
//
// The window reaches back one packet: to the counter carried by the flow's packet
// before the one ahead of the hole. Linux 6.18 queues packets from several CPUs in
// batches, and a packet may carry the count read for its batch, before or after
// drops on another CPU around it (measured: about one cell in 20 of
// TestGROSocketDropsKernelCount saw a hole whose packets on both sides carried one
// count); the extra packet and the SO_MEMINFO reading cover that. So the figure is
// exact on paths that lose nothing but at the socket (loopback, a veth pair, the
// lab without impairments), the cells whose drops a test checks against the
// kernel's; where the path also loses datagrams of a flow within a packet or two of
// a socket drop, that path hole is counted as the socket's. A packet whose first
// datagram is not an intact message of this run carries no sequence number and is
// skipped: its datagrams fall into the next hole of their flow, if any.

// viewReceiver is a transport that returns received datagrams as views into its own
// buffers, packet by packet (udp.Conn.RecvViews, and a remote UDP path's).
type viewReceiver interface {
	RecvViews(views [][]byte, pkts []udp.Packet) (n, np int, err error)
}

// groReceiver reports whether t receives with UDP GRO and can say which packet each
// datagram came in, with the socket's drop counter: then the stream receiver takes
// views and converts socket drops to datagrams.
func groReceiver(t transport.Transport) (viewReceiver, bool) {
	vr, ok := t.(viewReceiver)
	if !ok {
		return nil, false
	}
	o, ok := t.(offloader)
	if !ok {
		return nil, false
	}
	_, gro := o.Offload()
	return vr, gro
}

// groGaps follows the holes in each flow's sequence at one GRO endpoint. Only the
// endpoint's serve goroutine calls packet; final and finalOK are written by
// readFinal (under mu) before the endpoint closes, and everything is read by
// streamRx.datagramDrops after serve has returned.
type groGaps struct {
	t      transport.Transport
	run    uint64
	flows  []gapFlow
	socket uint64 // datagrams missing in holes the socket's counter advanced across

	mu      sync.Mutex // guards final, finalOK
	final   uint32     // the socket's drop counter at the end of the cell
	finalOK bool
}

// gapFlow is one flow's position: the next data sequence number expected, the
// highest drop count the flow's packets carried (last: counts only grow, and one
// read before a drop may come after one read after it), and what last was before
// the flow's latest packet (before): where the window of a hole after that packet
// starts.
type gapFlow struct {
	next         uint64
	last, before uint32
}

// newGroGaps follows the holes at t, an endpoint opened for this cell, with run's
// flows. Each flow's window starts at the socket's opening, when its drop counter
// was 0: a serve may start after the first drops (a sender that outran it), so the
// counter as serve starts is no base.
func newGroGaps(t transport.Transport, run uint64, flows int) *groGaps {
	return &groGaps{t: t, run: run, flows: make([]gapFlow, flows)}
}

// packets follows the packets of one receive: views[i] is datagram i, pkts the
// packets they came in, in order.
func (g *groGaps) packets(views [][]byte, pkts []udp.Packet) {
	i := 0
	for _, p := range pkts {
		if p.Datagrams <= 0 || i+p.Datagrams > len(views) {
			return
		}
		g.packet(views[i], views[i+p.Datagrams-1], p.Datagrams, p.Drops)
		i += p.Datagrams
	}
}

// packet follows one packet of n datagrams, first to last, that carried the
// socket's drop counter drops.
func (g *groGaps) packet(first, last []byte, n int, drops uint32) {
	h, err := wire.DecodeHeader(first)
	if err != nil || h.Run != g.run || int(h.Flow) >= len(g.flows) {
		return
	}
	f := &g.flows[h.Flow]
	from := f.before
	f.before = f.last
	if int32(drops-f.last) > 0 { // the counter wraps: compare by difference
		f.last = drops
	}
	if h.Kind != wire.KindData {
		return
	}
	end := h.Seq + uint64(n) - 1 // a packet is consecutive datagrams, unless the path lost some inside it
	if hl, err := wire.DecodeHeader(last); err == nil && hl.Run == g.run && hl.Flow == h.Flow && hl.Kind == wire.KindData && hl.Seq >= h.Seq {
		end = hl.Seq
	}
	if h.Seq > f.next && (int32(drops-from) > 0 || g.advancedSince(from)) {
		g.socket += h.Seq - f.next
	}
	if end >= f.next {
		f.next = end + 1
	}
}

// advancedSince reads the socket's drop counter now (SO_MEMINFO) and reports
// whether it is past from; false when the transport cannot say.
func (g *groGaps) advancedSince(from uint32) bool {
	if rd, ok := g.t.(transport.RecvDropper); ok {
		if d, err := rd.RecvDrops(); err == nil {
			return int32(uint32(d)-from) > 0
		}
	}
	return false
}

// readFinal reads the endpoint's drop counter at the end of the cell, while it is
// still open.
func (g *groGaps) readFinal() {
	rd, ok := g.t.(transport.RecvDropper)
	if !ok {
		return
	}
	d, err := rd.RecvDrops()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.final, g.finalOK = uint32(d), true
	}
}

// dropped is the datagrams the socket dropped, with sent[i] the messages flow i
// sent (−1 or more than MaxInt64/2: unknown): the holes so far, and each flow's tail
// (from the next expected to the last sent) when the counter advanced after the
// flow's last packet.
func (g *groGaps) dropped(sent []int64) uint64 {
	g.mu.Lock()
	final, ok := g.final, g.finalOK
	g.mu.Unlock()
	d := g.socket
	for i := range g.flows {
		f := &g.flows[i]
		if i >= len(sent) || !ok || sent[i] < 0 || sent[i] > 1<<62 {
			continue
		}
		if s := uint64(sent[i]); s > f.next && int32(final-f.before) > 0 {
			d += s - f.next
		}
	}
	return d
}

// readFinalDrops reads, at the end of the cell, the drop counter of every endpoint
// a GRO receiver serves; call it with the endpoints still open, when reading their
// kernel drop counts.
func (rx *streamRx) readFinalDrops() {
	rx.tsMu.Lock()
	gs := rx.gaps
	rx.tsMu.Unlock()
	for _, g := range gs {
		g.readFinal()
	}
}

// datagramDrops turns kernel, the socket drops its endpoints counted over the
// measured phase, into datagrams. Without GRO the kernel counted datagrams: it
// returns kernel and nil. With GRO it returns the datagrams in the holes the
// socket made (see the top of this file) and the kernel's count of packets. Call
// it after every serve returned and after readFinalDrops.
func (rx *streamRx) datagramDrops(kernel uint64) (datagrams uint64, packets *uint64) {
	rx.tsMu.Lock()
	gs := rx.gaps
	rx.tsMu.Unlock()
	if len(gs) == 0 {
		return kernel, nil
	}
	sent := make([]int64, len(rx.sentOf))
	for i := range sent {
		sent[i] = rx.sentOf[i].Load()
	}
	for _, g := range gs {
		datagrams += g.dropped(sent)
	}
	return datagrams, u64p(kernel)
}
