package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestFarDefaultSuite: against a far end the default suite has the loopback suite's
// cells, one for one; the cells the far end cannot run yet say so, carry no figures,
// feed no property, and the run's warnings name them once.
func TestFarDefaultSuite(t *testing.T) {
	base := Plan{Transports: []string{"tcp", "udp"}, Sizes: []int{64}, Count: 50, Warmup: NoWarmup, Timeout: 100 * time.Millisecond, Drain: 200 * time.Millisecond}
	local := base.WithDefaults()
	far := base
	far.Far = &loopFar{}
	far = far.WithDefaults()
	if !slices.Equal(far.Experiments, local.Experiments) {
		t.Fatalf("far suite %v, want the loopback suite %v", far.Experiments, local.Experiments)
	}
	if err := far.Validate(); err != nil {
		t.Fatalf("the default suite against a far end: %v", err)
	}
	// Only the cells a far end cannot run, so the test stays short: they are skipped
	// at once, whatever their duration.
	var not []string
	for _, x := range local.Experiments {
		if !slices.Contains(FarExperiments, x) {
			not = append(not, x)
		}
	}
	if len(not) == 0 {
		t.Skip("every experiment of the default suite runs against a far end")
	}
	far.Experiments, far.suite = not, true
	rep, err := Run(context.Background(), far)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2*len(not) {
		t.Fatalf("%d results, want %d: every skipped experiment × tcp, udp", len(rep.Results), 2*len(not))
	}
	for _, r := range rep.Results {
		why, _ := r.Observed["skipped"].(string)
		if !report.Skipped(r) || !strings.Contains(why, r.Experiment+" does not run against a remote server") || r.Error != "" || r.Metrics.SentMsgs != 0 {
			t.Errorf("%s %s: observed %v, error %q, sent %d; want skipped, saying why, with no figures", r.Experiment, r.Transport, r.Observed, r.Error, r.Metrics.SentMsgs)
		}
	}
	if len(rep.Properties) != 0 {
		t.Errorf("properties %+v from skipped cells, want none", rep.Properties)
	}
	n := 0
	for _, w := range rep.Warnings {
		if strings.Contains(w, "against a remote server,") && strings.Contains(w, "not run: ") {
			n++
			for _, x := range not {
				if !strings.Contains(w, x) {
					t.Errorf("run warning %q does not name %s", w, x)
				}
			}
		}
	}
	if n != 1 {
		t.Errorf("run warnings %q: want one naming the skipped experiments", rep.Warnings)
	}
	var txt, compact, md bytes.Buffer
	if err := render.Text(&txt, rep, render.Verbose(true)); err != nil {
		t.Fatal(err)
	}
	if err := render.Text(&compact, rep); err != nil {
		t.Fatal(err)
	}
	if err := render.Markdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Count(txt.String(), "Not run.") != len(not) {
		t.Errorf("text report: want %d sections saying \"Not run.\":\n%s", len(not), txt.String())
	}
	if strings.Count(compact.String(), ": not run (-v says why)\n") != len(not) {
		t.Errorf("compact text report: want %d lines saying \"not run\":\n%s", len(not), compact.String())
	}
	if !strings.Contains(md.String(), "Skipped `"+not[0]+"`") || strings.Contains(md.String(), "Ran `"+not[0]+"`") {
		t.Errorf("markdown intro does not say %s was skipped:\n%.600s", not[0], md.String())
	}

	// Named on the command line, an experiment the far end cannot run is refused.
	explicit := base
	explicit.Far, explicit.Experiments = &loopFar{}, []string{not[0]}
	if err := explicit.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "--experiments: "+not[0]) {
		t.Errorf("Validate(-e %s) = %v, want a refusal naming --experiments", not[0], err)
	}
}

// TestBothEndsPerGB: across hosts the cost per byte adds the server's CPU to this
// host's: 1 s here and 3 s there over what cost 2 s/GB here is 8 s/GB for both.
func TestBothEndsPerGB(t *testing.T) {
	two, three := 2.0, 3.0
	for _, tc := range []struct {
		m    report.Metrics
		want float64
		ok   bool
	}{
		{report.Metrics{CPUSec: 1, CPUSecPerGB: &two, ServerCPUSec: &three}, 8, true},
		{report.Metrics{CPUSec: 1, CPUSecPerGB: &two}, 2, true},
		{report.Metrics{CPUSec: 0, CPUSecPerGB: &two, ServerCPUSec: &three}, 0, false},
		{report.Metrics{CPUSec: 1}, 0, false},
	} {
		got, ok := report.BothEndsPerGB(tc.m)
		if got != tc.want || ok != tc.ok {
			t.Errorf("bothEndsPerGB(cpu %v, per GB %v, server %v) = %v, %v; want %v, %v", tc.m.CPUSec, tc.m.CPUSecPerGB, tc.m.ServerCPUSec, got, ok, tc.want, tc.ok)
		}
	}
}
