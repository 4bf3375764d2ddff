package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpBoundaries,
		section: report.Section{Title: "Message boundaries (boundaries)", Layout: report.LayoutTable},
		help:    "unframed writes: TCP reads coalesce and split them; UDP reads return each datagram whole; the largest datagram (65507 bytes)",
		place:   40, run: runBoundaries,
		properties: []report.Rule{report.RuleBoundaries},
		far:        &FarHalf{OnePath: true, Serve: ServeBoundaries, Params: boundariesParamsOf, Parse: parseBoundaries}})
}

// The burst of the boundaries experiment.
const (
	burstWrites     = 200      // writes in the burst
	burstWriteBytes = 1000     // bytes per write
	burstChunk      = 50       // writes between pauses (burstPause) for a transport without a raw stream
	readBytes       = 64 << 10 // the reader's buffer, bytes
	oneMiB          = 1 << 20
	histogramMax    = 20 // most entries of the read-size histogram
)

// runBoundaries shows that TCP is a byte stream and UDP keeps message boundaries.
// Its client half writes and its server half (ServeBoundaries) reads: the reader is
// where boundaries are seen (the sizes its reads return), and it reports what it
// saw (BoundariesRx); the server half sends nothing on the data path. Each part runs
// with a server half of its own, on a fresh data path, through the cell's peer (in
// this process, or at the far end): the burst; the largest messages; over a raw
// byte stream, the 1 MiB write. The reader knows the payload: it is the run's seed
// (FarBoundaries.Seed), as FillPayload and putIndex make it.
//
// The burst: the writer makes 200 unframed writes of 1000 bytes, each numbered, as
// fast as it can; the reader reads with a 64 KiB buffer and records the size of
// every read. Over a raw byte stream (TCP, see rawStreamer) the writes are plain
// write calls, all at once, and the reader waits readDelay after the first bytes
// before it reads on, so reads return many writes at once and split them anywhere.
// Over any other transport (UDP) each write is one Send and each read one Recv of
// one message; the writer pauses burstPause after every 50 writes, so a default
// receive buffer never overflows.
//
// Then the largest message: Send of the largest message the path carries must
// arrive whole; one byte more must fail (UDP: the transport refuses it, and so does
// the kernel, with EMSGSIZE, when a plain socket tries: a property of this host's
// sockets, probed without sending anything); a framed Send of 1 MiB, and over a raw
// stream one write of 1 MiB, counting the reads it takes. The largest message is
// the transport's (nw.MaxMessage), or across hosts the far end's (farSizer): over
// remote mode's UDP data path a datagram's payload is 65507 bytes less its 17-byte
// prefix (token and kind), 65490; over TCP the server's --max-size (1 MiB by
// default) where it is below the framing's 16 MiB. observed max_message_limit says
// which. The client half refuses a message above it before sending, as the
// transport refuses one above its own.
//
// Metrics count the burst only: its writes are the messages sent, and a write is
// received when its bytes arrive intact at a write boundary of what was read.
func runBoundaries(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	obs := map[string]any{}
	var o outcome
	add := func(r FarResult) {
		o.addFar(r)
		o.m.ServerSockets = max(o.m.ServerSockets, r.ServerSockets)
	}
	quiet := e.timeout + e.drain

	r, raw, refused, err := burstPart(ctx, e, nw, quiet)
	add(r)
	if err != nil {
		return outcome{}, fmt.Errorf("burst: %w", err)
	}
	rx := r.Boundaries
	if rx == nil || rx.Burst == nil {
		return outcome{}, errors.New("burst: the server half reported no reads")
	}
	if rx.Raw != raw {
		return outcome{}, fmt.Errorf("burst: the client half wrote a raw stream: %v, the server half read one: %v", raw, rx.Raw)
	}
	burstObs(obs, rx)
	sockets, cpu := o.m.ServerSockets, o.m.ServerCPUSec
	o.m = *rx.Burst
	o.m.ServerSockets, o.m.ServerCPUSec = sockets, cpu
	o.m.DropsSender = refused
	if refused > 0 {
		o.warns = append(o.warns, fmt.Sprintf("%d writes refused by the sender's kernel", refused))
	}

	maxSize, why := nw.MaxMessage(), "the transport's limit"
	if fs, ok := e.far.(farSizer); ok {
		maxSize, why = fs.MaxMessage(nw.Name())
	}
	l, r, err := largestPart(ctx, e, nw, maxSize, quiet)
	add(r)
	if err != nil {
		return outcome{}, fmt.Errorf("largest message: %w", err)
	}
	if raw {
		r, err := rawMiBPart(ctx, e, nw, quiet)
		add(r)
		if err != nil {
			return outcome{}, fmt.Errorf("1 MiB raw: %w", err)
		}
		if r.Boundaries == nil {
			return outcome{}, errors.New("1 MiB raw: the server half reported no reads")
		}
		l.oneMiBReads, l.oneMiBRawInOrder = r.Boundaries.RawReads, r.Boundaries.RawInOrder
	}
	o.warns = append(o.warns, l.warns...)
	l.observe(obs, maxSize)
	report.Set(obs, report.ObsMaxMessageLimit, why)
	o.observed = obs
	return o, nil
}

