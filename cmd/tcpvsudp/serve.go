package main

import (
	"context"
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
	"github.com/tcpvsudp/tcpvsudp/bench/farend"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
)

// defaultServePort is the TCP port 'tcpvsudp serve' listens on and 'run --server
// HOST' dials when no port is given.
const defaultServePort = 5299

// serveRunner is the Runner every test of 'tcpvsudp serve' runs: the one place it is
// chosen. farend.Runner runs the server halves of bench's experiments for
// 'run --server' (bench.FarExperiments) and refuses any other; tests may set it.
var serveRunner = func() remote.Runner { return farend.Runner{} }

// serveGrace is how long running tests get to end after SIGINT or SIGTERM; then
// remote.Server.Shutdown closes whatever is left (and returns within 200 ms more).
const serveGrace = 10 * time.Second

// serveFlags are the flags of 'tcpvsudp serve', as typed.
type serveFlags struct {
	listen, keyFile, maxRate     string
	dataPorts                    string
	allowUnauthenticated, quiet  bool
	maxSessions, maxStreams      int
	maxSize, preAuthConns        int
	maxDuration, idleTimeout     time.Duration
	handshakeTimeout, maxSession time.Duration
}

// serveLong is serve's help after its examples. The details of what it refuses, UDP
// safety, ports and logs are in the README ("Remote mode").
var serveLong = fmt.Sprintf(`Serve runs the remote end of tcpvsudp, like 'iperf3 -s': it listens for control
connections (TCP) on --listen and runs the tests clients ask for, one after another
in each session, under limits it enforces itself. It is meant to be left running.
The other host runs 'tcpvsudp run --server HOST[:PORT] --key-file FILE' and gets the
report it would get on loopback. Across hosts: %s.

Authentication: with --key-file, a client must prove it holds the same key before it
may ask for anything (HMAC-SHA256 over fresh nonces, both ways; replays refused). The
key authenticates, it does not encrypt: on a hostile path, use a VPN. The file must be
accessible by its owner only and hold at least 16 bytes. Without a key the server
accepts loopback peers only; --allow-unauthenticated accepts anyone (a trusted
network only).

Limits: a connection, session or test beyond a --max-* or --pre-auth-conns limit is
refused before any data socket opens, naming the flag. UDP goes only to an address
that proved itself through its session, never more bytes than it sent until then,
never above --max-rate. Firewall: the control port and the data ports (--data-ports
keeps them in a range), TCP and UDP. Logs go to stderr (--quiet: start, stop and
errors). SIGINT or SIGTERM stops it gracefully; a second signal at once. docs/remote.md
("The server") says what each limit refuses, which ports each test opens, and what
each log line says.`, strings.Join(bench.FarExperiments, ", "))

