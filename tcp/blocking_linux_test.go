//go:build linux

package tcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// blockingPair is loopbackPair with both ends in blocking mode.
func blockingPair(t *testing.T) (client, server *Conn) {
	t.Helper()
	o := Options{NoDelay: true, Blocking: true}
	client, server = loopbackPairWith(t, o, o)
	for _, c := range []*Conn{client, server} {
		if got := c.RecvMode(); got != RecvBlocking {
			t.Fatalf("RecvMode = %q, want %q", got, RecvBlocking)
		}
	}
	return client, server
}

func TestBlockingModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
		nb   bool // O_NONBLOCK on the socket
	}{
		{"default", Options{}, RecvPoller, true},
		{"blocking", Options{Blocking: true}, RecvBlocking, false},
		{"busy-poll", Options{BusyPoll: true}, RecvBusyPoll, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := loopbackPairWith(t, tc.o, Options{})
			if got := c.RecvMode(); got != tc.want {
				t.Errorf("RecvMode = %q, want %q", got, tc.want)
			}
			rc, err := c.NetConn().SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var flags int
			var ferr error
			if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
				t.Fatal(err, ferr)
			}
			if got := flags&unix.O_NONBLOCK != 0; got != tc.nb {
				t.Errorf("O_NONBLOCK = %v, want %v", got, tc.nb)
			}
		})
	}
	if _, err := Dial(t.Context(), "127.0.0.1:1", Options{Blocking: true, BusyPoll: true}); err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial with Blocking and BusyPoll: %v, want an error naming both options", err)
	}
}

// TestBlockingSendRecv: blocking receivers get every message, framed, across reads
// that end mid-frame, and a clean close is io.EOF.
func TestBlockingSendRecv(t *testing.T) {
	for _, tc := range []struct {
		name        string
		count, size int
	}{{"small", 2000, 64}, {"larger than the read buffer", 6, readBufSize + 5000}} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := blockingPair(t)
			var wg sync.WaitGroup
			wg.Go(func() {
				got, err := recvAll(server, tc.count+1, func(int) int { return tc.size }, tc.size)
				if err != nil || got != tc.count {
					t.Errorf("received %d of %d messages then %v; want all, then a clean end", got, tc.count, err)
				}
			})
			defer wg.Wait()
			for i := range tc.count {
				if n, err := client.Send([][]byte{pattern(i, tc.size)}); n != 1 || err != nil {
					t.Fatalf("Send %d = %d, %v", i, n, err)
				}
			}
			client.Close()
		})
	}
}

// TestBlockingRoundTrips: n requests echoed by a blocking server come back as
// exactly n replies, in order.
func TestBlockingRoundTrips(t *testing.T) {
	client, server := blockingPair(t)
	const n = 500
	var wg sync.WaitGroup
	wg.Go(func() {
		bufs, sizes := [][]byte{make([]byte, 64)}, make([]int, 1)
		for i := range n {
			if _, err := server.Recv(bufs, sizes); err != nil {
				t.Errorf("server Recv %d: %v", i, err)
				return
			}
			if _, err := server.Send([][]byte{bufs[0][:sizes[0]]}); err != nil {
				t.Errorf("server Send %d: %v", i, err)
				return
			}
		}
	})
	defer wg.Wait()
	bufs, sizes := [][]byte{make([]byte, 64)}, make([]int, 1)
	for i := range n {
		if _, err := client.Send([][]byte{pattern(i, 64)}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if err := client.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
			t.Fatal(err)
		}
		if k, err := client.Recv(bufs, sizes); k != 1 || err != nil {
			t.Fatalf("Recv reply %d = %d, %v", i, k, err)
		}
		if err := checkPattern(bufs[0][:sizes[0]], i, 64); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
}

// TestBlockingDeadline: a deadline that passes mid-frame loses nothing; one moved
// into the past by another goroutine ends a Recv asleep in the kernel.
func TestBlockingDeadline(t *testing.T) {
	client, server := blockingPair(t)
	msg := pattern(7, 100)
	frame := append([]byte{0, 0, 0, 100}, msg...)
	if _, err := client.NetConn().Write(frame[:50]); err != nil { // half a frame
		t.Fatal(err)
	}
	bufs, sizes := [][]byte{make([]byte, 100)}, make([]int, 1)
	if err := server.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Recv(bufs, sizes); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv of half a frame past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if _, err := server.Recv(bufs, sizes); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Recv after the deadline: %v, want a net.Error with Timeout()", err)
	}
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.NetConn().Write(frame[50:]); err != nil {
		t.Fatal(err)
	}
	if n, err := server.Recv(bufs, sizes); n != 1 || err != nil {
		t.Fatalf("Recv of the rest = %d, %v", n, err)
	}
	if err := checkPattern(bufs[0][:sizes[0]], 7, 100); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := server.Recv(bufs, sizes)
		done <- err
	}()
	if err := waitfor.InSyscall("tcp.(*blockingReader).Read(", done, testTimeout); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked Recv after its deadline moved to the past: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("blocked Recv did not notice its deadline moved to the past")
	}
}

