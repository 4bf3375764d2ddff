package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestUnpacedReachesLink: an unpaced UDP sender's every datagram reaches the
// emulator (the line holds the sender back; nothing is dropped before the link), and
// the receiver gets exactly those the link passed, duplicated and reordered: a known
// answer with no pacing, with and without GSO on the sender and offloads on the link.
func TestUnpacedReachesLink(t *testing.T) {
	const (
		n    = 20000
		size = 1200
		flow = 3
	)
	for _, tc := range []struct {
		name string
		im   Impair
		gso  int  // datagrams per send (UDP_SEGMENT), 0: one per send
		off  bool // Config.NoOffload
	}{
		{"clean", Impair{}, 0, false},
		{"clean,gso", Impair{}, 50, false},
		{"loss=5%", Impair{Loss: 0.05}, 0, false},
		{"loss=5%,gso", Impair{Loss: 0.05}, 50, false},
		{"loss=5%,gso,no-offload", Impair{Loss: 0.05}, 50, true},
		{"all fates,gso", Impair{Loss: 0.02, Duplicate: 0.02, Corrupt: 0.02, Reorder: 0.02}, 50, false},
		{"all fates,delay,gso", Impair{Loss: 0.02, Duplicate: 0.02, Corrupt: 0.02, Reorder: 0.02, Delay: time.Millisecond}, 50, false},
		{"all fates", Impair{Loss: 0.02, Duplicate: 0.02, Corrupt: 0.02, Reorder: 0.02}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLab(t, Config{Up: tc.im, Seed: 7, Classify: classifyFake, NoOffload: tc.off, Line: testLine()})
			client, server := udpPair(t, l)
			per := 1
			if tc.gso > 0 {
				per = tc.gso
				setSegment(t, client, size)
			}
			// Room for every datagram at the receiver: its socket must not be what
			// loses them on a loaded machine.
			forceRcvbuf(t, server, 128<<20)

			got := make([]bool, n)
			type tally struct{ unique, dups, reordered, bad int }
			recvd := make(chan tally, 1)
			go func() {
				buf := make([]byte, 2048)
				var k tally
				highest := -1
				for {
					server.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					m, err := server.Read(buf)
					if err != nil {
						recvd <- k
						return
					}
					s := int(binary.BigEndian.Uint64(buf[5:]))
					switch {
					case m != size || buf[0] != fakeData || s >= n || binary.BigEndian.Uint32(buf[1:]) != flow:
						k.bad++
					case got[s]:
						k.dups++
					default:
						got[s] = true
						k.unique++
						if s < highest {
							k.reordered++ // RFC 4737: below the highest seen
						}
						highest = max(highest, s)
					}
				}
			}()
			msg := make([]byte, size*per)
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; i < n; i += per {
				for j := range per {
					d := msg[j*size:]
					d[0] = fakeData
					binary.BigEndian.PutUint32(d[1:], flow)
					binary.BigEndian.PutUint64(d[5:], uint64(i+j))
				}
				if _, err := client.Write(msg); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("sending %d datagrams took over 60s", n)
				}
			}
			tl := <-recvd
			k := tl.unique
			up, _ := settledCounts(t, l)
			devUp, _, err := l.DeviceDrops()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("received %d of %d; dropped before the link %d; up.Data %+v", k, n, devUp, up.Data)
			if devUp != 0 {
				t.Errorf("dropped before the link: %d, want 0", devUp)
			}
			if up.Data.Packets != n {
				t.Errorf("up.Data.Packets = %d, want %d (every datagram sent reaches the link)", up.Data.Packets, n)
			}
			d := up.Data
			if want := n - d.Dropped - d.Corrupted; uint64(k) != want {
				t.Errorf("received %d, want %d = %d sent - %d dropped - %d corrupted by the link", k, want, n, d.Dropped, d.Corrupted)
			}
			if uint64(tl.dups) != d.Duplicated || uint64(tl.reordered) != d.Reordered || tl.bad != 0 {
				t.Errorf("received %d duplicates, %d reordered, %d malformed; link duplicated %d, reordered %d; want equal, 0 malformed",
					tl.dups, tl.reordered, tl.bad, d.Duplicated, d.Reordered)
			}
			if loss := tc.im.Loss; loss > 0 {
				if frac := float64(d.Dropped) / n; frac < loss-0.005 || frac > loss+0.005 {
					t.Errorf("link loss %.4f, want %v +/- 0.005", frac, loss)
				}
			}
		})
	}
}

