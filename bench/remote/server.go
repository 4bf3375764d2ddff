package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("remote: server closed")

// errShutdown is the cause sessions see when the server shuts down.
var errShutdown = errors.New("remote: server shutting down")

// Server is the remote end of tcpvsudp: it serves control sessions, each running
// tests one after another, under Limits. Runner is required; with the other fields
// zero it serves with the default limits and no key (loopback peers only). Set the
// fields before Serve.
type Server struct {
	Key                  []byte // pre-shared key (LoadKey); nil = none
	AllowUnauthenticated bool   // without a key, accept any peer, not only loopback
	Limits               Limits // zero fields take DefaultLimits
	Runner               Runner // the server's half of the tests; required
	Software             string // sent in the challenge, e.g. "tcpvsudp 0.3"; informational
	// Logf, when set, receives one line per event: a connection refused or failed
	// before its session, a session started and ended, a test started, ended and
	// refused (log.go lists them). The lines peers can cause are rate-limited.
	Logf func(format string, args ...any)

	initOnce sync.Once
	initErr  error
	limits   Limits // Limits with defaults
	runner   Runner
	ctx      context.Context // done when the server shuts down
	cancel   context.CancelCauseFunc
	sessions chan struct{} // a slot per authenticated session
	turning  chan struct{} // a slot per connection being turned away at accept (turnAway)
	nonces   *nonceCache
	wg       sync.WaitGroup // Serve loops and connection handlers
	// forced is closed when the server must stop at once (Shutdown's context ended,
	// or Close): a session then stops waiting for its Runner after abandonWait.
	forced    chan struct{}
	forceOnce sync.Once
	connLines lineLimiter   // log lines of connections and sessions
	nextPort  atomic.Uint32 // --data-ports: the next port to try, as an offset into the range

	mu        sync.Mutex // guards listeners, conns, closed
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool

	preAuthMu sync.Mutex           // guards preAuthN, preAuthBy
	preAuthN  int                  // connections not yet authenticated: at most limits.PreAuthConns
	preAuthBy map[netip.Prefix]int // the same by source (sourceOf), each at most limits.PreAuthShare(); no zero entries

	testsMu   sync.Mutex            // guards running, abandoned and every testRun's overlap and returned
	running   map[*testRun]bool     // tests running now, for overlap
	abandoned map[*testRun]struct{} // tests whose Runner was abandoned, not yet returned

	st stats
}

// Stats count what a server did since it started; tests and operators read them.
type Stats struct {
	Accepted           uint64 // control connections accepted
	PreAuthRejected    uint64 // refused at accept: --pre-auth-conns already in their handshake, or the source's share of them
	PreAuthOverShare   uint64 // of PreAuthRejected, those whose source held its share (Limits.PreAuthShare)
	HandshakeFailed    uint64 // closed during the handshake: timeout, malformed or unexpected message, peer gone
	Unauthenticated    uint64 // refused: no key and not a loopback peer
	AuthFailed         uint64 // refused: wrong key (MAC mismatch)
	Replayed           uint64 // refused: client nonce seen before
	SessionsRefused    uint64 // refused: --max-sessions reached
	Sessions           uint64 // sessions authenticated
	TestsRun           uint64 // tests started (start sent)
	TestsRefused       uint64 // tests refused (limits, runner, data path setup)
	DataRejected       uint64 // TCP data connections closed: another source address or token
	DataForeign        uint64 // of DataRejected, those from another address than the session's client
	UDPIgnored         uint64 // datagrams dropped before validation: another source, token or kind
	UDPRecvUnvalidated uint64 // bytes received on UDP data sockets before validation
	UDPSentUnvalidated uint64 // bytes sent to addresses not (yet) validated: challenges only
	DataBytesSent      uint64 // data bytes sent on validated paths (TCP and UDP)
	LogSuppressed      uint64 // log lines not written: more than the rate limit allows (log.go)
	Abandoned          uint64 // tests whose Runner was abandoned: still running when the server was forced to stop
	Conns              int    // control connections open now
}

type stats struct {
	accepted, preAuthRejected, handshakeFailed, unauthenticated, authFailed, replayed atomic.Uint64
	sessionsRefused, sessions, testsRun, testsRefused, dataRejected, udpIgnored       atomic.Uint64
	udpRecvUnvalidated, udpSentUnvalidated, dataBytesSent, logSuppressed, abandoned   atomic.Uint64
	preAuthOverShare, dataForeign                                                     atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.init()
	return Stats{
		Accepted: s.st.accepted.Load(), PreAuthRejected: s.st.preAuthRejected.Load(), PreAuthOverShare: s.st.preAuthOverShare.Load(),
		HandshakeFailed: s.st.handshakeFailed.Load(), Unauthenticated: s.st.unauthenticated.Load(),
		AuthFailed: s.st.authFailed.Load(), Replayed: s.st.replayed.Load(),
		SessionsRefused: s.st.sessionsRefused.Load(), Sessions: s.st.sessions.Load(),
		TestsRun: s.st.testsRun.Load(), TestsRefused: s.st.testsRefused.Load(),
		DataRejected: s.st.dataRejected.Load(), DataForeign: s.st.dataForeign.Load(), UDPIgnored: s.st.udpIgnored.Load(),
		UDPRecvUnvalidated: s.st.udpRecvUnvalidated.Load(), UDPSentUnvalidated: s.st.udpSentUnvalidated.Load(),
		DataBytesSent: s.st.dataBytesSent.Load(), LogSuppressed: s.st.logSuppressed.Load(),
		Abandoned: s.st.abandoned.Load(), Conns: s.openConns(),
	}
}

