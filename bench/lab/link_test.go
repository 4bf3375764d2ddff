package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// Test packets are IPv4/UDP datagrams whose payload is a fake data message: 0xD7,
// the flow (4 bytes), the sequence number (8 bytes), then padding.
const fakeData = 0xD7

// dataPacket builds an IPv4/UDP packet of size bytes (at least 41) carrying flow's
// message seq.
func dataPacket(tb testing.TB, flow uint32, seq uint64, size int) []byte {
	tb.Helper()
	if size < 28+13 {
		tb.Fatalf("dataPacket: size %d below 41", size)
	}
	payload := make([]byte, size-28)
	payload[0] = fakeData
	binary.BigEndian.PutUint32(payload[1:], flow)
	binary.BigEndian.PutUint64(payload[5:], seq)
	for i := 13; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	return buildPacket(tb, pktSpec{proto: protoUDP, payload: payload, srcPort: 5000, dstPort: 6000})
}

// classifyFake is the Classifier for dataPacket's payloads.
func classifyFake(p []byte) (flow uint32, data bool) {
	if len(p) < 13 || p[0] != fakeData {
		return 0, false
	}
	return binary.BigEndian.Uint32(p[1:]), true
}

// packetSeq reads flow and seq back from a (possibly corrupted) dataPacket.
func packetSeq(pkt []byte) (flow uint32, seq uint64) {
	return binary.BigEndian.Uint32(pkt[29:]), binary.BigEndian.Uint64(pkt[33:])
}

// recorder is an out that keeps a copy of each packet and the time it was handed on
// (set by the test driving time).
type recorder struct {
	mu   sync.Mutex
	pkts [][]byte
	at   []int64
	now  int64
	err  func(n int) error // if set, out's result for call n (from 0)
}

func (r *recorder) out(pkt []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = append(r.pkts, bytes.Clone(pkt))
	r.at = append(r.at, r.now)
	if r.err != nil {
		return r.err(len(r.pkts) - 1)
	}
	return nil
}

// checkIdentity asserts Counts' accounting identity for the totals, Data and ByFlow,
// and that ByFlow adds up to Data.
func checkIdentity(tb testing.TB, c Counts) {
	tb.Helper()
	if left, right := c.Packets, c.Queued+c.TooBig+c.Dropped+c.QueueDropped+c.Corrupted+c.Flushed+c.OutErrors+c.Passed-c.Duplicated; left != right {
		tb.Errorf("totals: Packets %d != Queued+TooBig+Dropped+QueueDropped+Corrupted+Flushed+OutErrors+Passed-Duplicated %d: %+v", left, right, c)
	}
	check := func(name string, d DataCounts) {
		if left, right := d.Packets, d.Queued+d.TooBig+d.Dropped+d.QueueDropped+d.Corrupted+d.Flushed+d.OutErrors+d.Passed-d.Duplicated; left != right {
			tb.Errorf("%s: Packets %d != %d: %+v", name, left, right, d)
		}
	}
	check("Data", c.Data)
	var sum DataCounts
	for f, d := range c.ByFlow {
		check(fmt.Sprintf("ByFlow[%d]", f), d)
		sum = addCounts(sum, d)
	}
	if sum != c.Data {
		tb.Errorf("ByFlow sums to %+v, Data is %+v", sum, c.Data)
	}
}

func addCounts(a, b DataCounts) DataCounts {
	return DataCounts{a.Packets + b.Packets, a.Queued + b.Queued, a.Passed + b.Passed, a.TooBig + b.TooBig, a.Dropped + b.Dropped,
		a.QueueDropped + b.QueueDropped, a.Corrupted + b.Corrupted, a.Duplicated + b.Duplicated,
		a.Reordered + b.Reordered, a.Flushed + b.Flushed, a.OutErrors + b.OutErrors}
}

// dataOnly returns c's totals as DataCounts: equal to c.Data when every packet is data.
func dataOnly(c Counts) DataCounts {
	return DataCounts{c.Packets, c.Queued, c.Passed, c.TooBig, c.Dropped, c.QueueDropped, c.Corrupted, c.Duplicated,
		c.Reordered, c.Flushed, c.OutErrors}
}

