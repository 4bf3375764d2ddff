// Package farend joins the bench experiments to remote mode. Runner is what
// 'tcpvsudp serve' runs for each test: the server half of a bench cell, over the
// data path bench/remote opened, authenticated and validated. Far is what
// 'tcpvsudp run --server' gives bench.Plan: it opens each cell's data path through a
// remote session and collects the server half's figures.
//
// bench knows nothing of the network protocol and bench/remote nothing of the
// experiments; this package is the only one that imports both.
package farend

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
	"github.com/tcpvsudp/tcpvsudp/tcp"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// wireOverhead is what a data path of transport adds to each message on the wire:
// the UDP path's token prefix, the TCP frame's length prefix.
func wireOverhead(transport string) int {
	if transport == "udp" {
		return remote.UDPOverhead
	}
	return tcp.FrameOverhead
}

// transports makes d's data path into bench transports: TCP connections framed as
// bench's TCP transport frames them (busy polling as the test asked), UDP paths as
// they are (each datagram one message, the token prefix handled below them; their
// socket options are bench/remote's).
//
// With blocking (a pingpong server half, unless the test asked for busy polling)
// they receive blocking, outside Go's poller (tcp and udp Options.Blocking), as the
// echo servers of one host do.
func transports(d *remote.Data, blocking bool) ([]transport.Transport, error) {
	blocking = blocking && !d.Request.Sockets.BusyPoll
	var ts []transport.Transport
	for _, c := range d.Conns {
		o := tcpOptions(d.Request)
		o.Blocking = blocking
		fc, err := tcp.Frame(c, o)
		if err != nil {
			return nil, err
		}
		ts = append(ts, transport.FramedTCP(fc, c)) // TCP_INFO, buffer sizes and the byte stream under the pacing wrapper
	}
	for _, p := range d.Paths {
		if blocking {
			p.SetBlocking()
		}
		ts = append(ts, p)
	}
	if len(ts) == 0 {
		return nil, errors.New("farend: the test has no data path")
	}
	return ts, nil
}

// wirePrefix starts the experiment name of every bench cell on the wire
// ("bench.pingpong"), so that bench's experiments never meet another runner's of the
// same name (a Fallback's "stream", say).
const wirePrefix = "bench."

// farHalf returns the bench experiment a test request names and its far half
// (bench.FarHalfOf), and whether it names one this package runs.
func farHalf(wire string) (string, bench.FarHalf, bool) {
	x, ok := strings.CutPrefix(wire, wirePrefix)
	if !ok {
		return "", bench.FarHalf{}, false
	}
	h, ok := bench.FarHalfOf(x)
	return x, h, ok
}

// defaultBatch is the most messages one Send or Recv of a half moves when the test
// does not say (remote.SocketOptions.Batch 0).
const defaultBatch = 64

// batchOf is the most messages one Send or Recv of req's halves moves.
func batchOf(req remote.TestRequest) int { return cmp.Or(req.Sockets.Batch, defaultBatch) }

// tcpOptions are the options bench/farend frames req's TCP data connections with:
// busy polling as asked (bench/remote set the buffer sizes when it opened them).
func tcpOptions(req remote.TestRequest) tcp.Options {
	return tcp.Options{BusyPoll: req.Sockets.BusyPoll}
}

// socketOptions are the wire's socket options for a run's flags: batch 64 and
// payload verification, the defaults, travel as 0 and "", so that a run without
// socket flags asks for nothing a server without remote.CapSockets (or
// remote.CapVerify) cannot read.
func socketOptions(o transport.NetOptions, batch int, verify wire.Verify) remote.SocketOptions {
	if batch == defaultBatch {
		batch = 0
	}
	so := remote.SocketOptions{RecvBuffer: o.RecvBuffer, SendBuffer: o.SendBuffer, NoGSO: o.NoGSO, BusyPoll: o.BusyPoll, Batch: batch}
	if verify != wire.VerifyPayloadCRC {
		so.Verify = verify.String()
	}
	return so
}

