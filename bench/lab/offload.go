package lab

import (
	"encoding/binary"
	"errors"
)

// Segmentation offload between the kernel and the emulator. With IFF_VNET_HDR and
// TUNSETOFFLOAD, the kernel hands a TUN reader TCP and UDP super-packets of up to
// 64 KiB, each behind a virtio_net_hdr that says how to cut it into packets, and
// takes super-packets written back the same way. One read and one write then carry
// up to 64 KiB instead of one packet. The emulator still gives every packet its own
// fate: the reader cuts a super-packet into its packets (splitGSO) before Input, and
// the writer joins the packets that pass, back to back, into super-packets again
// (coalescer). Every function here takes untrusted bytes: it checks each length
// before it reads and never panics.

// vnetHdrLen is the size of struct virtio_net_hdr, which precedes every packet read
// from or written to a TUN device opened with IFF_VNET_HDR.
const vnetHdrLen = 10

// virtio_net_hdr flags and GSO types (include/uapi/linux/virtio_net.h).
const (
	vnetNeedsCsum = 1 // the transport checksum is partial: the sum over csum_start.. goes at csum_start+csum_offset
	vnetDataValid = 2 // the checksum was verified

	vnetGSONone  = 0
	vnetGSOTCPv4 = 1
	vnetGSOUDP   = 3 // UFO: IP fragmentation, never negotiated here
	vnetGSOTCPv6 = 4
	vnetGSOUDPL4 = 5 // USO
	vnetGSOECN   = 0x80
)

// vnetHdr is a decoded virtio_net_hdr. The TUN device uses little-endian fields
// (TUNSETVNETLE is the default on little-endian hosts; the kernel picks the
// virtio 1.0 little-endian layout for TUN).
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVnetHdr(b []byte) (vnetHdr, bool) {
	if len(b) < vnetHdrLen {
		return vnetHdr{}, false
	}
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.LittleEndian.Uint16(b[2:]),
		gsoSize:    binary.LittleEndian.Uint16(b[4:]),
		csumStart:  binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:]),
	}, true
}

func (h vnetHdr) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

// errBadGSO is what splitGSO returns for a super-packet it cannot cut: the reader
// hands such a packet to the link whole, which counts it (it is then TooBig).
var errBadGSO = errors.New("lab: malformed GSO super-packet")

// Checksums (RFC 1071): sums are kept unfolded in a uint64 and folded at the end.

func sum16(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v >> 32
		acc += v & 0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// pseudoHeaderSum is the sum of the IPv4 or IPv6 pseudo-header of pkt for a transport
// segment of l4Len bytes of protocol proto.
func pseudoHeaderSum(pkt []byte, v6 bool, proto uint8, l4Len int) uint64 {
	var acc uint64
	if v6 {
		acc = sum16(pkt[8:40], 0)
	} else {
		acc = sum16(pkt[12:20], 0)
	}
	return acc + uint64(proto) + uint64(l4Len)
}

// ipv4HeaderChecksum rewrites the header checksum of the IPv4 header pkt[:ihl].
func ipv4HeaderChecksum(pkt []byte, ihl int) {
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:], ^fold(sum16(pkt[:ihl], 0)))
}

// l4Layout is where a TCP or UDP packet's parts lie.
type l4Layout struct {
	v6    bool
	proto uint8
	l4    int // transport header offset
	hdr   int // end of the headers: l4 + the TCP or UDP header
	csum  int // offset of the transport checksum field
}

// layout finds pkt's TCP or UDP header. l4 is the transport header offset from the
// vnet header's csum_start when set (it accounts for IPv6 extension headers), else
// from the IP header. ok is false for anything else.
func layout(pkt []byte, l4 int) (lo l4Layout, ok bool) {
	if len(pkt) < 20 {
		return lo, false
	}
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl {
			return lo, false
		}
		lo.proto = pkt[9]
		if l4 == 0 {
			l4 = ihl
		}
		if l4 < ihl {
			return lo, false
		}
	case 6:
		if len(pkt) < 40 {
			return lo, false
		}
		lo.v6, lo.proto = true, pkt[6]
		if l4 == 0 {
			l4 = 40
		}
		if l4 < 40 {
			return lo, false
		}
		if lo.proto != protoTCP && lo.proto != protoUDP {
			// Extension headers: the vnet header's csum_start said where the
			// transport begins; its protocol is not at pkt[6].
			return lo, false
		}
	default:
		return lo, false
	}
	lo.l4 = l4
	switch lo.proto {
	case protoTCP:
		if len(pkt) < l4+20 {
			return lo, false
		}
		lo.hdr = l4 + int(pkt[l4+12]>>4)*4
		lo.csum = l4 + 16
		if lo.hdr < l4+20 || len(pkt) < lo.hdr {
			return lo, false
		}
	case protoUDP:
		lo.hdr, lo.csum = l4+8, l4+6
		if len(pkt) < lo.hdr {
			return lo, false
		}
	default:
		return lo, false
	}
	return lo, true
}

