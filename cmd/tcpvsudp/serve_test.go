package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/internal/freeports"
	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// testServeKey is a pre-shared key for the serve tests: 32 bytes.
const testServeKey = "serve-test-key-0123456789abcdef!"

// writeKey writes content to a key file of the given mode and returns its path.
func writeKey(tb testing.TB, content string, mode os.FileMode) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "key")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // the umask may have narrowed it
		tb.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes.Buffer the server's goroutines may write while a test reads it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog polls logs every 10 ms until re matches, and returns the submatches.
func waitLog(tb testing.TB, logs *syncBuffer, re *regexp.Regexp, timeout time.Duration) []string {
	tb.Helper()
	var m []string
	if !waitfor.Cond(timeout, func() bool { m = re.FindStringSubmatch(logs.String()); return m != nil }) {
		tb.Fatalf("after %v the log has no line matching %q:\n%s", timeout, re, logs)
	}
	return m
}

var listeningRE = regexp.MustCompile(`serve: listening on (\S+) `)

// serveProc is 'tcpvsudp serve' running in this process, through the cobra command.
type serveProc struct {
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error

	once sync.Once
	err  error // what run returned; set by stop
}

// startServe runs 'tcpvsudp serve ARGS' in-process and waits until it listens; the
// cleanup stops it.
func startServe(tb testing.TB, args ...string) *serveProc {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sp := &serveProc{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { sp.done <- run(ctx, append([]string{"serve"}, args...), io.Discard, sp.logs) }()
	tb.Cleanup(func() { sp.stop() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(sp.logs.String()); m != nil {
			sp.addr = m[1]
			return sp
		}
		select {
		case err := <-sp.done:
			sp.done <- err
			tb.Fatalf("serve %v returned before listening: %v\n%s", args, err, sp.logs)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("serve %v: no listening line after 10 s:\n%s", args, sp.logs)
		}
	}
}

// stop cancels serve's context, as the first SIGINT does, and returns what run
// returned; serve that does not return within 20 s is an error.
func (sp *serveProc) stop() error {
	sp.once.Do(func() {
		sp.cancel()
		select {
		case sp.err = <-sp.done:
		case <-time.After(20 * time.Second):
			sp.err = errors.New("serve did not return 20 s after its context ended")
		}
	})
	return sp.err
}

// freePort returns a loopback address nothing listens on (now).
func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServeBadFlags: each mistake is a usage error (exit 2) naming the flag or file,
// the rule and the value, returned before anything listens.
func TestServeBadFlags(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("key file modes are Unix permission bits")
	}
	good := writeKey(t, testServeKey+"\n", 0o600)
	short := writeKey(t, "short-key\n", 0o600)
	world := writeKey(t, testServeKey, 0o644)
	group := writeKey(t, testServeKey, 0o640)
	missing := filepath.Join(t.TempDir(), "no-such-key")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"sessions zero", []string{"--max-sessions", "0"}, []string{"--max-sessions", "1..1024", "got 0"}},
		{"streams too many", []string{"--max-streams", "2000"}, []string{"--max-streams", "1..1024", "2000"}},
		{"duration too short", []string{"--max-duration", "5ms"}, []string{"--max-duration", "10ms..24h", "5ms"}},
		{"rate without unit", []string{"--max-rate", "500"}, []string{"--max-rate", "unit", `"500"`}},
		{"rate too low", []string{"--max-rate", "1k"}, []string{"--max-rate", "8 kbit/s", "1000"}},
		{"rate zero", []string{"--max-rate", "0"}, []string{"--max-rate", "8 kbit/s", "got 0"}},
		{"size zero", []string{"--max-size", "0"}, []string{"--max-size", "positive", "0"}},
		{"idle timeout zero", []string{"--idle-timeout", "0"}, []string{"--idle-timeout", "positive", "0s"}},
		{"idle timeout too short", []string{"--idle-timeout", "500ms"}, []string{"--idle-timeout", "1s..24h", "500ms"}},
		{"handshake timeout too short", []string{"--handshake-timeout", "50ms"}, []string{"--handshake-timeout", "100ms..1m", "50ms"}},
		{"handshake timeout too long", []string{"--handshake-timeout", "2m"}, []string{"--handshake-timeout", "100ms..1m", "2m0s"}},
		{"session shorter than a test", []string{"--max-duration", "5m", "--max-session-time", "5m"}, []string{"--max-session-time", "--max-duration plus 10s", "5m10s", "got 5m0s"}},
		{"data ports reversed", []string{"--data-ports", "5399-5300"}, []string{"--data-ports", "LO must not exceed HI", `"5399-5300"`}},
		{"data ports zero", []string{"--data-ports", "0-100"}, []string{"--data-ports", "1..65535", `"0-100"`}},
		{"data ports too high", []string{"--data-ports", "65000-70000"}, []string{"--data-ports", "1..65535", `"65000-70000"`}},
		{"data ports not a range", []string{"--data-ports", "5300:5399"}, []string{"--data-ports", "LO-HI", `"5300:5399"`}},
		{"data ports fewer than streams", []string{"--data-ports", "5300-5303"}, []string{"--data-ports", "5300-5303", "4 ports", "--max-streams 8"}},
		{"pre-auth zero", []string{"--pre-auth-conns", "0"}, []string{"--pre-auth-conns", "1..65536", "0"}},
		{"handshake negative", []string{"--handshake-timeout", "-1s"}, []string{"--handshake-timeout", "-1s"}},
		{"session time zero", []string{"--max-session-time", "0"}, []string{"--max-session-time", "positive", "0s"}},
		{"duration not a duration", []string{"--max-duration", "ten"}, []string{"max-duration", "ten"}},
		{"listen without port", []string{"--listen", "localhost"}, []string{"--listen", "HOST:PORT", "localhost"}},
		{"listen bad port", []string{"--listen", "127.0.0.1:99999"}, []string{"--listen", "0..65535", "99999"}},
		{"missing key file", []string{"--key-file", missing}, []string{"--key-file", missing, "no such file"}},
		{"short key", []string{"--key-file", short}, []string{"--key-file", short, "9 bytes", "at least 16", "head -c 32 /dev/urandom"}},
		{"world-readable key", []string{"--key-file", world}, []string{"--key-file", world, "0644", "chmod 600"}},
		{"group-readable key", []string{"--key-file", group}, []string{"--key-file", group, "0640", "chmod 600"}},
		{"key and unauthenticated", []string{"--key-file", good, "--allow-unauthenticated"}, []string{"--key-file", "--allow-unauthenticated", "not both"}},
		{"argument", []string{"now"}, []string{"no arguments", "now"}},
		{"unknown flag", []string{"--port", "5201"}, []string{"unknown flag", "--port", "serve --help"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := freePort(t)
			args := append([]string{"serve"}, tc.args...)
			if !strings.HasPrefix(tc.name, "listen") {
				args = append(args, "--listen", addr)
			}
			var errb syncBuffer
			err, took := runBounded(t, args, &errb)
			t.Logf("refused in %v", took)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("run %q: %v; want a usage error (exit status 2)", args, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run %q: %q does not mention %q", args, err, w)
				}
			}
			if strings.Contains(errb.String(), "listening") {
				t.Errorf("run %q said it listened:\n%s", args, errb.String())
			}
			ln, err := net.Listen("tcp", addr) // nothing was left listening there
			if err != nil {
				t.Fatalf("after run %q, %s is taken: %v", args, addr, err)
			}
			ln.Close()
		})
	}
}

