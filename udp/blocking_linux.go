//go:build linux

package udp

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxBlockedWait bounds one blocking recvmmsg (SO_RCVTIMEO), so that Recv rechecks
// its read deadline at least this often: a deadline moved earlier by another
// goroutine takes effect within it. Close needs no such bound: it wakes the call
// at once (shutdown(2)).
const maxBlockedWait = 50 * time.Millisecond

// blocker is the state of a Conn whose Recv blocks in the kernel (Options.Blocking).
// The socket's open file description is in blocking mode (O_NONBLOCK cleared): every
// receive of the Conn goes through recvBlocking, and every send passes MSG_DONTWAIT,
// so that nothing of the Conn ever blocks an OS thread by surprise in Go's own calls.
type blocker struct {
	on     bool
	closed atomic.Bool // set by Close before it shuts the socket's receive side
	base   time.Time   // the reference of deadline, on the monotonic clock
	// deadline is the read deadline in ns since base; math.MaxInt64 = none. Written
	// by SetReadDeadline, read by Recv.
	deadline atomic.Int64

	// Owned by the goroutine in Recv.
	timeo   int64            // SO_RCVTIMEO now set on the socket, ns; 0 = not set yet
	tv      unix.Timeval     // in: the SO_RCVTIMEO to set
	again   bool             // out: the wait ended with nothing received (EAGAIN)
	sockErr syscall.Errno    // out: setsockopt's error
	recv    func(fd uintptr) // one blocking recvmmsg on c.sys.rx, built once
	setTimo func(fd uintptr) // sets SO_RCVTIMEO to tv, built once
}

// initBlocking puts the socket in blocking mode for Options.Blocking. It runs last at
// open: when it fails, the socket is as it was.
func (c *Conn) initBlocking(o Options) error {
	if !o.Blocking {
		return nil
	}
	b := &c.blk
	b.base = time.Now()
	b.deadline.Store(math.MaxInt64)
	rx := &c.sys.rx
	b.recv = func(fd uintptr) {
		for {
			// MSG_WAITFORONE: wait for the first datagram only, then take what is
			// queued, as the poller's path does; MSG_TRUNC as there.
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&rx.hdrs[0])),
				uintptr(rx.vlen), unix.MSG_TRUNC|unix.MSG_WAITFORONE, 0, 0)
			switch e {
			case 0:
				rx.n = int(r)
			case unix.EINTR:
				continue
			case unix.EAGAIN: // SO_RCVTIMEO passed
				b.again = true
			default:
				rx.errno = e
				c.drainErrQueue(fd)
			}
			return
		}
	}
	b.setTimo = func(fd uintptr) {
		_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO,
			uintptr(unsafe.Pointer(&b.tv)), unsafe.Sizeof(b.tv), 0)
		b.sockErr = e
	}
	var serr error
	cerr := c.raw.Control(func(fd uintptr) {
		if err := unix.SetNonblock(int(fd), false); err != nil {
			serr = os.NewSyscallError("fcntl", err)
		}
	})
	if err := errors.Join(cerr, serr); err != nil {
		return fmt.Errorf("udp: blocking mode on %v: %w", c.laddr, err)
	}
	b.on = true
	return nil
}

// recvBlocking is readRx for Options.Blocking: one recvmmsg that sleeps in the kernel
// until the first datagram is queued, on the calling goroutine's OS thread, outside
// Go's poller; the reply wakes this thread directly. Each sleep is bounded by
// SO_RCVTIMEO (the read deadline, or maxBlockedWait when that is further away,
// rounded up to whole ms so that the option is set again only when it changes), and
// the deadline and Close are checked after each. Close shuts the receive side
// (shutdown(2)), which ends the sleep at once.
//
// With GOMAXPROCS 1 it yields the processor first (runtime.Gosched): a thread asleep
// in a system call keeps its processor (P) until the runtime's monitor takes it back,
// 20 µs to 10 ms later, so a goroutine made runnable meanwhile (the peer's, woken by
// the message just sent) would wait that long; yielding runs it first, on this
// thread. With more processors another one runs it, and a yield would only wake an
// idle one to look for work (a futex and, on a VM, an interprocessor interrupt).
func (c *Conn) recvBlocking() error {
	b := &c.blk
	if runtime.GOMAXPROCS(0) == 1 {
		runtime.Gosched()
	}
	for {
		if b.closed.Load() {
			return net.ErrClosed
		}
		left := b.deadline.Load() - int64(time.Since(b.base))
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		wait := min(left, int64(maxBlockedWait))
		wait = (wait + int64(time.Millisecond) - 1) / int64(time.Millisecond) * int64(time.Millisecond)
		if wait != b.timeo {
			b.tv = unix.NsecToTimeval(wait)
			b.sockErr = 0
			if err := c.raw.Control(b.setTimo); err != nil {
				return err
			}
			if b.sockErr != 0 {
				return fmt.Errorf("SO_RCVTIMEO: %w", os.NewSyscallError("setsockopt", b.sockErr))
			}
			b.timeo = wait
		}
		b.again = false
		if err := c.raw.Control(b.recv); err != nil {
			return err
		}
		if b.closed.Load() {
			return net.ErrClosed // what the shut socket returned is not data
		}
		if !b.again {
			return nil
		}
	}
}

// setBlockingDeadline records the read deadline t for recvBlocking.
func (c *Conn) setBlockingDeadline(t time.Time) {
	b := &c.blk
	if t.IsZero() {
		b.deadline.Store(math.MaxInt64)
		return
	}
	b.deadline.Store(int64(t.Sub(b.base)))
}

// closeBlocking wakes a Recv sleeping in the kernel: the receive side is shut
// (shutdown(SHUT_RD): for UDP it only marks the socket and wakes its sleepers; on
// an unconnected socket the call says ENOTCONN but does it all the same), and Recv,
// seeing closed, returns net.ErrClosed. Close then waits in the net package for the
// woken call to leave the socket before closing it.
func (c *Conn) closeBlocking() {
	b := &c.blk
	if !b.on || b.closed.Swap(true) {
		return
	}
	_ = c.raw.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RD) })
}
