package render

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// This file draws a Report's charts as SVG files with gonum.org/v1/plot. Like the
// tables, the charts only show figures already in the report. The output is
// deterministic: the same Report gives the same bytes (no timestamps, fonts named
// and not embedded, fixed sizes, results in report and transport order).
//
// The charts are those the report's sections name (report.Section.Charts), each
// only when the report holds its data, named and titled as the section says. The
// kinds drawn from a report's own results (sectionKinds):
//
//	latency_cdf  a latency distribution as a percentile plot (log-log CCDF), a panel per size
//	by_size      a figure at the receiver against message size, a line per transport
//	series       cumulative messages sent and delivered over time, a panel per result
//
// and those of the emulated link (labcharts.go), for the report and for its lab part.
// The charts come in the order of their kinds, then of the sections.

// chart is one chart file: its name, the experiment section that shows it, and how
// to draw it from the report.
type chart struct {
	name  string   // file name, "rtt_cdf.svg"
	title string   // what the markdown image says: "RTT distribution"
	exp   string   // the experiment whose section embeds it
	also  []string // other sections that embed it too
	lab   bool     // drawn from the report's lab part: the section is the lab's
	draw  func() ([]byte, error)
}

// ChartNames returns the file names Charts writes for r, in the order it
// writes them. It touches no file: Markdown uses it to link the images.
func ChartNames(r *report.Report) []string {
	var out []string
	for _, c := range charts(r) {
		out = append(out, c.name)
	}
	return out
}

// Charts writes r's charts into dir as SVG files and returns their file names
// (as ChartNames does). A report without the data for a chart gets no file for it.
func Charts(dir string, r *report.Report) ([]string, error) {
	var names []string
	for _, c := range charts(r) {
		b, err := c.draw()
		if err != nil {
			return names, fmt.Errorf("chart %s: %w", c.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name), b, 0o644); err != nil {
			return names, fmt.Errorf("chart %s: %w", c.name, err)
		}
		names = append(names, c.name)
	}
	return names, nil
}

// charts lists the charts r has data for.
func charts(r *report.Report) []chart {
	out := sectionCharts(r, "", sectionKinds)
	out = append(out, labCharts(r, "")...)
	if r.Lab != nil {
		for _, c := range labCharts(r.Lab, labPrefix) {
			c.lab = true
			out = append(out, c)
		}
	}
	return out
}

// Sizes, in points. Small multiples get smaller panels than a chart of one panel.
const (
	panelW, panelH             = 4 * vg.Inch, 3.6 * vg.Inch
	singleW, singleH           = 6.4 * vg.Inch, 4.2 * vg.Inch
	titleBand                  = 26 // points above the panels for the chart's title
	maxCols                    = 3
	lineWidth                  = 1.6
	glyphRadius                = 2.2
	fontTitle, fontText, fontS = 13, 11, 9.5
)

// Okabe-Ito colours (readable with colour blindness); a transport also gets its own
// dash pattern and glyph, so nothing is said by colour alone.
var (
	palette = []color.Color{
		color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
		color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermillion
		color.RGBA{0x00, 0x9e, 0x73, 0xff}, // green
		color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // purple
		color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
	}
	dashes = [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(3), vg.Points(2), vg.Points(3)}}
	glyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.RingGlyph{}}
	grey   = color.Gray{Y: 0x40}
	sans   = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// series is one line of a chart.
type series struct {
	label  string
	style  int // index into the palette, dashes and glyphs: the transport's column
	xy     plotter.XYs
	coarse bool // drawn through a few percentiles: the report had no CDF points
}

// panel is one plot of a chart: a title and its lines.
type panel struct {
	title string
	lines []series
}

// sectionKinds are the kinds of chart drawn from a report's own results, in the
// order the charts come.
var sectionKinds = []string{report.ChartLatencyCDF, report.ChartBySize, report.ChartSeries}

// sectionCharts lists the charts of the given kinds that r's sections name and r
// has data for, in the order of kinds, then of the experiments (experimentOrder),
// then of each section's charts; prefix starts their file names.
func sectionCharts(r *report.Report, prefix string, kinds []string) []chart {
	var out []chart
	for _, kind := range kinds {
		for _, exp := range experimentOrder(r) {
			for _, c := range r.SectionOf(exp).Charts {
				if c.Kind != kind || c.File == "" {
					continue
				}
				if draw := chartDraw(r, exp, c); draw != nil {
					out = append(out, chart{name: prefix + c.File, title: c.Title, exp: exp, draw: draw})
				}
			}
		}
	}
	return out
}

