package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestDefaultPlanSpread: a plan that says neither how often nor how long runs each
// measurement cell DefaultRepeat times for DefaultRunDuration, its property cells
// once for DefaultDuration, in no longer than one DefaultDuration run each took;
// a plan that says either gets what it says.
func TestDefaultPlanSpread(t *testing.T) {
	if DefaultRepeat != 3 || DefaultRunDuration != 800*time.Millisecond || DefaultDuration != 3*time.Second {
		t.Fatalf("defaults %d x %v (property cells %v), want 3 x 800ms (3s)", DefaultRepeat, DefaultRunDuration, DefaultDuration)
	}
	type want struct {
		repeat       int
		duration     time.Duration
		measureRuns  int
		measureS     float64 // DurationS of a measurement cell
		propertyRuns int
		propertyS    float64
		spread       bool
	}
	exps := []string{report.ExpStream, report.ExpRefused}
	tests := []struct {
		name string
		p    Plan
		want want
	}{
		{"default", Plan{}, want{3, 800 * time.Millisecond, 3, 0.8, 1, 3, true}},
		{"--repeat 6", Plan{Repeat: 6}, want{6, 3 * time.Second, 6, 3, 6, 3, false}},
		{"--duration 2s", Plan{Duration: 2 * time.Second}, want{1, 2 * time.Second, 1, 2, 1, 2, false}},
		{"--repeat 3 --duration 1s", Plan{Repeat: 3, Duration: time.Second}, want{3, time.Second, 3, 1, 3, 1, false}},
		{"--count 100", Plan{Count: 100}, want{1, 0, 1, 0, 1, 0, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Transports, tc.p.Experiments, tc.p.Sizes, tc.p.UDPIO = []string{"tcp"}, exps, []int{64}, []string{report.IOBatched}
			p := tc.p.WithDefaults().WithDefaults() // idempotent
			w := tc.want
			if p.Repeat != w.repeat || p.Duration != w.duration || p.SpreadDefault() != w.spread {
				t.Errorf("plan %d x %v (spread %v), want %d x %v (%v)", p.Repeat, p.Duration, p.SpreadDefault(), w.repeat, w.duration, w.spread)
			}
			cs := p.cells()
			if len(cs) != 2 {
				t.Fatalf("cells %v, want stream and refused over tcp", cs)
			}
			for _, c := range cs {
				runs, s := w.measureRuns, w.measureS
				if c.exp == report.ExpRefused {
					runs, s = w.propertyRuns, w.propertyS
				}
				if c.runs != runs || c.params.DurationS != s {
					t.Errorf("%s: %d runs of %v s, want %d of %v s", c, c.runs, c.params.DurationS, runs, s)
				}
			}
		})
	}

	// The default suite takes no longer than the one 3 s run per cell it replaces.
	spread := Plan{}.WithDefaults()
	old := Plan{Repeat: 1, Duration: DefaultDuration}.WithDefaults()
	if got, was := measuringTime(spread), measuringTime(old); got > was || got == 0 {
		t.Errorf("default suite expected to take %v, one 3s run per cell %v: want no longer", got, was)
	}
	// And measuringTime counts what runs: stream's 3 runs of 0.8 s and refused's
	// one of 3 s, each after its warm-up.
	p := Plan{Transports: []string{"tcp"}, Experiments: exps, Sizes: []int{64}, UDPIO: []string{report.IOBatched}}.WithDefaults()
	if got, want := measuringTime(p), 3*(800+200)*time.Millisecond+(3000+200)*time.Millisecond; got != want {
		t.Errorf("measuringTime %v, want %v", got, want)
	}
}

// measuringTime is how long plan p's cells warm up and measure, every run of each:
// the time the spread default shares out (its estimate, Plan.Estimate, adds what a
// cell takes beyond that).
func measuringTime(p Plan) time.Duration {
	var d time.Duration
	for _, c := range p.cells() {
		d += time.Duration(c.runs) * (c.duration() + p.warmup())
	}
	return d
}

// TestDefaultPlanRuns: under the default, Run runs a measurement cell three times
// and reports its spread, and a property cell once.
func TestDefaultPlanRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pingpong 3 x 800ms")
	}
	var starts []string
	p := Plan{Transports: []string{"udp"}, Experiments: []string{report.ExpRefused, report.ExpPingPong}, Sizes: []int{64},
		Warmup: NoWarmup, Timeout: 100 * time.Millisecond,
		Progress: func(ev ProgressEvent) {
			if !ev.Done {
				starts = append(starts, ev.Result.Experiment)
			}
		}}
	rep, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"refused", "pingpong", "pingpong", "pingpong"}; !slices.Equal(starts, want) {
		t.Errorf("cell runs started %q, want %q", starts, want)
	}
	if rep.Config.Repeat != 3 || rep.Config.DurationS != 0.8 {
		t.Errorf("config repeat %d, duration %v s; want 3, 0.8", rep.Config.Repeat, rep.Config.DurationS)
	}
	for _, r := range rep.Results {
		switch r.Experiment {
		case report.ExpRefused:
			if r.Repeat != nil || r.Params.DurationS != 3 {
				t.Errorf("refused: repeat %+v, %v s; want one run (no Repeat) of 3 s", r.Repeat, r.Params.DurationS)
			}
		case report.ExpPingPong:
			if !r.Measured() {
				t.Fatalf("pingpong not measured: %s", r.Error)
			}
			if r.Repeat == nil || r.Repeat.Runs != 3 {
				t.Fatalf("pingpong: repeat %+v, want 3 runs", r.Repeat)
			}
			sp, ok := r.Repeat.Spread["rtt_p50_ns"]
			if !ok || sp.Min > sp.Median || sp.Median > sp.Max || float64(*r.Metrics.RTT.P50) != sp.Median {
				t.Errorf("pingpong rtt_p50 spread %+v (present %v), p50 %d: want min <= median = p50 <= max", sp, ok, *r.Metrics.RTT.P50)
			}
		}
	}
}
