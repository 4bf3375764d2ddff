// Package render turns a report (bench/report) into what people read: terminal
// tables (Text), a markdown report (Markdown) and SVG charts (Charts). It formats and
// never computes: everything it prints is in the report, so a report.json renders
// the same later, on another host.
package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// This file renders a Report as terminal tables, and holds the table model both
// renderers share: Text and Markdown show the same tables, built once by
// buildSections. Renderers format; they compute nothing but shares of figures already
// in the report (lost as a percentage of sent).

// Text writes r as plain-ASCII terminal tables, the answer first: a header saying
// where and how the run happened and the verdict (one row per property: what TCP and
// what UDP did, in a few words with the key figure). Then, by default, a compact
// table of each measurement experiment's key figures (writeCompact) and a line
// saying what -v adds and where the full report is (FullReport), so that a default
// run ends with the verdict on a 40-row screen. Verbose prints instead each
// property's claim, sentences and evidence, then every experiment's tables with TCP
// and UDP side by side and notes on how they were measured, and the warnings. No
// line is wider than Width (DefaultWidth unless set).
func Text(w io.Writer, r *report.Report, opts ...TextOption) error {
	cfg := textConfig{width: DefaultWidth}
	for _, o := range opts {
		o(&cfg)
	}
	width := cfg.width
	var b bytes.Buffer
	line := func(s string) {
		b.WriteString(wrapText(s, width, "  "))
		b.WriteString("\n")
	}
	indented := func(s string) { // a line of a list under a heading line
		b.WriteString("  " + strings.ReplaceAll(wrapText(s, width-2, "  "), "\n", "\n  "))
		b.WriteString("\n")
	}
	line("tcpvsudp: " + orDash(textHeader(r)))
	if r.Config.Command != "" {
		line("command: " + r.Config.Command)
	}
	if r.Incomplete != "" {
		line("incomplete: " + r.Incomplete)
	}
	if len(r.NotRun) > 0 {
		line("not run: " + cellList(r.NotRun, maxNotRun))
	}
	if len(r.Properties) > 0 {
		b.WriteString("\nVerdict\n")
		if err := writeTextTable(&b, verdictTable(r), width); err != nil {
			return fmt.Errorf("render text: verdict: %w", err)
		}
		if hasLab(r) {
			line(labNote)
		}
		if cfg.verbose {
			b.WriteString("\nProperties in detail\n")
			for _, p := range r.Properties {
				b.WriteString("\n")
				line(p.Property + ": " + p.Claim)
				indented("TCP: " + orDash(p.TCP))
				indented("UDP: " + orDash(p.UDP))
				if items := evidenceItems(p.Evidence); len(items) > 0 {
					parts := make([]string, len(items))
					for i, it := range items {
						parts[i] = it.name + " " + it.value
					}
					indented("measured (" + evidenceSource(p.Evidence) + "): " + strings.Join(parts, ", "))
				}
			}
		}
	}
	if !cfg.verbose {
		if err := writeCompact(&b, r, cfg, line); err != nil {
			return err
		}
		_, err := w.Write(b.Bytes())
		return err
	}
	writeSections := func(sections []section, what string) error {
		for _, s := range sections {
			b.WriteString("\n")
			line(s.title)
			switch {
			case s.note != "":
				line(s.note)
			case s.params != "":
				line(s.params)
			}
			for i, t := range s.tables {
				if i > 0 {
					b.WriteString("\n")
				}
				if t.caption != "" {
					line(t.caption + ":")
				}
				if err := writeTextTable(&b, t, width); err != nil {
					return fmt.Errorf("render text: %s%s: %w", what, s.exp, err)
				}
			}
			for _, l := range s.also {
				line("also counted: " + l)
			}
			for _, l := range s.notMeasured {
				line("not measured: " + l)
			}
		}
		return nil
	}
	if err := writeSections(buildSections(r), ""); err != nil {
		return err
	}
	if r.Lab != nil {
		b.WriteString("\nAcross an emulated link\n")
		line(labIntro(r.Lab))
		if err := writeSections(buildSections(r.Lab), "lab "); err != nil {
			return err
		}
	}
	if ws := warnings(r); len(ws) > 0 {
		b.WriteString("\n")
		for _, l := range ws {
			line("warning: " + l)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeCompact writes what follows the verdict when Text is not verbose: a compact
// table per measurement experiment (its key figures), the emulated-link section as
// compact (its property rows are in the verdict), and a last line saying what -v
// adds and where the full report is. The property experiments' tables, each
// section's notes and the warnings are left to -v and the markdown report: the
// verdict has their gist, and the output ends with the verdict still on screen.
func writeCompact(b *bytes.Buffer, r *report.Report, cfg textConfig, line func(string)) error {
	// The tables, and the last line, follow one another without blank lines: each
	// header names its experiment, and every line saved keeps the verdict on screen
	// (a default run on loopback prints 40 lines at 100 columns).
	noisy := false // some compact figure carries noisyMark: the last line says what it means
	write := func(sections []section, what string) error {
		for _, s := range sections {
			if s.skipped {
				line(s.title + ": not run (-v says why)")
				continue
			}
			for _, t := range s.compact {
				noisy = noisy || t.noisy
				if err := writeTextTable(b, t, cfg.width); err != nil {
					return fmt.Errorf("render text: %s%s: %w", what, s.exp, err)
				}
			}
			switch {
			case len(s.compact) > 0:
				for _, l := range s.notMeasured {
					line("not measured: " + l)
				}
			case len(s.notMeasured) > 0: // a table only -v shows: one line for its failures
				line(fmt.Sprintf("%s: %d cell%s not measured (-v says why)", s.title, len(s.notMeasured), plural(len(s.notMeasured))))
			}
		}
		return nil
	}
	b.WriteString("\n")
	if err := write(buildSections(r), ""); err != nil {
		return err
	}
	if r.Lab != nil {
		b.WriteString("\n")
		line(labTitle(r.Lab) + labStatus(r.Lab))
		if err := write(buildSections(r.Lab), "lab "); err != nil {
			return err
		}
	}
	line(compactFooter(cfg, len(warnings(r)), noisy))
	return nil
}

// compactFooter is the last line of the compact rendering: what a noisy mark means
// when a figure carries one, what -v adds (every table, and the warnings, counted)
// and where the full report is.
func compactFooter(cfg textConfig, warns int, noisy bool) string {
	s := "-v: every table"
	if noisy {
		s = fmt.Sprintf("%s = runs over %g%% apart; ", strings.TrimSpace(noisyMark), 100*report.NoisyRange) + s
	}
	if warns > 0 {
		s += fmt.Sprintf(" and %d warning%s", warns, plural(warns))
	}
	if cfg.fullReport != "" {
		s += "; report: " + cfg.fullReport
	}
	return s
}

// compactTable is a figure table drawn plain, for the compact rendering: its first
// column, the message size, is headed by the experiment's name, which says what
// the table is in the line a title would take.
func compactTable(exp string, cols []param, trs []string, cells []*paramRow, figs []figure) table {
	t := figureTableOf("", cols, trs, cells, figs, true)
	t.plain = true
	if len(t.head) > 0 && len(cols) > 0 && cols[0].head == "size" {
		t.head[0] = exp
	}
	return t
}

// pickFigures are the figures of figs headed heads, in that order: a compact
// table's columns.
func pickFigures(figs []figure, heads ...string) []figure {
	var out []figure
	for _, h := range heads {
		for _, f := range figs {
			if f.head == h {
				out = append(out, f)
			}
		}
	}
	return out
}

// textHeader is the one-line summary of where and how the run happened.
func textHeader(r *report.Report) string {
	e, c := r.Env, r.Config
	parts := []string{}
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if e.Host != "" {
		add("host " + e.Host)
	}
	add(strings.TrimSpace(e.OS + " " + e.Kernel + archSuffix(e.Arch)))
	add(e.Go)
	if e.CPUs > 0 {
		add(fmt.Sprintf("%d CPUs (GOMAXPROCS %d)", e.CPUs, e.GOMAXPROCS))
	}
	add(strings.TrimSpace(e.Link.Kind + " " + e.Link.Addr))
	if p := e.Peer; p != nil {
		add(fmt.Sprintf("server host %s (%s, %d CPUs)", p.Host, strings.TrimSpace(p.OS+" "+p.Kernel+archSuffix(p.Arch)), p.CPUs))
	}
	if len(e.Link.Impair) > 0 {
		add("impair " + kvList(e.Link.Impair))
	}
	add(runLength(c))
	if c.BusyPoll {
		add("busy-poll receivers")
	}
	if !c.PayloadsVerified() {
		add("payloads not verified (--verify " + c.Verify + ")")
	}
	if c.Repeat > 1 {
		add(fmt.Sprintf("repeat %d", c.Repeat))
	}
	if c.Started != "" {
		add("started " + c.Started)
	}
	return strings.Join(parts, ", ")
}

func archSuffix(arch string) string {
	if arch == "" {
		return ""
	}
	return "/" + arch
}

// runLength says how long each run of a cell ran: a duration or a message count.
func runLength(c report.Config) string {
	switch {
	case c.Count > 0:
		return units.Count(c.Count) + " msgs per stream"
	case c.DurationS > 0:
		return units.Secs(c.DurationS) + " per run"
	}
	return ""
}

// table is one rendered table: a header row, data rows and per-column alignment.
type table struct {
	caption string   // shown above the table; "" for none
	head    []string // column names
	right   []bool   // right-align column i (figures); labels align left
	rows    [][]string
	strict  bool // cells hold free text (error messages): escape markdown syntax too
	// groups, when set, lets a table too wide for the terminal split by columns:
	// column i belongs to group groups[i]; -1 marks a label column every part repeats.
	groups []int
	// keepLabel keeps the first column unwrapped while the others can narrow, so
	// that a wrapped row still reads as one row.
	keepLabel bool
	repeats   bool // some figure is a median of several runs (measured)
	noisy     bool // some figure carries noisyMark
	// plain draws the table without borders or a header line, as benchstat does:
	// the compact tables, a line per row and one for the header.
	plain bool
}

// section is one experiment's part of the report.
type section struct {
	exp    string
	title  string
	params string // what was run: "1 stream, unpaced, 3.00 s per cell."; "" when nothing to say
	note   string // what was run and how to read it
	tables []table
	// compact is the key figures of a measurement experiment, the table the terminal
	// shows unless verbose; empty for the others, whose gist is the verdict's.
	compact []table
	also    []string // non-zero counters the tables do not show
	// notMeasured says, per cell that failed or was interrupted, why it has no
	// figures: "tcp, size 64 B: interrupted (...) after 1.21 s, ...".
	notMeasured []string
	skipped     bool // no cell ran (a far end that cannot run it yet)
}

// writeTable renders t with tablewriter: the ASCII blueprint for terminals, the
// markdown renderer (cells escaped) for reports. Header auto-format is off, so
// column names keep their case ("RTT p50 tcp", not "RTT P50 TCP").
func writeTable(w io.Writer, t table, md bool) error {
	align := make(tw.Alignment, len(t.head))
	for i := range align {
		align[i] = tw.AlignLeft
		if i < len(t.right) && t.right[i] {
			align[i] = tw.AlignRight
		}
	}
	var rend tw.Renderer = renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})
	if t.plain {
		rend = renderer.NewBlueprint(tw.Rendition{
			Symbols: tw.NewSymbols(tw.StyleASCII),
			Borders: tw.BorderNone,
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off, ShowHeader: tw.Off, ShowFooter: tw.Off},
				Lines:      tw.Lines{ShowTop: tw.Off, ShowBottom: tw.Off, ShowHeaderLine: tw.Off, ShowFooterLine: tw.Off},
			},
		})
	}
	esc := func(s string) string { return s }
	if md {
		rend = renderer.NewMarkdown()
		esc = mdCell
		if t.strict {
			esc = mdStrict
		}
	}
	tbl := tablewriter.NewTable(w,
		tablewriter.WithRenderer(rend),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	)
	head := make([]string, len(t.head))
	for i, h := range t.head {
		head[i] = esc(h)
	}
	tbl.Header(head)
	for _, row := range t.rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = esc(c)
		}
		if err := tbl.Append(cells); err != nil {
			return err
		}
	}
	return tbl.Render()
}

