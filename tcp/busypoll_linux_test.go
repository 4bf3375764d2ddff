//go:build linux

package tcp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// busyPair is loopbackPair with busy polling on both ends.
func busyPair(t *testing.T) (client, server *Conn) {
	t.Helper()
	o := Options{NoDelay: true, BusyPoll: true}
	client, server = loopbackPairWith(t, o, o)
	for _, c := range []*Conn{client, server} {
		spin, us := c.BusyPoll()
		if !spin {
			t.Fatalf("BusyPoll() = %v, %d; want spinning", spin, us)
		}
		if os.Geteuid() == 0 && us != busyPollUs {
			t.Errorf("BusyPoll() as root: SO_BUSY_POLL %d µs, want %d", us, busyPollUs)
		}
	}
	return client, server
}

func TestBusyPollOff(t *testing.T) {
	client, _ := loopbackPair(t)
	if spin, us := client.BusyPoll(); spin || us != 0 {
		t.Fatalf("BusyPoll() without Options.BusyPoll = %v, %d; want false, 0", spin, us)
	}
}

// TestBusyPollSendRecv: spinning receivers get every message, framed, across reads
// that end mid-frame, and a clean close is io.EOF.
func TestBusyPollSendRecv(t *testing.T) {
	for _, tc := range []struct {
		name        string
		count, size int
	}{{"small", 2000, 64}, {"larger than the read buffer", 6, readBufSize + 5000}} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := busyPair(t)
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
			if err := client.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBusyPollDeadline: a spinning Recv with nothing to read returns at its read
// deadline with os.ErrDeadlineExceeded, never before, never hanging; a frame cut by
// the deadline is resumed by the next Recv.
func TestBusyPollDeadline(t *testing.T) {
	client, server := busyPair(t)
	bufs, sizes := [][]byte{make([]byte, 64)}, make([]int, 1)
	for _, in := range []time.Duration{-time.Second, 30 * time.Millisecond} {
		dl := time.Now().Add(in)
		if err := server.SetReadDeadline(dl); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			n, err := server.Recv(bufs, sizes)
			if n != 0 {
				err = errors.Join(err, fmt.Errorf("%d messages from nobody", n))
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Recv with a deadline %v away = %v, want %v", in, err, os.ErrDeadlineExceeded)
			}
			if now := time.Now(); now.Before(dl) {
				t.Fatalf("Recv returned %v before its deadline", dl.Sub(now))
			}
		case <-time.After(testTimeout):
			t.Fatalf("Recv still spinning %v after a deadline %v away", testTimeout, in)
		}
	}
	// Half a frame, a deadline, the rest: one whole message.
	frame := encode(pattern(7, 40))
	if _, err := client.NetConn().Write(frame[:10]); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := server.Recv(bufs, sizes); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv of half a frame = %d, %v; want 0, %v", n, err, os.ErrDeadlineExceeded)
	}
	if _, err := client.NetConn().Write(frame[10:]); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if n, err := server.Recv(bufs, sizes); n != 1 || err != nil || string(bufs[0][:sizes[0]]) != string(pattern(7, 40)) {
		t.Fatalf("Recv of the rest = %d, %v (%d bytes); want the whole message", n, err, sizes[0])
	}
}

// TestBusyPollClose: Close ends a spinning Recv with net.ErrClosed.
func TestBusyPollClose(t *testing.T) {
	client, _ := busyPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := client.Recv([][]byte{make([]byte, 10)}, make([]int, 1))
		done <- err
	}()
	if err := waitfor.InCall("tcp.(*spinReader).Read(", false, done, testTimeout); err != nil { // spinning, not about to
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
		t.Fatal("Recv still spinning after Close")
	}
}

// TestBusyPollPeerReset: a reset seen by a spinning read keeps its errno.
func TestBusyPollPeerReset(t *testing.T) {
	client, server := busyPair(t)
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

func TestBusyPollAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("tcp: the race detector allocates")
	}
	o := Options{NoDelay: true, RecvBuffer: 1 << 20, SendBuffer: 1 << 20, BusyPoll: true}
	client, server := loopbackPairWith(t, o, o)
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
		t.Errorf("a busy-polled batch of 16 64-byte messages allocated %v times, want 0", allocs)
	}
}

// wrappedConn hides a *net.TCPConn behind another type that still offers its socket,
// as remote mode's paced data connections do.
type wrappedConn struct{ *net.TCPConn }

func (w wrappedConn) SyscallConn() (syscall.RawConn, error) { return w.TCPConn.SyscallConn() }

// TestFrameBusyPoll: Frame over a wrapper that offers its socket spins on it, as Dial
// does on its own connection, and gets every message; a wrapper without a socket is
// refused the option.
func TestFrameBusyPoll(t *testing.T) {
	client, server := loopbackPair(t)
	fc, err := Frame(wrappedConn{server.NetConn()}, Options{BusyPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	if spin, us := fc.BusyPoll(); !spin || (os.Geteuid() == 0 && us != busyPollUs) {
		t.Fatalf("BusyPoll() of a framed wrapper = %v, %d µs; want spinning (%d µs as root)", spin, us, busyPollUs)
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
	if _, err := Frame(a, Options{BusyPoll: true}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Frame with BusyPoll over a pipe: %v, want ErrUnsupported", err)
	}
}
