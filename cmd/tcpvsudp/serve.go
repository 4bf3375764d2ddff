package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// defaultServePort is the TCP port 'tcpvsudp serve' listens on and 'run --server
// HOST' dials when no port is given.
const defaultServePort = 5299

// serveRunner is the Runner every test of 'tcpvsudp serve' runs: the one place it is
// chosen. Today it is remote's built-in stream test; the runner of the bench
// experiments replaces it once 'run --server' drives them.
var serveRunner = func() remote.Runner { return remote.StreamTest{} }

// Shutdown timing of 'tcpvsudp serve'.
const (
	serveGrace     = 10 * time.Second // after SIGINT/SIGTERM, running tests get this long to end
	serveForceWait = 2 * time.Second  // then, once everything was closed, this long to unwind
)

// serveFlags are the flags of 'tcpvsudp serve', as typed.
type serveFlags struct {
	listen, keyFile, maxRate     string
	allowUnauthenticated, quiet  bool
	maxSessions, maxStreams      int
	maxSize, preAuthConns        int
	maxDuration, idleTimeout     time.Duration
	handshakeTimeout, maxSession time.Duration
}

var serveLong = `Serve runs the remote end of tcpvsudp, like 'iperf3 -s': it listens for control
connections (TCP) on --listen and runs the tests clients ask for, one after another
in each session, under limits it enforces itself. It is meant to be left running.

The counterpart is 'tcpvsudp run --server HOST[:PORT] --key-file FILE' on the other
host (still in progress); bench/remote's Client speaks the protocol today.

Authentication: with --key-file, a client must prove it holds the same key before it
may ask for anything (HMAC-SHA256 over fresh nonces, both ways; replays refused).
The key authenticates, it does not encrypt: on a hostile path, use a VPN (an SSH
port forward cannot carry the data ports each test opens). Make a key, and copy the file to the client host:
  head -c 32 /dev/urandom | base64 > key; chmod 600 key
The file must be accessible by its owner only and hold at least 16 bytes (surrounding
whitespace ignored). Without a key the server accepts loopback peers only and refuses
others with a message saying why; --allow-unauthenticated accepts anyone who can
reach the port (a trusted network only).

What the server refuses, before any data socket opens, naming the flag:
  - a connection beyond --pre-auth-conns still in its handshake (closed at once),
    and a handshake slower than --handshake-timeout
  - a session beyond --max-sessions
  - a test above --max-streams, --max-duration, --max-rate or --max-size, or one
    that would outlast --max-session-time; the session goes on
  - an experiment the server does not run (today: only "stream")
It ends a session idle for --idle-timeout or older than --max-session-time.

UDP safety: data goes only to the address the client proved through its session (a
per-test token in every datagram, its source address checked); until then the server
never sends an address more bytes than it received from it, and no message can name
another destination. It paces what it sends, never above --max-rate, and stops
sending within 3 s once the client goes away.

Ports: the control port (TCP, --listen), and per test the ephemeral data ports the
server opens on the address the client reached (TCP: one listener; UDP: one socket
per stream), closed when the test ends: a firewall must let both in.

Logs go to stderr with timestamps: the address and authentication at start, then one
line per connection, session end, test start, test end and refusal (--quiet keeps
only the start and stop lines and errors). SIGINT or SIGTERM stops it gracefully: no
new sessions; running tests end, reported incomplete to their clients; after 10 s
whatever is left is closed; then exit status 0. A second signal exits at once, status 1.`

var serveExample = fmt.Sprintf(`  # host A (192.0.2.10): make a key, copy it to host B (mode 600 there too), serve
  head -c 32 /dev/urandom | base64 > key; chmod 600 key
  tcpvsudp serve --key-file key
  # host B: the client side (in progress)
  tcpvsudp run --server 192.0.2.10 --key-file key

  tcpvsudp serve --listen 127.0.0.1:%d       # no key: loopback only
  tcpvsudp serve --key-file key --max-sessions 1 --max-duration 10s --max-rate 100M`, defaultServePort)

