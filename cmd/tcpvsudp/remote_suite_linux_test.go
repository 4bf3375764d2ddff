package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRunServerTwoHostsFullSuite: the default suite, once with 'run --server' across
// the veth pair and once on loopback in the client's namespace, with the same flags.
// The remote report has the loopback report's shape: the same cells (experiment,
// transport, parameters) in the same order, each either measured without error or,
// for an experiment the far end cannot run yet, marked skipped; and its env says
// where the server ran.
func TestRunServerTwoHostsFullSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("the full suite twice: not in -short")
	}
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	flags := []string{"-d", "100ms", "--sizes", "64", "--warmup", "20ms", "--clients", "20"}
	far := runIn(t, p, cs, append([]string{"--server", addr, "--key-file", key}, flags...)...)
	local := runIn(t, p, cs, append([]string{"--no-lab"}, flags...)...)

	shape := func(rep report.Report) []string {
		var s []string
		for _, r := range rep.Results {
			s = append(s, fmt.Sprintf("%s/%s/%+v", r.Experiment, r.Transport, r.Params))
		}
		return s
	}
	if got, want := shape(far), shape(local); !slices.Equal(got, want) {
		t.Errorf("remote report's cells:\n%q\nwant the loopback report's:\n%q", got, want)
	}
	if !slices.Equal(far.Config.Experiments, local.Config.Experiments) {
		t.Errorf("remote experiments %v, want the loopback suite's %v", far.Config.Experiments, local.Config.Experiments)
	}
	if far.Env.Link.Kind != "remote" || far.Env.Peer == nil || far.Env.Peer.CPUs == 0 {
		t.Errorf("remote env: link %+v, peer %+v; want a remote link and the server's host", far.Env.Link, far.Env.Peer)
	}
	if far.Incomplete != "" {
		t.Errorf("remote report incomplete: %s", far.Incomplete)
	}
	ran := map[string]bool{}
	for _, r := range far.Results {
		_, skipped := r.Observed["skipped"]
		t.Logf("%s %s: error %q, skipped %v, sent %d, recv %d, server CPU %s", r.Experiment, r.Transport, r.Error, skipped, r.Metrics.SentMsgs, r.Metrics.RecvMsgs, cpuText(r.Metrics.ServerCPUSec))
		switch {
		case r.Error != "":
			t.Errorf("%s %s across hosts: %s", r.Experiment, r.Transport, r.Error)
		case skipped && slices.Contains(bench.FarExperiments, r.Experiment):
			t.Errorf("%s %s: skipped, but the far end runs it", r.Experiment, r.Transport)
		case !skipped && !slices.Contains(bench.FarExperiments, r.Experiment):
			t.Errorf("%s %s: not skipped, but the far end cannot run it", r.Experiment, r.Transport)
		case !skipped:
			ran[r.Experiment] = true
		}
	}
	for _, x := range bench.FarExperiments {
		if !ran[x] {
			t.Errorf("%s: no cell ran across hosts", x)
		}
	}
	// The properties the remote run measured are those of the loopback run, but for
	// the skipped experiments'.
	var farProps, localProps []string
	for _, pr := range far.Properties {
		farProps = append(farProps, pr.ID)
	}
	for _, pr := range local.Properties {
		localProps = append(localProps, pr.ID)
	}
	t.Logf("properties: remote %v, loopback %v", farProps, localProps)
	// A loopback cell that sent and received nothing (its receiver starved of CPU
	// for the whole 100 ms, every datagram a socket drop) is a true figure, but one
	// a property cannot be derived from: then only that cell's rows may be missing.
	starved := map[string]bool{}
	for _, r := range local.Results {
		if r.Error == "" && r.Metrics.SentMsgs > 0 && r.Metrics.RecvMsgs == 0 {
			starved[r.Experiment] = true
			t.Logf("loopback %s over %s delivered none of %d messages (socket drops %v)", r.Experiment, r.Transport, r.Metrics.SentMsgs, r.Metrics.DropsSocket)
		}
	}
	for _, pr := range far.Properties {
		id := pr.ID
		x, _ := pr.Evidence["experiment"].(string) // "stream", or "stream (unpaced)"
		if x, _, _ = strings.Cut(x, " "); !slices.Contains(localProps, id) && starved[x] {
			t.Logf("property %s only in the remote report: the loopback %s cells delivered nothing", id, x)
			continue
		}
		if !slices.Contains(localProps, id) {
			t.Errorf("property %s only in the remote report; the loopback run's cells:", id)
			for _, r := range local.Results {
				t.Errorf("  %s %s: error %q, sent %d, recv %d, rtt %+v", r.Experiment, r.Transport, r.Error, r.Metrics.SentMsgs, r.Metrics.RecvMsgs, r.Metrics.RTT)
			}
		}
	}
	cs.terminate(t)
}

func cpuText(s *float64) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("%.3f s", *s)
}
