package tcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
)

// errTimeout stands in for an expired deadline, as net returns it.
var errTimeout = fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)

// encode is the reference encoder: the package doc's frame format, written plainly.
func encode(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

// pattern returns n bytes that differ from message to message.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7)
	}
	return b
}

// chunkReader hands out data at most chunk bytes per Read. With timeoutEvery k > 0,
// every k-th Read returns errTimeout and no data, as a read deadline would.
type chunkReader struct {
	data         []byte
	chunk        int
	timeoutEvery int
	reads        int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.reads++
	if r.timeoutEvery > 0 && r.reads%r.timeoutEvery == 0 {
		return 0, errTimeout
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// readv is Read into a, then b, as one read of at most chunk bytes (a vectorReader,
// as a socket's readv(2) is).
func (r *chunkReader) readv(a, b []byte) (int, error) {
	r.reads++
	if r.timeoutEvery > 0 && r.reads%r.timeoutEvery == 0 {
		return 0, errTimeout
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(a[:min(len(a), r.chunk)], r.data)
	r.data = r.data[n:]
	if n == len(a) && n < r.chunk {
		m := copy(b[:min(len(b), r.chunk-n)], r.data)
		r.data = r.data[m:]
		n += m
	}
	return n, nil
}

// readAll reads frames until io.EOF, batch at a time into buffers of bufLen bytes,
// retrying after timeouts. It returns the messages and the number of timeouts.
func readAll(tb testing.TB, f *frameReader, batch, bufLen int) (msgs [][]byte, timeouts int, err error) {
	tb.Helper()
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, bufLen)
	}
	sizes := make([]int, batch)
	for range 1 << 20 {
		n, err := f.read(bufs, sizes)
		if n > 0 && err != nil {
			tb.Fatalf("read returned %d messages and error %v", n, err)
		}
		for i := range n {
			msgs = append(msgs, slices.Clone(bufs[i][:sizes[i]]))
		}
		switch {
		case err == nil && n == 0:
			tb.Fatalf("read returned no messages and no error")
		case errors.Is(err, os.ErrDeadlineExceeded):
			timeouts++
		case err != nil:
			return msgs, timeouts, err
		}
	}
	tb.Fatalf("read did not reach the end of the stream")
	return nil, 0, nil
}

func sameMessages(tb testing.TB, got, want [][]byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			tb.Fatalf("message %d: got %d bytes %x..., want %d bytes %x...",
				i, len(got[i]), got[i][:min(len(got[i]), 8)], len(want[i]), want[i][:min(len(want[i]), 8)])
		}
	}
}

