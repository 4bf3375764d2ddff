package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxPacket is the reader's buffer: the largest IP packet, whatever the MTU.
const maxPacket = 65535

func newLab(ctx context.Context, cfg Config) (_ *Lab, err error) {
	upMTU, err := linkMTU("Up", cfg.Up.MTU)
	if err != nil {
		return nil, err
	}
	downMTU, err := linkMTU("Down", cfg.Down.MTU)
	if err != nil {
		return nil, err
	}
	client, server := netip.MustParseAddr(ClientAddr), netip.MustParseAddr(ServerAddr)
	upLine, downLine := defaultLine(cfg.Up), defaultLine(cfg.Down)
	if cfg.Line != nil {
		upLine, downLine = *cfg.Line, *cfg.Line
	}
	if err := upLine.check(); err != nil {
		return nil, err
	}
	if err := downLine.check(); err != nil {
		return nil, err
	}

	l := &Lab{}
	defer func() {
		if err != nil {
			l.Close() // whatever was made so far
		}
	}()
	// Each device's MTU is what its side sends: the client's the up link's, the
	// server's the down link's.
	var clientTUN, serverTUN *os.File
	offload := !cfg.NoOffload
	side := func(tun **os.File, local, peer netip.Addr, mtu int, line Line) func() error {
		return func() error {
			f, err := newSide(local, peer, mtu, line, offload)
			if err == nil {
				*tun = f
				l.tuns = append(l.tuns, f) // closed by Close, even if New fails later
			}
			return err
		}
	}
	if l.client, err = newNetns("client", side(&clientTUN, client, server, upMTU, upLine)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.server, err = newNetns("server", side(&serverTUN, server, client, downMTU, downLine)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The links' out functions write to the opposite device; a write error is the
	// link's to count. After Close, writes fail with os.ErrClosed.
	l.up = NewLink(cfg.Up, cfg.Seed, cfg.Classify, nil)
	l.down = NewLink(cfg.Down, cfg.Seed^downSeedMix, cfg.Classify, nil)
	toServer, toClient := l.newWriter("server", serverTUN, offload), l.newWriter("client", clientTUN, offload)
	toServer.attach(l.up)
	toClient.attach(l.down)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	for _, link := range []*Link{l.up, l.down} {
		l.wg.Go(func() {
			if err := link.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				l.fail(fmt.Errorf("lab: link: %w", err))
			}
		})
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", os.NewSyscallError("eventfd", err))
	}
	var readers sync.WaitGroup
	releaseProcs := addProcs(readerThreads)
	l.stopRead = func() {
		unix.Write(evfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		readers.Wait()
		unix.Close(evfd)
		releaseProcs()
	}
	for _, r := range []struct {
		side string
		tun  *os.File
		link *Link
		out  *writer
	}{{"client", clientTUN, l.up, toServer}, {"server", serverTUN, l.down, toClient}} {
		fd, err := dupFd(r.tun)
		if err != nil {
			return nil, err
		}
		readers.Go(func() {
			defer unix.Close(fd)
			l.read(r.side, fd, evfd, r.link, r.out, offload)
		})
	}
	return l, nil
}

// readerThreads is how many threads a lab's readers keep: one per device.
const readerThreads = 2

// procs counts the processors (GOMAXPROCS) the open labs have added to the
// program's. A reader's thread spends nearly all its time in read(2) and write(2)
// calls of a few microseconds each, too short for Go's scheduler to hand its
// processor to another goroutine meanwhile: without one of its own, each reader
// would take one of the program's processors away, and a program of two (a
// two-core machine) would be left one for its senders and receivers, whose
// goroutines then wait for it while their sockets' buffers overflow (UDP through
// the lab at half the rate with GOMAXPROCS=2 than with 4, the rest lost in the
// receiving socket).
var procs struct {
	mu    sync.Mutex
	added int // by the open labs
	base  int // GOMAXPROCS before the first of them opened
}

// addProcs raises GOMAXPROCS by n while the lab that asks is open; release puts
// back what it added (once). When the last lab closes GOMAXPROCS is the program's
// own again: its default, which follows the machine, if it was the default before.
func addProcs(n int) (release func()) {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if procs.added == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.added += n
	runtime.GOMAXPROCS(procs.base + procs.added)
	var once sync.Once
	return func() {
		once.Do(func() {
			procs.mu.Lock()
			defer procs.mu.Unlock()
			procs.added -= n
			if procs.added > 0 {
				runtime.GOMAXPROCS(procs.base + procs.added)
				return
			}
			runtime.SetDefaultGOMAXPROCS()
			if runtime.GOMAXPROCS(0) != procs.base {
				runtime.GOMAXPROCS(procs.base) // the program had set its own
			}
		})
	}
}

// linkMTU checks one direction's MTU; 0 means DefaultMTU.
func linkMTU(dir string, mtu int) (int, error) {
	switch {
	case mtu == 0:
		return DefaultMTU, nil
	case mtu < 576 || mtu > 65535:
		return 0, fmt.Errorf("lab: %s.MTU: must be 576..65535 bytes, got %d", dir, mtu)
	}
	return mtu, nil
}

// newSide makes one end of the link in the calling thread's network namespace: the
// TUN device, configured with address local, peer and mtu, up, behind line.
func newSide(local, peer netip.Addr, mtu int, line Line, offload bool) (*os.File, error) {
	tun, _, err := openTUN(DeviceName, offload)
	if err != nil {
		return nil, err
	}
	if err := configureLink(DeviceName, local, peer, mtu); err != nil {
		tun.Close()
		return nil, err
	}
	if err := setLine(DeviceName, line, mtu, offload); err != nil {
		tun.Close()
		return nil, err
	}
	return tun, nil
}

// A writer writes what a link passes to the TUN device of the link's far side. With
// offload, consecutive packets of one flow are joined into super-packets
// (coalescer) until flush, which the reader calls after each read and Run after
// each batch; without, each packet is written as it comes.
type writer struct {
	lab     *Lab
	side    string
	tun     *os.File
	offload bool

	mu sync.Mutex // guards c
	c  *coalescer
}

func (l *Lab) newWriter(side string, tun *os.File, offload bool) *writer {
	w := &writer{lab: l, side: side, tun: tun, offload: offload}
	w.c = newCoalescer(func(b []byte) error {
		_, err := tun.Write(b)
		return err
	})
	return w
}

// attach makes w link's out.
func (w *writer) attach(link *Link) {
	if !w.offload {
		link.out = func(pkt []byte) error {
			_, err := w.tun.Write(pkt)
			return err
		}
		return
	}
	link.out = func(pkt []byte) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.c.add(pkt)
		return nil
	}
	link.outCorrupt = func(pkt []byte) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.c.alone(pkt)
		return w.c.flush()
	}
	link.finish = finishChecksum
	link.flushOut = w.flush
}

