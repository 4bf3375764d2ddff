package farend

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/internal/freeports"
)

// TestFarProperties: refused and close against a real server session on loopback,
// with the server's --data-ports, give the loopback experiments' known answers (a
// 1 s timeout for each request, where a loaded machine may miss the default 200 ms:
// "answered" is a known answer here, not a race). TCP:
// the far end's closed port refuses the dial (ECONNREFUSED), and it lies in the
// range; the far end's close reaches the reader as end of stream, well within
// closeWait; with the data listener closed the accepted connection still answers and
// a new dial to the data port is refused. UDP: the dial and first send succeed, the
// ICMP refusal comes after the send on a connected socket, an unconnected one is
// told nothing; the far close is never seen; once the far socket is closed, the
// existing client is not answered and neither is a new one.
func TestFarProperties(t *testing.T) {
	r := freePorts(t, 4)
	far, _ := dialServer(t, remote.Limits{DataPorts: r, MaxStreams: 2})
	rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpRefused, report.ExpClose},
		Transports: []string{"tcp", "udp"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want refused and close × tcp, udp", len(rep.Results))
	}
	for _, res := range rep.Results {
		t.Logf("%s %s: observed %v, warnings %q", res.Experiment, res.Transport, res.Observed, res.Warnings)
		if res.Error != "" {
			t.Errorf("%s %s: %s", res.Experiment, res.Transport, res.Error)
			continue
		}
		if res.Metrics.ServerCPUSec == nil {
			t.Errorf("%s %s: no server CPU", res.Experiment, res.Transport)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("%s %s: warnings %q, want none", res.Experiment, res.Transport, res.Warnings)
		}
		switch res.Experiment {
		case report.ExpRefused:
			checkFarRefused(t, res.Transport, res.Observed, r)
		case report.ExpClose:
			checkFarClose(t, res.Transport, res.Observed)
		}
	}
}

// checkFarRefused checks refused's observations, whose address must be a port of
// the far host in r.
func checkFarRefused(t *testing.T, transport string, obs map[string]any, r remote.PortRange) {
	t.Helper()
	a, _ := obs["address"].(string)
	ap, err := netip.ParseAddrPort(a)
	if err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.1") || ap.Port() < r.Lo || ap.Port() > r.Hi {
		t.Errorf("refused %s: address %q, want 127.0.0.1 and a port of --data-ports %d-%d", transport, a, r.Lo, r.Hi)
	}
	checkRefused(t, transport, obs)
}

// checkRefused checks refused's known answers for transport in obs.
func checkRefused(t testing.TB, transport string, obs map[string]any) {
	t.Helper()
	switch transport {
	case "tcp":
		if obs["refused"] != true || obs["refused_at"] != "dial" || !strings.Contains(str(obs["dial_error"]), "connection refused") {
			t.Errorf("refused tcp: observed %v; want refused at dial with ECONNREFUSED", obs)
		}
		if _, ok := obs["unconnected_send_error"]; ok {
			t.Errorf("refused tcp: observed %v; tcp has no unconnected send", obs)
		}
	case "udp":
		if obs["dial_error"] != "" || obs["first_send_error"] != "" {
			t.Errorf("refused udp: observed %v; want the dial and the first send to succeed", obs)
		}
		if obs["refused"] != true || obs["refused_at"] != "after send" || obsNum(obs["detect_ns"]) <= 0 {
			t.Errorf("refused udp: observed %v; want ECONNREFUSED after the send, detect_ns > 0", obs)
		}
		if obs["unconnected_send_error"] != "" || obs["unconnected_told"] != false {
			t.Errorf("refused udp: observed %v; want an unconnected send that succeeds and is told nothing", obs)
		}
	}
}

