package remote

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// tcpFrom returns a dialer whose connections come from ip, another loopback address
// than the client's 127.0.0.1, or skips where the host has no such address.
func tcpFrom(tb testing.TB, ip string) *net.Dialer {
	tb.Helper()
	a := netip.MustParseAddr(ip)
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		tb.Skipf("remote: needs %s, a second loopback address (Linux routes all of 127/8 to lo): %v", ip, err)
	}
	ln.Close()
	return &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0)), Timeout: 5 * time.Second}
}

// slowloris holds one pre-auth slot after another until ctx ends: it dials addr from
// d, trickles a hello a byte every 250 ms (it never completes within a handshake
// timeout of a few seconds), and redials 100 ms after the server closed the
// connection. It counts in busy the connections the server turned away saying it is
// busy (a refuse naming --pre-auth-conns).
func slowloris(ctx context.Context, d *net.Dialer, addr string, busy *atomic.Int64) {
	hello, _ := Encode(&Hello{Software: "slowloris"})
	for ctx.Err() == nil {
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			trickle(ctx, c, hello, busy)
			c.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // the attacker's redial pace
		}
	}
}

func trickle(ctx context.Context, c net.Conn, hello []byte, busy *atomic.Int64) {
	stop := ctxwatch.OnDone(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	cc := NewControlConn(c)
	for i := 0; ; i++ {
		m, err := cc.ReadMsg(ctx, 250*time.Millisecond)
		if err == nil {
			if r, ok := m.(*Refuse); ok && r.Limit == "pre-auth-conns" && strings.Contains(r.Error, "server busy") {
				busy.Add(1)
			}
			continue // then the server closes
		}
		if !isTimeout(err) || ctx.Err() != nil {
			return
		}
		j := i % len(hello)
		if _, err := c.Write(hello[j : j+1]); err != nil {
			return
		}
	}
}

// TestPreAuthSlowloris: one host without the key fills as many pre-auth slots as
// there are (--pre-auth-conns 16 connections that trickle a hello a byte every
// 250 ms and redial when the handshake timer closes them), while a keyed client
// from another address dials and runs a test, three times over. One source gets
// its share of the slots and no more, and its connections beyond the share are told
// the server is busy. Run i (from 0) waits until the handshake timer has closed i
// generations of the attacker's connections (i times its share: the keyed client's
// handshakes do not fail), so that the runs race the attacker's redials.
func TestPreAuthSlowloris(t *testing.T) {
	const slots = 16
	s := &Server{Key: testKey, Limits: Limits{PreAuthConns: slots, HandshakeTimeout: 2 * time.Second}}
	addr := startServer(t, s)
	attacker := tcpFrom(t, "127.0.0.2")
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var busy atomic.Int64
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowloris(ctx, attacker, addr, &busy)
		}()
	}
	defer func() { stop(); wg.Wait() }()
	waitfor.True(t, 10*time.Second, "the server accepted the slowloris's connections", func() bool { return s.Stats().Accepted >= slots })
	const runs = 3
	const share = slots / 4 // Limits.PreAuthShare
	for i := range runs {
		waitfor.True(t, 10*time.Second, "the handshake timer closed a generation of the attacker's connections", func() bool { return s.Stats().HandshakeFailed >= uint64(i)*share })
		c, err := dialStream(t.Context(), addr, testKey)
		if err != nil {
			t.Fatalf("keyed client from 127.0.0.1, run %d of %d, during a slowloris of %d connections from 127.0.0.2 (--pre-auth-conns %d): %v",
				i+1, runs, slots, slots, err)
		}
		runQuick(t, c, "tcp", Forward)
		c.Close()
	}
	stop()
	wg.Wait()
	st := s.Stats()
	t.Logf("%d connections accepted; %d turned away (%d told busy); %d handshakes failed; %d sessions",
		st.Accepted, st.PreAuthRejected, busy.Load(), st.HandshakeFailed, st.Sessions)
	if busy.Load() == 0 {
		t.Errorf("no slowloris connection beyond its source's share was told the server is busy (a refuse naming pre-auth-conns); %d turned away", st.PreAuthRejected)
	}
	if st.Sessions != runs {
		t.Errorf("Sessions = %d, want %d: the keyed client's only", st.Sessions, runs)
	}
}