// refuseBound bounds how long serve may take to refuse its flags: it waits for
// nothing (it reads at most a key file), so only a serve that went on to listen and
// serve comes near it. Generous: a loaded CI machine must never reach it.
const refuseBound = 30 * time.Second

// runBounded runs 'tcpvsudp ARGS' and returns what run returned and how long it
// took; a run still going after refuseBound is cancelled, waited for (20 s at most,
// as serveProc.stop does), and fails the test.
func runBounded(tb testing.TB, args []string, stderr io.Writer) (error, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(ctx, args, io.Discard, stderr) }()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(refuseBound):
		cancel() // as the first SIGINT does: serve then returns within its grace
		var err error = errors.New("still running 20 s after its context ended")
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
		}
		tb.Fatalf("run %q still running after %v (then: %v); want a refusal before anything listens", args, refuseBound, err)
		return err, 0
	}
}

// TestServeListenFails: an address that cannot be listened on is a plain failure
// (exit status 1) naming the address, and nothing is served.
func TestServeListenFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	err = run(context.Background(), []string{"serve", "--listen", addr}, io.Discard, io.Discard)
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("serve on a taken %s: %v; want a failure (not a usage error) naming the address", addr, err)
	}
	if runtime.GOOS != "windows" && !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("serve on a taken %s: %v; want it to wrap EADDRINUSE", addr, err)
	}
}

