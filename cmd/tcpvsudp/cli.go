package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/tcpvsudp/tcpvsudp/bench"
	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/render"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
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

// runLong is run's help after its examples: what it does, the experiments by group
// and the emulated link's names, in one screen. Each experiment's and each key's
// explanation is in the README.
var runLong = `Results: the verdict and compact tables on stdout (-v: every table), report.json (the
source of truth) and report.md under --out.

` + experimentList() + `
The default suite runs the first two groups on loopback and, as root, ends with a short
emulated-link section (--no-lab skips it). Every message carries a 48-byte header
(sequence number, send time, CRC32C), so --sizes counts from 48.

Emulated link (Linux, root): --link or --impair runs the experiments between two network
namespaces joined by a userspace link emulator with seeded (--seed) impairments.
` + impairKeys() + `
Each experiment, metric, --impair key and flag in full: docs/usage.md, docs/lab.md, docs/metrics.md.`

// runExample is run's examples, the first thing its help shows.
const runExample = `  tcpvsudp run                                   # the default suite
  tcpvsudp run --quick                           # a few seconds per experiment
  tcpvsudp run -e stream --sizes 1400 --rate 2G  # paced UDP at 2 Gbit/s beside TCP
  tcpvsudp run -e stream --count 100000          # exactly 100000 messages per stream
  tcpvsudp run --repeat 6                        # median and 95% CI of 6 runs
  tcpvsudp run --impair loss=1%,delay=20ms       # across a lossy link (root)`

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
		Example: `  tcpvsudp report results/report.json                   # the tables again
  tcpvsudp report --format markdown results/report.json # the markdown on stdout`,
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
	reportCmd.Flags().StringVar(&mdOut, "markdown", "", "where to write the markdown report; default: FILE.md beside FILE.json; '' = nowhere")
	reportCmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "after the verdict, every table, and each property's claim and evidence")
	setVarNames(reportCmd.Flags(), map[string]string{"format": "FORMAT", "markdown": "FILE"})

	root := &cobra.Command{
		Use:   "tcpvsudp",
		Short: "TCP and UDP side by side, in measured numbers",
		Example: `  tcpvsudp                              # the default suite (= tcpvsudp run)
  tcpvsudp run --quick                  # a shorter suite
  tcpvsudp report results/report.json   # render a saved report again
  tcpvsudp serve --key-file key         # the end other hosts' 'run --server' tests against`,
		Long: `tcpvsudp runs the same workloads over TCP and over UDP and shows, in measured
numbers, how they differ: connection setup, reliability, ordering, flow control,
message boundaries, and what each costs in throughput, round-trip time and CPU.
Results go to stdout and to results/report.{json,md}; progress, warnings and errors
go to stderr.`,
		Annotations:   map[string]string{flagsOf: "those of run, which runs when no command is given; see 'tcpvsudp run --help'."},
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
	setHelp(root)
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
	case slices.Contains(transport.Names(), a):
		hint = fmt.Sprintf("to run one transport: %s run -t %s", cmd.Root().Name(), a)
	}
	if cmd.HasParent() {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (%s)", cmd.CommandPath(), a, hint)}
	}
	return usageError{fmt.Errorf("unknown command %q (%s)", a, hint)}
}