// super writes the super-packet b (vnet header and packet) as it is, after what w
// holds.
func (w *writer) super(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.c.super(b)
}

// flush writes what w holds. A write error (the device closed under it, at Close)
// is recorded for Close unless the device was closed: the packets it held were
// already counted as passed.
func (w *writer) flush() {
	if !w.offload {
		return
	}
	w.mu.Lock()
	err := w.c.flush()
	w.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrClosed) {
		w.lab.fail(fmt.Errorf("lab: writing to the %s TUN device: %w", w.side, err))
	}
}

// dupFd returns a descriptor of its own for f's device, for a reader that waits on it
// with poll(2) outside Go's poller; it shares f's nonblocking mode.
func dupFd(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(u uintptr) { fd, derr = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	if derr != nil {
		return -1, fmt.Errorf("lab: %w", os.NewSyscallError("fcntl", derr))
	}
	return fd, nil
}

// readerNice is the reader threads' nice value. A device's ring drops what its
// reader has not taken when it fills; on a busy machine the reader must not wait
// behind the senders, receivers and everything else for its turn on a core.
const readerNice = -10

// read hands every packet the kernel sends out of the TUN device fd to link, until
// evfd is signalled. It runs on a thread of its own, at readerNice where it may (the
// thread's niceness is put back before it is released), and waits in poll(2), woken
// by the kernel itself rather than through Go's poller. With offload, each read is a
// vnet header and a packet or super-packet, which it cuts into packets (splitGSO);
// after each read it flushes out, the writer of the link's far side.
func (l *Lab) read(side string, fd, evfd int, link *Link, out *writer, offload bool) {
	runtime.LockOSThread()
	tid := unix.Gettid()
	if prev, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil {
		// Getpriority returns 20 - nice.
		if unix.Setpriority(unix.PRIO_PROCESS, tid, readerNice) == nil {
			defer func() {
				if unix.Setpriority(unix.PRIO_PROCESS, tid, 20-prev) == nil {
					runtime.UnlockOSThread()
				} // else: the thread ends with this goroutine
			}()
		} else {
			defer runtime.UnlockOSThread()
		}
	} else {
		defer runtime.UnlockOSThread()
	}

	buf := make([]byte, vnetHdrLen+maxPacket)
	var seg []byte
	if offload {
		seg = make([]byte, maxPacket)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(evfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			for {
				pfd[0].Revents, pfd[1].Revents = 0, 0
				_, err := unix.Poll(pfd, -1)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					l.fail(fmt.Errorf("lab: waiting on the %s TUN device: %w", side, os.NewSyscallError("poll", err)))
					return
				}
				break
			}
			if pfd[1].Revents != 0 {
				return
			}
			continue
		}
		if err != nil {
			l.fail(fmt.Errorf("lab: reading the %s TUN device: %w", side, os.NewSyscallError("read", err)))
			return
		}
		now := time.Now()
		if !offload {
			link.Input(buf[:n], now)
			continue
		}
		h, ok := decodeVnetHdr(buf[:n])
		pkt := buf[min(vnetHdrLen, n):n]
		// A super-packet none of whose packets can meet anything but a pass (no
		// fate, no delay) crosses whole; a UDP one's datagrams are classified where
		// they lie, to count the data among them.
		if k, bytes, largest, proto, hdr, isSuper := gsoShape(h, pkt); isSuper {
			var udp []byte
			if proto == protoUDP {
				udp = pkt[hdr:]
			}
			if link.inputWhole(k, bytes, largest, udp, int(h.gsoSize), func() error { return out.super(buf[:n]) }) {
				out.flush()
				continue
			}
		}
		if !ok || splitGSO(h, pkt, seg, func(p []byte) { link.Input(p, now) }) != nil {
			link.Input(pkt, now) // whole: the link counts what it cannot pass
		}
		out.flush()
	}
}
