package metrics

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestSeqTrackerKnownAnswers(t *testing.T) {
	const maxU = math.MaxUint64
	cases := []struct {
		name string
		seqs []uint64
		sent uint64
		want SeqCounts
		lost uint64
	}{
		{
			name: "empty",
			sent: 5,
			want: SeqCounts{},
			lost: 5,
		},
		{
			name: "brief example: loss, duplicate, reorder",
			seqs: []uint64{1, 2, 4, 5, 5, 6, 9, 8, 10},
			sent: 10,
			want: SeqCounts{Received: 9, Unique: 8, Duplicates: 1, Reordered: 1, MaxReorderExtent: 1, Highest: 10, Any: true},
			lost: 2,
		},
		{
			name: "seeded link drops 3 and 7",
			seqs: []uint64{0, 1, 2, 4, 5, 6, 8, 9},
			sent: 10,
			want: SeqCounts{Received: 8, Unique: 8, Highest: 9, Any: true},
			lost: 2,
		},
		{
			name: "all duplicates",
			seqs: []uint64{7, 7, 7, 7},
			sent: 1,
			want: SeqCounts{Received: 4, Unique: 1, Duplicates: 3, Highest: 7, Any: true},
			lost: 0,
		},
		{
			name: "reverse order",
			seqs: []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1},
			sent: 10,
			want: SeqCounts{Received: 10, Unique: 10, Reordered: 9, MaxReorderExtent: 9, Highest: 10, Any: true},
			lost: 0,
		},
		{
			name: "late duplicate of a reordered seq",
			seqs: []uint64{1, 3, 2, 2, 3, 1},
			sent: 3,
			want: SeqCounts{Received: 6, Unique: 3, Duplicates: 3, Reordered: 1, MaxReorderExtent: 1, Highest: 3, Any: true},
			lost: 0,
		},
		{
			name: "RFC 4737 extent differs from ours with loss",
			seqs: []uint64{1, 2, 4, 6, 3}, // 5 lost; RFC 4737 §4.2 e = 2
			sent: 6,
			want: SeqCounts{Received: 5, Unique: 5, Reordered: 1, MaxReorderExtent: 3, Highest: 6, Any: true},
			lost: 1,
		},
		{
			name: "huge gap: seq 0 then 1<<40",
			seqs: []uint64{0, 1 << 40, 0, 1<<40 - 1, 1 << 40},
			sent: 1<<40 + 1,
			want: SeqCounts{Received: 5, Unique: 3, Duplicates: 1, Reordered: 1, MaxReorderExtent: 1, Stale: 1, Highest: 1 << 40, Any: true},
			lost: 1<<40 + 1 - 3,
		},
		{
			name: "window edge: exactly SeqWindow below is exact, one more is stale",
			seqs: []uint64{5, SeqWindow + 5, 5, 6, 4, SeqWindow + 6, 5, 6},
			sent: SeqWindow + 7,
			want: SeqCounts{Received: 8, Unique: 4, Duplicates: 2, Reordered: 1, MaxReorderExtent: SeqWindow - 1, Stale: 2, Highest: SeqWindow + 6, Any: true},
			lost: SeqWindow + 3,
		},
		{
			name: "near max uint64",
			seqs: []uint64{maxU - 2, maxU, maxU - 1, maxU, maxU - 2},
			sent: 3,
			want: SeqCounts{Received: 5, Unique: 3, Duplicates: 2, Reordered: 1, MaxReorderExtent: 1, Highest: maxU, Any: true},
			lost: 0,
		},
		{
			name: "starts at max uint64, then 0 is far below",
			seqs: []uint64{maxU, 0, maxU - SeqWindow},
			sent: 2,
			want: SeqCounts{Received: 3, Unique: 2, Reordered: 1, MaxReorderExtent: SeqWindow, Stale: 1, Highest: maxU, Any: true},
			lost: 0,
		},
		{
			name: "more unique than sent: loss floors at 0",
			seqs: []uint64{1, 2, 3},
			sent: 2,
			want: SeqCounts{Received: 3, Unique: 3, Highest: 3, Any: true},
			lost: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr SeqTracker
			for _, s := range tc.seqs {
				tr.Add(s)
			}
			got := tr.Counts()
			if got != tc.want {
				t.Errorf("seqs %v:\ngot  %+v\nwant %+v", tc.seqs, got, tc.want)
			}
			if lost := got.Lost(tc.sent); lost != tc.lost {
				t.Errorf("seqs %v: Lost(%d) = %d, want %d", tc.seqs, tc.sent, lost, tc.lost)
			}
			if got.Received != got.Unique+got.Duplicates+got.Stale {
				t.Errorf("Received %d != Unique %d + Duplicates %d + Stale %d", got.Received, got.Unique, got.Duplicates, got.Stale)
			}
		})
	}
}

