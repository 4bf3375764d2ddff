package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// testTimeout bounds every blocking step of a test; tests never wait on time otherwise.
const testTimeout = 10 * time.Second

// loopbackPair returns the two ends of a TCP connection on 127.0.0.1 with the
// default Options, closed when the test ends.
func loopbackPair(tb testing.TB) (client, server *Conn) {
	tb.Helper()
	return loopbackPairWith(tb, Options{NoDelay: true}, Options{NoDelay: true})
}

// loopbackPairWith is loopbackPair with options for each end.
func loopbackPairWith(tb testing.TB, co, so Options) (client, server *Conn) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ln, err := Listen(ctx, "127.0.0.1:0", so)
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err = Dial(ctx, ln.Addr().String(), co)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	server, err = ln.Accept(ctx) // the kernel completed the handshake already
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { server.Close() })
	return client, server
}

// recvAll reads messages from c until io.EOF or until want messages arrived,
// checking message i against pattern(i, size(i)). It returns how many arrived.
func recvAll(c *Conn, want int, size func(i int) int, maxSize int) (int, error) {
	bufs := make([][]byte, 16)
	for i := range bufs {
		bufs[i] = make([]byte, maxSize)
	}
	sizes := make([]int, len(bufs))
	got := 0
	for got < want {
		if err := c.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
			return got, err
		}
		n, err := c.Recv(bufs, sizes)
		for i := range n {
			if w := pattern(got, size(got)); !bytes.Equal(bufs[i][:sizes[i]], w) {
				return got, fmt.Errorf("message %d: got %d bytes, want %d bytes of pattern %d", got, sizes[i], len(w), got)
			}
			got++
		}
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func TestSendRecv(t *testing.T) {
	tests := []struct {
		name    string
		count   int // messages
		batch   int // messages per Send
		size    func(i int) int
		maxSize int
	}{
		{name: "64 bytes in batches of 16", count: 1600, batch: 16, size: func(int) int { return 64 }, maxSize: 64},
		{name: "one at a time", count: 200, batch: 1, size: func(i int) int { return i }, maxSize: 200},
		{name: "zero-length among others", count: 300, batch: 7, size: func(i int) int { return (i % 3) * 10 }, maxSize: 20},
		{name: "mixed copied and vectored", count: 500, batch: 16, size: func(i int) int { return (i * 997) % 40000 }, maxSize: 40000},
		{name: "larger than the read buffer", count: 12, batch: 3, size: func(i int) int { return readBufSize + i*100000 }, maxSize: readBufSize + 1200000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			var wg sync.WaitGroup
			wg.Go(func() {
				got, err := recvAll(server, tc.count, tc.size, tc.maxSize)
				if err != nil || got != tc.count {
					t.Errorf("received %d of %d messages, error %v", got, tc.count, err)
				}
			})
			defer wg.Wait()
			for i := 0; i < tc.count; i += tc.batch {
				var msgs [][]byte
				for j := i; j < min(i+tc.batch, tc.count); j++ {
					msgs = append(msgs, pattern(j, tc.size(j)))
				}
				if n, err := client.Send(msgs); n != len(msgs) || err != nil {
					t.Fatalf("Send of messages %d..%d: got (%d, %v), want (%d, nil)", i, i+len(msgs)-1, n, err, len(msgs))
				}
			}
		})
	}
}

func TestRecvDeadlineResumesFrame(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		chunk int // bytes per raw write, each followed by a pause
	}{
		{name: "byte by byte", sizes: []int{5, 0, 12, 1}, chunk: 1},
		{name: "larger than the read buffer", sizes: []int{readBufSize + 1000, 3}, chunk: 64 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			var want [][]byte
			for i, s := range tc.sizes {
				want = append(want, pattern(i, s))
			}
			stream := encode(want...)
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() {
				raw := client.NetConn()
				for off := 0; off < len(stream); off += tc.chunk {
					if _, err := raw.Write(stream[off:min(off+tc.chunk, len(stream))]); err != nil {
						t.Errorf("raw write at %d: %v", off, err)
						return
					}
					time.Sleep(2 * time.Millisecond) // let the reader's deadlines fire between writes
				}
			})
			bufs := [][]byte{make([]byte, 2*readBufSize), make([]byte, 2*readBufSize)}
			sizes := make([]int, len(bufs))
			var got [][]byte
			timeouts := 0
			end := time.Now().Add(testTimeout)
			for len(got) < len(want) && time.Now().Before(end) {
				if err := server.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				n, err := server.Recv(bufs, sizes)
				for i := range n {
					got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					timeouts++
					continue
				}
				if err != nil {
					t.Fatalf("after %d messages and %d timeouts: %v", len(got), timeouts, err)
				}
			}
			t.Logf("%d deadlines expired while %d bytes arrived", timeouts, len(stream))
			sameMessages(t, got, want)
		})
	}
}

