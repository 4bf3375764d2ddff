package render

import (
	"encoding/json"
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// The emulated link's charts, drawn like the others from figures already in the
// report, each only when the report holds its data. The kinds its sections name
// (labKinds):
//
//	lab_latency_cdf       a one-way latency as a percentile plot (log-log CCDF), in ms
//	goodput_over_time     each flow's goodput over time, a panel per cell
//
// and this renderer's own, for the emulated-link section (injectedSection) and each
// section that names its kind (report.ChartInjectedVsMeasured):
//
//	injected_vs_measured.svg      what the link did beside what the transports counted
//
// A report's lab part (Report.Lab) gets the same charts named with a "lab_" prefix,
// so a report that holds both never writes one file twice.

// labPrefix starts the names of the charts drawn from a report's lab part.
const labPrefix = "lab_"

// labKinds are the kinds of chart of the emulated link that sections name, in the
// order the charts come.
var labKinds = []string{report.ChartLabLatencyCDF, report.ChartGoodputOverTime}

// labCharts lists the emulated-link charts r has data for, their names prefixed.
func labCharts(r *report.Report, prefix string) []chart {
	out := sectionCharts(r, prefix, labKinds)
	if bars := injectedBars(r); len(bars) > 0 {
		// The sections that name it show it too (the stream cells', most of its bars).
		var also []string
		for _, exp := range experimentOrder(r) {
			if slices.ContainsFunc(r.SectionOf(exp).Charts, func(c report.Chart) bool { return c.Kind == report.ChartInjectedVsMeasured }) {
				also = append(also, exp)
			}
		}
		out = append(out, chart{name: prefix + "injected_vs_measured.svg", title: "Injected vs measured", exp: injectedExp, also: also, draw: func() ([]byte, error) {
			return injectedChart(bars)
		}})
	}
	return out
}

// observedLatency is a result's observation key holding a latency distribution:
// the value itself in a report built in this process, a JSON object in one read
// back from a file; nil without it.
func observedLatency(o map[string]any, key string) *report.LatencyStats {
	raw, ok := o[key]
	if !ok {
		return nil
	}
	if st, ok := raw.(*report.LatencyStats); ok {
		return st
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	var st report.LatencyStats
	if err := json.Unmarshal(b, &st); err != nil {
		return nil
	}
	return &st
}

// timelineResults returns exp's measured results that have goodput time lines with
// at least two points, in row and transport order.
func timelineResults(r *report.Report, exp string) []*report.Result {
	var out []*report.Result
	for _, c := range paramRows(r, exp) {
		for _, tr := range transportOrder(r) {
			res := c.res[tr]
			if res == nil || res.Error != "" {
				continue
			}
			if slices.ContainsFunc(res.Timelines, func(tl report.Timeline) bool { return len(tl.Points) >= 2 }) {
				out = append(out, res)
			}
		}
	}
	return out
}

// flowStyle is how a bottleneck flow is drawn, and named after its transport.
var flowStyle = map[string]struct {
	style int
	label func(tr string) string
}{
	report.FlowAlone:      {0, func(tr string) string { return tr + " alone" }},
	report.FlowShared:     {1, func(tr string) string { return tr + " beside the competitor" }},
	report.FlowCompetitor: {2, func(tr string) string { return "competitor (" + tr + ", unresponsive)" }},
}

// timelineChart draws a panel per cell (a result with time lines): each flow's
// goodput over time, from the start of its measured phase, and the link's rate,
// headed by heading and the sampling interval. The phases ran one after the other;
// they share the time axis to be compared. Axes are shared too.
func timelineChart(rs []*report.Result, heading string) ([]byte, error) {
	multi := false
	for _, res := range rs {
		multi = multi || res.Params != rs[0].Params
	}
	var xhi, yhi, link float64
	for _, res := range rs {
		if v, ok := report.Get(res.Observed, report.ObsLinkRateBps); ok && v > 0 {
			link = v
			yhi = max(yhi, v)
		}
		for _, tl := range res.Timelines {
			for _, pt := range tl.Points {
				xhi, yhi = max(xhi, pt.TS), max(yhi, pt.GoodputBps)
			}
		}
	}
	var plots []*plot.Plot
	for _, res := range rs {
		name := panelTitle(res, multi)
		p := newPlot(name, "time since the flow started (s)", "goodput (receiver)")
		p.Add(gridLines())
		if v, ok := report.Get(res.Observed, report.ObsLinkRateBps); ok && v > 0 {
			l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: v}, {X: niceCeil(xhi), Y: v}})
			if err != nil {
				return nil, err
			}
			l.LineStyle = draw.LineStyle{Color: grey, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(1), vg.Points(2)}}
			p.Add(l)
			p.Legend.Add("link rate "+units.Bps(v), l)
		}
		for _, tl := range res.Timelines {
			fs, ok := flowStyle[tl.Flow]
			if !ok || len(tl.Points) < 2 {
				continue
			}
			xy := make(plotter.XYs, len(tl.Points))
			for i, pt := range tl.Points {
				xy[i] = plotter.XY{X: pt.TS, Y: pt.GoodputBps}
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return nil, err
			}
			l.LineStyle = draw.LineStyle{Color: palette[fs.style%len(palette)], Width: vg.Points(lineWidth), Dashes: dashes[fs.style%len(dashes)]}
			p.Add(l)
			p.Legend.Add(fs.label(tl.Transport), l)
		}
		legendAt(p, false)
		p.X.Min, p.X.Max = 0, niceCeil(xhi)
		p.Y.Min, p.Y.Max = 0, niceCeil(yhi*1.3) // room for the legend above the lines
		p.Y.Tick.Marker = relabel{plot.DefaultTicks{}, tickBps}
		plots = append(plots, p)
	}
	title := heading + ", per " + timelineStep(rs)
	if link > 0 {
		title += " (link " + units.Bps(link) + ")"
	}
	return renderPanels(title, plots)
}

