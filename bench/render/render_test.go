package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the renderers' output")

func ptr[T any](v T) *T { return &v }

// latencyStats builds LatencyStats with every percentile present, in ns.
func latencyStats(samples uint64, min, p50, p90, p99, p999, max int64) *report.LatencyStats {
	return &report.LatencyStats{Samples: samples, Min: min, P50: &p50, P90: &p90, P99: &p99, P999: &p999, Max: max,
		Mean: float64(p50) * 1.1, Stddev: float64(p90-p50) / 2}
}

// withCDF adds CDF points to l, through its percentiles, as Latency.cdf draws them.
func withCDF(l *report.LatencyStats) *report.LatencyStats {
	l.CDF = []report.CDFPoint{{Ns: l.Min, Q: 0}, {Ns: (l.Min + *l.P50) / 2, Q: 0.1}, {Ns: *l.P50, Q: 0.5},
		{Ns: *l.P90, Q: 0.9}, {Ns: *l.P99, Q: 0.99}, {Ns: *l.P999, Q: 0.999}, {Ns: l.Max, Q: 1}}
	return l
}

// testReport is a fixed report: both transports, three experiments, two sizes, a
// percentile with too few samples, a result with repeats and one with CDF points,
// a property experiment with observations, warnings, and cells that need markdown
// escaping.
func testReport() *report.Report {
	p := func(size int) report.Params { return report.Params{Size: size, Streams: 1, DurationS: 2} }
	fewer := latencyStats(420, 21_000, 30_500, 41_200, 88_000, 0, 2_300_000)
	fewer.P999 = nil // 420 samples cannot support p99.9 (needs 10,000)
	return withSections(&report.Report{
		Schema: report.Schema,
		Tool:   "tcpvsudp v0.1.0",
		Env: report.Env{
			Host: "testhost", OS: "linux", Arch: "amd64", Kernel: "6.18.0", Go: "go1.26.0",
			CPUs: 8, GOMAXPROCS: 8,
			Link: report.Link{Kind: "loopback", Addr: "127.0.0.1:0", MTU: 65536},
			Sockets: map[string]report.Sock{
				"tcp": {RecvBuffer: 131072, SendBuffer: 16384},
				"udp": {RecvBuffer: 425984, SendBuffer: 425984},
			},
		},
		Config: report.Config{
			Command:     "tcpvsudp run --sizes 64,1400 --duration 2s --seed 42 --json run.json",
			Transports:  []string{"tcp", "udp"},
			Experiments: []string{"stream", "pingpong", "connect", "refused"},
			Sizes:       []int{64, 1400},
			Streams:     1,
			DurationS:   2,
			Repeat:      1,
			Seed:        42,
			WarmupS:     0.5,
			DrainS:      0.5,
			TimeoutS:    1,
			Started:     "2026-11-26T02:00:00Z",
			WallS:       37.4,
		},
		Results: []report.Result{
			{Experiment: "stream", Transport: "tcp", Params: p(64), Metrics: report.Metrics{
				SentMsgs: 9_500_000, RecvMsgs: 9_500_000, SentBytes: 608_000_000, RecvBytes: 608_000_000,
				GoodputBps: 2.432e9, MsgsPerS: 4.75e6, SendRateBps: 2.44e9, SendMsgsPerS: 4.76e6,
				RecvIntervalS: 2, SendIntervalS: 2, DrainS: 0.5,
				JitterNs: ptr(210.4), Retransmits: ptr(uint64(0)), CPUSecPerGB: ptr(1.64),
			}},
			{Experiment: "stream", Transport: "udp", Params: p(64), Metrics: report.Metrics{
				SentMsgs: 3_100_000, RecvMsgs: 2_985_000, LostMsgs: 115_000, ReorderedMsgs: 12, ReorderExtent: 3,
				SentBytes: 198_400_000, RecvBytes: 191_040_000,
				GoodputBps: 764.2e6, MsgsPerS: 1.4925e6, SendRateBps: 793.6e6, SendMsgsPerS: 1.55e6,
				RecvIntervalS: 2, SendIntervalS: 2, DrainS: 0.5,
				JitterNs: ptr(1830.0), CPUSecPerGB: ptr(9.81), DropsSender: 0,
				DropsSocket: ptr(uint64(115_000)), DropsNetwork: ptr(uint64(0)),
			}},
			{Experiment: "stream", Transport: "tcp", Params: p(1400), Metrics: report.Metrics{
				SentMsgs: 3_400_000, RecvMsgs: 3_400_000, SentBytes: 4_760_000_000, RecvBytes: 4_760_000_000,
				GoodputBps: 19.04e9, MsgsPerS: 1.7e6, SendRateBps: 19.1e9, SendMsgsPerS: 1.705e6,
				RecvIntervalS: 2, SendIntervalS: 2, DrainS: 0.5,
				JitterNs: ptr(95.0), Retransmits: ptr(uint64(3)), CPUSecPerGB: ptr(0.212),
			}},
			{Experiment: "stream", Transport: "udp", Params: p(1400), Metrics: report.Metrics{
				SentMsgs: 1_250_000, RecvMsgs: 1_249_990, LostMsgs: 12, DupMsgs: 2, CorruptMsgs: 1,
				SentBytes: 1_750_000_000, RecvBytes: 1_749_983_200,
				GoodputBps: 6.9999e9, MsgsPerS: 624_995, SendRateBps: 7.0e9, SendMsgsPerS: 625_000,
				RecvIntervalS: 2, SendIntervalS: 2, DrainS: 0.5,
				JitterNs: ptr(512.0), CPUSecPerGB: ptr(0.918), DropsSender: 4,
				DropsSocket: ptr(uint64(8)), DropsNetwork: ptr(uint64(0)),
			},
				Repeat: &report.Repeat{Runs: 5, CI: map[string]report.Interval{
					"goodput_bps": {Median: 6.9999e9, Lo: 6.8999e9, Hi: 7.0999e9, Confidence: 0.95},
					"msgs_per_s":  {Median: 624_995, Lo: 610_000, Hi: 631_000, Confidence: 0.9375},
					"lost_msgs":   {Median: 12, Lo: 8, Hi: 15, Confidence: 0.9375},
				},
					Spread: map[string]report.Spread{
						"goodput_bps": {Median: 6.9999e9, MAD: 0.05e9, Stddev: 0.08e9, Min: 6.8999e9, Max: 7.0999e9},
						"msgs_per_s":  {Median: 624_995, MAD: 5000, Stddev: 8000, Min: 610_000, Max: 631_000},
						"lost_msgs":   {Median: 12, MAD: 2, Stddev: 2.9, Min: 8, Max: 15, Noisy: true},
					},
					Noisy: []string{"lost_msgs"},
				},
				Warnings: []string{"receive buffer: want 4194304, got 425984 (net.core.rmem_max caps it)"},
			},
			{Experiment: "pingpong", Transport: "tcp", Params: p(64), Metrics: report.Metrics{
				SentMsgs: 61_000, RecvMsgs: 61_000, MsgsPerS: 30_500,
				RTT: withCDF(latencyStats(61_000, 19_800, 31_200, 35_100, 52_000, 140_000, 1_210_000)),
			}},
			{Experiment: "pingpong", Transport: "udp", Params: p(64), Metrics: report.Metrics{
				SentMsgs: 80_001, RecvMsgs: 80_000, LostMsgs: 1, Timeouts: 1, MsgsPerS: 40_000,
				RTT: latencyStats(80_000, 14_100, 24_600, 27_900, 41_000, 98_500, 1_000_000_000),
			},
				// Three runs (the default suite's): ranges, and one run that stood apart.
				Repeat: &report.Repeat{Runs: 3, CI: map[string]report.Interval{
					"msgs_per_s": {Median: 40_000, Lo: 39_100, Hi: 40_800, Confidence: 0.75},
					"rtt_p50_ns": {Median: 24_600, Lo: 24_100, Hi: 31_900, Confidence: 0.75},
				},
					Spread: map[string]report.Spread{
						"msgs_per_s": {Median: 40_000, MAD: 800, Stddev: 850, Min: 39_100, Max: 40_800},
						"rtt_p50_ns": {Median: 24_600, MAD: 500, Stddev: 4360, Min: 24_100, Max: 31_900, Outliers: []float64{31_900}, Noisy: true},
					},
					Noisy: []string{"rtt_p50_ns"},
				},
			},
			{Experiment: "pingpong", Transport: "tcp", Params: p(1400), Metrics: report.Metrics{
				SentMsgs: 420, RecvMsgs: 420, MsgsPerS: 210, RTT: fewer,
			}},
			{Experiment: "pingpong", Transport: "udp", Params: p(1400), Metrics: report.Metrics{
				SentMsgs: 71_000, RecvMsgs: 71_000, MsgsPerS: 35_500, LateMsgs: 2,
				RTT: latencyStats(71_000, 16_000, 27_300, 30_100, 45_800, 101_000, 990_000),
			}},
			{Experiment: "connect", Transport: "tcp", Params: p(64), Metrics: report.Metrics{
				SentMsgs: 24_000, RecvMsgs: 24_000, TransPerS: 12_000, ServerSockets: 24_000,
				RTT: latencyStats(24_000, 52_000, 80_400, 96_000, 151_000, 420_000, 2_050_000),
			}},
			{Experiment: "connect", Transport: "udp", Params: p(64), Metrics: report.Metrics{
				SentMsgs: 60_000, RecvMsgs: 59_998, LostMsgs: 2, Timeouts: 2, TransPerS: 29_999, ServerSockets: 1,
				RTT: latencyStats(59_998, 17_900, 31_000, 36_500, 58_000, 133_000, 1_000_000_000),
			}},
			{Experiment: "refused", Transport: "tcp", Params: report.Params{Size: 64, Streams: 1}, Observed: map[string]any{
				"connect_error": "connection refused", "detect_ns": 41000, "refused_at": "dial",
			}},
			{Experiment: "refused", Transport: "udp", Params: report.Params{Size: 64, Streams: 1}, Metrics: report.Metrics{SentMsgs: 1, LostMsgs: 1},
				Observed: map[string]any{
					"send_error": "", "detect_ns": 0, "silent": true, "refused_at": "never",
					"calls": map[string]any{"send": 21, "recv": 20}, "note": "no *ICMP* [reply] <seen>",
				}},
		},
		Properties: []report.Property{
			{ID: "connection-setup", Property: "connection", Claim: "TCP needs a connection first (three-way handshake)",
				TCP: "dial + request + reply", UDP: "one request + reply",
				Evidence: map[string]any{"tcp_first_answer_p50_ns": 80400.0, "udp_first_answer_p50_ns": 31000.0}},
			{Property: "ordering", Claim: "TCP delivers in order | UDP may not",
				TCP: "0 reordered", UDP: "12 reordered\n(max extent 3)",
				Evidence: map[string]any{"udp_reordered": 12, "tcp_reordered": 0, "link": "loopback | no impairment"}},
		},
		Warnings: []string{"--repeat 1: no confidence intervals for most cells"},
	})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bench -run Render -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the renderer's output (go test ./bench -run Render -update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		render func(*bytes.Buffer, *report.Report) error
	}{
		{"text", "render_text.golden", func(b *bytes.Buffer, r *report.Report) error { return Text(b, r) }},
		{"text verbose", "render_text_verbose.golden", func(b *bytes.Buffer, r *report.Report) error { return Text(b, r, Verbose(true)) }},
		{"markdown", "render_md.golden", func(b *bytes.Buffer, r *report.Report) error { return Markdown(b, r) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.render(&b, testReport()); err != nil {
				t.Fatal(err)
			}
			if bad := nonASCII(b.String()); bad != "" {
				t.Errorf("output is not plain ASCII: %q", bad)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
}

// nonASCII returns the first line holding a non-ASCII byte, or "".
func nonASCII(s string) string {
	for _, line := range strings.Split(s, "\n") {
		for i := 0; i < len(line); i++ {
			if line[i] > 0x7e || (line[i] < 0x20 && line[i] != '\t') {
				return line
			}
		}
	}
	return ""
}

func renderBoth(t *testing.T, r *report.Report) (text, md string) {
	t.Helper()
	var tb, mb bytes.Buffer
	if err := Text(&tb, r, Verbose(true)); err != nil { // every table, as the markdown
		t.Fatalf("Text: %v", err)
	}
	if err := Markdown(&mb, r); err != nil {
		t.Fatalf("Markdown: %v", err)
	}
	return tb.String(), mb.String()
}

func TestRenderTCPOnly(t *testing.T) {
	r := testReport()
	r.Config.Transports = []string{"tcp"}
	r.Properties = nil
	delete(r.Env.Sockets, "udp")
	var keep []report.Result
	for _, res := range r.Results {
		if res.Transport == "tcp" {
			keep = append(keep, res)
		}
	}
	r.Results = keep
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		if strings.Contains(strings.ToLower(strings.ReplaceAll(out, "tcpvsudp", "")), "udp") {
			t.Errorf("%s: a tcp-only report mentions udp:\n%s", name, out)
		}
		for _, want := range []string{"goodput tcp", "RTT p99 tcp", "answer p50 tcp", "retransmits tcp"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q column:\n%s", name, want, out)
			}
		}
	}
}

func TestRenderUnknownExperiment(t *testing.T) {
	r := testReport()
	r.Results = append(r.Results,
		report.Result{Experiment: "fanout", Transport: "udp", Params: report.Params{Size: 512, Streams: 1, DurationS: 2},
			Metrics: report.Metrics{SentMsgs: 1000, RecvMsgs: 4000, GoodputBps: 8.192e6, ServerSockets: 1, JitterNs: ptr(1500.0)}},
		report.Result{Experiment: "fanout", Transport: "tcp", Params: report.Params{Size: 512, Streams: 1, DurationS: 2},
			Metrics: report.Metrics{SentMsgs: 4000, RecvMsgs: 4000, GoodputBps: 8.192e6, ServerSockets: 4}},
	)
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		i := strings.Index(out, "(fanout)") // its section title; the intro names it too
		if i < 0 {
			t.Fatalf("%s: no fanout section:\n%s", name, out)
		}
		sec := out[i:]
		for _, want := range []string{"sent msgs", "4,000", "goodput", "8.19 Mbit/s", "server sockets", "jitter", "1.50 us"} {
			if !strings.Contains(sec, want) {
				t.Errorf("%s: fanout section lacks %q:\n%s", name, want, sec)
			}
		}
		if strings.Contains(sec, "lost msgs") {
			t.Errorf("%s: fanout section shows a metric that is zero everywhere:\n%s", name, sec)
		}
	}
}