func TestFrameReaderRoundTrip(t *testing.T) {
	mixed := [][]byte{pattern(1, 0), pattern(2, 1), pattern(3, 13), pattern(4, 0), pattern(5, 200), pattern(6, 7)}
	var many [][]byte
	for i := range 100 {
		many = append(many, pattern(i, i%37))
	}
	tests := []struct {
		name    string
		msgs    [][]byte
		bufSize int // frameReader buffer, bytes
		batch   int
		chunk   int // bytes per Read
		timeout int // every timeout-th Read fails with errTimeout; 0 never
	}{
		{name: "empty stream", msgs: nil, bufSize: 64, batch: 4, chunk: 1024},
		{name: "one zero-length message", msgs: [][]byte{{}}, bufSize: 64, batch: 4, chunk: 1024},
		{name: "mixed whole reads", msgs: mixed, bufSize: 1024, batch: 4, chunk: 1 << 20},
		{name: "mixed one byte per read", msgs: mixed, bufSize: 1024, batch: 4, chunk: 1},
		{name: "mixed one byte per read with deadlines", msgs: mixed, bufSize: 1024, batch: 4, chunk: 1, timeout: 2},
		{name: "mixed three bytes per read with deadlines", msgs: mixed, bufSize: 1024, batch: 1, chunk: 3, timeout: 3},
		{name: "frame exactly fills buffer", msgs: [][]byte{pattern(1, 60), pattern(2, 60)}, bufSize: 64, batch: 2, chunk: 7},
		{name: "frames larger than buffer", msgs: mixed, bufSize: 16, batch: 3, chunk: 1 << 20},
		{name: "frames larger than buffer one byte per read", msgs: mixed, bufSize: 16, batch: 3, chunk: 1},
		{name: "frames larger than buffer with deadlines", msgs: mixed, bufSize: 16, batch: 3, chunk: 5, timeout: 2},
		{name: "many small frames straddling reads", msgs: many, bufSize: 50, batch: 16, chunk: 23},
		{name: "many small frames with deadlines", msgs: many, bufSize: 100, batch: 16, chunk: 1, timeout: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &chunkReader{data: encode(tc.msgs...), chunk: tc.chunk, timeoutEvery: tc.timeout}
			f := &frameReader{src: src, buf: make([]byte, tc.bufSize), max: DefaultMaxMessage}
			got, timeouts, err := readAll(t, f, tc.batch, 256)
			if err != io.EOF {
				t.Fatalf("stream end: got %v, want io.EOF", err)
			}
			sameMessages(t, got, tc.msgs)
			if tc.timeout > 0 && len(tc.msgs) > 0 && timeouts == 0 {
				t.Errorf("no deadline fired: the test did not test resumption")
			}
			if n, err := f.read(make([][]byte, 1), make([]int, 1)); n != 0 || err != io.EOF {
				t.Errorf("read after the end: got (%d, %v), want (0, io.EOF)", n, err)
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		stream  []byte
		bufSize int
		max     int
		want    []int // messages per successful read before the error
		wantErr error
		sticky  bool
	}{
		{name: "clean end", stream: nil, bufSize: 64, max: 100, wantErr: io.EOF, sticky: true},
		{name: "end after frames", stream: encode(pattern(1, 3), pattern(2, 4)), bufSize: 64, max: 100, want: []int{2}, wantErr: io.EOF, sticky: true},
		{name: "end inside prefix", stream: []byte{0, 0}, bufSize: 64, max: 100, wantErr: io.ErrUnexpectedEOF, sticky: true},
		{name: "end inside body", stream: encode(pattern(1, 10))[:9], bufSize: 64, max: 100, wantErr: io.ErrUnexpectedEOF, sticky: true},
		{name: "end inside body read directly", stream: encode(pattern(1, 75))[:50], bufSize: 16, max: 100, wantErr: io.ErrUnexpectedEOF, sticky: true},
		{name: "frames then end inside frame", stream: append(encode(pattern(1, 3)), 0, 0, 0, 9, 1), bufSize: 64, max: 100, want: []int{1}, wantErr: io.ErrUnexpectedEOF, sticky: true},
		{name: "prefix over max", stream: encode(pattern(1, 101)), bufSize: 64, max: 100, wantErr: ErrMessageTooLarge, sticky: true},
		{name: "prefix over max after frames", stream: encode(pattern(1, 5), pattern(2, 101)), bufSize: 256, max: 100, want: []int{1}, wantErr: ErrMessageTooLarge, sticky: true},
		{name: "prefix of 4 GiB-1", stream: []byte{0xff, 0xff, 0xff, 0xff, 1}, bufSize: 64, max: 100, wantErr: ErrMessageTooLarge, sticky: true},
		{name: "frame over buffer", stream: encode(pattern(1, 90)), bufSize: 64, max: 100, wantErr: ErrMessageTooLarge, sticky: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &frameReader{src: bytes.NewReader(tc.stream), buf: make([]byte, tc.bufSize), max: tc.max}
			bufs := [][]byte{make([]byte, 80), make([]byte, 80), make([]byte, 80)}
			sizes := make([]int, len(bufs))
			for i, want := range tc.want {
				if n, err := f.read(bufs, sizes); n != want || err != nil {
					t.Fatalf("read %d of stream %x: got (%d, %v), want (%d, nil)", i, tc.stream, n, err, want)
				}
			}
			n, err := f.read(bufs, sizes)
			if n != 0 || !errors.Is(err, tc.wantErr) {
				t.Fatalf("stream %x: got (%d, %v), want (0, %v)", tc.stream, n, err, tc.wantErr)
			}
			if tc.wantErr == io.EOF && err != io.EOF {
				t.Fatalf("got %#v, want io.EOF unwrapped", err)
			}
			_, err2 := f.read(bufs, sizes)
			if sticky := err2 == err; sticky != tc.sticky {
				t.Errorf("error sticky = %v (second read: %v), want %v", sticky, err2, tc.sticky)
			}
		})
	}
}

func TestFrameReaderBufferTooSmallKeepsFrame(t *testing.T) {
	want := pattern(1, 10)
	f := &frameReader{src: bytes.NewReader(encode(want)), buf: make([]byte, 64), max: 100}
	sizes := make([]int, 1)
	if _, err := f.read([][]byte{make([]byte, 9)}, sizes); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("10-byte frame into 9-byte buffer: got %v, want ErrMessageTooLarge", err)
	}
	buf := make([]byte, 10)
	if n, err := f.read([][]byte{buf}, sizes); n != 1 || err != nil || !bytes.Equal(buf[:sizes[0]], want) {
		t.Fatalf("retry with 10-byte buffer: got (%d, %v, %x), want (1, nil, %x)", n, err, buf[:sizes[0]], want)
	}
}

