//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// busyPollUs is the SO_BUSY_POLL a busy-polling socket asks for, in µs: how long a
// blocking receive may poll the device queue in the kernel before sleeping.
const busyPollUs = 50

// initRecvModes sets, once at open, how Recv receives: with kernel timestamps unless
// o.NoTimestamps, and spinning with SO_BUSY_POLL when o.BusyPoll. Neither failing is
// an error: Timestamps and BusyPoll report what the kernel granted.
func (c *Conn) initRecvModes(o Options) error {
	c.busyPoll = o.BusyPoll
	err := c.raw.Control(func(fd uintptr) {
		if !o.NoTimestamps {
			c.rxStamps = enableStamps(int(fd))
		}
		if o.BusyPoll {
			c.busyPollUs, _ = setBusyPoll(int(fd), busyPollUs)
		}
	})
	if err != nil {
		return fmt.Errorf("udp: socket options on %v: %w", c.laddr, err)
	}
	return nil
}

// enableStamps turns on the kernel's receive timestamps for the socket fd, set and
// read back: SO_TIMESTAMPNS_NEW (Linux 5.1+, a 64-bit struct __kernel_timespec on
// every architecture), else SO_TIMESTAMPNS. It reports whether either is on.
//
// Why not SO_TIMESTAMPING with SOF_TIMESTAMPING_RX_SOFTWARE: it reads the same
// software stamp (skb->tstamp) in a 48-byte control message of three timespecs,
// whose point is hardware stamps, which neither loopback nor the lab's TUN links have.
func enableStamps(fd int) bool {
	for _, opt := range [...]int{unix.SO_TIMESTAMPNS_NEW, unix.SO_TIMESTAMPNS_OLD} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1) != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && v == 1 {
			return true
		}
	}
	return false
}

// setBusyPoll asks for SO_BUSY_POLL of us µs on the socket fd and returns what the
// socket reads back, with the reason of a refusal: raising it above
// net.core.busy_read needs CAP_NET_ADMIN (EPERM), and kernels built without
// CONFIG_NET_RX_BUSY_POLL do not know it.
func setBusyPoll(fd, us int) (got int, err error) {
	serr := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, us)
	if serr != nil {
		serr = fmt.Errorf("SO_BUSY_POLL %d: %w", us, os.NewSyscallError("setsockopt", serr))
	}
	got, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL)
	if gerr != nil {
		return 0, errors.Join(serr, fmt.Errorf("SO_BUSY_POLL: %w", os.NewSyscallError("getsockopt", gerr)))
	}
	return got, serr
}

// recvStamp returns the receive time in a datagram's control data b (Unix ns), or 0
// when b holds no valid one.
func recvStamp(b []byte) int64 {
	ns, ok, _ := parseRecvStamp(b)
	if !ok {
		return 0
	}
	return ns
}

// sizeofTimespec is the size of the native struct timespec, in bytes: 16 on 64-bit
// systems, 8 on 32-bit ones (SO_TIMESTAMPNS_OLD's layout).
const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// parseRecvStamp returns the time of the last SOL_SOCKET SO_TIMESTAMPNS_NEW or
// SO_TIMESTAMPNS_OLD (SCM_TIMESTAMPNS) control message in b, in ns since the Unix
// epoch, and whether there was a valid one (a zero time, or nanoseconds out of
// 0..999999999, is none). It allocates nothing and never panics; what parsed before
// a malformed record is returned with the error.
func parseRecvStamp(b []byte) (ns int64, ok bool, err error) {
	for len(b) > 0 {
		level, typ, data, rest, err := nextCmsg(b)
		if err != nil {
			return ns, ok, err
		}
		if level == unix.SOL_SOCKET && (typ == unix.SO_TIMESTAMPNS_NEW || typ == unix.SO_TIMESTAMPNS_OLD) {
			var sec, nsec int64
			switch {
			case typ == unix.SO_TIMESTAMPNS_NEW && len(data) >= 16:
				sec, nsec = int64(binary.NativeEndian.Uint64(data)), int64(binary.NativeEndian.Uint64(data[8:]))
			case typ == unix.SO_TIMESTAMPNS_OLD && sizeofTimespec == 16 && len(data) >= 16:
				sec, nsec = int64(binary.NativeEndian.Uint64(data)), int64(binary.NativeEndian.Uint64(data[8:]))
			case typ == unix.SO_TIMESTAMPNS_OLD && sizeofTimespec == 8 && len(data) >= 8:
				sec, nsec = int64(int32(binary.NativeEndian.Uint32(data))), int64(int32(binary.NativeEndian.Uint32(data[4:])))
			default:
				return ns, ok, fmt.Errorf("%w: receive timestamp with %d data bytes", errMalformedCmsg, len(data))
			}
			ns, ok = 0, false
			if sec > 0 && sec < 1<<33 && nsec >= 0 && nsec < 1e9 { // 1<<33 s: past year 2200, no overflow
				ns, ok = sec*1e9+nsec, true
			}
		}
		b = rest
	}
	return ns, ok, nil
}

// recvStamps copies the most recent Recv's stamps into dst.
func (c *Conn) recvStamps(dst []int64) int {
	return copy(dst, c.sys.stamps[:c.sys.nstamps])
}
