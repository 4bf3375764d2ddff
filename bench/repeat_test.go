package bench

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// medianCIConfidence returns, independently of benchmath, the confidence that the
// median lies in [x_k, x_l] (1-based order statistics of n values):
// P(k ≤ B ≤ l−1) for B ~ Binomial(n, ½), the count of values below the median.
func medianCIConfidence(n, k, l int) float64 {
	p, term := 0.0, math.Ldexp(1, -n) // C(n,0)/2ⁿ
	for i := 0; i < l; i++ {
		if i >= k {
			p += term
		}
		term = term * float64(n-i) / float64(i+1)
	}
	return p
}

// narrowestMedianCI returns the fewest order statistics an interval [x_k, x_{k+w}]
// must span to hold the median with confidence ≥ c.
func narrowestMedianCI(n int, c float64) (w int) {
	for w = 1; w < n; w++ {
		for k := 1; k+w <= n; k++ {
			if medianCIConfidence(n, k, k+w) >= c {
				return w
			}
		}
	}
	return n
}

func seqFloats(from, to int) []float64 {
	var v []float64
	for i := from; i <= to; i++ {
		v = append(v, float64(i))
	}
	return v
}

func TestSummarize(t *testing.T) {
	inf := math.Inf(1)
	cases := []struct {
		name     string
		values   []float64
		want     report.Interval
		warnings []string
	}{
		{
			name:     "no runs",
			want:     report.Interval{},
			warnings: []string{"no runs to summarize"},
		},
		{
			name:     "one run",
			values:   []float64{5},
			want:     report.Interval{Median: 5, Lo: 5, Hi: 5, Confidence: 0},
			warnings: []string{"95% CI needs >= 6 runs, got 1: showing the min-max range (0% confidence)"},
		},
		{
			name:     "3 runs: min–max range at 75%",
			values:   []float64{3, 1, 2},
			want:     report.Interval{Median: 2, Lo: 1, Hi: 3, Confidence: 0.75},
			warnings: []string{"95% CI needs >= 6 runs, got 3: showing the min-max range (75% confidence)"},
		},
		{
			name:     "5 runs: 93.75% is still short of 95%",
			values:   []float64{10, 50, 20, 40, 30},
			want:     report.Interval{Median: 30, Lo: 10, Hi: 50, Confidence: 0.9375},
			warnings: []string{"95% CI needs >= 6 runs, got 5: showing the min-max range (93.8% confidence)"},
		},
		{
			name:   "6 runs: first 95% interval (benchmath's own test case)",
			values: []float64{-10, 2, 3, 4, 5, 6},
			want:   report.Interval{Median: 3.5, Lo: -10, Hi: 6, Confidence: 1 - 0.03125},
		},
		{
			name:   "1..7",
			values: seqFloats(1, 7),
			want:   report.Interval{Median: 4, Lo: 1, Hi: 7, Confidence: 1 - 2.0/128},
		},
		{
			name:     "NaN and Inf left out",
			values:   []float64{math.NaN(), 1, 2, 3, 4, 5, 6, inf},
			want:     report.Interval{Median: 3.5, Lo: 1, Hi: 6, Confidence: 1 - 0.03125},
			warnings: []string{"2 of 8 runs gave no finite value: left out"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.values)
			got, warnings := Summarize(in, 0.95)
			if got != tc.want {
				t.Errorf("Summarize(%v, 0.95) = %+v, want %+v", tc.values, got, tc.want)
			}
			if !slices.Equal(warnings, tc.warnings) {
				t.Errorf("warnings:\ngot  %q\nwant %q", warnings, tc.warnings)
			}
			if !slices.EqualFunc(in, tc.values, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
				t.Errorf("Summarize modified its input: %v, was %v", in, tc.values)
			}
		})
	}
}