// scriptReader returns its steps in order, one per Read, and fails the test on a
// Read past the script: read must not call it when it already holds a message.
type scriptReader struct {
	tb    testing.TB
	steps []step
}

type step struct {
	data []byte
	err  error
}

func (r *scriptReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		r.tb.Fatalf("unexpected Read: the script is over")
	}
	s := r.steps[0]
	if len(s.data) > len(p) {
		r.tb.Fatalf("script step of %d bytes, read buffer of %d", len(s.data), len(p))
	}
	r.steps = r.steps[1:]
	return copy(p, s.data), s.err
}

func TestFrameReaderReturnsOnlyBuffered(t *testing.T) {
	m := [][]byte{pattern(1, 5), pattern(2, 6), pattern(3, 7), pattern(4, 8), pattern(5, 9)}
	stream := encode(m...)
	cut1 := len(encode(m[:3]...)) + 6 // inside the fourth frame's body
	cut2 := len(encode(m[:4]...)) + 2 // inside the fifth frame's prefix
	src := &scriptReader{tb: t, steps: []step{
		{data: stream[:cut1]},
		{err: errTimeout},
		{data: stream[cut1:cut2]},
		{data: stream[cut2:]},
		{err: io.EOF},
	}}
	f := &frameReader{src: src, buf: make([]byte, 256), max: 100}
	bufs := make([][]byte, 10)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	sizes := make([]int, len(bufs))
	var got [][]byte
	for i, want := range []struct {
		n   int
		err error
	}{
		{3, nil},                    // three whole frames in the first Read; no second Read
		{0, os.ErrDeadlineExceeded}, // the deadline fires inside frame 4
		{1, nil},                    // frame 4 resumed; frame 5's prefix incomplete
		{1, nil},                    // frame 5
		{0, io.EOF},                 // clean end
	} {
		n, err := f.read(bufs, sizes)
		if n != want.n || !errors.Is(err, want.err) {
			t.Fatalf("read %d: got (%d, %v), want (%d, %v)", i, n, err, want.n, want.err)
		}
		for j := range n {
			got = append(got, slices.Clone(bufs[j][:sizes[j]]))
		}
	}
	sameMessages(t, got, m)
}

// limitWriter accepts limit bytes, then fails every Write with err.
type limitWriter struct {
	buf    bytes.Buffer
	limit  int
	err    error
	writes int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	w.writes++
	if len(p) <= w.limit {
		w.limit -= len(p)
		return w.buf.Write(p)
	}
	n, _ := w.buf.Write(p[:w.limit])
	w.limit = 0
	return n, w.err
}

