//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// recvN reads exactly want datagrams from c, and for each the kernel stamp and the
// user-space time (Unix ns) at which the Recv that returned it came back.
func recvN(tb testing.TB, c *Conn, want int) (stamps, user []int64) {
	tb.Helper()
	bufs, sizes := makeBufs(64, 2048)
	st := make([]int64, 64)
	if err := c.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		tb.Fatal(err)
	}
	for len(stamps) < want {
		n, err := c.Recv(bufs, sizes)
		after := time.Now().UnixNano()
		if err != nil {
			tb.Fatalf("Recv after %d of %d datagrams: %v", len(stamps), want, err)
		}
		if k := c.RecvStamps(st); k != n {
			tb.Fatalf("RecvStamps after a Recv of %d = %d, want %d", n, k, n)
		}
		for i := range n {
			stamps = append(stamps, st[i])
			user = append(user, after)
		}
	}
	return stamps, user
}

// TestRecvStamps: every datagram carries a kernel receive time, in order within a
// batch, no earlier than just before it was sent and no later than when the Recv
// that returned it came back. In every offload mode: with GRO the datagrams of one
// super-packet share its stamp.
func TestRecvStamps(t *testing.T) {
	const count = 40
	for _, mode := range offloadModes {
		t.Run(mode.name, func(t *testing.T) {
			srv, cli := loopbackPair(t, mode.o, mode.o)
			if !srv.Timestamps() || !cli.Timestamps() {
				t.Fatalf("Timestamps() = %v (server), %v (client); want true: SO_TIMESTAMPNS is in every Linux since 2.6.22", srv.Timestamps(), cli.Timestamps())
			}
			before := time.Now().UnixNano()
			if n, err := cli.Send(messages(0, repeat(count, 200)...)); n != count || err != nil {
				t.Fatalf("Send(%d) = %d, %v", count, n, err)
			}
			stamps, user := recvN(t, srv, count)
			for i, s := range stamps {
				switch {
				case s == 0:
					t.Fatalf("datagram %d: no kernel stamp", i)
				case s < before:
					t.Errorf("datagram %d: stamped %v before the Send began", i, time.Duration(before-s))
				case s > user[i]:
					t.Errorf("datagram %d: stamped %v after its Recv returned", i, time.Duration(s-user[i]))
				case i > 0 && s < stamps[i-1]:
					t.Errorf("datagram %d: stamped %v before datagram %d", i, time.Duration(stamps[i-1]-s), i-1)
				}
			}
		})
	}
}

// TestRecvStampsSpacing sends datagrams spaced by sleeps and reads them only after
// the last was sent: the user-space read times are bunched together, but each kernel
// stamp falls between the start of its own send and the start of the next, so the
// stamps keep the spacing of the sends. The bounds are the test's own clock readings
// around the sleeps, not a slack: however late a loaded machine runs a send, its
// datagram is stamped inside them (on loopback, before the send returns).
func TestRecvStampsSpacing(t *testing.T) {
	const count, gap = 6, 20 * time.Millisecond
	srv, cli := loopbackPair(t, Options{}, Options{})
	waitStampsOnArrival(t, srv, cli)
	// began[i]: just before send i; began[count]: just before the reads.
	began := make([]int64, count+1)
	for i := range count {
		began[i] = time.Now().UnixNano()
		if n, err := cli.Send(messages(i, 64)); n != 1 || err != nil {
			t.Fatalf("Send %d = %d, %v", i, n, err)
		}
		time.Sleep(gap) // the experiment: sends (and the reads after the last) at least gap apart
	}
	began[count] = time.Now().UnixNano()
	stamps, user := recvN(t, srv, count)
	for i := range count {
		if i > 0 {
			dSent, dStamp, dUser := time.Duration(began[i]-began[i-1]), time.Duration(stamps[i]-stamps[i-1]), time.Duration(user[i]-user[i-1])
			t.Logf("datagram %d: sends %v apart, stamps %v apart, reads %v apart", i, dSent, dStamp, dUser)
		}
		if stamps[i] < began[i] || stamps[i] >= began[i+1] {
			t.Errorf("datagram %d: stamped %v after its send began; want from 0 to %v, before the next send (or the reads) began",
				i, time.Duration(stamps[i]-began[i]), time.Duration(began[i+1]-began[i]))
		}
	}
}

