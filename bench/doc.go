// Package bench runs the same workloads over TCP and over UDP and measures, in
// numbers, how the two differ.
//
// # What it holds
//
// Plan and Run (runner.go, repeat.go, estimate.go); the experiment registry
// (experiments.go: one entry per experiment, with its help, parameters, far half,
// report section, property rules and progress line: summary.go); the peers through
// which an experiment's client half reaches its server half, in this process, in the
// lab's namespaces or on a remote serve (reqpeer.go, streampeer.go, far.go,
// farhalf.go); and the experiments, one file each (stream's: stream*.go). Below it,
// each with one job:
//
//   - bench/transport: the Transport, Listener and Network interfaces, the
//     capabilities experiments ask for, the tcp and udp adapters and the registry
//     (transport.Register, Caps);
//   - bench/wire: the message header every message carries, and how a receiver
//     accepts or rejects a message;
//   - bench/metrics: sequence accounting, RFC 3550 jitter, HDR latency histograms,
//     CPU per GB;
//   - bench/report: the report model, each experiment's section (how the
//     renderers show it) and the rules that derive the properties table from it
//     (each experiment's registration lists its section and the rows it derives);
//   - bench/render: terminal, markdown, SVG (they read the report model only);
//   - bench/transporttest: the suite every transport passes;
//   - bench/lab: the emulated link; bench/remote and bench/farend: the two-host
//     protocol and its server side.
//
// # Experiments
//
// One file each. Measurements, at every size: stream, pingpong, connect. Properties,
// once each: refused, close, clients, boundaries, slow-receiver, fanout. Across an
// emulated link (bench/lab, wired in by labnet.go): bottleneck and hol, and any of the
// others. Each registers itself from its file's init, with the property rows it
// derives (experimentSpec.properties); what a property experiment sees that Metrics
// has no field for goes in Result.Observed.
//
// # Invariants
//
// Experiments are written once against transport.Network, Listener and Transport and run for
// every registered transport: none asks which transport it is running over, only
// what it can do (Caps: reliable, connected, datagrams). Optional kernel
// figures (TCP_INFO, receive-buffer drops, granted buffer sizes) come through small
// capability interfaces checked with a type assertion.
//
// Every message carries a 48-byte header (bench/wire) with the run id, flow id, a 64-bit
// sequence number, the send time and CRC32C checksums. Receivers decode every message;
// a short, foreign or corrupt one is counted, never trusted and never a panic.
//
// Loss is counted after a drain period, from sequence numbers: lost = sent − unique
// received. Duplicates and reordering are counted apart (RFC 4737), so loss never goes
// negative or above 100% (PITFALLS.md 4).
//
// Renderers format; they never compute. The JSON report is the source of truth and
// `tcpvsudp report FILE.json` renders it again.
//
// A cell that failed, or that the run was interrupted in (Result.Interrupted), is not
// a measurement: it keeps its Error and no figures, every renderer says "not
// measured" and why instead of showing zeros, and no property uses it. A run stopped
// early says in Report.Incomplete which cell was running and how many did not run,
// and lists those in Report.NotRun.
//
// # What it does not do
//
// It sets up no network itself: loopback needs nothing, and the impairment lab
// (bench/lab) builds its own namespaces and link. It does not print: the cmd package owns stdout and stderr.
package bench