// TestSummarizeLarger checks larger samples against an independent binomial
// computation: the interval is the narrowest pair of order statistics reaching 95%
// (it may be asymmetric: for 8 runs, [x1, x7] at 96.1%), with its true confidence.
func TestSummarizeLarger(t *testing.T) {
	for _, n := range []int{6, 7, 8, 10, 15, 20, 25, 29} {
		values := seqFloats(1, n) // x_k = k
		got, warnings := Summarize(values, 0.95)
		k, l := int(got.Lo), int(got.Hi)
		if got.Median != float64(n+1)/2 {
			t.Errorf("n=%d: median %v, want %v", n, got.Median, float64(n+1)/2)
		}
		if w := narrowestMedianCI(n, 0.95); l-k != w {
			t.Errorf("n=%d: interval [x%d, x%d] spans %d, want the narrowest, %d", n, k, l, l-k, w)
		}
		if want := medianCIConfidence(n, k, l); math.Abs(got.Confidence-want) > 1e-9 || got.Confidence < 0.95 {
			t.Errorf("n=%d: [x%d, x%d] confidence %v, want %v (≥ 0.95)", n, k, l, got.Confidence, want)
		}
		if len(warnings) != 0 {
			t.Errorf("n=%d: warnings %q", n, warnings)
		}
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		name string
		got  any
		want any
	}{
		{"uint64 odd", median([]uint64{9, 1, 5}), uint64(5)},
		{"uint64 even rounds half up", median([]uint64{1, 2}), uint64(2)},
		{"uint64 even exact", median([]uint64{4, 1, 3, 10}), uint64(4)}, // (3+4)/2 = 3.5 → 4
		{"uint64 near max", median([]uint64{math.MaxUint64, math.MaxUint64 - 1}), uint64(math.MaxUint64)},
		{"int64 negative half", median([]int64{-3, 2}), int64(0)},
		{"int64 extremes", median([]int64{math.MinInt64, math.MaxInt64}), int64(0)},
		{"int", median([]int{7, 7, 8, 8}), 8},
		{"float64 even", median([]float64{1, 2}), 1.5},
		{"float64 huge", median([]float64{math.MaxFloat64, math.MaxFloat64}), math.MaxFloat64},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestCombineMetricsKnownAnswer(t *testing.T) {
	var runs []report.Metrics
	for _, g := range []float64{3, 7, 1, 5, 2, 6, 4} {
		runs = append(runs, report.Metrics{GoodputBps: g, SentMsgs: uint64(g) * 100, LostMsgs: uint64(g) - 1})
	}
	m, rep, warnings := CombineMetrics(runs)
	if m.GoodputBps != 4 || m.SentMsgs != 400 || m.LostMsgs != 3 {
		t.Errorf("goodput %v, sent %d, lost %d; want 4, 400, 3", m.GoodputBps, m.SentMsgs, m.LostMsgs)
	}
	if rep == nil || rep.Runs != 7 {
		t.Fatalf("Repeat = %+v, want 7 runs", rep)
	}
	want := map[string]report.Interval{
		"goodput_bps": {Median: 4, Lo: 1, Hi: 7, Confidence: 1 - 2.0/128},
	}
	if !reflect.DeepEqual(rep.CI, want) {
		t.Errorf("CI = %+v\nwant %+v (only measured, nonzero figures)", rep.CI, want)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
}

func TestCombineMetricsEdges(t *testing.T) {
	t.Run("no runs", func(t *testing.T) {
		m, rep, w := CombineMetrics(nil)
		if m != (report.Metrics{}) || rep != nil || len(w) != 1 {
			t.Fatalf("got %+v, %+v, %q", m, rep, w)
		}
	})
	t.Run("one run unchanged", func(t *testing.T) {
		one := report.Metrics{GoodputBps: 1e9, RTT: &report.LatencyStats{Samples: 3}, Retransmits: new(uint64(2))}
		m, rep, w := CombineMetrics([]report.Metrics{one})
		if !reflect.DeepEqual(m, one) || rep != nil || w != nil {
			t.Fatalf("got %+v, %+v, %q", m, rep, w)
		}
	})
	t.Run("pointer figures present in some runs", func(t *testing.T) {
		runs := []report.Metrics{
			{GoodputBps: 1, Retransmits: new(uint64(5)), RTT: &report.LatencyStats{Samples: 50, Min: 1, P50: new(int64(10)), Max: 90}},
			{GoodputBps: 2, RTT: &report.LatencyStats{Samples: 10, Min: 2, Max: 80}},
			{GoodputBps: 3, Retransmits: new(uint64(7)), RTT: &report.LatencyStats{Samples: 30, Min: 3, P50: new(int64(30)), Max: 70}},
		}
		m, rep, w := CombineMetrics(runs)
		if m.Retransmits != nil {
			t.Errorf("retransmits = %d, want nil (measured in 2 of 3 runs)", *m.Retransmits)
		}
		wantRTT := &report.LatencyStats{Samples: 30, Min: 2, Max: 80}
		if !reflect.DeepEqual(m.RTT, wantRTT) {
			t.Errorf("rtt = %+v, want %+v", m.RTT, wantRTT)
		}
		wantW := []string{
			"rtt_ns.p50: measured in 2 of 3 runs: left out",
			"retransmits: measured in 2 of 3 runs: left out",
			"goodput_bps: 95% CI needs >= 6 runs, got 3: showing the min-max range (75% confidence)",
		}
		if !slices.Equal(w, wantW) {
			t.Errorf("warnings:\ngot  %q\nwant %q", w, wantW)
		}
		if _, ok := rep.CI["rtt_p50_ns"]; ok {
			t.Errorf("rtt_p50_ns CI present, though 1 run had no p50")
		}
	})
	t.Run("one CI warning names every figure", func(t *testing.T) {
		runs := []report.Metrics{{GoodputBps: 1, MsgsPerS: 1}, {GoodputBps: 2, MsgsPerS: 2}}
		_, rep, w := CombineMetrics(runs)
		want := []string{"goodput_bps, msgs_per_s: 95% CI needs >= 6 runs, got 2: showing the min-max range (50% confidence)"}
		if !slices.Equal(w, want) || len(rep.CI) != 2 {
			t.Errorf("warnings %q, CI %+v; want %q and 2 intervals", w, rep.CI, want)
		}
	})
}

// TestCombineMetricsCoversEveryField fills every field of Metrics, at any depth,
// with a distinct value per run (runs in shuffled order) and checks that each
// combined field is that field's median, or for an accounting count the median run's. A field added to Metrics and forgotten by
// CombineMetrics fails here; a field of a kind this test does not know fails too.
func TestCombineMetricsCoversEveryField(t *testing.T) {
	const runs = 5
	perm := []int{3, 0, 4, 1, 2} // value rank of each run; the median has rank 2
	ms := make([]report.Metrics, runs)
	fieldNo := 0
	// fill sets field path in run r to base(field)+rank, allocating pointers.
	var fill func(v reflect.Value, path string, r int)
	fill = func(v reflect.Value, path string, r int) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				fill(v.Field(i), path+"."+v.Type().Field(i).Name, r)
			}
			return
		case reflect.Pointer:
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			fill(v.Elem(), path, r)
			return
		case reflect.Slice:
			if path == "Metrics.RTT.CDF" { // not a median: the median run's curve (TestCombineCDF)
				return
			}
		}
		fieldNo++
		x := int64(1000*fieldNo + perm[(r+fieldNo)%runs]) // distinct per field and run
		switch v.Kind() {
		case reflect.Uint64, reflect.Uint32, reflect.Uint:
			v.SetUint(uint64(x))
		case reflect.Int64, reflect.Int:
			v.SetInt(x)
		case reflect.Float64:
			v.SetFloat(float64(x) + 0.25)
		default:
			t.Fatalf("%s: kind %s: teach CombineMetrics (and this test) how to combine it", path, v.Kind())
		}
	}
	for r := range ms {
		fieldNo = 0
		fill(reflect.ValueOf(&ms[r]).Elem(), "Metrics", r)
	}
	got, _, _ := CombineMetrics(ms)
	// The accounting counts are the median run's (by goodput), not each field's median.
	mr := medianRun(ms)
	fromMedianRun := map[string]bool{}
	for _, f := range []string{"SentMsgs", "RecvMsgs", "LostMsgs", "DupMsgs", "LateMsgs", "Timeouts", "SentBytes", "RecvBytes",
		"DropsSender", "DropsSocket", "DropsNetwork", "DropsSocketPackets"} {
		fromMedianRun["Metrics."+f] = true
	}

	var check func(v reflect.Value, path string)
	fieldNo = 0
	check = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				check(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		case reflect.Pointer:
			if v.IsNil() {
				t.Errorf("%s: nil, want the median of 5 present values", path)
				fieldNo += countLeaves(v.Type().Elem())
				return
			}
			check(v.Elem(), path)
			return
		case reflect.Slice:
			if path == "Metrics.RTT.CDF" {
				return
			}
		}
		fieldNo++
		want := float64(1000*fieldNo + 2)
		if fromMedianRun[path] {
			want = float64(1000*fieldNo + perm[(mr+fieldNo)%runs])
		}
		var g float64
		switch v.Kind() {
		case reflect.Uint64, reflect.Uint32, reflect.Uint:
			g = float64(v.Uint())
		case reflect.Int64, reflect.Int:
			g = float64(v.Int())
		case reflect.Float64:
			g, want = v.Float(), want+0.25
		}
		if g != want {
			t.Errorf("%s = %v, want the median %v", path, g, want)
		}
	}
	check(reflect.ValueOf(&got).Elem(), "Metrics")
	if fieldNo < 30 {
		t.Fatalf("checked only %d fields", fieldNo)
	}
}