// burstObs records what the reader of the burst saw, rx, in obs.
func burstObs(obs map[string]any, rx *BoundariesRx) {
	report.Set(obs, report.ObsRawStream, rx.Raw)
	report.Set(obs, report.ObsWrites, burstWrites)
	report.Set(obs, report.ObsWriteBytes, burstWriteBytes)
	report.Set(obs, report.ObsReads, rx.Reads)
	report.Set(obs, report.ObsReadSizes, rx.ReadSizes)
	report.Set(obs, report.ObsReadsEqualToWrites, rx.ReadsEqualWrites)
	report.Set(obs, report.ObsCoalescedReads, rx.Coalesced)
	report.Set(obs, report.ObsSplitReads, rx.Split)
	report.Set(obs, report.ObsLargestRead, rx.LargestRead)
	report.Set(obs, report.ObsBytesInOrder, rx.InOrder)
}

// observe records the largest-message probes in obs; maxSize is the largest
// message the path carries.
func (l *largest) observe(obs map[string]any, maxSize int) {
	report.Set(obs, report.ObsMaxMessageBytes, maxSize)
	report.Set(obs, report.ObsMaxMessageOk, l.maxOK)
	report.Set(obs, report.ObsMaxPlusOneError, errText(l.plusOneErr))
	report.Set(obs, report.ObsMaxPlusOneKernelError, errText(l.plusOneKernelErr))
	report.Set(obs, report.ObsMaxPlusOneEMSGSIZE, errors.Is(l.plusOneErr, syscall.EMSGSIZE) || errors.Is(l.plusOneKernelErr, syscall.EMSGSIZE))
	report.Set(obs, report.ObsOneMiBSendOk, l.oneMiBOK)
	report.Set(obs, report.ObsOneMiBSendError, errText(l.oneMiBErr))
	if l.oneMiBReads > 0 {
		report.Set(obs, report.ObsOneMiBReads, l.oneMiBReads)
		report.Set(obs, report.ObsOneMiBRawInOrder, l.oneMiBRawInOrder)
	}
}

// BoundariesRx is what the reader of the boundaries experiment, its server half, saw
// of one part (FarResult.Boundaries): across hosts as JSON, in the field names below.
// Each part fills the fields of its own.
type BoundariesRx struct {
	// The burst.
	Raw              bool            `json:"raw_stream,omitempty"`            // read as a raw byte stream
	Reads            int             `json:"reads,omitempty"`                 // read calls that returned bytes
	ReadSizes        map[string]int  `json:"read_sizes,omitempty"`            // reads by size in bytes (sizeHistogram)
	ReadsEqualWrites bool            `json:"reads_equal_to_writes,omitempty"` // every read one whole write
	Coalesced        int             `json:"coalesced_reads,omitempty"`       // reads of more than one write
	Split            int             `json:"split_reads,omitempty"`           // reads that cut a write
	LargestRead      int             `json:"largest_read,omitempty"`          // bytes
	InOrder          bool            `json:"bytes_in_order,omitempty"`        // every byte arrived, once, in order
	Burst            *report.Metrics `json:"burst,omitempty"`                 // the burst's counts (burst.metrics)

	// The largest messages: each message that arrived, in order.
	Messages []MessageRx `json:"messages,omitempty"`
	// The raw 1 MiB write: the reads it took, and whether its bytes came in order.
	RawReads   int  `json:"raw_reads,omitempty"`
	RawInOrder bool `json:"raw_in_order,omitempty"`
}

