package metrics

import "strconv"

// SeqWindow is how far below the highest sequence number seen a SeqTracker still
// tells a new arrival from a duplicate: exactly, for every seq with
// highest − SeqWindow ≤ seq ≤ highest. Older arrivals are ArrivalStale.
//
// At 10⁶ messages/s the window is 16 s of traffic, far beyond any reordering a real
// path or the lab link produces.
const SeqWindow = 1 << 24

const (
	seqChunkShift = 16                      // a chunk holds 1<<16 sequence numbers: 8 KiB of bits
	seqChunkWords = 1 << seqChunkShift / 64 // uint64 words per chunk
	seqRingLen    = 512                     // a power of 2 ≥ the 257 chunks the window can span
	seqRingMask   = seqRingLen - 1

	// The window spans at most SeqWindow>>seqChunkShift + 1 chunks; this constant
	// fails to compile if the ring is too small to give each its own slot.
	_ = uint(seqRingLen - (SeqWindow>>seqChunkShift + 1))
)

// seqChunk is the bitmap of 1<<seqChunkShift consecutive sequence numbers: bit i of
// the chunk with index c is seq c<<seqChunkShift + i.
type seqChunk struct {
	index uint64 // seq >> seqChunkShift
	bits  [seqChunkWords]uint64
}

// SeqTracker does the sequence accounting of one flow: it counts unique, duplicate,
// reordered and stale arrivals, from which loss follows (SeqCounts.Lost). Its zero
// value is ready to use. It is not safe for concurrent use: every arrival of a flow
// must pass through the flow's one tracker, in arrival order.
//
// Definitions (DESIGN.md; RFC 4737 §3 for "reordered"):
//
//   - unique: a sequence number seen for the first time.
//   - duplicate: a sequence number seen before.
//   - reordered: a unique sequence number below the highest seen before it
//     (RFC 4737's reordered singleton: s < NextExp, where NextExp = highest + 1).
//   - reorder extent: for a reordered arrival, highest − seq, counted in sequence
//     numbers: how far back a resequencing buffer would have to reach for it.
//     RFC 4737 §4.2's extent e counts arrival positions instead: the late packet's
//     position minus that of the first earlier arrival with a higher sequence number.
//     Per packet the two differ both ways: loss makes ours larger (1, 2, 4, 6, 3 with
//     5 lost: ours 3, e = 2), and other late packets in between make e larger
//     (5, 1, 2, 3, 4: for 4 ours is 1, e = 4). MaxReorderExtent is the maximum of ours.
//   - stale: more than SeqWindow below the highest seen; too old to tell new from
//     duplicate. Counted, and not counted as unique: loss may be overstated by at
//     most Stale, and a nonzero Stale deserves a warning in the report.
//
// Sequences may start anywhere and may skip; they are uint64 and never wrap in
// practice (PITFALLS.md #6): a seq near 1<<64 is handled without overflow.
//
// Memory grows with the highest sequence number in 8 KiB chunks, up to 257 chunks
// (≈ 2 MiB) plus one spare; chunks that fall below the window are released, and the
// spare is reused, so Add does not allocate in steady state.
type SeqTracker struct {
	ring     []*seqChunk // nil until the first Add; ring[c&seqRingMask] holds chunk c, if present
	spare    *seqChunk   // a released chunk kept for reuse, or nil
	lowChunk uint64      // index of the chunk holding the window's lowest seq; all chunks below are released
	top      *seqChunk   // the chunk holding c.Highest, nil until the first Add; never released (the window holds Highest)
	c        SeqCounts
}

// Arrival classifies one arrival in SeqTracker.Add.
type Arrival uint8

// The arrival classes. ArrivalNew and ArrivalReordered are unique arrivals.
const (
	ArrivalNew       Arrival = iota + 1 // first sighting, above every seq seen before (in order, or after a gap)
	ArrivalDuplicate                    // seen before
	ArrivalReordered                    // first sighting, below the highest seen (RFC 4737)
	ArrivalStale                        // more than SeqWindow below the highest: cannot tell
)

// String returns the arrival class's lower-case name.
func (a Arrival) String() string {
	switch a {
	case ArrivalNew:
		return "new"
	case ArrivalDuplicate:
		return "duplicate"
	case ArrivalReordered:
		return "reordered"
	case ArrivalStale:
		return "stale"
	}
	return "arrival(" + strconv.Itoa(int(a)) + ")"
}

