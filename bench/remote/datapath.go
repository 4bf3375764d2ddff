package remote

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/udp"
)

// UDP datagram layout (doc.go, "Data path"): the test's 16-byte token, one kind byte,
// then the kind's body.
const (
	udpPrefixLen = tokenLen + 1
	// UDPOverhead is what a UDP data path adds to each message: the token and
	// kind prefix, in bytes.
	UDPOverhead = udpPrefixLen

	kindProbe     = 1 // client to server: "here I am"; padded to probeLen bytes
	kindChallenge = 2 // server to client: 16 random bytes to return in start
	kindData      = 3 // either way: one message

	probeLen     = 64                          // bytes a client pads each probe to
	challengeDgm = udpPrefixLen + challengeLen // a challenge datagram, 33 bytes: never more than one probe
)

// ErrPeerLost means the other side stopped answering: no heartbeat within
// PeerTimeout, an ICMP unreachable on a UDP data socket, or a closed control
// connection. Senders stop at once.
var ErrPeerLost = errors.New("remote: peer lost")

// Heartbeats: while a test runs each side sends one every HeartbeatInterval, and
// a side silent for PeerTimeout is lost; a server then stops sending within
// PeerTimeout plus one pacing step (well under 3 s).
const (
	HeartbeatInterval = 500 * time.Millisecond
	PeerTimeout       = 2500 * time.Millisecond
)

// maxPaceSleep bounds one pacing sleep, so a sender notices a lost peer quickly.
const maxPaceSleep = 100 * time.Millisecond

// parseDatagram checks a data-path datagram's token and returns its kind and body.
// It never panics; a short datagram or another token is an error.
func parseDatagram(b []byte, token []byte) (kind byte, body []byte, err error) {
	if len(b) < udpPrefixLen {
		return 0, nil, fmt.Errorf("remote: datagram of %d bytes, shorter than the %d-byte prefix", len(b), udpPrefixLen)
	}
	if len(token) != tokenLen || subtle.ConstantTimeCompare(b[:tokenLen], token) != 1 {
		return 0, nil, errors.New("remote: datagram with another token")
	}
	kind = b[tokenLen]
	body = b[udpPrefixLen:]
	switch kind {
	case kindProbe, kindData:
	case kindChallenge:
		if len(body) != challengeLen {
			return 0, nil, fmt.Errorf("remote: challenge datagram of %d bytes, want %d", len(b), challengeDgm)
		}
	default:
		return 0, nil, fmt.Errorf("remote: datagram kind %d", kind)
	}
	return kind, body, nil
}

// appendDatagram appends token, kind and body to dst.
func appendDatagram(dst, token []byte, kind byte, body []byte) []byte {
	dst = append(dst, token...)
	dst = append(dst, kind)
	return append(dst, body...)
}

// randomUint64 returns a uniformly random number, or 0 if the system's source fails
// (it is used where any value is correct, only less spread).
func randomUint64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("remote: random bytes: %w", err)
	}
	return b, nil
}

// A pacer spaces sends to a rate over every stream that shares it. It lets a burst of
// at most paceBurst of credit through, and never sleeps longer than maxPaceSleep
// without checking that the test is still on and the peer alive.
type pacer struct {
	rateBps float64         // bits/s; 0 = unpaced
	done    <-chan struct{} // the test's end
	alive   func() error    // nil = always alive

	mu   sync.Mutex // guards next
	next time.Time  // when the next byte may leave

	capped bool         // rateBps is the server's --max-rate, not the rate the request asked for
	held   atomic.Int64 // ns senders waited for the pacer, summed over them
}

const paceBurst = 2 * time.Millisecond

