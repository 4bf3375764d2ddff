package render

import (
	"fmt"
	"strconv"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// injectedSection sets what the emulated link did beside what each transport
// measured, one row per lab result: the check that the tool's counts are true.
func injectedSection(r *report.Report) (section, bool) {
	link := table{
		caption: "What the link did",
		head:    []string{"cell", "dropped (queue)", "corrupted", "duplicated", "reordered", "before the link"},
		right:   []bool{false, true, true, true, true, true},
	}
	measured := table{
		caption: "What the transports measured",
		head:    []string{"cell", "lost", "duplicates", "reordered", "retransmits"},
		right:   []bool{false, true, true, true, true},
	}
	// The compact rendering's one table: what the link dropped beside what each
	// transport made of it (the verdict's lab rows have the rest).
	compact := table{
		plain: true, keepLabel: true,
		head:  []string{"link vs measured", "link dropped", "lost", "retransmits"},
		right: []bool{false, true, true, true},
	}
	for _, res := range r.Results {
		in := res.Injected
		if in == nil || res.Error != "" {
			continue
		}
		m := res.Metrics
		f := in.Figures()
		retr := "-"
		if m.Retransmits != nil {
			retr = units.Group(int64(*m.Retransmits))
		}
		cell := fmt.Sprintf("%s %s %d B", res.Experiment, res.Transport, res.Params.Size)
		if res.Params.IO == report.IOTextbook {
			cell += " textbook"
		}
		n := func(v uint64) string { return units.Group(int64(v)) }
		link.rows = append(link.rows, []string{cell,
			fmt.Sprintf("%s (%s)", n(f.Dropped), n(f.Queue)), n(f.Corrupted), n(f.Duplicated), n(f.Reordered), n(f.BeforeLink)})
		measured.rows = append(measured.rows, []string{cell, n(m.LostMsgs), n(m.DupMsgs), n(m.ReorderedMsgs), retr})
		compact.rows = append(compact.rows, []string{cell, n(f.Dropped), n(m.LostMsgs), retr})
	}
	if len(link.rows) == 0 {
		return section{}, false
	}
	imp := r.Env.Link.Impair
	note := "What the emulated link did client to server, the direction the measured data travels, over each cell's measured phase, beside what the transports measured. " +
		"For datagrams the link figures count the measured messages (one packet each): exact counts to compare; for TCP, every packet the client sent (segments, retransmissions, ACKs). " +
		"Dropped: random loss and tail drop at the rate limiter's queue (of which, in brackets, at the queue). " +
		"Before the link: dropped before the emulator saw them, the sender outrunning it (the client's device queue overflowed): for a datagram stream, messages sent less those the link took in; otherwise (TCP) the device's drop counter. " +
		"TCP turns the link's losses into retransmits and delivers everything; UDP's receiver counts exactly what the link did."
	params := ""
	if imp != nil {
		params = fmt.Sprintf("Link up %s, down %s, seed %s.", orDash(strconv.Quote(imp["up"])), orDash(strconv.Quote(imp["down"])), orDash(imp["seed"]))
		note = params + " " + note
	}
	return section{exp: "lab", title: "Emulated link: injected vs measured", params: params, note: note,
		tables: []table{link, measured}, compact: []table{compact}}, true
}

// labTitle heads the compact rendering's emulated-link section: the link each way.
func labTitle(l *report.Report) string {
	imp := l.Env.Link.Impair
	switch {
	case imp == nil:
		return "Across an emulated link"
	case imp["up"] == imp["down"]:
		return fmt.Sprintf("Across an emulated link (%s)", orDash(imp["up"]))
	}
	return fmt.Sprintf("Across an emulated link (up %s, down %s)", orDash(imp["up"]), orDash(imp["down"]))
}

// labIntro says what the lab section ran and across what link.
func labIntro(l *report.Report) string {
	imp := l.Env.Link.Impair
	what := "the emulated link"
	if imp != nil {
		what = fmt.Sprintf("an emulated link between two network namespaces (up %q, down %q, seed %s)", imp["up"], imp["down"], imp["seed"])
	}
	return fmt.Sprintf("The same transports across %s: %s. Its property rows are in the table at the top.", what, orDash(l.Config.Command)) + labStatus(l)
}

// labStatus says, after a space, why the lab section ended early and what it did
// not run; "" when it ran everything.
func labStatus(l *report.Report) string {
	s := ""
	if l.Incomplete != "" {
		s += " Incomplete: " + l.Incomplete + "."
	}
	if len(l.NotRun) > 0 {
		s += " Not run: " + cellList(l.NotRun, maxNotRun) + "."
	}
	return s
}
