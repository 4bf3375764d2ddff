package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRunInterrupted: a run cancelled after its first cell returns the partial
// report: that cell's figures, no later cell, and the report marked incomplete.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := Plan{Experiments: []string{ExpStream}, Transports: []string{"tcp", "udp"}, Sizes: []int{64}, Count: 200, RateBps: 20e6,
		Warmup: NoWarmup, Drain: patience, // the first cell's 200 TCP messages all arrive: a complete flow ends the drain
		Progress: func(ev ProgressEvent) {
			if ev.Done && ev.Index == 1 {
				cancel()
			}
		}}
	rep, err := Run(ctx, p)
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run = %v, %v; want the partial report and context.Canceled", rep, err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Metrics.RecvMsgs != 200 {
		t.Errorf("%d results (%+v); want the first cell only, with its 200 messages", len(rep.Results), rep.Results)
	}
	if !strings.Contains(rep.Incomplete, "interrupted") || !slicesContainsSub(rep.Warnings, "incomplete: interrupted") {
		t.Errorf("incomplete %q, warnings %q; want the report marked interrupted", rep.Incomplete, rep.Warnings)
	}
}
