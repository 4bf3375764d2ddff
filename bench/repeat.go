package bench

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/montanaflynn/stats"
	"golang.org/x/perf/benchmath"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// Confidence95 is the confidence level of the intervals in a Repeat.
const Confidence95 = 0.95

// Summarize returns the median of values (one per run) and a distribution-free
// confidence interval for it at the requested confidence level (0.95 for 95%), as
// benchstat computes it (golang.org/x/perf/benchmath, AssumeNothing): the interval's
// bounds are order statistics of the values, the narrowest pair that reaches the
// level (not always symmetric: for 8 runs, the 1st and 7th), and Interval.Confidence
// is the level actually reached, at least the one requested.
//
// Too few runs cannot reach the level (95% needs 6): then the interval is the
// min–max range, with the confidence it does have, 1 − 2^(1−n) for n runs (75% for
// 3), and a warning says so. The median of an even count is the mean of the middle
// two. NaN and ±Inf values are left out, with a warning. values is not modified.
func Summarize(values []float64, confidence float64) (report.Interval, []string) {
	var warnings []string
	xs := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if dropped := len(values) - len(xs); dropped > 0 {
		warnings = append(warnings, fmt.Sprintf("%d of %d runs gave no finite value: left out", dropped, len(values)))
	}
	n := len(xs)
	if n == 0 {
		return report.Interval{}, append(warnings, "no runs to summarize")
	}
	slices.Sort(xs)
	iv := report.Interval{Median: median(xs), Lo: xs[0], Hi: xs[n-1], Confidence: minMaxConfidence(n)}
	if !(confidence > 0 && confidence < 1) {
		return iv, append(warnings, fmt.Sprintf("confidence %v is not in (0, 1): showing the min-max range (%s confidence)",
			confidence, percent(iv.Confidence)))
	}
	if need := runsFor(confidence); n < need {
		return iv, append(warnings, fmt.Sprintf("%s CI needs >= %d runs, got %d: showing the min-max range (%s confidence)",
			percent(confidence), need, n, percent(iv.Confidence)))
	}
	s := benchmath.AssumeNothing.Summary(benchmath.NewSample(xs, &benchmath.DefaultThresholds), confidence)
	for _, w := range s.Warnings {
		warnings = append(warnings, w.Error())
	}
	if math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) { // not expected once n ≥ need
		return iv, append(warnings, fmt.Sprintf("no %s CI from %d runs: showing the min-max range (%s confidence)",
			percent(confidence), n, percent(iv.Confidence)))
	}
	// benchmath's median interpolates (R8): for an odd count the middle value, for an
	// even count the mean of the middle two, as ours, up to rounding. Keep ours, so
	// an interval's median is exactly its Metrics figure.
	iv.Lo, iv.Hi, iv.Confidence = s.Lo, s.Hi, s.Confidence
	return iv, warnings
}

// minMaxConfidence is the confidence that the median lies between the least and the
// greatest of n independent runs: 1 − 2·(1/2)ⁿ.
func minMaxConfidence(n int) float64 {
	if n < 1 {
		return 0
	}
	return 1 - math.Ldexp(1, 1-n)
}

// runsFor returns the fewest runs whose min–max range reaches confidence c in (0, 1).
func runsFor(c float64) int {
	n := 1
	for minMaxConfidence(n) < c && n < 64 { // by n = 55, 1 − 2^(1−n) rounds to 1 in float64
		n++
	}
	return n
}

// percent formats a confidence level: 0.95 → "95%", 0.96875 → "96.9%".
func percent(c float64) string {
	s := fmt.Sprintf("%.1f", 100*c)
	return strings.TrimSuffix(s, ".0") + "%"
}

// outlierZ is the modified z-score, 0.6745·|x − median|/MAD, beyond which a run
// stands apart (Iglewicz and Hoaglin's 3.5).
const outlierZ = 3.5