// TestListenAddr: --listen's forms.
func TestListenAddr(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: ":5299", want: ":5299"},
		{in: "127.0.0.1:0", want: "127.0.0.1:0"},
		{in: "[::1]:7000", want: "[::1]:7000"},
		{in: "host.example:7000", want: "host.example:7000"},
		{in: "192.0.2.10", want: "192.0.2.10:5299"},
		{in: "::1", want: "[::1]:5299"},
		{in: "[::1]", want: "[::1]:5299"},
		{in: "5299", wantErr: "HOST:PORT"},
		{in: "host.example", wantErr: "HOST:PORT"},
		{in: ":http", wantErr: "0..65535"},
		{in: ":", wantErr: "0..65535"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := listenAddr(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--listen") {
					t.Fatalf("listenAddr(%q) = %q, %v; want an error naming --listen with %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("listenAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestRateFlag: --max-rate's default prints in a form parseRate reads back.
func TestRateFlag(t *testing.T) {
	for _, v := range []uint64{1e9, 2.5e9, 100e6, 8000, 1e12, 12345} {
		s := rateFlag(v)
		got, err := parseRate("--max-rate", s)
		if err != nil || uint64(got) != v {
			t.Errorf("rateFlag(%d) = %q, which parses as %v, %v", v, s, got, err)
		}
	}
	if s := rateFlag(remote.DefaultLimits().MaxRateBps); s != "1G" {
		t.Errorf("the default --max-rate prints as %q, want 1G", s)
	}
}

// quickServeRequest is a short paced countTest.
func quickServeRequest(transport string, dir remote.Direction) remote.TestRequest {
	return remote.TestRequest{Experiment: countExp, Transport: transport, Size: 1000,
		Duration: 300 * time.Millisecond, RateBps: 20e6, Streams: 2, Direction: dir}
}

// checkComplete fails unless res, a countTest, is complete and each direction it ran
// carried its known answer: countBytes sent, and as many received.
func checkComplete(tb testing.TB, res remote.TestResults, err error) {
	tb.Helper()
	req := res.Request
	if err != nil || !res.Complete {
		tb.Fatalf("%s %s: %v, complete %v: %+v", req.Transport, req.Direction, err, res.Complete, res)
	}
	var c, s countCounters
	if err := json.Unmarshal(res.Client.Counters, &c); err != nil {
		tb.Fatalf("client counters %s: %v", res.Client.Counters, err)
	}
	if err := json.Unmarshal(res.Server.Counters, &s); err != nil {
		tb.Fatalf("server counters %s: %v", res.Server.Counters, err)
	}
	want := countBytes(req)
	for _, way := range []struct {
		name             string
		runs             bool
		sender, receiver countCounters
	}{
		{"client to server", req.Direction.ClientSends(), c, s},
		{"server to client", req.Direction.ServerSends(), s, c},
	} {
		if !way.runs {
			continue
		}
		if way.sender.SentBytes != want || way.receiver.RecvBytes != want {
			tb.Errorf("%s %s, %s: sender sent %d bytes, receiver got %d; want %d both", req.Transport, req.Direction, way.name,
				way.sender.SentBytes, way.receiver.RecvBytes, want)
		}
	}
	tb.Logf("%s %s: client sent %d bytes, received %d; server sent %d, received %d", req.Transport, req.Direction,
		c.SentBytes, c.RecvBytes, s.SentBytes, s.RecvBytes)
}

// openFDCount counts this process's descriptors, or -1 where /proc is missing.
func openFDCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestServeInProcess runs 'tcpvsudp serve' with a key and --data-ports through the
// cobra command: a client with the key completes a TCP and a UDP test on ports of
// the range, a test above a limit is refused naming it, a client with another key is
// refused, each step is logged, and cancelling the context (as the first SIGINT
// does) stops it gracefully with nothing left open.
func TestServeInProcess(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("key file modes are Unix permission bits")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the poller's descriptors exist from here on
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	fds := openFDCount()

	key := writeKey(t, testServeKey+"\n", 0o600)
	dataPorts := freePortRange(t, 8)
	useCountRunner(t)
	sp := startServe(t, "--listen", "127.0.0.1:0", "--key-file", key, "--max-duration", "2s", "--data-ports", dataPorts.String())
	if !strings.Contains(sp.logs.String(), "authentication on") {
		t.Errorf("the start lines do not say authentication is on:\n%s", sp.logs)
	}
	if want := "each test opens TCP or UDP data ports in " + dataPorts.String() + " (--data-ports)"; !strings.Contains(sp.logs.String(), want) {
		t.Errorf("the listening line does not say %q:\n%s", want, sp.logs)
	}
	ctx := t.Context()
	c, err := dialCount(ctx, sp.addr, []byte(testServeKey))
	if err != nil {
		t.Fatalf("Dial with the key: %v\n%s", err, sp.logs)
	}
	if lim := c.Limits(); lim.MaxDurationMS != 2000 || lim.MaxSessions != 4 {
		t.Errorf("the server announced %+v; want max_duration_ms 2000 (--max-duration 2s), max_sessions 4 (the default)", lim)
	}
	res, err := c.Run(ctx, quickServeRequest("tcp", remote.Forward))
	checkComplete(t, res, err)
	res, err = c.Run(ctx, quickServeRequest("udp", remote.Reverse))
	checkComplete(t, res, err)

	long := quickServeRequest("tcp", remote.Forward)
	long.Duration = time.Minute
	_, err = c.Run(ctx, long)
	var re *remote.RefusedError
	if !errors.As(err, &re) || re.Limit != "max-duration" || !strings.Contains(err.Error(), "--max-duration") {
		t.Errorf("a 1-minute test against --max-duration 2s: %v; want a refusal naming --max-duration", err)
	}
	res, err = c.Run(ctx, quickServeRequest("udp", remote.Bidir)) // the session goes on
	checkComplete(t, res, err)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	if _, err := dialCount(ctx, sp.addr, []byte("another-key-0123456789abcdef")); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Errorf("Dial with another key: %v; want a refusal saying the key is wrong", err)
	}
	if _, err := dialCount(ctx, sp.addr, nil); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("Dial without a key: %v; want an error asking for --key-file", err)
	}

	peer := regexp.QuoteMeta(c.LocalAddr().String())
	ports := `data ports? (\d+)`
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* remote: ` + peer + `: session started: authenticated by key$`),
		regexp.MustCompile(`remote: ` + peer + `: test 1 started: stream tcp forward, 2 streams of 1000-byte messages, 300ms at 20 Mbit/s; ` + ports),
		regexp.MustCompile(`remote: ` + peer + `: test 1 ended after \S+: complete; received \d+ bytes \(\S+ Mbit/s\)`),
		regexp.MustCompile(`remote: ` + peer + `: test 2 started: stream udp reverse, 2 streams of 1000-byte messages, 300ms at 20 Mbit/s; data ports \d+, \d+`),
		regexp.MustCompile(`remote: ` + peer + `: test 2 ended after \S+: complete; sent \d+ bytes`),
		regexp.MustCompile(`(?m)remote: ` + peer + `: test 3 refused by --max-duration: duration 60s exceeds the server's --max-duration 2s$`),
		regexp.MustCompile(`remote: ` + peer + `: test 4 ended after \S+: complete; sent \d+ bytes, received \d+ bytes`),
		regexp.MustCompile(`(?m)remote: ` + peer + `: session ended after \S+: the client said bye \("client done"\); 3 tests run, 1 refused$`),
		regexp.MustCompile(`(?m)remote: 127\.0\.0\.1:\d+: refused: authentication failed: wrong key$`),
	} {
		waitLog(t, sp.logs, want, 10*time.Second)
	}
	for _, line := range strings.Split(sp.logs.String(), "\n") {
		if strings.Contains(line, "<nil>") || strings.Contains(line, "refused: refused") {
			t.Errorf("unclean log line: %s", line)
		}
	}
	// Every data port of the tests was in --data-ports.
	for _, m := range regexp.MustCompile(`data ports? ([\d, ]+)`).FindAllStringSubmatch(sp.logs.String(), -1) {
		for _, p := range strings.Split(m[1], ", ") {
			if n, err := strconv.Atoi(p); err != nil || n < int(dataPorts.Lo) || n > int(dataPorts.Hi) {
				t.Errorf("data port %q logged, outside --data-ports %s", p, dataPorts)
			}
		}
	}

	start := time.Now()
	if err := sp.stop(); err != nil {
		t.Fatalf("serve after its context ended: %v; want nil (exit status 0)\n%s", err, sp.logs)
	}
	t.Logf("serve stopped %v after its context ended", time.Since(start))
	waitLog(t, sp.logs, regexp.MustCompile(`serve: stopped: 1 sessions, 3 tests run, 1 tests refused; .* 1 wrong key or replay`), 0)
	if _, err := net.DialTimeout("tcp", sp.addr, time.Second); err == nil {
		t.Errorf("%s still accepts connections after serve returned", sp.addr)
	}
	if fds >= 0 {
		waitfor.Cond(10*time.Second, func() bool { return openFDCount() <= fds })
		if n := openFDCount(); n > fds {
			t.Errorf("%d descriptors open after serve returned, %d before it started", n, fds)
		}
	}
}