// chartDraw is how to draw chart c of experiment exp's section from r; nil when r
// lacks its data or this renderer does not know its kind.
func chartDraw(r *report.Report, exp string, c report.Chart) func() ([]byte, error) {
	switch c.Kind {
	case report.ChartLatencyCDF, report.ChartLabLatencyCDF:
		div := 1.0 // microseconds
		if c.Kind == report.ChartLabLatencyCDF {
			div = 1e3 // milliseconds: across the emulated link latencies are long
		}
		if panels := distPanels(r, exp, latencyOf(c.Field), div); len(panels) > 0 {
			return func() ([]byte, error) { return latencyChart(panels, c.Heading, exp, c.XLabel, c.YLabel) }
		}
	case report.ChartBySize:
		if lines := sizeLines(r, exp, metricOf(c.Field)); len(lines) > 0 {
			// A rate in bits/s gets bit-rate ticks and its legend on the left, where
			// the lines of a bulk transfer's goodput leave room.
			tick, legendLeft := tickSI, false
			if strings.HasSuffix(c.Field, "_bps") {
				tick, legendLeft = tickBps, true
			}
			return func() ([]byte, error) { return sizeChart(lines, c.Heading, c.YLabel, tick, legendLeft) }
		}
	case report.ChartSeries:
		if rs := seriesResults(r, exp); len(rs) > 0 {
			return func() ([]byte, error) { return seriesChart(r, rs, c.Heading) }
		}
	case report.ChartGoodputOverTime:
		if rs := timelineResults(r, exp); len(rs) > 0 {
			return func() ([]byte, error) { return timelineChart(rs, c.Heading) }
		}
	}
	return nil
}

// latencyOf reads the latency distribution a chart's field names from a result:
// "rtt_ns" is Metrics.RTT, any other field an observation holding one.
func latencyOf(field string) func(*report.Result) *report.LatencyStats {
	if field == "rtt_ns" {
		return func(res *report.Result) *report.LatencyStats { return res.Metrics.RTT }
	}
	return func(res *report.Result) *report.LatencyStats { return observedLatency(res.Observed, field) }
}

// metricOf reads the figure a chart's field names (a Metrics JSON name) from a
// result's metrics; 0 when it has none of that name.
func metricOf(field string) func(*report.Metrics) float64 {
	return func(m *report.Metrics) float64 {
		for _, mv := range flatMetrics(m) {
			if mv.key == field {
				return mv.v
			}
		}
		return 0
	}
}

// distPanels returns a panel per parameter set of exp with a latency distribution
// (stats), a line per transport. The line is the tail of the distribution: (latency
// divided by div, 1 for us and 1e3 for ms; fraction of samples slower), drawn
// through the CDF points, or through the percentiles when the report has no CDF.
func distPanels(r *report.Report, exp string, stats func(*report.Result) *report.LatencyStats, div float64) []panel {
	cells := paramRows(r, exp)
	cols, _ := labelParams(r.SectionOf(exp), cells)
	trs := transportOrder(r)
	var out []panel
	for _, c := range cells {
		pn := panel{title: rowLabel(cols, c.p)}
		for i, tr := range trs {
			res := c.res[tr]
			if res == nil || res.Error != "" {
				continue
			}
			st := stats(res)
			xy := tailPoints(st)
			if len(xy) < 2 {
				continue
			}
			for j := range xy {
				xy[j].X /= div
			}
			pn.lines = append(pn.lines, series{label: tr, style: i, xy: xy, coarse: len(st.CDF) == 0})
		}
		if len(pn.lines) > 0 {
			out = append(out, pn)
		}
	}
	return out
}

// rowLabel names a row of results by the parameters that label rows: "64 B".
func rowLabel(cols []param, p report.Params) string {
	var parts []string
	for _, pr := range cols {
		parts = append(parts, pr.label(p))
	}
	return strings.Join(parts, ", ")
}

