package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// helperEnv holds the arguments of 'tcpvsudp' for TestHelperProcess, verb first,
// one a line.
const helperEnv = "TCPVSUDP_TEST_ARGS"

// helperCountEnv, set, makes TestHelperProcess serve countServeRunner (as
// useCountRunner does in this process).
const helperCountEnv = "TCPVSUDP_TEST_COUNT"

// TestHelperProcess is not a test: it is 'tcpvsudp' in a child process (this test
// binary, run again), which helperCommand makes and a test starts inside a
// namespace, so that every socket the child opens, on any thread, lives there. It
// runs main itself, so the child exits as the command does: signals, status and all.
func TestHelperProcess(t *testing.T) {
	args := os.Getenv(helperEnv)
	if args == "" {
		return
	}
	if os.Getenv(helperCountEnv) != "" {
		serveRunner = countServeRunner
	}
	os.Args = append([]string{"tcpvsudp"}, strings.Split(args, "\n")...)
	main()
	os.Exit(0)
}

// helperCommand is 'tcpvsudp ARGS' as a child process (TestHelperProcess), not yet
// started. It is killed if this test process dies first (a test timeout), so no
// child outlives it: the signal follows the thread that forks, a namespace's
// (InServer, InClient), which the lab returns to the thread pool rather than ends.
func helperCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(args, "\n"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// childServe is 'tcpvsudp serve' running in a child process.
type childServe struct {
	cmd    *exec.Cmd
	addr   string
	logs   *syncBuffer
	exited chan error // cmd.Wait's result; sent once
}

// startServeIn starts 'tcpvsudp serve ARGS' as a child process inside p's server
// namespace, and waits until it listens. A process started from a thread inside a
// namespace lives in it; so do every socket it opens later, on any of its threads,
// which a server in this process (opening data sockets per test on goroutines the
// namespace's thread does not run) could not do. The cleanup kills it if it still runs.
func startServeIn(tb testing.TB, p *lab.Pair, args ...string) *childServe {
	tb.Helper()
	return startServeInEnv(tb, p, nil, args...)
}

// startCountServeIn is startServeIn whose serve runs countServeRunner.
func startCountServeIn(tb testing.TB, p *lab.Pair, args ...string) *childServe {
	tb.Helper()
	return startServeInEnv(tb, p, []string{helperCountEnv + "=1"}, args...)
}

// startServeInEnv is startServeIn with env added to the child's environment.
func startServeInEnv(tb testing.TB, p *lab.Pair, env []string, args ...string) *childServe {
	tb.Helper()
	cs := &childServe{logs: &syncBuffer{}, exited: make(chan error, 1)}
	cs.cmd = helperCommand(append([]string{"serve"}, args...)...)
	cs.cmd.Env = append(cs.cmd.Env, env...)
	cs.cmd.Stderr = cs.logs
	if err := p.InServer(cs.cmd.Start); err != nil {
		tb.Fatalf("starting serve in the server namespace: %v", err)
	}
	go func() { cs.exited <- cs.cmd.Wait() }()
	tb.Cleanup(func() {
		if cs.cmd.ProcessState == nil {
			cs.cmd.Process.Kill()
			<-cs.exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(cs.logs.String()); m != nil {
			cs.addr = m[1]
			return cs
		}
		select {
		case err := <-cs.exited:
			cs.exited <- err
			tb.Fatalf("serve %v exited before listening: %v\n%s", args, err, cs.logs)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("serve %v: no listening line after 30 s:\n%s", args, cs.logs)
		}
	}
}

// port is the port the child listens on.
func (cs *childServe) port(tb testing.TB) string {
	tb.Helper()
	_, port, err := net.SplitHostPort(cs.addr)
	if err != nil {
		tb.Fatalf("listening address %q: %v", cs.addr, err)
	}
	return port
}

// terminate sends SIGTERM and checks that the child exits with status 0 within 15 s.
func (cs *childServe) terminate(tb testing.TB) {
	tb.Helper()
	if err := cs.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-cs.exited:
		cs.exited <- err
		if err != nil {
			tb.Fatalf("serve after SIGTERM: %v; want exit status 0\n%s", err, cs.logs)
		}
	case <-time.After(15 * time.Second):
		tb.Fatalf("serve still running 15 s after SIGTERM\n%s", cs.logs)
	}
	// signal.NotifyContext in main and serve's own channel both see the signal; whichever
	// serve notices first names it.
	waitLog(tb, cs.logs, regexp.MustCompile(`serve: stopping \(terminated( signal received)?\)`), 0)
}

// newServePair builds the two namespaces, or skips saying why it cannot.
func newServePair(t *testing.T) *lab.Pair {
	t.Helper()
	p, err := lab.NewPair(t.Context())
	if errors.Is(err, os.ErrPermission) || errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("lab: two namespaces joined by a veth pair: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// runFrom opens a session with addr from inside one of p's namespaces (in names
// which) and runs reqs one after another. Everything that opens a socket runs on the
// namespace's thread; Dial's error, or the first Run's, ends it. countTest drives
// the tests.
func runFrom(ctx context.Context, p *lab.Pair, which, addr string, key []byte, reqs ...remote.TestRequest) ([]remote.TestResults, error) {
	in := p.InClient
	if which == "server" {
		in = p.InServer
	}
	var out []remote.TestResults
	err := in(func() error {
		c, err := dialCount(ctx, addr, key)
		if err != nil {
			return err
		}
		defer c.Close()
		for _, req := range reqs {
			res, err := c.Run(ctx, req)
			out = append(out, res)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// TestServeTwoHosts: 'tcpvsudp serve' in one namespace, a client in another, joined
// by a veth pair: a real peer that is not loopback. With a key the client completes
// TCP and UDP tests; without one the server refuses it (and still accepts loopback
// peers); with --allow-unauthenticated it accepts it. Each server stops on SIGTERM
// with exit status 0.
func TestServeTwoHosts(t *testing.T) {
	p := newServePair(t)
	serverAddr := func(cs *childServe) string { return net.JoinHostPort(lab.PairServerAddr, cs.port(t)) }

	t.Run("key", func(t *testing.T) {
		key := writeKey(t, testServeKey+"\n", 0o600)
		cs := startCountServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--key-file", key)
		res, err := runFrom(t.Context(), p, "client", serverAddr(cs), []byte(testServeKey),
			quickServeRequest("tcp", remote.Forward), quickServeRequest("udp", remote.Reverse), quickServeRequest("udp", remote.Forward))
		if err != nil {
			t.Fatalf("from %s with the key: %v\n%s", lab.PairClientAddr, err, cs.logs)
		}
		for _, r := range res {
			checkComplete(t, r, nil)
		}
		if _, err := runFrom(t.Context(), p, "client", serverAddr(cs), nil); err == nil || !strings.Contains(err.Error(), "--key-file") {
			t.Errorf("from %s without a key: %v; want an error asking for --key-file", lab.PairClientAddr, err)
		}
		cs.terminate(t)
		for _, want := range []string{
			`remote: 198\.18\.1\.1:\d+: session started: authenticated by key`,
			`remote: 198\.18\.1\.1:\d+: test 1 started: stream tcp forward`,
			`remote: 198\.18\.1\.1:\d+: test 2 ended after \S+: complete; sent \d+ bytes`,
			`remote: 198\.18\.1\.1:\d+: test 3 ended after \S+: complete; received \d+ bytes`,
			`serve: stopped: 1 sessions, 3 tests run, 0 tests refused`,
		} {
			waitLog(t, cs.logs, regexp.MustCompile(want), 0)
		}
	})

	t.Run("no key: loopback only", func(t *testing.T) {
		cs := startCountServeIn(t, p, "--listen", ":0")
		_, err := runFrom(t.Context(), p, "client", serverAddr(cs), nil)
		var re *remote.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "authentication required") ||
			!strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "--allow-unauthenticated") {
			t.Errorf("from %s without a key, to a server without one: %v; want a refusal saying only loopback peers are accepted", lab.PairClientAddr, err)
		}
		res, err := runFrom(t.Context(), p, "server", net.JoinHostPort("127.0.0.1", cs.port(t)), nil, quickServeRequest("tcp", remote.Forward))
		if err != nil {
			t.Fatalf("from loopback in the server's namespace: %v", err)
		}
		checkComplete(t, res[0], nil)
		cs.terminate(t)
		waitLog(t, cs.logs, regexp.MustCompile(`remote: 198\.18\.1\.1:\d+: refused: authentication required`), 0)
		waitLog(t, cs.logs, regexp.MustCompile(`serve: stopped: 1 sessions, 1 tests run, 0 tests refused; connections closed before a session: 1 unauthenticated`), 0)
	})

	t.Run("allow-unauthenticated", func(t *testing.T) {
		cs := startCountServeIn(t, p, "--listen", lab.PairServerAddr+":0", "--allow-unauthenticated")
		// The warning follows the listening line startServeIn waited for.
		waitLog(t, cs.logs, regexp.MustCompile(`serve: authentication off and every peer accepted`), 10*time.Second)
		res, err := runFrom(t.Context(), p, "client", serverAddr(cs), nil, quickServeRequest("udp", remote.Bidir))
		if err != nil {
			t.Fatalf("from %s without a key, --allow-unauthenticated: %v\n%s", lab.PairClientAddr, err, cs.logs)
		}
		checkComplete(t, res[0], nil)
		cs.terminate(t)
	})
}