// freePortRange returns n consecutive loopback ports free now for TCP and UDP.
func freePortRange(tb testing.TB, n int) remote.PortRange {
	lo, hi := freeports.Range(tb, n)
	return remote.PortRange{Lo: lo, Hi: hi}
}

// TestServeFlood: a flood of connections that fail their handshake leaves a few
// dozen log lines, not one per connection, and the stop line counts them all.
func TestServeFlood(t *testing.T) {
	const flood = 300
	useCountRunner(t)
	sp := startServe(t, "--listen", "127.0.0.1:0", "--pre-auth-conns", "4")
	for range flood {
		c, err := net.Dial("tcp", sp.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		c.Close()
	}
	// Once the flood is through, a client is served and logged as usual.
	c, err := dialAfterFlood(t, sp.addr)
	if err != nil {
		t.Fatalf("Dial after the flood: %v", err)
	}
	res, err := c.Run(t.Context(), quickServeRequest("tcp", remote.Forward))
	checkComplete(t, res, err)
	c.Close()
	// A session whose start was logged has its end logged too.
	waitLog(t, sp.logs, regexp.MustCompile(`session ended after \S+: the client said bye \("client done"\); 1 test run, 0 refused`), 10*time.Second)
	if err := sp.stop(); err != nil {
		t.Fatal(err)
	}
	logs := sp.logs.String()
	n := len(regexp.MustCompile(`(?m)^\S+ remote: `).FindAllString(logs, -1))
	t.Logf("%d connections, %d remote lines", flood, n)
	if n > 50 {
		t.Errorf("%d connections made %d log lines; want a few dozen at most:\n%s", flood, n, logs)
	}
	for _, re := range []string{
		`session started: unauthenticated \(no key; a loopback peer\) \(\d+ connection lines not logged before this one`,
		`test 1 ended after \S+: complete`,
		`serve: stopped: 1 sessions, 1 tests run, 0 tests refused; .*; \d+ log lines left out \(rate limit\)`,
	} {
		waitLog(t, sp.logs, regexp.MustCompile(re), 0)
	}
}

// floodWait bounds the wait for a flood of connections to be through the server.
const floodWait = 30 * time.Second

// logRefill is how long bench/remote's connection-line limiter (logEvery) takes to
// earn back one line after a burst used them all up.
const logRefill = time.Second

// dialAfterFlood dials addr once every connection made to it before has been handled
// and the server's log budget holds a line again. Handled: the kernel's socket table
// (/proc/net/tcp) shows none of them still open at the server's end, accepted or in
// the accept queue; the server logs (or counts as left out) each connection's line
// before it closes it. Then it waits logRefill: the limiter's clock, which the test
// cannot see. Without the socket table (not Linux) it skips the test.
func dialAfterFlood(tb testing.TB, addr string) (*remote.Client, error) {
	tb.Helper()
	start := time.Now()
	waitServerConnsClosed(tb, addr, floodWait)
	tb.Logf("the flood was through %v after its last connection closed", time.Since(start))
	time.Sleep(logRefill) // the experiment's clock, not an event: see above
	return dialCount(tb.Context(), addr, nil)
}

// waitServerConnsClosed polls the kernel's TCP socket tables every 10 ms until no
// socket bound to addr's port is established, half-closed by its peer (CLOSE_WAIT)
// or half-open (SYN_RECV): the listener on addr has accepted and closed every
// connection made to it. It fails the test after timeout, and skips it where there
// are no tables to read (not Linux).
func waitServerConnsClosed(tb testing.TB, addr string, timeout time.Duration) {
	tb.Helper()
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		tb.Fatal(err)
	}
	if _, ok := openServerConns(uint16(port)); !ok {
		tb.Skip("serve: no /proc/net/tcp to see a flood of connections through (not Linux)")
	}
	open := 0
	if !waitfor.Cond(timeout, func() bool { open, _ = openServerConns(uint16(port)); return open == 0 }) {
		tb.Fatalf("%d connections to %s still open at the server's end after %v", open, addr, timeout)
	}
}