// newServeCmd is 'tcpvsudp serve'. Logs go to stderr; it prints nothing on stdout.
func newServeCmd(stderr io.Writer) *cobra.Command {
	sf := &serveFlags{}
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Serve remote tests: the other host's end, safe to leave running",
		Long:    serveLong,
		Example: serveExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("serve: takes no arguments, got %q (see 'tcpvsudp serve --help')", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			return doServe(cmd.Context(), sf, sigs, stderr)
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addServeFlags(cmd.Flags(), sf)
	return cmd
}

func addServeFlags(fs *pflag.FlagSet, sf *serveFlags) {
	d := remote.DefaultLimits()
	fs.StringVar(&sf.listen, "listen", fmt.Sprintf(":%d", defaultServePort), "TCP address of the control port, HOST:PORT; ':PORT' is every address of the host, an IP address alone takes port "+strconv.Itoa(defaultServePort))
	fs.StringVar(&sf.keyFile, "key-file", "", "pre-shared key: a file of at least 16 bytes that only its owner may access; without it, only loopback peers are accepted")
	fs.BoolVar(&sf.allowUnauthenticated, "allow-unauthenticated", false, "without --key-file, accept any peer, not only loopback (a trusted network only)")
	fs.IntVar(&sf.maxSessions, "max-sessions", d.MaxSessions, "authenticated sessions at once, 1..1024; more are refused")
	fs.IntVar(&sf.maxStreams, "max-streams", d.MaxStreams, "streams per test (TCP connections or UDP sockets), 1..1024")
	fs.DurationVar(&sf.maxDuration, "max-duration", d.MaxDuration, "longest test, 10ms..24h")
	fs.StringVar(&sf.maxRate, "max-rate", rateFlag(d.MaxRateBps), "highest rate a test may ask for, bits/s with a unit (500M, 1.5G; at least 8k); the server never sends faster, over all streams of a test")
	fs.IntVar(&sf.maxSize, "max-size", d.MaxSize, "largest message, bytes (UDP is bounded at 65490 anyway)")
	fs.DurationVar(&sf.idleTimeout, "idle-timeout", d.IdleTimeout, "a session with no test for this long is closed")
	fs.IntVar(&sf.preAuthConns, "pre-auth-conns", d.PreAuthConns, "connections still in their handshake at once, 1..65536; more are closed at accept")
	fs.DurationVar(&sf.handshakeTimeout, "handshake-timeout", d.HandshakeTimeout, "longest handshake (hello to auth-ok), and longest data path setup of a test")
	fs.DurationVar(&sf.maxSession, "max-session-time", d.MaxSessionTime, "longest session, tests included")
	fs.BoolVar(&sf.quiet, "quiet", false, "no line per connection, session or test: only the start and stop lines and errors")
	fs.SortFlags = false
}

// rateFlag prints bits/s as --max-rate takes them: 1000000000 is "1G".
func rateFlag(v uint64) string {
	for _, u := range []struct {
		suffix string
		div    uint64
	}{{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
		if v >= u.div && v%u.div == 0 {
			return strconv.FormatUint(v/u.div, 10) + u.suffix
		}
	}
	return strconv.FormatFloat(float64(v)/1e3, 'f', -1, 64) + "k"
}

// serveConfig is what the flags ask for, checked.
type serveConfig struct {
	addr   string // to listen on
	key    []byte // nil: none
	limits remote.Limits
}

// config checks the flags and reads the key; every error is a usage error, and none
// leaves anything open.
func (sf *serveFlags) config() (serveConfig, error) {
	var c serveConfig
	addr, err := listenAddr(sf.listen)
	if err != nil {
		return c, err
	}
	c.addr = addr
	rate, err := parseRate(sf.maxRate)
	if err != nil {
		return c, fmt.Errorf("--max-rate%s", strings.TrimPrefix(err.Error(), "--rate"))
	}
	if rate >= math.MaxUint64 {
		return c, fmt.Errorf("--max-rate: too large for a 64-bit count of bits/s, got %q", sf.maxRate)
	}
	c.limits = remote.Limits{
		MaxSessions: sf.maxSessions, MaxStreams: sf.maxStreams, MaxDuration: sf.maxDuration,
		MaxRateBps: uint64(rate), MaxSize: sf.maxSize, IdleTimeout: sf.idleTimeout,
		PreAuthConns: sf.preAuthConns, HandshakeTimeout: sf.handshakeTimeout, MaxSessionTime: sf.maxSession,
	}
	// Validated as typed, not after WithDefaults: a typed 0 is a mistake, never "the default".
	if err := c.limits.Validate(); err != nil {
		return c, err
	}
	for _, t := range []struct {
		flag string
		v    time.Duration
	}{{"idle-timeout", sf.idleTimeout}, {"handshake-timeout", sf.handshakeTimeout}, {"max-session-time", sf.maxSession}} {
		if t.v <= 0 {
			return c, fmt.Errorf("--%s: must be positive (there is no 'never'), got %v", t.flag, t.v)
		}
	}
	if sf.keyFile != "" && sf.allowUnauthenticated {
		return c, errors.New("--key-file and --allow-unauthenticated: give one, not both (with a key every client must authenticate)")
	}
	if sf.keyFile != "" {
		if c.key, err = remote.LoadKey(sf.keyFile); err != nil {
			return c, fmt.Errorf("--key-file: %w", err)
		}
	}
	return c, nil
}

// listenAddr reads --listen: HOST:PORT, :PORT, or an IP address alone (the default port).
func listenAddr(s string) (string, error) {
	if _, port, err := net.SplitHostPort(s); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("--listen: port must be 0..65535, got %q", s)
		}
		return s, nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(ip, defaultServePort).String(), nil
	}
	return "", fmt.Errorf("--listen: must be HOST:PORT, :PORT or an IP address (e.g. :%d, 192.0.2.10:%d), got %q", defaultServePort, defaultServePort, s)
}

