//go:build linux

package udp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// offloadModes are the ways a pair of sockets can move datagrams on Linux: the
// default (GSO on Send), GSO and GRO, and neither.
var offloadModes = []struct {
	name string
	o    Options
}{
	{"gso=on", Options{}},
	{"gso=on,gro=on", Options{GRO: true}},
	{"gso=off", Options{NoGSO: true, GRO: true}}, // NoGSO wins over GRO
}

func TestOffload(t *testing.T) {
	for _, tc := range []struct {
		name             string
		o                Options
		server           bool
		wantGSO, wantGRO bool
	}{
		{"client default", Options{}, false, true, false},
		{"client gro", Options{GRO: true}, false, true, true},
		{"server gro", Options{GRO: true}, true, false, true},
		{"client nogso", Options{NoGSO: true, GRO: true}, false, false, false},
		{"server nogso", Options{NoGSO: true}, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := listen(t, tc.o)
			c := srv
			if !tc.server {
				c = dial(t, srv.LocalAddr().String(), tc.o)
			}
			gso, gro := c.Offload()
			if gso != tc.wantGSO || gro != tc.wantGRO {
				t.Errorf("Offload() with %+v = %v, %v; want %v, %v", tc.o, gso, gro, tc.wantGSO, tc.wantGRO)
			}
		})
	}
}

// messages returns one test message per size, numbered from first.
func messages(first int, sizes ...int) [][]byte {
	msgs := make([][]byte, len(sizes))
	for i, s := range sizes {
		msgs[i] = payload(first+i, s)
	}
	return msgs
}

func repeat(n, size int) []int { return slices.Repeat([]int{size}, n) }

// TestOffloadKnownAnswers sends known messages from a client to a server in every
// offload mode and checks that each arrives once, whole, in order and intact, also
// when Recv gets fewer buffers than a super-packet holds.
func TestOffloadKnownAnswers(t *testing.T) {
	mixed := []int{64, 64, 64, 100, 100, 1400, 1400, 1400, 7, 1, 1, 0, 0, 1472, 1473, 3000, 64, 64}
	for _, mode := range offloadModes {
		for _, tc := range []struct {
			name  string
			sizes []int
			bufs  int // buffers per Recv
		}{
			{"64x64", repeat(64, 64), 64},
			{"64x1400", repeat(64, 1400), 64},
			{"mixed", mixed, 64},
			{"short last", append(repeat(10, 1000), 999, 1000), 64},
			{"1000x100 7 bufs", repeat(1000, 100), 7},
			{"1000x1400 7 bufs", repeat(1000, 1400), 7},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				srvOpts := mode.o
				srvOpts.RecvBuffer = 4 << 20
				srv, cli := loopbackPair(t, srvOpts, mode.o)
				want := messages(0, tc.sizes...)
				bufs, sizes := makeBufs(tc.bufs, 4096)
				var got [][]byte
				super := false
				// Send one batch at a time and read it all, so the receive buffer
				// never overflows.
				for start := 0; start < len(want); start += defaultBatch {
					batch := want[start:min(len(want), start+defaultBatch)]
					if n, err := cli.Send(batch); n != len(batch) || err != nil {
						t.Fatalf("Send(%d messages from %d) = %d, %v", len(batch), start, n, err)
					}
					if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
						t.Fatal(err)
					}
					for len(got) < start+len(batch) {
						n, err := srv.Recv(bufs, sizes)
						if err != nil {
							t.Fatalf("Recv after %d messages: %v", len(got), err)
						}
						for i := range n {
							got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
						}
						super = super || slices.ContainsFunc(srv.sys.gro.segs[:srv.sys.gro.n], func(s int) bool { return s > 0 })
					}
				}
				if len(got) != len(want) {
					t.Fatalf("received %d messages, want %d", len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("message %d: got %d bytes (index %x), want %d bytes", i, len(got[i]), got[i][:min(8, len(got[i]))], len(want[i]))
					}
				}
				if drops, err := srv.RecvDrops(); drops != 0 || err != nil {
					t.Errorf("RecvDrops = %d, %v; want 0", drops, err)
				}
				if _, gro := srv.Offload(); gro && tc.name != "mixed" && !super {
					t.Errorf("GRO on, but no super-packet arrived")
				}
				// Nothing more: on loopback every datagram is queued (or dropped) before
				// Send returns, and a split super-packet's rest waits in the Conn, so
				// anything extra is there at once; 20 ms, not idleTimeout, over 18 cases.
				if err := srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				if n, err := srv.Recv(bufs, sizes); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("Recv after the last message = %d, %v; want 0 and a deadline error", n, err)
				}
			})
		}
	}
}

// TestOffloadServerEcho: with GRO, a server socket that splits a super-packet
// answers every datagram of it to its source.
func TestOffloadServerEcho(t *testing.T) {
	srv, cli := loopbackPair(t, Options{GRO: true, RecvBuffer: 1 << 20}, Options{GRO: true, RecvBuffer: 1 << 20})
	want := messages(0, repeat(40, 300)...)
	if n, err := cli.Send(want); n != len(want) || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	bufs, sizes := makeBufs(7, 512)
	out := make([][]byte, len(bufs))
	for echoed := 0; echoed < len(want); {
		if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
			t.Fatal(err)
		}
		n, err := srv.Recv(bufs, sizes)
		if err != nil {
			t.Fatalf("server Recv after %d: %v", echoed, err)
		}
		for i := range n {
			out[i] = bufs[i][:sizes[i]]
		}
		if m, err := srv.Send(out[:n]); m != n || err != nil {
			t.Fatalf("server Send(%d) = %d, %v", n, m, err)
		}
		echoed += n
	}
	got := drain(t, cli, len(want), 512)
	if len(got) != len(want) {
		t.Fatalf("client received %d echoes, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("echo %d differs", i)
		}
	}
}