func TestSendDeadlineKeepsStreamFramed(t *testing.T) {
	small := Options{NoDelay: true, RecvBuffer: 16 << 10, SendBuffer: 16 << 10}
	client, server := loopbackPairWith(t, small, small)
	const size, batch = 100 << 10, 8
	msgs := make([][]byte, 0, 64)
	sent := 0
	// The server does not read yet: Send fills both socket buffers and blocks
	// until the deadline expires, most likely inside a frame.
	if err := client.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 1000 {
		msgs = msgs[:0]
		for j := sent; j < sent+batch; j++ {
			msgs = append(msgs, pattern(j, size))
		}
		var n int
		n, err = client.Send(msgs)
		sent += n
		if err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send with a blocked peer: got %v, want a deadline error", err)
	}
	if !strings.HasPrefix(err.Error(), "tcp: send to 127.0.0.1:") {
		t.Errorf("error %q does not name the operation and the peer", err)
	}
	total := sent + 2*batch
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		got, err := recvAll(server, total, func(int) int { return size }, size)
		if err != nil || got != total {
			t.Errorf("received %d of %d messages, error %v", got, total, err)
		}
	})
	if err := client.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	for sent < total {
		msgs = msgs[:0]
		for j := sent; j < min(sent+batch, total); j++ {
			msgs = append(msgs, pattern(j, size))
		}
		n, err := client.Send(msgs)
		if err != nil {
			t.Fatalf("Send after clearing the deadline: %v", err)
		}
		sent += n
	}
}

func TestCloseUnblocks(t *testing.T) {
	tests := []struct {
		name string
		call func(c *Conn) error
	}{
		{name: "Recv", call: func(c *Conn) error {
			_, err := c.Recv([][]byte{make([]byte, 10)}, make([]int, 1))
			return err
		}},
		{name: "Send", call: func(c *Conn) error {
			big := [][]byte{make([]byte, 1<<20)}
			for { // the peer never reads: Send soon blocks
				if _, err := c.Send(big); err != nil {
					return err
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := loopbackPair(t)
			done := make(chan error, 1)
			go func() { done <- tc.call(client) }()
			if err := waitfor.InCall("tcp.(*Conn)."+tc.name+"(", true, done, testTimeout); err != nil { // blocked, not about to block
				t.Fatal(err)
			}
			if err := client.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("%s after Close: got %v, want an error wrapping net.ErrClosed", tc.name, err)
				}
			case <-time.After(testTimeout):
				t.Fatalf("%s still blocked %v after Close", tc.name, testTimeout)
			}
			if err := tc.call(client); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s on a closed Conn: got %v, want an error wrapping net.ErrClosed", tc.name, err)
			}
		})
	}
}

func TestPeerClose(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte // written on the raw stream before closing
		want    int    // whole messages before the end
		wantErr error
	}{
		{name: "between frames", raw: encode(pattern(0, 3), pattern(1, 0)), want: 2, wantErr: io.EOF},
		{name: "nothing sent", raw: nil, want: 0, wantErr: io.EOF},
		{name: "inside a prefix", raw: append(encode(pattern(0, 3)), 0, 0), want: 1, wantErr: io.ErrUnexpectedEOF},
		{name: "inside a body", raw: append(encode(pattern(0, 3)), 0, 0, 0, 9, 1, 2), want: 1, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			if _, err := client.NetConn().Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if err := client.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := recvAll(server, 1<<30, func(i int) int { return []int{3, 0}[i] }, 16)
			if got != tc.want {
				t.Fatalf("got %d messages, want %d", got, tc.want)
			}
			if tc.wantErr == io.EOF {
				if err != nil { // recvAll returns nil at io.EOF: ask again
					t.Fatalf("got %v, want a clean end", err)
				}
				if n, err := server.Recv([][]byte{make([]byte, 16)}, make([]int, 1)); n != 0 || err != io.EOF {
					t.Fatalf("Recv after a clean close: got (%d, %v), want (0, io.EOF)", n, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.wantErr)
			}
		})
	}
}

