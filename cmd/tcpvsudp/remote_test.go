package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/farend"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// TestServerAddr: --server takes a host or an address alone (port 5299) or with a
// port, and names itself when it refuses one.
func TestServerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.1.2": "198.18.1.2:5299", "198.18.1.2:6000": "198.18.1.2:6000",
		"::1": "[::1]:5299", "[::1]:6000": "[::1]:6000", "lab-host": "lab-host:5299",
		"[::1]": "[::1]:5299", "fe80::1%eth0": "[fe80::1%eth0]:5299", "host.example.": "host.example.:5299",
	} {
		if got, err := serverAddr(in); err != nil || got != want {
			t.Errorf("serverAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "host:0", "host:99999", "host:http", ":5299"} {
		if _, err := serverAddr(bad); err == nil || !strings.Contains(err.Error(), "--server") {
			t.Errorf("serverAddr(%q): %v, want an error naming --server", bad, err)
		}
	}
	// Neither an address nor a name: refused before anything dials, with the form.
	for _, bad := range []string{"[::1", "::1]", "[[::1]]:80", "a b", "host/x", "1:2:3", "host..example"} {
		if _, err := serverAddr(bad); err == nil || !strings.Contains(err.Error(), "--server") || !strings.Contains(err.Error(), "HOST:PORT") {
			t.Errorf("serverAddr(%q): %v, want an error naming --server and HOST:PORT", bad, err)
		}
	}
}

// TestRunServerBadFlags: what remote mode cannot do is refused before anything runs,
// as a usage error naming the flag.
func TestRunServerBadFlags(t *testing.T) {
	key := writeKey(t, testServeKey, 0o600)
	loose := writeKey(t, testServeKey, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--key-file", key}, "--key-file: only with --server"},
		{[]string{"run", "--reverse", "-e", "stream", "--link", "wan"}, "--reverse, --bidir: not on an emulated link yet"},
		{[]string{"run", "--bidir", "-e", "stream", "--link", "wan"}, "--reverse, --bidir: not on an emulated link yet"},
		{[]string{"run", "--server", "127.0.0.1", "--bidir", "--reverse", "-e", "stream"}, "--bidir: streams both ways already; it cannot be combined with --reverse"},
		{[]string{"run", "--server", "127.0.0.1:99999"}, "--server"},
		{[]string{"run", "--server", "127.0.0.1", "-e", "fanout"}, "--experiments: fanout cannot run against a remote server"},
		{[]string{"run", "--server", "127.0.0.1", "--link", "wan"}, "--server"},
		{[]string{"run", "--server", "127.0.0.1:1", "--key-file", loose}, "--key-file"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), tc.args, &out, &errb)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v: %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

// startKeyedServer runs a remote.Server on loopback with testServeKey and runner
// (farend.Runner when nil; a runner may need the server, so it is made from it),
// and stops it when the test ends. It returns the address and the key file.
func startKeyedServer(t *testing.T, runner func(*remote.Server) remote.Runner) (addr, keyFile string) {
	t.Helper()
	keyFile = writeKey(t, testServeKey, 0o600)
	key, err := remote.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &remote.Server{Key: key, Runner: farend.Runner{}}
	if runner != nil {
		srv.Runner = runner(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return ln.Addr().String(), keyFile
}

// lossTimeout is --timeout for runs whose requests must all (or nearly all) be
// answered: a request counts as lost only if unanswered that long, never because a
// loaded machine delayed it past the default 200 ms.
const lossTimeout = "5s"

// readReport reads the report.json a run wrote into dir.
func readReport(t *testing.T, dir string) report.Report {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("no report written: %v", err)
	}
	var rep report.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRunServer: 'run --server' against a server running bench's far runner measures
// pingpong across the session, and the report says it was remote; a wrong key fails
// the run (exit 1) before anything is measured.
func TestRunServer(t *testing.T) {
	addr, keyFile := startKeyedServer(t, nil)
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"run", "--server", addr, "--key-file", keyFile, "-e", "pingpong", "--count", "300", "--sizes", "64", "--warmup", "10ms",
		"--timeout", lossTimeout, "--out", dir}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errb.String())
	}
	rep := readReport(t, dir)
	if rep.Env.Link.Kind != "remote" || rep.Env.Link.Addr != addr {
		t.Errorf("link %+v, want remote %s", rep.Env.Link, addr)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want pingpong over tcp and udp", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Metrics.SentMsgs != 300 || r.Metrics.RecvMsgs < 295 {
			t.Errorf("%s: error %q, sent %d, recv %d; want 300 sent and answered", r.Transport, r.Error, r.Metrics.SentMsgs, r.Metrics.RecvMsgs)
		}
	}
	if u := unwrapped(out.String()); !strings.Contains(u, "remote "+addr) || !strings.Contains(u, "server host ") {
		t.Errorf("the tables do not say the run was remote, and where the server ran:\n%s", out.String())
	}
	if rep.Env.Peer == nil || rep.Env.Peer.CPUs == 0 {
		t.Errorf("env.peer %+v: want the server host's environment", rep.Env.Peer)
	}
	for _, r := range rep.Results {
		if r.Metrics.ServerCPUSec == nil {
			t.Errorf("%s: no server_cpu_s", r.Transport)
		}
	}

	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("another key, thirty-two bytes!!!"), 0o600)
	out.Reset()
	errb.Reset()
	err := run(context.Background(), []string{"run", "--server", addr, "--key-file", other, "--no-files", "-n", "10"}, &out, &errb)
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "--server") {
		t.Errorf("run with the wrong key: %v; want a run error (exit 1) naming --server", err)
	}
}

