package bench

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// fakeStamper is a Transport with kernel stamps made up by the test.
type fakeStamper struct {
	transport.Transport
	stamps []int64
}

func (f fakeStamper) RecvStamps(dst []int64) int { return copy(dst, f.stamps) }

// TestArrivals: a stamp becomes a time on the run clock by its age at the read; a
// message without one, or a transport without stamps, gets the read time.
func TestArrivals(t *testing.T) {
	epoch := time.Now().Add(-time.Second)
	tm := time.Now()
	now := int64(tm.Sub(epoch))
	wall := tm.UnixNano()
	for _, tc := range []struct {
		name   string
		t      transport.Transport
		n      int
		want   []int64
		kernel []bool
	}{
		{"no stamper", nil, 2, []int64{now, now}, []bool{false, false}},
		{"stamped", fakeStamper{stamps: []int64{wall - 5000, wall - 3000}}, 2, []int64{now - 5000, now - 3000}, []bool{true, true}},
		{"one without", fakeStamper{stamps: []int64{wall - 5000, 0}}, 2, []int64{now - 5000, now}, []bool{true, false}},
		{"fewer stamps than messages", fakeStamper{stamps: []int64{wall - 7}}, 2, []int64{now - 7, now}, []bool{true, false}},
		{"socket without stamps", fakeStamper{}, 2, []int64{now, now}, []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newArrivals(tc.t, 4)
			a.read(tc.n, tm, now)
			for i := range tc.n {
				got, k := a.at(i, now)
				if got != tc.want[i] || k != tc.kernel[i] {
					t.Errorf("at(%d) = %d, %v; want %d, %v", i, got, k, tc.want[i], tc.kernel[i])
				}
			}
		})
	}
}

// stampNetwork hands out server endpoints whose RecvStamps says each message arrived
// transit(seq) ns after its header's send time: a known answer for the jitter.
type stampNetwork struct {
	transport.Network
	epoch   time.Time
	transit func(seq uint64) int64
}

func (n stampNetwork) Listen(ctx context.Context, address string) (transport.Listener, error) {
	l, err := n.Network.Listen(ctx, address)
	if err != nil {
		return nil, err
	}
	return stampListener{Listener: l, n: n}, nil
}

type stampListener struct {
	transport.Listener
	n stampNetwork
}

func (l stampListener) Accept(ctx context.Context) (transport.Transport, error) {
	t, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return &stamped{Transport: t, n: l.n}, nil
}

type stamped struct {
	transport.Transport
	n     stampNetwork
	bufs  [][]byte
	sizes []int
	k     int
}

func (s *stamped) Recv(bufs [][]byte, sizes []int) (int, error) {
	k, err := s.Transport.Recv(bufs, sizes)
	s.bufs, s.sizes, s.k = bufs, sizes, k
	return k, err
}

func (s *stamped) RecvStamps(dst []int64) int {
	k := min(len(dst), s.k)
	for i := range k {
		dst[i] = 0
		if h, err := wire.DecodeHeader(s.bufs[i][:s.sizes[i]]); err == nil {
			dst[i] = s.n.epoch.UnixNano() + h.SendNs + s.n.transit(h.Seq)
		}
	}
	return k
}