// TestBlockingClose: Close wakes a Recv asleep in the kernel with net.ErrClosed,
// and the peer sees the connection end.
func TestBlockingClose(t *testing.T) {
	client, server := blockingPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := client.Recv([][]byte{make([]byte, 10)}, make([]int, 1))
		done <- err
	}()
	if err := waitfor.InSyscall("tcp.(*blockingReader).Read(", done, testTimeout); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Recv after Close: %v, want an error wrapping net.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Recv still blocked after Close")
	}
	if err := server.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Recv([][]byte{make([]byte, 10)}, make([]int, 1)); err != io.EOF {
		t.Fatalf("peer's Recv after Close: %v, want io.EOF", err)
	}
}

// TestBlockingPeerReset: a reset seen by a blocking read keeps its errno.
func TestBlockingPeerReset(t *testing.T) {
	client, server := blockingPair(t)
	if err := client.NetConn().SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil { // linger 0: RST
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	_, err := server.Recv([][]byte{make([]byte, 10)}, make([]int, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Recv after the peer's reset: %v, want an error wrapping ECONNRESET", err)
	}
}

func TestBlockingAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("tcp: the race detector allocates")
	}
	o := Options{NoDelay: true, RecvBuffer: 1 << 20, SendBuffer: 1 << 20, Blocking: true}
	client, server := loopbackPairWith(t, o, o)
	if err := server.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	batch, bufs := make([][]byte, 16), make([][]byte, 16)
	for i := range batch {
		batch[i], bufs[i] = pattern(i, 64), make([]byte, 64)
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
		t.Errorf("a blocking batch of 16 64-byte messages allocated %v times, want 0", allocs)
	}
}

// TestFrameBlocking: Frame over a wrapper that offers its socket reads it blocking;
// a wrapper without a socket is refused the option.
func TestFrameBlocking(t *testing.T) {
	client, server := loopbackPair(t)
	fc, err := Frame(wrappedConn{server.NetConn()}, Options{Blocking: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := fc.RecvMode(); got != RecvBlocking {
		t.Fatalf("RecvMode of a framed wrapper = %q, want %q", got, RecvBlocking)
	}
	const count = 500
	var wg sync.WaitGroup
	wg.Go(func() {
		got, err := recvAll(fc, count+1, func(int) int { return 64 }, 64)
		if err != nil || got != count {
			t.Errorf("received %d of %d messages then %v; want all, then a clean end", got, count, err)
		}
	})
	for i := range count {
		if n, err := client.Send([][]byte{pattern(i, 64)}); n != 1 || err != nil {
			t.Fatalf("Send %d = %d, %v", i, n, err)
		}
	}
	client.Close()
	wg.Wait()
	a, _ := net.Pipe()
	defer a.Close()
	if _, err := Frame(a, Options{Blocking: true}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Frame with Blocking over a pipe: %v, want ErrUnsupported", err)
	}
}

// checkPattern says how got differs from pattern(seed, n).
func checkPattern(got []byte, seed, n int) error {
	if want := pattern(seed, n); string(got) != string(want) {
		return fmt.Errorf("got %x, want %x", got, want)
	}
	return nil
}
