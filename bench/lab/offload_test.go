package lab

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// superPacket builds a TCP or UDP super-packet of n payload bytes and the vnet
// header the kernel would hand a reader with it (partial checksum, segments of size).
func superPacket(tb testing.TB, v6 bool, proto uint8, n, size int) (vnetHdr, []byte) {
	tb.Helper()
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	pkt := buildPacket(tb, pktSpec{v6: v6, proto: proto, payload: payload, srcPort: 5000, dstPort: 6000, tcpOpts: 12})
	lo, ok := layout(pkt, 0)
	if !ok {
		tb.Fatalf("layout of the built packet failed")
	}
	if proto == protoTCP {
		binary.BigEndian.PutUint32(pkt[lo.l4+4:], 1000) // seq
	}
	if !v6 {
		binary.BigEndian.PutUint16(pkt[4:], 77) // id
		ipv4HeaderChecksum(pkt, 20)
	}
	setPartial(pkt, lo)
	h := vnetHdr{flags: vnetNeedsCsum, gsoSize: uint16(size), hdrLen: uint16(lo.hdr), csumStart: uint16(lo.l4), csumOffset: uint16(lo.csum - lo.l4)}
	switch {
	case proto == protoUDP:
		h.gsoType = vnetGSOUDPL4
	case v6:
		h.gsoType = vnetGSOTCPv6
	default:
		h.gsoType = vnetGSOTCPv4
	}
	return h, pkt
}

var gsoCases = []struct {
	name  string
	v6    bool
	proto uint8
	n     int
	size  int
}{
	{"tcp4", false, protoTCP, 10000, 1448},
	{"tcp6", true, protoTCP, 10000, 1428},
	{"udp4", false, protoUDP, 12000, 1200}, // a whole number of segments
	{"udp6", true, protoUDP, 5000, 1200},
	{"tcp4 one segment", false, protoTCP, 100, 1448},
}

// TestSplitGSO: every packet of a super-packet carries its own slice of the payload,
// lengths, id, sequence number and flags, and a checksum that finishChecksum makes
// whole and the receiver then verifies.
func TestSplitGSO(t *testing.T) {
	for _, tc := range gsoCases {
		t.Run(tc.name, func(t *testing.T) {
			h, super := superPacket(t, tc.v6, tc.proto, tc.n, tc.size)
			lo, _ := layout(super, 0)
			var segs [][]byte
			if err := splitGSO(h, bytes.Clone(super), make([]byte, maxPacket), func(p []byte) { segs = append(segs, bytes.Clone(p)) }); err != nil {
				t.Fatal(err)
			}
			if want := (tc.n + tc.size - 1) / tc.size; len(segs) != want {
				t.Fatalf("%d packets, want %d", len(segs), want)
			}
			for i, seg := range segs {
				last := i == len(segs)-1
				from := i * tc.size
				to := min(from+tc.size, tc.n)
				if !bytes.Equal(seg[lo.hdr:], super[lo.hdr+from:lo.hdr+to]) {
					t.Errorf("packet %d: payload is not bytes %d..%d of the super-packet", i, from, to)
				}
				finishChecksum(seg)
				if ip, l4 := checksumsOK(t, seg); !ip || !l4 {
					t.Errorf("packet %d: checksums ip %v, transport %v; want both valid", i, ip, l4)
				}
				if !tc.v6 {
					if id := binary.BigEndian.Uint16(seg[4:]); id != 77+uint16(i) {
						t.Errorf("packet %d: IPv4 id %d, want %d", i, id, 77+i)
					}
				}
				if tc.proto == protoTCP {
					if seq := binary.BigEndian.Uint32(seg[lo.l4+4:]); seq != 1000+uint32(from) {
						t.Errorf("packet %d: seq %d, want %d", i, seq, 1000+from)
					}
					if psh := seg[lo.l4+13]&tcpPSH != 0; psh != last {
						t.Errorf("packet %d of %d: PSH %v, want it on the last only", i, len(segs), psh)
					}
				}
			}
		})
	}
}

// TestSplitGSONoGSO: a single packet with a partial checksum gets it completed.
func TestSplitGSONoGSO(t *testing.T) {
	pkt := buildPacket(t, pktSpec{proto: protoUDP, payload: []byte("hello, partial"), srcPort: 1, dstPort: 2})
	lo, _ := layout(pkt, 0)
	setPartial(pkt, lo)
	h := vnetHdr{flags: vnetNeedsCsum, csumStart: uint16(lo.l4), csumOffset: 6}
	var got []byte
	if err := splitGSO(h, pkt, make([]byte, maxPacket), func(p []byte) { got = bytes.Clone(p) }); err != nil {
		t.Fatal(err)
	}
	if _, l4 := checksumsOK(t, got); !l4 {
		t.Errorf("checksum not completed: % x", got)
	}
	if err := splitGSO(vnetHdr{flags: vnetNeedsCsum, csumStart: 1000}, pkt, nil, func([]byte) { t.Error("called") }); err == nil {
		t.Error("csum_start beyond the packet: no error")
	}
}

