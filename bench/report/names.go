package report

import (
	"fmt"
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
func Skipped(r Result) bool {
	_, ok := r.Observed["skipped"]
	return ok
}

// cellName names a cell: "stream over tcp (size 1024)", "stream over udp (size
// 1024, textbook I/O)".
func CellName(exp, transport string, p Params) string {
	if p.IO != "" {
		return fmt.Sprintf("%s over %s (size %d, %s I/O)", exp, transport, p.Size, p.IO)
	}
	return fmt.Sprintf("%s over %s (size %d)", exp, transport, p.Size)
}