// testLine is the line for tests whose known answer needs every packet to reach
// the emulator: DefaultLine, except that a -race build charges each packet four
// times its cost (a quarter of the rate, four times the per-packet and least
// costs), as the race detector slows the emulator's work several times and
// DefaultLine is stated for an uninstrumented one.
func testLine() *Line {
	ln := DefaultLine
	if raceEnabled {
		ln.RateBps /= 4
		ln.PerPacket *= 4
		ln.MinCost *= 4
	}
	return &ln
}

// forceRcvbuf sets c's receive buffer past net.core.rmem_max (SO_RCVBUFFORCE: root).
func forceRcvbuf(tb testing.TB, c *net.UDPConn, bytes int) {
	tb.Helper()
	err := setsockopt(tb, c, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
		tb.Skipf("lab: SO_RCVBUFFORCE needs CAP_NET_ADMIN: %v", err)
	}
	if err != nil {
		tb.Fatal(os.NewSyscallError("setsockopt SO_RCVBUFFORCE", err))
	}
}

// setSegment turns UDP GSO on for c's sends: each write of several times size bytes
// leaves as datagrams of size bytes.
func setSegment(tb testing.TB, c *net.UDPConn, size int) {
	tb.Helper()
	if err := setsockopt(tb, c, unix.IPPROTO_UDP, unix.UDP_SEGMENT, size); err != nil {
		tb.Skipf("UDP_SEGMENT: %v", err)
	}
}

// setGRO has c's kernel hand it coalesced datagrams (UDP_GRO).
func setGRO(tb testing.TB, c *net.UDPConn) {
	tb.Helper()
	if err := setsockopt(tb, c, unix.IPPROTO_UDP, unix.UDP_GRO, 1); err != nil {
		tb.Skipf("UDP_GRO: %v", err)
	}
}

// setsockopt sets the integer option level/opt of c's socket to v and returns
// what the kernel said; the test fails when the socket cannot be reached.
func setsockopt(tb testing.TB, c *net.UDPConn, level, opt, v int) error {
	tb.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) }); err != nil {
		tb.Fatal(err)
	}
	return serr
}