func addRunFlags(fs *pflag.FlagSet, rf *runFlags) {
	fs.StringVarP(&rf.transports, "transports", "t", "tcp,udp", "transports to compare, comma-separated: "+strings.Join(transport.Names(), ", "))
	fs.StringVarP(&rf.experiments, "experiments", "e", "", "experiments to run, comma-separated (above); default: the suite")
	fs.StringVarP(&rf.sizes, "sizes", "s", "64,1024,8192", "message sizes, bytes with the header: 48..65507 udp, 48..16777216 tcp")
	fs.IntVarP(&rf.streams, "streams", "P", 1, "parallel streams of stream, 1..1024, each its own socket")
	fs.DurationVarP(&rf.duration, "duration", "d", 0, fmt.Sprintf("time per run of a cell, 10ms up; default %v (%d runs), %v with --repeat",
		bench.DefaultRunDuration, bench.DefaultRepeat, bench.DefaultDuration))
	fs.Uint64VarP(&rf.count, "count", "n", 0, "messages per stream, or round trips, per cell instead of --duration")
	fs.StringVarP(&rf.rate, "rate", "r", "0", "stream's pace over all streams, bits/s: 500M, 1.5G; 0 = unpaced")
	fs.StringVar(&rf.pingRate, "ping-rate", "0", "pingpong open loop, requests/s on a timetable (5k); 0 = closed loop")
	fs.IntVarP(&rf.repeat, "repeat", "R", 0, fmt.Sprintf("runs per cell, 1..%d: median and range (a 95%% CI from 6 runs); marked noisy "+
		"if the range is over %g%% of the median; default %d, 1 with --duration or --count",
		bench.MaxRepeat, 100*report.NoisyRange, bench.DefaultRepeat))
	fs.IntVarP(&rf.port, "port", "p", 0, "server port of the data sockets; 0 = an ephemeral port per cell")
	fs.StringVar(&rf.host, "host", "127.0.0.1", "server end's address, one of this host's (:: and 0.0.0.0 too)")
	fs.StringVar(&rf.server, "server", "", "run the server halves on 'tcpvsudp serve' at HOST[:5299]"+farNote())
	fs.StringVar(&rf.keyFile, "key-file", "", "with --server: the server's pre-shared key, a file only its owner reads")
	fs.BoolVar(&rf.reverse, "reverse", false, "stream the other way, from the server half (iperf3 -R); not across a link")
	fs.BoolVar(&rf.bidir, "bidir", false, "stream both ways at once (iperf3 --bidir); not across a link")
	fs.StringVarP(&rf.out, "out", "o", "results", "directory for report.json and report.md, made if missing")
	fs.BoolVar(&rf.noFiles, "no-files", false, "print the tables only; write nothing under --out")
	fs.BoolVarP(&rf.verbose, "verbose", "v", false, "after the verdict, every table, and each property's claim and evidence")
	fs.BoolVarP(&rf.quick, "quick", "q", false, "a short suite: one 500ms run per cell, sizes 64,1024, short warm-up, drain")
	fs.Int64Var(&rf.seed, "seed", 1, "seed of the random payload and of the link's impairments")
	fs.DurationVar(&rf.warmup, "warmup", 200*time.Millisecond, "traffic before each cell, not counted; 0 = none")
	fs.DurationVar(&rf.drain, "drain", time.Second, "longest wait for in-flight messages before they count as lost")
	fs.DurationVar(&rf.timeout, "timeout", 200*time.Millisecond, "a request with no reply this long counts as unanswered")
	fs.IntVar(&rf.clients, "clients", 100, "concurrent clients of the clients experiment, 1..4096")
	fs.IntVar(&rf.receivers, "receivers", 8, "receivers of one sender in fanout, 1..64")
	fs.StringVar(&rf.readerRate, "reader-rate", "80M", "slow-receiver's reading pace, bits/s (80M = 10 MB/s)")
	fs.StringVar(&rf.link, "link", "", "cross a named emulated link (above) instead of loopback; root")
	fs.StringVar(&rf.impair, "impair", "", "cross an emulated link impaired both ways (SPEC above); root")
	fs.StringVar(&rf.impairUp, "impair-up", "", "impairments of the client-to-server direction only")
	fs.StringVar(&rf.impairDown, "impair-down", "", "impairments of the server-to-client direction only")
	fs.BoolVar(&rf.noLab, "no-lab", false, "skip the emulated-link section the default suite adds as root")
	fs.IntVar(&rf.batch, "batch", 64, "most messages per send or receive call at both ends, 1..1024")
	fs.BoolVar(&rf.nodelay, "nodelay", true, "set TCP_NODELAY (no Nagle) on TCP sockets")
	fs.BoolVar(&rf.busyPoll, "busy-poll", false, "receivers spin, not sleep: lower RTT for a CPU core each (Linux)")
	fs.StringVar(&rf.udpIO, "udp-io", "batched,textbook", "UDP stream modes: batched (GSO, GRO), textbook (1 per call)")
	fs.StringVar(&rf.verify, "verify", "payload", "payload: check payload CRC32C too; header: header only")
	fs.BoolVar(&rf.noGSO, "no-gso", false, "batched UDP cells without GSO and GRO: one datagram per packet")
	fs.StringVar(&rf.rcvbuf, "rcvbuf", "0", "SO_RCVBUF to ask for, bytes, binary K/M/G, up to 1G; 0 = the kernel's")
	fs.StringVar(&rf.sndbuf, "sndbuf", "0", "SO_SNDBUF to ask for, bytes, binary K/M/G, up to 1G; 0 = the kernel's")
	setVarNames(fs, map[string]string{
		"transports": "LIST", "experiments": "LIST", "sizes": "LIST", "udp-io": "LIST",
		"streams": "N", "count": "N", "repeat": "N", "port": "N", "seed": "N", "clients": "N", "receivers": "N", "batch": "N",
		"duration": "TIME", "warmup": "TIME", "drain": "TIME", "timeout": "TIME",
		"rate": "RATE", "ping-rate": "RATE", "reader-rate": "RATE", "rcvbuf": "SIZE", "sndbuf": "SIZE",
		"host": "ADDR", "server": "HOST", "key-file": "FILE", "out": "DIR", "link": "NAME",
		"impair": "SPEC", "impair-up": "SPEC", "impair-down": "SPEC", "verify": "MODE",
	})
	fs.SortFlags = false
}

