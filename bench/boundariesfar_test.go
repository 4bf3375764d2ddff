package bench

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// TestServeBoundaries: the far half of boundaries, the reader, over real loopback
// sockets, against a client that writes known data. Known answers: a UDP burst
// missing write 3 is 199 reads of one write each, 1 lost, bytes not in order; a TCP
// burst is fewer reads than writes, every byte in order; the largest messages are
// recorded in order, whole only with the seed's payload; a raw 1 MiB write takes
// several reads, in order only with the seed's payload. The reader ends a datagram
// burst, and the largest messages, after a quiet second: a writer paused 10 ms
// between chunks, and stalled on a busy host, must not look finished.
func TestServeBoundaries(t *testing.T) {
	const seed = 42
	for _, tc := range []struct {
		name, transport, part string
		write                 func(t *testing.T, c Transport)
		check                 func(t *testing.T, rx *BoundariesRx)
	}{
		{"burst missing write 3", "udp", BoundariesBurst,
			func(t *testing.T, c Transport) {
				w := burstWriter(c, false)
				lose3 := func(msg []byte) error {
					if binary.BigEndian.Uint32(msg) == 3 {
						return nil
					}
					return w(msg)
				}
				if _, err := newBurst(seed).writePaused(context.Background(), lose3, burstChunk); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, rx *BoundariesRx) {
				m := rx.Burst
				if rx.Raw || rx.Reads != burstWrites-1 || !rx.ReadsEqualWrites || rx.InOrder || m.RecvMsgs != burstWrites-1 || m.LostMsgs != 1 ||
					m.DropsSocket == nil || *m.DropsSocket != 0 ||
					rx.ReadSizes["1000"] != burstWrites-1 || rx.Coalesced != 0 || rx.Split != 0 {
					t.Errorf("rx %+v, burst %+v; want 199 reads of one write each, 1 lost, not in order", rx, m)
				}
			}},
		{"burst", "tcp", BoundariesBurst,
			func(t *testing.T, c Transport) {
				b := newBurst(seed)
				if _, err := b.writePaused(context.Background(), burstWriter(c, true), burstWrites); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, rx *BoundariesRx) {
				m := rx.Burst
				if !rx.Raw || rx.Reads < 1 || rx.Reads >= burstWrites || rx.ReadsEqualWrites || !rx.InOrder || m.RecvMsgs != burstWrites || m.LostMsgs != 0 || rx.Coalesced < 1 {
					t.Errorf("rx %+v, burst %+v; want fewer reads than writes, every byte in order", rx, m)
				}
			}},
		{"largest", "udp", BoundariesLargest, sendSeeded(seed), checkSeeded},
		{"largest", "tcp", BoundariesLargest, sendSeeded(seed), checkSeeded},
		{"raw", "tcp", BoundariesRaw, writeMiB(seed),
			func(t *testing.T, rx *BoundariesRx) {
				if rx.RawReads < 2 || !rx.RawInOrder {
					t.Errorf("raw reads %d, in order %v; want several, in order", rx.RawReads, rx.RawInOrder)
				}
			}},
		{"raw of another seed", "tcp", BoundariesRaw, writeMiB(seed + 1),
			func(t *testing.T, rx *BoundariesRx) {
				if rx.RawReads < 2 || rx.RawInOrder {
					t.Errorf("raw reads %d, in order %v; want several, not in order", rx.RawReads, rx.RawInOrder)
				}
			}},
	} {
		t.Run(tc.name+"/"+tc.transport, func(t *testing.T) {
			c, s := loopbackPair(t, mustNetwork(t, tc.transport, NetOptions{NoDelay: true}))
			spec := FarSpec{Experiment: report.ExpBoundaries, Transport: tc.transport, Size: 8192, Streams: 1,
				Boundaries: &FarBoundaries{Part: tc.part, Seed: seed, Quiet: time.Second}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
			defer cancel()
			// A hang guard: a reader that gave up leaves a TCP writer blocked on a
			// full window; closing both ends at the limit unblocks it.
			stop := context.AfterFunc(ctx, func() { c.Close(); s.Close() })
			defer stop()
			peerDone := make(chan struct{})
			type served struct {
				r   FarResult
				err error
			}
			done := make(chan served, 1)
			go func() {
				r, err := ServeBoundaries(ctx, spec, s, peerDone)
				done <- served{r, err}
			}()
			tc.write(t, c)
			c.Close()
			close(peerDone)
			got := <-done
			if got.err != nil || got.r.Boundaries == nil || got.r.ServerSockets != 1 {
				t.Fatalf("ServeBoundaries = %+v, %v; want a report of 1 socket", got.r, got.err)
			}
			tc.check(t, got.r.Boundaries)
		})
	}
}

// sendSeeded sends two messages: 5000 bytes of seed's payload, then 3000 of
// another seed's.
func sendSeeded(seed int64) func(t *testing.T, c Transport) {
	return func(t *testing.T, c Transport) {
		a, b := make([]byte, 5000), make([]byte, 3000)
		wire.FillPayload(a, seed, 5000)
		wire.FillPayload(b, seed+1, 3000)
		if _, err := c.Send([][]byte{a, b}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkSeeded(t *testing.T, rx *BoundariesRx) {
	if len(rx.Messages) != 2 || rx.Messages[0] != (MessageRx{5000, true}) || rx.Messages[1] != (MessageRx{3000, false}) {
		t.Errorf("messages %+v; want 5000 B whole, then 3000 B not", rx.Messages)
	}
}

// writeMiB writes 1 MiB of seed's payload in one raw write.
func writeMiB(seed int64) func(t *testing.T, c Transport) {
	return func(t *testing.T, c Transport) {
		msg := make([]byte, oneMiB)
		wire.FillPayload(msg, seed, oneMiB)
		if _, err := c.(rawStreamer).RawStream().Write(msg); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeBoundariesRefuses: a spec without a part, a quiet time or a header's size,
// an unknown part, or a raw part on a datagram transport is refused, naming it.
func TestServeBoundariesRefuses(t *testing.T) {
	_, s := loopbackPair(t, mustNetwork(t, "udp", NetOptions{}))
	for _, tc := range []struct {
		name string
		spec FarSpec
		want string
	}{
		{"no part", FarSpec{Size: 1024}, "want a part"},
		{"no quiet", FarSpec{Size: 1024, Boundaries: &FarBoundaries{Part: BoundariesBurst}}, "want a part, a quiet time"},
		{"small size", FarSpec{Size: 8, Boundaries: &FarBoundaries{Part: BoundariesBurst, Quiet: time.Second}}, "size"},
		{"unknown part", FarSpec{Size: 1024, Boundaries: &FarBoundaries{Part: "all", Quiet: time.Second}}, `part "all"`},
		{"raw over udp", FarSpec{Size: 1024, Boundaries: &FarBoundaries{Part: BoundariesRaw, Quiet: time.Second}}, "needs a byte stream"},
	} {
		_, err := ServeBoundaries(context.Background(), tc.spec, s, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ServeBoundaries = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
