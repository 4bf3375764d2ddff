package lab

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// lineLimit is the line's queue, bytes: far above any socket's send buffer (twice
// net.core.wmem_max, whose default is a few MB), so a sender that outruns the line
// fills its own send buffer and blocks before the queue would drop.
const lineLimit = 64 << 20

// lineBurst is the line's bucket, bytes: above the largest GSO super-packet the
// kernel hands a device (64 KiB and a header per segment), which the qdisc would
// otherwise cut into packets, and a few of them: with a bucket of one, the qdisc
// waits for a timer after every super-packet, which cost one TCP stream a fifth of
// its rate here. The device's ring takes the bursts.
const lineBurst = 256 << 10

// setLine puts a tbf qdisc at ln's rate in front of dev, in the calling thread's
// network namespace: the device then takes packets at the line rate, and a sender
// faster than that waits for its send buffer, as in front of a real NIC. Each packet
// costs its bytes plus ln.PerPacket at the rate (the rate spec's per-packet overhead),
// and no less than ln.MinCost (its minimum packet unit, mpu), which model the
// emulator's per-packet work. A zero rate leaves dev without a qdisc.
//
// With offload the bucket (lineBurst) holds a whole GSO super-packet, which pays the
// per-packet cost once, as it costs the emulator one read. Without, the bucket holds
// one packet of mtu bytes, so that the qdisc cuts super-packets into their packets
// and charges each, as each costs the emulator a read (at the price of a timer per
// packet in the kernel).
//
// vishvananda/netlink's Tbf has no per-packet overhead, so the request is built
// here with its netlink package.
func setLine(dev string, ln Line, mtu int, offload bool) error {
	if ln.RateBps <= 0 {
		return nil
	}
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("lab: finding %s: %w", dev, err)
	}
	bytesPerSec := ln.RateBps / 8
	overhead, mpu := ln.bytes()
	var opt nl.TcTbfQopt
	// Ethernet link layer: the kernel computes times itself, no rate table needed.
	opt.Rate.Linklayer = 1 // TC_LINKLAYER_ETHERNET
	opt.Rate.Overhead = overhead
	opt.Rate.Mpu = mpu
	opt.Rate.Rate = uint32(min(bytesPerSec, math.MaxUint32))
	opt.Limit = lineLimit

	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(link.Attrs().Index), Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("tbf")))
	options := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	options.AddRtAttr(nl.TCA_TBF_PARMS, opt.Serialize())
	if bytesPerSec >= math.MaxUint32 {
		options.AddRtAttr(nl.TCA_TBF_RATE64, nl.Uint64Attr(uint64(bytesPerSec)))
	}
	burst := uint32(mtu)
	if offload {
		burst = max(lineBurst, burst)
	}
	options.AddRtAttr(nl.TCA_TBF_BURST, nl.Uint32Attr(burst))
	req.AddData(options)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		err = os.NewSyscallError("netlink RTM_NEWQDISC", err)
		if isMissingQdisc(err) {
			return fmt.Errorf("lab: %s: the kernel has no tbf qdisc (CONFIG_NET_SCH_TBF); run with a zero line rate to go without one: %w", dev, err)
		}
		return fmt.Errorf("lab: setting %s's line rate (tbf, %.0f bit/s, %v a packet, at least %v): %w", dev, ln.RateBps, ln.PerPacket, ln.MinCost, err)
	}
	return nil
}

// bytes returns ln's per-packet cost and its least cost in bytes at its rate, as
// the kernel counts them (check has made sure they fit).
func (ln Line) bytes() (overhead, mpu uint16) {
	at := func(d time.Duration) uint16 { return uint16(math.Round(d.Seconds() * ln.RateBps / 8)) }
	return at(ln.PerPacket), at(ln.MinCost)
}

func isMissingQdisc(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP)
}

// lineDrops returns what dev's root qdisc dropped (0 when it has none).
func lineDrops(dev string) (uint64, error) {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return 0, fmt.Errorf("lab: finding %s: %w", dev, err)
	}
	qs, err := netlink.QdiscList(link)
	if err != nil {
		return 0, fmt.Errorf("lab: listing %s's qdiscs: %w", dev, err)
	}
	var n uint64
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent == netlink.HANDLE_ROOT && a.Statistics != nil && a.Statistics.Queue != nil {
			n += uint64(a.Statistics.Queue.Drops)
		}
	}
	return n, nil
}