func TestMessageTooLarge(t *testing.T) {
	t.Run("Send", func(t *testing.T) {
		client, server := loopbackPairWith(t, Options{MaxMessage: 1000}, Options{})
		n, err := client.Send([][]byte{pattern(0, 10), pattern(1, 1001), pattern(2, 10)})
		if n != 1 || !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("got (%d, %v), want (1, ErrMessageTooLarge)", n, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "tcp: send to 127.0.0.1:") || !strings.Contains(msg, "1001") || !strings.Contains(msg, "1000") {
			t.Errorf("error %q does not name the peer, the size and the limit", msg)
		}
		if got, err := recvAll(server, 1, func(i int) int { return 10 }, 10); got != 1 || err != nil {
			t.Fatalf("the message before the large one: got %d, %v", got, err)
		}
	})
	t.Run("Recv over MaxMessage", func(t *testing.T) {
		client, server := loopbackPairWith(t, Options{}, Options{MaxMessage: 1000})
		if _, err := client.Send([][]byte{pattern(0, 10), pattern(1, 1001)}); err != nil {
			t.Fatal(err)
		}
		got, err := recvAll(server, 2, func(i int) int { return []int{10, 1001}[i] }, 2000)
		if got != 1 || !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("got %d messages and %v, want 1 and ErrMessageTooLarge", got, err)
		}
		if _, err2 := server.Recv([][]byte{make([]byte, 2000)}, make([]int, 1)); !errors.Is(err2, ErrMessageTooLarge) {
			t.Errorf("Recv after a frame over MaxMessage: got %v, want the same error again", err2)
		}
	})
	t.Run("Recv into a small buffer", func(t *testing.T) {
		client, server := loopbackPair(t)
		if _, err := client.Send([][]byte{pattern(0, 100)}); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Recv([][]byte{make([]byte, 99)}, make([]int, 1)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("100-byte message into 99 bytes: got %v, want ErrMessageTooLarge", err)
		}
		if got, err := recvAll(server, 1, func(int) int { return 100 }, 100); got != 1 || err != nil {
			t.Fatalf("retry with a 100-byte buffer: got %d messages, %v", got, err)
		}
	})
}

func TestAccept(t *testing.T) {
	ctx := t.Context()
	ln, err := Listen(ctx, "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	t.Run("cancel unblocks and leaves the listener open", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept(cctx)
			if c != nil {
				c.Close()
			}
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Accept with a cancelled context: got %v, want context.Canceled", err)
		}
		acceptOne(t, ln, ctx)
	})

	t.Run("context deadline", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		defer cancel()
		if _, err := ln.Accept(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		acceptOne(t, ln, ctx)
	})

	t.Run("one of two cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		live := make(chan error, 1)
		wg.Go(func() {
			c, err := ln.Accept(ctx)
			if err == nil {
				err = c.Close()
			}
			live <- err
		})
		cancelled := make(chan error, 1)
		wg.Go(func() {
			_, err := ln.Accept(cctx)
			cancelled <- err
		})
		cancel()
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Accept: got %v, want context.Canceled", err)
		}
		c, err := Dial(ctx, ln.Addr().String(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := <-live; err != nil {
			t.Fatalf("the other Accept: %v", err)
		}
	})

	t.Run("close unblocks, accepted conns stay open", func(t *testing.T) {
		ln, err := Listen(ctx, "127.0.0.1:0", Options{})
		if err != nil {
			t.Fatal(err)
		}
		client, err := Dial(ctx, ln.Addr().String(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		done := make(chan error, 1)
		go func() {
			_, err := ln.Accept(ctx)
			done <- err
		}()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept on a closed listener: got %v, want net.ErrClosed", err)
		}
		if _, err := client.Send([][]byte{pattern(0, 5)}); err != nil {
			t.Fatal(err)
		}
		if got, err := recvAll(server, 1, func(int) int { return 5 }, 5); got != 1 || err != nil {
			t.Fatalf("accepted conn after the listener closed: got %d messages, %v", got, err)
		}
	})
}

// acceptOne dials ln and accepts the connection, proving ln still works.
func acceptOne(tb testing.TB, ln *Listener, ctx context.Context) {
	tb.Helper()
	c, err := Dial(ctx, ln.Addr().String(), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept(ctx)
	if err != nil {
		tb.Fatalf("Accept after a cancelled one: %v", err)
	}
	s.Close()
}

func TestDialRefused(t *testing.T) {
	ln, err := Listen(t.Context(), "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(t.Context(), addr, Options{})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: got %v, want ECONNREFUSED", err)
	}
	if want := "tcp: dial " + addr + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start %q", err, want)
	}
}

