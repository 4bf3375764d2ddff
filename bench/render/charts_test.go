package render

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// chartReport is testReport with a slow-receiver time line for each transport: TCP's
// sender held to the reader's pace, UDP's running away from it.
func chartReport() *report.Report {
	r := testReport()
	r.Config.Experiments = append(r.Config.Experiments, report.ExpSlowReceiver)
	for _, tr := range []string{"tcp", "udp"} {
		res := report.Result{Experiment: report.ExpSlowReceiver, Transport: tr, Params: report.Params{Size: 1024, Streams: 1, DurationS: 2, ReaderBps: 8e6}}
		for i := range 41 {
			ts := float64(i) * 0.05
			got := uint64(i) * 49
			sent := got + 30
			if tr == "udp" {
				sent = uint64(i) * 2100
			}
			res.Series = append(res.Series, report.Sample{TS: ts, SentMsgs: sent, RecvMsgs: got})
		}
		r.Results = append(r.Results, res)
	}
	return r
}

func TestWriteChartsDeterministic(t *testing.T) {
	r := chartReport()
	a, b := t.TempDir(), t.TempDir()
	na, err := Charts(a, r)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := Charts(b, chartReport())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rtt_cdf.svg", "connect_cdf.svg", "goodput_by_size.svg", "msgs_by_size.svg", "slow_receiver.svg"}
	if !slices.Equal(na, want) || !slices.Equal(nb, want) {
		t.Fatalf("Charts wrote %v and %v, want %v", na, nb, want)
	}
	if names := ChartNames(r); !slices.Equal(names, na) {
		t.Errorf("ChartNames = %v, Charts wrote %v", names, na)
	}
	onDisk, err := filepath.Glob(filepath.Join(a, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range onDisk {
		onDisk[i] = filepath.Base(onDisk[i])
	}
	if !slices.Equal(onDisk, slices.Sorted(slices.Values(na))) {
		t.Errorf("files in the directory: %v, Charts said %v", onDisk, na)
	}
	for _, n := range na {
		x, errA := os.ReadFile(filepath.Join(a, n))
		y, errB := os.ReadFile(filepath.Join(b, n))
		if err := errors.Join(errA, errB); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s: two writes of the same report differ", n)
		}
	}
}

func TestChartsSVG(t *testing.T) {
	dir := t.TempDir()
	names, err := Charts(dir, chartReport())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			_, texts := readChart(t, dir, n)
			for _, tr := range []string{"tcp", "udp"} {
				if !strings.Contains(texts, tr) {
					t.Errorf("no text names %q; texts: %s", tr, texts)
				}
			}
		})
	}
}

// svgText decodes an SVG document token by token and returns its text content.
// readChart reads chart name from dir, checks that it is small, plain ASCII and
// well-formed, and returns it with its text.
func readChart(t *testing.T, dir, name string) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 200<<10 {
		t.Errorf("%s: %d bytes, want < 200 KiB", name, len(b))
	}
	if bad := nonASCII(string(b)); bad != "" {
		t.Errorf("%s: not plain ASCII: %q", name, bad)
	}
	texts, err := svgText(b)
	if err != nil {
		t.Fatalf("%s: not well-formed XML: %v", name, err)
	}
	return b, texts
}

func svgText(b []byte) (string, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = x.Name.Local
			}
		case xml.CharData:
			text.Write(x)
			text.WriteByte(' ')
		}
	}
	if root != "svg" {
		return "", fmt.Errorf("root element %q, want svg", root)
	}
	return text.String(), nil
}