// drive feeds n data packets (flows round robin over flows, size bytes) into l every
// gap of synthetic time from base, releasing what is due before each arrival (a
// packet due at an arrival's instant leaves first), then everything left. rec.at gets
// each packet's release time in ns since base.
func drive(tb testing.TB, l *Link, rec *recorder, n, flows, size int, gap time.Duration) {
	tb.Helper()
	base := l.epoch
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = dataPacket(tb, uint32(i%flows), uint64(i/flows), size)
	}
	release := func(until int64) {
		for {
			next, ok := l.releaseDue(rec.now)
			if !ok || next > until {
				return
			}
			rec.now = next
		}
	}
	for i, p := range pkts {
		t := int64(i) * int64(gap)
		release(t)
		rec.now = t
		l.Input(p, base.Add(time.Duration(t)))
	}
	release(math.MaxInt64)
}

func TestLinkFastPath(t *testing.T) {
	for _, im := range []Impair{{}, {MTU: 9000}} {
		t.Run(fmt.Sprintf("impair=%q", im.String()), func(t *testing.T) {
			var got [][]byte
			l := NewLink(im, 1, classifyFake, func(p []byte) error { got = append(got, bytes.Clone(p)); return nil })
			for i := range 1000 {
				p := dataPacket(t, uint32(i%3), uint64(i), 100+i%1000)
				l.Input(p, time.Now())
				if len(got) != i+1 || !bytes.Equal(got[i], p) {
					t.Fatalf("packet %d: not handed to out unchanged during Input", i)
				}
			}
			c := l.Counts()
			checkIdentity(t, c)
			if c.Passed != 1000 || c.Data.Passed != 1000 || c.Delayed != 0 || len(c.ByFlow) != 3 || c.ByFlow[2].Packets != 333 {
				t.Errorf("counts %+v, want 1000 passed, undelayed, 3 flows", c)
			}
		})
	}
}

func TestLinkLoss(t *testing.T) {
	rec := &recorder{}
	l := NewLink(Impair{Loss: 0.05}, 42, classifyFake, rec.out)
	drive(t, l, rec, 10000, 4, 100, 0)
	c := l.Counts()
	checkIdentity(t, c)
	if uint64(len(rec.pkts)) != c.Packets-c.Dropped || c.Passed != c.Packets-c.Dropped {
		t.Errorf("out got %d packets, Passed %d; want Packets-Dropped = %d", len(rec.pkts), c.Passed, c.Packets-c.Dropped)
	}
	// The known answer for seed 42 (math/rand/v2's PCG is specified, so it is stable).
	const wantDropped = 511
	if c.Packets != 10000 || c.Dropped != wantDropped || c.Data != dataOnly(c) {
		t.Errorf("counts %+v, want 10000 packets, %d dropped, all data", c, wantDropped)
	}
	for i := 1; i < len(rec.pkts); i++ {
		f0, s0 := packetSeq(rec.pkts[i-1])
		f1, s1 := packetSeq(rec.pkts[i])
		if s1*4+uint64(f1) <= s0*4+uint64(f0) {
			t.Fatalf("out of order: %d/%d after %d/%d", f1, s1, f0, s0)
		}
	}
}

// trace runs 5000 packets through a link and returns what out saw, for comparing
// decisions.
func trace(tb testing.TB, im Impair, seed int64) ([]byte, Counts) {
	rec := &recorder{}
	l := NewLink(im, seed, classifyFake, rec.out)
	drive(tb, l, rec, 5000, 3, 200, 50*time.Microsecond)
	var all bytes.Buffer
	for i, p := range rec.pkts {
		fmt.Fprintf(&all, "%d@%d:", i, rec.at[i])
		all.Write(p)
	}
	return all.Bytes(), l.Counts()
}

func TestLinkSeedReproducible(t *testing.T) {
	for _, im := range []Impair{
		{Loss: 0.05, Corrupt: 0.02, Duplicate: 0.03, Reorder: 0.02},
		{Loss: 0.05, Burst: 3, Corrupt: 0.02, Duplicate: 0.03, Reorder: 0.02, Delay: time.Millisecond, Jitter: 500 * time.Microsecond, RateBps: 20e6, Queue: 5},
	} {
		t.Run(im.String(), func(t *testing.T) {
			a, ca := trace(t, im, 42)
			b, cb := trace(t, im, 42)
			if !bytes.Equal(a, b) || fmt.Sprint(ca) != fmt.Sprint(cb) {
				t.Errorf("seed 42 twice: different decisions\n%+v\n%+v", ca, cb)
			}
			checkIdentity(t, ca)
			c, cc := trace(t, im, 43)
			if bytes.Equal(a, c) || fmt.Sprint(ca) == fmt.Sprint(cc) {
				t.Errorf("seeds 42 and 43: same decisions %+v", ca)
			}
		})
	}
}

