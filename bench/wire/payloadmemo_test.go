package wire

import "testing"

// TestPayloadMemo: the memo's verdict is VerifyPayload's, message by message, over
// repeats of a good payload (which it remembers), corrupted copies of it, headers
// that carry another CRC, other flows' payloads and short messages; and it
// allocates nothing once it remembers a flow's payload.
func TestPayloadMemo(t *testing.T) {
	good := func(size int, flow uint32) ([]byte, Header) {
		m := make([]byte, size)
		FillPayload(m[HeaderLen:], 7, flow)
		return m, Header{PayloadCRC: PayloadCRC(m[HeaderLen:])}
	}
	a, ha := good(1400, 0)
	b, hb := good(1400, 1)
	c, hc := good(64, 2)
	flip := func(m []byte, i int) []byte {
		x := append([]byte(nil), m...)
		x[i] ^= 0x10
		return x
	}
	type tc struct {
		name string
		msg  []byte
		h    Header
	}
	cases := []tc{
		{"a", a, ha}, {"a again", a, ha}, {"a, last byte flipped", flip(a, len(a)-1), ha},
		{"a, first payload byte flipped", flip(a, HeaderLen), ha}, {"a", a, ha},
		{"a with b's crc", a, hb}, {"b", b, hb}, {"b again", b, hb}, {"a again", a, ha},
		{"a, short by one", a[:len(a)-1], ha}, {"c", c, hc}, {"c again", c, hc},
		{"c with a's crc", c, ha}, {"a's prefix of c's length", a[:64], hc},
		{"header only", a[:HeaderLen], Header{PayloadCRC: PayloadCRC(nil)}}, {"header only again", a[:HeaderLen], Header{PayloadCRC: PayloadCRC(nil)}},
		{"shorter than a header", a[:HeaderLen-1], ha},
	}
	m := &PayloadMemo{}
	for _, x := range cases {
		want := VerifyPayload(x.msg, x.h) == nil
		if got := m.verify(x.msg, x.h); got != want {
			t.Errorf("%s: memo says %v, VerifyPayload %v", x.name, got, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { m.verify(a, ha); m.verify(b, hb) }); allocs != 0 {
		t.Errorf("%.1f allocations per verify of remembered payloads, want 0", allocs)
	}
}
