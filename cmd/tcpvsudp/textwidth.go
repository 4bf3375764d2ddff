package main

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/term"

	"github.com/tcpvsudp/tcpvsudp/bench/render"
)

// textOptions are the options of the tables printed on stdout: as wide as the
// terminal when stdout is one; otherwise render.DefaultWidth (100 columns), or
// COLUMNS when it is set and narrower. verbose prints every table, the claims and
// evidence; mdPath is the markdown report the compact tables point to ("" for none).
func textOptions(stdout io.Writer, verbose bool, mdPath string) []render.TextOption {
	return []render.TextOption{render.Width(textWidth(stdout, os.Getenv("COLUMNS"))), render.Verbose(verbose), render.FullReport(mdPath)}
}

// textWidth is the width of stdout: the terminal's, else columns (COLUMNS) when
// it is a number from 1 to render.DefaultWidth, else render.DefaultWidth.
func textWidth(stdout io.Writer, columns string) int {
	if f, ok := stdout.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if n, err := strconv.Atoi(columns); err == nil && n > 0 && n < render.DefaultWidth {
		return n
	}
	return render.DefaultWidth
}
