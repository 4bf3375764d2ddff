package bench

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestSpreadOfKnownAnswers: the spread of a cell's runs, worked by hand.
func TestSpreadOfKnownAnswers(t *testing.T) {
	tests := []struct {
		name   string
		runs   []float64
		want   report.Spread
		stddev float64 // sample standard deviation, compared to 1e-9
	}{
		{
			// |x − 11.5| = 1.5, 0.5, 0.5, 18.5: MAD 1. Tukey's fences from 4 runs
			// (Q1 10.5, Q3 21) reach 36.75 and miss 30; its modified z-score,
			// 0.6745 × 18.5 / 1 ≈ 12.5, is far beyond 3.5. (30 − 10)/11.5 > 10%.
			name: "one run apart", runs: []float64{10, 11, 12, 30},
			want:   report.Spread{Median: 11.5, MAD: 1, Min: 10, Max: 30, Outliers: []float64{30}, Noisy: true},
			stddev: 9.535023160258536,
		},
		{
			// (10.2 − 9.9)/10 = 3%: within 10%. z of 10.2 = 0.6745 × 0.2 / 0.1 ≈ 1.35.
			name: "close runs", runs: []float64{10, 10.2, 9.9},
			want:   report.Spread{Median: 10, MAD: 0.1, Min: 9.9, Max: 10.2},
			stddev: 0.15275252316519414,
		},
		{
			// Six runs: Q1 10, Q3 12, IQR 2; 30 is beyond the outer fence, 18.
			name: "six runs, Tukey's fences", runs: []float64{11, 10, 30, 12, 10, 11},
			want:   report.Spread{Median: 11, MAD: 1, Min: 10, Max: 30, Outliers: []float64{30}, Noisy: true},
			stddev: 7.874007874011811,
		},
		{
			// A zero median: any spread is noisy; MAD 0 singles out no run.
			name: "zero median", runs: []float64{0, 3, 0},
			want:   report.Spread{Median: 0, MAD: 0, Min: 0, Max: 3, Noisy: true},
			stddev: math.Sqrt(3),
		},
		{
			name: "one run", runs: []float64{5},
			want: report.Spread{Median: 5, Min: 5, Max: 5},
		},
		{
			name: "NaN left out", runs: []float64{math.NaN(), 10, 10.2, 9.9, math.Inf(1)},
			want:   report.Spread{Median: 10, MAD: 0.1, Min: 9.9, Max: 10.2},
			stddev: 0.15275252316519414,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.runs)
			got, ok := SpreadOf(in)
			if !ok {
				t.Fatalf("SpreadOf(%v): not ok", tc.runs)
			}
			if math.Abs(got.Stddev-tc.stddev) > 1e-9 {
				t.Errorf("SpreadOf(%v).Stddev = %v, want %v", tc.runs, got.Stddev, tc.stddev)
			}
			if math.Abs(got.MAD-tc.want.MAD) < 1e-12 {
				got.MAD = tc.want.MAD // 10.2 − 10 is not exactly 0.2
			}
			got.Stddev = 0
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SpreadOf(%v) =\n %+v\nwant %+v", tc.runs, got, tc.want)
			}
			if !slices.Equal(in[1:], tc.runs[1:]) { // NaN != NaN
				t.Errorf("SpreadOf modified its input: %v", in)
			}
		})
	}
	if _, ok := SpreadOf([]float64{math.NaN()}); ok {
		t.Errorf("SpreadOf(NaN): ok, want no spread")
	}
}

// TestNoisyRule: the rule at its edge, 10% of the median.
func TestNoisyRule(t *testing.T) {
	for _, tc := range []struct {
		median, min, max float64
		want             bool
	}{
		{100, 95, 105, false}, // exactly 10%
		{100, 95, 105.5, true},
		{-100, -105, -95, false}, // negative medians by their size
		{0, 0, 0, false},
		{0, 0, 1, true},
	} {
		if got := report.IsNoisy(tc.median, tc.min, tc.max); got != tc.want {
			t.Errorf("IsNoisy(median %v, %v..%v) = %v, want %v", tc.median, tc.min, tc.max, got, tc.want)
		}
	}
}

// TestCombineMetricsSpread: a cell's runs give every headline figure a spread, name
// the noisy ones, and the JSON report carries them under repeat.
func TestCombineMetricsSpread(t *testing.T) {
	var runs []report.Metrics
	for i, g := range []float64{10e9, 11e9, 12e9, 30e9} { // one run apart: noisy
		p50 := int64(20_000 + 100*i) // 20.0–20.3 us: steady
		runs = append(runs, report.Metrics{GoodputBps: g, MsgsPerS: 1000 + float64(i), CPUSecPerGB: new(2.0 + float64(i)/100),
			RTT: &report.LatencyStats{Samples: 100, P50: &p50}})
	}
	_, rep, _ := CombineMetrics(runs)
	if rep == nil {
		t.Fatal("no Repeat")
	}
	keys := make([]string, 0, len(rep.Spread))
	for k := range rep.Spread {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"cpu_s_per_gb", "goodput_bps", "msgs_per_s", "rtt_p50_ns"}; !slices.Equal(keys, want) {
		t.Errorf("spread of %q, want %q (the CI figures measured in every run)", keys, want)
	}
	g := rep.Spread["goodput_bps"]
	if g.Median != 11.5e9 || g.MAD != 1e9 || g.Min != 10e9 || g.Max != 30e9 || !slices.Equal(g.Outliers, []float64{30e9}) || !g.Noisy {
		t.Errorf("goodput spread %+v, want median 11.5e9, MAD 1e9, 10e9..30e9, outlier 30e9, noisy", g)
	}
	if want := []string{"goodput_bps"}; !slices.Equal(rep.Noisy, want) {
		t.Errorf("noisy %q, want %q", rep.Noisy, want)
	}
	if _, ok := rep.CI["cpu_s_per_gb"]; !ok {
		t.Errorf("no CI for cpu_s_per_gb")
	}

	b, err := json.Marshal(report.Result{Experiment: "stream", Transport: "udp", Repeat: rep})
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, want := range []string{
		`"noisy":["goodput_bps"]`,
		`"goodput_bps":{"median":11500000000,"mad":1000000000,"stddev":`,
		`"min":10000000000,"max":30000000000,"outliers":[30000000000],"noisy":true}`,
		`"rtt_p50_ns":{"median":20150,"mad":100,"stddev":`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	var back report.Result
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.Repeat.Spread, rep.Spread) {
		t.Errorf("spread does not survive a JSON round trip (%v):\n%+v\n%+v", err, back.Repeat, rep)
	}
}
