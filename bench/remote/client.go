package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

// ErrServerLost means the server stopped answering during a test: no message within
// the client's Timeout, or the control connection closed.
var ErrServerLost = errors.New("remote: server lost")

// A Dialer opens sessions with a server.
type Dialer struct {
	Key      []byte        // pre-shared key (LoadKey); nil = none, only for a server that has none either
	Timeout  time.Duration // bounds every control read, the handshake and the data path setup; default 10 s
	Driver   Driver        // the client's half of tests; required
	Software string        // sent in hello; informational
}

// defaultClientTimeout is Dialer.Timeout's default.
const defaultClientTimeout = 10 * time.Second

// A Client is one session with a server; it runs tests one at a time.
type Client struct {
	cc       *ControlConn
	timeout  time.Duration
	driver   Driver
	serverIP netip.Addr
	server   netip.AddrPort // the control connection's peer: Data.Peer
	limits   WireLimits
	listen   bool // the server offers CapListen
	sockets  bool // the server offers CapSockets
	verify   bool // the server offers CapVerify
	gro      bool // the server offers CapGRO

	runMu  sync.Mutex // held by Run: one test at a time
	nextID uint32     // guarded by runMu
	mu     sync.Mutex // guards broken
	broken error      // set when the session cannot go on
}

// Dial opens a session: the handshake, with mutual authentication when there is a key.
// A client with a key refuses a server without one (it could be anyone), and the other
// way round.
func (dl *Dialer) Dial(ctx context.Context, addr string) (*Client, error) {
	if dl.Driver == nil {
		return nil, errors.New("remote: Dialer.Driver is required: it runs the client's half of the tests")
	}
	if err := checkKey(dl.Key); err != nil {
		return nil, err
	}
	to := dl.Timeout
	if to <= 0 {
		to = defaultClientTimeout
	}
	nd := net.Dialer{Timeout: to}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("remote: dial %s: %w", addr, err)
	}
	cl := &Client{cc: NewControlConn(c), timeout: to, driver: dl.Driver}
	cl.server = addrPort(c.RemoteAddr())
	cl.serverIP = cl.server.Addr()
	cl.cc.SetSessionDeadline(time.Now().Add(to))
	if err := cl.handshake(ctx, dl.Key, dl.Software); err != nil {
		c.Close()
		return nil, fmt.Errorf("remote: %s: %w", addr, err)
	}
	cl.cc.SetSessionDeadline(time.Time{})
	return cl, nil
}

// handshake runs the client's side of the handshake. A server that turns the
// connection away at once (busy: --pre-auth-conns) sends a refuse instead of the
// challenge, possibly before the hello arrived: the refuse is read even when writing
// the hello failed, and returned as a *RefusedError.
func (cl *Client) handshake(ctx context.Context, key []byte, software string) error {
	werr := cl.cc.WriteMsg(&Hello{Software: software, Caps: []string{CapListen, CapSent, CapSockets, CapVerify, CapGRO}})
	if werr != nil && isTimeout(werr) {
		return werr // the server does not read: nothing will come either
	}
	ch, err := expect[*Challenge](ctx, cl.cc, cl.timeout)
	var re *RefusedError
	switch {
	case errors.As(err, &re):
		return err
	case werr != nil:
		return werr
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("the server closed the connection before its challenge, without saying why (too busy even to refuse, or not a tcpvsudp server?); try again: %w", err)
	case err != nil:
		return err
	}
	cl.listen = slices.Contains(ch.Caps, CapListen)
	cl.sockets = slices.Contains(ch.Caps, CapSockets)
	cl.verify = slices.Contains(ch.Caps, CapVerify)
	cl.gro = slices.Contains(ch.Caps, CapGRO)
	switch {
	case ch.Auth == AuthNone && key != nil:
		return fmt.Errorf("%w: the server has no key, so it cannot prove who it is; refusing (run the server with --key-file, or the client without)", ErrAuth)
	case ch.Auth == AuthHMAC && key == nil:
		return fmt.Errorf("%w: the server requires a key: pass --key-file", ErrAuth)
	}
	clientNonce, err := newNonce()
	if err != nil {
		return err
	}
	auth := &Auth{Nonce: clientNonce}
	if key != nil {
		auth.MAC = ClientMAC(key, ch.Nonce, clientNonce)
	}
	if err := cl.cc.WriteMsg(auth); err != nil {
		return err
	}
	ok, err := expect[*AuthOK](ctx, cl.cc, cl.timeout)
	if err != nil {
		return err
	}
	if key != nil && (ok.MAC == nil || !verifyMAC(ServerMAC(key, ch.Nonce, clientNonce), ok.MAC)) {
		return fmt.Errorf("%w: the server's proof is wrong: it does not hold this key", ErrAuth)
	}
	cl.limits = ok.Limits
	return nil
}