func (s *Server) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Timing constants of a session.
const (
	runGrace    = 10 * time.Second // a Runner may run this much past the test's duration
	resultsWait = 10 * time.Second // after Serve returns, how long the client has to report
	maxIdleMsgs = 1000             // heartbeats between two tests before the session is closed
	nonceWindow = 10 * time.Minute // client nonces remembered this long...
	nonceCap    = 4096             // ...up to this many
	// abandonWait: once the server is forced to stop, a Runner still running gets this
	// long to return before its session abandons it. Its context ended when the
	// shutdown began and its sockets are closed, so a Runner that is not stuck
	// returns well within it.
	abandonWait = 200 * time.Millisecond
)

func (s *Server) init() error {
	s.initOnce.Do(func() {
		if s.Runner == nil {
			s.initErr = errors.New("remote: Server.Runner is required: it runs the server's half of the tests")
		}
		s.limits = s.Limits.WithDefaults()
		if err := s.limits.Validate(); err != nil {
			s.initErr = fmt.Errorf("remote: %w", err)
		}
		if err := checkKey(s.Key); err != nil {
			s.initErr = err
		}
		s.runner = s.Runner
		s.ctx, s.cancel = context.WithCancelCause(context.Background())
		s.sessions = make(chan struct{}, s.limits.MaxSessions)
		s.turning = make(chan struct{}, maxTurningAway)
		s.preAuthBy = map[netip.Prefix]int{}
		s.nonces = newNonceCache(nonceCap, nonceWindow)
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
		s.running = map[*testRun]bool{}
		s.abandoned = map[*testRun]struct{}{}
		s.forced = make(chan struct{})
		s.connLines.what = "connection"
		if n := s.limits.DataPorts.Len(); n > 0 {
			s.nextPort.Store(uint32(randomUint64() % uint64(n)))
		}
	})
	return s.initErr
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// ListenAndServe listens on the TCP address addr and serves until Shutdown or Close.
func (s *Server) ListenAndServe(addr string) error {
	if err := s.init(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("remote: listen: %w", err)
	}
	return s.Serve(ln)
}

// Serve accepts control connections on ln until Shutdown or Close, then returns
// ErrServerClosed once every session it started has ended. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.init(); err != nil {
		ln.Close()
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer ln.Close()

	backoff := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// Out of descriptors and the like: back off, bounded, and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("remote: accept: %v; retrying in %v", err, backoff)
			select {
			case <-s.ctx.Done():
				return ErrServerClosed
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		s.st.accepted.Add(1)
		src := sourceOf(c.RemoteAddr())
		if r := s.takePreAuth(src); r != nil {
			s.logLine(&s.connLines, c.RemoteAddr(), "refused at accept: %s", trimRefused(r.Error))
			s.turnAway(c, r)
			continue
		}
		if !s.track(c) {
			s.releasePreAuth(src)
			c.Close()
			return ErrServerClosed
		}
		go s.handle(c, src)
	}
}

// sourceOf is the source a connection's pre-auth slot counts against: its IPv4
// address, or its IPv6 address's /64 (IPv4-mapped addresses count as IPv4). Any
// other kind of address is one source, the zero Prefix.
func sourceOf(a net.Addr) netip.Prefix {
	ip := addrPort(a).Addr()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// sourceString names a source for a person: the address for IPv4, the prefix for IPv6.
func sourceString(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "your address"
	case p.Addr().Is4():
		return p.Addr().String()
	}
	return p.String()
}

// takePreAuth takes a pre-auth slot for a connection from src, or returns the
// refusal that tells it why not: its source holds its share (Limits.PreAuthShare)
// already, or every slot is taken. Both name --pre-auth-conns and say the server is
// busy.
func (s *Server) takePreAuth(src netip.Prefix) *Refuse {
	share := s.limits.PreAuthShare()
	s.preAuthMu.Lock()
	defer s.preAuthMu.Unlock()
	switch {
	case s.preAuthBy[src] >= share:
		s.st.preAuthRejected.Add(1)
		s.st.preAuthOverShare.Add(1)
		return &Refuse{Limit: "pre-auth-conns", Error: fmt.Sprintf(
			"refused: server busy: %s from %s already in their handshake, as many as one source may have (a quarter of --pre-auth-conns %d); try again in a few seconds",
			plural(uint64(share), "connection"), sourceString(src), s.limits.PreAuthConns)}
	case s.preAuthN >= s.limits.PreAuthConns:
		s.st.preAuthRejected.Add(1)
		return &Refuse{Limit: "pre-auth-conns", Error: fmt.Sprintf(
			"refused: server busy: %s already in their handshake (--pre-auth-conns %d); try again in a few seconds",
			plural(uint64(s.limits.PreAuthConns), "connection"), s.limits.PreAuthConns)}
	}
	s.preAuthN++
	s.preAuthBy[src]++
	return nil
}

