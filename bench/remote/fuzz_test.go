package remote

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// FuzzDecode: Decode never panics, and what it accepts encodes back to a message
// that decodes equal (decode(encode(m)) == m).
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMsgs() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[4:])
	}
	for _, s := range []string{``, `{}`, `{"v":1}`, `{"v":1,"type":"hello","software":"x","caps":[]}`,
		`{"v":1,"type":"results","id":1,"complete":false,"counters":{"a":[1,{"b":null}]}}`,
		`{"v":1,"type":"test","id":1,"experiment":"stream","transport":"udp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"bidir","params":{}}`,
		`{"v":1,"type":"bye","reason":"\ud800"}`, `{"v":1,"type":"heartbeat","type":"x"}`, `[1,2]`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode(%q) returned %#v with error %v", body, m, err)
			}
			return
		}
		frame, err := Encode(m)
		if err != nil {
			t.Fatalf("Decode(%q) = %#v, which does not encode: %v", body, m, err)
		}
		m2, err := Decode(frame[4:])
		if err != nil {
			t.Fatalf("re-decode of %q: %v", frame[4:], err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", body, m2, m)
		}
	})
}

// FuzzReadFrame: ReadFrame never panics, never returns a body over MaxMsgLen, and
// never reads more than the header and the body it announces.
func FuzzReadFrame(f *testing.F) {
	b, _ := Encode(&Heartbeat{})
	f.Add(b)
	f.Add(binary.BigEndian.AppendUint32(nil, MaxMsgLen+1))
	f.Add(binary.BigEndian.AppendUint32(nil, 0))
	f.Add([]byte{0, 0, 0, 3, '{', '}'})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		body, err := ReadFrame(r)
		read := len(in) - r.Len()
		if err != nil {
			if body != nil {
				t.Fatalf("body with error %v", err)
			}
			if len(in) >= 4 {
				if n := binary.BigEndian.Uint32(in); (n == 0 || n > MaxMsgLen) && read != 4 {
					t.Fatalf("read %d bytes of a frame announcing %d", read, n)
				}
			}
			return
		}
		if len(body) == 0 || len(body) > MaxMsgLen || read != 4+len(body) {
			t.Fatalf("body %d bytes, read %d", len(body), read)
		}
		// A reader that errors mid-body: still no panic.
		if _, err := ReadMsg(io.MultiReader(bytes.NewReader(in[:read/2]), errReader{})); err == nil {
			t.Fatal("ReadMsg of half a frame succeeded")
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

// FuzzParseDatagram: the data-path parser never panics and accepts only datagrams
// that carry the token and a known kind.
func FuzzParseDatagram(f *testing.F) {
	token := bytes.Repeat([]byte{0xab}, tokenLen)
	f.Add(appendDatagram(nil, token, kindProbe, make([]byte, 47)))
	f.Add(appendDatagram(nil, token, kindChallenge, make([]byte, challengeLen)))
	f.Add(appendDatagram(nil, token, kindData, []byte("payload")))
	f.Add(appendDatagram(nil, token, 9, nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, body, err := parseDatagram(b, token)
		if err != nil {
			return
		}
		if !bytes.Equal(b[:tokenLen], token) || len(b) != udpPrefixLen+len(body) {
			t.Fatalf("accepted %x: kind %d body %x", b, kind, body)
		}
		if kind != kindProbe && kind != kindChallenge && kind != kindData {
			t.Fatalf("accepted kind %d", kind)
		}
		if again := appendDatagram(nil, token, kind, body); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x as %x", b, again)
		}
	})
}

// FuzzParseKey: key parsing never panics; an accepted key has no surrounding space
// and at least MinKeyLen bytes.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("0123456789abcdef\n"))
	f.Add([]byte(" \t\n"))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKey(b)
		if err != nil {
			return
		}
		if len(k) < MinKeyLen || !bytes.Equal(k, bytes.TrimSpace(k)) || !bytes.Contains(b, k) {
			t.Fatalf("parseKey(%q) = %q", b, k)
		}
	})
}

// FuzzAmpBudget drives the anti-amplification budget with op-encoded input (each
// pair of bytes: an address 0..31, and a received size or a send) and checks that
// no address ever gets more than it sent, and no more than maxChallenges challenges,
// however the bounded table forgets.
func FuzzAmpBudget(f *testing.F) {
	f.Add([]byte{1, 64, 1, 0, 1, 0, 2, 20, 2, 0})
	f.Add(bytes.Repeat([]byte{3, 40, 3, 0}, 20))
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := newAmpBudget()
		recv := map[netip.AddrPort]int{}
		sent := map[netip.AddrPort]int{}
		for i := 0; i+1 < len(ops); i += 2 {
			a := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 1000+uint16(ops[i]%32))
			if n := int(ops[i+1]); n > 0 {
				b.received(a, n)
				recv[a] += n
				continue
			}
			if b.spendChallenge(a, challengeDgm) {
				sent[a] += challengeDgm
			}
			if len(b.m) > maxAmpAddrs || len(b.order) != len(b.m) {
				t.Fatalf("table holds %d addresses (%d in order), at most %d", len(b.m), len(b.order), maxAmpAddrs)
			}
		}
		for a, s := range sent {
			if s > recv[a] {
				t.Fatalf("%v: sent %d bytes, received %d", a, s, recv[a])
			}
		}
	})
}

// FuzzNonceCache: whatever the sequence, a nonce is refused while held, the cache
// never exceeds its capacity, and a nonce just added is held.
func FuzzNonceCache(f *testing.F) {
	f.Add([]byte{1, 2, 1, 3, 4, 5, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := newNonceCache(4, time.Minute)
		now := time.Unix(0, 0)
		for _, op := range ops {
			now = now.Add(time.Duration(op>>4) * 10 * time.Second)
			n := bytes.Repeat([]byte{op & 0x0f}, nonceLen)
			c.add(n, now)
			if c.add(n, now) {
				t.Fatalf("nonce %d accepted twice at once", op&0x0f)
			}
			if c.len() > 4 {
				t.Fatalf("cache holds %d, capacity 4", c.len())
			}
		}
	})
}
