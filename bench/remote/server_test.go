package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// TestStream runs the built-in stream test end to end over both transports in every
// direction, with mutual authentication, and checks both sides' counts agree: TCP
// exactly; UDP as far as loopback promises under load (nothing invented, something
// delivered: a receiver the machine holds up loses datagrams to its socket buffer,
// which these counters do not count), the fraction delivered logged.
func TestStream(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)
	c := dial(t, addr, testKey)
	for _, transport := range []string{"tcp", "udp"} {
		for _, dir := range []Direction{Forward, Reverse, Bidir} {
			t.Run(fmt.Sprintf("transport=%s/direction=%s", transport, dir), func(t *testing.T) {
				req := quickRequest(transport, dir)
				req.Streams = 2
				res, err := c.Run(t.Context(), req)
				if err != nil {
					t.Fatalf("Run(%+v): %v", req, err)
				}
				if !res.Complete {
					t.Fatalf("incomplete: %+v", res)
				}
				cc, sc := counters(t, res.Client), counters(t, res.Server)
				t.Logf("client %+v", cc)
				t.Logf("server %+v", sc)
				check := func(who string, sent, recv uint64) {
					switch {
					case sent == 0:
						t.Errorf("%s sent nothing", who)
					case transport == "tcp" && recv != sent:
						t.Errorf("%s: sent %d bytes, the other side received %d", who, sent, recv)
					case recv > sent || recv == 0:
						t.Errorf("%s: sent %d bytes, the other side received %d; want 1..%d", who, sent, recv, sent)
					default:
						t.Logf("%s: the other side received %d of %d bytes (%.1f%%)", who, recv, sent, 100*float64(recv)/float64(sent))
					}
				}
				if dir.ClientSends() {
					check("client", cc.SentBytes, sc.RecvBytes)
				} else if cc.SentBytes != 0 {
					t.Errorf("client sent %d bytes in direction %s", cc.SentBytes, dir)
				}
				if dir.ServerSends() {
					check("server", sc.SentBytes, cc.RecvBytes)
				} else if sc.SentBytes != 0 {
					t.Errorf("server sent %d bytes in direction %s", sc.SentBytes, dir)
				}
			})
		}
	}
}

// TestServerPacesAtMaxRate: an unpaced request gets the server's --max-rate, and the
// server sends no faster (an upper bound only, which load cannot break: the pacer
// gives a late sender 2 ms of credit at most; a slow machine sends less).
func TestServerPacesAtMaxRate(t *testing.T) {
	const maxRate = 8e6
	s := &Server{Key: testKey, Limits: Limits{MaxRateBps: maxRate}}
	c := dial(t, startServer(t, s), testKey)
	for _, transport := range []string{"tcp", "udp"} {
		req := quickRequest(transport, Reverse)
		req.RateBps, req.Streams, req.Duration = 0, 3, 500*time.Millisecond
		res, err := c.Run(t.Context(), req)
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		sc := counters(t, res.Server)
		limit := uint64(maxRate*(req.Duration.Seconds()+0.05)/8) + uint64(req.Streams*req.Size)
		t.Logf("%s: server sent %d bytes in %v at --max-rate %v bits/s: %.1f%% of the pace", transport, sc.SentBytes, req.Duration, maxRate,
			100*float64(sc.SentBytes)*8/maxRate/req.Duration.Seconds())
		if sc.SentBytes > limit || sc.SentBytes == 0 {
			t.Errorf("%s: server sent %d bytes in %v at --max-rate %v bits/s; want 1..%d", transport, sc.SentBytes, req.Duration, maxRate, limit)
		}
	}
}

func TestAuthentication(t *testing.T) {
	keyed := &Server{Key: testKey}
	keyedAddr := startServer(t, keyed)
	open := &Server{}
	openAddr := startServer(t, open)

	for _, tc := range []struct {
		name   string
		addr   string
		key    []byte
		errHas string
	}{
		{"right key", keyedAddr, testKey, ""},
		{"wrong key", keyedAddr, []byte("another-key-0123456789"), "authentication failed: wrong key"},
		{"no key for a keyed server", keyedAddr, nil, "requires a key"},
		{"key for a keyless server", openAddr, testKey, "server has no key"},
		{"no key, no key, loopback", openAddr, nil, ""},
		{"short key", keyedAddr, []byte("short"), "need at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialStream(t.Context(), tc.addr, tc.key)
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				runQuick(t, c, "tcp", Forward)
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded, want an error saying %q", tc.errHas)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Dial error %q does not say %q", err, tc.errHas)
			}
		})
	}
	if st := keyed.Stats(); st.AuthFailed != 1 {
		t.Errorf("AuthFailed = %d, want 1 (%+v)", st.AuthFailed, st)
	}
}

