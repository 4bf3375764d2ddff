package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync"
)

// HeaderLen is the size in bytes of the header that starts every message.
//
// The header is big-endian:
//
//	 0 magic   uint32 = 0x54565544 ("TVUD")
//	 4 version uint8  = 1
//	 5 kind    uint8
//	 6 flags   uint16 = 0 (reserved; nonzero is rejected)
//	 8 run     uint64 run id (nonzero)
//	16 flow    uint32 flow id
//	20 length  uint32 whole message length, header included (HeaderLen ≤ length ≤ MaxMessageLen)
//	24 seq     uint64
//	32 send    int64  send time, ns since the run's epoch (monotonic)
//	40 pcrc    uint32 CRC32C (Castagnoli) of the payload, bytes [HeaderLen:length]
//	44 hcrc    uint32 CRC32C of bytes [0:44]
const HeaderLen = 48

// MaxMessageLen is the largest message length, in bytes, a header may declare (16 MiB).
const MaxMessageLen = 1 << 24

const (
	headerMagic   = 0x54565544 // "TVUD"
	headerVersion = 1
	hcrcOffset    = 44 // the header CRC covers bytes [0:hcrcOffset]
)

// castagnoli is the CRC32C table; hash/crc32 uses the SSE4.2 or ARMv8 CRC
// instructions for it where the CPU has them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Kind says what a message is for.
type Kind uint8

// The kinds of message. Only these decode; any other value is ErrMalformed.
const (
	KindData    Kind = 1 // measured payload
	KindWarmup  Kind = 2 // sent before the measured interval; excluded from counters and sequence space
	KindEnd     Kind = 3 // end of a flow; sent more than once
	KindRequest Kind = 4 // request of a request/reply transaction
	KindReply   Kind = 5 // reply to a KindRequest, echoing its seq and send time
)

// String returns the kind's lower-case name, or "kind(N)" for an unknown value.
func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindWarmup:
		return "warmup"
	case KindEnd:
		return "end"
	case KindRequest:
		return "request"
	case KindReply:
		return "reply"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

func (k Kind) known() bool { return k >= KindData && k <= KindReply }

// Header is the decoded form of a message's first HeaderLen bytes. Magic, version,
// flags and the header CRC are not fields: PutHeader writes them and DecodeHeader
// checks them.
type Header struct {
	Kind       Kind
	Run        uint64 // run id; nonzero, tells this run's messages from an earlier one's
	Flow       uint32 // flow id within the run
	Len        uint32 // whole message length in bytes, header included
	Seq        uint64 // sequence number within the flow
	SendNs     int64  // send time, ns since the run's epoch (monotonic clock)
	PayloadCRC uint32 // CRC32C (Castagnoli) of bytes [HeaderLen:Len]
}

// Sentinel errors of DecodeHeader and VerifyPayload. The errors those functions
// return wrap one of these (test with errors.Is) and add the offending values.
var (
	// ErrShort is a message shorter than HeaderLen.
	ErrShort = errors.New("bench: message shorter than header")
	// ErrForeign is a message without our magic number: not one of ours.
	ErrForeign = errors.New("bench: foreign message (bad magic)")
	// ErrVersion is one of our messages with a header version this build does not speak.
	ErrVersion = errors.New("bench: unsupported header version")
	// ErrMalformed is a header that breaks a rule: reserved flags set, unknown kind,
	// run id 0, or a length out of range or different from the message's.
	ErrMalformed = errors.New("bench: malformed header")
	// ErrCorrupt is a CRC32C mismatch, of the header or of the payload.
	ErrCorrupt = errors.New("bench: corrupt message (CRC32C mismatch)")
)

// headerError is a decode error with details. Only the struct is allocated when a
// message is rejected; the text is formatted when someone asks for it.
type headerError struct {
	err  error  // one of the sentinels
	what string // the field or check that failed
	got  uint64
	want uint64
}

func (e *headerError) Error() string {
	return fmt.Sprintf("%v: %s: got %#x, want %#x", e.err, e.what, e.got, e.want)
}

func (e *headerError) Unwrap() error { return e.err }

// lengthError reports a message length; lengths read better in decimal.
type lengthError headerError

func (e *lengthError) Error() string {
	return fmt.Sprintf("%v: %s: got %d, want %d", e.err, e.what, e.got, e.want)
}

func (e *lengthError) Unwrap() error { return e.err }

// PayloadCRC returns the CRC32C (Castagnoli) of a payload: the bytes of a message
// after its header. Payloads do not change between sends, so callers compute it once.
func PayloadCRC(payload []byte) uint32 {
	return crc32.Checksum(payload, castagnoli)
}

