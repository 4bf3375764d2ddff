package lab

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"
)

// pktSpec describes a test packet; buildPacket makes it with valid checksums.
type pktSpec struct {
	v6        bool
	proto     uint8 // protoUDP, protoTCP or another (ICMP: 1)
	payload   []byte
	ipOpts    int  // IPv4 option bytes (NOPs), a multiple of 4
	tcpOpts   int  // TCP option bytes (NOPs), a multiple of 4
	hopByHop  bool // IPv6: an 8-byte hop-by-hop header before the transport
	noCsum    bool // IPv4 UDP: checksum 0 (none)
	fragOff   int  // fragment offset in 8-byte units (IPv4)
	srcPort   uint16
	dstPort   uint16
	addrShift byte // varies the addresses (another flow)
}

func buildPacket(tb testing.TB, s pktSpec) []byte {
	tb.Helper()
	var l4 []byte
	switch s.proto {
	case protoUDP:
		l4 = make([]byte, 8, 8+len(s.payload))
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(s.payload)))
	case protoTCP:
		l4 = make([]byte, 20+s.tcpOpts, 20+s.tcpOpts+len(s.payload))
		l4[12] = byte((20+s.tcpOpts)/4) << 4
		l4[13] = 0x18 // PSH ACK
		for i := 20; i < len(l4); i++ {
			l4[i] = 1 // NOP
		}
	default:
		l4 = []byte{8, 0, 0, 0, 0, 0, 0, 0} // ICMP echo
	}
	if s.proto == protoUDP || s.proto == protoTCP {
		binary.BigEndian.PutUint16(l4[0:], s.srcPort)
		binary.BigEndian.PutUint16(l4[2:], s.dstPort)
	}
	l4 = append(l4, s.payload...)

	var pkt []byte
	if !s.v6 {
		ihl := 20 + s.ipOpts
		pkt = make([]byte, ihl, ihl+len(l4))
		pkt[0] = 0x40 | byte(ihl/4)
		binary.BigEndian.PutUint16(pkt[2:], uint16(ihl+len(l4)))
		binary.BigEndian.PutUint16(pkt[6:], uint16(s.fragOff))
		pkt[8] = 64
		pkt[9] = s.proto
		copy(pkt[12:], []byte{10, 0, s.addrShift, 1, 10, 0, s.addrShift, 2})
		for i := 20; i < ihl; i++ {
			pkt[i] = 1 // NOP
		}
		binary.BigEndian.PutUint16(pkt[10:], ^onesSum(0, pkt[:ihl]))
	} else {
		hdr := 40
		if s.hopByHop {
			hdr += 8
		}
		pkt = make([]byte, hdr, hdr+len(l4))
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(hdr-40+len(l4)))
		pkt[6] = s.proto
		pkt[7] = 64
		pkt[8], pkt[23] = 0xfd, 1
		pkt[24], pkt[39] = 0xfd, 2
		pkt[22], pkt[38] = s.addrShift, s.addrShift
		if s.hopByHop {
			pkt[6] = ext6HopByHop
			pkt[40] = s.proto
			pkt[42], pkt[43] = 1, 4 // PadN option filling the header
		}
	}
	start := len(pkt)
	pkt = append(pkt, l4...)
	csum := map[uint8]int{protoUDP: 6, protoTCP: 16}
	if off, ok := csum[s.proto]; ok && !s.noCsum {
		c := ^onesSum(pseudoSum(pkt, s.proto, len(l4)), pkt[start:])
		if c == 0 && s.proto == protoUDP {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(pkt[start+off:], c)
	}
	return pkt
}

// onesSum adds b as 16-bit big-endian words to sum, ones'-complement, folded.
func onesSum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func pseudoSum(pkt []byte, proto uint8, l4len int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	if pkt[0]>>4 == 4 {
		add(pkt[12:20])
	} else {
		add(pkt[8:40])
	}
	return sum + uint32(proto) + uint32(l4len)
}