// SpreadOf describes how values (one figure, one value per run) spread: median,
// median absolute deviation, sample standard deviation, min and max, the runs that
// stand apart (report.Spread.Outliers), and whether the runs disagree by more than
// report.NoisyRange. The statistics are github.com/montanaflynn/stats's; it is fed
// one value per run, never per-message samples (HDR histograms summarise those).
// NaN and ±Inf values are left out; ok is false when none is left. values is not
// modified.
func SpreadOf(values []float64) (s report.Spread, ok bool) {
	xs := make(stats.Float64Data, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return report.Spread{}, false
	}
	// The errors below are for empty input (or fewer than 2 values where noted),
	// excluded here.
	s.Median, _ = stats.Median(xs)
	s.MAD, _ = stats.MedianAbsoluteDeviation(xs)
	s.Min, _ = stats.Min(xs)
	s.Max, _ = stats.Max(xs)
	if len(xs) >= 2 {
		s.Stddev, _ = stats.StandardDeviationSample(xs)
		out, _ := stats.QuartileOutliers(xs)
		s.Outliers = append(append(s.Outliers, out.Mild...), out.Extreme...)
	}
	if s.MAD > 0 {
		for _, v := range xs {
			if 0.6745*math.Abs(v-s.Median)/s.MAD > outlierZ && !slices.Contains(s.Outliers, v) {
				s.Outliers = append(s.Outliers, v)
			}
		}
	}
	slices.Sort(s.Outliers)
	s.Noisy = report.IsNoisy(s.Median, s.Min, s.Max)
	return s, true
}

// ciMetrics are the figures a Repeat gives intervals and spreads for, by JSON name.
var ciMetrics = []struct {
	name string
	get  func(m *report.Metrics) (v float64, ok bool)
}{
	{"goodput_bps", func(m *report.Metrics) (float64, bool) { return m.GoodputBps, true }},
	{"msgs_per_s", func(m *report.Metrics) (float64, bool) { return m.MsgsPerS, true }},
	{"send_rate_bps", func(m *report.Metrics) (float64, bool) { return m.SendRateBps, true }},
	{"transactions_per_s", func(m *report.Metrics) (float64, bool) { return m.TransPerS, true }},
	{"cpu_s_per_gb", func(m *report.Metrics) (float64, bool) {
		if m.CPUSecPerGB == nil {
			return 0, false
		}
		return *m.CPUSecPerGB, true
	}},
	{"rtt_p50_ns", func(m *report.Metrics) (float64, bool) {
		return rttQuantile(m, func(s *report.LatencyStats) *int64 { return s.P50 })
	}},
	{"rtt_p99_ns", func(m *report.Metrics) (float64, bool) {
		return rttQuantile(m, func(s *report.LatencyStats) *int64 { return s.P99 })
	}},
}

func rttQuantile(m *report.Metrics, q func(*report.LatencyStats) *int64) (float64, bool) {
	if m.RTT == nil || q(m.RTT) == nil {
		return 0, false
	}
	return float64(*q(m.RTT)), true
}

