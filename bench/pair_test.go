package bench

import (
	"bytes"
	"context"
	"testing"
	"time"
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
