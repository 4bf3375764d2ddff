package udp

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"
)

// recvTimeout bounds every wait for a datagram that should arrive; idleTimeout is how
// long a drain waits for one more datagram before deciding the queue is empty.
const (
	recvTimeout = 5 * time.Second
	idleTimeout = 200 * time.Millisecond
)

// listen opens a server socket on 127.0.0.1 and closes it when the test ends.
func listen(tb testing.TB, o Options) *Conn {
	tb.Helper()
	c, err := Listen(tb.Context(), "127.0.0.1:0", o)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// dial opens a client socket connected to address and closes it when the test ends.
func dial(tb testing.TB, address string, o Options) *Conn {
	tb.Helper()
	c, err := Dial(tb.Context(), address, o)
	if err != nil {
		tb.Fatalf("Dial %s: %v", address, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// loopbackPair returns a server socket on 127.0.0.1 and a client connected to it.
func loopbackPair(tb testing.TB, server, client Options) (srv, cli *Conn) {
	tb.Helper()
	srv = listen(tb, server)
	cli = dial(tb, srv.LocalAddr().String(), client)
	return srv, cli
}

// makeBufs returns n buffers of size bytes each and a sizes slice to match.
func makeBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// payload returns message i of a test, size bytes: the index in the first 8 bytes
// when they fit, then a pattern that depends on i.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j*7 + 1)
	}
	if size >= 8 {
		binary.BigEndian.PutUint64(b, uint64(i))
	}
	return b
}

// drain reads from c until want datagrams have arrived or none arrives for
// idleTimeout, and returns copies of what it read. Errors other than the final
// deadline fail the test.
func drain(tb testing.TB, c *Conn, want, bufSize int) [][]byte {
	tb.Helper()
	bufs, sizes := makeBufs(64, bufSize)
	var got [][]byte
	for len(got) < want {
		if err := c.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
			tb.Fatal(err)
		}
		n, err := c.Recv(bufs, sizes)
		for i := range n {
			got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			tb.Fatalf("Recv after %d datagrams: %v", len(got), err)
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		tb.Fatal(err)
	}
	return got
}