// MessageRx is one message the reader of the largest messages got.
type MessageRx struct {
	Size  int  `json:"size"`  // bytes
	Whole bool `json:"whole"` // the payload the sender's seed gives for that size, intact
}

// rx summarises what the reader of the burst saw.
func (b *burst) rx() BoundariesRx {
	m := b.metrics()
	rx := BoundariesRx{Raw: b.raw, Reads: len(b.sizes), ReadSizes: sizeHistogram(b.sizes, histogramMax),
		ReadsEqualWrites: b.readsEqualWrites(), LargestRead: b.largestRead(), InOrder: bytes.Equal(b.got, b.want), Burst: &m}
	rx.Coalesced, rx.Split = b.coalescedSplit()
	return rx
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// burst is what the reader of the burst saw.
type burst struct {
	raw   bool   // read and written as a raw byte stream
	want  []byte // every write, concatenated
	got   []byte // every read, concatenated
	sizes []int  // bytes per read, in order
	warns []string

	dropsSocket *uint64 // datagrams the reader's full buffer dropped; nil if unknown
}

// readDelay is how long the reader of a raw burst waits, after its first bytes, for
// its writer to finish before it reads on.
const readDelay = 20 * time.Millisecond

// newBurst returns the burst of payload seed, nothing read yet.
func newBurst(seed int64) *burst {
	b := &burst{want: make([]byte, burstWrites*burstWriteBytes)}
	wire.FillPayload(b.want, seed, 0)
	for i := 0; i < burstWrites; i++ {
		putIndex(b.want, i) // numbered: order is checkable
	}
	b.got = make([]byte, 0, len(b.want)+readBytes)
	return b
}

// burstWriter returns how the burst is written on t: plain writes on its byte
// stream when raw (t must be a rawStreamer), else one Send per write.
func burstWriter(t transport.Transport, raw bool) func(msg []byte) error {
	if raw {
		w := t.(transport.RawStreamer).RawStream()
		return func(msg []byte) error { _, err := w.Write(msg); return err }
	}
	out := make([][]byte, 1)
	return func(msg []byte) error {
		out[0] = msg
		_, err := t.Send(out)
		return err
	}
}

// burstReader returns how the burst is read on t: reads of its byte stream when raw
// (t must be a rawStreamer), else one Recv of one message per read.
func burstReader(t transport.Transport, raw bool) (read func(buf []byte) (int, error), setDeadline func(time.Time) error) {
	if raw {
		r := t.(transport.RawStreamer).RawStream()
		return r.Read, r.SetReadDeadline
	}
	bufs, sizes := make([][]byte, 1), make([]int, 1)
	read = func(buf []byte) (int, error) {
		bufs[0] = buf
		n, err := t.Recv(bufs, sizes)
		if n > 0 {
			return sizes[0], err
		}
		return 0, err
	}
	return read, t.SetReadDeadline
}

// write writes writes first..last-1 of the burst with write. refused counts the
// writes the sender's kernel refused (a datagram transport: they are lost); err is
// any other failure, which stops it.
func (b *burst) write(write func([]byte) error, first, last int) (refused int, err error) {
	for i := first; i < last; i++ {
		if err := write(b.want[i*burstWriteBytes : (i+1)*burstWriteBytes]); err != nil {
			if isDatagramRefusal(err) {
				refused++
				continue
			}
			return refused, fmt.Errorf("write %d: %w", i, err)
		}
	}
	return refused, nil
}

// readUntil reads into b.got until it holds want bytes, or nothing has arrived for
// quiet (a datagram may be lost), or ctx is done.
func (b *burst) readUntil(ctx context.Context, quiet time.Duration, read func([]byte) (int, error), setDeadline func(time.Time) error, buf []byte, want int) error {
	quietSince := time.Now()
	for len(b.got) < want && ctx.Err() == nil {
		if time.Since(quietSince) > quiet {
			return nil
		}
		if err := setDeadline(time.Now().Add(pollInterval)); err != nil {
			return err
		}
		n, err := read(buf)
		if n > 0 {
			b.sizes = append(b.sizes, n)
			b.got = append(b.got, buf[:n]...)
			quietSince = time.Now()
		}
		if err != nil && !transport.IsTimeout(err) {
			if transport.IsOversize(err) {
				b.warns = append(b.warns, fmt.Sprintf("a message larger than %d bytes: %v", len(buf), err))
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil // the writer closed: nothing more comes
			}
			return fmt.Errorf("read: %w", err)
		}
	}
	return ctx.Err()
}

// putIndex numbers write i of the burst: its first 4 bytes, big-endian.
func putIndex(stream []byte, i int) {
	binary.BigEndian.PutUint32(stream[i*burstWriteBytes:], uint32(i))
}

// metrics counts the burst: a write counts received when its bytes arrived intact
// at a write boundary of what was read (so a lost datagram costs only itself).
func (b *burst) metrics() report.Metrics {
	m := report.Metrics{SentMsgs: burstWrites, SentBytes: uint64(len(b.want))}
	seen := make([]bool, burstWrites)
	var high = -1
	for off := 0; off+burstWriteBytes <= len(b.got); off += burstWriteBytes {
		rec := b.got[off : off+burstWriteBytes]
		i := int(binary.BigEndian.Uint32(rec))
		if i >= burstWrites || !bytes.Equal(rec, b.want[i*burstWriteBytes:(i+1)*burstWriteBytes]) {
			m.CorruptMsgs++
			continue
		}
		m.RecvMsgs++
		if seen[i] {
			m.DupMsgs++
			continue
		}
		seen[i] = true
		if i < high {
			m.ReorderedMsgs++
			m.ReorderExtent = max(m.ReorderExtent, uint64(high-i))
		}
		high = max(high, i)
	}
	unique := m.RecvMsgs - m.DupMsgs
	m.RecvBytes = unique * burstWriteBytes
	m.LostMsgs = m.SentMsgs - unique
	m.DropsSocket = b.dropsSocket
	return m
}

// readsEqualWrites reports whether every read returned exactly one whole write (a
// lost datagram does not change it: loss is counted in the metrics).
func (b *burst) readsEqualWrites() bool {
	if len(b.sizes) == 0 {
		return false
	}
	for _, s := range b.sizes {
		if s != burstWriteBytes {
			return false
		}
	}
	return true
}

// coalescedSplit counts the reads that returned more than one write's bytes, and the
// reads that did not return whole writes: a size that is not a multiple of the write
// size, or an end in the middle of a write.
func (b *burst) coalescedSplit() (coalesced, split int) {
	end := 0
	for _, s := range b.sizes {
		end += s
		if s > burstWriteBytes {
			coalesced++
		}
		if s%burstWriteBytes != 0 || end%burstWriteBytes != 0 {
			split++
		}
	}
	return coalesced, split
}

func (b *burst) largestRead() int {
	l := 0
	for _, s := range b.sizes {
		l = max(l, s)
	}
	return l
}

// sizeHistogram counts sizes by value, keyed by the size in decimal. With more than
// limit distinct sizes, the limit−1 most common are kept and the rest counted under
// "other".
func sizeHistogram(sizes []int, limit int) map[string]int {
	counts := map[int]int{}
	for _, s := range sizes {
		counts[s]++
	}
	keys := make([]int, 0, len(counts))
	for s := range counts {
		keys = append(keys, s)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	h := map[string]int{}
	for i, s := range keys {
		if len(keys) > limit && i >= limit-1 {
			h["other"] += counts[s]
			continue
		}
		h[strconv.Itoa(s)] = counts[s]
	}
	return h
}

// largest is what the largest-message probes saw.
type largest struct {
	maxOK            bool  // a message of MaxMessage bytes arrived whole
	plusOneErr       error // Send of MaxMessage+1 bytes
	plusOneKernelErr error // the kernel's answer to a plain datagram of that size
	oneMiBOK         bool  // a 1 MiB message arrived whole
	oneMiBErr        error
	oneMiBReads      int  // raw reads one 1 MiB raw write took; 0 without a raw stream
	oneMiBRawInOrder bool // and its bytes arrived in order
	warns            []string
}

// readRaw reads r with a readBytes buffer, reading as it arrives, until it holds n
// bytes, r ends, nothing has arrived for quiet, or ctx is done. It returns the reads
// that returned bytes and what they returned.
func readRaw(ctx context.Context, r net.Conn, n int, quiet time.Duration) (reads int, got []byte, err error) {
	got = make([]byte, 0, n+readBytes)
	buf := make([]byte, readBytes)
	quietSince := time.Now()
	for len(got) < n && ctx.Err() == nil && time.Since(quietSince) < quiet {
		if err = r.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return reads, got, err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			reads++
			got = append(got, buf[:k]...)
			quietSince = time.Now()
		}
		if rerr != nil && !transport.IsTimeout(rerr) {
			if errors.Is(rerr, io.EOF) {
				return reads, got, nil
			}
			return reads, got, fmt.Errorf("read: %w", rerr)
		}
	}
	return reads, got, nil
}

// FarBoundaries is the part of a boundaries cell a server half runs, and its payload.
type FarBoundaries struct {
	Part  string        // BoundariesBurst, BoundariesLargest or BoundariesRaw
	Seed  int64         // the payload's seed (FillPayload)
	Quiet time.Duration // the reader stops when nothing arrived for this long
}

// The parts of a boundaries cell (FarBoundaries.Part).
const (
	BoundariesBurst   = "burst"   // 200 numbered 1000-byte writes; raw when the data path is a byte stream
	BoundariesLargest = "largest" // whole messages of FarSpec.Size bytes at most
	BoundariesRaw     = "raw"     // one 1 MiB write on the byte stream
)

// boundariesParams are the wire form of a boundaries cell's part (its far test's
// params).
type boundariesParams struct {
	Part    string `json:"part"`     // BoundariesBurst, BoundariesLargest or BoundariesRaw
	Seed    int64  `json:"seed"`     // the payload's seed
	QuietMS uint64 `json:"quiet_ms"` // the reader stops when nothing arrived for this long, ms
}

// maxQuiet bounds a boundaries reader's quiet time.
const maxQuiet = 30 * time.Second

// boundariesParamsOf is the wire form of spec's part (FarHalf.Params).
func boundariesParamsOf(spec FarSpec, _ *FarTest) (json.RawMessage, error) {
	fb := spec.Boundaries
	if fb == nil {
		return nil, fmt.Errorf("bench: a %s cell without its part", spec.Experiment)
	}
	return json.Marshal(boundariesParams{Part: fb.Part, Seed: fb.Seed, QuietMS: uint64(fb.Quiet.Milliseconds())})
}

// parseBoundaries checks a boundaries test's params and sets its part in spec
// (FarHalf.Parse): a known part (raw over a byte stream only), a quiet time of 1
// ms..maxQuiet.
func parseBoundaries(raw json.RawMessage, _ FarTest, spec *FarSpec) error {
	var bp boundariesParams
	if err := decodeStrict(raw, &bp); err != nil {
		return fmt.Errorf("params: %s wants {\"part\", \"seed\", \"quiet_ms\"}: %v", spec.Experiment, err)
	}
	switch bp.Part {
	case BoundariesBurst, BoundariesLargest:
	case BoundariesRaw:
		if !transport.CapsOf(spec.Transport).Connected {
			return fmt.Errorf("params.part: %s needs a byte stream (tcp), got %s", bp.Part, spec.Transport)
		}
	default:
		return fmt.Errorf("params.part: want %s, %s or %s, got %q", BoundariesBurst, BoundariesLargest, BoundariesRaw, bp.Part)
	}
	quiet, err := ParamMS("params.quiet_ms", bp.QuietMS, 1, uint64(maxQuiet.Milliseconds()))
	if err != nil {
		return err
	}
	spec.Boundaries = &FarBoundaries{Part: bp.Part, Seed: bp.Seed, Quiet: quiet}
	return nil
}

// A farSizer is a Far that knows the largest message its far end takes as one
// message on a transport's data path, and why that is the limit.
type farSizer interface {
	MaxMessage(transport string) (size int, why string)
}

// maxMessagesRx bounds the messages the reader of the largest messages records.
const maxMessagesRx = 8

// burstPause is how long the writer waits after each chunk of a datagram burst, for
// the reader, which it cannot see, to catch up (50 × 1000 B per 10 ms is 40
// Mbit/s: far below what a reader drains).
const burstPause = 10 * time.Millisecond

// boundariesPartTime bounds one part of boundaries.
func boundariesPartTime(e *runEnv) time.Duration { return 2*(e.timeout+e.drain) + 10*time.Second }

// openBoundaries starts the server half of one part of boundaries, of messages up
// to size bytes, at the cell's peer, and opens the client's endpoint to it.
func openBoundaries(ctx context.Context, e *runEnv, nw transport.Network, part string, size int, quiet time.Duration) (*reqPeer, error) {
	rp, err := openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpBoundaries, Transport: nw.Name(), Size: size, Streams: 1,
		Duration: boundariesPartTime(e), Boundaries: &FarBoundaries{Part: part, Seed: e.seed, Quiet: quiet}}, serverHalf{half: ServeBoundaries})
	if err != nil {
		return nil, err
	}
	if _, err := rp.remoteAddr(report.ExpBoundaries); err != nil {
		rp.finish(ctx)
		return nil, err
	}
	return rp, nil
}

