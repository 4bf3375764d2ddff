package render

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// labReport is a small run across an emulated link, as the lab section holds it:
// stream cells with what the link did (TCP's packets, UDP's messages one each),
// hol's one-way latency with CDF points (5 for TCP, 4 for UDP), and bottleneck cells
// with each flow's goodput time line (TCP: 30, 29 and 31 points; UDP: 25, 24, 26)
// and link counts that cover both phases and the competitor, so they are not
// comparable with the measured figures.
func labReport() *report.Report {
	p := report.Params{Size: 1024, Streams: 1, DurationS: 2, Count: 2000, RateBps: 20e6}
	hp := report.Params{Size: 200, Streams: 1, DurationS: 2}
	bp := report.Params{Size: 1024, Streams: 1, DurationS: 2}
	lat := func(samples uint64, ms ...int64) *report.LatencyStats {
		st := &report.LatencyStats{Samples: samples, Min: ms[0] * 1e6, Max: ms[len(ms)-1] * 1e6}
		for i, v := range ms {
			st.CDF = append(st.CDF, report.CDFPoint{Ns: v * 1e6, Q: []float64{0, 0.5, 0.9, 0.99, 1}[i+5-len(ms)]})
		}
		return st
	}
	line := func(flow, tr string, n int, bps float64) report.Timeline {
		tl := report.Timeline{Flow: flow, Transport: tr, StepS: 0.1}
		for i := range n {
			tl.Points = append(tl.Points, report.RatePoint{TS: float64(i+1) / 10, GoodputBps: bps * (1 + 0.1*float64(i%3))})
		}
		return tl
	}
	bottleneck := func(tr string, n int) report.Result {
		return report.Result{Experiment: report.ExpBottleneck, Transport: tr, Params: bp,
			Metrics:  report.Metrics{SentMsgs: 9000, RecvMsgs: 8000, LostMsgs: 1000},
			Observed: map[string]any{report.ObsLinkRateBps.Key(): 50e6},
			Timelines: []report.Timeline{line(report.FlowAlone, tr, n, 45e6), line(report.FlowShared, tr, n-1, 10e6),
				line(report.FlowCompetitor, "udp", n+1, 38e6)},
			Injected: &report.Injected{Up: report.LinkCounts{Packets: 20000, Dropped: 400, QueueDropped: 1800,
				Data: report.DataCounts{Packets: 12000, Dropped: 250, QueueDropped: 1600}}}}
	}
	return withSections(&report.Report{
		Schema: report.Schema,
		Env:    report.Env{Link: report.Link{Kind: "lab", Impair: map[string]string{"up": "loss=2%,rate=50M", "down": "loss=2%,rate=50M", "seed": "1"}}},
		Config: report.Config{Command: "tcpvsudp run -e stream,hol,bottleneck --impair loss=2%,rate=50M", Transports: []string{"tcp", "udp"},
			Experiments: []string{report.ExpStream, report.ExpHOL, report.ExpBottleneck}, Sizes: []int{1024}, Streams: 1, Count: 2000},
		Results: []report.Result{
			{Experiment: report.ExpStream, Transport: "tcp", Params: p,
				Metrics:  report.Metrics{SentMsgs: 2000, RecvMsgs: 2000, GoodputBps: 19e6, MsgsPerS: 2300, Retransmits: ptr[uint64](53)},
				Injected: &report.Injected{Up: report.LinkCounts{Packets: 1859, Dropped: 39, Corrupted: 13, Duplicated: 20, Reordered: 19}}},
			{Experiment: report.ExpStream, Transport: "udp", Params: p,
				Metrics: report.Metrics{SentMsgs: 2000, RecvMsgs: 1980, LostMsgs: 43, DupMsgs: 23, ReorderedMsgs: 29, GoodputBps: 19e6, MsgsPerS: 2300},
				Injected: &report.Injected{Messages: true, Up: report.LinkCounts{Packets: 2000, Dropped: 32, Corrupted: 11, Duplicated: 23, Reordered: 29,
					Data: report.DataCounts{Packets: 2000, Dropped: 32, Corrupted: 11, Duplicated: 23, Reordered: 29}}}},
			{Experiment: report.ExpHOL, Transport: "tcp", Params: hp, Metrics: report.Metrics{SentMsgs: 1000, RecvMsgs: 1000},
				Observed: map[string]any{report.ObsLatency.Key(): lat(1000, 5, 6, 14, 25, 34)}},
			{Experiment: report.ExpHOL, Transport: "udp", Params: hp, Metrics: report.Metrics{SentMsgs: 1000, RecvMsgs: 974, LostMsgs: 26},
				Observed: map[string]any{report.ObsLatency.Key(): lat(974, 5, 6, 8, 9)}},
			bottleneck("tcp", 30),
			bottleneck("udp", 25),
		},
	})
}

