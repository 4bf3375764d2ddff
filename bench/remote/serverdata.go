package remote

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

// serverData is a test's data path on the server while it is being set up: a TCP
// listener, or one UDP socket per stream, open only between accept and start.
type serverData struct {
	ss    *session
	req   TestRequest
	token []byte
	ports []uint16

	ln     *net.TCPListener // tcp
	udps   []*udpValidator  // udp
	listen *net.UDPConn     // udp in listen mode: the socket new clients talk to

	wg       sync.WaitGroup // setup goroutines
	mu       sync.Mutex     // guards conns, full
	conns    []net.Conn     // tcp: matched data connections, in arrival order
	full     chan struct{}  // closed when len(conns) == req.Streams
	handedOn bool           // conns and sockets belong to a Data now; guarded by mu
	foreign  atomic.Uint64  // tcp: connections from another address than the client's, closed
}

// maxChallenges bounds the challenges one UDP socket sends to one address during
// setup; maxIssued bounds the challenges it remembers (the oldest is forgotten).
const (
	maxChallenges = 8
	maxIssued     = 64
)

// udpValidator reads probes on one UDP socket during setup and answers each, within
// the amplification budget, with a challenge the client must return in start.
type udpValidator struct {
	sd   *serverData
	conn *net.UDPConn

	mu     sync.Mutex // guards issued, probes
	issued []issuedChallenge
	probes int        // probes with the token from the control peer's IP address
	amp    *ampBudget // used by run's goroutine only
}

type issuedChallenge struct {
	value []byte
	to    netip.AddrPort
}

func openServerData(ss *session, req TestRequest) (*serverData, error) {
	token, err := randomBytes(tokenLen)
	if err != nil {
		return nil, err
	}
	sd := &serverData{ss: ss, req: req, token: token, full: make(chan struct{})}
	ip := ss.localIP
	switch req.Transport {
	case "tcp":
		network := "tcp4"
		if ip.Is6() {
			network = "tcp6"
		}
		lc := net.ListenConfig{Control: tcpControl(req.Sockets)} // accepted connections inherit the buffer sizes
		port, err := ss.s.openPort(func(port uint16) (uint16, error) {
			l, err := lc.Listen(context.Background(), network, netip.AddrPortFrom(ip, port).String())
			if err != nil {
				return 0, err
			}
			ln := l.(*net.TCPListener)
			sd.ln = ln
			return uint16(ln.Addr().(*net.TCPAddr).Port), nil
		})
		if err != nil {
			return nil, err
		}
		sd.ports = []uint16{port}
	case "udp":
		network := "udp4"
		if ip.Is6() {
			network = "udp6"
		}
		for range req.Streams {
			port, err := ss.s.openPort(func(port uint16) (uint16, error) {
				c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
				if err != nil {
					return 0, err
				}
				if err := setUDPBuffers(c, req.Sockets); err != nil {
					c.Close()
					return 0, err
				}
				sd.udps = append(sd.udps, &udpValidator{sd: sd, conn: c, amp: newAmpBudget()})
				return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
			})
			if err != nil {
				sd.close()
				return nil, err
			}
			sd.ports = append(sd.ports, port)
		}
		if req.Listen {
			port, err := ss.s.openPort(func(port uint16) (uint16, error) {
				c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
				if err != nil {
					return 0, err
				}
				if err := setUDPBuffers(c, req.Sockets); err != nil {
					c.Close()
					return 0, err
				}
				sd.listen = c
				return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
			})
			if err != nil {
				sd.close()
				return nil, err
			}
			sd.ports = append(sd.ports, port)
		}
	default:
		return nil, fmt.Errorf("transport %q", req.Transport)
	}
	return sd, nil
}

// maxPortTries bounds the ports openPort tries for one socket.
const maxPortTries = 1024

// A PortsError refuses a test because no port of the server's --data-ports was
// free for one of its data sockets.
type PortsError struct {
	Range PortRange // --data-ports
	Tried int       // ports tried, all in use
}