// propertiesTable is the markdown properties table: each claim and what each
// transport did, in a few words with the key figure (verdict); the sentences and
// evidence follow in each property's section.
func propertiesTable(r *report.Report) table {
	t := table{head: []string{"property", "claim", "TCP", "UDP"}}
	for _, p := range r.Properties {
		tcp, udp := verdict(p)
		t.rows = append(t.rows, []string{p.Property, p.Claim, tcp, udp})
	}
	return t
}

// anyValue formats one evidence value: numbers without exponents, strings as they are,
// anything else as JSON.
func anyValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool, json.Number:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// kvList renders a string map as "k=v, ..." sorted by key.
func kvList(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// warnings lists run-wide warnings, then each result's, prefixed with the result;
// then the emulated-link section's, prefixed "lab" (its run-wide ones unless the
// run has them too).
func warnings(r *report.Report) []string {
	out := slices.Clone(r.Warnings)
	of := func(rs []report.Result, lab string) {
		for _, res := range rs {
			for _, w := range res.Warnings {
				out = append(out, fmt.Sprintf("%s%s %s, %s: %s", lab, res.Experiment, res.Transport, paramsLabel(res.Params), w))
			}
		}
	}
	of(r.Results, "")
	if r.Lab != nil {
		for _, w := range r.Lab.Warnings {
			if !slices.Contains(r.Warnings, w) {
				out = append(out, "lab: "+w)
			}
		}
		of(r.Lab.Results, "lab ")
	}
	return out
}

// paramsLabel names a result's parameters compactly: "size 1400 B, 4 streams".
func paramsLabel(p report.Params) string {
	parts := []string{fmt.Sprintf("size %d B", p.Size)}
	if p.Streams > 1 {
		parts = append(parts, fmt.Sprintf("%d streams", p.Streams))
	}
	if p.RateBps > 0 {
		parts = append(parts, "rate "+units.Bps(p.RateBps))
	}
	if directionKey(p) > 0 {
		parts = append(parts, direction(p))
	}
	if p.IO == report.IOTextbook {
		parts = append(parts, "textbook I/O")
	}
	return strings.Join(parts, ", ")
}

// transportOrder is the column order: as r.Config.Transports lists them, then any
// other transport a result names, in the order results name it.
func transportOrder(r *report.Report) []string {
	var out []string
	for _, t := range r.Config.Transports {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, res := range r.Results {
		if !slices.Contains(out, res.Transport) {
			out = append(out, res.Transport)
		}
	}
	return out
}

// experimentOrder lists the experiments that have results: as r.Config.Experiments
// lists them, then any other in the order results name it.
func experimentOrder(r *report.Report) []string {
	has := map[string]bool{}
	for _, res := range r.Results {
		has[res.Experiment] = true
	}
	var out []string
	for _, e := range r.Config.Experiments {
		if has[e] && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	for _, res := range r.Results {
		if !slices.Contains(out, res.Experiment) {
			out = append(out, res.Experiment)
		}
	}
	return out
}

// paramRow is one table row's worth of results: one set of parameters, one result per
// transport at most.
type paramRow struct {
	p   report.Params
	res map[string]*report.Result
	// replies: its experiment counts replies (report.Section.Replies), so its
	// lost_msgs only repeats its timeouts.
	replies bool
}

// paramRows groups an experiment's results by parameters, sorted by size, streams,
// rate, duration and count. A second result for the same parameters and transport
// opens another row rather than hiding the first.
func paramRows(r *report.Report, exp string) []*paramRow {
	var cells []*paramRow
	replies := r.SectionOf(exp).Replies
	for i := range r.Results {
		res := &r.Results[i]
		if res.Experiment != exp {
			continue
		}
		var c *paramRow
		for _, x := range cells {
			if x.p == res.Params && x.res[res.Transport] == nil {
				c = x
				break
			}
		}
		if c == nil {
			c = &paramRow{p: res.Params, res: map[string]*report.Result{}, replies: replies}
			cells = append(cells, c)
		}
		c.res[res.Transport] = res
	}
	slices.SortStableFunc(cells, func(a, b *paramRow) int {
		if a.p.Size != b.p.Size {
			return a.p.Size - b.p.Size
		}
		if a.p.Streams != b.p.Streams {
			return a.p.Streams - b.p.Streams
		}
		if a.p.RateBps != b.p.RateBps {
			return cmpFloat(a.p.RateBps, b.p.RateBps)
		}
		if a.p.DurationS != b.p.DurationS {
			return cmpFloat(a.p.DurationS, b.p.DurationS)
		}
		return cmpFloat(float64(a.p.Count), float64(b.p.Count))
	})
	return cells
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// param is one parameter a row can be labelled by.
type param struct {
	head  string
	label func(report.Params) string
	key   func(report.Params) float64
}

var params = []param{
	{"size", func(p report.Params) string { return fmt.Sprintf("%d B", p.Size) }, func(p report.Params) float64 { return float64(p.Size) }},
	{"streams", func(p report.Params) string { return strconv.Itoa(p.Streams) }, func(p report.Params) float64 { return float64(p.Streams) }},
	{"rate", func(p report.Params) string { return rateLabel(p.RateBps) }, func(p report.Params) float64 { return p.RateBps }},
	{"duration", func(p report.Params) string { return units.Secs(p.DurationS) }, func(p report.Params) float64 { return p.DurationS }},
	{"count", func(p report.Params) string { return units.Count(p.Count) }, func(p report.Params) float64 { return float64(p.Count) }},
	{"direction", direction, func(p report.Params) float64 { return float64(directionKey(p)) }},
	{"UDP I/O", udpIO, func(p report.Params) float64 { return float64(len(p.IO)) }},
}

// udpIO names a UDP stream cell's I/O mode (Params.IO): batched or textbook.
func udpIO(p report.Params) string {
	if p.IO == "" {
		return report.IOBatched
	}
	return p.IO
}

// direction names which way a stream ran in remote mode: forward (this host sends),
// reverse (the server sends) or bidir (both at once, the figures both ways summed).
func direction(p report.Params) string {
	return [...]string{"forward", "reverse", "bidir"}[directionKey(p)]
}

func directionKey(p report.Params) int {
	switch {
	case p.Bidir:
		return 2
	case p.Reverse:
		return 1
	}
	return 0
}

// directionText describes a stream's direction when it is not forward; "" when it is.
func directionText(p report.Params) string {
	switch {
	case p.Bidir:
		return "both ways at once (--bidir: each figure is the two directions summed, observed splits them)"
	case p.Reverse:
		return "reverse (--reverse: the server sends)"
	}
	return ""
}

func rateLabel(v float64) string {
	if v == 0 {
		return "unpaced"
	}
	return units.Bps(v)
}

// labelParams splits the parameters into those that label rows (size always, the
// others when they vary between rows) and a description of those that do not vary.
// Only a throughput section (Section.Layout) describes streams and a rate: the
// others, request/response experiments among them, do not say "1 stream, unpaced".
func labelParams(sec report.Section, cells []*paramRow) (cols []param, fixed string) {
	var desc []string
	for i, pr := range params {
		varies := false
		for _, c := range cells {
			varies = varies || pr.key(c.p) != pr.key(cells[0].p)
		}
		if i == 0 || varies {
			cols = append(cols, pr)
			continue
		}
		if len(cells) == 0 {
			continue
		}
		p := cells[0].p
		if sec.Layout != report.LayoutThroughput && (pr.head == "streams" || pr.head == "rate") {
			continue
		}
		switch pr.head {
		case "streams":
			if p.Streams == 1 {
				desc = append(desc, "1 stream")
			} else if p.Streams > 1 {
				desc = append(desc, fmt.Sprintf("%d streams", p.Streams))
			}
		case "rate":
			desc = append(desc, rateLabel(p.RateBps))
		case "duration":
			if p.DurationS > 0 && p.Count == 0 {
				desc = append(desc, units.Secs(p.DurationS)+" per run")
			}
		case "count":
			if p.Count > 0 {
				desc = append(desc, units.Count(p.Count)+" msgs per stream")
			}
		case "direction":
			if d := directionText(p); d != "" {
				desc = append(desc, d)
			}
		}
	}
	return cols, strings.Join(desc, ", ")
}

// figure is one metric column group: one column per transport.
type figure struct {
	head  string // "goodput"; the transport name follows
	ci    string // key in Repeat.CI, as repeat.go names it ("goodput_bps", "rtt_p99_ns"); "" when none
	ciFmt func(iv report.Interval, runs int) string
	cell  func(m *report.Metrics) (string, bool) // false: not measured
}

func ciBps(iv report.Interval, runs int) string   { return interval(iv, runs, units.BpsUnits, true) }
func ciDur(iv report.Interval, runs int) string   { return interval(iv, runs, units.DurUnits, true) }
func ciSI(iv report.Interval, runs int) string    { return interval(iv, runs, units.SIUnits, false) }
func ciCount(iv report.Interval, runs int) string { return interval(iv, runs, units.SIUnits, true) }

func always(s string) (string, bool) { return s, true }

// optCount formats a figure a transport may not measure.
func optCount(v *uint64) (string, bool) {
	if v == nil {
		return "-", false
	}
	return units.Count(*v), true
}

// percentile formats one RTT percentile; a nil one had too few samples (PITFALLS 10).
func percentile(pick func(*report.LatencyStats) *int64) func(m *report.Metrics) (string, bool) {
	return func(m *report.Metrics) (string, bool) {
		if m.RTT == nil {
			return "-", false
		}
		v := pick(m.RTT)
		if v == nil {
			return fmt.Sprintf("n/a (%s samples)", units.Count(m.RTT.Samples)), true
		}
		return units.Dur(float64(*v)), true
	}
}

func rttMax(m *report.Metrics) (string, bool) {
	if m.RTT == nil {
		return "-", false
	}
	if m.RTT.Samples == 0 {
		return "n/a (0 samples)", true
	}
	return units.Dur(float64(m.RTT.Max)), true
}

// unanswered formats the requests of a request/response cell that had no reply
// within the timeout, of those sent: never "lost", since a TCP request is never lost
// and a UDP one may only be late.
func unanswered(m *report.Metrics) (string, bool) {
	return units.CountOf(m.Timeouts, m.SentMsgs), true
}

var (
	streamRate = []figure{
		{"goodput", "goodput_bps", ciBps, func(m *report.Metrics) (string, bool) { return always(units.Bps(m.GoodputBps)) }},
		{"msgs/s", "msgs_per_s", ciSI, func(m *report.Metrics) (string, bool) { return always(units.SI(m.MsgsPerS)) }},
		{"sender rate", "send_rate_bps", ciBps, func(m *report.Metrics) (string, bool) { return always(units.Bps(m.SendRateBps)) }},
		{"CPU s/GB", "cpu_s_per_gb", ciNum, func(m *report.Metrics) (string, bool) {
			if m.CPUSecPerGB == nil {
				return "-", false
			}
			return units.Num(*m.CPUSecPerGB), true
		}},
	}
	streamDelivery = []figure{
		{"lost", "lost_msgs", ciCount, func(m *report.Metrics) (string, bool) { return always(units.CountOf(m.LostMsgs, m.SentMsgs)) }},
		{"reordered", "", nil, func(m *report.Metrics) (string, bool) { return always(units.Count(m.ReorderedMsgs)) }},
		{"duplicates", "", nil, func(m *report.Metrics) (string, bool) { return always(units.Count(m.DupMsgs)) }},
		{"retransmits", "", nil, func(m *report.Metrics) (string, bool) { return optCount(m.Retransmits) }},
		{"socket drops", "", nil, func(m *report.Metrics) (string, bool) { return optCount(m.DropsSocket) }},
		{"sender drops", "", nil, func(m *report.Metrics) (string, bool) { return always(units.Count(m.DropsSender)) }},
		{"jitter", "jitter_ns", ciDur, func(m *report.Metrics) (string, bool) {
			if m.JitterNs == nil {
				return "-", false
			}
			return units.Dur(*m.JitterNs), true
		}},
	}
	pingpongFigures = []figure{
		{"RTT p50", "rtt_p50_ns", ciDur, percentile(func(l *report.LatencyStats) *int64 { return l.P50 })},
		{"RTT p90", "rtt_p90_ns", ciDur, percentile(func(l *report.LatencyStats) *int64 { return l.P90 })},
		{"RTT p99", "rtt_p99_ns", ciDur, percentile(func(l *report.LatencyStats) *int64 { return l.P99 })},
		{"RTT p99.9", "rtt_p999_ns", ciDur, percentile(func(l *report.LatencyStats) *int64 { return l.P999 })},
		{"RTT max", "rtt_max_ns", ciDur, rttMax},
		{"round trips/s", "msgs_per_s", ciSI, func(m *report.Metrics) (string, bool) { return always(units.SI(m.MsgsPerS)) }},
		{"CPU", "", nil, cpuCores},
		{"unanswered", "", nil, unanswered},
	}
	connectFigures = []figure{
		{"answer p50", "rtt_p50_ns", ciDur, percentile(func(l *report.LatencyStats) *int64 { return l.P50 })},
		{"answer p99", "rtt_p99_ns", ciDur, percentile(func(l *report.LatencyStats) *int64 { return l.P99 })},
		{"answer max", "rtt_max_ns", ciDur, rttMax},
		{"transactions/s", "transactions_per_s", ciSI, func(m *report.Metrics) (string, bool) { return always(units.SI(m.TransPerS)) }},
		{"unanswered", "", nil, unanswered},
		{"server sockets", "", nil, func(m *report.Metrics) (string, bool) { return always(units.Count(uint64(max(m.ServerSockets, 0)))) }},
	}
)

func ciNum(iv report.Interval, runs int) string {
	return interval(iv, runs, []units.Unit{{Div: 1}}, false)
}

// alsoKeys are counters a layout's figure tables do not show; when non-zero they
// are listed under the tables so no anomaly goes unseen.
var alsoKeys = map[string][]string{
	report.LayoutThroughput: {"corrupt_msgs", "malformed_msgs", "foreign_msgs", "drops_network"},
	report.LayoutLatency:    {"dup_msgs", "reordered_msgs", "corrupt_msgs", "malformed_msgs", "foreign_msgs", "late_msgs"},
	report.LayoutSetup:      {"dup_msgs", "reordered_msgs", "corrupt_msgs", "malformed_msgs", "foreign_msgs", "late_msgs"},
}

// figureLayout reports whether layout has figure tables of its own (throughput,
// latency, setup); what its experiment observes beyond its metrics follows in an
// extra table. Any other layout, one this renderer does not know among them, is a
// generic table.
func figureLayout(layout string) bool {
	switch layout {
	case report.LayoutThroughput, report.LayoutLatency, report.LayoutSetup:
		return true
	}
	return false
}

// buildSections turns the results into one section per experiment, each laid out
// as the report's section for it says (report.Report.SectionOf): a report without
// sections, written before they existed, gets a generic table per experiment,
// headed by its name.
func buildSections(r *report.Report) []section {
	trs := transportOrder(r)
	var out []section
	for _, exp := range experimentOrder(r) {
		sec := r.SectionOf(exp)
		cells := paramRows(r, exp)
		cols, fixed := labelParams(sec, cells)
		s := section{exp: exp, title: sec.Title}
		if s.title == "" {
			s.title = exp
		}
		switch {
		case allSkipped(cells):
			// Not run (a far end that cannot run it yet): the skipped table says why.
			s.skipped = true
			pcols, pfixed := observedParams(sec, cells)
			s.note = sentence(pfixed) + "Not run."
			s.params = s.note
			s.tables = []table{observedTable("", pcols, trs, cells, false)}
			out = append(out, s)
			continue
		}
		switch sec.Layout {
		case report.LayoutThroughput:
			s.params = strings.TrimSpace(sentence(fixed))
			s.note = sentence(fixed) + "Goodput and msgs/s are measured at the receiver and lead; sender rate is what the sender handed to the kernel. " +
				"Lost = sent - unique received, after " + drainText(r) + "." + jitterClockText(cells, trs)
			s.tables = []table{
				figureTable("Rate", cols, trs, cells, streamRate),
				figureTable("Loss, order and jitter", cols, trs, cells, streamDelivery),
			}
			s.compact = []table{compactTable(exp, cols, trs, cells, pickFigures(append(slices.Clone(streamRate), streamDelivery...), "goodput", "lost"))}
		case report.LayoutLatency:
			s.params = strings.TrimSpace(sentence(fixed))
			s.note = sentence(fixed) + rttMode(cells) + timeoutText(r, trs) + cpuText(r, cells, trs)
			s.tables = []table{figureTable("", cols, trs, cells, pingpongFigures)}
			s.compact = []table{compactTable(exp, cols, trs, cells, pickFigures(pingpongFigures, "RTT p50", "RTT p99"))}
		case report.LayoutSetup:
			s.params = strings.TrimSpace(sentence(fixed))
			s.note = sentence(fixed) + "Answer = time to first answer" + answerText(trs) + ". " +
				"Server sockets = endpoints the server needed." + timeoutText(r, trs)
			s.tables = []table{figureTable("", cols, trs, cells, connectFigures)}
			s.compact = []table{compactTable(exp, cols, trs, cells, pickFigures(connectFigures, "answer p50", "server sockets"))}
		default:
			if hasObserved(cells) {
				pcols, pfixed := observedParams(sec, cells)
				s.params = strings.TrimSpace(sentence(pfixed))
				s.note = sentence(pfixed) + "What each transport showed (the JSON report has each row under its name in snake_case), then its non-zero counters."
				s.tables = []table{observedTable("", pcols, trs, cells, true)}
				break
			}
			s.params = strings.TrimSpace(sentence(fixed))
			s.note = sentence(fixed) + "No dedicated table for this experiment: every non-zero metric (the JSON report has each under its name in snake_case)."
			s.tables = []table{genericTable(cols, trs, cells)}
		}
		if figureLayout(sec.Layout) && hasObserved(cells) {
			pcols, _ := observedParams(sec, cells)
			s.tables = append(s.tables, observedTable("Observed", pcols, trs, cells, false))
		}
		if keys := alsoKeys[sec.Layout]; len(keys) > 0 {
			s.also = alsoCounted(cols, trs, cells, keys)
		}
		s.notMeasured = notMeasured(trs, cells)
		if slices.ContainsFunc(s.tables, func(t table) bool { return t.repeats }) {
			s.note += repeatNote(slices.ContainsFunc(s.tables, func(t table) bool { return t.noisy }))
		}
		out = append(out, s)
	}
	if s, ok := injectedSection(r); ok {
		out = append(out, s)
	}
	return out
}

// sentence turns a run description into a sentence prefix ("1 stream, 10.0 s per run. ").
func sentence(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:] + ". "
}

// answerText says what "first answer" takes for each transport the tables show.
func answerText(trs []string) string {
	var parts []string
	for _, tr := range trs {
		switch tr {
		case "tcp":
			parts = append(parts, "TCP dial + request + reply")
		case "udp":
			parts = append(parts, "UDP one request + reply")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

func drainText(r *report.Report) string {
	if r.Config.DrainS > 0 {
		return "a " + units.Secs(r.Config.DrainS) + " drain"
	}
	return "the drain"
}

// rttMode says whether RTTs are closed-loop or measured against a send timetable.
func rttMode(cells []*paramRow) string {
	for _, c := range cells {
		if c.p.RateBps > 0 || c.p.PingRate > 0 {
			return "RTT is request sent to reply received (not RTT/2); paced runs measure from each request's scheduled send time."
		}
	}
	return "Closed-loop RTT: request sent to reply received (not RTT/2)."
}

// cpuCores formats the process's CPU use over a cell's measured interval, in cores
// (CPU seconds per second): what spinning receivers (--busy-poll) cost shows here.
func cpuCores(m *report.Metrics) (string, bool) {
	if m.CPUSec <= 0 || m.RecvIntervalS <= 0 {
		return "-", false
	}
	return fmt.Sprintf("%.2f cores", m.CPUSec/m.RecvIntervalS), true
}

// cpuText explains the CPU column of the pingpong table, when it shows.
func cpuText(r *report.Report, cells []*paramRow, trs []string) string {
	shown := false
	for _, c := range cells {
		for _, tr := range trs {
			if res := c.res[tr]; res != nil {
				_, ok := cpuCores(&res.Metrics)
				shown = shown || ok
			}
		}
	}
	if !shown {
		return ""
	}
	s := " CPU = the process's user+sys CPU seconds per second of the cell, both ends (they share the process on loopback)."
	if r.Env.Link.Kind == "remote" {
		s = " CPU = this process's user+sys CPU seconds per second of the cell: the client's half only (the server's runs on its own host)."
	}
	if r.Config.BusyPoll {
		s += " Receivers busy-poll (--busy-poll): each spins on non-blocking reads instead of sleeping until data arrives, " +
			"which saves the wake-up and costs up to a full core while it waits."
	}
	return s
}

// jitterClockText says where the arrival times behind each transport's jitter came
// from, when the results record it.
func jitterClockText(cells []*paramRow, trs []string) string {
	var parts []string
	for _, tr := range trs {
		var kernel, all uint64
		known := false
		for _, c := range cells {
			res := c.res[tr]
			if res == nil || res.Metrics.JitterNs == nil || res.Metrics.JitterKernelMsgs == nil {
				continue
			}
			known = true
			kernel += *res.Metrics.JitterKernelMsgs
			all += res.Metrics.RecvMsgs
		}
		switch {
		case !known:
		case kernel > 0 && kernel >= all:
			parts = append(parts, tr+" from kernel receive timestamps (SO_TIMESTAMPNS)")
		case kernel > 0:
			parts = append(parts, fmt.Sprintf("%s from kernel receive timestamps for %s of %s messages, the rest read in user space", tr, units.Count(kernel), units.Count(all)))
		case tr == "tcp":
			parts = append(parts, "tcp read in user space when each receive call returned (a byte stream has no per-message arrival)")
		default:
			parts = append(parts, tr+" read in user space when each receive call returned")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " Jitter arrival times: " + strings.Join(parts, "; ") + "."
}

// timeoutText says what "unanswered" counts, for every transport: a TCP request is
// never lost, only not answered in time; a UDP one may be lost or late.
func timeoutText(r *report.Report, trs []string) string {
	within := "within the timeout"
	if r.Config.TimeoutS > 0 {
		within = "within " + units.Secs(r.Config.TimeoutS)
	}
	s := " Unanswered = requests with no reply " + within + " (the client moves on)"
	if slices.Contains(trs, "udp") {
		s += "; a UDP one may have been lost or only be late (late_msgs)"
	}
	return s + "."
}

// figureTable lays figures out with one column per transport, side by side, and
// drops a column no row has a figure for (retransmits for UDP, say).
func figureTable(caption string, cols []param, trs []string, cells []*paramRow, figs []figure) table {
	return figureTableOf(caption, cols, trs, cells, figs, false)
}

// figureTableOf is figureTable; medianOnly shows a figure of several runs as its
// median and noisyMark, leaving its range or CI to the full tables (the compact ones).
func figureTableOf(caption string, cols []param, trs []string, cells []*paramRow, figs []figure, medianOnly bool) table {
	t := table{caption: caption}
	t.addParamHeads(cols)
	for range cols {
		t.groups = append(t.groups, -1)
	}
	rows := make([][]string, len(cells))
	for i, c := range cells {
		for _, pr := range cols {
			rows[i] = append(rows[i], pr.label(c.p))
		}
	}
	// A transport with results but none measured still gets its first column, to say so.
	unmeasured := map[string]bool{}
	for _, tr := range trs {
		has, measured := false, false
		for _, c := range cells {
			if res := c.res[tr]; res != nil {
				has, measured = true, measured || res.Measured()
			}
		}
		unmeasured[tr] = has && !measured
	}
	for fi, f := range figs {
		for _, tr := range trs {
			col := make([]string, len(cells))
			any := fi == 0 && unmeasured[tr]
			for i, c := range cells {
				col[i] = "-"
				res := c.res[tr]
				if res == nil {
					continue
				}
				if report.Skipped(*res) {
					col[i] = "skipped"
					continue
				}
				if !res.Measured() {
					col[i] = "not measured" // no figure, not a zero: notMeasured says why
					continue
				}
				s, ok := f.cell(&res.Metrics)
				if ok && f.ci != "" && res.Repeat != nil {
					var noisy bool
					if medianOnly { // the median is what one run's format shows of the combined metrics
						if _, has := res.Repeat.CI[f.ci]; has && slices.Contains(res.Repeat.Noisy, f.ci) {
							s, noisy = s+noisyMark, true
						}
					} else {
						s, noisy = measured(f, res.Repeat, s)
					}
					t.repeats, t.noisy = true, t.noisy || noisy
				}
				col[i], any = s, any || ok
			}
			if !any {
				continue
			}
			t.head = append(t.head, f.head+" "+tr)
			t.right = append(t.right, true)
			t.groups = append(t.groups, fi)
			for i := range rows {
				rows[i] = append(rows[i], col[i])
			}
		}
	}
	t.rows = rows
	return t
}

// allSkipped reports whether every result of cells is a cell that did not run.
func allSkipped(cells []*paramRow) bool {
	for _, c := range cells {
		for _, res := range c.res {
			if !report.Skipped(*res) {
				return false
			}
		}
	}
	return len(cells) > 0
}

// addParamHeads adds a left-aligned column per parameter.
func (t *table) addParamHeads(cols []param) {
	for _, pr := range cols {
		t.head = append(t.head, pr.head)
		t.right = append(t.right, false)
	}
}

// presentTransports are those of trs with a result in at least one of cells.
func presentTransports(trs []string, cells []*paramRow) []string {
	var present []string
	for _, tr := range trs {
		for _, c := range cells {
			if c.res[tr] != nil {
				present = append(present, tr)
				break
			}
		}
	}
	return present
}

// genericTable shows every non-zero metric of an experiment this file has no table
// for, one row per parameter set and metric, transports side by side.
func genericTable(cols []param, trs []string, cells []*paramRow) table {
	t := table{}
	t.addParamHeads(cols)
	t.head = append(t.head, "metric")
	t.right = append(t.right, false)
	present := presentTransports(trs, cells)
	for _, tr := range present {
		t.head = append(t.head, tr)
		t.right = append(t.right, true)
	}
	for _, c := range cells {
		var keys []string
		vals := map[string]map[string]float64{} // transport -> key -> value
		var label []string
		for _, pr := range cols {
			label = append(label, pr.label(c.p))
		}
		if row, ok := notMeasuredRow(label, present, c); ok {
			t.rows = append(t.rows, row)
		}
		for _, tr := range present {
			res := c.res[tr]
			if res == nil || !res.Measured() {
				continue
			}
			vals[tr] = map[string]float64{}
			prev := -1 // merge key orders: each new key goes after its predecessor
			for _, mv := range flatMetrics(&res.Metrics) {
				i := slices.Index(keys, mv.key)
				if i < 0 {
					i = prev + 1
					keys = slices.Insert(keys, i, mv.key)
				}
				prev = i
				vals[tr][mv.key] = mv.v
			}
		}
		for _, k := range keys {
			nonZero := false
			for _, m := range vals {
				nonZero = nonZero || m[k] != 0
			}
			if !nonZero || (k == "lost_msgs" && requestRows(cells)) {
				continue // lost_msgs repeats timeouts for requests: they are unanswered, not lost
			}
			row := append(slices.Clone(label), metricName(k))
			for _, tr := range present {
				v := "-"
				if x, ok := vals[tr][k]; ok {
					v = formatByKey(k, x)
				}
				row = append(row, v)
			}
			t.rows = append(t.rows, row)
		}
	}
	return t
}

// requestRows reports whether the rows are a request/response experiment's, whose
// lost_msgs only repeats its timeouts (report.Section.Replies).
func requestRows(cells []*paramRow) bool {
	return slices.ContainsFunc(cells, func(c *paramRow) bool { return c.replies })
}

// alsoCounted lists the non-zero values of keys, one line per row and transport.
func alsoCounted(cols []param, trs []string, cells []*paramRow, keys []string) []string {
	var out []string
	for _, c := range cells {
		for _, tr := range trs {
			res := c.res[tr]
			if res == nil || !res.Measured() {
				continue
			}
			var parts []string
			for _, mv := range flatMetrics(&res.Metrics) {
				if mv.v != 0 && slices.Contains(keys, mv.key) {
					parts = append(parts, metricName(mv.key)+" "+formatByKey(mv.key, mv.v))
				}
			}
			if len(parts) > 0 {
				out = append(out, fmt.Sprintf("%s, %s: %s", tr, paramsLabel(c.p), strings.Join(parts, ", ")))
			}
		}
	}
	return out
}

// notMeasuredRow is the row of a metric-per-row table that says which transports
// of a parameter set have no figures ("interrupted" or "failed"; notMeasured says
// why), after the row's label; false when every one has them.
func notMeasuredRow(label, present []string, c *paramRow) ([]string, bool) {
	row := append(slices.Clone(label), "not measured")
	any := false
	for _, tr := range present {
		v := "-"
		if res := c.res[tr]; res != nil && !res.Measured() {
			v, any = "failed", true
			if res.Interrupted {
				v = "interrupted"
			}
		}
		row = append(row, v)
	}
	return row, any
}

// notMeasured lists, per result of cells without figures, its transport, parameters
// and why: "tcp, size 64 B: interrupted (interrupt signal received) after 1.21 s, ...".
func notMeasured(trs []string, cells []*paramRow) []string {
	var out []string
	for _, c := range cells {
		for _, tr := range trs {
			res := c.res[tr]
			if res == nil || res.Measured() {
				continue
			}
			// The error names the cell; the label says it already.
			why := strings.TrimPrefix(res.Error, report.CellName(res.Experiment, res.Transport, res.Params)+": ")
			out = append(out, fmt.Sprintf("%s, %s: %s", tr, paramsLabel(c.p), why))
		}
	}
	return out
}

// maxNotRun is how many cells that did not run a report names before it counts the rest.
const maxNotRun = 6

// cellList names cells as "stream over udp (size 64 B), pingpong over tcp (size 64 B)",
// the first max of them, then how many more.
func cellList(cs []report.Cell, max int) string {
	var parts []string
	for i, c := range cs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-max))
			break
		}
		parts = append(parts, fmt.Sprintf("%s over %s (%s)", c.Experiment, c.Transport, paramsLabel(c.Params)))
	}
	return strings.Join(parts, ", ")
}

// metricValue is one figure of Metrics by its JSON name ("rtt_p99_ns").
type metricValue struct {
	key string
	v   float64
}

// flatMetrics lists the figures of m by JSON name, in the order the JSON document
// holds them, nested objects flattened with dots ("rtt_ns.p99"); absent (null)
// figures and lists (rtt_ns.cdf) are left out. Going through JSON keeps future Metrics fields visible.
func flatMetrics(m *report.Metrics) []metricValue {
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []metricValue
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	_ = walkJSON(dec, "", tok, &out)
	return out
}

// walkJSON appends the numbers of the JSON value that starts with tok.
func walkJSON(dec *json.Decoder, key string, tok json.Token, out *[]metricValue) error {
	switch v := tok.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			*out = append(*out, metricValue{key, f})
		}
	case json.Delim:
		if v == '[' { // lists (the CDF) are for charts, not figures: skip them
			for dec.More() {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			return err
		}
		for dec.More() {
			sub := key
			if v == '{' {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				if sub != "" {
					sub += "."
				}
				sub += kt.(string)
			}
			vt, err := dec.Token()
			if err != nil {
				return err
			}
			if err := walkJSON(dec, sub, vt, out); err != nil {
				return err
			}
		}
		_, err := dec.Token() // the closing delimiter
		return err
	}
	return nil
}

// metricName names a figure for people by its JSON name: words, not snake_case,
// and no unit the formatted value shows ("peer_close_detect_ns" -> "peer close
// detect", "rtt_ns.p99" -> "rtt p99"). The JSON report keeps the names.
func metricName(key string) string {
	k := strings.ReplaceAll(key, "_ns.", ".")
	for _, u := range []string{"_per_s", "_ns", "_bps", "_bytes", "_s"} {
		if strings.HasSuffix(k, u) && len(k) > len(u) {
			k = strings.TrimSuffix(k, u)
			break
		}
	}
	return strings.NewReplacer("_", " ", ".", " ").Replace(k)
}

// formatByKey formats a figure by the unit its JSON name carries. A ratio to a
// count of things takes the unit before its "_per_": kernel_socket_bytes_per_client
// is bytes, cpu_ns_per_delivery a duration.
func formatByKey(key string, v float64) string {
	if i := strings.LastIndex(key, "_per_"); i > 0 {
		if per := key[i+len("_per_"):]; per != "s" && per != "gb" && !strings.ContainsAny(per, "_.") {
			return formatByKey(key[:i], v)
		}
	}
	switch {
	case strings.HasSuffix(key, "_per_s"):
		return units.SI(v) + "/s"
	case strings.HasSuffix(key, "_per_gb"):
		return units.Num(v)
	case strings.HasSuffix(key, "_bps"):
		return units.Bps(v)
	case strings.HasSuffix(key, "_bytes"):
		return units.ByteSize(v)
	case strings.HasSuffix(key, "_ns") || strings.Contains(key, "_ns."):
		if strings.HasSuffix(key, ".samples") {
			return units.Count(uint64(v))
		}
		return units.Dur(v)
	case strings.HasSuffix(key, "_s"):
		return units.Secs(v)
	case v >= 0 && v == float64(uint64(v)):
		return units.Count(uint64(v))
	}
	return units.Num(v)
}

// hasObserved says whether any result of the rows carries observations.
func hasObserved(cells []*paramRow) bool {
	for _, c := range cells {
		for _, res := range c.res {
			if len(res.Observed) > 0 {
				return true
			}
		}
	}
	return false
}

// readerRate heads the column of the slow receiver's reading pace
// (report.ParamReaderRate).
const readerRate = "reader rate"

// paramCols are the parameters an observations table can label rows by, beyond
// those of params: the experiment-specific ones (report.OwnParams), headed by
// their names.
var paramCols = append(slices.Clone(params),
	param{report.ParamClients, func(p report.Params) string { return strconv.Itoa(p.Clients) }, func(p report.Params) float64 { return float64(p.Clients) }},
	param{report.ParamReceivers, func(p report.Params) string { return strconv.Itoa(p.Receivers) }, func(p report.Params) float64 { return float64(p.Receivers) }},
	param{readerRate, func(p report.Params) string { return rateLabel(p.ReaderBps) }, func(p report.Params) float64 { return p.ReaderBps }},
)

// ownParam names, by column head, the experiment-specific parameter
// (report.OwnParams) a column of paramCols shows: the runner hands every property
// cell all of them, so a section describes only those it owns (Section.Params);
// the others would only mislead.
var ownParam = map[string]string{report.ParamClients: report.ParamClients, report.ParamReceivers: report.ParamReceivers, readerRate: report.ParamReaderRate}

// observedParams splits the parameters of an observations table into those that
// vary between rows (a column each) and a description of the others that say
// something about sec's experiment ("1024 B messages, 8 receivers").
func observedParams(sec report.Section, cells []*paramRow) (cols []param, fixed string) {
	if len(cells) == 0 {
		return nil, ""
	}
	var desc []string
	p := cells[0].p
	for _, pr := range paramCols {
		varies := false
		for _, c := range cells {
			varies = varies || pr.key(c.p) != pr.key(p)
		}
		if varies {
			cols = append(cols, pr)
			continue
		}
		if own, ok := ownParam[pr.head]; ok && !slices.Contains(sec.Params, own) {
			continue
		}
		switch pr.head {
		case "size":
			if p.Size > 0 {
				desc = append(desc, fmt.Sprintf("%d B messages", p.Size))
			}
		case "streams":
			if p.Streams > 1 {
				desc = append(desc, fmt.Sprintf("%d streams", p.Streams))
			}
		case "rate":
			if p.RateBps > 0 {
				desc = append(desc, "rate "+units.Bps(p.RateBps))
			}
		case report.ParamClients:
			if p.Clients > 0 {
				desc = append(desc, fmt.Sprintf("%d client%s", p.Clients, plural(p.Clients)))
			}
		case report.ParamReceivers:
			if p.Receivers > 0 {
				desc = append(desc, fmt.Sprintf("%d receiver%s", p.Receivers, plural(p.Receivers)))
			}
		case readerRate:
			if p.ReaderBps > 0 {
				desc = append(desc, "reader at "+units.Bps(p.ReaderBps))
			}
		case "direction":
			if d := directionText(p); d != "" {
				desc = append(desc, d)
			}
		}
	}
	return cols, strings.Join(desc, ", ")
}

// observedMetrics are the counters an observations table may add below the
// observations, when non-zero for some transport and not observed under that name.
// Counters only: rates and latencies an experiment cares about, it observes.
var observedMetrics = []string{
	"sent_msgs", "recv_msgs", "lost_msgs", "dup_msgs", "reordered_msgs", "corrupt_msgs",
	"malformed_msgs", "foreign_msgs", "late_msgs", "timeouts", "retransmits",
	"drops_sender", "drops_socket", "drops_network", "server_sockets",
}

// observedTable shows what an experiment observed: a row per observed key (sorted;
// within each parameter set when several), a column per transport; with metrics,
// the failed cells' errors and non-zero observedMetrics follow.
func observedTable(caption string, cols []param, trs []string, cells []*paramRow, metrics bool) table {
	t := table{caption: caption, strict: true}
	t.addParamHeads(cols)
	t.head = append(t.head, "measured")
	t.right = append(t.right, false)
	present := presentTransports(trs, cells)
	for _, tr := range present {
		t.head = append(t.head, tr)
		t.right = append(t.right, false) // words as often as figures
	}
	for _, c := range cells {
		label := make([]string, 0, len(cols))
		for _, pr := range cols {
			label = append(label, pr.label(c.p))
		}
		addRow := func(key string, cell func(res *report.Result) (string, bool)) {
			row := append(slices.Clone(label), metricName(key))
			for _, tr := range present {
				v := "-"
				if res := c.res[tr]; res != nil {
					if s, ok := cell(res); ok {
						v = s
					}
				}
				row = append(row, v)
			}
			t.rows = append(t.rows, row)
		}
		var keys []string
		for _, tr := range present {
			if res := c.res[tr]; res != nil {
				for k, v := range res.Observed {
					if _, dist := v.(*report.LatencyStats); dist || k == "latency" {
						continue // a whole distribution: its percentiles have rows of their own
					}
					if !slices.Contains(keys, k) {
						keys = append(keys, k)
					}
				}
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			addRow(k, func(res *report.Result) (string, bool) {
				v, ok := res.Observed[k]
				if !ok {
					return "", false
				}
				return observedValue(k, v), true
			})
		}
		if !metrics {
			continue
		}
		if row, ok := notMeasuredRow(label, present, c); ok {
			t.rows = append(t.rows, row)
		}
		vals := map[string]map[string]float64{} // transport -> key -> value
		for _, tr := range present {
			if res := c.res[tr]; res != nil && res.Measured() {
				vals[tr] = map[string]float64{}
				for _, mv := range flatMetrics(&res.Metrics) {
					vals[tr][mv.key] = mv.v
				}
			}
		}
		for _, k := range observedMetrics {
			if slices.Contains(keys, k) || (k == "lost_msgs" && requestRows(cells)) {
				continue // lost_msgs repeats timeouts for requests: they are unanswered, not lost
			}
			nonZero := false
			for _, m := range vals {
				nonZero = nonZero || m[k] != 0
			}
			if !nonZero {
				continue
			}
			addRow(k, func(res *report.Result) (string, bool) {
				v, ok := vals[res.Transport][k]
				if !ok && k == "timeouts" && requestRows(cells) && res.Measured() {
					return "0", true // omitted from the JSON when zero: every request was answered
				}
				if !ok {
					return "", false
				}
				return formatByKey(k, v), true
			})
		}
	}
	return t
}

// maxObserved is how long a rendered map or list may grow before it is cut.
const maxObserved = 80

// observedValue formats one observation by its key's unit suffix (as formatByKey),
// booleans as yes/no, maps as "k=v, ..." sorted by key (numerically when the keys
// are numbers), lists as "a, b"; a map or list longer than maxObserved is cut
// after its last whole item that fits: "a=1, b=2, ...".
func observedValue(key string, v any) string {
	v = plainJSON(v)
	switch x := v.(type) {
	case map[string]any, []any:
		s := observedItem(key, x)
		if len(s) > maxObserved { // cut after the last whole item that fits
			s = s[:maxObserved-3]
			if i := strings.LastIndex(s, ", "); i > 0 {
				s = s[:i+2]
			}
			s += "..."
		}
		return s
	}
	return observedItem(key, v)
}

func observedItem(key string, v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case string:
		if x == "" {
			return "none"
		}
		return x
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return formatByKey(key, f)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = observedItem(key, e)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		keys := slices.Collect(maps.Keys(x))
		slices.SortFunc(keys, numericFirst)
		parts := make([]string, len(keys))
		for i, k := range keys {
			unitKey := key // an inner key with a unit of its own formats by it
			if formatByKey(k, 1.5) != units.Num(1.5) {
				unitKey = k
			}
			parts[i] = k + "=" + observedItem(unitKey, x[k])
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// plainJSON turns any value into what encoding/json decodes (maps, lists, strings,
// booleans, json.Number): a report fresh from a run holds Go types, one read back
// from a file holds these.
func plainJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return string(b)
	}
	return out
}

// numericFirst orders map keys: numbers by value, before other keys in byte order.
func numericFirst(a, b string) int {
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	switch {
	case ea == nil && eb == nil:
		if c := cmpFloat(fa, fb); c != 0 {
			return c
		}
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}