// withLab is chartReport with labReport as its lab section.
func withLab() *report.Report {
	r := chartReport()
	r.AttachLab(labReport())
	return r
}

var (
	loopbackCharts = []string{"rtt_cdf.svg", "connect_cdf.svg", "goodput_by_size.svg", "msgs_by_size.svg", "slow_receiver.svg"}
	labChartNames  = []string{"hol_latency_cdf.svg", "bottleneck_goodput.svg", "injected_vs_measured.svg"}
)

// prefixed returns names, each with prefix.
func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

func TestLabChartNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *report.Report
		want []string
	}{
		// A lab run of its own: its charts by their plain names (and stream's, one size).
		{"lab run", labReport(), append([]string{"goodput_by_size.svg", "msgs_by_size.svg"}, labChartNames...)},
		// The lab section of the default suite: its charts after the loopback ones, prefixed.
		{"lab section", withLab(), append(slices.Clone(loopbackCharts), prefixed("lab_", labChartNames)...)},
		{"no lab", chartReport(), loopbackCharts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChartNames(tc.r); !slices.Equal(got, tc.want) {
				t.Errorf("ChartNames = %v, want %v", got, tc.want)
			}
			got, err := Charts(t.TempDir(), tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Charts wrote %v, want %v", got, tc.want)
			}
		})
	}
}

// svgPath is one <path> of an SVG document: its vertices and its style.
type svgPath struct {
	vertices int // M and L commands
	style    string
}

// svgPaths returns the paths of an SVG document, in document order.
func svgPaths(t *testing.T, b []byte) []svgPath {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var out []svgPath
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "path" {
			continue
		}
		var p svgPath
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "d":
				p.vertices = strings.Count(a.Value, "M") + strings.Count(a.Value, "L")
			case "style":
				p.style = a.Value
			}
		}
		out = append(out, p)
	}
}

// hexColor is c as an SVG style names it: "#0072B2".
func hexColor(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, b>>8)
}

// lines returns the vertex counts of the lines stroked in colour c at the series'
// width (glyphs are thinner), legend thumbnails (two vertices) left out, in
// document order.
func lines(paths []svgPath, c color.Color) []int {
	var out []int
	stroke := fmt.Sprintf("stroke:%s;stroke-width:%g", hexColor(c), lineWidth)
	for _, p := range paths {
		if strings.Contains(p.style+";", stroke+";") && p.vertices > 2 {
			out = append(out, p.vertices)
		}
	}
	return out
}

// fills counts the shapes filled with colour c.
func fills(paths []svgPath, c color.Color) int {
	n := 0
	for _, p := range paths {
		if strings.Contains(p.style, "fill:"+hexColor(c)) {
			n++
		}
	}
	return n
}

// TestLabChartsSVG draws labReport's charts and reads them back: titles, series
// labels, and a line of one vertex per point (a pair of bars per comparable cell).
func TestLabChartsSVG(t *testing.T) {
	dir := t.TempDir()
	if _, err := Charts(dir, withLab()); err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T, name string) (string, []svgPath) {
		t.Helper()
		b, texts := readChart(t, dir, name)
		return texts, svgPaths(t, b)
	}
	hasTexts := func(t *testing.T, texts string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(texts, w) {
				t.Errorf("no text %q; texts: %s", w, texts)
			}
		}
	}
	t.Run("hol", func(t *testing.T) {
		texts, paths := read(t, "lab_hol_latency_cdf.svg")
		hasTexts(t, texts, "One-way latency distribution (hol)", "one-way latency (ms)", "fraction of delivered messages slower", " tcp ", " udp ")
		// A point per CDF point: those below the maximum, then the maximum at one sample.
		if got := lines(paths, palette[0]); !slices.Equal(got, []int{5}) {
			t.Errorf("tcp lines of %v points, want [5]", got)
		}
		if got := lines(paths, palette[1]); !slices.Equal(got, []int{4}) {
			t.Errorf("udp lines of %v points, want [4]", got)
		}
	})
	t.Run("bottleneck", func(t *testing.T) {
		texts, paths := read(t, "lab_bottleneck_goodput.svg")
		hasTexts(t, texts, "Bottleneck: goodput over time, per 100 ms (link 50.0 Mbit/s)", "time since the flow started (s)",
			"tcp alone", "tcp beside the competitor", "udp alone", "udp beside the competitor", "competitor (udp, unresponsive)", "link rate 50.0 Mbit/s")
		for _, tc := range []struct {
			flow string
			c    color.Color
			want []int // the tcp panel's, then the udp panel's
		}{
			{report.FlowAlone, palette[0], []int{30, 25}},
			{report.FlowShared, palette[1], []int{29, 24}},
			{report.FlowCompetitor, palette[2], []int{31, 26}},
		} {
			if got := lines(paths, tc.c); !slices.Equal(got, tc.want) {
				t.Errorf("%s: lines of %v points, want %v", tc.flow, got, tc.want)
			}
		}
	})
	t.Run("injected", func(t *testing.T) {
		texts, paths := read(t, "lab_injected_vs_measured.svg")
		hasTexts(t, texts, "lost (TCP: retransmitted)", "duplicated", "reordered", "link (injected)", "measured",
			" stream ", " tcp ", " udp ",
			" 52 ", " 53 ", // tcp: the link lost 39 + 13 corrupted packets; 53 retransmits
			" 43 ", " 29 ") // udp: 32 + 11 lost, 29 reordered, both sides
		if strings.Contains(texts, "bottleneck") {
			t.Errorf("bottleneck's link counts cover both its phases and the competitor, yet it has bars: %s", texts)
		}
		// Three panels, each with a bar per comparable cell (stream tcp and udp) and a
		// legend entry, for the link and for the measurement.
		if got := fills(paths, palette[0]); got != 3*(2+1) {
			t.Errorf("%d measured bars and legend boxes, want 9", got)
		}
		if got := fills(paths, color.Gray{Y: 0xb0}); got != 3*(2+1) {
			t.Errorf("%d link bars and legend boxes, want 9", got)
		}
	})
}

