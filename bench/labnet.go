package bench

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/lab"
	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// labNetwork opens the server end in the lab's server namespace and the client end in
// its client namespace; the sockets then work from anywhere, across the emulated link.
type labNetwork struct {
	transport.Network
	lab *lab.Lab
}

// labRecvBuffer is the receive buffer a datagram transport's sockets ask for across
// the emulated link when --rcvbuf is not given, bytes (the kernel grants twice it).
// The lab is there to show what the link does. With the kernel's default (208 KiB)
// an unpaced UDP stream overflows its receiver whenever the emulator's threads hold
// the CPUs of a small host, and those drops, though counted (drops_socket), are this
// host's, not the link's. TCP keeps the kernel's autotuning, which setting SO_RCVBUF
// would turn off.
const labRecvBuffer = 4 << 20

// labNetOptions are the socket flags of a cell of the named transport: opts, and
// across the emulated link a datagram transport's labRecvBuffer unless --rcvbuf set
// one.
func labNetOptions(opts transport.NetOptions, lab bool, name string) transport.NetOptions {
	if lab && opts.RecvBuffer == 0 && transport.CapsOf(name).Datagrams {
		opts.RecvBuffer = labRecvBuffer
	}
	return opts
}

func (n labNetwork) forStreams() transport.Network {
	n.Network = transport.ReceiverNetwork(n.Network)
	return n
}

func (n labNetwork) Listen(ctx context.Context, address string) (transport.Listener, error) {
	var l transport.Listener
	err := n.lab.InServer(func() error {
		var err error
		l, err = n.Network.Listen(ctx, address)
		return err
	})
	return l, err
}

func (n labNetwork) Dial(ctx context.Context, address string) (transport.Transport, error) {
	var t transport.Transport
	err := n.lab.InClient(func() error {
		var err error
		t, err = n.Network.Dial(ctx, address)
		return err
	})
	return t, err
}

// WithBlocking keeps the request/response ends' blocking receives across the lab.
func (n labNetwork) WithBlocking() transport.Network {
	if b, ok := n.Network.(transport.BlockingOpener); ok {
		return labNetwork{Network: b.WithBlocking(), lab: n.lab}
	}
	return n
}

// WithBuffers keeps the slow-receiver's small buffers working across the lab.
func (n labNetwork) WithBuffers(recv, send int) transport.Network {
	if o, ok := n.Network.(transport.Optionable); ok {
		return labNetwork{Network: o.WithBuffers(recv, send), lab: n.lab}
	}
	return n
}

// classifyData tells the emulator which UDP payloads are one tcpvsudp message each
// that the receiver accounts (data and requests), and their flow.
func classifyData(payload []byte) (flow uint32, data bool) {
	h, err := wire.DecodeHeader(payload)
	if err != nil || (h.Kind != wire.KindData && h.Kind != wire.KindRequest) {
		return 0, false
	}
	return h.Flow, true
}

// injected converts the emulator's counts taken before and after a cell into the
// report's figures for that cell.
func injected(up0, down0, up1, down1 lab.Counts) *report.Injected {
	return &report.Injected{Up: linkDelta(up0, up1), Down: linkDelta(down0, down1)}
}

func linkDelta(a, b lab.Counts) report.LinkCounts {
	return report.LinkCounts{
		Packets: b.Packets - a.Packets, Dropped: b.Dropped - a.Dropped, QueueDropped: b.QueueDropped - a.QueueDropped,
		Corrupted: b.Corrupted - a.Corrupted, Duplicated: b.Duplicated - a.Duplicated, Reordered: b.Reordered - a.Reordered,
		Passed: b.Passed - a.Passed,
		Data: report.DataCounts{
			Packets: b.Data.Packets - a.Data.Packets, Dropped: b.Data.Dropped - a.Data.Dropped,
			QueueDropped: b.Data.QueueDropped - a.Data.QueueDropped, Corrupted: b.Data.Corrupted - a.Data.Corrupted,
			Duplicated: b.Data.Duplicated - a.Data.Duplicated, Reordered: b.Data.Reordered - a.Data.Reordered,
		},
	}
}

// labLink describes the lab link for the report's env.
func labLink(c *LabConfig, seed int64, addr string) report.Link {
	mtu := c.Up.MTU
	if mtu == 0 {
		mtu = lab.DefaultMTU
	}
	imp := map[string]string{"up": c.Up.String(), "down": c.Down.String(), "seed": fmt.Sprint(seed)}
	if c.Name != "" {
		imp["preset"] = c.Name
	}
	return report.Link{Kind: "lab", Addr: addr, MTU: mtu, Impair: imp}
}

