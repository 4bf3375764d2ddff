package bench

import (
	"fmt"
	"slices"
)

// Properties turns the measured results into the properties table: each row a
// textbook claim, what TCP and what UDP did, and the figures behind it. A row
// appears only when the run measured what it needs.
func Properties(r *Report) []Property {
	var ps []Property
	for _, f := range []func(*Report) (Property, bool){propReliability, propFlowControl, propOrdering, propSetup, propSockets, propRTT, propCost} {
		if p, ok := f(r); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// pick returns the successful results of one experiment and transport.
func pick(r *Report, exp, transport string) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Experiment == exp && res.Transport == transport && res.Error == "" {
			out = append(out, res)
		}
	}
	return out
}

func sumStream(rs []Result) (sent, lost, sock, sender, reord, dups uint64, sockKnown bool) {
	for _, r := range rs {
		m := r.Metrics
		sent += m.SentMsgs
		lost += m.LostMsgs
		sender += m.DropsSender
		reord += m.ReorderedMsgs
		dups += m.DupMsgs
		if m.DropsSocket != nil {
			sock += *m.DropsSocket
			sockKnown = true
		}
	}
	return
}

func pctOf(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

func propReliability(r *Report) (Property, bool) {
	tcp, udp := pick(r, ExpStream, "tcp"), pick(r, ExpStream, "udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	ts, tl, _, _, _, _, _ := sumStream(tcp)
	us, ul, usock, usend, _, _, known := sumStream(udp)
	udpText := fmt.Sprintf("lost %s of %s messages (%.2f%%)", g(ul), g(us), pctOf(ul, us))
	if known && ul > 0 {
		udpText += fmt.Sprintf(": %s overflowed the receive buffer, %s refused at the sender", g(usock), g(usend))
	}
	return Property{
		Property: "reliable delivery",
		Claim:    "TCP delivers every message; UDP delivers what survives, and says nothing of the rest",
		TCP:      fmt.Sprintf("lost %s of %s messages (%.2f%%)", g(tl), g(ts), pctOf(tl, ts)),
		UDP:      udpText,
		Evidence: map[string]any{"experiment": ExpStream, "tcp_sent_msgs": ts, "tcp_lost_msgs": tl,
			"udp_sent_msgs": us, "udp_lost_msgs": ul, "udp_drops_socket": usock, "udp_drops_sender": usend},
	}, true
}

// flowRatio is sender rate ÷ receiver goodput over the unpaced stream cells.
func flowRatio(rs []Result) (send, good float64, ok bool) {
	for _, r := range rs {
		if r.Params.RateBps != 0 {
			continue
		}
		send += r.Metrics.SendRateBps
		good += r.Metrics.GoodputBps
		ok = true
	}
	return send, good, ok && good > 0
}

func propFlowControl(r *Report) (Property, bool) {
	ts, tg, ok1 := flowRatio(pick(r, ExpStream, "tcp"))
	us, ug, ok2 := flowRatio(pick(r, ExpStream, "udp"))
	if !ok1 || !ok2 {
		return Property{}, false
	}
	return Property{
		Property: "flow control",
		Claim:    "a TCP sender is held to the pace its receiver reads at; a UDP sender is not, and the excess is dropped",
		TCP:      fmt.Sprintf("sender ran at %.2fx the receiver's goodput", ts/tg),
		UDP:      fmt.Sprintf("sender ran at %.2fx the receiver's goodput", us/ug),
		Evidence: map[string]any{"experiment": ExpStream + " (unpaced)", "tcp_send_over_goodput": round3(ts / tg), "udp_send_over_goodput": round3(us / ug)},
	}, true
}

func propOrdering(r *Report) (Property, bool) {
	tcp, udp := pick(r, ExpStream, "tcp"), pick(r, ExpStream, "udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	_, _, _, _, tr, td, _ := sumStream(tcp)
	_, _, _, _, ur, ud, _ := sumStream(udp)
	return Property{
		Property: "ordering and duplicates",
		Claim:    "TCP delivers in order and once; UDP may reorder and duplicate (loopback rarely does: the lab shows it)",
		TCP:      fmt.Sprintf("%d reordered, %d duplicated", tr, td),
		UDP:      fmt.Sprintf("%d reordered, %d duplicated", ur, ud),
		Evidence: map[string]any{"experiment": ExpStream, "link": r.Env.Link.Kind, "tcp_reordered_msgs": tr, "tcp_dup_msgs": td, "udp_reordered_msgs": ur, "udp_dup_msgs": ud},
	}, true
}

func p50(rs []Result) (int64, bool) {
	for _, r := range rs {
		if r.Metrics.RTT != nil && r.Metrics.RTT.P50 != nil {
			return *r.Metrics.RTT.P50, true
		}
	}
	return 0, false
}

func propSetup(r *Report) (Property, bool) {
	tcp, udp := pick(r, ExpConnect, "tcp"), pick(r, ExpConnect, "udp")
	t, ok1 := p50(tcp)
	u, ok2 := p50(udp)
	if !ok1 || !ok2 {
		return Property{}, false
	}
	return Property{
		Property: "connection setup",
		Claim:    "TCP needs a three-way handshake before the first byte; UDP's first datagram is the request",
		TCP:      fmt.Sprintf("first answer in %s (p50), %s transactions/s", nsText(t), g(uint64(tcp[0].Metrics.TransPerS+0.5))),
		UDP:      fmt.Sprintf("first answer in %s (p50), %s transactions/s", nsText(u), g(uint64(udp[0].Metrics.TransPerS+0.5))),
		Evidence: map[string]any{"experiment": ExpConnect, "tcp_p50_ns": t, "udp_p50_ns": u, "tcp_over_udp": round3(float64(t) / float64(max(u, 1)))},
	}, true
}

func propSockets(r *Report) (Property, bool) {
	tcp, udp := pick(r, ExpConnect, "tcp"), pick(r, ExpConnect, "udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	tm, um := tcp[0].Metrics, udp[0].Metrics
	return Property{
		Property: "one socket per client",
		Claim:    "a TCP server accepts a socket for every client; one UDP socket serves them all",
		TCP:      fmt.Sprintf("%s server sockets for %s clients", g(uint64(tm.ServerSockets)), g(tm.SentMsgs)),
		UDP:      fmt.Sprintf("%s server socket for %s clients", g(uint64(um.ServerSockets)), g(um.SentMsgs)),
		Evidence: map[string]any{"experiment": ExpConnect, "tcp_server_sockets": tm.ServerSockets, "tcp_clients": tm.SentMsgs, "udp_server_sockets": um.ServerSockets, "udp_clients": um.SentMsgs},
	}, true
}

func propRTT(r *Report) (Property, bool) {
	tcp, udp := pick(r, ExpPingPong, "tcp"), pick(r, ExpPingPong, "udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	slices.SortFunc(tcp, func(a, b Result) int { return a.Params.Size - b.Params.Size })
	slices.SortFunc(udp, func(a, b Result) int { return a.Params.Size - b.Params.Size })
	t, ok1 := p50(tcp[:1])
	u, ok2 := p50(udp[:1])
	if !ok1 || !ok2 {
		return Property{}, false
	}
	return Property{
		Property: "round-trip time",
		Claim:    "once connected, a small request costs about the same round trip over either: the kernel path, not the protocol, dominates on one host",
		TCP:      fmt.Sprintf("RTT %s (p50, %d-byte messages)", nsText(t), tcp[0].Params.Size),
		UDP:      fmt.Sprintf("RTT %s (p50, %d-byte messages)", nsText(u), udp[0].Params.Size),
		Evidence: map[string]any{"experiment": ExpPingPong, "size": tcp[0].Params.Size, "tcp_rtt_p50_ns": t, "udp_rtt_p50_ns": u},
	}, true
}

func propCost(r *Report) (Property, bool) {
	tcp, udp := pick(r, ExpStream, "tcp"), pick(r, ExpStream, "udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	largest := func(rs []Result) Result {
		return slices.MaxFunc(rs, func(a, b Result) int { return a.Params.Size - b.Params.Size })
	}
	t, u := largest(tcp), largest(udp)
	if t.Metrics.CPUSecPerGB == nil || u.Metrics.CPUSecPerGB == nil {
		return Property{}, false
	}
	return Property{
		Property: "cost per byte",
		Claim:    "the CPU each moved gigabyte costs, both ends together (stream, largest size)",
		TCP:      fmt.Sprintf("%.2f CPU s/GB at %d-byte messages", *t.Metrics.CPUSecPerGB, t.Params.Size),
		UDP:      fmt.Sprintf("%.2f CPU s/GB at %d-byte messages", *u.Metrics.CPUSecPerGB, u.Params.Size),
		Evidence: map[string]any{"experiment": ExpStream, "size": t.Params.Size, "tcp_cpu_s_per_gb": round3(*t.Metrics.CPUSecPerGB), "udp_cpu_s_per_gb": round3(*u.Metrics.CPUSecPerGB)},
	}, true
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// nsText prints a duration given in ns for a property's sentence.
func nsText(ns int64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", float64(ns)/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", float64(ns)/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f us", float64(ns)/1e3)
	}
	return fmt.Sprintf("%d ns", ns)
}

// g prints a count with thousands grouping, as the tables do.
func g(n uint64) string { return group(int64(n)) }