// TestServerProofChecked: a server that does not hold the key cannot pass the
// client's check, even if it accepts the client's proof blindly.
func TestServerProofChecked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // an impostor: right protocol, wrong key
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cc := NewControlConn(c)
		ctx := context.Background()
		if _, err := cc.ReadMsg(ctx, 5*time.Second); err != nil {
			return
		}
		sn, _ := newNonce()
		cc.WriteMsg(&Challenge{Nonce: sn, Auth: AuthHMAC})
		m, err := cc.ReadMsg(ctx, 5*time.Second)
		if err != nil {
			return
		}
		a := m.(*Auth)
		cc.WriteMsg(&AuthOK{MAC: ServerMAC([]byte("impostor-key-0123456789"), sn, a.Nonce)})
		cc.ReadMsg(ctx, 5*time.Second) // until the client hangs up
	}()
	_, err = dialStream(t.Context(), ln.Addr().String(), testKey)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "server's proof is wrong") {
		t.Errorf("Dial to an impostor: %v, want ErrAuth about the server's proof", err)
	}
	wg.Wait()
}

// TestReplay: a recorded auth is refused on another connection, and a client nonce
// is refused the second time even with a valid MAC.
func TestReplay(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)

	r1 := dialRaw(t, addr)
	_, captured := r1.handshake(testKey)
	r1.c.Close()

	r2 := dialRaw(t, addr)
	r2.send(&Hello{})
	recvAs[*Challenge](r2)
	r2.send(captured) // replayed as is: the server nonce differs now
	if ref := recvAs[*Refuse](r2); !strings.Contains(ref.Error, "authentication failed") {
		t.Errorf("replayed auth: refusal %q", ref.Error)
	}
	expectClosed(t, r2.c, 10*time.Second)

	r3 := dialRaw(t, addr)
	r3.send(&Hello{})
	ch := recvAs[*Challenge](r3)
	r3.send(&Auth{Nonce: captured.Nonce, MAC: ClientMAC(testKey, ch.Nonce, captured.Nonce)})
	if ref := recvAs[*Refuse](r3); !strings.Contains(ref.Error, "replayed") {
		t.Errorf("reused client nonce: refusal %q", ref.Error)
	}
	expectClosed(t, r3.c, 10*time.Second)

	// A server's proof is never a client's: offer the server's own proof back.
	r4 := dialRaw(t, addr)
	r4.send(&Hello{})
	ch = recvAs[*Challenge](r4)
	cn, _ := newNonce()
	r4.send(&Auth{Nonce: cn, MAC: ServerMAC(testKey, ch.Nonce, cn)})
	recvAs[*Refuse](r4)
	expectClosed(t, r4.c, 10*time.Second)

	// The server counts r1's session just after sending its auth-ok: wait for it.
	waitfor.True(t, 10*time.Second, "r1's session counted", func() bool { return s.Stats().Sessions > 0 })
	if st := s.Stats(); st.AuthFailed != 2 || st.Replayed != 1 || st.Sessions != 1 {
		t.Errorf("stats %+v: want AuthFailed 2, Replayed 1, Sessions 1", st)
	}
}

// TestUnauthenticatedPeer: a server without a key refuses a peer that is not on
// loopback, unless AllowUnauthenticated.
func TestUnauthenticatedPeer(t *testing.T) {
	ip := nonLoopbackIP(t)
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			s := &Server{AllowUnauthenticated: allow}
			addr := startServerOn(t, s, netip.AddrPortFrom(ip, 0).String())
			c, err := dialStream(t.Context(), addr, nil)
			if allow {
				if err != nil {
					t.Fatalf("Dial with --allow-unauthenticated: %v", err)
				}
				runQuick(t, c, "tcp", Forward)
				c.Close()
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "authentication required") {
				t.Fatalf("Dial from %v to a keyless server: %v, want a refusal", ip, err)
			}
			if st := s.Stats(); st.Unauthenticated != 1 {
				t.Errorf("Unauthenticated = %d, want 1", st.Unauthenticated)
			}
		})
	}
}