func TestLinkDuplicate(t *testing.T) {
	rec := &recorder{}
	l := NewLink(Impair{Duplicate: 0.03}, 7, classifyFake, rec.out)
	drive(t, l, rec, 10000, 1, 100, 0)
	c := l.Counts()
	checkIdentity(t, c)
	if uint64(len(rec.pkts)) != c.Packets+c.Duplicated || c.Duplicated < 200 || c.Duplicated > 400 || c.Data.Duplicated != c.Duplicated {
		t.Fatalf("out got %d packets; counts %+v; want Packets+Duplicated, about 300 duplicated", len(rec.pkts), c)
	}
	seen := map[uint64]int{}
	for i, p := range rec.pkts {
		_, s := packetSeq(p)
		seen[s]++
		if seen[s] == 2 && !bytes.Equal(rec.pkts[i-1], p) {
			t.Fatalf("seq %d: second copy not right after the first", s)
		}
	}
	var twice uint64
	for s, n := range seen {
		if n > 2 {
			t.Fatalf("seq %d delivered %d times", s, n)
		}
		if n == 2 {
			twice++
		}
	}
	if twice != c.Duplicated || len(seen) != 10000 {
		t.Errorf("%d packets twice, %d distinct; want Duplicated %d, 10000", twice, len(seen), c.Duplicated)
	}
}

func TestLinkCorrupt(t *testing.T) {
	for _, im := range []Impair{{Corrupt: 0.02}, {Corrupt: 0.02, Delay: time.Millisecond}} {
		t.Run(im.String(), func(t *testing.T) {
			rec := &recorder{}
			l := NewLink(im, 3, classifyFake, rec.out)
			drive(t, l, rec, 10000, 2, 300, 10*time.Microsecond)
			c := l.Counts()
			checkIdentity(t, c)
			if len(rec.pkts) != 10000 || c.Corrupted < 100 || c.Corrupted > 300 || c.Data.Corrupted != c.Corrupted || c.Passed != 10000-c.Corrupted {
				t.Fatalf("out got %d packets; counts %+v; want 10000, about 200 corrupted", len(rec.pkts), c)
			}
			var corrupted uint64
			for i, p := range rec.pkts { // in order: no loss, no reordering
				f, s := uint32(i%2), uint64(i/2) // as drive numbers them
				orig := dataPacket(t, f, s, 300)
				if bytes.Equal(p, orig) {
					continue
				}
				corrupted++
				if d := bitDiff(orig, p); d != 1 {
					t.Fatalf("packet %d/%d: %d bits differ, want 1", f, s, d)
				}
				i := 0
				for i < len(p) && p[i] == orig[i] {
					i++
				}
				if i < 28 {
					t.Fatalf("packet %d/%d: byte %d flipped, in the headers", f, s, i)
				}
				if ipOK, udpOK := checksumsOK(t, p); !ipOK || udpOK {
					t.Fatalf("packet %d/%d: IP checksum ok %v, UDP checksum ok %v; want true, false", f, s, ipOK, udpOK)
				}
			}
			if corrupted != c.Corrupted {
				t.Errorf("%d packets differ, Corrupted %d", corrupted, c.Corrupted)
			}
		})
	}
}

func TestLinkUncorruptible(t *testing.T) {
	var got [][]byte
	l := NewLink(Impair{Corrupt: 1}, 1, classifyFake, func(p []byte) error { got = append(got, bytes.Clone(p)); return nil })
	in := [][]byte{[]byte("junk"), buildPacket(t, pktSpec{proto: 1}), {}}
	for _, p := range in {
		l.Input(p, time.Now())
	}
	c := l.Counts()
	checkIdentity(t, c)
	if c.Passed != 3 || c.Corrupted != 0 || len(got) != 3 || !bytes.Equal(got[1], in[1]) {
		t.Errorf("counts %+v; want 3 passed untouched", c)
	}
}

// rfc4737 counts reordered packets in what out saw: per flow, a sequence number
// below the highest seen before it (RFC 4737 §3).
func rfc4737(pkts [][]byte) (reordered uint64) {
	maxSeen := map[uint32]uint64{}
	seen := map[uint32]bool{}
	for _, p := range pkts {
		f, s := packetSeq(p)
		if seen[f] && s < maxSeen[f] {
			reordered++
		}
		seen[f] = true
		maxSeen[f] = max(maxSeen[f], s)
	}
	return reordered
}