// tailPoints turns a latency distribution into (us, fraction slower) points. The
// maximum, where no sample is slower, is drawn at 1/samples: the one slowest sample.
func tailPoints(l *report.LatencyStats) plotter.XYs {
	if l == nil || l.Samples == 0 {
		return nil
	}
	last := 1 / float64(l.Samples)
	var xy plotter.XYs
	add := func(ns int64, slower float64) {
		if ns <= 0 || slower <= 0 {
			return
		}
		xy = append(xy, plotter.XY{X: float64(ns) / 1e3, Y: max(slower, last)})
	}
	if len(l.CDF) > 0 {
		for _, pt := range l.CDF {
			add(pt.Ns, 1-pt.Q)
		}
		if l.CDF[len(l.CDF)-1].Q >= 1 {
			add(l.CDF[len(l.CDF)-1].Ns, last)
		}
		return xy
	}
	add(l.Min, 1)
	for _, pq := range []struct {
		v *int64
		q float64
	}{{l.P50, 0.5}, {l.P90, 0.9}, {l.P99, 0.99}, {l.P999, 0.999}} {
		if pq.v != nil {
			add(*pq.v, 1-pq.q)
		}
	}
	add(l.Max, last)
	return xy
}

// latencyChart draws latency panels on shared log-log axes.
// The title names the experiment, and says so when a line had only the percentiles.
func latencyChart(panels []panel, title, exp, xlabel, ylabel string) ([]byte, error) {
	xlo, xhi, ylo := math.Inf(1), math.Inf(-1), 1.0
	coarse := false
	for _, pn := range panels {
		for _, s := range pn.lines {
			coarse = coarse || s.coarse
			for _, p := range s.xy {
				xlo, xhi, ylo = min(xlo, p.X), max(xhi, p.X), min(ylo, p.Y)
			}
		}
	}
	xlo, xhi = floor125(xlo), ceil125(xhi)
	if xhi <= xlo {
		xhi = xlo * 10
	}
	ylo = math.Pow10(int(math.Floor(math.Log10(ylo) + 1e-9)))
	if coarse {
		title += " (" + exp + ", through the percentiles only)"
	} else {
		title += " (" + exp + ")"
	}
	dense, most := 1.5, 5 // a panel of several is narrow
	if len(panels) == 1 {
		dense, most = 3, 8
	}
	var plots []*plot.Plot
	for _, pn := range panels {
		p := newPlot(pn.title, xlabel, ylabel)
		p.X.Tick.Marker = logTicks(tickPlain, dense, most)
		p.Y.Tick.Marker = logTicks(tickTail, 0, 8)
		if err := addLines(p, logLog(pn.lines), true); err != nil {
			return nil, err
		}
		setLogRange(&p.X, xlo, xhi)
		setLogRange(&p.Y, ylo, 1)
		plots = append(plots, p)
	}
	return renderPanels(title, plots)
}

// sizeLines returns, for exp's results, a line per transport (and per setting of
// the other parameters when they vary) of figure against message size.
func sizeLines(r *report.Report, exp string, figure func(*report.Metrics) float64) []series {
	type key struct {
		tr string
		p  report.Params // Size zeroed
	}
	var keys []key
	pts := map[key]plotter.XYs{}
	for _, res := range r.Results {
		if res.Experiment != exp || res.Error != "" || res.Params.Size <= 0 {
			continue
		}
		v := figure(&res.Metrics)
		if v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			continue
		}
		k := key{res.Transport, res.Params}
		k.p.Size = 0
		if _, ok := pts[k]; !ok {
			keys = append(keys, k)
		}
		pts[k] = append(pts[k], plotter.XY{X: float64(res.Params.Size), Y: v})
	}
	trs := transportOrder(r)
	slices.SortStableFunc(keys, func(a, b key) int { return slices.Index(trs, a.tr) - slices.Index(trs, b.tr) })
	varies := false
	for _, k := range keys {
		a, b := k.p, keys[0].p
		a.IO, b.IO = "", "" // the I/O mode has its own label and style
		varies = varies || a != b
	}
	var out []series
	for _, k := range keys {
		xy := pts[k]
		slices.SortStableFunc(xy, func(a, b plotter.XY) int { return cmpFloat(a.X, b.X) })
		label, style := k.tr, slices.Index(trs, k.tr)
		if k.p.IO != "" {
			label += ", " + k.p.IO + " I/O"
			style = len(trs) + style // a style of its own, after the transports'
		}
		if varies {
			label += otherParams(k.p)
		}
		out = append(out, series{label: label, style: style, xy: xy})
	}
	return out
}

// otherParams names a stream's parameters other than size: ", 4 streams, rate 1.00 Gbit/s".
func otherParams(p report.Params) string {
	var s string
	if p.Streams > 1 {
		s += fmt.Sprintf(", %d streams", p.Streams)
	}
	if p.RateBps > 0 {
		s += ", rate " + units.Bps(p.RateBps)
	}
	if p.Count > 0 {
		s += ", " + units.Count(p.Count) + " msgs"
	} else if p.DurationS > 0 {
		s += ", " + units.Secs(p.DurationS)
	}
	return s
}

