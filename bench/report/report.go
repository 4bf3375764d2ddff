// Package report is the run's JSON document, the source of truth and the only
// input of the renderers: plain data (Report and what it holds), the names of
// experiments and cells as reports spell them, how to show each experiment
// (Section, from its registration), and the rules that derive the properties
// table's rows from an experiment's results (Rule, Derive; each experiment's
// registry entry in bench lists its own). Nothing here measures.
package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Schema names the JSON document's shape. Fields are added, never renamed.
const Schema = "tcpvsudp/v1"

// Report is one run of the tool: the JSON document that is the source of truth, and
// the only input of the renderers. It is plain data; nothing here computes.
type Report struct {
	Schema     string     `json:"schema"`
	Tool       string     `json:"tool"` // "tcpvsudp" and its version
	Env        Env        `json:"env"`
	Config     Config     `json:"config"`
	Results    []Result   `json:"results"`
	Properties []Property `json:"properties"`
	Warnings   []string   `json:"warnings,omitempty"` // run-wide problems
	// Incomplete says why the run ended before every cell ran (interrupted, or the
	// remote server lost), naming the cell running then and how many did not run;
	// empty when it ran them all. A partial report keeps every cell measured before.
	Incomplete string `json:"incomplete,omitempty"`
	// NotRun lists the cells of the plan that never started because the run was
	// interrupted first; Results holds only cells that started.
	NotRun []Cell `json:"not_run,omitempty"`
	// Lab is the short run across the emulated link that the default suite adds when
	// it has the privileges: a report of its own (its env.link says what the link
	// did). Its property rows also appear in Properties above.
	Lab *Report `json:"lab,omitempty"`
	// Sections say how to show each experiment the run ran, from its registration:
	// its heading, layout, parameters and charts. Absent in reports that predate
	// them, whose experiments render as generic tables (SectionOf).
	Sections []Section `json:"sections,omitempty"`
}

// AttachLab adds the lab report to r and merges its property rows into r's table: a
// lab row replaces a loopback row with the same id (the lab shows more), and new ids
// are added in the lab's order.
func (r *Report) AttachLab(l *Report) {
	r.Lab = l
	idx := map[string]int{}
	for i, p := range r.Properties {
		idx[p.ID] = i
	}
	for _, p := range l.Properties {
		switch p.ID {
		case "connection-setup", "per-client-socket", "rtt", "throughput", "cost", "reliability", "flow-control":
			continue // measured on loopback above; across the link they say the same, slower
		}
		p.Property += " (emulated link)"
		if i, ok := idx[p.ID]; ok {
			r.Properties[i] = p
			continue
		}
		r.Properties = append(r.Properties, p)
	}
}

// Env describes where the run happened, so a reader can reproduce it.
type Env struct {
	Host       string          `json:"host"`
	OS         string          `json:"os"`
	Arch       string          `json:"arch"`
	Kernel     string          `json:"kernel"`
	Go         string          `json:"go"`
	CPUs       int             `json:"cpus"`
	GOMAXPROCS int             `json:"gomaxprocs"`
	Link       Link            `json:"link"`
	Sockets    map[string]Sock `json:"sockets,omitempty"` // by transport: what the kernel granted
	// Peer is the other host's environment in remote mode, as its server reported it.
	Peer *Env `json:"peer,omitempty"`
}

// Link is the path between the two ends.
type Link struct {
	Kind   string            `json:"kind"` // "loopback", "lab" or "remote"
	Addr   string            `json:"addr"` // the server address used
	MTU    int               `json:"mtu,omitempty"`
	Impair map[string]string `json:"impair,omitempty"`
}

