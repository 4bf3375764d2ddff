package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// referenceReport is the committed reference run, with its lab report: its results
// and the property rows the code of its day derived from them.
const referenceReport = "../results/reference/report.json"

// TestPropertiesReference: the properties table derived today from the reference
// run's results (the loopback report's and its lab report's, merged as the default
// suite merges them) is the one stored with it, row by row and field by field.
func TestPropertiesReference(t *testing.T) {
	b, err := os.ReadFile(referenceReport)
	if err != nil {
		t.Fatal(err)
	}
	var stored report.Report
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Lab == nil {
		t.Fatalf("%s has no lab report", referenceReport)
	}
	lab := *stored.Lab
	lab.Properties = derivedProperties(&lab)
	t.Run("lab", func(t *testing.T) { sameProperties(t, lab.Properties, stored.Lab.Properties) })
	main := stored
	main.Lab = nil
	main.Properties = derivedProperties(&main)
	main.AttachLab(&lab)
	t.Run("main", func(t *testing.T) { sameProperties(t, main.Properties, stored.Properties) })
}

// derivedProperties derives r's properties table from its results, as a run does:
// by the rules each registered experiment lists.
func derivedProperties(r *report.Report) []report.Property { return report.Derive(r, propertyRules()) }

// derivedRow is the row of claim id that r's results derive, if any.
func derivedRow(r *report.Report, id string) (report.Property, bool) {
	for _, p := range derivedProperties(r) {
		if p.ID == id {
			return p, true
		}
	}
	return report.Property{}, false
}

// sameProperties compares two property tables field by field, as their JSON says
// them: numbers are compared as written, whatever Go type held them.
func sameProperties(t *testing.T, got, want []report.Property) {
	t.Helper()
	ids := func(ps []report.Property) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	if !reflect.DeepEqual(ids(got), ids(want)) {
		t.Errorf("rows %q, want %q", ids(got), ids(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := asJSON(t, got[i]), asJSON(t, want[i])
		for _, k := range []string{"id", "property", "claim", "tcp", "udp", "by_transport", "evidence"} {
			if !reflect.DeepEqual(g[k], w[k]) {
				t.Errorf("%s: %s\n got %v\nwant %v", want[i].ID, k, g[k], w[k])
			}
		}
		if len(g) != len(w) {
			t.Errorf("%s: fields %v, want %v", want[i].ID, g, w)
		}
	}
}

// asJSON is p as its JSON decodes, numbers kept as written.
func asJSON(t *testing.T, p report.Property) map[string]any {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