// RunFlagNames lists the flags of 'tcpvsudp run' by long name, in its help's order,
// without --help: what README.md's flag table is checked against.
func RunFlagNames() []string {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(fs, &runFlags{})
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
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
		// Duration and Repeat stay 0 unless given: bench then picks them together
		// (bench.DefaultRepeat runs of bench.DefaultRunDuration).
		Streams: rf.streams, Count: rf.count,
		Port: rf.port, Host: rf.host, Seed: rf.seed, Warmup: rf.warmup, Drain: rf.drain,
		Timeout: rf.timeout, Batch: rf.batch, Quick: rf.quick, Reverse: rf.reverse, Bidir: rf.bidir,
		Net: transport.NetOptions{NoDelay: rf.nodelay, NoGSO: rf.noGSO, BusyPoll: rf.busyPoll, Batch: rf.batch},
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
	if fs.Changed("duration") {
		if rf.duration < 10*time.Millisecond {
			return p, fmt.Errorf("--duration: must be at least 10ms, got %v", rf.duration)
		}
		p.Duration = rf.duration
	}
	// Zero would mean "the default" to bench.Plan: refuse it here, where it was typed.
	if rf.streams < 1 || rf.streams > bench.MaxStreams {
		return p, fmt.Errorf("--streams: must be 1..%d, got %d", bench.MaxStreams, rf.streams)
	}
	if fs.Changed("repeat") {
		if rf.repeat < 1 || rf.repeat > bench.MaxRepeat {
			return p, fmt.Errorf("--repeat: must be 1..%d, got %d", bench.MaxRepeat, rf.repeat)
		}
		p.Repeat = rf.repeat
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
	// One progress over the whole run: the suite, then the emulated-link section the
	// default suite adds (counted in the estimate when it can run: as root).
	withLab := p.Lab == nil && p.Far == nil && !rf.noLab && !fs.Changed("experiments")
	lp := labSectionPlan(p)
	sections := []progressSection{{est: p.Estimate()}}
	if withLab && labLikely() {
		sections = append(sections, labSection(lp))
	}
	prog := newProgress(stderr, sections...)
	p.Progress = prog.event
	rep, runErr := bench.Run(ctx, p)
	if rep == nil {
		prog.close()
		return runErr
	}
	if runErr == nil && withLab {
		runLabSection(ctx, rep, lp, prog)
		if ctx.Err() != nil && rep.Incomplete != "" {
			runErr = ctx.Err() // interrupted in the lab section
		}
	}
	prog.close()
	errWidth := textWidth(stderr, os.Getenv("COLUMNS")) // stderr's lines fit it too
	// Each warning is printed once: with -v after the tables on stdout (render.Text),
	// and stderr says where they are when stdout is not the terminal; without -v,
	// where stdout only counts them, on stderr.
	switch ws := collectWarnings(rep); {
	case len(ws) == 0:
	case rf.verbose:
		if !isTerminal(stdout) {
			fmt.Fprintln(stderr, "tcpvsudp: the run has warnings: they follow the tables on stdout")
		}
	default:
		for _, w := range ws {
			fmt.Fprint(stderr, hanging("warning: ", w, errWidth))
		}
	}
	jsonPath := filepath.Join(rf.out, "report.json")
	mdPath := filepath.Join(rf.out, "report.md")
	if rf.noFiles {
		mdPath = ""
	}
	// The files first, and what was written on stderr; the tables last, so that a
	// terminal ends with the verdict and the compact tables. A file that cannot be
	// written still leaves the tables printed.
	var fileErr error
	if !rf.noFiles {
		fileErr = writeReportFiles(rep, rf.out, jsonPath, mdPath, stderr, errWidth)
	}
	if err := render.Text(stdout, rep, textOptions(stdout, rf.verbose, mdPath)...); err != nil {
		return fmt.Errorf("render tables: %w", err)
	}
	if fileErr != nil {
		return fileErr
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

// writeReportFiles writes the report's JSON, its markdown and the charts the
// markdown links under dir, and says on stderr what it wrote. A chart that fails
// costs the chart, not the run.
func writeReportFiles(rep *report.Report, dir, jsonPath, mdPath string, stderr io.Writer, width int) error {
	if err := writeFile(jsonPath, rep.WriteJSON); err != nil {
		return err
	}
	if err := writeFile(mdPath, func(w io.Writer) error { return render.Markdown(w, rep) }); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s and %s\n", jsonPath, mdPath)
	names, err := render.Charts(dir, rep)
	if err != nil {
		fmt.Fprint(stderr, hanging("warning: ", err.Error(), width))
	}
	if len(names) > 0 {
		fmt.Fprint(stderr, hanging("wrote charts beside it: ", strings.Join(names, ", "), width))
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

// collectWarnings lists what stderr warns of: the run's warnings, then each
// result's, prefixed with its cell, and the same of the emulated-link section,
// prefixed "lab" (its run-wide warnings unless the run has them too). A line is
// listed once: cells that differ only in what the prefix does not name (a stream
// cell's UDP I/O) share their warnings.
func collectWarnings(rep *report.Report) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	of := func(r *report.Report, lab string) {
		for _, w := range r.Warnings {
			switch {
			case lab == "":
				add(w)
			case !slices.Contains(rep.Warnings, w): // the lab's own, not the run's again
				add("lab: " + w)
			}
		}
		for _, res := range r.Results {
			prefix := fmt.Sprintf("%s%s %s size=%d: ", lab, res.Experiment, res.Transport, res.Params.Size)
			if !res.Measured() {
				add(prefix + "not measured: " + res.Error)
			}
			for _, w := range res.Warnings {
				add(prefix + w)
			}
		}
	}
	of(rep, "")
	if rep.Lab != nil {
		of(rep.Lab, "lab ")
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
	// A report written before sections existed gets its experiments' sections from
	// the registry, so that it renders as it did; one that has them keeps its own.
	bench.AddSections(rep)
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

// experimentList names the registered experiments, grouped as the suite runs them:
// those that show a property, those that measure, those for an emulated link. Each
// one's help is in the README (and in report.md beside its results).
func experimentList() string {
	groups := []struct {
		head string
		in   func(bench.ExperimentInfo) bool
	}{
		{"show a property, once at 1 KiB", func(x bench.ExperimentInfo) bool { return !x.Measures && !x.LabOnly }},
		{"measure, at every --sizes", func(x bench.ExperimentInfo) bool { return x.Measures && !x.LabOnly }},
		{"need an emulated link", func(x bench.ExperimentInfo) bool { return x.LabOnly }},
	}
	var b strings.Builder
	b.WriteString("Experiments (-e):\n")
	for _, g := range groups {
		var names []string
		for _, x := range bench.ExperimentInfos() {
			if g.in(x) {
				names = append(names, x.Name)
			}
		}
		fmt.Fprintf(&b, "  %-32s %s\n", g.head+":", strings.Join(names, ", "))
	}
	return b.String()
}

// impairKeys names the emulated link's presets and --impair's keys, with an example.
func impairKeys() string {
	var keys []string
	for _, k := range lab.Keys() {
		name, _, _ := strings.Cut(k, ":")
		keys = append(keys, name)
	}
	return fmt.Sprintf("  --link NAME    %s\n  --impair SPEC  key=value pairs, comma-separated, of %s; e.g. 'loss=1%%,delay=20ms,rate=50M'",
		presetNames(), strings.Join(keys, ", "))
}

// farNote says which experiments 'run --server' leaves out, if any: the far end
// reports them skipped.
func farNote() string {
	var not []string
	for _, x := range bench.Experiments() {
		if !slices.Contains(bench.FarExperiments, x) {
			not = append(not, x)
		}
	}
	if len(not) == 0 {
		return ""
	}
	return "; not for " + strings.Join(not, ", ")
}

// labSectionImpair is the link the default suite's lab section crosses: every
// impairment at once, each small, so one short run shows them all.
const labSectionImpair = "loss=2%,dup=1%,reorder=1%,corrupt=0.5%,delay=5ms,rate=50M,queue=100"

// labSectionName is the emulated-link section's name in progress.
const labSectionName = "emulated-link section"

// labSectionPlan is the plan of the default suite's short section across an
// emulated link (labSectionImpair), from the suite's plan p.
func labSectionPlan(p bench.Plan) bench.Plan {
	im, err := lab.ParseImpair("lab section", labSectionImpair)
	if err != nil {
		panic(err) // a constant: a test pins it
	}
	count := uint64(2000)
	if p.Quick {
		count = 1000
	}
	exps := bench.LabSection()
	lp := bench.Plan{
		Transports: p.Transports, Experiments: exps, Sizes: []int{1024}, Count: count, RateBps: 20e6,
		Duration: min(p.PropertyDuration(), 2*time.Second), Seed: p.Seed, Warmup: bench.NoWarmup, Timeout: p.Timeout, Batch: p.Batch, Net: p.Net,
		Verify:  p.Verify,
		Lab:     &bench.LabConfig{Up: im, Down: im},
		Command: fmt.Sprintf("tcpvsudp run -e %s --sizes 1024 --count %d --rate 20M --seed %d --impair '%s'", strings.Join(exps, ","), count, p.Seed, labSectionImpair),
	}
	if p.Verify != wire.VerifyPayloadCRC {
		lp.Command += " --verify " + p.Verify.String()
	}
	return lp
}

// labSection is the emulated-link section as progress shows it.
func labSection(lp bench.Plan) progressSection {
	return progressSection{name: labSectionName, about: "across a link with " + labSectionImpair, label: "lab: ", est: lp.Estimate()}
}

// labLikely is whether the emulated-link section can run here: it needs root (the
// namespaces and TUN devices) on Linux. A section that runs where this says no is
// added to progress when it starts.
func labLikely() bool { return runtime.GOOS == "linux" && os.Geteuid() == 0 }

// isTerminal is whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// addLabSection runs the default suite's short section across an emulated link,
// from the suite's plan p, with a progress display of its own on stderr, and
// attaches it to rep (runLabSection).
func addLabSection(ctx context.Context, rep *report.Report, p bench.Plan, stderr io.Writer) {
	lp := labSectionPlan(p)
	prog := newProgress(stderr, labSection(lp))
	runLabSection(ctx, rep, lp, prog)
	prog.close()
}

// runLabSection runs the emulated-link section's plan lp and attaches it to rep,
// showing its cells on prog. Without the privileges it says, in one line, what is
// missing; the loopback results stand either way.
func runLabSection(ctx context.Context, rep *report.Report, lp bench.Plan, prog *progress) {
	started := false
	lp.Progress = func(ev bench.ProgressEvent) {
		if !started { // headed once its first cell starts: a section without privileges never does
			prog.section(labSection(lp))
			started = true
		}
		prog.event(ev)
	}
	lr, err := bench.Run(ctx, lp)
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