// sizeChart draws figure-by-size lines on a log-log plot, with a tick at every size.
func sizeChart(lines []series, title, ylabel string, tick func(float64) string, legendLeft bool) ([]byte, error) {
	p := newPlot("", "message size", ylabel)
	var sizes []float64
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, s := range lines {
		for _, pt := range s.xy {
			if !slices.Contains(sizes, pt.X) {
				sizes = append(sizes, pt.X)
			}
			ylo, yhi = min(ylo, pt.Y), max(yhi, pt.Y)
		}
	}
	slices.Sort(sizes)
	var ticks []plot.Tick
	for _, z := range sizes {
		ticks = append(ticks, plot.Tick{Value: math.Log10(z), Label: sizeLabel(z)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Marker = logTicks(tick, 3, 8)
	if err := addLines(p, logLog(lines), true); err != nil {
		return nil, err
	}
	setLogRange(&p.X, sizes[0]/1.6, sizes[len(sizes)-1]*1.6)
	ylo, yhi = floor125(ylo), ceil125(yhi)
	if yhi <= ylo {
		yhi = ylo * 10
	}
	setLogRange(&p.Y, ylo, yhi)
	legendAt(p, legendLeft)
	return renderPanels(title, []*plot.Plot{p})
}

// seriesResults returns exp's results that have a time line, in report order.
func seriesResults(r *report.Report, exp string) []*report.Result {
	var out []*report.Result
	for _, c := range paramRows(r, exp) {
		for _, tr := range transportOrder(r) {
			if res := c.res[tr]; res != nil && res.Error == "" && len(res.Series) > 0 {
				out = append(out, res)
			}
		}
	}
	return out
}

// seriesChart draws a panel per result: cumulative messages sent and delivered over
// time. Time is shared; each panel has its own message scale, so that the gap
// between sent and delivered shows whatever the transport's volume (a UDP sender
// may hand over fifty times what a TCP one can).
func seriesChart(r *report.Report, rs []*report.Result, title string) ([]byte, error) {
	trs := transportOrder(r)
	multi := false
	for _, res := range rs {
		multi = multi || res.Params != rs[0].Params
	}
	var xhi float64
	for _, res := range rs {
		for _, s := range res.Series {
			xhi = max(xhi, s.TS)
		}
	}
	var plots []*plot.Plot
	for _, res := range rs {
		name := panelTitle(res, multi)
		p := newPlot(name, "time (s)", "messages (cumulative)")
		var sent, got plotter.XYs
		var yhi float64
		for _, s := range res.Series {
			yhi = max(yhi, float64(s.SentMsgs), float64(s.RecvMsgs))
			sent = append(sent, plotter.XY{X: s.TS, Y: float64(s.SentMsgs)})
			got = append(got, plotter.XY{X: s.TS, Y: float64(s.RecvMsgs)})
		}
		i := slices.Index(trs, res.Transport)
		sl, err := plotter.NewLine(sent)
		if err != nil {
			return nil, err
		}
		sl.LineStyle = draw.LineStyle{Color: grey, Width: vg.Points(3)}
		gl, err := plotter.NewLine(got)
		if err != nil {
			return nil, err
		}
		gl.LineStyle = draw.LineStyle{Color: palette[i%len(palette)], Width: vg.Points(lineWidth), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
		p.Add(gridLines(), sl, gl)
		p.Legend.Add(res.Transport+" sent", sl)
		p.Legend.Add(res.Transport+" delivered", gl)
		legendAt(p, true)
		p.X.Min, p.X.Max = 0, niceCeil(xhi)
		p.Y.Min, p.Y.Max = 0, niceCeil(yhi*1.05)
		p.Y.Tick.Marker = relabel{plot.DefaultTicks{}, tickSI}
		plots = append(plots, p)
	}
	return renderPanels(title, plots)
}

// panelTitle heads one result's panel: its transport, and its parameters when the
// chart has panels of several (multi).
func panelTitle(res *report.Result, multi bool) string {
	if multi {
		return res.Transport + ", " + paramsLabel(res.Params)
	}
	return res.Transport
}

// newPlot returns a plot with sans-serif text of fixed sizes.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, fontText)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sans, fontText)
		ax.Tick.Label.Font = font.From(sans, fontS)
		ax.Padding = vg.Points(2)
	}
	p.Legend.TextStyle.Font = font.From(sans, fontS)
	p.Legend.ThumbnailWidth = vg.Points(28)
	legendAt(p, false)
	return p
}

// legendAt puts the legend in the top left or right corner, inside the axes.
func legendAt(p *plot.Plot, left bool) {
	p.Legend.Top, p.Legend.Left = true, left
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(6)
	if left {
		p.Legend.XOffs = vg.Points(8)
	}
}

func gridLines() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 0xdd}
	g.Horizontal.Color = color.Gray{Y: 0xdd}
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	return g
}