// nonLoopbackIP returns an address of this host off loopback (the peer address the
// server sees when the test dials it), or skips.
func nonLoopbackIP(t *testing.T) netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("no interface addresses: %v", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	t.Skip("remote: no non-loopback IPv4 address on this host; peerAllowed is covered by TestPeerAllowed")
	return netip.Addr{}
}

// TestSlowPeersClosed: peers that stall or trickle during the handshake are closed by
// its timer, none before it (exact: the timer starts at accept, after the dial
// began), while a legitimate client completes a test meanwhile (its handshake must
// beat the timer too: 2 s holds on a loaded machine). The trickle outlasts the timer
// fourfold. All come from one address, whose share of --pre-auth-conns (a quarter)
// holds the stallers and the client.
func TestSlowPeersClosed(t *testing.T) {
	const timeout = 2 * time.Second
	s := &Server{Key: testKey, Limits: Limits{HandshakeTimeout: timeout, PreAuthConns: 20}}
	addr := startServer(t, s)
	hello, _ := Encode(&Hello{})
	stallers := []struct {
		name string
		act  func(c net.Conn)
	}{
		{"silent", func(c net.Conn) {}},
		{"half a header", func(c net.Conn) { c.Write(hello[:2]) }},
		{"hello, then nothing", func(c net.Conn) { c.Write(hello) }},
		{"trickle", func(c net.Conn) {
			for i := range hello {
				if _, err := c.Write(hello[i : i+1]); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond) // the trickle's pace: the experiment
			}
		}},
	}
	type closing struct {
		name  string
		after time.Duration // from just before the dial
	}
	var wg sync.WaitGroup
	closed := make(chan closing, len(stallers))
	for _, st := range stallers {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			go st.act(c)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if err == nil || !isTimeout(err) {
				closed <- closing{st.name, time.Since(start)}
			}
		}()
	}
	cl := dial(t, addr, testKey)
	runQuick(t, cl, "tcp", Forward)
	wg.Wait()
	close(closed)
	n := 0
	for c := range closed {
		n++
		t.Logf("%s: closed %v after the dial (--handshake-timeout %v)", c.name, c.after, timeout)
		if c.after < timeout {
			t.Errorf("%s: closed %v after the dial, before the %v handshake timeout", c.name, c.after, timeout)
		}
	}
	if n != len(stallers) {
		t.Errorf("%d of %d stalled peers closed by the handshake timer", n, len(stallers))
	}
	if st := s.Stats(); st.HandshakeFailed != uint64(len(stallers)) {
		t.Errorf("HandshakeFailed = %d, want %d", st.HandshakeFailed, len(stallers))
	}
}

// TestPreAuthFlood: unauthenticated connections beyond --pre-auth-conns, or beyond
// their source's share of it (a quarter: 1 of 4 here), are refused at accept; a
// legitimate client gets in once the held ones time out. The flood comes from four
// addresses, five connections each, so it holds every slot. The count of rejections
// is exact as long as the flood is all accepted before the first held slot times
// out: 10 s, which a loaded machine does not miss.
func TestPreAuthFlood(t *testing.T) {
	const slots, flood = 4, 20
	s := &Server{Key: testKey, Limits: Limits{PreAuthConns: slots, HandshakeTimeout: 10 * time.Second}}
	addr := startServer(t, s)
	var dialers []*net.Dialer
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		dialers = append(dialers, tcpFrom(t, ip))
	}
	for i := range flood {
		c, err := dialers[i%len(dialers)].Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitfor.True(t, 10*time.Second, "the server accepted the flood", func() bool { return s.Stats().Accepted == flood })
	if st := s.Stats(); st.PreAuthRejected != flood-slots || st.PreAuthOverShare != flood-slots {
		t.Errorf("PreAuthRejected = %d, PreAuthOverShare = %d; want %d each", st.PreAuthRejected, st.PreAuthOverShare, flood-slots)
	}
	// While the slots are held, a newcomer is told the server is busy.
	if c, err := dialStream(t.Context(), addr, testKey); err == nil {
		c.Close()
		if s.Stats().HandshakeFailed == 0 { // the held slots had not timed out yet
			t.Errorf("Dial succeeded while %d unauthenticated connections held every slot", slots)
		}
	} else if re := (*RefusedError)(nil); !errors.As(err, &re) || re.Limit != "pre-auth-conns" {
		t.Errorf("Dial while every slot is held: %v; want a refusal naming pre-auth-conns", err)
	}
	// Once they time out, a legitimate client is served.
	var c *Client
	waitfor.True(t, 30*time.Second, "a legitimate client got in", func() bool {
		var err error
		c, err = dialStream(t.Context(), addr, testKey)
		return err == nil
	})
	defer c.Close()
	runQuick(t, c, "udp", Reverse)
	if st := s.Stats(); st.HandshakeFailed < slots {
		t.Errorf("HandshakeFailed = %d, want at least %d (the held connections timed out)", st.HandshakeFailed, slots)
	}
}

