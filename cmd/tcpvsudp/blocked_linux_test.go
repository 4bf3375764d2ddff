package main

import (
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestRunServerUDPBlocked: a firewall at the server drops every UDP datagram that
// reaches it (a tc filter on its end of the veth pair), so a UDP cell's data path
// cannot be set up. The server refuses that test once --handshake-timeout passed,
// saying which path failed, how, and the flag that bounds it; the session goes on,
// so the TCP cell after it runs and measures. The cell that could not set up is not
// measured, the report is not incomplete (no server was lost), and run exits 1 for
// the failed cell.
func TestRunServerUDPBlocked(t *testing.T) {
	tc, err := exec.LookPath("tc")
	if err != nil {
		t.Skipf("tc (iproute2) is needed to drop udp at the server: %v", err)
	}
	p := newServePair(t)
	dropUDP(t, p, tc)

	key := writeKey(t, testServeKey+"\n", 0o600)
	cs := startServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key, "--handshake-timeout", "1s")
	addr := net.JoinHostPort(lab.PairServerAddr, cs.port(t))
	rep, status, stderr := runInStatus(t, p, cs, "--server", addr, "--key-file", key, "-e", "stream", "-t", "udp,tcp",
		"--count", "200", "--rate", "20M", "--sizes", "1024", "--warmup", "20ms", "--udp-io", "batched")
	t.Logf("run exited %d; stderr:\n%s\nserver:\n%s", status, stderr, cs.logs)

	if status != 1 {
		t.Errorf("run exited %d; want 1 (a cell failed)", status)
	}
	if rep.Incomplete != "" {
		t.Errorf("report incomplete: %q; want complete (the server refused one test, it was not lost)", rep.Incomplete)
	}
	got := map[string]report.Result{}
	for _, r := range rep.Results {
		got[r.Transport] = r
	}
	if len(rep.Results) != 2 || len(got) != 2 {
		t.Fatalf("%d results %+v; want stream over udp and over tcp", len(rep.Results), rep.Results)
	}
	udp, tcp := got["udp"], got["tcp"]
	for _, want := range []string{"udp path 0", "no probe arrived", "--handshake-timeout 1s"} {
		if !strings.Contains(udp.Error, want) {
			t.Errorf("udp cell error %q; want it to contain %q", udp.Error, want)
		}
	}
	if udp.Metrics.SentMsgs != 0 || udp.Metrics.RecvMsgs != 0 {
		t.Errorf("udp cell: sent %d, recv %d; want no figures", udp.Metrics.SentMsgs, udp.Metrics.RecvMsgs)
	}
	if tcp.Error != "" || !deliveredOrCounted(tcp.Metrics, 200) {
		t.Errorf("tcp cell after the refused one: error %q, sent %d, recv %d, lost %d; want 200 delivered",
			tcp.Error, tcp.Metrics.SentMsgs, tcp.Metrics.RecvMsgs, tcp.Metrics.LostMsgs)
	}
	if !strings.Contains(stderr, "not measured") && !strings.Contains(stderr, "no probe arrived") {
		t.Errorf("stderr says nothing of the refused cell:\n%s", stderr)
	}
	cs.terminate(t)
	for _, want := range []string{
		`test 1 refused by --handshake-timeout: .*udp path 0 \(port \d+\): no probe arrived from the client`,
		`test 2 ended after \S+: complete`,
		`serve: stopped: 1 sessions, 1 tests run, 1 tests refused`,
	} {
		waitLog(t, cs.logs, regexp.MustCompile(want), 0)
	}
}

// dropUDP makes p's server namespace drop every UDP datagram arriving on its end of
// the veth pair, as a firewall would: a clsact qdisc whose ingress u32 filter (IP
// protocol 17) redirects the datagram to a device that is down, where mirred drops
// it (the kernel here has no gact, so no "action drop"). TCP still passes. The
// devices and the filter go with the namespace.
func dropUDP(t *testing.T, p *lab.Pair, tc string) {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("ip (iproute2) is needed to make the device udp is dropped at: %v", err)
	}
	for _, args := range [][]string{
		{ip, "link", "add", dropDevice, "type", "veth", "peer", "name", dropDevice + "p"}, // left down
		{tc, "qdisc", "add", "dev", lab.PairDevice, "clsact"},
		{tc, "filter", "add", "dev", lab.PairDevice, "ingress", "protocol", "ip", "prio", "1", "u32",
			"match", "ip", "protocol", "17", "0xff", "action", "mirred", "egress", "redirect", "dev", dropDevice},
	} {
		var out []byte
		err := p.InServer(func() error { // a child forked on the namespace's thread lives in it
			var err error
			out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
			return err
		})
		if err != nil {
			msg := string(out)
			if strings.Contains(msg, "not supported") || strings.Contains(msg, "Unknown") || strings.Contains(msg, "Failed to load") {
				t.Skipf("%s: %v: %s (the kernel lacks clsact, u32 or mirred)", strings.Join(args, " "), err, msg)
			}
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, msg)
		}
	}
}

// dropDevice is the device, down, that dropUDP sends UDP to.
const dropDevice = "tvudrop0"

// runInStatus is runIn for a run that may fail: it returns the report, the exit
// status and stderr.
func runInStatus(t *testing.T, p *lab.Pair, cs *childServe, args ...string) (report.Report, int, string) {
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
	status := 0
	select {
	case err := <-exited:
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			status = ee.ExitCode()
		case err != nil:
			server := "none"
			if cs != nil {
				server = cs.logs.String()
			}
			t.Fatalf("run %v: %v\nstderr:\n%s\nserver:\n%s", args, err, errb.String(), server)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("run %v still running after 60 s\nstderr:\n%s", args, errb.String())
	}
	return readReport(t, dir), status, errb.String()
}
