package remote

import (
	"encoding/json"
	"fmt"
	"time"
)

// Direction says which side sends a test's data.
type Direction string

// Directions, as the wire spells them.
const (
	Forward Direction = "forward" // the client sends, the server receives
	Reverse Direction = "reverse" // the server sends, the client receives
	Bidir   Direction = "bidir"   // both send and receive at once
)

// ClientSends reports whether the client sends data in direction d.
func (d Direction) ClientSends() bool { return d == Forward || d == Bidir }

// ServerSends reports whether the server sends data in direction d.
func (d Direction) ServerSends() bool { return d == Reverse || d == Bidir }

// MaxUDPMessage is the largest message a UDP data path carries, in bytes: the
// largest UDP payload (65507) less the 17-byte token and kind prefix.
const MaxUDPMessage = 65507 - udpPrefixLen

// TestRequest is one test as the client asks for it.
type TestRequest struct {
	ID         uint32          // set by Client.Run: 1, 2, ... within a session
	Experiment string          // e.g. "stream"; the Runner says which it can run
	Transport  string          // "tcp" or "udp"
	Size       int             // bytes per message (UDP: per datagram, without the 17-byte prefix)
	Duration   time.Duration   // how long data flows; required, whole milliseconds on the wire, and the bound in count mode too
	RateBps    uint64          // bits/s over all streams, the sender's pace; 0 = unpaced (the server still paces its sends at its MaxRateBps)
	Streams    int             // parallel data connections (TCP) or sockets (UDP)
	Direction  Direction       // who sends
	Count      uint64          // messages per stream, then stop; 0 = for Duration
	Params     json.RawMessage // experiment-specific parameters, a JSON object; the Runner checks them
	// Listen asks for a data path that keeps taking new clients after start (TCP:
	// the listener stays open, Data.Accept; UDP: one more socket, Data.Listener).
	// Both sides must have listed CapListen.
	Listen bool
	// Sockets shape both ends' data sockets; the zero value keeps every default.
	// Both sides must have listed CapSockets to ask for anything else.
	Sockets SocketOptions
}

// Validate checks what every server requires of a request, before its limits.
func (r TestRequest) Validate() error {
	id := r.ID
	if id == 0 {
		id = 1 // Client.Run numbers the request later
	}
	if r.Duration%time.Millisecond != 0 {
		return fmt.Errorf("remote: duration: must be whole milliseconds, got %v", r.Duration)
	}
	if r.Duration <= 0 {
		return fmt.Errorf("remote: duration: must be positive, got %v", r.Duration)
	}
	w := r.wire()
	w.ID = id
	if err := w.validate(); err != nil {
		return fmt.Errorf("remote: test request: %w", err)
	}
	if r.Transport == "udp" && r.Size > MaxUDPMessage {
		return fmt.Errorf("remote: size: must be 1..%d for udp, got %d", MaxUDPMessage, r.Size)
	}
	return nil
}

func (r TestRequest) wire() *Test {
	t := &Test{ID: r.ID, Experiment: r.Experiment, Transport: r.Transport, Size: r.Size,
		DurationMS: uint64(max(r.Duration, 0) / time.Millisecond), RateBps: r.RateBps, Streams: r.Streams,
		Direction: string(r.Direction), Count: r.Count, Params: r.Params, Listen: r.Listen}
	if !r.Sockets.IsZero() { // absent unless asked for: what a server without CapSockets reads
		so := r.Sockets
		t.Sockets = &so
	}
	return t
}

// Request returns the test the message asks for.
func (m *Test) Request() TestRequest {
	r := TestRequest{ID: m.ID, Experiment: m.Experiment, Transport: m.Transport, Size: m.Size,
		Duration: time.Duration(m.DurationMS) * time.Millisecond, RateBps: m.RateBps, Streams: m.Streams,
		Direction: Direction(m.Direction), Count: m.Count, Params: m.Params, Listen: m.Listen}
	if m.Sockets != nil {
		r.Sockets = *m.Sockets
	}
	return r
}

// Results are one side's measurement of one test.
type Results struct {
	Complete bool            // the side measured the whole test
	Error    string          // why not, when !Complete
	Counters json.RawMessage // a JSON object, shaped by the Runner or Driver
}

// TestResults are both sides' measurements of one test, as Client.Run returns them.
type TestResults struct {
	Request TestRequest
	Client  Results // measured here
	Server  Results // as the server reported them; zero when it never did
	Overlap int     // most other tests the server ran at once during this one (0: it ran alone)
	// Complete is true when both sides measured the whole test. A lost server or an
	// interrupted test leaves it false, with whatever this side measured in Client.
	Complete bool
}