func TestOptionsInvalid(t *testing.T) {
	tests := []struct {
		name  string
		o     Options
		field string
	}{
		{name: "negative receive buffer", o: Options{RecvBuffer: -1}, field: "RecvBuffer"},
		{name: "negative send buffer", o: Options{SendBuffer: -1}, field: "SendBuffer"},
		{name: "negative max message", o: Options{MaxMessage: -1}, field: "MaxMessage"},
	}
	if over := uint64(maxFrameLen) + 1; over <= math.MaxInt { // 64-bit ints only
		tests = append(tests, struct {
			name  string
			o     Options
			field string
		}{name: "max message over 32 bits", o: Options{MaxMessage: int(over)}, field: "MaxMessage"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Dial(t.Context(), "127.0.0.1:1", tc.o); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Dial with %+v: got %v, want an error naming %s", tc.o, err, tc.field)
			}
			if ln, err := Listen(t.Context(), "127.0.0.1:0", tc.o); err == nil || !strings.Contains(err.Error(), tc.field) {
				if ln != nil {
					ln.Close()
				}
				t.Errorf("Listen with %+v: got %v, want an error naming %s", tc.o, err, tc.field)
			}
		})
	}
}

func TestAddrs(t *testing.T) {
	client, server := loopbackPair(t)
	if c, s := client.LocalAddr().String(), server.RemoteAddr().String(); c != s {
		t.Errorf("client LocalAddr %s, server RemoteAddr %s: want equal", c, s)
	}
	if c, s := client.RemoteAddr().String(), server.LocalAddr().String(); c != s {
		t.Errorf("client RemoteAddr %s, server LocalAddr %s: want equal", c, s)
	}
}

func TestRecvEmptyBatch(t *testing.T) {
	_, server := loopbackPair(t)
	if n, err := server.Recv(nil, nil); n != 0 || err != nil {
		t.Fatalf("Recv(nil, nil): got (%d, %v), want (0, nil)", n, err)
	}
}

// sendRecvBatch sends batch on client and receives len(batch) messages on server
// into bufs, without allocating.
func sendRecvBatch(client, server *Conn, batch, bufs [][]byte, sizes []int) error {
	if _, err := client.Send(batch); err != nil {
		return err
	}
	for got := 0; got < len(batch); {
		n, err := server.Recv(bufs[got:], sizes[got:])
		if err != nil {
			return err
		}
		got += n
	}
	return nil
}

func TestSendRecvAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("tcp: the race detector allocates")
	}
	for _, size := range []int{64, 8192} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			// Buffers large enough for a whole batch, so one goroutine can do both ends.
			o := Options{NoDelay: true, RecvBuffer: 1 << 20, SendBuffer: 1 << 20}
			client, server := loopbackPairWith(t, o, o)
			batch, bufs := make([][]byte, 16), make([][]byte, 16)
			for i := range batch {
				batch[i], bufs[i] = pattern(i, size), make([]byte, size)
			}
			sizes := make([]int, len(bufs))
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				if err == nil {
					err = sendRecvBatch(client, server, batch, bufs, sizes)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("a batch of 16 %d-byte messages allocated %v times, want 0", size, allocs)
			}
		})
	}
}

// TestFrameOverNetConn: Frame frames messages over a byte stream that is not a
// *net.TCPConn (here net.Pipe): messages go through whole, socket queries say they
// are unsupported, and socket options are refused.
func TestFrameOverNetConn(t *testing.T) {
	a, b := net.Pipe()
	ca, err := Frame(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := Frame(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte{7}, 10000), {}}
	errc := make(chan error, 1)
	go func() {
		_, err := ca.Send(msgs)
		errc <- err
	}()
	bufs := [][]byte{make([]byte, 16), make([]byte, 16384), make([]byte, 16)}
	sizes := make([]int, 3)
	got := 0
	cb.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got < 3 {
		n, err := cb.Recv(bufs[got:], sizes[got:])
		if err != nil {
			t.Fatalf("recv after %d messages: %v", got, err)
		}
		got += n
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if !bytes.Equal(bufs[i][:sizes[i]], m) {
			t.Errorf("message %d: got %d bytes, want %d", i, sizes[i], len(m))
		}
	}
	if _, err := cb.Info(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Info over a pipe: %v, want ErrUnsupported", err)
	}
	if _, _, err := cb.BufferSizes(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("BufferSizes over a pipe: %v, want ErrUnsupported", err)
	}
	if _, err := Frame(a, Options{NoDelay: true}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Frame with NoDelay over a pipe: %v, want ErrUnsupported", err)
	}
	if err := cb.SetBuffers(1<<16, 0); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetBuffers over a pipe: %v, want ErrUnsupported", err)
	}
}
