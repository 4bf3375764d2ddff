package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Help is written by writeHelp rather than cobra's template, so that every line fits
// the terminal: prose is wrapped at word boundaries to its width, examples come
// before the prose, and flags are a two-column list whose descriptions wrap under
// themselves. What does not fit a terminal screen belongs in the README.

// defaultHelpWidth is the help's width when stdout is not a terminal.
const defaultHelpWidth = 100

// minHelpWidth is the narrowest width help wraps to; a narrower terminal gets lines
// this long.
const minHelpWidth = 40

// helpWidth is the width help wraps to on w: the terminal's width when w is one,
// defaultHelpWidth otherwise.
func helpWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return defaultHelpWidth
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil || cols <= 0 {
		return defaultHelpWidth
	}
	return max(cols, minHelpWidth)
}

// setHelp makes root and its commands print help with writeHelp, at the width of
// their output.
func setHelp(root *cobra.Command) {
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		w := c.OutOrStdout()
		if err := writeHelp(w, c, helpWidth(w)); err != nil {
			c.PrintErrln("tcpvsudp: help:", err)
		}
	})
}

// writeHelp writes c's help wrapped to width columns: its summary, usage, examples,
// the long description, its subcommands and its flags. A command whose flags are
// another command's (the root's are run's) names that command instead of listing
// them twice.
func writeHelp(w io.Writer, c *cobra.Command, width int) error {
	var b strings.Builder
	b.WriteString(wrapText(c.Short, width) + "\n\n")
	b.WriteString("Usage:\n")
	if c.HasAvailableSubCommands() {
		b.WriteString("  " + c.CommandPath() + " [command] [flags]\n")
	} else {
		b.WriteString("  " + c.UseLine() + "\n")
	}
	if c.Example != "" {
		b.WriteString("\nExamples:\n" + wrapText(c.Example, width) + "\n")
	}
	if c.Long != "" {
		b.WriteString("\n" + wrapText(c.Long, width) + "\n")
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\nCommands:\n")
		for _, sc := range c.Commands() {
			if sc.IsAvailableCommand() {
				b.WriteString(hanging(fmt.Sprintf("  %-8s", sc.Name()), sc.Short, width))
			}
		}
	}
	if note, ok := c.Annotations[flagsOf]; ok {
		b.WriteString("\n" + wrapText("Flags: "+note, width) + "\n")
	} else if c.HasAvailableLocalFlags() {
		b.WriteString("\nFlags:\n" + flagUsages(c.LocalFlags(), width))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// flagsOf is the annotation of a command whose flags are described elsewhere: its
// value replaces the flag list in help.
const flagsOf = "tcpvsudp-flags-of"

// item is an indented line of help text: its indent, and the label its continuation
// lines hang under (up to a run of two spaces or more), if any.
var item = regexp.MustCompile(`^( +)(?:(\S+(?: \S+)*?)( {2,}))?`)

// wrapText wraps text to width columns at word boundaries. Paragraphs are separated
// by blank lines; within one, lines that start at column 0 are prose, joined and
// wrapped. An indented line is an item: wrapped on its own, its later lines indented
// under the text after its label ("  --link lan   a wired LAN") or two columns in.
func wrapText(text string, width int) string {
	var b strings.Builder
	var prose []string
	flush := func() {
		if len(prose) > 0 {
			b.WriteString(hanging("", strings.Join(prose, " "), width))
			prose = prose[:0]
		}
	}
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
			b.WriteString("\n")
		case line[0] != ' ':
			prose = append(prose, line)
		case len(line) <= width:
			flush()
			b.WriteString(line + "\n") // an item that fits keeps its own spacing
		default:
			flush()
			m := item.FindStringSubmatch(line)
			head, indent := m[0], len(m[0])
			if m[2] == "" || len(head) > width/2 {
				head, indent = m[1], len(m[1])+2
			}
			b.WriteString(hangingIndent(head, strings.TrimPrefix(line, head), width, indent))
		}
	}
	flush()
	return strings.TrimRight(b.String(), "\n")
}

// flagUsages lists fs's visible flags in two columns, the descriptions wrapped to
// width under themselves; each description ends with the flag's default unless that
// is a zero ("", 0, false), which the description explains.
func flagUsages(fs *pflag.FlagSet, width int) string {
	type row struct{ head, usage string }
	var rows []row
	col := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		head := "      " + flagSignature(f)
		if f.Shorthand != "" {
			head = "  " + flagSignature(f)
		}
		_, usage := pflag.UnquoteUsage(f)
		if d := flagDefault(f); d != "" {
			usage += " (default " + d + ")"
		}
		rows = append(rows, row{head, usage})
		col = max(col, len(head))
	})
	col = min(col+2, width/3)
	var b strings.Builder
	for _, r := range rows {
		head := r.head + "  "
		if len(head) < col {
			head += strings.Repeat(" ", col-len(head))
		}
		if len(head) > col { // a long name: its description starts on the next line
			b.WriteString(r.head + "\n")
			head = strings.Repeat(" ", col)
		}
		b.WriteString(hangingIndent(head, r.usage, width, col))
	}
	return b.String()
}

// flagSignature is f as help's flag column names it: "-t, --transports LIST",
// "--ping-rate RATE", "--no-lab".
func flagSignature(f *pflag.Flag) string {
	s := "--" + f.Name
	if f.Shorthand != "" {
		s = "-" + f.Shorthand + ", " + s
	}
	name, _ := pflag.UnquoteUsage(f)
	if v := f.Annotations[varNameKey]; len(v) == 1 {
		name = v[0]
	}
	if name != "" {
		s += " " + name
	}
	return s
}

// varNameKey is the flag annotation holding the name help shows for a flag's value.
const varNameKey = "tcpvsudp-varname"

// setVarNames names the values of fs's flags in help (--duration TIME rather than
// --duration duration), by flag name. It panics on a name fs does not have: a typo
// in a constant table.
func setVarNames(fs *pflag.FlagSet, names map[string]string) {
	for flag, v := range names {
		if err := fs.SetAnnotation(flag, varNameKey, []string{v}); err != nil {
			panic(err)
		}
	}
}

// flagDefault is f's default as help shows it, "" for a zero.
func flagDefault(f *pflag.Flag) string {
	switch d := f.DefValue; d {
	case "", "0", "false", "0s":
		return ""
	default:
		return d
	}
}

// hanging writes text after head, wrapped at word boundaries to width columns, its
// later lines indented as far as head is long.
func hanging(head, text string, width int) string {
	return hangingIndent(head, text, width, len(head))
}

// hangingIndent writes text after head, wrapped at word boundaries to width columns,
// its later lines indented by indent. A word longer than a line has it to itself.
func hangingIndent(head, text string, width, indent int) string {
	var b strings.Builder
	line, start := head, len(head)
	for _, w := range strings.Fields(text) {
		if len(line) > start && len(line)+1+len(w) > width {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = strings.Repeat(" ", indent)
			start = indent
		}
		if len(line) > start {
			line += " "
		}
		line += w
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
	return b.String()
}
