package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// ClientAddr and ServerAddr are the two ends of the lab's link: the client and server
// namespaces' addresses. They come from the RFC 2544 benchmarking range
// (198.18.0.0/15), which is never routed anywhere.
const (
	ClientAddr = "198.18.0.1"
	ServerAddr = "198.18.0.2"
)

// DeviceName is the name of the TUN device in each namespace. Names are per
// namespace, so every lab uses the same one.
const DeviceName = "tvu0"

// Config says what a lab's link does.
type Config struct {
	Up, Down Impair     // Up: client→server; Down: server→client
	Seed     int64      // seeds both directions' random decisions (each direction its own stream)
	Classify Classifier // may be nil
	// Line is each TUN device's line rate, the pace at which its namespace's kernel
	// hands the emulator packets; nil means DefaultLine, or DefaultImpairedLine for
	// a device whose direction is impaired (defaultLine). &Line{} (a zero rate)
	// means none: the device's own queue then tail-drops what the emulator has not
	// read.
	Line *Line
	// NoOffload turns the devices' segmentation offloads off: the kernel then hands
	// the emulator one packet per read, and takes one per write, as it did before
	// offloads (slower; for comparison).
	NoOffload bool
}

// A Line is the line rate of the devices the namespaces send through, enforced by a
// tbf qdisc in front of each TUN device. It stands for a host's NIC: a sender faster
// than the line waits for its socket's send buffer instead of losing packets before
// the link, so every packet a sender hands over reaches the emulator and gets its
// fate there. The line is no impairment and no part of the link: the link's own
// rate (Impair.RateBps), queue and tail drop come after it, in the emulator.
type Line struct {
	RateBps   float64       // bits/s of IP packets; 0 = no line (no qdisc)
	PerPacket time.Duration // each packet's cost on top of its bytes at RateBps
	// MinCost is the least a packet costs, its bytes and PerPacket included: what
	// the emulator spends on a read however little it carries. The kernel counts
	// PerPacket and MinCost in bytes at RateBps, at most 65535 each.
	MinCost time.Duration
}

// DefaultLine is the line a nil Config.Line means: about what this emulator carries
// on a small machine shared with its senders and receivers (two busy cores), so that
// the devices' queues do not overflow. With offloads a read carries a TCP or UDP
// super-packet of up to 64 KiB, so a packet's cost is a read's: its bytes at 20
// Gbit/s (the copies in and out: 64 KiB super-packets at 20 Gbit/s), but no less
// than 24 us, what a read, the packets' fates and a write cost there under load
// however little they carry (about 40,000 single packets/s). A floor, not a cost
// added to the bytes': added, it held 64 KiB super-packets to 10 Gbit/s, half what
// the emulator carries. It is stated, not measured per run, so that runs compare.
var DefaultLine = Line{RateBps: 20e9, MinCost: 24 * time.Microsecond}

// DefaultImpairedLine is the line a nil Config.Line means in front of an impaired
// direction (any Impair but the zero one): there the emulator cuts every
// super-packet into its packets, gives each its own fate and joins the survivors
// again, and the receiver takes what loss split into several writes, so a read
// costs its bytes and 24 us more, not at least 24 us (64 KiB super-packets at about
// 10 Gbit/s). At DefaultLine an unpaced UDP flow with GSO across loss=5% lost about
// half of what the link passed in the receiving socket on two busy cores; at this
// line its losses are the link's.
var DefaultImpairedLine = Line{RateBps: 20e9, PerPacket: 24 * time.Microsecond}

// defaultLine is the line a nil Config.Line means for a device whose direction has
// impairment im.
func defaultLine(im Impair) Line {
	if im.IsZero() {
		return DefaultLine
	}
	return DefaultImpairedLine
}

// check reports a line the kernel cannot set: a negative rate or cost, or a cost of
// more than 65535 bytes at the rate.
func (ln Line) check() error {
	if !(ln.RateBps >= 0) || ln.PerPacket < 0 || ln.MinCost < 0 {
		return fmt.Errorf("lab: Line: rate must be 0 (none) or above, per-packet and least costs 0 or above; got %v bit/s, %v, %v", ln.RateBps, ln.PerPacket, ln.MinCost)
	}
	for _, d := range []time.Duration{ln.PerPacket, ln.MinCost} {
		if b := d.Seconds() * ln.RateBps / 8; math.Round(b) > math.MaxUint16 {
			return fmt.Errorf("lab: Line: a packet's cost of %v is %.0f bytes at %v bit/s, more than the kernel's 65535", d, b, ln.RateBps)
		}
	}
	return nil
}

