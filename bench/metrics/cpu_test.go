package metrics

import (
	"errors"
	"math"
	"runtime"
	"testing"
	"time"
)

// burn spins the CPU for n iterations and returns a value the compiler cannot drop.
func burnCPU(n int) uint64 {
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var burnCPUSink uint64

func TestReadUsage(t *testing.T) {
	before, err := ReadUsage()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("getrusage on %s: %v", runtime.GOOS, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Burn in slices until user time grows; bounded by iteration count, not time.
	var d Usage
	for range 100 {
		burnCPUSink += burnCPU(5_000_000)
		runtime.GC()
		after, err := ReadUsage()
		if err != nil {
			t.Fatal(err)
		}
		if d = after.Sub(before); d.User > 0 {
			break
		}
	}
	if d.User <= 0 || d.CPU() <= 0 {
		t.Fatalf("after 500 million iterations: usage delta %+v, want user time > 0", d)
	}
	if d.CPU() != d.User+d.Sys {
		t.Errorf("CPU() = %v, want User+Sys = %v", d.CPU(), d.User+d.Sys)
	}
	if d.GCCount == 0 || d.GCPause < 0 {
		t.Errorf("after runtime.GC: GCCount delta %d, GCPause delta %v", d.GCCount, d.GCPause)
	}
}

func TestUsageSub(t *testing.T) {
	u := Usage{User: 5 * time.Second, Sys: 2 * time.Second, GCPause: 3 * time.Millisecond, GCCount: 2}
	v := Usage{User: 1 * time.Second, Sys: 500 * time.Millisecond, GCPause: time.Millisecond, GCCount: math.MaxUint32}
	want := Usage{User: 4 * time.Second, Sys: 1500 * time.Millisecond, GCPause: 2 * time.Millisecond, GCCount: 3}
	if got := u.Sub(v); got != want {
		t.Fatalf("Sub: got %+v, want %+v", got, want)
	}
}

func TestCPUSecPerGB(t *testing.T) {
	cases := []struct {
		name  string
		cpu   time.Duration
		bytes uint64
		want  *float64
	}{
		{"no bytes", time.Second, 0, nil},
		{"1 s per 2 GB", time.Second, 2e9, new(0.5)},
		{"250 ms per 1e8 bytes", 250 * time.Millisecond, 1e8, new(2.5)},
		{"no cpu", 0, 1e9, new(0.0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CPUSecPerGB(tc.cpu, tc.bytes)
			switch {
			case (got == nil) != (tc.want == nil):
				t.Fatalf("CPUSecPerGB(%v, %d) = %v, want %v", tc.cpu, tc.bytes, got, tc.want)
			case got != nil && math.Abs(*got-*tc.want) > 1e-12:
				t.Fatalf("CPUSecPerGB(%v, %d) = %v, want %v", tc.cpu, tc.bytes, *got, *tc.want)
			}
		})
	}
}