// TestLimitsRefused: a request above each limit is refused with an error naming the
// limit, before any data socket opens; the session goes on.
func TestLimitsRefused(t *testing.T) {
	s := &Server{Key: testKey, Limits: Limits{MaxStreams: 2, MaxDuration: 2 * time.Second, MaxRateBps: 50e6, MaxSize: 2000}}
	c := dial(t, startServer(t, s), testKey)
	for _, tc := range []struct {
		limit string
		edit  func(*TestRequest)
	}{
		{"max-streams", func(r *TestRequest) { r.Streams = 3 }},
		{"max-duration", func(r *TestRequest) { r.Duration = 3 * time.Second }},
		{"max-rate", func(r *TestRequest) { r.RateBps = 51e6 }},
		{"max-size", func(r *TestRequest) { r.Size = 2001 }},
	} {
		for _, transport := range []string{"tcp", "udp"} {
			t.Run(tc.limit+"/"+transport, func(t *testing.T) {
				req := quickRequest(transport, Reverse)
				tc.edit(&req)
				_, err := c.Run(t.Context(), req)
				var re *RefusedError
				if !errors.As(err, &re) || re.Limit != tc.limit || !strings.Contains(err.Error(), "--"+tc.limit) {
					t.Fatalf("Run(%+v) = %v, want a refusal naming --%s", req, err, tc.limit)
				}
			})
		}
	}
	t.Run("unknown experiment", func(t *testing.T) {
		req := quickRequest("tcp", Forward)
		req.Experiment = "pingpong"
		_, err := c.Run(t.Context(), req)
		var re *RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "runs only") {
			t.Fatalf("Run(pingpong) = %v, want a refusal", err)
		}
	})
	st := s.Stats()
	if st.TestsRun != 0 || st.DataBytesSent != 0 || st.UDPSentUnvalidated != 0 || st.UDPRecvUnvalidated != 0 {
		t.Errorf("after refusals only: %+v; want no test run and no data byte", st)
	}
	if st.TestsRefused != 9 {
		t.Errorf("TestsRefused = %d, want 9", st.TestsRefused)
	}
	runQuick(t, c, "tcp", Reverse) // the session survived every refusal
}

