package main

import (
	"strings"
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
			p, err := runPlan(t, tc.args)
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

// TestPlanSpreadDefault: with neither --repeat nor --duration the run measures each
// cell 3 times for 800ms; either flag given means what it says, the other keeping
// the default it had before (1 run, 3s).
func TestPlanSpreadDefault(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		repeat   int
		duration time.Duration
		property time.Duration // how long a property cell (and the lab section's) runs
	}{
		{name: "defaults", args: nil, repeat: 3, duration: 800 * time.Millisecond, property: 3 * time.Second},
		{name: "repeat", args: []string{"--repeat", "6"}, repeat: 6, duration: 3 * time.Second, property: 3 * time.Second},
		{name: "repeat 1", args: []string{"-R", "1"}, repeat: 1, duration: 3 * time.Second, property: 3 * time.Second},
		{name: "duration", args: []string{"--duration", "2s"}, repeat: 1, duration: 2 * time.Second, property: 2 * time.Second},
		{name: "both", args: []string{"--duration", "1s", "--repeat", "3"}, repeat: 3, duration: time.Second, property: time.Second},
		{name: "quick", args: []string{"--quick"}, repeat: 1, duration: 500 * time.Millisecond, property: 500 * time.Millisecond},
		{name: "count", args: []string{"--count", "1000"}, repeat: 1, duration: 0, property: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := runPlan(t, tc.args)
			if err != nil {
				t.Fatalf("plan %q: %v", tc.args, err)
			}
			p = p.WithDefaults()
			if p.Repeat != tc.repeat || p.Duration != tc.duration || p.PropertyDuration() != tc.property {
				t.Errorf("plan %q: %d x %v, property cells %v; want %d x %v, %v", tc.args, p.Repeat, p.Duration, p.PropertyDuration(), tc.repeat, tc.duration, tc.property)
			}
		})
	}
	for _, args := range [][]string{{"--repeat", "0"}, {"--repeat", "101"}} {
		if _, err := runPlan(t, args); err == nil || !strings.HasPrefix(err.Error(), "--repeat: must be 1..100") {
			t.Errorf("plan %q: %v, want --repeat's range", args, err)
		}
	}
}

// runPlan is the plan 'run' makes of args (the flags parsed as run parses them).
func runPlan(t *testing.T, args []string) (bench.Plan, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	rf := &runFlags{}
	addRunFlags(fs, rf)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return rf.plan(fs)
}