// Limits returns the limits the server announced.
func (cl *Client) Limits() WireLimits { return cl.limits }

// LocalAddr returns the control connection's local address: the one the server's
// log lines and Data.Peer name this session by (unless a NAT rewrites it).
func (cl *Client) LocalAddr() net.Addr { return cl.cc.Conn().LocalAddr() }

// Close ends the session: a bye, then the connection closes. A Run in progress
// returns with an error.
func (cl *Client) Close() error {
	cl.mu.Lock()
	broken := cl.broken
	if broken == nil {
		cl.broken = errors.New("remote: client closed")
	}
	cl.mu.Unlock()
	if broken == nil {
		cl.cc.WriteMsg(&Bye{Reason: "client done"})
	}
	return cl.cc.Close()
}

// Broken is why the session became unusable (the server lost, a protocol error);
// nil while it is usable.
func (cl *Client) Broken() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.broken
}

// Run runs one test and returns both sides' results. A refused test returns a
// *RefusedError and leaves the session usable; so does a test whose data path could
// not be set up (the server refuses it, saying what failed), and one that ran and
// failed on either side once both sides' results crossed (a *TestError). If the server is lost
// mid-test, Run returns within the client's Timeout with an error wrapping
// ErrServerLost and what this side measured, marked incomplete; the session is then
// unusable.
func (cl *Client) Run(ctx context.Context, req TestRequest) (TestResults, error) {
	cl.runMu.Lock()
	defer cl.runMu.Unlock()
	cl.mu.Lock()
	broken := cl.broken
	cl.mu.Unlock()
	if broken != nil {
		return TestResults{Request: req}, fmt.Errorf("remote: session unusable: %w", broken)
	}
	cl.nextID++
	req.ID = cl.nextID
	if req.Sockets.GRO && !cl.gro {
		// An older server: its end keeps one datagram per packet (its report says
		// gro false), and this end does the same, so both ends receive alike.
		req.Sockets.GRO = false
	}
	out := TestResults{Request: req}
	if err := req.Validate(); err != nil {
		return out, err
	}
	if req.Listen && !cl.listen {
		return out, fmt.Errorf("remote: listen: the server does not offer the %q capability (an older tcpvsudp serve?)", CapListen)
	}
	if !req.Sockets.IsZero() && !cl.sockets {
		return out, fmt.Errorf("remote: sockets: the server does not offer the %q capability (an older tcpvsudp serve?): it cannot apply the socket options asked for (%s) to its end", CapSockets, req.Sockets)
	}
	if req.Sockets.Verify != "" && req.Sockets.Verify != VerifyPayload && !cl.verify {
		return out, fmt.Errorf("remote: sockets.verify: the server does not offer the %q capability (an older tcpvsudp serve?): its receivers check every payload, "+
			"so it cannot run with --verify %s; run without it, or upgrade the server", CapVerify, req.Sockets.Verify)
	}
	if !cl.verify {
		req.Sockets.Verify = "" // the default: a server without CapVerify checks payloads, and reads no "verify"
	}
	res, err := cl.run(ctx, req)
	if err != nil {
		var re *RefusedError
		var te *TestError
		if !errors.As(err, &te) && (!errors.As(err, &re) || re.ID == 0) {
			cl.mu.Lock()
			cl.broken = err
			cl.mu.Unlock()
		}
	}
	return res, err
}