// waitStampsOnArrival waits until the kernel stamps datagrams as they arrive. The
// first socket to ask for timestamps turns stamping on host-wide from a kernel work
// item; until that has run, a datagram is stamped when it is read. It sends probes
// from cli to srv, one at a time, until one carries a stamp earlier than the start
// of the Recv that read it, every millisecond for up to recvTimeout.
func waitStampsOnArrival(tb testing.TB, srv, cli *Conn) {
	tb.Helper()
	bufs, sizes := makeBufs(1, 64)
	st := make([]int64, 1)
	probes := 0
	onArrival := waitfor.Cond(recvTimeout, func() bool {
		probes++
		if n, err := cli.Send(messages(0, 8)); n != 1 || err != nil {
			tb.Fatalf("probe Send = %d, %v", n, err)
		}
		if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
			tb.Fatal(err)
		}
		reading := time.Now().UnixNano()
		if n, err := srv.Recv(bufs, sizes); n != 1 || err != nil {
			tb.Fatalf("probe Recv = %d, %v", n, err)
		}
		return srv.RecvStamps(st) == 1 && st[0] != 0 && st[0] < reading
	})
	if !onArrival {
		tb.Fatalf("after %d probes over %v the kernel still stamps datagrams when they are read", probes, recvTimeout)
	}
	tb.Logf("stamping on arrival after %d probe(s)", probes)
}

// TestRecvStampsOff: with NoTimestamps, RecvStamps says there are none, and Recv
// still works.
func TestRecvStampsOff(t *testing.T) {
	o := Options{NoTimestamps: true}
	srv, cli := loopbackPair(t, o, o)
	if srv.Timestamps() {
		t.Fatal("Timestamps() = true with Options.NoTimestamps")
	}
	if n, err := cli.Send(messages(0, 100, 100)); n != 2 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	bufs, sizes := makeBufs(4, 200)
	if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Recv(bufs, sizes); n < 1 || err != nil {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	st := []int64{-1, -1}
	if k := srv.RecvStamps(st); k != 0 || st[0] != -1 {
		t.Fatalf("RecvStamps without timestamps = %d (dst %v), want 0 and dst untouched", k, st)
	}
}

// TestRecvStampsAfterError: a Recv that returns nothing leaves no stale stamps.
func TestRecvStampsAfterError(t *testing.T) {
	srv, cli := loopbackPair(t, Options{}, Options{})
	if n, err := cli.Send(messages(0, 100)); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	recvN(t, srv, 1)
	if err := srv.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(4, 200)
	if n, err := srv.Recv(bufs, sizes); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv past the deadline = %d, %v", n, err)
	}
	if k := srv.RecvStamps(make([]int64, 4)); k != 0 {
		t.Fatalf("RecvStamps after a Recv that failed = %d, want 0", k)
	}
}

func timespec(sec, nsec int64) []byte {
	b := binary.NativeEndian.AppendUint64(nil, uint64(sec))
	return binary.NativeEndian.AppendUint64(b, uint64(nsec))
}

func TestParseRecvStamp(t *testing.T) {
	ovfl := cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(3))
	for _, tc := range []struct {
		name    string
		in      []byte
		want    int64
		ok, err bool
	}{
		{"empty", nil, 0, false, false},
		{"new", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, timespec(1_700_000_000, 123)), 1_700_000_000_000_000_123, true, false},
		{"old", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_OLD, timespec(2, 999_999_999)), 2_999_999_999, true, false},
		{"after rxq_ovfl", append(ovfl, cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, timespec(5, 0))...), 5e9, true, false},
		{"before rxq_ovfl", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, timespec(5, 0)), ovfl...), 5e9, true, false},
		{"zero time", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, timespec(0, 0)), 0, false, false},
		{"nsec out of range", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, timespec(5, 1e9)), 0, false, false},
		{"other level", cmsg(unix.SOL_IP, unix.SO_TIMESTAMPNS_NEW, timespec(5, 0)), 0, false, false},
		{"short", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, []byte{1, 2, 3}), 0, false, true},
		{"truncated record", ovfl[:10], 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseRecvStamp(tc.in)
			if got != tc.want || ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("parseRecvStamp(% x) = %d, %v, %v; want %d, %v, error %v", tc.in, got, ok, err, tc.want, tc.ok, tc.err)
			}
		})
	}
}

func FuzzParseRecvStamp(f *testing.F) {
	f.Add([]byte{})
	f.Add(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, timespec(1_700_000_000, 5)))
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(1)), cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_OLD, timespec(1, 1))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, ok, _ := parseRecvStamp(b)
		if !ok && ns != 0 {
			t.Fatalf("parseRecvStamp(% x) = %d without a valid stamp", b, ns)
		}
		if ok && ns <= 0 {
			t.Fatalf("parseRecvStamp(% x) = %d, ok", b, ns)
		}
	})
}