// doServe checks the flags, listens and serves until ctx ends or a signal arrives.
func doServe(ctx context.Context, sf *serveFlags, sigs <-chan os.Signal, stderr io.Writer) error {
	cfg, err := sf.config()
	if err != nil {
		return usageError{err}
	}
	log := &serveLog{w: stderr, quiet: sf.quiet}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("serve: cannot listen on %s: %w", cfg.addr, err)
	}
	srv := &remote.Server{
		Key:                  cfg.key,
		AllowUnauthenticated: sf.allowUnauthenticated,
		Limits:               cfg.limits,
		Runner:               loggedRunner{Runner: serveRunner(), log: log},
		Software:             "tcpvsudp",
		Logf:                 log.server,
	}
	log.always("serve: listening on %s (TCP control port; each test opens ephemeral TCP or UDP data ports)", ln.Addr())
	switch {
	case cfg.key != nil:
		log.always("serve: authentication on: clients must hold the key in %s (it authenticates, it does not encrypt)", sf.keyFile)
	case sf.allowUnauthenticated:
		log.always("serve: authentication off and every peer accepted (--allow-unauthenticated): anyone who reaches this port may run tests")
	default:
		log.always("serve: authentication off: no --key-file, so only loopback peers are accepted")
	}
	l := cfg.limits
	log.always("serve: limits: --max-sessions %d --max-streams %d --max-duration %v --max-rate %s --max-size %d --idle-timeout %v --pre-auth-conns %d --handshake-timeout %v --max-session-time %v",
		l.MaxSessions, l.MaxStreams, l.MaxDuration, rateFlag(l.MaxRateBps), l.MaxSize, l.IdleTimeout, l.PreAuthConns, l.HandshakeTimeout, l.MaxSessionTime)
	return serveUntil(ctx, srv, &loggedListener{Listener: ln, log: log}, sigs, serveGrace, log)
}