// checkFarClose checks close's known answers for transport in obs.
func checkFarClose(t testing.TB, transport string, obs map[string]any) {
	t.Helper()
	switch transport {
	case "tcp":
		raw, rtt, detect := obsNum(obs["peer_close_request_to_eof_ns"]), obsNum(obs["echo_rtt_ns"]), obsNum(obs["peer_close_detect_ns"])
		if obs["peer_close_seen"] != true || !strings.Contains(str(obs["peer_close_result"]), "EOF") {
			t.Errorf("close tcp: observed %v; want the far close seen as EOF", obs)
		}
		// The reader knew the close a transit time after it, within closeWait (1 s):
		// on an idle machine well under a millisecond; the figure is logged.
		t.Logf("close tcp: the reader knew of the close %v after it", time.Duration(detect))
		if raw <= 0 || rtt <= 0 || detect != max(0, raw-rtt) || detect >= 1e9 {
			t.Errorf("close tcp: request to EOF %v ns, echo RTT %v ns, detect %v ns; want detect = max(0, raw − rtt), within closeWait (1 s)", raw, rtt, detect)
		}
		if obs["listener_closed_existing_answered"] != true || obs["listener_closed_new_refused"] != true {
			t.Errorf("close tcp: observed %v; want the accepted connection answered and a new dial refused", obs)
		}
	case "udp":
		if obs["peer_close_seen"] != false || obsNum(obs["peer_close_waited_ns"]) != 1e9 {
			t.Errorf("close udp: observed %v; want nothing seen within closeWait (1 s)", obs)
		}
		if _, ok := obs["peer_close_detect_ns"]; ok {
			t.Errorf("close udp: observed %v; want no detect time", obs)
		}
		if obsNum(obs["echo_rtt_ns"]) <= 0 {
			t.Errorf("close udp: echo RTT %v, want the echoes' before the close", obs["echo_rtt_ns"])
		}
		if obs["listener_closed_existing_answered"] != false || obs["listener_closed_new_refused"] != false ||
			!strings.HasPrefix(str(obs["listener_closed_new_client"]), "dial succeeded; request unanswered") {
			t.Errorf("close udp: observed %v; want the existing client unanswered, and a new one dialled but unanswered", obs)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

// obsNum reads a number from observations, in memory (int64) or from JSON (float64).
func obsNum(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	case int:
		return float64(n)
	}
	return -1
}

// freePorts returns a range of n ports free for TCP and UDP on 127.0.0.1 now.
func freePorts(tb testing.TB, n int) remote.PortRange {
	lo, hi := freeports.Range(tb, n)
	return remote.PortRange{Lo: lo, Hi: hi}
}

// TestRunnerCheckProperties: bench.refused and bench.close run one bidir data path
// and take no params; anything else is refused naming the field.
func TestRunnerCheckProperties(t *testing.T) {
	for _, exp := range []string{"bench.refused", "bench.close"} {
		for _, tc := range []struct {
			name    string
			streams int
			dir     remote.Direction
			params  string
			want    string // "" = accepted
		}{
			{"one path", 1, remote.Bidir, "", ""},
			{"empty params", 1, remote.Bidir, "{}", ""},
			{"two paths", 2, remote.Bidir, "", "streams"},
			{"forward", 1, remote.Forward, "", "direction"},
			{"params", 1, remote.Bidir, `{"run":"00000000000000ab"}`, "params"},
		} {
			req := remote.TestRequest{Experiment: exp, Transport: "tcp", Size: 1024, Duration: time.Second, Streams: tc.streams, Direction: tc.dir, Params: []byte(tc.params)}
			err := Runner{}.Check(req)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("%s %s: Check = %v, want %q", exp, tc.name, err, tc.want)
			}
		}
	}
}

// TestFarBoundaries: boundaries against a real server session on loopback, with the
// far end as the reader, gives the loopback experiment's known answers. TCP: the 200
// writes of 1000 B come as fewer reads, some coalesced, every byte once and in
// order; the largest message is the server's --max-size (1 MiB by default), which
// arrives whole, as does the 1 MiB Send; one raw 1 MiB write takes several reads.
// UDP: a read of exactly one 1000-byte write each, 200 but for the datagrams the far
// socket's buffer dropped while a loaded machine held its reader up (the bursts come
// 50 at a time, 10 ms apart), which the kernel counts; the largest message is 65490
// bytes (65507 less the data path's 17-byte prefix) and arrives whole; one byte more
// is refused by the transport, and a plain datagram past 65507 by the kernel with
// EMSGSIZE; 1 MiB is refused.
//
// With a --max-size above the framing's 16 MiB, TCP's largest message is the
// framing's, and the transport itself refuses one byte more.
func TestFarBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxSize int // the server's --max-size; 0 = its default, 1 MiB
		tcpMax  int // TCP's largest message across hosts
	}{
		{"default max-size", 0, 1 << 20},
		{"max-size above the framing's", 32 << 20, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			far, _ := dialServer(t, remote.Limits{MaxSize: tc.maxSize})
			rep, err := bench.Run(context.Background(), bench.Plan{Far: far, Experiments: []string{report.ExpBoundaries}, Transports: []string{"tcp", "udp"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 2 {
				t.Fatalf("%d results, want boundaries × tcp, udp", len(rep.Results))
			}
			for _, res := range rep.Results {
				m := res.Metrics
				t.Logf("boundaries %s: observed %v; sent %d recv %d lost %d (socket drops %v), server sockets %d, warnings %q", res.Transport, res.Observed,
					m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), m.ServerSockets, res.Warnings)
				if res.Error != "" {
					t.Errorf("boundaries %s: %s", res.Transport, res.Error)
					continue
				}
				if m.ServerCPUSec == nil || m.ServerSockets != 1 {
					t.Errorf("boundaries %s: server CPU %v, sockets %d; want the far half's, 1", res.Transport, m.ServerCPUSec, m.ServerSockets)
				}
				if len(res.Warnings) != 0 {
					t.Errorf("boundaries %s: warnings %q, want none", res.Transport, res.Warnings)
				}
				checkBoundaries(t, res.Transport, res.Metrics, res.Observed, tc.tcpMax)
			}
		})
	}
}