// releasePreAuth gives back the pre-auth slot takePreAuth took for src.
func (s *Server) releasePreAuth(src netip.Prefix) {
	s.preAuthMu.Lock()
	defer s.preAuthMu.Unlock()
	s.preAuthN--
	if s.preAuthBy[src]--; s.preAuthBy[src] <= 0 {
		delete(s.preAuthBy, src)
	}
}

// Turning connections away at accept: each gets at most turnAwayWait, and at most
// maxTurningAway are turned away at once (a goroutine each); beyond that one is
// closed at once, untold.
const (
	turnAwayWait   = 500 * time.Millisecond
	maxTurningAway = 64
)

// turnAway tells c why the server does not take it (r), then closes it, on a
// goroutine of its own that Close and Shutdown wait for. Everything, the write
// included, ends within turnAwayWait: the refuse, a FIN, then what the peer sends
// (its hello) read and discarded until its FIN, so that closing sends no reset that
// could destroy the refuse before the peer read it. A hostile peer that neither
// reads nor closes costs the goroutine turnAwayWait.
func (s *Server) turnAway(c net.Conn, r *Refuse) {
	select {
	case s.turning <- struct{}{}:
	default:
		c.Close()
		return
	}
	if !s.track(c) {
		<-s.turning
		c.Close()
		return
	}
	go func() {
		defer s.wg.Done()
		defer func() { <-s.turning }()
		defer s.untrack(c)
		defer c.Close()
		c.SetDeadline(time.Now().Add(turnAwayWait))
		b, err := Encode(r)
		if err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, MaxMsgLen))
	}()
}

// track registers c and counts its handler in wg; false once the server closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// stop stops accepting and tells every session to end.
func (s *Server) stop() {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.cancel(errShutdown)
}

func (s *Server) closeConns() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// force makes the server stop at once: every control connection closed, and every
// session told to stop waiting for its Runner (after abandonWait).
func (s *Server) force() {
	s.forceOnce.Do(func() { close(s.forced) })
	s.closeConns()
}

// wait returns a channel closed once every Serve loop and session ended. Call it
// after stop: nothing adds to wg then.
func (s *Server) wait() <-chan struct{} {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	return done
}

// Shutdown stops accepting connections, ends every session (a running test stops and
// reports itself incomplete; then the server says bye), and waits for them. When ctx
// ends first it closes whatever is left and returns ctx's error, at most about
// abandonWait (200 ms) later, even if a Runner ignores its context: such a Runner is
// abandoned, left running on its own goroutine, and named in the error, a
// *StuckError wrapping ctx's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	done := s.wait()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.force()
	<-done // bounded: once forced, no session waits on the network or on a Runner
	if err := s.stuckErr("shutdown", ctx.Err()); err != nil {
		return err
	}
	return fmt.Errorf("remote: shutdown: %w", ctx.Err())
}

// Close stops the server at once: listeners and connections closed, then waits for
// every session to end, about abandonWait (200 ms) at most. A Runner still running
// then is abandoned as in Shutdown, and Close returns a *StuckError naming its test.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.force()
	<-s.wait()
	return s.stuckErr("close", nil)
}

// A StuckError names the tests whose Runner was still running when the server was
// forced to stop (Shutdown's context ended, or Close): each ignored the end of its
// context and was abandoned, its goroutine left to end on its own.
type StuckError struct {
	Op    string   // "shutdown" or "close"
	Tests []string // each "test 3 (stream tcp forward, ...; client 192.0.2.7:41234, running 12.3s)"
	Err   error    // what forced the stop: Shutdown's ctx.Err(); nil for Close
}

func (e *StuckError) Error() string {
	s := "remote: " + e.Op + ": "
	if e.Err != nil {
		s += e.Err.Error() + "; "
	}
	s += "abandoned " + strings.Join(e.Tests, ", ")
	if len(e.Tests) == 1 {
		return s + ": its Runner ignored the end of its context"
	}
	return s + ": their Runners ignored the end of their context"
}

// Unwrap returns what forced the stop.
func (e *StuckError) Unwrap() error { return e.Err }

