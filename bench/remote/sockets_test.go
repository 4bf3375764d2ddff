package remote

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// olderServer answers one session's handshake as a server without CapSockets does,
// then reads whatever the client sends next and reports it on got.
func olderServer(t *testing.T) (addr string, got <-chan Msg) {
	t.Helper()
	return serverWithCaps(t, CapListen)
}

// serverWithCaps is olderServer listing caps.
func serverWithCaps(t *testing.T, caps ...string) (addr string, got <-chan Msg) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Msg, 1)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		defer close(out)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cc := NewControlConn(c)
		nonce, _ := newNonce()
		steps := []Msg{&Challenge{Nonce: nonce, Auth: AuthNone, Caps: caps}, &AuthOK{Limits: DefaultLimits().wire()}}
		for _, reply := range steps {
			if _, err := cc.ReadMsg(t.Context(), 5*time.Second); err != nil {
				return
			}
			if err := cc.WriteMsg(reply); err != nil {
				return
			}
		}
		if m, err := cc.ReadMsg(t.Context(), 5*time.Second); err == nil {
			out <- m
		}
	}()
	return ln.Addr().String(), out
}

// TestSocketsNeedTheCapability: a client asks a server that did not list "sockets"
// for no socket options, which it would refuse as an unknown field: Run refuses the
// test itself, naming the capability, and sends nothing but its bye; the session stays
// usable for a test without them.
func TestSocketsNeedTheCapability(t *testing.T) {
	addr, got := olderServer(t)
	c, err := dialStream(t.Context(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := TestRequest{Experiment: "stream", Transport: "udp", Size: 100, Duration: time.Second, Streams: 1, Direction: Forward,
		Sockets: SocketOptions{RecvBuffer: 1 << 20, NoGSO: true, Batch: 1}}
	_, err = c.Run(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), `"sockets" capability`) || !strings.Contains(err.Error(), "rcvbuf 1048576 no-gso batch 1") {
		t.Errorf("Run with socket options against an older server: %v; want a refusal naming the capability and the options", err)
	}
	if b := c.Broken(); b != nil {
		t.Errorf("session broken after the refusal: %v", b)
	}
	c.Close()
	if m, ok := <-got; ok {
		if _, bye := m.(*Bye); !bye {
			t.Errorf("the older server got %s after its handshake; want only the bye", m.Type())
		}
	}
	var re *RefusedError
	if errors.As(err, &re) {
		t.Errorf("the refusal came from the server (%v); the client must not ask", re)
	}
}

// TestVerifyNeedsTheCapability: a server that lists "sockets" but not "verify" reads
// no verify field and checks every payload. Asked for --verify header, Run refuses
// the test itself, naming the capability; asked for payload verification, the request
// goes without the field (what that server does anyway).
func TestVerifyNeedsTheCapability(t *testing.T) {
	req := TestRequest{Experiment: "stream", Transport: "tcp", Size: 100, Duration: time.Second, Streams: 1, Direction: Forward}
	t.Run("header refused", func(t *testing.T) {
		addr, got := serverWithCaps(t, CapListen, CapSent, CapSockets)
		c, err := dialStream(t.Context(), addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := req
		r.Sockets = SocketOptions{Verify: VerifyHeader}
		_, err = c.Run(t.Context(), r)
		if err == nil || !strings.Contains(err.Error(), `"verify" capability`) || !strings.Contains(err.Error(), "--verify header") {
			t.Errorf("Run with verify header against a server without %q: %v; want a refusal naming the capability and the flag", CapVerify, err)
		}
		if b := c.Broken(); b != nil {
			t.Errorf("session broken after the refusal: %v", b)
		}
		c.Close()
		if m, ok := <-got; ok {
			if _, bye := m.(*Bye); !bye {
				t.Errorf("the older server got %s after its handshake; want only the bye", m.Type())
			}
		}
	})
	t.Run("payload sent without the field", func(t *testing.T) {
		addr, got := serverWithCaps(t, CapListen, CapSent, CapSockets)
		c, err := dialStream(t.Context(), addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := req
		r.Sockets = SocketOptions{Verify: VerifyPayload, Batch: 1}
		_, _ = c.Run(t.Context(), r) // the older server reads the test and hangs up
		m, ok := <-got
		test, isTest := m.(*Test)
		if !ok || !isTest || test.Sockets == nil || test.Sockets.Verify != "" || test.Sockets.Batch != 1 {
			t.Fatalf("the older server got %#v; want a test with sockets {batch 1} and no verify", m)
		}
	})
	t.Run("header to a server that reads it", func(t *testing.T) {
		so := SocketOptions{Verify: VerifyHeader}
		if err := so.validate(); err != nil {
			t.Fatal(err)
		}
		if err := (SocketOptions{Verify: "off"}).validate(); err == nil || !strings.Contains(err.Error(), "sockets.verify") {
			t.Errorf("verify \"off\" on the wire: %v; want refused naming sockets.verify", err)
		}
	})
}

// TestGROOnlyToAServerThatKnowsIt: a UDP stream's request asks for GRO; to a server
// that lists "sockets" but not "gro" (a server older than GRO), the client sends the
// test without it, so the server keeps one datagram per packet instead of refusing
// an unknown field; to one that lists "gro" it goes as asked.
func TestGROOnlyToAServerThatKnowsIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		caps    []string
		wantGRO bool
	}{
		{"older server", []string{CapListen, CapSockets}, false},
		{"server with gro", []string{CapListen, CapSockets, CapGRO}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := serverWithCaps(t, tc.caps...)
			c, err := dialStream(t.Context(), addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := TestRequest{Experiment: "stream", Transport: "udp", Size: 100, Duration: time.Second, Streams: 1, Direction: Forward,
				Sockets: SocketOptions{RecvBuffer: 1 << 20, GRO: true}}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			ran := make(chan struct{})
			go func() { defer close(ran); c.Run(ctx, req) }() //nolint:errcheck // the fake server never answers: only what it read counts
			defer func() { <-ran }()
			m, ok := <-got
			if !ok {
				t.Fatal("the server read nothing after its handshake")
			}
			test, isTest := m.(*Test)
			if !isTest {
				t.Fatalf("the server got %s, want the test", m.Type())
			}
			if test.Sockets == nil || test.Sockets.GRO != tc.wantGRO || test.Sockets.RecvBuffer != 1<<20 {
				t.Errorf("the server read sockets %+v; want rcvbuf 1048576 and gro %v", test.Sockets, tc.wantGRO)
			}
		})
	}
}
