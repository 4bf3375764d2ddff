package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
)

// validMessage returns a message of n bytes (n ≥ HeaderLen) with a seeded payload
// and a header describing it.
func validMessage(tb testing.TB, n int, h Header) ([]byte, Header) {
	tb.Helper()
	msg := make([]byte, n)
	FillPayload(msg[HeaderLen:], 42, h.Flow)
	h.Len = uint32(n)
	h.PayloadCRC = PayloadCRC(msg[HeaderLen:])
	PutHeader(msg, h)
	return msg, h
}

var sampleHeader = Header{Kind: KindData, Run: 0x0102030405060708, Flow: 7, Seq: 1 << 40, SendNs: 123456789}

func TestHeaderRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		size int
		h    Header
	}{
		{"header only", HeaderLen, Header{Kind: KindEnd, Run: 1}},
		{"data 1400", 1400, sampleHeader},
		{"warmup", 64, Header{Kind: KindWarmup, Run: 9, Flow: 3, Seq: 0}},
		{"request", 100, Header{Kind: KindRequest, Run: 2, Seq: 5, SendNs: -1}},
		{"reply max values", 200, Header{Kind: KindReply, Run: math.MaxUint64, Flow: math.MaxUint32, Seq: math.MaxUint64, SendNs: math.MinInt64}},
		{"largest udp payload", 65507, sampleHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, want := validMessage(t, tc.size, tc.h)
			got, err := DecodeHeader(msg)
			if err != nil {
				t.Fatalf("DecodeHeader(%+v) = %v", want, err)
			}
			if got != want {
				t.Fatalf("DecodeHeader: got %+v, want %+v", got, want)
			}
			if err := VerifyPayload(msg, got); err != nil {
				t.Fatalf("VerifyPayload: %v", err)
			}
		})
	}
}

// TestHeaderLayout pins the wire format byte by byte, so a change to it is deliberate.
func TestHeaderLayout(t *testing.T) {
	msg := make([]byte, HeaderLen)
	PutHeader(msg, Header{Kind: KindRequest, Run: 0x1112131415161718, Flow: 0x21222324, Len: HeaderLen,
		Seq: 0x3132333435363738, SendNs: 0x4142434445464748, PayloadCRC: 0x51525354})
	want := []byte{
		'T', 'V', 'U', 'D', 1, 4, 0, 0,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		0x21, 0x22, 0x23, 0x24, 0, 0, 0, HeaderLen,
		0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
		0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
		0x51, 0x52, 0x53, 0x54,
	}
	if !bytes.Equal(msg[:44], want) {
		t.Fatalf("header bytes:\ngot  % x\nwant % x", msg[:44], want)
	}
	if got, want := binary.BigEndian.Uint32(msg[44:]), PayloadCRC(msg[:44]); got != want {
		t.Fatalf("hcrc: got %#x, want CRC32C of bytes [0:44] = %#x", got, want)
	}
	// CRC32C known answer (RFC 3720 B.4: 32 bytes of zeros).
	if got := PayloadCRC(make([]byte, 32)); got != 0x8a9136aa {
		t.Fatalf("CRC32C(32 zero bytes) = %#x, want 0x8a9136aa", got)
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	good, _ := validMessage(t, 100, sampleHeader)
	// rewrite patches a valid message, then fixes its header CRC unless the
	// test is about the CRC.
	rewrite := func(fixCRC bool, patch func(b []byte)) []byte {
		b := bytes.Clone(good)
		patch(b)
		if fixCRC {
			binary.BigEndian.PutUint32(b[44:], PayloadCRC(b[:44]))
		}
		return b
	}
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"nil", nil, ErrShort},
		{"47 bytes", good[:47], ErrShort},
		{"bad magic", rewrite(true, func(b []byte) { b[0] = 'X' }), ErrForeign},
		{"all zeros", make([]byte, 100), ErrForeign},
		{"version 2", rewrite(true, func(b []byte) { b[4] = 2 }), ErrVersion},
		{"version 0", rewrite(true, func(b []byte) { b[4] = 0 }), ErrVersion},
		{"header crc", rewrite(false, func(b []byte) { b[44] ^= 1 }), ErrCorrupt},
		{"seq changed without crc", rewrite(false, func(b []byte) { b[31]++ }), ErrCorrupt},
		{"flags set", rewrite(true, func(b []byte) { b[7] = 1 }), ErrMalformed},
		{"kind 0", rewrite(true, func(b []byte) { b[5] = 0 }), ErrMalformed},
		{"kind 6", rewrite(true, func(b []byte) { b[5] = 6 }), ErrMalformed},
		{"run 0", rewrite(true, func(b []byte) { clear(b[8:16]) }), ErrMalformed},
		{"length below header", rewrite(true, func(b []byte) { binary.BigEndian.PutUint32(b[20:], 47) }), ErrMalformed},
		{"length above max", rewrite(true, func(b []byte) { binary.BigEndian.PutUint32(b[20:], MaxMessageLen+1) }), ErrMalformed},
		{"length longer than message", rewrite(true, func(b []byte) { binary.BigEndian.PutUint32(b[20:], 101) }), ErrMalformed},
		{"length shorter than message", rewrite(true, func(b []byte) { binary.BigEndian.PutUint32(b[20:], 99) }), ErrMalformed},
		{"truncated message", good[:99], ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := DecodeHeader(tc.msg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeHeader(% x) = %+v, %v; want %v", tc.msg, h, err, tc.want)
			}
			if h != (Header{}) {
				t.Errorf("DecodeHeader returned %+v with its error, want the zero Header", h)
			}
			if err.Error() == tc.want.Error() {
				t.Errorf("error %q carries no detail beyond its sentinel", err)
			}
		})
	}
}

