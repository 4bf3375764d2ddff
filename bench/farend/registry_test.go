package farend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRunnerCheckRegistry: what a test must be is what its experiment's registry
// entry (bench.FarHalf) says: a listen-mode half needs listen, a one-path half one
// bidir path, a stream a direction it runs, a half without params none; a half that
// runs as another's is refused naming that one. Each refusal names the field.
func TestRunnerCheckRegistry(t *testing.T) {
	base := remote.TestRequest{Transport: "tcp", Size: 64, Duration: time.Second, Streams: 1, Direction: remote.Bidir}
	for _, tc := range []struct {
		name   string
		edit   func(r *remote.TestRequest)
		want   string // "" = accepted
		wantIn string // what the refusal names
	}{
		{"connect", func(r *remote.TestRequest) { r.Experiment, r.Listen = "bench."+report.ExpConnect, true }, "", ""},
		{"connect without listen", func(r *remote.TestRequest) { r.Experiment = "bench." + report.ExpConnect }, "listen", ""},
		{"clients on two paths", func(r *remote.TestRequest) {
			r.Experiment, r.Listen, r.Streams = "bench."+report.ExpClients, true, 2
		}, "streams", ""},
		{"close forward", func(r *remote.TestRequest) { r.Experiment, r.Direction = "bench."+report.ExpClose, remote.Forward }, "direction", ""},
		{"refused with params", func(r *remote.TestRequest) {
			r.Experiment, r.Params = "bench."+report.ExpRefused, []byte(`{"port":1}`)
		}, "params", ""},
		{"pingpong with params", func(r *remote.TestRequest) {
			r.Experiment, r.Params = "bench."+report.ExpPingPong, []byte(`{"x":1}`)
		}, "params", ""},
		{"stream sideways", func(r *remote.TestRequest) {
			r.Experiment, r.Direction, r.Params = "bench."+report.ExpStream, "sideways", []byte(`{"run":"00000000000000ab","drain_ms":10}`)
		}, "direction", ""},
		{"slow-receiver", func(r *remote.TestRequest) { r.Experiment = "bench." + report.ExpSlowReceiver }, "runs as", "bench." + report.ExpStream},
		{"fanout", func(r *remote.TestRequest) { r.Experiment = "bench." + report.ExpFanout }, "this server runs", "bench." + report.ExpBoundaries},
	} {
		req := base
		tc.edit(&req)
		err := Runner{}.Check(req)
		if (tc.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.wantIn))) {
			t.Errorf("%s: Check = %v, want %q naming %q", tc.name, err, tc.want, tc.wantIn)
		}
	}
}

// TestServeRefusesWhatCheckRefuses: a test that reaches Serve unchecked is refused
// there as Check refuses it, before any data path is touched, and the refusal is the
// test's error in its results.
func TestServeRefusesWhatCheckRefuses(t *testing.T) {
	d := &remote.Data{Request: remote.TestRequest{Experiment: "bench." + report.ExpSlowReceiver, Transport: "tcp", Size: 64, Streams: 1, Direction: remote.Bidir}}
	res, err := Runner{}.Serve(context.Background(), d)
	if err == nil || res.Complete || !strings.Contains(res.Error, "runs as") {
		t.Errorf("Serve(bench.slow-receiver) = %+v, %v; want refused, naming what it runs as", res, err)
	}
	d.Request.Experiment = "bench." + report.ExpPingPong
	if res, err := (Runner{}).Serve(context.Background(), d); err == nil || !strings.Contains(res.Error, "no data path") {
		t.Errorf("Serve(bench.pingpong) without a data path = %+v, %v; want refused", res, err)
	}
}

// TestOpenNeedsAFarHalf: a Far asks the server only for experiments whose registry
// entry has a far half of their own, and with their params: it refuses the others,
// and a boundaries cell without its part, before any test starts.
func TestOpenNeedsAFarHalf(t *testing.T) {
	far, _ := dialServer(t, remote.Limits{})
	for _, spec := range []bench.FarSpec{
		{Experiment: report.ExpFanout, Transport: "udp", Size: 64, Streams: 1},
		{Experiment: report.ExpSlowReceiver, Transport: "udp", Size: 64, Streams: 1},
		{Experiment: report.ExpBoundaries, Transport: "udp", Size: 64, Streams: 1},
	} {
		if c, err := far.Open(t.Context(), spec); err == nil {
			c.Finish(t.Context())
			t.Errorf("Open(%s) opened a cell, want it refused", spec.Experiment)
		}
	}
}