// labAddress is where the server end listens in the lab.
func labAddress(port string) string { return net.JoinHostPort(lab.ServerAddr, port) }

// labCell takes one cell's figures from the emulated link. Its window is the cell's
// measured phase when the experiment marks one (runEnv.markMeasured: from the start
// of the first to the end of the last), else the whole cell; every edge of the window
// waits for the link to be idle first, so that no packet of an earlier phase or cell
// still in flight is counted, and none of this one's is left out.
type labCell struct {
	lab       *lab.Lab
	datagrams bool          // each measured message crosses as one classified packet
	idle      time.Duration // the longest wait for the link to be idle

	mu     sync.Mutex // guards the fields below
	starts int        // measured phases started
	ends   int        // measured phases ended
	first  labMark    // at the cell's start, then at the first phase's start
	last   labMark    // when the last open phase ended
	busy   bool       // an edge found the link still busy after idle
}

// labMark is the link's counters at one edge of the window.
type labMark struct {
	up, down       lab.Counts
	devUp, devDown uint64 // the TUN devices' transmit drops
	devErr         error
}

// linkQuiet is how long the link must take in nothing to count as idle.
const linkQuiet = 20 * time.Millisecond

func startLabCell(ctx context.Context, l *lab.Lab, nw transport.Network, idle time.Duration) *labCell {
	c := &labCell{lab: l, datagrams: transport.CapsOf(nw.Name()).Datagrams, idle: cmp.Or(idle, time.Second)}
	c.first = c.read(ctx)
	return c
}

// read waits for the link to be idle and reads its counters.
func (c *labCell) read(ctx context.Context) labMark {
	var m labMark
	var idle bool
	if m.up, m.down, idle = c.lab.WaitIdle(ctx, linkQuiet, c.idle); !idle {
		c.mu.Lock()
		c.busy = true
		c.mu.Unlock()
	}
	m.devUp, m.devDown, m.devErr = c.lab.DeviceDrops()
	return m
}

// measured is runEnv.onMeasured. Only the first start and the end that closes the
// last open phase read the link: phases that overlap (bottleneck's competing flows)
// do not wait for each other's traffic to stop.
func (c *labCell) measured(end bool) {
	c.mu.Lock()
	var edge bool
	if end {
		c.ends++
		edge = c.ends == c.starts
	} else {
		c.starts++
		edge = c.starts == 1
	}
	c.mu.Unlock()
	if !edge {
		return
	}
	m := c.read(context.Background()) // bounded by c.idle
	c.mu.Lock()
	defer c.mu.Unlock()
	if end {
		c.last = m
	} else {
		c.first = m
	}
}

// finish ends the cell (sent: the messages the cell's senders handed over, refused
// ones not counted) and returns the link's figures for it, with warnings.
func (c *labCell) finish(ctx context.Context, sent uint64) (*report.Injected, []string) {
	end := c.read(ctx) // the cell's own packets leave the link before the next cell starts
	c.mu.Lock()
	defer c.mu.Unlock()
	a, b := c.first, end
	phase := c.starts > 0 && c.ends == c.starts
	if phase {
		b = c.last
	}
	in := injected(a.up, a.down, b.up, b.down)
	var warns []string
	if c.busy {
		warns = append(warns, fmt.Sprintf("the emulated link was still busy %v after the cell (or its measured phase) ended: its figures may hold packets of a neighbouring phase", c.idle))
	}
	if err := cmp.Or(a.devErr, b.devErr); err != nil {
		warns = append(warns, fmt.Sprintf("could not read the lab devices' drop counters: %v", err))
	} else {
		in.Up.DeviceDropped = b.devUp - a.devUp
		in.Down.DeviceDropped = b.devDown - a.devDown
	}
	// One measured phase of datagrams: every measured message the link did not take
	// in was dropped before it (warm-up and end markers are not data).
	if c.datagrams && phase && c.starts == 1 && sent >= in.Up.Data.Packets {
		in.Messages = true
		in.Up.DeviceDropped = sent - in.Up.Data.Packets
	}
	if d := in.Up.DeviceDropped; d > 0 {
		what := "packets"
		if in.Messages {
			what = "measured messages"
		}
		warns = append(warns, fmt.Sprintf("the emulated link fell behind its line: %d %s were dropped at the sending device before the emulator saw them (counted as network drops, not in the injected figures), most likely because the host kept the emulator from running; pace the sender (--rate) or run on a quieter host for an exact injected-vs-measured comparison", d, what))
	}
	return in, warns
}