// TestPreAuthBusy: a connection turned away at accept is told why, with a refuse
// naming --pre-auth-conns that says the server is busy, both when its source holds
// its share of the slots and when every slot is held; the client's Dial returns it
// as a *RefusedError. The held connections stay silent, well within the handshake
// timeout (10 s, checked at the end).
func TestPreAuthBusy(t *testing.T) {
	const slots, share = 8, 2 // share: a quarter of the slots per source
	for _, tc := range []struct {
		name    string
		holders []string // one held connection per entry, from that address
		from    string   // the newcomer's address
		want    string   // in the refusal
	}{
		{"source share", []string{"127.0.0.2", "127.0.0.2"}, "127.0.0.2", "127.0.0.2"},
		{"all slots", []string{"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4", "127.0.0.5", "127.0.0.5"}, "127.0.0.1", "--pre-auth-conns 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Key: testKey, Limits: Limits{PreAuthConns: slots, HandshakeTimeout: 10 * time.Second}}
			addr := startServer(t, s)
			for _, ip := range tc.holders {
				c, err := tcpFrom(t, ip).Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			waitfor.True(t, 10*time.Second, "the server accepted the held connections", func() bool { return s.Stats().Accepted == uint64(len(tc.holders)) })
			var err error
			if tc.from == "127.0.0.1" {
				var c *Client
				if c, err = dialStream(t.Context(), addr, testKey); err == nil {
					c.Close()
				}
			} else {
				c, derr := tcpFrom(t, tc.from).Dial("tcp", addr)
				if derr != nil {
					t.Fatal(derr)
				}
				defer c.Close()
				cc := NewControlConn(c)
				cc.WriteMsg(&Hello{Software: "newcomer"})
				_, err = expect[*Challenge](t.Context(), cc, 10*time.Second)
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Limit != "pre-auth-conns" || !strings.Contains(err.Error(), "server busy") ||
				!strings.Contains(err.Error(), "try again") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newcomer from %s with %d held connections (%v), --pre-auth-conns %d: %v; want a refusal naming pre-auth-conns, saying server busy, try again and %q",
					tc.from, len(tc.holders), tc.holders, slots, err, tc.want)
			}
			t.Logf("told: %v", err)
			// The client's own address still gets in while another source holds its share.
			if tc.name == "source share" {
				c := dial(t, addr, testKey)
				runQuick(t, c, "tcp", Forward)
				c.Close()
			}
			if st := s.Stats(); st.PreAuthRejected != 1 || st.HandshakeFailed != 0 {
				t.Errorf("PreAuthRejected = %d, HandshakeFailed = %d; want 1 and 0 (the held connections still held)", st.PreAuthRejected, st.HandshakeFailed)
			}
		})
	}
}

// doneRunner returns at once, complete: for tests of the setup before a Runner runs.
type doneRunner struct{}

func (doneRunner) Check(TestRequest) error { return nil }

func (doneRunner) Serve(context.Context, *Data) (Results, error) { return Results{Complete: true}, nil }

// TestDataPortForeignFlood: connections from another address flood a TCP test's data
// port before the client's own connection arrives (a client 100 ms away, whose
// connection comes after the server has taken the flood's), and are closed without
// spending the test's accepts: the client's connection is taken and the test starts.
// The flood is more than a one-stream test's 4*1+16 accepts; the client dials once
// the server has closed that many. The test's log says how many it closed.
func TestDataPortForeignFlood(t *testing.T) {
	const flood, budget = 40, 4*1 + 16
	logs := &logLines{}
	s := &Server{Key: testKey, Runner: doneRunner{}, Limits: Limits{HandshakeTimeout: 2 * time.Second}, Logf: logs.logf}
	addr := startServer(t, s)
	attacker := tcpFrom(t, "127.0.0.2")
	r := dialRaw(t, addr)
	r.handshake(testKey)
	req := quickRequest("tcp", Forward)
	req.ID = 1
	r.send(req.wire())
	acc := recvAs[*Accept](r)
	data := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), acc.Ports[0]).String()
	for range flood {
		c, err := attacker.Dial("tcp", data)
		if err != nil {
			continue // reset by the server before the dial returned
		}
		defer c.Close()
	}
	waitfor.True(t, 10*time.Second, "the server closed a test's worth of the flood", func() bool { return s.Stats().DataRejected >= budget })
	c, err := net.Dial("tcp", data)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(acc.Token); err != nil {
		t.Fatal(err)
	}
	r.send(&Start{ID: 1})
	m := r.recv()
	if _, ok := m.(*Start); !ok {
		t.Fatalf("after %d connections from 127.0.0.2 to the data port, then the client's: received %#v, want start", flood, m)
	}
	r.send(&ResultsMsg{ID: 1, Complete: true})
	if res := recvAs[*ResultsMsg](r); !res.Complete {
		t.Errorf("server results: %+v, want complete", res)
	}
	r.send(&Bye{})
	st := s.Stats()
	t.Logf("data connections closed: %d, from 127.0.0.2: %d", st.DataRejected, st.DataForeign)
	if st.DataForeign < budget || st.DataForeign != st.DataRejected {
		t.Errorf("DataForeign = %d, DataRejected = %d; want equal (every one from 127.0.0.2) and at least %d", st.DataForeign, st.DataRejected, budget)
	}
	if st.TestsRun != 1 || st.TestsRefused != 0 {
		t.Errorf("TestsRun = %d, TestsRefused = %d; want 1 and 0", st.TestsRun, st.TestsRefused)
	}
	logs.wait(t, `test 1: \d+ data connections from other addresses than the client's closed unread during its setup`)
}

// TestSourceOf: a pre-auth slot counts against an IPv4 address, or an IPv6 /64.
func TestSourceOf(t *testing.T) {
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"ipv4", "192.0.2.7:41234", "192.0.2.7/32"},
		{"ipv4-mapped", "[::ffff:192.0.2.7]:41234", "192.0.2.7/32"},
		{"ipv6", "[2001:db8:1:2:3:4:5:6]:41234", "2001:db8:1:2::/64"},
		{"ipv6 zone", "[fe80::1%lo]:41234", "fe80::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := net.ResolveTCPAddr("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := sourceOf(a); got.String() != tc.want {
				t.Errorf("sourceOf(%s) = %v, want %s", tc.addr, got, tc.want)
			}
		})
	}
}

// TestPreAuthShare: a quarter of --pre-auth-conns, at least 1.
func TestPreAuthShare(t *testing.T) {
	for _, tc := range []struct{ conns, want int }{{1, 1}, {3, 1}, {4, 1}, {7, 1}, {8, 2}, {16, 4}, {65536, 16384}} {
		if got := (Limits{PreAuthConns: tc.conns}).PreAuthShare(); got != tc.want {
			t.Errorf("PreAuthShare with --pre-auth-conns %d = %d, want %d", tc.conns, got, tc.want)
		}
	}
}