func TestLinkReorder(t *testing.T) {
	tests := []struct {
		name      string
		im        Impair
		gap       time.Duration
		wantSome  bool
		wantDelay bool
	}{
		{"reorder 2% no delay", Impair{Reorder: 0.02, ReorderBy: time.Millisecond}, 100 * time.Microsecond, true, false},
		{"reorder 2% default ReorderBy", Impair{Reorder: 0.02}, 100 * time.Microsecond, true, false},
		{"reorder 2% delay jitter", Impair{Reorder: 0.02, Delay: 5 * time.Millisecond, Jitter: 3 * time.Millisecond, ReorderBy: 2 * time.Millisecond}, 100 * time.Microsecond, true, true},
		{"reorder 2% rate", Impair{Reorder: 0.02, RateBps: 10e6, ReorderBy: time.Millisecond}, 100 * time.Microsecond, true, true},
		{"reorder 5% with loss dup corrupt", Impair{Reorder: 0.05, Loss: 0.1, Duplicate: 0.05, Corrupt: 0.05}, 100 * time.Microsecond, true, false},
		{"reorder 100%: nothing overtakes", Impair{Reorder: 1}, 100 * time.Microsecond, false, true},
		// 3 flows, 100 µs apart: a flow's next packet comes 300 µs later.
		{"overtaken by other flows only: not reordered", Impair{Reorder: 0.3, ReorderBy: 250 * time.Microsecond}, 100 * time.Microsecond, false, false},
		{"overtaken by one packet of its flow", Impair{Reorder: 0.3, ReorderBy: 350 * time.Microsecond}, 100 * time.Microsecond, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			l := NewLink(tc.im, 42, classifyFake, rec.out)
			drive(t, l, rec, 20000, 3, 100, tc.gap)
			c := l.Counts()
			checkIdentity(t, c)
			intact := slices.DeleteFunc(slices.Clone(rec.pkts), func(p []byte) bool { _, ok := checksumsOK(t, p); return !ok })
			want := rfc4737(intact)
			if c.Data.Reordered != want || c.Reordered != want {
				t.Errorf("Data.Reordered %d, Reordered %d; the receiver's RFC 4737 count %d", c.Data.Reordered, c.Reordered, want)
			}
			if tc.wantSome != (want > 0) {
				t.Errorf("%d reordered, want some: %v", want, tc.wantSome)
			}
			if tc.wantDelay != (c.Delayed == c.Packets-c.Dropped-c.QueueDropped) {
				t.Errorf("Delayed %d of %d", c.Delayed, c.Packets)
			}
			var sum uint64
			for _, d := range c.ByFlow {
				sum += d.Reordered
			}
			if sum != want {
				t.Errorf("ByFlow reordered sum %d, want %d", sum, want)
			}
		})
	}
}

func TestLinkRateQueue(t *testing.T) {
	rec := &recorder{}
	l := NewLink(Impair{RateBps: 8e6, Queue: 10}, 1, classifyFake, rec.out)
	base := l.epoch
	for i := range 100 {
		l.Input(dataPacket(t, 0, uint64(i), 1000), base)
	}
	for {
		next, ok := l.releaseDue(rec.now)
		if !ok {
			break
		}
		rec.now = next
	}
	c := l.Counts()
	checkIdentity(t, c)
	// One packet in serialization plus Queue waiting: 11 pass, 1 ms apart (8000 bits at 8 Mbit/s).
	if c.Passed != 11 || c.QueueDropped != 89 || c.Data.QueueDropped != 89 || c.Delayed != 11 {
		t.Fatalf("counts %+v; want 11 passed, 89 queue-dropped", c)
	}
	for i, at := range rec.at {
		if _, s := packetSeq(rec.pkts[i]); s != uint64(i) || at != int64(i+1)*int64(time.Millisecond) {
			t.Errorf("packet %d: seq %d at %v, want seq %d at %v", i, s, time.Duration(at), i, time.Duration(i+1)*time.Millisecond)
		}
	}
	// At 5.5 ms, 5 packets have left the queue: 5 more fit, the 6th is dropped.
	rec2 := &recorder{}
	l2 := NewLink(Impair{RateBps: 8e6, Queue: 10}, 1, classifyFake, rec2.out)
	for i := range 11 {
		l2.Input(dataPacket(t, 0, uint64(i), 1000), l2.epoch)
	}
	for i := range 6 {
		l2.Input(dataPacket(t, 0, uint64(11+i), 1000), l2.epoch.Add(5500*time.Microsecond))
	}
	if c := l2.Counts(); c.QueueDropped != 1 {
		t.Errorf("queue-dropped %d after 5.5 ms, want 1", c.QueueDropped)
	}
}