// CombineMetrics combines R runs of one cell into one Metrics, a Repeat and
// warnings.
//
// Every figure becomes its median across the runs: counts too, rounded to the
// nearest integer (halves up). A pointer figure is the median of the runs that have
// it when every run has it, and absent (with a warning) when only some do; a
// LatencyStats is combined field by field. Each field's median is taken on its
// own, so the result is not one run's figures, nor the percentile of all samples
// together; it keeps their order (median min ≤ median p50 ≤ … ≤ median max).
//
// Repeat.CI holds a 95% interval (see Summarize) for goodput_bps, msgs_per_s,
// send_rate_bps, lost_msgs, transactions_per_s, cpu_s_per_gb, rtt_p50_ns and
// rtt_p99_ns, each when measured in every run and nonzero in at least one; the
// interval's median may differ from the Metrics figure by the rounding of a count.
// Repeat.Spread describes the same figures' runs (SpreadOf), and Repeat.Noisy names
// those whose runs disagree by more than report.NoisyRange allows.
//
// One run is returned unchanged, with a nil Repeat.
func CombineMetrics(runs []report.Metrics) (report.Metrics, *report.Repeat, []string) {
	switch len(runs) {
	case 0:
		return report.Metrics{}, nil, []string{"no runs to combine"}
	case 1:
		return runs[0], nil, nil
	}
	c := &combiner{runs: runs}
	m := report.Metrics{
		SentMsgs:      medianOf(c, func(m *report.Metrics) uint64 { return m.SentMsgs }),
		RecvMsgs:      medianOf(c, func(m *report.Metrics) uint64 { return m.RecvMsgs }),
		LostMsgs:      medianOf(c, func(m *report.Metrics) uint64 { return m.LostMsgs }),
		DupMsgs:       medianOf(c, func(m *report.Metrics) uint64 { return m.DupMsgs }),
		ReorderedMsgs: medianOf(c, func(m *report.Metrics) uint64 { return m.ReorderedMsgs }),
		ReorderExtent: medianOf(c, func(m *report.Metrics) uint64 { return m.ReorderExtent }),
		CorruptMsgs:   medianOf(c, func(m *report.Metrics) uint64 { return m.CorruptMsgs }),
		MalformedMsgs: medianOf(c, func(m *report.Metrics) uint64 { return m.MalformedMsgs }),
		ForeignMsgs:   medianOf(c, func(m *report.Metrics) uint64 { return m.ForeignMsgs }),
		LateMsgs:      medianOf(c, func(m *report.Metrics) uint64 { return m.LateMsgs }),
		SentBytes:     medianOf(c, func(m *report.Metrics) uint64 { return m.SentBytes }),
		RecvBytes:     medianOf(c, func(m *report.Metrics) uint64 { return m.RecvBytes }),

		GoodputBps:    medianOf(c, func(m *report.Metrics) float64 { return m.GoodputBps }),
		MsgsPerS:      medianOf(c, func(m *report.Metrics) float64 { return m.MsgsPerS }),
		SendRateBps:   medianOf(c, func(m *report.Metrics) float64 { return m.SendRateBps }),
		SendMsgsPerS:  medianOf(c, func(m *report.Metrics) float64 { return m.SendMsgsPerS }),
		RecvIntervalS: medianOf(c, func(m *report.Metrics) float64 { return m.RecvIntervalS }),
		SendIntervalS: medianOf(c, func(m *report.Metrics) float64 { return m.SendIntervalS }),
		DrainS:        medianOf(c, func(m *report.Metrics) float64 { return m.DrainS }),

		RTT:           c.latency("rtt_ns", func(m *report.Metrics) *report.LatencyStats { return m.RTT }),
		JitterNs:      optMedianOf(c, "jitter_ns", func(m *report.Metrics) *float64 { return m.JitterNs }),
		TransPerS:     medianOf(c, func(m *report.Metrics) float64 { return m.TransPerS }),
		Timeouts:      medianOf(c, func(m *report.Metrics) uint64 { return m.Timeouts }),
		Retransmits:   optMedianOf(c, "retransmits", func(m *report.Metrics) *uint64 { return m.Retransmits }),
		CPUSecPerGB:   optMedianOf(c, "cpu_s_per_gb", func(m *report.Metrics) *float64 { return m.CPUSecPerGB }),
		CPUSec:        medianOf(c, func(m *report.Metrics) float64 { return m.CPUSec }),
		GCPauseNs:     medianOf(c, func(m *report.Metrics) uint64 { return m.GCPauseNs }),
		DropsSender:   medianOf(c, func(m *report.Metrics) uint64 { return m.DropsSender }),
		DropsSocket:   optMedianOf(c, "drops_socket", func(m *report.Metrics) *uint64 { return m.DropsSocket }),
		DropsNetwork:  optMedianOf(c, "drops_network", func(m *report.Metrics) *uint64 { return m.DropsNetwork }),
		ServerSockets: medianOf(c, func(m *report.Metrics) int { return m.ServerSockets }),

		JitterKernelMsgs:   optMedianOf(c, "jitter_kernel_msgs", func(m *report.Metrics) *uint64 { return m.JitterKernelMsgs }),
		DropsSocketPackets: optMedianOf(c, "drops_socket_packets", func(m *report.Metrics) *uint64 { return m.DropsSocketPackets }),
		ServerCPUSec:       optMedianOf(c, "server_cpu_s", func(m *report.Metrics) *float64 { return m.ServerCPUSec }),
	}

	// The accounting counts are one run's, the median run (medianRun): medians taken
	// field by field would break sent = received − duplicates + lost and the split of
	// lost into the sender's, the socket's and the network's drops, which every run
	// keeps exactly.
	r := runs[medianRun(runs)]
	m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.LateMsgs, m.Timeouts = r.SentMsgs, r.RecvMsgs, r.LostMsgs, r.DupMsgs, r.LateMsgs, r.Timeouts
	m.SentBytes, m.RecvBytes = r.SentBytes, r.RecvBytes
	m.DropsSender, m.DropsSocket, m.DropsNetwork, m.DropsSocketPackets = r.DropsSender, r.DropsSocket, r.DropsNetwork, r.DropsSocketPackets

	rep := &report.Repeat{Runs: len(runs), CI: map[string]report.Interval{}}
	var ciWarnings []string // in first-seen order
	warnedFor := map[string][]string{}
	for _, cm := range ciMetrics {
		vals := make([]float64, 0, len(runs))
		nonzero := false
		for i := range runs {
			v, ok := cm.get(&runs[i])
			if !ok {
				break
			}
			vals = append(vals, v)
			nonzero = nonzero || v != 0
		}
		if len(vals) < len(runs) || !nonzero {
			continue
		}
		iv, ws := Summarize(vals, Confidence95)
		rep.CI[cm.name] = iv
		if sp, ok := SpreadOf(vals); ok {
			if rep.Spread == nil {
				rep.Spread = map[string]report.Spread{}
			}
			rep.Spread[cm.name] = sp
			if sp.Noisy {
				rep.Noisy = append(rep.Noisy, cm.name)
			}
		}
		for _, w := range ws {
			if warnedFor[w] == nil {
				ciWarnings = append(ciWarnings, w)
			}
			warnedFor[w] = append(warnedFor[w], cm.name)
		}
	}
	// One line per distinct warning, naming the figures it applies to.
	for _, w := range ciWarnings {
		c.warn(strings.Join(warnedFor[w], ", ") + ": " + w)
	}
	return m, rep, c.warnings
}

