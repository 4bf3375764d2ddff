package bench

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// stallNetwork wraps a real Network: its client's Recv sleeps once, for stall,
// after `after` replies to requests have come back — a stalled receive path. The
// sockets stay real; only the known answer is arranged.
type stallNetwork struct {
	transport.Network
	after int
	stall time.Duration
}

func (n stallNetwork) Dial(ctx context.Context, addr string) (transport.Transport, error) {
	t, err := n.Network.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &stalled{Transport: t, n: n}, nil
}

type stalled struct {
	transport.Transport
	n       stallNetwork
	replies int
	done    bool
}

// Recv is called by one goroutine at a time (the closed loop's, or the open loop's
// receiver), so the counts need no lock.
func (t *stalled) Recv(bufs [][]byte, sizes []int) (int, error) {
	if !t.done && t.replies >= t.n.after {
		t.done = true
		time.Sleep(t.n.stall)
	}
	n, err := t.Transport.Recv(bufs, sizes)
	for i := 0; i < n; i++ {
		if h, derr := wire.DecodeHeader(bufs[i][:sizes[i]]); derr == nil && h.Kind == wire.KindRequest {
			t.replies++
		}
	}
	return n, err
}

// TestOpenLoopStall is the known answer of coordinated omission. The client's
// receive path stalls 500 ms after the 200th reply of 2000 requests. Closed loop
// sends nothing during the stall, so one RTT is 500 ms and the p99 stays at the
// base RTT: the stall is hidden. Open loop at 1000 requests/s keeps sending; about
// 500 requests were due during the stall and each waited up to 500 ms, so the p99
// (the slowest 20) is well inside the stall. The line between the two is half the
// stall: open loop's p99 above it, closed loop's below it. A busy host only adds
// to open loop's figures; closed loop's base RTT, which it can stretch to
// milliseconds, is logged, not bounded.
func TestOpenLoopStall(t *testing.T) {
	const stall = 500 * time.Millisecond
	for _, name := range []string{"tcp", "udp"} {
		t.Run(name, func(t *testing.T) {
			// 500 replies wait in the socket during the stall: room for them.
			base := mustNetwork(t, name, transport.NetOptions{NoDelay: true, RecvBuffer: 4 << 20})
			e := testEnv(t)
			e.timeout = patience // nothing is lost: every request is answered, the stalled ones within a second

			o, err := runPingPongCell(context.Background(), e, stallNetwork{Network: base, after: 200, stall: stall},
				report.Params{Size: 64, Count: 2000, PingRate: 1000})
			if err != nil {
				t.Fatal(err)
			}
			m := o.m
			if m.RTT == nil || m.RTT.P99 == nil {
				t.Fatalf("open loop: rtt %+v, want a p99", m.RTT)
			}
			t.Logf("open loop: sent %d recv %d lost %d late %d p50 %v p99 %v max %v observed %v",
				m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.LateMsgs, time.Duration(*m.RTT.P50), time.Duration(*m.RTT.P99), time.Duration(m.RTT.Max), o.observed)
			if m.SentMsgs != 2000 || m.RecvMsgs != 2000 || m.LostMsgs != 0 || m.Timeouts != 0 || m.RTT.Samples != 2000 {
				t.Errorf("open loop: sent %d recv %d lost %d timeouts %d samples %d, want 2000 2000 0 0 2000",
					m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.Timeouts, m.RTT.Samples)
			}
			if p99 := time.Duration(*m.RTT.P99); p99 < stall/2 {
				t.Errorf("open loop: p99 %v, want ≥ %v: requests due during the stall must show it", p99, stall/2)
			}
			if max := time.Duration(m.RTT.Max); max < 450*time.Millisecond {
				t.Errorf("open loop: max %v, want about the 500ms stall", max)
			}
			if o.observed["mode"] != "open-loop" || o.observed["rate_per_s"] != 1000.0 {
				t.Errorf("open loop: observed %v, want mode open-loop at 1000/s", o.observed)
			}
			if _, ok := o.observed["max_send_lag_ns"].(int64); !ok {
				t.Errorf("open loop: observed %v, want max_send_lag_ns", o.observed)
			}

			// The same stall, closed loop: one slow round trip among 2000.
			e = testEnv(t)
			e.timeout = patience
			c, err := runPingPongCell(context.Background(), e, stallNetwork{Network: base, after: 200, stall: stall},
				report.Params{Size: 64, Count: 2000})
			if err != nil {
				t.Fatal(err)
			}
			m = c.m
			if m.RTT == nil || m.RTT.P99 == nil {
				t.Fatalf("closed loop: rtt %+v, want a p99", m.RTT)
			}
			t.Logf("closed loop: sent %d recv %d lost %d p50 %v p99 %v max %v",
				m.SentMsgs, m.RecvMsgs, m.LostMsgs, time.Duration(*m.RTT.P50), time.Duration(*m.RTT.P99), time.Duration(m.RTT.Max))
			if c.observed != nil {
				t.Errorf("closed loop: observed %v, want none (reports unchanged)", c.observed)
			}
			if m.RecvMsgs != 2000 || m.LostMsgs != 0 {
				t.Errorf("closed loop: recv %d lost %d, want 2000 0", m.RecvMsgs, m.LostMsgs)
			}
			if p99 := time.Duration(*m.RTT.P99); p99 >= stall/2 {
				t.Errorf("closed loop: p99 %v, want < %v: the stall hides in one sample (coordinated omission)", p99, stall/2)
			}
			if max := time.Duration(m.RTT.Max); max < stall {
				t.Errorf("closed loop: max %v, want ≥ %v", max, stall)
			}
		})
	}
}

