package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// TestBoundariesKnownAnswer sends the burst and the largest messages over real
// loopback sockets: TCP reads coalesce writes, UDP reads return one write each;
// UDP refuses one byte past 65507 with EMSGSIZE; TCP carries 1 MiB.
func TestBoundariesKnownAnswer(t *testing.T) {
	for _, name := range []string{"tcp", "udp"} {
		t.Run(name, func(t *testing.T) {
			e := testEnv(t)
			// The reader waits for what is missing until nothing has come for
			// e.timeout + e.drain, which a writer stalled on a busy host must not
			// outlast. A complete burst ends the wait.
			e.timeout, e.drain = patience, patience
			o, err := runBoundaries(context.Background(), e, mustNetwork(t, name, transport.NetOptions{NoDelay: true}), report.Params{Size: propertySize})
			if err != nil {
				t.Fatal(err)
			}
			obs, m := o.observed, o.m
			t.Logf("observed %v", obs)
			t.Logf("sent %d recv %d lost %d (socket drops %v, sender %d) bytes %d/%d warnings %v", m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, m.SentBytes, m.RecvBytes, o.warns)
			if m.SentMsgs != burstWrites || m.SentBytes != burstWrites*burstWriteBytes {
				t.Errorf("sent %d msgs %d bytes, want %d and %d", m.SentMsgs, m.SentBytes, burstWrites, burstWrites*burstWriteBytes)
			}
			// The writer does not see the reader (it may be on another host): a
			// datagram writer paces its chunks, and a reader starved on a busy host
			// may let its socket overflow. Every loss is then a drop the kernel
			// counted; TCP loses nothing.
			var dropped uint64
			if name == "udp" {
				dropped = m.DropsSender
				if m.DropsSocket != nil {
					dropped += *m.DropsSocket
				}
			}
			want := burstWrites - dropped
			if m.RecvMsgs != want || m.LostMsgs != dropped || m.RecvBytes != want*burstWriteBytes {
				t.Errorf("recv %d msgs %d bytes lost %d, want every write back but the %d the kernel dropped and counted", m.RecvMsgs, m.RecvBytes, m.LostMsgs, dropped)
			}
			// The server half in this process reports as a far one does: the one
			// endpoint it read on, and where the largest message's limit comes from.
			if m.ServerSockets != 1 || obs["max_message_limit"] != "the transport's limit" {
				t.Errorf("server_sockets %d, max_message_limit %v; want 1 and the transport's limit", m.ServerSockets, obs["max_message_limit"])
			}
			if obs["bytes_in_order"] != (dropped == 0) {
				t.Errorf("bytes_in_order %v, want %v (%d dropped)", obs["bytes_in_order"], dropped == 0, dropped)
			}
			hist, _ := obs["read_sizes"].(map[string]int)
			if len(hist) == 0 || len(hist) > histogramMax {
				t.Errorf("read_sizes %v: want 1..%d entries", hist, histogramMax)
			}
			switch name {
			case "tcp":
				if obs["raw_stream"] != true || obs["reads_equal_to_writes"] != false {
					t.Errorf("raw_stream %v reads_equal_to_writes %v, want true false", obs["raw_stream"], obs["reads_equal_to_writes"])
				}
				if c, _ := obs["coalesced_reads"].(int); c == 0 {
					t.Errorf("coalesced_reads %v, want > 0", obs["coalesced_reads"])
				}
				if obs["one_mib_send_ok"] != true || obs["max_message_ok"] != true {
					t.Errorf("one_mib_send_ok %v max_message_ok %v, want true true", obs["one_mib_send_ok"], obs["max_message_ok"])
				}
				if r, _ := obs["one_mib_reads"].(int); r < 2 || obs["one_mib_raw_in_order"] != true {
					t.Errorf("one_mib_reads %v in order %v: want several reads, in order", obs["one_mib_reads"], obs["one_mib_raw_in_order"])
				}
				if obs["max_plus_one_emsgsize"] != false {
					t.Errorf("max_plus_one_emsgsize %v: TCP has no datagram limit", obs["max_plus_one_emsgsize"])
				}
			case "udp":
				if obs["raw_stream"] != false || obs["reads_equal_to_writes"] != true || obs["reads"] != int(want) {
					t.Errorf("raw_stream %v reads_equal_to_writes %v reads %v, want false true %d", obs["raw_stream"], obs["reads_equal_to_writes"], obs["reads"], want)
				}
				if len(hist) != 1 || hist["1000"] != int(want) {
					t.Errorf("read_sizes %v, want {1000: %d}", hist, want)
				}
				if obs["coalesced_reads"] != 0 || obs["split_reads"] != 0 {
					t.Errorf("coalesced %v split %v, want 0 0", obs["coalesced_reads"], obs["split_reads"])
				}
				if obs["max_message_bytes"] != 65507 || obs["max_message_ok"] != true {
					t.Errorf("max_message_bytes %v ok %v, want 65507 true", obs["max_message_bytes"], obs["max_message_ok"])
				}
				if obs["max_plus_one_emsgsize"] != true || obs["max_plus_one_error"] == "" {
					t.Errorf("max+1: emsgsize %v error %q, want true and an error", obs["max_plus_one_emsgsize"], obs["max_plus_one_error"])
				}
				if obs["one_mib_send_ok"] != false || obs["one_mib_send_error"] == "" {
					t.Errorf("1 MiB: ok %v error %q, want false and an error", obs["one_mib_send_ok"], obs["one_mib_send_error"])
				}
				if _, ok := obs["one_mib_reads"]; ok {
					t.Errorf("one_mib_reads %v without a raw stream", obs["one_mib_reads"])
				}
			}
		})
	}
}

