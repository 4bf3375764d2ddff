package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// A Rule derives one row of the properties table, one textbook claim's, from the
// results of the experiment whose registry entry lists it: the rule knows what the
// claim reads and says, the registry which experiment's results those are, so
// nothing here picks results by an experiment's name.
type Rule struct {
	// ID is the claim's id, the row's Property.ID. Rules with one ID are
	// alternatives (two experiments that can show the claim): the table keeps the
	// row of the first that yields one.
	ID string
	// Derive builds the row from in, or reports (false) that in does not show the
	// claim: the experiment did not run, failed, or measured too little.
	Derive func(in Input) (Property, bool)
	// place is the row's place in the table, lowest first, which also decides
	// which of a claim's rules is tried first (order). It is 0 for a rule that is
	// not a built-in one (an experiment's own, made outside this package): its row
	// follows every built-in one, in the order the experiments list their rules.
	place int
}

// An Input is what a Rule reads: one experiment's results, and where and how the
// run measured them.
type Input struct {
	// Experiment is the experiment's name, as its results spell it: the row's
	// evidence quotes it.
	Experiment string
	// Results are the experiment's results in the report's order, failed and
	// skipped cells among them.
	Results []Result
	Env     Env    // the run's environment: the link's kind, the sockets' offloads
	Config  Config // the run's flags: whether receivers verified payloads
}

// An ExperimentRules is one experiment as the properties table knows it: its name
// and the rules its registry entry lists.
type ExperimentRules struct {
	Experiment string
	Rules      []Rule
}

// order is the properties table's order, by claim; a claim's alternatives are in
// the order they are tried (a property experiment's observations before what a
// measurement shows of the same claim). The lab's ordering row sits with the lab's
// rows and, when the link reordered, stands for the loopback's.
var order = []*Rule{&RuleSetup, &RuleRefused, &RuleClose, &RuleSockets, &RuleSocketCount, &RuleBoundaries,
	&RuleFlowControl, &RuleFlowRatio, &RuleFanout, &RuleRetransmission, &RuleLabOrdering, &RuleDuplicates, &RuleChecksum,
	&RuleCongestion, &RuleHOL, &RuleReliability, &RuleOrdering, &RuleRTT, &RuleThroughput, &RuleCost}

func init() {
	for i, r := range order {
		r.place = i + 1
	}
}

// Derive turns r's results into the properties table, each experiment's results
// read by the rules it lists (exps, in the registry's order): each row a textbook
// claim, what TCP and what UDP did, and the figures behind it. A row appears only
// when the run measured what it needs, once per claim, in the table's order.
func Derive(r *Report, exps []ExperimentRules) []Property {
	type listed struct {
		exp  string
		rule Rule
	}
	var rules []listed
	for _, x := range exps {
		for _, rule := range x.Rules {
			rules = append(rules, listed{x.Experiment, rule})
		}
	}
	last := func(place int) int {
		if place == 0 {
			return math.MaxInt // not a built-in rule: after them, in the listed order
		}
		return place
	}
	slices.SortStableFunc(rules, func(a, b listed) int { return cmp.Compare(last(a.rule.place), last(b.rule.place)) })
	var ps []Property
	for _, x := range rules {
		if slices.ContainsFunc(ps, func(p Property) bool { return p.ID == x.rule.ID }) {
			continue // an alternative before it showed the claim
		}
		in := Input{Experiment: x.exp, Env: r.Env, Config: r.Config}
		for _, res := range r.Results {
			if res.Experiment == x.exp {
				in.Results = append(in.Results, res)
			}
		}
		p, ok := x.rule.Derive(in)
		if !ok {
			continue
		}
		p.ID = x.rule.ID
		if p.ByTransport == nil {
			p.ByTransport = map[string]string{}
		}
		p.ByTransport["tcp"], p.ByTransport["udp"] = p.TCP, p.UDP
		ps = append(ps, p)
	}
	return ps
}

// otherTransports lists, sorted, the transports other than tcp and udp with a
// successful result in in: the rows that are one text function over each
// transport's results give them their own cell in Property.ByTransport.
func (in Input) otherTransports() []string {
	var out []string
	for _, res := range in.Results {
		if res.Transport != "tcp" && res.Transport != "udp" && res.Error == "" && !Skipped(res) &&
			!slices.Contains(out, res.Transport) {
			out = append(out, res.Transport)
		}
	}
	slices.Sort(out)
	return out
}

// pick returns the successful results of one transport, in the run's socket flags
// (UDP streams in textbook I/O are left out: see pickIO).
func (in Input) pick(transport string) []Result { return in.pickIO(transport, "") }