// PutHeader writes h into msg[:HeaderLen], with magic, version, zero flags and the
// header CRC. It writes h.Len and h.PayloadCRC as given: the caller sets Len to
// len(msg) and PayloadCRC to PayloadCRC(msg[HeaderLen:]). It panics only if msg is
// shorter than HeaderLen, which is a programming error. It does not allocate.
func PutHeader(msg []byte, h Header) {
	b := msg[:HeaderLen:HeaderLen]
	binary.BigEndian.PutUint32(b[0:], headerMagic)
	b[4] = headerVersion
	b[5] = byte(h.Kind)
	binary.BigEndian.PutUint16(b[6:], 0)
	binary.BigEndian.PutUint64(b[8:], h.Run)
	binary.BigEndian.PutUint32(b[16:], h.Flow)
	binary.BigEndian.PutUint32(b[20:], h.Len)
	binary.BigEndian.PutUint64(b[24:], h.Seq)
	binary.BigEndian.PutUint64(b[32:], uint64(h.SendNs))
	binary.BigEndian.PutUint32(b[40:], h.PayloadCRC)
	binary.BigEndian.PutUint32(b[hcrcOffset:], crc32.Checksum(b[:hcrcOffset], castagnoli))
}

// DecodeHeader reads and checks the header of msg, which must be one whole message.
// It checks, in order: length ≥ HeaderLen (ErrShort), magic (ErrForeign), version
// (ErrVersion), the header CRC (ErrCorrupt), then flags = 0, a known kind, run id ≠ 0,
// HeaderLen ≤ length ≤ MaxMessageLen and length = len(msg) (ErrMalformed). It does
// not check the payload: see VerifyPayload. It never panics and does not allocate
// unless it returns an error.
func DecodeHeader(msg []byte) (Header, error) {
	if len(msg) < HeaderLen {
		return Header{}, &lengthError{ErrShort, "message length", uint64(len(msg)), HeaderLen}
	}
	b := msg[:HeaderLen:HeaderLen]
	if m := binary.BigEndian.Uint32(b[0:]); m != headerMagic {
		return Header{}, &headerError{ErrForeign, "magic", uint64(m), headerMagic}
	}
	if v := b[4]; v != headerVersion {
		return Header{}, &headerError{ErrVersion, "version", uint64(v), headerVersion}
	}
	if got, want := binary.BigEndian.Uint32(b[hcrcOffset:]), crc32.Checksum(b[:hcrcOffset], castagnoli); got != want {
		return Header{}, &headerError{ErrCorrupt, "header crc32c", uint64(got), uint64(want)}
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		return Header{}, &headerError{ErrMalformed, "flags", uint64(f), 0}
	}
	h := Header{
		Kind:       Kind(b[5]),
		Run:        binary.BigEndian.Uint64(b[8:]),
		Flow:       binary.BigEndian.Uint32(b[16:]),
		Len:        binary.BigEndian.Uint32(b[20:]),
		Seq:        binary.BigEndian.Uint64(b[24:]),
		SendNs:     int64(binary.BigEndian.Uint64(b[32:])),
		PayloadCRC: binary.BigEndian.Uint32(b[40:]),
	}
	switch {
	case !h.Kind.known():
		return Header{}, &headerError{ErrMalformed, "kind", uint64(h.Kind), uint64(KindData)}
	case h.Run == 0:
		return Header{}, &headerError{ErrMalformed, "run id", 0, 1}
	case h.Len < HeaderLen:
		return Header{}, &lengthError{ErrMalformed, "length field below header length", uint64(h.Len), HeaderLen}
	case h.Len > MaxMessageLen:
		return Header{}, &lengthError{ErrMalformed, "length field above maximum", uint64(h.Len), MaxMessageLen}
	case uint64(h.Len) != uint64(len(msg)):
		return Header{}, &lengthError{ErrMalformed, "length field vs message length", uint64(h.Len), uint64(len(msg))}
	}
	return h, nil
}

// VerifyPayload checks the payload of msg, the whole message h was decoded from,
// against h.PayloadCRC; a mismatch is ErrCorrupt. It does not allocate unless it
// returns an error.
func VerifyPayload(msg []byte, h Header) error {
	if len(msg) < HeaderLen {
		return &lengthError{ErrShort, "message length", uint64(len(msg)), HeaderLen}
	}
	if got := PayloadCRC(msg[HeaderLen:]); got != h.PayloadCRC {
		return &headerError{ErrCorrupt, "payload crc32c", uint64(got), uint64(h.PayloadCRC)}
	}
	return nil
}

