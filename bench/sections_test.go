package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

var updateSections = flag.Bool("update-sections", false, "rewrite render/testdata/sections.json from the registry")

// builtinSections are the report sections of the experiments registered in bench
// (not from outside, as tests do), in the default suite's order.
func builtinSections() []report.Section {
	var out []report.Section
	for _, x := range experimentRegistry {
		if x.place < externalPlace {
			out = append(out, x.section)
		}
	}
	return out
}

// sectionsTestdata is where the renderers' tests read the registry's sections, so
// that their reports, built by hand, render as the runner's do.
var sectionsTestdata = filepath.Join("render", "testdata", "sections.json")

// TestSectionsTestdata: the sections the renderers' tests read are the registry's,
// byte for byte (go test ./bench -run TestSectionsTestdata -update-sections
// rewrites them).
func TestSectionsTestdata(t *testing.T) {
	want, err := json.MarshalIndent(builtinSections(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *updateSections {
		if err := os.WriteFile(sectionsTestdata, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(sectionsTestdata)
	if err != nil {
		t.Fatalf("%v (-update-sections writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the registry's sections (-update-sections rewrites it):\n%s", sectionsTestdata, want)
	}
}

// TestSections: every built-in experiment has a section of its own (a title that
// is not its bare name, a layout), and no two of its charts share a file name.
func TestSections(t *testing.T) {
	files := map[string]string{}
	for _, s := range builtinSections() {
		if s.Title == s.Experiment || s.Layout == "" {
			t.Errorf("%s: section %+v: want a title and a layout of its own", s.Experiment, s)
		}
		for _, c := range s.Charts {
			if c.File == "" {
				continue
			}
			if other, dup := files[c.File]; dup {
				t.Errorf("chart %s: in %s and %s", c.File, other, s.Experiment)
			}
			files[c.File] = s.Experiment
		}
	}
}

// TestAddSections: a report gets the section of each registered experiment its
// plan or results name, once, in the plan's order, its lab part its own; one it
// already has and an unknown experiment are left alone.
func TestAddSections(t *testing.T) {
	own := report.Section{Experiment: report.ExpConnect, Title: "mine", Layout: report.LayoutTable}
	r := &report.Report{
		Config:   report.Config{Experiments: []string{report.ExpPingPong, report.ExpStream, report.ExpConnect}},
		Results:  []report.Result{{Experiment: report.ExpStream}, {Experiment: "unknown"}, {Experiment: report.ExpRefused}},
		Sections: []report.Section{own},
		Lab:      &report.Report{Results: []report.Result{{Experiment: report.ExpHOL}}},
	}
	AddSections(r)
	AddSections(r) // twice adds nothing
	var got []string
	for _, s := range r.Sections {
		got = append(got, s.Experiment)
	}
	if want := []string{report.ExpConnect, report.ExpPingPong, report.ExpStream, report.ExpRefused}; !slices.Equal(got, want) {
		t.Errorf("sections of %v, want %v", got, want)
	}
	if r.Sections[0].Title != "mine" {
		t.Errorf("the report's own section became %+v", r.Sections[0])
	}
	stream, _ := experimentByName(report.ExpStream)
	if s := r.SectionOf(report.ExpStream); s.Title != stream.section.Title || s.Layout != report.LayoutThroughput {
		t.Errorf("stream's section %+v, want the registry's %+v", s, stream.section)
	}
	if s := r.SectionOf("unknown"); s.Title != "unknown" || s.Layout != report.LayoutTable {
		t.Errorf("an unknown experiment's section %+v, want a generic table titled by its name", s)
	}
	if len(r.Lab.Sections) != 1 || r.Lab.Sections[0].Experiment != report.ExpHOL {
		t.Errorf("lab sections %+v, want hol's", r.Lab.Sections)
	}
}