func (e *PortsError) Error() string {
	return fmt.Sprintf("refused: no free port in the server's --data-ports %s: %d tried, all in use (by other tests, or other programs)", e.Range, e.Tried)
}

// openPort opens one data socket with open, which binds it to the port it is given
// and returns the port it got. Without --data-ports that is port 0, an ephemeral
// port. With it, openPort tries the range's ports in order, from where the previous
// search ended (a random port at start, so that concurrent tests and restarts
// spread), wrapping, at most maxPortTries of them: a port in use is skipped, any
// other error returned, and a range with no free port is a *PortsError.
func (s *Server) openPort(open func(port uint16) (uint16, error)) (uint16, error) {
	r := s.limits.DataPorts
	n := r.Len()
	if n == 0 {
		return open(0)
	}
	tries := min(n, maxPortTries)
	for range tries {
		port, err := open(r.Lo + uint16((s.nextPort.Add(1)-1)%uint32(n)))
		if err == nil {
			return port, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return 0, err
		}
	}
	return 0, &PortsError{Range: r, Tried: tries}
}

// startSetup starts the goroutines that match data connections (tcp) or answer
// probes (udp) until ctx ends.
func (sd *serverData) startSetup(ctx context.Context) {
	if sd.ln != nil {
		sd.wg.Add(1)
		go func() {
			defer sd.wg.Done()
			sd.acceptData(ctx)
		}()
	}
	for _, v := range sd.udps {
		sd.wg.Add(1)
		go func() {
			defer sd.wg.Done()
			v.run(ctx)
		}()
	}
}

// waitSetup waits for the setup goroutines; their context must be done.
func (sd *serverData) waitSetup() { sd.wg.Wait() }

// maxDataAttempts bounds the data connections from the client's address that a TCP
// test's setup takes (each may be read for the token): streams plus room for a
// client's retries.
func maxDataAttempts(streams int) int { return 4*streams + 16 }

