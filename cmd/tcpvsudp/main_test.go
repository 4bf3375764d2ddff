package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "500M", want: 500e6},
		{in: "1.5G", want: 1.5e9},
		{in: "800k", want: 800e3},
		{in: "2Gbit/s", want: 2e9},
		{in: "10mbps", want: 10e6},
		{in: "10mbit", want: 10e6},
		{in: "500", wantErr: "with a unit"},
		{in: "fastM", wantErr: "with a unit"},
		{in: "-5M", wantErr: "must not be negative"},
		{in: "bps", wantErr: "with a unit"},
		{in: "10MB", wantErr: "give 80M"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseRate("--rate", tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--rate") {
					t.Fatalf("parseRate(%q) = %v, %v; want an error naming --rate with %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestBadFlags: each mistake is a usage error (exit 2) naming the flag, the rule
// and the value.
func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown experiment", []string{"run", "-e", "stream,teleport"}, []string{"--experiments", "teleport"}},
		{"unknown transport", []string{"run", "-t", "sctp"}, []string{"--transports", "sctp"}},
		{"udp size too large", []string{"run", "--sizes", "64,70000"}, []string{"--sizes", "65507", "udp", "70000"}},
		{"size below header", []string{"run", "--sizes", "10"}, []string{"--sizes", "48", "10"}},
		{"size not a number", []string{"run", "--sizes", "1k"}, []string{"--sizes", "1k"}},
		{"size with a unit", []string{"run", "--sizes", "64,1M"}, []string{"--sizes", "plain byte counts", `"1M"`}},
		{"rate in bytes", []string{"run", "--rate", "10MB"}, []string{"--rate", "bits/s", "B is bytes", "80M"}},
		{"rate in bytes per second", []string{"run", "--rate", "1.5GB/s"}, []string{"--rate", "give 12G"}},
		{"reader rate names its flag", []string{"run", "--reader-rate", "fast"}, []string{"--reader-rate", "fast"}},
		{"ping rate not a number", []string{"run", "--ping-rate", "fast"}, []string{"--ping-rate", "per second", "fast"}},
		{"ping rate too high", []string{"run", "--ping-rate", "2M"}, []string{"--ping-rate", "2e+06"}},
		{"loss as a bare number", []string{"run", "--impair", "loss=5"}, []string{"--impair", "loss", "a fraction 0..1 or a percentage", "5%"}},
		{"loss above 100%", []string{"run", "--impair", "loss=150%"}, []string{"--impair", "0..100%", "150%"}},
		{"an experiment as a command", []string{"stream"}, []string{`unknown command "stream"`, "run -e stream"}},
		{"a transport as a command", []string{"udp"}, []string{`unknown command "udp"`, "run -t udp"}},
		{"an unknown command", []string{"bogus"}, []string{`unknown command "bogus"`, "run, serve and report"}},
		{"run with an argument", []string{"run", "stream"}, []string{"takes no arguments", "run -e stream"}},
		{"report of the markdown", []string{"report", "../../results/reference/report.md"}, []string{"not a JSON report", "report.json"}},
		{"negative duration", []string{"run", "--duration", "-3s"}, []string{"--duration", "-3s"}},
		{"rate without unit", []string{"run", "--rate", "500"}, []string{"--rate", "unit", "500"}},
		{"streams zero", []string{"run", "--streams", "0"}, []string{"--streams", "1..1024", "0"}},
		{"repeat too many", []string{"run", "--repeat", "1000"}, []string{"--repeat", "1000"}},
		{"port out of range", []string{"run", "--port", "70000"}, []string{"--port", "70000"}},
		{"count and duration", []string{"run", "--count", "10", "--duration", "1s"}, []string{"--count", "--duration"}},
		{"unknown flag", []string{"run", "--bogus"}, []string{"bogus"}},
		{"report without file", []string{"report"}, []string{"FILE.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("run %v: %v, want a usage error", tc.args, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run %v: %q does not mention %q", tc.args, err, w)
				}
			}
		})
	}
}