// unescapedPipes counts the "|" of a markdown table row that are not escaped.
func unescapedPipes(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n
}

func TestRenderMarkdownCellsEscaped(t *testing.T) {
	_, md := renderBoth(t, testReport())
	if !strings.Contains(md, `TCP delivers in order \| UDP may not`) || !strings.Contains(md, "12 reordered<br>(max extent 3)") {
		t.Fatalf("a property cell with | or a newline not escaped:\n%s", md)
	}
	tables, want := 0, -1
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = -1
			continue
		}
		n := unescapedPipes(line)
		if want < 0 {
			want = n
			tables++
			continue
		}
		if n != want {
			t.Errorf("line %d has %d cell separators, its table's header %d:\n%s", i+1, n, want, line)
		}
	}
	if tables < 5 {
		t.Errorf("found %d tables, want at least 5 (properties, stream x2, pingpong, connect)", tables)
	}
}

func TestFormatMarkdownCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a|b", `a\|b`},
		{"two\nlines", "two<br>lines"},
		{"crlf\r\nend", "crlf<br>end"},
	} {
		if got := mdCell(tc.in); got != tc.want {
			t.Errorf("mdCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRenderTransportOrder(t *testing.T) {
	r := testReport()
	r.Config.Transports = []string{"udp", "quic"} // tcp results still render, after these
	r.Results = append(r.Results, report.Result{Experiment: "stream", Transport: "quic", Params: report.Params{Size: 64, Streams: 1, DurationS: 2},
		Metrics: report.Metrics{SentMsgs: 100, RecvMsgs: 100, GoodputBps: 1e9}})
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		u, q, tc := strings.Index(out, "goodput udp"), strings.Index(out, "goodput quic"), strings.Index(out, "goodput tcp")
		if u < 0 || q < 0 || tc < 0 || !(u < q && q < tc) {
			t.Errorf("%s: columns not in the order udp, quic, tcp (at %d, %d, %d):\n%s", name, u, q, tc, out)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	text, md := renderBoth(t, &report.Report{Schema: report.Schema})
	if !strings.HasPrefix(md, "# tcpvsudp report") || !strings.HasPrefix(text, "tcpvsudp:") {
		t.Errorf("empty report:\ntext:\n%s\nmarkdown:\n%s", text, md)
	}
}

func TestObservedValue(t *testing.T) {
	long := map[string]any{}
	for i := range 30 {
		long[strconv.Itoa(i*64)] = i
	}
	for _, tc := range []struct {
		name string
		key  string
		v    any
		want string
	}{
		{"duration", "detect_ns", 41000, "41.0 us"},
		{"duration int64", "detect_ns", int64(1_500_000), "1.50 ms"},
		{"bits/s", "reader_rate_bps", 8e7, "80.0 Mbit/s"},
		{"bytes exact", "max_message_bytes", 65507, "65,507 B"},
		{"bytes KiB", "write_bytes", 65536, "64 KiB"},
		{"bytes MiB", "sent_bytes", 1_572_864.0 + 1, "1.50 MiB"},
		{"bytes per client", "kernel_socket_bytes_per_client", 1234.5, "1.21 KiB"},
		{"duration per thing", "cpu_ns_per_delivery", 850.2, "850 ns"},
		{"rate", "connects_per_s", 12_345.0, "12.3k/s"},
		{"count", "reads", 12_345, "12,345"},
		{"fraction", "sender_blocked_fraction", 0.9184, "0.918"},
		{"bool yes", "silent", true, "yes"},
		{"bool no", "refused", false, "no"},
		{"string", "refused_at", "after send", "after send"},
		{"empty string", "send_error", "", "none"},
		{"null", "x", nil, "-"},
		{"map sorted numerically", "read_sizes", map[string]any{"1024": 3, "64": 10, "512": 1}, "64=10, 512=1, 1024=3"},
		{"map of Go ints", "read_sizes", map[string]int{"b": 2, "a": 1}, "a=1, b=2"},
		{"map inner units", "phases", map[string]any{"dial_ns": 2000, "reads": 3}, "dial_ns=2.00 us, reads=3"},
		{"map outer unit", "detect_ns", map[string]any{"first": 2000, "last": 3000}, "first=2.00 us, last=3.00 us"},
		{"list", "sizes_bytes", []int{64, 2048}, "64 B, 2 KiB"},
		{"long map cut", "read_sizes", long, "0=0, 64=1, 128=2, 192=3, 256=4, 320=5, 384=6, 448=7, 512=8, 576=9, 640=10, ..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := observedValue(tc.key, tc.v)
			if got != tc.want {
				t.Errorf("observedValue(%q, %#v) = %q, want %q", tc.key, tc.v, got, tc.want)
			}
			if len(got) > maxObserved {
				t.Errorf("observedValue(%q, ...) is %d bytes long, want at most %d", tc.key, len(got), maxObserved)
			}
		})
	}
}

func TestRenderObservedSections(t *testing.T) {
	r := testReport()
	r.Results = append(r.Results,
		report.Result{Experiment: report.ExpFanout, Transport: "udp", Params: report.Params{Size: 1024, Receivers: 4},
			Observed: map[string]any{"copies_per_message": 1, "mode": "multicast"}},
		report.Result{Experiment: report.ExpFanout, Transport: "tcp", Params: report.Params{Size: 1024, Receivers: 4},
			Observed: map[string]any{"copies_per_message": 4, "mode": "connections"}},
		report.Result{Experiment: report.ExpFanout, Transport: "tcp", Params: report.Params{Size: 1024, Receivers: 16},
			Observed: map[string]any{"copies_per_message": 16, "mode": "connections"}},
		report.Result{Experiment: report.ExpClose, Transport: "udp", Params: report.Params{Size: 64}, Error: "listen: address in use"},
		report.Result{Experiment: report.ExpClose, Transport: "tcp", Params: report.Params{Size: 64}, Observed: map[string]any{"peer_close_seen": true}},
		report.Result{Experiment: "warp", Transport: "tcp", Params: report.Params{Size: 64}, Observed: map[string]any{"speed_bps": 1e9}},
	)
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		for _, want := range []string{
			"Refused connections (refused)", "One sender, many receivers (fanout)", "Peer close (close)",
			"receivers", "16", "copies per message", "multicast", "connections",
			"peer close seen", "listen: address in use", "warp", "1.00 Gbit/s",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q:\n%s", name, want, out)
			}
		}
		if strings.Contains(out, "connection-setup") {
			t.Errorf("%s: shows a property id", name)
		}
		// The refused section: tcp before udp, one row per key, sorted.
		i := strings.Index(out, "Refused connections (refused)")
		sec := out[i:]
		if a, b := strings.Index(sec, "connect error"), strings.Index(sec, "silent"); a < 0 || b < 0 || a > b {
			t.Errorf("%s: observed keys not in order:\n%s", name, sec)
		}
	}
}