// medianRun is the index of the run whose lead figure is the median of the runs'
// (the lower of the middle two for an even count): goodput, or for a cell that
// moves no stream, transactions/s; the first run when neither was measured.
func medianRun(runs []report.Metrics) int {
	lead := func(m *report.Metrics) float64 { return m.GoodputBps }
	if slices.IndexFunc(runs, func(m report.Metrics) bool { return m.GoodputBps > 0 }) < 0 {
		lead = func(m *report.Metrics) float64 { return m.TransPerS }
	}
	idx := make([]int, len(runs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(lead(&runs[a]), lead(&runs[b])) })
	return idx[(len(idx)-1)/2]
}

// combiner takes medians across runs and collects warnings.
type combiner struct {
	runs     []report.Metrics
	warnings []string
}

func (c *combiner) warn(w string) {
	if !slices.Contains(c.warnings, w) {
		c.warnings = append(c.warnings, w)
	}
}

// number is a figure CombineMetrics takes the median of.
type number interface {
	uint64 | int64 | int | float64
}

func medianOf[T number](c *combiner, get func(*report.Metrics) T) T {
	xs := make([]T, len(c.runs))
	for i := range c.runs {
		xs[i] = get(&c.runs[i])
	}
	return median(xs)
}

// optMedianOf is medianOf for a figure some runs may lack: nil unless every run has it.
func optMedianOf[T number](c *combiner, name string, get func(*report.Metrics) *T) *T {
	var xs []T
	for i := range c.runs {
		if p := get(&c.runs[i]); p != nil {
			xs = append(xs, *p)
		}
	}
	if !c.inAll(name, len(xs)) {
		return nil
	}
	v := median(xs)
	return &v
}