func countLeaves(t reflect.Type) int {
	switch t.Kind() {
	case reflect.Struct:
		n := 0
		for i := range t.NumField() {
			n += countLeaves(t.Field(i).Type)
		}
		return n
	case reflect.Pointer:
		return countLeaves(t.Elem())
	}
	return 1
}

func TestPercent(t *testing.T) {
	for c, want := range map[float64]string{0.95: "95%", 0.75: "75%", 0.96875: "96.9%", 0: "0%", 1: "100%"} {
		if got := percent(c); got != want {
			t.Errorf("percent(%v) = %q, want %q", c, got, want)
		}
	}
	if !strings.Contains(percent(0.9375), "93.8") {
		t.Errorf("percent(0.9375) = %q", percent(0.9375))
	}
}

// TestCombineCDF: with repeats, the chart shows the curve of the run whose p50 is the
// median, a real distribution rather than a blend of several.
func TestCombineCDF(t *testing.T) {
	run := func(p50 int64) report.Metrics {
		return report.Metrics{RTT: &report.LatencyStats{Samples: 100, P50: &p50, CDF: []report.CDFPoint{{Ns: p50, Q: 0.5}}}}
	}
	got, _, _ := CombineMetrics([]report.Metrics{run(30), run(10), run(20)})
	if len(got.RTT.CDF) != 1 || got.RTT.CDF[0].Ns != 20 {
		t.Fatalf("CDF %v, want the p50=20 run's", got.RTT.CDF)
	}
}

