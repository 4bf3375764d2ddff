package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// runFlags are the flags of `tcpvsudp run`, as typed.
type runFlags struct {
	transports, experiments, sizes, rate string
	udpIO                                string
	streams, repeat, port, batch         int
	duration, warmup, drain, timeout     time.Duration
	count                                uint64
	pingRate                             string
	out, host                            string
	quick, nodelay, noFiles, noGSO       bool
	busyPoll                             bool
	verify                               string
	seed                                 int64
	rcvbuf, sndbuf                       string
	clients, receivers                   int
	readerRate                           string
	server, keyFile                      string
	reverse, bidir                       bool
	impair, impairUp, impairDown, link   string
	verbose                              bool
	noLab                                bool
}

var runLong = `Run measures the same workloads over TCP and over UDP and prints them side by side.

` + experimentList() + `

Every message carries a 48-byte header (run, flow, 64-bit sequence number, send
time, CRC32C), so --sizes counts from 48. Loss, duplicates and reordering come from
sequence numbers, never from byte counts. Receivers check the header's and the
payload's CRC32C; --verify header skips the payload's (a cost iperf3 never pays).

Emulated link (Linux, root): --link NAME or --impair SPEC runs the experiments
between two network namespaces joined by a userspace link emulator (the kernel needs
no netem). Each direction drops, delays, reorders, duplicates, corrupts and rate-
limits packets from a seeded random source (--seed), and the report sets what the
link injected beside what the transports measured. SPEC keys:
` + impairKeys() + `

Results: the verdict and compact tables on stdout (-v: every table), DIR/report.json
(the source of truth) and DIR/report.md.`

const runExample = `  tcpvsudp run                                   # the default suite, about a minute
  tcpvsudp run --quick                           # a few seconds
  tcpvsudp run -e stream --sizes 1400 --rate 2G  # paced UDP at 2 Gbit/s beside TCP
  tcpvsudp run -e stream --count 100000          # exactly 100000 messages per stream
  tcpvsudp run --repeat 6                        # median and 95% CI of 6 runs
  tcpvsudp run -e pingpong --busy-poll           # lowest RTT, paid for in CPU cores`

