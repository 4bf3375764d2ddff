package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// progress shows where a run is on stderr, over the whole run: the loopback suite,
// then the emulated-link section, named when it starts. On a terminal it is one bar
// with the cell running and the time left; otherwise one plain line per finished
// cell. The time left comes from the plans' estimates (bench.Plan.Estimate), less
// what the running cell has already taken.
type progress struct {
	w    io.Writer
	bars *mpb.Progress // nil when stderr is not a terminal
	bar  *mpb.Bar

	mu        sync.Mutex        // guards the fields below: the bar's decorators read them
	sections  []progressSection // in run order: those expected, then any that ran unexpected
	cells     []time.Duration   // the expected time of every cell run of sections, in order
	known     bool              // every cell's time is known (no --count without --rate)
	offset    int               // cell runs of the sections before the running one
	index     int               // the running (or last) cell run, 1-based over the whole run
	cellStart time.Time         // when the running cell started
	current   string            // the running cell's name, with its section's
	label     string            // the running section's label in cell names, "" for the first
}

// A progressSection is one bench.Run of a whole run, and its estimate.
type progressSection struct {
	name  string // as the first line and its heading say it: "" for the loopback suite
	about string // what its heading adds: the link it crosses
	label string // before its cells' names on the bar: "lab: "
	est   bench.Estimate
}

// newProgress starts showing a run of sections, the ones expected to run, in order,
// and says how long they should take.
func newProgress(w io.Writer, sections ...progressSection) *progress {
	pr := &progress{w: w, known: true}
	for _, s := range sections {
		pr.add(s)
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pr.bars = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
		pr.bar = pr.bars.AddBar(int64(len(pr.cells)),
			mpb.PrependDecorators(decor.CountersNoUnit("[%d/%d] ", decor.WCSyncWidth)),
			mpb.AppendDecorators(
				decor.Any(func(decor.Statistics) string { return pr.status(time.Now()) }),
				decor.OnComplete(decor.Name(""), " done"),
			),
		)
	}
	if len(sections) > 0 {
		pr.println("tcpvsudp: " + pr.plan() + " (Ctrl-C stops early and keeps what was measured)")
	}
	return pr
}

// add appends a section's cells. Callers hold mu, or own pr alone.
func (pr *progress) add(s progressSection) {
	pr.sections = append(pr.sections, s)
	pr.cells = append(pr.cells, s.est.Cells...)
	pr.known = pr.known && s.est.Known
}

// plan says what the run holds and how long it should take: "about 1m25s: 29 cells,
// then 7 in the emulated-link section".
func (pr *progress) plan() string {
	var parts []string
	var total time.Duration
	for i, s := range pr.sections {
		total += s.est.Total()
		switch {
		case i == 0:
			n, word := len(s.est.Cells), "cells"
			if n == 1 {
				word = "cell"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, word))
		default:
			parts = append(parts, fmt.Sprintf("then %d in the %s", len(s.est.Cells), s.name))
		}
	}
	what := strings.Join(parts, ", ")
	if !pr.known {
		return what + "; how long --count takes is not known in advance"
	}
	if total < time.Second {
		return "under a second: " + what
	}
	return fmt.Sprintf("about %v: %s", total.Round(time.Second), what)
}

// section tells progress that the named section starts, counted after the cells
// before it; one not expected is added. Its heading says what it is.
func (pr *progress) section(s progressSection) {
	pr.mu.Lock()
	pr.offset = 0
	found := false
	for _, have := range pr.sections {
		if have.name == s.name {
			found = true
			break
		}
		pr.offset += len(have.est.Cells)
	}
	if !found {
		pr.add(s)
	}
	pr.label = s.label
	total := len(pr.cells)
	pr.mu.Unlock()
	if !found && pr.bar != nil {
		pr.bar.SetTotal(int64(total), false) // not under mu: the bar's decorators take it
	}
	head := fmt.Sprintf("%s: %d cells", s.name, len(s.est.Cells))
	if s.est.Known {
		head += fmt.Sprintf(", about %v", s.est.Total().Round(time.Second))
	}
	if s.about != "" {
		head += ", " + s.about
	}
	pr.println(head)
}

// println writes a line above the bar, or on its own, wrapped at word boundaries
// to the terminal's width (100 columns when stderr is not a terminal).
func (pr *progress) println(line string) {
	line = hangingIndent("", line, helpWidth(pr.w), 2)
	if pr.bars != nil {
		fmt.Fprint(pr.bars, line)
		return
	}
	fmt.Fprint(pr.w, line)
}

// status is the bar's text: the running cell and the time left at now.
func (pr *progress) status(now time.Time) string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	s := pr.current
	if left, ok := pr.left(now); ok {
		s += fmt.Sprintf(", about %v left", left.Round(time.Second))
	}
	return s
}

// left is the expected time to the end of the run at now: the cells after the
// running one, and what the running one should still take (at least nothing).
// Callers hold mu.
func (pr *progress) left(now time.Time) (time.Duration, bool) {
	if !pr.known || pr.index < 1 || pr.index > len(pr.cells) {
		return 0, false
	}
	var d time.Duration
	for _, c := range pr.cells[pr.index:] {
		d += c
	}
	if !pr.cellStart.IsZero() {
		d += max(pr.cells[pr.index-1]-now.Sub(pr.cellStart), 0)
	}
	return d, true
}

func (pr *progress) event(ev bench.ProgressEvent) {
	r := ev.Result
	name := fmt.Sprintf("%s %s size=%d", r.Experiment, r.Transport, r.Params.Size)
	if r.Params.IO != "" {
		name += " io=" + r.Params.IO
	}
	pr.mu.Lock()
	idx, total := pr.offset+ev.Index, len(pr.cells)
	if total == 0 {
		total = ev.Total // a progress with no plan: the run's own count
	}
	if !ev.Done {
		pr.index, pr.cellStart, pr.current = idx, time.Now(), " "+pr.label+name
	} else {
		pr.cellStart = time.Time{}
	}
	pr.mu.Unlock()
	if pr.bars != nil {
		if ev.Done {
			pr.bar.Increment()
		}
		return
	}
	if ev.Done {
		pr.println(fmt.Sprintf("[%d/%d] %s: %s", idx, total, name, remote.Printable(bench.Summary(r)))) // a failed cell's error may quote the server
	}
}

// close ends the display; a bar left short (a run stopped early, a section that did
// not run) stops where it is.
func (pr *progress) close() {
	if pr.bars == nil {
		return
	}
	if pr.bar != nil {
		pr.bar.Abort(false)
	}
	pr.bars.Wait()
}
