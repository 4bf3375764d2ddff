package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// progress shows where a run is on stderr: a bar when stderr is a terminal, one
// plain line per finished cell otherwise.
type progress struct {
	w       io.Writer
	bars    *mpb.Progress // nil when stderr is not a terminal
	bar     *mpb.Bar
	current atomic.Value // string: the cell being run
	start   time.Time
}

func newProgress(w io.Writer, p bench.Plan) *progress {
	pr := &progress{w: w, start: time.Now()}
	pr.current.Store("")
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pr.bars = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
	}
	if est := p.ExpectedDuration(); est > 0 {
		fmt.Fprintf(w, "tcpvsudp: about %v (Ctrl-C stops early and keeps what was measured)\n", est.Round(time.Second))
	}
	return pr
}

func (pr *progress) event(ev bench.ProgressEvent) {
	r := ev.Result
	name := fmt.Sprintf("%s %s size=%d", r.Experiment, r.Transport, r.Params.Size)
	if r.Params.IO != "" {
		name += " io=" + r.Params.IO
	}
	if pr.bars != nil {
		if pr.bar == nil {
			pr.bar = pr.bars.AddBar(int64(ev.Total),
				mpb.PrependDecorators(decor.CountersNoUnit("[%d/%d] ", decor.WCSyncWidth)),
				mpb.AppendDecorators(
					decor.Any(func(decor.Statistics) string { return pr.current.Load().(string) }),
					decor.OnComplete(decor.Name(""), " done"),
				),
			)
		}
		if !ev.Done {
			pr.current.Store(" " + name)
		} else {
			pr.bar.Increment()
		}
		return
	}
	if ev.Done {
		fmt.Fprintf(pr.w, "[%d/%d] %s: %s\n", ev.Index, ev.Total, name, remote.Printable(summary(r))) // a failed cell's error may quote the server
	}
}

func (pr *progress) close() {
	if pr.bars == nil {
		return
	}
	if pr.bar != nil {
		pr.bar.Abort(false)
	}
	pr.bars.Wait()
}

// summary is a one-line account of a finished cell for progress lines: what the
// cell measured, in words that fit beside its name in 100 columns. Requests with no
// reply within --timeout are unanswered, never lost (bench.RequestResponse); only
// sequence-numbered messages are lost.
func summary(r *report.Result) string {
	if !r.Measured() {
		return "not measured: " + r.Error // no figures, not zeros
	}
	if why, ok := r.Observed["skipped"].(string); ok {
		return "skipped: " + why
	}
	m := r.Metrics
	switch {
	case r.Experiment == report.ExpStream || r.Experiment == report.ExpSlowReceiver:
		lost := 0.0
		if m.SentMsgs > 0 {
			lost = 100 * float64(m.LostMsgs) / float64(m.SentMsgs)
		}
		return fmt.Sprintf("goodput %s (receiver), sent %d, lost %d (%.2f%%)", units.Bps(m.GoodputBps), m.SentMsgs, m.LostMsgs, lost)
	case r.Experiment == report.ExpRefused:
		return refusedSummary(r.Observed)
	case r.Experiment == report.ExpClose:
		return closeSummary(r.Observed)
	case report.RequestResponse(r.Experiment):
		p50 := "n/a"
		if m.RTT != nil && m.RTT.P50 != nil {
			p50 = units.Dur(float64(*m.RTT.P50))
		}
		what := "RTT"
		if r.Experiment == report.ExpConnect {
			what = "first answer"
		}
		return fmt.Sprintf("%s p50 %s, %.0f/s, unanswered %d of %d", what, p50, m.MsgsPerS, m.Timeouts, m.SentMsgs)
	default: // a property experiment with sequence numbers: its observations are the point, in the report
		return fmt.Sprintf("sent %d, received %d, lost %d; %d observations", m.SentMsgs, m.RecvMsgs, m.LostMsgs, len(r.Observed))
	}
}

// refusedSummary says when and how the transport reported that nobody listens:
// "refused at dial after 35.0 us", "ECONNREFUSED 120 us after the send", or
// "no refusal within 1.00 s".
func refusedSummary(o map[string]any) string {
	d := obsDur(o, "detect_ns")
	switch o["refused_at"] {
	case "dial":
		if o["refused"] == true {
			return "refused at dial after " + d
		}
		return "dial failed after " + d
	case "after send":
		if o["refused"] == true {
			return "dial succeeded; ECONNREFUSED " + d + " after the send"
		}
		return "dial succeeded; send error " + d + " after the send"
	case "never":
		return "dial and send succeeded; no refusal within " + obsDur(o, "waited_ns")
	}
	return fmt.Sprintf("%d observations", len(o))
}

// closeSummary says what the reader learned of its peer's close, and whether the
// connected client was still answered once the listener closed.
func closeSummary(o map[string]any) string {
	var peer string
	switch res, _ := o["peer_close_result"].(string); {
	case o["peer_close_seen"] != true:
		peer = "peer close: nothing within " + obsDur(o, "peer_close_waited_ns")
	case strings.Contains(res, "EOF"):
		peer = "peer close: EOF after " + obsDur(o, "peer_close_detect_ns")
	default:
		peer = "peer close: reset after " + obsDur(o, "peer_close_detect_ns")
	}
	switch o["listener_closed_existing_answered"] {
	case true:
		return peer + "; listener closed: client still answered"
	case false:
		return peer + "; listener closed: client unanswered"
	}
	return peer
}

// obsDur formats an observation in ns as a duration; "?" when absent.
func obsDur(o map[string]any, key string) string {
	switch v := o[key].(type) {
	case int64:
		return units.Dur(float64(v))
	case int:
		return units.Dur(float64(v))
	case uint64:
		return units.Dur(float64(v))
	case float64:
		return units.Dur(v)
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return units.Dur(f)
		}
	}
	return "?"
}
