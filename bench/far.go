package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/metrics"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// A Far runs the server half of cells on another host (remote mode: tcpvsudp serve
// at the far end, package bench/farend in between). With Plan.Far set, every cell
// opens its data path through it instead of listening in this process, and the far
// end measures its own half. Far ends support the experiments FarExperiments lists.
type Far interface {
	// Link describes the far end for the report's env.link (Kind "remote").
	Link() report.Link
	// PeerEnv is the far host's environment as it last reported it; nil before it did.
	PeerEnv() *report.Env
	// Open starts the server half of one cell and returns it with its data path open.
	Open(ctx context.Context, spec FarSpec) (FarCell, error)
}

// A farLoser is a Far that can tell its session is gone: a far end lost mid-run
// fails the cell running then, and every later one.
type farLoser interface {
	// Lost is why the session ended; nil while it is usable.
	Lost() error
}

// farLost is why f's session ended; nil when it is usable or f cannot tell.
func farLost(f Far) error {
	if l, ok := f.(farLoser); ok {
		return l.Lost()
	}
	return nil
}

// FarSpec is one cell's server half as the far end is asked for it.
type FarSpec struct {
	Experiment string        // one of FarExperiments
	Transport  string        // "tcp" or "udp"
	Size       int           // bytes per message, the header included
	Streams    int           // data connections (TCP) or sockets (UDP) to open
	Duration   time.Duration // how long data flows, warm-up included; 0 = unknown (count mode): the far end's own limit bounds it
	Run        uint64        // the run id every message of the cell carries (stream: the receiver accepts no other)
	Drain      time.Duration // stream: the receiver's longest wait for stragglers after the sender finished
	// Listen asks for a far end that keeps taking new clients during the cell
	// (connect): the FarCell is then a FarDialer.
	Listen bool
	// Boundaries is a boundaries cell's part and payload (boundaries.go).
	Boundaries *FarBoundaries

	// Net and Batch are the run's socket flags (--rcvbuf, --sndbuf, --no-gso,
	// --busy-poll, --batch), for the far end's sockets as for this host's: the runner
	// sets them on every spec (runEnv.openFar). Batch is the most messages one Send or
	// Recv of the far half moves; 0 = 64.
	Net   transport.NetOptions
	Batch int
	// Verify is what the far end's receivers check of each message (--verify); the
	// runner sets it on every spec as it does Net.
	Verify wire.Verify

	// A slow receiver (slow-receiver runs a stream so): the far receiver asks for a
	// RecvBuffer-byte receive buffer on its endpoints (0 = leave it), reads no faster
	// than ReaderBps (0 = as fast as it can), and samples its deliveries every
	// SeriesStep from its first data arrival (0 = no time line; FarResult.Series).
	ReaderBps  float64       // bits/s
	RecvBuffer int           // SO_RCVBUF request, bytes
	SeriesStep time.Duration // between samples

	// A reverse stream: the far end sends, Streams flows of Size-byte messages, for
	// Count each or SendFor, after Warmup, paced to RateBps over all (0 = unpaced,
	// though the far end may cap it).
	Reverse bool
	// A both-ways stream (Count, SendFor, Warmup and RateBps as for Reverse, RateBps
	// per direction): 2×Streams data paths, the first Streams carrying this side's
	// flows to the far end, the last Streams the far end's flows to this side.
	Bidir   bool
	Count   uint64
	SendFor time.Duration
	Warmup  time.Duration
	RateBps float64
}

// A FarDialer is a FarCell of a listen-mode cell (FarSpec.Listen): each Dial opens
// one more client endpoint to its far end, as a new client would.
type FarDialer interface {
	Dial(ctx context.Context) (transport.Transport, error)
}

// A FarAddresser is a FarCell that knows where the far ends of its data path are:
// the far host's address (in remote mode, that of the control connection) and each
// Transport's port there. The property experiments that reach the far host outside
// the data path need it: refused (a closed port there) and close (a new client of
// the data port).
type FarAddresser interface {
	// RemoteAddrs are the far ends of Transports, in their order.
	RemoteAddrs() []netip.AddrPort
}

// A FarCell is one cell's server half at the far end.
type FarCell interface {
	// Transports are this side's ends of the cell's data path, FarSpec.Streams of them
	// (2×Streams with FarSpec.Bidir).
	Transports() []transport.Transport
	// Finish says this side is done, waits for the far end's figures and closes the
	// data path. It is called once, after the Transports are no longer used.
	Finish(ctx context.Context) (FarResult, error)
	// SendersEnded says this side's stream senders are done and how many messages
	// each of their flows sent, by flow: the end of stream, which the far receiver
	// learns with this side's results (FarPeer.Sent), beside the data path. Called
	// before Finish, at most once.
	SendersEnded(sent []uint64)
	// Senders are the far end's stream senders (reverse, bidir), as this side sees
	// them: Done closes when the far end said they are done, and Sent is how many
	// messages each of their flows sent, by flow. Done never closes when the far end
	// cannot tell (an older server): the receiver then ends on a quiet spell.
	Senders() FarPeer
	// Ended is closed if the far end ends the cell before Finish (its half failed,
	// or the session was lost); nil when the far end cannot tell.
	Ended() <-chan struct{}
}