// checkBoundaries checks boundaries' known answers across hosts for transport in m
// and obs; tcpMax is the server's --max-size.
func checkBoundaries(t testing.TB, transport string, m report.Metrics, obs map[string]any, tcpMax int) {
	t.Helper()
	const writes, size = 200, 1000
	var dropped uint64 // datagrams the kernel dropped and counted: none over TCP
	if transport == "udp" {
		dropped = m.DropsSender
		if m.DropsSocket != nil {
			dropped += *m.DropsSocket
		}
	}
	if m.SentMsgs != writes || m.SentBytes != writes*size || m.RecvMsgs+m.LostMsgs != writes || m.RecvBytes != m.RecvMsgs*size || m.LostMsgs != dropped ||
		m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.CorruptMsgs != 0 {
		t.Errorf("boundaries %s: sent %d (%d B) recv %d (%d B) lost %d (kernel drops: socket %v, sender %d) dup %d reordered %d corrupt %d; want all %d writes of %d B back, once, in order, but for those the kernel dropped and counted",
			transport, m.SentMsgs, m.SentBytes, m.RecvMsgs, m.RecvBytes, m.LostMsgs, deref(m.DropsSocket), m.DropsSender, m.DupMsgs, m.ReorderedMsgs, m.CorruptMsgs, writes, size)
	}
	// Every byte in order, unless datagrams were dropped (then order is the
	// metrics' ReorderedMsgs, above).
	if obs["bytes_in_order"] != (dropped == 0) || obsNum(obs["writes"]) != writes || obsNum(obs["write_bytes"]) != size || obs["max_message_ok"] != true {
		t.Errorf("boundaries %s: observed %v; want bytes in order (%d dropped), %d writes of %d B, the largest message whole", transport, obs, dropped, writes, size)
	}
	reads, hist := obsNum(obs["reads"]), obs["read_sizes"]
	switch transport {
	case "tcp":
		if obs["raw_stream"] != true || obs["reads_equal_to_writes"] != false || reads < 1 || reads >= writes || obsNum(obs["coalesced_reads"]) < 1 || obsNum(obs["largest_read"]) <= size {
			t.Errorf("boundaries tcp: observed %v; want a raw stream read in fewer reads than writes, some coalesced", obs)
		}
		// Under the framing's 16 MiB the server's --max-size is the limit, and this
		// side refuses one byte more before sending; at 16 MiB the framing refuses it.
		limit, refusal := "--max-size", "larger than the far end takes"
		if tcpMax == 16<<20 {
			limit, refusal = "framing", "exceeds"
		}
		if obsNum(obs["max_message_bytes"]) != float64(tcpMax) || !strings.Contains(str(obs["max_message_limit"]), limit) {
			t.Errorf("boundaries tcp: largest message %v (%v), want %d (%s)", obs["max_message_bytes"], obs["max_message_limit"], tcpMax, limit)
		}
		if obs["one_mib_send_ok"] != true || obs["one_mib_send_error"] != "" || obsNum(obs["one_mib_reads"]) < 2 || obs["one_mib_raw_in_order"] != true {
			t.Errorf("boundaries tcp: observed %v; want 1 MiB whole, framed, and raw in several reads, in order", obs)
		}
		if obs["max_plus_one_emsgsize"] != false || !strings.Contains(str(obs["max_plus_one_error"]), refusal) {
			t.Errorf("boundaries tcp: max+1 %q, emsgsize %v; want refused before sending, no EMSGSIZE", obs["max_plus_one_error"], obs["max_plus_one_emsgsize"])
		}
	case "udp":
		if obs["raw_stream"] != false || obs["reads_equal_to_writes"] != true || reads != float64(m.RecvMsgs) || obsNum(obs["coalesced_reads"]) != 0 || obsNum(obs["split_reads"]) != 0 {
			t.Errorf("boundaries udp: observed %v; want %d reads (%d writes, %d dropped), each one write", obs, m.RecvMsgs, writes, dropped)
		}
		if h, want := fmt.Sprint(hist), fmt.Sprintf("map[1000:%d]", m.RecvMsgs); h != want {
			t.Errorf("boundaries udp: read sizes %s, want %s", h, want)
		}
		if obsNum(obs["max_message_bytes"]) != remote.MaxUDPMessage || !strings.Contains(str(obs["max_message_limit"]), "17-byte prefix") {
			t.Errorf("boundaries udp: largest message %v (%v), want %d: 65507 less the 17-byte prefix", obs["max_message_bytes"], obs["max_message_limit"], remote.MaxUDPMessage)
		}
		if obs["max_plus_one_emsgsize"] != true || !strings.Contains(str(obs["max_plus_one_error"]), "exceeds 65490") ||
			!strings.Contains(str(obs["max_plus_one_kernel_error"]), "message too long") {
			t.Errorf("boundaries udp: max+1 %q, kernel %q; want the transport's refusal and the kernel's EMSGSIZE", obs["max_plus_one_error"], obs["max_plus_one_kernel_error"])
		}
		if obs["one_mib_send_ok"] != false || obs["one_mib_send_error"] == "" {
			t.Errorf("boundaries udp: 1 MiB ok %v, error %q; want refused", obs["one_mib_send_ok"], obs["one_mib_send_error"])
		}
		if _, ok := obs["one_mib_reads"]; ok {
			t.Errorf("boundaries udp: one_mib_reads %v without a raw stream", obs["one_mib_reads"])
		}
	}
}

