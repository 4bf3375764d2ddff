package remote

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

// CapListen is the capability (hello and challenge "caps") that lets a test ask,
// with "listen": true, for a data path that keeps accepting new clients after start:
// experiments that open a connection per transaction (connect) or many clients at
// once. See doc.go, "Listen".
const CapListen = "listen"

// CapSent is the capability (hello and challenge "caps") under which the server
// tells the client, with a "sent" message during a test, that its senders are done
// and what they sent (Data.ReportSent): a client receiving from the server learns the
// end of the stream beside the data path. See doc.go.
const CapSent = "sent"

// Bounds of a listen-mode test.
const (
	// maxListenConns bounds the listen-mode TCP connections a test has open at once;
	// Accept waits for one to close beyond it.
	maxListenConns = 1024
	// maxListenAddrs bounds the client addresses a UDP listener keeps budgets for
	// (the oldest is forgotten, credit and debit together).
	maxListenAddrs = 4096
	// listenTokenWait bounds the wait for a listen-mode connection's token.
	listenTokenWait = 2 * time.Second
)

// ErrNotListening means the test did not ask for "listen" (or the data path is gone).
var ErrNotListening = errors.New("remote: the test's data path does not listen (the request did not ask for listen)")

// ErrBudget means a UDP listener refused to send: the address has not sent as many
// bytes as the reply holds (the amplification rule, with a factor of 1).
var ErrBudget = errors.New("remote: reply exceeds what the address sent (amplification budget)")

// tcpListen is a listen-mode TCP test's listener on the server: it stays open after
// the streams arrived, and hands on each further connection from the control peer's
// address that opens with the token.
type tcpListen struct {
	ln       *net.TCPListener
	token    []byte
	peerIP   netip.Addr
	pacer    *pacer
	sent     *atomic.Uint64 // the server's data bytes sent
	rejected *atomic.Uint64 // the server's rejected data connections
	slots    chan struct{}  // one per open connection, up to maxListenConns

	mu     sync.Mutex // guards open, closed
	open   map[*listenConn]struct{}
	closed bool

	accepted atomic.Uint64
}

func newTCPListen(ln *net.TCPListener, token []byte, peerIP netip.Addr, rejected *atomic.Uint64) *tcpListen {
	return &tcpListen{ln: ln, token: token, peerIP: peerIP, rejected: rejected,
		slots: make(chan struct{}, maxListenConns), open: map[*listenConn]struct{}{}}
}

// accept waits for the next connection from the control peer's address that opens
// with the token, and returns it paced. Connections from elsewhere, or without the
// token within listenTokenWait, are closed and counted. One goroutine at a time.
func (l *tcpListen) accept(ctx context.Context) (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := func() { <-l.slots }
	l.ln.SetDeadline(time.Time{})
	stop := ctxwatch.OnDone(ctx, func() { l.ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if ip, _ := addrIP(c.RemoteAddr()); ip != l.peerIP || !l.readToken(ctx, c) {
			l.rejected.Add(1)
			c.Close()
			continue
		}
		lc := &listenConn{pacedConn: pacedConn{Conn: c, pacer: l.pacer, sent: l.sent}, l: l}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			release()
			return nil, net.ErrClosed
		}
		l.open[lc] = struct{}{}
		l.mu.Unlock()
		l.accepted.Add(1)
		return lc, nil
	}
}

func (l *tcpListen) readToken(ctx context.Context, c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(listenTokenWait))
	stop := ctxwatch.OnDone(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	var tok [tokenLen]byte
	_, err := io.ReadFull(c, tok[:])
	if !stop() || err != nil || subtle.ConstantTimeCompare(tok[:], l.token) != 1 {
		return false
	}
	c.SetReadDeadline(time.Time{})
	return true
}

// SetDeadline sets the deadline of the listener and of every open connection (the
// data path's interrupt).
func (l *tcpListen) SetDeadline(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.open {
		c.SetDeadline(t)
	}
	return l.ln.SetDeadline(t)
}

// Close closes the listener and every connection it handed on.
func (l *tcpListen) Close() error {
	l.mu.Lock()
	l.closed = true
	open := l.open
	l.open = map[*listenConn]struct{}{}
	l.mu.Unlock()
	for c := range open {
		c.Conn.Close()
	}
	return l.ln.Close()
}

// A listenConn is a connection a tcpListen handed on; closing it frees its slot.
type listenConn struct {
	pacedConn
	l    *tcpListen
	once sync.Once
}

func (c *listenConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}

// A UDPListener is a listen-mode UDP test's extra socket on the server: it takes
// datagrams with the token from any port of the control peer's address, so each
// client may use a socket of its own, and answers an address only within what it
// received from that address (RFC 9000 §8.1 with a factor of 1: no address is ever
// validated, so the rule holds for every reply), paced like every server send.
// One reader and one writer goroutine may use it at once.
type UDPListener struct {
	conn   *net.UDPConn
	token  []byte
	peerIP netip.Addr
	pacer  *pacer
	sent   *atomic.Uint64

	mu  sync.Mutex // guards amp
	amp *ampBudget

	rbuf, wbuf []byte
	ignored    atomic.Uint64
	refused    atomic.Uint64
}

