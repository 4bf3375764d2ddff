package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// loopbackPair opens a server end and a client end of nw on 127.0.0.1 and returns
// the client and the server-side endpoint that serves it. The client has already
// sent one message, so a datagram server knows its peer; that message is consumed.
func loopbackPair(tb testing.TB, nw Network) (client, server Transport) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
	got := recvN(tb, s, 1, 64)
	if !bytes.Equal(got[0], hello) {
		tb.Fatalf("%s: hello: got %q, want %q", nw.Name(), got[0], hello)
	}
	return c, s
}

// recvN reads exactly n messages of at most size bytes from t, failing after 5 s.
func recvN(tb testing.TB, t Transport, n, size int) [][]byte {
	tb.Helper()
	var out [][]byte
	bufs := makeBufs(16, size)
	sizes := make([]int, 16)
	deadline := time.Now().Add(5 * time.Second)
	if err := t.SetReadDeadline(deadline); err != nil {
		tb.Fatal(err)
	}
	for len(out) < n {
		k, err := t.Recv(bufs, sizes)
		for i := 0; i < k; i++ {
			out = append(out, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
		if err != nil {
			tb.Fatalf("recv after %d of %d messages: %v", len(out), n, err)
		}
	}
	return out
}

func testNetworks(tb testing.TB) []Network {
	tb.Helper()
	var nws []Network
	for _, name := range Transports() {
		nw, err := NetworkByName(name, NetOptions{NoDelay: true})
		if err != nil {
			tb.Fatal(err)
		}
		nws = append(nws, nw)
	}
	return nws
}

// TestConformance is the suite every transport passes: whole messages, order on
// loopback, batch limits, deadlines, and close unblocking a reader.
func TestConformance(t *testing.T) {
	for _, nw := range testNetworks(t) {
		t.Run(nw.Name(), func(t *testing.T) {
			t.Run("whole messages", func(t *testing.T) {
				c, s := loopbackPair(t, nw)
				sizes := []int{0, 1, 47, 48, 1000, 1472, 9000, 65507}
				var msgs [][]byte
				for i, n := range sizes {
					m := bytes.Repeat([]byte{byte(i + 1)}, n)
					msgs = append(msgs, m)
				}
				// One at a time: a datagram transport may drop a burst of large ones on a small buffer.
				for i, m := range msgs {
					if n, err := c.Send([][]byte{m}); err != nil || n != 1 {
						t.Fatalf("send size %d: n=%d err=%v", sizes[i], n, err)
					}
					got := recvN(t, s, 1, 65536)
					if !bytes.Equal(got[0], m) {
						t.Fatalf("size %d: got %d bytes, want %d identical bytes", sizes[i], len(got[0]), len(m))
					}
				}
			})
			t.Run("order and batches", func(t *testing.T) {
				c, s := loopbackPair(t, nw)
				const total = 200
				var batch [][]byte
				for i := 0; i < total; i++ {
					batch = append(batch, []byte(fmt.Sprintf("message %03d", i)))
				}
				sent := 0
				for sent < total {
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
				got := recvN(t, s, total, 64)
				for i, m := range got {
					if want := fmt.Sprintf("message %03d", i); string(m) != want {
						t.Fatalf("message %d: got %q, want %q", i, m, want)
					}
				}
			})
			t.Run("recv respects len(bufs)", func(t *testing.T) {
				c, s := loopbackPair(t, nw)
				if _, err := c.Send([][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
					t.Fatal(err)
				}
				bufs, sizes := makeBufs(1, 16), make([]int, 1)
				s.SetReadDeadline(time.Now().Add(5 * time.Second))
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
				c, s := loopbackPair(t, nw)
				if _, err := c.Send([][]byte{make([]byte, 100)}); err != nil {
					t.Fatal(err)
				}
				bufs, sizes := makeBufs(1, 10), make([]int, 1)
				s.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := s.Recv(bufs, sizes)
				if err == nil {
					t.Fatalf("recv of 100 bytes into 10: n=%d size=%d, want an error", n, sizes[0])
				}
				if !isOversize(err) && !isStreamBroken(err) {
					t.Fatalf("recv of 100 bytes into 10: %v, want a too-large error", err)
				}
			})
			t.Run("deadline", func(t *testing.T) {
				_, s := loopbackPair(t, nw)
				s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				n, err := s.Recv(makeBufs(1, 16), make([]int, 1))
				if n != 0 || !isTimeout(err) {
					t.Fatalf("recv past deadline: n=%d err=%v, want a timeout", n, err)
				}
			})
			t.Run("close unblocks recv", func(t *testing.T) {
				_, s := loopbackPair(t, nw)
				s.SetReadDeadline(time.Now().Add(time.Minute))
				done := make(chan error, 1)
				go func() {
					_, err := s.Recv(makeBufs(1, 16), make([]int, 1))
					done <- err
				}()
				// Close once Recv has blocked, so the close is what unblocks it (had it
				// not blocked yet, the test would still hold: Recv on a closed endpoint
				// fails at once).
				if err := waitfor.InCall("TestConformance", true, nil, patience); err != nil {
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
				c, _ := loopbackPair(t, nw)
				n, err := c.Send([][]byte{make([]byte, nw.MaxMessage()+1)})
				if err == nil || n != 0 {
					t.Fatalf("send of MaxMessage+1 bytes: n=%d err=%v, want an error", n, err)
				}
			})
		})
	}
}

// TestListenerSockets shows the connection-oriented difference: TCP accepts one
// endpoint per client, UDP's one socket serves them all.
func TestListenerSockets(t *testing.T) {
	want := map[string]int{"tcp": 3, "udp": 1}
	for _, nw := range testNetworks(t) {
		t.Run(nw.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			l, err := nw.Listen(ctx, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := 0; i < 3; i++ {
				c, err := nw.Dial(ctx, l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			// The expected endpoints are there once the dials are done, or as soon as
			// the kernel has finished their handshakes: each Accept may take its time
			// (ctx). None more may come: that wait is short, as anything more would
			// already be queued.
			got := 0
			for got < want[nw.Name()] {
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
			if got != want[nw.Name()] {
				t.Fatalf("3 clients: %d server endpoints, want %d", got, want[nw.Name()])
			}
		})
	}
}