// errSecondSignal ends serve at once, on a second SIGINT or SIGTERM.
var errSecondSignal = errors.New("serve: second signal: stopped at once, sessions cut off")

// serveUntil serves srv on ln until ctx ends or a signal arrives on sigs, then shuts
// srv down: no new connections, running tests end (reported incomplete), and after
// grace whatever is left is closed. It returns nil once the server stopped. A second
// signal, counted on sigs (the first may have cancelled ctx too), closes everything and
// returns errSecondSignal at once, without waiting for sessions to unwind. A server
// that failed on its own returns its error.
func serveUntil(ctx context.Context, srv *remote.Server, ln net.Listener, sigs <-chan os.Signal, grace time.Duration, log *serveLog) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	signals := 0
	why := ""
	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		why = context.Cause(ctx).Error()
	case s := <-sigs:
		signals++
		why = s.String()
	}
	log.always("serve: stopping (%s): no new sessions; running tests end now, and whatever is left in %v is closed; a second signal stops at once", why, grace)
	shCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(shCtx) }()
	stuck := time.NewTimer(grace + serveForceWait)
	defer stuck.Stop()
	for {
		select {
		case s := <-sigs:
			if signals++; signals < 2 {
				continue // the signal that cancelled ctx
			}
			cancel() // Shutdown closes every connection; its goroutine sends on a buffered channel
			log.always("serve: %v again: stopping at once", s)
			return errSecondSignal
		case <-stuck.C:
			return fmt.Errorf("serve: %d connections did not end %v after being closed (a runner that ignores its context?)", srv.Stats().Conns, serveForceWait)
		case err := <-shut:
			<-served // Serve returns once its listener closed, before Shutdown does
			if err != nil {
				log.always("serve: sessions still open after %v were closed", grace)
			}
			st := srv.Stats()
			log.always("serve: stopped: %d sessions, %d tests run, %d tests refused; connections closed before a session: %d unauthenticated, %d wrong key or replay, %d over --max-sessions, %d over --pre-auth-conns, %d failed handshakes",
				st.Sessions, st.TestsRun, st.TestsRefused,
				st.Unauthenticated, st.AuthFailed+st.Replayed, st.SessionsRefused, st.PreAuthRejected, st.HandshakeFailed)
			return nil
		}
	}
}

// serveLog writes timestamped lines to stderr. Server lines carry peers' words, so
// control characters are replaced before they reach a terminal.
type serveLog struct {
	mu    sync.Mutex // guards w
	w     io.Writer
	quiet bool // drop event lines
}

// always prints a line even with --quiet: start, stop, and what an operator must see.
func (l *serveLog) always(format string, args ...any) { l.print(format, args...) }

// event prints a per-connection, per-session or per-test line, unless --quiet.
func (l *serveLog) event(format string, args ...any) {
	if !l.quiet {
		l.print(format, args...)
	}
}

// server is remote.Server's Logf: one line per refused connection, ended session and
// refused test.
func (l *serveLog) server(format string, args ...any) {
	if format == "remote: %v: session ended: %v" && len(args) == 2 && args[1] == nil {
		args[1] = "the client said bye"
	}
	l.event("%s", strings.Replace(fmt.Sprintf(format, args...), "refused: refused: ", "refused: ", 1))
}

func (l *serveLog) print(format string, args ...any) {
	msg := []rune(fmt.Sprintf(format, args...))
	for i, r := range msg {
		if r < 0x20 || r == 0x7f {
			msg[i] = ' '
		}
	}
	line := time.Now().Format("2006-01-02T15:04:05.000Z07:00") + " " + string(msg) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line)
}

// Connection lines: at most acceptBurst at once, then one per acceptEvery, so that a
// flood of connections cannot flood the log (the stop line counts every refusal).
const (
	acceptBurst = 32
	acceptEvery = time.Second
)