// TestInjectedChartManyCells: past injectedFew comparable cells the panels stand one
// above the other, wide enough for every cell, and each cell names its size when
// sizes vary.
func TestInjectedChartManyCells(t *testing.T) {
	r := labReport()
	var more []report.Result
	for _, size := range []int{64, 512, 1400, 8192} {
		for _, res := range r.Results[:2] { // stream tcp and udp
			res.Params.Size = size
			more = append(more, res)
		}
	}
	r.Results = append(r.Results, more...)
	dir := t.TempDir()
	if _, err := Charts(dir, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "injected_vs_measured.svg"))
	if err != nil {
		t.Fatal(err)
	}
	texts, err := svgText(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{" 64 B ", " 512 B ", " 1400 B ", " 8 KiB ", " 1 KiB "} {
		if !strings.Contains(texts, w) {
			t.Errorf("no cell names size %q; texts: %s", w, texts)
		}
	}
	var root struct {
		W string `xml:"width,attr"`
		H string `xml:"height,attr"`
	}
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	cells := 10 // stream tcp and udp at 1024 B and four more sizes; bottleneck left out
	w, errW := strconv.ParseFloat(strings.TrimSuffix(root.W, "pt"), 64)
	h, errH := strconv.ParseFloat(strings.TrimSuffix(root.H, "pt"), 64)
	if err := errors.Join(errW, errH); err != nil {
		t.Fatalf("svg size %q x %q: %v", root.W, root.H, err)
	}
	if want := float64(cells) * injectedCellW.Points(); math.Abs(w-want) > 0.01 || h < 3*panelH.Points() {
		t.Errorf("svg %v x %v pt, want %v wide (%d cells) and three panels high (>= %v)", w, h, want, cells, 3*panelH.Points())
	}
	if got := fills(svgPaths(t, b), palette[0]); got != 3*(cells+1) {
		t.Errorf("%d measured bars and legend boxes, want %d", got, 3*(cells+1))
	}
}

