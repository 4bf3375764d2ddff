package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
)

// FrameOverhead is what framing adds to each message on the wire, in bytes: its
// length prefix.
const FrameOverhead = headerLen

// headerLen is the size of a frame's length prefix, in bytes.
const headerLen = 4

// maxFrameLen is the largest length a 4-byte prefix can carry, in bytes.
const maxFrameLen = math.MaxUint32

// errNoProgress reports a source that keeps returning no bytes and no error.
var errNoProgress = errors.New("tcp: reader returned no data and no error 100 times")

// A sizeError is an error satisfying errors.Is(err, ErrMessageTooLarge) whose text
// does not repeat the "tcp: " prefix of the error that wraps it.
type sizeError struct{ msg string }

func (e *sizeError) Error() string        { return e.msg }
func (e *sizeError) Is(target error) bool { return target == ErrMessageTooLarge }

// tooLarge returns a sizeError: "message exceeds the maximum size: " and the details.
func tooLarge(format string, args ...any) error {
	return &sizeError{msg: "message exceeds the maximum size: " + fmt.Sprintf(format, args...)}
}

// directMin is the smallest frame body, in bytes, that read moves from the socket
// straight into the caller's buffer instead of through buf. Above it the copy out of
// buf costs more than the extra read(2) a direct read may take (at ~10 GB/s a 32 KiB
// copy is ~3 µs; a read of the next frame's header, ~1 µs); below it many frames share
// one read and one copy each is cheaper.
const directMin = 32 << 10

// directPeek bounds the read that follows a direct read, in bytes: it fetches the next
// frame's length prefix without pulling much of a large body into buf (which would
// then be copied). Under 1% of a 128 KiB body, and room for a few small frames when
// the stream turns to those.
const directPeek = 1 << 10

// A vectorReader reads into a, then b, with one read from the stream (readv(2)): b
// gets bytes only once a is full. Errors are those of net.Conn's Read.
type vectorReader interface {
	readv(a, b []byte) (int, error)
}

// A frameReader cuts a byte stream into length-prefixed frames (see the package doc).
//
// Small frames go through buf: one read from src takes many, and each is copied out.
// A frame of directMin bytes or more whose body is not already buffered goes straight
// into the caller's buffer: the buffered part is copied, the rest is read into place;
// and since the stream then likely carries more of them, the next read from src
// takes at most directPeek bytes, enough for the next length prefix. With vec (a
// socket that reads into two buffers at once), that short read rides along with the
// read that ends the body: one system call per large frame when the data is there.
//
// Bytes read from src are never lost to an error from src (a read deadline,
// typically): the next read resumes the frame where the stream left it, even inside
// its length prefix. Bytes of a frame still in buf stay there; if a direct read is cut
// short, the length prefix and the body bytes that arrived go back into buf, grown to
// hold the whole frame, and the rest of that frame comes through buf (so a stream cut
// by many deadlines is not copied back and forth once per cut). Memory: buf holds at
// most max(initial len(buf), grow) bytes; more (up to headerLen+max) only from such a
// cut until the frame is handed out and buf holds no more than before, when it shrinks
// back.
//
// A frameReader is not safe for concurrent use.
type frameReader struct {
	src io.Reader
	vec vectorReader // src's own bytes, read into two buffers at once; nil = src.Read only
	buf []byte       // buffered stream bytes are buf[r:w]; len(buf) is the capacity
	r   int          // start of unconsumed bytes
	w   int          // end of buffered bytes
	max int          // largest frame accepted, bytes
	eof bool         // src returned io.EOF: do not read it again
	// grow, when above len(buf), lets fill double buf up to grow bytes each time a
	// read fills it: small for a connection that carries little, large for a stream.
	grow   int
	filled bool  // the last read filled buf
	peek   bool  // a frame was just read directly: the next fill reads directPeek bytes at most
	cut    bool  // a direct read of the frame at buf[r:] was cut short: it ends through buf
	keep   int   // len(buf) before a cut-short direct read grew it; 0 = not grown
	err    error // sticky: io.EOF, or a fatal error after which the stream is unusable
}

