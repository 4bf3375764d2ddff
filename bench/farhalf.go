package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

// A FarHalf is an experiment's server half as a far end (bench/farend, for
// 'tcpvsudp serve') runs it: what its test asks of the data path, how its own
// parameters travel, and the half itself, the function a peer in this process runs
// too. Each experiment's registry entry holds its own (experimentSpec.far); the far
// end looks it up by the name on the wire and never by any other way.
type FarHalf struct {
	// Serve is the server half. Its env is the far session's: the client's end, a
	// closed port of the server's host, and with Listen its new clients (ListenEnv).
	Serve ServeFunc
	// RunsAs, when set, names the experiment whose far half this one's cells run
	// (slow-receiver's are streams): a far end refuses a test under this name.
	RunsAs string
	// Blocking: its endpoints receive blocking, outside Go's poller (unless
	// --busy-poll), as closed-loop pingpong's echo servers do on one host.
	Blocking bool
	// OnePath: its test opens one data path (streams 1, direction bidir).
	OnePath bool
	// Listen: its data path keeps taking new clients during the test (FarSpec.Listen).
	Listen bool
	// Params writes the parameters of its own that spec holds (the test's params, as
	// JSON), and sets in t what its test asks of the data path beyond FarSpec's
	// (direction, count, pacer rate, GRO); Parse checks them and t, naming the field,
	// and sets them in spec, whose other fields are the test's. nil: it takes none,
	// and its data path carries both ways (FarBidir).
	Params func(spec FarSpec, t *FarTest) (json.RawMessage, error)
	Parse  func(raw json.RawMessage, t FarTest, spec *FarSpec) error
}

// A FarTest is the part of a far test's request that an experiment's params codec
// (FarHalf.Params, Parse) sets and checks beside its params: who sends, over how
// many paths, how much, how fast. The far end (bench/farend) carries it in the
// wire's request, field for field.
type FarTest struct {
	Name      string        // the test's experiment as the wire names it, for errors
	Direction string        // who sends: FarForward, FarReverse or FarBidir
	Streams   int           // data paths
	Count     uint64        // messages per path the server's senders send; 0 = for Duration
	RateBps   uint64        // the server's pacer, bits/s of what the wire carries; 0 = unpaced
	Duration  time.Duration // the test's time, which bounds what the server sends
	GRO       bool          // the data path's UDP receivers take GRO super-packets

	// What the client's codec needs of the wire: the bytes it adds to each
	// message on the test's transport, and the server's --max-rate (0 = unknown).
	WireOverhead int
	MaxRateBps   uint64
}

// The directions of a far test, as the wire spells them.
const (
	FarForward = "forward" // the client sends, the server receives
	FarReverse = "reverse" // the server sends, the client receives
	FarBidir   = "bidir"   // both send and receive at once
)

// FarHalfOf is the far half of the registered experiment called name; false when
// it has none (it does not run against a remote server).
func FarHalfOf(name string) (FarHalf, bool) {
	x, ok := experimentByName(name)
	if !ok || x.far == nil {
		return FarHalf{}, false
	}
	return *x.far, true
}

// A ServerEnv is what a server half is given by the peer it runs at, beside its
// endpoints: a far end's session (bench/farend) or this process (localServer), so
// that the server half is one function in both.
type ServerEnv interface {
	// Done closes when the client half is done (it sends no more); Sent is how many
	// messages each of its flows sent, as it said (FarCell.SendersEnded), read once
	// Done closed. Done is nil when the peer cannot tell.
	FarPeer
	// ClosedPort is a port of the server's host on which nobody listens for the
	// cell's transport, where the client reaches that host.
	ClosedPort() (uint16, error)
	// ReportSent tells the client that the server half's senders are done, and how
	// many messages each of their flows sent (FarCell.Senders).
	ReportSent(sent []uint64)
}

// A ListenEnv is the ServerEnv of a listen-mode cell (FarSpec.Listen): its peer
// keeps taking new clients.
type ListenEnv interface {
	ServerEnv
	// Clients is the new clients as a listener (transport.Listener's contract: a
	// TCP connection each, or the one UDP socket for all), which the server half
	// serves through the one accept loop (serveListener).
	Clients() transport.Listener
	// ClientWarnings is what that listener refused or dropped, read once its
	// clients are served.
	ClientWarnings() []string
}

