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
	link, _ := ObsNum(o, "link_rate_bps")
	alone, _ := ObsNum(o, "alone_share_of_link")
	lost, _ := ObsNum(o, "alone_lost_msgs")
	sent, _ := ObsNum(o, "alone_sent_msgs")
	shared, _ := ObsNum(o, "shared_share_of_link")
	t := fmt.Sprintf("alone at 2x the %s link: %s of the link, %s of %s messages lost",
		units.Bps(link), units.Pct(alone), g(uint64(lost)), g(uint64(sent)))
	if r, ok := ObsNum(o, "alone_retransmits"); ok {
		t += fmt.Sprintf(" (%s retransmits)", g(uint64(r)))
	}
	t += fmt.Sprintf("; beside a UDP flow at the link rate: %s of the link", units.Pct(shared))
	if j, ok := ObsNum(o, "jain_fairness"); ok {
		t += fmt.Sprintf(", Jain index %.2f", j)
	}
	return t
}

func PropCongestion(r *Report) (Property, bool) {
	t, u, ok := both(r, ExpBottleneck)
	if !ok {
		return Property{}, false
	}
	if _, ok := ObsNum(t, "shared_share_of_link"); !ok {
		return Property{}, false // skipped: no rate-limited link
	}
	if _, ok := ObsNum(u, "shared_share_of_link"); !ok {
		return Property{}, false
	}
	ev := map[string]any{"experiment": ExpBottleneck}
	keys := []string{"link_rate_bps", "alone_goodput_bps", "alone_share_of_link", "alone_sent_msgs", "alone_lost_msgs", "alone_retransmits",
		"shared_goodput_bps", "shared_share_of_link", "competitor_goodput_bps", "jain_fairness"}
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
	p50, ok50 := ObsNum(o, "latency_p50_ns")
	p99, ok99 := ObsNum(o, "latency_p99_ns")
	mx, okMax := ObsNum(o, "latency_max_ns")
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
	if late, ok := ObsNum(o, "late_fraction_over_2x_p50"); ok {
		t += fmt.Sprintf("; %s later than twice the median", units.Pct(late))
	}
	if f, ok := ObsNum(o, "delivered_fraction"); ok {
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
	keys := []string{"message_bytes", "rate_bps", "latency_p50_ns", "latency_p99_ns", "latency_p999_ns", "latency_max_ns",
		"late_fraction_over_2x_p50", "delivered_fraction"}
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
