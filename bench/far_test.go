package bench

import (
	"context"
	"math"
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
	env   *Env
}

func (f *loopFar) Link() Link { return Link{Kind: "remote", Addr: "loopfar"} }

func (f *loopFar) PeerEnv() *Env {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.env
}

func (f *loopFar) Open(ctx context.Context, spec FarSpec) (FarCell, error) {
	f.mu.Lock()
	f.specs = append(f.specs, spec)
	f.mu.Unlock()
	nw, err := NetworkByName(spec.Transport, NetOptions{NoDelay: true})
	if err != nil {
		return nil, err
	}
	c := &loopCell{done: make(chan farDone, 1), senderDone: make(chan struct{}), echo: spec.Experiment != ExpStream}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	// One listener per stream, as remote mode opens one data path per stream.
	var srvs []Transport
	for range spec.Streams {
		l, err := nw.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			c.Finish(ctx)
			return nil, err
		}
		c.ls = append(c.ls, l)
		if spec.Reverse { // the far end sends: it dials, this side's endpoint is the accepted one
			st, err := nw.Dial(ctx, l.Addr().String())
			if err != nil {
				c.Finish(ctx)
				return nil, err
			}
			srvs = append(srvs, st)
			ct, err := l.Accept(ctx)
			if err != nil {
				c.Finish(ctx)
				return nil, err
			}
			c.ts = append(c.ts, ct)
			continue
		}
		t, err := nw.Dial(ctx, l.Addr().String())
		if err != nil {
			c.Finish(ctx)
			return nil, err
		}
		c.ts = append(c.ts, t)
		if spec.Transport == "udp" {
			st, err := l.Accept(ctx) // the one socket: no datagram needed
			if err != nil {
				c.Finish(ctx)
				return nil, err
			}
			srvs = append(srvs, st)
		}
	}
	go func() {
		for _, l := range c.ls[len(srvs):] { // TCP: accept each stream's connection
			st, err := l.Accept(sctx)
			if err != nil {
				c.done <- farDone{err: err}
				return
			}
			srvs = append(srvs, st)
		}
		defer func() {
			for _, st := range srvs {
				st.Close()
			}
		}()
		r, err := MeasureServerHalf(func() (FarResult, error) {
			if spec.Experiment == ExpStream && spec.Reverse {
				return ServeStreamTx(sctx, spec, srvs)
			}
			if spec.Experiment == ExpStream {
				return ServeStreamRx(sctx, spec, srvs, c.senderDone)
			}
			return FarResult{ServerSockets: 1}, ServeEcho(sctx, srvs[0], spec.Size, 64)
		})
		f.mu.Lock()
		f.env = r.Env
		f.mu.Unlock()
		c.done <- farDone{r, err}
	}()
	return c, nil
}

type farDone struct {
	r   FarResult
	err error
}

type loopCell struct {
	echo       bool // pingpong: the server half stops when told, no drain
	ls         []Listener
	ts         []Transport
	cancel     context.CancelFunc
	senderDone chan struct{}
	done       chan farDone
	once       sync.Once
}

func (c *loopCell) Transports() []Transport { return c.ts }

func (c *loopCell) Ended() <-chan struct{} { return nil }

// Finish: the sender is done; a stream receiver drains and reports, an echo server
// stops when its client closes.
func (c *loopCell) Finish(ctx context.Context) (FarResult, error) {
	var d farDone
	c.once.Do(func() {
		close(c.senderDone)
		for _, t := range c.ts {
			defer t.Close() // after the receiver drained, as remote mode closes the data path after the results
		}
		if c.echo {
			c.cancel()
		}
		select {
		case d = <-c.done:
		case <-time.After(10 * time.Second):
			d.err = context.DeadlineExceeded
		case <-ctx.Done():
		}
		c.cancel()
		for _, l := range c.ls {
			l.Close()
		}
	})
	d.r.Warnings = append(d.r.Warnings, "far end says hello")
	return d.r, d.err
}

