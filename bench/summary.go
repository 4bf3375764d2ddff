package bench

import (
	"fmt"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// Summary is a one-line account of a finished cell for progress lines: what the
// cell measured, in words that fit beside its name in 100 columns. Its experiment's
// registry entry words it (experimentSpec.summary); a request/response experiment's
// requests with no reply within --timeout are unanswered, never lost; only
// sequence-numbered messages are lost.
func Summary(r *report.Result) string {
	if !r.Measured() {
		return "not measured: " + r.Error // no figures, not zeros
	}
	if why, ok := r.Observed["skipped"].(string); ok {
		return "skipped: " + why
	}
	x, _ := experimentByName(r.Experiment)
	switch {
	case x.summary != nil:
		return x.summary(r)
	case x.requestResponse:
		return requestSummary(r, "RTT")
	}
	// A property experiment with sequence numbers: its observations are the point,
	// in the report.
	m := r.Metrics
	return fmt.Sprintf("sent %d, received %d, lost %d; %d observations", m.SentMsgs, m.RecvMsgs, m.LostMsgs, len(r.Observed))
}

// RequestResponse reports whether experiment exp sends requests and counts their
// replies: a request with no reply within --timeout counts in Metrics.Timeouts, as
// unanswered, whatever the transport. A TCP request is never lost, only not
// answered in time (a loaded host, a stalled server); a UDP one may have been lost
// or only be late (LateMsgs). Metrics.LostMsgs repeats Timeouts for them, kept for
// the JSON contract.
func RequestResponse(exp string) bool {
	x, _ := experimentByName(exp)
	return x.requestResponse
}

// requestSummary is a request/response cell's line: what's p50 (the round trip,
// or the first answer), transactions/s, and how many requests went unanswered.
func requestSummary(r *report.Result, what string) string {
	m := r.Metrics
	p50 := "n/a"
	if m.RTT != nil && m.RTT.P50 != nil {
		p50 = units.Dur(float64(*m.RTT.P50))
	}
	return fmt.Sprintf("%s p50 %s, %.0f/s, unanswered %d of %d", what, p50, m.MsgsPerS, m.Timeouts, m.SentMsgs)
}

// obsDur formats the observation k, in ns, as a duration; "?" when absent.
func obsDur(o map[string]any, k report.Obs[int64]) string {
	if v, ok := report.ObsNum(o, k); ok {
		return units.Dur(v)
	}
	return "?"
}
