package udp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	for _, batch := range []int{1, 16, 64, 100} {
		for _, size := range []int{0, 1, 1472, MaxPayloadIPv4} {
			t.Run(fmt.Sprintf("batch=%d/size=%d", batch, size), func(t *testing.T) {
				srv, cli := loopbackPair(t, Options{RecvBuffer: 4 << 20}, Options{})
				msgs := make([][]byte, batch)
				for i := range msgs {
					msgs[i] = payload(i, size)
				}
				n, err := cli.Send(msgs)
				if errors.Is(err, syscall.EMSGSIZE) && runtime.GOOS != "linux" {
					t.Skipf("udp: %s refuses %d-byte datagrams (on darwin, sysctl net.inet.udp.maxdgram): %v", runtime.GOOS, size, err)
				}
				if n != batch || err != nil {
					t.Fatalf("Send(%d × %d bytes) = %d, %v; want %d, nil", batch, size, n, err, batch)
				}
				got := drain(t, srv, batch, MaxPayloadIPv4)
				drops := uint64(0)
				if runtime.GOOS == "linux" {
					if drops, err = srv.RecvDrops(); err != nil {
						t.Fatal(err)
					}
				}
				if uint64(len(got))+drops != uint64(batch) {
					t.Fatalf("received %d + dropped %d, want %d sent", len(got), drops, batch)
				}
				if drops > 0 && size < 8 {
					t.Fatalf("%d of %d datagrams of %d bytes dropped with a %d-byte request for the receive buffer", drops, batch, size, 4<<20)
				}
				if drops > 0 {
					t.Logf("%d of %d datagrams dropped by the receive buffer (counted)", drops, batch)
				}
				prev := -1
				for k, m := range got {
					i := k
					if size >= 8 {
						i = int(binary.BigEndian.Uint64(m))
					}
					if i <= prev || i >= batch {
						t.Fatalf("datagram %d carries index %d after %d", k, i, prev)
					}
					prev = i
					if !bytes.Equal(m, msgs[i]) {
						t.Fatalf("datagram %d (message %d): got %d bytes, want %d bytes as sent", k, i, len(m), size)
					}
				}
			})
		}
	}
}

func TestMessageTooLarge(t *testing.T) {
	srv, cli := loopbackPair(t, Options{}, Options{})
	for _, tc := range []struct {
		name string
		msgs [][]byte
	}{
		{"one", [][]byte{make([]byte, MaxPayloadIPv4+1)}},
		{"last of three", [][]byte{{1}, {2}, make([]byte, MaxPayloadIPv4+1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := cli.Send(tc.msgs)
			if n != 0 || !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("Send = %d, %v; want 0, %v", n, err, ErrMessageTooLarge)
			}
			if got := drain(t, srv, 1, 16); len(got) != 0 {
				t.Fatalf("server received %d datagrams after a refused Send, want 0", len(got))
			}
		})
	}
	if got := cli.SendErrors(); got != 0 {
		t.Errorf("SendErrors = %d after caller-side refusals, want 0", got)
	}
}

