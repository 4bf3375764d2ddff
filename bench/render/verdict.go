package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// This file says each property row in a few words: the verdict table's cells
// ("0 of 41.5M lost" beside "23.8% lost, all at the socket"), read from the row's
// evidence, and the evidence itself as a list with units. A row whose evidence
// lacks what its phrase needs (a report from an older tool, a property this file
// does not know) shows the first clause of its sentence instead.

// verdictTable is the summary that leads the terminal rendering: one row per
// property, what each transport did in a short phrase with its key figure.
func verdictTable(r *report.Report) table {
	t := table{head: []string{"property", "TCP", "UDP"}, keepLabel: true}
	for _, p := range r.Properties {
		tcp, udp := verdict(p)
		t.rows = append(t.rows, []string{strings.Replace(p.Property, labSuffix, labShort, 1), tcp, udp})
	}
	return t
}

// A lab property's name ends in labSuffix; the verdict table says labShort, and
// labNote under it says what that means.
const (
	labSuffix = " (emulated link)"
	labShort  = " (lab)"
	labNote   = "(lab): measured across the emulated link; see \"Across an emulated link\" below."
)

// hasLab reports whether a property of r was measured across the emulated link.
func hasLab(r *report.Report) bool {
	for _, p := range r.Properties {
		if strings.Contains(p.Property, labSuffix) {
			return true
		}
	}
	return false
}

// verdict is a property row's TCP and UDP cells in a few words each.
func verdict(p report.Property) (tcp, udp string) {
	if f, ok := verdicts[p.ID]; ok {
		if t, u, ok := f(ev(p.Evidence)); ok {
			return t, u
		}
	}
	return orDash(firstClause(p.TCP)), orDash(firstClause(p.UDP))
}

// maxClause is how long a clause of a property's sentence may be in a verdict cell.
const maxClause = 48

// firstClause is s up to its first "; " or ": ", cut after a word to maxClause.
func firstClause(s string) string {
	for _, sep := range []string{"; ", ": "} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	if len(s) <= maxClause {
		return s
	}
	cut := s[:maxClause-3]
	if i := strings.LastIndex(cut, " "); i > 0 {
		cut = cut[:i]
	}
	return cut + "..."
}

// ev reads a property's evidence: a figure by its JSON name, whatever type it
// was decoded or built as.
type ev map[string]any

func (e ev) num(key string) (float64, bool) { return report.NumAt(e, key) }