func newUDPListener(c *net.UDPConn, token []byte, peerIP netip.Addr) *UDPListener {
	return &UDPListener{conn: c, token: token, peerIP: peerIP, amp: newAmpBudgetN(maxListenAddrs)}
}

// ReadFrom waits for one message from the control peer's address (any port) and
// copies it into buf. Datagrams from another address, with another token or of
// another kind are dropped and counted (Ignored); a message longer than buf is an
// error.
func (l *UDPListener) ReadFrom(buf []byte) (int, netip.AddrPort, error) {
	if l.rbuf == nil {
		l.rbuf = make([]byte, 65536)
	}
	for {
		n, src, err := l.conn.ReadFromUDPAddrPort(l.rbuf)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		src = unmapAP(src)
		if src.Addr() != l.peerIP {
			l.ignored.Add(1)
			continue
		}
		kind, body, err := parseDatagram(l.rbuf[:n], l.token)
		if err != nil || kind != kindData {
			l.ignored.Add(1)
			continue
		}
		l.mu.Lock()
		l.amp.received(src, n)
		l.mu.Unlock()
		if len(body) > len(buf) {
			return 0, src, fmt.Errorf("remote: udp message of %d bytes exceeds the %d-byte buffer", len(body), len(buf))
		}
		return copy(buf, body), src, nil
	}
}

// WriteTo sends msg as one datagram to to, paced, if to has sent at least as many
// bytes as it would receive; otherwise it sends nothing and returns ErrBudget.
func (l *UDPListener) WriteTo(msg []byte, to netip.AddrPort) error {
	if len(msg) > MaxUDPMessage {
		return fmt.Errorf("remote: udp message of %d bytes exceeds %d", len(msg), MaxUDPMessage)
	}
	to = unmapAP(to)
	n := udpPrefixLen + len(msg)
	l.mu.Lock()
	ok := to.Addr() == l.peerIP && l.amp.spend(to, n)
	l.mu.Unlock()
	if !ok {
		l.refused.Add(1)
		return ErrBudget
	}
	if err := l.pacer.wait(n); err != nil {
		return err
	}
	l.wbuf = appendDatagram(l.wbuf[:0], l.token, kindData, msg)
	if _, err := l.conn.WriteToUDPAddrPort(l.wbuf, to); err != nil {
		return fmt.Errorf("remote: udp send to %v: %w", to, err)
	}
	if l.sent != nil {
		l.sent.Add(uint64(n))
	}
	return nil
}

// SetReadDeadline bounds ReadFrom.
func (l *UDPListener) SetReadDeadline(t time.Time) error { return l.conn.SetReadDeadline(t) }

// Close closes the socket; it unblocks ReadFrom and WriteTo.
func (l *UDPListener) Close() error { return l.conn.Close() }

// Ignored counts datagrams ReadFrom dropped; Refused the replies WriteTo refused.
func (l *UDPListener) Ignored() uint64 { return l.ignored.Load() }
func (l *UDPListener) Refused() uint64 { return l.refused.Load() }

// Accept returns the next listen-mode TCP connection of the test (server side): one
// from the control peer's address that opened with the token, paced. Close it when
// done: at most 1024 are open at once, and Accept waits for a free one. One
// goroutine at a time.
func (d *Data) Accept(ctx context.Context) (net.Conn, error) {
	if d.listenTCP == nil {
		return nil, ErrNotListening
	}
	return d.listenTCP.accept(ctx)
}

// ListenAddr is where a listen-mode test's new clients reach the server (server
// side): its TCP listener's address, or its UDP listener's; nil when the test is not
// in listen mode.
func (d *Data) ListenAddr() net.Addr {
	switch {
	case d.listenTCP != nil:
		return d.listenTCP.ln.Addr()
	case d.Listener != nil:
		return d.Listener.conn.LocalAddr()
	}
	return nil
}

// Accepted counts the connections Accept handed on.
func (d *Data) Accepted() uint64 {
	if d.listenTCP == nil {
		return 0
	}
	return d.listenTCP.accepted.Load()
}

// DialConn opens one more TCP connection of a listen-mode test (client side), with
// the token sent.
func (d *Data) DialConn(ctx context.Context) (net.Conn, error) {
	if !d.Request.Listen || d.Request.Transport != "tcp" || !d.listenAddr.IsValid() {
		return nil, ErrNotListening
	}
	nd := net.Dialer{Control: tcpControl(d.Request.Sockets)}
	c, err := nd.DialContext(ctx, "tcp", d.listenAddr.String())
	if err != nil {
		return nil, err
	}
	if err := tcpBuffersAfter(c, d.Request.Sockets); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Write(d.token); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// DialPath opens one more UDP socket of a listen-mode test (client side), talking to
// the server's listener. Its first datagram must come before any reply can.
func (d *Data) DialPath(ctx context.Context) (*UDPPath, error) {
	if !d.Request.Listen || d.Request.Transport != "udp" || !d.listenAddr.IsValid() {
		return nil, ErrNotListening
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "udp", d.listenAddr.String())
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UDPConn)
	if err := setUDPBuffers(uc, d.Request.Sockets); err != nil {
		uc.Close()
		return nil, err
	}
	return &UDPPath{conn: uc, token: d.token, peer: d.listenAddr, connected: true, single: true, opts: d.Request.Sockets}, nil
}