// verifyOf is what req's receivers check of each message: remote.SocketOptions.Verify,
// checked by the session already ("" and "payload": every check).
func verifyOf(req remote.TestRequest) wire.Verify {
	v, err := wire.ParseVerify(req.Sockets.Verify)
	if err != nil {
		return wire.VerifyPayloadCRC // cannot happen: the session refused the request
	}
	return v
}

// netOptions are the run's flags a request's socket options stand for.
func netOptions(o remote.SocketOptions) transport.NetOptions {
	return transport.NetOptions{RecvBuffer: o.RecvBuffer, SendBuffer: o.SendBuffer, NoGSO: o.NoGSO, BusyPoll: o.BusyPoll, Batch: cmp.Or(o.Batch, defaultBatch)}
}

// describe is one end's data-path endpoints of a cell, as they opened: what its
// kernel granted of req's socket options, and what it refused.
func describe(req remote.TestRequest, ts []transport.Transport) report.Sock {
	s := bench.SocketsOf(ts, batchOf(req))
	s.Verify = verifyOf(req).String()
	s.Refused = bench.Refusals(netOptions(req.Sockets), req.Transport, s)
	if x, _, ok := farHalf(req.Experiment); ok && bench.RequestResponse(x) {
		s.NoteRx(x, bench.RecvModes(ts))
	}
	return s
}

// Runner is the remote.Runner of 'tcpvsudp serve': it runs the server half of
// bench's far experiments (bench.FarExperiments, named "bench.<experiment>" on the
// wire), and hands any other experiment to Fallback; without one it refuses them.
type Runner struct {
	Fallback remote.Runner
}

// Check accepts bench's far experiments with a message size that holds bench's
// header, and what Fallback accepts.
func (r Runner) Check(req remote.TestRequest) error {
	x, h, ok := farHalf(req.Experiment)
	if !ok {
		runs := wirePrefix + strings.Join(bench.FarExperiments, ", "+wirePrefix)
		switch {
		case strings.HasPrefix(req.Experiment, wirePrefix):
			return fmt.Errorf("experiment %q: this server runs %s", req.Experiment, runs)
		case r.Fallback == nil:
			return fmt.Errorf("experiment %q: this server runs bench experiments, named %s<name> (%s)", req.Experiment, wirePrefix, runs)
		}
		return r.Fallback.Check(req)
	}
	if req.Size < wire.HeaderLen {
		return fmt.Errorf("size: %s needs at least %d bytes (its header), got %d", req.Experiment, wire.HeaderLen, req.Size)
	}
	_, err := specOf(req, x, h)
	return err
}

// specOf checks req, a test of bench experiment x, whose far half is h, against what
// h asks of it (its data path, its params), naming the field, and returns the spec
// its server half serves.
func specOf(req remote.TestRequest, x string, h bench.FarHalf) (bench.FarSpec, error) {
	if h.RunsAs != "" {
		return bench.FarSpec{}, fmt.Errorf("experiment %q: its cells' server half runs as %s%s", req.Experiment, wirePrefix, h.RunsAs)
	}
	spec := bench.FarSpec{Experiment: x, Transport: req.Transport, Size: req.Size, Streams: req.Streams, Duration: req.Duration, Listen: req.Listen,
		Net: netOptions(req.Sockets), Batch: batchOf(req), Verify: verifyOf(req)}
	switch {
	case h.Listen && !req.Listen:
		return bench.FarSpec{}, fmt.Errorf("listen: %s needs a data path that takes new clients (listen: true)", req.Experiment)
	case h.OnePath && req.Streams != 1:
		return bench.FarSpec{}, fmt.Errorf("streams: %s runs one data path, got %d", req.Experiment, req.Streams)
	case h.OnePath && req.Direction != remote.Bidir:
		return bench.FarSpec{}, fmt.Errorf("direction: %s runs bidir, got %s", req.Experiment, req.Direction)
	case h.Parse != nil:
		t := bench.FarTest{Name: req.Experiment, Direction: string(req.Direction), Streams: req.Streams, Count: req.Count,
			RateBps: req.RateBps, Duration: req.Duration, GRO: req.Sockets.GRO}
		return spec, h.Parse(req.Params, t, &spec)
	case len(req.Params) > 0 && string(req.Params) != "{}":
		return bench.FarSpec{}, fmt.Errorf("params: %s takes none, got %d bytes", req.Experiment, len(req.Params))
	}
	return spec, nil
}