// read blocks until at least one whole frame is available, then copies as many whole
// frames as are already buffered into bufs, without another read from src. sizes[i]
// is the length of frame i. It handles at most min(len(bufs), len(sizes)) frames. A
// large frame (see frameReader) is read into bufs[0] and returned alone.
//
// Errors:
//   - io.EOF, unwrapped: the stream ended cleanly between frames (sticky).
//   - io.ErrUnexpectedEOF, wrapped: the stream ended inside a frame (sticky).
//   - ErrMessageTooLarge, wrapped: a length prefix above max (sticky: the stream is
//     unusable), or a frame longer than the buffer offered for it (not sticky: nothing
//     is consumed and a later read with a larger buffer returns the frame).
//   - any error from src, as is; nothing read is lost.
//
// When frames were already copied, read returns them with a nil error and reports
// the error, if any, on the next call.
func (f *frameReader) read(bufs [][]byte, sizes []int) (n int, err error) {
	m := min(len(bufs), len(sizes))
	if m == 0 {
		return 0, nil
	}
	if f.err != nil {
		return 0, f.err
	}
	for n < m {
		if f.w-f.r < headerLen {
			if n > 0 {
				break
			}
			if err := f.fill(); err != nil {
				return 0, err
			}
			continue
		}
		size := binary.BigEndian.Uint32(f.buf[f.r:])
		if uint64(size) > uint64(f.max) {
			f.err = tooLarge("frame of %d bytes, limit %d (stream unusable)", size, f.max)
			if n > 0 {
				break
			}
			return 0, f.err
		}
		s := int(size) // fits: size <= f.max, an int
		if s > len(bufs[n]) {
			if n > 0 {
				break
			}
			return 0, tooLarge("frame of %d bytes, buffer of %d", s, len(bufs[n]))
		}
		if have := f.w - f.r - headerLen; have >= s {
			start := f.r + headerLen
			copy(bufs[n], f.buf[start:start+s])
			sizes[n] = s
			f.r = start + s
			f.cut = false
			n++
			continue
		}
		if n > 0 {
			break
		}
		if !f.cut && (s >= directMin || headerLen+s > len(f.buf) && !f.growFor(s)) {
			// Large, or too large for buf: read the body straight into bufs[0].
			if err := f.readDirect(bufs[0][:s]); err != nil {
				return 0, err
			}
			sizes[0] = s
			n++
			continue
		}
		if err := f.fill(); err != nil {
			return 0, err
		}
	}
	if f.r == f.w {
		f.r, f.w = 0, 0
		f.shrink()
	}
	return n, nil
}

// growFor grows buf, up to grow bytes, to hold a frame of s bytes and then some: a
// connection whose frames outgrow buf gets a buffer for many of them. It reports
// whether the frame now fits.
func (f *frameReader) growFor(s int) bool {
	need := headerLen + s
	if need > f.grow {
		return false
	}
	nb := make([]byte, min(f.grow, max(2*len(f.buf), 2*need)))
	f.w = copy(nb, f.buf[f.r:f.w])
	f.buf, f.r = nb, 0
	return true
}

// shrink returns buf to its size before a cut-short direct read grew it, once that
// frame is out and what buf holds fits.
func (f *frameReader) shrink() {
	if f.keep == 0 || f.cut || f.w-f.r > f.keep {
		return
	}
	nb := make([]byte, f.keep)
	f.w = copy(nb, f.buf[f.r:f.w])
	f.buf, f.r, f.keep = nb, 0, 0
}

