package report

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func u64p(v uint64) *uint64 { return &v }

// The experiments of these tests are named for what they do: a rule reads the
// results of whichever experiment lists it, by no name of its own.
const (
	bulk   = "bulk"   // one-way streams
	dial   = "dial"   // a fresh client per request
	echo   = "echo"   // request and response
	nobody = "nobody" // a port nobody listens on
	crowd  = "crowd"  // many clients of one server
)

// derive is the properties table of r with the built-in rules these tests read,
// each listed by the experiment whose results it reads.
func derive(r *Report) []Property {
	return Derive(r, []ExperimentRules{
		{nobody, []Rule{RuleRefused}},
		{crowd, []Rule{RuleSockets}},
		{bulk, []Rule{RuleFlowRatio, RuleReliability, RuleOrdering, RuleThroughput, RuleCost}},
		{echo, []Rule{RuleRTT}},
		{dial, []Rule{RuleSetup, RuleSocketCount}},
	})
}

func TestPropertiesKnownAnswer(t *testing.T) {
	p50 := func(ns int64) *LatencyStats { return &LatencyStats{Samples: 100, P50: &ns} }
	cpu := func(v float64) *float64 { return &v }
	rep := &Report{Results: []Result{
		{Experiment: bulk, Transport: "tcp", Params: Params{Size: 1024}, Metrics: Metrics{SentMsgs: 1000, RecvMsgs: 1000, SendRateBps: 8e9, GoodputBps: 8e9, CPUSecPerGB: cpu(0.5)}},
		{Experiment: bulk, Transport: "udp", Params: Params{Size: 1024}, Metrics: Metrics{SentMsgs: 1000, RecvMsgs: 902, DupMsgs: 2, LostMsgs: 100, ReorderedMsgs: 3,
			DropsSocket: u64p(90), DropsSender: 4, DropsNetwork: u64p(6), SendRateBps: 4e9, GoodputBps: 2e9, CPUSecPerGB: cpu(2)}},
		{Experiment: dial, Transport: "tcp", Params: Params{Size: 64}, Metrics: Metrics{SentMsgs: 500, ServerSockets: 500, TransPerS: 5000, RTT: p50(120_000)}},
		{Experiment: dial, Transport: "udp", Params: Params{Size: 64}, Metrics: Metrics{SentMsgs: 2000, ServerSockets: 1, TransPerS: 20000, RTT: p50(40_000)}},
		{Experiment: bulk, Transport: "udp", Params: Params{Size: 1024, IO: IOTextbook}, Metrics: Metrics{SentMsgs: 1000, RecvMsgs: 10, LostMsgs: 990,
			DropsSocket: u64p(990), SendRateBps: 1e9, GoodputBps: 0.5e9, CPUSecPerGB: cpu(8)}},
		{Experiment: bulk, Transport: "udp", Params: Params{Size: 64}, Error: "failed: ignored"},
	}, Env: Env{Link: Link{Kind: "loopback"}, Sockets: map[string]Sock{"udp": {GSO: true, GRO: true}}}}
	props := map[string]Property{}
	for _, p := range derive(rep) {
		props[p.Property] = p
	}
	tests := []struct {
		property, tcp, udp string
		evidence           map[string]any
	}{
		{"reliable delivery", "lost 0 of 1,000 messages (0.00%)", "lost 100 of 1,000 messages (10.00%): 90 overflowed the receive buffer, 4 refused at the sender",
			map[string]any{"udp_lost_msgs": uint64(100), "udp_drops_socket": uint64(90), "tcp_lost_msgs": uint64(0)}},
		{"flow control", "sender ran at 1.00x the receiver's goodput", "sender ran at 2.00x the receiver's goodput",
			map[string]any{"udp_send_over_goodput": 2.0}},
		{"ordering and duplicates", "0 reordered, 0 duplicated", "3 reordered, 2 duplicated", nil},
		{"connection setup", "first answer in 120.0 us (p50), 5,000 transactions/s", "first answer in 40.0 us (p50), 20,000 transactions/s",
			map[string]any{"tcp_over_udp": 3.0}},
		{"one socket per client", "500 server sockets for 500 clients", "1 server socket for 2,000 clients", nil},
		// The textbook UDP cell has a row of its own in throughput and cost, and no
		// part in the rows above (its 990 lost are not in "reliable delivery").
		{"throughput", "8.00 Gbit/s goodput at 1024-byte messages",
			"2.00 Gbit/s goodput (batched, GSO/GRO); 500 Mbit/s (textbook: one datagram per call) at 1024-byte messages",
			map[string]any{"udp_goodput_bps": 2e9, "udp_textbook_goodput_bps": 0.5e9}},
		{"cost per byte", "0.50 CPU s/GB at 1024-byte messages",
			"2.00 CPU s/GB (batched, GSO/GRO); 8.00 CPU s/GB (textbook: one datagram per call) at 1024-byte messages",
			map[string]any{"udp_textbook_cpu_s_per_gb": 8.0}},
	}
	for _, tc := range tests {
		t.Run(tc.property, func(t *testing.T) {
			p, ok := props[tc.property]
			if !ok {
				t.Fatalf("no %q row in %v", tc.property, props)
			}
			if p.TCP != tc.tcp || p.UDP != tc.udp {
				t.Errorf("got tcp %q udp %q\nwant tcp %q udp %q", p.TCP, p.UDP, tc.tcp, tc.udp)
			}
			for k, want := range tc.evidence {
				if got := p.Evidence[k]; got != want {
					t.Errorf("evidence %s = %v (%T), want %v (%T)", k, got, got, want, want)
				}
			}
		})
	}
	if _, ok := props["round-trip time"]; ok {
		t.Error("round-trip time row without pingpong results")
	}
	for _, p := range derive(&Report{}) {
		if strings.TrimSpace(p.Property) != "" {
			t.Errorf("empty report gave a %q row", p.Property)
		}
	}
}