// Serve runs the server half of one cell until the client reports it is done (or the
// session stops the test), and returns its figures, with a warning when the server's
// --max-rate held its sending back (measured).
func (r Runner) Serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	if _, _, ok := farHalf(d.Request.Experiment); !ok {
		if r.Fallback == nil { // cannot happen: Check refused the request
			err := r.Check(d.Request)
			return remote.Results{Error: err.Error()}, err
		}
		return r.Fallback.Serve(ctx, d)
	}
	return r.serve(ctx, d)
}

// heldNotable is how long the server's pacer must have held its senders back, at its
// --max-rate cap, before the cell's report says so.
const heldNotable = time.Millisecond

// measured runs a server half with bench.MeasureServerHalf, adds a warning when the
// server's --max-rate cap held its sending back (the cell then shows the cap, not
// the path) and the description of its endpoints ts, and wraps its figures for the
// session.
func measured(d *remote.Data, ts []transport.Transport, serve func() (bench.FarResult, error)) (remote.Results, error) {
	sk := describe(d.Request, ts)
	fr, err := bench.MeasureServerHalf(serve)
	bench.AddSends(&sk, ts)
	fr.Sockets = &sk
	if rate, capped, held := d.Paced(); capped && held >= heldNotable {
		fr.Warnings = append(fr.Warnings, fmt.Sprintf("the server's --max-rate (%s) held its sending back for %v, summed over its senders: what it sent shows that cap, not the path (serve with a higher --max-rate to go past it)",
			units.Bps(rate), held.Round(time.Microsecond)))
		fr.RateCapHeldNs = int64(held)
	}
	return results(fr, err)
}

// serve is Serve for bench's far experiments: the server half their registry entry
// holds (bench.FarHalf), with the test's data path as its env (session).
func (r Runner) serve(ctx context.Context, d *remote.Data) (remote.Results, error) {
	x, h, _ := farHalf(d.Request.Experiment)
	spec, err := specOf(d.Request, x, h) // refuses a half that runs as another's: every other has Serve
	if err != nil {
		return remote.Results{Error: err.Error()}, err
	}
	ts, err := transports(d, h.Blocking)
	if err != nil {
		return remote.Results{Error: err.Error()}, err
	}
	return measured(d, ts, func() (bench.FarResult, error) { return h.Serve(ctx, session{clientPeer{d}}, spec, ts) })
}

// clientPeer is the other end of a test's data path, as one side sees it through
// its remote.Data: on the server the client, whose end of stream comes in its
// results; on the client the server, whose comes in its "sent".
type clientPeer struct{ d *remote.Data }

func (p clientPeer) Done() <-chan struct{} { return p.d.PeerDone() }
func (p clientPeer) Sent() ([]uint64, error) {
	return bench.ParseSendersEnd(p.d.PeerCounters(), p.d.Request.Streams)
}

// session is a test's data path as its server half sees it (bench.ServerEnv): its
// client, and a closed port of this host among the session's --data-ports.
type session struct{ clientPeer }

func (s session) ClosedPort() (uint16, error) { return s.d.ClosedPort() }
func (s session) ReportSent(sent []uint64)    { reportSent(s.d)(sent) }

// reportSent tells the client the server's senders are done, with each flow's count
// (bench.SendersEnd), in a "sent" message. A client that does not take it ends its
// receiver on a quiet spell instead.
func reportSent(d *remote.Data) func(sent []uint64) {
	return func(sent []uint64) {
		if raw, err := json.Marshal(bench.SendersEnd{Sent: sent}); err == nil {
			d.ReportSent(raw)
		}
	}
}