func TestLinkGilbertElliott(t *testing.T) {
	const n = 200000
	tests := []struct {
		loss, burst   float64
		wantMeanBurst float64
	}{
		{0.05, 4, 4},
		{0.02, 3, 3},
		{0.10, 10, 10},
		{0.05, 0, 1 / (1 - 0.05)}, // independent: geometric bursts
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("loss=%v/burst=%v", tc.loss, tc.burst), func(t *testing.T) {
			lost := make([]bool, n)
			got := 0
			pkt := dataPacket(t, 0, 0, 60)
			l := NewLink(Impair{Loss: tc.loss, Burst: tc.burst, Duplicate: 0.01}, 42, nil, func(p []byte) error {
				got++
				return nil
			})
			for i := range n {
				before := got
				l.Input(pkt, time.Time{})
				lost[i] = got == before
			}
			c := l.Counts()
			checkIdentity(t, c)
			var bursts, lostN int
			for i, x := range lost {
				if x {
					lostN++
					if i == 0 || !lost[i-1] {
						bursts++
					}
				}
			}
			rate := float64(lostN) / n
			mean := float64(lostN) / float64(bursts)
			t.Logf("loss %.4f (want %v), mean burst %.3f (want %.3f), duplicated %d", rate, tc.loss, mean, tc.wantMeanBurst, c.Duplicated)
			if math.Abs(rate-tc.loss) > 0.1*tc.loss || uint64(lostN) != c.Dropped {
				t.Errorf("loss rate %.4f (%d dropped, Dropped %d), want %v ±10%%", rate, lostN, c.Dropped, tc.loss)
			}
			if math.Abs(mean-tc.wantMeanBurst) > 0.1*tc.wantMeanBurst {
				t.Errorf("mean burst %.3f, want %.3f ±10%%", mean, tc.wantMeanBurst)
			}
			// Duplicate keeps its long-run rate beside the chain.
			if d := float64(c.Duplicated) / n; math.Abs(d-0.01) > 0.001 {
				t.Errorf("duplicated %.4f of packets, want 0.01 ±10%%", d)
			}
		})
	}
}

func TestLinkDelayJitter(t *testing.T) {
	const delay, jitter = 10 * time.Millisecond, 5 * time.Millisecond
	tests := []struct {
		name       string
		gap        time.Duration
		minD, maxD time.Duration // the range the delays must span, to within 1 ms
	}{
		// Gaps beyond 2·Jitter: each packet's own delay.
		{"sparse", 12 * time.Millisecond, delay - jitter, delay + jitter},
		// Gaps within the jitter: a packet drawn early waits for the one before it, so
		// delays gather towards the top of the range and the order holds.
		{"dense", 200 * time.Microsecond, delay, delay + jitter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			l := NewLink(Impair{Delay: delay, Jitter: jitter}, 9, classifyFake, rec.out)
			drive(t, l, rec, 3000, 1, 100, tc.gap)
			c := l.Counts()
			checkIdentity(t, c)
			if len(rec.pkts) != 3000 || c.Delayed != 3000 || c.Queued != 0 {
				t.Fatalf("out got %d, counts %+v; want 3000 passed, all delayed", len(rec.pkts), c)
			}
			var minD, maxD time.Duration = time.Hour, 0
			for i, p := range rec.pkts {
				_, s := packetSeq(p)
				if s != uint64(i) {
					t.Fatalf("packet %d has seq %d: jitter reordered", i, s)
				}
				d := time.Duration(rec.at[i] - int64(i)*int64(tc.gap))
				if d < delay-jitter || d > delay+jitter {
					t.Fatalf("packet %d delayed %v, outside %v±%v", i, d, delay, jitter)
				}
				minD, maxD = min(minD, d), max(maxD, d)
			}
			t.Logf("delays %v..%v", minD, maxD)
			if minD > tc.minD+time.Millisecond || maxD < tc.maxD-time.Millisecond {
				t.Errorf("delays %v..%v, want them to span about %v..%v", minD, maxD, tc.minD, tc.maxD)
			}
		})
	}
}

func TestLinkMTU(t *testing.T) {
	rec := &recorder{}
	l := NewLink(Impair{MTU: 1000}, 1, classifyFake, rec.out)
	l.Input(dataPacket(t, 1, 0, 1000), time.Now())
	l.Input(dataPacket(t, 1, 1, 1001), time.Now())
	l2 := NewLink(Impair{Delay: time.Millisecond}, 1, classifyFake, rec.out)
	l2.Input(dataPacket(t, 1, 2, 1501), time.Now())
	c, c2 := l.Counts(), l2.Counts()
	checkIdentity(t, c)
	checkIdentity(t, c2)
	if c.Passed != 1 || c.TooBig != 1 || c.Data.TooBig != 1 || c2.TooBig != 1 || len(rec.pkts) != 1 {
		t.Errorf("counts %+v, %+v; want one passed, one too big each", c, c2)
	}
}

