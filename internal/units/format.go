// Formatting: figures for people, three significant digits, plain ASCII, bits/s
// in decimal SI, durations from nanoseconds, sizes in binary units. Shared by the
// renderers, the property phrases and the progress lines.

package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// PITFALLS.md 12 asks for labelled, comparable figures.

// A Unit is one step of a scale: values are divided by Div and suffixed with Suffix
// (which starts with a space for a unit name, not for an SI prefix: "1.23M").
type Unit struct {
	Div    float64
	Suffix string
}

var (
	BpsUnits = []Unit{{1, " bit/s"}, {1e3, " kbit/s"}, {1e6, " Mbit/s"}, {1e9, " Gbit/s"}, {1e12, " Tbit/s"}}
	DurUnits = []Unit{{1, " ns"}, {1e3, " us"}, {1e6, " ms"}, {1e9, " s"}}
	SIUnits  = []Unit{{1, ""}, {1e3, "k"}, {1e6, "M"}, {1e9, "G"}, {1e12, "T"}}
	// byteUnits are binary: sizes of buffers and messages.
	byteUnits = []Unit{{1, " B"}, {1 << 10, " KiB"}, {1 << 20, " MiB"}, {1 << 30, " GiB"}, {1 << 40, " TiB"}}
)

// RoundSig rounds x to n significant digits.
func RoundSig(x float64, n int) float64 {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}

// PickUnit returns the largest unit in which ref reads at least 1 once rounded to
// three significant digits, so 999.6 Mbit/s reads 1.00 Gbit/s, never 1000 Mbit/s.
func PickUnit(ref float64, units []Unit) Unit {
	for i := len(units) - 1; i > 0; i-- {
		if math.Abs(RoundSig(ref/units[i].Div, 3)) >= 1 {
			return units[i]
		}
	}
	return units[0]
}

// decimals is how many decimals show three significant digits of x (0 at or above 100).
func decimals(x float64) int {
	r := math.Abs(RoundSig(x, 3))
	switch {
	case r == 0 || r >= 100:
		return 0
	case r >= 10:
		return 1
	case r >= 1:
		return 2
	}
	// Below 1: enough decimals for three significant digits, at most 6.
	return min(6, 2-int(math.Floor(math.Log10(r))))
}

// scaled formats v in unit u with d decimals and no unit name.
func scaled(v float64, u Unit, d int) string {
	return strconv.FormatFloat(v/u.Div, 'f', d, 64)
}

// format3 formats v with three significant digits in the unit that suits it. In the
// base unit of an integer scale (ns, bit/s) it prints no decimals.
func format3(v float64, units []Unit, intBase bool) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	u := PickUnit(v, units)
	d := decimals(v / u.Div)
	if intBase && u.Div == 1 {
		d = 0
	}
	return scaled(v, u, d) + u.Suffix
}

// Bps formats bits per second in decimal SI: "941 Mbit/s", "1.23 Gbit/s", "512 kbit/s".
func Bps(v float64) string { return format3(v, BpsUnits, true) }

// Dur formats a duration given in nanoseconds: "850 ns", "12.3 us", "1.20 ms", "2.00 s".
func Dur(ns float64) string { return format3(ns, DurUnits, true) }

// Secs formats a duration given in seconds, like dur.
func Secs(s float64) string { return Dur(s * 1e9) }

// SI formats a rate or other real number with an SI prefix: "950", "12.5", "812k", "1.23M".
func SI(v float64) string { return format3(v, SIUnits, false) }

// Num formats a plain real number with three significant digits ("0.912", "12.3", "4521").
func Num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if math.Abs(v) >= 1000 {
		return Group(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', decimals(v), 64)
}

// ByteSize formats a size in bytes in binary units: exact with grouping below 1 MiB
// unless a whole number of KiB ("65,507 B", "64 KiB"), three significant digits
// above ("1.50 MiB", "1.63 GiB") and for fractions ("1.21 KiB").
func ByteSize(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	whole := v == math.Trunc(v)
	switch {
	case whole && v >= 1024 && math.Mod(v, 1024) == 0 && v < 1<<20:
		return Group(int64(v)/1024) + " KiB"
	case whole && math.Abs(v) < 1<<20:
		return Group(int64(v)) + " B"
	}
	return format3(v, byteUnits, false)
}

// Count formats a number of things: exact with thousands grouping below a million
// ("12,345"), SI above ("1.23M").
func Count(n uint64) string {
	if n < 1e6 {
		return Group(int64(n))
	}
	return SI(float64(n))
}

// Group writes n with commas between groups of three digits.
func Group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Pct formats a fraction as a percentage: 0.0012 -> "0.12%". A non-zero fraction
// never reads "0.00%": below 0.01% it reads "<0.01%".
func Pct(f float64) string {
	x := f * 100
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "-"
	case x == 0:
		return "0%"
	case x == 100:
		return "100%"
	case math.Abs(x) < 0.01:
		return "<0.01%"
	case math.Abs(x) >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "%"
}

// ratio formats part/whole as a percentage, or "" when whole is 0.
func ratio(part, whole uint64) string {
	if whole == 0 {
		return ""
	}
	return Pct(float64(part) / float64(whole))
}

// CountOf formats a count with its share of a whole: "12 (0.12%)"; a zero count or
// an empty whole prints the count alone.
func CountOf(part, whole uint64) string {
	if part == 0 || whole == 0 {
		return Count(part)
	}
	return Count(part) + " (" + ratio(part, whole) + ")"
}

// RangeOf formats a median with the range of the runs it is the median of, in the
// median's unit and precision: "31.2 Gbit/s (29.0-33.1)", "625k (610k-631k)".
func RangeOf(median, lo, hi float64, units []Unit, intBase bool) string {
	u := PickUnit(median, units)
	d := decimals(median / u.Div)
	if intBase && u.Div == 1 {
		d = 0
	}
	if strings.HasPrefix(u.Suffix, " ") {
		return scaled(median, u, d) + u.Suffix + " (" + scaled(lo, u, d) + "-" + scaled(hi, u, d) + ")"
	}
	f := func(v float64) string { return scaled(v, u, d) + u.Suffix } // an SI prefix goes on every number
	return f(median) + " (" + f(lo) + "-" + f(hi) + ")"
}

// intervalOf formats a median with its confidence interval [lo, hi] in one unit: symmetric
// intervals read "941 +/- 12 Mbit/s (n=5)", others "941 [925, 960] Mbit/s (n=5)". A
// confidence other than 95% is named: "(n=3, 75% CI)".
func IntervalOf(median, lo, hi, confidence float64, runs int, units []Unit, intBase bool) string {
	u := PickUnit(median, units)
	d := decimals(median / u.Div)
	if intBase && u.Div == 1 {
		d = 0
	}
	f := func(v float64) string { return scaled(v, u, d) }
	suffix := u.Suffix
	if !strings.HasPrefix(suffix, " ") { // an SI prefix goes on every number: "625k [610k, 631k]"
		f = func(v float64) string { return scaled(v, u, d) + u.Suffix }
		suffix = ""
	}
	tag := fmt.Sprintf("(n=%d)", runs)
	if confidence > 0 && math.Abs(confidence-0.95) > 1e-9 {
		c := strconv.FormatFloat(RoundSig(confidence*100, 3), 'f', -1, 64)
		tag = fmt.Sprintf("(n=%d, %s%% CI)", runs, c)
	}
	up, down := f(hi-median), f(median-lo)
	var s string
	if up == down {
		s = f(median) + " +/- " + up
	} else {
		s = f(median) + " [" + f(lo) + ", " + f(hi) + "]"
	}
	return s + suffix + " " + tag
}
