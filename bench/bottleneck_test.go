package bench

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestBottleneckSkip: without a rate-limited link the cell says what it needs and
// measures nothing, without failing.
func TestBottleneckSkip(t *testing.T) {
	p := report.Params{Size: propertySize, Streams: 1, DurationS: 0.2}
	for _, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) {
			o, err := runBottleneck(context.Background(), testEnv(t), mustNetwork(t, tr, transport.NetOptions{}), p)
			if err != nil {
				t.Fatal(err)
			}
			if len(o.warns) != 1 || o.warns[0] != bottleneckSkip || o.observed["skipped"] != bottleneckSkip {
				t.Errorf("warnings %q observed %v: want the skip reason in both", o.warns, o.observed)
			}
			if o.m.SentMsgs != 0 || len(o.observed) != 1 {
				t.Errorf("metrics %+v observed %v: want no figures", o.m, o.observed)
			}
		})
	}
}

func TestJain(t *testing.T) {
	tests := []struct {
		name   string
		x1, x2 float64
		want   float64
		ok     bool
	}{
		{"even", 10, 10, 1, true},
		{"one has all", 10, 0, 0.5, true},
		{"two to one", 2, 1, 0.9, true},
		{"nothing", 0, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := jain(tc.x1, tc.x2)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("jain(%v, %v) = %v, %v; want %v, %v", tc.x1, tc.x2, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestBottleneckLab is the known answer across a 20 Mbit/s link with a 50-packet
// queue: alone, TCP fills most of the link and loses nothing, while UDP, offered at
// twice the link rate, also fills it but loses about half of what it sends; beside an
// unresponsive UDP flow at the link rate TCP backs off to a minority share, and the
// split is unfair. The link is emulated in this process, so a busy host slows it:
// "most of the link" is a majority (about 90% on an idle host and under a busy
// loop), and "about half" lost is a quarter to three quarters.
func TestBottleneckLab(t *testing.T) {
	p := Plan{Experiments: []string{report.ExpBottleneck}, Duration: 2 * time.Second, Seed: 7,
		Net: transport.NetOptions{NoDelay: true}}
	rep := runLab(t, "rate=20M,queue=50", p)
	got := map[string]map[string]any{}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Fatalf("%s: %s", r.Transport, r.Error)
		}
		t.Logf("%s: observed %v; warnings %q", r.Transport, r.Observed, r.Warnings)
		got[r.Transport] = r.Observed
	}
	num := func(tr, k string) float64 {
		t.Helper()
		v, ok := report.NumAt(got[tr], k)
		if !ok {
			t.Fatalf("%s: no %s in %v", tr, k, got[tr])
		}
		return v
	}
	if s, l := num("tcp", "alone_share_of_link"), num("tcp", "alone_lost_msgs"); s < 0.5 || l != 0 {
		t.Errorf("tcp alone: share %.3f lost %.0f, want most of the link (>= 0.5) and nothing lost", s, l)
	}
	if s := num("udp", "alone_share_of_link"); s < 0.5 {
		t.Errorf("udp alone: share %.3f, want most of the link (>= 0.5)", s)
	}
	if f := num("udp", "alone_lost_msgs") / num("udp", "alone_sent_msgs"); f < 0.25 || f > 0.75 {
		t.Errorf("udp alone: lost %.3f of what it sent, want about half (0.25..0.75)", f)
	}
	if s, j := num("tcp", "shared_share_of_link"), num("tcp", "jain_fairness"); s >= 0.5 || j >= 0.9 {
		t.Errorf("tcp beside udp: share %.3f jain %.3f, want share < 0.5 and jain < 0.9", s, j)
	}
	if c, s := num("tcp", "competitor_share_of_link"), num("tcp", "shared_share_of_link"); c <= s {
		t.Errorf("tcp beside udp: competitor's share %.3f, tcp's %.3f: want the competitor to take more", c, s)
	}
	checkRow(t, rep, "congestion", "tcp_jain_fairness", "udp_alone_share_of_link")
	// Each cell carries its three flows' goodput over time, every bottleneckStep: the
	// messages a flow's points add up to are those it delivered (sent - lost): the
	// last point is where the drain ended.
	for _, r := range rep.Results {
		var flows []string
		for _, tl := range r.Timelines {
			flows = append(flows, tl.Flow+"/"+tl.Transport)
		}
		if want := []string{"alone/" + r.Transport, "shared/" + r.Transport, "competitor/udp"}; !slices.Equal(flows, want) {
			t.Errorf("%s: time lines %v, want %v", r.Transport, flows, want)
			continue
		}
		for _, tl := range r.Timelines {
			// The phase lasts 2 s, then drains: 20 points and a few.
			if n := len(tl.Points); n < 15 || n > bottleneckPoints {
				t.Errorf("%s %s: %d points, want 15..%d", r.Transport, tl.Flow, n, bottleneckPoints)
				continue
			}
			var bits, prev float64
			for _, pt := range tl.Points {
				bits += pt.GoodputBps * (pt.TS - prev)
				prev = pt.TS
			}
			got := bits / float64(8*r.Params.Size)
			want := num(r.Transport, tl.Flow+"_sent_msgs") - num(r.Transport, tl.Flow+"_lost_msgs")
			if math.Abs(got-want) > 1+want/1000 { // each point's goodput is rounded to a whole bit/s
				t.Errorf("%s %s: the time line delivers %.0f messages, the cell %.0f (sent - lost)", r.Transport, tl.Flow, got, want)
			}
		}
	}
}

// TestGoodputTimeline: cumulative delivered counts become goodput per interval, an
// interval of no time is skipped, a count that goes back gives 0, and the time line
// stops at bottleneckPoints.
func TestGoodputTimeline(t *testing.T) {
	s := []report.Sample{{TS: 0}, {TS: 0.1, RecvMsgs: 100}, {TS: 0.1, RecvMsgs: 100}, {TS: 0.2, RecvMsgs: 350}, {TS: 0.3, RecvMsgs: 300}}
	tl := goodputTimeline(report.FlowAlone, "tcp", 1000, s)
	want := []report.RatePoint{{TS: 0.1, GoodputBps: 8e6}, {TS: 0.2, GoodputBps: 20e6}, {TS: 0.3, GoodputBps: 0}}
	if tl.Flow != report.FlowAlone || tl.Transport != "tcp" || tl.StepS != 0.1 || !slices.Equal(tl.Points, want) {
		t.Errorf("got %+v, want alone tcp every 0.1 s %v", tl, want)
	}
	// A first sample taken late (a busy host: 5 ms after the first arrival, 3
	// delivered by then): the first interval starts at 0, and the points still
	// account for all 50 messages.
	late := goodputTimeline(report.FlowShared, "tcp", 1000, []report.Sample{{TS: 0.005, RecvMsgs: 3}, {TS: 0.105, RecvMsgs: 50}})
	if want := []report.RatePoint{{TS: 0.005, GoodputBps: 4.8e6}, {TS: 0.105, GoodputBps: 3.76e6}}; !slices.Equal(late.Points, want) {
		t.Errorf("late first sample: %v, want %v", late.Points, want)
	}
	long := make([]report.Sample, 2*bottleneckPoints)
	for i := range long {
		long[i] = report.Sample{TS: float64(i) / 10, RecvMsgs: uint64(i)}
	}
	if n := len(goodputTimeline(report.FlowShared, "udp", 100, long).Points); n != bottleneckPoints {
		t.Errorf("%d samples: %d points, want at most %d", len(long), n, bottleneckPoints)
	}
	if n := len(goodputTimeline(report.FlowShared, "udp", 100, nil).Points); n != 0 {
		t.Errorf("no samples: %d points", n)
	}
}

// TestPropCongestion: the congestion row reads the bottleneck observations of both
// transports, and is absent when either was skipped.
func TestPropCongestion(t *testing.T) {
	obs := func(alone, shared, jainIdx float64, lost, sent uint64) map[string]any {
		return map[string]any{"link_rate_bps": 20e6, "alone_share_of_link": alone, "alone_lost_msgs": lost, "alone_sent_msgs": sent,
			"shared_share_of_link": shared, "jain_fairness": jainIdx, "competitor_goodput_bps": 19e6}
	}
	tcp := obs(0.96, 0.05, 0.55, 0, 5000)
	tcp["alone_retransmits"] = uint64(3)
	rep := &report.Report{Results: []report.Result{
		{Experiment: report.ExpBottleneck, Transport: "tcp", Observed: tcp},
		{Experiment: report.ExpBottleneck, Transport: "udp", Observed: obs(0.97, 0.55, 0.99, 4962, 9766)},
	}}
	p, ok := derivedRow(rep, "congestion")
	if !ok {
		t.Fatal("no congestion row")
	}
	wantTCP := "alone at 2x the 20.0 Mbit/s link: 96.0% of the link, 0 of 5,000 messages lost (3 retransmits); beside a UDP flow at the link rate: 5.00% of the link, Jain index 0.55"
	wantUDP := "alone at 2x the 20.0 Mbit/s link: 97.0% of the link, 4,962 of 9,766 messages lost; beside a UDP flow at the link rate: 55.0% of the link, Jain index 0.99"
	if p.ID != "congestion" || p.TCP != wantTCP || p.UDP != wantUDP {
		t.Errorf("got id %q\ntcp %q\nudp %q\nwant tcp %q\nudp %q", p.ID, p.TCP, p.UDP, wantTCP, wantUDP)
	}
	if p.Evidence["tcp_jain_fairness"] != 0.55 || p.Evidence["udp_alone_lost_msgs"] != uint64(4962) || p.Evidence["tcp_alone_retransmits"] != uint64(3) {
		t.Errorf("evidence %v", p.Evidence)
	}
	rep.Results[1].Observed = map[string]any{"skipped": bottleneckSkip}
	if p, ok := derivedRow(rep, "congestion"); ok {
		t.Errorf("row %+v from a skipped cell", p)
	}
}