func TestFrameWriterCutShort(t *testing.T) {
	msgs := [][]byte{pattern(1, 0), pattern(2, 1), pattern(3, 5), pattern(4, 40), pattern(5, 3), pattern(6, 0), pattern(7, 70), pattern(8, 9)}
	total := len(encode(msgs...))
	// whole[k] is how many frames the first k bytes of the stream hold whole.
	whole := make([]int, total+1)
	for k := range whole {
		for i, off := 0, 0; i < len(msgs); i++ {
			if off += headerLen + len(msgs[i]); off > k {
				break
			}
			whole[k] = i + 1
		}
	}
	writers := []struct {
		bufSize, copyMax int
	}{
		{bufSize: 1024, copyMax: 1024}, // one Write per batch
		{bufSize: 1024, copyMax: 8},    // large messages beside the buffer
		{bufSize: 16, copyMax: 8},      // a flush every few messages
		{bufSize: 8, copyMax: 0},       // every message beside the buffer
	}
	errs := []struct {
		name    string
		err     error
		resumes bool // a frame cut short is taken over
	}{
		{name: "deadline", err: errTimeout, resumes: true},
		{name: "reset", err: io.ErrClosedPipe, resumes: false},
	}
	for _, wr := range writers {
		for _, e := range errs {
			t.Run(fmt.Sprintf("buf=%d/copy=%d/err=%s", wr.bufSize, wr.copyMax, e.name), func(t *testing.T) {
				for cut := 0; cut <= total; cut++ {
					w := &limitWriter{limit: cut, err: e.err}
					f := &frameWriter{dst: w, buf: make([]byte, 0, wr.bufSize), copyMax: wr.copyMax, max: 100}
					n, err := f.write(msgs)
					want := whole[cut]
					if e.resumes && cut < total && cut > len(encode(msgs[:want]...)) {
						want++ // frame want was cut inside and taken over
					}
					if cut == total {
						if n != len(msgs) || err != nil {
							t.Fatalf("cut at %d of %d: got (%d, %v), want (%d, nil)", cut, total, n, err, len(msgs))
						}
						continue
					}
					if n != want || !errors.Is(err, e.err) {
						t.Fatalf("cut at %d of %d: got (%d, %v), want (%d, %v)", cut, total, n, err, want, e.err)
					}
					if !e.resumes {
						if got := w.buf.Bytes(); !bytes.Equal(got, encode(msgs...)[:cut]) {
							t.Fatalf("cut at %d: wrote %x, want the stream's first %d bytes", cut, got, cut)
						}
						continue
					}
					// Resume as a caller would: clear the deadline, resend msgs[n:].
					w.limit = total
					if n2, err := f.write(msgs[n:]); n2 != len(msgs)-n || err != nil {
						t.Fatalf("cut at %d: resending %d messages: got (%d, %v)", cut, len(msgs)-n, n2, err)
					}
					if got := w.buf.Bytes(); !bytes.Equal(got, encode(msgs...)) {
						t.Fatalf("cut at %d: stream after resuming:\ngot  %x\nwant %x", cut, got, encode(msgs...))
					}
				}
			})
		}
	}
}

func TestFrameWriterTooLarge(t *testing.T) {
	msgs := [][]byte{pattern(1, 3), pattern(2, 10), pattern(3, 11), pattern(4, 2)}
	for _, copyMax := range []int{0, 100} {
		w := &limitWriter{limit: 1 << 20}
		f := &frameWriter{dst: w, buf: make([]byte, 0, 256), copyMax: copyMax, max: 10}
		n, err := f.write(msgs)
		if n != 2 || !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("copyMax %d: got (%d, %v), want (2, ErrMessageTooLarge)", copyMax, n, err)
		}
		if got, want := w.buf.Bytes(), encode(msgs[:2]...); !bytes.Equal(got, want) {
			t.Fatalf("copyMax %d: wrote %x, want %x (the messages before the large one)", copyMax, got, want)
		}
	}
}

