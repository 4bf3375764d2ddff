// Package transporttest is the suite every transport passes before experiments run
// over it: whole messages, order and batches on loopback, receive limits, oversized
// messages, deadlines, Close unblocking a reader, and one server endpoint per
// client for a connected transport (one for all otherwise). A new transport's test
// registers it (transport.Register) and calls Conformance.
package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// patience bounds every wait of the suite: far longer than any of them takes.
const patience = 10 * time.Second

// Conformance runs the suite over nw, with caps what its registration says of it.
func Conformance(t *testing.T, nw transport.Network, caps transport.Caps) {
	t.Run("whole messages", func(t *testing.T) {
		c, s := Pair(t, nw)
		var msgs [][]byte
		for i, n := range []int{0, 1, 47, 48, 1000, 1472, 9000, 65507} {
			if n <= nw.MaxMessage() {
				msgs = append(msgs, bytes.Repeat([]byte{byte(i + 1)}, n))
			}
		}
		// One at a time: a datagram transport may drop a burst of large ones on a small buffer.
		for _, m := range msgs {
			if n, err := c.Send([][]byte{m}); err != nil || n != 1 {
				t.Fatalf("send size %d: n=%d err=%v", len(m), n, err)
			}
			got := RecvN(t, s, 1, 65536)
			if !bytes.Equal(got[0], m) {
				t.Fatalf("size %d: got %d bytes, want %d identical bytes", len(m), len(got[0]), len(m))
			}
		}
	})
	t.Run("order and batches", func(t *testing.T) {
		c, s := Pair(t, nw)
		const total = 200
		var batch [][]byte
		for i := range total {
			batch = append(batch, fmt.Appendf(nil, "message %03d", i))
		}
		for sent := 0; sent < total; {
			end := min(sent+37, total)
			n, err := c.Send(batch[sent:end])
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if n != end-sent {
				t.Fatalf("send: accepted %d of %d with no error", n, end-sent)
			}
			sent = end
		}
		for i, m := range RecvN(t, s, total, 64) {
			if want := fmt.Sprintf("message %03d", i); string(m) != want {
				t.Fatalf("message %d: got %q, want %q", i, m, want)
			}
		}
	})
	t.Run("recv respects len(bufs)", func(t *testing.T) {
		c, s := Pair(t, nw)
		if _, err := c.Send([][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
			t.Fatal(err)
		}
		bufs, sizes := [][]byte{make([]byte, 16)}, make([]int, 1)
		s.SetReadDeadline(time.Now().Add(patience))
		for _, want := range []string{"a", "b", "c"} {
			n, err := s.Recv(bufs, sizes)
			if err != nil || n != 1 {
				t.Fatalf("recv: n=%d err=%v, want 1 message", n, err)
			}
			if got := string(bufs[0][:sizes[0]]); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	})
	t.Run("oversized message is an error", func(t *testing.T) {
		c, s := Pair(t, nw)
		if _, err := c.Send([][]byte{make([]byte, 100)}); err != nil {
			t.Fatal(err)
		}
		bufs, sizes := [][]byte{make([]byte, 10)}, make([]int, 1)
		s.SetReadDeadline(time.Now().Add(patience))
		n, err := s.Recv(bufs, sizes)
		if err == nil || n != 0 || isTimeout(err) {
			t.Fatalf("recv of 100 bytes into 10: n=%d size=%d err=%v, want a too-large error", n, sizes[0], err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, s := Pair(t, nw)
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := s.Recv([][]byte{make([]byte, 16)}, make([]int, 1))
		if n != 0 || !isTimeout(err) {
			t.Fatalf("recv past deadline: n=%d err=%v, want a timeout", n, err)
		}
	})
	t.Run("close unblocks recv", func(t *testing.T) {
		_, s := Pair(t, nw)
		s.SetReadDeadline(time.Now().Add(time.Minute))
		done := make(chan error, 1)
		go func() {
			_, err := s.Recv([][]byte{make([]byte, 16)}, make([]int, 1))
			done <- err
		}()
		// Close once Recv has blocked, so the close is what unblocks it (had it not
		// blocked yet, the test would still hold: Recv on a closed endpoint fails at
		// once).
		if err := waitfor.InCall("transporttest.Conformance", true, nil, patience); err != nil {
			t.Logf("recv not seen blocked: %v; closing anyway", err)
		}
		s.Close()
		select {
		case err := <-done:
			if err == nil || isTimeout(err) {
				t.Fatalf("recv after close: %v, want a closed error", err)
			}
		case <-time.After(patience):
			t.Fatalf("recv still blocked %v after close", patience)
		}
	})
	t.Run("too large to send", func(t *testing.T) {
		c, _ := Pair(t, nw)
		n, err := c.Send([][]byte{make([]byte, nw.MaxMessage()+1)})
		if err == nil || n != 0 {
			t.Fatalf("send of MaxMessage+1 bytes: n=%d err=%v, want an error", n, err)
		}
	})
	t.Run("server endpoints", func(t *testing.T) { serverEndpoints(t, nw, caps) })
}

// serverEndpoints shows the connection-oriented difference: three clients get three
// server endpoints from a connected transport (TCP), one from a connectionless one
// (UDP's one socket serves them all).
func serverEndpoints(t *testing.T, nw transport.Network, caps transport.Caps) {
	want := 1
	if caps.Connected {
		want = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	l, err := nw.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		c, err := nw.Dial(ctx, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The expected endpoints are there once the dials are done, or as soon as the
	// kernel has finished their handshakes: each Accept may take its time (ctx). None
	// more may come: that wait is short, as anything more would already be queued.
	got := 0
	for got < want {
		s, err := l.Accept(ctx)
		if err != nil {
			t.Fatalf("3 clients: accept after %d server endpoints: %v", got, err)
		}
		defer s.Close()
		got++
	}
	actx, acancel := context.WithTimeout(ctx, 200*time.Millisecond)
	s, err := l.Accept(actx)
	acancel()
	switch {
	case err == nil:
		s.Close()
		got++
	case !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err):
		t.Logf("accept: %v", err)
	}
	if got != want {
		t.Fatalf("3 clients: %d server endpoints, want %d", got, want)
	}
}

// Pair opens a server end and a client end of nw on 127.0.0.1 and returns the
// client and the server-side endpoint that serves it, closed when the test ends.
// The client has already sent one message, so a connectionless server knows its
// peer; that message is consumed.
func Pair(tb testing.TB, nw transport.Network) (client, server transport.Transport) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	l, err := nw.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("%s: listen: %v", nw.Name(), err)
	}
	tb.Cleanup(func() { l.Close() })
	c, err := nw.Dial(ctx, l.Addr().String())
	if err != nil {
		tb.Fatalf("%s: dial: %v", nw.Name(), err)
	}
	tb.Cleanup(func() { c.Close() })
	s, err := l.Accept(ctx)
	if err != nil {
		tb.Fatalf("%s: accept: %v", nw.Name(), err)
	}
	tb.Cleanup(func() { s.Close() })
	hello := []byte("hello")
	if _, err := c.Send([][]byte{hello}); err != nil {
		tb.Fatalf("%s: send hello: %v", nw.Name(), err)
	}
	if got := RecvN(tb, s, 1, 64); !bytes.Equal(got[0], hello) {
		tb.Fatalf("%s: hello: got %q, want %q", nw.Name(), got[0], hello)
	}
	return c, s
}

// RecvN reads exactly n messages of at most size bytes from t, failing after
// patience.
func RecvN(tb testing.TB, t transport.Transport, n, size int) [][]byte {
	tb.Helper()
	var out [][]byte
	bufs, sizes := make([][]byte, 16), make([]int, 16)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	if err := t.SetReadDeadline(time.Now().Add(patience)); err != nil {
		tb.Fatal(err)
	}
	for len(out) < n {
		k, err := t.Recv(bufs, sizes)
		for i := range k {
			out = append(out, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
		if err != nil {
			tb.Fatalf("recv after %d of %d messages: %v", len(out), n, err)
		}
	}
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