// setLengths writes pkt's IP length fields for a packet of len(pkt) bytes (and the
// IPv4 header checksum), and the UDP length.
func setLengths(pkt []byte, lo l4Layout) {
	if lo.v6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		ipv4HeaderChecksum(pkt, int(pkt[0]&0x0f)*4)
	}
	if lo.proto == protoUDP {
		binary.BigEndian.PutUint16(pkt[lo.l4+4:], uint16(len(pkt)-lo.l4))
	}
}

// setPartial writes pkt's transport checksum field as a partial checksum: the
// pseudo-header sum alone, folded and not complemented, which is what a kernel that
// gets the packet with vnetNeedsCsum completes (or trusts).
func setPartial(pkt []byte, lo l4Layout) {
	binary.BigEndian.PutUint16(pkt[lo.csum:], fold(pseudoHeaderSum(pkt, lo.v6, lo.proto, len(pkt)-lo.l4)))
}

// setFull writes pkt's transport checksum in full.
func setFull(pkt []byte, lo l4Layout) {
	pkt[lo.csum], pkt[lo.csum+1] = 0, 0
	c := ^fold(sum16(pkt[lo.l4:], pseudoHeaderSum(pkt, lo.v6, lo.proto, len(pkt)-lo.l4)))
	if c == 0 && lo.proto == protoUDP {
		c = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(pkt[lo.csum:], c)
}

// completeCsum completes a partial checksum the kernel left (vnetNeedsCsum): the sum
// over pkt[start:], which includes the partial value in the field, goes in the field.
func completeCsum(pkt []byte, start, offset int) bool {
	at := start + offset
	if start < 0 || at+2 > len(pkt) {
		return false
	}
	c := ^fold(sum16(pkt[start:], 0))
	binary.BigEndian.PutUint16(pkt[at:], c)
	return true
}

// finishChecksum makes the transport checksum of a packet that splitGSO or a
// partial-checksum read left partial whole, so that one flipped bit is always
// caught. It leaves anything but TCP and UDP alone.
func finishChecksum(pkt []byte) {
	if lo, ok := layout(pkt, 0); ok {
		if lo.v6 || lo.proto == protoTCP || pkt[lo.csum]|pkt[lo.csum+1] != 0 {
			setFull(pkt, lo)
		}
	}
}

// splitGSO cuts the super-packet pkt, described by h, into its packets, and calls
// each with one of them in turn (in a buffer it reuses: each must copy what it
// keeps). Each packet gets the headers of pkt with its own lengths, IPv4 id and
// header checksum, TCP sequence number and flags (CWR only on the first; FIN and
// PSH only on the last), and a partial transport checksum (setPartial): whoever
// needs a whole one (corruption) calls finishChecksum. buf is scratch of at least
// the largest packet. A packet without GSO goes to each as it is, its checksum
// completed if the kernel left it partial.
func splitGSO(h vnetHdr, pkt, buf []byte, each func(pkt []byte)) error {
	gso := h.gsoType &^ vnetGSOECN
	if gso == vnetGSONone {
		if h.flags&vnetNeedsCsum != 0 && !completeCsum(pkt, int(h.csumStart), int(h.csumOffset)) {
			return errBadGSO
		}
		each(pkt)
		return nil
	}
	if gso != vnetGSOTCPv4 && gso != vnetGSOTCPv6 && gso != vnetGSOUDPL4 {
		return errBadGSO
	}
	lo, ok := layout(pkt, int(h.csumStart))
	if !ok || (lo.proto == protoTCP) != (gso != vnetGSOUDPL4) || (gso == vnetGSOTCPv6) != lo.v6 && gso != vnetGSOUDPL4 {
		return errBadGSO
	}
	size := int(h.gsoSize)
	if size <= 0 || lo.hdr+size > len(buf) {
		return errBadGSO
	}
	payload := pkt[lo.hdr:]
	var seq uint32
	var flags byte
	if lo.proto == protoTCP {
		seq = binary.BigEndian.Uint32(pkt[lo.l4+4:])
		flags = pkt[lo.l4+13]
	}
	var id uint16
	if !lo.v6 {
		id = binary.BigEndian.Uint16(pkt[4:])
	}
	for i, off := 0, 0; off < len(payload) || i == 0; i++ {
		n := min(size, len(payload)-off)
		seg := buf[:lo.hdr+n]
		copy(seg, pkt[:lo.hdr])
		copy(seg[lo.hdr:], payload[off:off+n])
		off += n
		last := off >= len(payload)
		if !lo.v6 {
			binary.BigEndian.PutUint16(seg[4:], id+uint16(i))
		}
		if lo.proto == protoTCP {
			binary.BigEndian.PutUint32(seg[lo.l4+4:], seq+uint32(i*size))
			f := flags
			if i > 0 {
				f &^= tcpCWR
			}
			if !last {
				f &^= tcpFIN | tcpPSH
			}
			seg[lo.l4+13] = f
		}
		setLengths(seg, lo)
		setPartial(seg, lo)
		each(seg)
	}
	return nil
}

// maxCoalesce bounds a written super-packet: an IP packet's largest size, and the
// kernel's limit on UDP GSO segments.
const (
	maxCoalesceBytes = 65535
	maxCoalesceSegs  = 64
)

// A coalescer joins packets handed to it one by one into super-packets, while each
// continues the one before it: the same flow and headers, the next TCP sequence
// number, segments of one size (the last may be shorter, and ends the run). Every
// other packet is written alone. write gets a vnet header and a packet in one buffer
// it must not keep. Not safe for concurrent use.
type coalescer struct {
	write func(b []byte) error

	buf     []byte   // vnet header space, then the run: the first packet's headers and every payload
	lo      l4Layout // the run's layout (n > 0)
	n       int      // packets in the run
	size    int      // payload bytes of each packet but the last
	nextSeq uint32   // TCP: the sequence number that continues the run
	ended   bool     // the last packet was shorter (or carried FIN/PSH): nothing may follow
	err     error    // the first write error since the last flush
}

func newCoalescer(write func(b []byte) error) *coalescer {
	return &coalescer{write: write, buf: make([]byte, vnetHdrLen, vnetHdrLen+maxCoalesceBytes)}
}

// add hands pkt on: it joins the run, or ends it (flush) and starts a new one, or is
// written alone. pkt's transport checksum may be partial: add rewrites it.
func (c *coalescer) add(pkt []byte) {
	lo, ok := layout(pkt, 0)
	if !ok {
		c.alone(pkt)
		return
	}
	payload := len(pkt) - lo.hdr
	if c.n > 0 && payload > 0 && c.joins(pkt, lo, payload) {
		c.buf = append(c.buf, pkt[lo.hdr:]...)
		c.n++
		c.nextSeq += uint32(payload)
		if lo.proto == protoTCP {
			if f := pkt[lo.l4+13] & (tcpFIN | tcpPSH); f != 0 {
				c.buf[vnetHdrLen+lo.l4+13] |= f // the run's last packet's, as the kernel leaves it
				c.ended = true
			}
		}
		if payload < c.size {
			c.ended = true
		}
		return
	}
	c.flush()
	c.buf = append(c.buf[:vnetHdrLen], pkt...)
	c.lo, c.n, c.size, c.ended = lo, 1, payload, payload == 0
	if lo.proto == protoTCP {
		c.nextSeq = binary.BigEndian.Uint32(pkt[lo.l4+4:]) + uint32(payload)
		c.ended = c.ended || pkt[lo.l4+13]&(tcpFIN|tcpPSH|tcpCWR) != 0
	}
}

// TCP flags the coalescer looks at.
const (
	tcpFIN = 0x01
	tcpPSH = 0x08
	tcpCWR = 0x80
)

// joins reports whether pkt continues the run.
func (c *coalescer) joins(pkt []byte, lo l4Layout, payload int) bool {
	run := c.buf[vnetHdrLen:]
	if c.ended || lo != c.lo || payload > c.size || c.n >= maxCoalesceSegs ||
		len(run)+payload > maxCoalesceBytes {
		return false
	}
	// The headers must match but for lengths, ids, checksums and the sequence number.
	if lo.v6 {
		if !eq(run[:4], pkt[:4]) || !eq(run[6:lo.l4], pkt[6:lo.l4]) {
			return false
		}
	} else if !eq(run[:2], pkt[:2]) || !eq(run[6:10], pkt[6:10]) || !eq(run[12:lo.l4], pkt[12:lo.l4]) {
		return false
	}
	if lo.proto == protoUDP {
		return eq(run[lo.l4:lo.l4+4], pkt[lo.l4:lo.l4+4])
	}
	return binary.BigEndian.Uint32(pkt[lo.l4+4:]) == c.nextSeq &&
		eq(run[lo.l4:lo.l4+4], pkt[lo.l4:lo.l4+4]) &&
		eq(run[lo.l4+8:lo.l4+13], pkt[lo.l4+8:lo.l4+13]) && // ack, data offset
		run[lo.l4+13] == pkt[lo.l4+13]&^(tcpFIN|tcpPSH) && // flags (the run has neither FIN nor PSH yet)
		eq(run[lo.l4+14:lo.l4+16], pkt[lo.l4+14:lo.l4+16]) && // window
		eq(run[lo.l4+18:lo.hdr], pkt[lo.l4+18:lo.hdr]) // urgent pointer, options
}

func eq(a, b []byte) bool { return string(a) == string(b) }

// flush writes the run, if any: one packet as it is, several as one super-packet.
// It returns the first write error since the last flush.
func (c *coalescer) flush() error {
	if c.n == 0 {
		err := c.err
		c.err = nil
		return err
	}
	run := c.buf[vnetHdrLen:]
	lo := c.lo
	h := vnetHdr{flags: vnetNeedsCsum, csumStart: uint16(lo.l4), csumOffset: uint16(lo.csum - lo.l4)}
	if c.n > 1 {
		h.hdrLen, h.gsoSize = uint16(lo.hdr), uint16(c.size)
		switch {
		case lo.proto == protoUDP:
			h.gsoType = vnetGSOUDPL4
		case lo.v6:
			h.gsoType = vnetGSOTCPv6
		default:
			h.gsoType = vnetGSOTCPv4
		}
		// A run never holds a CWR packet but alone (it is not joined); the kernel
		// clears FIN and PSH on every segment of a super-packet but the last.
		setLengths(run, lo)
	}
	setPartial(run, lo)
	h.encode(c.buf)
	if err := c.write(c.buf); err != nil && c.err == nil {
		c.err = err
	}
	c.n = 0
	c.buf = c.buf[:vnetHdrLen]
	err := c.err
	c.err = nil
	return err
}

// gsoShape returns how many packets the super-packet pkt (described by h) holds,
// their bytes in all, the longest one's length, its transport protocol and the
// length of its headers (IP and TCP or UDP), after which its payload starts, cut
// every h.gsoSize bytes; ok is false when pkt is no super-packet splitGSO would cut.
func gsoShape(h vnetHdr, pkt []byte) (k, n, largest int, proto uint8, hdr int, ok bool) {
	gso := h.gsoType &^ vnetGSOECN
	if gso != vnetGSOTCPv4 && gso != vnetGSOTCPv6 && gso != vnetGSOUDPL4 || h.gsoSize == 0 {
		return 0, 0, 0, 0, 0, false
	}
	lo, ok := layout(pkt, int(h.csumStart))
	if !ok || (lo.proto == protoTCP) != (gso != vnetGSOUDPL4) {
		return 0, 0, 0, 0, 0, false
	}
	size, payload := int(h.gsoSize), len(pkt)-lo.hdr
	k = max(1, (payload+size-1)/size)
	return k, k*lo.hdr + payload, lo.hdr + min(size, payload), lo.proto, lo.hdr, true
}

// super writes the super-packet b (its vnet header, as read, and the packet) after
// the run, as it is.
func (c *coalescer) super(b []byte) error {
	c.flush()
	if err := c.write(b); err != nil && c.err == nil {
		c.err = err
	}
	return nil
}

// alone writes pkt by itself, after the run, with its checksum as it is and no vnet
// flags: the receiving kernel verifies it (a corrupted packet goes this way, so that
// its checksum fails there).
func (c *coalescer) alone(pkt []byte) {
	c.flush()
	c.buf = append(c.buf[:vnetHdrLen], pkt...)
	vnetHdr{}.encode(c.buf)
	if err := c.write(c.buf); err != nil && c.err == nil {
		c.err = err
	}
	c.buf = c.buf[:vnetHdrLen]
}
