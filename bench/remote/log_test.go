package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/waitfor"
)

// logLines collects a server's log lines.
type logLines struct {
	mu    sync.Mutex // guards lines
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *logLines) String() string { return strings.Join(l.all(), "\n") }

// wait polls until a line matches re and returns it.
func (l *logLines) wait(tb testing.TB, re string) string {
	tb.Helper()
	rx := regexp.MustCompile(re)
	var found string
	waitfor.True(tb, 10*time.Second, fmt.Sprintf("a log line matching %q in:\n%s", re, l), func() bool {
		for _, line := range l.all() {
			if rx.MatchString(line) {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// TestLineLimiter: a burst of logBurst, then one line per logEvery; the first line
// let through after a gap says how many were refused.
func TestLineLimiter(t *testing.T) {
	var l lineLimiter
	t0 := time.Unix(1000, 0)
	for i := range logBurst {
		if ok, dropped := l.allow(t0); !ok || dropped != 0 {
			t.Fatalf("line %d of the burst: allow = %v, %d; want true, 0", i, ok, dropped)
		}
	}
	for i := range 5 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatalf("line %d past the burst allowed", logBurst+i)
		}
	}
	if ok, dropped := l.allow(t0.Add(logEvery)); !ok || dropped != 5 {
		t.Errorf("a second later: allow = %v, %d; want true, 5", ok, dropped)
	}
	if ok, _ := l.allow(t0.Add(logEvery + time.Millisecond)); ok {
		t.Errorf("a second line in the same second allowed")
	}
	if ok, dropped := l.allow(t0.Add(time.Hour)); !ok || dropped != 1 {
		t.Errorf("an hour later: allow = %v, %d; want true, 1", ok, dropped)
	}
	for i := range logBurst - 1 { // the bucket refilled to logBurst, no more
		if ok, _ := l.allow(t0.Add(time.Hour)); !ok {
			t.Fatalf("line %d of the refilled burst refused", i+2)
		}
	}
	if ok, _ := l.allow(t0.Add(time.Hour)); ok {
		t.Errorf("line %d after an hour allowed: the bucket holds more than %d", logBurst+1, logBurst)
	}
}

// TestServerLog: one line per session, test and refusal, each naming the peer, with
// clean reasons: no "<nil>", no "refused: refused:".
func TestServerLog(t *testing.T) {
	logs := &logLines{}
	s := &Server{Key: testKey, Limits: Limits{MaxDuration: 2 * time.Second}, Logf: logs.logf}
	addr := startServer(t, s)
	c, err := (&Dialer{Key: testKey, Software: "log test 1.0", Driver: StreamTest{}}).Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	peer := regexp.QuoteMeta(c.cc.Conn().LocalAddr().String())
	runQuick(t, c, "tcp", Forward)
	runQuick(t, c, "udp", Reverse)
	long := quickRequest("tcp", Forward)
	long.Duration = 3 * time.Second
	if _, err := c.Run(t.Context(), long); err == nil {
		t.Fatal("a 3 s test against --max-duration 2s ran")
	}
	other := quickRequest("tcp", Forward)
	other.Experiment = "pingpong"
	if _, err := c.Run(t.Context(), other); err == nil {
		t.Fatal("pingpong ran")
	}
	c.Close()
	if _, err := dialStream(t.Context(), addr, []byte("another-key-0123456789")); err == nil {
		t.Fatal("Dial with another key succeeded")
	}
	for _, re := range []string{
		`^remote: ` + peer + `: session started: authenticated by key; client "log test 1\.0"$`,
		`^remote: ` + peer + `: test 1 started: stream tcp forward, 1 stream of 1000-byte messages, 300ms at 20 Mbit/s; data port \d+$`,
		`^remote: ` + peer + `: test 1 ended after \S+: complete; received \d+ bytes \([\d.]+ Mbit/s\)$`,
		`^remote: ` + peer + `: test 2 started: stream udp reverse, 1 stream of 1000-byte messages, 300ms at 20 Mbit/s; data port \d+$`,
		`^remote: ` + peer + `: test 2 ended after \S+: complete; sent \d+ bytes$`,
		`^remote: ` + peer + `: test 3 refused by --max-duration: duration 3s exceeds the server's --max-duration 2s$`,
		`^remote: ` + peer + `: test 4 refused: experiment "pingpong": this server runs only "stream"$`,
		`^remote: ` + peer + `: session ended after \S+: the client said bye \("client done"\); 2 tests run, 2 refused$`,
		`^remote: 127\.0\.0\.1:\d+: refused: authentication failed: wrong key$`,
	} {
		logs.wait(t, re)
	}
	for _, line := range logs.all() {
		if strings.Contains(line, "<nil>") || strings.Contains(line, "refused: refused") || strings.Contains(line, "%!") {
			t.Errorf("unclean log line: %s", line)
		}
	}
}

// TestServerLogSessionEnds: each way a session or a handshake ends is logged with its
// reason. The idle session's length is a timer's: at least its timeout (exact), at
// most a bound a loaded machine holds. The handshakes that succeed must beat a 3 s
// timer, which they do under load.
func TestServerLogSessionEnds(t *testing.T) {
	logs := &logLines{}
	s := &Server{Limits: Limits{IdleTimeout: MinIdleTimeout, HandshakeTimeout: 3 * time.Second}, Logf: logs.logf}
	addr := startServer(t, s)

	idle := dialRaw(t, addr)
	idle.handshake(nil)
	gone := dialRaw(t, addr)
	gone.handshake(nil)
	gone.c.Close()
	bad := dialRaw(t, addr)
	bad.handshake(nil)
	bad.send(&Start{ID: 1})
	silent := dialRaw(t, addr) // never says hello
	closed := dialRaw(t, addr)
	closed.c.Close()

	for _, r := range []struct {
		r  *raw
		re string
	}{
		{idle, `session started: unauthenticated \(no key; a loopback peer\)`},
		{idle, `session ended after \S+: idle timeout: no test for 1s \(--idle-timeout\); 0 tests run, 0 refused$`},
		{gone, `session ended after \S+: the client closed the connection without a bye; 0 tests run, 0 refused$`},
		{bad, `session ended after \S+: protocol error: remote: unexpected control message: start between tests; 0 tests run, 0 refused$`},
		{silent, `handshake failed: not done within --handshake-timeout 3s$`},
		{closed, `handshake failed: the peer closed the connection$`},
	} {
		logs.wait(t, `^remote: `+regexp.QuoteMeta(r.r.c.LocalAddr().String())+`: `+r.re)
	}
	line := logs.wait(t, `^remote: `+regexp.QuoteMeta(idle.c.LocalAddr().String())+`: session ended after`)
	m := regexp.MustCompile(`session ended after (\S+): `).FindStringSubmatch(line)
	took, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("idle session: %q: %v", line, err)
	}
	t.Logf("the idle session lasted %v (--idle-timeout %v)", took, MinIdleTimeout)
	if took < MinIdleTimeout || took > MinIdleTimeout+10*time.Second {
		t.Errorf("idle session: %q: lasted %v; want %v..%v", line, took, MinIdleTimeout, MinIdleTimeout+10*time.Second)
	}
}

// TestLogFlood: a flood of connections that fail their handshake, or find every
// pre-auth slot taken, cannot flood the log: about logBurst lines, the rest counted;
// the next line logged says how many were left out.
func TestLogFlood(t *testing.T) {
	const flood = 300
	logs := &logLines{}
	s := &Server{Key: testKey, Limits: Limits{PreAuthConns: 4}, Logf: logs.logf}
	addr := startServer(t, s)
	start := time.Now()
	for range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		c.Close()
	}
	// Each connection is counted, then its line logged or suppressed: wait for both.
	waitfor.True(t, 20*time.Second, "the server handled and logged the flood", func() bool {
		st := s.Stats()
		return st.HandshakeFailed+st.PreAuthRejected == flood && uint64(len(logs.all()))+st.LogSuppressed >= flood
	})
	took := time.Since(start)
	st := s.Stats()
	n := len(logs.all())
	// The bucket lets logBurst lines through, then one per logEvery: however long a
	// loaded machine takes over the flood, no more than that.
	most := logBurst + int(took/logEvery) + 1
	t.Logf("%d connections in %v: %d handshakes failed, %d refused at accept; %d lines logged (at most %d), %d suppressed",
		flood, took, st.HandshakeFailed, st.PreAuthRejected, n, most, st.LogSuppressed)
	if n > most || uint64(n)+st.LogSuppressed != flood {
		t.Errorf("%d lines logged and %d suppressed for %d connections in %v; want at most %d logged, every other one counted", n, st.LogSuppressed, flood, took, most)
	}
	time.Sleep(logEvery) // the experiment: the bucket earns a line back, for the next one to say what was left out
	c := dial(t, addr, testKey)
	line := logs.wait(t, `session started: authenticated by key`)
	if !regexp.MustCompile(`\(\d+ connection lines not logged before this one: more than 32 at once\)$`).MatchString(line) {
		t.Errorf("the first line after the flood does not say how many were left out: %s", line)
	}
	runQuick(t, c, "tcp", Forward) // test lines have their own bucket
	logs.wait(t, `test 1 ended after \S+: complete`)
	c.Close() // the end of a session whose start was logged is logged, whatever the bucket holds
	logs.wait(t, `session ended after \S+: the client said bye`)
}

// peerRecorder is StreamTest, recording the Data.Peer each side saw.
type peerRecorder struct {
	StreamTest
	mu    sync.Mutex // guards peers
	peers []string
	data  []string // the data path's remote addresses, as the client saw them
}

func (p *peerRecorder) record(d *Data) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = append(p.peers, d.Peer.String())
	for _, c := range d.Conns {
		p.data = append(p.data, c.RemoteAddr().String())
	}
	for _, u := range d.Paths {
		p.data = append(p.data, u.Peer().String())
	}
}

