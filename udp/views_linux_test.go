//go:build linux

package udp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// recvViews reads with RecvViews until want datagrams came, copying each, and
// returns them with the packets they came in.
func recvViews(t *testing.T, c *Conn, views [][]byte, pkts []Packet, want int) (got [][]byte, packets []Packet) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
		t.Fatal(err)
	}
	for len(got) < want {
		n, np, err := c.RecvViews(views, pkts)
		if err != nil {
			t.Fatalf("RecvViews after %d datagrams: %v", len(got), err)
		}
		sum := 0
		for _, p := range pkts[:np] {
			if p.Datagrams <= 0 {
				t.Fatalf("RecvViews: a packet of %d datagrams", p.Datagrams)
			}
			sum += p.Datagrams
		}
		if sum != n {
			t.Fatalf("RecvViews = %d datagrams, its %d packets hold %d", n, np, sum)
		}
		for _, v := range views[:n] {
			if cap(v) != len(v) {
				t.Fatalf("a view of %d bytes has capacity %d: an append would write into the next datagram", len(v), cap(v))
			}
			got = append(got, append([]byte(nil), v...))
		}
		packets = append(packets, pkts[:np]...)
	}
	return got, packets
}

// TestRecvViewsKnownAnswers: known messages, sent with GSO where the client has it,
// come back from RecvViews once each, whole, in order and intact, in every offload
// mode; the packets they came in sum to them; with GRO some came coalesced, a short
// last segment included; a call with fewer views or packets than a super-packet
// holds takes the rest in the next.
func TestRecvViewsKnownAnswers(t *testing.T) {
	for _, mode := range offloadModes {
		for _, tc := range []struct {
			name         string
			sizes        []int
			views, pkts  int
			wantCoalesce bool // with GRO: a packet of more than one datagram
		}{
			{"64x64", repeat(64, 64), 4096, 64, true},
			{"64x1400", repeat(64, 1400), 4096, 64, true},
			{"short last", append(repeat(10, 100), 37), 4096, 64, true},
			{"odd last of 1000", append(repeat(20, 1000), 1), 4096, 64, true},
			{"7 views", repeat(200, 100), 7, 64, true},
			{"1 packet per call", repeat(200, 100), 4096, 1, true},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				srvOpts := mode.o
				srvOpts.RecvBuffer = 4 << 20
				srv, cli := loopbackPair(t, srvOpts, mode.o)
				want := messages(0, tc.sizes...)
				views, pkts := make([][]byte, tc.views), make([]Packet, tc.pkts)
				var got [][]byte
				var packets []Packet
				for start := 0; start < len(want); start += defaultBatch {
					batch := want[start:min(len(want), start+defaultBatch)]
					if n, err := cli.Send(batch); n != len(batch) || err != nil {
						t.Fatalf("Send(%d messages from %d) = %d, %v", len(batch), start, n, err)
					}
					g, p := recvViews(t, srv, views, pkts, len(batch))
					got, packets = append(got, g...), append(packets, p...)
				}
				if len(got) != len(want) {
					t.Fatalf("received %d messages, want %d", len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("message %d: got %d bytes, want %d", i, len(got[i]), len(want[i]))
					}
				}
				coalesced := false
				for _, p := range packets {
					coalesced = coalesced || p.Datagrams > 1
					if p.Drops != 0 {
						t.Errorf("a packet carried drop count %d, want 0: nothing was dropped", p.Drops)
					}
				}
				gso, _ := cli.Offload()
				_, gro := srv.Offload()
				if gso && gro && tc.wantCoalesce && !coalesced {
					t.Errorf("GSO and GRO on, but every packet held one datagram (%d packets)", len(packets))
				}
				if !gro && coalesced {
					t.Errorf("GRO off, but a packet held more than one datagram")
				}
				if err := srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				if n, _, err := srv.RecvViews(views, pkts); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("RecvViews after the last message = %d, %v; want 0 and a deadline error", n, err)
				}
			})
		}
	}
}

