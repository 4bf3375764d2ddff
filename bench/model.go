package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Experiment names, as --experiments and reports spell them.
const (
	ExpStream       = "stream"
	ExpPingPong     = "pingpong"
	ExpConnect      = "connect"
	ExpRefused      = "refused"
	ExpClose        = "close"
	ExpClients      = "clients"
	ExpBoundaries   = "boundaries"
	ExpSlowReceiver = "slow-receiver"
	ExpFanout       = "fanout"
	ExpBottleneck   = "bottleneck" // congestion control (lab only, a link with a rate)
	ExpHOL          = "hol"        // head-of-line blocking (lab only)
)

// requestResponse are the experiments that send requests and count replies: a
// request with no reply within --timeout counts in Metrics.Timeouts, as unanswered,
// whatever the transport. A TCP request is never lost, only not answered in time (a
// loaded host, a stalled server); a UDP one may have been lost or only be late
// (LateMsgs). Metrics.LostMsgs repeats Timeouts for them, kept for the JSON
// contract; only the experiments that account for sequence numbers (stream,
// boundaries, fanout, ...) have messages that are lost.
var requestResponse = map[string]bool{ExpPingPong: true, ExpConnect: true, ExpClients: true, ExpClose: true}

// RequestResponse reports whether experiment exp counts requests and their replies:
// its figures say "unanswered" (Metrics.Timeouts), never "lost".
func RequestResponse(exp string) bool { return requestResponse[exp] }

// skipped reports whether a result is a cell that did not run (its observed
// "skipped" says why), as properties and summaries must leave it out.
func skipped(r Result) bool {
	_, ok := r.Observed["skipped"]
	return ok
}

// cellName names a cell: "stream over tcp (size 1024)", "stream over udp (size
// 1024, textbook I/O)".
func cellName(exp, transport string, p Params) string {
	if p.IO != "" {
		return fmt.Sprintf("%s over %s (size %d, %s I/O)", exp, transport, p.Size, p.IO)
	}
	return fmt.Sprintf("%s over %s (size %d)", exp, transport, p.Size)
}

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
	s.RecvBuffer, s.SendBuffer = smallerKnown(s.RecvBuffer, c.RecvBuffer), smallerKnown(s.SendBuffer, c.SendBuffer)
	if c.Batch > 0 {
		s.Batch = smallerKnown(s.Batch, c.Batch)
	}
	s.DataSockets += c.DataSockets
	if c.SendCalls != nil {
		s.SendCalls = addCount(s.SendCalls, *c.SendCalls)
		s.SentDatagrams = addCount(s.SentDatagrams, countOr0(c.SentDatagrams))
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
func addCount(p *uint64, n uint64) *uint64 {
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

// smallerKnown is the smaller of a and b where both are known (non-zero), else the
// one that is.
func smallerKnown(a, b int) int {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
