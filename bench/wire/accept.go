package wire

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// Verify is what a receiver checks of each message before it counts it (--verify).
// The zero value, VerifyPayloadCRC, checks everything.
type Verify uint8

const (
	// VerifyPayloadCRC checks the header (its CRC32C, its fields, the run id) and the
	// payload's CRC32C: a corrupted message is counted in corrupt_msgs and never
	// counted as delivered. The default.
	VerifyPayloadCRC Verify = iota
	// VerifyHeaderCRC checks the header only: sequence numbers, lengths and run ids are
	// still trusted, and a corrupted header is still counted, but a corrupted payload
	// is not noticed, so the report says payloads were not verified. It saves one
	// CRC32C pass over every payload byte the receiver gets (what iperf3 never pays).
	VerifyHeaderCRC
)

// VerifyNames are the values --verify takes, VerifyPayloadCRC's first.
var VerifyNames = []string{"payload", "header"}

// String returns the policy's flag value: "payload" or "header".
func (v Verify) String() string {
	if int(v) < len(VerifyNames) {
		return VerifyNames[v]
	}
	return fmt.Sprintf("verify(%d)", uint8(v))
}

// Payloads reports whether the policy checks payloads, so that a count of corrupt
// messages is a measured figure.
func (v Verify) Payloads() bool { return v == VerifyPayloadCRC }

// ParseVerify reads a --verify value; "" is the default, VerifyPayloadCRC.
func ParseVerify(s string) (Verify, error) {
	switch s {
	case "", "payload":
		return VerifyPayloadCRC, nil
	case "header":
		return VerifyHeaderCRC, nil
	}
	return 0, fmt.Errorf("--verify: must be payload (header and payload CRC32C, the default) or header (header only), got %q", s)
}

// Rejects counts received messages that cannot be accounted, by reason.
type Rejects struct {
	Foreign   uint64 // not ours: another program's, or another run's
	Corrupt   uint64 // CRC32C mismatch, of the header or (VerifyPayloadCRC) of the payload
	Malformed uint64 // ours, but a header that breaks a rule

	// Memo, when set, remembers payloads whose CRC32C matched (the stream receiver
	// sets it: its flows repeat one payload); nil = compute every payload's CRC.
	Memo *PayloadMemo
}

// PayloadMemo holds a few payloads that passed the CRC32C check, with their CRC,
// slot by the CRC's low bits. A payload byte for byte equal to one of them, whose
// header carries that CRC, passes without the CRC pass: its CRC32C is the
// remembered one, so the check's answer is the same, computed with a comparison
// (memequal, several times faster than CRC32C). Anything else, a corrupted payload
// among it, is checked by its CRC32C as without the memo. Owned by one receiving
// goroutine.
type PayloadMemo struct {
	slot [payloadMemoSlots]struct {
		crc uint32
		ok  bool
		ref []byte
	}
}

// payloadMemoSlots is the memo's size: a stream's flows each repeat one payload, and
// a few flows sharing a slot cost a CRC32C and a copy each time they alternate.
const payloadMemoSlots = 16

// verify is VerifyPayload's verdict on msg's payload against h, nil-error as bool.
func (m *PayloadMemo) verify(msg []byte, h Header) bool {
	if len(msg) < HeaderLen {
		return false
	}
	p := msg[HeaderLen:]
	s := &m.slot[h.PayloadCRC%payloadMemoSlots]
	if s.ok && s.crc == h.PayloadCRC && bytes.Equal(s.ref, p) {
		return true
	}
	if PayloadCRC(p) != h.PayloadCRC {
		return false
	}
	if len(p) <= maxMemoPayload {
		s.ref = append(s.ref[:0], p...)
		s.crc, s.ok = h.PayloadCRC, true
	}
	return true
}

// maxMemoPayload is the largest payload the memo keeps, bytes: above it the CRC
// pass is a small part of the cost of receiving the message.
const maxMemoPayload = 16 << 10

// Accept decodes msg, checks that it belongs to e's run and, unless e's policy is
// VerifyHeaderCRC, that its payload is intact, and returns its header. A message that
// fails is counted in r and Accept returns false: every receiver sorts what it
// cannot use the same way.
func (r *Rejects) Accept(msg []byte, run uint64, verify Verify) (Header, bool) {
	h, err := DecodeHeader(msg)
	switch {
	case errors.Is(err, ErrForeign):
		r.Foreign++
	case errors.Is(err, ErrCorrupt):
		r.Corrupt++
	case err != nil:
		r.Malformed++
	case h.Run != run:
		r.Foreign++
	case verify == VerifyPayloadCRC && r.Memo == nil && VerifyPayload(msg, h) != nil:
		r.Corrupt++
	case verify == VerifyPayloadCRC && r.Memo != nil && !r.Memo.verify(msg, h):
		r.Corrupt++
	default:
		return h, true
	}
	return Header{}, false
}

// AddTo adds the counts to a result's metrics.
func (r Rejects) AddTo(m *report.Metrics) {
	m.ForeignMsgs += r.Foreign
	m.CorruptMsgs += r.Corrupt
	m.MalformedMsgs += r.Malformed
}