// TestRecvViewsDropCounter: the drop counter each packet carries, with a known
// answer. A receive buffer too small for two super-packets takes the first (an
// empty queue takes any packet) and drops the next two whole; once the first is
// read, a fourth is queued carrying the count 2: with GRO the kernel counts the two
// dropped super-packets of 64 datagrams as 2, and so does RecvDrops. Without GRO
// every packet is one datagram and every dropped one counts: read and dropped sum
// to the 256 sent.
func TestRecvViewsDropCounter(t *testing.T) {
	for _, mode := range offloadModes[1:] { // gso+gro, and neither
		t.Run(mode.name, func(t *testing.T) {
			srvOpts := mode.o
			srvOpts.RecvBuffer = 1 // the kernel's least
			srv, cli := loopbackPair(t, srvOpts, Options{})
			if gso, _ := cli.Offload(); !gso {
				t.Skip("GSO unavailable: no super-packets")
			}
			_, gro := srv.Offload()
			send := func(first int) {
				t.Helper()
				if n, err := cli.Send(messages(first, repeat(64, 100)...)); n != 64 || err != nil {
					t.Fatalf("Send = %d, %v", n, err)
				}
			}
			views, pkts := make([][]byte, 4096), make([]Packet, 64)
			send(0)
			send(64)
			send(128)
			a, pa := recvViews(t, srv, views, pkts, 1)
			send(192)
			if !gro {
				// One datagram per packet, each drop counted: what was read and what
				// was dropped make the 256 sent.
				got := len(a)
				for {
					if err := srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
						t.Fatal(err)
					}
					n, np, err := srv.RecvViews(views, pkts)
					if n != np {
						t.Errorf("without GRO RecvViews = %d datagrams in %d packets, want one each", n, np)
					}
					got += n
					if err != nil {
						break
					}
				}
				if drops, err := srv.RecvDrops(); err != nil || drops+uint64(got) != 256 {
					t.Errorf("without GRO: read %d, RecvDrops %d (%v); want them to sum to the 256 sent", got, drops, err)
				}
				return
			}
			if err := srv.SetReadDeadline(time.Now().Add(recvTimeout)); err != nil {
				t.Fatal(err)
			}
			n, np, err := srv.RecvViews(views, pkts)
			if err != nil {
				t.Fatal(err)
			}
			b := views[:n]
			t.Logf("first read %d datagrams in %d packets (drops %d); then %d in %d packets, drops %d", len(a), len(pa), pa[0].Drops, n, np, pkts[0].Drops)
			if len(a) != 64 || len(pa) != 1 || pa[0].Drops != 0 {
				t.Errorf("first read %d datagrams in %d packets, drops %d; want 64 in 1, drops 0", len(a), len(pa), pa[0].Drops)
			}
			if n != 64 || np != 1 || pkts[0].Drops != 2 || !bytes.Equal(b[0], messages(192, 100)[0]) {
				t.Errorf("second read %d datagrams in %d packets, drops %d; want the fourth super-packet: 64 in 1, drops 2", n, np, pkts[0].Drops)
			}
			if drops, _ := srv.RecvDrops(); drops != 2 {
				t.Errorf("RecvDrops = %d, want 2: two super-packets dropped, counted once each", drops)
			}
		})
	}
}

// TestRecvViewsZeroAllocs pins RecvViews at 0 allocations once its scratch exists.
func TestRecvViewsZeroAllocs(t *testing.T) {
	for _, mode := range offloadModes {
		for _, size := range []int{64, 1400} {
			t.Run(fmt.Sprintf("%s/size=%d", mode.name, size), func(t *testing.T) {
				o := mode.o
				o.RecvBuffer = 4 << 20
				srv, cli := loopbackPair(t, o, mode.o)
				msgs := messages(0, repeat(64, size)...)
				views, pkts := make([][]byte, 4096), make([]Packet, 64)
				if err := srv.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				var failed error
				allocs := testing.AllocsPerRun(200, func() {
					if n, err := cli.Send(msgs); n != len(msgs) || err != nil {
						failed = errors.Join(failed, err, errors.New("short Send"))
						return
					}
					for got := 0; got < len(msgs); {
						n, _, err := srv.RecvViews(views, pkts)
						if err != nil {
							failed = errors.Join(failed, err)
							return
						}
						got += n
					}
				})
				if failed != nil {
					t.Fatal(failed)
				}
				if allocs != 0 {
					t.Errorf("Send + RecvViews of %d messages: %v allocations, want 0", len(msgs), allocs)
				}
			})
		}
	}
}
