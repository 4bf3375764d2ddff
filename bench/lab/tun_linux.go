package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// tunPath is the TUN clone device.
const tunPath = "/dev/net/tun"

// tunTxQueueLen is the TUN device's transmit ring, in packets: what the kernel may
// hand the device before the emulator's reader takes it. Packets beyond it are dropped
// by the kernel, before the emulator sees or counts them; the default is 500. The
// line (setLine) keeps the average below what the reader takes; the ring absorbs the
// reader's pauses (a descheduled goroutine: 10,000 packets is 50 ms at 200k packets/s).
const tunTxQueueLen = 5000

// TUN offload flags (include/uapi/linux/if_tun.h): what the kernel may hand the
// reader unfinished. x/sys/unix has TUNSETOFFLOAD but not these.
const (
	tunFCsum = 0x01 // partial checksums
	tunFTSO4 = 0x02 // TCP super-packets over IPv4
	tunFTSO6 = 0x04 // TCP over IPv6
	tunFUSO4 = 0x20 // UDP super-packets (UDP_SEGMENT) over IPv4, since Linux 6.2
	tunFUSO6 = 0x40 // UDP over IPv6
)

// openTUN creates the TUN device name in the calling thread's network namespace and
// returns it as a nonblocking *os.File (so Go's poller serves Read, Write and Close from
// any goroutine). The device reads and writes bare IPv4/IPv6 packets (IFF_TUN,
// IFF_NO_PI), one per call, and vanishes when the file is closed. With offload, every
// packet read or written has a virtio_net_hdr before it (IFF_VNET_HDR), and the
// kernel hands the reader TCP super-packets, and UDP ones where it can (Linux 6.2):
// offload reports whether it could.
func openTUN(name string, offload bool) (_ *os.File, udpOffload bool, _ error) {
	f, err := openTUNFlags(name, offload)
	if err != nil || !offload {
		return f, false, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lab: TUN device %q: %w", name, err)
	}
	var serr error
	set := func(flags int) error {
		if err := rc.Control(func(fd uintptr) { serr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, flags) }); err != nil {
			return err
		}
		return serr
	}
	base := tunFCsum | tunFTSO4 | tunFTSO6
	if err := set(base | tunFUSO4 | tunFUSO6); err == nil {
		return f, true, nil
	}
	if err := set(base); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lab: TUN device %q: %w", name, os.NewSyscallError("ioctl TUNSETOFFLOAD", err))
	}
	return f, false, nil
}

func openTUNFlags(name string, vnetHdr bool) (*os.File, error) {
	fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		err = &os.PathError{Op: "open", Path: tunPath, Err: err}
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("lab: the TUN driver is missing: load it (modprobe tun), or in a container pass the device (docker run --device /dev/net/tun): %w", err)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("lab: opening %s is not allowed: run as root, or make the device readable and writable (it is usually mode 0666): %w", tunPath, err)
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: TUN device %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		err = os.NewSyscallError("ioctl TUNSETIFF", err)
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("lab: creating a TUN device needs CAP_NET_ADMIN: run as root, or in a user namespace that allows it (unshare -rn): %w", err)
		}
		return nil, fmt.Errorf("lab: creating TUN device %q: %w", name, err)
	}
	return os.NewFile(uintptr(fd), tunPath+" ("+name+")"), nil
}

// ifconfig configures network devices in the calling thread's network namespace
// through an AF_INET socket opened in it (ioctls act on the socket's namespace).
type ifconfig struct{ fd int }

func newIfconfig() (*ifconfig, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lab: configuring devices: %w", os.NewSyscallError("socket", err))
	}
	return &ifconfig{fd: fd}, nil
}

func (c *ifconfig) close() { unix.Close(c.fd) }