// checksumsOK reports whether pkt's IPv4 header checksum (ip) and transport checksum
// (l4) verify, as a receiving kernel checks them.
func checksumsOK(tb testing.TB, pkt []byte) (ip, l4 bool) {
	tb.Helper()
	info, ok := parse(pkt)
	if !ok || info.l4 < 0 {
		tb.Fatalf("checksumsOK: unparseable packet % x", pkt)
	}
	ip = true
	if info.version == 4 {
		ihl := int(pkt[0]&0x0f) * 4
		ip = onesSum(0, pkt[:ihl]) == 0xffff
	}
	seg := pkt[info.l4:info.end]
	if info.proto == protoUDP && info.version == 4 && pkt[info.l4+6] == 0 && pkt[info.l4+7] == 0 {
		return ip, true // no checksum
	}
	return ip, onesSum(pseudoSum(pkt, info.proto, len(seg)), seg) == 0xffff
}

func TestParse(t *testing.T) {
	payload := []byte("hello, link")
	tests := []struct {
		name        string
		pkt         []byte
		wantOK      bool
		wantProto   uint8
		wantL4      int
		wantPayload int
		wantPorts   [2]uint16
	}{
		{"ipv4 udp", buildPacket(t, pktSpec{proto: protoUDP, payload: payload, srcPort: 5000, dstPort: 6000}), true, protoUDP, 20, 28, [2]uint16{5000, 6000}},
		{"ipv4 options udp", buildPacket(t, pktSpec{proto: protoUDP, payload: payload, ipOpts: 8, srcPort: 1, dstPort: 2}), true, protoUDP, 28, 36, [2]uint16{1, 2}},
		{"ipv4 tcp options", buildPacket(t, pktSpec{proto: protoTCP, payload: payload, tcpOpts: 12, srcPort: 80, dstPort: 443}), true, protoTCP, 20, 52, [2]uint16{80, 443}},
		{"ipv4 later fragment", buildPacket(t, pktSpec{proto: protoUDP, payload: payload, fragOff: 185}), true, protoUDP, -1, 20, [2]uint16{}},
		{"ipv4 icmp", buildPacket(t, pktSpec{proto: 1}), true, 1, -1, -1, [2]uint16{}},
		{"ipv6 udp", buildPacket(t, pktSpec{v6: true, proto: protoUDP, payload: payload, srcPort: 7, dstPort: 9}), true, protoUDP, 40, 48, [2]uint16{7, 9}},
		{"ipv6 hop-by-hop tcp", buildPacket(t, pktSpec{v6: true, hopByHop: true, proto: protoTCP, payload: payload, srcPort: 7, dstPort: 9}), true, protoTCP, 48, 68, [2]uint16{7, 9}},
		{"ipv6 first fragment udp", ipv6Fragment(t, 0, payload), true, protoUDP, 48, 56, [2]uint16{7, 9}},
		{"ipv6 later fragment", ipv6Fragment(t, 100, payload), true, protoUDP, -1, 48, [2]uint16{}},
		{"empty", nil, false, 0, -1, -1, [2]uint16{}},
		{"ipv4 truncated", buildPacket(t, pktSpec{proto: protoUDP, payload: payload})[:30], false, 0, -1, -1, [2]uint16{}},
		{"ipv4 short header", []byte{0x45, 0, 0, 10}, false, 0, -1, -1, [2]uint16{}},
		{"ipv4 ihl 4", func() []byte { p := buildPacket(t, pktSpec{proto: protoUDP}); p[0] = 0x44; return p }(), false, 0, -1, -1, [2]uint16{}},
		{"ipv4 udp header cut", func() []byte {
			p := buildPacket(t, pktSpec{proto: protoUDP})[:24]
			p[3] = 24
			return p
		}(), true, protoUDP, -1, -1, [2]uint16{}},
		{"version 5", []byte{0x50, 1, 2, 3}, false, 0, -1, -1, [2]uint16{}},
		{"ipv6 jumbogram", func() []byte { p := buildPacket(t, pktSpec{v6: true, proto: protoUDP}); p[4], p[5] = 0, 0; return p }(), false, 0, -1, -1, [2]uint16{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, ok := parse(tc.pkt)
			if ok != tc.wantOK {
				t.Fatalf("parse(% x): ok %v, want %v", tc.pkt, ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if info.proto != tc.wantProto || info.l4 != tc.wantL4 || info.payload != tc.wantPayload || [2]uint16{info.srcPort, info.dstPort} != tc.wantPorts {
				t.Errorf("parse: got proto %d l4 %d payload %d ports %d/%d; want proto %d l4 %d payload %d ports %v",
					info.proto, info.l4, info.payload, info.srcPort, info.dstPort, tc.wantProto, tc.wantL4, tc.wantPayload, tc.wantPorts)
			}
			if info.end != len(tc.pkt) {
				t.Errorf("parse: end %d, want %d", info.end, len(tc.pkt))
			}
			proto, off, ok := transportPayload(tc.pkt)
			if wantOK := tc.wantL4 >= 0; ok != wantOK || (ok && (proto != tc.wantProto || off != tc.wantPayload)) {
				t.Errorf("transportPayload: %d, %d, %v; want %d, %d, %v", proto, off, ok, tc.wantProto, tc.wantPayload, wantOK)
			}
		})
	}
}

// ipv6Fragment builds an IPv6 packet with a fragment header at offset off (bytes,
// a multiple of 8) carrying UDP (a header only in the first fragment).
func ipv6Fragment(tb testing.TB, off int, payload []byte) []byte {
	tb.Helper()
	p := buildPacket(tb, pktSpec{v6: true, hopByHop: true, proto: protoUDP, payload: payload, srcPort: 7, dstPort: 9})
	p[40] = protoUDP
	p[6] = ext6Fragment
	clear(p[41:48])
	binary.BigEndian.PutUint16(p[42:], uint16(off)|1) // M flag set
	return p
}

func TestCorrupt(t *testing.T) {
	payload := bytes.Repeat([]byte{0x5a}, 100)
	tests := []struct {
		name     string
		pkt      []byte
		from, to int // where the flipped bit must be
	}{
		{"ipv4 udp", buildPacket(t, pktSpec{proto: protoUDP, payload: payload}), 28, 128},
		{"ipv4 options udp", buildPacket(t, pktSpec{proto: protoUDP, payload: payload, ipOpts: 4}), 32, 132},
		{"ipv4 tcp", buildPacket(t, pktSpec{proto: protoTCP, payload: payload, tcpOpts: 12}), 52, 152},
		{"ipv6 udp", buildPacket(t, pktSpec{v6: true, proto: protoUDP, payload: payload}), 48, 148},
		{"ipv6 hop-by-hop tcp", buildPacket(t, pktSpec{v6: true, hopByHop: true, proto: protoTCP, payload: payload}), 68, 168},
		{"ipv4 udp empty payload: checksum", buildPacket(t, pktSpec{proto: protoUDP}), 26, 28},
		{"ipv4 tcp empty payload: checksum", buildPacket(t, pktSpec{proto: protoTCP}), 36, 38},
		{"ipv6 udp empty payload: checksum", buildPacket(t, pktSpec{v6: true, proto: protoUDP}), 46, 48},
		{"ipv4 udp no checksum: checksum", buildPacket(t, pktSpec{proto: protoUDP, payload: payload, noCsum: true}), 26, 28},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, ok := parse(tc.pkt)
			if !ok {
				t.Fatal("unparseable")
			}
			for _, frac := range []float64{0, 0.001, 0.25, 0.5, 0.999999, 1, -1} {
				got := bytes.Clone(tc.pkt)
				bit, ok := corrupt(got, info, frac)
				if !ok {
					t.Fatalf("corrupt(frac %v): not ok", frac)
				}
				if d := bitDiff(tc.pkt, got); d != 1 {
					t.Fatalf("corrupt(frac %v): %d bits differ, want 1", frac, d)
				}
				if bit < tc.from*8 || bit >= tc.to*8 || got[bit/8] == tc.pkt[bit/8] {
					t.Fatalf("corrupt(frac %v): bit %d (byte %d), want within bytes [%d, %d)", frac, bit, bit/8, tc.from, tc.to)
				}
				if ipOK, l4OK := checksumsOK(t, got); !ipOK || l4OK {
					t.Fatalf("corrupt(frac %v): IP checksum ok %v (want true), transport checksum ok %v (want false)", frac, ipOK, l4OK)
				}
			}
		})
	}
	t.Run("not corruptible", func(t *testing.T) {
		for _, pkt := range [][]byte{nil, {0x45}, buildPacket(t, pktSpec{proto: 1}), []byte("junk junk junk junk junk")} {
			info, _ := parse(pkt)
			got := bytes.Clone(pkt)
			if _, ok := corrupt(got, info, 0.5); ok || !bytes.Equal(got, pkt) {
				t.Errorf("corrupt(% x): ok %v, changed %v; want false, false", pkt, ok, !bytes.Equal(got, pkt))
			}
		}
	})
	t.Run("later fragment", func(t *testing.T) {
		pkt := buildPacket(t, pktSpec{proto: protoUDP, payload: payload, fragOff: 3})
		info, _ := parse(pkt)
		got := bytes.Clone(pkt)
		bit, ok := corrupt(got, info, 0)
		if !ok || bit != 20*8 || bitDiff(pkt, got) != 1 {
			t.Errorf("corrupt: bit %d ok %v, want bit 160 (first data bit), ok", bit, ok)
		}
	})
}

