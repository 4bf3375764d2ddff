package lab

// Packet parsing for the link emulator: just enough of IPv4, IPv6, UDP and TCP to
// find a packet's transport payload (for the Classifier and for corruption) and its
// flow. Every function here takes untrusted bytes: it checks each length before it
// reads and never panics (FuzzParse).

// IP protocol numbers the emulator looks into.
const (
	protoTCP = 6
	protoUDP = 17
)

// packetInfo is where the parts of one IP packet lie. Offsets index the packet.
type packetInfo struct {
	version uint8 // 4 or 6
	proto   uint8 // transport protocol (after any IPv6 extension headers)
	end     int   // end of the IP packet: IPv4 total length, or 40 + IPv6 payload length
	// l4 is the offset of the UDP or TCP header, or -1 when the packet carries none
	// that could be read: another protocol, a truncated header, or a fragment other
	// than the first (only the first fragment carries the transport header).
	l4 int
	// payload is the offset of the transport payload: after the UDP or TCP header, or,
	// in a fragment other than the first, after the IP headers (all of a later
	// fragment's data is transport payload). -1 when unknown.
	payload int
	srcPort uint16 // 0 when l4 is -1
	dstPort uint16
}

// parse reads pkt's IP and transport headers. ok is false when pkt is not a
// well-formed IPv4 or IPv6 packet (too short, wrong version, lengths that do not
// fit); a well-formed IP packet with an unreadable transport header is ok with l4 -1.
func parse(pkt []byte) (info packetInfo, ok bool) {
	info.l4, info.payload = -1, -1
	if len(pkt) < 1 {
		return info, false
	}
	switch pkt[0] >> 4 {
	case 4:
		return parse4(pkt, info)
	case 6:
		return parse6(pkt, info)
	}
	return info, false
}