// results wraps a server half's figures for the session, incomplete with err.
func results(fr bench.FarResult, err error) (remote.Results, error) {
	counters, merr := json.Marshal(fr)
	if merr != nil {
		return remote.Results{Error: merr.Error()}, merr
	}
	res := remote.Results{Complete: err == nil, Counters: counters}
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// Far is a bench.Far on a remote server: one authenticated session, one test per
// cell. Dial opens it; Close ends the session.
type Far struct {
	cl   *remote.Client
	addr string
	br   *bridge

	mu  sync.Mutex  // guards env, local, peer
	env *report.Env // the server's, from its latest results
	// Both ends' data-path endpoints over the session's cells, by transport: this
	// host's as Drive opened them, the server's as its results describe them.
	local, peer map[string]report.Sock
}

// Sockets describes both ends' data-path endpoints over the cells so far, by
// transport: this host's, and the server's as it reported them.
func (f *Far) Sockets() (local, peer map[string]report.Sock) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.local), maps.Clone(f.peer)
}

// record adds one cell's descriptions of both ends to the session's; peer is nil
// when the server described none (an older server).
func (f *Far) record(transport string, local report.Sock, peer *report.Sock) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.local == nil {
		f.local, f.peer = map[string]report.Sock{}, map[string]report.Sock{}
	}
	l := f.local[transport]
	l.Merge(local)
	f.local[transport] = l
	if peer != nil {
		p := f.peer[transport]
		p.Merge(*peer)
		f.peer[transport] = p
	}
}

// Dial opens a session with the tcpvsudp serve at addr ("host:port"), authenticating
// with key (nil for none).
func Dial(ctx context.Context, addr string, key []byte, timeout time.Duration) (*Far, error) {
	br := &bridge{}
	cl, err := (&remote.Dialer{Key: key, Timeout: timeout, Driver: br, Software: "tcpvsudp " + bench.Version}).Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &Far{cl: cl, addr: addr, br: br}, nil
}

// Close ends the session.
func (f *Far) Close() error { return f.cl.Close() }

// Lost is why the session ended (the server lost); nil while it is usable.
func (f *Far) Lost() error { return f.cl.Broken() }

// PeerEnv is the server host's environment from its latest results.
func (f *Far) PeerEnv() *report.Env {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.env
}

// Link says the run crossed a network to addr.
func (f *Far) Link() report.Link { return report.Link{Kind: "remote", Addr: f.addr} }

// Open asks the server for one test and returns the cell once its data path is open
// and the test has started.
func (f *Far) Open(ctx context.Context, spec bench.FarSpec) (bench.FarCell, error) {
	// The test's duration: the data's time, plus up to a second for the last
	// replies where the server's limit leaves room; count mode asks for the limit.
	// A cell longer than the limit is asked for as it is, and the server refuses it
	// naming --max-duration.
	lim := time.Duration(f.cl.Limits().MaxDurationMS) * time.Millisecond
	if lim <= 0 {
		lim = remote.DefaultLimits().MaxDuration
	}
	dur := spec.Duration.Round(time.Millisecond)
	switch {
	case dur <= 0:
		dur = lim
	case dur < lim:
		dur = min(dur+time.Second, lim)
	}
	req := remote.TestRequest{Experiment: wirePrefix + spec.Experiment, Transport: spec.Transport, Size: spec.Size,
		Duration: dur, Streams: spec.Streams, Direction: remote.Bidir, Listen: spec.Listen, Sockets: socketOptions(spec.Net, spec.Batch, spec.Verify)}
	h, ok := bench.FarHalfOf(spec.Experiment)
	if !ok || h.RunsAs != "" {
		return nil, fmt.Errorf("farend: %s has no far half of its own", spec.Experiment)
	}
	if h.Params != nil {
		// Its codec sets what its test asks of the data path beside its params. A
		// server without remote.CapGRO keeps one datagram per packet whatever GRO
		// says (remote.Client.Run).
		t := bench.FarTest{Name: req.Experiment, Direction: string(req.Direction), Streams: req.Streams, Duration: req.Duration,
			GRO: req.Sockets.GRO, WireOverhead: wireOverhead(spec.Transport), MaxRateBps: f.cl.Limits().MaxRateBps}
		p, err := h.Params(spec, &t)
		if err != nil {
			return nil, err
		}
		req.Params = p
		req.Direction, req.Streams, req.Count, req.RateBps, req.Sockets.GRO = remote.Direction(t.Direction), t.Streams, t.Count, t.RateBps, t.GRO
	}
	c := &cell{ready: make(chan []transport.Transport, 1), finish: make(chan struct{}), done: make(chan struct{}), far: f}
	if err := f.br.expect(c); err != nil {
		return nil, err
	}
	go func() {
		defer close(c.done)
		c.res, c.err = f.cl.Run(ctx, req)
	}()
	select {
	case ts := <-c.ready:
		c.ts = ts
		return c, nil
	case <-c.done:
		f.br.expect(nil)
		if c.err == nil {
			c.err = errors.New("the test ended before its data path opened")
		}
		return nil, c.err
	}
}

