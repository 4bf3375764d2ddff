package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTextWidth: stdout that is not a terminal gets 100 columns, or COLUMNS when
// it is narrower; never wider.
func TestTextWidth(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name    string
		columns string
		want    int
	}{
		{"unset", "", 100},
		{"narrower", "80", 80},
		{"wider", "200", 100},
		{"not a number", "wide", 100},
		{"zero", "0", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := textWidth(&bytes.Buffer{}, tc.columns); got != tc.want {
				t.Errorf("buffer, COLUMNS=%q: width %d, want %d", tc.columns, got, tc.want)
			}
			if got := textWidth(f, tc.columns); got != tc.want {
				t.Errorf("file, COLUMNS=%q: width %d, want %d", tc.columns, got, tc.want)
			}
		})
	}
}

// TestReportVerbose: 'report' prints the verdict first, at most 100 columns wide
// into a pipe; -v adds each property's claim and evidence.
func TestReportVerbose(t *testing.T) {
	t.Setenv("COLUMNS", "")
	ref := filepath.Join("..", "..", "results", "reference", "report.json")
	for _, tc := range []struct {
		args   []string
		detail bool
	}{
		{[]string{"report", "--markdown", "", ref}, false},
		{[]string{"report", "--markdown", "", "-v", ref}, true},
		{[]string{"report", "--markdown", "", "--verbose", ref}, true},
	} {
		var out, errb bytes.Buffer
		if err := run(t.Context(), tc.args, &out, &errb); err != nil {
			t.Fatalf("%q: %v\n%s", tc.args, err, errb.String())
		}
		s := out.String()
		if i, j := strings.Index(s, "\nVerdict\n"), strings.Index(s, "\n+-"); i < 0 || j < i {
			t.Errorf("%q: the first table is not the verdict:\n%.800s", tc.args, s)
		}
		if got := strings.Contains(s, "\nProperties in detail\n"); got != tc.detail {
			t.Errorf("%q: properties in detail %v, want %v", tc.args, got, tc.detail)
		}
		for i, l := range strings.Split(s, "\n") {
			if len(l) > 100 {
				t.Errorf("%q: line %d is %d columns wide: %s", tc.args, i+1, len(l), l)
			}
		}
	}
}