func parse4(pkt []byte, info packetInfo) (packetInfo, bool) {
	if len(pkt) < 20 {
		return info, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(pkt[2])<<8 | int(pkt[3])
	if ihl < 20 || total < ihl || total > len(pkt) {
		return info, false
	}
	info.version, info.proto, info.end = 4, pkt[9], total
	if fragOff := (int(pkt[6])&0x1f)<<8 | int(pkt[7]); fragOff != 0 {
		info.payload = ihl // a later fragment: all data, no transport header
		return info, true
	}
	return transport(pkt, info, ihl), true
}

// IPv6 extension headers parse6 steps over.
const (
	ext6HopByHop = 0
	ext6Routing  = 43
	ext6Fragment = 44
	ext6DestOpts = 60
)

func parse6(pkt []byte, info packetInfo) (packetInfo, bool) {
	if len(pkt) < 40 {
		return info, false
	}
	plen := int(pkt[4])<<8 | int(pkt[5])
	if plen == 0 || 40+plen > len(pkt) { // 0: a jumbogram (RFC 2675), not for this link
		return info, false
	}
	info.version, info.end = 6, 40+plen
	next, off := pkt[6], 40
	for range 8 { // a bound: real packets carry one or two
		switch next {
		case ext6HopByHop, ext6Routing, ext6DestOpts:
			if off+2 > info.end {
				info.proto = next
				return info, true
			}
			next, off = pkt[off], off+(int(pkt[off+1])+1)*8
		case ext6Fragment:
			if off+8 > info.end {
				info.proto = next
				return info, true
			}
			fragOff := (int(pkt[off+2])<<8 | int(pkt[off+3])) >> 3
			next, off = pkt[off], off+8
			if fragOff != 0 {
				info.proto, info.payload = next, off
				return info, true
			}
		default:
			info.proto = next
			return transport(pkt, info, off), true
		}
		if off > info.end {
			info.proto = next
			return info, true
		}
	}
	info.proto = next
	return info, true
}

// transport reads the UDP or TCP header at off, when there is a whole one.
func transport(pkt []byte, info packetInfo, off int) packetInfo {
	var hdr int
	switch info.proto {
	case protoUDP:
		hdr = 8
	case protoTCP:
		if off+20 > info.end {
			return info
		}
		hdr = int(pkt[off+12]>>4) * 4
		if hdr < 20 {
			return info
		}
	default:
		return info
	}
	if off+hdr > info.end {
		return info
	}
	info.l4, info.payload = off, off+hdr
	info.srcPort = uint16(pkt[off])<<8 | uint16(pkt[off+1])
	info.dstPort = uint16(pkt[off+2])<<8 | uint16(pkt[off+3])
	return info
}

// transportPayload returns the transport protocol of pkt and where the payload after
// its UDP or TCP header begins (it ends at the IP packet's end, pkt's length less any
// link padding). ok is false when pkt is not a well-formed IP packet carrying a whole
// UDP or TCP header: another protocol, a truncated header, a later fragment.
func transportPayload(pkt []byte) (proto uint8, payloadOff int, ok bool) {
	info, ok := parse(pkt)
	if !ok || info.l4 < 0 {
		return info.proto, 0, false
	}
	return info.proto, info.payload, true
}

// udpPayload returns the UDP payload of pkt (what the Classifier sees), or ok false
// when pkt is not a UDP packet with a readable header. In a first fragment it is the
// part of the payload the fragment carries.
func udpPayload(pkt []byte, info packetInfo) ([]byte, bool) {
	if info.proto != protoUDP || info.l4 < 0 {
		return nil, false
	}
	return pkt[info.payload:info.end], true
}

// corruptRegion returns the bytes of pkt in which corrupt flips a bit, as [from, to):
// the transport payload; when that is empty, the UDP or TCP checksum field; and for
// IPv4 UDP without a checksum (0: none), also the checksum field, since a flipped
// payload bit would then reach the application. The IP header is never in it, so the
// packet is still routed to its receiver, where the transport checksum fails. ok is
// false for packets that cannot be corrupted so (not UDP or TCP, unparseable).
func corruptRegion(pkt []byte, info packetInfo) (from, to int, ok bool) {
	if info.proto != protoUDP && info.proto != protoTCP {
		return 0, 0, false
	}
	if info.l4 < 0 {
		if info.payload >= 0 && info.payload < info.end { // a later fragment's data
			return info.payload, info.end, true
		}
		return 0, 0, false
	}
	csum := info.l4 + 6 // UDP
	if info.proto == protoTCP {
		csum = info.l4 + 16
	}
	noCsum := info.version == 4 && info.proto == protoUDP && pkt[csum] == 0 && pkt[csum+1] == 0
	if info.payload < info.end && !noCsum {
		return info.payload, info.end, true
	}
	return csum, csum + 2, true
}

// corrupt flips one bit of pkt's corruptRegion, chosen by frac in [0, 1) (uniform frac:
// uniform bit), and returns the bit's index in pkt (byte*8 + bit, bit 0 the most
// significant). A single flipped bit always changes a ones'-complement sum, so the
// receiver's UDP or TCP checksum catches it. ok is false, pkt untouched, when pkt
// cannot be corrupted so.
func corrupt(pkt []byte, info packetInfo, frac float64) (bit int, ok bool) {
	from, to, ok := corruptRegion(pkt, info)
	if !ok {
		return 0, false
	}
	bits := (to - from) * 8
	i := int(frac * float64(bits))
	if i < 0 || i >= bits { // frac out of [0, 1), or NaN
		i = 0
	}
	bit = from*8 + i
	pkt[bit/8] ^= 0x80 >> (bit % 8)
	return bit, true
}

// flowHash identifies the transport flow of a packet that is not data: a hash of
// its addresses, protocol and ports, with the top bit clear (keys with it set are the
// Classifier's flows). Unparseable packets share flow 0.
func flowHash(pkt []byte, info packetInfo, ok bool) uint64 {
	if !ok {
		return 0
	}
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	add := func(b byte) { h = (h ^ uint64(b)) * prime64 }
	var addrs []byte
	if info.version == 4 {
		addrs = pkt[12:20]
	} else {
		addrs = pkt[8:40]
	}
	for _, b := range addrs {
		add(b)
	}
	add(info.proto)
	add(byte(info.srcPort >> 8))
	add(byte(info.srcPort))
	add(byte(info.dstPort >> 8))
	add(byte(info.dstPort))
	return h &^ (1 << 63)
}

// dataFlowKey is the flow key of a packet the Classifier marked as data.
func dataFlowKey(flow uint32) uint64 { return 1<<63 | uint64(flow) }
