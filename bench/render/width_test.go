package render

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// referenceReport is the committed reference run (results/reference), read back as
// `tcpvsudp report` reads it: the report the terminal rendering is judged on.
func referenceReport(tb testing.TB) *report.Report {
	tb.Helper()
	r, err := report.LoadReport(filepath.Join("..", "..", "results", "reference", "report.json"))
	if err != nil {
		tb.Fatalf("reference report: %v", err)
	}
	return withSections(r) // it predates sections
}

// TestTextFitsWidth: no line of the terminal rendering is wider than the width it
// was given, for the reference run and the golden input, terse and verbose.
func TestTextFitsWidth(t *testing.T) {
	reports := map[string]*report.Report{"reference": referenceReport(t), "reference without lab": noLabReport(t), "golden input": testReport()}
	for name, r := range reports {
		for _, width := range []int{100, 80, 60} {
			for _, verbose := range []bool{false, true} {
				var b bytes.Buffer
				if err := Text(&b, r, Width(width), Verbose(verbose)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for i, l := range strings.Split(b.String(), "\n") {
					if len(l) > width {
						t.Errorf("%s, width %d, verbose %v: line %d is %d columns wide:\n%s", name, width, verbose, i+1, len(l), l)
					}
				}
			}
		}
	}
	var b bytes.Buffer // no width given: DefaultWidth, what a pipe gets
	if err := Text(&b, reports["reference"]); err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(b.String(), "\n") {
		if len(l) > DefaultWidth {
			t.Errorf("default width: line %d is %d columns wide:\n%s", i+1, len(l), l)
		}
	}
}

// asciiTable is one ASCII table read back from the terminal rendering: its header
// cells and, per row, its cells (a wrapped row's lines joined).
type asciiTable struct {
	head []string
	rows [][]string
}

// firstTable reads the first ASCII table of out, and the lines before it.
func firstTable(t *testing.T, out string) (asciiTable, []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "+-") {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("no table in:\n%s", out)
	}
	cells := func(l string) []string {
		parts := strings.Split(strings.Trim(l, "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	var tab asciiTable
	borders := 0
	for _, l := range lines[start:] {
		if strings.HasPrefix(l, "+-") {
			borders++
			if borders == 3 {
				break
			}
			continue
		}
		if !strings.HasPrefix(l, "|") {
			break
		}
		c := cells(l)
		switch {
		case borders == 1:
			tab.head = c
		case c[0] == "" && len(tab.rows) > 0: // a wrapped row's next line
			last := tab.rows[len(tab.rows)-1]
			for i := range c {
				if c[i] != "" {
					last[i] += " " + c[i]
				}
			}
		default:
			tab.rows = append(tab.rows, c)
		}
	}
	return tab, lines[:start]
}

// TestTextVerdictFirst: the first table printed is the verdict, property | TCP | UDP,
// one row per property row of the report, at any width.
func TestTextVerdictFirst(t *testing.T) {
	r := referenceReport(t)
	for _, width := range []int{100, 80} {
		var b bytes.Buffer
		if err := Text(&b, r, Width(width)); err != nil {
			t.Fatal(err)
		}
		tab, before := firstTable(t, b.String())
		if got, want := strings.Join(tab.head, " | "), "property | TCP | UDP"; got != want {
			t.Fatalf("width %d: first table's head %q, want %q", width, got, want)
		}
		if len(tab.rows) != len(r.Properties) {
			t.Fatalf("width %d: verdict has %d rows, the report %d properties:\n%s", width, len(tab.rows), len(r.Properties), b.String())
		}
		for i, p := range r.Properties {
			want := strings.Replace(p.Property, labSuffix, labShort, 1)
			if tab.rows[i][0] != want {
				t.Errorf("width %d: verdict row %d is %q, want %q", width, i+1, tab.rows[i][0], want)
			}
		}
		if len(before) > 6 {
			t.Errorf("width %d: %d lines before the verdict, want the header only:\n%s", width, len(before), strings.Join(before, "\n"))
		}
	}
}

// TestVerdictCells: known answers. Each phrase comes from the evidence as a run
// builds it (Go integers) and as a report file reads back (float64), and a row
// whose evidence lacks a figure falls back to its sentence's first clause.
func TestVerdictCells(t *testing.T) {
	tests := []struct {
		name     string
		p        report.Property
		tcp, udp string
	}{
		{"reliability from a run", report.Property{ID: "reliability", Evidence: map[string]any{
			"tcp_lost_msgs": uint64(0), "tcp_sent_msgs": uint64(25_900_000),
			"udp_lost_msgs": uint64(4_850_000), "udp_sent_msgs": uint64(25_000_000), "udp_drops_socket": uint64(4_850_000)}},
			"0 of 25.9M lost", "19.4% lost, all at the socket"},
		{"reliability read back", report.Property{ID: "reliability", Evidence: map[string]any{
			"tcp_lost_msgs": 0.0, "tcp_sent_msgs": 41494848.0,
			"udp_lost_msgs": 100.0, "udp_sent_msgs": 4000.0, "udp_drops_socket": 15.0}},
			"0 of 41.5M lost", "2.50% lost, 15 at the socket"},
		{"connection setup", report.Property{ID: "connection-setup", Evidence: map[string]any{"tcp_p50_ns": 147839.0, "udp_p50_ns": int64(70271)}},
			"first answer 148 us (p50)", "first answer 70.3 us (p50)"},
		{"throughput", report.Property{ID: "throughput", Evidence: map[string]any{
			"size": 8192, "tcp_goodput_bps": 31816399945.849, "udp_goodput_bps": 13497914686.019, "udp_textbook_goodput_bps": 10111729043.673}},
			"31.8 Gbit/s at 8192 B", "13.5 Gbit/s at 8192 B; textbook I/O 10.1 Gbit/s"},
		{"cost", report.Property{ID: "cost", Evidence: map[string]any{
			"size": 8192, "tcp_cpu_s_per_gb": 0.417, "udp_cpu_s_per_gb": 1.011, "udp_textbook_cpu_s_per_gb": 1.507}},
			"0.417 CPU s/GB", "1.01 CPU s/GB; textbook I/O 1.51 s/GB"},
		{"one socket per client", report.Property{ID: "per-client-socket", Evidence: map[string]any{
			"tcp_server_sockets": 100, "tcp_clients": 100, "udp_server_sockets": 1, "udp_clients": 100}},
			"100 sockets for 100 clients", "1 socket for 100 clients"},
		{"evidence missing", report.Property{ID: "reliability", TCP: "lost 0 of 41,494,848 messages (0.00%)",
			UDP: "lost 12 of 51 messages: 12 overflowed the receive buffer; 0 refused at the sender"},
			"lost 0 of 41,494,848 messages (0.00%)", "lost 12 of 51 messages"},
		{"unknown property", report.Property{ID: "warp", TCP: "", UDP: strings.Repeat("word ", 20)},
			"-", "word word word word word word word word word..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tcp, udp := verdict(tc.p)
			if tcp != tc.tcp || udp != tc.udp {
				t.Errorf("verdict(%+v) = %q, %q; want %q, %q", tc.p, tcp, udp, tc.tcp, tc.udp)
			}
		})
	}
}

// TestTextReferenceFigures: the reference run's verdict says its key figures
// in a few words: TCP lost none of its 11.9M messages, UDP a share, all at the socket.
func TestTextReferenceFigures(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, referenceReport(t), Width(100)); err != nil {
		t.Fatal(err)
	}
	tab, _ := firstTable(t, b.String())
	for _, row := range tab.rows {
		if row[0] != "reliable delivery" {
			continue
		}
		if row[1] != "0 of 11.9M lost" || row[2] != "16.2% lost, all at the socket" {
			t.Errorf("reliable delivery row = %q, want TCP %q, UDP %q", row, "0 of 11.9M lost", "16.2% lost, all at the socket")
		}
		return
	}
	t.Errorf("no reliable delivery row in:\n%s", b.String())
}

// mdTables splits markdown into its tables, each a list of rows of cells (the
// delimiter row left out), with the heading it follows.
func mdTables(md string) (tables [][][]string, headings []string) {
	var cur [][]string
	heading := ""
	flush := func() {
		if cur != nil {
			tables = append(tables, cur)
			headings = append(headings, heading)
			cur = nil
		}
	}
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "#") {
			heading = l
		}
		if !strings.HasPrefix(l, "|") {
			flush()
			continue
		}
		if strings.HasPrefix(l, "|:") || strings.HasPrefix(l, "|-") {
			continue
		}
		var row []string
		for _, c := range regexp.MustCompile(`[^\\]\|`).Split(" "+strings.TrimSpace(l), -1)[1:] {
			row = append(row, strings.TrimSpace(c))
		}
		cur = append(cur, row[:len(row)-1])
	}
	flush()
	return tables, headings
}