// nums reads several figures; ok only when all are there.
func (e ev) nums(keys ...string) ([]float64, bool) {
	out := make([]float64, len(keys))
	for i, k := range keys {
		v, ok := e.num(k)
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func (e ev) flag(key string) (bool, bool) {
	b, ok := e[key].(bool)
	return b, ok
}

func (e ev) str(key string) string {
	s, _ := e[key].(string)
	return s
}

// count formats a count of things: exact below ten thousand ("19", "2,000"), with
// three significant digits above ("19.7k", "41.5M").
func count(v float64) string {
	if v < 1e4 && v == float64(int64(v)) {
		return units.Group(int64(v))
	}
	return units.SI(v)
}

// verdicts build a property's cells by its id, from its evidence; false when the
// evidence lacks a figure the phrase needs.
var verdicts = map[string]func(e ev) (tcp, udp string, ok bool){
	"connection-setup": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_p50_ns", "udp_p50_ns")
		if !ok {
			return "", "", false
		}
		return "first answer " + units.Dur(v[0]) + " (p50)", "first answer " + units.Dur(v[1]) + " (p50)", true
	},
	"refused": func(e ev) (string, string, bool) {
		side := func(tr string) (string, bool) {
			refused, ok := e.flag(tr + "_refused")
			if !ok {
				return "", false
			}
			if !refused {
				return "never refused", true
			}
			at := e.str(tr + "_refused_at")
			if at != "" && !strings.HasPrefix(at, "after ") && !strings.HasPrefix(at, "at ") {
				at = "at " + at
			}
			s := strings.TrimSpace("refused " + at)
			if d, ok := e.num(tr + "_detect_ns"); ok {
				s += " (" + units.Dur(d) + ")"
			}
			if told, ok := e.flag(tr + "_unconnected_told"); ok && !told {
				s += "; unconnected: silent"
			}
			return s, true
		}
		t, ok1 := side("tcp")
		u, ok2 := side("udp")
		return t, u, ok1 && ok2
	},
	"close": func(e ev) (string, string, bool) {
		side := func(tr string) (string, bool) {
			seen, ok := e.flag(tr + "_peer_close_seen")
			if !ok {
				return "", false
			}
			if seen {
				if d, ok := e.num(tr + "_peer_close_detect_ns"); ok {
					return "end of stream after " + units.Dur(d), true
				}
				return "end of stream", true
			}
			if d, ok := e.num(tr + "_peer_close_waited_ns"); ok {
				return "nothing, gave up after " + units.Dur(d), true
			}
			return "nothing", true
		}
		t, ok1 := side("tcp")
		u, ok2 := side("udp")
		return t, u, ok1 && ok2
	},
	"per-client-socket": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_server_sockets", "tcp_clients", "udp_server_sockets", "udp_clients")
		if !ok {
			return "", "", false
		}
		s := func(sk, cl float64) string {
			return fmt.Sprintf("%s for %s", countNoun(sk, "socket"), countNoun(cl, "client"))
		}
		return s(v[0], v[1]), s(v[2], v[3]), true
	},
	"boundaries": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_writes", "tcp_reads", "udp_writes", "udp_reads")
		if !ok {
			return "", "", false
		}
		s := func(tr string, w, r float64) string {
			out := fmt.Sprintf("%s came as %s", countNoun(w, "write"), countNoun(r, "read"))
			if refused, _ := e.flag(tr + "_max_plus_one_emsgsize"); refused {
				if m, ok := e.num(tr + "_max_message_bytes"); ok {
					out += "; max " + units.ByteSize(m)
				}
			}
			return out
		}
		return s("tcp", v[0], v[1]), s("udp", v[2], v[3]), true
	},
	"flow-control": func(e ev) (string, string, bool) {
		if v, ok := e.nums("tcp_send_rate_steady_bps", "tcp_missing_msgs", "udp_send_rate_steady_bps", "udp_missing_msgs"); ok {
			s := func(rate, missing float64) string {
				return "sender at " + units.Bps(rate) + ", " + count(missing) + " lost"
			}
			return s(v[0], v[1]), s(v[2], v[3]), true
		}
		v, ok := e.nums("tcp_send_over_goodput", "udp_send_over_goodput")
		if !ok {
			return "", "", false
		}
		s := func(x float64) string { return "sender at " + units.Num(x) + "x goodput" }
		return s(v[0]), s(v[1]), true
	},
	"fanout": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_sender_sockets", "tcp_copies_per_message", "udp_sender_sockets", "udp_copies_per_message")
		if !ok {
			return "", "", false
		}
		s := func(sk, cp float64) string {
			return countNoun(sk, "socket") + ", " + countNoun(cp, "copy") + " per message"
		}
		return s(v[0], v[1]), s(v[2], v[3]), true
	},
	"reliability": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_lost_msgs", "tcp_sent_msgs", "udp_lost_msgs", "udp_sent_msgs")
		if !ok {
			return "", "", false
		}
		s := func(tr string, lost, sent float64) string {
			if lost == 0 || sent == 0 {
				return count(lost) + " of " + count(sent) + " lost"
			}
			out := units.Pct(lost/sent) + " lost"
			if sock, ok := e.num(tr + "_drops_socket"); ok {
				switch {
				case sock == lost:
					out += ", all at the socket"
				case sock > 0:
					out += ", " + count(sock) + " at the socket"
				}
			}
			return out
		}
		return s("tcp", v[0], v[1]), s("udp", v[2], v[3]), true
	},
	"ordering": func(e ev) (string, string, bool) {
		if v, ok := e.nums("tcp_link_reordered", "tcp_reordered_msgs", "udp_link_reordered", "udp_reordered_msgs"); ok {
			s := func(link, seen float64) string {
				return "link reordered " + count(link) + ", " + count(seen) + " out of order"
			}
			return s(v[0], v[1]), s(v[2], v[3]), true
		}
		v, ok := e.nums("tcp_reordered_msgs", "tcp_dup_msgs", "udp_reordered_msgs", "udp_dup_msgs")
		if !ok {
			return "", "", false
		}
		s := func(r, d float64) string { return count(r) + " reordered, " + count(d) + " duplicated" }
		return s(v[0], v[1]), s(v[2], v[3]), true
	},
	"rtt": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_rtt_p50_ns", "udp_rtt_p50_ns")
		if !ok {
			return "", "", false
		}
		at := sizeAt(e)
		return units.Dur(v[0]) + " p50" + at, units.Dur(v[1]) + " p50" + at, true
	},
	"throughput": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_goodput_bps", "udp_goodput_bps")
		if !ok {
			return "", "", false
		}
		at := sizeAt(e)
		udp := units.Bps(v[1]) + at
		if tb, ok := e.num("udp_textbook_goodput_bps"); ok {
			udp += "; textbook I/O " + units.Bps(tb)
		}
		return units.Bps(v[0]) + at, udp, true
	},
	"cost": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_cpu_s_per_gb", "udp_cpu_s_per_gb")
		if !ok {
			return "", "", false
		}
		udp := units.Num(v[1]) + " CPU s/GB"
		if tb, ok := e.num("udp_textbook_cpu_s_per_gb"); ok {
			udp += "; textbook I/O " + units.Num(tb) + " s/GB"
		}
		return units.Num(v[0]) + " CPU s/GB", udp, true
	},
	"retransmission": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_link_dropped", "tcp_retransmits", "tcp_lost_msgs", "udp_link_dropped", "udp_lost_msgs")
		if !ok {
			return "", "", false
		}
		udp := "link dropped " + count(v[3])
		if c, ok := e.num("udp_link_corrupted"); ok && c > 0 {
			udp += ", corrupted " + count(c)
		}
		return fmt.Sprintf("link dropped %s; %s resent, %s lost", count(v[0]), count(v[1]), count(v[2])),
			udp + "; " + count(v[4]) + " lost", true
	},
	"duplicates": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_link_duplicated", "tcp_dup_msgs", "udp_link_duplicated", "udp_dup_msgs")
		if !ok {
			return "", "", false
		}
		s := func(link, got float64) string {
			return "link duplicated " + count(link) + ", " + count(got) + " delivered"
		}
		return s(v[0], v[1]), s(v[2], v[3]), true
	},
	"checksum": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_link_corrupted", "tcp_corrupt_msgs", "udp_link_corrupted", "udp_corrupt_msgs")
		if !ok {
			return "", "", false
		}
		s := func(link, got float64) string {
			return "link corrupted " + count(link) + ", " + count(got) + " delivered"
		}
		return s(v[0], v[1]) + ", resent", s(v[2], v[3]) + ", lost", true
	},
	"congestion": func(e ev) (string, string, bool) {
		v, ok := e.nums("tcp_alone_share_of_link", "tcp_shared_share_of_link", "udp_alone_share_of_link", "udp_shared_share_of_link")
		if !ok {
			return "", "", false
		}
		s := func(tr string, alone, shared float64) string {
			out := units.Pct(alone) + " of the link alone"
			if l, ok := e.nums(tr+"_alone_lost_msgs", tr+"_alone_sent_msgs"); ok && l[0] > 0 && l[1] > 0 {
				out += " (" + units.Pct(l[0]/l[1]) + " lost)"
			}
			return out + ", " + units.Pct(shared) + " shared"
		}
		return s("tcp", v[0], v[1]), s("udp", v[2], v[3]), true
	},
	"head-of-line": func(e ev) (string, string, bool) {
		s := func(tr string) (string, bool) {
			p50, ok := e.num(tr + "_latency_p50_ns")
			if !ok {
				return "", false
			}
			out := "p50 " + units.Dur(p50)
			if p99, ok := e.num(tr + "_latency_p99_ns"); ok {
				out += ", p99 " + units.Dur(p99)
			} else if mx, ok := e.num(tr + "_latency_max_ns"); ok {
				out += ", max " + units.Dur(mx)
			}
			if late, ok := e.num(tr + "_late_fraction_over_2x_p50"); ok {
				out += "; " + units.Pct(late) + " late"
			}
			if d, ok := e.num(tr + "_delivered_fraction"); ok && d < 1 {
				out += ", " + units.Pct(1-d) + " lost"
			}
			return out, true
		}
		t, ok1 := s("tcp")
		u, ok2 := s("udp")
		return t, u, ok1 && ok2
	},
}