func TestLinkOutErrors(t *testing.T) {
	for _, im := range []Impair{{Duplicate: 0.2}, {Duplicate: 0.2, Corrupt: 0.2, Reorder: 0.1}, {Duplicate: 0.2, Delay: time.Millisecond}} {
		t.Run(im.String(), func(t *testing.T) {
			rec := &recorder{err: func(n int) error {
				if n%3 == 0 {
					return errors.New("write tun: no buffer space")
				}
				return nil
			}}
			l := NewLink(im, 5, classifyFake, rec.out)
			drive(t, l, rec, 3000, 2, 100, 100*time.Microsecond)
			c := l.Counts()
			checkIdentity(t, c)
			if c.OutErrors != uint64(len(rec.pkts)+2)/3 || c.Data.OutErrors != c.OutErrors {
				t.Errorf("OutErrors %d, want %d (every third of %d calls)", c.OutErrors, (len(rec.pkts)+2)/3, len(rec.pkts))
			}
		})
	}
}

// TestLinkRunDelay checks that Run releases delayed packets with the real clock,
// while the netpoller is in use (as it is with TUN devices open): no packet before its
// delay (exact: the release time is the arrival plus the delay), and the median not
// absurdly later (a bound a loaded 2-core machine holds; the measured lateness is
// logged, and BenchmarkLinkRunDelay reports it).
func TestLinkRunDelay(t *testing.T) {
	const delay, n = 20 * time.Millisecond, 50
	// maxMedian: a median this late is a broken release (a lost wake-up, a timer in
	// the wrong unit), not a loaded machine; on an idle one the median is within
	// 1 ms of the delay (BenchmarkLinkRunDelay).
	const maxMedian = delay + 200*time.Millisecond
	lat := runDelayed(t, delay, n)
	slices.Sort(lat)
	med := lat[len(lat)/2]
	t.Logf("release after %v delay: min %v, median %v (%v late), max %v", delay, lat[0], med, med-delay, lat[len(lat)-1])
	if lat[0] < delay {
		t.Errorf("a packet released after %v, before its delay %v", lat[0], delay)
	}
	if med > maxMedian {
		t.Errorf("median release after %v, want %v..%v", med, delay, maxMedian)
	}
}