// sendClock wraps a real Network: its client records each request's send time,
// the one its header carries (ns since the run's epoch).
type sendClock struct {
	transport.Network
	at *[]int64
}

func (n sendClock) Dial(ctx context.Context, addr string) (transport.Transport, error) {
	t, err := n.Network.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &clocked{Transport: t, at: n.at}, nil
}

type clocked struct {
	transport.Transport
	at *[]int64
}

func (t *clocked) Send(msgs [][]byte) (int, error) {
	for _, m := range msgs {
		if h, err := wire.DecodeHeader(m); err == nil && h.Kind == wire.KindRequest {
			*t.at = append(*t.at, h.SendNs)
		}
	}
	return t.Transport.Send(msgs)
}

// TestOpenLoopPacer: 2 s at 1000 requests/s sends exactly 2000 requests, each no
// earlier than its scheduled time: request i leaves at least i ms after the first,
// less the first one's lateness (at most the largest lag). So the send rate is never
// above 1000/s; a loaded host can only make the sender late, and the lower bound
// says no more than that it paces (not 2x off). How close it keeps to its
// timetable is BenchmarkOpenLoopPacer's figure.
func TestOpenLoopPacer(t *testing.T) {
	const rate, period = 1000, int64(time.Second / 1000)
	e := testEnv(t)
	e.warmup = 0
	e.timeout = patience // the checks are of the sender; no reply need time out
	at := make([]int64, 0, 4000)
	o, err := runPingPongCell(context.Background(), e, sendClock{Network: mustNetwork(t, "udp", transport.NetOptions{}), at: &at},
		report.Params{Size: 64, DurationS: 2, PingRate: rate})
	if err != nil {
		t.Fatal(err)
	}
	m := o.m
	maxLag, _ := o.observed["max_send_lag_ns"].(int64)
	t.Logf("sent %d, send rate %.1f/s (%+.2f%%), recv %d, lost %d, observed %v",
		m.SentMsgs, m.SendMsgsPerS, 100*(m.SendMsgsPerS/rate-1), m.RecvMsgs, m.LostMsgs, o.observed)
	if m.SentMsgs != 2000 || len(at) != 2000 {
		t.Fatalf("sent %d (%d seen), want 2000", m.SentMsgs, len(at))
	}
	for i, ns := range at {
		if early := int64(i)*period - maxLag - (ns - at[0]); early > 0 {
			t.Fatalf("request %d left %v after request 0, %v early for its schedule (largest lag %v)",
				i, time.Duration(ns-at[0]), time.Duration(early), time.Duration(maxLag))
		}
	}
	if m.SendMsgsPerS < rate/2 || m.SendMsgsPerS > rate*(1+1e-9) {
		t.Errorf("send rate %.1f/s, want %d/s: never above it, not half of it", m.SendMsgsPerS, rate)
	}
	if m.RecvMsgs+m.LostMsgs != m.SentMsgs {
		t.Errorf("recv %d + lost %d != sent %d", m.RecvMsgs, m.LostMsgs, m.SentMsgs)
	}
}

// TestOpenLoopLoss: dropped requests time out e.timeout after their scheduled time
// and count lost; the rest are answered.
func TestOpenLoopLoss(t *testing.T) {
	e := testEnv(t)
	e.warmup = 0
	// Only the two dropped requests may time out: the others are answered in far
	// less than 2 s, however busy the host.
	e.timeout = 2 * time.Second
	nw := impairedNetwork{Network: mustNetwork(t, "udp", transport.NetOptions{}), drop: map[uint64]bool{10: true, 20: true}, dup: map[uint64]bool{30: true}}
	o, err := runPingPongCell(context.Background(), e, nw, report.Params{Size: 64, Count: 100, PingRate: 500})
	if err != nil {
		t.Fatal(err)
	}
	m := o.m
	if m.SentMsgs != 100 || m.RecvMsgs != 98 || m.LostMsgs != 2 || m.Timeouts != 2 || m.RTT.Samples != 98 || m.DupMsgs != 1 {
		t.Errorf("sent %d recv %d lost %d timeouts %d samples %d dup %d, want 100 98 2 2 98 1",
			m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.Timeouts, m.RTT.Samples, m.DupMsgs)
	}
}

// TestOpenLoopNoAllocPerRequest: twice the requests cost no more allocations, to
// within a handful: the hot path allocates nothing per request.
func TestOpenLoopNoAllocPerRequest(t *testing.T) {
	nw := mustNetwork(t, "udp", transport.NetOptions{RecvBuffer: 4 << 20})
	mallocs := func(count uint64) uint64 {
		e := testEnv(t)
		e.warmup = 0
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		if _, err := runPingPongCell(context.Background(), e, nw, report.Params{Size: 64, Count: count, PingRate: 20000}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&b)
		return b.Mallocs - a.Mallocs
	}
	mallocs(1000)
	small, large := mallocs(2000), mallocs(6000)
	t.Logf("mallocs: %d for 2000 requests, %d for 6000", small, large)
	if large > small && large-small > 400 {
		t.Errorf("%d more allocations for 4000 more requests: allocation per request", large-small)
	}
}