// openServerConns counts the sockets of /proc/net/tcp and tcp6 bound to local port
// port in state ESTABLISHED (01), SYN_RECV (03) or CLOSE_WAIT (08); ok is false when
// neither table can be read.
func openServerConns(port uint16) (n int, ok bool) {
	suffix := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		ok = true
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 4 || !strings.HasSuffix(f[1], suffix) {
				continue // the header; a socket on another port
			}
			switch f[3] {
			case "01", "03", "08":
				n++
			}
		}
	}
	return n, ok
}

// TestServeQuiet: --quiet keeps the start and stop lines and drops the rest.
func TestServeQuiet(t *testing.T) {
	useCountRunner(t)
	sp := startServe(t, "--listen", "127.0.0.1:0", "--quiet")
	if !strings.Contains(sp.logs.String(), "only loopback peers are accepted") {
		t.Errorf("the start lines do not say only loopback peers are accepted:\n%s", sp.logs)
	}
	c, err := dialCount(t.Context(), sp.addr, nil)
	if err != nil {
		t.Fatalf("Dial from loopback without a key: %v", err)
	}
	res, err := c.Run(t.Context(), quickServeRequest("tcp", remote.Forward))
	checkComplete(t, res, err)
	c.Close()
	if err := sp.stop(); err != nil {
		t.Fatal(err)
	}
	logs := sp.logs.String()
	if strings.Contains(logs, "remote:") || !strings.Contains(logs, "serve: stopped: 1 sessions, 1 tests run") {
		t.Errorf("--quiet logged per-connection lines, or no stop line:\n%s", logs)
	}
}

