package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DeviceDrops returns how many packets each side dropped before the emulator saw
// them (so they are in no Counts): its TUN device's transmit drops (the ring was full:
// the line outran the emulator) plus its line's qdisc drops (the qdisc's queue was
// full). up is the client's device (client to server), down the server's. With the
// line in place both are 0 unless the machine stalls the emulator for long.
func (l *Lab) DeviceDrops() (up, down uint64, err error) {
	read := func(do func(func() error) error) (uint64, error) {
		var n uint64
		err := do(func() error {
			// /proc/thread-self/net shows the network namespace of this thread.
			b, err := os.ReadFile("/proc/thread-self/net/dev")
			if err != nil {
				return err
			}
			if n, err = txDrops(b, DeviceName); err != nil {
				return err
			}
			q, err := lineDrops(DeviceName)
			n += q
			return err
		})
		return n, err
	}
	if up, err = read(l.InClient); err != nil {
		return 0, 0, err
	}
	down, err = read(l.InServer)
	return up, down, err
}

// txDrops reads the transmit "drop" column of dev from /proc/net/dev's text.
func txDrops(procNetDev []byte, dev string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(procNetDev))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed multicast;
		// transmit: bytes packets errs drop ...
		f := strings.Fields(rest)
		if len(f) < 12 {
			return 0, fmt.Errorf("lab: /proc/net/dev: %d fields for %s, want 16", len(f), dev)
		}
		return strconv.ParseUint(f[11], 10, 64)
	}
	return 0, fmt.Errorf("lab: /proc/net/dev: no device %s", dev)
}