func TestChartsNeedTheirData(t *testing.T) {
	drop := func(exps ...string) func(*report.Report) {
		return func(r *report.Report) {
			r.Results = slices.DeleteFunc(r.Results, func(res report.Result) bool { return slices.Contains(exps, res.Experiment) })
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*report.Report)
		want   []string
	}{
		{"all", func(*report.Report) {}, []string{"rtt_cdf.svg", "connect_cdf.svg", "goodput_by_size.svg", "msgs_by_size.svg", "slow_receiver.svg"}},
		{"no pingpong", drop(report.ExpPingPong), []string{"connect_cdf.svg", "goodput_by_size.svg", "msgs_by_size.svg", "slow_receiver.svg"}},
		{"no stream", drop(report.ExpStream), []string{"rtt_cdf.svg", "connect_cdf.svg", "slow_receiver.svg"}},
		{"no series", func(r *report.Report) {
			for i := range r.Results {
				r.Results[i].Series = nil
			}
		}, []string{"rtt_cdf.svg", "connect_cdf.svg", "goodput_by_size.svg", "msgs_by_size.svg"}},
		{"latency without samples", func(r *report.Report) {
			for i := range r.Results {
				r.Results[i].Metrics.RTT = nil
			}
		}, []string{"goodput_by_size.svg", "msgs_by_size.svg", "slow_receiver.svg"}},
		{"failed cells", func(r *report.Report) {
			for i := range r.Results {
				r.Results[i].Error = "boom"
			}
		}, nil},
		{"empty", func(r *report.Report) { r.Results = nil }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := chartReport()
			tc.change(r)
			if got := ChartNames(r); !slices.Equal(got, tc.want) {
				t.Errorf("ChartNames = %v, want %v", got, tc.want)
			}
			dir := t.TempDir()
			got, err := Charts(dir, r)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Charts wrote %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRenderMarkdownLinksCharts(t *testing.T) {
	r := chartReport()
	text, md := renderBoth(t, r)
	for _, n := range ChartNames(r) {
		if !strings.Contains(md, "]("+n+")") {
			t.Errorf("markdown does not link %s", n)
		}
		if strings.Contains(text, n) {
			t.Errorf("text output mentions chart %s", n)
		}
	}
	// Each image sits in its experiment's section.
	for _, tc := range []struct{ section, image string }{
		{"## Throughput (stream)", "goodput_by_size.svg"},
		{"## Round-trip time (pingpong)", "rtt_cdf.svg"},
		{"## Connection setup (connect)", "connect_cdf.svg"},
		{"## Slow receiver (slow-receiver)", "slow_receiver.svg"},
	} {
		i := strings.Index(md, tc.section)
		if i < 0 {
			t.Errorf("no section %q", tc.section)
			continue
		}
		sec := md[i+len(tc.section):]
		if j := strings.Index(sec, "\n## "); j >= 0 {
			sec = sec[:j]
		}
		if !strings.Contains(sec, "("+tc.image+")") {
			t.Errorf("section %q does not show %s:\n%s", tc.section, tc.image, sec)
		}
	}
	r.Results = slices.DeleteFunc(r.Results, func(res report.Result) bool { return res.Experiment == report.ExpPingPong })
	if _, md := renderBoth(t, r); strings.Contains(md, "rtt_cdf.svg") {
		t.Error("a report without pingpong links rtt_cdf.svg")
	}
}

func TestTailPoints(t *testing.T) {
	l := latencyStats(1000, 10_000, 20_000, 30_000, 40_000, 50_000, 90_000)
	l.P999 = nil
	got := tailPoints(l)
	want := []struct{ x, y float64 }{{10, 1}, {20, 0.5}, {30, 0.1}, {40, 0.01}, {90, 0.001}}
	if len(got) != len(want) {
		t.Fatalf("percentile points: got %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].X != w.x || math.Abs(got[i].Y-w.y) > 1e-12 {
			t.Errorf("point %d: got (%v, %v), want (%v, %v)", i, got[i].X, got[i].Y, w.x, w.y)
		}
	}
	p999 := int64(45_000)
	l.P999 = &p999
	withCDF(l)
	got = tailPoints(l)
	if last := got[len(got)-1]; last.X != 90 || last.Y != 0.001 {
		t.Errorf("CDF points: the maximum is at (%v, %v), want (90, 0.001): one sample in 1000", last.X, last.Y)
	}
	if tailPoints(nil) != nil || tailPoints(&report.LatencyStats{}) != nil {
		t.Error("points for no samples")
	}
}

func TestTickLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"tail 1", tickTail(1), "1"},
		{"tail p90", tickTail(0.1), "0.1 (p90)"},
		{"tail p99", tickTail(0.01), "0.01 (p99)"},
		{"tail p99.9", tickTail(0.001), "0.001 (p99.9)"},
		{"tail p99.99", tickTail(1e-4), "1e-4 (p99.99)"},
		{"tail p99.999", tickTail(1e-5), "1e-5 (p99.999)"},
		{"tail beyond", tickTail(1e-7), "1e-7"},
		{"plain", tickPlain(20), "20"},
		{"plain grouped", tickPlain(10_000), "10,000"},
		{"plain fraction", tickPlain(0.5), "0.5"},
		{"bps", tickBps(1e9), "1 Gbit/s"},
		{"bps 500M", tickBps(500e6), "500 Mbit/s"},
		{"si", tickSI(2e6), "2M"},
		{"size", sizeLabel(64), "64 B"},
		{"size KiB", sizeLabel(8192), "8 KiB"},
		{"size odd", sizeLabel(1400), "1400 B"},
		{"floor125", fmt.Sprint(floor125(27)), "20"},
		{"floor125 exact", fmt.Sprint(floor125(100)), "100"},
		{"ceil125", fmt.Sprint(ceil125(3300)), "5000"},
		{"ceil125 exact", fmt.Sprint(ceil125(200)), "200"},
		{"niceCeil", fmt.Sprint(niceCeil(2100)), "2500"},
		{"niceCeil time", fmt.Sprint(niceCeil(0.55)), "0.6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
