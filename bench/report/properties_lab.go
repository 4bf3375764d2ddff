package report

import (
	"fmt"

	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// The property rows of the lab's claims that take more than counts: congestion
// control and head-of-line blocking. Each row appears only when both transports
// have the figures of the experiment that lists it.

// congestionText tells what one transport did on the rate-limited link.
func congestionText(o map[string]any) string {
	link, _ := ObsNum(o, ObsLinkRateBps)
	alone, _ := ObsNum(o, ObsAloneShareOfLink)
	lost, _ := ObsNum(o, ObsAloneLostMsgs)
	sent, _ := ObsNum(o, ObsAloneSentMsgs)
	shared, _ := ObsNum(o, ObsSharedShareOfLink)
	t := fmt.Sprintf("alone at 2x the %s link: %s of the link, %s of %s messages lost",
		units.Bps(link), units.Pct(alone), g(uint64(lost)), g(uint64(sent)))
	if r, ok := ObsNum(o, ObsAloneRetransmits); ok {
		t += fmt.Sprintf(" (%s retransmits)", g(uint64(r)))
	}
	t += fmt.Sprintf("; beside a UDP flow at the link rate: %s of the link", units.Pct(shared))
	if j, ok := ObsNum(o, ObsJainFairness); ok {
		t += fmt.Sprintf(", Jain index %.2f", j)
	}
	return t
}

// RuleCongestion is the congestion-control row: each transport's share of a
// rate-limited link, alone and beside a UDP flow at the link's rate.
var RuleCongestion = Rule{ID: "congestion", Derive: propCongestion}

func propCongestion(in Input) (Property, bool) {
	t, u, ok := in.both()
	if !ok {
		return Property{}, false
	}
	if _, ok := ObsNum(t, ObsSharedShareOfLink); !ok {
		return Property{}, false // skipped: no rate-limited link
	}
	if _, ok := ObsNum(u, ObsSharedShareOfLink); !ok {
		return Property{}, false
	}
	ev := map[string]any{"experiment": in.Experiment}
	keys := []ObsKey{ObsLinkRateBps, ObsAloneGoodputBps, ObsAloneShareOfLink, ObsAloneSentMsgs, ObsAloneLostMsgs, ObsAloneRetransmits, ObsSharedGoodputBps, ObsSharedShareOfLink, ObsCompetitorGoodputBps, ObsJainFairness}
	pick3(ev, "tcp", t, keys...)
	pick3(ev, "udp", u, keys...)
	return Property{
		Property: "congestion control",
		Claim:    "TCP backs off to share a congested link; UDP does not, and takes what TCP gives up",
		TCP:      congestionText(t),
		UDP:      congestionText(u),
		Evidence: ev,
	}, true
}

// holText tells what one transport's messages met on the lossy link.
func holText(o map[string]any) string {
	var t string
	p50, ok50 := ObsNum(o, ObsLatencyP50Ns)
	p99, ok99 := ObsNum(o, ObsLatencyP99Ns)
	mx, okMax := ObsNum(o, ObsLatencyMaxNs)
	switch {
	case ok50 && ok99:
		t = fmt.Sprintf("one-way latency p50 %s, p99 %s, max %s", nsText(int64(p50)), nsText(int64(p99)), nsText(int64(mx)))
	case ok50:
		t = fmt.Sprintf("one-way latency p50 %s, max %s (too few messages for a p99)", nsText(int64(p50)), nsText(int64(mx)))
	case okMax:
		t = fmt.Sprintf("one-way latency max %s (too few messages for percentiles)", nsText(int64(mx)))
	default:
		t = "no message delivered"
	}
	if late, ok := ObsNum(o, ObsLateFractionOver2xP50); ok {
		t += fmt.Sprintf("; %s later than twice the median", units.Pct(late))
	}
	if f, ok := ObsNum(o, ObsDeliveredFraction); ok {
		t += fmt.Sprintf("; delivered %s", units.Pct(f))
	}
	return t
}

// RuleHOL is the head-of-line-blocking row: the latency each transport's messages
// met on a lossy link, and how many came late or never.
var RuleHOL = Rule{ID: "head-of-line", Derive: propHOL}

func propHOL(in Input) (Property, bool) {
	t, u, ok := in.both()
	if !ok {
		return Property{}, false
	}
	ev := map[string]any{"experiment": in.Experiment, "link": in.Env.Link.Kind}
	keys := []ObsKey{ObsMessageBytes, ObsRateBps, ObsLatencyP50Ns, ObsLatencyP99Ns, ObsLatencyP999Ns, ObsLatencyMaxNs, ObsLateFractionOver2xP50, ObsDeliveredFraction}
	pick3(ev, "tcp", t, keys...)
	pick3(ev, "udp", u, keys...)
	return Property{
		Property: "head-of-line blocking",
		Claim:    "TCP's in-order delivery holds every message behind a lost one; UDP delivers each datagram as it comes (or never)",
		TCP:      holText(t),
		UDP:      holText(u),
		Evidence: ev,
	}, true
}