func TestBurstAccounting(t *testing.T) {
	want := make([]byte, burstWrites*burstWriteBytes)
	wire.FillPayload(want, 1, 0)
	for i := 0; i < burstWrites; i++ {
		putIndex(want, i)
	}
	rec := func(i int) []byte { return want[i*burstWriteBytes : (i+1)*burstWriteBytes] }
	tests := []struct {
		name                 string
		got                  func() []byte
		sizes                []int
		recv, lost, dup, reo uint64
		coalesced, split     int
		equal                bool
	}{
		{name: "one read per write", got: func() []byte { return want }, sizes: repeat(burstWriteBytes, burstWrites), recv: burstWrites, equal: true},
		{name: "stream in 64 KiB reads", got: func() []byte { return want }, sizes: []int{65536, 65536, 65536, 3392}, recv: burstWrites, coalesced: 4, split: 4},
		{name: "one read per write, one lost", got: func() []byte { return want[burstWriteBytes:] }, sizes: repeat(burstWriteBytes, burstWrites-1), recv: burstWrites - 1, lost: 1, equal: true},
		{name: "two writes per read", got: func() []byte { return want }, sizes: repeat(2*burstWriteBytes, burstWrites/2), recv: burstWrites, coalesced: burstWrites / 2},
		{name: "write 3 lost, 5 twice, 8 after 9", got: func() []byte {
			var g []byte
			for _, i := range []int{0, 1, 2, 4, 5, 5, 6, 7, 9, 8} {
				g = append(g, rec(i)...)
			}
			for i := 10; i < burstWrites; i++ {
				g = append(g, rec(i)...)
			}
			return g
		}, sizes: repeat(burstWriteBytes, burstWrites), recv: burstWrites, lost: 1, dup: 1, reo: 1, equal: true}, // each read one whole write
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &burst{want: want, got: tc.got(), sizes: tc.sizes}
			m := b.metrics()
			if m.RecvMsgs != tc.recv || m.LostMsgs != tc.lost || m.DupMsgs != tc.dup || m.ReorderedMsgs != tc.reo {
				t.Errorf("recv %d lost %d dup %d reordered %d, want %d %d %d %d", m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, tc.recv, tc.lost, tc.dup, tc.reo)
			}
			if c, s := b.coalescedSplit(); c != tc.coalesced || s != tc.split {
				t.Errorf("coalesced %d split %d, want %d %d", c, s, tc.coalesced, tc.split)
			}
			if got := b.readsEqualWrites(); got != tc.equal {
				t.Errorf("reads equal to writes %v, want %v", got, tc.equal)
			}
		})
	}
}

func TestSizeHistogram(t *testing.T) {
	var sizes []int
	for s := 1; s <= 30; s++ {
		for k := 0; k < s; k++ {
			sizes = append(sizes, s) // size s occurs s times
		}
	}
	h := sizeHistogram(sizes, 20)
	if len(h) != 20 {
		t.Fatalf("%d entries, want 20: %v", len(h), h)
	}
	// Sizes 30..12 are the 19 most common; 1..11 fall under "other".
	if h["30"] != 30 || h["12"] != 12 || h["11"] != 0 || h["other"] != 66 {
		t.Errorf("histogram %v: want 30→30, 12→12, no 11, other 66", h)
	}
	if h := sizeHistogram([]int{1000, 1000}, 20); len(h) != 1 || h["1000"] != 2 {
		t.Errorf("histogram %v, want {1000: 2}", h)
	}
}