func TestFrameWriterOneWritePerBatch(t *testing.T) {
	msgs := make([][]byte, 16)
	for i := range msgs {
		msgs[i] = pattern(i, 64)
	}
	w := &limitWriter{limit: 1 << 20}
	f := &frameWriter{dst: w, buf: make([]byte, 0, writeBufSize), copyMax: copyMax, max: DefaultMaxMessage}
	if n, err := f.write(msgs); n != len(msgs) || err != nil {
		t.Fatalf("got (%d, %v), want (%d, nil)", n, err, len(msgs))
	}
	if w.writes != 1 {
		t.Errorf("16 messages of 64 bytes took %d writes, want 1", w.writes)
	}
	if n, err := f.write(nil); n != 0 || err != nil || w.writes != 1 {
		t.Errorf("empty batch: got (%d, %v) and %d writes, want (0, nil) and none", n, err, w.writes-1)
	}
}

// FuzzFrameReader feeds arbitrary streams, cut into arbitrary reads with deadlines
// between them, to a frameReader, with and without vectored reads: it must never
// panic, never hand out a message larger than its limits, and always reach the end
// of the stream.
func FuzzFrameReader(f *testing.F) {
	f.Add(encode(pattern(1, 3), pattern(2, 0)), uint8(1), uint16(16), uint16(100), false)
	f.Add([]byte{0, 0, 0, 200, 1, 2, 3}, uint8(2), uint16(8), uint16(300), true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint8(4), uint16(64), uint16(10), false)
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8, bufSize uint16, max uint16, vec bool) {
		src := &chunkReader{data: stream, chunk: int(chunk%16) + 1, timeoutEvery: 3}
		fr := &frameReader{src: src, buf: make([]byte, int(bufSize%512)+headerLen), max: int(max)}
		if vec {
			fr.vec = src
		}
		bufs := [][]byte{make([]byte, 200), make([]byte, 300)}
		sizes := make([]int, 2)
		for range 4*len(stream) + 10 {
			n, err := fr.read(bufs, sizes)
			for i := range n {
				if sizes[i] > len(bufs[i]) || sizes[i] > int(max) {
					t.Fatalf("message %d of %d bytes: buffer %d, max %d", i, sizes[i], len(bufs[i]), max)
				}
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				if errors.Is(err, ErrMessageTooLarge) && !errors.Is(fr.err, ErrMessageTooLarge) {
					bufs[0] = make([]byte, int(max)) // too large for the buffer only: offer more
					continue
				}
				return
			}
		}
		t.Fatalf("no end after %d reads of a %d-byte stream", 4*len(stream)+10, len(stream))
	})
}

// FuzzFrameRoundTrip cuts data into messages, writes them with a deadline firing
// after cut bytes, resumes, and reads the stream back in chunk-byte reads with
// deadlines between them: decode(encode(msgs)) must equal msgs.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{3, 0, 5}, uint16(9), uint8(1))
	f.Add(bytes.Repeat([]byte{7}, 300), []byte{200, 1}, uint16(100), uint8(5))
	f.Fuzz(func(t *testing.T, data, lens []byte, cut uint16, chunk uint8) {
		var msgs [][]byte
		for _, l := range lens {
			n := min(int(l), len(data))
			msgs = append(msgs, data[:n])
			data = data[n:]
		}
		w := &limitWriter{limit: int(cut), err: errTimeout}
		fw := &frameWriter{dst: w, buf: make([]byte, 0, 64), copyMax: 16, max: 255}
		n, err := fw.write(msgs)
		if err != nil {
			w.limit = 1 << 20
			if n2, err := fw.write(msgs[n:]); n2 != len(msgs)-n || err != nil {
				t.Fatalf("resending %d messages: got (%d, %v)", len(msgs)-n, n2, err)
			}
		}
		if got, want := w.buf.Bytes(), encode(msgs...); !bytes.Equal(got, want) {
			t.Fatalf("stream:\ngot  %x\nwant %x", got, want)
		}
		src := &chunkReader{data: w.buf.Bytes(), chunk: int(chunk%32) + 1, timeoutEvery: 2}
		fr := &frameReader{src: src, buf: make([]byte, 32), max: 255}
		got, _, err := readAll(t, fr, 3, 255)
		if err != io.EOF {
			t.Fatalf("stream end: got %v, want io.EOF", err)
		}
		sameMessages(t, got, msgs)
	})
}