func TestSeqTrackerArrivals(t *testing.T) {
	var tr SeqTracker
	steps := []struct {
		seq  uint64
		want Arrival
	}{
		{100, ArrivalNew}, {102, ArrivalNew}, {101, ArrivalReordered}, {101, ArrivalDuplicate},
		{102, ArrivalDuplicate}, {99, ArrivalReordered}, {100 + SeqWindow + 1, ArrivalNew},
		{100, ArrivalStale}, {101, ArrivalDuplicate},
	}
	for i, s := range steps {
		if got := tr.Add(s.seq); got != s.want {
			t.Fatalf("step %d: Add(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
	if got := Arrival(0).String(); got != "arrival(0)" {
		t.Errorf("Arrival(0).String() = %q", got)
	}
}

// liveChunks counts the bitmap chunks a tracker holds, spare included.
func liveChunks(tr *SeqTracker) int {
	n := 0
	for _, ch := range tr.ring {
		if ch != nil {
			n++
		}
	}
	if tr.spare != nil {
		n++
	}
	return n
}

// TestSeqTrackerMemoryBound runs three windows' worth of sequence numbers through a
// tracker, with a little reordering, and checks the bitmap stays within 258 chunks.
func TestSeqTrackerMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds 50 million sequence numbers")
	}
	var tr SeqTracker
	const n = 3 * SeqWindow
	peak := 0
	for s := uint64(1); s <= n; s++ {
		if s%1000 == 0 {
			tr.Add(s - 500) // seen before: a duplicate
		}
		tr.Add(s)
		if s%(1<<seqChunkShift) == 0 {
			peak = max(peak, liveChunks(&tr))
		}
	}
	if want := SeqWindow>>seqChunkShift + 2; peak > want {
		t.Errorf("peak %d chunks (%d KiB), want ≤ %d", peak, peak*8, want)
	}
	c := tr.Counts()
	if c.Unique != n || c.Duplicates != n/1000 || c.Reordered != 0 || c.Stale != 0 {
		t.Errorf("counts %+v: want %d unique, %d duplicates", c, uint64(n), uint64(n/1000))
	}
	// A seq far below after a long run is stale, not a fresh unique.
	if got := tr.Add(1); got != ArrivalStale {
		t.Errorf("Add(1) after %d = %v, want stale", uint64(n), got)
	}
}

func TestSeqTrackerAllocs(t *testing.T) {
	var tr SeqTracker
	// Fill the window once, so chunks are recycled from here on.
	s := uint64(1 << 50)
	for range SeqWindow + 2<<seqChunkShift {
		tr.Add(s)
		s++
	}
	allocs := testing.AllocsPerRun(1<<20, func() {
		tr.Add(s)
		if s%7 == 0 {
			tr.Add(s - 3) // duplicate
		}
		s++
	})
	if allocs != 0 {
		t.Fatalf("SeqTracker.Add: %v allocations per call in steady state, want 0", allocs)
	}
}

// seqModel is the obviously correct reference for SeqTracker: a set of every
// sequence number seen.
type seqModel struct {
	seen map[uint64]bool
	c    SeqCounts
}

func (m *seqModel) add(seq uint64) Arrival {
	m.c.Received++
	switch {
	case !m.c.Any || seq > m.c.Highest:
		m.c.Any, m.c.Highest = true, seq
		m.seen[seq] = true
		m.c.Unique++
		return ArrivalNew
	case m.c.Highest-seq > SeqWindow:
		m.c.Stale++
		return ArrivalStale
	case m.seen[seq]:
		m.c.Duplicates++
		return ArrivalDuplicate
	}
	m.seen[seq] = true
	m.c.Unique++
	m.c.Reordered++
	m.c.MaxReorderExtent = max(m.c.MaxReorderExtent, m.c.Highest-seq)
	return ArrivalReordered
}

// FuzzSeqTracker drives a SeqTracker and the map model with the same arrivals,
// decoded from the fuzz input two bytes per operation, and compares every result.
// The first 8 bytes pick the starting sequence number (so starts near 0, near 1<<64
// and anywhere between are covered).
func FuzzSeqTracker(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint64(nil, 1), []byte{0, 1, 0, 1, 2, 1, 0, 0, 1, 3, 3, 1, 2, 200})
	f.Add(binary.BigEndian.AppendUint64(nil, math.MaxUint64-300), []byte{1, 255, 1, 200, 2, 7, 4, 0, 0, 0})
	f.Add(binary.BigEndian.AppendUint64(nil, SeqWindow-3), []byte{3, 16, 2, 255, 5, 255, 3, 1, 2, 0})
	f.Fuzz(func(t *testing.T, start []byte, ops []byte) {
		var s0 uint64
		if len(start) >= 8 {
			s0 = binary.BigEndian.Uint64(start)
		}
		var tr SeqTracker
		m := seqModel{seen: map[uint64]bool{}}
		next := func(op, arg byte) uint64 {
			h := m.c.Highest
			if !m.c.Any {
				return s0
			}
			k := uint64(arg)
			switch op % 6 {
			case 0: // in order
				if h == math.MaxUint64 {
					return h
				}
				return h + 1
			case 1: // a gap (loss)
				if h > math.MaxUint64-k-1 {
					return math.MaxUint64
				}
				return h + k + 1
			case 2: // late: reordered or duplicate
				if k > h {
					return 0
				}
				return h - k
			case 3: // far ahead, across chunk and window boundaries
				d := k << 18
				if h > math.MaxUint64-d {
					return math.MaxUint64
				}
				return h + d
			case 4: // far behind, near the window's edge
				d := SeqWindow - 128 + k
				if d > h {
					return 0
				}
				return h - d
			default: // repeat a recent arrival
				if k > h {
					return h
				}
				return h - k%4
			}
		}
		if len(ops) > 8192 {
			ops = ops[:8192] // 4096 arrivals: long enough to cross chunks and windows, quick to minimize
		}
		for i := 0; i+1 < len(ops); i += 2 {
			seq := next(ops[i], ops[i+1])
			got, want := tr.Add(seq), m.add(seq)
			if got != want {
				t.Fatalf("op %d: Add(%d) = %v, model says %v (highest %d)", i/2, seq, got, want, m.c.Highest)
			}
			if tr.Counts() != m.c {
				t.Fatalf("op %d: after Add(%d):\ngot   %+v\nmodel %+v", i/2, seq, tr.Counts(), m.c)
			}
		}
		if n := liveChunks(&tr); n > SeqWindow>>seqChunkShift+2 {
			t.Fatalf("%d chunks live, want ≤ %d", n, SeqWindow>>seqChunkShift+2)
		}
	})
}

func BenchmarkSeqTrackerAdd(b *testing.B) {
	cases := []struct {
		name string
		seq  func(i uint64) uint64
	}{
		{"order=in", func(i uint64) uint64 { return i }},
		// Swap neighbours every 16th message: 1/16 arrive reordered.
		{"order=swap16", func(i uint64) uint64 {
			switch i % 16 {
			case 0:
				return i + 1
			case 1:
				return i - 1
			}
			return i
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var tr SeqTracker
			var i uint64
			b.ReportAllocs()
			for b.Loop() {
				tr.Add(tc.seq(i))
				i++
			}
			c := tr.Counts()
			b.ReportMetric(float64(c.Reordered)/float64(c.Received), "reordered/msg")
		})
	}
}