// bitDiff counts the bits in which a and b differ (a length difference counts all).
func bitDiff(a, b []byte) int {
	if len(a) != len(b) {
		return 8 * max(len(a), len(b))
	}
	n := 0
	for i := range a {
		n += bits.OnesCount8(a[i] ^ b[i])
	}
	return n
}

func TestFlowHash(t *testing.T) {
	a := buildPacket(t, pktSpec{proto: protoUDP, srcPort: 1, dstPort: 2})
	b := buildPacket(t, pktSpec{proto: protoUDP, srcPort: 1, dstPort: 3})
	c := buildPacket(t, pktSpec{proto: protoUDP, srcPort: 1, dstPort: 2, addrShift: 1})
	hash := func(p []byte) uint64 { info, ok := parse(p); return flowHash(p, info, ok) }
	if hash(a) != hash(bytes.Clone(a)) {
		t.Error("flowHash: same packet, different hash")
	}
	if hash(a) == hash(b) || hash(a) == hash(c) {
		t.Error("flowHash: different flows, same hash")
	}
	if hash(a)>>63 != 0 || dataFlowKey(7)>>63 != 1 {
		t.Error("flowHash keys and data flow keys overlap")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(buildPacket(f, pktSpec{proto: protoUDP, payload: []byte{0xD7, 1, 2, 3, 4}}), 0.5)
	f.Add(buildPacket(f, pktSpec{proto: protoTCP, tcpOpts: 8, payload: []byte("x")}), 0.1)
	f.Add(buildPacket(f, pktSpec{v6: true, hopByHop: true, proto: protoUDP}), 0.9)
	f.Add(ipv6Fragment(f, 8, []byte("abc")), 0.0)
	f.Add([]byte{0x45, 0, 0, 20}, 0.3)
	f.Add([]byte{0x60}, 0.3)
	f.Fuzz(func(t *testing.T, pkt []byte, frac float64) {
		info, ok := parse(pkt)
		transportPayload(pkt)
		flowHash(pkt, info, ok)
		if !ok {
			if _, c := corrupt(bytes.Clone(pkt), info, frac); c {
				t.Fatal("corrupted an unparseable packet")
			}
			return
		}
		if info.end > len(pkt) || (info.l4 >= 0 && (info.payload < info.l4 || info.payload > info.end)) {
			t.Fatalf("offsets out of range: %+v, len %d", info, len(pkt))
		}
		if p, ok := udpPayload(pkt, info); ok && len(p) > len(pkt) {
			t.Fatal("udp payload longer than the packet")
		}
		got := bytes.Clone(pkt)
		bit, c := corrupt(got, info, frac)
		d := bitDiff(pkt, got)
		switch {
		case c && d != 1:
			t.Fatalf("corrupt changed %d bits, want 1", d)
		case !c && d != 0:
			t.Fatalf("corrupt not ok but changed %d bits", d)
		case c && (bit/8 >= info.end || bit/8 < 20):
			t.Fatalf("corrupt flipped bit %d, outside the transport part (end %d)", bit, info.end)
		}
	})
}
