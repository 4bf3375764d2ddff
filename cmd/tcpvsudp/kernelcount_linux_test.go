package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
)

// TestWarmupZeroKernelCount: with --warmup 0 a UDP stream cell sends its messages and
// its end markers and nothing else, so in a fresh network namespace the kernel's own
// count of datagrams that reached a UDP socket (Udp: InDatagrams, plus RcvbufErrors
// for those the socket's full buffer dropped) is exactly the cell's sent messages
// plus 3 end markers. A warm-up that still ran (the defaults once applied twice
// turned --warmup 0 into 200 ms) shows as thousands more.
func TestWarmupZeroKernelCount(t *testing.T) {
	const count, endMarkers = 2000, 3
	p := newServePair(t)
	before := udpSNMP(t, p)
	rep := runIn(t, p, nil, "-e", "stream", "-t", "udp", "--sizes", "1024", "--count", strconv.Itoa(count), "--rate", "100M", "--warmup", "0", "--no-lab")
	after := udpSNMP(t, p)
	if len(rep.Results) != 1 || rep.Results[0].Error != "" {
		t.Fatalf("results %+v, want one measured udp stream cell", rep.Results)
	}
	m := rep.Results[0].Metrics
	in, rcvbuf := after["InDatagrams"]-before["InDatagrams"], after["RcvbufErrors"]-before["RcvbufErrors"]
	t.Logf("cell: sent %d, recv %d, lost %d, drops_socket %v; kernel: InDatagrams %d, RcvbufErrors %d; config warmup %v s",
		m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket), in, rcvbuf, rep.Config.WarmupS)
	if rep.Config.WarmupS != 0 {
		t.Errorf("report config warmup_s %v, want 0", rep.Config.WarmupS)
	}
	if m.SentMsgs != count {
		t.Fatalf("sent %d, want %d", m.SentMsgs, count)
	}
	if want := m.SentMsgs + endMarkers; in+rcvbuf != want {
		t.Errorf("kernel: InDatagrams %d + RcvbufErrors %d = %d datagrams reached a UDP socket; want the cell's %d sent + %d end markers = %d",
			in, rcvbuf, in+rcvbuf, m.SentMsgs, endMarkers, want)
	}
	if m.DropsSocket == nil || *m.DropsSocket > rcvbuf || rcvbuf == 0 && *m.DropsSocket != 0 {
		t.Errorf("drops_socket %v, want at most the kernel's RcvbufErrors %d (equal, but for end markers it dropped)", deref(m.DropsSocket), rcvbuf)
	}
}

// udpSNMP reads the Udp: line pair of /proc/net/snmp in p's client namespace.
func udpSNMP(t *testing.T, p *lab.Pair) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := p.InClient(func() error {
		f, err := os.Open("/proc/thread-self/net/snmp") // this thread's namespace, not the process's
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		for sc := bufio.NewScanner(f); sc.Scan(); {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = fields[1:]
				continue
			}
			for i, v := range fields[1:] {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil || i >= len(names) {
					return fmt.Errorf("snmp: Udp: %q: %v", sc.Text(), err)
				}
				out[names[i]] = n
			}
			return nil
		}
		return fmt.Errorf("snmp: no Udp: lines")
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
