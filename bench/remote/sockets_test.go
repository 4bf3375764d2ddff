package remote

import (
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
		steps := []Msg{&Challenge{Nonce: nonce, Auth: AuthNone, Caps: []string{CapListen}}, &AuthOK{Limits: DefaultLimits().wire()}}
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
	c, err := Dial(t.Context(), addr, nil)
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
