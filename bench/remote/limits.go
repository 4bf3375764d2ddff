package remote

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits are what a server allows. Each is named after the serve flag that sets it;
// a zero field means its default (DefaultLimits). The server enforces every one
// itself: a test request above a limit is refused before any data socket opens, with
// an error naming the limit.
type Limits struct {
	MaxSessions      int           // --max-sessions: authenticated sessions at once; default 4
	MaxStreams       int           // --max-streams: streams (data connections or sockets) per test; default 8
	MaxDuration      time.Duration // --max-duration: one test's duration; default 60 s
	MaxRateBps       uint64        // --max-rate: bits/s one test may ask for, and the pace the server never exceeds when it sends (all streams of a test together); default 1 Gbit/s
	MaxSize          int           // --max-size: bytes per message; default 1 MiB (UDP is bounded by MaxUDPMessage anyway)
	IdleTimeout      time.Duration // --idle-timeout: a session with no test for this long is closed; default 30 s
	PreAuthConns     int           // --pre-auth-conns: connections not yet authenticated, at once, one source at most PreAuthShare of them; more are refused at accept; default 16
	HandshakeTimeout time.Duration // --handshake-timeout: hello to auth-ok, and each test's data path setup; default 5 s
	MaxSessionTime   time.Duration // --max-session-time: a session's whole life, tests included; default 10 min
	DataPorts        PortRange     // --data-ports: the ports data sockets open on; zero = ephemeral ports the kernel picks
}

// Bounds of the timeouts (Validate). Below the minimums a timeout is a mistake: a
// handshake cannot cross a real network in less than 100 ms, nor a person start the
// next test in less than a second; above the maximums it no longer bounds anything
// a server should wait for.
const (
	MinHandshakeTimeout = 100 * time.Millisecond // --handshake-timeout: 100ms..1m
	MaxHandshakeTimeout = time.Minute
	MinIdleTimeout      = time.Second // --idle-timeout: 1s..24h
	MaxIdleTimeout      = 24 * time.Hour
)

// A PortRange is the ports Lo..Hi, both included. The zero PortRange means ephemeral
// ports, picked by the kernel.
type PortRange struct {
	Lo, Hi uint16
}

// IsZero reports whether r is the zero PortRange: ephemeral ports.
func (r PortRange) IsZero() bool { return r == PortRange{} }

// Len is the number of ports in r; 0 for the zero PortRange.
func (r PortRange) Len() int {
	if r.IsZero() || r.Hi < r.Lo {
		return 0
	}
	return int(r.Hi) - int(r.Lo) + 1
}