// bufReader is a chunkReader that tallies where each Read put its bytes: into the
// frameReader's own buffer (to be copied out later) or elsewhere (the caller's).
type bufReader struct {
	chunkReader
	fr             *frameReader
	viaBuf, direct int // bytes read into fr.buf, and into other buffers
}

// Read tells fr.buf by its end: fill reads into a tail of it, whose capacity ends
// where fr.buf's does.
func (r *bufReader) Read(p []byte) (int, error) {
	b := r.fr.buf
	inBuf := cap(p) > 0 && cap(b) > 0 && &p[:cap(p)][cap(p)-1] == &b[:cap(b)][cap(b)-1]
	n, err := r.chunkReader.Read(p)
	if inBuf {
		r.viaBuf += n
	} else {
		r.direct += n
	}
	return n, err
}

func (r *bufReader) readv(a, b []byte) (int, error) {
	n, err := r.chunkReader.readv(a, b)
	r.direct += min(n, len(a))
	r.viaBuf += n - min(n, len(a))
	return n, err
}

// TestFrameReaderDirect checks that a large frame's body goes from the source
// straight into the caller's buffer: of a stream of large frames, only the first
// read's worth and one short read per frame (its length prefix, directPeek bytes at
// most) pass through the reader's own buffer. With a source that reads into two
// buffers at once (readv), that short read rides with the body's: one read per frame.
func TestFrameReaderDirect(t *testing.T) {
	tests := []struct {
		name  string
		size  int // frame body, bytes
		count int
		chunk int // bytes per Read at most
	}{
		{name: "128 KiB frames, whole reads", size: 128 << 10, count: 16, chunk: 1 << 30},
		{name: "128 KiB frames, 20000-byte reads", size: 128 << 10, count: 16, chunk: 20000},
		{name: "frames of directMin bytes", size: directMin, count: 40, chunk: 1 << 30},
		{name: "1 MiB frames, larger than the buffer", size: 1 << 20, count: 4, chunk: 1 << 30},
	}
	for _, tc := range tests {
		for _, vec := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readv=%v", tc.name, vec), func(t *testing.T) {
				var msgs [][]byte
				for i := range tc.count {
					msgs = append(msgs, pattern(i, tc.size))
				}
				const bufSize = 256 << 10
				src := &bufReader{chunkReader: chunkReader{data: encode(msgs...), chunk: tc.chunk}}
				f := &frameReader{src: src, buf: make([]byte, bufSize), max: DefaultMaxMessage}
				if vec {
					f.vec = src
				}
				src.fr = f
				got, _, err := readAll(t, f, 4, tc.size)
				if err != io.EOF {
					t.Fatalf("stream end: got %v, want io.EOF", err)
				}
				sameMessages(t, got, msgs)
				total := len(encode(msgs...))
				if limit := bufSize + tc.count*directPeek; src.viaBuf > limit {
					t.Errorf("%d of %d stream bytes went through the reader's buffer, want at most %d (its size and %d bytes per frame)",
						src.viaBuf, total, limit, directPeek)
				}
				if limit := tc.count + 3; vec && tc.chunk >= total && src.reads > limit {
					t.Errorf("%d reads for %d frames with readv, want at most %d", src.reads, tc.count, limit)
				}
			})
		}
	}
}