func TestVerifyPayload(t *testing.T) {
	msg, h := validMessage(t, 300, sampleHeader)
	if err := VerifyPayload(msg, h); err != nil {
		t.Fatalf("intact payload: %v", err)
	}
	msg[200] ^= 0x80
	if err := VerifyPayload(msg, h); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped payload bit: got %v, want ErrCorrupt", err)
	}
	if err := VerifyPayload(msg[:10], h); !errors.Is(err, ErrShort) {
		t.Fatalf("10-byte message: got %v, want ErrShort", err)
	}
}

// TestHeaderBitFlips flips every bit of valid messages, one at a time: each flip
// must be detected, by DecodeHeader or by VerifyPayload.
func TestHeaderBitFlips(t *testing.T) {
	cases := []struct {
		name string
		size int
		h    Header
	}{
		{"header only", HeaderLen, Header{Kind: KindEnd, Run: 3, Seq: 9}},
		{"small payload", 61, sampleHeader},
		{"mtu payload", 1472, Header{Kind: KindRequest, Run: 77, Flow: 1, Seq: 12345, SendNs: 1e9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, _ := validMessage(t, tc.size, tc.h)
			for bit := range len(msg) * 8 {
				msg[bit/8] ^= 1 << (bit % 8)
				h, err := DecodeHeader(msg)
				if err == nil {
					err = VerifyPayload(msg, h)
				}
				if err == nil {
					t.Fatalf("flipping bit %d (byte %d) went undetected: decoded %+v", bit, bit/8, h)
				}
				msg[bit/8] ^= 1 << (bit % 8)
			}
			if _, err := DecodeHeader(msg); err != nil {
				t.Fatalf("message not restored: %v", err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	cases := []struct {
		k    Kind
		want string
	}{
		{KindData, "data"}, {KindWarmup, "warmup"}, {KindEnd, "end"},
		{KindRequest, "request"}, {KindReply, "reply"}, {0, "kind(0)"}, {200, "kind(200)"},
	}
	for _, tc := range cases {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(tc.k), got, tc.want)
		}
	}
}

func TestFillPayload(t *testing.T) {
	a := make([]byte, 1000)
	b := make([]byte, 1000)
	FillPayload(a, 1, 2)
	FillPayload(b, 1, 2)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed and flow gave different payloads")
	}
	short := make([]byte, 13)
	FillPayload(short, 1, 2)
	if !bytes.Equal(short, a[:13]) {
		t.Fatalf("13-byte fill % x is not a prefix of the 1000-byte fill % x", short, a[:13])
	}
	FillPayload(b, 1, 3)
	if bytes.Equal(a, b) {
		t.Fatal("flows 2 and 3 gave the same payload")
	}
	FillPayload(b, 2, 2)
	if bytes.Equal(a, b) {
		t.Fatal("seeds 1 and 2 gave the same payload")
	}
	// Pseudo-random, so it does not compress: every byte value turns up.
	big := make([]byte, 1<<16)
	FillPayload(big, 7, 0)
	var seen [256]bool
	for _, c := range big {
		seen[c] = true
	}
	for v, ok := range seen {
		if !ok {
			t.Fatalf("byte value %d never appears in 64 KiB of payload", v)
		}
	}
}

func TestHeaderAllocs(t *testing.T) {
	msg, h := validMessage(t, 1400, sampleHeader)
	stamper := NewHeaderStamper(h)
	msgs := [][]byte{msg}
	cases := []struct {
		name string
		f    func()
	}{
		{"PutHeader", func() { PutHeader(msg, h) }},
		{"DecodeHeader", func() {
			if _, err := DecodeHeader(msg); err != nil {
				panic(err)
			}
		}},
		{"VerifyPayload", func() {
			if err := VerifyPayload(msg, h); err != nil {
				panic(err)
			}
		}},
		{"FillPayload", func() { FillPayload(msg[HeaderLen:], 1, 1) }},
		{"headerStamper", func() { stamper.Stamp(msgs, h.Seq+1, h.SendNs+1) }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, n)
		}
	}
}

// TestHeaderStamper: the headers a headerStamper writes, shared fields once and
// then seq, send time and the CRC derived by linearity, are PutHeader's, byte for
// byte, for every field at its extremes and for seqs that carry across bytes.
func TestHeaderStamper(t *testing.T) {
	shared := []Header{
		{Kind: KindData, Run: 1, Flow: 0, Len: 64, PayloadCRC: 0},
		{Kind: KindWarmup, Run: math.MaxUint64, Flow: math.MaxUint32, Len: MaxMessageLen, PayloadCRC: math.MaxUint32},
		{Kind: KindData, Run: 0x0102030405060708, Flow: 7, Len: 1400, PayloadCRC: 0xdeadbeef},
	}
	seqs := []uint64{0, 1, 255, 256, 0xffff, 1 << 16, 1<<24 - 1, 1 << 40, math.MaxUint64 - 1, math.MaxUint64}
	times := []int64{0, 1, -1, 123456789, math.MaxInt64, math.MinInt64}
	for _, sh := range shared {
		t.Run(fmt.Sprintf("%v/run=%#x/flow=%d/len=%d", sh.Kind, sh.Run, sh.Flow, sh.Len), func(t *testing.T) {
			hs := NewHeaderStamper(Header{Kind: sh.Kind, Run: sh.Run, Flow: sh.Flow, Len: sh.Len, PayloadCRC: sh.PayloadCRC, Seq: 99, SendNs: 99})
			got, want := make([]byte, HeaderLen), make([]byte, HeaderLen)
			hs.PutShared(got)
			for _, ns := range times {
				for _, seq := range seqs {
					h := sh
					h.Seq, h.SendNs = seq, ns
					PutHeader(want, h)
					hs.Stamp([][]byte{got}, seq, ns)
					if !bytes.Equal(got, want) {
						t.Fatalf("seq %#x send %d:\ngot  % x\nwant % x", seq, ns, got, want)
					}
				}
			}
			// A batch: consecutive seqs from firstSeq, one send time, carries across bytes.
			batch := make([][]byte, 600)
			for i := range batch {
				batch[i] = make([]byte, HeaderLen)
			}
			for _, b := range batch {
				hs.PutShared(b)
			}
			for _, first := range []uint64{0, 1<<16 - 300, math.MaxUint64 - 599} {
				hs.Stamp(batch, first, 42)
				for i, b := range batch {
					h := sh
					h.Seq, h.SendNs = first+uint64(i), 42
					PutHeader(want, h)
					if !bytes.Equal(b, want) {
						t.Fatalf("batch from seq %#x, message %d:\ngot  % x\nwant % x", first, i, b, want)
					}
				}
			}
		})
	}
}

// FuzzHeaderStamper: for any header, the stamper's bytes are PutHeader's.
func FuzzHeaderStamper(f *testing.F) {
	f.Add(uint8(KindData), uint64(1), uint32(0), uint32(64), uint32(0), uint64(0), int64(0))
	f.Add(uint8(KindWarmup), uint64(math.MaxUint64), uint32(3), uint32(1400), uint32(0x12345678), uint64(1<<63+5), int64(-7))
	f.Fuzz(func(t *testing.T, kind uint8, run uint64, flow, length, pcrc uint32, seq uint64, ns int64) {
		h := Header{Kind: Kind(kind), Run: run, Flow: flow, Len: length, PayloadCRC: pcrc, Seq: seq, SendNs: ns}
		want := make([]byte, HeaderLen)
		PutHeader(want, h)
		hs := NewHeaderStamper(h)
		got := make([]byte, HeaderLen)
		hs.PutShared(got)
		hs.Stamp([][]byte{got}, seq, ns)
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v:\ngot  % x\nwant % x", h, got, want)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	good, _ := validMessage(f, 80, sampleHeader)
	f.Add(good)
	f.Add(good[:HeaderLen])
	f.Add([]byte{})
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, msg []byte) {
		check := func(msg []byte) {
			h, err := DecodeHeader(msg) // must not panic
			if err != nil {
				if h != (Header{}) {
					t.Fatalf("error %v came with a nonzero header %+v", err, h)
				}
				return
			}
			_ = VerifyPayload(msg, h)
			// A message that decodes re-encodes to the same header bytes.
			again := bytes.Clone(msg)
			PutHeader(again, h)
			if !bytes.Equal(again[:HeaderLen], msg[:HeaderLen]) {
				t.Fatalf("re-encoding %+v:\ngot  % x\nwant % x", h, again[:HeaderLen], msg[:HeaderLen])
			}
		}
		check(msg)
		// Random bytes almost never pass the header CRC; give the checks behind it
		// a chance too, with magic, version and hcrc made right.
		if len(msg) >= HeaderLen {
			fixed := bytes.Clone(msg)
			binary.BigEndian.PutUint32(fixed[0:], headerMagic)
			fixed[4] = headerVersion
			binary.BigEndian.PutUint32(fixed[44:], PayloadCRC(fixed[:44]))
			check(fixed)
		}
	})
}

// FuzzHeaderRoundTrip checks decode(encode(h)) == h for every valid header.
func FuzzHeaderRoundTrip(f *testing.F) {
	f.Add(uint8(1), uint64(1), uint32(0), uint64(0), int64(0), uint16(0))
	f.Add(uint8(5), uint64(math.MaxUint64), uint32(math.MaxUint32), uint64(math.MaxUint64), int64(math.MinInt64), uint16(1400))
	f.Fuzz(func(t *testing.T, kind uint8, run uint64, flow uint32, seq uint64, sendNs int64, payload uint16) {
		h := Header{Kind: Kind(kind%5 + 1), Run: run | 1, Flow: flow, Seq: seq, SendNs: sendNs}
		msg := make([]byte, HeaderLen+int(payload))
		FillPayload(msg[HeaderLen:], int64(seq), flow)
		h.Len = uint32(len(msg))
		h.PayloadCRC = PayloadCRC(msg[HeaderLen:])
		PutHeader(msg, h)
		got, err := DecodeHeader(msg)
		if err != nil {
			t.Fatalf("DecodeHeader(encode(%+v)) = %v", h, err)
		}
		if got != h {
			t.Fatalf("decode(encode(h)): got %+v, want %+v", got, h)
		}
		if err := VerifyPayload(msg, got); err != nil {
			t.Fatalf("VerifyPayload: %v", err)
		}
	})
}

func BenchmarkHeader(b *testing.B) {
	msg, h := validMessage(b, 1400, sampleHeader)
	b.Run("op=put", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			PutHeader(msg, h)
		}
	})
	b.Run("op=decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeHeader(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=verify/size=1400", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if err := VerifyPayload(msg, h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