// TestStreamJitterFromStamps: when the transport stamps arrivals, the jitter is
// computed from the stamps. Transit times alternating 1 µs and 11 µs make every
// |D| 10 µs, so after m differences J = 10 µs × (1 − (15/16)^m), whatever the
// receiver's scheduling did. TCP carries it: no loss to spoil the alternation.
func TestStreamJitterFromStamps(t *testing.T) {
	const count = 200
	e := testEnv(t)
	e.warmup = 0
	e.drain = patience // TCP delivers all 200: a complete flow ends the drain
	nw := stampNetwork{Network: mustNetwork(t, "tcp", transport.NetOptions{NoDelay: true}), epoch: e.epoch,
		transit: func(seq uint64) int64 { return 1000 + int64(seq%2)*10000 }}
	m, _, err := runStream(context.Background(), e, nw, report.Params{Size: 256, Streams: 1, Count: count, RateBps: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	if m.SentMsgs != count || m.RecvMsgs != count || m.LostMsgs != 0 {
		t.Fatalf("sent %d recv %d lost %d, want %d %d 0", m.SentMsgs, m.RecvMsgs, m.LostMsgs, count, count)
	}
	if m.JitterKernelMsgs == nil || *m.JitterKernelMsgs != count {
		t.Errorf("jitter_kernel_msgs %v, want %d", m.JitterKernelMsgs, count)
	}
	want := 10000 * (1 - math.Pow(15.0/16, count-1))
	// The stamps' conversion to the run clock reads two clocks: allow it 300 ns.
	if m.JitterNs == nil || math.Abs(*m.JitterNs-want) > 300 {
		t.Fatalf("jitter %v ns, want %.1f ± 300", m.JitterNs, want)
	}
}

// TestStreamJitterClock: a UDP stream's jitter uses the kernel's stamps for every
// message; TCP's, and UDP's without timestamps, use none and are flagged. Accounting
// stays exact either way.
func TestStreamJitterClock(t *testing.T) {
	const count = 2000
	for _, tc := range []struct {
		name       string
		nw         transport.Network
		kernel     bool // every message kernel-stamped
		warnsAbout string
	}{
		{"udp", mustNetwork(t, "udp", transport.NetOptions{}), true, ""},
		{"udp without timestamps", transport.NewUDPNetwork(udp.Options{NoTimestamps: true}), false, "udp"},
		{"tcp", mustNetwork(t, "tcp", transport.NetOptions{NoDelay: true}), false, "tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEnv(t)
			e.drain = patience // TCP delivers all 2000: a complete flow ends the drain
			m, _, err := runStream(context.Background(), e, tc.nw, report.Params{Size: 1024, Streams: 1, Count: count, RateBps: 200e6})
			if err != nil {
				t.Fatal(err)
			}
			if m.SentMsgs != m.RecvMsgs-m.DupMsgs+m.LostMsgs || (tc.nw.Name() == "tcp" && m.RecvMsgs != count) {
				t.Fatalf("sent %d != recv %d − dup %d + lost %d", m.SentMsgs, m.RecvMsgs, m.DupMsgs, m.LostMsgs)
			}
			if m.JitterNs == nil || m.JitterKernelMsgs == nil {
				t.Fatalf("jitter %v, jitter_kernel_msgs %v: want both", m.JitterNs, m.JitterKernelMsgs)
			}
			want := uint64(0)
			if tc.kernel {
				want = m.RecvMsgs
			}
			if *m.JitterKernelMsgs != want {
				t.Errorf("jitter_kernel_msgs %d of %d received, want %d", *m.JitterKernelMsgs, m.RecvMsgs, want)
			}
			w := jitterClockWarnings([]report.Result{{Experiment: report.ExpStream, Transport: tc.nw.Name(), Metrics: m}})
			switch {
			case tc.warnsAbout == "" && len(w) > 0:
				t.Errorf("warnings %q, want none: every arrival was kernel-stamped", w)
			case tc.warnsAbout != "" && (len(w) != 1 || !strings.Contains(w[0], "over "+tc.warnsAbout) || !strings.Contains(w[0], "user space")):
				t.Errorf("warnings %q, want one saying %s's arrival times are user-space", w, tc.warnsAbout)
			}
		})
	}
}

func TestJitterClockWarnings(t *testing.T) {
	j, all, some := 5.0, uint64(100), uint64(40)
	res := func(tr string, kernel *uint64) report.Result {
		return report.Result{Experiment: report.ExpStream, Transport: tr, Params: report.Params{Size: 64}, Metrics: report.Metrics{RecvMsgs: 100, JitterNs: &j, JitterKernelMsgs: kernel}}
	}
	for _, tc := range []struct {
		name string
		rs   []report.Result
		want string // "" = no warning
	}{
		{"udp kernel", []report.Result{res("udp", &all)}, ""},
		{"tcp user", []report.Result{res("tcp", new(uint64)), res("udp", &all)}, "jitter of stream over tcp: arrival times are read in user space"},
		{"udp partly", []report.Result{res("udp", &some)}, "over udp (size 64: 60 of 100 messages)"},
		{"no record", []report.Result{res("udp", nil)}, "over udp:"},
		{"not stream", []report.Result{{Experiment: report.ExpPingPong, Transport: "tcp"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := jitterClockWarnings(tc.rs)
			if tc.want == "" {
				if len(w) != 0 {
					t.Fatalf("warnings %q, want none", w)
				}
				return
			}
			if len(w) != 1 || !strings.Contains(w[0], tc.want) {
				t.Fatalf("warnings %q, want one containing %q", w, tc.want)
			}
		})
	}
}

// TestBusyPollExperiments: pingpong and stream run with spinning receivers on both
// transports, with exact accounting, and the report records the mode and what the
// kernel granted.
func TestBusyPollExperiments(t *testing.T) {
	o := transport.NetOptions{NoDelay: true, BusyPoll: true}
	for _, name := range []string{"tcp", "udp"} {
		t.Run("pingpong/"+name, func(t *testing.T) {
			e := testEnv(t)
			e.timeout = 5 * time.Second // two spinners on a busy 2-core host may stall a round trip past 100 ms
			m, _, err := runPingPong(context.Background(), e, mustNetwork(t, name, o), report.Params{Size: 64, Count: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if m.SentMsgs != 1000 || m.RecvMsgs+m.Timeouts != 1000 || m.LostMsgs != m.Timeouts || (name == "tcp" && m.RecvMsgs != 1000) {
				t.Errorf("sent %d recv %d timeouts %d lost %d: want 1000 = recv + timeouts (tcp: all received)", m.SentMsgs, m.RecvMsgs, m.Timeouts, m.LostMsgs)
			}
			if m.RTT == nil || m.RTT.Samples != m.RecvMsgs || m.CPUSec <= 0 {
				t.Errorf("rtt %+v, cpu %v s: want one sample per reply and the CPU measured", m.RTT, m.CPUSec)
			}
		})
		t.Run("stream/"+name, func(t *testing.T) {
			e := testEnv(t)
			e.drain = patience // TCP delivers all 2000: a complete flow ends the drain
			m, _, err := runStream(context.Background(), e, mustNetwork(t, name, o), report.Params{Size: 1024, Streams: 1, Count: 2000, RateBps: 200e6})
			if err != nil {
				t.Fatal(err)
			}
			if m.SentMsgs != 2000 || m.SentMsgs != m.RecvMsgs-m.DupMsgs+m.LostMsgs || (name == "tcp" && m.RecvMsgs != 2000) {
				t.Errorf("sent %d recv %d dup %d lost %d: want 2000 = recv − dup + lost", m.SentMsgs, m.RecvMsgs, m.DupMsgs, m.LostMsgs)
			}
		})
	}
	t.Run("report", func(t *testing.T) {
		p := Plan{Experiments: []string{report.ExpPingPong}, Sizes: []int{64}, Count: 200, Warmup: NoWarmup, Net: o}
		rep, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Config.BusyPoll {
			t.Error("config.busy_poll false")
		}
		for _, tr := range []string{"tcp", "udp"} {
			sk := rep.Env.Sockets[tr]
			if !sk.BusyPoll {
				t.Errorf("env.sockets.%s.busy_poll false", tr)
			}
			if os.Geteuid() == 0 && sk.BusyPollUs != 50 {
				t.Errorf("env.sockets.%s.so_busy_poll_us %d as root, want 50", tr, sk.BusyPollUs)
			}
		}
		if !rep.Env.Sockets["udp"].RxTimestamps || rep.Env.Sockets["tcp"].RxTimestamps {
			t.Errorf("rx_timestamps udp %v, tcp %v; want true, false", rep.Env.Sockets["udp"].RxTimestamps, rep.Env.Sockets["tcp"].RxTimestamps)
		}
		for _, r := range rep.Results {
			if r.Error != "" {
				t.Errorf("%s %s: %s", r.Experiment, r.Transport, r.Error)
			}
		}
		var text strings.Builder
		if err := render.Text(&text, rep, render.Verbose(true)); err != nil {
			t.Fatal(err)
		}
		out := wrapped.ReplaceAllString(text.String(), " ") // wrapped lines joined
		for _, want := range []string{"busy-poll receivers", "CPU tcp", "CPU udp", " cores", "Receivers busy-poll"} {
			if !strings.Contains(out, want) {
				t.Errorf("text report lacks %q:\n%s", want, text.String())
			}
		}
	})
}
