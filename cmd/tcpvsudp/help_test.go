package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// helpOf is 'tcpvsudp ARGS' as a test sees it: stdout is not a terminal, so help is
// 100 columns wide.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("tcpvsudp %s: %v (stderr %q)", strings.Join(args, " "), err, errb.String())
	}
	if errb.Len() > 0 {
		t.Errorf("tcpvsudp %s: stderr %q, want nothing", strings.Join(args, " "), errb.String())
	}
	return out.String()
}

// commandFor is the command args name under a fresh root.
func commandFor(t *testing.T, args []string) *cobra.Command {
	t.Helper()
	root := newRootCmd(context.Background(), &bytes.Buffer{}, &bytes.Buffer{})
	c, _, err := root.Find(args)
	if err != nil {
		t.Fatalf("find %v: %v", args, err)
	}
	return c
}

// sourceWords are the words help is made of: the command's texts and its flags'
// descriptions, each of which must appear whole in the help.
func sourceWords(c *cobra.Command) []string {
	texts := []string{c.Short, c.Long, c.Example}
	if _, ok := c.Annotations[flagsOf]; !ok {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			_, usage := pflag.UnquoteUsage(f)
			texts = append(texts, usage)
		})
	}
	var words []string
	for _, t := range texts {
		words = append(words, strings.Fields(t)...)
	}
	return words
}

// hyphenBreak is a word broken at a hyphen across two lines ("rate-" / "limits").
var hyphenBreak = regexp.MustCompile(`[A-Za-z]-\n *[a-z]`)

// pointsAbove is a pointer to a section of help above it: "(see 'Experiments'
// above)", "(keys above)".
var pointsAbove = regexp.MustCompile(`\S+ above\)`)

// TestHelpFits: each command's help fits 100 columns (stdout is not a terminal), run's
// in under 80 lines, with every word of its texts whole on one line and no stale
// words ("in progress", "so far").
func TestHelpFits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		maxLines int
	}{
		{"root", []string{"--help"}, 40},
		{"run", []string{"run", "--help"}, 79},
		{"serve", []string{"serve", "--help"}, 79},
		{"report", []string{"report", "--help"}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := helpOf(t, tc.args...)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) > tc.maxLines {
				t.Errorf("tcpvsudp %s: %d lines, want at most %d", strings.Join(tc.args, " "), len(lines), tc.maxLines)
			}
			for i, l := range lines {
				if len(l) > defaultHelpWidth {
					t.Errorf("line %d is %d columns, want at most %d: %q", i+1, len(l), defaultHelpWidth, l)
				}
			}
			if m := hyphenBreak.FindString(out); m != "" {
				t.Errorf("a word is broken at a hyphen across lines: %q", m)
			}
			have := map[string]bool{}
			for _, w := range strings.Fields(out) {
				have[w] = true
			}
			for _, w := range sourceWords(commandFor(t, tc.args[:len(tc.args)-1])) {
				if !have[w] {
					t.Errorf("word %q of the help's text is not whole in the help (split across lines?)", w)
				}
			}
			for _, s := range []string{"in progress", "so far"} {
				if strings.Contains(out, s) {
					t.Errorf("help says %q", s)
				}
			}
			// Only run's help has the sections its flags point at ("keys above").
			if m := pointsAbove.FindString(out); tc.name != "run" && m != "" {
				t.Errorf("help points at a section above it does not have: %q", m)
			}
		})
	}
}

// TestHelpWraps: at any width help is wrapped at word boundaries, no line wider
// than the width unless it is a single word, items hang under their text.
func TestHelpWraps(t *testing.T) {
	for _, width := range []int{60, 80, 100, 140} {
		for _, args := range [][]string{{}, {"run"}, {"serve"}, {"report"}} {
			var b bytes.Buffer
			c := commandFor(t, args)
			if err := writeHelp(&b, c, width); err != nil {
				t.Fatal(err)
			}
			for i, l := range strings.Split(b.String(), "\n") {
				if len(l) > width && len(strings.Fields(l)) > 1 {
					t.Errorf("%v at width %d: line %d is %d columns: %q", args, width, i+1, len(l), l)
				}
			}
		}
	}
}

