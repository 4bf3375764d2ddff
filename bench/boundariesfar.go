package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// boundaries against a far end. This side writes and the far end reads: the reader
// is where boundaries are seen (the sizes its reads return), so the far half runs
// the same reader as the loopback experiment (burst.readUntil, readRaw) and reports
// what it saw (BoundariesRx), and the far end sends nothing on the data path. The
// sender's side of the largest message (one byte more is refused: by the transport,
// and by the kernel with EMSGSIZE) is a property of this host's sockets, probed
// here without sending anything.
//
// Each part runs as a far cell of its own, with a fresh data path, as the loopback
// experiment opens a fresh pair for each: the burst; the largest messages; over a
// raw byte stream, the 1 MiB write. The far reader knows the payload: it is the
// run's seed (FarBoundaries.Seed), as FillPayload and putIndex make it.
//
// The largest message across hosts is the largest the path carries as one message
// (farSizer): over remote mode's UDP data path a datagram's payload is 65507 bytes
// less its 17-byte prefix (token and kind), 65490; over TCP the server's --max-size
// (1 MiB by default) where it is below the framing's 16 MiB. observed
// max_message_limit says which. This side refuses a message above it before
// sending, as the transport refuses one above its own.

// FarBoundaries is the part of a boundaries cell a far cell runs, and its payload.
type FarBoundaries struct {
	Part  string        // BoundariesBurst, BoundariesLargest or BoundariesRaw
	Seed  int64         // the payload's seed (FillPayload)
	Quiet time.Duration // the far reader stops when nothing arrived for this long
}

// The parts of a boundaries cell at a far end (FarBoundaries.Part).
const (
	BoundariesBurst   = "burst"   // 200 numbered 1000-byte writes; raw when the data path is a byte stream
	BoundariesLargest = "largest" // whole messages of FarSpec.Size bytes at most
	BoundariesRaw     = "raw"     // one 1 MiB write on the byte stream
)

// A farSizer is a Far that knows the largest message its far end takes as one
// message on a transport's data path, and why that is the limit.
type farSizer interface {
	MaxMessage(transport string) (size int, why string)
}

// maxMessagesRx bounds the messages a far reader of the largest messages records.
const maxMessagesRx = 8

// burstFarPause is how long this side waits after each chunk of a datagram burst, for
// the far reader, which it cannot see, to catch up (50 × 1000 B per 10 ms is 40
// Mbit/s: far below what a reader drains).
const burstFarPause = 10 * time.Millisecond

// boundariesFarTime bounds one far cell of boundaries.
func boundariesFarTime(e *runEnv) time.Duration { return 2*(e.timeout+e.drain) + 10*time.Second }

// runBoundariesFar is boundaries with the reader at the far end.
func runBoundariesFar(ctx context.Context, e *runEnv, nw Network, p report.Params) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	obs := map[string]any{}
	var o outcome
	add := func(r FarResult) {
		o.addFar(r)
		o.m.ServerSockets = max(o.m.ServerSockets, r.ServerSockets)
	}
	quiet := e.timeout + e.drain

	r, raw, refused, err := burstFar(ctx, e, nw, quiet)
	add(r)
	if err != nil {
		return outcome{}, fmt.Errorf("burst: %w", err)
	}
	rx := r.Boundaries
	if rx == nil || rx.Burst == nil {
		return outcome{}, errors.New("burst: the far end reported no reads")
	}
	if rx.Raw != raw {
		return outcome{}, fmt.Errorf("burst: this side wrote a raw stream: %v, the far end read one: %v", raw, rx.Raw)
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
	l, r, err := largestFar(ctx, e, nw, maxSize, quiet)
	add(r)
	if err != nil {
		return outcome{}, fmt.Errorf("largest message: %w", err)
	}
	if raw {
		r, err := rawMiBFar(ctx, e, nw, quiet)
		add(r)
		if err != nil {
			return outcome{}, fmt.Errorf("1 MiB raw: %w", err)
		}
		if r.Boundaries == nil {
			return outcome{}, errors.New("1 MiB raw: the far end reported no reads")
		}
		l.oneMiBReads, l.oneMiBRawInOrder = r.Boundaries.RawReads, r.Boundaries.RawInOrder
	}
	o.warns = append(o.warns, l.warns...)
	l.observe(obs, maxSize)
	report.Set(obs, report.ObsMaxMessageLimit, why)
	o.observed = obs
	return o, nil
}

// openBoundariesFar opens the far cell of one part of boundaries, of messages up to
// size bytes: its peer (e.far; this side's endpoint, and the far end's address).
func openBoundariesFar(ctx context.Context, e *runEnv, nw Network, part string, size int, quiet time.Duration) (*reqPeer, error) {
	rp, err := openReqPeer(ctx, e, nw, FarSpec{Experiment: report.ExpBoundaries, Transport: nw.Name(), Size: size, Streams: 1,
		Duration: boundariesFarTime(e), Boundaries: &FarBoundaries{Part: part, Seed: e.seed, Quiet: quiet}}, serverHalf{})
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
func writeDeadline(ctx context.Context, t Transport) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	return t.(rawStreamer).RawStream().SetWriteDeadline(dl)
}

