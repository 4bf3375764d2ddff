package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// within reports whether got is within rel (relative) of want.
func approxRel(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func TestLatencyKnownAnswers(t *testing.T) {
	const us = 1000 // ns
	p := func(v int64) *int64 { return &v }
	cases := []struct {
		name   string
		values []int64 // ns
		want   report.LatencyStats
	}{
		{
			name:   "1..1000 µs once each",
			values: seqValues(1, 1000, us),
			want: report.LatencyStats{Samples: 1000, Min: 1 * us, Max: 1000 * us,
				P50: p(500 * us), P90: p(900 * us), P99: p(990 * us), P999: nil,
				Mean: 500.5 * us, Stddev: math.Sqrt((1000*1000-1)/12.0) * us},
		},
		{
			name:   "19 samples: no p50",
			values: seqValues(1, 19, us),
			want:   report.LatencyStats{Samples: 19, Min: 1 * us, Max: 19 * us, Mean: 10 * us, Stddev: math.Sqrt((19*19-1)/12.0) * us},
		},
		{
			name:   "20 samples: p50 only",
			values: seqValues(1, 20, us),
			want:   report.LatencyStats{Samples: 20, Min: 1 * us, Max: 20 * us, P50: p(10 * us), Mean: 10.5 * us, Stddev: math.Sqrt((20*20-1)/12.0) * us},
		},
		{
			name:   "10000 samples: p99.9 too",
			values: seqValues(1, 10000, 100),
			want: report.LatencyStats{Samples: 10000, Min: 100, Max: 1e6,
				P50: p(500_000), P90: p(900_000), P99: p(990_000), P999: p(999_000),
				Mean: 500050, Stddev: math.Sqrt((1e8-1)/12.0) * 100},
		},
		{
			name:   "one value",
			values: []int64{12345},
			want:   report.LatencyStats{Samples: 1, Min: 12345, Max: 12345, Mean: 12345},
		},
		{
			name:   "exact min and max where the histogram rounds",
			values: []int64{1_000_001, 59_999_999_999},
			want:   report.LatencyStats{Samples: 2, Min: 1_000_001, Max: 59_999_999_999, Mean: 30_000_500_000, Stddev: 29_999_499_999},
		},
		{
			name:   "clamped at both ends",
			values: []int64{-5, 0, 70e9},
			want:   report.LatencyStats{Samples: 3, Min: 1, Max: 60e9, Mean: (2 + 60e9) / 3.0, Stddev: stddevOf(1, 1, 60e9)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLatency()
			for _, v := range tc.values {
				l.Record(v)
			}
			got := l.Stats()
			if got == nil {
				t.Fatalf("Stats() = nil after %d values", len(tc.values))
			}
			checkLatencyStats(t, got, &tc.want)
		})
	}
}

func checkLatencyStats(t *testing.T, got, want *report.LatencyStats) {
	t.Helper()
	if got.Samples != want.Samples || got.Min != want.Min || got.Max != want.Max {
		t.Errorf("samples/min/max: got %d/%d/%d, want %d/%d/%d", got.Samples, got.Min, got.Max, want.Samples, want.Min, want.Max)
	}
	if !approxRel(got.Mean, want.Mean, 1e-12) || !approxRel(got.Stddev, want.Stddev, 1e-9) {
		t.Errorf("mean/stddev: got %v/%v, want %v/%v", got.Mean, got.Stddev, want.Mean, want.Stddev)
	}
	for _, q := range []struct {
		name      string
		got, want *int64
	}{{"p50", got.P50, want.P50}, {"p90", got.P90, want.P90}, {"p99", got.P99, want.P99}, {"p99.9", got.P999, want.P999}} {
		switch {
		case (q.got == nil) != (q.want == nil):
			t.Errorf("%s: got %v, want %v (nil means too few samples)", q.name, fmtNsPtr(q.got), fmtNsPtr(q.want))
		case q.got != nil && !approxRel(float64(*q.got), float64(*q.want), 1e-3):
			t.Errorf("%s: got %d ns, want %d within 0.1%%", q.name, *q.got, *q.want)
		}
	}
}

func fmtNsPtr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func seqValues(from, to, unit int64) []int64 {
	var v []int64
	for i := from; i <= to; i++ {
		v = append(v, i*unit)
	}
	return v
}

func stddevOf(xs ...float64) float64 {
	var m, v float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return math.Sqrt(v / float64(len(xs)))
}

func TestLatencyEmptyAndReset(t *testing.T) {
	l := NewLatency()
	if s := l.Stats(); s != nil {
		t.Fatalf("empty: Stats() = %+v, want nil", s)
	}
	l.Record(-1)
	l.Record(61e9)
	if below, above := l.Clamped(); below != 1 || above != 1 {
		t.Fatalf("Clamped() = %d, %d; want 1, 1", below, above)
	}
	l.Reset()
	if l.Count() != 0 || l.Stats() != nil {
		t.Fatalf("after Reset: count %d, stats %+v", l.Count(), l.Stats())
	}
	if below, above := l.Clamped(); below != 0 || above != 0 {
		t.Fatalf("after Reset: Clamped() = %d, %d", below, above)
	}
	l.Record(7)
	if s := l.Stats(); s.Min != 7 || s.Max != 7 {
		t.Fatalf("after Reset and Record(7): min %d max %d", s.Min, s.Max)
	}
}

// TestLatencyMerge: merging per-flow histograms equals recording everything in one.
func TestLatencyMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	all, a, b := NewLatency(), NewLatency(), NewLatency()
	for i := range 5000 {
		v := int64(r.ExpFloat64()*50e3) + 1 // ns, exponential around 50 µs
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	b.Record(-3) // clamped
	all.Record(-3)
	a.Merge(b)
	a.Merge(NewLatency()) // merging nothing changes nothing
	got, want := a.Stats(), all.Stats()
	checkLatencyStats(t, got, want)
	if *got.P99 != *want.P99 {
		t.Errorf("p99: merged %d, single %d", *got.P99, *want.P99)
	}
	if below, _ := a.Clamped(); below != 1 {
		t.Errorf("merged Clamped below = %d, want 1", below)
	}
}

// TestLatencyMomentsLarge: the mean and stddev stay exact where float sums would not.
func TestLatencyMomentsLarge(t *testing.T) {
	l := NewLatency()
	const n = 1 << 20
	for i := range n {
		l.Record(LatencyMaxNs - int64(i%2)) // 60 s and 60 s − 1 ns alternately
	}
	s := l.Stats()
	if want := float64(LatencyMaxNs) - 0.5; s.Mean != want {
		t.Errorf("mean = %v, want %v", s.Mean, want)
	}
	if s.Stddev != 0.5 {
		t.Errorf("stddev = %v, want 0.5", s.Stddev)
	}
}

func TestLatencyAllocs(t *testing.T) {
	l := NewLatency()
	v := int64(1)
	if n := testing.AllocsPerRun(10000, func() { l.Record(v); v = v*7%LatencyMaxNs + 1 }); n != 0 {
		t.Fatalf("Record: %v allocations per call, want 0", n)
	}
}

func BenchmarkLatencyRecord(b *testing.B) {
	l := NewLatency()
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]int64, 1<<12)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64()*30e3) + 5e3 // loopback-like RTTs, ns
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Record(vals[i&(len(vals)-1)])
		i++
	}
}