// loggedListener logs each control connection it accepts: the start of a session (or
// of an attempt at one, which the server's own line ends).
type loggedListener struct {
	net.Listener
	log *serveLog

	// Used by Accept only, which remote.Server calls from one goroutine.
	tokens     float64
	last       time.Time
	suppressed int
}

func (l *loggedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	now := time.Now()
	if l.last.IsZero() {
		l.tokens = acceptBurst
	} else {
		l.tokens = min(acceptBurst, l.tokens+now.Sub(l.last).Seconds()/acceptEvery.Seconds())
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return c, nil
	}
	l.tokens--
	more := ""
	if l.suppressed > 0 {
		more = fmt.Sprintf(" (and %d connections not logged before it)", l.suppressed)
		l.suppressed = 0
	}
	l.log.event("remote: %v: connection%s", c.RemoteAddr(), more)
	return c, nil
}

// loggedRunner logs the start and end of each test its Runner serves.
type loggedRunner struct {
	remote.Runner
	log *serveLog
}

// Serve logs the test, runs it, and logs its outcome.
func (r loggedRunner) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	req := d.Request
	peer := dataPeer(d)
	r.log.event("remote: %s: test %d started: %s", peer, req.ID, describeRequest(req))
	start := time.Now()
	res, err := r.Runner.Serve(ctx, d)
	outcome := "complete"
	if err != nil || !res.Complete {
		why := res.Error
		if err != nil {
			why = err.Error()
		}
		if ctx.Err() != nil {
			if cause := context.Cause(ctx).Error(); !strings.Contains(why, cause) {
				why = cause + ": " + why
			}
		}
		outcome = "incomplete: " + why
	}
	r.log.event("remote: %s: test %d ended after %v: %s%s", peer, req.ID, time.Since(start).Round(time.Millisecond), outcome, countersSummary(res.Counters))
	return res, err
}

// dataPeer is the client's IP address as its data path shows it.
func dataPeer(d *remote.Data) string {
	if len(d.Paths) > 0 {
		return d.Paths[0].Peer().Addr().String()
	}
	if len(d.Conns) > 0 {
		if ap, err := netip.ParseAddrPort(d.Conns[0].RemoteAddr().String()); err == nil {
			return ap.Addr().Unmap().String()
		}
		return d.Conns[0].RemoteAddr().String()
	}
	return "?"
}

// describeRequest is one test in words: "stream udp forward, 2 streams of 1400-byte
// messages, 10s at 100 Mbit/s".
func describeRequest(r remote.TestRequest) string {
	streams := "1 stream"
	if r.Streams != 1 {
		streams = fmt.Sprintf("%d streams", r.Streams)
	}
	rate := "unpaced"
	if r.RateBps > 0 {
		rate = "at " + bench.FormatBps(float64(r.RateBps))
	}
	s := fmt.Sprintf("%s %s %s, %s of %d-byte messages, %v %s", r.Experiment, r.Transport, r.Direction, streams, r.Size, r.Duration, rate)
	if r.Count > 0 {
		s += fmt.Sprintf(", %d messages per stream", r.Count)
	}
	return s
}

// countersSummary picks the figures every runner's counters are expected to share
// (DESIGN.md's metric names); others are left out of the log.
func countersSummary(raw json.RawMessage) string {
	var c struct {
		SentBytes *uint64  `json:"sent_bytes"`
		RecvBytes *uint64  `json:"recv_bytes"`
		RecvBps   *float64 `json:"recv_bps"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return ""
	}
	var parts []string
	if c.SentBytes != nil && *c.SentBytes > 0 {
		parts = append(parts, fmt.Sprintf("sent %d bytes", *c.SentBytes))
	}
	if c.RecvBytes != nil && *c.RecvBytes > 0 {
		p := fmt.Sprintf("received %d bytes", *c.RecvBytes)
		if c.RecvBps != nil && *c.RecvBps > 0 {
			p += " (" + bench.FormatBps(*c.RecvBps) + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}