func TestIPv6(t *testing.T) {
	srv, err := Listen(t.Context(), "[::1]:0", Options{})
	if err != nil {
		t.Skipf("udp: no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	cli := dial(t, srv.LocalAddr().String(), Options{})
	if n, err := cli.Send([][]byte{make([]byte, MaxPayloadIPv6+1)}); n != 0 || !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Send(%d bytes) = %d, %v; want 0, %v", MaxPayloadIPv6+1, n, err, ErrMessageTooLarge)
	}
	msg := payload(7, MaxPayloadIPv6)
	if n, err := cli.Send([][]byte{msg}); n != 1 || err != nil {
		t.Fatalf("Send(%d bytes) = %d, %v; want 1, nil", len(msg), n, err)
	}
	got := drain(t, srv, 1, MaxPayloadIPv6)
	if len(got) != 1 || !bytes.Equal(got[0], msg) {
		t.Fatalf("received %d datagrams, want the one of %d bytes sent", len(got), len(msg))
	}
}

func TestServerEcho(t *testing.T) {
	srv := listen(t, Options{})
	a := dial(t, srv.LocalAddr().String(), Options{})
	b := dial(t, srv.LocalAddr().String(), Options{})
	for _, c := range []struct {
		conn *Conn
		msg  string
	}{{a, "from a"}, {b, "from b, longer"}} {
		if n, err := c.conn.Send([][]byte{[]byte(c.msg)}); n != 1 || err != nil {
			t.Fatalf("client Send = %d, %v", n, err)
		}
	}
	// The echo loop: Recv, trim, Send the same slice back.
	bufs, sizes := makeBufs(8, 1500)
	if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	for echoed := 0; echoed < 2; {
		n, err := srv.Recv(bufs, sizes)
		if err != nil {
			t.Fatalf("server Recv after %d echoed: %v", echoed, err)
		}
		out := make([][]byte, n)
		for i := range n {
			out[i] = bufs[i][:sizes[i]]
		}
		if m, err := srv.Send(out); m != n || err != nil {
			t.Fatalf("server Send(%d) = %d, %v", n, m, err)
		}
		echoed += n
	}
	for _, c := range []struct {
		name string
		conn *Conn
		want string
	}{{"a", a, "from a"}, {"b", b, "from b, longer"}} {
		got := drain(t, c.conn, 2, 1500)
		if len(got) != 1 || string(got[0]) != c.want {
			t.Errorf("client %s received %q, want [%q]", c.name, got, c.want)
		}
	}
}

func TestServerNoPeer(t *testing.T) {
	srv, cli := loopbackPair(t, Options{}, Options{})
	if n, err := srv.Send([][]byte{[]byte("x")}); n != 0 || !errors.Is(err, ErrNoPeer) {
		t.Fatalf("Send before any Recv = %d, %v; want 0, %v", n, err, ErrNoPeer)
	}
	if n, err := cli.Send([][]byte{[]byte("ping")}); n != 1 || err != nil {
		t.Fatalf("client Send = %d, %v", n, err)
	}
	if got := drain(t, srv, 1, 64); len(got) != 1 {
		t.Fatalf("server received %d datagrams, want 1", len(got))
	}
	n, err := srv.Send([][]byte{[]byte("one"), []byte("two")})
	if n != 1 || !errors.Is(err, ErrNoPeer) {
		t.Fatalf("Send(2) after a Recv of 1 = %d, %v; want 1, %v", n, err, ErrNoPeer)
	}
	if got := drain(t, cli, 2, 64); len(got) != 1 || string(got[0]) != "one" {
		t.Fatalf("client received %q, want [\"one\"]", got)
	}
	if got := srv.SendErrors(); got != 0 {
		t.Errorf("SendErrors = %d after ErrNoPeer, want 0", got)
	}
	if srv.RemoteAddr() != nil {
		t.Errorf("server RemoteAddr = %v, want nil", srv.RemoteAddr())
	}
	if cli.RemoteAddr().String() != srv.LocalAddr().String() {
		t.Errorf("client RemoteAddr = %v, want %v", cli.RemoteAddr(), srv.LocalAddr())
	}
}

func TestTruncated(t *testing.T) {
	srv, cli := loopbackPair(t, Options{}, Options{})
	msgs := [][]byte{payload(0, 100), payload(1, 200), payload(2, 3000), payload(3, 100)}
	if n, err := cli.Send(msgs); n != len(msgs) || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	bufs, sizes := makeBufs(8, 1000)
	if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for {
		n, err := srv.Recv(bufs, sizes)
		for i := range n {
			got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
		if errors.Is(err, ErrTruncated) {
			break
		}
		if err != nil || len(got) > 2 {
			t.Fatalf("Recv after %d datagrams = %d, %v; want ErrTruncated at the third", len(got), n, err)
		}
	}
	if len(got) != 2 || !bytes.Equal(got[0], msgs[0]) || !bytes.Equal(got[1], msgs[1]) {
		t.Fatalf("datagrams before the truncated one: got %d (sizes %d), want the 100- and 200-byte ones", len(got), sizes[:len(got)])
	}
}

func TestReadDeadline(t *testing.T) {
	srv, _ := loopbackPair(t, Options{}, Options{})
	bufs, sizes := makeBufs(4, 64)
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"past", time.Now().Add(-time.Second)},
		{"future", time.Now().Add(20 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := srv.SetReadDeadline(tc.at); err != nil {
				t.Fatal(err)
			}
			n, err := srv.Recv(bufs, sizes)
			if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Recv = %d, %v; want 0, %v", n, err, os.ErrDeadlineExceeded)
			}
		})
	}
}

func TestWriteDeadline(t *testing.T) {
	_, cli := loopbackPair(t, Options{}, Options{})
	if err := cli.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := cli.Send([][]byte{[]byte("late")})
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send past the write deadline = %d, %v; want 0, %v", n, err, os.ErrDeadlineExceeded)
	}
	if got := cli.SendErrors(); got != 1 {
		t.Errorf("SendErrors = %d, want 1", got)
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	srv, cli := loopbackPair(t, Options{}, Options{})
	done := make(chan error) // closed by nobody: one value, then the goroutine ends
	go func() {
		bufs, sizes := makeBufs(4, 64)
		_, err := srv.Recv(bufs, sizes)
		done <- err
	}()
	// Close while Recv waits (or before it starts: either way it must return).
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Recv after Close: %v, want %v", err, net.ErrClosed)
		}
	case <-time.After(recvTimeout):
		t.Fatal("Recv still blocked after Close")
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := cli.Send([][]byte{{1}}); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close = %d, %v; want 0, %v", n, err, net.ErrClosed)
	}
	if got := cli.SendErrors(); got != 0 {
		t.Errorf("SendErrors = %d after Close, want 0", got)
	}
}

