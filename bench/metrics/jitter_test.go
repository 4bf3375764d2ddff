package metrics

import (
	"math"
	"testing"
)

func TestJitterKnownAnswers(t *testing.T) {
	const us = int64(1000) // ns
	// alternating returns n updates of |D| = 10 µs, computed by the recurrence.
	alternating := func(n int) float64 {
		j := 0.0
		for range n {
			j = j + (10e3-j)/16
		}
		return j
	}
	cases := []struct {
		name    string
		transit []int64 // receive − send, ns, per arrival
		want    float64 // ns
		samples uint64
	}{
		{"none", nil, 0, 0},
		{"one packet only seeds", []int64{5 * us}, 0, 0},
		{"constant transit", []int64{30 * us, 30 * us, 30 * us, 30 * us, 30 * us}, 0, 4},
		{"single step of 16 µs gives 1 µs", []int64{20 * us, 36 * us}, 1e3, 1},
		{"single step down counts |D|", []int64{36 * us, 20 * us}, 1e3, 1},
		{"step then constant decays", []int64{0, 16 * us, 16 * us}, 1e3 * 15.0 / 16, 2},
		{"alternating 0,10 µs: 3 updates", []int64{0, 10 * us, 0, 10 * us}, alternating(3), 3},
		{"alternating 0,10 µs: 100 updates", alternatingTransits(101, 10*us), alternating(100), 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var j Jitter
			send := int64(1_000_000) // 1 ms apart, from an arbitrary epoch offset
			for i, tr := range tc.transit {
				s := send * int64(i+1)
				j.Add(s, s+tr)
			}
			if got := j.Value(); math.Abs(got-tc.want) > 1e-9*math.Max(1, tc.want) {
				t.Errorf("transits %v ns: Value() = %v ns, want %v", tc.transit, got, tc.want)
			}
			if got := j.Samples(); got != tc.samples {
				t.Errorf("Samples() = %d, want %d", got, tc.samples)
			}
		})
	}
}

func alternatingTransits(n int, hi int64) []int64 {
	tr := make([]int64, n)
	for i := range tr {
		if i%2 == 1 {
			tr[i] = hi
		}
	}
	return tr
}

// TestJitterConverges checks the closed form of the alternating case: after n
// updates of |D| = d, J = d·(1 − (15/16)^n), which tends to d.
func TestJitterConverges(t *testing.T) {
	const d = 10e3 // ns
	var j Jitter
	tr := alternatingTransits(401, int64(d))
	for i, x := range tr {
		j.Add(int64(i)*1e6, int64(i)*1e6+x)
	}
	want := d * (1 - math.Pow(15.0/16, 400))
	if got := j.Value(); math.Abs(got-want) > 1e-6 || math.Abs(got-d) > 1e-6*d {
		t.Fatalf("after 400 updates of 10 µs: J = %v ns, want %v (→ %v)", got, want, d)
	}
}

// TestJitterClockOffset: a constant offset between send and receive clocks cancels.
func TestJitterClockOffset(t *testing.T) {
	var a, b Jitter
	transits := []int64{100, 350, 120, 900, 101}
	for i, tr := range transits {
		s := int64(i) * 1e6
		a.Add(s, s+tr)
		b.Add(s, s+tr-5e9) // receive clock 5 s behind
	}
	if a.Value() != b.Value() {
		t.Fatalf("offset changed jitter: %v vs %v ns", a.Value(), b.Value())
	}
}
