package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// loopFar is a far end in this process: it opens each cell's data path on loopback
// and serves it with ServeEcho on a goroutine of its own, as a remote server would.
// Everything is real sockets; only the host is the same.
type loopFar struct {
	mu    sync.Mutex
	specs []FarSpec
	env   *report.Env
}

func (f *loopFar) Link() report.Link { return report.Link{Kind: "remote", Addr: "loopfar"} }

func (f *loopFar) PeerEnv() *report.Env {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.env
}

func (f *loopFar) Open(ctx context.Context, spec FarSpec) (FarCell, error) {
	f.mu.Lock()
	f.specs = append(f.specs, spec)
	f.mu.Unlock()
	nw, err := transport.NetworkByName(spec.Transport, transport.NetOptions{NoDelay: true})
	if err != nil {
		return nil, err
	}
	c := &loopCell{done: make(chan farDone, 1), senderDone: make(chan struct{}), sendersDone: make(chan struct{}), echo: spec.Experiment != report.ExpStream}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	// One listener per stream, as remote mode opens one data path per stream; a
	// both-ways cell has twice as many, the second half the far end's to send on.
	paths := spec.Streams
	if spec.Bidir {
		paths *= 2
	}
	srvs := make([]transport.Transport, paths)
	var accept []int // TCP paths this side dialled: the far end accepts them below
	for i := range paths {
		l, err := nw.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			c.Finish(ctx)
			return nil, err
		}
		c.ls = append(c.ls, l)
		if spec.Reverse || (spec.Bidir && i >= spec.Streams) { // the far end sends: it dials, this side's endpoint is the accepted one
			st, err := nw.Dial(ctx, l.Addr().String())
			if err != nil {
				c.Finish(ctx)
				return nil, err
			}
			srvs[i] = st
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
			srvs[i] = st
			continue
		}
		accept = append(accept, i)
	}
	go func() {
		defer func() {
			for _, st := range srvs {
				if st != nil {
					st.Close()
				}
			}
		}()
		for _, i := range accept { // TCP: accept each stream's connection
			st, err := c.ls[i].Accept(sctx)
			if err != nil {
				c.done <- farDone{err: err}
				return
			}
			srvs[i] = st
		}
		r, err := MeasureServerHalf(func() (FarResult, error) {
			if spec.Experiment == report.ExpStream {
				return ServeStream(sctx, spec, srvs, loopPeer{c}, c.farEnded)
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
	echo        bool // pingpong: the server half stops when told, no drain
	ls          []transport.Listener
	ts          []transport.Transport
	cancel      context.CancelFunc
	senderDone  chan struct{}
	sent        []byte        // SendersEnded's counts, as remote mode sends them; read after senderDone closed
	sendersDone chan struct{} // closed by farEnded
	farSent     []byte        // the far senders' counts, as remote mode sends them; read after farDone closed
	done        chan farDone
	once        sync.Once
}

// SendersEnded keeps the counts as the results' counters would carry them.
func (c *loopCell) SendersEnded(sent []uint64) {
	c.sent, _ = json.Marshal(SendersEnd{Sent: sent})
}

// farEnded is the far senders' end of stream, sent as remote mode's "sent" would be.
func (c *loopCell) farEnded(sent []uint64) {
	c.farSent, _ = json.Marshal(SendersEnd{Sent: sent})
	close(c.sendersDone)
}

// Senders are the far senders, as this side sees them.
func (c *loopCell) Senders() FarPeer { return loopSenders{c} }

type loopSenders struct{ c *loopCell }

func (s loopSenders) Done() <-chan struct{}   { return s.c.sendersDone }
func (s loopSenders) Sent() ([]uint64, error) { return ParseSendersEnd(s.c.farSent, 64) }

// loopPeer is a loopCell's client, as its far half sees it.
type loopPeer struct{ c *loopCell }

func (p loopPeer) Done() <-chan struct{}   { return p.c.senderDone }
func (p loopPeer) Sent() ([]uint64, error) { return ParseSendersEnd(p.c.sent, 64) }

func (c *loopCell) Transports() []transport.Transport { return c.ts }

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
		case <-time.After(3 * patience): // a hang guard: the far half drains for up to a test's patience
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
// end's. The request timeout and the drain are hang guards: on loopback every
// request is answered and every TCP message arrives, however busy the host.
func TestFarCells(t *testing.T) {
	far := &loopFar{}
	rep, err := Run(context.Background(), Plan{Far: far, Experiments: []string{report.ExpStream, report.ExpPingPong}, Transports: []string{"tcp", "udp"}, Sizes: []int{64, 1024},
		Streams: 2, RateBps: 20e6, Count: 300, Warmup: 20 * time.Millisecond, Timeout: patience, Drain: patience})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != "loopfar" {
		t.Errorf("link %+v, want the far end's", rep.Env.Link)
	}
	if rep.Env.Peer == nil || rep.Env.Peer.Go == "" || rep.Env.Peer.CPUs == 0 {
		t.Errorf("peer env %+v, want the far host's", rep.Env.Peer)
	}
	if len(rep.Results) != 10 {
		t.Fatalf("%d results, want stream and pingpong × 2 transports × 2 sizes, and UDP streams in textbook I/O too", len(rep.Results))
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
		case report.ExpPingPong:
			if m.SentMsgs != 300 || m.RecvMsgs+m.LostMsgs != 300 || m.RecvMsgs < 298 || m.ServerSockets != 1 {
				t.Errorf("pingpong %s: sent %d recv %d lost %d sockets %d, want 300 sent, (nearly) all answered by 1 socket", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			}
		case report.ExpStream:
			what := fmt.Sprintf("stream %s %d B", r.Transport, r.Params.Size)
			// Paced at 20 Mbit/s on loopback: nothing is lost, so the known answer is exact.
			checkPacedCounts(t, what, m, 600)
			if m.ServerSockets != 2 {
				t.Errorf("%s: %d server sockets, want 2", what, m.ServerSockets)
			}
			if m.SendRateBps <= 0 || m.SendRateBps > 1.05*20e6 {
				t.Errorf("%s: send rate %.4g, want the paced 20 Mbit/s, never above it", what, m.SendRateBps)
			}
			checkFarGoodput(t, what, m, r.Params.Size)
			if r.Transport == "udp" && m.DropsSocket == nil {
				t.Errorf("%s: no socket drops, want the far receiver's count", what)
			}
		}
	}
	// Reverse: the far end sends, this host receives and accounts.
	rep, err = Run(context.Background(), Plan{Far: far, Reverse: true, Experiments: []string{report.ExpStream}, Transports: []string{"tcp", "udp"},
		Sizes: []int{1024}, Streams: 2, RateBps: 20e6, Count: 300, Warmup: 20 * time.Millisecond, Drain: patience})
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
		checkPacedCounts(t, "reverse "+r.Transport, m, 600)
		// Never above the pace; below it only as far as a loaded host falls behind.
		if m.SendRateBps < 0.5*20e6 || m.SendRateBps > 1.05*20e6 {
			t.Errorf("reverse %s: send rate %.4g; want about the paced 20 Mbit/s, never above it, not half of it", r.Transport, m.SendRateBps)
		}
		checkFarGoodput(t, "reverse "+r.Transport, m, r.Params.Size)
	}
	for _, sp := range far.specs {
		if sp.Experiment == report.ExpStream && (sp.Run == 0 || sp.Streams != 2 || sp.Drain != patience) {
			t.Errorf("far end asked for %+v: want the run id, 2 streams and the drain", sp)
		}
	}
}

// checkPacedCounts checks a paced stream cell on loopback that sent want messages:
// each received once, in order. A busy host can starve a UDP receiver until its
// socket drops; then every lost message must be a counted drop (socket + sender,
// network 0), and the rest arrive once, in order.
func checkPacedCounts(t *testing.T, what string, m report.Metrics, want uint64) {
	t.Helper()
	var lost uint64
	if m.DropsSocket != nil && *m.DropsSocket+m.DropsSender > 0 {
		if m.LostMsgs != *m.DropsSocket+m.DropsSender || m.DropsNetwork == nil || *m.DropsNetwork != 0 {
			t.Errorf("%s: lost %d, socket drops %d, sender drops %d, network %v: want lost = socket + sender, network 0",
				what, m.LostMsgs, *m.DropsSocket, m.DropsSender, deref(m.DropsNetwork))
		}
		t.Logf("%s: host too busy for a clean run: %d socket drops, %d sender drops, all accounted", what, *m.DropsSocket, m.DropsSender)
		lost = m.LostMsgs
	}
	if m.SentMsgs != want || m.RecvMsgs != want-lost || m.LostMsgs != lost || m.DupMsgs != 0 || m.ReorderedMsgs != 0 {
		t.Errorf("%s: sent %d recv %d lost %d dup %d reordered %d, want %d sent, %d received once, in order",
			what, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, want, want-lost)
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
// ends cannot run yet, and an emulated link; a plan streams the other way or both
// ways on loopback or with a far end, not on an emulated link yet; each refusal
// names the flag.
func TestFarRefusesWhatItCannotRun(t *testing.T) {
	for _, tc := range []struct {
		p    Plan
		want string
	}{
		{Plan{Far: &loopFar{}, Experiments: []string{report.ExpFanout}}, "--experiments: fanout cannot run against a remote server"},
		{Plan{Far: &loopFar{}, Experiments: []string{report.ExpPingPong}, Lab: &LabConfig{}}, "--server: an emulated link"},
		{Plan{Reverse: true, Experiments: []string{report.ExpStream}, Lab: &LabConfig{}}, "--reverse, --bidir: not on an emulated link yet"},
		{Plan{Bidir: true, Experiments: []string{report.ExpStream}, Lab: &LabConfig{}}, "--reverse, --bidir: not on an emulated link yet"},
		{Plan{Bidir: true, Reverse: true, Experiments: []string{report.ExpStream}}, "--bidir: streams both ways already; it cannot be combined with --reverse"},
		{Plan{Far: &loopFar{}, Bidir: true, Reverse: true, Experiments: []string{report.ExpStream}}, "--bidir: streams both ways already; it cannot be combined with --reverse"},
	} {
		err := tc.p.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

// checkFarGoodput: across hosts goodput runs from the first arrival to the last on
// the receiver's clock, and is msgs/s × size × 8, exactly. With everything delivered
// it is the sender's rate, both spanning the same messages a transit time apart,
// to within what the receiver's scheduling moves its interval's ends: a stall at the
// first arrival shortens it, by milliseconds on a busy host. So the two are only
// checked to agree within a factor of 2, where the interval is long enough (100 ms)
// that no stall short of a hang halves it; the ratio, which was within 10% on an
// idle host, is logged.
func checkFarGoodput(t *testing.T, what string, m report.Metrics, size int) {
	t.Helper()
	if m.SendRateBps <= 0 || m.GoodputBps <= 0 {
		t.Errorf("%s: goodput %.4g, sender rate %.4g: want both > 0", what, m.GoodputBps, m.SendRateBps)
		return
	}
	ratio := m.GoodputBps / m.SendRateBps
	t.Logf("%s: goodput / sender rate %.3f over a receive interval of %.3f s", what, ratio, m.RecvIntervalS)
	if m.RecvIntervalS >= 0.1 && (ratio < 0.5 || ratio > 2) {
		t.Errorf("%s: goodput %.4g, sender rate %.4g: want them within a factor of 2", what, m.GoodputBps, m.SendRateBps)
	}
	if got := m.MsgsPerS * float64(size) * 8; math.Abs(got-m.GoodputBps) > 1e-6*m.GoodputBps {
		t.Errorf("%s: msgs/s × size × 8 = %.6g, goodput %.6g: want equal", what, got, m.GoodputBps)
	}
}

// TestParseSendersEnd: a client's end of stream is read back exactly, and what is not
// one (none, another shape, unknown fields, too many flows) is an error that says
// what was wanted, never a panic.
func TestParseSendersEnd(t *testing.T) {
	raw, err := json.Marshal(SendersEnd{Sent: []uint64{3, 0, 1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSendersEnd(raw, 3)
	if err != nil || !slices.Equal(got, []uint64{3, 0, 1 << 40}) {
		t.Errorf("round trip: %v, %v; want [3 0 %d]", got, err, uint64(1<<40))
	}
	for _, bad := range []string{"", `{}x`, `[1,2]`, `{"sent":[-1]}`, `{"sent":[1],"extra":2}`, `{"sent":[1,2,3,4]}`} {
		if got, err := ParseSendersEnd([]byte(bad), 3); err == nil {
			t.Errorf("%q: %v, want an error", bad, got)
		}
	}
}