// bridge is the remote.Driver of a Far's session: Client.Run calls Drive with the
// data path of the cell Open is waiting for, and Drive hands it over, then holds the
// test open until the cell's Finish.
type bridge struct {
	mu   sync.Mutex
	next *cell
}

func (b *bridge) expect(c *cell) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c != nil && b.next != nil {
		return errors.New("farend: one test at a time per session")
	}
	b.next = c
	return nil
}

func (b *bridge) Drive(ctx context.Context, d *remote.Data) (remote.Results, error) {
	b.mu.Lock()
	c := b.next
	b.next = nil
	b.mu.Unlock()
	if c == nil {
		return remote.Results{Error: "no cell waits for this test"}, errors.New("farend: a test nobody asked for")
	}
	ts, err := transports(d, false) // this host's ends stay in the poller
	if err != nil {
		return remote.Results{Error: err.Error()}, err
	}
	c.addrs = remoteAddrs(d) // before ready: the send orders it for Open
	c.data = d
	c.sock = describe(d.Request, ts)
	c.ready <- ts
	select {
	case <-c.finish:
		return remote.Results{Complete: true, Counters: c.sent}, nil
	case <-ctx.Done():
		return remote.Results{Error: ctx.Err().Error()}, ctx.Err()
	}
}

// cell is one test of a Far's session.
type cell struct {
	ts     []transport.Transport
	addrs  []netip.AddrPort // the server's ends of ts; set by Drive
	data   *remote.Data     // the test's data path; set by Drive
	sock   report.Sock      // this host's ends of ts as they opened; set by Drive
	ready  chan []transport.Transport
	finish chan struct{}
	done   chan struct{} // closed when Client.Run returned res and err
	res    remote.TestResults
	err    error
	once   sync.Once
	far    *Far
	sent   json.RawMessage // this side's end of stream (SendersEnded), sent with its results
}

func (c *cell) Transports() []transport.Transport { return c.ts }

// Ended is closed when Client.Run returned: before Finish, the server ended the
// test (its half failed) or the session was lost.
func (c *cell) Ended() <-chan struct{} { return c.done }

// Senders are the server's stream senders, as the client sees them: done at the
// server's "sent", with its per-flow counts.
func (c *cell) Senders() bench.FarPeer { return clientPeer{c.data} }

// SendersEnded keeps this side's per-flow counts for its results, which Finish sends.
func (c *cell) SendersEnded(sent []uint64) {
	raw, err := json.Marshal(bench.SendersEnd{Sent: sent})
	if err == nil {
		c.sent = raw
	}
}