// ioctl runs one SIOC* request on dev; set fills the request before it is sent.
func (c *ifconfig) ioctl(dev, op string, req uint, set func(*unix.Ifreq) error) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq(dev)
	if err == nil && set != nil {
		err = set(ifr)
	}
	if err == nil {
		err = os.NewSyscallError("ioctl "+op, unix.IoctlIfreq(c.fd, req, ifr))
	}
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("lab: configuring %s needs CAP_NET_ADMIN: run as root, or in a user namespace that allows it (unshare -rn): %w", dev, err)
		}
		return nil, fmt.Errorf("lab: %s: %w", dev, err)
	}
	return ifr, nil
}

// up sets dev's IFF_UP flag.
func (c *ifconfig) up(dev string) error {
	ifr, err := c.ioctl(dev, "SIOCGIFFLAGS", unix.SIOCGIFFLAGS, nil)
	if err != nil {
		return err
	}
	flags := ifr.Uint16() | unix.IFF_UP
	_, err = c.ioctl(dev, "SIOCSIFFLAGS", unix.SIOCSIFFLAGS, func(ifr *unix.Ifreq) error {
		ifr.SetUint16(flags)
		return nil
	})
	return err
}

// setUint32 sets one integer property of dev (MTU, transmit queue length).
func (c *ifconfig) setUint32(dev, op string, req uint, v uint32) error {
	_, err := c.ioctl(dev, op, req, func(ifr *unix.Ifreq) error {
		ifr.SetUint32(v)
		return nil
	})
	return err
}

// setAddr sets an IPv4 address of dev (SIOCSIFADDR: local, SIOCSIFDSTADDR: peer).
func (c *ifconfig) setAddr(dev, op string, req uint, a netip.Addr) error {
	_, err := c.ioctl(dev, op, req, func(ifr *unix.Ifreq) error {
		b := a.As4()
		return ifr.SetInet4Addr(b[:])
	})
	return err
}

// configureLink sets up lo and the point-to-point device dev in the calling thread's
// network namespace: MTU, transmit queue, IPv6 off, address local with peer (a /32
// each, which gives the host route to peer and no other), then up.
func configureLink(dev string, local, peer netip.Addr, mtu int) error {
	c, err := newIfconfig()
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.up("lo"); err != nil {
		return err
	}
	// IPv6 goes first: a device that comes up with IPv6 on sends router and neighbour
	// solicitations and MLD reports, which the emulator would count.
	if err := disableIPv6(dev); err != nil {
		return err
	}
	steps := []func() error{
		func() error { return c.setUint32(dev, "SIOCSIFMTU", unix.SIOCSIFMTU, uint32(mtu)) },
		func() error { return c.setUint32(dev, "SIOCSIFTXQLEN", unix.SIOCSIFTXQLEN, tunTxQueueLen) },
		// On a point-to-point device (TUN devices are IFF_POINTOPOINT) SIOCSIFADDR
		// keeps a /32, and SIOCSIFDSTADDR adds the peer with its host route.
		func() error { return c.setAddr(dev, "SIOCSIFADDR", unix.SIOCSIFADDR, local) },
		func() error { return c.setAddr(dev, "SIOCSIFDSTADDR", unix.SIOCSIFDSTADDR, peer) },
		func() error { return c.up(dev) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// disableIPv6 turns IPv6 off on dev in the calling thread's network namespace: the
// files under /proc/sys/net belong to the namespace of the thread that opens them.
// A kernel without IPv6 (no /proc/sys/net/ipv6) needs nothing. The value is read back.
func disableIPv6(dev string) error {
	if _, err := os.Stat("/proc/sys/net/ipv6"); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	path := "/proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6"
	if err := os.WriteFile(path, []byte("1\n"), 0); err != nil {
		return fmt.Errorf("lab: disabling IPv6 on %s: %w", dev, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("lab: disabling IPv6 on %s: %w", dev, err)
	}
	if v := strings.TrimSpace(string(got)); v != "1" {
		return fmt.Errorf("lab: disabling IPv6 on %s: wrote 1 to %s, read back %q", dev, path, v)
	}
	return nil
}
