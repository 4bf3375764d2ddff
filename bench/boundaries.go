package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpBoundaries,
		help:  "unframed writes: TCP reads coalesce and split them; UDP reads return each datagram whole; the largest datagram (65507 bytes)",
		place: 40, run: runBoundaries})
}

// rawStreamer is a transport with a byte stream under its messages (TCP): the
// boundaries experiment writes and reads it directly, without the framing.
type rawStreamer interface {
	// RawStream returns the connection's byte stream. Use it or the transport's
	// messages for a direction, never both.
	RawStream() net.Conn
}

// RawStream returns the TCP connection under the framing.
func (c tcpConn) RawStream() net.Conn { return c.NetConn() }

// rawDatagramDialer is a network that can open a plain kernel datagram socket, with
// none of the transport's own checks, so the experiment can see what the kernel
// itself says to an oversized datagram.
type rawDatagramDialer interface {
	DialRawDatagram(ctx context.Context, address string) (net.Conn, error)
}

// DialRawDatagram opens a plain connected UDP socket to address.
func (udpNetwork) DialRawDatagram(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", address)
	if err != nil {
		return nil, fmt.Errorf("udp: dial %s: %w", address, err)
	}
	return c, nil
}

var (
	_ rawStreamer       = tcpConn{}
	_ rawDatagramDialer = udpNetwork{}
)

// The burst of the boundaries experiment.
const (
	burstWrites     = 200      // writes in the burst
	burstWriteBytes = 1000     // bytes per write
	burstChunk      = 50       // writes between reads for a transport without a raw stream
	readBytes       = 64 << 10 // the reader's buffer, bytes
	oneMiB          = 1 << 20
	histogramMax    = 20 // most entries of the read-size histogram
)

// runBoundaries shows that TCP is a byte stream and UDP keeps message boundaries.
//
// The burst: the sender makes 200 unframed writes of 1000 bytes, each numbered, as
// fast as it can; the receiver reads with a 64 KiB buffer and records the size of
// every read. Over a raw byte stream (TCP, see rawStreamer) the writes are plain
// write calls and the reader starts once the writer is done (or after 20 ms, if the
// writer is held back by flow control), so reads return many writes at once and
// split them anywhere. Over any other transport (UDP) each write is one Send and
// each read one Recv of one message; the writer pauses every 50 writes until the
// reader has caught up, so a default receive buffer never overflows.
//
// Then the largest message: Send of nw.MaxMessage() bytes must arrive whole; one byte
// more must fail (UDP: the transport refuses it, and so does the kernel, with
// EMSGSIZE, when a plain socket tries); a framed Send of 1 MiB, and over a raw
// stream one write of 1 MiB, counting the reads it takes.
//
// Metrics count the burst only: its writes are the messages sent, and a write is
// received when its bytes arrive intact at a write boundary of what was read.
//
// In remote mode this side writes and the far end reads (boundariesfar.go).
func runBoundaries(ctx context.Context, e *runEnv, nw Network, p report.Params) (outcome, error) {
	if e.far != nil {
		return runBoundariesFar(ctx, e, nw, p)
	}
	var warns []string
	ctx, cancel := context.WithTimeout(ctx, e.cellLimit(p))
	defer cancel()
	obs := map[string]any{}

	b, err := runBurst(ctx, e, nw)
	if err != nil {
		return outcome{}, fmt.Errorf("burst: %w", err)
	}
	warns = append(warns, b.warns...)
	rx := b.rx()
	m := *rx.Burst
	burstObs(obs, &rx)

	l, err := runLargest(ctx, e, nw)
	if err != nil {
		return outcome{}, fmt.Errorf("largest message: %w", err)
	}
	warns = append(warns, l.warns...)
	l.observe(obs, nw.MaxMessage())
	return outcome{m: m, warns: warns, observed: obs}, nil
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

// BoundariesRx is what the reader of the boundaries experiment saw, whichever host
// it ran on; in remote mode the far end reports it (FarResult.Boundaries), as JSON in
// the field names below. Each far cell fills the fields of its part.
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

// pair is a client, the server end it was accepted as, and their listener.
type pair struct {
	client, server Transport
	addr           string // the listener's address
	closeAll       func() // closes all three; safe to call again
}

// openPair opens a listener at e.address, a client dialed to it and the server end of
// that client. All three close when ctx ends, or at closeAll.
func openPair(ctx context.Context, e *runEnv, nw Network) (*pair, error) {
	l, err := nw.Listen(ctx, e.address)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", nw.Name(), e.address, err)
	}
	pr := &pair{addr: l.Addr().String()}
	pr.client, err = nw.Dial(ctx, pr.addr)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("%s: dial %s: %w", nw.Name(), pr.addr, err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pr.server, err = l.Accept(actx)
	if err != nil {
		pr.client.Close()
		l.Close()
		return nil, fmt.Errorf("%s: accept on %s: %w", nw.Name(), pr.addr, err)
	}
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			pr.client.Close()
			pr.server.Close()
			l.Close()
		})
	}
	stopWatch := ctxwatch.OnDone(ctx, closeAll) // ctx's end unblocks every call on the pair
	pr.closeAll = func() { stopWatch(); closeAll() }
	return pr, nil
}

