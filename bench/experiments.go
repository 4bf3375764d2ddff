package bench

import (
	"fmt"
	"slices"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// An experimentSpec is everything the runner knows of one experiment, in one
// place: each experiment's file registers its own (registerExperiment, from init).
// Nothing else in the runner asks for an experiment by name.
type experimentSpec struct {
	name  string         // as --experiments and reports spell it (report.Exp*)
	place int            // where the default suite runs it, lowest first: property experiments lead
	run   experimentFunc // runs one cell
	help  string         // what it does and shows, one sentence for --help

	// measures is true for a measurement, which runs a cell per --sizes; a property
	// experiment shows a behaviour once, at size (propertySize when 0).
	measures bool
	size     int
	// smallestSize: a measurement whose figure does not depend on the message size
	// runs at the smallest of --sizes only (connect).
	smallestSize bool
	// The plan's parameters a measurement takes, beside --sizes: streams takes
	// --streams and --rate; openLoop takes --ping-rate; directions takes --reverse
	// and --bidir; ioModes runs a cell per --udp-io mode on a transport that has a
	// textbook path (Caps.TextbookIO).
	streams, openLoop, directions, ioModes bool
	// labOnly: it shows what a lossy or slow link does, so it runs across the
	// emulated link only (the default suite's lab section runs it).
	labOnly bool
	// expect is how long one cell of it takes on an idle host, for the progress
	// estimate (Plan.Estimate); nil for the estimate's default (estimate.go).
	expect func(p Plan) time.Duration
	// notRemote says why it does not run against a remote server; "" when it does.
	notRemote string
	// optional: it runs only when named (--experiments), never in the default suite.
	optional bool
	// far is its server half as a far end runs it; every experiment that runs
	// against a remote server (no notRemote) has one.
	far *FarHalf
	// labSection is where the default suite's short section across the emulated
	// link runs it, lowest first (LabSection); 0: not there.
	labSection int
	// requestResponse: it sends requests and counts their replies, so a request
	// with no reply is unanswered, not lost (RequestResponse).
	requestResponse bool
	// cellWarnings and runWarnings are what its results say of themselves that a
	// reader must know (an identity that does not hold, a clock that was not the
	// kernel's): each cell's, and the run's over all its cells.
	cellWarnings func(r report.Result) []string
	runWarnings  func(rs []report.Result) []string
	// summary words a finished cell for progress lines (Summary); nil words it by
	// kind: a request/response cell's round trips, else its counts.
	summary func(r *report.Result) string
	// section is how the renderers show its results (heading, layout, parameters,
	// charts): the runner writes it into the report, so that no renderer names an
	// experiment. Its Experiment is name; left empty it is report.GenericSection,
	// and a section with no Title is headed by name, one with no Layout a table.
	section report.Section
	// properties are the rows of the properties table it derives from its
	// results, each a claim's rule; the table orders them by claim (report.Derive).
	properties []report.Rule
}

// experimentRegistry holds every registered experiment in the default suite's order.
var experimentRegistry []experimentSpec

// FarExperiments are the experiments a cell can run against a Far, in the default
// suite's order: those registered with no notRemote reason.
var FarExperiments []string

// registerExperiment adds s to the experimentRegistry. It panics on a name registered twice
// or a spec with no run function: registrations are the program's constants.
func registerExperiment(s experimentSpec) {
	if s.run == nil || s.name == "" {
		panic("bench: an experiment needs a name and a run function")
	}
	if s.notRemote == "" && (s.far == nil || (s.far.Serve == nil && s.far.RunsAs == "")) {
		panic(fmt.Sprintf("bench: experiment %q runs against a remote server: it needs a far half", s.name))
	}
	sec := &s.section
	if sec.Title == "" && sec.Layout == "" && len(sec.Params) == 0 && len(sec.Charts) == 0 {
		*sec = report.GenericSection(s.name)
	}
	if sec.Title == "" {
		sec.Title = s.name
	}
	if sec.Layout == "" {
		sec.Layout = report.LayoutTable
	}
	sec.Experiment, sec.Replies = s.name, s.requestResponse
	if _, dup := experimentByName(s.name); dup {
		panic(fmt.Sprintf("bench: experiment %q registered twice", s.name))
	}
	i, _ := slices.BinarySearchFunc(experimentRegistry, s.place, func(e experimentSpec, place int) int { return e.place - place })
	experimentRegistry = slices.Insert(experimentRegistry, i, s)
	FarExperiments = FarExperiments[:0]
	for _, e := range experimentRegistry {
		if e.notRemote == "" {
			FarExperiments = append(FarExperiments, e.name)
		}
	}
}

// experimentByName is the registered experiment called name.
func experimentByName(name string) (experimentSpec, bool) {
	i := slices.IndexFunc(experimentRegistry, func(e experimentSpec) bool { return e.name == name })
	if i < 0 {
		return experimentSpec{}, false
	}
	return experimentRegistry[i], true
}

// Experiments lists the experiment names in the order the default suite runs them.
func Experiments() []string {
	out := make([]string, len(experimentRegistry))
	for i, e := range experimentRegistry {
		out[i] = e.name
	}
	return out
}

// LabSection lists the experiments the default suite runs in its short section
// across the emulated link, in that section's order: those whose registry entry
// gives a place there (the stream, and the experiments that need a link's loss or
// rate).
func LabSection() []string {
	xs := slices.Clone(experimentRegistry)
	xs = slices.DeleteFunc(xs, func(x experimentSpec) bool { return x.labSection == 0 })
	slices.SortStableFunc(xs, func(a, b experimentSpec) int { return a.labSection - b.labSection })
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.name
	}
	return out
}