// sizeAt names the message size a property's figures are for: " at 8192 B".
func sizeAt(e ev) string {
	if z, ok := e.num("size"); ok && z > 0 {
		return fmt.Sprintf(" at %.0f B", z) // as the tables label sizes
	}
	return ""
}

// countNoun is "1 socket", "8 sockets", "1 copy", "8 copies".
func countNoun(n float64, noun string) string {
	s := count(n) + " " + noun
	if n == 1 {
		return s
	}
	if strings.HasSuffix(noun, "y") {
		return strings.TrimSuffix(s, "y") + "ies"
	}
	return s + "s"
}

// evidenceItem is one figure behind a property row, for people: "UDP lost: 12.3M msgs".
type evidenceItem struct{ name, value string }

// evidenceItems lists a property's evidence by JSON name (sorted), named and
// formatted with units and three significant digits; the experiment and link it
// came from are said elsewhere and left out.
func evidenceItems(m map[string]any) []evidenceItem {
	var out []evidenceItem
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "experiment" || k == "link" {
			continue
		}
		out = append(out, evidenceItem{evidenceName(k), evidenceValue(k, m[k])})
	}
	return out
}

// evidenceSource says where a property's figures come from: "stream", "hol on the emulated link".
func evidenceSource(m map[string]any) string {
	e := ev(m)
	s := e.str("experiment")
	if e.str("link") == "lab" {
		s += " on the emulated link"
	}
	return s
}