// addLines adds a grid and each series as a line in its transport's style, with
// glyphs on the points when marks is set, and a legend entry for each.
func addLines(p *plot.Plot, lines []series, marks bool) error {
	p.Add(gridLines())
	for _, s := range lines {
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return err
		}
		l.LineStyle = draw.LineStyle{Color: palette[s.style%len(palette)], Width: vg.Points(lineWidth), Dashes: dashes[s.style%len(dashes)]}
		things := []plot.Thumbnailer{l}
		p.Add(l)
		if marks {
			sc, err := plotter.NewScatter(s.xy)
			if err != nil {
				return err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: palette[s.style%len(palette)], Radius: vg.Points(glyphRadius), Shape: glyphs[s.style%len(glyphs)]}
			p.Add(sc)
			things = append(things, sc)
		}
		p.Legend.Add(s.label, things...)
	}
	return nil
}

// renderPanels lays plots out in rows of up to maxCols panels under one title, with
// aligned axes, and returns the SVG.
func renderPanels(title string, plots []*plot.Plot) ([]byte, error) {
	n := len(plots)
	if n == 0 {
		return nil, fmt.Errorf("no data")
	}
	pw, ph := panelW, panelH
	if n == 1 {
		pw, ph = singleW, singleH
	}
	return renderGrid(title, plots, min(n, maxCols), pw, ph)
}

// renderGrid lays plots out in rows of cols panels of pw by ph under one title.
func renderGrid(title string, plots []*plot.Plot, cols int, pw, ph vg.Length) ([]byte, error) {
	n := len(plots)
	if n == 0 || cols < 1 {
		return nil, fmt.Errorf("no data")
	}
	rows := (n + cols - 1) / cols
	w, h := vg.Length(cols)*pw, vg.Length(rows)*ph+titleBand
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	dc.FillText(text.Style{
		Color:   color.Black,
		Font:    font.From(sans, fontTitle),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: plot.DefaultTextHandler,
	}, vg.Point{X: w / 2, Y: h - titleBand/2 - 2}, title)
	grid := make([][]*plot.Plot, rows)
	for j := range grid {
		grid[j] = make([]*plot.Plot, cols)
	}
	for i, p := range plots {
		grid[i/cols][i%cols] = p
	}
	body := draw.Crop(dc, 0, 0, 0, -titleBand)
	cs := plot.Align(grid, draw.Tiles{Rows: rows, Cols: cols, PadX: 14, PadY: 14, PadLeft: 6, PadRight: 10, PadBottom: 4, PadTop: 4}, body)
	for j := range grid {
		for i, p := range grid[j] {
			if p != nil {
				p.Draw(cs[j][i])
			}
		}
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	// Name fonts with the same metrics as fallbacks (Liberation Sans is metric-
	// compatible with Arial), so text laid out for Liberation fits where it is missing.
	return bytes.ReplaceAll(b.Bytes(), []byte("font-family:Liberation Sans;"), []byte(fontFamily)), nil
}

const fontFamily = "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"

// Log axes are drawn in log10 space on gonum's linear axes: plot.LogScale places
// an axis label's glyph box at the arithmetic middle of the range, which on a log
// axis pads the plot away from its label's side. logLog maps the points, logTicks
// marks and labels the axis in data units, setLogRange sets its range.

// logLog returns lines with both coordinates as log10.
func logLog(lines []series) []series {
	out := make([]series, len(lines))
	for i, s := range lines {
		out[i] = s
		out[i].xy = make(plotter.XYs, len(s.xy))
		for j, p := range s.xy {
			out[i].xy[j] = plotter.XY{X: math.Log10(p.X), Y: math.Log10(p.Y)}
		}
	}
	return out
}

// setLogRange sets a log10 axis to show lo..hi (data units).
func setLogRange(a *plot.Axis, lo, hi float64) {
	a.Min, a.Max = math.Log10(lo), math.Log10(hi)
}

// logTicks marks a log10 axis: a labelled tick at every power of ten (every other,
// or fewer, to keep at most about maxLabels), unlabelled ones at 2..9 times it; on
// an axis spanning up to dense decades, 2 and 5 times it are labelled too. Values
// are log10; labels are data units.
func logTicks(label func(float64) string, dense float64, maxLabels int) plot.Ticker {
	return plot.TickerFunc(func(llo, lhi float64) []plot.Tick {
		lo, hi := math.Pow(10, llo), math.Pow(10, lhi)
		if hi <= lo {
			return nil
		}
		decades := math.Log10(hi / lo)
		few := decades <= dense
		step := max(1, int(math.Ceil((decades+1e-9)/float64(maxLabels))))
		var out []plot.Tick
		for k := int(math.Floor(math.Log10(lo))) - 1; k <= int(math.Ceil(math.Log10(hi)))+1; k++ {
			for m := 1; m <= 9; m++ {
				v := units.RoundSig(float64(m)*math.Pow10(k), 6)
				if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
					continue
				}
				t := plot.Tick{Value: math.Log10(v)}
				if (m == 1 && k%step == 0) || (few && (m == 2 || m == 5)) {
					t.Label = label(v)
				}
				out = append(out, t)
			}
		}
		return out
	})
}

