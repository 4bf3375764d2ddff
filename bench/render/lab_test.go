package render

import (
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// TestLabFiguresOneDefinition: every place the report quotes one of the emulated
// link's figures (the injected-vs-measured table, the property rows' sentences and
// their evidence) quotes the same count, and it is the known client-to-server count:
// for UDP the data datagrams (not every packet: warm-up, end markers), for TCP every
// packet (not both directions' sum).
func TestLabFiguresOneDefinition(t *testing.T) {
	// Each figure differs between the directions, and for UDP between data and all
	// packets, so a place that counts otherwise shows another number.
	tcpUp := report.LinkCounts{Packets: 5000, Dropped: 40, QueueDropped: 2, Corrupted: 13, Duplicated: 19, Reordered: 14, DeviceDropped: 6}
	tcpDown := report.LinkCounts{Packets: 900, Dropped: 31, Corrupted: 5, Duplicated: 7, Reordered: 3, DeviceDropped: 1}
	udpUp := report.LinkCounts{Packets: 2203, Dropped: 35, Corrupted: 12, Duplicated: 26, Reordered: 29, DeviceDropped: 17,
		Data: report.DataCounts{Packets: 1983, Dropped: 32, Corrupted: 11, Duplicated: 24, Reordered: 27}}
	udpDown := report.LinkCounts{Packets: 3, Dropped: 1}
	rep := &report.Report{Env: report.Env{Link: report.Link{Kind: "lab"}}, Results: []report.Result{
		{Experiment: report.ExpStream, Transport: "tcp", Params: report.Params{Size: 1024}, Metrics: report.Metrics{SentMsgs: 2000, RecvMsgs: 2000, Retransmits: ptr[uint64](57)},
			Injected: &report.Injected{Up: tcpUp, Down: tcpDown}},
		{Experiment: report.ExpStream, Transport: "udp", Params: report.Params{Size: 1024}, Metrics: report.Metrics{SentMsgs: 2000, RecvMsgs: 1964, LostMsgs: 60, DupMsgs: 24, ReorderedMsgs: 27},
			Injected: &report.Injected{Up: udpUp, Down: udpDown}},
	}}
	sec, ok := injectedSection(rep)
	if !ok || len(sec.tables) != 2 {
		t.Fatalf("injected section: %v %+v", ok, sec)
	}
	tab := sec.tables[0] // what the link did; the second table, what was measured
	cell := func(transport, column string) string {
		col := slices.Index(tab.head, column)
		if col < 0 {
			t.Fatalf("no column %q in %q", column, tab.head)
		}
		for _, row := range tab.rows {
			if f := strings.Fields(row[0]); len(f) > 1 && f[1] == transport {
				v, _, _ := strings.Cut(row[col], " (") // "42 (2)": dropped, of which at the queue
				return v
			}
		}
		t.Fatalf("no %s row", transport)
		return ""
	}
	props := map[string]report.Property{}
	// The lab's rows that stream's results derive (its registry entry lists them).
	rules := []report.ExperimentRules{{Experiment: report.ExpStream,
		Rules: []report.Rule{report.RuleRetransmission, report.RuleLabOrdering, report.RuleDuplicates, report.RuleChecksum}}}
	for _, p := range report.Derive(rep, rules) {
		props[p.ID] = p
	}
	tests := []struct {
		name, column, property, evidence string
		text                             string // how the property's sentence quotes it, %s the count
		tcp, udp                         uint64
	}{
		// Link dropped: random loss and tail drop. (UDP's corrupted data datagrams are
		// lost too, and quoted apart.)
		{"dropped", "dropped (queue)", "retransmission", "link_dropped", "dropped %s ", 42, 32},
		{"reordered", "reordered", "ordering", "link_reordered", "reordered %s ", 14, 27},
		{"duplicated", "duplicated", "duplicates", "link_duplicated", "duplicated %s ", 19, 24},
		{"corrupted", "corrupted", "checksum", "link_corrupted", "corrupted %s ", 13, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := props[tc.property]
			if !ok {
				t.Fatalf("no %s row in %v", tc.property, props)
			}
			for _, x := range []struct {
				transport, text string
				want            uint64
			}{{"tcp", p.TCP, tc.tcp}, {"udp", p.UDP, tc.udp}} {
				want := units.Group(int64(x.want))
				if got := cell(x.transport, tc.column); got != want {
					t.Errorf("%s: table %q = %s, want %s (client to server)", x.transport, tc.column, got, want)
				}
				if got := p.Evidence[x.transport+"_"+tc.evidence]; got != x.want {
					t.Errorf("%s: %s evidence %s = %v, want %d", x.transport, tc.property, tc.evidence, got, x.want)
				}
				if s := strings.Replace(tc.text, "%s", want, 1); !strings.Contains(x.text, s) {
					t.Errorf("%s: %s row %q does not say %q", x.transport, tc.property, x.text, s)
				}
			}
		})
	}
	t.Run("dropped before the link", func(t *testing.T) {
		for _, x := range []struct {
			transport string
			want      uint64
		}{{"tcp", 6}, {"udp", 17}} {
			if got := cell(x.transport, "before the link"); got != units.Group(int64(x.want)) {
				t.Errorf("%s: table %q = %s, want %d (client to server)", x.transport, "dropped before the link", got, x.want)
			}
		}
		if u := props["retransmission"].UDP; !strings.Contains(u, "17 more") {
			t.Errorf("udp retransmission row %q does not say 17 more were dropped before the link", u)
		}
	})
}
