package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestUnpacedReachesLink: an unpaced UDP sender's every datagram reaches the
// emulator (the line holds the sender back; nothing is dropped before the link), and
// the receiver gets exactly those the link passed: a known answer with no pacing.
func TestUnpacedReachesLink(t *testing.T) {
	const (
		n    = 20000
		size = 1200
		flow = 3
	)
	for _, tc := range []struct {
		name string
		loss float64
		gso  int // datagrams per send (UDP_SEGMENT), 0: one per send
	}{{"clean", 0, 0}, {"loss=5%", 0.05, 0}, {"loss=5%,gso", 0.05, 50}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLab(t, Config{Up: Impair{Loss: tc.loss}, Seed: 7, Classify: classifyFake})
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
			recvd := make(chan int, 1)
			go func() {
				buf := make([]byte, 2048)
				k := 0
				for {
					server.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					m, err := server.Read(buf)
					if err != nil {
						recvd <- k
						return
					}
					if m == size && buf[0] == fakeData {
						if s := binary.BigEndian.Uint64(buf[5:]); s < n && !got[s] {
							got[s] = true
							k++
						}
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
			k := <-recvd
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
			if want := n - up.Data.Dropped; uint64(k) != want || up.Data.Passed != want {
				t.Errorf("received %d, up.Data.Passed %d, want both %d = %d sent - %d dropped by the link", k, up.Data.Passed, want, n, up.Data.Dropped)
			}
			if tc.loss > 0 {
				if frac := float64(up.Data.Dropped) / n; frac < tc.loss-0.005 || frac > tc.loss+0.005 {
					t.Errorf("link loss %.4f, want %v +/- 0.005", frac, tc.loss)
				}
			}
		})
	}
}

// forceRcvbuf sets c's receive buffer past net.core.rmem_max (SO_RCVBUFFORCE: root).
func forceRcvbuf(tb testing.TB, c *net.UDPConn, bytes int) {
	tb.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
	}); err != nil {
		tb.Fatal(err)
	}
	if errors.Is(serr, os.ErrPermission) || errors.Is(serr, unix.EPERM) {
		tb.Skipf("lab: SO_RCVBUFFORCE needs CAP_NET_ADMIN: %v", serr)
	}
	if serr != nil {
		tb.Fatal(os.NewSyscallError("setsockopt SO_RCVBUFFORCE", serr))
	}
}

// setSegment turns UDP GSO on for c's sends: each write of several times size bytes
// leaves as datagrams of size bytes.
func setSegment(tb testing.TB, c *net.UDPConn, size int) {
	tb.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size)
	}); err != nil {
		tb.Fatal(err)
	}
	if serr != nil {
		tb.Skipf("UDP_SEGMENT: %v", serr)
	}
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
	if _, err := New(context.Background(), Config{Line: &Line{RateBps: -1}}); err == nil || !strings.Contains(err.Error(), "Line") {
		t.Errorf("New with a negative line rate: err %v, want one naming Line", err)
	}
}
