package bench

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

// TestClientsSockets runs 50 clients against one server on real sockets: TCP needs a
// server socket (and descriptor) per client, UDP serves them all from one.
func TestClientsSockets(t *testing.T) {
	const n = 50
	tests := []struct {
		transport           string
		sockets             int
		minFDs, maxFDs      int
		lossless            bool
		minServerGoroutines int
		maxServerGoroutines int
	}{
		// TCP: n accepted sockets (the listener predates the baseline); a goroutine per connection.
		{transport: "tcp", sockets: n, minFDs: n, maxFDs: n, lossless: true, minServerGoroutines: n, maxServerGoroutines: n + 2},
		// UDP: the one socket is the listener, opened before the baseline: no descriptor
		// per client; one goroutine answers everyone.
		{transport: "udp", sockets: 1, minFDs: 0, maxFDs: 0, minServerGoroutines: 1, maxServerGoroutines: 2},
	}
	for _, tc := range tests {
		t.Run(tc.transport, func(t *testing.T) {
			e := testEnv(t)
			// TCP never loses a request; a timeout is a wall-clock event, which 50
			// clients on a busy 2-core host can reach in 100 ms. With a timeout no
			// host reaches, TCP's known answer is exact: nothing lost. (UDP's one
			// socket holds the 50 outstanding requests: it loses none on loopback
			// either, but a loss would be its own, so it is not asserted.)
			e.timeout = patience
			nw := mustNetwork(t, tc.transport, transport.NetOptions{NoDelay: true})
			o, err := runClients(context.Background(), e, nw, report.Params{Size: 1024, Clients: n, DurationS: 0.3})
			if err != nil {
				t.Fatal(err)
			}
			m := o.m
			t.Logf("observed %v", o.observed)
			t.Logf("sent %d recv %d lost %d late %d rtt %+v trans/s %.0f warnings %v", m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.LateMsgs, m.RTT, m.TransPerS, o.warns)
			if got := o.observed["server_sockets"]; got != tc.sockets || m.ServerSockets != tc.sockets {
				t.Errorf("server sockets: observed %v, metrics %d; want %d", got, m.ServerSockets, tc.sockets)
			}
			if o.observed["clients"] != n {
				t.Errorf("clients %v, want %d", o.observed["clients"], n)
			}
			if runtime.GOOS == "linux" {
				fds, ok := o.observed["server_fds"].(int)
				if !ok || fds < tc.minFDs || fds > tc.maxFDs {
					t.Errorf("server fds %v, want %d..%d", o.observed["server_fds"], tc.minFDs, tc.maxFDs)
				}
				for _, k := range []string{"kernel_socket_bytes_per_client", "kernel_sockets_delta", "server_fds_per_client"} {
					if _, ok := o.observed[k]; !ok {
						t.Errorf("observed %q missing", k)
					}
				}
			}
			if g, _ := o.observed["server_goroutines"].(int); g < tc.minServerGoroutines || g > tc.maxServerGoroutines {
				t.Errorf("server goroutines %d, want %d..%d", g, tc.minServerGoroutines, tc.maxServerGoroutines)
			}
			if m.SentMsgs == 0 || m.RecvMsgs+m.LostMsgs != m.SentMsgs {
				t.Errorf("sent %d, recv %d + lost %d: want sent > 0 and recv + lost = sent", m.SentMsgs, m.RecvMsgs, m.LostMsgs)
			}
			if tc.lossless && m.LostMsgs != 0 {
				t.Errorf("lost %d, want 0", m.LostMsgs)
			}
			if m.SentBytes != m.SentMsgs*1024 || m.RecvBytes != m.RecvMsgs*1024 {
				t.Errorf("bytes sent %d recv %d, want 1024 per message (%d, %d)", m.SentBytes, m.RecvBytes, m.SentMsgs, m.RecvMsgs)
			}
			if m.RTT == nil || m.RTT.Samples != m.RecvMsgs || m.TransPerS <= 0 {
				t.Errorf("rtt %+v for %d replies, trans/s %v", m.RTT, m.RecvMsgs, m.TransPerS)
			}
			if rps, _ := o.observed["requests_per_s"].(float64); rps != m.TransPerS {
				t.Errorf("requests_per_s %v, want transactions/s %v", rps, m.TransPerS)
			}
		})
	}
}

// TestClientsCount: with Count set, every client makes exactly that many requests.
func TestClientsCount(t *testing.T) {
	e := testEnv(t)
	e.timeout = patience // TCP answers every request: only a hang may time out
	o, err := runClients(context.Background(), e, mustNetwork(t, "tcp", transport.NetOptions{NoDelay: true}), report.Params{Size: 64, Clients: 4, Count: 25})
	if err != nil {
		t.Fatal(err)
	}
	if o.m.SentMsgs != 100 || o.m.RecvMsgs != 100 {
		t.Errorf("sent %d recv %d, want 100 100", o.m.SentMsgs, o.m.RecvMsgs)
	}
}

func TestParseSockstat(t *testing.T) {
	const in = `sockets: used 12
TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 131
UDP: inuse 0 mem 167
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
`
	s, err := parseSockstat(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.get("sockets", "used"); got != 12 {
		t.Errorf("sockets used %d, want 12", got)
	}
	if got := s.socketMemPages(); got != 131+167 {
		t.Errorf("socket mem %d pages, want %d", got, 131+167)
	}
	for _, bad := range []string{"", "TCP: inuse", "TCP: inuse x"} {
		if _, err := parseSockstat(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSockstat(%q): no error", bad)
		}
	}
}

func TestParseSlabinfo(t *testing.T) {
	const in = `slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
TCP                  130    130   2432   13    8 : tunables    0    0    0 : slabdata     10     10      0
UDP                   32     32   1024   16    4 : tunables    0    0    0 : slabdata      2      2      0
sock_inode_cache     200    207    704   23    4 : tunables    0    0    0 : slabdata      9      9      0
dentry              1000   1000    192   21    1 : tunables    0    0    0 : slabdata     48     48      0
`
	s, err := parseSlabinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := socketSlabBytes(s), int64(130*2432+32*1024+200*704); got != want {
		t.Errorf("socket slab %d bytes, want %d (dentry excluded)", got, want)
	}
	for _, bad := range []string{"", "TCP 1 2", "TCP x 2 3"} {
		if _, err := parseSlabinfo(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSlabinfo(%q): no error", bad)
		}
	}
}