// TestRunnerCheckBoundaries: bench.boundaries runs one bidir data path and takes
// its part, seed and quiet time; anything else is refused naming the field.
func TestRunnerCheckBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport string
		streams   int
		dir       remote.Direction
		params    string
		want      string // "" = accepted
	}{
		{"burst", "udp", 1, remote.Bidir, `{"part":"burst","seed":-7,"quiet_ms":1200}`, ""},
		{"largest", "tcp", 1, remote.Bidir, `{"part":"largest","seed":1,"quiet_ms":1}`, ""},
		{"raw over tcp", "tcp", 1, remote.Bidir, `{"part":"raw","seed":1,"quiet_ms":1200}`, ""},
		{"raw over udp", "udp", 1, remote.Bidir, `{"part":"raw","seed":1,"quiet_ms":1200}`, "params.part"},
		{"unknown part", "tcp", 1, remote.Bidir, `{"part":"all","seed":1,"quiet_ms":1200}`, "params.part"},
		{"no quiet", "tcp", 1, remote.Bidir, `{"part":"burst","seed":1}`, "params.quiet_ms"},
		{"quiet too long", "tcp", 1, remote.Bidir, `{"part":"burst","seed":1,"quiet_ms":30001}`, "params.quiet_ms"},
		{"unknown field", "tcp", 1, remote.Bidir, `{"part":"burst","seed":1,"quiet_ms":10,"run":"00000000000000ab"}`, "params"},
		{"no params", "tcp", 1, remote.Bidir, ``, "params"},
		{"two paths", "tcp", 2, remote.Bidir, `{"part":"burst","seed":1,"quiet_ms":10}`, "streams"},
		{"forward", "tcp", 1, remote.Forward, `{"part":"burst","seed":1,"quiet_ms":10}`, "direction"},
	} {
		req := remote.TestRequest{Experiment: "bench.boundaries", Transport: tc.transport, Size: 1024, Duration: time.Second, Streams: tc.streams, Direction: tc.dir, Params: []byte(tc.params)}
		err := Runner{}.Check(req)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.want)
		}
	}
}