// burst is what the receiver of the burst saw.
type burst struct {
	raw   bool   // read and written as a raw byte stream
	want  []byte // every write, concatenated
	got   []byte // every read, concatenated
	sizes []int  // bytes per read, in order
	warns []string

	refused     uint64  // writes the sender's kernel refused
	dropsSocket *uint64 // datagrams the receiver's full buffer dropped; nil if unknown
}

// runBurst sends the burst from a client to its server end and reads it there.
func runBurst(ctx context.Context, e *runEnv, nw Network) (*burst, error) {
	pr, err := openPair(ctx, e, nw)
	if err != nil {
		return nil, err
	}
	defer pr.closeAll()
	client, server := pr.client, pr.server

	b := newBurst(e.seed)
	chunk := burstChunk
	_, okc := client.(rawStreamer)
	_, oks := server.(rawStreamer)
	if b.raw = okc && oks; b.raw {
		// A byte stream cannot overflow its receiver: flow control holds the writer
		// back instead. So the whole burst goes at once.
		chunk = burstWrites
	}
	write := burstWriter(client, b.raw)
	read, setDeadline := burstReader(server, b.raw)

	buf := make([]byte, readBytes)
	var refused int
	for first := 0; first < burstWrites; first += chunk {
		last := min(first+chunk, burstWrites)
		done := make(chan error, 1) // written once by the writer below
		go func() {
			n, err := b.write(write, first, last)
			refused += n
			done <- err
		}()
		// Let the writer finish before reading, so what waits is read at once; a
		// writer that flow control holds back gets 20 ms.
		var werr error
		wrote := false
		select {
		case werr = <-done:
			wrote = true
		case <-time.After(readDelay):
		case <-ctx.Done():
		}
		rerr := b.readUntil(ctx, e.timeout, read, setDeadline, buf, len(b.got)+(last-first)*burstWriteBytes)
		if !wrote {
			select {
			case werr = <-done:
			case <-time.After(e.drain):
				pr.closeAll() // unblocks a writer the reader gave up on
				werr = <-done
			}
		}
		if werr != nil {
			return nil, werr
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if refused > 0 {
		b.warns = append(b.warns, fmt.Sprintf("%d writes refused by the sender's kernel", refused))
	}
	b.refused = uint64(refused)
	if d, ok := recvDrops([]Transport{server}); ok { // a fresh socket: all its drops are the burst's
		b.dropsSocket = &d
	}
	return b, nil
}

// readDelay is how long the reader of a burst (or of a chunk of it) waits for its
// writer to finish before it starts reading.
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
func burstWriter(t Transport, raw bool) func(msg []byte) error {
	if raw {
		w := t.(rawStreamer).RawStream()
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
func burstReader(t Transport, raw bool) (read func(buf []byte) (int, error), setDeadline func(time.Time) error) {
	if raw {
		r := t.(rawStreamer).RawStream()
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
		if err != nil && !isTimeout(err) {
			if isOversize(err) {
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
	m.DropsSender = b.refused
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

// runLargest sends the largest message, one byte more, and 1 MiB, framed and raw.
func runLargest(ctx context.Context, e *runEnv, nw Network) (*largest, error) {
	var l largest
	pr, err := openPair(ctx, e, nw)
	if err != nil {
		return nil, err
	}
	defer pr.closeAll()
	client, server := pr.client, pr.server

	maxSize := nw.MaxMessage()
	var sendErr error
	if l.maxOK, sendErr, err = sendWhole(ctx, e, client, server, maxSize); err != nil {
		return nil, fmt.Errorf("%d bytes: %w", maxSize, err)
	}
	if sendErr != nil {
		l.warns = append(l.warns, fmt.Sprintf("send of the largest message (%d bytes): %v", maxSize, sendErr))
	} else if !l.maxOK {
		l.warns = append(l.warns, fmt.Sprintf("the largest message (%d bytes) was sent but did not arrive whole", maxSize))
	}
	if _, l.plusOneErr, err = sendWhole(ctx, e, client, server, maxSize+1); err != nil {
		return nil, fmt.Errorf("%d bytes: %w", maxSize+1, err)
	}
	if l.plusOneErr == nil {
		l.warns = append(l.warns, fmt.Sprintf("a message of %d bytes, one more than the largest, was accepted", maxSize+1))
	}
	if rd, ok := nw.(rawDatagramDialer); ok {
		c, err := rd.DialRawDatagram(ctx, pr.addr)
		if err != nil {
			return nil, err
		}
		_, l.plusOneKernelErr = c.Write(make([]byte, maxSize+1))
		c.Close()
	}
	if l.oneMiBOK, l.oneMiBErr, err = sendWhole(ctx, e, client, server, oneMiB); err != nil {
		return nil, fmt.Errorf("1 MiB: %w", err)
	}
	pr.closeAll()

	if _, ok := client.(rawStreamer); ok {
		if l.oneMiBReads, l.oneMiBRawInOrder, err = rawMiB(ctx, e, nw); err != nil {
			return nil, fmt.Errorf("1 MiB raw: %w", err)
		}
	}
	return &l, nil
}

// sendWhole sends one message of size bytes from tx and reads it at rx. whole reports
// that it arrived, once, intact; sendErr is Send's error. err is any other failure.
func sendWhole(ctx context.Context, e *runEnv, tx, rx Transport, size int) (whole bool, sendErr, err error) {
	msg := make([]byte, size)
	wire.FillPayload(msg, e.seed, uint32(size))
	sent := make(chan error, 1) // written once by the sender below
	go func() {
		_, err := tx.Send([][]byte{msg})
		sent <- err
	}()
	bufs, sizes := [][]byte{make([]byte, max(size, readBytes))}, make([]int, 1)
	var sendDone bool
	var doneAt time.Time
	defer func() {
		if !sendDone {
			tx.Close() // the reader gave up: unblock the sender
			<-sent
		}
	}()
	for ctx.Err() == nil {
		select {
		case sendErr = <-sent:
			sendDone, doneAt = true, time.Now()
			if sendErr != nil {
				return false, sendErr, nil // nothing to wait for
			}
		default:
		}
		if sendDone && time.Since(doneAt) > e.drain {
			return false, nil, nil // sent but never arrived
		}
		if err := rx.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return false, nil, err
		}
		n, rerr := rx.Recv(bufs, sizes)
		if n > 0 {
			whole = sizes[0] == size && bytes.Equal(bufs[0][:size], msg)
			if !sendDone {
				sendErr, sendDone = <-sent, true
			}
			return whole, sendErr, nil
		}
		if rerr != nil && !isTimeout(rerr) {
			if isOversize(rerr) {
				continue // arrived, but not whole: a later Recv may see the next
			}
			if !sendDone {
				tx.Close()
				sendErr, sendDone = <-sent, true
			}
			return false, sendErr, fmt.Errorf("receive: %w", rerr)
		}
	}
	return false, nil, ctx.Err()
}

// rawMiB writes 1 MiB with one write call on a fresh raw stream and counts the reads
// a 64 KiB reader, reading as it arrives, takes to get it all.
func rawMiB(ctx context.Context, e *runEnv, nw Network) (reads int, inOrder bool, err error) {
	pr, err := openPair(ctx, e, nw)
	if err != nil {
		return 0, false, err
	}
	defer pr.closeAll()
	cs, ok1 := pr.client.(rawStreamer)
	ss, ok2 := pr.server.(rawStreamer)
	if !ok1 || !ok2 {
		return 0, false, fmt.Errorf("%s: no raw stream", nw.Name())
	}
	msg := make([]byte, oneMiB)
	wire.FillPayload(msg, e.seed, oneMiB)
	written := make(chan error, 1) // written once by the writer below
	go func() {
		_, err := cs.RawStream().Write(msg)
		written <- err
	}()
	reads, got, err := readRaw(ctx, ss.RawStream(), oneMiB, e.timeout+e.drain)
	if len(got) < oneMiB {
		pr.closeAll() // unblock the writer
	}
	if werr := <-written; werr != nil && err == nil && len(got) < oneMiB {
		err = fmt.Errorf("write: %w", werr)
	}
	if err != nil {
		return 0, false, err
	}
	return reads, bytes.Equal(got, msg), nil
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
		if rerr != nil && !isTimeout(rerr) {
			if errors.Is(rerr, io.EOF) {
				return reads, got, nil
			}
			return reads, got, fmt.Errorf("read: %w", rerr)
		}
	}
	return reads, got, nil
}
