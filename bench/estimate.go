package bench

import (
	"slices"
	"time"
)

// An Estimate is how long a plan should take on an idle host, cell run by cell run:
// what a progress display counts down. It is arithmetic on the plan, never a
// measurement: a busy host takes longer.
type Estimate struct {
	// Cells holds each cell run's expected time, in run order (Repeat rounds of the
	// plan's cells, each cell in as many rounds as it has runs). A cell skipped at once (one a far end does not run)
	// expects 0.
	Cells []time.Duration
	// Setup is the time before the first cell: the emulated link's set-up.
	Setup time.Duration
	// Known is false when some cell's time cannot be told from the plan: a count of
	// messages or round trips with no rate to divide it by. Such a cell expects 0.
	Known bool
}

// Total is the whole expected time: set-up and every cell run.
func (e Estimate) Total() time.Duration {
	t := e.Setup
	for _, c := range e.Cells {
		t += c
	}
	return t
}

// The estimate's model of the time a cell takes beyond its plan's figures, from
// the default suite's cells on an idle host (Linux 6.18, 2 cores).
const (
	// propertyCellTime is a property cell's time when its experiment says nothing
	// (experimentSpec.expect): most wait a timeout or a second's quiet for something
	// that does not come, over one transport and not the other (refused, close,
	// clients, boundaries and fanout took 7.3 s for 10 cells).
	propertyCellTime = 750 * time.Millisecond
	// typicalDrain is how long a stream cell's drain usually lasts: it ends once every
	// flow is complete, or on a quiet spell (settleQuiet), well before --drain.
	typicalDrain = 200 * time.Millisecond
	// labSetupTime is the emulated link's set-up: two namespaces, two TUN devices.
	labSetupTime = 100 * time.Millisecond
)

// Estimate tells how long the plan should take (see Estimate). A measurement's cell
// takes the warm-up, then --duration (or --count messages at --rate), then, for a
// stream, its drain; a property cell takes what its experiment says (expect), or
// propertyCellTime.
func (p Plan) Estimate() Estimate {
	p = p.WithDefaults()
	est := Estimate{Known: true}
	if p.Lab != nil {
		est.Setup = labSetupTime
	}
	cs := p.cells()
	per := make([]time.Duration, len(cs))
	for i, c := range cs {
		if p.Far != nil && !slices.Contains(FarExperiments, c.exp) {
			continue // skipped at once (farSkipped)
		}
		d, ok := p.cellTime(c)
		per[i] = d
		est.Known = est.Known && ok
	}
	for r := range p.Repeat { // in run order: round r runs every cell with more than r runs
		for i, c := range cs {
			if r < c.runs {
				est.Cells = append(est.Cells, per[i])
			}
		}
	}
	return est
}

// cellTime is how long cell c should take; ok is false when the plan cannot tell.
func (p Plan) cellTime(c cell) (d time.Duration, ok bool) {
	spec, _ := experimentByName(c.exp)
	p.Duration = c.duration() // the cell's own: under the spread default a property cell runs once for DefaultDuration
	switch {
	case spec.expect != nil:
		return spec.expect(p), true
	case !spec.measures:
		return propertyCellTime, true
	}
	var drain time.Duration
	if spec.streams {
		drain = min(p.drain(), typicalDrain)
	}
	if p.Count == 0 {
		return p.warmup() + p.Duration + drain, true
	}
	if !spec.streams || c.params.RateBps <= 0 {
		return 0, false // as fast as it goes: nothing to divide the count by
	}
	// --rate paces all streams together (each direction, with --bidir: they send at once).
	bits := float64(p.Count) * float64(c.params.Streams) * float64(c.params.Size) * 8
	send := time.Duration(bits / c.params.RateBps * float64(time.Second))
	return p.warmup() + send + drain, true
}

// phaseTime is how long one sending phase of an experiment bounded by most lasts:
// --duration up to most, or most when the plan has no duration (--count, which
// such experiments do not take).
func phaseTime(p Plan, most time.Duration) time.Duration {
	if p.Duration <= 0 {
		return most
	}
	return min(p.Duration, most)
}