// fill reads once from src into the free end of buf, first moving buffered bytes
// to the front. It returns nil once at least one byte arrived. It is only called
// when buf[r:w] holds no whole frame, so buf has room after compaction.
func (f *frameReader) fill() error {
	f.shrink()
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	for range 100 {
		if f.eof {
			return f.endOfStream()
		}
		if f.filled && len(f.buf) < f.grow {
			nb := make([]byte, min(f.grow, 2*len(f.buf)))
			f.w = copy(nb, f.buf[:f.w])
			f.buf = nb
		}
		end := len(f.buf)
		if f.peek {
			end = min(end, f.w+directPeek)
		}
		k, err := f.src.Read(f.buf[f.w:end])
		f.filled = k > 0 && f.w+k == len(f.buf) // the kernel had more than buf could take
		if k > 0 {
			f.peek = false // one short read: if the prefix says small, fill on as usual
		}
		f.w += k
		if err == io.EOF {
			f.eof = true
		}
		if k > 0 {
			return nil // keep any other error for the next read: src will repeat it
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return errNoProgress
}

// endOfStream turns the end of src into the sticky error the buffered bytes call for.
func (f *frameReader) endOfStream() error {
	if have := f.w - f.r; have > 0 {
		f.err = fmt.Errorf("peer closed mid-frame with %d bytes of it received: %w", have, io.ErrUnexpectedEOF)
	} else {
		f.err = io.EOF
	}
	return f.err
}

// readDirect reads the body of the frame at buf[r:] into dst (len(dst) is the frame
// length), starting with the body bytes already buffered, which are all buf holds:
// it is called only when the body is not wholly buffered. On success the frame is
// consumed. If src fails first, the length prefix and the part of the body that
// arrived go back into buf, grown to hold the whole frame if need be, so nothing is
// lost, and the frame is marked cut: the next reads complete it through buf.
func (f *frameReader) readDirect(dst []byte) error {
	got := copy(dst, f.buf[f.r+headerLen:f.w])
	var hdr [headerLen]byte
	copy(hdr[:], f.buf[f.r:])
	f.r, f.w = 0, 0
	var err error
	for empty := 0; got < len(dst); {
		if f.eof {
			err = io.EOF
			break
		}
		var k int
		var rerr error
		if f.vec != nil {
			// The end of the body, and in the same read the start of what follows.
			rest := len(dst) - got
			k, rerr = f.vec.readv(dst[got:], f.buf[:min(len(f.buf), directPeek)])
			if k > rest {
				f.w, k = k-rest, rest // buf holds the next bytes of the stream
			}
		} else {
			k, rerr = f.src.Read(dst[got:])
		}
		got += k
		switch {
		case rerr == io.EOF:
			f.eof = true
		case k > 0:
			empty = 0 // any other error recurs on the next read
		case rerr != nil:
			err = rerr
		case empty == 99:
			err = errNoProgress
		default:
			empty++
		}
		if err != nil {
			break
		}
	}
	if got == len(dst) {
		f.peek = len(dst) >= directMin && f.w < headerLen // more large frames likely follow
		return nil
	}
	if err == io.EOF {
		f.err = fmt.Errorf("peer closed mid-frame with %d of %d bytes of it received: %w",
			headerLen+got, headerLen+len(dst), io.ErrUnexpectedEOF)
		return f.err
	}
	// Keep what arrived; the next read resumes the frame from buf.
	if need := headerLen + len(dst); len(f.buf) < need {
		if f.keep == 0 {
			f.keep = len(f.buf)
		}
		f.buf = make([]byte, need)
	}
	f.w = copy(f.buf, hdr[:])
	f.w += copy(f.buf[f.w:], dst[:got])
	f.cut = true
	return err
}

// A frameWriter writes messages as length-prefixed frames to dst.
//
// Messages of up to copyMax bytes are copied, with their prefixes, into buf and
// leave in one write per batch (one per len(buf) bytes); larger messages are not
// copied but passed to dst beside buf's segments in one vectored write (net.Buffers,
// writev on a *net.TCPConn).
//
// If a write deadline cuts a frame short, the rest of that frame is copied into
// pend and written first by the next call, so the stream stays framed; the message
// counts as sent. A frameWriter keeps no reference to a caller's message after write
// returns. It is not safe for concurrent use.
type frameWriter struct {
	dst     io.Writer
	buf     []byte      // staging for prefixes and small messages; never reallocated
	seg     int         // start of buf's segment not yet in vec
	vec     net.Buffers // the pending vectored write; elements reference buf and messages
	wv      net.Buffers // vec as handed to WriteTo, which consumes it (a field: no allocation)
	pend    []byte      // rest of a frame cut short by a deadline; pend[pendOff:] is unsent
	pendOff int
	max     int // largest message accepted, bytes
	copyMax int // largest message copied into buf, bytes; at most len(buf)-headerLen
}

// write frames msgs onto dst in order. It returns how many messages were written
// whole (or, after a deadline cut one short, taken over: see frameWriter); on error,
// n counts those before the failure. A message longer than max is not written at
// all: write sends the messages before it and returns an error wrapping
// ErrMessageTooLarge. Errors from dst are returned as is.
func (f *frameWriter) write(msgs [][]byte) (n int, err error) {
	if f.pendOff < len(f.pend) {
		k, err := f.dst.Write(f.pend[f.pendOff:])
		f.pendOff += k
		if err != nil {
			return 0, err
		}
	}
	f.pend, f.pendOff = f.pend[:0], 0
	first := 0 // index of the first message not yet flushed
	for i, m := range msgs {
		if len(m) > f.max {
			if n, err := f.flush(msgs, first, i); err != nil {
				return n, err
			}
			return i, tooLarge("message %d is %d bytes, limit %d", i, len(m), f.max)
		}
		copied := len(m) <= f.copyMax && headerLen+len(m) <= cap(f.buf)
		need := headerLen
		if copied {
			need += len(m)
		}
		if cap(f.buf)-len(f.buf) < need {
			if n, err := f.flush(msgs, first, i); err != nil {
				return n, err
			}
			first = i
		}
		f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(len(m)))
		if copied {
			f.buf = append(f.buf, m...)
			continue
		}
		f.vec = append(f.vec, f.buf[f.seg:], m)
		f.seg = len(f.buf)
	}
	return f.flush(msgs, first, len(msgs))
}

// flush writes what buf and vec hold: the frames of msgs[first:last]. It returns last,
// or on error the index after the last message written whole (or taken over).
func (f *frameWriter) flush(msgs [][]byte, first, last int) (int, error) {
	if f.seg < len(f.buf) {
		f.vec = append(f.vec, f.buf[f.seg:])
	}
	var wrote int64
	var err error
	switch len(f.vec) {
	case 0:
	case 1:
		var k int
		k, err = f.dst.Write(f.vec[0])
		wrote = int64(k)
	default:
		f.wv = f.vec
		wrote, err = f.wv.WriteTo(f.dst)
		f.wv = nil
	}
	clear(f.vec) // drop references to the caller's messages
	f.vec, f.buf, f.seg = f.vec[:0], f.buf[:0], 0
	if err == nil {
		return last, nil
	}
	return f.account(msgs, first, last, wrote, err), err
}

// account returns the index after the last of msgs[first:last] that the first wrote
// bytes of their frames hold whole. If a deadline cut a frame short, it copies the
// frame's unsent rest into pend and counts that message too.
func (f *frameWriter) account(msgs [][]byte, first, last int, wrote int64, err error) int {
	var off int64
	i := first
	for ; i < last; i++ {
		end := off + headerLen + int64(len(msgs[i]))
		if end > wrote {
			break
		}
		off = end
	}
	if i == last || wrote == off || !errors.Is(err, os.ErrDeadlineExceeded) {
		return i
	}
	cut := int(wrote - off) // bytes of frame i already written, 0 < cut < frame length
	var hdr [headerLen]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(msgs[i])))
	f.pend = f.pend[:0]
	if cut < headerLen {
		f.pend = append(f.pend, hdr[cut:]...)
		cut = headerLen
	}
	f.pend = append(f.pend, msgs[i][cut-headerLen:]...)
	f.pendOff = 0
	return i + 1
}
