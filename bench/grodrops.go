package bench

import (
	"sync"

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
// socket's drop counter advanced across the hole: between the packet of that flow
// that arrived before the hole and the one that arrived after it (for the flow's
// tail, between its last packet and the end of the cell). The socket drops whole
// packets, each a run of consecutive datagrams of one flow, so a hole it made is
// exactly the datagrams of the packets it dropped there, and the kernel's counter
// tells the receiver that it dropped some there. drops_socket is the sum of those
// holes; the kernel's count of packets is reported beside it
// (drops_socket_packets). A hole across which the counter did not move is not the
// socket's (the network's, or a refused send's).
//
// It is exact while the socket and the path do not both lose datagrams of one
// flow between two of its arrivals (a hole is attributed whole), and while the
// kernel hands each packet the counter as of its own queueing: true for one sender
// on loopback or a veth pair; when several CPUs queue packets at one socket at once
// Linux 6.18 may hand a packet the count read before a drop just ahead of it, and
// that hole is called the network's. A packet whose first datagram is not an
// intact message of this run carries no sequence number and is skipped: its
// datagrams fall into the next hole of their flow, if any.

// viewReceiver is a transport that returns received datagrams as views into its own
// buffers, packet by packet (udp.Conn.RecvViews, and a remote UDP path's).
type viewReceiver interface {
	RecvViews(views [][]byte, pkts []udp.Packet) (n, np int, err error)
}

// groReceiver reports whether t receives with UDP GRO and can say which packet each
// datagram came in, with the socket's drop counter: then the stream receiver takes
// views and converts socket drops to datagrams.
func groReceiver(t Transport) (viewReceiver, bool) {
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
	t      Transport
	run    uint64
	flows  []gapFlow
	socket uint64 // datagrams missing in holes the socket's counter advanced across

	mu      sync.Mutex // guards final, finalOK
	final   uint32     // the socket's drop counter at the end of the cell
	finalOK bool
}

// gapFlow is one flow's position: the next data sequence number expected and the
// socket's drop counter as its latest packet carried it.
type gapFlow struct {
	next  uint64
	drops uint32
}

func newGroGaps(t Transport, run uint64, flows int) *groGaps {
	g := &groGaps{t: t, run: run, flows: make([]gapFlow, flows)}
	var base uint32
	if rd, ok := t.(RecvDropper); ok {
		if d, err := rd.RecvDrops(); err == nil {
			base = uint32(d) // the counter is the kernel's 32-bit one
		}
	}
	for i := range g.flows {
		g.flows[i].drops = base
	}
	return g
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
	h, err := DecodeHeader(first)
	if err != nil || h.Run != g.run || int(h.Flow) >= len(g.flows) {
		return
	}
	f := &g.flows[h.Flow]
	crossed := int32(drops-f.drops) > 0 // the counter wraps: compare by difference
	if crossed {
		f.drops = drops
	}
	if h.Kind != KindData {
		return
	}
	end := h.Seq + uint64(n) - 1 // a packet is consecutive datagrams, unless the path lost some inside it
	if hl, err := DecodeHeader(last); err == nil && hl.Run == g.run && hl.Flow == h.Flow && hl.Kind == KindData && hl.Seq >= h.Seq {
		end = hl.Seq
	}
	if h.Seq > f.next && crossed {
		g.socket += h.Seq - f.next
	}
	if end >= f.next {
		f.next = end + 1
	}
}

// readFinal reads the endpoint's drop counter at the end of the cell, while it is
// still open.
func (g *groGaps) readFinal() {
	rd, ok := g.t.(RecvDropper)
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
		if s := uint64(sent[i]); s > f.next && int32(final-f.drops) > 0 {
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
