package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpBottleneck,
		section: report.Section{Title: "A congested link (bottleneck)", Layout: report.LayoutTable,
			Charts: []report.Chart{{Kind: report.ChartGoodputOverTime, File: "bottleneck_goodput.svg", Title: "Bottleneck: goodput over time",
				Heading: "Bottleneck: goodput over time"}}},
		help:  "a rate-limited link: each transport alone at 2x the link rate, then beside an unresponsive UDP flow: TCP backs off, UDP does not",
		place: 70, run: runBottleneck, labOnly: true, labSection: 3,
		expect:     func(p Plan) time.Duration { return 2 * (phaseTime(p, bottleneckMax) + competitorExtra + typicalDrain) },
		notRemote:  "bottleneck does not run against a remote server yet (it runs on one host)",
		properties: []report.Rule{report.RuleCongestion}})
}

// bottleneckMax bounds each phase of bottleneck, whatever --duration says.
const bottleneckMax = 3 * time.Second

// competitorExtra is how much longer than the flow the competitor sends: the flow
// dials a round trip later, and a starved flow's last Send returns late.
const competitorExtra = 100 * time.Millisecond

// bottleneckStep is how often each flow's goodput is sampled (Result.Timelines), and
// bottleneckPoints the most points a flow's time line keeps: a phase of at most
// bottleneckMax plus its drain fits in 150.
const (
	bottleneckStep   = 100 * time.Millisecond
	bottleneckPoints = 300
)

// bottleneckSkip is the warning of a bottleneck cell that cannot run.
const bottleneckSkip = "bottleneck needs an emulated link with a rate: --impair rate=50M (or --link wan)"

// competitorTransport is the transport of bottleneck's competing flow: it stands for
// any flow without congestion control. It is fixed by design, whatever runs beside it.
const competitorTransport = "udp"