// busyPair is loopbackPair with busy polling on both ends.
func busyPair(t *testing.T, o Options) (srv, cli *Conn) {
	t.Helper()
	o.BusyPoll = true
	srv, cli = loopbackPair(t, o, o)
	for _, c := range []*Conn{srv, cli} {
		spin, us := c.BusyPoll()
		if !spin {
			t.Fatalf("BusyPoll() = %v, %d; want spinning", spin, us)
		}
		if os.Geteuid() == 0 && us != busyPollUs {
			t.Errorf("BusyPoll() as root: SO_BUSY_POLL %d µs, want %d", us, busyPollUs)
		}
	}
	return srv, cli
}

// TestBusyPollRecv: a spinning Recv returns what was sent, in every offload mode,
// and answers through a spinning server.
func TestBusyPollRecv(t *testing.T) {
	for _, mode := range offloadModes {
		t.Run(mode.name, func(t *testing.T) {
			srv, cli := busyPair(t, mode.o)
			msgs := messages(0, repeat(10, 300)...)
			if n, err := cli.Send(msgs); n != 10 || err != nil {
				t.Fatalf("Send = %d, %v", n, err)
			}
			stamps, _ := recvN(t, srv, 10)
			if stamps[0] == 0 {
				t.Error("no kernel stamp with busy polling")
			}
			if n, err := srv.Send(msgs[:1]); n != 1 || err != nil { // answers the last Recv's first source
				t.Fatalf("server Send = %d, %v", n, err)
			}
			got := drain(t, cli, 1, 2048)
			if len(got) != 1 || string(got[0]) != string(msgs[0]) {
				t.Fatalf("client got %d datagrams, want the 1 echoed", len(got))
			}
		})
	}
}

// TestBusyPollDeadline: a spinning Recv with nothing to read returns at its read
// deadline with os.ErrDeadlineExceeded; never before it, and never hangs.
func TestBusyPollDeadline(t *testing.T) {
	srv, _ := busyPair(t, Options{})
	bufs, sizes := makeBufs(4, 64)
	for _, tc := range []struct {
		name string
		in   time.Duration
	}{{"past", -time.Second}, {"future", 30 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			dl := time.Now().Add(tc.in)
			if err := srv.SetReadDeadline(dl); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				n, err := srv.Recv(bufs, sizes)
				if n != 0 {
					err = errors.Join(err, fmt.Errorf("%d datagrams from nobody", n))
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("Recv = %v, want %v", err, os.ErrDeadlineExceeded)
				}
				if now := time.Now(); now.Before(dl) {
					t.Fatalf("Recv returned %v before its deadline", dl.Sub(now))
				}
			case <-time.After(recvTimeout):
				t.Fatalf("Recv still spinning %v after a deadline %v away", recvTimeout, tc.in)
			}
		})
	}
}

// TestBusyPollClose: Close ends a spinning Recv with net.ErrClosed.
func TestBusyPollClose(t *testing.T) {
	srv, _ := busyPair(t, Options{})
	done := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(4, 64)
		_, err := srv.Recv(bufs, sizes)
		done <- err
	}()
	if err := waitfor.InCall("udp.(*Conn).readRx(", false, done, recvTimeout); err != nil { // spinning (a busy-polling Recv never parks), not about to
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Recv after Close: %v, want %v", err, net.ErrClosed)
		}
	case <-time.After(recvTimeout):
		t.Fatal("Recv still spinning after Close")
	}
}

// TestBusyPollZeroAllocs pins the spinning receive path, and RecvStamps, at 0
// allocations per round trip.
func TestBusyPollZeroAllocs(t *testing.T) {
	for _, mode := range offloadModes {
		t.Run(mode.name, func(t *testing.T) {
			o := mode.o
			o.BusyPoll = true
			testZeroAllocs(t, o, 16, 64)
		})
	}
}

func TestRecvStampsZeroAllocs(t *testing.T) {
	srv, cli := loopbackPair(t, Options{Batch: 8}, Options{Batch: 8})
	msgs := messages(0, repeat(8, 64)...)
	bufs, sizes := makeBufs(8, 128)
	st := make([]int64, 8)
	if err := srv.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := cli.Send(msgs); err != nil {
			failed = errors.Join(failed, err)
			return
		}
		for got := 0; got < len(msgs); {
			n, err := srv.Recv(bufs, sizes)
			if err != nil {
				failed = errors.Join(failed, err)
				return
			}
			if srv.RecvStamps(st) != n || st[0] == 0 {
				failed = errors.Join(failed, errors.New("no stamps"))
				return
			}
			got += n
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("Send, Recv and RecvStamps of 8 datagrams: %v allocs, want 0", allocs)
	}
}
