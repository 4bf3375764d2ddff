package render

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// registrySections are the sections the runner writes for every experiment
// registered in bench, read from testdata/sections.json, which bench's
// TestSectionsTestdata keeps equal to the registry.
var registrySections = sync.OnceValue(func() []report.Section {
	b, err := os.ReadFile(filepath.Join("testdata", "sections.json"))
	if err != nil {
		panic(err)
	}
	var ss []report.Section
	if err := json.Unmarshal(b, &ss); err != nil {
		panic(err)
	}
	return ss
})

// withSections gives r, and its lab part, the registry's sections, so that a report
// these tests build by hand (or one written before sections existed) renders as
// the runner's does. It returns r.
func withSections(r *report.Report) *report.Report {
	if r == nil {
		return nil
	}
	r.Sections = registrySections()
	withSections(r.Lab)
	return r
}

// TestRenderWithoutSections: a report written before sections existed renders
// without error, each experiment as a generic table headed by its name, and no
// chart of a section (it names none): no title, layout or chart comes from
// anywhere but the report.
func TestRenderWithoutSections(t *testing.T) {
	r := testReport()
	r.Sections = nil
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		for _, exp := range []string{"stream", "pingpong", "connect", "refused"} {
			if !strings.Contains(out, "\n"+exp+"\n") && !strings.Contains(out, "## "+exp+"\n") {
				t.Errorf("%s: no section headed %q:\n%s", name, exp, out)
			}
		}
		for _, title := range []string{"Throughput (stream)", "Round-trip time (pingpong)", "Refused connections (refused)"} {
			if strings.Contains(out, title) {
				t.Errorf("%s: a section titled %q, which only the registry's sections say:\n%s", name, title, out)
			}
		}
		if !strings.Contains(out, "No dedicated table for this experiment") {
			t.Errorf("%s: no generic table:\n%s", name, out)
		}
	}
	if names := ChartNames(r); len(names) != 0 {
		t.Errorf("charts %v of a report without sections, want none", names)
	}
}

// TestRenderSectionFromReport: an experiment no renderer has heard of gets the
// title, layout and charts its section in the report gives it: a throughput
// layout's tables and a by-size chart of the figure it names, under its file name.
func TestRenderSectionFromReport(t *testing.T) {
	r := testReport()
	const exp = "made-up"
	for _, res := range slices.Clone(r.Results) {
		if res.Experiment == "stream" {
			res.Experiment = exp
			r.Results = append(r.Results, res)
		}
	}
	r.Sections = append(r.Sections, report.Section{Experiment: exp, Title: "A made-up transfer", Layout: report.LayoutThroughput,
		Charts: []report.Chart{{Kind: report.ChartBySize, File: "made_up.svg", Title: "Made up by size", Heading: "Made up",
			Field: "goodput_bps", YLabel: "goodput"}}})
	text, md := renderBoth(t, r)
	for name, out := range map[string]string{"text": text, "markdown": md} {
		i := strings.Index(out, "A made-up transfer")
		if i < 0 {
			t.Fatalf("%s: no section titled by the report:\n%s", name, out)
		}
		for _, want := range []string{"Rate", "Loss, order and jitter", "goodput"} {
			if !strings.Contains(out[i:], want) {
				t.Errorf("%s: the made-up section lacks %q:\n%s", name, want, out[i:])
			}
		}
	}
	if !strings.Contains(md, "(made_up.svg)") {
		t.Errorf("markdown links no made_up.svg:\n%s", md)
	}
	if names := ChartNames(r); !slices.Contains(names, "made_up.svg") || !slices.Contains(names, "goodput_by_size.svg") {
		t.Errorf("charts %v, want made_up.svg beside stream's", names)
	}
}