// runBottleneck shows congestion control across the emulated link's rate limit, in two
// phases of min(p.DurationS, 3 s) each (3 s in count mode: --count does not apply).
//
// Alone: the transport sends p.Size-byte messages paced at twice the link rate. A
// congestion-controlled transport never reaches that pace: its window holds it near
// the link rate and the link's queue drops little, which it resends. One without
// congestion control sends at twice the link rate, and the link's tail drop loses
// the excess, about half.
//
// Shared: the same flow again, beside a UDP flow at the link rate (constant bit rate,
// no congestion control) through the same link. A congestion-controlled flow reads the
// competitor's drops as congestion and backs off; the competitor does not, and takes
// what it gives up. Jain's fairness index over the two goodputs, (x1+x2)²/(2(x1²+x2²)),
// is 1 for an even split and 0.5 when one flow has everything.
//
// Both flows are stream cells: the same pacing, receiver accounting and drain as
// stream. Metrics are the alone phase's. Without a rate-limited link (loopback, or a
// lab link without a rate) the cell says so and measures nothing.
func runBottleneck(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	if e.lab == nil || e.linkRate <= 0 {
		return outcome{warns: []string{bottleneckSkip}, observed: map[string]any{report.ObsSkipped.Key(): bottleneckSkip}}, nil
	}
	d := bottleneckMax.Seconds()
	if p.DurationS > 0 {
		d = min(p.DurationS, d)
	}
	p.Count, p.DurationS, p.Streams = 0, d, 1
	p.RateBps = 2 * e.linkRate
	so := streamOpts{
		warmup:     e.warmup,
		drain:      e.drain + 5*time.Second, // a complete flow ends it at once; a lossy one on a quiet spell
		seriesStep: bottleneckStep,          // sampled by a ticker from the receivers' counters: nothing per message
	}

	alone, err := streamCell(ctx, e, nw, p, so)
	if err != nil {
		return outcome{}, fmt.Errorf("alone: %w", err)
	}
	obs := map[string]any{
		report.ObsLinkRateBps.Key():      e.linkRate,
		report.ObsOfferedRateBps.Key():   p.RateBps,
		report.ObsCompetitor.Key():       competitorTransport,
		report.ObsAloneGoodputBps.Key():  alone.m.GoodputBps,
		report.ObsAloneSendBps.Key():     alone.m.SendRateBps,
		report.ObsAloneShareOfLink.Key(): report.Round3(alone.m.GoodputBps / e.linkRate),
		report.ObsAloneSentMsgs.Key():    alone.m.SentMsgs,
		report.ObsAloneLostMsgs.Key():    alone.m.LostMsgs,
	}
	if r := alone.m.Retransmits; r != nil {
		report.Set(obs, report.ObsAloneRetransmits, *r)
	}
	warns := prefixed("alone: ", alone.warns)

	cross, err := crossNetwork(e)
	if err != nil {
		return outcome{}, err
	}
	// The competitor starts with the flow and outlasts it a little, so the flow's
	// measured phase is shared throughout. Neither warms up: a starved flow's warm-up
	// would block in Send until the competitor ends, and then run alone.
	cp := p
	cp.RateBps = e.linkRate
	cp.DurationS = d + competitorExtra.Seconds()
	ce := competitorEnv(e)
	fo := so
	fo.warmup = 0
	var shared, comp outcome
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		shared, err = streamCell(gctx, e, nw, p, fo)
		if err != nil {
			return fmt.Errorf("shared: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		comp, err = streamCell(gctx, ce, cross, cp, fo)
		if err != nil {
			return fmt.Errorf("competitor (%s at %s): %w", cross.Name(), units.Bps(cp.RateBps), err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return outcome{}, err
	}
	warns = append(warns, prefixed("shared: ", shared.warns)...)
	warns = append(warns, prefixed("competitor: ", comp.warns)...)
	x1, x2 := shared.m.GoodputBps, comp.m.GoodputBps
	report.Set(obs, report.ObsSharedGoodputBps, x1)
	report.Set(obs, report.ObsSharedShareOfLink, report.Round3(x1/e.linkRate))
	report.Set(obs, report.ObsSharedSentMsgs, shared.m.SentMsgs)
	report.Set(obs, report.ObsSharedLostMsgs, shared.m.LostMsgs)
	if r := shared.m.Retransmits; r != nil {
		report.Set(obs, report.ObsSharedRetransmits, *r)
	}
	report.Set(obs, report.ObsCompetitorGoodputBps, x2)
	report.Set(obs, report.ObsCompetitorShareOfLink, report.Round3(x2/e.linkRate))
	report.Set(obs, report.ObsCompetitorSentMsgs, comp.m.SentMsgs)
	report.Set(obs, report.ObsCompetitorLostMsgs, comp.m.LostMsgs)
	if j, ok := jain(x1, x2); ok {
		report.Set(obs, report.ObsJainFairness, report.Round3(j))
	}
	lines := []report.Timeline{
		goodputTimeline(report.FlowAlone, nw.Name(), p.Size, alone.series),
		goodputTimeline(report.FlowShared, nw.Name(), p.Size, shared.series),
		goodputTimeline(report.FlowCompetitor, cross.Name(), cp.Size, comp.series),
	}
	return outcome{m: alone.m, warns: warns, observed: obs, lines: lines}, nil
}

// goodputTimeline turns a flow's time line of cumulative counts, sampled every
// bottleneckStep from its first data arrival, into its receiver's goodput interval by
// interval: the size-byte messages delivered in each, in bits, over its length. The
// first interval starts at 0, with nothing delivered, so that the points account for
// every message the last sample counts, though the first sample may come late on a
// busy host; a sample no later than the interval's start adds its count to the next.
// It keeps at most bottleneckPoints points.
func goodputTimeline(flow, transport string, size int, s []report.Sample) report.Timeline {
	tl := report.Timeline{Flow: flow, Transport: transport, StepS: bottleneckStep.Seconds()}
	var last report.Sample // where the interval starts: the first arrival, nothing delivered
	for _, cur := range s {
		if len(tl.Points) >= bottleneckPoints {
			break
		}
		dt := cur.TS - last.TS
		if dt <= 0 {
			continue
		}
		var n uint64
		if cur.RecvMsgs > last.RecvMsgs {
			n = cur.RecvMsgs - last.RecvMsgs
		}
		bps := float64(n) * float64(size) * 8 / dt
		tl.Points = append(tl.Points, report.RatePoint{TS: cur.TS, GoodputBps: math.Round(bps)})
		last = cur
	}
	return tl
}

// jain is Jain's fairness index over two rates: (x1+x2)²/(2(x1²+x2²)), from 0.5 (one
// has everything) to 1 (an even split); ok is false when both are zero.
func jain(x1, x2 float64) (float64, bool) {
	den := 2 * (x1*x1 + x2*x2)
	if den == 0 {
		return 0, false
	}
	return (x1 + x2) * (x1 + x2) / den, true
}

// crossNetwork is the competing flow's network: UDP across the same emulated link.
func crossNetwork(e *runEnv) (transport.Network, error) {
	nw, err := transport.NetworkByName(competitorTransport, transport.NetOptions{})
	if err != nil {
		return nil, err
	}
	return labNetwork{Network: nw, lab: e.lab}, nil
}

// competitorEnv is e for the competing flow: its own run id, so neither receiver
// counts the other's messages, and an ephemeral port beside the flow's server.
func competitorEnv(e *runEnv) *runEnv {
	ce := *e
	ce.run = e.run ^ 2 // still odd, never zero
	if host, _, err := net.SplitHostPort(e.address); err == nil {
		ce.address = net.JoinHostPort(host, "0")
	}
	return &ce
}

// prefixed returns ws, each with prefix.
func prefixed(prefix string, ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = prefix + w
	}
	return out
}
