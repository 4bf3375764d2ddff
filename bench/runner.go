package bench

import (
	"cmp"
	"context"
	"errors"

	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// Plan is what one run measures: every experiment, for every size, over every
// transport, Repeat times. The zero value of a field means its default.
type Plan struct {
	Transports  []string      // default tcp, udp
	Experiments []string      // default stream, pingpong, connect
	Sizes       []int         // message sizes in bytes, header included; default 64, 1024, 8192
	Streams     int           // parallel streams for stream; default 1
	Duration    time.Duration // per run of a cell; default: see DefaultRepeat; ignored when Count > 0
	Count       uint64        // messages (stream: per stream) or transactions per cell; 0 = Duration
	RateBps     float64       // stream pacing, bits/s over all streams; 0 = unpaced
	PingRate    float64       // pingpong requests/s on a timetable (open loop); 0 = closed loop
	Repeat      int           // runs per cell; default: see DefaultRepeat
	Host        string        // where the server end listens; default 127.0.0.1
	Port        int           // server port; 0 = ephemeral
	Seed        int64         // payload seed; 0 = 1
	Warmup      time.Duration // excluded from every counter; default 200 ms; negative = none (NoWarmup)
	Drain       time.Duration // longest wait for stragglers after the last send; default 1 s; negative = none
	Timeout     time.Duration // a request unanswered this long counts as unanswered (Metrics.Timeouts); default 200 ms
	Batch       int           // most messages per Send/Recv; default 64
	UDPIO       []string      // the I/O modes of UDP stream cells (IOBatched, IOTextbook); default both
	Verify      wire.Verify   // what receivers check of each message; the zero value checks payloads too
	Clients     int           // concurrent clients of the clients experiment; default 100
	Receivers   int           // receivers of one sender in fanout; default 8
	ReaderBps   float64       // slow-receiver's reading pace, bits/s; default 80 Mbit/s (10 MB/s)
	Net         transport.NetOptions
	Lab         *LabConfig // cross an emulated link (Linux, CAP_NET_ADMIN); nil = loopback
	Far         Far        // run the server halves on another host (remote mode); nil = in this process
	Reverse     bool       // stream: the server half sends and this host receives (on one host, or with Far)
	Bidir       bool       // stream: both send at once, each direction counted by its receiver
	Command     string     // the command line, recorded in the report
	suite       bool       // Experiments is the default suite, not the caller's choice
	spread      bool       // Repeat and Duration are DefaultRepeat × DefaultRunDuration, not the caller's choice
	Quick       bool       // recorded in the report

	// Progress, when set, is called before and after every cell, from Run's goroutine.
	Progress func(ProgressEvent)
}

// LabConfig asks for the run to cross the impairment lab's emulated link instead of
// loopback.
type LabConfig struct {
	Name     string     // preset name, or "" for a custom link
	Up, Down lab.Impair // client to server, server to client
}

// ProgressEvent tells a progress display where a run is.
type ProgressEvent struct {
	Index, Total int            // cell number, 1-based, and the cell count
	Done         bool           // false before the cell runs, true after
	Result       *report.Result // when Done
	Expected     time.Duration
}

// Limits of the flags, as errors name them.
const (
	MaxStreams   = 1024
	MaxRepeat    = 100
	MaxSize      = 1 << 24
	MaxClients   = 4096
	MaxReceivers = 64
	MaxPingRate  = 1000000 // pingpong requests/s in open loop
)

// How long a plan measures when the caller does not say. A plan that sets none of
// Repeat, Duration and Count runs each measurement cell DefaultRepeat times for
// DefaultRunDuration each, so every figure comes with its spread over runs
// (report.Repeat), and each property cell once for DefaultDuration, as before. Each
// run has its own warm-up (200 ms by default), so the three runs of a measurement
// cell take 3 × (0.8 + 0.2) = 3.0 s: no longer than the one 3 s run and its warm-up
// (3.2 s) they replace, which leaves room for the two extra drains and set-ups.
//
// A plan that sets Repeat or Duration gets what it asks for: Repeat runs (default 1)
// of Duration (default DefaultDuration) for every cell, as before there were spread
// defaults; so does one with Count (Repeat default 1).
const (
	DefaultRepeat      = 3
	DefaultRunDuration = 800 * time.Millisecond
	DefaultDuration    = 3 * time.Second
)

// NoWarmup is the Plan.Warmup of a plan with no warm-up at all: zero means the default.
const NoWarmup time.Duration = -1

// WithDefaults returns p with every zero field set to its default. It may be applied
// any number of times: a field asking for none (a negative Warmup or Drain) keeps
// saying so, and the runner reads it as zero.
func (p Plan) WithDefaults() Plan {
	if len(p.Transports) == 0 {
		p.Transports = []string{"tcp", "udp"}
	}
	if len(p.Experiments) == 0 {
		// Against a far end too: the report has the loopback report's shape, and a cell
		// the far end cannot run yet says so (farSkipped).
		p.suite = true
		for _, x := range Experiments() {
			spec, _ := experimentByName(x)
			if spec.optional || p.Lab == nil && spec.labOnly {
				continue // asked for by name only; or it shows what a lossy or slow link does: the lab section runs it
			}
			p.Experiments = append(p.Experiments, x)
		}
	}
	if len(p.Sizes) == 0 {
		p.Sizes = []int{64, 1024, 8192}
	}
	if p.Streams == 0 {
		p.Streams = 1
	}
	if len(p.UDPIO) == 0 {
		p.UDPIO = []string{report.IOBatched, report.IOTextbook}
	}
	if p.Repeat == 0 && p.Duration == 0 && p.Count == 0 {
		p.spread = true
		p.Repeat, p.Duration = DefaultRepeat, DefaultRunDuration
	}
	if p.Duration == 0 && p.Count == 0 {
		p.Duration = DefaultDuration
	}
	if p.Repeat == 0 {
		p.Repeat = 1
	}
	if p.Host == "" {
		p.Host = "127.0.0.1"
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Warmup == 0 {
		p.Warmup = 200 * time.Millisecond
	}
	if p.Drain == 0 {
		p.Drain = time.Second
	}
	if p.Timeout == 0 {
		p.Timeout = 200 * time.Millisecond
	}
	if p.Batch == 0 {
		p.Batch = 64
	}
	if p.Net.Batch == 0 {
		p.Net.Batch = p.Batch // the sockets' batch is the calls' (udp.Options.Batch)
	}
	if p.Clients == 0 {
		p.Clients = 100
	}
	if p.Receivers == 0 {
		p.Receivers = 8
	}
	if p.ReaderBps == 0 {
		p.ReaderBps = 80e6
	}
	return p
}

// warmup is the warm-up the runner runs: Warmup, or 0 for none.
func (p Plan) warmup() time.Duration { return max(p.Warmup, 0) }

// drain is the longest drain the runner waits: Drain, or 0 for none.
func (p Plan) drain() time.Duration { return max(p.Drain, 0) }

// PropertyDuration is how long the plan (after WithDefaults) runs a property
// experiment's cell: Duration, or DefaultDuration when Duration is the spread
// default's per-run time (property cells run once).
func (p Plan) PropertyDuration() time.Duration {
	if p.spread {
		return DefaultDuration
	}
	return p.Duration
}

// SpreadDefault reports whether the plan (after WithDefaults) runs the default
// DefaultRepeat × DefaultRunDuration because the caller set none of Repeat,
// Duration and Count.
func (p Plan) SpreadDefault() bool { return p.spread }

// Validate checks a plan (after WithDefaults). Errors name the flag, the rule and the
// value, e.g. "--sizes: must be 48..65507 for udp, got 70000".
func (p Plan) Validate() error {
	for _, t := range p.Transports {
		if !slices.Contains(transport.Names(), t) {
			return fmt.Errorf("--transports: unknown transport %q (known: %s)", t, strings.Join(transport.Names(), ", "))
		}
	}
	for _, x := range p.Experiments {
		if _, ok := experimentByName(x); !ok {
			return fmt.Errorf("--experiments: unknown experiment %q (known: %s)", x, strings.Join(Experiments(), ", "))
		}
	}
	for _, s := range p.Sizes {
		for _, t := range p.Transports {
			nw, _ := transport.NetworkByName(t, p.Net)
			if s < wire.HeaderLen || s > nw.MaxMessage() {
				return fmt.Errorf("--sizes: must be %d..%d for %s (the header takes %d bytes), got %d", wire.HeaderLen, nw.MaxMessage(), t, wire.HeaderLen, s)
			}
		}
	}
	switch {
	case p.Streams < 1 || p.Streams > MaxStreams:
		return fmt.Errorf("--streams: must be 1..%d, got %d", MaxStreams, p.Streams)
	case p.Duration < 0:
		return fmt.Errorf("--duration: must not be negative, got %v", p.Duration)
	case p.Count == 0 && p.Duration < 10*time.Millisecond:
		return fmt.Errorf("--duration: must be at least 10ms, got %v", p.Duration)
	case p.RateBps < 0:
		return fmt.Errorf("--rate: must not be negative, got %v", p.RateBps)
	case p.PingRate < 0 || p.PingRate > MaxPingRate || math.IsNaN(p.PingRate):
		return fmt.Errorf("--ping-rate: must be 0..%d requests/s, got %v", MaxPingRate, p.PingRate)
	case p.Repeat < 1 || p.Repeat > MaxRepeat:
		return fmt.Errorf("--repeat: must be 1..%d, got %d", MaxRepeat, p.Repeat)
	case p.Port < 0 || p.Port > 65535:
		return fmt.Errorf("--port: must be 0..65535, got %d", p.Port)
	case p.Timeout <= 0:
		return fmt.Errorf("--timeout: must be positive, got %v", p.Timeout)
	case p.Batch < 1 || p.Batch > 1024:
		return fmt.Errorf("--batch: must be 1..1024, got %d", p.Batch)
	case p.Net.Batch < 0 || p.Net.Batch > 1024:
		return fmt.Errorf("--batch: sockets' batch must be 1..1024, got %d", p.Net.Batch)
	case slices.ContainsFunc(p.UDPIO, func(m string) bool { return m != report.IOBatched && m != report.IOTextbook }):
		return fmt.Errorf("--udp-io: want %s, %s or both, comma-separated, got %q", report.IOBatched, report.IOTextbook, strings.Join(p.UDPIO, ","))
	case p.Clients < 1 || p.Clients > MaxClients:
		return fmt.Errorf("--clients: must be 1..%d, got %d", MaxClients, p.Clients)
	case p.Receivers < 1 || p.Receivers > MaxReceivers:
		return fmt.Errorf("--receivers: must be 1..%d, got %d", MaxReceivers, p.Receivers)
	case p.ReaderBps < 8e3:
		return fmt.Errorf("--reader-rate: must be at least 8k bits/s, got %v", p.ReaderBps)
	}
	if _, err := openLoopRing(p.PingRate, p.Timeout); p.PingRate > 0 && err != nil {
		return fmt.Errorf("--ping-rate and --timeout: %w", err)
	}
	if ip := net.ParseIP(p.Host); ip == nil {
		return fmt.Errorf("--host: must be an IP address, got %q", p.Host)
	}
	return checkFar(p)
}

// cell is one experiment over one transport with one set of params.
type cell struct {
	exp, transport string
	params         report.Params
	runs           int // how many times it runs (Plan.Repeat, or 1: PropertyDuration)
}

// cells lists the plan's cells in run order: transports interleave within each
// experiment and size, so drift on a noisy host hits both alike.
func (p Plan) cells() []cell {
	var cs []cell
	for _, x := range p.Experiments {
		spec, _ := experimentByName(x)
		if !spec.measures {
			// A property experiment shows behaviour once, at one size.
			// Under the spread default, once for DefaultDuration.
			runs := p.Repeat
			if p.spread {
				runs = 1
			}
			for _, t := range p.Transports {
				cs = append(cs, cell{x, t, report.Params{Size: spec.sizes(p)[0], Streams: 1, Clients: p.Clients,
					Receivers: p.Receivers, ReaderBps: p.ReaderBps, DurationS: p.PropertyDuration().Seconds(), Count: p.Count}, runs})
			}
			continue
		}
		streams, rate, pingRate := 1, 0.0, 0.0
		if spec.streams {
			streams, rate = p.Streams, p.RateBps
		}
		if spec.openLoop {
			pingRate = p.PingRate
		}
		for _, s := range spec.sizes(p) {
			for _, t := range p.Transports {
				ps := report.Params{Size: s, Streams: streams, RateBps: rate, PingRate: pingRate, DurationS: p.Duration.Seconds(), Count: p.Count,
					Reverse: p.Reverse && spec.directions, Bidir: p.Bidir && spec.directions}
				if !spec.ioModes || !transport.CapsOf(t).TextbookIO {
					cs = append(cs, cell{x, t, ps, p.Repeat})
					continue
				}
				// UDP streams run in each I/O mode asked for: batched with offloads, and
				// as the textbook sends, so a reader sees what each costs.
				for _, m := range p.UDPIO {
					ps.IO = ""
					if m == report.IOTextbook {
						ps.IO = report.IOTextbook
					}
					cs = append(cs, cell{x, t, ps, p.Repeat})
				}
			}
		}
	}
	return cs
}

// duration is how long one run of c measures (0 in count mode).
func (c cell) duration() time.Duration {
	return time.Duration(math.Round(c.params.DurationS * float64(time.Second)))
}

// Run measures the plan and returns the report. A cell that fails is reported with
// its error and the run goes on; Run fails only when ctx ends it or the plan is
// invalid, and then returns the report of what was measured so far.
func Run(ctx context.Context, p Plan) (*report.Report, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	rep := &report.Report{
		Schema: report.Schema,
		Tool:   "tcpvsudp " + Version,
		Env:    hostEnv(),
		Config: report.Config{
			Command: p.Command, Transports: p.Transports, Experiments: p.Experiments, Sizes: p.Sizes,
			Streams: p.Streams, DurationS: p.Duration.Seconds(), Count: p.Count, RateBps: p.RateBps,
			Repeat: p.Repeat, Port: p.Port, Seed: p.Seed, Quick: p.Quick, WarmupS: p.warmup().Seconds(),
			DrainS: p.drain().Seconds(), TimeoutS: p.Timeout.Seconds(), NoDelay: p.Net.NoDelay,
			RecvBuffer: p.Net.RecvBuffer, SendBuffer: p.Net.SendBuffer,
			Clients: p.Clients, Receivers: p.Receivers, ReaderBps: p.ReaderBps,
			Started: started.UTC().Format(time.RFC3339), BusyPoll: p.Net.BusyPoll, NoGSO: p.Net.NoGSO, Batch: p.Batch,
			UDPIO:  p.UDPIO,
			Verify: p.Verify.String(),
		},
	}
	address := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	rep.Env.Link = report.Link{Kind: "loopback", Addr: address, MTU: loopbackMTU()}
	e := &runEnv{epoch: started, run: newRunID(), seed: p.Seed, address: address,
		warmup: p.warmup(), drain: p.drain(), timeout: p.Timeout, batch: p.Batch, verify: p.Verify, far: p.Far, net: p.Net}
	if p.Far == nil {
		e.rx = &rxModes{}
	}
	if p.Far != nil {
		rep.Env.Link = p.Far.Link()
	}
	if p.Lab != nil {
		l, err := lab.New(ctx, lab.Config{Up: p.Lab.Up, Down: p.Lab.Down, Seed: p.Seed, Classify: classifyData})
		if err != nil {
			return nil, fmt.Errorf("emulated link (--link/--impair): %w", err)
		}
		defer l.Close()
		e.lab = l
		e.linkRate = p.Lab.Up.RateBps
		e.address = labAddress(strconv.Itoa(p.Port))
		rep.Env.Link = labLink(p.Lab, p.Seed, e.address)
		rep.Env.GOMAXPROCS = runtime.GOMAXPROCS(0) // what the cells run with: an open lab adds processors for its readers
		// Requests and stragglers take the link's time: stretch the waits by it.
		extra := linkTime(p.Lab.Up) + linkTime(p.Lab.Down)
		e.timeout += 2 * extra
		e.drain += 2 * extra
		e.linkIdle = extra + time.Second
	}
	if p.Far == nil { // across hosts each end describes its data-path endpoints (farSockets)
		rep.Env.Sockets = grantedSockets(ctx, p, e)
		rep.Warnings = append(rep.Warnings, busyPollWarnings(rep.Env.Sockets)...)
	}

	cs := p.cells()
	total := 0
	for _, c := range cs {
		total += c.runs
	}
	runs := make([][]report.Metrics, len(cs))
	last := make([]outcome, len(cs)) // the latest successful run's observations
	warns := make([][]string, len(cs))
	errs := make([]string, len(cs))
	intr := make([]bool, len(cs))  // errs[i] is an interruption
	begun := make([]bool, len(cs)) // some run of cell i started
	idx := 0
	var runErr error
	var stop stopped // where the run stopped early, if it did
outer:
	for r := 0; r < p.Repeat; r++ {
		for i, c := range cs {
			if r >= c.runs {
				continue // a property cell under the spread default runs once
			}
			if err := ctx.Err(); err != nil {
				runErr = err
				if stop.cell == "" { // interrupted between two cells
					stop = stopped{cell: c.String(), run: r + 1, runs: c.runs, before: true}
				}
				break outer
			}
			idx++
			begun[i] = true
			if p.Progress != nil {
				p.Progress(ProgressEvent{Index: idx, Total: total, Expected: c.duration() + p.warmup(), Result: &report.Result{Experiment: c.exp, Transport: c.transport, Params: c.params}})
			}
			o, err := runCell(ctx, e, p, c)
			interrupted := err != nil && ctx.Err() != nil
			m, w := o.m, o.warns
			res := &report.Result{Experiment: c.exp, Transport: c.transport, Params: c.params, Metrics: m, Warnings: w, Observed: o.observed, Series: o.series, Timelines: o.lines, Injected: o.injected}
			if err != nil {
				res.Error, res.Interrupted = err.Error(), interrupted
				if errs[i] == "" {
					errs[i], intr[i] = err.Error(), interrupted
					if c.runs > 1 {
						errs[i] = fmt.Sprintf("run %d: %v", r+1, err)
					}
				}
				if stop.cell == "" && (interrupted || farLost(p.Far) != nil) {
					stop = stopped{cell: c.String(), run: r + 1, runs: c.runs, index: idx}
				}
			} else {
				runs[i] = append(runs[i], m)
				last[i] = o
			}
			for _, s := range w {
				if !slices.Contains(warns[i], s) {
					warns[i] = append(warns[i], s)
				}
			}
			if p.Progress != nil {
				p.Progress(ProgressEvent{Index: idx, Total: total, Done: true, Result: res})
			}
		}
	}
	if runErr == nil && stop.cell != "" && ctx.Err() != nil {
		runErr = ctx.Err() // interrupted in the last cell
	}
	for i, c := range cs {
		res := report.Result{Experiment: c.exp, Transport: c.transport, Params: c.params, Warnings: warns[i],
			Observed: last[i].observed, Series: last[i].series, Timelines: last[i].lines, Injected: last[i].injected}
		if len(runs[i]) == 0 {
			if !begun[i] {
				// Never ran: the run was interrupted first.
				rep.NotRun = append(rep.NotRun, report.Cell{Experiment: c.exp, Transport: c.transport, Params: c.params})
				continue
			}
			res.Error, res.Interrupted = errs[i], intr[i]
		} else {
			m, rp, w := CombineMetrics(runs[i])
			res.Metrics, res.Repeat = m, rp
			for _, s := range w {
				if len(runs[i]) < 6 && strings.Contains(s, "CI needs") {
					continue // no CI from fewer runs: the renderers show the runs' range (Spread), and say so
				}
				res.Warnings = append(res.Warnings, s)
			}
			if errs[i] != "" {
				res.Warnings = append(res.Warnings, "some runs failed: "+errs[i])
			}
		}
		res.Warnings = append(res.Warnings, honesty(res, rep.Env.Link)...)
		rep.Results = append(rep.Results, res)
	}
	if rep.Env.Sockets != nil {
		e.rx.addTo(rep.Env.Sockets)
	}
	if p.Far != nil {
		rep.Env.Peer = p.Far.PeerEnv()
		rep.Warnings = append(rep.Warnings, farSockets(p.Far, &rep.Env)...)
	}
	switch lost := farLost(p.Far); {
	case runErr != nil:
		rep.Incomplete = stop.interrupted(context.Cause(ctx), p.Repeat, idx, total)
	case lost != nil:
		rep.Incomplete = stop.lost(lost, p.Repeat, total)
	}
	if rep.Incomplete != "" {
		rep.Warnings = append(rep.Warnings, "incomplete: "+rep.Incomplete)
	}
	rep.Properties = report.Derive(rep, propertyRules())
	rep.Warnings = append(rep.Warnings, runWarnings(p)...)
	rep.Warnings = append(rep.Warnings, experimentWarnings(rep.Results)...)
	rep.Config.WallS = time.Since(started).Seconds()
	AddSections(rep)
	return rep, runErr
}

// String names the cell as errors and reports do: "stream over tcp (size 1024)".
func (c cell) String() string { return report.CellName(c.exp, c.transport, c.params) }

// stopped is where a run stopped before its end: the cell running then (or, with
// before, the cell it was about to start) and its run number (--repeat).
type stopped struct {
	cell   string
	run    int
	runs   int  // the cell's runs
	index  int  // the cell run's 1-based place among all cell runs; 0 with before
	before bool // stopped between cells: cell had not started
}

// where names the cell and, with several runs per cell, which run of it.
func (s stopped) where(repeat int) string {
	if s.runs > 0 {
		repeat = s.runs // a property cell under the spread default runs once
	}
	if repeat > 1 {
		return fmt.Sprintf("run %d of %d of %s", s.run, repeat, s.cell)
	}
	return s.cell
}

// interrupted is Report.Incomplete for a run stopped by its context (cause, e.g.
// "interrupt signal received"), when ran of total cell runs had started.
func (s stopped) interrupted(cause error, repeat, ran, total int) string {
	what := "cells"
	if repeat > 1 {
		what = "cell runs"
	}
	if s.before {
		return fmt.Sprintf("interrupted (%v) before %s: %d of %d %s did not run", cause, s.where(repeat), total-ran, total, what)
	}
	none := "which has no figures"
	if repeat > 1 {
		none = "that run has no figures" // the cell keeps its earlier runs'
	}
	if ran == total {
		return fmt.Sprintf("interrupted (%v) during %s, the last, %s", cause, s.where(repeat), none)
	}
	return fmt.Sprintf("interrupted (%v) during %s, %s: %d of %d %s did not run", cause, s.where(repeat), none, total-ran, total, what)
}

// lost is Report.Incomplete for a run whose remote server was lost (why): the cells
// from the one running then on have no figures.
func (s stopped) lost(why error, repeat, total int) string {
	if s.cell == "" {
		return fmt.Sprintf("the remote server was lost (%v) after the last cell: every cell has its figures", why)
	}
	what := "cells"
	if repeat > 1 {
		what = "cell runs"
	}
	return fmt.Sprintf("the remote server was lost (%v) during %s: it and the %d %s after it have no figures", why, s.where(repeat), total-s.index, what)
}

// runCell runs one cell over a fresh Network. A cell the context ends while it runs
// fails as interrupted, saying after how long, even if its experiment returned no
// error: its figures cover only part of the cell. So does a cell whose far half did
// not complete (ErrFarIncomplete).
func runCell(ctx context.Context, e *runEnv, p Plan, c cell) (outcome, error) {
	start := time.Now()
	opts := labNetOptions(p.Net, e.lab != nil, c.transport)
	if c.params.IO == report.IOTextbook {
		// One datagram per call, no offloads, at both ends (a far end's too: its
		// socket flags come from e).
		ce := *e
		ce.batch, ce.net.NoGSO, opts.NoGSO = 1, true, true
		ce.net.Batch, opts.Batch = 1, 1
		e = &ce
	}
	nw, err := transport.NetworkByName(c.transport, opts)
	if err != nil {
		return outcome{}, err
	}
	var lc *labCell
	if e.lab != nil {
		lc = startLabCell(ctx, e.lab, nw, e.linkIdle)
		nw = labNetwork{Network: nw, lab: e.lab}
		ce := *e
		ce.onMeasured = lc.measured
		e = &ce
	}
	if e.far != nil && !slices.Contains(FarExperiments, c.exp) {
		return farSkipped(c.exp), nil
	}
	if e.far != nil {
		ce := *e
		ce.farDone = &farFinishes{}
		e = &ce
	}
	spec, _ := experimentByName(c.exp)
	o, err := spec.run(ctx, e, nw, c.params)
	if err == nil && e.farDone != nil {
		// This side measured the cell, but the far end's half did not complete: its
		// figures cover part of the cell at most, so the cell is not a measurement.
		err = e.farDone.err()
	}
	if lost := farLost(e.far); err != nil && lost != nil && !errors.Is(err, lost) {
		// The cell's own error is what its sockets saw (a reset, a closed endpoint);
		// the cause is the session's.
		err = fmt.Errorf("server lost (%v): %w", lost, err)
	}
	if lc != nil {
		in, w := lc.finish(ctx, o.m.SentMsgs-min(o.m.DropsSender, o.m.SentMsgs))
		o.injected = in
		o.warns = append(o.warns, w...)
	}
	if ctx.Err() != nil {
		err = interrupted(ctx, time.Since(start), err)
	}
	if err != nil {
		return o, fmt.Errorf("%s: %w", c, err)
	}
	return o, nil
}

// interrupted is the error of a cell the context ended after it ran for d: the
// context's cause ("interrupt signal received"), and the cell's own error unless it
// only follows from the interruption (the context's error, or a socket the
// cancellation closed).
func interrupted(ctx context.Context, d time.Duration, err error) error {
	cause := context.Cause(ctx)
	if err == nil || errors.Is(err, ctx.Err()) || errors.Is(err, cause) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("interrupted (%w) after %s, before the cell finished", cause, units.Secs(d.Seconds()))
	}
	return fmt.Errorf("interrupted (%w) after %s, before the cell finished: %w", cause, units.Secs(d.Seconds()), err)
}

// runWarnings are caveats that hold for the whole run.
func runWarnings(p Plan) []string {
	var w []string
	if s := farSkipWarning(p); s != "" {
		w = append(w, s)
	}
	return w
}

// experimentWarnings is what each experiment's registry entry says of all its
// results in the run (experimentSpec.runWarnings), in the registry's order.
func experimentWarnings(rs []report.Result) []string {
	var w []string
	for _, x := range experimentRegistry {
		if x.runWarnings == nil {
			continue
		}
		var own []report.Result
		for _, r := range rs {
			if r.Experiment == x.name {
				own = append(own, r)
			}
		}
		if len(own) > 0 {
			w = append(w, x.runWarnings(own)...)
		}
	}
	return w
}

// busyPollWarnings says when receivers spin (--busy-poll) but the kernel refused
// SO_BUSY_POLL on their sockets.
func busyPollWarnings(socks map[string]report.Sock) []string {
	var refused []string
	for _, tr := range slices.Sorted(maps.Keys(socks)) {
		if sk := socks[tr]; sk.BusyPoll && sk.BusyPollUs == 0 {
			refused = append(refused, tr)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return []string{"--busy-poll: the kernel refused SO_BUSY_POLL on " + strings.Join(refused, " and ") +
		" sockets (raising it above net.core.busy_read needs CAP_NET_ADMIN); receivers still spin on non-blocking reads, " +
		"which is what lowers latency on loopback (SO_BUSY_POLL polls NAPI device queues, and lo has none)"}
}

// ethernetPayload is the largest UDP payload that fits a 1500-byte Ethernet MTU
// unfragmented over IPv4: 1500 − 20 (IP) − 8 (UDP).
const ethernetPayload = 1472

// honesty returns the warnings a result must carry because of how it was measured:
// datagrams that would fragment on a real link (PITFALLS 3), and counts that break
// the accounting identity sent = received − duplicates + lost (PITFALLS 4).
func honesty(r report.Result, link report.Link) []string {
	var w []string
	if transport.CapsOf(r.Transport).Datagrams && r.Params.Size > ethernetPayload {
		frags := (r.Params.Size + 8 + 1479) / 1480 // IPv4 fragments carry 1480 bytes
		if link.Kind == "loopback" {
			w = append(w, fmt.Sprintf("%d-byte datagrams exceed a 1500-byte MTU: on a real link each would travel as %d IP fragments, and losing one loses the datagram; loopback (MTU %d) does not fragment", r.Params.Size, frags, loopbackMTU()))
		} else {
			w = append(w, fmt.Sprintf("%d-byte datagrams exceed a 1500-byte MTU: on such a link each travels as %d IP fragments, and losing one loses the datagram", r.Params.Size, frags))
		}
	}
	if x, _ := experimentByName(r.Experiment); x.cellWarnings != nil {
		w = append(w, x.cellWarnings(r)...)
	}
	return w
}

// Version is the tool's version, as reports record it.
var Version = "0.1.0"

func newRunID() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano()) | 1
	}
	return binary.LittleEndian.Uint64(b[:]) | 1 // never zero
}

