package render

import (
	"io"
	"slices"
	"strings"
)

// This file fits terminal tables and text to a width: a table too wide is split
// into several by columns (its label columns repeated in each, a figure's columns
// kept together) and what still does not fit wraps inside its cells; prose wraps
// at word boundaries. tablewriter would cut a word longer than its column, so cells
// are wrapped here and tablewriter only draws them.

// DefaultWidth is the width of the terminal rendering when none is given: the
// width for output that is not a terminal (STYLE.md 9).
const DefaultWidth = 100

// minWidth is the narrowest rendering: below it every table would be mostly borders.
const minWidth = 40

// TextOption changes what Text prints.
type TextOption func(*textConfig)

type textConfig struct {
	width      int    // columns; no line is wider
	verbose    bool   // every table, and each property's claim, sentences and evidence
	fullReport string // where the markdown report is; "" when nowhere
}

// Width sets the number of columns no line of the terminal rendering exceeds (the
// terminal's width); 0 or less means DefaultWidth, and less than 40 is taken as 40.
func Width(cols int) TextOption {
	return func(c *textConfig) {
		switch {
		case cols <= 0:
			c.width = DefaultWidth
		case cols < minWidth:
			c.width = minWidth
		default:
			c.width = cols
		}
	}
}

// Verbose makes Text print every table, where it otherwise prints a compact one
// per measurement experiment only; and, after the verdict, each property's claim,
// what each transport did in a sentence and the figures behind it, and each
// section's notes on how it was measured, and each warning in full.
func Verbose(on bool) TextOption {
	return func(c *textConfig) { c.verbose = on }
}

// FullReport names the markdown report written beside the terminal tables (a path
// to print as it is), which the last line of the compact rendering points to; ""
// names none.
func FullReport(path string) TextOption {
	return func(c *textConfig) { c.fullReport = path }
}

// tableCost is how many columns an ASCII table with these content widths takes:
// a space either side of each cell and a border between and around them.
func tableCost(widths []int) int {
	n := 1
	for _, w := range widths {
		n += w + 3
	}
	return n
}

// plainCost is how many columns a plain table (no borders, as benchstat draws
// them) with these content widths takes: a space either side of each cell.
func plainCost(widths []int) int {
	n := 0
	for _, w := range widths {
		n += w + 2
	}
	return n
}

// cost is how many columns t takes with these content widths, drawn as it is drawn.
func (t table) cost(widths []int) int {
	if t.plain {
		return plainCost(widths)
	}
	return tableCost(widths)
}

// naturalWidths are the widths of t's columns with nothing wrapped.
func naturalWidths(t table) []int {
	w := make([]int, len(t.head))
	for i, h := range t.head {
		w[i] = len(h)
	}
	for _, row := range t.rows {
		for i, c := range row {
			if i < len(w) {
				w[i] = max(w[i], len(c))
			}
		}
	}
	return w
}

// splitTable splits t by columns into tables no wider than width (cost measures a
// table's width), when t says which columns may part (groups). Its label columns
// (group -1) start every part; columns of the same group stay together. A part
// that is still too wide holds one group.
func splitTable(t table, width int, cost func(t table) int) []table {
	if t.groups == nil || cost(t) <= width {
		return []table{t}
	}
	var labels []int
	var order []int // group ids, in column order
	cols := map[int][]int{}
	for i, g := range t.groups {
		if g < 0 {
			labels = append(labels, i)
			continue
		}
		if _, ok := cols[g]; !ok {
			order = append(order, g)
		}
		cols[g] = append(cols[g], i)
	}
	if len(order) < 2 {
		return []table{t}
	}
	var parts []table
	var cur []int // column indexes of the part being built, labels first
	for _, g := range order {
		try := append(slices.Clone(cur), cols[g]...)
		if len(cur) > 0 && cost(pickColumns(t, append(slices.Clone(labels), try...))) > width {
			parts = append(parts, pickColumns(t, append(slices.Clone(labels), cur...)))
			try = slices.Clone(cols[g])
		}
		cur = try
	}
	parts = append(parts, pickColumns(t, append(slices.Clone(labels), cur...)))
	for i := 1; i < len(parts); i++ {
		parts[i].caption = "" // the first part carries it
	}
	return parts
}