// TestCombineMetricsAccounting: a cell of several runs keeps sent = received −
// duplicates + lost, and lost's split into drops, by taking every count from its
// median run by goodput; field-by-field medians broke it (sent 9,914,176, received
// 8,734,912, lost 1,581,632 in a default run).
func TestCombineMetricsAccounting(t *testing.T) {
	sock := func(n uint64) *uint64 { return &n }
	runs := []report.Metrics{
		{GoodputBps: 5e9, SentMsgs: 1000, RecvMsgs: 700, LostMsgs: 310, DupMsgs: 10, DropsSender: 10, DropsSocket: sock(300)},
		{GoodputBps: 9e9, SentMsgs: 3000, RecvMsgs: 2990, LostMsgs: 10, DropsSocket: sock(10)},
		{GoodputBps: 7e9, SentMsgs: 2000, RecvMsgs: 1500, LostMsgs: 502, DupMsgs: 2, DropsSocket: sock(500), DropsSender: 2},
	}
	m, _, _ := CombineMetrics(runs)
	if m.GoodputBps != 7e9 || m.SentMsgs != 2000 || m.RecvMsgs != 1500 || m.LostMsgs != 502 || m.DupMsgs != 2 || m.DropsSender != 2 || m.DropsSocket == nil || *m.DropsSocket != 500 {
		t.Errorf("combined %+v: want the 7 Gbit/s run's counts (sent 2000, received 1500, lost 502, dups 2, drops 2 + 500)", m)
	}
	if m.SentMsgs != m.RecvMsgs-m.DupMsgs+m.LostMsgs {
		t.Errorf("sent %d != received %d - duplicates %d + lost %d", m.SentMsgs, m.RecvMsgs, m.DupMsgs, m.LostMsgs)
	}
	pp := []report.Metrics{{TransPerS: 3, SentMsgs: 30, Timeouts: 1, LostMsgs: 1}, {TransPerS: 1, SentMsgs: 10}, {TransPerS: 2, SentMsgs: 20, Timeouts: 2, LostMsgs: 2}}
	if m, _, _ := CombineMetrics(pp); m.SentMsgs != 20 || m.Timeouts != 2 || m.LostMsgs != 2 {
		t.Errorf("request/response: sent %d timeouts %d lost %d, want the median run's by transactions/s: 20, 2, 2", m.SentMsgs, m.Timeouts, m.LostMsgs)
	}
}