// pickIO returns the successful results of one transport in one I/O mode
// (Params.IO).
func (in Input) pickIO(transport, io string) []Result {
	var out []Result
	for _, res := range in.Results {
		if res.Transport == transport && res.Params.IO == io && res.Error == "" && !Skipped(res) {
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

// RuleReliability is the reliable-delivery row: the messages each transport lost
// over a measurement's streams, and where UDP's went.
var RuleReliability = Rule{ID: "reliability", Derive: propReliability}

func propReliability(in Input) (Property, bool) {
	tcp, udp := in.pick("tcp"), in.pick("udp")
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
		Evidence: map[string]any{"experiment": in.Experiment, "tcp_sent_msgs": ts, "tcp_lost_msgs": tl,
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

// RuleFlowRatio is the flow-control row as a measurement's unpaced streams show it:
// how far each sender ran ahead of its receiver's goodput. A property experiment's
// observations (RuleFlowControl) show it better and are tried first.
var RuleFlowRatio = Rule{ID: "flow-control", Derive: propFlowRatio}

func propFlowRatio(in Input) (Property, bool) {
	ts, tg, ok1 := flowRatio(in.pick("tcp"))
	us, ug, ok2 := flowRatio(in.pick("udp"))
	if !ok1 || !ok2 {
		return Property{}, false
	}
	return Property{
		Property: "flow control",
		Claim:    "a TCP sender is held to the pace its receiver reads at; a UDP sender is not, and the excess is dropped",
		TCP:      fmt.Sprintf("sender ran at %.2fx the receiver's goodput", ts/tg),
		UDP:      fmt.Sprintf("sender ran at %.2fx the receiver's goodput", us/ug),
		Evidence: map[string]any{"experiment": in.Experiment + " (unpaced)", "tcp_send_over_goodput": Round3(ts / tg), "udp_send_over_goodput": Round3(us / ug)},
	}, true
}

// RuleOrdering is the ordering row as the streams saw it on their own link: what
// each transport delivered out of order or twice. When the link reordered
// (RuleLabOrdering) the lab's row says it instead.
var RuleOrdering = Rule{ID: "ordering", Derive: propOrdering}

func propOrdering(in Input) (Property, bool) {
	if _, ok := labStream(in, func(l LinkFigures) uint64 { return l.Reordered }); ok {
		return Property{}, false // the lab's row says it with injected reordering
	}
	tcp, udp := in.pick("tcp"), in.pick("udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	_, _, _, _, tr, td, _ := sumStream(tcp)
	_, _, _, _, ur, ud, _ := sumStream(udp)
	claim := "TCP delivers in order and once; UDP may reorder and duplicate (loopback rarely does: the lab shows it)"
	if in.Env.Link.Kind == "lab" {
		claim = "TCP delivers in order and once; UDP delivers what the link does (this link neither reorders nor duplicates)"
	}
	return Property{
		Property: "ordering and duplicates",
		Claim:    claim,
		TCP:      fmt.Sprintf("%d reordered, %d duplicated", tr, td),
		UDP:      fmt.Sprintf("%d reordered, %d duplicated", ur, ud),
		Evidence: map[string]any{"experiment": in.Experiment, "link": in.Env.Link.Kind, "tcp_reordered_msgs": tr, "tcp_dup_msgs": td, "udp_reordered_msgs": ur, "udp_dup_msgs": ud},
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

// RuleSetup is the connection-setup row: how long a fresh client waited for its
// first answer over each transport, and the transactions per second that allows.
var RuleSetup = Rule{ID: "connection-setup", Derive: propSetup}

func propSetup(in Input) (Property, bool) {
	tcp, udp := in.pick("tcp"), in.pick("udp")
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
		Evidence: map[string]any{"experiment": in.Experiment, "tcp_p50_ns": t, "udp_p50_ns": u, "tcp_over_udp": Round3(float64(t) / float64(max(u, 1)))},
	}, true
}

func clientsText(o map[string]any) string {
	n, _ := ObsNum(o, ObsClients)
	sk, _ := ObsNum(o, ObsServerSockets)
	fds, _ := ObsNum(o, ObsServerFDs)
	t := fmt.Sprintf("%.0f clients: %s, %s", n, countNoun(sk, "server socket"), countNoun(fds, "new server file descriptor"))
	if slab, ok := ObsNum(o, ObsKernelSocketSlabBytesPerClient); ok && slab > 0 {
		whose := "both ends"
		if _, far := o[ObsFootprintOf.Key()]; far {
			whose = "the server's kernel" // across hosts (footprint_of says what a shared kernel adds)
		}
		t += fmt.Sprintf(", %.0f B of kernel socket objects per client (%s)", slab, whose)
	}
	if rps, ok := ObsNum(o, ObsRequestsPerS); ok {
		t += fmt.Sprintf("; %s requests/s", g(uint64(rps+0.5)))
	}
	return t
}

// RuleSockets is the one-socket-per-client row from a property experiment's
// observations: the server's sockets, file descriptors and kernel memory for its
// clients. It is tried before RuleSocketCount.
var RuleSockets = obsRule("per-client-socket", "one socket per client",
	"a TCP server accepts a socket (and a file descriptor) for every client; one UDP socket serves them all",
	[]ObsKey{ObsClients, ObsServerSockets, ObsServerFDs, ObsKernelSocketSlabBytesPerClient, ObsHeapBytesPerClient, ObsRequestsPerS},
	clientsText)

// RuleSocketCount is the one-socket-per-client row from a measurement's metrics:
// the server sockets it opened for its clients (Metrics.ServerSockets), for a run
// whose observations (RuleSockets) do not show it.
var RuleSocketCount = Rule{ID: "per-client-socket", Derive: propSocketCount}

func propSocketCount(in Input) (Property, bool) {
	tcp, udp := in.pick("tcp"), in.pick("udp")
	if len(tcp) == 0 || len(udp) == 0 {
		return Property{}, false
	}
	tm, um := tcp[0].Metrics, udp[0].Metrics
	return Property{
		Property: "one socket per client",
		Claim:    "a TCP server accepts a socket for every client; one UDP socket serves them all",
		TCP:      fmt.Sprintf("%s for %s clients", countNoun(float64(tm.ServerSockets), "server socket"), g(tm.SentMsgs)),
		UDP:      fmt.Sprintf("%s for %s clients", countNoun(float64(um.ServerSockets), "server socket"), g(um.SentMsgs)),
		Evidence: map[string]any{"experiment": in.Experiment, "tcp_server_sockets": tm.ServerSockets, "tcp_clients": tm.SentMsgs, "udp_server_sockets": um.ServerSockets, "udp_clients": um.SentMsgs},
	}, true
}

// RuleRTT is the round-trip-time row: each transport's median round trip at the
// smallest message size measured, with a cell for every other transport.
var RuleRTT = Rule{ID: "rtt", Derive: propRTT}

func propRTT(in Input) (Property, bool) {
	tcp, udp := in.pick("tcp"), in.pick("udp")
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
	by := map[string]string{}
	for _, tr := range in.otherTransports() {
		rs := in.pick(tr)
		slices.SortFunc(rs, func(a, b Result) int { return a.Params.Size - b.Params.Size })
		if x, ok := p50(rs[:1]); ok {
			by[tr] = fmt.Sprintf("RTT %s (p50, %d-byte messages)", nsText(x), rs[0].Params.Size)
		}
	}
	return Property{
		ByTransport: by,
		Property:    "round-trip time",
		Claim:       "once connected, a small request costs about the same round trip over either: the kernel path, not the protocol, dominates on one host",
		TCP:         fmt.Sprintf("RTT %s (p50, %d-byte messages)", nsText(t), tcp[0].Params.Size),
		UDP:         fmt.Sprintf("RTT %s (p50, %d-byte messages)", nsText(u), udp[0].Params.Size),
		Evidence:    map[string]any{"experiment": in.Experiment, "size": tcp[0].Params.Size, "tcp_rtt_p50_ns": t, "udp_rtt_p50_ns": u},
	}, true
}

// streamLargest returns the stream results the throughput and cost rows compare: TCP
// and batched UDP at the largest size both ran, and textbook UDP at that size when it
// ran (ok3).
func streamLargest(in Input) (t, u, tb Result, ok, ok3 bool) {
	tcp, udp := in.pick("tcp"), in.pick("udp")
	size := 0
	for _, x := range tcp {
		if slices.ContainsFunc(udp, func(y Result) bool { return y.Params.Size == x.Params.Size }) {
			size = max(size, x.Params.Size)
		}
	}
	if size == 0 {
		return t, u, tb, false, false
	}
	at := func(rs []Result) (Result, bool) {
		i := slices.IndexFunc(rs, func(x Result) bool { return x.Params.Size == size })
		if i < 0 {
			return Result{}, false
		}
		return rs[i], true
	}
	t, _ = at(tcp)
	u, _ = at(udp)
	tb, ok3 = at(in.pickIO("udp", IOTextbook))
	return t, u, tb, true, ok3
}

// udpBatchedLabel names how batched UDP moved datagrams in this run, from what the
// kernel granted this host's sockets: "batched, GSO/GRO", or with what is missing.
func udpBatchedLabel(env Env) string {
	s, ok := env.Sockets["udp"]
	switch {
	case !ok:
		return "batched"
	case s.GSO && s.GRO:
		return "batched, GSO/GRO"
	case s.GSO:
		return "batched, GSO"
	case s.GRO:
		return "batched, GRO"
	}
	return "batched, no offloads"
}

// textbookLabel is how the rows name UDP's textbook I/O mode.
const textbookLabel = "textbook: one datagram per call"

// offloadsClaim is what the throughput and cost rows say about the offloads.
const offloadsClaim = "; TCP's kernel offloads (segmentation, receive coalescing) are on by default, UDP's must be asked for, so UDP is shown with them and as the textbook sends it"

// RuleThroughput is the throughput row: what one unpaced stream of each transport
// delivered at the largest message size both ran, UDP batched and textbook.
var RuleThroughput = Rule{ID: "throughput", Derive: propThroughput}

func propThroughput(in Input) (Property, bool) {
	t, u, tb, ok, ok3 := streamLargest(in)
	if !ok || t.Metrics.GoodputBps <= 0 || u.Metrics.GoodputBps <= 0 {
		return Property{}, false
	}
	ev := map[string]any{"experiment": in.Experiment, "size": t.Params.Size,
		"tcp_goodput_bps": Round3(t.Metrics.GoodputBps), "udp_goodput_bps": Round3(u.Metrics.GoodputBps)}
	udp := fmt.Sprintf("%s goodput (%s)", units.Bps(u.Metrics.GoodputBps), udpBatchedLabel(in.Env))
	if ok3 && tb.Metrics.GoodputBps > 0 {
		udp += fmt.Sprintf("; %s (%s)", units.Bps(tb.Metrics.GoodputBps), textbookLabel)
		ev["udp_textbook_goodput_bps"] = Round3(tb.Metrics.GoodputBps)
	}
	return Property{
		Property: "throughput",
		Claim:    "what one unpaced stream delivers on this path (stream, largest size)" + offloadsClaim,
		TCP:      fmt.Sprintf("%s goodput at %d-byte messages", units.Bps(t.Metrics.GoodputBps), t.Params.Size),
		UDP:      udp + fmt.Sprintf(" at %d-byte messages", u.Params.Size),
		Evidence: ev,
	}, true
}

// RuleCost is the cost-per-byte row: the CPU each transport spent per gigabyte at
// the largest message size both ran, UDP batched and textbook.
var RuleCost = Rule{ID: "cost", Derive: propCost}

func propCost(in Input) (Property, bool) {
	t, u, tb, ok, ok3 := streamLargest(in)
	if !ok {
		return Property{}, false
	}
	tc, tok := BothEndsPerGB(t.Metrics)
	uc, uok := BothEndsPerGB(u.Metrics)
	if !tok || !uok {
		return Property{}, false
	}
	where := "both ends together"
	if t.Metrics.ServerCPUSec != nil {
		where = "both hosts together (this host's process and the server's)"
	}
	ev := map[string]any{"experiment": in.Experiment, "size": t.Params.Size, "tcp_cpu_s_per_gb": Round3(tc), "udp_cpu_s_per_gb": Round3(uc)}
	udp := fmt.Sprintf("%.2f CPU s/GB (%s)", uc, udpBatchedLabel(in.Env))
	if bc, bok := BothEndsPerGB(tb.Metrics); ok3 && bok {
		udp += fmt.Sprintf("; %.2f CPU s/GB (%s)", bc, textbookLabel)
		ev["udp_textbook_cpu_s_per_gb"] = Round3(bc)
	}
	return Property{
		Property: "cost per byte",
		Claim:    "the CPU each moved gigabyte costs, " + where + " (stream, largest size)" + offloadsClaim,
		TCP:      fmt.Sprintf("%.2f CPU s/GB at %d-byte messages", tc, t.Params.Size),
		UDP:      udp + fmt.Sprintf(" at %d-byte messages", u.Params.Size),
		Evidence: ev,
	}, true
}

// bothEndsPerGB is the CPU seconds per gigabyte of both ends of a stream cell: on one
// host its CPUSecPerGB (one process runs both), across hosts that scaled by the
// server's CPU added to this host's.
func BothEndsPerGB(m Metrics) (float64, bool) {
	switch {
	case m.CPUSecPerGB == nil:
		return 0, false
	case m.ServerCPUSec == nil:
		return *m.CPUSecPerGB, true
	case m.CPUSec <= 0:
		return 0, false
	}
	return *m.CPUSecPerGB * (m.CPUSec + *m.ServerCPUSec) / m.CPUSec, true
}

func Round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

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
func g(n uint64) string { return units.Group(int64(n)) }

// observed returns the observations of the first successful result over transport,
// or nil.
func (in Input) observed(transport string) map[string]any {
	for _, res := range in.pick(transport) {
		if res.Observed != nil {
			return res.Observed
		}
	}
	return nil
}

// both returns the observations of tcp and udp; ok only when both exist.
func (in Input) both() (tcp, udp map[string]any, ok bool) {
	tcp, udp = in.observed("tcp"), in.observed("udp")
	return tcp, udp, tcp != nil && udp != nil
}

// ObsNum reads numeric observation k as a float64, whatever its Go or JSON-decoded type.
func ObsNum[T any](o map[string]any, k Obs[T]) (float64, bool) { return NumAt(o, k.Key()) }

// NumAt reads the number under key in o (observations or evidence) as a float64,
// whatever its Go or JSON-decoded type: for keys made at run time (a direction's
// prefix) and tests; properties name their observations (ObsNum).
func NumAt(o map[string]any, key string) (float64, bool) { return asFloat(o[key]) }

func obsStr(o map[string]any, k Obs[string]) string {
	s, _ := Get(o, k)
	return s
}

func obsFlag(o map[string]any, k Obs[bool]) bool {
	b, _ := Get(o, k)
	return b
}

// obsRule is the rule of a row built from a property experiment's observations: the
// same text function over each transport's, and the named keys as evidence. It
// yields no row unless both transports have observations.
func obsRule(id, name, claim string, keys []ObsKey, text func(map[string]any) string) Rule {
	return Rule{ID: id, Derive: func(in Input) (Property, bool) {
		t, u, ok := in.both()
		if !ok {
			return Property{}, false
		}
		ev := map[string]any{"experiment": in.Experiment}
		pick3(ev, "tcp", t, keys...)
		pick3(ev, "udp", u, keys...)
		by := map[string]string{}
		for _, tr := range in.otherTransports() {
			if o := in.observed(tr); o != nil {
				by[tr] = text(o)
			}
		}
		return Property{Property: name, Claim: claim, TCP: text(t), UDP: text(u), ByTransport: by, Evidence: ev}, true
	}}
}

// pick3 copies the named observations of one transport into evidence, prefixed.
func pick3(ev map[string]any, prefix string, o map[string]any, keys ...ObsKey) {
	for _, k := range keys {
		if v, ok := o[k.Key()]; ok {
			ev[prefix+"_"+k.Key()] = v
		}
	}
}

// refusedText tells what one transport's refused observation shows.
func refusedText(o map[string]any) string {
	d, _ := ObsNum(o, ObsDetectNs)
	switch obsStr(o, ObsRefusedAt) {
	case "dial":
		return fmt.Sprintf("connect failed after %s: %s", nsText(int64(d)), obsStr(o, ObsDialError))
	case "after send":
		t := fmt.Sprintf("connect and first send succeeded; ECONNREFUSED (from ICMP) came %s after the send", nsText(int64(d)))
		if _, ok := o[ObsUnconnectedTold.Key()]; ok && !obsFlag(o, ObsUnconnectedTold) {
			t += "; an unconnected socket was told nothing"
		}
		return t
	}
	w, _ := ObsNum(o, ObsWaitedNs)
	return fmt.Sprintf("nothing reported in %s", nsText(int64(w)))
}

// RuleRefused is the row of connecting to nobody: when and how each transport
// learned that nobody listened, if it did.
var RuleRefused = obsRule("refused", "connecting to nobody",
	"TCP finds out while connecting that nobody listens; UDP sends into the void and learns only from ICMP, if at all",
	[]ObsKey{ObsRefused, ObsRefusedAt, ObsDetectNs, ObsUnconnectedTold}, refusedText)

func closeText(o map[string]any) string {
	var peer string
	if obsFlag(o, ObsPeerCloseSeen) {
		d, _ := ObsNum(o, ObsPeerCloseDetectNs)
		peer = fmt.Sprintf("peer close: %s after %s", obsStr(o, ObsPeerCloseResult), nsText(int64(d)))
	} else {
		peer = "peer close: " + obsStr(o, ObsPeerCloseResult)
	}
	existing := "the connected client got no answer"
	if obsFlag(o, ObsListenerClosedExistingAnswered) {
		existing = "the connected client was still answered"
	}
	return fmt.Sprintf("%s; listener closed: %s, a new client: %s", peer, existing, obsStr(o, ObsListenerClosedNewClient))
}

// RuleClose is the closing row: what a reader learned of its peer's close, and what
// clients met once the server's listener closed.
var RuleClose = obsRule("close", "closing",
	"a TCP peer's close reaches the reader as end of stream; a UDP reader learns nothing and waits out its own timeout",
	[]ObsKey{ObsPeerCloseSeen, ObsPeerCloseDetectNs, ObsPeerCloseWaitedNs, ObsListenerClosedExistingAnswered, ObsListenerClosedNewRefused},
	closeText)

func slowText(o map[string]any, m Metrics) string {
	reader, _ := ObsNum(o, ObsReaderRateBps)
	steady, _ := ObsNum(o, ObsSendRateSteadyBps)
	t := fmt.Sprintf("reader at %s: sender settled at %s", units.Bps(reader), units.Bps(steady))
	if d, ok := ObsNum(o, ObsRwndLimitedNs); ok && d > 0 {
		t += fmt.Sprintf(", held by the receive window for %s", nsText(int64(d)))
	}
	t += fmt.Sprintf("; %s of %s messages missing", g(m.LostMsgs), g(m.SentMsgs))
	if m.LostMsgs > 0 && obsFlag(o, ObsDropsAccountForMissing) {
		t += ", every one a counted receive-buffer drop"
	}
	return t
}

// RuleFlowControl is the flow-control row from a property experiment's
// observations: a sender against a reader held to a set pace, what pace the sender
// settled at and what went missing. It is tried before RuleFlowRatio.
var RuleFlowControl = Rule{ID: "flow-control", Derive: propFlowControl}

func propFlowControl(in Input) (Property, bool) {
	tr, ur := in.pick("tcp"), in.pick("udp")
	if len(tr) == 0 || len(ur) == 0 || tr[0].Observed == nil || ur[0].Observed == nil {
		return Property{}, false
	}
	t, u := tr[0].Observed, ur[0].Observed
	ev := map[string]any{"experiment": in.Experiment}
	keys := []ObsKey{ObsReaderRateBps, ObsSendRateSteadyBps, ObsRwndLimitedNs, ObsMissingMsgs, ObsDropsSocket, ObsDropsAccountForMissing}
	pick3(ev, "tcp", t, keys...)
	pick3(ev, "udp", u, keys...)
	return Property{
		Property: "flow control",
		Claim:    "a TCP sender is held to the pace its receiver reads at; a UDP sender is not, and the excess is dropped",
		TCP:      slowText(t, tr[0].Metrics),
		UDP:      slowText(u, ur[0].Metrics),
		Evidence: ev,
	}, true
}

func boundariesText(o map[string]any) string {
	writes, _ := ObsNum(o, ObsWrites)
	size, _ := ObsNum(o, ObsWriteBytes)
	reads, _ := ObsNum(o, ObsReads)
	var t string
	if obsFlag(o, ObsReadsEqualToWrites) {
		t = fmt.Sprintf("%.0f writes of %.0f B came back as %.0f reads, each exactly one write", writes, size, reads)
	} else {
		co, _ := ObsNum(o, ObsCoalescedReads)
		sp, _ := ObsNum(o, ObsSplitReads)
		lr, _ := ObsNum(o, ObsLargestRead)
		t = fmt.Sprintf("%.0f writes of %.0f B came back as %.0f reads (largest %.0f B): %.0f coalesced writes, %.0f cut one", writes, size, reads, lr, co, sp)
	}
	if obsFlag(o, ObsMaxPlusOneEMSGSIZE) {
		mx, _ := ObsNum(o, ObsMaxMessageBytes)
		t += fmt.Sprintf("; largest message %.0f B, one byte more refused (EMSGSIZE)", mx)
	} else if obsFlag(o, ObsOneMiBSendOk) {
		t += "; a 1 MiB message goes through"
		if n, ok := ObsNum(o, ObsOneMiBReads); ok && n > 0 {
			t += fmt.Sprintf(" (raw, it took %.0f reads)", n)
		}
	}
	return t
}

// RuleBoundaries is the message-boundaries row: how each transport's reads matched
// its writes, and the largest message it carries.
var RuleBoundaries = obsRule("boundaries", "message boundaries",
	"TCP is a byte stream: reads coalesce and split writes, and framing is the application's job; each UDP datagram arrives whole, up to 65507 bytes",
	[]ObsKey{ObsWrites, ObsReads, ObsReadsEqualToWrites, ObsCoalescedReads, ObsSplitReads, ObsMaxMessageBytes, ObsMaxPlusOneEMSGSIZE, ObsOneMiBReads},
	boundariesText)

func fanoutText(o map[string]any) string {
	if m := obsStr(o, ObsMulticast); strings.HasPrefix(m, "unavailable") {
		return "multicast " + m
	}
	n, _ := ObsNum(o, ObsReceivers)
	copies, _ := ObsNum(o, ObsCopiesPerMessage)
	socks, _ := ObsNum(o, ObsSenderSockets)
	calls, _ := ObsNum(o, ObsSendCalls)
	lo, _ := ObsNum(o, ObsDeliveredMin)
	hi, _ := ObsNum(o, ObsDeliveredMax)
	ratio, _ := ObsNum(o, ObsSenderBytesPerDeliveredByte)
	copyText := fmt.Sprintf("%.0f copies", copies)
	if copies == 1 {
		copyText = "1 copy"
	}
	return fmt.Sprintf("%.0f receivers: %s, %s of each message, %s send calls; each receiver got %.0f..%.0f messages; sender bytes per delivered byte %.3g",
		n, countNoun(socks, "sender socket"), copyText, g(uint64(calls)), lo, hi, ratio)
}

// RuleFanout is the one-to-many row: what it took each transport to reach every
// receiver, in sockets, copies and send calls.
var RuleFanout = obsRule("fanout", "one to many",
	"TCP is one-to-one: N receivers need N connections and N copies; one UDP multicast send reaches them all",
	[]ObsKey{ObsReceivers, ObsCopiesPerMessage, ObsSenderSockets, ObsSendCalls, ObsDeliveredMin, ObsDeliveredMax, ObsSenderBytesPerDeliveredByte, ObsMulticast},
	fanoutText)

// countNoun prints a count and a noun, with an s when the count is not 1.
func countNoun(n float64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return g(uint64(n+0.5)) + " " + noun + "s"
}

// labTotals sums, over the lab's stream results of one transport, what the link did
// (Injected.Figures: client to server; data messages for datagrams, packets for TCP)
// and what the transport measured.
type labTotals struct {
	sent, recv, lost, dups, reord, corrupt, retrans uint64
	retransKnown                                    bool
	unverified                                      bool // --verify header: corrupt counts headers only
	link                                            LinkFigures
}

// labStream returns the lab stream totals per transport when the link injected what
// count reads (for either transport); ok is false otherwise.
func labStream(in Input, count func(LinkFigures) uint64) (map[string]*labTotals, bool) {
	out := map[string]*labTotals{}
	injectedAny := false
	for _, res := range in.Results {
		if res.Injected == nil || res.Error != "" {
			continue
		}
		t := out[res.Transport]
		if t == nil {
			t = &labTotals{unverified: !in.Config.PayloadsVerified()}
			out[res.Transport] = t
		}
		m := res.Metrics
		t.sent += m.SentMsgs
		t.recv += m.RecvMsgs
		t.lost += m.LostMsgs
		t.dups += m.DupMsgs
		t.reord += m.ReorderedMsgs
		t.corrupt += m.CorruptMsgs
		if m.Retransmits != nil {
			t.retrans += *m.Retransmits
			t.retransKnown = true
		}
		f := res.Injected.Figures()
		t.link.Datagrams = t.link.Datagrams || f.Datagrams
		t.link.Dropped += f.Dropped
		t.link.Queue += f.Queue
		t.link.Corrupted += f.Corrupted
		t.link.Duplicated += f.Duplicated
		t.link.Reordered += f.Reordered
		t.link.BeforeLink += f.BeforeLink
		if count(f) > 0 {
			injectedAny = true
		}
	}
	return out, injectedAny && out["tcp"] != nil && out["udp"] != nil
}

func labEvidence(exp string, t map[string]*labTotals, keys map[string]func(*labTotals) uint64) map[string]any {
	ev := map[string]any{"experiment": exp, "link": "lab"}
	for tr, tot := range t {
		for k, f := range keys {
			ev[tr+"_"+k] = f(tot)
		}
	}
	return ev
}

// RuleRetransmission is the lab's retransmission row: what the link dropped of each
// transport's streams, what TCP resent, and what UDP lost.
var RuleRetransmission = Rule{ID: "retransmission", Derive: propRetransmission}

func propRetransmission(in Input) (Property, bool) {
	t, ok := labStream(in, func(l LinkFigures) uint64 { return l.Dropped })
	if !ok {
		return Property{}, false
	}
	tc, uc := t["tcp"], t["udp"]
	tcp := fmt.Sprintf("the link dropped %s packets on the way to the receiver", g(tc.link.Dropped))
	if d := tc.link.BeforeLink; d > 0 {
		tcp += fmt.Sprintf(" and %s more were dropped before it", g(d))
	}
	tcp += "; TCP retransmitted"
	if tc.retransKnown {
		tcp += fmt.Sprintf(" %s segments", g(tc.retrans))
	}
	tcp += fmt.Sprintf(" and lost %s of %s messages", g(tc.lost), g(tc.sent))
	udp := fmt.Sprintf("the link dropped %s of its data datagrams", g(uc.link.Dropped))
	if c := uc.link.Corrupted; c > 0 {
		udp += fmt.Sprintf(" and corrupted %s (the receiver's checksum drops them)", g(c))
	}
	if d := uc.link.BeforeLink; d > 0 {
		udp += fmt.Sprintf("; %s more were dropped before the link, the sender outrunning the emulator", g(d))
	}
	udp += fmt.Sprintf("; the receiver counted %s of %s messages lost", g(uc.lost), g(uc.sent))
	if uc.link.Dropped+uc.link.Corrupted+uc.link.BeforeLink == uc.lost {
		udp += " (exactly those)"
	}
	return Property{
		Property: "retransmission",
		Claim:    "TCP resends what the network loses; UDP's losses are the application's to notice",
		TCP:      tcp,
		UDP:      udp,
		Evidence: labEvidence(in.Experiment, t, map[string]func(*labTotals) uint64{
			"link_dropped":        func(x *labTotals) uint64 { return x.link.Dropped },
			"link_corrupted":      func(x *labTotals) uint64 { return x.link.Corrupted },
			"dropped_before_link": func(x *labTotals) uint64 { return x.link.BeforeLink },
			"lost_msgs":           func(x *labTotals) uint64 { return x.lost },
			"retransmits":         func(x *labTotals) uint64 { return x.retrans },
		}),
	}, true
}

// labRow is one of the lab's simple rows: what the link injected beside what each
// transport measured, shown when the link injected any.
type labRow struct {
	id, name, claim string
	injected        func(LinkFigures) uint64
	tcp, udp        func(*labTotals) string
	evidence        map[string]func(*labTotals) uint64
}

var labRows = []labRow{
	{
		id: "ordering", name: "ordering",
		claim:    "TCP delivers in order whatever the network does; UDP delivers in the order datagrams arrive",
		injected: func(l LinkFigures) uint64 { return l.Reordered },
		tcp: func(x *labTotals) string {
			return fmt.Sprintf("the link reordered %s packets; %s messages arrived out of order", g(x.link.Reordered), g(x.reord))
		},
		udp: func(x *labTotals) string {
			return fmt.Sprintf("the link reordered %s datagrams; the receiver counted %s out of order", g(x.link.Reordered), g(x.reord))
		},
		evidence: map[string]func(*labTotals) uint64{
			"link_reordered": func(x *labTotals) uint64 { return x.link.Reordered },
			"reordered_msgs": func(x *labTotals) uint64 { return x.reord },
		},
	},
	{
		id: "duplicates", name: "duplicates",
		claim:    "TCP discards duplicated segments; UDP hands every copy to the application",
		injected: func(l LinkFigures) uint64 { return l.Duplicated },
		tcp: func(x *labTotals) string {
			return fmt.Sprintf("the link duplicated %s packets; %s duplicate messages delivered", g(x.link.Duplicated), g(x.dups))
		},
		udp: func(x *labTotals) string {
			return fmt.Sprintf("the link duplicated %s datagrams; the receiver got %s duplicates", g(x.link.Duplicated), g(x.dups))
		},
		evidence: map[string]func(*labTotals) uint64{
			"link_duplicated": func(x *labTotals) uint64 { return x.link.Duplicated },
			"dup_msgs":        func(x *labTotals) uint64 { return x.dups },
		},
	},
	{
		id: "checksum", name: "checksums",
		claim:    "both check sums: a corrupted segment never reaches the application; TCP resends it, UDP loses it",
		injected: func(l LinkFigures) uint64 { return l.Corrupted },
		tcp: func(x *labTotals) string {
			return fmt.Sprintf("the link corrupted %s packets; %s, %s lost", g(x.link.Corrupted), corruptReached(x), g(x.lost))
		},
		udp: func(x *labTotals) string {
			return fmt.Sprintf("the link corrupted %s datagrams; %s; they count among the %s lost", g(x.link.Corrupted), corruptReached(x), g(x.lost))
		},
		evidence: map[string]func(*labTotals) uint64{
			"link_corrupted": func(x *labTotals) uint64 { return x.link.Corrupted },
			"corrupt_msgs":   func(x *labTotals) uint64 { return x.corrupt },
			"lost_msgs":      func(x *labTotals) uint64 { return x.lost },
		},
	},
}

// rule is lr's Rule: it builds the row when the lab's stream results show the link
// injected something.
func (lr labRow) rule() Rule {
	return Rule{ID: lr.id, Derive: lr.row}
}

func (lr labRow) row(in Input) (Property, bool) {
	t, ok := labStream(in, lr.injected)
	if !ok {
		return Property{}, false
	}
	ev := labEvidence(in.Experiment, t, lr.evidence)
	if !in.Config.PayloadsVerified() {
		for tr := range t {
			delete(ev, tr+"_corrupt_msgs") // not measured: no figure, not a zero
		}
		ev["payloads_verified"] = false
	}
	return Property{Property: lr.name, Claim: lr.claim, TCP: lr.tcp(t["tcp"]), UDP: lr.udp(t["udp"]), Evidence: ev}, true
}

// corruptReached says how many corrupt messages reached the application, or, when
// payloads were not verified (--verify header), that this is not known: a zero then
// would be a figure nobody measured.
func corruptReached(x *labTotals) string {
	if x.unverified {
		return "payloads not verified (--verify header), so corrupt messages reaching the application were not counted"
	}
	return g(x.corrupt) + " corrupt messages reached the application"
}

// RuleLabOrdering, RuleDuplicates and RuleChecksum are the lab's simple rows
// (labRows): what the link reordered, duplicated and corrupted of each transport's
// streams beside what each transport delivered.
var (
	RuleLabOrdering = labRows[0].rule()
	RuleDuplicates  = labRows[1].rule()
	RuleChecksum    = labRows[2].rule()
)