// runDelayed runs n packets through a running link delaying each by delay, in bursts
// of 5 (each burst waited for), and returns each packet's time from Input to out.
func runDelayed(tb testing.TB, delay time.Duration, n int) []time.Duration {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() { defer close(readDone); pc.ReadFrom(make([]byte, 1)) }() // a goroutine parked in the netpoller
	defer func() { pc.Close(); <-readDone }()

	sent := make([]time.Time, n)
	got := make(chan time.Duration, n)
	l := NewLink(Impair{Delay: delay}, 1, classifyFake, func(p []byte) error {
		_, s := packetSeq(p)
		got <- time.Since(sent[s])
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- l.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = dataPacket(tb, 0, uint64(i), 100)
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		sent[i] = time.Now()
		l.Input(pkts[i], sent[i])
		if i%5 == 4 || i == n-1 { // bursts of 5, then wait for them
			for len(lat) <= i {
				select {
				case d := <-got:
					lat = append(lat, d)
				case <-time.After(10 * time.Second):
					tb.Fatalf("packet not released 10 s after Input (delay %v)", delay)
				}
			}
		}
	}
	return lat
}

func TestLinkRunFlush(t *testing.T) {
	rec := &recorder{}
	l := NewLink(Impair{Delay: time.Minute, Reorder: 0.5}, 1, classifyFake, rec.out)
	for i := range 10 {
		l.Input(dataPacket(t, 2, uint64(i), 100), time.Now())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run: %v, want %v", err, context.DeadlineExceeded)
	}
	l.Input(dataPacket(t, 2, 10, 100), time.Now())
	c := l.Counts()
	checkIdentity(t, c)
	if c.Flushed != 11 || c.Data.Flushed != 11 || c.ByFlow[2].Flushed != 11 || len(rec.pkts) != 0 {
		t.Errorf("counts %+v; want 11 flushed, none passed", c)
	}
}

// TestLinkRunConcurrent runs Input, Run and Counts at once (for -race) on a link
// that uses every path, and checks the books balance at the end.
func TestLinkRunConcurrent(t *testing.T) {
	for _, im := range []Impair{
		{Loss: 0.05, Corrupt: 0.02, Duplicate: 0.03, Reorder: 0.05, Delay: 2 * time.Millisecond, Jitter: time.Millisecond, RateBps: 50e6, Queue: 20},
		{Reorder: 0.1, Duplicate: 0.05, ReorderBy: 200 * time.Microsecond}, // mixed: Input and Run both call out
	} {
		t.Run(im.String(), func(t *testing.T) {
			var mu sync.Mutex
			var got [][]byte
			inOut := false
			l := NewLink(im, 11, classifyFake, func(p []byte) error {
				mu.Lock()
				defer mu.Unlock()
				if inOut {
					t.Error("out called concurrently")
				}
				inOut = true
				got = append(got, bytes.Clone(p))
				inOut = false
				return nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			stop := sync.OnceFunc(func() { cancel(); wg.Wait() })
			defer stop() // also when waitFor fails the test
			wg.Go(func() { l.Run(ctx) })
			wg.Go(func() {
				for ctx.Err() == nil {
					checkIdentity(t, l.Counts())
					time.Sleep(time.Millisecond) // a pace, not a wait for anything
				}
			})
			pkts := make([][]byte, 3000)
			for i := range pkts {
				pkts[i] = dataPacket(t, uint32(i%2), uint64(i/2), 200)
			}
			for i, p := range pkts {
				l.Input(p, time.Now())
				if i%100 == 99 {
					time.Sleep(200 * time.Microsecond) // a pace (Run releases while Input goes on), not a wait
				}
			}
			waitfor.True(t, 10*time.Second, "Run released every queued packet", func() bool { return l.Counts().Queued == 0 })
			stop()
			c := l.Counts()
			checkIdentity(t, c)
			if c.Flushed != 0 || uint64(len(got)) != c.Passed+c.Corrupted {
				t.Errorf("counts %+v, out got %d; want all released", c, len(got))
			}
			mu.Lock()
			defer mu.Unlock()
			intact := slices.DeleteFunc(got, func(p []byte) bool { _, ok := checksumsOK(t, p); return !ok })
			if want := rfc4737(intact); c.Data.Reordered != want {
				t.Errorf("Data.Reordered %d, receiver's RFC 4737 count %d", c.Data.Reordered, want)
			}
		})
	}
}

func TestLinkAllocs(t *testing.T) {
	pkt := dataPacket(t, 1, 1, 1400)
	nop := func([]byte) error { return nil }
	t.Run("fast path", func(t *testing.T) {
		l := NewLink(Impair{}, 1, classifyFake, nop)
		if a := testing.AllocsPerRun(1000, func() { l.Input(pkt, time.Time{}) }); a != 0 {
			t.Errorf("%v allocations per packet, want 0", a)
		}
	})
	t.Run("fast path with fates", func(t *testing.T) {
		l := NewLink(Impair{Loss: 0.1, Corrupt: 0.1, Duplicate: 0.1}, 1, classifyFake, nop)
		if a := testing.AllocsPerRun(1000, func() { l.Input(pkt, time.Time{}) }); a != 0 {
			t.Errorf("%v allocations per packet, want 0", a)
		}
	})
	t.Run("queued", func(t *testing.T) {
		l := NewLink(Impair{Delay: time.Millisecond, Reorder: 0.1, Duplicate: 0.1, Corrupt: 0.1, RateBps: 1e9}, 1, classifyFake, nop)
		now := l.epoch
		step := func() {
			now = now.Add(10 * time.Microsecond)
			l.Input(pkt, now)
			l.releaseDue(int64(now.Sub(l.epoch)))
		}
		for range 2000 { // warm up: the free list, the heap, the holds map
			step()
		}
		if a := testing.AllocsPerRun(1000, step); a != 0 {
			t.Errorf("%v allocations per packet, want 0", a)
		}
	})
}

func BenchmarkLinkFastPath(b *testing.B) {
	pkt := dataPacket(b, 1, 1, 1400)
	l := NewLink(Impair{}, 1, classifyFake, func([]byte) error { return nil })
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		l.Input(pkt, time.Time{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkLinkDelayed runs Input against a running Run with a 1 ms delay, and ends
// when every packet has been released.
func BenchmarkLinkDelayed(b *testing.B) {
	pkt := dataPacket(b, 1, 1, 1400)
	var released sync.WaitGroup
	l := NewLink(Impair{Delay: time.Millisecond}, 1, classifyFake, func([]byte) error { released.Done(); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		released.Add(1)
		l.Input(pkt, time.Now())
	}
	released.Wait() // throughput counts until the last packet is out
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pkts/s")
	cancel()
	<-done
}

// BenchmarkLinkRunDelay reports how late Run releases packets delayed 20 ms with the
// real clock (TestLinkRunDelay checks only that none is early): the median and the
// largest lateness over every packet of the run.
func BenchmarkLinkRunDelay(b *testing.B) {
	const delay = 20 * time.Millisecond
	var late []time.Duration
	for b.Loop() {
		for _, d := range runDelayed(b, delay, 5) {
			late = append(late, d-delay)
		}
	}
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)/2].Nanoseconds()), "ns-late-median")
	b.ReportMetric(float64(late[len(late)-1].Nanoseconds()), "ns-late-max")
}

// TestInputWhole: a super-packet crosses whole only where nothing could happen to
// its packets but a pass, and counts as its packets would one by one.
func TestInputWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		im   Impair
		want bool
	}{
		{"clean", Impair{}, true},
		{"loss", Impair{Loss: 0.01}, false},
		{"delay", Impair{Delay: time.Millisecond}, false},
		{"reorder", Impair{Reorder: 0.01}, false},
		{"rate", Impair{RateBps: 1e9}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			l := NewLink(tc.im, 1, nil, func([]byte) error { return nil })
			got := l.inputWhole(45, 45*52+65000, 1500, nil, 0, func() error { calls++; return nil })
			if got != tc.want {
				t.Fatalf("inputWhole = %v, want %v", got, tc.want)
			}
			c := l.Counts()
			if !got {
				if calls != 0 || c.Packets != 0 {
					t.Errorf("declined, yet out called %d times and %d packets counted", calls, c.Packets)
				}
				return
			}
			if calls != 1 || c.Packets != 45 || c.Passed != 45 || c.Queued != 0 || c.Bytes != 45*52+65000 {
				t.Errorf("out called %d times, counts %+v; want 1 call, 45 packets passed, none queued", calls, c)
			}
		})
	}
	l := NewLink(Impair{MTU: 1280}, 1, nil, func([]byte) error { return nil })
	if l.inputWhole(2, 3000, 1500, nil, 0, func() error { return nil }) {
		t.Error("inputWhole took packets longer than the MTU")
	}
}