// TestCoalesce: the packets of a super-packet, handed to a coalescer in order, are
// written as that super-packet again; a packet missing from the middle, or a
// corrupted one (alone), splits the run, and every byte is written once, in order.
func TestCoalesce(t *testing.T) {
	for _, tc := range gsoCases {
		t.Run(tc.name, func(t *testing.T) {
			h, super := superPacket(t, tc.v6, tc.proto, tc.n, tc.size)
			var segs [][]byte
			if err := splitGSO(h, bytes.Clone(super), make([]byte, maxPacket), func(p []byte) { segs = append(segs, bytes.Clone(p)) }); err != nil {
				t.Fatal(err)
			}
			for _, sc := range []struct {
				name   string
				skip   int // packet left out, -1 none
				alone  int // packet written alone (corrupted), -1 none
				writes int // TCP's
			}{
				{"all", -1, -1, 1},
				{"gap", 1, -1, 2},
				{"corrupted", -1, 1, 3},
			} {
				if len(segs) < 3 && sc.name != "all" {
					continue
				}
				t.Run(sc.name, func(t *testing.T) {
					var writes [][]byte
					c := newCoalescer(func(b []byte) error { writes = append(writes, bytes.Clone(b)); return nil })
					var wantBytes []byte // the payload bytes the writes must carry, in order
					for i, s := range segs {
						lo, _ := layout(s, 0)
						switch i {
						case sc.skip:
							continue
						case sc.alone:
							s = bytes.Clone(s)
							finishChecksum(s) // as the link does before it flips a bit
							c.alone(s)
						default:
							c.add(bytes.Clone(s))
						}
						wantBytes = append(wantBytes, s[lo.hdr:]...)
					}
					if err := c.flush(); err != nil {
						t.Fatal(err)
					}
					want := min(sc.writes, len(segs))
					if sc.name == "gap" && tc.proto == protoUDP {
						want = 1 // datagrams carry no sequence: the rest still join
					}
					if len(writes) != want {
						t.Fatalf("%d writes, want %d", len(writes), want)
					}
					var got []byte
					for _, w := range writes {
						wh, ok := decodeVnetHdr(w)
						if !ok {
							t.Fatal("short write")
						}
						// What the receiving kernel would make of it: its packets.
						if err := splitGSO(wh, w[vnetHdrLen:], make([]byte, maxPacket), func(p []byte) {
							lo, _ := layout(p, 0)
							if wh.flags&vnetNeedsCsum != 0 {
								finishChecksum(p)
							}
							if ip, l4 := checksumsOK(t, p); !ip || !l4 {
								t.Errorf("written packet: checksums ip %v, transport %v", ip, l4)
							}
							got = append(got, p[lo.hdr:]...)
						}); err != nil {
							t.Fatalf("a write the kernel could not cut: %v (header %+v)", err, wh)
						}
					}
					if !bytes.Equal(got, wantBytes) {
						t.Errorf("written payload: %d bytes, want %d", len(got), len(wantBytes))
					}
					if sc.name == "all" && len(segs) > 1 {
						w := writes[0][vnetHdrLen:]
						if !bytes.Equal(w[len(w)-tc.n:], super[len(super)-tc.n:]) || len(w) != len(super) {
							t.Errorf("joined super-packet differs from the original")
						}
					}
				})
			}
		})
	}
}

// FuzzSplitGSO: any header and bytes: no panic, and every packet handed on is no
// longer than the buffer.
func FuzzSplitGSO(f *testing.F) {
	h, pkt := superPacket(f, false, protoTCP, 3000, 1448)
	hb := make([]byte, vnetHdrLen)
	h.encode(hb)
	f.Add(hb, pkt)
	h, pkt = superPacket(f, true, protoUDP, 3000, 1200)
	h.encode(hb)
	f.Add(bytes.Clone(hb), pkt)
	buf := make([]byte, maxPacket)
	f.Fuzz(func(t *testing.T, hb, pkt []byte) {
		h, ok := decodeVnetHdr(hb)
		if !ok {
			return
		}
		splitGSO(h, pkt, buf, func(p []byte) {
			finishChecksum(p)
			c := newCoalescer(func([]byte) error { return nil })
			c.add(p)
			c.flush()
		})
	})
}