// String prints r as --data-ports takes it: "5300-5399", "5300" for one port, ""
// for the zero PortRange.
func (r PortRange) String() string {
	switch {
	case r.IsZero():
		return ""
	case r.Lo == r.Hi:
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// ParsePortRange reads "LO-HI" or a single port "N", with 1 <= LO <= HI <= 65535;
// the empty string is the zero PortRange (ephemeral ports). Errors name
// --data-ports, the rule and the value.
func ParsePortRange(s string) (PortRange, error) {
	if s == "" {
		return PortRange{}, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	port := func(p string) (uint16, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("--data-ports: must be LO-HI or a port, each 1..65535 (e.g. 5300-5399), got %q", s)
		}
		return uint16(n), nil
	}
	l, err := port(lo)
	if err != nil {
		return PortRange{}, err
	}
	h, err := port(hi)
	if err != nil {
		return PortRange{}, err
	}
	if l > h {
		return PortRange{}, fmt.Errorf("--data-ports: LO must not exceed HI, got %q", s)
	}
	return PortRange{l, h}, nil
}

// DefaultLimits returns the limits a server uses when none are set: a few small
// sessions, enough for a person measuring a link, not enough to lend the host out.
func DefaultLimits() Limits {
	return Limits{
		MaxSessions:      4,
		MaxStreams:       8,
		MaxDuration:      60 * time.Second,
		MaxRateBps:       1e9,
		MaxSize:          1 << 20,
		IdleTimeout:      30 * time.Second,
		PreAuthConns:     16,
		HandshakeTimeout: 5 * time.Second,
		MaxSessionTime:   10 * time.Minute,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	l.MaxSessions = cmp.Or(l.MaxSessions, d.MaxSessions)
	l.MaxStreams = cmp.Or(l.MaxStreams, d.MaxStreams)
	l.MaxDuration = cmp.Or(l.MaxDuration, d.MaxDuration)
	l.MaxRateBps = cmp.Or(l.MaxRateBps, d.MaxRateBps)
	l.MaxSize = cmp.Or(l.MaxSize, d.MaxSize)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, d.IdleTimeout)
	l.PreAuthConns = cmp.Or(l.PreAuthConns, d.PreAuthConns)
	l.HandshakeTimeout = cmp.Or(l.HandshakeTimeout, d.HandshakeTimeout)
	l.MaxSessionTime = cmp.Or(l.MaxSessionTime, d.MaxSessionTime)
	return l
}

// Validate checks limits after WithDefaults; errors name the flag, the rule and the
// value. Besides each field's range it refuses combinations that make no sense: a
// --max-session-time too short for one --max-duration test and its end (runGrace),
// and a --data-ports range with fewer ports than a UDP test of --max-streams
// streams needs.
func (l Limits) Validate() error {
	switch {
	case l.MaxSessions < 1 || l.MaxSessions > 1024:
		return fmt.Errorf("--max-sessions: must be 1..1024, got %d", l.MaxSessions)
	case l.MaxStreams < 1 || l.MaxStreams > maxPorts:
		return fmt.Errorf("--max-streams: must be 1..%d, got %d", maxPorts, l.MaxStreams)
	case l.MaxDuration < 10*time.Millisecond || l.MaxDuration > maxWireDurationMS*time.Millisecond:
		return fmt.Errorf("--max-duration: must be 10ms..24h, got %v", l.MaxDuration)
	case l.MaxRateBps < 8000:
		return fmt.Errorf("--max-rate: must be at least 8 kbit/s, got %d bits/s", l.MaxRateBps)
	case l.MaxSize < 1:
		return fmt.Errorf("--max-size: must be positive, got %d", l.MaxSize)
	case l.IdleTimeout < MinIdleTimeout || l.IdleTimeout > MaxIdleTimeout:
		return fmt.Errorf("--idle-timeout: must be 1s..24h, got %v", l.IdleTimeout)
	case l.PreAuthConns < 1 || l.PreAuthConns > 65536:
		return fmt.Errorf("--pre-auth-conns: must be 1..65536, got %d", l.PreAuthConns)
	case l.HandshakeTimeout < MinHandshakeTimeout || l.HandshakeTimeout > MaxHandshakeTimeout:
		return fmt.Errorf("--handshake-timeout: must be 100ms..1m, got %v", l.HandshakeTimeout)
	case l.MaxSessionTime < l.MaxDuration+runGrace:
		return fmt.Errorf("--max-session-time: must be at least --max-duration plus %v for a test's end (%v here), got %v",
			fmtDuration(runGrace), l.MaxDuration+runGrace, l.MaxSessionTime)
	case !l.DataPorts.IsZero() && (l.DataPorts.Lo == 0 || l.DataPorts.Lo > l.DataPorts.Hi):
		return fmt.Errorf("--data-ports: must be LO-HI with 1 <= LO <= HI <= 65535, got %d-%d", l.DataPorts.Lo, l.DataPorts.Hi)
	case !l.DataPorts.IsZero() && l.DataPorts.Len() < l.MaxStreams:
		return fmt.Errorf("--data-ports: %s holds %d ports, fewer than --max-streams %d (a UDP test opens one port per stream)",
			l.DataPorts, l.DataPorts.Len(), l.MaxStreams)
	}
	return nil
}

// LimitError refuses a request above one of the server's limits.
type LimitError struct {
	Limit string // the flag that sets it, without dashes: "max-duration"
	What  string // the request's field: "duration"
	Got   string // the requested value, formatted
	Max   string // the limit, formatted
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("refused: %s %s exceeds the server's --%s %s", e.What, e.Got, e.Limit, e.Max)
}

// Check refuses a request above a limit with a *LimitError naming it, and a request
// no server could run with a plain error.
func (l Limits) Check(r TestRequest) error {
	if err := r.Validate(); err != nil {
		return err
	}
	switch {
	case r.Streams > l.MaxStreams:
		return &LimitError{"max-streams", "streams", strconv.Itoa(r.Streams), strconv.Itoa(l.MaxStreams)}
	case r.Duration > l.MaxDuration:
		return &LimitError{"max-duration", "duration", fmtDuration(r.Duration), fmtDuration(l.MaxDuration)}
	case r.RateBps > l.MaxRateBps:
		return &LimitError{"max-rate", "rate", fmtBps(r.RateBps), fmtBps(l.MaxRateBps)}
	case r.Size > l.MaxSize:
		return &LimitError{"max-size", "size", strconv.Itoa(r.Size) + " bytes", strconv.Itoa(l.MaxSize) + " bytes"}
	}
	return nil
}

// PreAuthShare is how many of the PreAuthConns slots one source may hold at once:
// a quarter, at least 1 (4 of the default 16). A source is an IPv4 address, or an
// IPv6 /64 (what one host is commonly given, each of whose addresses it may use),
// so that one host cannot hold every slot and lock the others out.
func (l Limits) PreAuthShare() int { return max(1, l.PreAuthConns/4) }

// wire returns the limits as auth-ok carries them.
func (l Limits) wire() WireLimits {
	return WireLimits{
		MaxSessions: l.MaxSessions, MaxStreams: l.MaxStreams,
		MaxDurationMS: uint64(l.MaxDuration / time.Millisecond), MaxRateBps: l.MaxRateBps,
		MaxSize: l.MaxSize, IdleTimeoutMS: uint64(l.IdleTimeout / time.Millisecond),
	}
}

// fmtDuration prints whole seconds as "120s", anything else as time.Duration does.
func fmtDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// fmtBps prints bits/s in decimal SI: "1 Gbit/s", "2.5 Mbit/s", "800 bit/s".
func fmtBps(v uint64) string {
	units := []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"}
	f, i := float64(v), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'g', 4, 64) + " " + units[i]
}