// relabel keeps a ticker's ticks and writes its labels anew.
type relabel struct {
	plot.Ticker
	label func(float64) string
}

func (r relabel) Ticks(lo, hi float64) []plot.Tick {
	ts := r.Ticker.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = r.label(ts[i].Value)
		}
	}
	return ts
}

// floor125 and ceil125 round a positive number to 1, 2 or 5 times a power of ten.
func floor125(x float64) float64 {
	e := math.Pow10(int(math.Floor(math.Log10(x) + 1e-9)))
	for _, m := range []float64{5, 2, 1} {
		if m*e <= x*(1+1e-9) {
			return units.RoundSig(m*e, 6)
		}
	}
	return e
}

func ceil125(x float64) float64 {
	e := math.Pow10(int(math.Floor(math.Log10(x) - 1e-9)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= x*(1-1e-9) {
			return units.RoundSig(m*e, 6)
		}
	}
	return 10 * e
}

// niceCeil rounds a non-negative number up to a round figure (1, 1.2, 1.5, 2, 2.5,
// 3, 4, 5, 6 or 8 times a power of ten), for a linear axis that starts at 0.
func niceCeil(x float64) float64 {
	if x <= 0 {
		return 1
	}
	e := math.Pow10(int(math.Floor(math.Log10(x))))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*e >= x*(1-1e-9) {
			return units.RoundSig(m*e, 6)
		}
	}
	return 10 * e
}

// Tick labels: shortest exact figures, units where the axis has none.
func tickPlain(v float64) string {
	if v >= 1000 {
		return units.Group(int64(math.Round(v)))
	}
	return strconv.FormatFloat(units.RoundSig(v, 3), 'f', -1, 64)
}

// tickTail labels a "fraction slower" tick, naming the percentile it marks.
func tickTail(v float64) string {
	k := int(math.Round(-math.Log10(v)))
	if math.Abs(v-math.Pow10(-k)) > 1e-9*v {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	switch {
	case k == 0:
		return "1"
	case k <= 3:
		p := strings.TrimRight(strings.TrimRight(strconv.FormatFloat(100-100*v, 'f', 1, 64), "0"), ".")
		return fmt.Sprintf("%s (p%s)", strconv.FormatFloat(v, 'f', -1, 64), p)
	case k <= 5:
		return fmt.Sprintf("1e-%d (p%s)", k, strings.TrimRight(strconv.FormatFloat(100-100*v, 'f', k-2, 64), "0"))
	}
	return fmt.Sprintf("1e-%d", k)
}

func tickBps(v float64) string { return tickUnit(v, units.BpsUnits) }
func tickSI(v float64) string  { return tickUnit(v, units.SIUnits) }

func tickUnit(v float64, scale []units.Unit) string {
	u := units.PickUnit(v, scale)
	return strconv.FormatFloat(units.RoundSig(v/u.Div, 3), 'f', -1, 64) + u.Suffix
}

// sizeLabel names a message size: "64 B", "1400 B", "8 KiB".
func sizeLabel(z float64) string {
	n := int(z)
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
