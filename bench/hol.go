package bench

import (
	"context"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

func init() {
	registerExperiment(experimentSpec{name: report.ExpHOL,
		section: report.Section{Title: "Head-of-line blocking (hol)", Layout: report.LayoutTable,
			Charts: []report.Chart{{Kind: report.ChartLabLatencyCDF, File: "hol_latency_cdf.svg", Title: "One-way latency distribution",
				Heading: "One-way latency distribution", Field: report.ObsLatency.Key(), XLabel: "one-way latency (ms)",
				YLabel: "fraction of delivered messages slower"}}},
		help:  "200-byte messages at 500/s across a lossy link: one-way delivery latency; TCP's tail grows (head-of-line blocking), UDP's does not",
		place: 80, run: runHOL, size: holSize, labOnly: true, labSection: 2,
		expect:     func(p Plan) time.Duration { return p.warmup() + phaseTime(p, holMax) + typicalDrain },
		notRemote:  "hol does not run against a remote server yet (it runs on one host)",
		properties: []report.Rule{report.RuleHOL}})
}

// Head-of-line blocking's workload: small messages at a modest fixed rate, so the
// link is never the bottleneck and every delay is the transport's or the link's.
const (
	holSize = 200             // bytes per message, header included
	holRate = 800e3           // bits/s when p.RateBps is 0: 500 messages/s
	holMax  = 3 * time.Second // bounds the sending phase, whatever --duration says
)

// runHOL shows the price of reliability: one flow of holSize-byte messages at
// p.RateBps (holRate when unset) for min(p.DurationS, 3 s) (3 s in count mode: --count
// does not apply). The receiver records each new message's one-way latency, its
// arrival time minus the send time in its header: both ends run in one process and
// read one monotonic clock (the run's epoch), across the emulated link too, so no
// clock offset enters. Arrival is read in user space after each receive call.
//
// Across a lossy link a transport that delivers in order holds every message behind
// a lost one until the loss is repaired, at least a round trip later: its median
// stays at the link's delay while its tail grows to the repair time
// (late_fraction_over_2x_p50 counts those victims). A transport that delivers each
// datagram as it comes keeps every delivered message's latency and loses the rest
// (delivered_fraction < 1). On loopback nothing is lost and both are flat.
func runHOL(ctx context.Context, e *runEnv, nw transport.Network, p report.Params) (outcome, error) {
	d := holMax.Seconds()
	if p.DurationS > 0 {
		d = min(p.DurationS, d)
	}
	p.Count, p.DurationS, p.Streams, p.Size = 0, d, 1, holSize
	if p.RateBps <= 0 {
		p.RateBps = holRate
	}
	lat := metrics.NewLatency()
	so := streamOpts{
		warmup: e.warmup,
		drain:  e.drain + 5*time.Second, // a complete flow ends it at once; a lossy one on a quiet spell
		oneWay: lat,
	}
	o, err := streamCell(ctx, e, nw, p, so)
	if err != nil {
		return o, err
	}
	m := o.m
	obs := o.observed
	report.Set(obs, report.ObsMessageBytes, p.Size)
	report.Set(obs, report.ObsRateBps, p.RateBps)
	report.Set(obs, report.ObsSentMsgs, m.SentMsgs)
	report.Set(obs, report.ObsDeliveredMsgs, lat.Count())
	if m.SentMsgs > 0 {
		report.Set(obs, report.ObsDeliveredFraction, round6(float64(lat.Count())/float64(m.SentMsgs)))
	}
	if st := lat.Stats(); st != nil {
		report.Set(obs, report.ObsLatency, st)
		report.Set(obs, report.ObsLatencyMinNs, st.Min)
		report.Set(obs, report.ObsLatencyMaxNs, st.Max)
		for k, v := range map[report.Obs[int64]]*int64{report.ObsLatencyP50Ns: st.P50, report.ObsLatencyP90Ns: st.P90, report.ObsLatencyP99Ns: st.P99, report.ObsLatencyP999Ns: st.P999} {
			if v != nil {
				report.Set(obs, k, *v)
			}
		}
		if st.P50 != nil {
			report.Set(obs, report.ObsLateFractionOver2xP50, round6(float64(lat.CountAbove(2**st.P50))/float64(lat.Count())))
		}
		if below, above := lat.Clamped(); below+above > 0 {
			o.warns = append(o.warns, "one-way latency: some values fell outside 1 ns..60 s and were clamped")
		}
	}
	o.observed = obs
	return o, nil
}

// round6 rounds a fraction to 6 decimal places.
func round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }
