package metrics

import (
	"math"
	"math/big"
	"math/bits"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// LatencyMinNs and LatencyMaxNs bound the values a Latency records, in ns; values
// outside are clamped to them and counted (Latency.Clamped).
const (
	LatencyMinNs  = 1                       // smallest recordable latency, ns
	LatencyMaxNs  = int64(60 * time.Second) // largest recordable latency, ns
	latencyDigits = 3                       // significant decimal digits kept by the histogram
)

// latencyQuantiles are the reported percentiles and the fewest samples each needs:
// ⌈10/(1−q)⌉ (PITFALLS.md #10), written out to avoid floating-point rounding.
var latencyQuantiles = [...]struct {
	q       float64 // percentile, 0..100
	samples uint64
}{
	{50, 20},
	{90, 100},
	{99, 1000},
	{99.9, 10000},
}

// Latency is a latency (or RTT) distribution in nanoseconds: an HDR histogram from
// LatencyMinNs to LatencyMaxNs with 3 significant digits (any recorded value is
// known to within 0.1%), plus exact count, min, max, sum and sum of squares, so min,
// max, mean and standard deviation are exact. Record does not allocate. Make one
// with NewLatency; the zero value is not usable. A Latency is not safe for
// concurrent use: give each goroutine its own and Merge them.
type Latency struct {
	h        *hdrhistogram.Histogram
	min, max int64  // exact, of the values as recorded (after clamping)
	sumHi    uint64 // Σ ns, 128 bits: hi, lo
	sumLo    uint64
	sqHi     uint64 // Σ ns², 128 bits (60 s² is 3.6e21 ns²: ≥ 9e16 samples fit)
	sqLo     uint64
	below    uint64 // values < LatencyMinNs recorded as LatencyMinNs
	above    uint64 // values > LatencyMaxNs recorded as LatencyMaxNs
}

// NewLatency returns an empty Latency. Its histogram takes about 216 KiB.
func NewLatency() *Latency {
	l := &Latency{h: hdrhistogram.New(LatencyMinNs, LatencyMaxNs, latencyDigits)}
	l.Reset()
	return l
}

// Record adds one latency in ns. A value below LatencyMinNs (1 ns: zero or negative,
// which only a clock problem produces) or above LatencyMaxNs (60 s) is recorded as
// that bound and counted (see Clamped), so the count stays right and the report can
// warn.
func (l *Latency) Record(ns int64) {
	if ns < LatencyMinNs {
		ns = LatencyMinNs
		l.below++
	} else if ns > LatencyMaxNs {
		ns = LatencyMaxNs
		l.above++
	}
	_ = l.h.RecordValue(ns) // in range by construction: cannot fail
	l.min = min(l.min, ns)
	l.max = max(l.max, ns)
	var c uint64
	l.sumLo, c = bits.Add64(l.sumLo, uint64(ns), 0)
	l.sumHi += c
	hi, lo := bits.Mul64(uint64(ns), uint64(ns))
	l.sqLo, c = bits.Add64(l.sqLo, lo, 0)
	l.sqHi += hi + c
}

// Merge adds every value recorded in o to l. o is unchanged.
func (l *Latency) Merge(o *Latency) {
	if o.Count() == 0 {
		return
	}
	l.h.Merge(o.h) // same range on both sides: drops nothing
	l.min = min(l.min, o.min)
	l.max = max(l.max, o.max)
	var c uint64
	l.sumLo, c = bits.Add64(l.sumLo, o.sumLo, 0)
	l.sumHi += o.sumHi + c
	l.sqLo, c = bits.Add64(l.sqLo, o.sqLo, 0)
	l.sqHi += o.sqHi + c
	l.below += o.below
	l.above += o.above
}

// Count returns the number of values recorded.
func (l *Latency) Count() uint64 { return uint64(l.h.TotalCount()) }

// Clamped returns how many recorded values were below LatencyMinNs and how many
// above LatencyMaxNs, and so were recorded as those bounds.
func (l *Latency) Clamped() (below, above uint64) { return l.below, l.above }

// Reset empties l for reuse.
func (l *Latency) Reset() {
	l.h.Reset()
	*l = Latency{h: l.h, min: math.MaxInt64, max: math.MinInt64}
}

// Stats summarises the distribution, or returns nil when nothing was recorded.
//
// Min, Max, Mean and Stddev (the population standard deviation) are exact. The
// percentiles come from the histogram, as the highest value equivalent to the
// sample at that rank (within 0.1% of it), capped to [Min, Max]. A percentile q is
// present only with at least 10/(1−q) samples (p50: 20, p90: 100, p99: 1000,
// p99.9: 10000) and nil otherwise (PITFALLS.md #10).
func (l *Latency) Stats() *report.LatencyStats {
	n := l.Count()
	if n == 0 {
		return nil
	}
	s := &report.LatencyStats{Samples: n, Min: l.min, Max: l.max}
	ptrs := [...]**int64{&s.P50, &s.P90, &s.P99, &s.P999}
	for i, lq := range latencyQuantiles {
		if n < lq.samples {
			continue
		}
		v := min(max(l.h.ValueAtPercentile(lq.q), l.min), l.max)
		*ptrs[i] = &v
	}
	s.Mean, s.Stddev = l.moments()
	s.CDF = l.cdf()
	return s
}

// cdfQuantiles are the fractions a CDF is drawn through: even steps through the body,
// then ever finer into the tail, as far as the sample count reaches.
var cdfQuantiles = []float64{0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
	0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999}

// cdf returns the distribution at cdfQuantiles (those the sample count can resolve,
// q ≤ 1 − 1/n) and at the maximum, in ascending order. A chart, not a figure: the
// table's percentiles keep their own, stricter sample rule.
func (l *Latency) cdf() []report.CDFPoint {
	n := float64(l.Count())
	pts := []report.CDFPoint{{Ns: l.min, Q: 0}}
	for _, q := range cdfQuantiles[1:] {
		if q > 1-1/n {
			break
		}
		v := min(max(l.h.ValueAtPercentile(100*q), l.min), l.max)
		if v < pts[len(pts)-1].Ns {
			v = pts[len(pts)-1].Ns
		}
		pts = append(pts, report.CDFPoint{Ns: v, Q: q})
	}
	return append(pts, report.CDFPoint{Ns: l.max, Q: 1})
}

// moments returns the exact mean and population standard deviation, rounded to
// float64: mean = Σx/n, variance = (nΣx² − (Σx)²)/n², computed in integers.
func (l *Latency) moments() (mean, stddev float64) {
	n := new(big.Int).SetUint64(l.Count())
	sum := bigUint128(l.sumHi, l.sumLo)
	sq := bigUint128(l.sqHi, l.sqLo)
	m, _ := new(big.Rat).SetFrac(sum, n).Float64()
	num := new(big.Int).Mul(n, sq)
	num.Sub(num, new(big.Int).Mul(sum, sum))
	den := new(big.Int).Mul(n, n)
	v, _ := new(big.Rat).SetFrac(num, den).Float64()
	return m, math.Sqrt(v)
}

func bigUint128(hi, lo uint64) *big.Int {
	x := new(big.Int).SetUint64(hi)
	x.Lsh(x, 64)
	return x.Or(x, new(big.Int).SetUint64(lo))
}

// CountAbove is how many recorded values are above ns, to the histogram's precision
// (values within 0.1% of ns may fall either side).
func (l *Latency) CountAbove(ns int64) uint64 {
	var n int64
	for _, b := range l.h.Distribution() {
		if b.From > ns {
			n += b.Count
		}
	}
	return uint64(n)
}
