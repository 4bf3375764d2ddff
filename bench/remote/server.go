package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("remote: server closed")

// errShutdown is the cause sessions see when the server shuts down.
var errShutdown = errors.New("remote: server shutting down")

// Server is the remote end of tcpvsudp: it serves control sessions, each running
// tests one after another, under Limits. The zero value serves with the default
// limits, no key (loopback peers only) and StreamTest. Set the fields before Serve.
type Server struct {
	Key                  []byte // pre-shared key (LoadKey); nil = none
	AllowUnauthenticated bool   // without a key, accept any peer, not only loopback
	Limits               Limits // zero fields take DefaultLimits
	Runner               Runner // nil = StreamTest{}
	Software             string // sent in the challenge, e.g. "tcpvsudp 0.3"; informational
	// Logf, when set, receives one line per refused connection, session and test.
	Logf func(format string, args ...any)

	initOnce sync.Once
	initErr  error
	limits   Limits // Limits with defaults
	runner   Runner
	ctx      context.Context // done when the server shuts down
	cancel   context.CancelCauseFunc
	preAuth  chan struct{} // a slot per connection not yet authenticated
	sessions chan struct{} // a slot per authenticated session
	nonces   *nonceCache
	wg       sync.WaitGroup // Serve loops and connection handlers

	mu        sync.Mutex // guards listeners, conns, closed
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool

	testsMu sync.Mutex        // guards running
	running map[*testRun]bool // tests running now, for overlap

	st stats
}

// Stats count what a server did since it started; tests and operators read them.
type Stats struct {
	Accepted           uint64 // control connections accepted
	PreAuthRejected    uint64 // closed at accept: --pre-auth-conns already waiting
	HandshakeFailed    uint64 // closed during the handshake: timeout, malformed or unexpected message, peer gone
	Unauthenticated    uint64 // refused: no key and not a loopback peer
	AuthFailed         uint64 // refused: wrong key (MAC mismatch)
	Replayed           uint64 // refused: client nonce seen before
	SessionsRefused    uint64 // refused: --max-sessions reached
	Sessions           uint64 // sessions authenticated
	TestsRun           uint64 // tests started (start sent)
	TestsRefused       uint64 // tests refused (limits, runner, data path setup)
	DataRejected       uint64 // TCP data connections closed: another source address or token
	UDPIgnored         uint64 // datagrams dropped before validation: another source, token or kind
	UDPRecvUnvalidated uint64 // bytes received on UDP data sockets before validation
	UDPSentUnvalidated uint64 // bytes sent to addresses not (yet) validated: challenges only
	DataBytesSent      uint64 // data bytes sent on validated paths (TCP and UDP)
	Conns              int    // control connections open now
}

