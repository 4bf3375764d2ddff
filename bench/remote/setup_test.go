package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSetupTimeoutRefused: a test whose start does not come within
// --handshake-timeout is refused with limit "handshake-timeout" and what the server
// saw of the data path; the session goes on. A start that crossed the refusal on the
// wire (a start, or results giving it up) is skipped, and the next test is answered (here refused by a limit).
func TestSetupTimeoutRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport string
		streams   int
		probe     bool // the client's probes reach the server (and are answered)
		want      string
	}{
		{"udp, no probe", "udp", 2, false, `^data path not set up within --handshake-timeout 200ms: udp path 0 \(port \d+\), udp path 1 \(port \d+\): no probe arrived from the client`},
		{"udp, probes answered, no start", "udp", 1, true, `^data path not set up within --handshake-timeout 200ms: udp path 0 \(port \d+\): [1-9]\d* probes arrived, [1-9]\d* challenges sent; but no start came`},
		{"tcp, no connection", "tcp", 1, false, `^data path not set up within --handshake-timeout 200ms: 0 of 1 tcp connections arrived with the token$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Key: testKey, Limits: Limits{HandshakeTimeout: 200 * time.Millisecond}}
			r := dialRaw(t, startServer(t, s))
			r.handshake(testKey)
			req := TestRequest{ID: 1, Experiment: ExpStream, Transport: tc.transport, Size: 500, Duration: time.Second, Streams: tc.streams, Direction: Forward}
			r.send(req.wire())
			acc := recvAs[*Accept](r)
			if tc.probe {
				if _, err := probe(t.Context(), udpTo(t, acc.Ports[0]), acc.Token); err != nil {
					t.Fatal(err)
				}
			}
			ref := recvAs[*Refuse](r)
			if ref.ID != 1 || ref.Limit != "handshake-timeout" || !regexp.MustCompile(tc.want).MatchString(ref.Error) {
				t.Errorf("refusal %+v; want test 1 by handshake-timeout, error matching %q", ref, tc.want)
			}
			// Too late, crossing the refusal: skipped.
			if tc.transport == "udp" {
				paths := make([][]byte, len(acc.Ports))
				for i := range paths {
					paths[i] = make([]byte, challengeLen)
				}
				r.send(&Start{ID: 1, Paths: paths})
			} else {
				r.send(&ResultsMsg{ID: 1, Error: "tcp: dial: i/o timeout"})
			}
			checkSessionGoesOn(t, r, 2)
			if st := s.Stats(); st.TestsRefused != 2 || st.TestsRun != 0 {
				t.Errorf("stats: %d tests refused, %d run; want 2, 0", st.TestsRefused, st.TestsRun)
			}
		})
	}
}

// TestSetupGivenUp: a client that cannot open the data path sends results (complete
// false) in place of start; the server refuses the test with the client's words and
// what it saw itself, and the session goes on. Results that say complete before a
// start are out of turn.
func TestSetupGivenUp(t *testing.T) {
	s := &Server{Key: testKey, Limits: Limits{HandshakeTimeout: MaxHandshakeTimeout}}
	addr := startServer(t, s)
	r := dialRaw(t, addr)
	r.handshake(testKey)
	req := TestRequest{ID: 1, Experiment: ExpStream, Transport: "udp", Size: 500, Duration: time.Second, Streams: 1, Direction: Forward}
	r.send(req.wire())
	recvAs[*Accept](r)
	r.send(&ResultsMsg{ID: 1, Complete: false, Error: "udp port 9: no challenge from the server"})
	ref := recvAs[*Refuse](r)
	want := regexp.MustCompile(`^data path not set up: the client gave up \(udp port 9: no challenge from the server\); the server saw: udp path 0 \(port \d+\): no probe arrived from the client`)
	if ref.ID != 1 || ref.Limit != "" || !want.MatchString(ref.Error) {
		t.Errorf("refusal %+v; want test 1, no limit, error matching %q", ref, want)
	}
	checkSessionGoesOn(t, r, 2)

	r = dialRaw(t, addr)
	r.handshake(testKey)
	r.send(req.wire())
	recvAs[*Accept](r)
	r.send(&ResultsMsg{ID: 1, Complete: true})
	if ref := recvAs[*Refuse](r); ref.ID != 0 || !strings.Contains(ref.Error, "results for test 1 (complete true) before the start of test 1") {
		t.Errorf("refusal %+v; want the session refused: results out of turn", ref)
	}
	expectClosed(t, r.c, 10*time.Second)
}

// checkSessionGoesOn asks for test id above --max-streams and wants it refused by
// that limit: the session is still serving.
func checkSessionGoesOn(t *testing.T, r *raw, id uint32) {
	t.Helper()
	req := TestRequest{ID: id, Experiment: ExpStream, Transport: "tcp", Size: 500, Duration: time.Second, Streams: 1000, Direction: Forward}
	r.send(req.wire())
	if ref := recvAs[*Refuse](r); ref.ID != id || ref.Limit != "max-streams" {
		t.Errorf("test %d after the refused one: refusal %+v; want it refused by max-streams, the session going on", id, ref)
	}
}

// TestClientSetupFails: a Client whose UDP probes get no challenge (the fake server
// below never answers them). A refusal from the server during the setup stops the
// probes and returns a *RefusedError, the session usable, with no results sent for
// the test; when the client's own timeout passes first, it gives the test up with
// results (complete false), and the server's refusal of it leaves the session usable.
// A server older than that answers with a refuse without id: the session is over.
func TestClientSetupFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration // the client's
		fake    fakeSetup
		usable  bool
		want    string // in Run's error
		gaveUp  bool   // the client sent results for test 1
	}{
		{"the server refuses first", 10 * time.Second, refuseAtOnce, true, "data path not set up within --handshake-timeout 1s", false},
		{"the client gives up first", 300 * time.Millisecond, refuseGivenUp, true, "the client gave up (remote: data path not open within the client's timeout 300ms: udp port", true},
		{"an older server", 300 * time.Millisecond, oldServer, false, "remote: data path not open within the client's timeout 300ms: udp port", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, seen := startFakeSetup(t, tc.fake)
			cl, err := (&Dialer{Timeout: tc.timeout, Driver: StreamTest{}}).Dial(t.Context(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = cl.Run(t.Context(), quickRequest("udp", Forward))
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v; want a refusal saying %q", err, tc.want)
			}
			if usable := cl.Broken() == nil; usable != tc.usable || (re.ID == 1) != tc.usable {
				t.Errorf("after %v: session usable %v (Broken: %v); want %v", err, usable, cl.Broken(), tc.usable)
			}
			if tc.usable {
				_, err := cl.Run(t.Context(), quickRequest("tcp", Forward))
				if !errors.As(err, &re) || re.ID != 2 {
					t.Errorf("the next test: %v; want the fake server's refusal of test 2", err)
				}
			}
			cl.Close()
			got := <-seen
			if gaveUp := strings.Contains(got, "results 1"); gaveUp != tc.gaveUp {
				t.Errorf("the server received %s; want results for test 1: %v", got, tc.gaveUp)
			}
		})
	}
}

// fakeSetup is how the fake server answers during a UDP test's setup.
type fakeSetup int

const (
	refuseAtOnce  fakeSetup = iota // refuse{id} by handshake-timeout, before any start
	refuseGivenUp                  // wait for the client to give up, then refuse{id}
	oldServer                      // wait for the client to give up, then refuse the session and close
)

// startFakeSetup runs a server with no key that accepts one session, answers every
// UDP test with the port of a socket that reads nothing, and refuses every TCP test.
// seen gets, once the session ended, the messages it received after the handshake.
func startFakeSetup(t *testing.T, mode fakeSetup) (addr string, seen <-chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deaf, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); deaf.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var got []string
		defer func() { out <- strings.Join(got, ", ") }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cc := NewControlConn(c)
		read := func() Msg { m, _ := cc.ReadMsg(context.Background(), 20*time.Second); return m }
		read()
		sn, _ := newNonce()
		cc.WriteMsg(&Challenge{Nonce: sn, Auth: AuthNone})
		read()
		cc.WriteMsg(&AuthOK{})
		for {
			m := read()
			switch m := m.(type) {
			case nil:
				return
			case *Test:
				got = append(got, fmt.Sprintf("test %d", m.ID))
				if m.Transport != "udp" {
					cc.WriteMsg(&Refuse{ID: m.ID, Error: "no tcp here"})
					continue
				}
				cc.WriteMsg(&Accept{ID: m.ID, Ports: []uint16{uint16(deaf.LocalAddr().(*net.UDPAddr).Port)}, Token: make([]byte, tokenLen)})
				if mode == refuseAtOnce {
					cc.WriteMsg(&Refuse{ID: m.ID, Limit: "handshake-timeout", Error: "data path not set up within --handshake-timeout 1s: udp path 0: no probe arrived from the client"})
				}
			case *ResultsMsg:
				got = append(got, fmt.Sprintf("results %d", m.ID))
				if mode == oldServer {
					cc.WriteMsg(&Refuse{Error: "unexpected message: got results, want start"})
					return
				}
				cc.WriteMsg(&Refuse{ID: m.ID, Error: "data path not set up: the client gave up (" + m.Error + ")"})
			default:
				got = append(got, m.Type())
			}
		}
	}()
	return ln.Addr().String(), out
}
