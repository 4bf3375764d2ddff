//go:build linux

package udp

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelAtLeast reports whether the running kernel's release is at least
// major.minor.
func kernelAtLeast(tb testing.TB, major, minor int) bool {
	tb.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		tb.Fatalf("uname: %v", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		tb.Fatalf("kernel release %q", rel)
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		tb.Fatalf("kernel release %q", rel)
	}
	return ma > major || ma == major && mi >= minor
}

// slab returns n messages of size bytes cut from one buffer, adjacent in memory,
// message i carrying payload(i, size); a last message of lastSize bytes follows
// when lastSize > 0.
func slab(n, size, lastSize int) [][]byte {
	buf := make([]byte, n*size+lastSize)
	msgs := make([][]byte, 0, n+1)
	for i := range n {
		m := buf[i*size : (i+1)*size : (i+1)*size]
		copy(m, payload(i, size))
		msgs = append(msgs, m)
	}
	if lastSize > 0 {
		m := buf[n*size:]
		copy(m, payload(n, lastSize))
		msgs = append(msgs, m)
	}
	return msgs
}

// TestSendSegmentsPerCall: with GSO, Options.Batch counts sendmmsg entries, each a
// super-datagram of up to 128 messages (UDP_MAX_SEGMENTS since Linux 6.9), so one
// Send of many small messages is one system call; without GSO it counts datagrams,
// as before. Every message arrives once, in order, intact.
func TestSendSegmentsPerCall(t *testing.T) {
	if !kernelAtLeast(t, 6, 9) {
		t.Skip("kernel before 6.9: 64 segments per super-datagram")
	}
	for _, tc := range []struct {
		name      string
		o         Options
		n, size   int
		wantCalls uint64
	}{
		{"default batch, 128 x 64 B", Options{}, 128, 64, 1},
		{"default batch, 1000 x 64 B", Options{}, 1000, 64, 1},
		{"batch 2, 200 x 64 B", Options{Batch: 2}, 200, 64, 1},
		{"batch 1 with gso, 300 x 64 B", Options{Batch: 1}, 300, 64, 3},
		{"default batch, 200 x 1400 B", Options{}, 200, 1400, 1},
		{"batch 1 without gso", Options{Batch: 1, NoGSO: true}, 10, 64, 10},
		{"batch 64 without gso", Options{NoGSO: true}, 200, 64, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := loopbackPair(t, Options{GRO: true, RecvBuffer: 4 << 20}, tc.o)
			msgs := slab(tc.n, tc.size, 0)
			if n, err := cli.Send(msgs); n != tc.n || err != nil {
				t.Fatalf("Send(%d) = %d, %v", tc.n, n, err)
			}
			calls, dgrams := cli.SendCalls()
			if calls != tc.wantCalls || dgrams != uint64(tc.n) {
				t.Errorf("SendCalls = %d calls, %d datagrams; want %d, %d", calls, dgrams, tc.wantCalls, tc.n)
			}
			got := drain(t, srv, tc.n, tc.size)
			if len(got) != tc.n {
				t.Fatalf("received %d datagrams, want %d", len(got), tc.n)
			}
			for i, g := range got {
				if !bytes.Equal(g, msgs[i]) {
					t.Fatalf("datagram %d differs from message %d", i, i)
				}
			}
		})
	}
}

// TestGSOSegmentFallback: a kernel that refuses a super-datagram of more segments
// than it allows (EINVAL) makes the Conn, and Conns opened after it, fall back to
// 64 segments and retry; nothing is lost or counted refused, and GSO stays on. The
// Conn is made to ask for 256, which no kernel allows.
func TestGSOSegmentFallback(t *testing.T) {
	defer gsoSegLimit.Store(gsoSegLimit.Load())
	srv, cli := loopbackPair(t, Options{GRO: true, RecvBuffer: 4 << 20}, Options{})
	cli.sys.gsoSegs = 256
	const n = 256
	msgs := slab(n, 64, 0)
	if got, err := cli.Send(msgs); got != n || err != nil {
		t.Fatalf("Send(%d) = %d, %v", n, got, err)
	}
	if gso, _ := cli.Offload(); !gso {
		t.Error("GSO turned off; want it on, with 64 segments")
	}
	if cli.sys.gsoSegs != gsoOldSegments || gsoSegLimit.Load() != gsoOldSegments {
		t.Errorf("segment limits = %d (Conn), %d (process); want %d", cli.sys.gsoSegs, gsoSegLimit.Load(), gsoOldSegments)
	}
	if calls, dgrams := cli.SendCalls(); calls != 1 || dgrams != n {
		t.Errorf("SendCalls = %d, %d; want 1 call (4 entries of 64), %d datagrams", calls, dgrams, n)
	}
	if e := cli.SendErrors(); e != 0 {
		t.Errorf("SendErrors = %d, want 0", e)
	}
	got := drain(t, srv, n, 64)
	if len(got) != n {
		t.Fatalf("received %d datagrams, want %d", len(got), n)
	}
	for i, g := range got {
		if !bytes.Equal(g, msgs[i]) {
			t.Fatalf("datagram %d differs from message %d", i, i)
		}
	}
}

// TestGSOEntriesIovecs: a run of messages adjacent in memory goes to the kernel as
// one iovec; messages apart, or adjacent in the wrong order, one iovec each.
func TestGSOEntriesIovecs(t *testing.T) {
	_, cli := loopbackPair(t, Options{}, Options{})
	if gso, _ := cli.Offload(); !gso {
		t.Skip("no UDP GSO")
	}
	rev := slab(10, 100, 0)
	slices.Reverse(rev)
	for _, tc := range []struct {
		name                 string
		msgs                 [][]byte
		entries, taken, iovs int
	}{
		{"adjacent", slab(10, 100, 0), 1, 10, 1},
		{"adjacent, short last", slab(10, 100, 40), 1, 11, 1},
		{"adjacent, two entries", slab(200, 64, 0), 2, 200, 2},
		{"adjacent, total cap", slab(60, 1400, 0), 2, 60, 2},
		{"apart", messages(0, repeat(10, 100)...), 1, 10, 10},
		{"reversed", rev, 1, 10, 10},
		{"empty alone", messages(0, 0, 0), 2, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, k, iv := cli.gsoEntries(tc.msgs)
			if e != tc.entries || k != tc.taken || iv != tc.iovs {
				t.Errorf("gsoEntries = %d entries, %d messages, %d iovecs; want %d, %d, %d", e, k, iv, tc.entries, tc.taken, tc.iovs)
			}
			var total uint64
			for i := range e {
				h := &cli.sys.tx.hdrs[i].Hdr
				iovs := unsafeIovecs(h)
				for _, v := range iovs {
					total += uint64(v.Len)
				}
			}
			var want uint64
			for _, m := range tc.msgs[:k] {
				want += uint64(len(m))
			}
			if total != want {
				t.Errorf("iovecs cover %d bytes, messages %d", total, want)
			}
			clearIovs(cli.sys.tx.iovs)
		})
	}
}

// unsafeIovecs returns the iovecs h points at.
func unsafeIovecs(h *unix.Msghdr) []unix.Iovec {
	return unsafe.Slice(h.Iov, int(h.Iovlen))
}
