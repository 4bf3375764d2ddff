package bench

import (
	"testing"
	"time"
)

// TestWithDefaultsTwice: defaults applied any number of times give the same plan, and
// a warm-up or drain asked to be none stays none for the runner (PITFALLS 21).
func TestWithDefaultsTwice(t *testing.T) {
	tests := []struct {
		name          string
		p             Plan
		warmup, drain time.Duration // what the runner runs
	}{
		{name: "unset", p: Plan{}, warmup: 200 * time.Millisecond, drain: time.Second},
		{name: "none", p: Plan{Warmup: NoWarmup, Drain: -1}, warmup: 0, drain: 0},
		{name: "set", p: Plan{Warmup: time.Millisecond, Drain: 2 * time.Millisecond}, warmup: time.Millisecond, drain: 2 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			once := tc.p.WithDefaults()
			twice := once.WithDefaults()
			if once.Warmup != twice.Warmup || once.Drain != twice.Drain {
				t.Errorf("once: warmup %v drain %v; twice: %v, %v", once.Warmup, once.Drain, twice.Warmup, twice.Drain)
			}
			if twice.warmup() != tc.warmup || twice.drain() != tc.drain {
				t.Errorf("the runner runs warmup %v, drain %v; want %v, %v", twice.warmup(), twice.drain(), tc.warmup, tc.drain)
			}
		})
	}
}
