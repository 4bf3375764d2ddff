package main

import (
	"net"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/lab"
)

// TestRunServerTwoHosts: 'tcpvsudp serve' in one namespace, 'tcpvsudp run --server'
// in another, joined by a veth pair: stream and pingpong cross a real link between
// two network stacks, and the report is the loopback report's shape with a remote
// link.
func TestRunServerTwoHosts(t *testing.T) {
	p := newServePair(t)
	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	rep := runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream,pingpong", "--count", "500", "--rate", "20M", "--sizes", "64,1024", "--warmup", "20ms")

	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != addr {
		t.Errorf("link %+v, want remote %s", rep.Env.Link, addr)
	}
	if len(rep.Results) != 8 {
		t.Fatalf("%d results, want stream and pingpong × tcp, udp × 64, 1024 B", len(rep.Results))
	}
	for _, r := range rep.Results {
		m := r.Metrics
		var p50 time.Duration
		if m.RTT != nil && m.RTT.P50 != nil {
			p50 = time.Duration(*m.RTT.P50)
		}
		t.Logf("%s %s %d B across the veth pair: sent %d, recv %d, lost %d, goodput %.4g, RTT p50 %v, server sockets %d",
			r.Experiment, r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps, p50, m.ServerSockets)
		if r.Error != "" {
			t.Errorf("%s %s %d B: %s", r.Experiment, r.Transport, r.Params.Size, r.Error)
			continue
		}
		switch r.Experiment {
		case bench.ExpPingPong:
			if m.SentMsgs != 500 || m.RecvMsgs+m.LostMsgs != 500 || m.RecvMsgs < 495 || m.ServerSockets != 1 {
				t.Errorf("pingpong %s %d B: sent %d, recv %d, lost %d, server sockets %d; want 500 answered by one server socket",
					r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.ServerSockets)
			}
		case bench.ExpStream:
			// Paced at 20 Mbit/s across an idle veth pair: the known answer is exact.
			if m.SentMsgs != 500 || m.RecvMsgs != 500 || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 || m.ServerSockets != 1 {
				t.Errorf("stream %s %d B: sent %d, recv %d, lost %d, dup %d, reordered %d, server sockets %d; want 500 received once, in order",
					r.Transport, r.Params.Size, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, m.ServerSockets)
			}
		}
	}

	// The other way: the server's senders, this host's receiver.
	rep = runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream", "--reverse", "--count", "500", "--rate", "20M", "--sizes", "1024", "--warmup", "20ms")
	for _, r := range rep.Results {
		m := r.Metrics
		t.Logf("reverse stream %s across the veth pair: sent %d, recv %d, lost %d, goodput %.4g", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.GoodputBps)
		if r.Error != "" || !r.Params.Reverse || m.SentMsgs != 500 || m.RecvMsgs != 500 || m.LostMsgs != 0 || m.DupMsgs != 0 || m.ReorderedMsgs != 0 {
			t.Errorf("reverse stream %s: error %q, reverse %v, sent %d, recv %d, lost %d, dup %d, reordered %d; want the server's 500 received once, in order",
				r.Transport, r.Error, r.Params.Reverse, m.SentMsgs, m.RecvMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs)
		}
	}

	// A slow reader at the server: TCP's flow control holds this host's sender to its
	// pace, UDP's sender outruns it and the server's receive buffer drops the rest.
	const reader = 20e6
	rep = runIn(t, p, cs, "--server", addr, "--key-file", key, "-e", "slow-receiver", "--reader-rate", "20M", "-d", "500ms")
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want slow-receiver over tcp and udp", len(rep.Results))
	}
	for _, r := range rep.Results {
		m, obs := r.Metrics, r.Observed
		steady, _ := obs["send_rate_steady_bps"].(float64)
		t.Logf("slow-receiver %s across the veth pair: sent %d, recv %d, lost %d (socket drops %v), send rate %.4g, steady %.4g, goodput %.4g, "+
			"rwnd limited %v ns, buffers %v/%v B, %d samples; observed %v", r.Transport, m.SentMsgs, m.RecvMsgs, m.LostMsgs, deref(m.DropsSocket),
			m.SendRateBps, steady, m.GoodputBps, obs["rwnd_limited_ns"], obs["recv_buffer_bytes"], obs["send_buffer_bytes"], len(r.Series), obs)
		if r.Error != "" {
			t.Errorf("slow-receiver %s: %s", r.Transport, r.Error)
			continue
		}
		if len(r.Series) < 5 || m.ServerSockets != 1 {
			t.Errorf("slow-receiver %s: %d samples, %d server sockets; want a time line from one server socket", r.Transport, len(r.Series), m.ServerSockets)
		}
		if m.GoodputBps < 0.75*reader || m.GoodputBps > 1.1*reader {
			t.Errorf("slow-receiver %s: goodput %.4g, want the reader's %.4g (-25%%, +10%%)", r.Transport, m.GoodputBps, reader)
		}
		switch r.Transport {
		case "tcp":
			if m.LostMsgs != 0 || obs["bytes_delivered_equal_sent"] != true || steady < 0.75*reader || steady > 1.25*reader {
				t.Errorf("slow-receiver tcp: lost %d, bytes equal %v, steady send rate %.4g; want nothing lost, the sender held to %.4g within 25%%",
					m.LostMsgs, obs["bytes_delivered_equal_sent"], steady, reader)
			}
		case "udp":
			if m.LostMsgs == 0 || obs["drops_account_for_missing"] != true || steady < 2*reader {
				t.Errorf("slow-receiver udp: lost %d, drops account for missing %v, steady send rate %.4g; want the sender far above %.4g, every missing message a counted drop",
					m.LostMsgs, obs["drops_account_for_missing"], steady, reader)
			}
		}
	}
	cs.terminate(t)
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

// runIn runs 'tcpvsudp run ARGS --out DIR' as a child process in p's client
// namespace, waits for it (60 s at most) and returns the report it wrote.
func runIn(t *testing.T, p *lab.Pair, cs *childServe, args ...string) bench.Report {
	t.Helper()
	dir := t.TempDir()
	cmd := helperCommand(append(append([]string{"run"}, args...), "--out", dir)...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := p.InClient(cmd.Start); err != nil {
		t.Fatalf("starting run in the client namespace: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run %v: %v\nstderr:\n%s\nserver:\n%s", args, err, errb.String(), cs.logs)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("run %v still running after 60 s\nstderr:\n%s", args, errb.String())
	}
	return readReport(t, dir)
}