func TestMaxSessions(t *testing.T) {
	s := &Server{Key: testKey, Limits: Limits{MaxSessions: 1}}
	addr := startServer(t, s)
	c1, err := dialStream(t.Context(), addr, testKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dialStream(t.Context(), addr, testKey)
	var re *RefusedError
	if !errors.As(err, &re) || re.Limit != "max-sessions" {
		t.Fatalf("second Dial with --max-sessions 1: %v, want a refusal naming it", err)
	}
	c1.Close()
	var c *Client
	waitfor.True(t, 10*time.Second, "the session slot was freed", func() bool {
		c, err = dialStream(t.Context(), addr, testKey)
		return err == nil
	})
	runQuick(t, c, "tcp", Forward)
	c.Close()
}

// TestIdleTimeout: a session with no test gets a bye naming the limit: not before
// the timeout (exact: its timer starts after the handshake began), within recv's
// 10 s bound after it.
func TestIdleTimeout(t *testing.T) {
	s := &Server{Key: testKey, Limits: Limits{IdleTimeout: MinIdleTimeout}}
	r := dialRaw(t, startServer(t, s))
	start := time.Now()
	r.handshake(testKey)
	bye := recvAs[*Bye](r)
	el := time.Since(start)
	t.Logf("bye %v after the hello, with --idle-timeout %v", el, MinIdleTimeout)
	if !strings.Contains(bye.Reason, "--idle-timeout") {
		t.Errorf("bye %q does not name --idle-timeout", bye.Reason)
	}
	if el < MinIdleTimeout {
		t.Errorf("bye %v after the hello, before the %v idle timeout", el, MinIdleTimeout)
	}
	expectClosed(t, r.c, 10*time.Second)
}

// TestOverlap: a session testing while another's test runs is told so. The first
// test runs until the second has ended (it is canceled then; 30 s at most), so the
// two overlap however slow the machine.
func TestOverlap(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)
	c1, c2 := dial(t, addr, testKey), dial(t, addr, testKey)
	ctx1, cancel1 := context.WithCancel(t.Context())
	defer cancel1()
	req1 := quickRequest("tcp", Forward)
	req1.Duration = 30 * time.Second
	done1 := runInBackground(ctx1, c1, req1)
	waitfor.True(t, 10*time.Second, "the first test started", func() bool { return s.Stats().TestsRun == 1 })
	res2, err := c2.Run(t.Context(), quickRequest("tcp", Forward))
	cancel1()
	var o1 runOutcome
	select {
	case o1 = <-done1:
	case <-time.After(10 * time.Second):
		t.Fatal("the first test's Run still running 10 s after its context was canceled")
	}
	if err != nil {
		t.Fatalf("the second test: %v", err)
	}
	t.Logf("overlaps: first test %d (canceled: %v), second %d", o1.res.Overlap, o1.err, res2.Overlap)
	if res2.Overlap < 1 {
		t.Errorf("a test run while another ran: overlap %d, want at least 1", res2.Overlap)
	}
}

// TestShutdownActiveSession: Shutdown ends a running test (reported incomplete to the
// client), says bye, and returns.
func TestShutdownActiveSession(t *testing.T) {
	s := &Server{Key: testKey}
	addr := startServer(t, s)
	c := dial(t, addr, testKey)
	req := quickRequest("udp", Reverse)
	req.Duration, req.RateBps = 30*time.Second, 2e6
	done := runInBackground(context.Background(), c, req)
	waitfor.True(t, 10*time.Second, "the test started", func() bool { return s.Stats().TestsRun == 1 })
	// Shut down once data flows, so the server has partial counters to report.
	waitfor.True(t, 10*time.Second, "the server sent data", func() bool { return s.Stats().DataBytesSent > 0 })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown took %v", time.Since(start))
	o := <-done
	if o.err == nil || o.res.Complete {
		t.Fatalf("Run during Shutdown: %v, complete %v; want an error", o.err, o.res.Complete)
	}
	if !strings.Contains(o.err.Error(), "shutting down") {
		t.Errorf("Run error %q does not say the server is shutting down", o.err)
	}
	if o.res.Server.Counters == nil || o.res.Server.Complete {
		t.Errorf("server results %+v: want its partial counters, marked incomplete", o.res.Server)
	}
	if _, err := dialStream(t.Context(), addr, testKey); err == nil {
		t.Error("Dial after Shutdown succeeded")
	}
}