// TestRunAndReport runs a small real suite, checks the files, and renders the JSON again.
func TestRunAndReport(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"run", "-e", "stream,pingpong,connect", "--count", "300", "--sizes", "64,1024", "--warmup", "10ms", "--drain", "300ms", "--out", dir}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errb.String())
	}
	for _, want := range []string{"tcp", "udp", "stream", "pingpong", "connect"} {
		if !strings.Contains(strings.ToLower(out.String()), want) {
			t.Errorf("tables do not mention %q:\n%s", want, out.String())
		}
	}
	// The tables end saying where the full report is.
	lastLine := func(s string) string { // with a continuation line joined, when it wrapped
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		last := lines[len(lines)-1]
		if strings.HasPrefix(last, "  ") && len(lines) > 1 {
			last = lines[len(lines)-2] + " " + strings.TrimSpace(last)
		}
		return last
	}
	if got, want := lastLine(out.String()), "; report: "+filepath.Join(dir, "report.md"); !strings.Contains(got, "-v: every table") || !strings.HasSuffix(got, want) {
		t.Errorf("run's last line %q, want \"-v: every table...%s\"", got, want)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != "tcpvsudp/v1" {
		t.Errorf("schema %v", doc["schema"])
	}
	results, _ := doc["results"].([]any)
	if len(results) != 12 {
		t.Errorf("%d results, want 12 (stream and pingpong at 2 sizes, connect at 1, times 2 transports; UDP streams twice: batched and textbook I/O)", len(results))
	}
	for _, r := range results {
		m := r.(map[string]any)["metrics"].(map[string]any)
		for _, key := range []string{"sent_msgs", "recv_msgs", "lost_msgs", "dup_msgs", "reordered_msgs", "corrupt_msgs", "sent_bytes", "recv_bytes", "goodput_bps", "msgs_per_s", "drops_sender"} {
			if _, ok := m[key]; !ok {
				t.Errorf("metrics lack %q", key)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !bytes.Contains(md, []byte("Properties")) {
		t.Fatalf("report.md: %v, has Properties: %v", err, bytes.Contains(md, []byte("Properties")))
	}

	// Re-render: same markdown from the JSON.
	out.Reset()
	mdAgain := filepath.Join(dir, "again.md")
	if err := run(context.Background(), []string{"report", filepath.Join(dir, "report.json"), "--markdown", mdAgain}, &out, &errb); err != nil {
		t.Fatalf("report: %v", err)
	}
	again, err := os.ReadFile(mdAgain)
	if err != nil || !bytes.Equal(again, md) {
		t.Errorf("re-rendered markdown differs from the run's (err %v)", err)
	}
	if out.Len() == 0 {
		t.Error("report printed no tables")
	}
	if got, want := lastLine(out.String()), "; report: "+mdAgain; !strings.HasSuffix(got, want) {
		t.Errorf("report's last line %q, want it to end %q", got, want)
	}
	out.Reset() // --markdown '': no report to point to
	if err := run(context.Background(), []string{"report", filepath.Join(dir, "report.json"), "--markdown", ""}, &out, &errb); err != nil {
		t.Fatalf("report: %v", err)
	}
	if got := lastLine(out.String()); !strings.Contains(got, "-v: every table") || strings.Contains(got, "report:") {
		t.Errorf("report --markdown '': last line %q, want \"-v: every table\" and no report named", got)
	}
}

func TestReportBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"something/else"}`), 0o644)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"report", bad}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("report of a foreign file: %v, want a schema error", err)
	}
	err = run(context.Background(), []string{"report", filepath.Join(dir, "missing.json")}, &out, &errb)
	if err == nil {
		t.Fatal("report of a missing file: no error")
	}
}

// TestLabSection: the default suite's emulated-link section attaches a lab report and
// adds the reliability rows to the properties table; without privileges it says so.
func TestLabSection(t *testing.T) {
	rep := &report.Report{}
	// The section's hol and bottleneck cells run for min(p.PropertyDuration(), 2 s): 500 ms
	// shows them as well and saves 8 s. Its stream cells, whose link counts make the
	// rows checked below, are count-bounded (1000 messages) whatever p.Duration says.
	p := bench.Plan{Quick: true, Duration: 500 * time.Millisecond}.WithDefaults()
	var errb bytes.Buffer
	addLabSection(context.Background(), rep, p, &errb)
	t.Logf("progress:\n%s", errb.String()) // each cell's figures
	if rep.Lab == nil {
		if len(rep.Warnings) == 1 && strings.Contains(rep.Warnings[0], "skipped") {
			t.Skipf("lab: %s", rep.Warnings[0])
		}
		t.Fatalf("no lab report, warnings %v", rep.Warnings)
	}
	ids := map[string]string{}
	for _, pr := range rep.Properties {
		ids[pr.ID] = pr.UDP
	}
	for _, id := range []string{"retransmission", "ordering", "duplicates", "checksum"} {
		if ids[id] == "" {
			t.Errorf("no %q row with measured numbers; rows %v", id, ids)
		}
	}
	if rep.Lab.Env.Link.Kind != "lab" {
		t.Errorf("lab env.link.kind %q", rep.Lab.Env.Link.Kind)
	}
	var md bytes.Buffer
	if err := render.Markdown(&md, rep); err != nil || !strings.Contains(md.String(), "Across an emulated link") {
		t.Errorf("markdown: %v; has the lab section: %v", err, strings.Contains(md.String(), "Across an emulated link"))
	}
}

// unwrapped joins the lines the terminal rendering wrapped to its width (each
// continuation starts with two spaces) back into one, as they were before wrapping.
func unwrapped(s string) string {
	return regexp.MustCompile(`\n {2,}`).ReplaceAllString(s, " ")
}

// TestRunEndsWithTables: on a terminal, where stdout and stderr share the screen,
// the run ends with the tables and their last line, not with what it wrote: the
// files are written, and said, before the tables are printed.
func TestRunEndsWithTables(t *testing.T) {
	var screen bytes.Buffer
	dir := t.TempDir()
	if err := run(context.Background(), []string{"run", "-e", "pingpong", "-t", "udp", "--sizes", "64", "--duration", "10ms",
		"--warmup", "0", "--out", dir}, &screen, &screen); err != nil {
		t.Fatalf("run: %v\n%s", err, screen.String())
	}
	out := unwrapped(strings.TrimRight(screen.String(), "\n"))
	lines := strings.Split(out, "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "-v: every table") || !strings.HasSuffix(last, filepath.Join(dir, "report.md")) {
		t.Errorf("last line %q, want the tables' footer naming %s:\n%s", last, filepath.Join(dir, "report.md"), out)
	}
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "report.json")) {
		t.Errorf("no line saying report.json was written:\n%s", out)
	}
}