// timelineStep names the sampling interval of rs's time lines: "100 ms".
func timelineStep(rs []*report.Result) string {
	for _, res := range rs {
		for _, tl := range res.Timelines {
			if tl.StepS > 0 {
				return fmt.Sprintf("%g ms", units.RoundSig(tl.StepS*1e3, 3))
			}
		}
	}
	return "interval"
}

// injectedExp is the section of the injected-vs-measured table (injectedSection).
const injectedExp = "lab"

// injectedBar is one cell of the injected-vs-measured chart: what the link did to the
// measured data and what the transport counted of it.
type injectedBar struct {
	label string     // the cell, a line per word: "stream\nudp"
	link  [3]float64 // the link's figures (LinkFigures): lost, duplicated, reordered
	meas  [3]float64 // the transport's: lost (TCP: retransmits), duplicates, reordered
}

// The panels of the injected-vs-measured chart, in the order of injectedBar's arrays.
var injectedKinds = []string{"lost (TCP: retransmitted)", "duplicated", "reordered"}

// injectedBars returns the lab results whose link counts are comparable with what the
// transport measured: datagram cells whose link figures count the measured messages
// one packet each (Injected.Messages), and TCP cells, whose lost packets become
// retransmits. Cells whose link counts cover more (bottleneck's phases and its
// competing flow) are left out.
func injectedBars(r *report.Report) []injectedBar {
	var out []injectedBar
	sizes := map[int]bool{}
	for _, res := range r.Results {
		if res.Injected != nil && res.Error == "" {
			sizes[res.Params.Size] = true
		}
	}
	for _, res := range r.Results {
		in := res.Injected
		if in == nil || res.Error != "" {
			continue
		}
		f, m := in.Figures(), res.Metrics
		b := injectedBar{label: res.Experiment + "\n" + res.Transport}
		if res.Params.IO == report.IOTextbook {
			b.label += "\ntextbook"
		}
		if len(sizes) > 1 {
			b.label += "\n" + sizeLabel(float64(res.Params.Size))
		}
		switch {
		case in.Messages:
			b.meas[0] = float64(m.LostMsgs)
		case !f.Datagrams && m.Retransmits != nil:
			b.meas[0] = float64(*m.Retransmits)
		default:
			continue
		}
		b.link = [3]float64{float64(f.Lost()), float64(f.Duplicated), float64(f.Reordered)}
		b.meas[1], b.meas[2] = float64(m.DupMsgs), float64(m.ReorderedMsgs)
		out = append(out, b)
	}
	return out
}

// Up to injectedFew cells, the injected-vs-measured panels stand side by side; with
// more, one above the other, each injectedCellW wide per cell.
const (
	injectedFew   = 6
	injectedCellW = 0.7 * vg.Inch
)

// injectedChart draws a panel per kind of impairment, a pair of bars per cell: what
// the link did (grey) beside what the transport measured, each bar labelled with its
// count.
func injectedChart(bars []injectedBar) ([]byte, error) {
	names := make([]string, len(bars))
	for i, b := range bars {
		names[i] = b.label
	}
	const w = 11 // bar width, points
	var plots []*plot.Plot
	for k, kind := range injectedKinds {
		p := newPlot(kind, "", "messages or packets")
		p.Add(gridLines())
		var link, meas plotter.Values
		var top float64
		for _, b := range bars {
			link, meas = append(link, b.link[k]), append(meas, b.meas[k])
			top = max(top, b.link[k], b.meas[k])
		}
		for j, set := range []struct {
			vals  plotter.Values
			fill  color.Color
			label string
		}{{link, color.Gray{Y: 0xb0}, "link (injected)"}, {meas, palette[0], "measured"}} {
			bc, err := plotter.NewBarChart(set.vals, vg.Points(w))
			if err != nil {
				return nil, err
			}
			bc.Color = set.fill
			bc.LineStyle = draw.LineStyle{Color: color.Black, Width: vg.Points(0.5)}
			bc.Offset = vg.Points(w * (float64(j) - 0.5))
			p.Add(bc)
			p.Legend.Add(set.label, bc)
			lb, err := barLabels(set.vals, bc.Offset)
			if err != nil {
				return nil, err
			}
			p.Add(lb)
		}
		p.NominalX(names...)
		p.Y.Min, p.Y.Max = 0, niceCeil(max(top, 1)*1.3) // room for the labels and the legend
		p.Y.Tick.Marker = relabel{plot.DefaultTicks{}, tickSI}
		legendAt(p, false)
		plots = append(plots, p)
	}
	title := "Emulated link: what it did to the measured data (client to server) vs what each transport counted"
	if len(bars) <= injectedFew {
		return renderPanels(title, plots)
	}
	return renderGrid(title, plots, 1, max(singleW, vg.Length(len(bars))*injectedCellW), panelH)
}

// barLabels writes each value above its bar, the bars offset by off.
func barLabels(vals plotter.Values, off vg.Length) (*plotter.Labels, error) {
	var xyl plotter.XYLabels
	for i, v := range vals {
		xyl.XYs = append(xyl.XYs, plotter.XY{X: float64(i), Y: v})
		xyl.Labels = append(xyl.Labels, units.Group(int64(v)))
	}
	lb, err := plotter.NewLabels(xyl)
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font = font.From(sans, fontS-1.5)
		lb.TextStyle[i].XAlign, lb.TextStyle[i].YAlign = text.XCenter, text.YBottom
	}
	lb.Offset = vg.Point{X: off, Y: vg.Points(1.5)}
	return lb, nil
}