// stuckErr returns a *StuckError naming the abandoned tests whose Runner is still
// running, or nil.
func (s *Server) stuckErr(op string, cause error) error {
	s.testsMu.Lock()
	defer s.testsMu.Unlock()
	if len(s.abandoned) == 0 {
		return nil
	}
	var tests []string
	for t := range s.abandoned {
		tests = append(tests, fmt.Sprintf("test %d (%s; client %v, running %v)", t.id, t.what, t.peer, roundDuration(time.Since(t.started))))
	}
	slices.Sort(tests)
	return &StuckError{Op: op, Tests: tests, Err: cause}
}

// handle runs one control connection from accept to close. It holds a pre-auth slot
// of src until the handshake ends.
func (s *Server) handle(c net.Conn, src netip.Prefix) {
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()
	remote := c.RemoteAddr()
	cc := NewControlConn(c)
	cc.SetSessionDeadline(time.Now().Add(s.limits.HandshakeTimeout))
	hello, err := s.handshake(cc)
	s.releasePreAuth(src)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			s.logLine(&s.connLines, remote, "refused: %s", trimRefused(r.msg))
		} else {
			s.logLine(&s.connLines, remote, "handshake failed: %s", s.handshakeFailure(err))
		}
		return
	}
	defer func() { <-s.sessions }()
	s.st.sessions.Add(1)
	started := time.Now()
	ends := started.Add(s.limits.MaxSessionTime)
	cc.SetSessionDeadline(ends)
	ss := &session{s: s, cc: cc, ends: ends, remote: remote, peer: addrPort(remote), testLines: lineLimiter{what: "test"},
		listen: slices.Contains(hello.Caps, CapListen), sent: slices.Contains(hello.Caps, CapSent)}
	ss.peerIP = ss.peer.Addr()
	ss.localIP, _ = addrIP(c.LocalAddr())
	who := ""
	if hello.Software != "" {
		who = fmt.Sprintf("; client %q", hello.Software)
	}
	logged := s.logLine(&s.connLines, remote, "session started: %s%s", s.authMode(ss.peerIP), who)
	reason := ss.loop()
	endLines := &s.connLines
	if logged {
		endLines = nil // the end of a session whose start was logged is logged too
	}
	s.logLine(endLines, remote, "session ended after %v: %s; %s run, %d refused",
		roundDuration(time.Since(started)), reason, plural(ss.tests, "test"), ss.refused)
}

// handshakeFailure says why a handshake failed, for the log.
func (s *Server) handshakeFailure(err error) string {
	switch {
	case s.ctx.Err() != nil:
		return "server shutting down"
	case isTimeout(err):
		return fmt.Sprintf("not done within --handshake-timeout %v", s.limits.HandshakeTimeout)
	case errors.Is(err, io.EOF):
		return "the peer closed the connection"
	}
	return err.Error()
}

// authMode says how a session's peer got in.
func (s *Server) authMode(peer netip.Addr) string {
	switch {
	case s.Key != nil:
		return "authenticated by key"
	case peer.IsLoopback():
		return "unauthenticated (no key; a loopback peer)"
	}
	return "unauthenticated (no key; --allow-unauthenticated)"
}

// A refusal is a handshake the server refused, having sent the peer msg.
type refusal struct {
	msg string
	err error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.err }

// trimRefused drops the "refused: " an error may start with, for a log line that
// says "refused" already.
func trimRefused(s string) string { return strings.TrimPrefix(s, "refused: ") }

// refuse sends a refusal, then closes gently: a FIN, and a short wait for the peer's,
// so the refusal is not lost to a reset.
func refuse(cc *ControlConn, r *Refuse) {
	if cc.WriteMsg(r) == nil {
		closeGently(cc.Conn())
	}
}

func closeGently(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(c, MaxMsgLen))
}