var (
	rawFloat = regexp.MustCompile(`[1-9]\d*\.\d{4,}|\.0*[1-9]\d{4,}|\d{10,}`) // 74807.33570763693, 0.000123456, 31816399945
	snake    = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)+(\.\w+)?$`)         // detect_ns, rtt_ns.p99
)

// TestMarkdownForPeople: in the markdown of the reference run no table cell holds
// a raw float, no heading or row label is a JSON name, every table fits a 980 px
// page, and the injected-vs-measured tables have at most 6 columns.
func TestMarkdownForPeople(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, referenceReport(t)); err != nil {
		t.Fatal(err)
	}
	tables, headings := mdTables(b.String())
	if len(tables) < 10 {
		t.Fatalf("found %d tables in:\n%s", len(tables), b.String())
	}
	for i, tab := range tables {
		for r, row := range tab {
			for c, cell := range row {
				if rawFloat.MatchString(cell) {
					t.Errorf("table %d (%s), row %d: raw number in %q", i+1, headings[i], r, cell)
				}
				if (r == 0 || c == 0) && snake.MatchString(cell) {
					t.Errorf("table %d (%s): a JSON name as a heading or label: %q", i+1, headings[i], cell)
				}
			}
		}
		widths := make([]int, len(tab[0]))
		for _, row := range tab {
			for c, cell := range row {
				if c < len(widths) {
					widths[c] = max(widths[c], len(cell))
				}
			}
		}
		px := 0.0
		for _, w := range widths {
			px += float64(w)*mdChar + mdPad
		}
		// Text wraps in a cell on the page; only tables of figures must fit unwrapped.
		if px > mdPageWidth && len(tab[0]) > 4 {
			t.Errorf("table %d (%s): %d columns, about %.0f px wide: %q", i+1, headings[i], len(tab[0]), px, tab[0])
		}
		if strings.Contains(headings[i], "injected vs measured") && len(tab[0]) > 6 {
			t.Errorf("table %d (%s): %d columns, want at most 6: %q", i+1, headings[i], len(tab[0]), tab[0])
		}
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		s     string
		width int
		want  []string
	}{
		{"first answer 148 us (p50)", 12, []string{"first answer", "148 us (p50)"}},
		{"a 127.0.0.1:37295:connect b", 8, []string{"a", "127.0.0.", "1:37295:", "connect", "b"}},
		{"", 5, []string{""}},
		{"short", 10, []string{"short"}},
	}
	for _, tc := range tests {
		if got := wrap(tc.s, tc.width); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.s, tc.width, got, tc.want)
		}
	}
}

// TestSplitTable: a table too wide parts by columns: every part starts with the
// label columns, a figure's columns stay together, every column shows once.
func TestSplitTable(t *testing.T) {
	tab := table{
		head:   []string{"size", "goodput tcp", "goodput udp", "msgs/s tcp", "msgs/s udp", "jitter udp"},
		right:  []bool{false, true, true, true, true, true},
		rows:   [][]string{{"64 B", "2.43 Gbit/s", "764 Mbit/s", "4.75M", "1.49M", "1.83 us"}},
		groups: []int{-1, 0, 0, 1, 1, 2},
	}
	parts := splitTable(tab, 60, textCost)
	if len(parts) < 2 {
		t.Fatalf("one part of %d columns, %d wide", len(tab.head), textCost(tab))
	}
	var seen []string
	for _, p := range parts {
		if p.head[0] != "size" || p.rows[0][0] != "64 B" {
			t.Errorf("part %q does not start with the label column", p.head)
		}
		if textCost(p) > 60 {
			t.Errorf("part %q is %d wide", p.head, textCost(p))
		}
		seen = append(seen, p.head[1:]...)
		for i, h := range p.head[1:] {
			if strings.HasSuffix(h, " tcp") && (i+2 >= len(p.head) || !strings.HasSuffix(p.head[i+2], " udp")) {
				t.Errorf("part %q parts %q from its udp column", p.head, h)
			}
		}
	}
	if strings.Join(seen, ",") != strings.Join(tab.head[1:], ",") {
		t.Errorf("columns shown %q, want %q", seen, tab.head[1:])
	}
	if got := splitTable(tab, 200, textCost); len(got) != 1 {
		t.Errorf("a table that fits split into %d parts", len(got))
	}
}