// downSeedMix turns Config.Seed into the down direction's seed, so the two
// directions make independent decisions from one seed.
const downSeedMix = 0x5851f42d4c957f2d

// A Lab is two network namespaces, "client" and "server", joined by an emulated link:
// a TUN device in each, and between them one Link per direction. The client namespace
// has ClientAddr, the server namespace ServerAddr, each with a host route to the other
// and nothing else (no IPv6, no default route). Sockets opened inside InClient or
// InServer live in that namespace and may be used from any goroutine.
//
// A Lab's methods may be called from any goroutine.
type Lab struct {
	client, server *netns // the namespaces, held by file descriptors
	up, down       *Link  // up: client TUN → server TUN; down: the other way

	stop context.CancelFunc // stops the links' Run loops
	wg   sync.WaitGroup     // the readers and the links' Run loops

	errMu sync.Mutex // guards errs
	errs  []error    // unexpected errors from the goroutines, returned by Close

	tuns     []io.Closer // the TUN devices
	stopRead func()      // ends the readers (Linux: they wait on the device and an eventfd)

	closeOnce sync.Once
	closeErr  error // set by closeOnce
}

// New builds a lab as cfg says: two namespaces, a TUN device in each (MTU: Up.MTU on the
// client's, Down.MTU on the server's, DefaultMTU for 0), and the emulator between them.
// ctx bounds the setup only; the lab runs until Close. Without the privileges it needs,
// New returns an error wrapping os.ErrPermission that says what is missing; off Linux, an
// error wrapping errors.ErrUnsupported.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newLab(ctx, cfg)
}

// InClient runs f on a locked OS thread inside the client namespace and waits for it.
// f runs on a goroutine of its own; the thread goes back to its own namespace after
// f, and if it cannot, the thread is discarded and InClient returns that error.
// Sockets f opens stay in the client namespace.
func (l *Lab) InClient(f func() error) error { return l.client.do(f) }

// InServer is InClient for the server namespace.
func (l *Lab) InServer(f func() error) error { return l.server.do(f) }

// Counts returns what the emulator has counted so far, per direction: up is
// client→server, down server→client.
func (l *Lab) Counts() (up, down Counts) { return l.up.Counts(), l.down.Counts() }

// WaitIdle waits until the link is idle: neither direction holds a packet (Queued is
// 0) and neither has taken one in for quiet. It polls the counts every quiet/4 (at
// least every millisecond) and gives up after limit or when ctx is done. It returns
// the last counts it read, the idle ones when idle is true: a caller that reads Counts
// before and after some traffic waits for idle at both ends, so that its figures hold
// neither earlier packets still in flight nor its own ones yet to be released.
func (l *Lab) WaitIdle(ctx context.Context, quiet, limit time.Duration) (up, down Counts, idle bool) {
	step := max(quiet/4, time.Millisecond)
	deadline := time.Now().Add(limit)
	var last uint64
	var since time.Time
	for first := true; ; first = false {
		up, down = l.Counts()
		if taken := up.Packets + down.Packets; first || taken != last {
			last, since = taken, time.Now()
		}
		if up.Queued == 0 && down.Queued == 0 && time.Since(since) >= quiet {
			return up, down, true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return up, down, false
		}
		time.Sleep(step)
	}
}

// Close stops the emulator, waits for its goroutines, and closes the TUN devices and
// the namespaces' descriptors; the devices vanish with their descriptors, a namespace
// when its last descriptor or socket is closed. Close is idempotent: later calls
// return the first call's error.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		if l.stop != nil {
			l.stop()
		}
		if l.stopRead != nil {
			l.stopRead()
		}
		l.wg.Wait()
		for _, t := range l.tuns {
			errs = append(errs, t.Close())
		}
		l.errMu.Lock()
		errs = append(errs, l.errs...)
		l.errMu.Unlock()
		errs = append(errs, l.client.close(), l.server.close())
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// fail records an unexpected error from one of the lab's goroutines for Close.
func (l *Lab) fail(err error) {
	l.errMu.Lock()
	l.errs = append(l.errs, err)
	l.errMu.Unlock()
}