type stats struct {
	accepted, preAuthRejected, handshakeFailed, unauthenticated, authFailed, replayed atomic.Uint64
	sessionsRefused, sessions, testsRun, testsRefused, dataRejected, udpIgnored       atomic.Uint64
	udpRecvUnvalidated, udpSentUnvalidated, dataBytesSent                             atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.init()
	return Stats{
		Accepted: s.st.accepted.Load(), PreAuthRejected: s.st.preAuthRejected.Load(),
		HandshakeFailed: s.st.handshakeFailed.Load(), Unauthenticated: s.st.unauthenticated.Load(),
		AuthFailed: s.st.authFailed.Load(), Replayed: s.st.replayed.Load(),
		SessionsRefused: s.st.sessionsRefused.Load(), Sessions: s.st.sessions.Load(),
		TestsRun: s.st.testsRun.Load(), TestsRefused: s.st.testsRefused.Load(),
		DataRejected: s.st.dataRejected.Load(), UDPIgnored: s.st.udpIgnored.Load(),
		UDPRecvUnvalidated: s.st.udpRecvUnvalidated.Load(), UDPSentUnvalidated: s.st.udpSentUnvalidated.Load(),
		DataBytesSent: s.st.dataBytesSent.Load(), Conns: s.openConns(),
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
)

func (s *Server) init() error {
	s.initOnce.Do(func() {
		s.limits = s.Limits.WithDefaults()
		if err := s.limits.Validate(); err != nil {
			s.initErr = fmt.Errorf("remote: %w", err)
		}
		if err := checkKey(s.Key); err != nil {
			s.initErr = err
		}
		s.runner = s.Runner
		if s.runner == nil {
			s.runner = StreamTest{}
		}
		s.ctx, s.cancel = context.WithCancelCause(context.Background())
		s.preAuth = make(chan struct{}, s.limits.PreAuthConns)
		s.sessions = make(chan struct{}, s.limits.MaxSessions)
		s.nonces = newNonceCache(nonceCap, nonceWindow)
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
		s.running = map[*testRun]bool{}
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
		select {
		case s.preAuth <- struct{}{}:
		default:
			s.st.preAuthRejected.Add(1)
			c.Close()
			continue
		}
		if !s.track(c) {
			<-s.preAuth
			c.Close()
			return ErrServerClosed
		}
		go s.handle(c)
	}
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

// Shutdown stops accepting connections, ends every session (a running test stops and
// reports itself incomplete; then the server says bye), and waits for them. When ctx
// ends first it closes whatever is left, waits for it, and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeConns()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and connections closed, then waits for
// every session to end.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.closeConns()
	s.wg.Wait()
	return nil
}

// handle runs one control connection from accept to close. It holds a pre-auth slot
// until the handshake ends.
func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()
	cc := NewControlConn(c)
	cc.SetSessionDeadline(time.Now().Add(s.limits.HandshakeTimeout))
	err := s.handshake(cc)
	<-s.preAuth
	if err != nil {
		s.logf("remote: %v: handshake: %v", c.RemoteAddr(), err)
		return
	}
	defer func() { <-s.sessions }()
	s.st.sessions.Add(1)
	ends := time.Now().Add(s.limits.MaxSessionTime)
	cc.SetSessionDeadline(ends)
	ss := &session{s: s, cc: cc, ends: ends}
	ss.peerIP, _ = addrIP(c.RemoteAddr())
	ss.localIP, _ = addrIP(c.LocalAddr())
	err = ss.loop()
	s.logf("remote: %v: session ended: %v", c.RemoteAddr(), err)
}

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
// auth-ok. Any error closes the connection.
func (s *Server) handshake(cc *ControlConn) error {
	fail := func(n *atomic.Uint64, err error) error {
		n.Add(1)
		return err
	}
	hello, err := expect[*Hello](s.ctx, cc, s.limits.HandshakeTimeout)
	if err != nil {
		if isProtocolError(err) {
			refuse(cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
		}
		return fail(&s.st.handshakeFailed, err)
	}
	_ = hello // informational: software and caps
	if err := peerAllowed(cc.Conn().RemoteAddr(), s.Key != nil, s.AllowUnauthenticated); err != nil {
		s.st.unauthenticated.Add(1)
		refuse(cc, &Refuse{Error: err.Error()})
		return err
	}
	serverNonce, err := newNonce()
	if err != nil {
		return fail(&s.st.handshakeFailed, err)
	}
	method := AuthNone
	if s.Key != nil {
		method = AuthHMAC
	}
	if err := cc.WriteMsg(&Challenge{Nonce: serverNonce, Auth: method, Software: s.Software}); err != nil {
		return fail(&s.st.handshakeFailed, err)
	}
	auth, err := expect[*Auth](s.ctx, cc, s.limits.HandshakeTimeout)
	if err != nil {
		if isProtocolError(err) {
			refuse(cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
		}
		return fail(&s.st.handshakeFailed, err)
	}
	var proof []byte
	if s.Key != nil {
		if auth.MAC == nil || !verifyMAC(ClientMAC(s.Key, serverNonce, auth.Nonce), auth.MAC) {
			s.st.authFailed.Add(1)
			refuse(cc, &Refuse{Error: "authentication failed: wrong key"})
			return ErrAuth
		}
		if !s.nonces.add(auth.Nonce, time.Now()) {
			s.st.replayed.Add(1)
			refuse(cc, &Refuse{Error: "authentication failed: client nonce replayed"})
			return ErrReplay
		}
		proof = ServerMAC(s.Key, serverNonce, auth.Nonce)
	}
	select {
	case s.sessions <- struct{}{}:
	default:
		err := fmt.Errorf("refused: server busy: %d sessions running (--max-sessions %d)", s.limits.MaxSessions, s.limits.MaxSessions)
		s.st.sessionsRefused.Add(1)
		refuse(cc, &Refuse{Limit: "max-sessions", Error: err.Error()})
		return err
	}
	if err := cc.WriteMsg(&AuthOK{MAC: proof, Limits: s.limits.wire()}); err != nil {
		<-s.sessions
		return fail(&s.st.handshakeFailed, err)
	}
	return nil
}

// session is one authenticated control connection.
type session struct {
	s       *Server
	cc      *ControlConn
	peerIP  netip.Addr // the control connection's peer: the only source data may come from
	localIP netip.Addr // where data sockets listen
	ends    time.Time  // the session deadline (--max-session-time)
}

// loop reads test requests until bye, the idle timeout, the session deadline, a
// protocol error, or shutdown.
func (ss *session) loop() error {
	s := ss.s
	idleUntil := time.Now().Add(s.limits.IdleTimeout)
	idle := 0
	for {
		m, err := ss.cc.ReadMsg(s.ctx, time.Until(idleUntil))
		if err != nil {
			switch {
			case isProtocolError(err):
				refuse(ss.cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
			case s.ctx.Err() != nil:
				ss.bye("server shutting down")
			case isTimeout(err) && !time.Now().Before(idleUntil):
				ss.bye(fmt.Sprintf("idle timeout: no test for %v (--idle-timeout)", s.limits.IdleTimeout))
			case isTimeout(err):
				ss.bye(fmt.Sprintf("session time limit %v reached (--max-session-time)", s.limits.MaxSessionTime))
			}
			return err
		}
		switch m := m.(type) {
		case *Heartbeat:
			if idle++; idle > maxIdleMsgs {
				ss.bye(fmt.Sprintf("more than %d heartbeats without a test", maxIdleMsgs))
				return fmt.Errorf("%w: heartbeat flood", ErrUnexpected)
			}
			continue
		case *Bye:
			return nil
		case *Test:
			if err := ss.runTest(m.Request()); err != nil {
				switch {
				case s.ctx.Err() != nil:
					ss.bye("server shutting down")
				case isProtocolError(err):
					refuse(ss.cc, &Refuse{Error: truncate(sanitize(err.Error()), maxErrStr-8)})
				}
				return err
			}
			idle = 0
			idleUntil = time.Now().Add(s.limits.IdleTimeout)
		default:
			err := fmt.Errorf("%w: %s between tests", ErrUnexpected, m.Type())
			refuse(ss.cc, &Refuse{Error: err.Error()})
			return err
		}
	}
}

func (ss *session) bye(reason string) {
	if ss.cc.WriteMsg(&Bye{Reason: reason}) == nil {
		closeGently(ss.cc.Conn())
	}
}

// refuseTest refuses one test; the session goes on.
func (ss *session) refuseTest(id uint32, err error) error {
	ss.s.st.testsRefused.Add(1)
	r := &Refuse{ID: id, Error: truncate(sanitize(err.Error()), maxErrStr-8)}
	var le *LimitError
	if errors.As(err, &le) {
		r.Limit = le.Limit
	}
	ss.s.logf("remote: %v: test %d refused: %v", ss.cc.Conn().RemoteAddr(), id, err)
	return ss.cc.WriteMsg(r)
}

// sanitize replaces control characters, which the wire does not carry in text.
func sanitize(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r < 0x20 || r == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// testRun is one running test, for overlap accounting.
type testRun struct {
	overlap int // guarded by Server.testsMu
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
	if err := s.runner.Check(req); err != nil {
		return ss.refuseTest(req.ID, err)
	}
	if left := time.Until(ss.ends); req.Duration+runGrace > left {
		return ss.refuseTest(req.ID, &LimitError{"max-session-time", "duration", fmtDuration(req.Duration),
			fmt.Sprintf("%v (%v left in this session, %v of it kept for the end of the test)", fmtDuration(s.limits.MaxSessionTime), left.Round(time.Second), runGrace)})
	}
	sd, err := openServerData(ss, req)
	if err != nil {
		return ss.refuseTest(req.ID, fmt.Errorf("server: cannot open data sockets: %w", err))
	}
	defer sd.close()
	if err := ss.cc.WriteMsg(&Accept{ID: req.ID, Ports: sd.ports, Token: sd.token}); err != nil {
		return err
	}

	// Setup: the client opens the data path and says start.
	setupCtx, cancelSetup := context.WithTimeout(s.ctx, s.limits.HandshakeTimeout)
	defer cancelSetup()
	sd.startSetup(setupCtx)
	start, err := expect[*Start](setupCtx, ss.cc, s.limits.HandshakeTimeout)
	if err == nil && start.ID != req.ID {
		err = fmt.Errorf("%w: start for test %d during test %d", ErrUnexpected, start.ID, req.ID)
	}
	if err != nil {
		cancelSetup()
		sd.waitSetup()
		return err
	}
	d, err := sd.finishSetup(setupCtx, cancelSetup, start.Paths)
	if err != nil {
		return ss.refuseTest(req.ID, err)
	}
	return ss.run(req, d)
}

// run runs a test whose data path is open, then reports.
func (ss *session) run(req TestRequest, d *Data) error {
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
	p := &pacer{rateBps: rate, done: runCtx.Done(), alive: alive}
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
	stopInterrupt := context.AfterFunc(runCtx, d.interrupt)
	defer stopInterrupt()

	t := &testRun{}
	s.register(t)
	overlapDone := false
	defer func() {
		if !overlapDone {
			s.unregister(t)
		}
	}()
	d.Started = time.Now()
	if err := ss.cc.WriteMsg(&Start{ID: req.ID}); err != nil {
		return err
	}
	s.st.testsRun.Add(1)

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

	res, rerr := s.runner.Serve(runCtx, d)
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

	shutdown := s.ctx.Err() != nil
	if readErr != nil && !shutdown {
		return readErr // the session cannot go on
	}
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
	if err := ss.cc.WriteMsg(out); err != nil {
		return err
	}
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	return nil
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