func (p *peerRecorder) Serve(ctx context.Context, d *Data) (Results, error) {
	p.record(d)
	return p.StreamTest.Serve(ctx, d)
}

func (p *peerRecorder) Drive(ctx context.Context, d *Data) (Results, error) {
	p.record(d)
	return p.StreamTest.Drive(ctx, d)
}

// TestDataPeer: a Runner's Data names the client's control address, a Driver's the
// server's.
func TestDataPeer(t *testing.T) {
	runner, driver := &peerRecorder{}, &peerRecorder{}
	s := &Server{Key: testKey, Runner: runner}
	addr := startServer(t, s)
	c, err := (&Dialer{Key: testKey, Driver: driver}).Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runQuick(t, c, "tcp", Forward)
	runQuick(t, c, "udp", Reverse)
	client := c.cc.Conn().LocalAddr().String()
	for i := range 2 {
		if runner.peers[i] != client {
			t.Errorf("test %d: the Runner's Data.Peer = %s, want the client's control address %s", i+1, runner.peers[i], client)
		}
		if driver.peers[i] != addr {
			t.Errorf("test %d: the Driver's Data.Peer = %s, want the server's control address %s", i+1, driver.peers[i], addr)
		}
	}
}

// blockingRunner is a Runner that ignores its context: Serve returns only once the
// test closes release.
type blockingRunner struct {
	started chan struct{} // closed by Serve
	release chan struct{} // closed by the test
	done    chan struct{} // closed when Serve returns
}