// Finish ends the test: the client's half is done; Client.Run then exchanges both
// sides' results.
func (c *cell) Finish(ctx context.Context) (bench.FarResult, error) {
	c.once.Do(func() { close(c.finish) })
	select {
	case <-c.done:
	case <-ctx.Done():
		return bench.FarResult{}, fmt.Errorf("waiting for the server's results: %w", ctx.Err())
	}
	var r bench.FarResult
	srv := c.res.Server
	if len(srv.Counters) > 0 {
		// The counters' strings are the server's words, which no decoder checked:
		// they reach the report and the terminal escaped (remote.Printable).
		counters, err := printableJSON(srv.Counters)
		if err == nil {
			err = json.Unmarshal(counters, &r)
		}
		if err != nil {
			r = bench.FarResult{Warnings: []string{fmt.Sprintf("server's counters unreadable: %v", err)}}
		}
	}
	if r.Env != nil {
		c.far.mu.Lock()
		c.far.env = r.Env
		c.far.mu.Unlock()
	}
	if r.Sockets != nil && r.Sockets.Verify == "" {
		// A server that does not say predates --verify: its receivers checked every payload.
		r.Sockets.Verify = wire.VerifyPayloadCRC.String()
	}
	if c.data != nil { // the data path opened: both ends have endpoints to describe
		bench.AddSends(&c.sock, c.ts)
		c.far.record(c.data.Request.Transport, c.sock, r.Sockets)
	}
	if c.res.Overlap > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the server ran %d other test(s) at the same time: its figures shared its host", c.res.Overlap))
	}
	if !srv.Complete {
		// Its figures, if any, cover part of the cell: bench fails the cell with
		// this error, which says why (no warning repeats it).
		why := cmp.Or(remote.Printable(srv.Error), "it sent no results")
		if c.err != nil {
			return r, fmt.Errorf("%w: %w", bench.ErrFarIncomplete, c.err)
		}
		return r, fmt.Errorf("%w: the server did not complete its half: %s", bench.ErrFarIncomplete, why)
	}
	return r, c.err
}

// printableJSON returns the JSON object raw with every string in it, at any depth,
// made printable (remote.Printable), its numbers as they were.
func printableJSON(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(printableValue(v))
}

func printableValue(v any) any {
	switch v := v.(type) {
	case string:
		return remote.Printable(v)
	case []any:
		for i := range v {
			v[i] = printableValue(v[i])
		}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[remote.Printable(k)] = printableValue(x)
		}
		return out
	}
	return v
}

// remoteAddrs returns the far ends of d's data path, in the order transports
// returns them.
func remoteAddrs(d *remote.Data) []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range d.Conns {
		var ap netip.AddrPort
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ap = ta.AddrPort()
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	for _, p := range d.Paths {
		out = append(out, p.Peer())
	}
	return out
}

// RemoteAddrs are the server's ends of the cell's data path: the control
// connection's host, and each path's port there (bench.FarAddresser).
func (c *cell) RemoteAddrs() []netip.AddrPort { return c.addrs }

var _ bench.FarAddresser = (*cell)(nil)

// MaxMessage is the largest message the server takes as one on transport's data
// path, and why: its --max-size, and under it, for UDP, a datagram's payload less the
// data path's prefix, for TCP the framing's limit.
func (f *Far) MaxMessage(transport string) (size int, why string) {
	lim := f.cl.Limits().MaxSize
	own, ownWhy := tcp.DefaultMaxMessage, fmt.Sprintf("the framing's limit (%d bytes); a byte stream itself has none", tcp.DefaultMaxMessage)
	if transport == "udp" {
		own = remote.MaxUDPMessage
		ownWhy = fmt.Sprintf("the %d-byte UDP payload less the data path's %d-byte prefix (token and kind)", udp.MaxPayloadIPv4, udp.MaxPayloadIPv4-remote.MaxUDPMessage)
	}
	if lim > 0 && lim < own {
		return lim, fmt.Sprintf("the server's --max-size (%d bytes)", lim)
	}
	return own, ownWhy
}
