package bench

import (
	"fmt"
	"strconv"
)

// injectedSection sets what the emulated link did beside what each transport
// measured, one row per lab result: the check that the tool's counts are true.
func injectedSection(r *Report) (section, bool) {
	t := table{
		head: []string{"experiment", "transport", "size",
			"link dropped", "link corrupted", "link duplicated", "link reordered", "queue dropped", "dropped before the link",
			"measured lost", "measured duplicates", "measured reordered", "retransmits"},
		right: []bool{false, false, true, true, true, true, true, true, true, true, true, true, true},
	}
	for _, res := range r.Results {
		in := res.Injected
		if in == nil || res.Error != "" {
			continue
		}
		m := res.Metrics
		up, down := in.Up, in.Down
		// Message-carrying datagrams have exact counts to compare; a stream's
		// segments do not map to messages, so the packet counts stand in.
		pick := func(data, all uint64) string {
			if up.Data.Packets > 0 {
				return group(int64(data))
			}
			return group(int64(all))
		}
		retr := "-"
		if m.Retransmits != nil {
			retr = group(int64(*m.Retransmits))
		}
		t.rows = append(t.rows, []string{
			res.Experiment, res.Transport, fmt.Sprintf("%d B", res.Params.Size),
			pick(up.Data.Dropped, up.Dropped+down.Dropped),
			pick(up.Data.Corrupted, up.Corrupted+down.Corrupted),
			pick(up.Data.Duplicated, up.Duplicated+down.Duplicated),
			pick(up.Data.Reordered, up.Reordered+down.Reordered),
			pick(up.Data.QueueDropped, up.QueueDropped+down.QueueDropped),
			group(int64(up.DeviceDropped + down.DeviceDropped)),
			group(int64(m.LostMsgs)), group(int64(m.DupMsgs)), group(int64(m.ReorderedMsgs)), retr,
		})
	}
	if len(t.rows) == 0 {
		return section{}, false
	}
	imp := r.Env.Link.Impair
	note := "What the emulated link did (client to server; for datagrams, the messages it carried: exact counts to compare) beside what the transports measured. " +
		"Dropped before the link: packets the sending side's device queue dropped because the sender outran the emulator (both directions; not in the other link columns). " +
		"TCP turns the link's losses into retransmits and delivers everything; UDP's receiver counts exactly what the link did."
	if imp != nil {
		note = fmt.Sprintf("Link up %s, down %s, seed %s. ", orDash(strconv.Quote(imp["up"])), orDash(strconv.Quote(imp["down"])), orDash(imp["seed"])) + note
	}
	return section{exp: "lab", title: "Emulated link: injected vs measured", note: note, tables: []table{t}}, true
}

// labIntro says what the lab section ran and across what link.
func labIntro(l *Report) string {
	imp := l.Env.Link.Impair
	what := "the emulated link"
	if imp != nil {
		what = fmt.Sprintf("an emulated link between two network namespaces (up %q, down %q, seed %s)", imp["up"], imp["down"], imp["seed"])
	}
	s := fmt.Sprintf("The same transports across %s: %s. Its property rows are in the table at the top.", what, orDash(l.Config.Command))
	if l.Incomplete != "" {
		s += " Incomplete: " + l.Incomplete + "."
	}
	if len(l.NotRun) > 0 {
		s += " Not run: " + cellList(l.NotRun, maxNotRun) + "."
	}
	return s
}