// TestServerLost: a server that goes silent mid-test makes Run return once the
// client's timeout passes (not before: exact) and long before the test's 30 s (15 s
// holds on a loaded machine), with the client's partial results marked incomplete.
func TestServerLost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dataLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var held []net.Conn
	var mu sync.Mutex
	hold := func(c net.Conn) { mu.Lock(); held = append(held, c); mu.Unlock() }
	defer func() {
		ln.Close()
		dataLn.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	wg.Add(1)
	go func() { // a server that answers until the test starts, then goes silent
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		hold(c)
		cc := NewControlConn(c)
		ctx := context.Background()
		read := func() Msg { m, _ := cc.ReadMsg(ctx, 10*time.Second); return m }
		read()
		sn, _ := newNonce()
		cc.WriteMsg(&Challenge{Nonce: sn, Auth: AuthNone})
		read()
		cc.WriteMsg(&AuthOK{})
		test, ok := read().(*Test)
		if !ok {
			return
		}
		cc.WriteMsg(&Accept{ID: test.ID, Ports: []uint16{uint16(dataLn.Addr().(*net.TCPAddr).Port)}, Token: make([]byte, 16)})
		dc, err := dataLn.Accept()
		if err != nil {
			return
		}
		hold(dc)
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(io.Discard, dc) }()
		read()
		cc.WriteMsg(&Start{ID: test.ID})
		// Silence: no heartbeat, no results; the connection stays open.
	}()
	cl, err := (&Dialer{Timeout: time.Second, Driver: StreamTest{}}).Dial(t.Context(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := quickRequest("tcp", Forward)
	req.Duration = 30 * time.Second
	start := time.Now()
	res, err := cl.Run(t.Context(), req)
	el := time.Since(start)
	if !errors.Is(err, ErrServerLost) {
		t.Fatalf("Run against a silent server: %v, want ErrServerLost", err)
	}
	t.Logf("Run returned %v after it began, with a 1 s timeout", el)
	if el < time.Second || el > 15*time.Second {
		t.Errorf("Run took %v with a 1 s timeout; want 1s..15s", el)
	}
	if res.Complete || res.Client.Complete {
		t.Errorf("results marked complete: %+v", res)
	}
	if cc := counters(t, res.Client); cc.SentBytes == 0 {
		t.Errorf("partial client counters lost: %+v", cc)
	}
	if _, err := cl.Run(t.Context(), quickRequest("tcp", Forward)); err == nil {
		t.Error("Run on a lost session succeeded")
	}
}

// TestMalformedControl: a live server answers malformed, oversized, foreign-version,
// unknown and out-of-turn control messages with a refusal saying what was wrong,
// closes that connection, and goes on serving.
func TestMalformedControl(t *testing.T) {
	// The longest handshake timeout: a server that waited for a body it had refused
	// would answer after it (or after the session's 30 s idle timeout), far past the
	// 20 s this test waits.
	s := &Server{Key: testKey, Limits: Limits{HandshakeTimeout: MaxHandshakeTimeout}}
	addr := startServer(t, s)
	frame := func(body string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	for _, tc := range []struct {
		name      string
		handshake bool // send after a successful handshake
		send      []byte
		errHas    string
	}{
		{"oversized length, body never sent", false, binary.BigEndian.AppendUint32(nil, 1<<20), "too large"},
		{"4 GiB length", false, []byte{0xff, 0xff, 0xff, 0xff}, "too large"},
		{"zero length", false, frame(""), "malformed"},
		{"not json", false, frame("GET / HTTP/1.1"), "malformed"},
		{"version 2", false, frame(`{"v":2,"type":"hello","software":""}`), "version"},
		{"unknown type", false, frame(`{"v":1,"type":"exec","cmd":"sh"}`), "unknown control message type"},
		{"unknown field", false, frame(`{"v":1,"type":"hello","software":"","admin":true}`), "malformed"},
		{"auth before hello", false, frame(`{"v":1,"type":"auth","nonce":"` + strings.Repeat("A", 43) + `="}`), "got auth, want hello"},
		{"malformed test", true, frame(`{"v":1,"type":"test","id":1}`), "malformed"},
		{"start before test", true, frame(`{"v":1,"type":"start","id":1}`), "start between tests"},
		{"oversized in session", true, binary.BigEndian.AppendUint32(nil, MaxMsgLen+1), "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			if tc.handshake {
				r.handshake(testKey)
			}
			if _, err := r.c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			// Within 20 s, less than the 1 min handshake timeout and the 30 s idle
			// timeout: the server did not wait for a body it had refused.
			start := time.Now()
			m, err := r.cc.ReadMsg(t.Context(), 20*time.Second)
			t.Logf("answered after %v", time.Since(start))
			if err != nil {
				t.Fatalf("no refusal: %v", err)
			}
			ref, ok := m.(*Refuse)
			if !ok || !strings.Contains(ref.Error, tc.errHas) {
				t.Fatalf("got %#v, want a refusal saying %q", m, tc.errHas)
			}
			expectClosed(t, r.c, 10*time.Second)
		})
	}
	c := dial(t, addr, testKey)
	runQuick(t, c, "tcp", Forward)
}
