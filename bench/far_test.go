package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopFar is a far end in this process: it opens each cell's data path on loopback
// and serves it with ServeEcho on a goroutine of its own, as a remote server would.
// Everything is real sockets; only the host is the same.
type loopFar struct {
	mu    sync.Mutex
	specs []FarSpec
}

func (f *loopFar) Link() Link { return Link{Kind: "remote", Addr: "loopfar"} }

func (f *loopFar) Open(ctx context.Context, spec FarSpec) (FarCell, error) {
	f.mu.Lock()
	f.specs = append(f.specs, spec)
	f.mu.Unlock()
	nw, err := NetworkByName(spec.Transport, NetOptions{NoDelay: true})
	if err != nil {
		return nil, err
	}
	l, err := nw.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &loopCell{l: l, done: make(chan error, 1)}
	t, err := nw.Dial(ctx, l.Addr().String())
	if err != nil {
		l.Close()
		return nil, err
	}
	c.t = t
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go func() {
		st, err := l.Accept(sctx)
		if err != nil {
			c.done <- err
			return
		}
		err = ServeEcho(sctx, st, spec.Size, 64)
		st.Close()
		c.done <- err
	}()
	return c, nil
}

type loopCell struct {
	l      Listener
	t      Transport
	cancel context.CancelFunc
	done   chan error
}

func (c *loopCell) Transports() []Transport { return []Transport{c.t} }

func (c *loopCell) Finish(ctx context.Context) (FarResult, error) {
	c.t.Close()
	c.cancel()
	err := <-c.done
	c.l.Close()
	return FarResult{ServerSockets: 1, Warnings: []string{"far end says hello"}}, err
}

// TestFarPingPong: with Plan.Far set, pingpong's server half runs at the far end:
// every round trip is answered there, the far end's figures and warnings reach the
// result, and the report's link is the far end's.
func TestFarPingPong(t *testing.T) {
	far := &loopFar{}
	rep, err := Run(context.Background(), Plan{Far: far, Transports: []string{"tcp", "udp"}, Sizes: []int{64},
		Count: 300, Warmup: 20 * time.Millisecond, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != "loopfar" {
		t.Errorf("link %+v, want the far end's", rep.Env.Link)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want pingpong over tcp and udp (the far experiments by default)", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("%s: sent %d recv %d lost %d, warnings %q", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, r.Warnings)
		if r.Experiment != ExpPingPong || r.Error != "" {
			t.Errorf("%s %s: error %q", r.Experiment, r.Transport, r.Error)
		}
		if m.SentMsgs != 300 || m.RecvMsgs+m.LostMsgs != 300 || m.RecvMsgs < 298 {
			t.Errorf("%s: sent %d recv %d lost %d, want 300 sent and (nearly) all answered", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs)
		}
		if m.ServerSockets != 1 {
			t.Errorf("%s: server sockets %d, want the far end's 1", r.Transport, m.ServerSockets)
		}
		if !slicesContainsSub(r.Warnings, "far end says hello") {
			t.Errorf("%s: warnings %q, want the far end's", r.Transport, r.Warnings)
		}
	}
	if len(far.specs) != 2 || far.specs[0].Experiment != ExpPingPong || far.specs[0].Size != 64 || far.specs[0].Streams != 1 {
		t.Errorf("far end asked for %+v", far.specs)
	}
}

func slicesContainsSub(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestFarRefusesWhatItCannotRun: a plan with a far end refuses the experiments far
// ends cannot run yet, and an emulated link, naming the flag.
func TestFarRefusesWhatItCannotRun(t *testing.T) {
	for _, tc := range []struct {
		p    Plan
		want string
	}{
		{Plan{Far: &loopFar{}, Experiments: []string{ExpStream}}, "--experiments: stream cannot run against a remote server"},
		{Plan{Far: &loopFar{}, Experiments: []string{ExpPingPong}, Lab: &LabConfig{}}, "--server: an emulated link"},
	} {
		err := tc.p.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}