// FarResult is what the far end measured of one cell.
// It travels between hosts as JSON, in the field names below.
type FarResult struct {
	ServerSockets int `json:"server_sockets"` // endpoints the server half served
	// Sockets is what the far end's kernel granted its data-path endpoints of the
	// cell, read back when they opened, and what its sends on them did (DataSockets).
	Sockets       *report.Sock `json:"sockets,omitempty"`
	Warnings      []string     `json:"warnings,omitempty"`         // what the far end wants the report to say about the cell
	Stream        *StreamRx    `json:"stream,omitempty"`           // stream: the receiver's figures
	StreamTx      *StreamTx    `json:"stream_tx,omitempty"`        // reverse stream: the far senders' figures
	CPUSec        *float64     `json:"cpu_s,omitempty"`            // the far process's user+sys CPU over the cell
	Env           *report.Env  `json:"env,omitempty"`              // the far host, as HostEnv describes it
	RateCapHeldNs int64        `json:"rate_cap_held_ns,omitempty"` // how long the far end's --max-rate held its senders back, summed

	// Footprint is what the far process and kernel gained while a clients cell's
	// clients connected.
	Footprint *FootprintDelta `json:"footprint,omitempty"`

	// Series is a stream receiver's time line, with FarSpec.SeriesStep: its
	// deliveries, sampled from its first data arrival.
	Series []RecvSample `json:"series,omitempty"`

	// Boundaries is what the far reader of a boundaries cell saw.
	Boundaries *BoundariesRx `json:"boundaries,omitempty"`
}

// MeasureServerHalf runs serve, the server half of a cell at the far end, and adds
// the process's CPU over it and this host's environment to what it reports.
func MeasureServerHalf(serve func() (FarResult, error)) (FarResult, error) {
	u0, uerr := metrics.ReadUsage()
	r, err := serve()
	if u1, err1 := metrics.ReadUsage(); uerr == nil && err1 == nil {
		r.CPUSec = f64p(u1.Sub(u0).CPU().Seconds())
	}
	env := hostEnv()
	r.Env = &env
	return r, err
}

// ServeEcho is the echo server half (pingpong, connect, clients): it returns every
// message it receives on t to its sender, unchanged, until ctx ends or t is closed.
// For TCP one runs per connection; for UDP one serves every client through the
// shared socket. size is the largest message; batch the most messages per call.
func ServeEcho(ctx context.Context, t transport.Transport, size, batch int) error {
	if size < wire.HeaderLen {
		return fmt.Errorf("bench: ServeEcho: size must be at least %d bytes, got %d", wire.HeaderLen, size)
	}
	_, err := serveMessages(ctx, t, max(1, batch), size, func(msg []byte) ([]byte, bool) { return msg, false })
	return err
}

// checkFar refuses a plan the far end cannot run, naming the flag.
func checkFar(p Plan) error {
	if p.Bidir && p.Reverse {
		return fmt.Errorf("--bidir: streams both ways already; it cannot be combined with --reverse")
	}
	if p.Lab != nil && (p.Reverse || p.Bidir) {
		return fmt.Errorf("--reverse, --bidir: not on an emulated link yet (--link/--impair): its figures are kept for the client-to-server direction")
	}
	if p.Far == nil {
		return nil
	}
	if p.Lab != nil {
		return fmt.Errorf("--server: an emulated link (--link/--impair) and a remote server cannot be combined")
	}
	if p.suite {
		return nil // the default suite: what the far end cannot run is reported skipped
	}
	for _, x := range p.Experiments {
		if !slices.Contains(FarExperiments, x) {
			return fmt.Errorf("--experiments: %s cannot run against a remote server yet (it can run: %v)", x, FarExperiments)
		}
	}
	return nil
}

// farSkipped is the outcome of a default-suite cell the far end cannot run: the
// report keeps the loopback report's shape, and the cell says why it has no figures.
// The run's warnings name them all once (farSkipWarning).
func farSkipped(x string) outcome {
	return outcome{observed: map[string]any{"skipped": remoteWhy(x)}}
}

