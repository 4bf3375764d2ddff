package bench

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// wrapped matches a line break the terminal rendering made to fit its width (the
// next line indented), and an indented line of a list, which joins its heading.
var wrapped = regexp.MustCompile(`\n {2,}`)

// renderBoth renders r as text (verbose, lines wrapped to the width joined again)
// and as markdown, failing the test on an error.
func renderBoth(t *testing.T, r *report.Report) (text, md string) {
	t.Helper()
	var tb, mb bytes.Buffer
	if err := render.Text(&tb, r, render.Verbose(true)); err != nil {
		t.Fatalf("Text: %v", err)
	}
	if err := render.Markdown(&mb, r); err != nil {
		t.Fatalf("Markdown: %v", err)
	}
	return wrapped.ReplaceAllString(tb.String(), " "), mb.String()
}