func BenchmarkLatencyStats(b *testing.B) {
	l := NewLatency()
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		l.Record(int64(r.ExpFloat64()*30e3) + 5e3)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Stats()
	}
}

// TestLatencyCDF: 1..1000 us once each: the curve rises through 500 us at q=0.5,
// ends at the maximum with q=1, never falls, and stops short of quantiles 1000
// samples cannot resolve.
func TestLatencyCDF(t *testing.T) {
	l := NewLatency()
	for us := int64(1); us <= 1000; us++ {
		l.Record(us * 1000)
	}
	cdf := l.Stats().CDF
	if first, last := cdf[0], cdf[len(cdf)-1]; first.Q != 0 || first.Ns != 1000 || last.Q != 1 || last.Ns != 1_000_000 {
		t.Fatalf("ends %+v .. %+v, want {1000 0} .. {1000000 1}", first, last)
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].Ns < cdf[i-1].Ns || cdf[i].Q <= cdf[i-1].Q {
			t.Fatalf("not ascending at %d: %+v then %+v", i, cdf[i-1], cdf[i])
		}
		if cdf[i].Q == 0.5 && (cdf[i].Ns < 499_000 || cdf[i].Ns > 501_000) {
			t.Errorf("q=0.5 at %d ns, want 500 us within 0.2%%", cdf[i].Ns)
		}
		if cdf[i].Q > 0.999 && cdf[i].Q < 1 {
			t.Errorf("q=%v from 1000 samples", cdf[i].Q)
		}
	}
}

func TestLatencyCountAbove(t *testing.T) {
	l := NewLatency()
	for _, v := range []int64{1000, 2000, 3000, 10_000, 10_000, 50_000} {
		l.Record(v)
	}
	tests := []struct {
		ns   int64
		want uint64
	}{{0, 6}, {999, 6}, {1000, 5}, {2500, 4}, {9000, 3}, {10_000, 1}, {50_000, 0}}
	for _, tc := range tests {
		if got := l.CountAbove(tc.ns); got != tc.want {
			t.Errorf("CountAbove(%d) = %d, want %d", tc.ns, got, tc.want)
		}
	}
}