// SeqCounts are a SeqTracker's totals, in messages (extent in sequence numbers).
// Received = Unique + Duplicates + Stale; Reordered counts arrivals that are also
// in Unique.
type SeqCounts struct {
	Received         uint64 // every arrival
	Unique           uint64 // first sightings, in order or not
	Duplicates       uint64 // sequence numbers seen before
	Reordered        uint64 // unique, below the highest seen (RFC 4737)
	MaxReorderExtent uint64 // max of highest − seq over reordered arrivals, in sequence numbers
	Stale            uint64 // more than SeqWindow below the highest: neither unique nor duplicate
	Highest          uint64 // highest seq seen; meaningful when Any
	Any              bool   // at least one arrival
}

// Lost returns how many of sent messages never arrived: sent − Unique, or 0 if more
// unique messages arrived than sent says (a caller's bug or a foreign flow; check
// before trusting it). Take it after the drain period (PITFALLS.md #7).
func (c SeqCounts) Lost(sent uint64) uint64 {
	if c.Unique >= sent {
		return 0
	}
	return sent - c.Unique
}

// Counts returns the totals so far.
func (t *SeqTracker) Counts() SeqCounts { return t.c }

// Add records the arrival of seq and says how it counted.
func (t *SeqTracker) Add(seq uint64) Arrival {
	// The common case, in order (or past a short gap): above the highest and in its
	// chunk, so the window's low edge stays where it is and the chunk is at hand.
	if c := &t.c; seq > c.Highest && seq^c.Highest < 1<<seqChunkShift && t.top != nil {
		c.Received++
		c.Unique++
		c.Highest = seq
		t.top.set(seq)
		return ArrivalNew
	}
	return t.add(seq)
}

// add is Add's general case.
func (t *SeqTracker) add(seq uint64) Arrival {
	c := &t.c
	c.Received++
	if !c.Any || seq > c.Highest {
		if !c.Any {
			c.Any = true
			if t.ring == nil {
				t.ring = make([]*seqChunk, seqRingLen)
			}
			t.lowChunk = windowLow(seq) >> seqChunkShift
		}
		c.Highest = seq
		t.slide()
		t.top = t.chunk(seq)
		t.top.set(seq)
		c.Unique++
		return ArrivalNew
	}
	if seq == c.Highest {
		c.Duplicates++
		return ArrivalDuplicate
	}
	d := c.Highest - seq // > 0
	if d > SeqWindow {
		c.Stale++
		return ArrivalStale
	}
	ch := t.chunk(seq)
	if ch.has(seq) {
		c.Duplicates++
		return ArrivalDuplicate
	}
	ch.set(seq)
	c.Unique++
	c.Reordered++
	c.MaxReorderExtent = max(c.MaxReorderExtent, d)
	return ArrivalReordered
}

// windowLow returns the lowest seq in the window below highest.
func windowLow(highest uint64) uint64 {
	if highest < SeqWindow {
		return 0
	}
	return highest - SeqWindow
}

// slide releases the chunks that the window, after Highest rose, no longer reaches.
func (t *SeqTracker) slide() {
	low := windowLow(t.c.Highest) >> seqChunkShift
	if low == t.lowChunk {
		return
	}
	// Present chunks lie in [t.lowChunk, t.lowChunk+256]: fewer than seqRingLen, so
	// slot c&seqRingMask for c in [t.lowChunk, low) holds chunk c or nothing.
	from, to := t.lowChunk, low
	if to-from > seqRingLen {
		to = from + seqRingLen
	}
	for c := from; c < to; c++ {
		slot := &t.ring[c&seqRingMask]
		if ch := *slot; ch != nil && ch.index < low {
			*slot = nil
			if t.spare == nil {
				t.spare = ch
			}
		}
	}
	t.lowChunk = low
}

// chunk returns the chunk holding seq, which must be in the window, creating it
// (empty) if needed.
func (t *SeqTracker) chunk(seq uint64) *seqChunk {
	c := seq >> seqChunkShift
	slot := &t.ring[c&seqRingMask]
	if ch := *slot; ch != nil && ch.index == c {
		return ch
	}
	// The slot is empty: in-window chunks never share a slot (see slide).
	ch := t.spare
	if ch != nil {
		t.spare = nil
		clear(ch.bits[:])
	} else {
		ch = new(seqChunk)
	}
	ch.index = c
	*slot = ch
	return ch
}

func (ch *seqChunk) has(seq uint64) bool {
	i := seq & (1<<seqChunkShift - 1)
	return ch.bits[i/64]&(1<<(i%64)) != 0
}

func (ch *seqChunk) set(seq uint64) {
	i := seq & (1<<seqChunkShift - 1)
	ch.bits[i/64] |= 1 << (i % 64)
}