// stuckRunner is a Runner that ignores its context until released: the worst case a
// shutdown must bound.
type stuckRunner struct {
	started chan struct{} // closed by the first Serve
	release chan struct{} // closed by the test
	once    *sync.Once
}

func newStuckRunner() stuckRunner {
	return stuckRunner{started: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
}

func (stuckRunner) Check(remote.TestRequest) error { return nil }

func (r stuckRunner) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	r.once.Do(func() { close(r.started) })
	<-r.release
	return remote.Results{Complete: false, Error: "released"}, errors.New("released")
}

// serveUntilHarness runs serveUntil over srv on a loopback listener, with a signal
// channel the test writes to.
type serveUntilHarness struct {
	addr   string
	sigs   chan os.Signal
	cancel context.CancelFunc
	logs   *syncBuffer
	done   chan error // serveUntil's result
}

func startServeUntil(tb testing.TB, srv *remote.Server, grace time.Duration) *serveUntilHarness {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &serveUntilHarness{addr: ln.Addr().String(), sigs: make(chan os.Signal, 2), cancel: cancel, logs: &syncBuffer{}, done: make(chan error, 1)}
	go func() { h.done <- serveUntil(ctx, srv, ln, h.sigs, grace, &serveLog{w: h.logs}) }()
	tb.Cleanup(cancel)
	return h
}

