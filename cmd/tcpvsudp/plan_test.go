package main

import (
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tcpvsudp/tcpvsudp/bench"
)

// TestPlanExplicitZero: a flag whose help says "0 = none" means none however many
// times defaults are applied (PITFALLS 21): the command line applies them, and so
// does bench.Run. TestWarmupZeroKernelCount checks what the runner then sends.
func TestPlanExplicitZero(t *testing.T) {
	const none = -1 // bench: a negative Warmup or Drain is none
	tests := []struct {
		name          string
		args          []string
		warmup, drain time.Duration
	}{
		{name: "defaults", args: nil, warmup: 200 * time.Millisecond, drain: time.Second},
		{name: "warmup 0", args: []string{"--warmup", "0"}, warmup: bench.NoWarmup, drain: time.Second},
		{name: "drain 0", args: []string{"--drain", "0"}, warmup: 200 * time.Millisecond, drain: none},
		{name: "both 0, quick", args: []string{"--quick", "--warmup", "0", "--drain", "0"}, warmup: bench.NoWarmup, drain: none},
		{name: "quick", args: []string{"--quick"}, warmup: 50 * time.Millisecond, drain: 300 * time.Millisecond},
		{name: "explicit", args: []string{"--warmup", "30ms", "--drain", "40ms"}, warmup: 30 * time.Millisecond, drain: 40 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			rf := &runFlags{}
			addRunFlags(fs, rf)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			p, err := rf.plan(fs)
			if err != nil {
				t.Fatalf("plan %q: %v", tc.args, err)
			}
			p = p.WithDefaults() // what bench.Run does first: a second application
			if p.Warmup != tc.warmup || p.Drain != tc.drain {
				t.Errorf("plan %q, defaults applied twice: warmup %v, drain %v; want %v, %v", tc.args, p.Warmup, p.Drain, tc.warmup, tc.drain)
			}
		})
	}
}
