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