// TestInputWholeClassifies: a UDP super-packet crosses whole on a clean link with a
// classifier, its data packets and their flows counted where they lie, as Input
// would count them one by one: 5 datagrams of 100 bytes (the last 40), 3 of flow 7,
// 1 of flow 9, 1 not data. A super-packet of more flows than flowsPerSuper is left
// to the one-by-one path, counting nothing.
func TestInputWholeClassifies(t *testing.T) {
	const size = 100
	udp := make([]byte, 4*size+40)
	for i, flow := range []uint32{7, 7, 0, 9, 7} {
		seg := udp[i*size:]
		if flow != 0 {
			seg[0] = fakeData
			binary.BigEndian.PutUint32(seg[1:], flow)
		}
	}
	calls := 0
	l := NewLink(Impair{}, 1, classifyFake, func([]byte) error { return nil })
	if !l.inputWhole(5, 5*28+len(udp), 128, udp, size, func() error { calls++; return nil }) {
		t.Fatal("inputWhole declined a UDP super-packet on a clean link")
	}
	c := l.Counts()
	if calls != 1 || c.Packets != 5 || c.Passed != 5 || c.Queued != 0 {
		t.Errorf("out called %d times, counts %+v; want 1 call, 5 packets passed", calls, c)
	}
	if d := c.Data; d.Packets != 4 || d.Passed != 4 || d.Queued != 0 {
		t.Errorf("data %+v, want 4 packets, 4 passed, none queued", d)
	}
	if f := c.ByFlow[7]; f.Packets != 3 || f.Passed != 3 || f.Queued != 0 {
		t.Errorf("flow 7 %+v, want 3 passed", f)
	}
	if f := c.ByFlow[9]; f.Packets != 1 || f.Passed != 1 {
		t.Errorf("flow 9 %+v, want 1 passed", f)
	}

	many := make([]byte, (flowsPerSuper+1)*size)
	for i := range flowsPerSuper + 1 {
		many[i*size] = fakeData
		binary.BigEndian.PutUint32(many[i*size+1:], uint32(i+1))
	}
	l = NewLink(Impair{}, 1, classifyFake, func([]byte) error { return nil })
	if l.inputWhole(flowsPerSuper+1, len(many)+(flowsPerSuper+1)*28, 128, many, size, func() error { return nil }) {
		t.Error("inputWhole took a super-packet of more flows than flowsPerSuper")
	}
	if c := l.Counts(); c.Packets != 0 || c.Data.Packets != 0 {
		t.Errorf("declined, yet counted %+v", c)
	}
}