// handshake authenticates the peer and takes a session slot: hello, challenge, auth,
// auth-ok. Any error closes the connection; a *refusal is one the peer was told.
func (s *Server) handshake(cc *ControlConn) (*Hello, error) {
	fail := func(n *atomic.Uint64, err error) error {
		n.Add(1)
		return err
	}
	refused := func(n *atomic.Uint64, r *Refuse, err error) (*Hello, error) {
		n.Add(1)
		refuse(cc, r)
		return nil, &refusal{msg: r.Error, err: err}
	}
	hello, err := expect[*Hello](s.ctx, cc, s.limits.HandshakeTimeout)
	if err != nil {
		if isProtocolError(err) {
			refuse(cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
		}
		return nil, fail(&s.st.handshakeFailed, err)
	}
	if err := peerAllowed(cc.Conn().RemoteAddr(), s.Key != nil, s.AllowUnauthenticated); err != nil {
		return refused(&s.st.unauthenticated, &Refuse{Error: err.Error()}, err)
	}
	serverNonce, err := newNonce()
	if err != nil {
		return nil, fail(&s.st.handshakeFailed, err)
	}
	method := AuthNone
	if s.Key != nil {
		method = AuthHMAC
	}
	if err := cc.WriteMsg(&Challenge{Nonce: serverNonce, Auth: method, Software: s.Software, Caps: []string{CapListen, CapSent, CapSockets, CapVerify, CapGRO}}); err != nil {
		return nil, fail(&s.st.handshakeFailed, err)
	}
	auth, err := expect[*Auth](s.ctx, cc, s.limits.HandshakeTimeout)
	if err != nil {
		if isProtocolError(err) {
			refuse(cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
		}
		return nil, fail(&s.st.handshakeFailed, err)
	}
	var proof []byte
	if s.Key != nil {
		if auth.MAC == nil || !verifyMAC(ClientMAC(s.Key, serverNonce, auth.Nonce), auth.MAC) {
			return refused(&s.st.authFailed, &Refuse{Error: "authentication failed: wrong key"}, ErrAuth)
		}
		if !s.nonces.add(auth.Nonce, time.Now()) {
			return refused(&s.st.replayed, &Refuse{Error: "authentication failed: client nonce replayed"}, ErrReplay)
		}
		proof = ServerMAC(s.Key, serverNonce, auth.Nonce)
	}
	select {
	case s.sessions <- struct{}{}:
	default:
		msg := fmt.Sprintf("refused: server busy: %d sessions running (--max-sessions %d)", s.limits.MaxSessions, s.limits.MaxSessions)
		return refused(&s.st.sessionsRefused, &Refuse{Limit: "max-sessions", Error: msg}, nil)
	}
	if err := cc.WriteMsg(&AuthOK{MAC: proof, Limits: s.limits.wire()}); err != nil {
		<-s.sessions
		return nil, fail(&s.st.handshakeFailed, err)
	}
	return hello, nil
}

// session is one authenticated control connection.
type session struct {
	s       *Server
	cc      *ControlConn
	remote  net.Addr       // the control connection's peer, as log lines name it
	peer    netip.AddrPort // the same, unmapped: Data.Peer
	peerIP  netip.Addr     // the control connection's peer: the only source data may come from
	localIP netip.Addr     // where data sockets listen
	ends    time.Time      // the session deadline (--max-session-time)
	listen  bool           // both sides listed CapListen
	sent    bool           // both sides listed CapSent: Data.ReportSent sends "sent"

	// Used by the session's goroutine only.
	tests, refused uint64      // tests started and refused
	testLines      lineLimiter // log lines of its tests
	crossed        uint32      // a test refused before its start came: its start or results may still come, once
}

// logTest logs a line about one of the session's tests.
func (ss *session) logTest(format string, args ...any) {
	ss.s.logLine(&ss.testLines, ss.remote, format, args...)
}

// loop reads test requests until bye, the idle timeout, the session deadline, a
// protocol error, or shutdown, and returns why the session ended, for the log.
func (ss *session) loop() string {
	s := ss.s
	idleUntil := time.Now().Add(s.limits.IdleTimeout)
	idle := 0
	for {
		m, err := ss.cc.ReadMsg(s.ctx, time.Until(idleUntil))
		if err != nil {
			switch {
			case isProtocolError(err):
				refuse(ss.cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
				return "protocol error: " + err.Error()
			case s.ctx.Err() != nil:
				return ss.bye("server shutting down")
			case isTimeout(err) && !time.Now().Before(idleUntil):
				return ss.bye(fmt.Sprintf("idle timeout: no test for %v (--idle-timeout)", s.limits.IdleTimeout))
			case isTimeout(err):
				return ss.bye(fmt.Sprintf("session time limit %v reached (--max-session-time)", s.limits.MaxSessionTime))
			}
			return connLost(err)
		}
		if id := setupReply(m); id != 0 && id == ss.crossed {
			ss.crossed = 0 // it crossed the refusal on the wire
			continue
		}
		switch m := m.(type) {
		case *Heartbeat:
			if idle++; idle > maxIdleMsgs {
				return ss.bye(fmt.Sprintf("more than %d heartbeats without a test", maxIdleMsgs))
			}
			continue
		case *Bye:
			if m.Reason != "" {
				return fmt.Sprintf("the client said bye (%q)", m.Reason)
			}
			return "the client said bye"
		case *Test:
			ss.crossed = 0
			if err := ss.runTest(m.Request()); err != nil {
				switch {
				case s.ctx.Err() != nil:
					return ss.bye("server shutting down")
				case isProtocolError(err):
					refuse(ss.cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
					return fmt.Sprintf("protocol error during test %d: %v", m.ID, err)
				}
				return fmt.Sprintf("test %d: %v", m.ID, err)
			}
			idle = 0
			idleUntil = time.Now().Add(s.limits.IdleTimeout)
		default:
			err := fmt.Errorf("%w: %s between tests", ErrUnexpected, m.Type())
			refuse(ss.cc, &Refuse{Error: err.Error()})
			return "protocol error: " + err.Error()
		}
	}
}

// connLost says how a control connection was lost, for the log.
func connLost(err error) string {
	if errors.Is(err, io.EOF) {
		return "the client closed the connection without a bye"
	}
	return "control connection lost: " + err.Error()
}

// bye says bye with reason, closes gently, and returns reason.
func (ss *session) bye(reason string) string {
	if ss.cc.WriteMsg(&Bye{Reason: reason}) == nil {
		closeGently(ss.cc.Conn())
	}
	return reason
}

// refuseTest refuses one test; the session goes on.
func (ss *session) refuseTest(id uint32, err error) error {
	ss.s.st.testsRefused.Add(1)
	ss.refused++
	r := &Refuse{ID: id, Error: truncate(sanitize(err.Error()), maxErrStr-8)}
	var le *LimitError
	var pe *PortsError
	var se *setupError
	switch {
	case errors.As(err, &le):
		r.Limit = le.Limit
	case errors.As(err, &pe):
		r.Limit = "data-ports"
	case errors.As(err, &se):
		r.Limit = se.Limit
	}
	by := ""
	if r.Limit != "" {
		by = " by --" + r.Limit
	}
	ss.logTest("test %d refused%s: %s", id, by, trimRefused(err.Error()))
	return ss.cc.WriteMsg(r)
}

// sanitize replaces the characters the wire does not carry in text (textRefused).
func sanitize(s string) string {
	b := []rune(s)
	for i, r := range b {
		if textRefused(r) {
			b[i] = ' '
		}
	}
	return string(b)
}

// testRun is one running test, for overlap accounting and, should its Runner be
// abandoned, for Shutdown's error.
type testRun struct {
	id      uint32
	what    string         // describeRequest
	peer    netip.AddrPort // the client
	started time.Time

	overlap  int  // guarded by Server.testsMu
	returned bool // the Runner returned; guarded by Server.testsMu
}

func (s *Server) register(t *testRun) {
	s.testsMu.Lock()
	defer s.testsMu.Unlock()
	s.running[t] = true
	n := len(s.running) - 1
	for o := range s.running {
		o.overlap = max(o.overlap, n)
	}
}

func (s *Server) unregister(t *testRun) int {
	s.testsMu.Lock()
	defer s.testsMu.Unlock()
	delete(s.running, t)
	return t.overlap
}

// runTest negotiates and runs one test. A refused test returns nil (the session goes
// on); an error ends the session.
func (ss *session) runTest(req TestRequest) error {
	s := ss.s
	if err := s.limits.Check(req); err != nil {
		return ss.refuseTest(req.ID, err)
	}
	if req.Listen && !ss.listen {
		return ss.refuseTest(req.ID, fmt.Errorf("listen: the client's hello did not list the %q capability", CapListen))
	}
	if err := s.runner.Check(req); err != nil {
		return ss.refuseTest(req.ID, err)
	}
	if left := time.Until(ss.ends); req.Duration+runGrace > left {
		return ss.refuseTest(req.ID, &LimitError{"max-session-time", "duration", fmtDuration(req.Duration),
			fmt.Sprintf("%v (%v left in this session, %v of it kept for the end of the test)", fmtDuration(s.limits.MaxSessionTime), left.Round(time.Second), runGrace)})
	}
	sd, err := openServerData(ss, req)
	if err != nil {
		var pe *PortsError
		if !errors.As(err, &pe) {
			err = fmt.Errorf("server: cannot open data sockets: %w", err)
		}
		return ss.refuseTest(req.ID, err)
	}
	defer sd.close()
	if err := ss.cc.WriteMsg(&Accept{ID: req.ID, Ports: sd.ports, Token: sd.token}); err != nil {
		return err
	}

	// Setup: the client opens the data path and says start.
	setupCtx, cancelSetup := context.WithTimeout(s.ctx, s.limits.HandshakeTimeout)
	defer cancelSetup()
	sd.startSetup(setupCtx)
	start, gaveUp, err := ss.readStart(setupCtx, req.ID)
	if err != nil || gaveUp != nil {
		cancelSetup()
		sd.waitSetup()
	}
	switch {
	case err != nil && s.ctx.Err() == nil && isTimeout(err):
		// The client's start or results may be on their way: loop skips them.
		ss.crossed = req.ID
		return ss.refuseTest(req.ID, &setupError{Limit: "handshake-timeout",
			Reason: fmt.Sprintf("data path not set up within --handshake-timeout %v: %s", s.limits.HandshakeTimeout, sd.stalled())})
	case err != nil:
		return err
	case gaveUp != nil:
		return ss.refuseTest(req.ID, &setupError{
			Reason: fmt.Sprintf("data path not set up: the client gave up (%s); the server saw: %s", gaveUp.Error, sd.stalled())})
	}
	d, err := sd.finishSetup(setupCtx, cancelSetup, start.Paths)
	if err != nil {
		return ss.refuseTest(req.ID, err)
	}
	return ss.run(req, d, sd.ports)
}

// readStart waits, within --handshake-timeout, for the client's start of test id,
// or for its results with complete false: it gave up opening the data path.
func (ss *session) readStart(ctx context.Context, id uint32) (*Start, *ResultsMsg, error) {
	deadline := time.Now().Add(ss.s.limits.HandshakeTimeout)
	for i := 0; ; i++ {
		m, err := ss.cc.ReadMsg(ctx, time.Until(deadline))
		if err != nil {
			return nil, nil, err
		}
		switch m := m.(type) {
		case *Heartbeat:
			if i < maxSkippedHeartbeats {
				continue
			}
		case *Start:
			if m.ID != id {
				return nil, nil, fmt.Errorf("%w: start for test %d during test %d", ErrUnexpected, m.ID, id)
			}
			return m, nil, nil
		case *ResultsMsg:
			if m.ID != id || m.Complete {
				return nil, nil, fmt.Errorf("%w: results for test %d (complete %v) before the start of test %d", ErrUnexpected, m.ID, m.Complete, id)
			}
			return nil, m, nil
		case *Bye:
			return nil, nil, fmt.Errorf("%w: peer said bye: %s", ErrUnexpected, m.Reason)
		}
		return nil, nil, fmt.Errorf("%w: got %s, want start", ErrUnexpected, m.Type())
	}
}

// setupReply is the test id of a start, or of results that give up a setup; 0 for
// any other message.
func setupReply(m Msg) uint32 {
	switch m := m.(type) {
	case *Start:
		return m.ID
	case *ResultsMsg:
		if !m.Complete {
			return m.ID
		}
	}
	return 0
}

// A setupError refuses a test whose data path was not set up: the client's start did
// not come within --handshake-timeout (Limit), or the client gave up (no Limit).
type setupError struct {
	Limit  string // the flag that bounds the setup, without dashes; "" when the client gave up
	Reason string // what failed: which path, and what the server saw of it
}

func (e *setupError) Error() string { return e.Reason }

// run runs a test whose data path is open, then reports.
func (ss *session) run(req TestRequest, d *Data, ports []uint16) error {
	s := ss.s
	defer d.close()
	testCtx, cancelTest := context.WithCancelCause(s.ctx)
	defer cancelTest(nil)
	runCtx, cancelRun := context.WithTimeout(testCtx, req.Duration+runGrace)
	defer cancelRun()

	var lastHeard atomic.Int64
	lastHeard.Store(time.Now().UnixNano())
	alive := func() error {
		if cause := context.Cause(testCtx); cause != nil {
			return cause
		}
		if silent := time.Since(time.Unix(0, lastHeard.Load())); silent > PeerTimeout {
			err := fmt.Errorf("%w: no heartbeat for %v", ErrPeerLost, silent.Round(time.Millisecond))
			cancelTest(err)
			return err
		}
		return nil
	}
	rate := float64(s.limits.MaxRateBps)
	if req.RateBps > 0 {
		rate = float64(min(req.RateBps, s.limits.MaxRateBps))
	}
	p := &pacer{rateBps: rate, done: runCtx.Done(), alive: alive, capped: req.RateBps == 0 || req.RateBps > s.limits.MaxRateBps}
	d.pacer = p
	if d.listenTCP != nil {
		d.listenTCP.pacer, d.listenTCP.sent = p, &s.st.dataBytesSent
	}
	if d.Listener != nil {
		d.Listener.pacer, d.Listener.sent = p, &s.st.dataBytesSent
	}
	for i, c := range d.Conns {
		d.Conns[i] = &pacedConn{Conn: c, pacer: p, sent: &s.st.dataBytesSent}
	}
	for _, path := range d.Paths {
		path.pacer = p
		path.sent = &s.st.dataBytesSent
		path.onLost = func(err error) { cancelTest(err) }
	}
	peerDone := make(chan struct{})
	d.peerDone = peerDone
	if ss.sent {
		d.reportSent = func(counters json.RawMessage) error {
			return ss.cc.WriteMsg(&Sent{ID: req.ID, Counters: counters})
		}
	}
	stopInterrupt := ctxwatch.OnDone(runCtx, d.interrupt)
	defer stopInterrupt()

	t := &testRun{id: req.ID, what: describeRequest(req), peer: ss.peer}
	s.register(t)
	overlapDone := false
	defer func() {
		if !overlapDone {
			s.unregister(t)
		}
	}()
	d.Started = time.Now()
	t.started = d.Started
	if err := ss.cc.WriteMsg(&Start{ID: req.ID}); err != nil {
		return err
	}
	s.st.testsRun.Add(1)
	ss.tests++
	ss.logTest("test %d started: %s; %s", req.ID, t.what, describePorts(ports))

	// The control connection while the test runs: one reader (heartbeats, then the
	// client's results), one heartbeat writer. Both end before run returns.
	var wg sync.WaitGroup
	var readErr error // the reader's; read after wg.Wait
	var peer *ResultsMsg
	readerDone := make(chan struct{})
	hbStop := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(readerDone)
		for {
			m, err := ss.cc.ReadMsg(s.ctx, PeerTimeout)
			if err != nil {
				readErr = err
				cancelTest(fmt.Errorf("%w: control connection: %v", ErrPeerLost, err))
				return
			}
			lastHeard.Store(time.Now().UnixNano())
			switch m := m.(type) {
			case *Heartbeat:
			case *ResultsMsg:
				if m.ID != req.ID {
					readErr = fmt.Errorf("%w: results for test %d during test %d", ErrUnexpected, m.ID, req.ID)
					cancelTest(readErr)
					return
				}
				peer = m
				d.peerCounters = m.Counters
				close(peerDone)
				return
			case *Bye:
				readErr = fmt.Errorf("%w: peer said bye: %s", ErrPeerLost, m.Reason)
				cancelTest(readErr)
				return
			default:
				readErr = fmt.Errorf("%w: %s during a test", ErrUnexpected, m.Type())
				cancelTest(readErr)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		heartbeats(testCtx, ss.cc, hbStop, cancelTest)
	}()

	res, rerr := ss.serve(runCtx, d, t)
	// Wait for the client's results, bounded; then stop both goroutines.
	select {
	case <-readerDone:
	case <-time.After(resultsWait):
		ss.cc.poke()
	}
	close(hbStop)
	wg.Wait()
	stopInterrupt()
	d.close()
	overlapDone = true
	overlap := s.unregister(t)
	_ = peer // the client's own figures: it keeps them; the server needs only that they came

	out := &ResultsMsg{ID: req.ID, Complete: rerr == nil && res.Complete, Error: res.Error, Overlap: overlap, Counters: res.Counters}
	if rerr != nil {
		out.Error = rerr.Error()
	}
	if cause := context.Cause(testCtx); cause != nil {
		// Why the test stopped leads; what the runner saw of it follows.
		out.Complete = false
		if out.Error == "" || errors.Is(rerr, context.Canceled) || strings.HasSuffix(out.Error, context.Canceled.Error()) {
			out.Error = cause.Error()
		} else {
			out.Error = cause.Error() + ": " + out.Error
		}
	}
	out.Error = truncate(sanitize(out.Error), maxErrStr-8)
	outcome := "complete"
	if !out.Complete {
		outcome = "incomplete: " + out.Error
		if out.Error == "" {
			outcome = "incomplete"
		}
	}
	ss.logTest("test %d ended after %v: %s%s", req.ID, roundDuration(time.Since(d.Started)), outcome, countersSummary(res.Counters))

	if readErr != nil && s.ctx.Err() == nil {
		return readErr // the session cannot go on
	}
	if err := ss.cc.WriteMsg(out); err != nil {
		return err
	}
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	return nil
}

// serve runs the Runner's Serve on its own goroutine and returns what it returned.
// Once the server is forced to stop (Shutdown's context ended, or Close) it waits
// abandonWait more at most: a Runner still running then ignored its context (which
// ended when the shutdown began) and is abandoned, left to end on its own, and
// recorded for Shutdown and Close to name.
func (ss *session) serve(ctx context.Context, d *Data, t *testRun) (Results, error) {
	s := ss.s
	type served struct {
		res Results
		err error
	}
	ch := make(chan served, 1)
	go func() {
		res, err := s.runner.Serve(ctx, d)
		s.testsMu.Lock()
		t.returned = true
		delete(s.abandoned, t)
		s.testsMu.Unlock()
		ch <- served{res, err}
	}()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-s.forced:
	}
	timer := time.NewTimer(abandonWait)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-timer.C:
	}
	s.testsMu.Lock()
	returned := t.returned
	if !returned {
		s.abandoned[t] = struct{}{}
	}
	s.testsMu.Unlock()
	if returned {
		r := <-ch
		return r.res, r.err
	}
	s.st.abandoned.Add(1)
	return Results{}, fmt.Errorf("remote: the server's Runner did not return %v after the server was forced to stop: abandoned", abandonWait)
}

// heartbeats sends a heartbeat every HeartbeatInterval until stop or ctx ends; a
// failed write cancels the test.
func heartbeats(ctx context.Context, cc *ControlConn, stop <-chan struct{}, cancel context.CancelCauseFunc) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
			if err := cc.WriteMsg(&Heartbeat{}); err != nil {
				cancel(fmt.Errorf("%w: heartbeat: %v", ErrPeerLost, err))
				return
			}
		}
	}
}

// isTimeout reports whether err is an expired deadline.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// addrPort returns a TCP or UDP address as an AddrPort, IPv4-mapped addresses
// unmapped; the zero AddrPort for another kind.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return unmapAP(a.AddrPort())
	case *net.UDPAddr:
		return unmapAP(a.AddrPort())
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return unmapAP(ap)
	}
	return netip.AddrPort{}
}
