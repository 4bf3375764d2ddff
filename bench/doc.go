// Package bench runs the same workloads over TCP and over UDP and measures, in
// numbers, how the two differ.
//
// # What it holds
//
// The Transport interface (declared here, where it is used; the tcp and udp packages
// satisfy it without importing bench), the message header codec, the experiments
// (stream, pingpong, connect), the metrics (sequence accounting, RFC 3550 jitter, HDR
// latency histograms, CPU per GB), the report model (report.go) and its renderers
// (render_text.go, render_md.go).
//
// # Invariants
//
// Experiments are written once against Network, Listener and Transport and run for
// every transport: none asks which transport it is running over. Optional kernel
// figures (TCP_INFO, receive-buffer drops, granted buffer sizes) come through small
// capability interfaces checked with a type assertion.
//
// Every message carries a 48-byte header (header.go) with the run id, flow id, a 64-bit
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
// # What it does not do
//
// It sets up no network: loopback needs nothing, and the impairment lab (bench/lab)
// builds its own. It does not print: the cmd package owns stdout and stderr.
package bench