func newBlockingRunner() *blockingRunner {
	return &blockingRunner{started: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
}

func (*blockingRunner) Check(TestRequest) error { return nil }

func (r *blockingRunner) Serve(ctx context.Context, d *Data) (Results, error) {
	close(r.started)
	<-r.release
	close(r.done)
	return Results{}, errors.New("released")
}

// TestShutdownStuckRunner: a Runner that ignores its context cannot hold Shutdown
// or Close past their bound (Shutdown: its context's 300 ms, then abandonWait;
// Close: abandonWait), nor return before it (exact); the error names the stuck test;
// once the Runner returns nothing is left behind (the package's leak check). The
// test asks for 30 s, so a stop that waited for it would show past the 10 s slack a
// loaded machine gets.
func TestShutdownStuckRunner(t *testing.T) {
	for _, op := range []string{"shutdown", "close"} {
		t.Run(op, func(t *testing.T) {
			r := newBlockingRunner()
			logs := &logLines{}
			s := &Server{Key: testKey, Runner: r, Logf: logs.logf}
			addr := startServer(t, s)
			released := false
			defer func() {
				if !released {
					close(r.release)
				}
			}()
			c := dial(t, addr, testKey)
			ran := make(chan error, 1)
			go func() {
				req := quickRequest("tcp", Forward)
				req.Duration = 30 * time.Second
				_, err := c.Run(context.Background(), req)
				ran <- err
			}()
			select {
			case <-r.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the Runner did not start within 10 s")
			}
			const grace = 300 * time.Millisecond
			start := time.Now()
			var err error
			if op == "shutdown" {
				ctx, cancel := context.WithTimeout(t.Context(), grace)
				defer cancel()
				err = s.Shutdown(ctx)
			} else {
				err = s.Close()
			}
			took := time.Since(start)
			t.Logf("%s returned after %v: %v", op, took, err)
			least := abandonWait // Close: the Runner gets abandonWait once forced
			if op == "shutdown" {
				least += grace // Shutdown forces once its context ends
			}
			if most := least + 10*time.Second; took < least || took > most {
				t.Errorf("%s took %v with a stuck Runner; want %v..%v", op, took, least, most)
			}
			var se *StuckError
			if !errors.As(err, &se) || se.Op != op || len(se.Tests) != 1 {
				t.Fatalf("%s: %v; want a *StuckError of %s naming one test", op, err, op)
			}
			want := fmt.Sprintf("remote: %s: ", op)
			if op == "shutdown" {
				want += "context deadline exceeded; "
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Shutdown's error %v does not wrap its context's", err)
				}
			}
			want += "abandoned test 1 (stream tcp forward, 1 stream of 1000-byte messages, 30s at 20 Mbit/s; client " + c.cc.Conn().LocalAddr().String() + ", running "
			if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "): its Runner ignored the end of its context") {
				t.Errorf("%s error:\n got %s\nwant %s...): its Runner ignored the end of its context", op, msg, want)
			}
			if st := s.Stats(); st.Abandoned != 1 || st.Conns != 0 {
				t.Errorf("stats %+v: want Abandoned 1, no connection open", st)
			}
			select {
			case err := <-ran:
				if err == nil {
					t.Error("the client's Run succeeded against a server that stopped")
				}
			case <-time.After(15 * time.Second):
				t.Error("the client's Run still running 15 s after the server stopped")
			}
			logs.wait(t, `test 1 ended after \S+: incomplete: remote: server shutting down: remote: the server's Runner did not return 200ms after the server was forced to stop: abandoned$`)

			close(r.release)
			released = true
			<-r.done
			waitfor.True(t, 10*time.Second, "the released Runner is no longer named", func() bool { return s.Close() == nil })
		})
	}
}

// TestDescribeRequestSockets: a test's log line names the socket options it asked
// for, and says nothing of them when it asked for none.
func TestDescribeRequestSockets(t *testing.T) {
	req := TestRequest{Experiment: "bench.stream", Transport: "udp", Direction: Forward, Streams: 1, Size: 1024, Duration: time.Second}
	if got := describeRequest(req); strings.Contains(got, "sockets") {
		t.Errorf("describeRequest without socket options = %q; want no sockets", got)
	}
	req.Sockets = SocketOptions{RecvBuffer: 1 << 20, NoGSO: true, Batch: 1}
	if got, want := describeRequest(req), ", sockets: rcvbuf 1048576 no-gso batch 1"; !strings.HasSuffix(got, want) {
		t.Errorf("describeRequest = %q; want it to end %q", got, want)
	}
}