// dyingRunner is farend's Runner on a server that goes away during its second
// test: the server is closed while that test runs, as a crash or a pulled cable would
// end it.
type dyingRunner struct {
	farend.Runner
	srv   *remote.Server
	tests atomic.Int32
}

func (r *dyingRunner) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	if r.tests.Add(1) == 2 {
		go r.srv.Close()
	}
	return r.Runner.Serve(ctx, d)
}

// TestRunServerLost: a server lost mid-run makes 'run --server' exit non-zero (not a
// usage error) within its timeout, with the report of what it measured written: the
// first cell complete, the lost one and those after it marked failed.
func TestRunServerLost(t *testing.T) {
	addr, keyFile := startKeyedServer(t, func(srv *remote.Server) remote.Runner { return &dyingRunner{srv: srv} })

	dir := t.TempDir()
	var out, errb bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"run", "--server", addr, "--key-file", keyFile, "-e", "pingpong",
		"--sizes", "64,1024", "-d", "300ms", "--warmup", "10ms", "--out", dir}, &out, &errb)
	took := time.Since(start)
	var ue usageError
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("run against a server lost mid-run: %v; want a run error (exit 1)", err)
	}
	if took > 30*time.Second {
		t.Errorf("run took %v to give up on a lost server", took)
	}
	t.Logf("run: %v after %v", err, took)
	rep := readReport(t, dir)
	var ok, failed int
	for _, r := range rep.Results {
		t.Logf("%s %s %d B: error %q, recv %d", r.Experiment, r.Transport, r.Params.Size, r.Error, r.Metrics.RecvMsgs)
		if r.Error == "" {
			ok++
		} else {
			failed++
		}
	}
	if len(rep.Results) != 4 || ok != 1 || failed != 3 || rep.Results[0].Error != "" || rep.Results[0].Metrics.RecvMsgs == 0 {
		t.Errorf("%d results, %d complete, %d failed; want 4, the first complete with its figures, the rest failed", len(rep.Results), ok, failed)
	}
	// Marked incomplete, and every failed cell blames the server, not its sockets.
	if !strings.Contains(rep.Incomplete, "remote server was lost") || !strings.Contains(err.Error(), "report incomplete") {
		t.Errorf("report incomplete %q, run error %v; want both to say the server was lost", rep.Incomplete, err)
	}
	// It names the cell running then and counts those after it.
	lost := regexp.MustCompile(`^the remote server was lost \(.+\) during pingpong over udp \(size 64\): it and the 2 cells after it have no figures$`)
	if !lost.MatchString(rep.Incomplete) {
		t.Errorf("report incomplete %q, want it to match %s", rep.Incomplete, lost)
	}
	for _, r := range rep.Results[1:] {
		if !strings.Contains(r.Error, "server lost") {
			t.Errorf("%s %s %d B: error %q, want it to say the server was lost", r.Experiment, r.Transport, r.Params.Size, r.Error)
		}
	}
}