func TestHangingIndent(t *testing.T) {
	for _, tc := range []struct {
		name, head, text string
		width, indent    int
		want             string
	}{
		{"fits", "  -x  ", "one two", 20, 6, "  -x  one two\n"},
		{"wraps at a space", "  -x  ", "aaaa bbbb cccc dddd", 16, 6, "  -x  aaaa bbbb\n      cccc dddd\n"},
		{"long word alone", "", "short averyveryverylongword end", 10, 0, "short\naveryveryverylongword\nend\n"},
		{"exact width", "ab ", "cd ef", 8, 3, "ab cd ef\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hangingIndent(tc.head, tc.text, tc.width, tc.indent); got != tc.want {
				t.Errorf("hangingIndent(%q, %q, %d, %d) =\n%q, want\n%q", tc.head, tc.text, tc.width, tc.indent, got, tc.want)
			}
		})
	}
}

// readmeFlagTable returns the flag names of README.md's run flag table (its rows
// whose first cell names flags: "`-t, --transports`", "`--rcvbuf`, `--sndbuf`"), in
// the table's order, repeats kept.
func readmeFlagTable(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("README.md: %v", err)
	}
	name := regexp.MustCompile("`(?:-[A-Za-z], )?--([a-z0-9-]+)(?: [A-Z]+)?`")
	var names []string
	inTable := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "| flag |") {
			inTable = true
			continue
		}
		if inTable && !strings.HasPrefix(l, "|") {
			break
		}
		if !inTable {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(l, "|"), "|")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// TestREADMEFlagTable compares README.md's flag table with run's flags: every flag
// once, no flag that run does not have. The differences are listed in full.
func TestREADMEFlagTable(t *testing.T) {
	table := readmeFlagTable(t)
	if len(table) == 0 {
		t.Fatal("README.md has no flag table ('| flag |'): the README's usage must list run's flags")
	}
	flags := RunFlagNames()
	var diffs []string
	for _, f := range flags {
		if !slices.Contains(table, f) {
			diffs = append(diffs, "not in the table: --"+f)
		}
	}
	seen := map[string]int{}
	for _, f := range table {
		seen[f]++
		switch {
		case !slices.Contains(flags, f) && seen[f] == 1:
			diffs = append(diffs, "not a flag of run: --"+f)
		case seen[f] == 2:
			diffs = append(diffs, "row twice: --"+f)
		}
	}
	for _, d := range diffs {
		t.Errorf("README.md's flag table differs from 'tcpvsudp run --help': %s", d)
	}
	// Each flag's row says what help says: its signature, its default as help shows
	// it, and its description word for word.
	rows := readmeFlagRows(t)
	commandFor(t, []string{"run"}).LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		got, ok := rows[f.Name]
		if !ok {
			return // listed above
		}
		_, usage := pflag.UnquoteUsage(f)
		def := ""
		if d := flagDefault(f); d != "" {
			def = "`" + d + "`"
		}
		if want := [3]string{"`" + flagSignature(f) + "`", def, usage}; got != want {
			t.Errorf("README.md's row of --%s differs from 'tcpvsudp run --help':\n got  %q\n want %q", f.Name, got, want)
		}
	})
}

// readmeFlagRows returns the cells of README.md's flag table (flag, default,
// meaning), by the flag each row names; a row naming several flags is left out.
func readmeFlagRows(t *testing.T) map[string][3]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("README.md: %v", err)
	}
	name := regexp.MustCompile("--([a-z0-9-]+)")
	rows := map[string][3]string{}
	inTable := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "| flag |"):
			inTable = true
			continue
		case inTable && !strings.HasPrefix(l, "|"):
			return rows
		case !inTable || strings.HasPrefix(l, "| ---"):
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|"), " | ")
		if len(cells) != 3 {
			t.Errorf("README.md's flag table: %d cells, want 3 (flag, default, meaning): %q", len(cells), l)
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if ns := name.FindAllStringSubmatch(cells[0], -1); len(ns) == 1 {
			rows[ns[0][1]] = [3]string(cells)
		}
	}
	return rows
}