// farSkipWarning names the experiments of a plan that a far end cannot run yet; ""
// when there are none.
func farSkipWarning(p Plan) string {
	if p.Far == nil {
		return ""
	}
	var not []string
	for _, x := range p.Experiments {
		if !slices.Contains(FarExperiments, x) {
			not = append(not, x)
		}
	}
	if len(not) == 0 {
		return ""
	}
	verb, their := "do", "their cells are"
	if len(not) == 1 {
		verb, their = "does", "its cells are"
	}
	return fmt.Sprintf("against a remote server, %s %s not run: %s marked skipped, saying why (across hosts: %s)",
		strings.Join(not, ", "), verb, their, strings.Join(FarExperiments, ", "))
}

// FarPeer is the client of a far half, as the far end sees it.
type FarPeer interface {
	// Done is closed when the client reported its results: it sends no more.
	Done() <-chan struct{}
	// Sent is how many messages each of the client's flows sent, by flow, as its
	// results say (FarCell.SendersEnded); read once Done is closed. An error says
	// the results carried no such counts, or malformed ones.
	Sent() ([]uint64, error)
}

// SendersEnd is a client's end of stream as it travels to the far end, in its
// results: how many messages each of its flows sent, by flow.
type SendersEnd struct {
	Sent []uint64 `json:"sent"`
}

// ParseSendersEnd reads a client's results counters as a SendersEnd of at most
// maxFlows flows.
func ParseSendersEnd(raw []byte, maxFlows int) ([]uint64, error) {
	if len(raw) == 0 {
		return nil, errors.New("no per-flow counts (a client older than end of stream on the control connection?)")
	}
	var se SendersEnd
	if err := decodeStrict(raw, &se); err != nil {
		return nil, fmt.Errorf("per-flow counts: want {\"sent\": [n, ...]}: %v", err)
	}
	if len(se.Sent) > maxFlows {
		return nil, fmt.Errorf("per-flow counts: %d flows, at most %d", len(se.Sent), maxFlows)
	}
	return se.Sent, nil
}

// decodeStrict decodes raw, one JSON value, into v: a field v lacks, or anything
// after the value ("more follows it"), is an error. The far halves' params and
// counters come from a peer, so nothing in them passes unread.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more follows it")
	}
	return nil
}

// openFar opens a cell's server half at the far end, with the run's socket flags.
// Its Finish is recorded in e.farDone, when set (runCell sets it per cell).
func (e *runEnv) openFar(ctx context.Context, spec FarSpec) (FarCell, error) {
	spec.Net, spec.Batch, spec.Verify = e.net, e.batch, e.verify
	fc, err := e.far.Open(ctx, spec)
	if err != nil || e.farDone == nil {
		return fc, err
	}
	return recording(fc, e.farDone), nil
}

// ErrFarIncomplete is what a FarCell's Finish wraps when the far end did not
// complete its half of the cell (its half failed or stopped early, or it sent no
// figures): the cell then fails, even when this side measured it whole, since what
// the far end reported covers part of the cell at most.
var ErrFarIncomplete = errors.New("the far end did not complete its half")

// farFinishes collects what the far halves of one cell said when they finished.
type farFinishes struct {
	mu         sync.Mutex
	incomplete error // the first Finish error wrapping ErrFarIncomplete; guarded by mu
}

func (f *farFinishes) record(err error) {
	if !errors.Is(err, ErrFarIncomplete) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.incomplete == nil {
		f.incomplete = err
	}
}

// err is why a far half of the cell did not complete; nil when every one did.
func (f *farFinishes) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.incomplete
}

// recordedCell is a FarCell whose Finish errors fin records.
type recordedCell struct {
	FarCell
	fin *farFinishes
}

func (c recordedCell) Finish(ctx context.Context) (FarResult, error) {
	r, err := c.FarCell.Finish(ctx)
	c.fin.record(err)
	return r, err
}

// recording returns fc with its Finish recorded in fin, keeping the optional
// interfaces fc has (FarAddresser, FarDialer) and no others.
func recording(fc FarCell, fin *farFinishes) FarCell {
	rc := recordedCell{fc, fin}
	fa, isA := fc.(FarAddresser)
	fd, isD := fc.(FarDialer)
	switch {
	case isA && isD:
		return struct {
			recordedCell
			FarAddresser
			FarDialer
		}{rc, fa, fd}
	case isA:
		return struct {
			recordedCell
			FarAddresser
		}{rc, fa}
	case isD:
		return struct {
			recordedCell
			FarDialer
		}{rc, fd}
	}
	return rc
}

// farBatch is the most messages one Send or Recv of a far half moves: spec.Batch, or
// 64 when the spec does not say.
func farBatch(spec FarSpec) int { return cmp.Or(spec.Batch, 64) }