// writeDeadline bounds the writes of a raw stream by ctx's deadline.
func writeDeadline(ctx context.Context, t transport.Transport) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	return t.(transport.RawStreamer).RawStream().SetWriteDeadline(dl)
}

// burstPart writes the burst to the reader: at once on a byte stream, else in
// chunks of burstChunk with a pause after each. It returns what the server half
// reported, whether the burst went as a raw stream, and the writes this side's
// kernel refused.
func burstPart(ctx context.Context, e *runEnv, nw transport.Network, quiet time.Duration) (r FarResult, raw bool, refused uint64, err error) {
	fo, err := openBoundaries(ctx, e, nw, BoundariesBurst, propertySize, quiet)
	if err != nil {
		return FarResult{}, false, 0, err
	}
	_, raw = fo.t.(transport.RawStreamer)
	b := newBurst(e.seed)
	chunk := burstChunk
	if raw {
		chunk = burstWrites
		if err := writeDeadline(ctx, fo.t); err != nil {
			return fo.finish(ctx), raw, 0, err
		}
	}
	refused, err = b.writePaused(ctx, burstWriter(fo.t, raw), chunk)
	r = fo.finish(ctx) // the reader reads what is left after the writer is done
	return r, raw, refused, err
}

// writePaused writes the burst with write, chunk writes at a time, pausing
// burstPause after each chunk but the last. It returns the writes the kernel
// refused, and stops at any other error or when ctx ends.
func (b *burst) writePaused(ctx context.Context, write func([]byte) error, chunk int) (refused uint64, err error) {
	for first := 0; first < burstWrites; first += chunk {
		if first > 0 {
			select {
			case <-time.After(burstPause):
			case <-ctx.Done():
				return refused, ctx.Err()
			}
		}
		n, err := b.write(write, first, min(first+chunk, burstWrites))
		refused += uint64(n)
		if err != nil {
			return refused, err
		}
	}
	return refused, nil
}