// AddSections gives r, and its lab part, the report section of every registered
// experiment its plan or results name that it has no section for, in the order
// the plan names them: the runner's report gets them all, and a report written
// before sections existed renders as the runner's would. An experiment not
// registered here gets none: the renderers show it as a generic table.
func AddSections(r *report.Report) {
	if r == nil {
		return
	}
	names := slices.Clone(r.Config.Experiments)
	for _, res := range r.Results {
		if !slices.Contains(names, res.Experiment) {
			names = append(names, res.Experiment)
		}
	}
	for _, name := range names {
		x, ok := experimentByName(name)
		if !ok || slices.ContainsFunc(r.Sections, func(s report.Section) bool { return s.Experiment == name }) {
			continue
		}
		r.Sections = append(r.Sections, x.section)
	}
	AddSections(r.Lab)
}

// An ExperimentInfo describes a registered experiment for help texts.
type ExperimentInfo struct {
	Name     string
	Measures bool   // a measurement, run at every --sizes; else a property experiment, run once
	LabOnly  bool   // runs across the emulated link only
	Help     string // what it does and shows, one sentence
}

// ExperimentInfos describes the registered experiments, in the default suite's order.
func ExperimentInfos() []ExperimentInfo {
	out := make([]ExperimentInfo, len(experimentRegistry))
	for i, x := range experimentRegistry {
		out[i] = ExperimentInfo{Name: x.name, Measures: x.measures, LabOnly: x.labOnly, Help: x.help}
	}
	return out
}

// sizes are the message sizes of x's cells in plan p.
func (x experimentSpec) sizes(p Plan) []int {
	switch {
	case !x.measures:
		if x.size > 0 {
			return []int{x.size}
		}
		return []int{propertySize}
	case x.smallestSize:
		return []int{slices.Min(p.Sizes)}
	}
	return p.Sizes
}

// propertyRules lists the property rules of every registered experiment, in the
// registry's order: what report.Derive reads a run's results with.
func propertyRules() []report.ExperimentRules {
	var out []report.ExperimentRules
	for _, x := range experimentRegistry {
		if len(x.properties) > 0 {
			out = append(out, report.ExperimentRules{Experiment: x.name, Rules: x.properties})
		}
	}
	return out
}

// remoteWhy is why x does not run against a remote server ("" when it does).
func remoteWhy(name string) string {
	x, _ := experimentByName(name)
	return x.notRemote
}