// TestLine: each device sits behind a tbf qdisc at the line's rate; a zero Line
// leaves the devices without one; a negative rate is refused.
func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		line     *Line
		wantRate uint64 // bytes/s; 0: no tbf
	}{
		{"default", nil, uint64(DefaultLine.RateBps / 8)},
		{"100M", &Line{RateBps: 100e6, PerPacket: time.Microsecond}, 100e6 / 8},
		{"none", &Line{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLab(t, Config{Line: tc.line})
			for _, in := range []func(func() error) error{l.InClient, l.InServer} {
				if err := in(func() error {
					link, err := netlink.LinkByName(DeviceName)
					if err != nil {
						return err
					}
					qs, err := netlink.QdiscList(link)
					if err != nil {
						return err
					}
					var rate uint64
					for _, q := range qs {
						if tbf, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT {
							rate = tbf.Rate
						}
					}
					if rate != tc.wantRate {
						t.Errorf("root tbf rate %d bytes/s, want %d (qdiscs %v)", rate, tc.wantRate, qs)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	for _, ln := range []Line{
		{RateBps: -1},
		{RateBps: 1e9, MinCost: -time.Microsecond},
		{RateBps: 20e9, PerPacket: 27 * time.Microsecond}, // 67,500 bytes at the rate
		{RateBps: 100e9, MinCost: 6 * time.Microsecond},   // 75,000
	} {
		if _, err := New(context.Background(), Config{Line: &ln}); err == nil || !strings.Contains(err.Error(), "Line") {
			t.Errorf("New with line %+v: err %v, want one naming Line", ln, err)
		}
	}
}

// TestDefaultLine: without a Config.Line, an unimpaired direction's device gets
// DefaultLine, an impaired one's (any impairment) DefaultImpairedLine.
func TestDefaultLine(t *testing.T) {
	for _, tc := range []struct {
		im   Impair
		want Line
	}{
		{Impair{}, DefaultLine},
		{Impair{Loss: 0.05}, DefaultImpairedLine},
		{Impair{Delay: time.Millisecond}, DefaultImpairedLine},
		{Impair{RateBps: 50e6}, DefaultImpairedLine},
		{Impair{MTU: 1400}, DefaultImpairedLine},
	} {
		if got := defaultLine(tc.im); got != tc.want {
			t.Errorf("defaultLine(%v) = %+v, want %+v", tc.im, got, tc.want)
		}
	}
	if DefaultLine.check() != nil || DefaultImpairedLine.check() != nil {
		t.Errorf("a default line the kernel cannot set: %v, %v", DefaultLine.check(), DefaultImpairedLine.check())
	}
}

// TestLineBytes: a line's costs as the kernel counts them, bytes at its rate.
func TestLineBytes(t *testing.T) {
	for _, tc := range []struct {
		ln            Line
		overhead, mpu uint16
	}{
		{DefaultLine, 0, 60000},                                    // 24 us at 2.5 GB/s
		{DefaultImpairedLine, 60000, 0},                            // the same, on top of every packet's bytes
		{Line{RateBps: 100e6, PerPacket: time.Microsecond}, 13, 0}, // 12.5 bytes, rounded
		{Line{RateBps: 8e9, PerPacket: 2 * time.Microsecond, MinCost: 65535 * time.Nanosecond}, 2000, 65535},
	} {
		if err := tc.ln.check(); err != nil {
			t.Errorf("%+v: %v", tc.ln, err)
		}
		if o, m := tc.ln.bytes(); o != tc.overhead || m != tc.mpu {
			t.Errorf("%+v: overhead %d, mpu %d bytes; want %d, %d", tc.ln, o, m, tc.overhead, tc.mpu)
		}
	}
}

// BenchmarkLabUDPRatio measures one unpaced UDP flow with GSO (46 datagrams of 1400
// bytes per send, each data to the lab's classifier) into a receiver with GRO,
// across the lab's unimpaired link (its line: benchLine) and over
// loopback (the client namespace's lo, same process, same moment), in alternating
// rounds of 200 ms each, and reports the bytes received per second of each and
// their ratio: what the emulator costs a datagram flow against the host's own path.
func BenchmarkLabUDPRatio(b *testing.B) {
	const (
		size  = 1400
		segs  = 46
		round = 200 * time.Millisecond
	)
	l := newTestLab(b, Config{Line: benchLine(), Classify: classifyFake})
	labC, labS := udpPair(b, l)
	var loC, loS *net.UDPConn
	if err := l.InClient(func() (err error) {
		if loS, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			return err
		}
		loC, err = net.DialUDP("udp4", nil, loS.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { loC.Close(); loS.Close() })
	for _, c := range []*net.UDPConn{labC, loC} {
		setSegment(b, c, size)
	}
	for _, s := range []*net.UDPConn{labS, loS} {
		setGRO(b, s)
		forceRcvbuf(b, s, 4<<20)
	}
	ratioRounds(b,
		func() (int64, time.Duration) { return datagramsFor(b, labC, labS, size*segs, size, round) },
		func() (int64, time.Duration) { return datagramsFor(b, loC, loS, size*segs, size, round) })
}

// datagramsFor sends chunk-byte GSO writes of seg-byte datagrams, each marked as
// data for classifyFake, from c to s for d while s reads them,
// and returns the bytes s read from the first write until its reads go quiet (10 ms
// with nothing) after the last, and that time less the quiet.
func datagramsFor(tb testing.TB, c, s *net.UDPConn, chunk, seg int, d time.Duration) (int64, time.Duration) {
	tb.Helper()
	const quiet = 10 * time.Millisecond
	var sending atomic.Bool
	sending.Store(true)
	type end struct {
		got  int64
		last time.Time
	}
	done := make(chan end, 1)
	start := time.Now()
	go func() {
		rbuf := make([]byte, 64<<10)
		var e end
		for {
			s.SetReadDeadline(time.Now().Add(quiet))
			n, err := s.Read(rbuf)
			if err == nil {
				e.got += int64(n)
				e.last = time.Now()
				continue
			}
			if !sending.Load() {
				done <- e
				return
			}
		}
	}()
	buf := make([]byte, chunk)
	for off := 0; off < chunk; off += seg {
		buf[off] = fakeData // each datagram data of flow 1, for a classifying lab
		binary.BigEndian.PutUint32(buf[off+1:], 1)
	}
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil && !errors.Is(err, unix.ENOBUFS) {
			tb.Fatalf("write: %v", err)
		}
	}
	sending.Store(false)
	e := <-done
	if e.got == 0 {
		tb.Fatal("nothing received")
	}
	return e.got, e.last.Sub(start)
}

// benchLine is the lab benchmarks' line: DefaultLine, or with LAB_LINE=none no line
// at all (what the emulator alone carries, drops at the device and all), or with
// LAB_LINE=half DefaultLine at half its per-packet and least costs.
func benchLine() *Line {
	switch os.Getenv("LAB_LINE") {
	case "none":
		return &Line{}
	case "half":
		ln := DefaultLine
		ln.PerPacket /= 2
		ln.MinCost /= 2
		return &ln
	}
	return nil
}
