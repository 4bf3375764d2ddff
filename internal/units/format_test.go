package units

import (
	"math"
	"testing"
)

// TestFormat: figures with three significant digits and their unit, known answers.
func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"bps zero", Bps(0), "0 bit/s"},
		{"bps small", Bps(999), "999 bit/s"},
		{"bps kbit", Bps(512e3), "512 kbit/s"},
		{"bps Mbit", Bps(941e6), "941 Mbit/s"},
		{"bps Mbit rounds", Bps(941.4e6), "941 Mbit/s"},
		{"bps Gbit", Bps(1.234e9), "1.23 Gbit/s"},
		{"bps rolls over", Bps(999.6e6), "1.00 Gbit/s"},
		{"bps tens", Bps(12.34e9), "12.3 Gbit/s"},
		{"dur ns", Dur(850), "850 ns"},
		{"dur ns fraction", Dur(5.4), "5 ns"},
		{"dur us", Dur(12_340), "12.3 us"},
		{"dur ms", Dur(1.2e6), "1.20 ms"},
		{"dur s", Dur(2e9), "2.00 s"},
		{"dur rolls over", Dur(999_999), "1.00 ms"},
		{"dur long", Dur(1234e9), "1234 s"},
		{"secs", Secs(0.5), "500 ms"},
		{"count zero", Count(0), "0"},
		{"count grouped", Count(12_345), "12,345"},
		{"count below a million", Count(999_999), "999,999"},
		{"count M", Count(1_234_567), "1.23M"},
		{"count G", Count(45_600_000_000), "45.6G"},
		{"si small", SI(12.5), "12.5"},
		{"si k", SI(812_000), "812k"},
		{"si M", SI(1.2e6), "1.20M"},
		{"si below one", SI(0.5), "0.500"},
		{"num", Num(0.9184), "0.918"},
		{"num large", Num(4521.4), "4,521"},
		{"pct zero", Pct(0), "0%"},
		{"pct small", Pct(0.0012), "0.12%"},
		{"pct tiny", Pct(0.000001), "<0.01%"},
		{"pct tens", Pct(0.1234), "12.3%"},
		{"pct all", Pct(1), "100%"},
		{"pct NaN", Pct(math.NaN()), "-"},
		{"countOf", CountOf(12, 10_000), "12 (0.12%)"},
		{"countOf zero", CountOf(0, 10_000), "0"},
		{"countOf no whole", CountOf(3, 0), "3"},
		{"bytes exact", ByteSize(65507), "65,507 B"},
		{"bytes KiB", ByteSize(64 << 10), "64 KiB"},
		{"bytes MiB", ByteSize(1.5 * (1 << 20)), "1.50 MiB"},
		{"bytes fraction", ByteSize(1240.5), "1.21 KiB"},
		{"bytes NaN", ByteSize(math.NaN()), "-"},
		{"group negative", Group(-1234567), "-1,234,567"},
		{"num NaN", Num(math.Inf(1)), "-"},
		{"bps NaN", Bps(math.NaN()), "-"},
		{"range", RangeOf(31.2e9, 29.04e9, 33.1e9, BpsUnits, true), "31.2 Gbit/s (29.0-33.1)"},
		{"range SI", RangeOf(625e3, 610e3, 631e3, SIUnits, false), "625k (610k-631k)"},
		{"interval symmetric", IntervalOf(941e6, 929e6, 953e6, 0.95, 5, BpsUnits, true), "941 +/- 12 Mbit/s (n=5)"},
		{"interval asymmetric", IntervalOf(941e6, 925e6, 960e6, 0.95, 7, BpsUnits, true), "941 [925, 960] Mbit/s (n=7)"},
		{"interval low confidence", IntervalOf(12_300, 12_000, 12_600, 0.75, 3, DurUnits, true), "12.3 +/- 0.3 us (n=3, 75% CI)"},
		{"interval SI", IntervalOf(624_995, 610_000, 631_000, 0.95, 5, SIUnits, false), "625k [610k, 631k] (n=5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