// pickColumns returns t with only the columns idx, in that order.
func pickColumns(t table, idx []int) table {
	out := table{caption: t.caption, strict: t.strict, plain: t.plain}
	for _, i := range idx {
		out.head = append(out.head, t.head[i])
		out.right = append(out.right, i < len(t.right) && t.right[i])
	}
	for _, row := range t.rows {
		r := make([]string, len(idx))
		for j, i := range idx {
			if i < len(row) {
				r[j] = row[i]
			}
		}
		out.rows = append(out.rows, r)
	}
	return out
}

// textCost is how wide t renders in a terminal with nothing wrapped.
func textCost(t table) int { return t.cost(naturalWidths(t)) }

// fitWidths narrows the widest columns of natural, one column at a time, until
// the table fits width or no column can give more: a column keeps at least its
// floor (the longest word of a figure, a few letters of text).
func fitWidths(natural, floor []int, width int, cost func([]int) int) []int {
	w := slices.Clone(natural)
	for cost(w) > width {
		widest := -1
		for i := range w {
			if w[i] > floor[i] && (widest < 0 || w[i] > w[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		w[widest]--
	}
	return w
}

// floors are the narrowest each column of t may wrap to: the longest word of its
// head, and of its cells up to maxWord letters (a figure column: its longest
// word, whatever its length, for a figure never breaks).
func floors(t table, natural []int) []int {
	f := make([]int, len(natural))
	for i := range f {
		for _, word := range strings.Fields(t.head[i]) {
			f[i] = max(f[i], len(word))
		}
		right := i < len(t.right) && t.right[i]
		for _, row := range t.rows {
			if i < len(row) {
				for _, word := range strings.Fields(row[i]) {
					if right {
						f[i] = max(f[i], len(word))
					} else {
						f[i] = max(f[i], min(len(word), maxWord))
					}
				}
			}
		}
		f[i] = min(f[i], natural[i])
	}
	if t.keepLabel && len(f) > 0 {
		f[0] = natural[0]
	}
	return f
}

// maxWord is the longest word of text a column keeps whole when it must narrow.
const maxWord = 16

// fitTable returns t with cells wrapped so that it renders no wider than width,
// when it can.
func fitTable(t table, width int) table {
	natural := naturalWidths(t)
	if t.cost(natural) <= width {
		return t
	}
	w := fitWidths(natural, floors(t, natural), width, t.cost)
	if t.cost(w) > width { // words must break too
		least := make([]int, len(w))
		for i := range least {
			least[i] = min(natural[i], 4)
		}
		w = fitWidths(w, least, width, t.cost)
	}
	out := t
	out.head = make([]string, len(t.head))
	for i, h := range t.head {
		out.head[i] = strings.Join(wrap(h, w[i]), "\n")
	}
	out.rows = make([][]string, len(t.rows))
	for r, row := range t.rows {
		out.rows[r] = make([]string, len(row))
		for i, c := range row {
			out.rows[r][i] = c
			if i < len(w) {
				out.rows[r][i] = strings.Join(wrap(c, w[i]), "\n")
			}
		}
	}
	return out
}

// writeTextTable writes t as ASCII tables no wider than width: split by columns
// when it may be, wrapped inside its cells when it must.
func writeTextTable(w io.Writer, t table, width int) error {
	for _, part := range splitTable(t, width, textCost) {
		if !t.plain {
			if err := writeTable(w, fitTable(part, width), false); err != nil {
				return err
			}
			continue
		}
		// A plain table pads its last column too: no line ends in spaces.
		var b strings.Builder
		if err := writeTable(&b, fitTable(part, width), false); err != nil {
			return err
		}
		for _, l := range strings.SplitAfter(b.String(), "\n") {
			if _, err := io.WriteString(w, strings.TrimRight(l, " \n")+strings.Repeat("\n", strings.Count(l, "\n"))); err != nil {
				return err
			}
		}
	}
	return nil
}

// wrap breaks s into lines of at most width bytes at spaces; a word longer than
// width is cut into pieces of width.
func wrap(s string, width int) []string {
	if width < 1 {
		width = 1
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		for len(word) > width {
			if line != "" {
				lines = append(lines, line)
				line = ""
			}
			lines = append(lines, word[:width])
			word = word[width:]
		}
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// wrapText wraps prose to width, every line after the first indented by indent.
func wrapText(s string, width int, indent string) string {
	lines := wrap(s, width)
	if len(lines) <= 1 {
		return strings.Join(lines, "")
	}
	rest := strings.Join(lines[1:], " ")
	return lines[0] + "\n" + indent + strings.Join(wrap(rest, width-len(indent)), "\n"+indent)
}
