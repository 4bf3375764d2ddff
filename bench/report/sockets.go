package report

import (
	"maps"
	"slices"
	"strings"
)

// NoteRx records that the end's endpoints of experiment exp received in mode (a
// RecvModer's name; "" records nothing). A second, different mode for the same
// experiment joins the first ("blocking, poller").
func (s *Sock) NoteRx(exp, mode string) {
	if mode == "" {
		return
	}
	if s.Rx == nil {
		s.Rx = make(map[string]string)
	}
	switch old, ok := s.Rx[exp]; {
	case !ok:
		s.Rx[exp] = mode
	case !slices.Contains(strings.Split(old, ", "), mode):
		s.Rx[exp] = old + ", " + mode
	}
}

// Merge adds a cell's description of one end to s, the run's: the smallest grants
// and batch, the flags and refusals as first reported (refusals once each), the
// endpoints and send counts summed.
func (s *Sock) Merge(c Sock) {
	if s.DataSockets == 0 {
		*s = c
		s.Refused = append([]string(nil), c.Refused...)
		s.Rx = maps.Clone(c.Rx)
		return
	}
	s.RecvBuffer, s.SendBuffer = SmallerKnown(s.RecvBuffer, c.RecvBuffer), SmallerKnown(s.SendBuffer, c.SendBuffer)
	if c.Batch > 0 {
		s.Batch = SmallerKnown(s.Batch, c.Batch)
	}
	s.DataSockets += c.DataSockets
	if c.SendCalls != nil {
		s.SendCalls = AddCount(s.SendCalls, *c.SendCalls)
		s.SentDatagrams = AddCount(s.SentDatagrams, countOr0(c.SentDatagrams))
	}
	for _, r := range c.Refused {
		if !slices.Contains(s.Refused, r) {
			s.Refused = append(s.Refused, r)
		}
	}
	for _, exp := range slices.Sorted(maps.Keys(c.Rx)) {
		for _, m := range strings.Split(c.Rx[exp], ", ") {
			s.NoteRx(exp, m)
		}
	}
}

// addCount adds n to the count p points to (nil: none yet) and returns a new pointer.
func AddCount(p *uint64, n uint64) *uint64 {
	v := n
	if p != nil {
		v += *p
	}
	return &v
}

// countOr0 is the count p points to, or 0 when nil.
func countOr0(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// SmallerKnown is the smaller of a and b where both are known (non-zero), else the
// one that is.
func SmallerKnown(a, b int) int {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
