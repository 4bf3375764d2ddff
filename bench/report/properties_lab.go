package report

import (
	"fmt"

	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// The property rows of the lab experiments that measure more than counts: bottleneck
// (congestion control) and hol (head-of-line blocking). Each row appears only when
// both transports have the experiment's figures.

// congestionText tells what one transport did in bottleneck.
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

func PropCongestion(r *Report) (Property, bool) {
	t, u, ok := both(r, ExpBottleneck)
	if !ok {
		return Property{}, false
	}
	if _, ok := ObsNum(t, ObsSharedShareOfLink); !ok {
		return Property{}, false // skipped: no rate-limited link
	}
	if _, ok := ObsNum(u, ObsSharedShareOfLink); !ok {
		return Property{}, false
	}
	ev := map[string]any{"experiment": ExpBottleneck}
	keys := []ObsKey{ObsLinkRateBps, ObsAloneGoodputBps, ObsAloneShareOfLink, ObsAloneSentMsgs, ObsAloneLostMsgs, ObsAloneRetransmits, ObsSharedGoodputBps, ObsSharedShareOfLink, ObsCompetitorGoodputBps, ObsJainFairness}
	pick3(ev, "tcp", t, keys...)
	pick3(ev, "udp", u, keys...)
	return Property{
		ID:       "congestion",
		Property: "congestion control",
		Claim:    "TCP backs off to share a congested link; UDP does not, and takes what TCP gives up",
		TCP:      congestionText(t),
		UDP:      congestionText(u),
		Evidence: ev,
	}, true
}

// holText tells what one transport's messages met in hol.
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

func PropHOL(r *Report) (Property, bool) {
	t, u, ok := both(r, ExpHOL)
	if !ok {
		return Property{}, false
	}
	ev := map[string]any{"experiment": ExpHOL, "link": r.Env.Link.Kind}
	keys := []ObsKey{ObsMessageBytes, ObsRateBps, ObsLatencyP50Ns, ObsLatencyP99Ns, ObsLatencyP999Ns, ObsLatencyMaxNs, ObsLateFractionOver2xP50, ObsDeliveredFraction}
	pick3(ev, "tcp", t, keys...)
	pick3(ev, "udp", u, keys...)
	return Property{
		ID:       "head-of-line",
		Property: "head-of-line blocking",
		Claim:    "TCP's in-order delivery holds every message behind a lost one; UDP delivers each datagram as it comes (or never)",
		TCP:      holText(t),
		UDP:      holText(u),
		Evidence: ev,
	}, true
}