var serveExample = fmt.Sprintf(`  # host A (192.0.2.10): make a key, copy it to host B (mode 600 there too), serve
  head -c 32 /dev/urandom | base64 > key; chmod 600 key
  tcpvsudp serve --key-file key
  # host B: run the suite against host A
  tcpvsudp run --server 192.0.2.10 --key-file key

  tcpvsudp serve --listen 127.0.0.1:%d       # no key: loopback only
  tcpvsudp serve --key-file key --max-sessions 1 --max-duration 10s --max-rate 100M
  tcpvsudp serve --key-file key --data-ports 5300-5399  # firewall: TCP %d, TCP and UDP 5300-5399`, defaultServePort, defaultServePort)

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
	fs.StringVar(&sf.listen, "listen", fmt.Sprintf(":%d", defaultServePort), "TCP address of the control port, HOST:PORT; ':PORT' = every address, an IP alone = port "+strconv.Itoa(defaultServePort))
	fs.StringVar(&sf.keyFile, "key-file", "", "pre-shared key: a file of 16 bytes or more only its owner may access; without it, loopback peers only")
	fs.BoolVar(&sf.allowUnauthenticated, "allow-unauthenticated", false, "without --key-file, accept any peer, not only loopback (a trusted network only)")
	fs.IntVar(&sf.maxSessions, "max-sessions", d.MaxSessions, "authenticated sessions at once, 1..1024; more are refused")
	fs.IntVar(&sf.maxStreams, "max-streams", d.MaxStreams, "streams per test (TCP connections or UDP sockets), 1..1024")
	fs.DurationVar(&sf.maxDuration, "max-duration", d.MaxDuration, "longest test, 10ms..24h")
	fs.StringVar(&sf.maxRate, "max-rate", rateFlag(d.MaxRateBps), "highest rate of a test, all its streams, bits/s (500M, 1.5G; 8k up); the server never sends faster")
	fs.IntVar(&sf.maxSize, "max-size", d.MaxSize, "largest message, bytes (UDP is bounded at 65490 anyway)")
	fs.DurationVar(&sf.idleTimeout, "idle-timeout", d.IdleTimeout, "a session with no test for this long is closed, 1s..24h")
	fs.IntVar(&sf.preAuthConns, "pre-auth-conns", d.PreAuthConns, "connections in their handshake at once, 1..65536, a quarter (at least 1) per IPv4 address or IPv6 /64; more are told the server is busy")
	fs.DurationVar(&sf.handshakeTimeout, "handshake-timeout", d.HandshakeTimeout, "longest handshake, and longest data path setup of a test, 100ms..1m")
	fs.DurationVar(&sf.maxSession, "max-session-time", d.MaxSessionTime, "longest session, tests included; at least --max-duration plus 10s")
	fs.StringVar(&sf.dataPorts, "data-ports", "", "ports of the tests' data sockets, TCP and UDP, LO-HI (5300-5399), at least --max-streams of them; default: ephemeral")
	fs.BoolVar(&sf.quiet, "quiet", false, "log only the start and stop lines and errors, no line per connection, session or test")
	setVarNames(fs, map[string]string{
		"listen": "ADDR", "key-file": "FILE", "max-sessions": "N", "max-streams": "N", "max-duration": "TIME",
		"max-rate": "RATE", "max-size": "BYTES", "idle-timeout": "TIME", "pre-auth-conns": "N",
		"handshake-timeout": "TIME", "max-session-time": "TIME", "data-ports": "LO-HI",
	})
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
	rate, err := parseRate("--max-rate", sf.maxRate)
	if err != nil {
		return c, err
	}
	if rate >= math.MaxUint64 {
		return c, fmt.Errorf("--max-rate: too large for a 64-bit count of bits/s, got %q", sf.maxRate)
	}
	ports, err := remote.ParsePortRange(sf.dataPorts)
	if err != nil {
		return c, err
	}
	c.limits = remote.Limits{
		MaxSessions: sf.maxSessions, MaxStreams: sf.maxStreams, MaxDuration: sf.maxDuration,
		MaxRateBps: uint64(rate), MaxSize: sf.maxSize, IdleTimeout: sf.idleTimeout,
		PreAuthConns: sf.preAuthConns, HandshakeTimeout: sf.handshakeTimeout, MaxSessionTime: sf.maxSession,
		DataPorts: ports,
	}
	for _, t := range []struct {
		flag string
		v    time.Duration
	}{{"idle-timeout", sf.idleTimeout}, {"handshake-timeout", sf.handshakeTimeout}, {"max-session-time", sf.maxSession}} {
		if t.v <= 0 {
			return c, fmt.Errorf("--%s: must be positive (there is no 'never'), got %v", t.flag, t.v)
		}
	}
	// Validated as typed, not after WithDefaults: a typed 0 is a mistake, never "the default".
	if err := c.limits.Validate(); err != nil {
		return c, err
	}
	if sf.keyFile != "" && sf.allowUnauthenticated {
		return c, errors.New("--key-file and --allow-unauthenticated: give one, not both (with a key every client must authenticate)")
	}
	if sf.keyFile != "" {
		if c.key, err = loadKey(sf.keyFile); err != nil {
			return c, err
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
		Runner:               serveRunner(),
		Software:             "tcpvsudp",
		Logf:                 log.event,
	}
	dataPorts := "ephemeral TCP or UDP data ports"
	if !cfg.limits.DataPorts.IsZero() {
		dataPorts = "TCP or UDP data ports in " + cfg.limits.DataPorts.String() + " (--data-ports)"
	}
	log.always("serve: listening on %s (TCP control port; each test opens %s)", ln.Addr(), dataPorts)
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
	return serveUntil(ctx, srv, ln, sigs, serveGrace, log)
}

// errSecondSignal ends serve at once, on a second SIGINT or SIGTERM.
var errSecondSignal = errors.New("serve: second signal: stopped at once, sessions cut off")

// serveUntil serves srv on ln until ctx ends or a signal arrives on sigs, then shuts
// srv down: no new connections, running tests end (reported incomplete), and after
// grace whatever is left is closed. It returns nil once the server stopped, or an
// error naming the tests whose runner would not stop (remote.StuckError). A second
// signal, counted on sigs (the first may have cancelled ctx too), closes everything
// and returns errSecondSignal at once, without waiting for sessions to unwind. A
// server that failed on its own returns its error.
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
	go func() { shut <- srv.Shutdown(shCtx) }() // returns at most about 200 ms after shCtx ends
	for {
		select {
		case s := <-sigs:
			if signals++; signals < 2 {
				continue // the signal that cancelled ctx
			}
			cancel() // Shutdown closes every connection; its goroutine sends on a buffered channel
			log.always("serve: %v again: stopping at once", s)
			return errSecondSignal
		case err := <-shut:
			<-served // Serve returns once its listener closed, before Shutdown does
			var stuck *remote.StuckError
			if err != nil && !errors.As(err, &stuck) {
				log.always("serve: sessions still open after %v were closed", grace)
			}
			st := srv.Stats()
			suppressed := ""
			if st.LogSuppressed > 0 {
				suppressed = fmt.Sprintf("; %d log lines left out (rate limit)", st.LogSuppressed)
			}
			log.always("serve: stopped: %d sessions, %d tests run, %d tests refused; connections closed before a session: %d unauthenticated, %d wrong key or replay, %d over --max-sessions, %d over --pre-auth-conns, %d failed handshakes%s",
				st.Sessions, st.TestsRun, st.TestsRefused,
				st.Unauthenticated, st.AuthFailed+st.Replayed, st.SessionsRefused, st.PreAuthRejected, st.HandshakeFailed, suppressed)
			if stuck != nil {
				return fmt.Errorf("serve: %w", err)
			}
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

// event prints a per-connection, per-session or per-test line, unless --quiet: it is
// remote.Server's Logf, which rate-limits what peers can cause.
func (l *serveLog) event(format string, args ...any) {
	if !l.quiet {
		l.print(format, args...)
	}
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