// inAll reports whether a figure present in have runs is present in all, warning
// when some runs have it and some do not.
func (c *combiner) inAll(name string, have int) bool {
	if have > 0 && have < len(c.runs) {
		c.warn(fmt.Sprintf("%s: measured in %d of %d runs: left out", name, have, len(c.runs)))
	}
	return have == len(c.runs)
}

// latency combines LatencyStats field by field.
func (c *combiner) latency(name string, get func(*report.Metrics) *report.LatencyStats) *report.LatencyStats {
	var stats []*report.LatencyStats
	for i := range c.runs {
		if s := get(&c.runs[i]); s != nil {
			stats = append(stats, s)
		}
	}
	if !c.inAll(name, len(stats)) {
		return nil
	}
	sub := &combiner{runs: make([]report.Metrics, len(stats))}
	for i, s := range stats {
		sub.runs[i].RTT = s
	}
	field := func(f func(*report.LatencyStats) *int64) func(*report.Metrics) *int64 {
		return func(m *report.Metrics) *int64 { return f(m.RTT) }
	}
	out := &report.LatencyStats{
		Samples: medianOf(sub, func(m *report.Metrics) uint64 { return m.RTT.Samples }),
		Min:     medianOf(sub, func(m *report.Metrics) int64 { return m.RTT.Min }),
		P50:     optMedianOf(sub, name+".p50", field(func(s *report.LatencyStats) *int64 { return s.P50 })),
		P90:     optMedianOf(sub, name+".p90", field(func(s *report.LatencyStats) *int64 { return s.P90 })),
		P99:     optMedianOf(sub, name+".p99", field(func(s *report.LatencyStats) *int64 { return s.P99 })),
		P999:    optMedianOf(sub, name+".p999", field(func(s *report.LatencyStats) *int64 { return s.P999 })),
		Max:     medianOf(sub, func(m *report.Metrics) int64 { return m.RTT.Max }),
		Mean:    medianOf(sub, func(m *report.Metrics) float64 { return m.RTT.Mean }),
		Stddev:  medianOf(sub, func(m *report.Metrics) float64 { return m.RTT.Stddev }),
	}
	out.CDF = medianRunCDF(stats)
	for _, w := range sub.warnings {
		c.warn(w)
	}
	return out
}

// medianRunCDF returns the CDF of the run whose p50 is the median one: a real curve,
// not a blend of several runs.
func medianRunCDF(stats []*report.LatencyStats) []report.CDFPoint {
	var with []*report.LatencyStats
	for _, s := range stats {
		if s.P50 != nil && len(s.CDF) > 0 {
			with = append(with, s)
		}
	}
	if len(with) == 0 {
		return nil
	}
	slices.SortFunc(with, func(a, b *report.LatencyStats) int { return cmp.Compare(*a.P50, *b.P50) })
	return with[(len(with)-1)/2].CDF
}

// median returns the median of xs (sorting them in place): the middle value, or for
// an even count the mean of the middle two, integers rounded to nearest with halves
// up. It computes without overflow.
func median[T number](xs []T) T {
	slices.SortFunc(xs, cmp.Compare[T])
	n := len(xs)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return xs[n/2]
	}
	a, b := xs[n/2-1], xs[n/2]
	switch any(a).(type) {
	case float64:
		return a/2 + b/2
	}
	// Integers: a + ⌈(b−a)/2⌉, the difference taken in uint64 so it cannot overflow.
	d := uint64(b) - uint64(a)
	return a + T(d/2+d%2)
}