// errFarTooLarge: a message larger than the far end takes, refused before sending.
var errFarTooLarge = errors.New("larger than the far end takes")

// largestPart sends the reader the largest message, tries one byte more, and
// tries 1 MiB; the kernel's own limit is probed with a plain datagram socket. Which
// arrived whole is what the server half reports.
func largestPart(ctx context.Context, e *runEnv, nw transport.Network, maxSize int, quiet time.Duration) (*largest, FarResult, error) {
	var l largest
	fo, err := openBoundaries(ctx, e, nw, BoundariesLargest, maxSize, quiet)
	if err != nil {
		return nil, FarResult{}, err
	}
	// The transport refuses what is above its own limit; what is above the far
	// end's (where it is lower), this side refuses.
	own := nw.MaxMessage()
	if lm, ok := fo.t.(interface{ MaxMessage() int }); ok {
		own = lm.MaxMessage()
	}
	var sent []int // sizes of the messages sent, in order
	send := func(size int) (index int, err error) {
		if size > maxSize && size <= own {
			return -1, fmt.Errorf("a message of %d bytes: %w (%d bytes)", size, errFarTooLarge, maxSize)
		}
		msg := make([]byte, size)
		wire.FillPayload(msg, e.seed, uint32(size))
		if _, err := fo.t.Send([][]byte{msg}); err != nil {
			return -1, err
		}
		sent = append(sent, size)
		return len(sent) - 1, nil
	}
	iMax, maxErr := send(maxSize)
	var iPlus int
	iPlus, l.plusOneErr = send(maxSize + 1)
	if rd, ok := nw.(transport.RawDatagramDialer); ok {
		// A datagram above the kernel's limit never leaves this host.
		c, err := rd.DialRawDatagram(ctx, fo.remote.String())
		if err != nil {
			fo.finish(ctx)
			return nil, FarResult{}, err
		}
		_, l.plusOneKernelErr = c.Write(make([]byte, nw.MaxMessage()+1))
		c.Close()
	}
	iMiB, mibErr := send(oneMiB)
	fo.fc.SendersEnded([]uint64{uint64(len(sent))}) // the reader stops once they are in
	r := fo.finish(ctx)
	if r.Boundaries == nil {
		return nil, r, errors.New("the server half reported no messages")
	}
	got := r.Boundaries.Messages
	whole := func(i int) bool {
		return i >= 0 && i < len(got) && got[i].Size == sent[i] && got[i].Whole
	}
	l.maxOK, l.oneMiBOK, l.oneMiBErr = whole(iMax), whole(iMiB), mibErr
	switch {
	case maxErr != nil:
		l.warns = append(l.warns, fmt.Sprintf("send of the largest message (%d bytes): %v", maxSize, maxErr))
	case !l.maxOK:
		l.warns = append(l.warns, fmt.Sprintf("the largest message (%d bytes) was sent but did not arrive whole", maxSize))
	}
	if l.plusOneErr == nil {
		l.warns = append(l.warns, fmt.Sprintf("a message of %d bytes, one more than the largest, was accepted (arrived whole: %v)", maxSize+1, whole(iPlus)))
	}
	return &l, r, nil
}

