package report

import "slices"

// Section is how the renderers show one experiment's results: its heading, the
// layout of its tables, the parameters it owns and its charts. Each experiment's
// registration holds its section and the runner writes the sections of the
// experiments it ran into the report (Report.Sections), so that a renderer reads
// everything it shows from the report and never asks for an experiment by name.
type Section struct {
	Experiment string `json:"experiment"` // the experiment it shows, as results name it
	Title      string `json:"title"`      // its heading: "Throughput (stream)"
	// Layout is how its tables are laid out, one of the Layout kinds: a kind the
	// renderers know, not an experiment.
	Layout string `json:"layout"`
	// Params are the experiment-specific parameters (OwnParams) it owns: a table or
	// a note describes those, and none of the others the runner hands every cell.
	Params []string `json:"params,omitempty"`
	// Charts are drawn from its results, each when the report holds its data.
	Charts []Chart `json:"charts,omitempty"`
	// Replies: its experiment sends requests and counts their replies, so a
	// request with no reply is unanswered (Metrics.Timeouts), never lost; its
	// lost_msgs only repeats its timeouts.
	Replies bool `json:"replies,omitempty"`
}

// The layouts of a Section, a closed set the renderers know.
const (
	// LayoutThroughput: a table of rates (goodput, msgs/s, sender rate, CPU per GB)
	// and one of loss, order and jitter, with streams and rate described.
	LayoutThroughput = "throughput"
	// LayoutLatency: a table of round-trip-time percentiles and round trips/s.
	LayoutLatency = "latency"
	// LayoutSetup: a table of time-to-first-answer percentiles, transactions/s and
	// the server's sockets.
	LayoutSetup = "setup"
	// LayoutTable: what each transport observed (Result.Observed) and its non-zero
	// counters, or every non-zero metric when it observed nothing. The generic layout.
	LayoutTable = "table"
)

// The experiment-specific parameters of a cell (Params fields), as Section.Params
// names them. The runner hands every property cell all of them; a section describes
// only those it owns.
const (
	ParamClients    = "clients"     // Params.Clients
	ParamReceivers  = "receivers"   // Params.Receivers
	ParamReaderRate = "reader_rate" // Params.ReaderBps
)

// OwnParams lists every experiment-specific parameter, in the order tables show them.
var OwnParams = []string{ParamClients, ParamReceivers, ParamReaderRate}

// Chart is one chart of a section: a kind the renderers know how to draw, and what it
// draws named as data.
type Chart struct {
	Kind string `json:"kind"` // one of the Chart kinds
	// File is the chart's file name ("rtt_cdf.svg"); a report's lab part prefixes it.
	// Absent for ChartInjectedVsMeasured, which is the renderers' own.
	File    string `json:"file,omitempty"`
	Title   string `json:"title,omitempty"`   // what an image link says: "RTT distribution"
	Heading string `json:"heading,omitempty"` // drawn atop the chart: "Round-trip time distribution"
	// Field is the figure it draws: a Metrics JSON name ("goodput_bps",
	// "msgs_per_s"), "rtt_ns" for Metrics.RTT, or an observation's key holding a
	// LatencyStats ("latency").
	Field  string `json:"field,omitempty"`
	XLabel string `json:"x_label,omitempty"`
	YLabel string `json:"y_label,omitempty"`
}

// The kinds of Chart, a closed set the renderers know. The first three are drawn
// from a report's own results, the others (the emulated link's) from its results
// and from its lab part's.
const (
	// ChartLatencyCDF: a latency distribution (Field: "rtt_ns") as a percentile
	// plot, in microseconds, a panel per parameter set.
	ChartLatencyCDF = "latency_cdf"
	// ChartBySize: a figure (Field, a Metrics JSON name) against message size, a line
	// per transport.
	ChartBySize = "by_size"
	// ChartSeries: each result's time line (Result.Series), cumulative messages sent
	// and delivered, a panel per result.
	ChartSeries = "series"
	// ChartLabLatencyCDF: a latency distribution observed across the emulated link
	// (Field: an observation's key), in milliseconds.
	ChartLabLatencyCDF = "lab_latency_cdf"
	// ChartGoodputOverTime: each flow's goodput over time (Result.Timelines), a
	// panel per result.
	ChartGoodputOverTime = "goodput_over_time"
	// ChartInjectedVsMeasured: what the emulated link did beside what the transports
	// counted, over every result with Injected figures. The renderers draw it for
	// the emulated link's section; a section listing it shows it too.
	ChartInjectedVsMeasured = "injected_vs_measured"
)

// GenericSection is the section of an experiment that names none: headed by its
// name, laid out as a generic table, describing every experiment-specific
// parameter (which of them it uses is not known).
func GenericSection(exp string) Section {
	return Section{Experiment: exp, Title: exp, Layout: LayoutTable, Params: slices.Clone(OwnParams)}
}

// SectionOf is experiment exp's section in r, or its GenericSection when r has none
// for it: a report written before sections existed renders each experiment as a
// generic table headed by its name.
func (r *Report) SectionOf(exp string) Section {
	for _, s := range r.Sections {
		if s.Experiment == exp {
			return s
		}
	}
	return GenericSection(exp)
}