// TestRenderUnanswered: a request/response cell's requests with no reply within
// --timeout are "unanswered" for both transports, never "lost" (a TCP request is
// never lost; a UDP one may only be late). Known answer: TCP 1 of 47,090 and UDP 3
// of 1,000 unanswered; lost_msgs repeats timeouts, as the experiments fill it in.
func TestRenderUnanswered(t *testing.T) {
	rr := func(exp, tr string, sent, timeouts uint64) report.Result {
		return report.Result{Experiment: exp, Transport: tr, Params: report.Params{Size: 64, DurationS: 1, Clients: 100},
			Metrics: report.Metrics{SentMsgs: sent, RecvMsgs: sent - timeouts, Timeouts: timeouts, LostMsgs: timeouts}}
	}
	r := withSections(&report.Report{Schema: report.Schema, Config: report.Config{Transports: []string{"tcp", "udp"}, TimeoutS: 0.2, DurationS: 1}})
	r.Results = []report.Result{
		rr(report.ExpPingPong, "tcp", 47090, 1), rr(report.ExpPingPong, "udp", 1000, 3),
		rr(report.ExpConnect, "tcp", 47090, 1), rr(report.ExpConnect, "udp", 1000, 3),
		rr(report.ExpClients, "tcp", 47090, 1), rr(report.ExpClients, "udp", 1000, 3),
		rr(report.ExpClose, "tcp", 2, 0), rr(report.ExpClose, "udp", 3, 2),
	}
	for i := 4; i < 8; i++ {
		r.Results[i].Observed = map[string]any{"clients": 100}
	}
	text, md := renderBoth(t, r)
	var verbose bytes.Buffer
	if err := Text(&verbose, r, Verbose(true)); err != nil {
		t.Fatal(err)
	}
	if want := "Unanswered = requests with no reply within 200 ms"; !strings.Contains(strings.Join(strings.Fields(verbose.String()), " "), want) {
		t.Errorf("verbose text: no %q:\n%s", want, verbose.String())
	}
	for name, out := range map[string]string{"text": text, "markdown": md} {
		wants := []string{"unanswered tcp", "unanswered udp", "1 (<0.01%)", "3 (0.30%)"}
		if name == "markdown" {
			wants = append(wants, "Unanswered = requests with no reply within 200 ms")
		}
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q:\n%s", name, want, out)
			}
		}
		if !regexp.MustCompile(`\| timeouts +\| 1 +\| 3 +\|`).MatchString(out) {
			t.Errorf("%s: the clients table has no row \"timeouts | 1 | 3\":\n%s", name, out)
		}
		if !regexp.MustCompile(`\| timeouts +\| 0 +\| 2 +\|`).MatchString(out) {
			t.Errorf("%s: the close table has no row \"timeouts | 0 | 2\" (TCP's zero is omitted from the JSON):\n%s", name, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "|") && strings.Contains(l, "lost") {
				t.Errorf("%s: a request/response table says lost: %q", name, l)
			}
		}
	}
}