// unitSuffixes are JSON name endings that only say the unit; the value shows it.
var unitSuffixes = []string{"_per_s", "_ns", "_bps", "_bytes", "_msgs", "_s"}

// evidenceName turns an evidence key into words: "udp_drops_socket" -> "UDP drops
// socket", "tcp_p50_ns" -> "TCP p50".
func evidenceName(k string) string {
	who := ""
	for _, tr := range []string{"tcp", "udp"} {
		if strings.HasPrefix(k, tr+"_") {
			who, k = strings.ToUpper(tr)+" ", k[len(tr)+1:]
		}
	}
	for _, u := range unitSuffixes {
		if strings.HasSuffix(k, u) && len(k) > len(u) {
			k = strings.TrimSuffix(k, u)
			break
		}
	}
	words := strings.Split(k, "_")
	for i, w := range words {
		if w == "tcp" || w == "udp" {
			words[i] = strings.ToUpper(w)
		}
	}
	return who + strings.Join(words, " ")
}

// evidenceValue formats one evidence figure by its key's unit: durations, rates,
// sizes, messages, shares as percentages, other numbers with three significant
// digits, booleans as yes/no.
func evidenceValue(k string, v any) string {
	switch x := v.(type) {
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case string:
		return orDash(x)
	case nil:
		return "-"
	}
	f, ok := ev{"v": v}.num("v")
	if !ok {
		return anyValue(v)
	}
	switch {
	case strings.Contains(k, "_fraction") || strings.Contains(k, "_share_of_"):
		return units.Pct(f)
	case strings.HasSuffix(k, "_over_udp") || strings.HasSuffix(k, "_over_goodput"):
		return units.Num(f) + "x"
	case strings.HasSuffix(k, "_msgs"):
		return count(f) + " msgs"
	case strings.HasSuffix(k, "_per_s"):
		return units.SI(f) + "/s"
	case strings.HasSuffix(k, "_per_gb"):
		return units.Num(f) + " CPU s/GB"
	case strings.HasSuffix(k, "_ns") || strings.HasSuffix(k, "_bps") || strings.HasSuffix(k, "_s"):
		return formatByKey(k, f)
	case strings.HasSuffix(k, "_bytes") || strings.HasSuffix(k, "_bytes_per_client") || k == "size":
		return units.ByteSize(f)
	case f == float64(int64(f)):
		return count(f)
	}
	return units.Num(f)
}