// FillPayload fills p with pseudo-random bytes from a PCG generator (math/rand/v2)
// seeded with (seed, flow), so a payload is reproducible from the run's recorded seed
// and does not compress (PITFALLS.md #15). Shorter fills are prefixes of longer ones
// with the same seed and flow. It does not allocate.
func FillPayload(p []byte, seed int64, flow uint32) {
	var g rand.PCG
	g.Seed(uint64(seed), uint64(flow))
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, g.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		v := g.Uint64()
		for i := range p {
			p[i] = byte(v >> (8 * i))
		}
	}
}

// headerStamper writes the headers of one flow's messages of one kind, which differ
// only in seq, send time and header CRC: the fields they share are written into a
// buffer once (putShared), and each message then needs only stamp, which writes seq
// and send time and derives the header CRC without running CRC32C over each header.
//
// The derivation uses CRC32C's linearity. Over messages of one length, CRC(x) =
// L(x) ⊕ CRC(0…0) with L linear over GF(2), so for headers that differ only in
// disjoint fields, CRC(shared ⊕ seq ⊕ time) = CRC(shared) ⊕ L(seq) ⊕ L(time), each
// term the CRC of the header with only that field set (the others zero). L(time)
// is one CRC per batch (timeCRC: a batch shares its send time); L(seq) is eight
// lookups, one per byte of seq (seqCRCTables). The result is the CRC PutHeader
// writes, bit for bit (TestHeaderStamper).
type HeaderStamper struct {
	shared [HeaderLen]byte  // the header with seq, send time and header CRC zero
	crc    uint32           // CRC32C of shared[:hcrcOffset]
	seqL   *[8][256]uint32  // seqCRCTables
	tbuf   [hcrcOffset]byte // timeCRC's header with only the send time set (a local would escape)
}

// newHeaderStamper returns the stamper of messages with h's kind, run, flow, length
// and payload CRC; h's seq and send time are ignored.
func NewHeaderStamper(h Header) HeaderStamper {
	h.Seq, h.SendNs = 0, 0
	var s HeaderStamper
	PutHeader(s.shared[:], h)
	binary.BigEndian.PutUint32(s.shared[hcrcOffset:], 0)
	s.crc = crc32.Checksum(s.shared[:hcrcOffset], castagnoli)
	s.seqL = seqCRCTables()
	return s
}

// PutShared writes the shared fields into msg[:HeaderLen]; stamp completes it.
func (s *HeaderStamper) PutShared(msg []byte) {
	copy(msg[:HeaderLen], s.shared[:])
}

// timeCRC returns CRC(shared) ⊕ L(send time sendNs): the part of the header CRC
// every message sent at sendNs shares.
func (s *HeaderStamper) timeCRC(sendNs int64) uint32 {
	binary.BigEndian.PutUint64(s.tbuf[32:], uint64(sendNs))
	return s.crc ^ crc32.Checksum(s.tbuf[:], castagnoli) ^ zeroHeaderCRC
}

// Stamp completes the headers of msgs, whose shared fields putShared wrote: msgs[i]
// gets seq firstSeq+i, the send time sendNs, and its header CRC.
func (s *HeaderStamper) Stamp(msgs [][]byte, firstSeq uint64, sendNs int64) {
	base := s.timeCRC(sendNs)
	t := s.seqL
	for i, m := range msgs {
		b := m[:HeaderLen:HeaderLen]
		seq := firstSeq + uint64(i)
		binary.BigEndian.PutUint64(b[24:], seq)
		binary.BigEndian.PutUint64(b[32:], uint64(sendNs))
		c := base ^ t[0][byte(seq>>56)] ^ t[1][byte(seq>>48)] ^ t[2][byte(seq>>40)] ^ t[3][byte(seq>>32)] ^
			t[4][byte(seq>>24)] ^ t[5][byte(seq>>16)] ^ t[6][byte(seq>>8)] ^ t[7][byte(seq)]
		binary.BigEndian.PutUint32(b[hcrcOffset:], c)
	}
}

// zeroHeaderCRC is the CRC32C of hcrcOffset zero bytes: CRC(x) ⊕ zeroHeaderCRC is
// L(x), the linear part, for x of that length.
var zeroHeaderCRC = crc32.Checksum(make([]byte, hcrcOffset), castagnoli)

// seqCRCTables returns L of the header bytes [0:hcrcOffset] with only seq's byte i
// (big-endian, at offset 24+i) set to v, as [i][v]: L of a whole seq is the XOR of
// its eight bytes' entries. Built on first use (2048 CRCs of 44 bytes, about 30 µs).
var seqCRCTables = sync.OnceValue(func() *[8][256]uint32 {
	t := new([8][256]uint32)
	var b [hcrcOffset]byte
	for i := range t {
		for v := range t[i] {
			b[24+i] = byte(v)
			t[i][v] = crc32.Checksum(b[:], castagnoli) ^ zeroHeaderCRC
		}
		b[24+i] = 0
	}
	return t
})