// TestFrameReaderSmallFramesBuffered checks the other side of the threshold: frames
// below directMin are read many at a time into the reader's buffer, never one read
// per frame, even right after a large frame.
func TestFrameReaderSmallFramesBuffered(t *testing.T) {
	msgs := [][]byte{pattern(0, 200<<10)}
	for i := 1; i <= 200; i++ {
		msgs = append(msgs, pattern(i, directMin-1-i))
	}
	src := &chunkReader{data: encode(msgs...), chunk: 1 << 30}
	f := &frameReader{src: src, buf: make([]byte, 256<<10), max: DefaultMaxMessage}
	got, _, err := readAll(t, f, 16, 200<<10)
	if err != io.EOF {
		t.Fatalf("stream end: got %v, want io.EOF", err)
	}
	sameMessages(t, got, msgs)
	// 200 frames of ~32 KiB in a 256 KiB buffer: about 8 per read, plus the short
	// read after the large frame, plus the read that finds the end.
	if limit := len(encode(msgs...))/(256<<10) + 10; src.reads > limit {
		t.Errorf("%d reads for %d frames below directMin, want at most %d", src.reads, len(msgs)-1, limit)
	}
}

// TestFrameReaderGrowsForSmallFrames: frames below directMin but larger than the
// buffer a connection starts with make the buffer grow (up to grow), so that a read
// soon takes many of them, rather than each being read alone into the caller's
// buffer.
func TestFrameReaderGrowsForSmallFrames(t *testing.T) {
	for _, size := range []int{8 << 10, 20 << 10} {
		var msgs [][]byte
		for i := range 400 {
			msgs = append(msgs, pattern(i, size))
		}
		stream := encode(msgs...)
		src := &chunkReader{data: stream, chunk: 1 << 30}
		f := &frameReader{src: src, buf: make([]byte, 4<<10), grow: 256 << 10, max: DefaultMaxMessage}
		got, _, err := readAll(t, f, 64, size)
		if err != io.EOF {
			t.Fatalf("size %d: stream end: got %v, want io.EOF", size, err)
		}
		sameMessages(t, got, msgs)
		if limit := len(stream)/(128<<10) + 20; src.reads > limit {
			t.Errorf("size %d: %d reads for %d frames (buffer now %d bytes), want at most %d", size, src.reads, len(msgs), len(f.buf), limit)
		}
		if len(f.buf) > 256<<10 {
			t.Errorf("size %d: buffer of %d bytes, want at most grow (%d)", size, len(f.buf), 256<<10)
		}
	}
}

// TestFrameReaderDirectResumes cuts the stream around and inside large frames, with
// deadlines, at every kind of boundary: before, inside and after the length prefix,
// inside the buffered part of the body and inside the part read directly, and checks
// that every frame comes out whole and that the reader's buffer shrinks back after a
// cut-short direct read grew it.
func TestFrameReaderDirectResumes(t *testing.T) {
	sizes := []int{directMin - 1, directMin, directMin + 1, 100, 300 << 10, 5, 64 << 10}
	var msgs [][]byte
	for i, s := range sizes {
		msgs = append(msgs, pattern(i, s))
	}
	stream := encode(msgs...)
	const bufSize = 8 << 10
	for _, tc := range []struct {
		name    string
		chunk   int
		timeout int
		vec     bool
	}{
		{name: "one byte per read, deadline every other read", chunk: 1, timeout: 2},
		{name: "1000 bytes per read, deadline every third", chunk: 1000, timeout: 3},
		{name: "40000 bytes per read, deadline every other", chunk: 40000, timeout: 2},
		{name: "whole reads, deadline every other", chunk: 1 << 30, timeout: 2},
		{name: "readv, one byte per read, deadline every other read", chunk: 1, timeout: 2, vec: true},
		{name: "readv, 1000 bytes per read, deadline every third", chunk: 1000, timeout: 3, vec: true},
		{name: "readv, 40000 bytes per read, deadline every other", chunk: 40000, timeout: 2, vec: true},
		{name: "readv, whole reads, deadline every third", chunk: 1 << 30, timeout: 3, vec: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &chunkReader{data: stream, chunk: tc.chunk, timeoutEvery: tc.timeout}
			f := &frameReader{src: src, buf: make([]byte, bufSize), max: DefaultMaxMessage}
			if tc.vec {
				f.vec = src
			}
			bufs := [][]byte{make([]byte, 300<<10), make([]byte, 300<<10)}
			sizes := make([]int, len(bufs))
			var got [][]byte
			timeouts := 0
			for range 1 << 22 {
				n, err := f.read(bufs, sizes)
				for i := range n {
					got = append(got, slices.Clone(bufs[i][:sizes[i]]))
				}
				if n > 0 && len(f.buf) > bufSize {
					t.Fatalf("after %d frames: buffer of %d bytes, want it back to %d once the frame is out", len(got), len(f.buf), bufSize)
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					timeouts++
					continue
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d frames: %v", len(got), err)
				}
			}
			sameMessages(t, got, msgs)
			if timeouts == 0 {
				t.Errorf("no deadline fired")
			}
		})
	}
}