// HostEnv describes this host and its Go runtime (no link, no sockets): what a far
// end reports of itself.
func HostEnv() report.Env { return hostEnv() }

func hostEnv() report.Env {
	host, _ := os.Hostname()
	return report.Env{Host: host, OS: runtime.GOOS, Arch: runtime.GOARCH, Kernel: kernelRelease(),
		Go: runtime.Version(), CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
}

// A farSocketer is a Far that describes both ends' data-path endpoints over the run
// (bench/farend's Far): what each end's kernel granted and how they sent.
type farSocketer interface {
	Sockets() (local, peer map[string]report.Sock)
}

// farSockets records both ends' data-path endpoints in env (this host's in Sockets,
// the far end's in Peer.Sockets) and returns a warning for each refusal, naming the
// end.
func farSockets(f Far, env *report.Env) []string {
	fs, ok := f.(farSocketer)
	if !ok {
		return nil
	}
	local, peer := fs.Sockets()
	var warns []string
	if len(local) > 0 {
		env.Sockets = local
		for _, tr := range slices.Sorted(maps.Keys(local)) {
			for _, r := range local[tr].Refused {
				warns = append(warns, "this host: "+r)
			}
		}
	}
	if len(peer) > 0 {
		if env.Peer == nil {
			env.Peer = &report.Env{}
		} else {
			p := *env.Peer // the Far's: not to be written
			env.Peer = &p
		}
		env.Peer.Sockets = peer
		for _, tr := range slices.Sorted(maps.Keys(peer)) {
			for _, r := range peer[tr].Refused {
				warns = append(warns, "the server: "+r)
			}
		}
	}
	return warns
}

// grantedSockets opens one client endpoint per transport and records the buffer
// sizes the kernel granted it.
func grantedSockets(ctx context.Context, p Plan, e *runEnv) map[string]report.Sock {
	out := make(map[string]report.Sock)
	host, _, _ := net.SplitHostPort(e.address)
	for _, name := range p.Transports {
		nw, err := transport.NetworkByName(name, labNetOptions(p.Net, e.lab != nil, name))
		if err != nil {
			continue
		}
		if e.lab != nil {
			nw = labNetwork{Network: nw, lab: e.lab}
		}
		nw = transport.ReceiverNetwork(nw) // gro: what a stream's receiver uses
		l, err := nw.Listen(ctx, net.JoinHostPort(host, "0"))
		if err != nil {
			continue
		}
		t, err := nw.Dial(ctx, l.Addr().String())
		if err == nil {
			if sk := SocketsOf([]transport.Transport{t}, p.Batch); sk.RecvBuffer > 0 || sk.SendBuffer > 0 {
				sk.DataSockets = 0 // a probe, not a data socket
				sk.Verify = p.Verify.String()
				out[name] = sk
			}
			t.Close()
		}
		l.Close()
	}
	return out
}

func loopbackMTU() int {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			return i.MTU
		}
	}
	return 0
}

// linkTime is the most one direction of a link can hold a packet: delay, jitter,
// the hold of a reordered packet, and a full queue at the link rate.
func linkTime(im lab.Impair) time.Duration {
	d := im.Delay + im.Jitter + im.ReorderBy + time.Millisecond
	if im.RateBps > 0 {
		q := cmp.Or(im.Queue, lab.DefaultQueue)
		mtu := cmp.Or(im.MTU, lab.DefaultMTU)
		d += time.Duration(float64(q*mtu*8) / im.RateBps * float64(time.Second))
	}
	return d
}

// offloader is a transport that reports the segmentation offloads its socket uses
// (probed once at open).
type offloader interface{ Offload() (gso, gro bool) }