// Sock records socket buffer sizes as the kernel granted them, in bytes.
type Sock struct {
	RecvBuffer int  `json:"recv_buffer"`
	SendBuffer int  `json:"send_buffer"`
	GSO        bool `json:"gso,omitempty"` // UDP segmentation offload on the sending socket (UDP_SEGMENT)
	GRO        bool `json:"gro,omitempty"` // UDP receive offload (UDP_GRO)
	// RxTimestamps: the kernel stamps each arriving datagram (SO_TIMESTAMPNS, set and
	// read back), so jitter uses the kernel's arrival times.
	RxTimestamps bool `json:"rx_timestamps,omitempty"`
	// BusyPoll: receivers spin on non-blocking reads (--busy-poll).
	BusyPoll bool `json:"busy_poll,omitempty"`
	// BusyPollUs is SO_BUSY_POLL as the kernel granted it, µs, read back; 0 with
	// BusyPoll means the kernel refused it (CAP_NET_ADMIN needed), which changes
	// nothing on loopback: it polls NAPI device queues, and lo has none.
	BusyPollUs int `json:"so_busy_poll_us,omitempty"`
	// Batch is the most messages one send or receive call moves (--batch), as the
	// end set it on its sockets.
	Batch int `json:"batch,omitempty"`
	// Verify is what the end's receivers checked of each message (--verify):
	// "payload" (header and payload CRC32C) or "header" (header only: a corrupted
	// payload goes uncounted). Absent in reports that predate it, whose receivers
	// checked payloads.
	Verify string `json:"verify,omitempty"`
	// Rx is how the end's receivers waited for data, by experiment (so far the
	// request/response ones: "pingpong"): "blocking" (a blocking recvmsg/read on a
	// goroutine's OS thread, outside Go's poller; the default of closed-loop pingpong's
	// client and of every echo server), "poller" (parked in Go's network poller until
	// the socket is readable, then woken by the scheduler) or "busy-poll"
	// (--busy-poll). On one host both ends are this process: a value of two modes
	// says "client M, server M". Absent for a far end that did not say (an older
	// server): its mode is unknown.
	Rx map[string]string `json:"rx,omitempty"`

	// Across hosts (remote mode) each end describes its own data-path endpoints:
	// DataSockets counts those these figures cover, over the run; the buffers are
	// the smallest any of them was granted as it opened. Absent on one host, where
	// one probe socket per transport stands for all.
	DataSockets int `json:"data_sockets,omitempty"`
	// SendCalls and SentDatagrams count the system calls that sent the end's
	// datagrams (sendmmsg) and the datagrams they carried, over the run's data-path
	// endpoints (UDP, remote mode): SentDatagrams/SendCalls is 1 with --batch 1, up to
	// the batch otherwise. GSO (above) says whether a datagram left the socket alone
	// or in a super-datagram the kernel cut up.
	SendCalls     *uint64 `json:"send_calls,omitempty"`
	SentDatagrams *uint64 `json:"sent_datagrams,omitempty"`
	// Refused says what the end's kernel refused of the socket flags (a buffer
	// capped, SO_BUSY_POLL refused), one line per refusal naming its flag.
	Refused []string `json:"refused,omitempty"`
}

// Config is the set of flags that shaped the run.
type Config struct {
	Command     string   `json:"command"` // the command line, as typed
	Transports  []string `json:"transports"`
	Experiments []string `json:"experiments"`
	Sizes       []int    `json:"sizes"` // message sizes, bytes (our 48-byte header included)
	Streams     int      `json:"streams"`
	DurationS   float64  `json:"duration_s"` // per run of a measurement cell (a result's params say each cell's)
	Count       uint64   `json:"count"`      // messages per stream; 0 = run for duration_s
	RateBps     float64  `json:"rate_bps"`   // per run, all streams; 0 = unpaced
	Repeat      int      `json:"repeat"`     // runs per measurement cell (a result's repeat.runs says each cell's)
	Port        int      `json:"port"`       // 0 = ephemeral
	Seed        int64    `json:"seed"`
	Quick       bool     `json:"quick"`
	NoDelay     bool     `json:"nodelay"`
	Clients     int      `json:"clients"`         // clients experiment
	Receivers   int      `json:"receivers"`       // fanout experiment
	ReaderBps   float64  `json:"reader_rate_bps"` // slow-receiver's reading pace, bits/s
	RecvBuffer  int      `json:"recv_buffer"`     // SO_RCVBUF requested, bytes; 0 = default
	SendBuffer  int      `json:"send_buffer"`     // SO_SNDBUF requested, bytes; 0 = default
	WarmupS     float64  `json:"warmup_s"`
	DrainS      float64  `json:"drain_s"`
	TimeoutS    float64  `json:"timeout_s"` // a request unanswered this long counts as unanswered
	Started     string   `json:"started"`   // RFC 3339, UTC
	WallS       float64  `json:"wall_s"`    // the whole run, seconds
	// BusyPoll: receivers spin on non-blocking reads (--busy-poll); env.sockets says
	// what each socket got.
	BusyPoll bool `json:"busy_poll,omitempty"`
	NoGSO    bool `json:"no_gso,omitempty"` // --no-gso: UDP sends one datagram per message, without GSO
	Batch    int  `json:"batch,omitempty"`  // --batch: most messages per send or receive call
	// UDPIO lists the I/O modes UDP stream cells ran in (--udp-io): "batched" (the
	// socket flags above), "textbook" (one datagram per call, no offloads).
	UDPIO []string `json:"udp_io,omitempty"`
	// Verify is --verify: "payload" (receivers check the header's and the payload's
	// CRC32C), or "header" (the header's only, so corrupt_msgs misses corrupted
	// payloads). Absent in reports that predate it, whose receivers checked payloads.
	Verify string `json:"verify,omitempty"`
}

// PayloadsVerified reports whether the run's receivers checked every payload's
// CRC32C, so that its corrupt_msgs are measured figures: true unless --verify header
// (and for reports that predate --verify). With a far end, both ends used the policy.
func (c Config) PayloadsVerified() bool {
	return c.Verify == "" || c.Verify == "payload" // --verify's default
}

// Result is one experiment over one transport with one set of parameters.
type Result struct {
	Experiment string   `json:"experiment"`
	Transport  string   `json:"transport"`
	Params     Params   `json:"params"`
	Metrics    Metrics  `json:"metrics"`
	Repeat     *Repeat  `json:"repeat,omitempty"` // when the cell ran more than once (--repeat, or the default suite's runs)
	Warnings   []string `json:"warnings,omitempty"`
	// Error says why the cell is not measured: it failed, or the run was interrupted
	// while it ran (Interrupted). Its Metrics hold nothing then, not even zeros to
	// show: renderers say "not measured" instead (Measured).
	Error string `json:"error,omitempty"`
	// Interrupted: the run was stopped (Ctrl-C, SIGTERM) while this cell ran, so it
	// has no figures; Error says how far it had got.
	Interrupted bool `json:"interrupted,omitempty"`

	// Observed holds what a property experiment saw that Metrics has no field for,
	// named per experiment in snake_case (e.g. "refused_error", "detect_ns",
	// "read_sizes"). Values are JSON numbers, strings, booleans, or maps/lists of them.
	Observed map[string]any `json:"observed,omitempty"`
	// Series is a time line of the cell (slow-receiver: sent vs delivered), in order.
	Series []Sample `json:"series,omitempty"`
	// Injected is what the emulated link did during the cell (lab runs only), to set
	// beside what the transports measured.
	Injected *Injected `json:"injected,omitempty"`
	// Timelines are the receiver goodput time lines of a cell that runs more than one
	// flow or phase (bottleneck: FlowAlone, FlowShared, FlowCompetitor), in the order
	// they ran; Series is the cell's one time line of cumulative counts.
	Timelines []Timeline `json:"timelines,omitempty"`
}

// Timeline is one flow's goodput at its receiver, interval by interval, from the
// start of the flow's measured phase (after its warm-up) to the end of its drain;
// the last interval, from the last whole step to the drain's end, may be shorter.
// Its points add up to what the flow delivered.
type Timeline struct {
	Flow      string      `json:"flow"`      // which of the cell's flows: FlowAlone, FlowShared, FlowCompetitor
	Transport string      `json:"transport"` // the flow's transport
	StepS     float64     `json:"step_s"`    // the sampling interval, seconds
	Points    []RatePoint `json:"points"`    // in time order; at most a few hundred
}

// The flows of a bottleneck cell (Timeline.Flow).
const (
	FlowAlone      = "alone"      // the cell's transport alone on the link
	FlowShared     = "shared"     // the same flow again, beside the competitor
	FlowCompetitor = "competitor" // the unresponsive UDP flow beside it, at the link rate
)

// RatePoint is a Timeline's goodput over one interval.
type RatePoint struct {
	TS         float64 `json:"t_s"`         // the interval's end, seconds since the flow's measured phase began
	GoodputBps float64 `json:"goodput_bps"` // unique intact message bits delivered in the interval over its length, decimal
}

// Measured reports whether r ran to its end: a cell that failed or was interrupted
// (Error) has no figures, and its Metrics must not be shown or used as if it had. A
// cell skipped on purpose (a far end that cannot run it) says so in Observed.
func (r *Result) Measured() bool { return r.Error == "" }

// Cell names one cell of a plan: an experiment over a transport with its parameters.
type Cell struct {
	Experiment string `json:"experiment"`
	Transport  string `json:"transport"`
	Params     Params `json:"params"`
}

// Injected is what each direction of the emulated link did during one cell: during
// its measured phase when the experiment has one (stream and the experiments built on
// it: from the end of the warm-up to the end of the drain), else during the whole
// cell. Each edge of that window waits for the link to be idle, so no packet of a
// neighbouring phase or cell is counted. Figures reads the one set every table and
// property row quotes.
type Injected struct {
	Up   LinkCounts `json:"up"`   // client to server
	Down LinkCounts `json:"down"` // server to client
	// Messages says that Up.Data counts the cell's measured messages one packet each
	// (datagrams) and Up.DeviceDropped is those of them dropped before the link.
	Messages bool `json:"messages,omitempty"`
}

// LinkFigures are one cell's emulated-link figures as the report quotes them, in
// the direction the measured data travels: client to server. For datagrams they
// count the measured messages (Up.Data); otherwise (TCP) every packet the client
// sent across the link in the window: data segments, retransmissions and pure ACKs.
type LinkFigures struct {
	Datagrams  bool   // the counts are data messages, not packets
	Dropped    uint64 // dropped by the link: random loss and tail drop at its queue
	Queue      uint64 // of Dropped, tail-dropped at the rate limiter's queue
	Corrupted  uint64
	Duplicated uint64
	Reordered  uint64
	// BeforeLink: lost before the link saw them, the sender outrunning the emulator
	// (the client's TUN device dropped them). With Injected.Messages: measured
	// messages sent (less those the sender's kernel refused) − data packets the link
	// took in. Otherwise (TCP; datagram cells with several phases or none) the
	// device's transmit-drop counter over the window, in packets.
	BeforeLink uint64
}

// Figures returns the cell's link figures as every table and property row quotes
// them. Reports written before Messages existed count datagrams whenever the link
// classified any data packet.
func (in *Injected) Figures() LinkFigures {
	u := in.Up
	if in.Messages || u.Data.Packets > 0 {
		d := u.Data
		return LinkFigures{Datagrams: true, Dropped: d.Dropped + d.QueueDropped, Queue: d.QueueDropped, Corrupted: d.Corrupted,
			Duplicated: d.Duplicated, Reordered: d.Reordered, BeforeLink: u.DeviceDropped}
	}
	return LinkFigures{Dropped: u.Dropped + u.QueueDropped, Queue: u.QueueDropped, Corrupted: u.Corrupted,
		Duplicated: u.Duplicated, Reordered: u.Reordered, BeforeLink: u.DeviceDropped}
}

// Lost is every measured message the link or the path before it lost: Dropped +
// Corrupted (the receiver's checksum drops them) + BeforeLink. For datagrams, what a
// receiver's lost_msgs must equal; for TCP, the packets its retransmits repair.
func (f LinkFigures) Lost() uint64 { return f.Dropped + f.Corrupted + f.BeforeLink }

// LinkCounts count packets one direction of the emulated link handled. Fates are
// exclusive: a packet is dropped, corrupted, duplicated, held back, or passed.
type LinkCounts struct {
	Packets      uint64 `json:"packets"`
	Dropped      uint64 `json:"dropped"`       // random loss
	QueueDropped uint64 `json:"queue_dropped"` // tail drop at the rate limiter
	Corrupted    uint64 `json:"corrupted"`     // a bit flipped: the receiver's checksum drops it
	Duplicated   uint64 `json:"duplicated"`
	Reordered    uint64 `json:"reordered"` // held back and overtaken
	Passed       uint64 `json:"passed"`
	// DeviceDropped counts packets the sending side's TUN device dropped because its
	// queue was full: the sender outran the emulator, and the emulator never saw them.
	// Read over the same window as the other counts; in Up of a cell with Messages
	// set, the measured messages sent that the link never took in.
	DeviceDropped uint64     `json:"device_dropped"`
	Data          DataCounts `json:"data"` // the same for packets carrying one data message each (UDP)
}

// DataCounts count the link's fates for packets that carry exactly one tcpvsudp data
// message (a UDP datagram): the figures the receiver's own counts must equal.
type DataCounts struct {
	Packets      uint64 `json:"packets"`
	Dropped      uint64 `json:"dropped"`
	QueueDropped uint64 `json:"queue_dropped"`
	Corrupted    uint64 `json:"corrupted"`
	Duplicated   uint64 `json:"duplicated"`
	Reordered    uint64 `json:"reordered"`
}

// Sample is one point of a result's time line.
type Sample struct {
	TS       float64 `json:"t_s"`       // seconds since the measurement started
	SentMsgs uint64  `json:"sent_msgs"` // cumulative, handed to the transport
	RecvMsgs uint64  `json:"recv_msgs"` // cumulative, unique intact messages received
}

// Params are the inputs of one result.
type Params struct {
	Size      int     `json:"size"` // bytes per message
	Streams   int     `json:"streams"`
	Clients   int     `json:"clients,omitempty"`         // concurrent clients (clients)
	Receivers int     `json:"receivers,omitempty"`       // receivers of one sender (fanout)
	ReaderBps float64 `json:"reader_rate_bps,omitempty"` // the receiver's reading pace (slow-receiver), bits/s
	RateBps   float64 `json:"rate_bps"`                  // 0 = unpaced
	PingRate  float64 `json:"ping_rate,omitempty"`       // pingpong requests/s on a timetable (open loop); 0 = closed loop
	DurationS float64 `json:"duration_s"`
	Count     uint64  `json:"count"`             // messages (or transactions) per stream; 0 = duration mode
	Reverse   bool    `json:"reverse,omitempty"` // stream in remote mode: the server sends, this host receives
	Bidir     bool    `json:"bidir,omitempty"`   // stream in remote mode: both send at once; metrics sum both directions, observed splits them
	// IO is how a UDP stream cell moves datagrams: "" = batched, with the run's socket
	// flags (sendmmsg/recvmmsg, GSO and GRO unless --no-gso); IOTextbook = one datagram
	// per system call and no offloads, as the textbook sends it.
	IO string `json:"io,omitempty"`
}

// The UDP I/O modes of a stream cell (Params.IO, --udp-io).
const (
	IOBatched  = "batched"  // the run's socket flags; Params.IO is "" for it
	IOTextbook = "textbook" // one datagram per sendmmsg/recvmmsg call, no GSO, no GRO
)

// Metrics are the measured figures, named as DESIGN.md's results contract names them.
// Counts are messages unless the name says bytes. Pointer fields are absent when the
// transport or experiment cannot measure them (for example retransmits for UDP).
type Metrics struct {
	SentMsgs      uint64 `json:"sent_msgs"` // handed to the transport (failed sends included)
	RecvMsgs      uint64 `json:"recv_msgs"` // returned by the transport, duplicates included
	LostMsgs      uint64 `json:"lost_msgs"` // sent − unique received, after the drain; request/response experiments: = Timeouts (kept for compatibility, shown as unanswered)
	DupMsgs       uint64 `json:"dup_msgs"`
	ReorderedMsgs uint64 `json:"reordered_msgs"` // RFC 4737: below the highest seen
	ReorderExtent uint64 `json:"reorder_max_extent"`
	CorruptMsgs   uint64 `json:"corrupt_msgs"`   // CRC32C mismatch
	MalformedMsgs uint64 `json:"malformed_msgs"` // header failed to decode
	ForeignMsgs   uint64 `json:"foreign_msgs"`   // another run's or an unknown flow's
	LateMsgs      uint64 `json:"late_msgs"`      // replies that came after their timeout
	SentBytes     uint64 `json:"sent_bytes"`
	RecvBytes     uint64 `json:"recv_bytes"` // unique, intact

	GoodputBps    float64 `json:"goodput_bps"` // receiver: unique intact bits/s over its interval
	MsgsPerS      float64 `json:"msgs_per_s"`  // receiver: unique intact messages/s
	SendRateBps   float64 `json:"send_rate_bps"`
	SendMsgsPerS  float64 `json:"send_msgs_per_s"`
	RecvIntervalS float64 `json:"recv_interval_s"` // first to last measured message received
	SendIntervalS float64 `json:"send_interval_s"` // first to last measured message sent
	DrainS        float64 `json:"drain_s"`         // waited after the last send

	RTT           *LatencyStats `json:"rtt_ns,omitempty"`
	JitterNs      *float64      `json:"jitter_ns,omitempty"` // RFC 3550 §6.4.1, final value
	TransPerS     float64       `json:"transactions_per_s,omitempty"`
	Timeouts      uint64        `json:"timeouts,omitempty"` // requests unanswered within the timeout (any transport; see Section.Replies)
	Retransmits   *uint64       `json:"retransmits,omitempty"`
	CPUSecPerGB   *float64      `json:"cpu_s_per_gb,omitempty"` // user+sys, whole process (both ends on loopback)
	CPUSec        float64       `json:"cpu_s"`
	GCPauseNs     uint64        `json:"gc_pause_ns"`
	DropsSender   uint64        `json:"drops_sender"`
	DropsSocket   *uint64       `json:"drops_socket,omitempty"`
	DropsNetwork  *uint64       `json:"drops_network,omitempty"`
	ServerSockets int           `json:"server_sockets"` // endpoints the server needed

	// DropsSocketPackets is the kernel's own count behind drops_socket when the
	// receiver took UDP GRO super-packets: Linux counts a dropped super-packet once,
	// and drops_socket is then the datagrams in the holes those drops left
	// (bench/grodrops.go). Absent without GRO, where the kernel counts datagrams.
	// Over the measured interval (at a far end: from its first data message, so a
	// sender that outran the receiver before it read anything drops packets this
	// misses; the holes, counted from the socket's opening, do not).
	DropsSocketPackets *uint64 `json:"drops_socket_packets,omitempty"`

	// JitterKernelMsgs counts the received data messages (of recv_msgs) whose arrival
	// time in jitter_ns is the kernel's receive timestamp (SO_TIMESTAMPNS); the other
	// recv_msgs − jitter_kernel_msgs were timed in user space, when the receive call
	// returned, which adds the receiver's queueing and scheduling delay. 0 for TCP: a
	// byte stream has no per-message arrival. Present where jitter is measured.
	JitterKernelMsgs *uint64 `json:"jitter_kernel_msgs,omitempty"`

	// ServerCPUSec is the far end's CPU (user+sys) over the cell, in remote mode: its
	// whole serve process, so other tests it ran at once count too (a warning says
	// when). Absent on one host, where cpu_s holds both ends.
	ServerCPUSec *float64 `json:"server_cpu_s,omitempty"`
}

// LatencyStats summarise a latency distribution in nanoseconds. A percentile is
// present only when there were enough samples to support it (≥ 10/(1−q)); else nil.
type LatencyStats struct {
	Samples uint64  `json:"samples"`
	Min     int64   `json:"min"`
	P50     *int64  `json:"p50"`
	P90     *int64  `json:"p90"`
	P99     *int64  `json:"p99"`
	P999    *int64  `json:"p999"`
	Max     int64   `json:"max"`
	Mean    float64 `json:"mean"`
	Stddev  float64 `json:"stddev"`
	// CDF is the distribution for charts: points (ns, fraction of samples ≤ ns),
	// ascending, from the histogram; absent when there are no samples.
	CDF []CDFPoint `json:"cdf,omitempty"`
}

// CDFPoint is one point of a latency distribution.
type CDFPoint struct {
	Ns int64   `json:"ns"`
	Q  float64 `json:"q"` // fraction of samples at or below Ns, 0..1
}

// Repeat says how a result's figures combine several runs: each figure in Metrics is
// the median of Runs runs; CI holds a 95% confidence interval for the headline ones,
// and Spread how far their runs spread.
type Repeat struct {
	Runs int                 `json:"runs"`
	CI   map[string]Interval `json:"ci"` // keyed by metric JSON name, e.g. "goodput_bps"
	// Spread describes each headline figure's runs (the figures of CI), keyed as CI.
	// Absent in reports that predate it.
	Spread map[string]Spread `json:"spread,omitempty"`
	// Noisy names the figures of Spread whose runs disagree (Spread.Noisy), in the order
	// bench lists them (goodput first): the cell is noisy when any is. Absent when none is.
	Noisy []string `json:"noisy,omitempty"`
}

// NoisyRange is the rule that flags a figure noisy: its runs span more than this
// fraction of their median, (max − min) > NoisyRange × |median|. The range is what
// the renderers print beside the median, so a reader can check the mark; 10% is
// well above the run-to-run spread of a quiet host (a few percent) and well below
// what one disturbed run does to a figure.
const NoisyRange = 0.10

// Spread describes how one figure varied over a cell's runs, from one value per run
// (never per-message samples). Dispersion figures are in the figure's own unit.
type Spread struct {
	Median float64 `json:"median"`
	MAD    float64 `json:"mad"`    // median absolute deviation from Median, unscaled
	Stddev float64 `json:"stddev"` // sample standard deviation (n − 1 in the denominator)
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Outliers are the runs' values that stand apart from the others, ascending:
	// outside Tukey's fences (Q1 − 1.5·IQR, Q3 + 1.5·IQR), or more than 3.5 on the
	// modified z-score 0.6745·|x − Median|/MAD (Iglewicz and Hoaglin), which unlike
	// the fences can single out one run of 3 or 4.
	Outliers []float64 `json:"outliers,omitempty"`
	// Noisy: the runs disagree by more than NoisyRange allows.
	Noisy bool `json:"noisy,omitempty"`
}

// IsNoisy reports whether runs spanning min..max around median break the NoisyRange
// rule. A zero median makes any spread noisy.
func IsNoisy(median, min, max float64) bool {
	return max-min > NoisyRange*math.Abs(median)
}

// Interval is a distribution-free confidence interval around a median.
type Interval struct {
	Median     float64 `json:"median"`
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	Confidence float64 `json:"confidence"` // e.g. 0.95; lower when too few runs (see Warnings)
}

// Property is one row of the properties table: a textbook claim, what each transport
// did, and the measured figures behind it.
type Property struct {
	ID       string `json:"id"` // stable: "connection-setup", "refused", "close", ...
	Property string `json:"property"`
	Claim    string `json:"claim"`
	TCP      string `json:"tcp"`
	UDP      string `json:"udp"`
	// ByTransport is what each transport the run measured did, by transport name:
	// tcp and udp (the same text as TCP and UDP), and every other registered
	// transport whose row the run can derive (the rows built from one text function
	// over each transport's results: the property experiments' and the RTT row).
	ByTransport map[string]string `json:"by_transport,omitempty"`
	Evidence    map[string]any    `json:"evidence,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport decodes a report written by WriteJSON and checks its schema.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	br := bufio.NewReader(rd)
	if c, err := firstNonSpace(br); err == nil && c != '{' {
		return nil, fmt.Errorf("report: %w (it starts with %q): give the report.json that 'tcpvsudp run' wrote, not its markdown", ErrNotReport, c)
	}
	dec := json.NewDecoder(br)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("report: schema %q, want %q", r.Schema, Schema)
	}
	return &r, nil
}

// ErrNotReport is ReadReport's error for input that is not a JSON document at all
// (a markdown report, say).
var ErrNotReport = errors.New("not a JSON report")

// firstNonSpace peeks at br's first byte that is not white space, leaving it unread.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, br.UnreadByte()
		}
	}
}

// LoadReport reads a report from a JSON file.
func LoadReport(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := ReadReport(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