// A ServeFunc is a server half: it serves one cell's endpoints ts as spec asks,
// with what its peer gives it (env), until the client half is done, ts end or ctx
// ends, and reports what it measured.
type ServeFunc func(ctx context.Context, env ServerEnv, spec FarSpec, ts []transport.Transport) (FarResult, error)

// serveEach is the server half that serves every endpoint with serve, each on a
// goroutine of its own, until the client is done or ctx ends.
func serveEach(serve func(ctx context.Context, spec FarSpec, t transport.Transport) error) ServeFunc {
	return func(ctx context.Context, env ServerEnv, spec FarSpec, ts []transport.Transport) (FarResult, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if done := env.Done(); done != nil {
			defer ctxwatch.OnClose(done, cancel)() // the client is done: it sends no more requests
		}
		errs := make([]error, len(ts))
		var wg sync.WaitGroup
		for i, t := range ts {
			wg.Go(func() { errs[i] = serve(ctx, spec, t) })
		}
		wg.Wait()
		return FarResult{ServerSockets: len(ts)}, errors.Join(errs...)
	}
}

// serveEcho is pingpong's server half: ServeEcho on every endpoint.
var serveEcho = serveEach(func(ctx context.Context, spec FarSpec, t transport.Transport) error {
	return ServeEcho(ctx, t, spec.Size, farBatch(spec))
})

// echoHalf is the echo server half (ServeEcho) of size-byte messages.
func echoHalf(e *runEnv, size int) serverHalf {
	return serverHalf{serve: func(ctx context.Context, t transport.Transport) error { return ServeEcho(ctx, t, size, e.batch) }}
}

// A servingEnv is a ListenEnv that watches the server half's accept loop: a peer on
// this host (localServer), whose client half reads what the loop accepted, and its
// endpoints' drops, while it serves.
type servingEnv interface{ serving(*server) }

// serveListen is the server half of a listen-mode cell (connect, clients): it
// echoes on its endpoints ts and on every new client its peer takes (env, a
// ListenEnv), until the client is done or ctx ends. ServerSockets is the endpoints
// the new clients needed. With footprint (clients) it reads this process's and
// host's footprint before it answers anything (so a client's first answer says the
// baseline is taken), and again when the client is done, every client still
// connected.
func serveListen(footprint bool) ServeFunc {
	return func(ctx context.Context, env ServerEnv, spec FarSpec, ts []transport.Transport) (FarResult, error) {
		le, ok := env.(ListenEnv)
		if !ok {
			return FarResult{}, fmt.Errorf("bench: %s: its peer takes no new clients (no listen mode)", spec.Experiment)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var end func() FootprintDelta
		if footprint {
			end = StartFootprint(ctx)
		}
		fpc := make(chan FootprintDelta, 1)
		if done := env.Done(); done != nil {
			defer ctxwatch.OnClose(done, func() {
				if end != nil {
					fpc <- end() // before cancel closes the clients' connections
				}
				cancel()
			})()
		}
		var wg sync.WaitGroup
		errs := make([]error, len(ts))
		for i, t := range ts {
			wg.Go(func() { errs[i] = ServeEcho(ctx, t, spec.Size, farBatch(spec)) })
		}
		srv := serveListener(ctx, le.Clients(), transport.CapsOf(spec.Transport).Connected, func(ctx context.Context, t transport.Transport) error {
			return ServeEcho(ctx, t, spec.Size, 1)
		})
		if w, ok := env.(servingEnv); ok {
			w.serving(srv)
		}
		<-ctx.Done() // the client is done, or the test ends
		lerr := srv.stop()
		wg.Wait()
		res := FarResult{ServerSockets: srv.acceptedCount(), Warnings: le.ClientWarnings()}
		select {
		case fp := <-fpc:
			res.Footprint = &fp
		default:
		}
		return res, errors.Join(append(errs, lerr)...)
	}
}

// ParamMS is a far test's parameter that the wire carries in whole milliseconds,
// checked against lo..hi ms in the wire's own unit before it becomes a
// time.Duration, so that no value a peer sends can wrap past the check (2^64-1 ms
// is not -1 ms). The error names field and the range; hi must be within a
// time.Duration's range.
func ParamMS(field string, ms, lo, hi uint64) (time.Duration, error) {
	if ms < lo || ms > hi {
		return 0, fmt.Errorf("%s: must be %d..%d ms, got %d", field, lo, hi, ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
