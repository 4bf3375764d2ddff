package remote

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What a server logs (Server.Logf), one line per event, each starting "remote: "
// and the control connection's peer address:
//
//	remote: 192.0.2.7:41234: refused at accept: server busy: 16 connections already in their handshake (--pre-auth-conns 16); try again in a few seconds
//	remote: 192.0.2.7:41234: refused: authentication failed: wrong key
//	remote: 192.0.2.7:41234: handshake failed: not done within --handshake-timeout 5s
//	remote: 192.0.2.7:41234: session started: authenticated by key; client "tcpvsudp 0.3"
//	remote: 192.0.2.7:41234: test 1 started: stream udp reverse, 2 streams of 1400-byte messages, 10s at 100 Mbit/s; data ports 5300, 5301
//	remote: 192.0.2.7:41234: test 1 ended after 10.2s: complete; sent 125000000 bytes
//	remote: 192.0.2.7:41234: test 2 refused by --max-duration: duration 120s exceeds the server's --max-duration 60s
//	remote: 192.0.2.7:41234: session ended after 31s: the client said bye ("client done"); 1 test run, 1 refused
//
// Peers decide how many lines they cause, so two token buckets bound them: the
// lines of connections and sessions (refused at accept, refused, handshake failed,
// session started) share one per server, and each session's test lines (started,
// ended, refused) have their own. Each lets logBurst lines through at once, then one
// per logEvery; the next line let through says how many were not logged, and
// Stats.LogSuppressed counts them all. A session whose start was logged always has
// its end logged.
const (
	logBurst = 32
	logEvery = time.Second
)

// lineLimiter is one token bucket of log lines.
type lineLimiter struct {
	what string // the lines it limits, for the note on the next one: "connection", "test"

	mu      sync.Mutex // guards the fields below
	tokens  float64
	last    time.Time // the last refill; zero before the first line
	dropped uint64    // lines refused since the last one allowed
}

// allow reports whether a line may be logged at now and, if so, how many lines
// were refused since the last one allowed.
func (l *lineLimiter) allow(now time.Time) (ok bool, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = logBurst
	} else if d := now.Sub(l.last); d > 0 {
		l.tokens = min(logBurst, l.tokens+float64(d)/float64(logEvery))
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return false, 0
	}
	l.tokens--
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

// logLine logs one line through lim, prefixed with "remote: " and peer, and reports
// whether it did. A nil lim lets the line through: for a line that closes one lim
// let through (a session's end, once its start was logged), so that they pair up.
func (s *Server) logLine(lim *lineLimiter, peer net.Addr, format string, args ...any) bool {
	if s.Logf == nil {
		return false
	}
	var dropped uint64
	if lim != nil {
		var ok bool
		if ok, dropped = lim.allow(time.Now()); !ok {
			s.st.logSuppressed.Add(1)
			return false
		}
	}
	msg := fmt.Sprintf(format, args...)
	if dropped > 0 {
		msg += fmt.Sprintf(" (%d %s lines not logged before this one: more than %d at once)", dropped, lim.what, logBurst)
	}
	s.Logf("remote: %v: %s", peer, msg)
	return true
}

// describeRequest is a test in words: "stream udp forward, 2 streams of 1400-byte
// messages, 10s at 100 Mbit/s".
func describeRequest(r TestRequest) string {
	streams := "1 stream"
	if r.Streams != 1 {
		streams = strconv.Itoa(r.Streams) + " streams"
	}
	rate := "unpaced"
	if r.RateBps > 0 {
		rate = "at " + fmtBps(r.RateBps)
	}
	s := fmt.Sprintf("%s %s %s, %s of %d-byte messages, %v %s", r.Experiment, r.Transport, r.Direction, streams, r.Size, r.Duration, rate)
	if r.Count > 0 {
		s += fmt.Sprintf(", %d messages per stream", r.Count)
	}
	if !r.Sockets.IsZero() {
		s += ", sockets: " + r.Sockets.String()
	}
	return s
}

// describePorts is "data port 5300" or "data ports 5300, 5301".
func describePorts(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	if len(s) == 1 {
		return "data port " + s[0]
	}
	return "data ports " + strings.Join(s, ", ")
}

// countersSummary picks the common figures of a runner's counters
// (sent_bytes, recv_bytes, recv_bps), when it reports them: "; sent 1000 bytes,
// received 900 bytes (7.2 Mbit/s)". Other counters stay out of the log.
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
		if c.RecvBps != nil && *c.RecvBps >= 1 {
			p += " (" + fmtBps(uint64(*c.RecvBps)) + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// plural is "1 test" or "2 tests".
func plural(n uint64, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatUint(n, 10) + " " + one + "s"
}

// roundDuration rounds d for a log line: milliseconds below 10 s, tenths above.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
