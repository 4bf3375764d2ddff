package wire

import "testing"

// TestAcceptVerify is accept's known answer under each policy: a message whose
// payload was changed after its CRC was computed is corrupt under VerifyPayloadCRC and
// accepted under VerifyHeaderCRC; a changed header is corrupt under both.
func TestAcceptVerify(t *testing.T) {
	const run = 0x5eed
	msg := func(mutate func(m []byte)) []byte {
		m := make([]byte, 200)
		FillPayload(m[HeaderLen:], 7, 0)
		PutHeader(m, Header{Kind: KindData, Run: run, Len: uint32(len(m)), Seq: 3, PayloadCRC: PayloadCRC(m[HeaderLen:])})
		if mutate != nil {
			mutate(m)
		}
		return m
	}
	other := make([]byte, 200)
	PutHeader(other, Header{Kind: KindData, Run: run + 1, Len: 200, PayloadCRC: PayloadCRC(other[HeaderLen:])})
	tests := []struct {
		name   string
		msg    []byte
		verify Verify
		ok     bool
		want   Rejects
	}{
		{"intact, payload policy", msg(nil), VerifyPayloadCRC, true, Rejects{}},
		{"intact, header policy", msg(nil), VerifyHeaderCRC, true, Rejects{}},
		{"payload bit flipped, payload policy", msg(func(m []byte) { m[150] ^= 1 }), VerifyPayloadCRC, false, Rejects{Corrupt: 1}},
		{"payload bit flipped, header policy", msg(func(m []byte) { m[150] ^= 1 }), VerifyHeaderCRC, true, Rejects{}},
		{"header bit flipped, payload policy", msg(func(m []byte) { m[26] ^= 1 }), VerifyPayloadCRC, false, Rejects{Corrupt: 1}},
		{"header bit flipped, header policy", msg(func(m []byte) { m[26] ^= 1 }), VerifyHeaderCRC, false, Rejects{Corrupt: 1}},
		{"another run, header policy", other, VerifyHeaderCRC, false, Rejects{Foreign: 1}},
		{"not ours, header policy", make([]byte, 100), VerifyHeaderCRC, false, Rejects{Foreign: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Rejects
			h, ok := r.Accept(tc.msg, run, tc.verify)
			if ok != tc.ok || r != tc.want {
				t.Errorf("accept under %v: ok %v, rejects %+v; want ok %v, rejects %+v", tc.verify, ok, r, tc.ok, tc.want)
			}
			if ok && h.Seq != 3 {
				t.Errorf("accepted header seq %d, want 3", h.Seq)
			}
		})
	}
}

func TestParseVerify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Verify
		err  bool
	}{
		{"", VerifyPayloadCRC, false},
		{"payload", VerifyPayloadCRC, false},
		{"header", VerifyHeaderCRC, false},
		{"off", 0, true},
		{"Payload", 0, true},
	} {
		got, err := ParseVerify(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseVerify(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && tc.in != "" && got.String() != tc.in {
			t.Errorf("ParseVerify(%q).String() = %q", tc.in, got.String())
		}
	}
}