// burstFar writes the burst to the far reader: at once on a byte stream, else in
// chunks of burstChunk with a pause after each. It returns what the far end
// reported, whether the burst went as a raw stream, and the writes this side's
// kernel refused.
func burstFar(ctx context.Context, e *runEnv, nw Network, quiet time.Duration) (r FarResult, raw bool, refused uint64, err error) {
	fo, err := openBoundariesFar(ctx, e, nw, BoundariesBurst, propertySize, quiet)
	if err != nil {
		return FarResult{}, false, 0, err
	}
	_, raw = fo.t.(rawStreamer)
	b := newBurst(e.seed)
	chunk := burstChunk
	if raw {
		chunk = burstWrites
		if err := writeDeadline(ctx, fo.t); err != nil {
			return fo.finish(ctx), raw, 0, err
		}
	}
	refused, err = b.writePaused(ctx, burstWriter(fo.t, raw), chunk)
	r = fo.finish(ctx) // the far reader reads what is left after the writer is done
	return r, raw, refused, err
}

// writePaused writes the burst with write, chunk writes at a time, pausing
// burstFarPause after each chunk but the last. It returns the writes the kernel
// refused, and stops at any other error or when ctx ends.
func (b *burst) writePaused(ctx context.Context, write func([]byte) error, chunk int) (refused uint64, err error) {
	for first := 0; first < burstWrites; first += chunk {
		if first > 0 {
			select {
			case <-time.After(burstFarPause):
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

// largestFar sends the far reader the largest message, tries one byte more, and
// tries 1 MiB; the kernel's own limit is probed with a plain datagram socket. Which
// arrived whole is what the far end reports.
func largestFar(ctx context.Context, e *runEnv, nw Network, maxSize int, quiet time.Duration) (*largest, FarResult, error) {
	var l largest
	fo, err := openBoundariesFar(ctx, e, nw, BoundariesLargest, maxSize, quiet)
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
	if rd, ok := nw.(rawDatagramDialer); ok {
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
	r := fo.finish(ctx)
	if r.Boundaries == nil {
		return nil, r, errors.New("the far end reported no messages")
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

// rawMiBFar writes 1 MiB with one write call on a fresh raw stream; the far reader
// counts the reads it takes.
func rawMiBFar(ctx context.Context, e *runEnv, nw Network, quiet time.Duration) (FarResult, error) {
	fo, err := openBoundariesFar(ctx, e, nw, BoundariesRaw, propertySize, quiet)
	if err != nil {
		return FarResult{}, err
	}
	rs, ok := fo.t.(rawStreamer)
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

// ServeBoundaries is the server half of boundaries at the far end: the reader of
// the part spec.Boundaries names, on t, for the sender whose payload seed it gives.
// It sends nothing on t. It reads until what the part sends arrived, t ends, or
// nothing arrived for Quiet, then waits for peerDone (the client's end; nil when
// unknown) or ctx, and reports what it read in FarResult.Boundaries.
func ServeBoundaries(ctx context.Context, spec FarSpec, t Transport, peerDone <-chan struct{}) (FarResult, error) {
	fb := spec.Boundaries
	if fb == nil || fb.Quiet <= 0 || spec.Size < wire.HeaderLen {
		return FarResult{}, fmt.Errorf("bench: ServeBoundaries: want a part, a quiet time and size ≥ %d bytes, got %+v, size %d", wire.HeaderLen, fb, spec.Size)
	}
	r := FarResult{ServerSockets: 1}
	var rx BoundariesRx
	var err error
	switch fb.Part {
	case BoundariesBurst:
		b := newBurst(fb.Seed)
		_, b.raw = t.(rawStreamer)
		read, setDeadline := burstReader(t, b.raw)
		buf := make([]byte, readBytes)
		if b.raw {
			// As on one host, the reader of a byte stream gives the writer readDelay
			// before it reads on, from the burst's first bytes (one read): the writer's
			// start is not seen here, nor is its end, as what it wrote may still be on
			// the way when it is done.
			err = b.readUntil(ctx, fb.Quiet, read, setDeadline, buf, 1)
			select {
			case <-time.After(readDelay):
			case <-ctx.Done():
			}
		}
		if err == nil {
			err = b.readUntil(ctx, fb.Quiet, read, setDeadline, buf, len(b.want))
		}
		if d, ok := recvDrops([]Transport{t}); ok {
			b.dropsSocket = &d
		}
		rx = b.rx()
		r.Warnings = b.warns
	case BoundariesLargest:
		rx.Messages, err = readWhole(ctx, t, spec.Size, fb, peerDone)
	case BoundariesRaw:
		rs, ok := t.(rawStreamer)
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
	if err == nil && peerDone != nil {
		select { // the client's results come first: it is done sending
		case <-peerDone:
		case <-ctx.Done():
		}
	}
	return r, err
}

// readWhole reads messages of up to size bytes from t, and records each (at most
// maxMessagesRx): its size and whether it is the payload fb.Seed gives for that
// size. It returns when t ends, nothing arrived for fb.Quiet after peerDone, or ctx
// ends.
func readWhole(ctx context.Context, t Transport, size int, fb *FarBoundaries, peerDone <-chan struct{}) ([]MessageRx, error) {
	var msgs []MessageRx
	bufs, sizes := makeBufs(1, size), make([]int, 1)
	quietSince, done := time.Now(), false
	for ctx.Err() == nil && len(msgs) < maxMessagesRx {
		if !done {
			select {
			case <-peerDone:
				done, quietSince = true, time.Now()
			default:
			}
		}
		if done && time.Since(quietSince) > fb.Quiet {
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
		case err == nil || isTimeout(err):
		case isClosed(err):
			return msgs, nil
		default:
			return msgs, err
		}
	}
	return msgs, nil
}