func newRootCmd(ctx context.Context, stdout, stderr io.Writer) *cobra.Command {
	rf := &runFlags{}
	runCmd := &cobra.Command{
		Use:     "run",
		Short:   "Measure TCP and UDP side by side (the default command)",
		Long:    runLong,
		Example: runExample,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return doRun(cmd.Context(), cmd.Flags(), rf, commandLine(), stdout, stderr)
		},
	}
	addRunFlags(runCmd.Flags(), rf)

	var format, mdOut string
	var verbose bool
	reportCmd := &cobra.Command{
		Use:   "report FILE.json",
		Short: "Render a saved report again: tables to stdout, markdown beside it",
		Long: `Report reads a report.json written by 'tcpvsudp run' and renders it again:
terminal tables (or markdown, or JSON) on stdout, and the markdown report to
--markdown (default: FILE with .md for .json; '' to skip).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("report: want one FILE.json, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return doReport(args[0], format, mdOut, cmd.Flags().Changed("markdown"), verbose, stdout)
		},
	}
	reportCmd.Flags().StringVar(&format, "format", "text", "what to print on stdout: text, markdown or json")
	reportCmd.Flags().StringVar(&mdOut, "markdown", "", "where to write the markdown report (default FILE.md beside FILE.json; '' = nowhere)")
	reportCmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "text: every table, with each property's claim and evidence, each table's notes and every warning (default: the verdict and compact tables of the measurements)")

	root := &cobra.Command{
		Use:   "tcpvsudp",
		Short: "TCP and UDP side by side, in measured numbers",
		Long: `tcpvsudp runs the same workloads over TCP and over UDP and shows, in measured
numbers, how they differ: connection setup, reliability, ordering, flow control,
message boundaries, and what each costs in throughput, round-trip time and CPU.

With no command it runs 'tcpvsudp run' with the default suite.`,
		Args:          noArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return doRun(cmd.Context(), cmd.Flags(), rf, commandLine(), stdout, stderr)
		},
	}
	addRunFlags(root.Flags(), rf)
	root.AddCommand(runCmd, reportCmd, newServeCmd(stderr))
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	for _, c := range []*cobra.Command{runCmd, reportCmd} {
		c.SilenceUsage, c.SilenceErrors = true, true
	}
	_ = ctx
	return root
}

// noArgs refuses arguments where a command takes none (run, and the root command
// that runs it): a usage error, with a hint when the argument is an experiment or a
// transport, a flag's value given without its flag.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	a := args[0]
	hint := fmt.Sprintf("the commands are run, serve and report; see '%s --help'", cmd.Root().Name())
	switch {
	case slices.Contains(bench.Experiments(), a):
		hint = fmt.Sprintf("to run one experiment: %s run -e %s", cmd.Root().Name(), a)
	case slices.Contains(bench.Transports(), a):
		hint = fmt.Sprintf("to run one transport: %s run -t %s", cmd.Root().Name(), a)
	}
	if cmd.HasParent() {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (%s)", cmd.CommandPath(), a, hint)}
	}
	return usageError{fmt.Errorf("unknown command %q (%s)", a, hint)}
}

func addRunFlags(fs *pflag.FlagSet, rf *runFlags) {
	fs.StringVarP(&rf.transports, "transports", "t", "tcp,udp", "transports to compare, comma-separated: tcp, udp")
	fs.StringVarP(&rf.experiments, "experiments", "e", "", "experiments to run, comma-separated (see 'Experiments' above); default: all but bottleneck and hol on loopback, all across an emulated link")
	fs.StringVarP(&rf.sizes, "sizes", "s", "64,1024,8192", "message sizes in bytes, comma-separated; each 48..65507 for udp, 48..16777216 for tcp (the 48-byte header included)")
	fs.IntVarP(&rf.streams, "streams", "P", 1, "parallel streams for stream, 1..1024; each has its own client socket and flow")
	fs.DurationVarP(&rf.duration, "duration", "d", 3*time.Second, "time per cell (one experiment, transport and size), e.g. 500ms, 3s; ignored with --count")
	fs.Uint64VarP(&rf.count, "count", "n", 0, "exact messages per stream (stream), round trips (pingpong) or transactions (connect) per cell; 0 = run for --duration")
	fs.StringVarP(&rf.rate, "rate", "r", "0", "stream pacing over all streams, bits/s with a unit: 500M, 1.5G, 800k; 0 = unpaced (as fast as the transport takes it)")
	fs.StringVar(&rf.pingRate, "ping-rate", "0", "pingpong open loop: send this many requests/s (5000, 5k, 1M) on a fixed timetable, whether or not replies came back, "+
		"and measure each RTT from the request's scheduled send time, so a stall delays every request due during it (no coordinated omission); "+
		"0 = closed loop (one request at a time, the next only after the reply: a stall delays one request and hides the queue behind it)")
	fs.IntVarP(&rf.repeat, "repeat", "R", 1, "runs per cell, 1..100; each figure is then the median, with a 95% CI from 6 runs up")
	fs.IntVarP(&rf.port, "port", "p", 0, "server port for the data sockets, 0..65535; 0 = an ephemeral port per cell")
	fs.StringVar(&rf.host, "host", "127.0.0.1", "address the server end listens on and the client dials, one of this host's: loopback (127.0.0.1, ::1), 0.0.0.0, :: or an interface's address")
	fs.StringVar(&rf.server, "server", "", "remote mode: run the server halves on 'tcpvsudp serve' at HOST[:PORT] (port 5299 by default) instead of in this process; "+
		"experiments so far: "+strings.Join(bench.FarExperiments, ", "))
	fs.BoolVar(&rf.reverse, "reverse", false, "stream the other way, the server half sending and this host receiving and counting (like iperf3 -R); on loopback or with --server, not on an emulated link yet")
	fs.BoolVar(&rf.bidir, "bidir", false, "stream both ways at once, this host's senders to the server half and its senders to this host (on loopback or with --server, not on an emulated link yet), "+
		"each direction counted by its receiver (like iperf3 --bidir); --rate paces each direction, and a cell's figures are both directions summed "+
		"(goodput too; the report's observed keeps each apart)")
	fs.StringVar(&rf.keyFile, "key-file", "", "with --server: the pre-shared key the server was started with (a regular file only its owner may access)")
	fs.StringVarP(&rf.out, "out", "o", "results", "directory for report.json and report.md, made if missing; checked writable before anything is measured (results/ is ignored by git; the committed reference run is results/reference/)")
	fs.BoolVar(&rf.noFiles, "no-files", false, "print the tables only; write nothing under --out")
	fs.BoolVarP(&rf.verbose, "verbose", "v", false, "stdout: every table, with each property's claim and evidence, each table's notes and every warning (default: the verdict and compact tables of the measurements)")
	fs.BoolVarP(&rf.quick, "quick", "q", false, "a short suite: --duration 500ms, --sizes 64,1024, shorter warm-up and drain (flags given explicitly still win)")
	fs.Int64Var(&rf.seed, "seed", 1, "seed of the pseudo-random payload (recorded in the report)")
	fs.DurationVar(&rf.warmup, "warmup", 200*time.Millisecond, "traffic sent before each cell's measurement and excluded from it (TCP slow start); 0 = none")
	fs.DurationVar(&rf.drain, "drain", time.Second, "longest wait for in-flight messages after the last send, before counting what is missing as lost; 0 = none")
	fs.DurationVar(&rf.timeout, "timeout", 200*time.Millisecond, "a request with no reply this long counts as unanswered, for any transport (pingpong, connect, clients, close)")
	fs.IntVar(&rf.clients, "clients", 100, "concurrent clients of the clients experiment, 1..4096")
	fs.IntVar(&rf.receivers, "receivers", 8, "receivers of one sender in the fanout experiment, 1..64")
	fs.StringVar(&rf.readerRate, "reader-rate", "80M", "how fast the slow-receiver application reads, bits/s with a unit (80M = 10 MB/s)")
	fs.StringVar(&rf.link, "link", "", "cross a named emulated link instead of loopback: "+presetNames()+" (Linux, needs root; see 'Emulated link' above)")
	fs.StringVar(&rf.impair, "impair", "", "cross an emulated link impaired both ways, e.g. 'loss=1%,delay=20ms,jitter=5ms,rate=50M' (Linux, needs root)")
	fs.StringVar(&rf.impairUp, "impair-up", "", "impairments of the client-to-server direction only (replaces --impair/--link for it)")
	fs.StringVar(&rf.impairDown, "impair-down", "", "impairments of the server-to-client direction only (replaces --impair/--link for it)")
	fs.BoolVar(&rf.noLab, "no-lab", false, "skip the short emulated-link section the default suite adds when it runs as root")
	fs.IntVar(&rf.batch, "batch", 64, "most messages per send or receive system call, at both ends (with --server, the server's too), 1..1024. "+
		"UDP: sendmmsg/recvmmsg entries; with GSO an entry is a super-datagram of up to 128 messages, so a send of N messages is one call, "+
		"and with GRO a receive entry is a packet the kernel may have coalesced from many datagrams. TCP: a send of N messages is one write or writev; "+
		"a receive reads as many framed messages as one read brought, up to N. Textbook UDP cells use 1")
	fs.BoolVar(&rf.nodelay, "nodelay", true, "set TCP_NODELAY (disable Nagle) on TCP sockets")
	fs.BoolVar(&rf.busyPoll, "busy-poll", false, "receivers spin on non-blocking reads instead of sleeping until data arrives, and ask for SO_BUSY_POLL of 50us "+
		"(granted only with CAP_NET_ADMIN; it polls NIC queues, and loopback has none): lower, steadier latency "+
		"at the cost of up to a full CPU core per receiving socket while it waits, shown as CPU beside pingpong's RTT; default off (Linux only)")
	fs.StringVar(&rf.udpIO, "udp-io", "batched,textbook", "how UDP streams move datagrams, comma-separated: batched (--batch per call, with GSO and GRO unless --no-gso) and textbook (one datagram per call, no offloads); each runs as its own cell")
	fs.StringVar(&rf.verify, "verify", "payload", "what receivers check of each message: payload = header and payload CRC32C, every corrupted message counted; "+
		"header = header CRC32C only (sequence numbers stay trusted), saving a pass over each payload byte (iperf3 checks none), "+
		"and the report says payloads were not verified. With --server, the server's receivers too")
	fs.BoolVar(&rf.noGSO, "no-gso", false, "UDP without segmentation offloads in batched cells too: senders without UDP GSO, stream receivers without UDP GRO, one datagram per packet (default: both offloads when the kernel has them)")
	fs.StringVar(&rf.rcvbuf, "rcvbuf", "0", "SO_RCVBUF to request on both ends' data sockets, bytes, K/M/G binary (1M = 1048576), up to 1G; "+
		"0 = kernel default (each end's granted size is reported: Linux doubles a request, net.core.rmem_max caps it)")
	fs.StringVar(&rf.sndbuf, "sndbuf", "0", "SO_SNDBUF to request on both ends' data sockets, bytes, K/M/G binary, up to 1G; "+
		"0 = kernel default (each end's granted size is reported; net.core.wmem_max caps it)")
	fs.SortFlags = false
}

// labConfig reads --link, --impair, --impair-up and --impair-down; nil when none is
// given (loopback).
func (rf *runFlags) labConfig(fs *pflag.FlagSet) (*bench.LabConfig, error) {
	if !fs.Changed("link") && !fs.Changed("impair") && !fs.Changed("impair-up") && !fs.Changed("impair-down") {
		return nil, nil
	}
	c := &bench.LabConfig{}
	if rf.link != "" {
		pr, err := lab.PresetByName(rf.link)
		if err != nil {
			return nil, err
		}
		c.Name, c.Up, c.Down = pr.Name, pr.Up, pr.Down
	}
	if fs.Changed("impair") {
		im, err := lab.ParseImpair("--impair", rf.impair)
		if err != nil {
			return nil, err
		}
		c.Name, c.Up, c.Down = "", im, im
	}
	for _, d := range []struct {
		flag, spec string
		dst        *lab.Impair
	}{{"impair-up", rf.impairUp, &c.Up}, {"impair-down", rf.impairDown, &c.Down}} {
		if fs.Changed(d.flag) {
			im, err := lab.ParseImpair("--"+d.flag, d.spec)
			if err != nil {
				return nil, err
			}
			*d.dst, c.Name = im, ""
		}
	}
	return c, nil
}

func presetNames() string {
	var ns []string
	for _, p := range lab.Presets {
		ns = append(ns, p.Name)
	}
	return strings.Join(ns, ", ")
}

// commandLine is the command as typed, for the report.
func commandLine() string {
	parts := []string{"tcpvsudp"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// plan turns the flags into a bench.Plan, checking each; errors are usage errors.
func (rf *runFlags) plan(fs *pflag.FlagSet) (bench.Plan, error) {
	p := bench.Plan{
		Streams: rf.streams, Duration: rf.duration, Count: rf.count, Repeat: rf.repeat,
		Port: rf.port, Host: rf.host, Seed: rf.seed, Warmup: rf.warmup, Drain: rf.drain,
		Timeout: rf.timeout, Batch: rf.batch, Quick: rf.quick, Reverse: rf.reverse, Bidir: rf.bidir,
		Net: bench.NetOptions{NoDelay: rf.nodelay, NoGSO: rf.noGSO, BusyPoll: rf.busyPoll, Batch: rf.batch},
	}
	var err error
	if p.Transports, err = parseList("--transports", rf.transports); err != nil {
		return p, err
	}
	if fs.Changed("experiments") {
		if p.Experiments, err = parseList("--experiments", rf.experiments); err != nil {
			return p, err
		}
	}
	if p.Sizes, err = parseSizes(rf.sizes); err != nil {
		return p, err
	}
	if p.UDPIO, err = parseList("--udp-io", rf.udpIO); err != nil {
		return p, err // each mode is checked with the plan (Validate)
	}
	if p.RateBps, err = parseRate("--rate", rf.rate); err != nil {
		return p, err
	}
	if p.PingRate, err = units.PerSecond(rf.pingRate); err != nil {
		return p, fmt.Errorf("--ping-rate: %w", err)
	}
	if p.ReaderBps, err = parseRate("--reader-rate", rf.readerRate); err != nil {
		return p, err
	}
	if p.ReaderBps == 0 {
		return p, fmt.Errorf("--reader-rate: must be above 0 (a reader that never reads), got %q", rf.readerRate)
	}
	if rf.clients < 1 || rf.clients > bench.MaxClients {
		return p, fmt.Errorf("--clients: must be 1..%d, got %d", bench.MaxClients, rf.clients)
	}
	if rf.receivers < 1 || rf.receivers > bench.MaxReceivers {
		return p, fmt.Errorf("--receivers: must be 1..%d, got %d", bench.MaxReceivers, rf.receivers)
	}
	p.Clients, p.Receivers = rf.clients, rf.receivers
	if p.Lab, err = rf.labConfig(fs); err != nil {
		return p, err
	}
	if rf.duration < 0 {
		return p, fmt.Errorf("--duration: must not be negative, got %v", rf.duration)
	}
	if fs.Changed("duration") && rf.duration < 10*time.Millisecond {
		return p, fmt.Errorf("--duration: must be at least 10ms, got %v", rf.duration)
	}
	// Zero would mean "the default" to bench.Plan: refuse it here, where it was typed.
	if rf.streams < 1 || rf.streams > bench.MaxStreams {
		return p, fmt.Errorf("--streams: must be 1..%d, got %d", bench.MaxStreams, rf.streams)
	}
	if rf.repeat < 1 || rf.repeat > bench.MaxRepeat {
		return p, fmt.Errorf("--repeat: must be 1..%d, got %d", bench.MaxRepeat, rf.repeat)
	}
	if rf.batch < 1 || rf.batch > 1024 {
		return p, fmt.Errorf("--batch: must be 1..1024, got %d", rf.batch)
	}
	if rf.timeout <= 0 {
		return p, fmt.Errorf("--timeout: must be positive, got %v", rf.timeout)
	}
	if rf.drain < 0 {
		return p, fmt.Errorf("--drain: must not be negative, got %v", rf.drain)
	}
	if rf.warmup < 0 {
		return p, fmt.Errorf("--warmup: must not be negative, got %v", rf.warmup)
	}
	if !slices.Contains(wire.VerifyNames, rf.verify) {
		return p, fmt.Errorf("--verify: must be %s, got %q", strings.Join(wire.VerifyNames, " or "), rf.verify)
	}
	if p.Verify, err = wire.ParseVerify(rf.verify); err != nil {
		return p, err
	}
	if p.Net.RecvBuffer, err = parseBuffer("--rcvbuf", rf.rcvbuf); err != nil {
		return p, err
	}
	if p.Net.SendBuffer, err = parseBuffer("--sndbuf", rf.sndbuf); err != nil {
		return p, err
	}
	if rf.warmup == 0 {
		p.Warmup = bench.NoWarmup // an explicit 0: bench's own 0 means its default
	}
	if rf.drain == 0 {
		p.Drain = -1 // bench: negative means none
	}
	if rf.quick {
		if !fs.Changed("duration") {
			p.Duration = 500 * time.Millisecond
		}
		if !fs.Changed("sizes") {
			p.Sizes = []int{64, 1024}
		}
		if !fs.Changed("warmup") {
			p.Warmup = 50 * time.Millisecond
		}
		if !fs.Changed("drain") {
			p.Drain = 300 * time.Millisecond
		}
	}
	if rf.count > 0 && fs.Changed("duration") {
		return p, fmt.Errorf("--count and --duration: give one, not both (got --count %d, --duration %v)", rf.count, rf.duration)
	}
	if rf.count > 0 {
		p.Duration = 0
	}
	if fs.Changed("server") {
		addr, err := serverAddr(rf.server)
		if err != nil {
			return p, err
		}
		pf := pendingFar{addr: addr}
		if rf.keyFile != "" {
			if pf.key, err = loadKey(rf.keyFile); err != nil {
				return p, err
			}
		}
		p.Far = pf
	} else if rf.keyFile != "" {
		return p, errors.New("--key-file: only with --server (the key of a remote tcpvsudp serve)")
	}
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return p, err
	}
	return p, localHost(p.Host, net.InterfaceAddrs)
}

func doRun(ctx context.Context, fs *pflag.FlagSet, rf *runFlags, cmdline string, stdout, stderr io.Writer) error {
	p, err := rf.plan(fs)
	if err != nil {
		return usageError{err}
	}
	p.Command = cmdline
	if !rf.noFiles {
		// Before anything is measured: a report that cannot be written is a mistake
		// to hear about now, not after the run.
		if err := outDir(rf.out); err != nil {
			return usageError{err}
		}
	}
	if pf, ok := p.Far.(pendingFar); ok {
		far, err := dialFar(ctx, pf)
		if err != nil {
			return err
		}
		defer far.Close()
		p.Far = far
	}
	prog := newProgress(stderr, p)
	p.Progress = prog.event
	rep, runErr := bench.Run(ctx, p)
	prog.close()
	if rep == nil {
		return runErr
	}
	if runErr == nil && p.Lab == nil && p.Far == nil && !rf.noLab && !fs.Changed("experiments") {
		addLabSection(ctx, rep, p, stderr)
		if ctx.Err() != nil && rep.Incomplete != "" {
			runErr = ctx.Err() // interrupted in the lab section
		}
	}
	for _, w := range collectWarnings(rep) {
		fmt.Fprintf(stderr, "warning: %s\n", remote.Printable(w)) // a server's words among them
	}
	jsonPath := filepath.Join(rf.out, "report.json")
	mdPath := filepath.Join(rf.out, "report.md")
	if rf.noFiles {
		mdPath = ""
	}
	if err := render.Text(stdout, rep, textOptions(stdout, rf.verbose, mdPath)...); err != nil {
		return fmt.Errorf("render tables: %w", err)
	}
	if !rf.noFiles {
		if err := writeFile(jsonPath, rep.WriteJSON); err != nil {
			return err
		}
		if err := writeFile(mdPath, func(w io.Writer) error { return render.Markdown(w, rep) }); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s and %s\n", jsonPath, mdPath)
		// The charts report.md links; a chart that fails costs the chart, not the run.
		names, err := render.Charts(rf.out, rep)
		if err != nil {
			fmt.Fprintf(stderr, "warning: %v\n", err)
		}
		if len(names) > 0 {
			fmt.Fprintf(stderr, "wrote charts beside it: %s\n", strings.Join(names, ", "))
		}
	}
	if runErr != nil {
		return stoppedError{fmt.Sprintf("run stopped early: %s; the report holds what was measured", rep.Incomplete), runErr}
	}
	if rep.Incomplete != "" {
		return fmt.Errorf("report incomplete: %s; %d of %d cells not measured", rep.Incomplete, countNotMeasured(rep), len(rep.Results))
	}
	if n := countNotMeasured(rep); n > 0 {
		return fmt.Errorf("%d of %d cells failed; see the report", n, len(rep.Results))
	}
	return nil
}

// stoppedError says why a run stopped early, in words, and wraps the context's error.
type stoppedError struct {
	msg string
	err error
}

func (e stoppedError) Error() string { return e.msg }
func (e stoppedError) Unwrap() error { return e.err }

// countNotMeasured counts the results without figures: failed or interrupted.
func countNotMeasured(rep *report.Report) int {
	n := 0
	for _, r := range rep.Results {
		if !r.Measured() {
			n++
		}
	}
	return n
}

func collectWarnings(rep *report.Report) []string {
	var out []string
	out = append(out, rep.Warnings...)
	results := rep.Results
	if rep.Lab != nil {
		results = append(append([]report.Result(nil), results...), rep.Lab.Results...)
	}
	for _, r := range results {
		prefix := fmt.Sprintf("%s %s size=%d: ", r.Experiment, r.Transport, r.Params.Size)
		if !r.Measured() {
			out = append(out, prefix+"not measured: "+r.Error)
		}
		for _, w := range r.Warnings {
			out = append(out, prefix+w)
		}
	}
	return out
}

// writeFile writes path atomically: a reader never sees half a report.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func doReport(path, format, mdOut string, mdSet, verbose bool, stdout io.Writer) error {
	if err := reportFile(path); err != nil {
		return usageError{err}
	}
	rep, err := report.LoadReport(path)
	if errors.Is(err, report.ErrNotReport) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if !mdSet {
		mdOut = strings.TrimSuffix(path, filepath.Ext(path)) + ".md"
	}
	switch format {
	case "text":
		err = render.Text(stdout, rep, textOptions(stdout, verbose, mdOut)...)
	case "markdown", "md":
		err = render.Markdown(stdout, rep)
	case "json":
		err = rep.WriteJSON(stdout)
	default:
		return usageError{fmt.Errorf("--format: must be text, markdown or json, got %q", format)}
	}
	if err != nil {
		return err
	}
	if mdOut == "" {
		return nil
	}
	if err := writeFile(mdOut, func(w io.Writer) error { return render.Markdown(w, rep) }); err != nil {
		return err
	}
	// The charts the markdown links, beside it.
	_, err = render.Charts(filepath.Dir(mdOut), rep)
	return err
}

// experimentList describes the registered experiments, grouped as the suite runs
// them: those that show a property, those for an emulated link, those that measure;
// each one's help wrapped under its name.
func experimentList() string {
	groups := []struct {
		head string
		in   func(bench.ExperimentInfo) bool
	}{
		{"Experiments that show a property (each runs once, at 1024-byte messages):", func(x bench.ExperimentInfo) bool { return !x.Measures && !x.LabOnly }},
		{"Experiments for an emulated link (they run by default only across one):", func(x bench.ExperimentInfo) bool { return x.LabOnly }},
		{"Experiments that measure (each runs at every --sizes):", func(x bench.ExperimentInfo) bool { return x.Measures && !x.LabOnly }},
	}
	var b strings.Builder
	for i, g := range groups {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(g.head + "\n")
		for _, x := range bench.ExperimentInfos() {
			if g.in(x) {
				b.WriteString(hanging(fmt.Sprintf("  %-15s", x.Name), x.Help, 84))
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// hanging writes text after head, wrapped at word boundaries to width columns, its
// later lines indented as far as head is long.
func hanging(head, text string, width int) string {
	var b strings.Builder
	line := head
	for _, w := range strings.Fields(text) {
		if len(line) > len(head) && len(line)+1+len(w) > width {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = strings.Repeat(" ", len(head))
		}
		if len(line) > len(head) {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
	return b.String()
}

func impairKeys() string {
	var b strings.Builder
	for _, k := range lab.Keys() {
		b.WriteString("  " + k + "\n")
	}
	for _, p := range lab.Presets {
		fmt.Fprintf(&b, "  --link %-10s %s\n", p.Name, p.About)
	}
	return strings.TrimRight(b.String(), "\n")
}

// labSectionImpair is the link the default suite's lab section crosses: every
// impairment at once, each small, so one short run shows them all.
const labSectionImpair = "loss=2%,dup=1%,reorder=1%,corrupt=0.5%,delay=5ms,rate=50M,queue=100"

// addLabSection runs the default suite's short section across an emulated link and
// attaches it to rep. Without the privileges it says, in one line, what is missing;
// the loopback results stand either way.
func addLabSection(ctx context.Context, rep *report.Report, p bench.Plan, stderr io.Writer) {
	im, err := lab.ParseImpair("lab section", labSectionImpair)
	if err != nil {
		panic(err) // a constant: a test pins it
	}
	count := uint64(2000)
	if p.Quick {
		count = 1000
	}
	exps := []string{report.ExpStream}
	for _, x := range []string{"hol", "bottleneck"} {
		if slices.Contains(bench.Experiments(), x) {
			exps = append(exps, x)
		}
	}
	lp := bench.Plan{
		Transports: p.Transports, Experiments: exps, Sizes: []int{1024}, Count: count, RateBps: 20e6,
		Duration: min(p.Duration, 2*time.Second), Seed: p.Seed, Warmup: bench.NoWarmup, Timeout: p.Timeout, Batch: p.Batch, Net: p.Net,
		Verify:  p.Verify,
		Lab:     &bench.LabConfig{Up: im, Down: im},
		Command: fmt.Sprintf("tcpvsudp run -e %s --sizes 1024 --count %d --rate 20M --seed %d --impair '%s'", strings.Join(exps, ","), count, p.Seed, labSectionImpair),
	}
	if p.Verify != wire.VerifyPayloadCRC {
		lp.Command += " --verify " + p.Verify.String()
	}
	prog := newProgress(stderr, lp)
	lp.Progress = prog.event
	lr, err := bench.Run(ctx, lp)
	prog.close()
	if err != nil && lr != nil && ctx.Err() != nil {
		// Interrupted: keep what the section measured, marked as a run stopped early is.
		rep.AttachLab(lr)
		rep.Incomplete = "emulated-link section " + lr.Incomplete
		rep.Warnings = append(rep.Warnings, "incomplete: "+rep.Incomplete)
		return
	}
	if err != nil {
		msg := fmt.Sprintf("emulated-link section skipped: %v", err)
		if errors.Is(err, os.ErrPermission) {
			msg += " (run as root to include it, or pass --no-lab)"
		}
		rep.Warnings = append(rep.Warnings, msg)
		return
	}
	rep.AttachLab(lr)
}
