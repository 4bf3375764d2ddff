package main

import (
	"net"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
)

// TestRunServerTwoHostsClients: 50 clients in one namespace, the server in the other.
// The server's footprint is its own here (its own process and network stack), so
// the known answer is exact: over TCP one descriptor and one kernel socket per
// client, over UDP none (one socket serves them all).
func TestRunServerTwoHostsClients(t *testing.T) {
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	rep := runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "clients", "--clients", "50", "--count", "20", "--warmup", "0", "--timeout", lossTimeout)
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want clients × tcp, udp", len(rep.Results))
	}
	goroutines := map[string]float64{}
	for _, r := range rep.Results {
		m, o := r.Metrics, r.Observed
		goroutines[r.Transport], _ = o["server_goroutines"].(float64)
		t.Logf("clients %s across the veth pair: answered %d of %d, server sockets %d, observed %v, warnings %q",
			r.Transport, m.RecvMsgs, m.SentMsgs, m.ServerSockets, o, r.Warnings)
		if r.Error != "" {
			t.Errorf("clients %s: %s", r.Transport, r.Error)
			continue
		}
		num := func(k string) float64 { f, _ := o[k].(float64); return f }
		per := 1.0 // TCP: a socket and a descriptor per client
		if r.Transport == "udp" {
			per = 0
		}
		sockets := 50*per + (1 - per) // UDP: the one socket
		if m.SentMsgs != 1000 || m.RecvMsgs != 1000 || float64(m.ServerSockets) != sockets {
			t.Errorf("clients %s: answered %d of %d, server sockets %d; want all 1000 answered by %v server socket(s)", r.Transport, m.RecvMsgs, m.SentMsgs, m.ServerSockets, sockets)
		}
		if num("server_fds") != 50*per || num("client_fds") != 0 || num("kernel_sockets_delta") != 50*per {
			t.Errorf("clients %s: server fds %v, client fds %v, server kernel sockets %v; want %v, 0, %v",
				r.Transport, o["server_fds"], o["client_fds"], o["kernel_sockets_delta"], 50*per, 50*per)
		}
	}
	// The server half echoes each TCP client on a goroutine of its own and every UDP
	// client from one: at least one goroutine per TCP client, a few in all for UDP.
	if goroutines["tcp"] < 50 || goroutines["udp"] > 2 {
		t.Errorf("server goroutines: tcp %v, udp %v; want one or more per TCP client (50), at most 2 for all the UDP clients", goroutines["tcp"], goroutines["udp"])
	}
	cs.terminate(t)
}