// TestFarCells: with Plan.Far set, pingpong and stream run their server halves at
// the far end: every round trip is answered there, every streamed message is
// accounted there (sent = received, nothing lost, in order, no duplicates), the far
// end's figures and warnings reach the results, and the report's link is the far
// end's.
func TestFarCells(t *testing.T) {
	far := &loopFar{}
	rep, err := Run(context.Background(), Plan{Far: far, Experiments: []string{ExpStream, ExpPingPong}, Transports: []string{"tcp", "udp"}, Sizes: []int{64, 1024},
		Streams: 2, RateBps: 20e6, Count: 300, Warmup: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Drain: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != "loopfar" {
		t.Errorf("link %+v, want the far end's", rep.Env.Link)
	}
	if rep.Env.Peer == nil || rep.Env.Peer.Go == "" || rep.Env.Peer.CPUs == 0 {
		t.Errorf("peer env %+v, want the far host's", rep.Env.Peer)
	}
	if len(rep.Results) != 8 {
		t.Fatalf("%d results, want stream and pingpong × 2 transports × 2 sizes", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("%s %s %d B: sent %d recv %d lost %d goodput %.4g, server sockets %d, warnings %q", r.Experiment, r.Transport, r.Params.Size,
			m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, m.ServerSockets, r.Warnings)
		if r.Error != "" {
			t.Errorf("%s %s: error %q", r.Experiment, r.Transport, r.Error)
			continue
		}
		if m.ServerCPUSec == nil {
			t.Errorf("%s %s: no server CPU", r.Experiment, r.Transport)
		}
		if !slicesContainsSub(r.Warnings, "far end says hello") {
			t.Errorf("%s %s: warnings %q, want the far end's", r.Experiment, r.Transport, r.Warnings)
		}
		switch r.Experiment {
		case ExpPingPong:
			if m.SentMsgs != 300 || m.RecvMsgs+m.LostMsgs != 300 || m.RecvMsgs < 298 || m.ServerSockets != 1 {
				t.Errorf("pingpong %s: sent %d recv %d lost %d sockets %d, want 300 sent, (nearly) all answered by 1 socket", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			}
		case ExpStream:
			// Paced at 20 Mbit/s on loopback: nothing is lost, so the known answer is exact.
			if m.SentMsgs != 600 || m.RecvMsgs != 600 || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.ServerSockets != 2 {
				t.Errorf("stream %s: sent %d recv %d lost %d dup %d reordered %d sockets %d, want 600 sent and received once, in order, by 2 sockets",
					r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets)
			}
			if m.GoodputBps <= 0 || m.GoodputBps > 1.1*20e6 {
				t.Errorf("stream %s: goodput %.4g, want about the paced 20 Mbit/s", r.Transport, m.GoodputBps)
			}
			checkFarGoodput(t, "stream "+r.Transport, m, r.Params.Size)
			if r.Transport == "udp" && (m.DropsSocket == nil || *m.DropsSocket != 0) {
				t.Errorf("stream udp: socket drops %v, want the far receiver's 0", m.DropsSocket)
			}
		}
	}
	// Reverse: the far end sends, this host receives and accounts.
	rep, err = Run(context.Background(), Plan{Far: far, Reverse: true, Experiments: []string{ExpStream}, Transports: []string{"tcp", "udp"},
		Sizes: []int{1024}, Streams: 2, RateBps: 20e6, Count: 300, Warmup: 20 * time.Millisecond, Drain: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("reverse %s: sent %d recv %d lost %d send rate %.4g goodput %.4g, warnings %q", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.SendRateBps, m.GoodputBps, r.Warnings)
		if r.Error != "" || !r.Params.Reverse {
			t.Errorf("reverse %s: error %q, params %+v", r.Transport, r.Error, r.Params)
			continue
		}
		if m.SentMsgs != 600 || m.RecvMsgs != 600 || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 {
			t.Errorf("reverse %s: sent %d recv %d lost %d dup %d reordered %d, want the far senders' 600 received once, in order",
				r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs)
		}
		// Never above the pace; below it only as far as a loaded host falls behind.
		if m.SendRateBps < 0.5*20e6 || m.SendRateBps > 1.05*20e6 || m.GoodputBps < 0.5*20e6 || m.GoodputBps > 1.1*20e6 {
			t.Errorf("reverse %s: send rate %.4g, goodput %.4g; want about the paced 20 Mbit/s, never above it", r.Transport, m.SendRateBps, m.GoodputBps)
		}
		checkFarGoodput(t, "reverse "+r.Transport, m, r.Params.Size)
	}
	for _, sp := range far.specs {
		if sp.Experiment == ExpStream && (sp.Run == 0 || sp.Streams != 2 || sp.Drain != 500*time.Millisecond) {
			t.Errorf("far end asked for %+v: want the run id, 2 streams and the drain", sp)
		}
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
		{Plan{Far: &loopFar{}, Experiments: []string{ExpConnect}}, "--experiments: connect cannot run against a remote server"},
		{Plan{Far: &loopFar{}, Experiments: []string{ExpPingPong}, Lab: &LabConfig{}}, "--server: an emulated link"},
		{Plan{Reverse: true, Experiments: []string{ExpStream}}, "--reverse: only with --server"},
	} {
		err := tc.p.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

// checkFarGoodput: across hosts goodput runs from the first arrival to the last on
// the receiver's clock. With everything delivered it is the sender's rate, within
// 10% (both span the same messages, a transit time apart), and msgs/s × size × 8.
func checkFarGoodput(t *testing.T, what string, m Metrics, size int) {
	t.Helper()
	if m.SendRateBps <= 0 || math.Abs(m.GoodputBps/m.SendRateBps-1) > 0.1 {
		t.Errorf("%s: goodput %.4g, sender rate %.4g: want them within 10%%", what, m.GoodputBps, m.SendRateBps)
	}
	if got := m.MsgsPerS * float64(size) * 8; math.Abs(got-m.GoodputBps) > 1e-6*m.GoodputBps {
		t.Errorf("%s: msgs/s × size × 8 = %.6g, goodput %.6g: want equal", what, got, m.GoodputBps)
	}
}