// acceptData accepts data connections until req.Streams carried the token from the
// control peer's address, or ctx ends (the setup's deadline, --handshake-timeout).
// Connections from the control peer's address are bounded in number
// (maxDataAttempts), at most streams+4 read at once, each until ctx's deadline.
// Connections from another address (foreign) spend none of that: each is reset at
// once, unread, with no goroutine, and counted (sd.foreign, Stats.DataForeign), so
// what a third party costs the setup is an accept and a close per connection it
// opens itself, and only until the setup's deadline. A count cap on them would hand
// the third party the lever this removes: reach it, and the client's connection,
// behind theirs in the backlog, is never taken.
func (sd *serverData) acceptData(ctx context.Context) {
	st := &sd.ss.s.st
	ln := sd.ln // finishSetup may take sd.ln once this returns; stop waits for the watcher
	stop := ctxwatch.OnDone(ctx, func() { ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	pending := make(chan struct{}, sd.req.Streams+4) // token reads at once
	for attempts := 0; attempts < maxDataAttempts(sd.req.Streams); {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if ip, _ := addrIP(c.RemoteAddr()); ip != sd.ss.peerIP {
			st.dataRejected.Add(1)
			st.dataForeign.Add(1)
			sd.foreign.Add(1)
			resetClose(c)
			continue
		}
		attempts++
		select {
		case pending <- struct{}{}:
		default:
			st.dataRejected.Add(1)
			c.Close()
			continue
		}
		sd.wg.Add(1)
		go func() {
			defer sd.wg.Done()
			defer func() { <-pending }()
			if !sd.readToken(ctx, c) {
				st.dataRejected.Add(1)
				c.Close()
			}
		}()
		select {
		case <-sd.full:
			return
		default:
		}
	}
}

// resetClose closes c with a reset, leaving no TIME_WAIT state on the server: for
// connections it refuses unread.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// readToken reads the 16-byte token that opens a data connection and keeps c if it
// matches and a stream is still free.
func (sd *serverData) readToken(ctx context.Context, c net.Conn) bool {
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	stop := ctxwatch.OnDone(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	var tok [tokenLen]byte
	_, err := io.ReadFull(c, tok[:])
	if !stop() || err != nil || subtle.ConstantTimeCompare(tok[:], sd.token) != 1 {
		return false
	}
	c.SetReadDeadline(time.Time{})
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if sd.handedOn || len(sd.conns) >= sd.req.Streams {
		return false
	}
	if tcpBuffersAfter(c, sd.req.Sockets) != nil {
		return false
	}
	sd.conns = append(sd.conns, c)
	if len(sd.conns) == sd.req.Streams {
		close(sd.full)
	}
	return true
}

// run answers probes on one UDP socket until ctx ends. Only a datagram from the
// control peer's IP address with the token and the probe kind is answered, only
// while the address's amplification budget allows, and at most maxChallenges times
// per address.
func (v *udpValidator) run(ctx context.Context) {
	st := &v.sd.ss.s.st
	if dl, ok := ctx.Deadline(); ok {
		v.conn.SetReadDeadline(dl)
	}
	// Waited for: a late deadline would land on the path's socket after it was handed on.
	stop := ctxwatch.OnDone(ctx, func() { v.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 65536)
	for errs := 0; errs < 100; {
		n, src, err := v.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || isTimeout(err) || errors.Is(err, net.ErrClosed) {
				return
			}
			errs++
			continue // an ICMP error from an earlier challenge: harmless here
		}
		src = unmapAP(src)
		st.udpRecvUnvalidated.Add(uint64(n))
		if src.Addr() != v.sd.ss.peerIP {
			st.udpIgnored.Add(1)
			continue
		}
		kind, _, err := parseDatagram(buf[:n], v.sd.token)
		if err != nil || kind != kindProbe {
			st.udpIgnored.Add(1)
			continue
		}
		v.mu.Lock()
		v.probes++
		v.mu.Unlock()
		v.amp.received(src, n)
		if !v.amp.spendChallenge(src, challengeDgm) {
			continue
		}
		value, err := randomBytes(challengeLen)
		if err != nil {
			continue
		}
		out := appendDatagram(make([]byte, 0, challengeDgm), v.sd.token, kindChallenge, value)
		if _, err := v.conn.WriteToUDPAddrPort(out, src); err != nil {
			continue
		}
		st.udpSentUnvalidated.Add(uint64(len(out)))
		v.mu.Lock()
		if len(v.issued) >= maxIssued {
			v.issued = append(v.issued[:0], v.issued[1:]...)
		}
		v.issued = append(v.issued, issuedChallenge{value, src})
		v.mu.Unlock()
	}
}

// probed returns how many probes from the control peer arrived, and how many
// challenges answered them.
func (v *udpValidator) probed() (probes, challenges int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.probes, len(v.issued)
}

// validated returns the address the challenge proof was sent to.
func (v *udpValidator) validated(proof []byte) (netip.AddrPort, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var found netip.AddrPort
	ok := false
	for _, c := range v.issued { // every one compared, in constant time
		if subtle.ConstantTimeCompare(c.value, proof) == 1 {
			found, ok = c.to, true
		}
	}
	return found, ok
}

// finishSetup ends the setup once the client said start: TCP waits (until the setup
// deadline) for every stream's connection; UDP checks each socket's proof and
// connects the socket to the validated address. It stops the setup goroutines and
// returns the Data the Runner gets; from then on the Data owns the connections.
func (sd *serverData) finishSetup(ctx context.Context, cancel context.CancelFunc, proofs [][]byte) (*Data, error) {
	d := &Data{Request: sd.req, Peer: sd.ss.peer, ports: sd.ss.s.openPort, localIP: sd.ss.localIP}
	if sd.ln != nil {
		var err error
		if len(proofs) != 0 {
			err = fmt.Errorf("start: tcp takes no paths, got %d", len(proofs))
		} else {
			select {
			case <-sd.full:
			case <-ctx.Done():
				sd.mu.Lock()
				err = fmt.Errorf("data path: %d of %d tcp connections arrived with the token within --handshake-timeout %v", len(sd.conns), sd.req.Streams, sd.ss.s.limits.HandshakeTimeout)
				sd.mu.Unlock()
			}
		}
		cancel()
		if !sd.req.Listen {
			sd.ln.Close()
		}
		sd.waitSetup()
		if n := sd.foreign.Load(); n > 0 {
			sd.ss.logTest("test %d: %s from other addresses than the client's closed unread during its setup", sd.req.ID, plural(n, "data connection"))
		}
		if err != nil {
			return nil, err
		}
		sd.mu.Lock()
		sd.handedOn = true
		if sd.req.Listen {
			// The listener now belongs to the Data: it keeps taking new clients.
			d.listenTCP = newTCPListen(sd.ln, sd.token, sd.ss.peerIP, &sd.ss.s.st.dataRejected)
			d.closers = append(d.closers, d.listenTCP)
			sd.ln = nil
		}
		for _, c := range sd.conns {
			d.Conns = append(d.Conns, c)
			d.closers = append(d.closers, c)
		}
		sd.conns = nil
		sd.mu.Unlock()
		return d, nil
	}
	cancel()
	sd.waitSetup()
	if len(proofs) != len(sd.udps) {
		return nil, fmt.Errorf("start: %d udp path proofs for %d sockets", len(proofs), len(sd.udps))
	}
	var paths []*UDPPath
	for i, v := range sd.udps {
		peer, ok := v.validated(proofs[i])
		if !ok {
			return nil, fmt.Errorf("udp path %d (port %d) not validated: no challenge sent by this server matches (did the probes arrive?)", i, sd.ports[i])
		}
		if err := connectUDP(v.conn, peer); err != nil {
			return nil, fmt.Errorf("udp path %d: %w", i, err)
		}
		v.conn.SetReadDeadline(time.Time{})
		paths = append(paths, &UDPPath{conn: v.conn, token: sd.token, peer: peer, opts: sd.req.Sockets})
	}
	sd.mu.Lock()
	sd.handedOn = true
	sd.mu.Unlock()
	for _, p := range paths {
		d.Paths = append(d.Paths, p)
		d.closers = append(d.closers, p.conn)
	}
	if sd.listen != nil {
		d.Listener = newUDPListener(sd.listen, sd.token, sd.ss.peerIP)
		d.closers = append(d.closers, sd.listen)
	}
	return d, nil
}

// stalled says, for a test whose start did not come, what the setup goroutines saw of
// the client's data path: which TCP connections or UDP probes never arrived. Call it
// after waitSetup.
func (sd *serverData) stalled() string {
	if sd.req.Transport == "tcp" {
		sd.mu.Lock()
		n := len(sd.conns)
		sd.mu.Unlock()
		if n < sd.req.Streams {
			return fmt.Sprintf("%d of %d tcp connections arrived with the token", n, sd.req.Streams)
		}
		return fmt.Sprintf("all %d tcp connections arrived with the token, but no start came", n)
	}
	var silent, answered []string
	for i, v := range sd.udps {
		probes, challenges := v.probed()
		path := fmt.Sprintf("udp path %d (port %d)", i, sd.ports[i])
		if probes == 0 {
			silent = append(silent, path)
		} else {
			answered = append(answered, fmt.Sprintf("%s: %d probes arrived, %d challenges sent", path, probes, challenges))
		}
	}
	if len(silent) > 0 {
		return fmt.Sprintf("%s: no probe arrived from the client (is udp blocked between the hosts?)", strings.Join(silent, ", "))
	}
	if len(answered) > 0 {
		return strings.Join(answered, "; ") + "; but no start came (are the challenges blocked on their way back?)"
	}
	return "no start came"
}

// close closes whatever the setup still owns.
func (sd *serverData) close() {
	if sd.ln != nil {
		sd.ln.Close()
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for _, c := range sd.conns {
		c.Close()
	}
	sd.conns = nil
	if !sd.handedOn {
		for _, v := range sd.udps {
			v.conn.Close()
		}
		if sd.listen != nil {
			sd.listen.Close()
		}
	}
}