// rawMiBPart writes 1 MiB with one write call on a fresh raw stream; the reader
// counts the reads it takes.
func rawMiBPart(ctx context.Context, e *runEnv, nw transport.Network, quiet time.Duration) (FarResult, error) {
	fo, err := openBoundaries(ctx, e, nw, BoundariesRaw, propertySize, quiet)
	if err != nil {
		return FarResult{}, err
	}
	rs, ok := fo.t.(transport.RawStreamer)
	if !ok {
		return fo.finish(ctx), fmt.Errorf("%s: no raw stream", nw.Name())
	}
	if err := writeDeadline(ctx, fo.t); err != nil {
		return fo.finish(ctx), err
	}
	msg := make([]byte, oneMiB)
	wire.FillPayload(msg, e.seed, oneMiB)
	_, werr := rs.RawStream().Write(msg)
	r := fo.finish(ctx)
	if werr != nil {
		return r, fmt.Errorf("write: %w", werr)
	}
	return r, nil
}

// ServeBoundaries is the server half of boundaries: the reader of the part
// spec.Boundaries names, on the one endpoint ts holds, for the sender whose payload
// seed it gives. It sends nothing on it. It reads until what the part sends arrived,
// the endpoint ends, or nothing arrived for Quiet, then waits for the client to be
// done (env.Done) or ctx, and reports what it read in FarResult.Boundaries.
func ServeBoundaries(ctx context.Context, env ServerEnv, spec FarSpec, ts []transport.Transport) (FarResult, error) {
	fb := spec.Boundaries
	if fb == nil || fb.Quiet <= 0 || spec.Size < wire.HeaderLen || len(ts) != 1 {
		return FarResult{}, fmt.Errorf("bench: ServeBoundaries: want a part, a quiet time, size ≥ %d bytes and one endpoint, got %+v, size %d, %d endpoints",
			wire.HeaderLen, fb, spec.Size, len(ts))
	}
	t := ts[0]
	r := FarResult{ServerSockets: 1}
	var rx BoundariesRx
	var err error
	switch fb.Part {
	case BoundariesBurst:
		b := newBurst(fb.Seed)
		_, b.raw = t.(transport.RawStreamer)
		read, setDeadline := burstReader(t, b.raw)
		buf := make([]byte, readBytes)
		if b.raw {
			// The reader of a byte stream gives the writer readDelay before it reads
			// on, from the burst's first bytes (one read): the writer's start is not
			// seen here, nor is its end, as what it wrote may still be on the way
			// when it is done.
			err = b.readUntil(ctx, fb.Quiet, read, setDeadline, buf, 1)
			select {
			case <-time.After(readDelay):
			case <-ctx.Done():
			}
		}
		if err == nil {
			err = b.readUntil(ctx, fb.Quiet, read, setDeadline, buf, len(b.want))
		}
		if d, ok := recvDrops([]transport.Transport{t}); ok { // a fresh socket: all its drops are the burst's
			b.dropsSocket = &d
		}
		rx = b.rx()
		r.Warnings = b.warns
	case BoundariesLargest:
		rx.Messages, err = readWhole(ctx, t, spec.Size, fb, env)
	case BoundariesRaw:
		rs, ok := t.(transport.RawStreamer)
		if !ok {
			return r, fmt.Errorf("bench: ServeBoundaries: part %s needs a byte stream, got %T", fb.Part, t)
		}
		var got []byte
		rx.RawReads, got, err = readRaw(ctx, rs.RawStream(), oneMiB, fb.Quiet)
		want := make([]byte, oneMiB)
		wire.FillPayload(want, fb.Seed, oneMiB)
		rx.RawInOrder = bytes.Equal(got, want)
	default:
		return r, fmt.Errorf("bench: ServeBoundaries: part %q, want %s, %s or %s", fb.Part, BoundariesBurst, BoundariesLargest, BoundariesRaw)
	}
	r.Boundaries = &rx
	if done := env.Done(); err == nil && done != nil {
		select { // the client's results come first: it is done sending
		case <-done:
		case <-ctx.Done():
		}
	}
	return r, err
}