func TestLabChartsNeedTheirData(t *testing.T) {
	only := func(exps ...string) func(*report.Report) {
		return func(r *report.Report) {
			r.Results = slices.DeleteFunc(r.Results, func(res report.Result) bool { return !slices.Contains(exps, res.Experiment) })
		}
	}
	each := func(exp string, f func(*report.Result)) func(*report.Report) {
		return func(r *report.Report) {
			for i := range r.Results {
				if r.Results[i].Experiment == exp {
					f(&r.Results[i])
				}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*report.Report)
		want   []string
	}{
		{"all", func(*report.Report) {}, labChartNames},
		{"hol only", only(report.ExpHOL), []string{"hol_latency_cdf.svg"}},
		{"bottleneck only", only(report.ExpBottleneck), []string{"bottleneck_goodput.svg"}}, // its link counts are not comparable
		{"stream only", only(report.ExpStream), []string{"injected_vs_measured.svg"}},
		{"hol without latency", each(report.ExpHOL, func(res *report.Result) { res.Observed = nil }), []string{"bottleneck_goodput.svg", "injected_vs_measured.svg"}},
		{"hol latency without samples", each(report.ExpHOL, func(res *report.Result) {
			res.Observed = map[string]any{report.ObsLatency.Key(): &report.LatencyStats{}}
		}), []string{"bottleneck_goodput.svg", "injected_vs_measured.svg"}},
		{"bottleneck without time lines", each(report.ExpBottleneck, func(res *report.Result) { res.Timelines = nil }), []string{"hol_latency_cdf.svg", "injected_vs_measured.svg"}},
		{"time lines of one point", each(report.ExpBottleneck, func(res *report.Result) {
			for i := range res.Timelines {
				res.Timelines[i].Points = res.Timelines[i].Points[:1]
			}
		}), []string{"hol_latency_cdf.svg", "injected_vs_measured.svg"}},
		{"no injected", func(r *report.Report) {
			for i := range r.Results {
				r.Results[i].Injected = nil
			}
		}, []string{"hol_latency_cdf.svg", "bottleneck_goodput.svg"}},
		{"failed cells", func(r *report.Report) {
			for i := range r.Results {
				r.Results[i].Error = "boom"
			}
		}, nil},
		{"empty", func(r *report.Report) { r.Results = nil }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := labReport()
			tc.change(r)
			// stream's own charts (by size) come and go with stream; not checked here.
			gotLab := slices.DeleteFunc(ChartNames(r), func(n string) bool { return !slices.Contains(labChartNames, n) })
			if !slices.Equal(gotLab, tc.want) {
				t.Errorf("lab charts %v, want %v", gotLab, tc.want)
			}
			got, err := Charts(t.TempDir(), r)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, ChartNames(r)) {
				t.Errorf("Charts wrote %v, ChartNames says %v", got, ChartNames(r))
			}
			// The same data as the lab section of a suite: the same charts, prefixed.
			top := chartReport()
			top.Lab = r
			if got, want := ChartNames(top)[len(loopbackCharts):], prefixed("lab_", gotLab); !slices.Equal(got, want) {
				t.Errorf("as a lab section: %v, want %v", got, want)
			}
		})
	}
}

// TestLabChartsFromJSON: a report read back from its JSON file draws the same
// charts, byte for byte (hol's latency observation comes back as a JSON object).
func TestLabChartsFromJSON(t *testing.T) {
	r := withLab()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := report.ReadReport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Lab.Results[2].Observed[report.ObsLatency.Key()].(map[string]any); !ok {
		t.Fatalf("hol latency read back as %T, want a JSON object", back.Lab.Results[2].Observed[report.ObsLatency.Key()])
	}
	a, b := t.TempDir(), t.TempDir()
	na, err := Charts(a, r)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := Charts(b, back)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(na, nb) || !slices.Contains(na, "lab_hol_latency_cdf.svg") {
		t.Fatalf("charts %v, read back %v; want lab_hol_latency_cdf.svg among them", na, nb)
	}
	for _, n := range na {
		x, _ := os.ReadFile(filepath.Join(a, n))
		y, _ := os.ReadFile(filepath.Join(b, n))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs once the report is read back from JSON", n)
		}
	}
}

// TestMarkdownLinksLabCharts: each lab chart sits in its section, in the lab part of
// a suite's report and in a lab run's own report.
func TestMarkdownLinksLabCharts(t *testing.T) {
	sections := []struct{ title, image string }{
		{"Head-of-line blocking (hol)", "hol_latency_cdf.svg"},
		{"A congested link (bottleneck)", "bottleneck_goodput.svg"},
		{"Emulated link: injected vs measured", "injected_vs_measured.svg"},
	}
	for _, tc := range []struct {
		name   string
		r      *report.Report
		prefix string
	}{{"lab section", withLab(), "lab_"}, {"lab run", labReport(), ""}} {
		t.Run(tc.name, func(t *testing.T) {
			text, md := renderBoth(t, tc.r)
			for _, s := range sections {
				img := tc.prefix + s.image
				if strings.Contains(text, img) {
					t.Errorf("text output mentions chart %s", img)
				}
				i := strings.Index(md, "# "+s.title+"\n")
				if i < 0 {
					t.Errorf("no section %q", s.title)
					continue
				}
				sec := md[i+len(s.title)+3:]
				if j := strings.Index(sec, "\n#"); j >= 0 {
					sec = sec[:j]
				}
				if !strings.Contains(sec, "("+img+")") {
					t.Errorf("section %q does not show %s:\n%s", s.title, img, sec)
				}
				want := 1
				if s.image == "injected_vs_measured.svg" {
					want = 2 // in its own section and in the stream section, whose cells most of its bars are
				}
				if n := strings.Count(md, "("+img+")"); n != want {
					t.Errorf("%s linked %d times, want %d", img, n, want)
				}
			}
		})
	}
}