// TestGRODropsCountSuperPackets is why GRO is off by default: when a receive buffer
// overflows with GRO on, the kernel drops whole super-packets and SO_MEMINFO counts
// each once, so received + RecvDrops falls short of the datagrams sent.
func TestGRODropsCountSuperPackets(t *testing.T) {
	const n, size = 1000, 1000
	srv, cli := loopbackPair(t, Options{GRO: true, RecvBuffer: 4096}, Options{})
	if gso, _ := cli.Offload(); !gso {
		t.Skip("GSO unavailable: no super-packets to drop")
	}
	msgs := messages(0, repeat(n, size)...)
	if sent, err := cli.Send(msgs); sent != n || err != nil {
		t.Fatalf("Send = %d, %v", sent, err)
	}
	got := drain(t, srv, n, size)
	drops, err := srv.RecvDrops()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GRO on: sent %d, received %d, RecvDrops %d (sum %d)", n, len(got), drops, uint64(len(got))+drops)
	if drops == 0 {
		t.Fatal("no drops: the receive buffer did not overflow")
	}
	if uint64(len(got))+drops > n {
		t.Errorf("received %d + RecvDrops %d > %d sent", len(got), drops, n)
	}
	if uint64(len(got))+drops == n {
		t.Log("the kernel counts dropped GRO datagrams exactly: GRO could be on by default")
	}
}

func TestGSORun(t *testing.T) {
	const seg, total = 1472, MaxPayloadIPv4
	for _, tc := range []struct {
		name    string
		sizes   []int
		n, want int // messages in the run, segment size
	}{
		{"empty", nil, 0, 0},
		{"one", []int{64}, 1, 0},
		{"equal", repeat(10, 64), 10, 64},
		{"segment cap", repeat(200, 64), gsoMaxSegments, 64},
		{"total cap", repeat(64, 1400), MaxPayloadIPv4 / 1400, 1400},
		{"short last", []int{100, 100, 50, 100}, 3, 100},
		{"longer next", []int{100, 100, 200}, 2, 100},
		{"longer second", []int{100, 200}, 1, 0},
		{"empty next", []int{100, 0, 100}, 1, 0},
		{"empty first", []int{0, 0}, 1, 0},
		{"too large to segment", []int{1473, 1473}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, s := gsoRun(messages(0, tc.sizes...), seg, total, gsoMaxSegments)
			if n != tc.n || s != tc.want {
				t.Errorf("gsoRun(sizes %v) = %d, %d; want %d, %d", tc.sizes, n, s, tc.n, tc.want)
			}
		})
	}
}

func TestParseRecvCmsgs(t *testing.T) {
	gro := cmsg(unix.SOL_UDP, unix.UDP_GRO, u32(1400))
	ovfl := cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, u32(7))
	for _, tc := range []struct {
		name    string
		b       []byte
		drops   uint32
		dropsOK bool
		seg     int
		segOK   bool
		err     bool
	}{
		{"none", nil, 0, false, 0, false, false},
		{"gro", gro, 0, false, 1400, true, false},
		{"ovfl then gro", slices.Concat(ovfl, gro), 7, true, 1400, true, false},
		{"gro then ovfl", slices.Concat(gro, ovfl), 7, true, 1400, true, false},
		{"short gro", cmsg(unix.SOL_UDP, unix.UDP_GRO, []byte{1, 2}), 0, false, 0, false, true},
		{"gro then junk", slices.Concat(gro, []byte{1, 2, 3}), 0, false, 1400, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drops, dok, seg, sok, err := parseRecvCmsgs(tc.b)
			if drops != tc.drops || dok != tc.dropsOK || seg != tc.seg || sok != tc.segOK || (err != nil) != tc.err {
				t.Errorf("parseRecvCmsgs(%x) = %d, %v, %d, %v, %v; want %d, %v, %d, %v, error %v",
					tc.b, drops, dok, seg, sok, err, tc.drops, tc.dropsOK, tc.seg, tc.segOK, tc.err)
			}
			if tc.err && err != nil && !errors.Is(err, errMalformedCmsg) {
				t.Errorf("error %v does not wrap errMalformedCmsg", err)
			}
		})
	}
}

// TestGROTruncated: a datagram of a super-packet larger than its buffer is
// ErrTruncated; the datagrams after it are still returned by the next Recv.
func TestGROTruncated(t *testing.T) {
	srv, cli := loopbackPair(t, Options{GRO: true}, Options{})
	want := messages(0, repeat(5, 1000)...)
	if n, err := cli.Send(want); n != len(want) || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	bufs, sizes := makeBufs(8, 1000)
	bufs[2] = make([]byte, 999)
	if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	var got []int
	for len(got) < 4 {
		n, err := srv.Recv(bufs, sizes)
		for i := range n {
			got = append(got, int(bufs[i][7]))
		}
		if err != nil && !errors.Is(err, ErrTruncated) {
			t.Fatalf("Recv: %v", err)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		bufs[2] = make([]byte, 1000)
	}
	if fmt.Sprint(got) != "[0 1 3 4]" {
		t.Errorf("message indices received %v, want [0 1 3 4] (2 truncated)", got)
	}
}