// wait returns serveUntil's result, failing the test if it takes over timeout.
func (h *serveUntilHarness) wait(tb testing.TB, timeout time.Duration) (error, time.Duration) {
	tb.Helper()
	start := time.Now()
	select {
	case err := <-h.done:
		return err, time.Since(start)
	case <-time.After(timeout):
		tb.Fatalf("serveUntil did not return within %v\n%s", timeout, h.logs)
		return nil, 0
	}
}

// runInBackground starts a long test on a session with addr; the result arrives on
// the channel, and the cleanup closes the session.
func runInBackground(tb testing.TB, addr string, req remote.TestRequest) <-chan error {
	tb.Helper()
	c, err := dialCount(tb.Context(), addr, []byte(testServeKey))
	if err != nil {
		tb.Fatal(err)
	}
	out := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := c.Run(context.Background(), req)
		out <- err
	}()
	tb.Cleanup(func() { c.Close(); wg.Wait() })
	return out
}

// TestServeUntilSignals: the shutdown path, driven through the signal channel.
func TestServeUntilSignals(t *testing.T) {
	long := remote.TestRequest{Experiment: countExp, Transport: "udp", Size: 1000, Duration: 30 * time.Second,
		RateBps: 2e6, Streams: 1, Direction: remote.Reverse}

	t.Run("one signal ends a running test and returns nil", func(t *testing.T) {
		srv := &remote.Server{Key: []byte(testServeKey), Runner: countServeRunner()}
		h := startServeUntil(t, srv, 10*time.Second)
		runErr := runInBackground(t, h.addr, long)
		waitfor.True(t, 10*time.Second, "a test running once asked for", func() bool { return srv.Stats().TestsRun > 0 })
		h.sigs <- syscall.SIGTERM
		err, took := h.wait(t, 15*time.Second)
		if err != nil {
			t.Fatalf("serveUntil after SIGTERM: %v; want nil (exit status 0)", err)
		}
		t.Logf("graceful shutdown with a test running took %v", took)
		if err := <-runErr; err == nil || !strings.Contains(err.Error(), "shutting down") {
			t.Errorf("the running test: %v; want an error saying the server is shutting down", err)
		}
		waitLog(t, h.logs, regexp.MustCompile(`serve: stopping \(terminated\)`), 0)
		waitLog(t, h.logs, regexp.MustCompile(`serve: stopped: 1 sessions, 1 tests run`), 0)
	})

	t.Run("the signal that also cancelled the context is not a second one", func(t *testing.T) {
		srv := &remote.Server{Key: []byte(testServeKey), Runner: countServeRunner()}
		h := startServeUntil(t, srv, 10*time.Second)
		c, err := dialCount(t.Context(), h.addr, []byte(testServeKey)) // an idle session
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h.cancel() // as signal.NotifyContext does on SIGINT...
		waitLog(t, h.logs, regexp.MustCompile(`serve: stopping \(context canceled\)`), 10*time.Second)
		h.sigs <- os.Interrupt // ...while the same SIGINT reaches serve's own channel
		if err, _ := h.wait(t, 15*time.Second); err != nil {
			t.Fatalf("serveUntil after a SIGINT seen twice: %v; want nil", err)
		}
	})

	t.Run("a second signal returns at once", func(t *testing.T) {
		// A grace far longer than the bound on the wait below: "at once" is well
		// before the grace ends, however loaded the machine.
		const grace, atOnce = 2 * time.Minute, 30 * time.Second
		r := newStuckRunner()
		srv := &remote.Server{Key: []byte(testServeKey), Runner: r}
		h := startServeUntil(t, srv, grace)
		defer func() { close(r.release); srv.Close() }()
		req := long
		req.Duration = 2 * time.Second
		runInBackground(t, h.addr, req)
		<-r.started
		h.sigs <- syscall.SIGINT
		waitLog(t, h.logs, regexp.MustCompile(`serve: stopping \(interrupt\)`), 10*time.Second)
		// The experiment: for a while after the first signal, with the runner stuck,
		// serveUntil must not return. Any length shows it; a failure is never a flake.
		time.Sleep(100 * time.Millisecond)
		select {
		case err := <-h.done:
			t.Fatalf("serveUntil returned %v with a runner still stuck, before any second signal", err)
		default:
		}
		h.sigs <- syscall.SIGTERM
		err, took := h.wait(t, atOnce)
		if !errors.Is(err, errSecondSignal) {
			t.Fatalf("serveUntil after a second signal: %v; want errSecondSignal (exit status 1)", err)
		}
		t.Logf("returned %v after the second signal", took)
		waitLog(t, h.logs, regexp.MustCompile(`serve: terminated again: stopping at once`), 0)
	})

	t.Run("a runner that never returns bounds the wait", func(t *testing.T) {
		r := newStuckRunner()
		srv := &remote.Server{Key: []byte(testServeKey), Runner: r}
		grace := 200 * time.Millisecond
		h := startServeUntil(t, srv, grace)
		defer func() { close(r.release); srv.Close() }()
		req := long
		req.Duration = 2 * time.Second
		runInBackground(t, h.addr, req)
		<-r.started
		sent := time.Now()
		h.sigs <- syscall.SIGTERM
		err, _ := h.wait(t, grace+30*time.Second) // the bound: a wait that is not bounded fails here
		took := time.Since(sent)
		var stuck *remote.StuckError
		if !errors.As(err, &stuck) || !strings.HasPrefix(err.Error(), "serve: remote: shutdown: context deadline exceeded; abandoned test 1 (stream udp reverse") {
			t.Fatalf("serveUntil with a stuck runner: %v; want an error naming the abandoned test", err)
		}
		t.Logf("serveUntil returned %v after the signal, with a grace of %v", took, grace)
		if took < grace {
			t.Errorf("serveUntil returned %v after the signal; want it to wait out the grace, %v", took, grace)
		}
		waitLog(t, h.logs, regexp.MustCompile(`serve: stopped: 1 sessions, 1 tests run`), 0)
	})
}

// TestServeRefusesPlain: 'tcpvsudp serve' runs bench's experiments only: a plain
// client's "stream" is refused, naming it and what the server runs, and the session
// goes on.
func TestServeRefusesPlain(t *testing.T) {
	sp := startServe(t, "--listen", "127.0.0.1:0")
	c, err := dialCount(t.Context(), sp.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		_, err := c.Run(t.Context(), quickServeRequest("tcp", remote.Forward))
		var re *remote.RefusedError
		if !errors.As(err, &re) || re.ID == 0 || !strings.Contains(re.Reason, `experiment "stream": this server runs bench experiments, named bench.<name>`) {
			t.Fatalf("a plain stream test: %v; want it refused saying the server runs bench experiments", err)
		}
		if c.Broken() != nil {
			t.Fatalf("the session broke after the refusal: %v", c.Broken())
		}
	}
}