// readWhole reads messages of up to size bytes from t, and records each (at most
// maxMessagesRx): its size and whether it is the payload fb.Seed gives for that
// size. It returns when t ends, ctx ends, or once the client is done (client.Done)
// when as many messages arrived as it sent (client.Sent) or nothing arrived for
// fb.Quiet.
func readWhole(ctx context.Context, t transport.Transport, size int, fb *FarBoundaries, client FarPeer) ([]MessageRx, error) {
	var msgs []MessageRx
	bufs, sizes := makeBufs(1, size), make([]int, 1)
	quietSince, done, sent := time.Now(), false, -1
	for ctx.Err() == nil && len(msgs) < maxMessagesRx {
		if !done {
			select {
			case <-client.Done():
				done, quietSince = true, time.Now()
				if n, err := client.Sent(); err == nil && len(n) == 1 {
					sent = int(n[0])
				}
			default:
			}
		}
		if done && ((sent >= 0 && len(msgs) >= sent) || time.Since(quietSince) > fb.Quiet) {
			break
		}
		if err := t.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return msgs, err
		}
		n, err := t.Recv(bufs, sizes)
		if n > 0 {
			msg := bufs[0][:sizes[0]]
			want := make([]byte, len(msg))
			wire.FillPayload(want, fb.Seed, uint32(len(msg)))
			msgs = append(msgs, MessageRx{Size: len(msg), Whole: bytes.Equal(msg, want)})
			quietSince = time.Now()
		}
		switch {
		case err == nil || transport.IsTimeout(err):
		case isClosed(err):
			return msgs, nil
		default:
			return msgs, err
		}
	}
	return msgs, nil
}
