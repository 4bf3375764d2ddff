package bench

import (
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestEstimate checks the estimate's arithmetic on plans whose cells are known: a
// measurement's cell is warm-up + duration (or count at rate) + a stream's drain, a
// property cell its experiment's time, the emulated link adds its set-up.
func TestEstimate(t *testing.T) {
	const ms = time.Millisecond
	base := Plan{
		Transports: []string{"tcp", "udp"}, Sizes: []int{64, 1024}, UDPIO: []string{report.IOBatched},
		Duration: time.Second, Warmup: 100 * ms, Drain: 500 * ms,
	}
	with := func(f func(*Plan)) Plan {
		p := base
		f(&p)
		return p
	}
	lab := &LabConfig{}
	lab.Up.RateBps, lab.Down.RateBps = 50e6, 50e6
	for _, tc := range []struct {
		name      string
		plan      Plan
		cells     int
		want      time.Duration
		wantKnown bool
	}{
		{
			// stream: 2 sizes × 2 transports × (warm-up + duration + typical drain);
			// pingpong: 4 × (warm-up + duration); connect (smallest size only): 2 × the same.
			name: "measurements", cells: 10, wantKnown: true,
			plan: with(func(p *Plan) {
				p.Experiments = []string{report.ExpStream, report.ExpPingPong, report.ExpConnect}
			}),
			want: 4*(100*ms+time.Second+typicalDrain) + 4*(100*ms+time.Second) + 2*(100*ms+time.Second),
		},
		{
			name: "repeated", cells: 20, wantKnown: true,
			plan: with(func(p *Plan) {
				p.Experiments = []string{report.ExpStream, report.ExpPingPong, report.ExpConnect}
				p.Repeat = 2
			}),
			want: 2 * (4*(100*ms+time.Second+typicalDrain) + 4*(100*ms+time.Second) + 2*(100*ms+time.Second)),
		},
		{
			name: "drain shorter than typical", cells: 4, wantKnown: true,
			plan: with(func(p *Plan) { p.Experiments, p.Drain = []string{report.ExpStream}, 50*ms }),
			want: 4 * (100*ms + time.Second + 50*ms),
		},
		{
			name: "no warm-up, no drain", cells: 4, wantKnown: true,
			plan: with(func(p *Plan) { p.Experiments, p.Warmup, p.Drain = []string{report.ExpStream}, NoWarmup, -1 }),
			want: 4 * time.Second,
		},
		{
			// refused: 2 × propertyCellTime; slow-receiver: 2 × min(duration, 2 s).
			name: "property cells", cells: 4, wantKnown: true,
			plan: with(func(p *Plan) { p.Experiments = []string{report.ExpRefused, report.ExpSlowReceiver} }),
			want: 2*propertyCellTime + 2*time.Second,
		},
		{
			// 1000 messages × 2 streams × 1000 bytes × 8 bits at 8 Mbit/s = 2 s.
			name: "count at a rate", cells: 1, wantKnown: true,
			plan: with(func(p *Plan) {
				p.Experiments, p.Transports, p.Sizes = []string{report.ExpStream}, []string{"udp"}, []int{1000}
				p.Count, p.RateBps, p.Streams, p.Duration = 1000, 8e6, 2, 0
			}),
			want: 100*ms + 2*time.Second + typicalDrain,
		},
		{
			name: "count unpaced", cells: 1, wantKnown: false,
			plan: with(func(p *Plan) {
				p.Experiments, p.Transports, p.Sizes = []string{report.ExpStream}, []string{"udp"}, []int{1000}
				p.Count, p.Duration = 1000, 0
			}),
			want: 0,
		},
		{
			// hol: warm-up + min(duration, 3 s) + drain; bottleneck: two phases of
			// min(duration, 3 s) + the competitor's extra + drain; the link's set-up once.
			name: "emulated link", cells: 4, wantKnown: true,
			plan: with(func(p *Plan) {
				p.Experiments, p.Lab, p.Duration = []string{report.ExpHOL, report.ExpBottleneck}, lab, 2*time.Second
			}),
			want: labSetupTime + 2*(100*ms+2*time.Second+typicalDrain) + 2*2*(2*time.Second+competitorExtra+typicalDrain),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := tc.plan.Estimate()
			if len(est.Cells) != tc.cells || est.Total() != tc.want || est.Known != tc.wantKnown {
				t.Errorf("Estimate() = %d cells, total %v, known %v; want %d cells, %v, known %v (cells %v)",
					len(est.Cells), est.Total(), est.Known, tc.cells, tc.want, tc.wantKnown, est.Cells)
			}
		})
	}
}

// TestEstimateSpreadDefault: under the spread default (no --repeat, --duration or
// --count) a measurement cell runs DefaultRepeat times for DefaultRunDuration and a
// property cell once for DefaultDuration, and the estimate counts exactly those runs.
func TestEstimateSpreadDefault(t *testing.T) {
	const ms = time.Millisecond
	p := Plan{Transports: []string{"tcp", "udp"}, Sizes: []int{64}, UDPIO: []string{report.IOBatched},
		Experiments: []string{report.ExpPingPong, report.ExpSlowReceiver}, Warmup: 100 * ms, Drain: 500 * ms}
	e := p.Estimate()
	// pingpong: 2 transports × 3 runs of warm-up + 800 ms; slow-receiver: 2 × one run
	// bounded by its most, 2 s (its DefaultDuration of 3 s is longer).
	want := 2*DefaultRepeat*(100*ms+DefaultRunDuration) + 2*phaseTime(Plan{Duration: DefaultDuration}, slowReceiverMax)
	if len(e.Cells) != 2*DefaultRepeat+2 || e.Total() != want || !e.Known {
		t.Errorf("estimate %d cell runs, %v (known %v); want %d, %v", len(e.Cells), e.Total(), e.Known, 2*DefaultRepeat+2, want)
	}
}