func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// TestBoundariesUDPOverflow: a receive buffer too small for the burst loses
// datagrams, and loss is counted, not waited for; what arrives is still one write
// per read. (The 65507-byte datagram still arrives: Linux queues one datagram on an
// empty socket whatever its size.)
func TestBoundariesUDPOverflow(t *testing.T) {
	e := testEnv(t)
	// The reader waits e.timeout after the last arrival for the rest of each chunk,
	// which never comes here (4 chunks: 4 waits). A writer stalled longer than that
	// on a busy host would leave its last datagrams unread, lost but not dropped.
	e.timeout = time.Second
	o, err := runBoundaries(context.Background(), e, mustNetwork(t, "udp", transport.NetOptions{RecvBuffer: 4096}), report.Params{Size: propertySize})
	if err != nil {
		t.Fatal(err)
	}
	m := o.m
	t.Logf("sent %d recv %d lost %d reads %v warnings %v", m.SentMsgs, m.RecvMsgs, m.LostMsgs, o.observed["reads"], o.warns)
	if m.LostMsgs == 0 || m.RecvMsgs+m.LostMsgs != m.SentMsgs {
		t.Errorf("sent %d recv %d lost %d: want loss, and recv + lost = sent", m.SentMsgs, m.RecvMsgs, m.LostMsgs)
	}
	if m.DropsSocket == nil || *m.DropsSocket != m.LostMsgs {
		t.Errorf("drops_socket %v, want every loss (%d) counted at the receiver's socket", deref(m.DropsSocket), m.LostMsgs)
	}
	if o.observed["reads_equal_to_writes"] != true || o.observed["reads"] != int(m.RecvMsgs) {
		t.Errorf("reads_equal_to_writes %v reads %v: want true, one per message received (%d)", o.observed["reads_equal_to_writes"], o.observed["reads"], m.RecvMsgs)
	}
}

// TestServeBoundaries: the server half of boundaries, the reader, over real loopback
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
		write                 func(t *testing.T, c transport.Transport)
		check                 func(t *testing.T, rx *BoundariesRx)
	}{
		{"burst missing write 3", "udp", BoundariesBurst,
			func(t *testing.T, c transport.Transport) {
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
			func(t *testing.T, c transport.Transport) {
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
			c, s := transporttest.Pair(t, mustNetwork(t, tc.transport, transport.NetOptions{NoDelay: true}))
			spec := FarSpec{Experiment: report.ExpBoundaries, Transport: tc.transport, Size: 8192, Streams: 1,
				Boundaries: &FarBoundaries{Part: tc.part, Seed: seed, Quiet: time.Second}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
			defer cancel()
			// A hang guard: a reader that gave up leaves a TCP writer blocked on a
			// full window; closing both ends at the limit unblocks it.
			stop := context.AfterFunc(ctx, func() { c.Close(); s.Close() })
			defer stop()
			client := &clientEnv{done: make(chan struct{})}
			done := make(chan halfResult, 1)
			go func() {
				r, err := ServeBoundaries(ctx, client, spec, []transport.Transport{s})
				done <- halfResult{r, err}
			}()
			tc.write(t, c)
			c.Close()
			close(client.done)
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
func sendSeeded(seed int64) func(t *testing.T, c transport.Transport) {
	return func(t *testing.T, c transport.Transport) {
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
func writeMiB(seed int64) func(t *testing.T, c transport.Transport) {
	return func(t *testing.T, c transport.Transport) {
		msg := make([]byte, oneMiB)
		wire.FillPayload(msg, seed, oneMiB)
		if _, err := c.(transport.RawStreamer).RawStream().Write(msg); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeBoundariesRefuses: a spec without a part, a quiet time or a header's size,
// an unknown part, or a raw part on a datagram transport is refused, naming it.
func TestServeBoundariesRefuses(t *testing.T) {
	_, s := transporttest.Pair(t, mustNetwork(t, "udp", transport.NetOptions{}))
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
		{"two endpoints", FarSpec{Size: 1024, Boundaries: &FarBoundaries{Part: BoundariesBurst, Quiet: time.Second}}, "one endpoint"},
	} {
		ts := []transport.Transport{s}
		if tc.name == "two endpoints" {
			ts = append(ts, s)
		}
		_, err := ServeBoundaries(context.Background(), &clientEnv{}, tc.spec, ts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ServeBoundaries = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestReadWholeStopsAtSent: once the client is done and said how many messages it
// sent, the reader of the largest messages stops when they are in, without the
// quiet wait that ends it otherwise (here an hour: the test would time out).
func TestReadWholeStopsAtSent(t *testing.T) {
	c, s := transporttest.Pair(t, mustNetwork(t, "udp", transport.NetOptions{}))
	sendSeeded(3)(t, c)
	client := &clientEnv{done: make(chan struct{}), sent: []uint64{2}}
	close(client.done)
	msgs, err := readWhole(context.Background(), s, 8192, &FarBoundaries{Part: BoundariesLargest, Seed: 3, Quiet: time.Hour}, client)
	if err != nil || len(msgs) != 2 || msgs[0] != (MessageRx{5000, true}) || msgs[1] != (MessageRx{3000, false}) {
		t.Fatalf("readWhole = %+v, %v; want 5000 B whole, then 3000 B not", msgs, err)
	}
}

// clientEnv is a server half's ServerEnv in a test: the client is done when done
// closes, having sent sent (nil: it did not say).
type clientEnv struct {
	done chan struct{}
	sent []uint64
}

func (c *clientEnv) Done() <-chan struct{} { return c.done }

func (c *clientEnv) Sent() ([]uint64, error) {
	if c.sent == nil {
		return nil, errors.New("no per-flow counts")
	}
	return c.sent, nil
}

func (c *clientEnv) ClosedPort() (uint16, error) { return 0, errNoPort }

var errNoPort = errors.New("no closed port here")

func (c *clientEnv) ReportSent([]uint64) {}