// TestConcurrentSendRecv runs one sender and one receiver goroutine on a client
// against an echo loop, under the race detector, and accounts for every datagram.
func TestConcurrentSendRecv(t *testing.T) {
	const total, batch = 2000, 16
	srv, cli := loopbackPair(t, Options{RecvBuffer: 4 << 20}, Options{RecvBuffer: 4 << 20})
	errs := make(chan error, 3) // buffered: each goroutine sends at most one error

	var echo sync.WaitGroup
	echo.Go(func() { // the echo loop ends when srv is closed
		bufs, sizes := makeBufs(batch, 256)
		out := make([][]byte, batch)
		for {
			n, err := srv.Recv(bufs, sizes)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					errs <- fmt.Errorf("echo Recv: %w", err)
				}
				return
			}
			for i := range n {
				out[i] = bufs[i][:sizes[i]]
			}
			if m, err := srv.Send(out[:n]); m != n || err != nil {
				errs <- fmt.Errorf("echo Send(%d) = %d, %w", n, m, err)
				return
			}
		}
	})

	var wg sync.WaitGroup
	wg.Go(func() {
		msgs := make([][]byte, batch)
		for sent := 0; sent < total; sent += batch {
			for i := range msgs {
				msgs[i] = payload(sent+i, 64)
			}
			if n, err := cli.Send(msgs); n != batch || err != nil {
				errs <- fmt.Errorf("client Send = %d, %w", n, err)
				return
			}
		}
	})
	received := 0
	// accounted: every datagram is back or counted dropped (by either socket). Without
	// RecvDrops (not Linux) it cannot tell, and says so at once.
	accounted := func() bool {
		d1, err1 := srv.RecvDrops()
		d2, err2 := cli.RecvDrops()
		return err1 != nil || err2 != nil || uint64(received)+d1+d2 >= total
	}
	wg.Go(func() { // stops after total replies, or once the rest are counted dropped, or recvTimeout without a reply
		bufs, sizes := makeBufs(batch, 256)
		lastReply := time.Now()
		for received < total {
			if err := cli.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
				errs <- err
				return
			}
			n, err := cli.Recv(bufs, sizes)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Not an end by itself: a loaded machine may stall the echo loop
				// longer than idleTimeout.
				if accounted() || time.Since(lastReply) > recvTimeout {
					return
				}
				continue
			}
			if err != nil {
				errs <- fmt.Errorf("client Recv: %w", err)
				return
			}
			for i := range n {
				if sizes[i] != 64 || binary.BigEndian.Uint64(bufs[i]) >= total {
					errs <- fmt.Errorf("client received a %d-byte reply with index %d", sizes[i], binary.BigEndian.Uint64(bufs[i]))
					return
				}
			}
			received += n
			lastReply = time.Now()
		}
	})
	wg.Wait()
	d1, err1 := srv.RecvDrops()
	d2, err2 := cli.RecvDrops()
	srv.Close()
	echo.Wait()
	close(errs) // every goroutine that sends on errs has returned
	for err := range errs {
		t.Error(err)
	}
	if runtime.GOOS != "linux" {
		if received > total {
			t.Errorf("replies %d, want at most %d", received, total)
		}
		return
	}
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if uint64(received)+d1+d2 != total {
		t.Errorf("replies %d + server drops %d + client drops %d, want %d", received, d1, d2, total)
	}
}

// TestFromConn: a socket connected by hand (net.DialUDP) becomes a Conn that sends
// to its peer and receives from it in batches; without a peer FromConn refuses and
// leaves the socket usable.
func TestFromConn(t *testing.T) {
	srv, err := Listen(t.Context(), "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	uc, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromConn(uc, nil, Options{}); err == nil {
		t.Fatal("FromConn without a peer: no error")
	}
	c, err := FromConn(uc, srv.LocalAddr(), Options{Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	if n, err := c.Send(msgs); n != 3 || err != nil {
		t.Fatalf("Send: %d, %v", n, err)
	}
	bufs := [][]byte{make([]byte, 16), make([]byte, 16), make([]byte, 16)}
	sizes := make([]int, 3)
	got := 0
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got < 3 {
		n, err := srv.Recv(bufs[got:], sizes[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	for i, m := range msgs {
		if string(bufs[i][:sizes[i]]) != string(m) {
			t.Errorf("message %d: %q, want %q", i, bufs[i][:sizes[i]], m)
		}
	}
	// The server answers; the wrapped socket receives.
	if _, err := srv.Send([][]byte{[]byte("back")}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Recv(bufs[:1], sizes[:1]); n != 1 || err != nil || string(bufs[0][:sizes[0]]) != "back" {
		t.Fatalf("Recv: %d, %v, %q", n, err, bufs[0][:sizes[0]])
	}
	if c.RemoteAddr().String() != srv.LocalAddr().String() {
		t.Errorf("RemoteAddr %v, want %v", c.RemoteAddr(), srv.LocalAddr())
	}
}