func (cl *Client) run(ctx context.Context, req TestRequest) (TestResults, error) {
	out := TestResults{Request: req}
	if err := cl.cc.WriteMsg(req.wire()); err != nil {
		return out, err
	}
	acc, err := expect[*Accept](ctx, cl.cc, cl.timeout)
	if err != nil {
		return out, err
	}
	want := 1
	if req.Transport == "udp" {
		want = req.Streams
		if req.Listen {
			want++ // the listener's port, last
		}
	}
	if acc.ID != req.ID || len(acc.Ports) != want {
		return out, fmt.Errorf("%w: accept for test %d with %d ports; want test %d with %d", ErrUnexpected, acc.ID, len(acc.Ports), req.ID, want)
	}
	d, err := cl.setup(ctx, req, acc)
	if err != nil {
		return out, err
	}
	defer d.close()
	d.Started = time.Now()

	testCtx, cancelTest := context.WithCancelCause(ctx)
	defer cancelTest(nil)
	p := &pacer{rateBps: float64(req.RateBps), done: testCtx.Done()}
	d.pacer = p
	for i, c := range d.Conns {
		d.Conns[i] = &pacedConn{Conn: c, pacer: p}
	}
	for _, path := range d.Paths {
		path.pacer = p
	}
	stopInterrupt := ctxwatch.OnDone(testCtx, d.interrupt)
	defer stopInterrupt()
	peerDone := make(chan struct{}) // closed at the server's "sent", before the Driver reads it
	d.peerDone = peerDone

	var wg sync.WaitGroup
	var readErr error // the reader's; read after readerDone
	var server *ResultsMsg
	hbStop := make(chan struct{})
	readerDone := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(readerDone)
		for {
			m, err := cl.cc.ReadMsg(ctx, cl.timeout)
			if err != nil {
				if ctx.Err() != nil {
					readErr = fmt.Errorf("remote: test %d: %w", req.ID, context.Cause(ctx))
				} else {
					readErr = fmt.Errorf("%w: %v", ErrServerLost, err)
				}
				cancelTest(readErr)
				return
			}
			switch m := m.(type) {
			case *Heartbeat:
			case *Sent:
				select {
				case <-peerDone:
					readErr = fmt.Errorf("%w: a second sent for test %d", ErrUnexpected, req.ID)
				default:
					if m.ID != req.ID {
						readErr = fmt.Errorf("%w: sent for test %d during test %d", ErrUnexpected, m.ID, req.ID)
					}
				}
				if readErr != nil {
					cancelTest(readErr)
					return
				}
				d.peerCounters = m.Counters
				close(peerDone)
			case *ResultsMsg:
				if m.ID != req.ID {
					readErr = fmt.Errorf("%w: results for test %d during test %d", ErrUnexpected, m.ID, req.ID)
					cancelTest(readErr)
					return
				}
				server = m
				if !m.Complete {
					// Early, or failed: the server's half is over, so is the test.
					cancelTest(fmt.Errorf("remote: the server ended test %d: %s", req.ID, m.Error))
				}
				return
			case *Bye:
				readErr = fmt.Errorf("%w: server said bye: %s", ErrServerLost, m.Reason)
				cancelTest(readErr)
				return
			case *Refuse:
				readErr = &RefusedError{ID: m.ID, Limit: m.Limit, Reason: m.Error}
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
		heartbeats(testCtx, cl.cc, hbStop, cancelTest)
	}()

	local, derr := cl.driver.Drive(testCtx, d)
	if derr != nil {
		local.Complete = false
		if local.Error == "" {
			local.Error = derr.Error()
		}
	}
	local.Error = truncate(sanitize(local.Error), maxErrStr-8)
	out.Client = local
	d.interrupt()
	if context.Cause(testCtx) == nil {
		cl.cc.WriteMsg(&ResultsMsg{ID: req.ID, Complete: local.Complete, Error: local.Error, Counters: local.Counters})
	}
	<-readerDone // the reader ends with the server's results, an error, or the timeout
	close(hbStop)
	wg.Wait()

	if server != nil {
		out.Server = Results{Complete: server.Complete, Error: server.Error, Counters: server.Counters}
		out.Overlap = server.Overlap
	}
	out.Complete = server != nil && server.Complete && local.Complete
	if readErr != nil {
		return out, readErr
	}
	// Both sides' results crossed: whatever failed, the session is in step.
	if server != nil && !server.Complete {
		return out, &TestError{ID: req.ID, Err: fmt.Errorf("remote: test %d incomplete on the server: %s", req.ID, server.Error)}
	}
	if cause := context.Cause(testCtx); cause != nil && derr != nil {
		return out, &TestError{ID: req.ID, Err: fmt.Errorf("remote: test %d: %w", req.ID, cause)}
	}
	if derr != nil {
		return out, &TestError{ID: req.ID, Err: fmt.Errorf("remote: test %d: %w", req.ID, derr)}
	}
	return out, nil
}

// TestError is a test that ran and failed on either side, after both sides' results
// were exchanged: the session is in step and stays usable for the next test.
type TestError struct {
	ID  uint32
	Err error
}

func (e *TestError) Error() string { return e.Err.Error() }
func (e *TestError) Unwrap() error { return e.Err }

// setup opens the data path within the client's timeout and says start, while a
// reader waits for the server's answer: its start, or a refusal (its
// --handshake-timeout passed first), which stops the opening at once. If the opening
// fails here, the client gives the test up with results (complete false) and the
// server answers with a refusal. Either refusal, a *RefusedError, leaves the session
// usable.
func (cl *Client) setup(ctx context.Context, req TestRequest, acc *Accept) (*Data, error) {
	setupCtx, cancelSetup := context.WithTimeout(ctx, cl.timeout)
	defer cancelSetup()
	type answer struct {
		start *Start
		err   error
	}
	answered := make(chan answer, 1)
	go func() {
		// The opening takes at most timeout, the answer to start at most timeout more.
		st, err := expect[*Start](ctx, cl.cc, 2*cl.timeout)
		cancelSetup()
		answered <- answer{st, err}
	}()
	// wait waits for the reader, after this side's last message of the setup (msg):
	// the server's answer then comes within the timeout. With msg nil, or if it
	// cannot be sent, the reader is stopped.
	wait := func(msg Msg) answer {
		if msg != nil {
			if err := cl.cc.WriteMsg(msg); err != nil {
				cl.cc.poke()
				<-answered
				return answer{err: err}
			}
			cl.cc.Conn().SetReadDeadline(cl.cc.bound(cl.timeout))
		} else {
			cl.cc.poke()
		}
		return <-answered
	}
	refused := func(err error) error {
		var re *RefusedError
		if errors.As(err, &re) && re.ID != 0 && re.ID != req.ID {
			return fmt.Errorf("%w: refuse for test %d during test %d", ErrUnexpected, re.ID, req.ID)
		}
		return err
	}

	d, proofs, err := cl.openData(setupCtx, req, acc)
	if err == nil {
		select {
		case a := <-answered: // refused while the path opened: no start
			d.close()
			if a.err == nil {
				a.err = fmt.Errorf("%w: start for test %d before the client's", ErrUnexpected, req.ID)
			}
			return nil, refused(a.err)
		default:
		}
		a := wait(&Start{ID: req.ID, Paths: proofs})
		if a.err == nil && a.start.ID != req.ID {
			a.err = fmt.Errorf("%w: start for test %d during test %d", ErrUnexpected, a.start.ID, req.ID)
		}
		if a.err != nil {
			d.close()
			return nil, refused(a.err)
		}
		return d, nil
	}
	if ctx.Err() == nil && (errors.Is(setupCtx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
		err = fmt.Errorf("remote: data path not open within the client's timeout %v: %w", cl.timeout, err)
	} else {
		err = fmt.Errorf("remote: data path: %w", err)
	}
	select {
	case a := <-answered: // the server's answer stopped the opening
		if a.err == nil {
			a.err = fmt.Errorf("%w: start for test %d before the client's", ErrUnexpected, req.ID)
		}
		return nil, refused(a.err)
	default:
	}
	if ctx.Err() != nil {
		wait(nil)
		return nil, err
	}
	// Give the test up; the server answers with a refusal that says what it saw.
	a := wait(&ResultsMsg{ID: req.ID, Complete: false, Error: truncate(sanitize(err.Error()), maxErrStr-8)})
	var re *RefusedError
	switch {
	case a.err == nil:
		return nil, fmt.Errorf("%w: start for test %d after the client gave it up", ErrUnexpected, req.ID)
	case errors.As(a.err, &re) && re.ID == req.ID:
		return nil, a.err
	}
	return nil, fmt.Errorf("%w (then: %w)", err, refused(a.err))
}

// openData opens the client's end of the data path: TCP connections that each begin
// with the token, or UDP sockets that probe until each gets its challenge.
func (cl *Client) openData(ctx context.Context, req TestRequest, acc *Accept) (*Data, [][]byte, error) {
	d := &Data{Request: req, Peer: cl.server, token: acc.Token}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	switch req.Transport {
	case "tcp":
		addr := netip.AddrPortFrom(cl.serverIP, acc.Ports[0]).String()
		if req.Listen {
			d.listenAddr = netip.AddrPortFrom(cl.serverIP, acc.Ports[0])
		}
		nd := net.Dialer{Control: tcpControl(req.Sockets)}
		for range req.Streams {
			c, err := nd.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, nil, err
			}
			d.Conns = append(d.Conns, c)
			d.closers = append(d.closers, c)
			if err := tcpBuffersAfter(c, req.Sockets); err != nil {
				return nil, nil, fmt.Errorf("tcp buffer sizes: %w", err)
			}
			if dl, ok := ctx.Deadline(); ok {
				c.SetWriteDeadline(dl)
			}
			if _, err := c.Write(acc.Token); err != nil {
				return nil, nil, err
			}
			c.SetWriteDeadline(time.Time{})
		}
		ok = true
		return d, nil, nil
	case "udp":
		var proofs [][]byte
		ports := acc.Ports
		if req.Listen {
			ports = ports[:len(ports)-1]
			d.listenAddr = netip.AddrPortFrom(cl.serverIP, acc.Ports[len(acc.Ports)-1])
		}
		for _, port := range ports {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(cl.serverIP, port)))
			if err != nil {
				return nil, nil, err
			}
			p := &UDPPath{conn: c, token: acc.Token, peer: netip.AddrPortFrom(cl.serverIP, port), connected: true, opts: req.Sockets}
			d.Paths = append(d.Paths, p)
			d.closers = append(d.closers, c)
			if err := setUDPBuffers(c, req.Sockets); err != nil {
				return nil, nil, fmt.Errorf("udp port %d: %w", port, err)
			}
			proof, err := probe(ctx, c, acc.Token)
			if err != nil {
				return nil, nil, fmt.Errorf("udp port %d: %w", port, err)
			}
			proofs = append(proofs, proof)
		}
		ok = true
		return d, proofs, nil
	}
	return nil, nil, fmt.Errorf("transport %q", req.Transport)
}

// probeInterval is how often a client resends its probe until a challenge comes.
const probeInterval = 100 * time.Millisecond

// probe sends probes on c until the server's challenge arrives or ctx ends, and
// returns the challenge.
func probe(ctx context.Context, c *net.UDPConn, token []byte) ([]byte, error) {
	msg := appendDatagram(nil, token, kindProbe, make([]byte, probeLen-udpPrefixLen))
	buf := make([]byte, 2048)
	defer c.SetReadDeadline(time.Time{})
	for attempt := 0; ctx.Err() == nil && attempt < 1000; attempt++ {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			// Past the deadline, though ctx's timer has not fired yet (a loaded
			// host runs it late): every read would time out at once.
			return nil, fmt.Errorf("no challenge from the server: %w", context.DeadlineExceeded)
		}
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		until := time.Now().Add(probeInterval)
		if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
			until = dl
		}
		c.SetReadDeadline(until)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if isTimeout(err) {
					break
				}
				return nil, err
			}
			if kind, body, err := parseDatagram(buf[:n], token); err == nil && kind == kindChallenge {
				return append([]byte(nil), body...), nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("no challenge from the server: %w", err)
	}
	return nil, errors.New("no challenge from the server")
}
