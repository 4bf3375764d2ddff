package bench

import "errors"

// rejects counts received messages that cannot be accounted, by reason.
type rejects struct {
	foreign   uint64 // not ours: another program's, or another run's
	corrupt   uint64 // CRC32C mismatch, of the header or of the payload
	malformed uint64 // ours, but a header that breaks a rule
}

// accept decodes msg, checks that it belongs to run and that its payload is intact,
// and returns its header. A message that fails is counted in r and accept returns
// false: every receiver sorts what it cannot use the same way.
func (r *rejects) accept(msg []byte, run uint64) (Header, bool) {
	h, err := DecodeHeader(msg)
	switch {
	case errors.Is(err, ErrForeign):
		r.foreign++
	case errors.Is(err, ErrCorrupt):
		r.corrupt++
	case err != nil:
		r.malformed++
	case h.Run != run:
		r.foreign++
	case VerifyPayload(msg, h) != nil:
		r.corrupt++
	default:
		return h, true
	}
	return Header{}, false
}

// addTo adds the counts to a result's metrics.
func (r rejects) addTo(m *Metrics) {
	m.ForeignMsgs += r.foreign
	m.CorruptMsgs += r.corrupt
	m.MalformedMsgs += r.malformed
}
