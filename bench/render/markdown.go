package render

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// Markdown writes r as a markdown report: what was run and how to reproduce it,
// the properties table, one section per experiment with TCP and UDP side by side for
// every metric and the charts of ChartNames linked by relative name (Charts
// writes them beside the report), the metric definitions and the warnings. It shows the same tables as
// Text; cells are escaped here (tablewriter's markdown renderer escapes nothing).
func Markdown(w io.Writer, r *report.Report) error {
	var b bytes.Buffer
	b.WriteString("# tcpvsudp report\n\n")
	b.WriteString(mdIntro(r))
	if len(r.Properties) > 0 {
		b.WriteString("\n## Properties\n\n")
		b.WriteString("*Each textbook claim and what each transport did, in short; each property's section below says it in full, with the measured figures behind it.*\n\n")
		if err := writeTable(&b, propertiesTable(r), true); err != nil {
			return fmt.Errorf("render markdown: properties: %w", err)
		}
		for _, p := range r.Properties {
			mdProperty(&b, p)
		}
	}
	images, labImages := map[string][]chart{}, map[string][]chart{} // by experiment: the charts Charts draws beside the report
	for _, c := range charts(r) {
		if c.lab {
			labImages[c.exp] = append(labImages[c.exp], c)
			for _, x := range c.also {
				labImages[x] = append(labImages[x], c)
			}
			continue
		}
		images[c.exp] = append(images[c.exp], c)
		for _, x := range c.also {
			images[x] = append(images[x], c)
		}
	}
	for _, s := range buildSections(r) {
		fmt.Fprintf(&b, "\n## %s\n\n*%s*\n", mdText(s.title), mdText(s.note))
		for _, t := range s.tables {
			b.WriteString("\n")
			if t.caption != "" {
				fmt.Fprintf(&b, "%s:\n\n", mdText(t.caption))
			}
			if err := writeMDTable(&b, t); err != nil {
				return fmt.Errorf("render markdown: %s: %w", s.exp, err)
			}
		}
		for _, c := range images[s.exp] {
			fmt.Fprintf(&b, "\n![%s](%s)\n", mdText(c.title), c.name)
		}
		mdAlso(&b, s.also)
		mdNotMeasured(&b, s.notMeasured)
	}
	if r.Lab != nil {
		b.WriteString("\n## Across an emulated link\n\n")
		fmt.Fprintf(&b, "*%s*\n", mdText(labIntro(r.Lab)))
		for _, s := range buildSections(r.Lab) {
			fmt.Fprintf(&b, "\n### %s\n\n*%s*\n", mdText(s.title), mdText(s.note))
			for _, t := range s.tables {
				b.WriteString("\n")
				if t.caption != "" {
					fmt.Fprintf(&b, "%s:\n\n", mdText(t.caption))
				}
				if err := writeMDTable(&b, t); err != nil {
					return fmt.Errorf("render markdown: lab %s: %w", s.exp, err)
				}
			}
			for _, c := range labImages[s.exp] {
				fmt.Fprintf(&b, "\n![%s](%s)\n", mdText(c.title), c.name)
			}
			mdAlso(&b, s.also)
			mdNotMeasured(&b, s.notMeasured)
		}
	}
	b.WriteString("\n## Metric definitions\n\n")
	b.WriteString(mdDefinitions)
	if ws := warnings(r); len(ws) > 0 {
		b.WriteString("\n## Warnings\n\n")
		for _, l := range ws {
			fmt.Fprintf(&b, "- %s\n", mdText(l))
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// mdProperty writes a property's own section: its claim, what each transport did
// in a sentence, and the figures behind it as a list with units.
func mdProperty(b *bytes.Buffer, p report.Property) {
	fmt.Fprintf(b, "\n### %s\n\n", mdText(p.Property))
	if c := mdText(strings.TrimSuffix(p.Claim, ".")); c != "" {
		fmt.Fprintf(b, "*%s.*\n\n", strings.ToUpper(c[:1])+c[1:])
	}
	fmt.Fprintf(b, "- TCP: %s\n", mdText(orDash(p.TCP)))
	fmt.Fprintf(b, "- UDP: %s\n", mdText(orDash(p.UDP)))
	items := evidenceItems(p.Evidence)
	if len(items) == 0 {
		return
	}
	from := ""
	if src := evidenceSource(p.Evidence); src != "" {
		from = " (" + mdText(src) + ")"
	}
	fmt.Fprintf(b, "- Measured%s:\n", from)
	for _, it := range items {
		fmt.Fprintf(b, "  - %s: %s\n", mdText(it.name), mdText(it.value))
	}
}

// mdPageWidth is the width of a markdown page, in pixels (GitHub's), and mdChar
// and mdPad estimate a cell's: a character of text, a cell's padding and border.
const (
	mdPageWidth = 980
	mdChar      = 7.5
	mdPad       = 26
)

// mdCost estimates how many pixels t is wide with nothing wrapped.
func mdCost(t table) int {
	px := 0.0
	for _, w := range naturalWidths(t) {
		px += float64(w)*mdChar + mdPad
	}
	return int(px)
}

// writeMDTable writes t as markdown tables that fit a page: split by columns when
// it may be (text wraps inside a cell on the page; figures are kept whole).
func writeMDTable(w *bytes.Buffer, t table) error {
	for i, part := range splitTable(t, mdPageWidth, mdCost) {
		if i > 0 {
			w.WriteString("\n")
		}
		if err := writeTable(w, part, true); err != nil {
			return err
		}
	}
	return nil
}

// mdAlso lists the non-zero counters a section's tables do not show.
func mdAlso(b *bytes.Buffer, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString("\nAlso counted:\n\n")
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", mdText(l))
	}
}

// mdNotMeasured lists why the cells of a section without figures have none.
func mdNotMeasured(b *bytes.Buffer, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString("\nNot measured:\n\n")
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", mdText(l))
	}
}

// ranExperiments splits the configured experiments (then any other a result names)
// into those with a measured cell, those whose every cell was skipped, those whose
// cells all failed or were interrupted (unmeasured), and those with no cell that
// started (notRun: the run was interrupted first).
func ranExperiments(r *report.Report) (ran, skip, unmeasured, notRun []string) {
	exps := slices.Clone(r.Config.Experiments)
	for _, res := range r.Results {
		if !slices.Contains(exps, res.Experiment) {
			exps = append(exps, res.Experiment)
		}
	}
	for _, x := range exps {
		n, nskip, nmeasured := 0, 0, 0
		for _, res := range r.Results {
			if res.Experiment == x {
				n++
				switch {
				case report.Skipped(res):
					nskip++
				case res.Measured():
					nmeasured++
				}
			}
		}
		switch {
		case nmeasured > 0:
			ran = append(ran, x)
		case n > 0 && n == nskip:
			skip = append(skip, x)
		case n > 0:
			unmeasured = append(unmeasured, x)
		case len(r.NotRun) > 0 || r.Incomplete != "":
			notRun = append(notRun, x)
		default:
			ran = append(ran, x) // a report from before results said which cells ran
		}
	}
	return ran, skip, unmeasured, notRun
}

// ranTransports lists the transports with a measured cell, in column order.
func ranTransports(r *report.Report) []string {
	var out []string
	for _, tr := range transportOrder(r) {
		if slices.ContainsFunc(r.Results, func(res report.Result) bool { return res.Transport == tr && res.Measured() && !report.Skipped(res) }) {
			out = append(out, tr)
		}
	}
	return out
}

// mdIntro is the opening paragraph: what was run, where, and the command line.
func mdIntro(r *report.Report) string {
	e, c := r.Env, r.Config
	var s []string
	did, skip, unmeasured, notRun := ranExperiments(r)
	trs := c.Transports
	if r.Incomplete != "" || len(unmeasured) > 0 {
		trs = ranTransports(r) // only those that measured something
	}
	what := "Ran " + andList(codeAll(did))
	if len(did) == 0 {
		what = "Measured nothing"
	} else if len(trs) > 0 {
		what += " over " + andList(upperAll(trs))
	}
	if len(skip) > 0 {
		what = "Skipped " + andList(codeAll(skip)) + ". " + what
	}
	if e.Host != "" {
		what += " on host " + code(e.Host)
	}
	var sys []string
	if os := strings.TrimSpace(e.OS + " " + e.Kernel + archSuffix(e.Arch)); os != "" {
		sys = append(sys, os)
	}
	if e.Go != "" {
		sys = append(sys, e.Go)
	}
	if e.CPUs > 0 {
		sys = append(sys, fmt.Sprintf("%d CPUs, GOMAXPROCS %d", e.CPUs, e.GOMAXPROCS))
	}
	if len(sys) > 0 {
		what += " (" + strings.Join(sys, ", ") + ")"
	}
	if e.Link.Kind != "" {
		what += ", " + e.Link.Kind + " link"
		if e.Link.Addr != "" {
			what += " to " + code(e.Link.Addr)
		}
		if e.Link.MTU > 0 {
			what += fmt.Sprintf(" (MTU %d)", e.Link.MTU)
		}
	}
	if p := e.Peer; p != nil {
		what += fmt.Sprintf(", whose server ran on host %s (%s, %s, %d CPUs)", code(p.Host), strings.TrimSpace(p.OS+" "+p.Kernel+archSuffix(p.Arch)), p.Go, p.CPUs)
	}
	if len(e.Link.Impair) > 0 {
		what += ", impaired with " + kvList(e.Link.Impair)
	}
	s = append(s, what+".")
	if len(unmeasured) > 0 {
		s = append(s, "No figures for "+andList(codeAll(unmeasured))+": every cell of it failed or was interrupted (see its section).")
	}
	if len(notRun) > 0 {
		s = append(s, "Did not run "+andList(codeAll(notRun))+".")
	}
	if r.Incomplete != "" {
		inc := "**Incomplete**: " + r.Incomplete + "."
		if len(r.NotRun) > 0 {
			inc += " Not run: " + cellList(r.NotRun, maxNotRun) + "."
		}
		s = append(s, inc)
	}

	ran := "Each cell ran"
	switch {
	case c.Count > 0:
		ran = "Each cell sent " + units.Count(c.Count) + " msgs per stream"
	case c.DurationS > 0:
		ran += " " + units.Secs(c.DurationS)
	}
	if c.WarmupS > 0 {
		ran += " after a " + units.Secs(c.WarmupS) + " warm-up"
	}
	if c.DrainS > 0 {
		ran += ", then drained " + units.Secs(c.DrainS)
	}
	var cell []string
	if len(c.Sizes) > 0 {
		sizes := make([]string, len(c.Sizes))
		for i, z := range c.Sizes {
			sizes[i] = fmt.Sprintf("%d B", z)
		}
		cell = append(cell, "sizes "+andList(sizes))
	}
	if c.Streams > 0 {
		cell = append(cell, fmt.Sprintf("%d stream%s", c.Streams, plural(c.Streams)))
	}
	cell = append(cell, rateLabel(c.RateBps))
	if c.TimeoutS > 0 && slices.ContainsFunc(r.Results, func(res report.Result) bool { return r.SectionOf(res.Experiment).Replies }) {
		cell = append(cell, "request timeout "+units.Secs(c.TimeoutS))
	}
	if c.Repeat > 0 {
		cell = append(cell, fmt.Sprintf("repeat %d", c.Repeat))
	}
	cell = append(cell, fmt.Sprintf("seed %d", c.Seed))
	if c.Quick {
		cell = append(cell, "quick mode")
	}
	if c.BusyPoll {
		cell = append(cell, "busy-poll receivers")
	}
	if !c.PayloadsVerified() {
		cell = append(cell, "payloads not verified (--verify "+c.Verify+": receivers checked each header's CRC32C only, so corrupt counts miss corrupted payloads)")
	}
	s = append(s, ran+"; "+strings.Join(cell, ", ")+".")

	var when []string
	if c.Started != "" {
		when = append(when, "Started "+c.Started)
	}
	if c.WallS > 0 {
		when = append(when, "wall time "+units.Secs(c.WallS))
	}
	if len(when) > 0 {
		s = append(s, strings.Join(when, ", ")+".")
	}
	if len(e.Sockets) > 0 {
		who := "Socket buffers granted: "
		if e.Peer != nil && len(e.Peer.Sockets) > 0 {
			who = "Socket buffers granted to this host's data sockets: "
		}
		s = append(s, who+socketsText(sockOrder(r, e.Sockets), e.Sockets)+".")
	}
	if e.Peer != nil && len(e.Peer.Sockets) > 0 {
		s = append(s, "To the server's: "+socketsText(sockOrder(r, e.Peer.Sockets), e.Peer.Sockets)+".")
		if rxKnown(e.Sockets) && !rxKnown(e.Peer.Sockets) {
			s = append(s, "The server did not say how its receivers waited (an older tcpvsudp serve): its receive mode is unknown.")
		}
	}
	if r.Tool != "" {
		s = append(s, "Written by "+r.Tool+".")
	}
	if c.Command != "" {
		s = append(s, "To reproduce: "+code(c.Command))
	}
	return strings.Join(s, " ") + "\n"
}

// socketsText describes one end's sockets, by transport in order.
func socketsText(order []string, socks map[string]report.Sock) string {
	var out []string
	for _, tr := range order {
		k := socks[tr]
		sk := fmt.Sprintf("%s receive %s B, send %s B", tr, units.Group(int64(k.RecvBuffer)), units.Group(int64(k.SendBuffer)))
		if k.RxTimestamps {
			sk += ", kernel receive timestamps"
		}
		if k.BusyPoll {
			sk += fmt.Sprintf(", busy-poll (SO_BUSY_POLL %d us granted)", k.BusyPollUs)
		}
		for _, x := range slices.Sorted(maps.Keys(k.Rx)) {
			sk += fmt.Sprintf(", %s receives %s", x, k.Rx[x])
		}
		if k.SendCalls != nil && k.SentDatagrams != nil {
			gso := "without GSO"
			if k.GSO {
				gso = "with GSO"
			}
			sk += fmt.Sprintf(", %s datagrams sent in %s calls (batch %d, %s)", units.Group(int64(*k.SentDatagrams)), units.Group(int64(*k.SendCalls)), k.Batch, gso)
		}
		out = append(out, sk)
	}
	return strings.Join(out, "; ")
}

// rxKnown reports whether some transport of socks says how its receivers waited.
func rxKnown(socks map[string]report.Sock) bool {
	for _, k := range socks {
		if len(k.Rx) > 0 {
			return true
		}
	}
	return false
}

// sockOrder lists the transports of socks (an Env's Sockets) in column order, then
// any others sorted.
func sockOrder(r *report.Report, socks map[string]report.Sock) []string {
	var out []string
	for _, tr := range transportOrder(r) {
		if _, ok := socks[tr]; ok {
			out = append(out, tr)
		}
	}
	var rest []string
	for tr := range socks {
		if !slices.Contains(out, tr) {
			rest = append(rest, tr)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

const mdDefinitions = `- **goodput**: unique, intact payload bits received / the receiver's measured interval (decimal SI); msgs/s likewise in messages. Sender figures (sender rate) are reported apart, never mixed in.
- **lost** (sequence-numbered messages: stream, boundaries, fanout, ...): sent - unique received, counted after a drain period; attributed to sender drops (failed sends), socket drops (datagrams the receiving socket dropped, from SO_MEMINFO: receive-buffer overflow and, on Linux, failed checksums) and network drops (the rest).
- **unanswered** (request/response: pingpong, connect, clients, close): requests with no reply within --timeout; the client moves on. A TCP request is never lost, only not answered in time; a datagram may have been lost or only be late (late_msgs). In the JSON, timeouts holds this count, and the lost count repeats it for compatibility.
- **duplicate**: a sequence number seen before.
- **reordered** (RFC 4737): arrived with a sequence number below the highest already seen.
- **jitter**: RFC 3550 section 6.4.1 interarrival jitter, J += (|D| - J)/16; the final value. Arrival times are the kernel's receive timestamps (SO_TIMESTAMPNS) where the socket has them (datagram sockets on Linux; jitter_kernel_msgs counts them), else read in user space when the receive call returned (TCP: a byte stream has no per-message arrival).
- **RTT**: monotonic time from sending a request to receiving its reply (never halved), in nanoseconds in an HDR histogram (3 significant digits). A percentile q is shown only with at least 10/(1-q) samples, else "n/a (N samples)".
- **retransmits**: TCP_INFO total_retrans delta on the sender socket.
- **CPU s/GB**: process user+sys CPU seconds per GB moved (getrusage); on loopback both ends share the process. **CPU** (pingpong): the same CPU seconds per second of the cell, in cores; a spinning receiver (--busy-poll) costs up to one each.
- **median +/- half-width (n=R)**, **median [lo, hi] (n=R)**: with --repeat R of 6 or more, the median of R runs and its distribution-free 95% confidence interval.
- **median (lo-hi)**: with 2 to 5 runs (the default suite runs 3), the median of the runs and the least and greatest of them. A figure marked **!** is noisy: its runs span more than 10% of their median ((max - min)/median; the report's repeat.spread and repeat.noisy).
`

// mdCell escapes a table cell: "|" would end the cell and a newline the row.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r\n", "<br>")
	s = strings.ReplaceAll(s, "\n", "<br>")
	return strings.ReplaceAll(s, "\r", "<br>")
}

// mdStrict escapes a cell of free text (an error message, a peer's words): besides
// what mdCell escapes, the characters that would start code, emphasis, a link or
// HTML. Underscores inside words ("detect_ns") are left alone: they emphasise nothing.
func mdStrict(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', '`', '*', '<', '[', ']':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return mdCell(b.String())
}

// mdText keeps free text on one line.
func mdText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// code wraps s in a code span, with a fence longer than any backtick run inside.
func code(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func codeAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = code(s)
	}
	return out
}

func upperAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

// andList joins "a", "a and b", "a, b and c".
func andList(ss []string) string {
	switch len(ss) {
	case 0:
		return ""
	case 1:
		return ss[0]
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " and " + ss[len(ss)-1]
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