// wait returns when n more bytes may be sent, or an error when the test ended or the
// peer was lost.
func (p *pacer) wait(n int) error {
	if p == nil {
		return nil
	}
	if err := p.check(); err != nil {
		return err
	}
	if p.rateBps <= 0 {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	if floor := now.Add(-paceBurst); p.next.Before(floor) {
		p.next = floor
	}
	at := p.next
	p.next = p.next.Add(time.Duration(float64(n) * 8 / p.rateBps * float64(time.Second)))
	p.mu.Unlock()
	var waited time.Time
	defer func() {
		if !waited.IsZero() {
			p.held.Add(int64(time.Since(waited)))
		}
	}()
	for {
		d := time.Until(at)
		if d <= 500*time.Microsecond {
			return nil
		}
		if waited.IsZero() {
			waited = time.Now()
		}
		t := time.NewTimer(min(d, maxPaceSleep))
		select {
		case <-p.done:
			t.Stop()
			return context.Canceled
		case <-t.C:
		}
		if err := p.check(); err != nil {
			return err
		}
	}
}

func (p *pacer) check() error {
	select {
	case <-p.done:
		return context.Canceled
	default:
	}
	if p.alive != nil {
		return p.alive()
	}
	return nil
}

// A UDPPath is one validated UDP data path of a test: every datagram it sends goes to
// the one peer address validated through the control session, carries the test's
// token, and is paced; Recv returns only messages carrying the token from that peer.
// Its methods have the shape of bench.Transport, so an experiment written against
// that interface can run over it. One sender and one receiver goroutine may use it
// at once.
type UDPPath struct {
	conn   *net.UDPConn
	token  []byte
	peer   netip.AddrPort // where data goes and comes from
	pacer  *pacer
	onLost func(error) // server: mark the peer lost (ICMP unreachable); may be nil
	sent   *atomic.Uint64
	// connected: the socket was dialed (client), so it writes without an address.
	connected bool
	// single: one datagram per call, never batched (a socket used for one
	// transaction: setting up the batch would cost more than it saves).
	single bool
	opts   SocketOptions // the test's: batch, GSO and busy polling of the batched socket
	// blocking: the batched socket receives blocking, outside Go's poller
	// (udp.Options.Blocking); set by SetBlocking before the path is used.
	blocking bool

	// The unbatched path's sends (SendCalls): one datagram per system call.
	sendCalls atomic.Uint64

	wbuf []byte // Send's scratch
	rbuf []byte // Recv's scratch

	ignored atomic.Uint64 // datagrams dropped: another source, token or kind

	// Batched I/O (PITFALLS 18): once the path is validated and its socket connected
	// in the kernel, which then drops every other source, Send and Recv move up to
	// opts.Batch (default udpBatch) datagrams per system call through udp.Conn
	// (sendmmsg with GSO unless opts.NoGSO, recvmmsg, spinning with opts.BusyPoll).
	// nil: one datagram per call, checking the source in user space.
	batchOnce sync.Once
	bc        *udp.Conn
	wbufs     [][]byte // Send's prefixed copies
	wout      [][]byte
	rbufs     [][]byte // Recv's datagrams, prefix included
	rsizes    []int
	rstamps   []int64 // the datagrams' kernel receive stamps
	stamps    []int64 // the stamps of the messages the last Recv returned (RecvStamps)

	// RecvViews' scratch: the batched socket's views, packets and stamps, sized
	// by the largest call; vbuf is the unbatched path's one message.
	vviews  [][]byte
	vpkts   []udp.Packet
	vstamps []int64
	vbuf    [][]byte
	vsize   []int
}

// udpBatch is the most datagrams one batched Send or Recv moves, unless the test's
// SocketOptions.Batch says otherwise.
const udpBatch = 64

// batcher returns the path's batched socket, made at first use; nil when the socket
// is not connected in the kernel (a server off Linux) or udp.FromConn refused it.
func (p *UDPPath) batcher() *udp.Conn {
	p.batchOnce.Do(func() {
		if p.single || (!p.connected && !kernelConnects) {
			return
		}
		b := p.opts.batch()
		bc, err := udp.FromConn(p.conn, net.UDPAddrFromAddrPort(p.peer), udp.Options{Batch: b, NoGSO: p.opts.NoGSO, GRO: p.opts.GRO, BusyPoll: p.opts.BusyPoll,
			Blocking: p.blocking && !p.opts.BusyPoll})
		if err != nil {
			return
		}
		p.bc = bc
		p.wbufs = make([][]byte, b)
		p.wout = make([][]byte, b)
		p.rsizes = make([]int, b)
		p.rstamps = make([]int64, b)
		p.stamps = make([]int64, 0, b)
	})
	return p.bc
}

// Send sends each message as one datagram to the validated peer, paced. It stops at
// the first error: the test's end, a lost peer, or the socket's.
func (p *UDPPath) Send(msgs [][]byte) (int, error) {
	if bc := p.batcher(); bc != nil {
		return p.sendBatch(bc, msgs)
	}
	for i, m := range msgs {
		if len(m) > MaxUDPMessage {
			return i, fmt.Errorf("remote: udp message of %d bytes exceeds %d", len(m), MaxUDPMessage)
		}
		if err := p.pacer.wait(udpPrefixLen + len(m)); err != nil {
			return i, err
		}
		p.wbuf = appendDatagram(p.wbuf[:0], p.token, kindData, m)
		var err error
		if p.connected {
			_, err = p.conn.Write(p.wbuf)
		} else {
			_, err = p.conn.WriteToUDPAddrPort(p.wbuf, p.peer)
		}
		if err != nil {
			p.lost(err)
			return i, fmt.Errorf("remote: udp send to %v: %w", p.peer, err)
		}
		p.sendCalls.Add(1)
		if p.sent != nil {
			p.sent.Add(uint64(len(p.wbuf)))
		}
	}
	return len(msgs), nil
}

// Recv waits for one message from the peer and returns it in bufs[0] (n is 0 or 1).
// Datagrams from another address, with another token or of another kind are dropped
// and counted (Ignored); the wait goes on until the read deadline.
func (p *UDPPath) Recv(bufs [][]byte, sizes []int) (int, error) {
	if len(bufs) == 0 || len(sizes) == 0 {
		return 0, nil
	}
	if bc := p.batcher(); bc != nil {
		return p.recvBatch(bc, bufs, sizes)
	}
	p.stamps = p.stamps[:0] // one datagram per call: no kernel stamps
	if p.rbuf == nil {
		p.rbuf = make([]byte, 65536)
	}
	for {
		n, src, err := p.conn.ReadFromUDPAddrPort(p.rbuf)
		if err != nil {
			p.lost(err)
			return 0, err
		}
		if unmapAP(src) != p.peer {
			p.ignored.Add(1)
			continue
		}
		kind, body, err := parseDatagram(p.rbuf[:n], p.token)
		if err != nil || kind != kindData {
			p.ignored.Add(1)
			continue
		}
		if len(body) > len(bufs[0]) {
			return 0, fmt.Errorf("remote: udp message of %d bytes exceeds the %d-byte buffer", len(body), len(bufs[0]))
		}
		sizes[0] = copy(bufs[0], body)
		return 1, nil
	}
}

// sendBatch is Send through the batched socket: up to a batch of datagrams per call,
// paced a batch at a time (a batch is well within the pacer's burst).
func (p *UDPPath) sendBatch(bc *udp.Conn, msgs [][]byte) (int, error) {
	done := 0
	for done < len(msgs) {
		k, total := min(len(msgs)-done, len(p.wbufs)), 0
		for i := 0; i < k; i++ {
			m := msgs[done+i]
			if len(m) > MaxUDPMessage {
				if i == 0 {
					return done, fmt.Errorf("remote: udp message of %d bytes exceeds %d", len(m), MaxUDPMessage)
				}
				k = i
				break
			}
			p.wbufs[i] = appendDatagram(p.wbufs[i][:0], p.token, kindData, m)
			p.wout[i] = p.wbufs[i]
			total += len(p.wbufs[i])
		}
		if err := p.pacer.wait(total); err != nil {
			return done, err
		}
		n, err := bc.Send(p.wout[:k])
		if p.sent != nil {
			var b uint64
			for _, w := range p.wout[:n] {
				b += uint64(len(w))
			}
			p.sent.Add(b)
		}
		done += n
		if err != nil {
			p.lost(err)
			return done, fmt.Errorf("remote: udp send to %v: %w", p.peer, err)
		}
	}
	return done, nil
}

// recvBatch is Recv through the batched socket: it returns every message of the
// datagrams one recvmmsg got (up to len(bufs)), dropping and counting those with
// another token or kind; the kernel already dropped other sources.
func (p *UDPPath) recvBatch(bc *udp.Conn, bufs [][]byte, sizes []int) (int, error) {
	b := len(p.rsizes)
	k := min(len(bufs), len(sizes), b)
	need := udpPrefixLen + len(bufs[0])
	if len(p.rbufs) < k || cap(p.rbufs[0]) < need {
		backing := make([]byte, b*need)
		p.rbufs = make([][]byte, b)
		for i := range p.rbufs {
			p.rbufs[i] = backing[i*need : (i+1)*need : (i+1)*need]
		}
	}
	for {
		n, err := bc.Recv(p.rbufs[:k], p.rsizes[:k])
		stamped := bc.RecvStamps(p.rstamps[:n]) == n
		p.stamps = p.stamps[:0]
		out := 0
		for i := 0; i < n; i++ {
			kind, body, perr := parseDatagram(p.rbufs[i][:p.rsizes[i]], p.token)
			if perr != nil || kind != kindData || len(body) > len(bufs[out]) {
				p.ignored.Add(1)
				continue
			}
			sizes[out] = copy(bufs[out], body)
			if stamped {
				p.stamps = append(p.stamps, p.rstamps[i])
			}
			out++
		}
		if err != nil {
			p.lost(err)
			return out, err
		}
		if out > 0 {
			return out, nil
		}
	}
}

// RecvViews is Recv without the copy, through the batched socket
// (udp.Conn.RecvViews): views[i] is message i, the body of a datagram in the
// socket's own buffers, valid until the next Recv or RecvViews; pkts[:np] are the
// packets they came in (with UDP GRO a super-packet holds many). Datagrams with
// another token or kind are dropped and counted (Ignored), and leave their packet
// out of its count. Without the batched socket it returns one message per call, a
// view into the path's own buffer.
func (p *UDPPath) RecvViews(views [][]byte, pkts []udp.Packet) (int, int, error) {
	if len(views) == 0 || len(pkts) == 0 {
		return 0, 0, nil
	}
	bc := p.batcher()
	if bc == nil {
		if p.vbuf == nil {
			p.vbuf = [][]byte{make([]byte, MaxUDPMessage)}
			p.vsize = []int{0}
		}
		n, err := p.Recv(p.vbuf, p.vsize)
		if n > 0 {
			views[0], pkts[0] = p.vbuf[0][:p.vsize[0]], udp.Packet{Datagrams: 1}
		}
		return n, n, err
	}
	if len(p.vviews) < len(views) {
		p.vviews = make([][]byte, len(views))
		p.vpkts = make([]udp.Packet, len(views))
		p.vstamps = make([]int64, len(views))
		p.stamps = make([]int64, 0, len(views))
	}
	for {
		n, np, err := bc.RecvViews(p.vviews[:len(views)], p.vpkts[:min(len(pkts), len(views))])
		stamped := bc.RecvStamps(p.vstamps[:n]) == n
		p.stamps = p.stamps[:0]
		out, op, i := 0, 0, 0
		for _, pk := range p.vpkts[:np] {
			kept := 0
			for range pk.Datagrams {
				kind, body, perr := parseDatagram(p.vviews[i], p.token)
				if perr == nil && kind == kindData {
					views[out] = body
					if stamped {
						p.stamps = append(p.stamps, p.vstamps[i])
					}
					out++
					kept++
				} else {
					p.ignored.Add(1)
				}
				i++
			}
			if kept > 0 {
				pkts[op] = udp.Packet{Datagrams: kept, Drops: pk.Drops}
				op++
			}
		}
		if err != nil {
			p.lost(err)
			return out, op, err
		}
		if out > 0 {
			return out, op, nil
		}
	}
}

// RecvStamps writes the kernel receive times of the messages the last Recv returned
// into dst (ns since the Unix epoch, CLOCK_REALTIME) and returns how many: 0 when the
// path has none (not batched, or the kernel gave none). It has the shape of
// bench.RecvStamper; only Recv's goroutine may call it, between Recvs.
func (p *UDPPath) RecvStamps(dst []int64) int {
	return copy(dst, p.stamps)
}

// lost reports an ICMP unreachable (ECONNREFUSED on the connected socket).
func (p *UDPPath) lost(err error) {
	if p.onLost != nil && errors.Is(err, syscall.ECONNREFUSED) {
		p.onLost(fmt.Errorf("%w: ICMP unreachable from %v", ErrPeerLost, p.peer))
	}
}

// SetBlocking asks for a batched socket whose Recv sleeps in the kernel, on the
// caller's OS thread, outside Go's poller (udp.Options.Blocking): a request/response
// server half's, whose reply latency the poller's wake-up would add to. Busy polling,
// when the test asked for it, wins. Call it before the path is first used, from the
// goroutine that hands it on; RecvMode says what the path got.
func (p *UDPPath) SetBlocking() { p.blocking = true }

// RecvMode names how Recv waits (udp.Conn.RecvMode of the batched socket), or
// "poller" without one.
func (p *UDPPath) RecvMode() string {
	if bc := p.batcher(); bc != nil {
		return bc.RecvMode()
	}
	return udp.RecvPoller
}

// SetReadDeadline bounds Recv.
func (p *UDPPath) SetReadDeadline(t time.Time) error {
	if p.blocking {
		if bc := p.batcher(); bc != nil {
			return bc.SetReadDeadline(t) // a blocking Recv keeps its own deadline
		}
	}
	return p.conn.SetReadDeadline(t)
}

// Close closes the socket; it unblocks Send and Recv.
func (p *UDPPath) Close() error {
	if p.blocking {
		p.batchOnce.Do(func() {}) // no batched socket made after this
		if p.bc != nil {
			return p.bc.Close() // wakes a Recv asleep in the kernel
		}
	}
	return p.conn.Close()
}

// Peer is the validated address data goes to.
func (p *UDPPath) Peer() netip.AddrPort { return p.peer }

// Ignored counts datagrams Recv dropped.
func (p *UDPPath) Ignored() uint64 { return p.ignored.Load() }

// MaxMessage is the largest message Send carries, in bytes.
func (p *UDPPath) MaxMessage() int { return MaxUDPMessage }

// pacedConn is a TCP data connection whose writes are paced, and refused once the
// test ended or the peer was lost.
type pacedConn struct {
	net.Conn
	pacer *pacer
	sent  *atomic.Uint64
}

// pacedChunk is the most a paced write hands the kernel at once, in bytes.
const pacedChunk = 64 << 10

func (c *pacedConn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k := min(len(b)-n, pacedChunk)
		if err := c.pacer.wait(k); err != nil {
			return n, err
		}
		w, err := c.Conn.Write(b[n : n+k])
		n += w
		if c.sent != nil {
			c.sent.Add(uint64(w))
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// CloseWrite half-closes the connection (TCP FIN), when the connection can.
func (c *pacedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Data is a test's data path, as a Runner (server) or Driver (client) gets it: the
// request, and either its TCP connections or its UDP paths, one per stream, already
// opened, matched to the session by token and source address, and paced. The
// session closes them after the Runner returns, and sets their deadlines in the past
// when the test must stop (its context ends, the peer is lost).
type Data struct {
	Request TestRequest
	// Peer is the control connection's peer: on the server the client (the only
	// address its data may come from), on the client the server.
	Peer  netip.AddrPort
	Conns []net.Conn // tcp: one per stream; writes are paced, and fail once the peer is lost
	Paths []*UDPPath // udp: one per stream
	// Listener is a listen-mode UDP test's extra socket, on the server (nil
	// otherwise); a listen-mode TCP test's further connections come from Accept.
	Listener *UDPListener
	Started  time.Time // when the test started

	peerDone     <-chan struct{}
	peerCounters json.RawMessage             // the peer's results' (server) or sent's (client) counters, set before peerDone closes
	reportSent   func(json.RawMessage) error // server, when the client listed CapSent: sends "sent"
	sentOnce     sync.Once
	pacer        *pacer
	ports        portOpener // server: Server.openPort, for ClosedPort; nil on the client
	localIP      netip.Addr // server: where the data sockets listen

	// Listen mode (TestRequest.Listen). Server: the TCP listener that keeps
	// accepting, or Listener below. Client: where DialConn and DialPath go.
	listenTCP  *tcpListen
	listenAddr netip.AddrPort
	token      []byte
	closers    []interface {
		Close() error
		SetDeadline(time.Time) error
	}
	closeOnce sync.Once
}

// PeerDone is closed when the peer said it stopped sending: on the server, when the
// client reported its results; on the client, when the server's runner reported its
// senders done (ReportSent; never, with a server older than CapSent).
func (d *Data) PeerDone() <-chan struct{} { return d.peerDone }

// ReportSent tells the client, during the test, that the server's senders are done
// and what they sent (counters, a JSON object of the runner's): the client's
// PeerDone closes and its PeerCounters returns counters. Server side only; once per
// test (later calls fail). It fails with errors.ErrUnsupported when the
// client did not list CapSent.
func (d *Data) ReportSent(counters json.RawMessage) error {
	if d.reportSent == nil {
		return fmt.Errorf("remote: sent: the client does not take it (no %q capability): %w", CapSent, errors.ErrUnsupported)
	}
	err := errors.New("remote: sent: already reported")
	d.sentOnce.Do(func() { err = d.reportSent(counters) })
	return err
}

// PeerCounters are the counters the peer's PeerDone came with (its results on the
// server, its sent on the client), as they came: read them once PeerDone is closed;
// nil before, or when there were none.
func (d *Data) PeerCounters() json.RawMessage {
	select {
	case <-d.peerDone:
		return d.peerCounters
	default:
		return nil
	}
}

// Paced says how this side's pacer shaped the test's sending: its rate (bits/s; 0 =
// unpaced), whether that rate is the server's --max-rate cap rather than what the
// request asked for, and how long senders waited for it, summed over them.
func (d *Data) Paced() (rateBps float64, capped bool, held time.Duration) {
	if d.pacer == nil {
		return 0, false, 0
	}
	return d.pacer.rateBps, d.pacer.capped, time.Duration(d.pacer.held.Load())
}

// Ignored counts datagrams the UDP paths dropped (another source, token or kind).
func (d *Data) Ignored() uint64 {
	var n uint64
	for _, p := range d.Paths {
		n += p.Ignored()
	}
	return n
}

// interrupt unblocks every read and write on the data path.
func (d *Data) interrupt() {
	for _, c := range d.closers {
		c.SetDeadline(time.Unix(1, 0))
	}
}

// close closes the data path.
func (d *Data) close() {
	d.closeOnce.Do(func() {
		for _, c := range d.closers {
			c.Close()
		}
	})
}

// unmapAP returns ap with an IPv4-mapped address unmapped, so addresses compare equal
// whichever socket family saw them.
func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// ampBudget enforces the anti-amplification rule before a path is validated (the
// model is RFC 9000 §8.1, with a factor of 1): to any address not yet validated, the
// server sends no more bytes than it received from it. It tracks at most
// maxAmpAddrs addresses; forgetting an address forgets both its credit and its debit,
// so the rule holds for every address over any span of time.
type ampBudget struct {
	m     map[netip.AddrPort]*ampEntry
	order []netip.AddrPort // oldest first
	limit int              // most addresses tracked
}

type ampEntry struct{ recv, sent, challenges int }

const maxAmpAddrs = 16

func newAmpBudget() *ampBudget { return newAmpBudgetN(maxAmpAddrs) }

// newAmpBudgetN is an ampBudget that tracks at most n addresses.
func newAmpBudgetN(n int) *ampBudget {
	return &ampBudget{m: make(map[netip.AddrPort]*ampEntry), limit: max(n, 1)}
}

// received credits n bytes received from a.
func (b *ampBudget) received(a netip.AddrPort, n int) {
	e := b.m[a]
	if e == nil {
		if len(b.order) >= b.limit {
			delete(b.m, b.order[0])
			b.order = b.order[1:]
		}
		e = &ampEntry{}
		b.m[a] = e
		b.order = append(b.order, a)
	}
	e.recv += n
}

// spend reports whether n bytes may go to a (within what a sent), and debits them
// if so.
func (b *ampBudget) spend(a netip.AddrPort, n int) bool {
	e := b.m[a]
	if e == nil || e.sent+n > e.recv {
		return false
	}
	e.sent += n
	return true
}

// spendChallenge reports whether a challenge of n bytes may go to a (within the
// budget, and fewer than maxChallenges so far), and debits it if so.
func (b *ampBudget) spendChallenge(a netip.AddrPort, n int) bool {
	e := b.m[a]
	if e == nil || e.sent+n > e.recv || e.challenges >= maxChallenges {
		return false
	}
	e.sent += n
	e.challenges++
	return true
}
