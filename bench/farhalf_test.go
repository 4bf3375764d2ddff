package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/transporttest"
)

// TestFarHalves: every experiment that runs against a remote server has its server
// half in its registry entry, and none other has one: a far end finds each by its
// name there (FarHalfOf), and a half that runs as another's names one that serves.
func TestFarHalves(t *testing.T) {
	for _, x := range Experiments() {
		h, ok := FarHalfOf(x)
		far := remoteWhy(x) == ""
		if ok != far {
			t.Errorf("%s: FarHalfOf ok %v, runs against a remote server %v", x, ok, far)
			continue
		}
		if !ok {
			continue
		}
		if h.RunsAs != "" {
			if as, ok := FarHalfOf(h.RunsAs); !ok || as.Serve == nil {
				t.Errorf("%s runs as %s, which serves no far half", x, h.RunsAs)
			}
		} else if h.Serve == nil {
			t.Errorf("%s: a far half with no Serve", x)
		}
		if (h.Params == nil) != (h.Parse == nil) {
			t.Errorf("%s: Params and Parse come together", x)
		}
	}
	if _, ok := FarHalfOf("no-such-experiment"); ok {
		t.Error("FarHalfOf(no-such-experiment) ok")
	}
}

// TestBoundariesParams: what a client puts on the wire for a boundaries part is what
// the far end's Parse reads back; a part that needs a byte stream is refused over
// UDP, naming the field.
func TestBoundariesParams(t *testing.T) {
	h, _ := FarHalfOf(report.ExpBoundaries)
	want := FarBoundaries{Part: BoundariesRaw, Seed: -3, Quiet: 1500 * time.Millisecond}
	raw, err := h.Params(FarSpec{Experiment: report.ExpBoundaries, Boundaries: &want}, &FarTest{})
	if err != nil {
		t.Fatal(err)
	}
	got := FarSpec{Experiment: report.ExpBoundaries, Transport: "tcp"}
	if err := h.Parse(raw, FarTest{}, &got); err != nil || got.Boundaries == nil || *got.Boundaries != want {
		t.Fatalf("Parse(%s) = %+v, %v; want %+v", raw, got.Boundaries, err, want)
	}
	udp := FarSpec{Experiment: report.ExpBoundaries, Transport: "udp"}
	if err := h.Parse(raw, FarTest{}, &udp); err == nil {
		t.Errorf("Parse(%s) over udp accepted a raw part", raw)
	}
	if _, err := h.Params(FarSpec{Experiment: report.ExpBoundaries}, &FarTest{}); err == nil {
		t.Error("Params of a spec without its part: no error")
	}
}

// TestServeRefusedEnv: refused's server half asks its peer for the closed port it
// answers with, and fails, serving nothing, when the peer has none.
func TestServeRefusedEnv(t *testing.T) {
	_, s := transporttest.Pair(t, mustNetwork(t, "udp", transport.NetOptions{}))
	_, err := serveRefused(context.Background(), &clientEnv{}, FarSpec{Size: 64}, []transport.Transport{s})
	if err == nil || !errors.Is(err, errNoPort) {
		t.Errorf("serveRefused with no closed port = %v, want the env's error", err)
	}
}