// TestFrameReaderDirectCut pins what a deadline in the middle of a direct read keeps:
// the caller gets nothing, the reader keeps the prefix and the body bytes that arrived
// (in a buffer no larger than the frame), the next read, even into another buffer,
// returns the frame whole, and the buffer then shrinks back.
func TestFrameReaderDirectCut(t *testing.T) {
	want := pattern(7, 200<<10)
	stream := encode(want)
	src := &scriptReader{tb: t, steps: []step{
		{data: stream[:100]},         // prefix and 96 body bytes, into buf
		{data: stream[100 : 70<<10]}, // into the caller's buffer
		{err: errTimeout},            // cut
		{data: stream[70<<10 : 150<<10]},
		{data: stream[150<<10:]},
		{err: io.EOF},
	}}
	f := &frameReader{src: src, buf: make([]byte, 4<<10), grow: 256 << 10, max: DefaultMaxMessage}
	sizes := make([]int, 1)
	first := make([]byte, 256<<10)
	if n, err := f.read([][]byte{first}, sizes); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first read: got (%d, %v), want (0, deadline exceeded)", n, err)
	}
	if got, want, most := f.w-f.r, 70<<10, headerLen+len(want); got != want || len(f.buf) > most {
		t.Fatalf("after the cut: %d bytes kept in a buffer of %d, want %d in at most %d", got, len(f.buf), want, most)
	}
	clear(first)
	second := make([]byte, 256<<10)
	if n, err := f.read([][]byte{second}, sizes); n != 1 || err != nil || !bytes.Equal(second[:sizes[0]], want) {
		t.Fatalf("resumed read: got (%d, %v, %d bytes), want the %d-byte frame", n, err, sizes[0], len(want))
	}
	if len(f.buf) != 4<<10 {
		t.Errorf("buffer after the frame: %d bytes, want 4096 again", len(f.buf))
	}
	if n, err := f.read([][]byte{second}, sizes); n != 0 || err != io.EOF {
		t.Errorf("end: got (%d, %v), want (0, io.EOF)", n, err)
	}
}

// TestFrameReaderDirectEOF ends the stream inside a large frame's body, in the part
// read directly: an error wrapping io.ErrUnexpectedEOF, sticky, naming the bytes.
func TestFrameReaderDirectEOF(t *testing.T) {
	for i, cut := range []int{headerLen + 1, headerLen + directPeek, 40 << 10, headerLen + (64 << 10) - 1, 40 << 10, headerLen + (64 << 10) - 1} {
		stream := encode(pattern(1, 3), pattern(2, 64<<10))
		src := &chunkReader{data: stream[:len(encode(pattern(1, 3)))+cut], chunk: 5000}
		f := &frameReader{src: src, buf: make([]byte, 256<<10), max: DefaultMaxMessage}
		if i >= 4 {
			f.vec = src // the same ends, read with readv
		}
		bufs := [][]byte{make([]byte, 64<<10), make([]byte, 64<<10)}
		sizes := make([]int, 2)
		if n, err := f.read(bufs, sizes); n != 1 || err != nil {
			t.Fatalf("cut %d: first read: got (%d, %v), want the small frame", cut, n, err)
		}
		n, err := f.read(bufs, sizes)
		if n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut %d: got (%d, %v), want (0, io.ErrUnexpectedEOF)", cut, n, err)
		}
		if _, err2 := f.read(bufs, sizes); err2 != err {
			t.Errorf("cut %d: error not sticky: then %v", cut, err2)
		}
	}
}
