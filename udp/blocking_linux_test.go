//go:build linux

package udp

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// blockingPair is loopbackPair with both ends in blocking mode.
func blockingPair(t *testing.T) (srv, cli *Conn) {
	t.Helper()
	srv, cli = loopbackPair(t, Options{Blocking: true}, Options{Blocking: true})
	for _, c := range []*Conn{srv, cli} {
		if got := c.RecvMode(); got != RecvBlocking {
			t.Fatalf("RecvMode = %q, want %q", got, RecvBlocking)
		}
	}
	return srv, cli
}

// nonblocking reports whether fd's open file description has O_NONBLOCK.
func nonblocking(t *testing.T, c *Conn) bool {
	t.Helper()
	var flags int
	var ferr error
	if err := c.raw.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatalf("F_GETFL: %v %v", err, ferr)
	}
	return flags&unix.O_NONBLOCK != 0
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
			c := listen(t, tc.o)
			if got := c.RecvMode(); got != tc.want {
				t.Errorf("RecvMode = %q, want %q", got, tc.want)
			}
			if got := nonblocking(t, c); got != tc.nb {
				t.Errorf("O_NONBLOCK = %v, want %v", got, tc.nb)
			}
		})
	}
	if _, err := Listen(t.Context(), "127.0.0.1:0", Options{Blocking: true, BusyPoll: true}); err == nil {
		t.Error("Listen with Blocking and BusyPoll: no error, want one naming both")
	}
}

// TestBlockingRoundTrips: n requests, each echoed by a blocking server, come back
// as exactly n replies, in order, whole.
func TestBlockingRoundTrips(t *testing.T) {
	srv, cli := blockingPair(t)
	const n = 500
	done := make(chan error, 1)
	go func() { done <- echoN(srv, n) }()
	bufs, sizes := makeBufs(4, 256)
	for i := range n {
		want := payload(i, 64)
		if _, err := cli.Send([][]byte{want}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if err := cli.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
			t.Fatal(err)
		}
		k, err := cli.Recv(bufs, sizes)
		if err != nil || k != 1 {
			t.Fatalf("Recv reply %d: %d messages, %v; want 1, nil", i, k, err)
		}
		if got := bufs[0][:sizes[0]]; !bytes.Equal(got, want) {
			t.Fatalf("reply %d: got %x, want %x", i, got, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// echoN answers n datagrams on a server socket, with deadlines.
func echoN(srv *Conn, n int) error {
	bufs, sizes := makeBufs(8, 256)
	out := make([][]byte, 8)
	for got := 0; got < n; {
		if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
			return err
		}
		k, err := srv.Recv(bufs, sizes)
		for i := range k {
			out[i] = bufs[i][:sizes[i]]
		}
		if _, serr := srv.Send(out[:k]); serr != nil {
			return serr
		}
		got += k
		if err != nil {
			return err
		}
	}
	return nil
}

// TestBlockingBatch: datagrams already queued all come back from one Recv, as from
// the poller's path (recvmmsg waits for the first only), with their kernel stamps.
func TestBlockingBatch(t *testing.T) {
	// Without GSO on the sender every datagram takes the same queue memory.
	srv, cli := loopbackPair(t, Options{Blocking: true}, Options{NoGSO: true})
	bufs, sizes := makeBufs(64, 256)
	if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	// One datagram first: the queue's memory for it is what each of the batch takes.
	if _, err := cli.Send([][]byte{payload(0, 100)}); err != nil {
		t.Fatal(err)
	}
	var each int
	waitfor.True(t, recvTimeout, "the first datagram queued", func() bool {
		each, _ = srv.RecvQueued()
		return each > 0
	})
	if k, err := srv.Recv(bufs, sizes); k != 1 || err != nil {
		t.Fatalf("Recv of the first datagram: %d, %v", k, err)
	}
	const n = 10
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = payload(i+1, 100)
	}
	if _, err := cli.Send(msgs); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, recvTimeout, "10 datagrams queued", func() bool {
		q, err := srv.RecvQueued()
		return err == nil && q == n*each
	})
	k, err := srv.Recv(bufs, sizes)
	if err != nil || k != n {
		t.Fatalf("Recv: %d datagrams, %v; want %d, nil", k, err, n)
	}
	for i := range k {
		if !bytes.Equal(bufs[i][:sizes[i]], msgs[i]) {
			t.Errorf("datagram %d differs", i)
		}
	}
	if !srv.Timestamps() {
		t.Skip("no kernel timestamps here")
	}
	stamps := make([]int64, 64)
	if got := srv.RecvStamps(stamps); got != n {
		t.Fatalf("RecvStamps = %d, want %d", got, n)
	}
	for i, s := range stamps[:n] {
		if s == 0 {
			t.Errorf("datagram %d has no kernel receive stamp", i)
		}
	}
}

// TestBlockingDeadline: a deadline passes with nothing to read; one moved into the
// past by another goroutine ends a blocked Recv; the zero time clears it.
func TestBlockingDeadline(t *testing.T) {
	_, cli := blockingPair(t)
	bufs, sizes := makeBufs(1, 64)
	if err := cli.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Recv(bufs, sizes); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if _, err := cli.Recv(bufs, sizes); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Recv after the deadline: %v, want a net.Error with Timeout()", err)
	}
	if err := cli.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := cli.Recv(bufs, sizes)
		done <- err
	}()
	if err := waitfor.InSyscall("udp.(*Conn).Recv(", done, recvTimeout); err != nil {
		t.Fatal(err)
	}
	if err := cli.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked Recv after its deadline moved to the past: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(recvTimeout):
		t.Fatal("blocked Recv did not notice its deadline moved to the past")
	}
}

// TestBlockingClose: Close wakes a Recv asleep in the kernel, on a connected and on
// a server socket, and the Recv says net.ErrClosed.
func TestBlockingClose(t *testing.T) {
	for _, server := range []bool{false, true} {
		name := map[bool]string{false: "connected", true: "server"}[server]
		t.Run(name, func(t *testing.T) {
			srv, cli := blockingPair(t)
			c := cli
			if server {
				c = srv
			}
			done := make(chan error, 1)
			go func() {
				bufs, sizes := makeBufs(4, 64)
				_, err := c.Recv(bufs, sizes)
				done <- err
			}()
			if err := waitfor.InSyscall("udp.(*Conn).Recv(", done, recvTimeout); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Recv after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(recvTimeout):
				t.Fatal("Close did not wake the blocked Recv")
			}
			bufs, sizes := makeBufs(1, 64)
			if _, err := c.Recv(bufs, sizes); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Recv on a closed Conn: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestBlockingAllocs: a round trip through blocking sockets allocates nothing.
func TestBlockingAllocs(t *testing.T) {
	srv, cli := blockingPair(t)
	req := [][]byte{payload(1, 64)}
	bufs, sizes := makeBufs(1, 64)
	sbufs, ssizes := makeBufs(1, 64)
	out := make([][]byte, 1)
	dl := time.Now().Add(time.Minute)
	if err := cli.SetReadDeadline(dl); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetReadDeadline(dl); err != nil {
		t.Fatal(err)
	}
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := cli.Send(req); err != nil {
			failed = err
			return
		}
		if _, err := srv.Recv(sbufs, ssizes); err != nil {
			failed = err
			return
		}
		out[0] = sbufs[0][:ssizes[0]]
		if _, err := srv.Send(out); err != nil {
			failed = err
			return
		}
		if _, err := cli.Recv(bufs, sizes); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("blocking round trip: %v allocations, want 0", allocs)
	}
}