// TestAttachLab: the lab's rows replace or join the loopback table, except those the
// loopback measured better (throughput and cost among them: the lab's streams are
// paced to its link rate, so its "throughput" is that rate).
func TestAttachLab(t *testing.T) {
	r := &Report{Properties: []Property{{ID: "throughput", TCP: "loopback"}, {ID: "ordering", TCP: "loopback"}}}
	l := &Report{Properties: []Property{{ID: "throughput", TCP: "lab"}, {ID: "cost", TCP: "lab"}, {ID: "ordering", Property: "ordering", TCP: "lab"},
		{ID: "duplicates", Property: "duplicates", TCP: "lab"}}}
	r.AttachLab(l)
	var got []string
	for _, p := range r.Properties {
		got = append(got, p.ID+"="+p.TCP+" "+p.Property)
	}
	want := []string{"throughput=loopback ", "ordering=lab ordering (emulated link)", "duplicates=lab duplicates (emulated link)"}
	if !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestPropertiesByTransport: a third transport's results give it a cell in the rows
// built from one text function over each transport (the RTT row and the property
// experiments'); tcp and udp are there with the same text as the TCP and UDP fields.
func TestPropertiesByTransport(t *testing.T) {
	rtt := func(ns int64) *LatencyStats { return &LatencyStats{Samples: 100, P50: &ns} }
	obs := func(at string, ns int64) map[string]any {
		o := map[string]any{}
		Set(o, ObsRefused, at != "")
		Set(o, ObsRefusedAt, at)
		Set(o, ObsDetectNs, ns)
		Set(o, ObsWaitedNs, ns)
		Set(o, ObsDialError, "connection refused")
		return o
	}
	rep := &Report{Results: []Result{
		{Experiment: echo, Transport: "tcp", Params: Params{Size: 64}, Metrics: Metrics{RTT: rtt(20_000)}},
		{Experiment: echo, Transport: "udp", Params: Params{Size: 64}, Metrics: Metrics{RTT: rtt(18_000)}},
		{Experiment: echo, Transport: "unixpacket", Params: Params{Size: 1024}, Metrics: Metrics{RTT: rtt(9_000)}},
		{Experiment: echo, Transport: "unixpacket", Params: Params{Size: 64}, Metrics: Metrics{RTT: rtt(7_000)}},
		{Experiment: echo, Transport: "broken", Params: Params{Size: 64}, Error: "failed"},
		{Experiment: nobody, Transport: "tcp", Observed: obs("dial", 30_000)},
		{Experiment: nobody, Transport: "udp", Observed: obs("", 1e9)},
		{Experiment: nobody, Transport: "unixpacket", Observed: obs("dial", 5_000)},
	}}
	want := map[string]map[string]string{
		"rtt": {"tcp": "RTT 20.0 us (p50, 64-byte messages)", "udp": "RTT 18.0 us (p50, 64-byte messages)",
			"unixpacket": "RTT 7.0 us (p50, 64-byte messages)"},
		"refused": {"tcp": "connect failed after 30.0 us: connection refused", "udp": "nothing reported in 1.00 s",
			"unixpacket": "connect failed after 5.0 us: connection refused"},
	}
	got := map[string]map[string]string{}
	for _, p := range derive(rep) {
		if p.ByTransport["tcp"] != p.TCP || p.ByTransport["udp"] != p.UDP {
			t.Errorf("%s: by_transport tcp %q udp %q, want the TCP and UDP fields %q %q", p.ID, p.ByTransport["tcp"], p.ByTransport["udp"], p.TCP, p.UDP)
		}
		got[p.ID] = p.ByTransport
	}
	for id, w := range want {
		if !maps.Equal(got[id], w) {
			t.Errorf("%s: by_transport %v, want %v", id, got[id], w)
		}
	}
}

// TestDerive: the table is in the claims' order whatever order the experiments list
// their rules in; of a claim's two rules the first that yields gives the row (a
// property experiment's observations before a measurement's count); a rule that is
// not a built-in one (an experiment's own) follows them; and each row's evidence
// names the experiment whose results it read.
func TestDerive(t *testing.T) {
	rtt := func(ns int64) *LatencyStats { return &LatencyStats{Samples: 100, P50: &ns} }
	crowdObs := func(sockets int) map[string]any {
		o := map[string]any{}
		Set(o, ObsClients, 10)
		Set(o, ObsServerSockets, sockets)
		Set(o, ObsServerFDs, sockets)
		return o
	}
	rep := &Report{Results: []Result{
		{Experiment: dial, Transport: "tcp", Params: Params{Size: 64}, Metrics: Metrics{SentMsgs: 10, ServerSockets: 10, TransPerS: 100, RTT: rtt(120_000)}},
		{Experiment: dial, Transport: "udp", Params: Params{Size: 64}, Metrics: Metrics{SentMsgs: 10, ServerSockets: 1, TransPerS: 300, RTT: rtt(40_000)}},
		{Experiment: crowd, Transport: "tcp", Observed: crowdObs(10)},
		{Experiment: crowd, Transport: "udp", Observed: crowdObs(1)},
		{Experiment: "mine", Transport: "tcp", Observed: map[string]any{"said": "yes"}},
		{Experiment: "mine", Transport: "udp", Observed: map[string]any{"said": "no"}},
	}}
	mine := Rule{ID: "mine", Derive: func(in Input) (Property, bool) {
		var tcp, udp string
		for _, r := range in.Results {
			if r.Transport == "tcp" {
				tcp, _ = r.Observed["said"].(string)
			} else {
				udp, _ = r.Observed["said"].(string)
			}
		}
		return Property{Property: "my claim", TCP: tcp, UDP: udp, Evidence: map[string]any{"experiment": in.Experiment}}, true
	}}
	// Listed backwards: the outside rule first, the measurement before the property
	// experiment.
	exps := []ExperimentRules{{"mine", []Rule{mine}}, {dial, []Rule{RuleSocketCount, RuleSetup}}, {crowd, []Rule{RuleSockets}}}
	rows := func() (from []string) {
		for _, p := range Derive(rep, exps) {
			from = append(from, p.ID+"="+p.Evidence["experiment"].(string))
			if p.ByTransport["tcp"] != p.TCP || p.ByTransport["udp"] != p.UDP {
				t.Errorf("%s: by_transport %v, want tcp %q udp %q", p.ID, p.ByTransport, p.TCP, p.UDP)
			}
		}
		return from
	}
	from := rows()
	if want := []string{"connection-setup=dial", "per-client-socket=crowd", "mine=mine"}; !slices.Equal(from, want) {
		t.Errorf("rows %q, want %q", from, want)
	}
	rep.Results = slices.DeleteFunc(rep.Results, func(r Result) bool { return r.Experiment == crowd })
	if from := rows(); !slices.Equal(from, []string{"connection-setup=dial", "per-client-socket=dial", "mine=mine"}) {
		t.Errorf("without the crowd's observations: rows %q, want the socket row from dial's metrics", from)
	}
}
