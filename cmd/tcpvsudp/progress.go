package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
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
		fmt.Fprintf(pr.w, "[%d/%d] %s: %s\n", ev.Index, ev.Total, name, summary(r))
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

// summary is a one-line account of a finished cell for progress lines.
func summary(r *bench.Result) string {
	if r.Error != "" {
		return "failed: " + r.Error
	}
	if why, ok := r.Observed["skipped"].(string); ok {
		return "skipped: " + why
	}
	m := r.Metrics
	switch r.Experiment {
	case bench.ExpStream, bench.ExpSlowReceiver:
		lost := 0.0
		if m.SentMsgs > 0 {
			lost = 100 * float64(m.LostMsgs) / float64(m.SentMsgs)
		}
		return fmt.Sprintf("goodput %s (receiver), sent %d, lost %d (%.2f%%)", bench.FormatBps(m.GoodputBps), m.SentMsgs, m.LostMsgs, lost)
	case bench.ExpPingPong, bench.ExpConnect, bench.ExpClients:
		p50 := "n/a"
		if m.RTT != nil && m.RTT.P50 != nil {
			p50 = bench.FormatNs(float64(*m.RTT.P50))
		}
		what := "RTT"
		if r.Experiment == bench.ExpConnect {
			what = "first answer"
		}
		return fmt.Sprintf("%s p50 %s, %.0f/s, lost %d of %d", what, p50, m.MsgsPerS, m.LostMsgs, m.SentMsgs)
	default: // a property experiment: its observations are the point, in the report
		return fmt.Sprintf("sent %d, received %d, lost %d; %d observations", m.SentMsgs, m.RecvMsgs, m.LostMsgs, len(r.Observed))
	}
}
