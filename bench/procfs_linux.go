//go:build linux

package bench

import (
	"fmt"
	"os"
)

// countFDs returns how many file descriptors the process has open: the entries of
// /proc/self/fd (the one reading them is among them; it cancels in a difference).
func countFDs() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("bench: count open files: %w", err)
	}
	return len(ents), nil
}

// readSockstat reads the kernel's socket counters for this network namespace from
// /proc/net/sockstat.
func readSockstat() (sockstat, error) {
	f, err := os.Open("/proc/net/sockstat")
	if err != nil {
		return nil, fmt.Errorf("bench: read socket counters: %w", err)
	}
	defer f.Close()
	s, err := parseSockstat(f)
	if err != nil {
		return nil, fmt.Errorf("bench: /proc/net/sockstat: %w", err)
	}
	return s, nil
}

// readSlab reads the kernel's slab caches from /proc/slabinfo (root only on most
// systems): per cache, the bytes its objects in use take (active_objs × objsize).
func readSlab() (map[string]int64, error) {
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		return nil, fmt.Errorf("bench: read kernel slab caches: %w", err)
	}
	defer f.Close()
	s, err := parseSlabinfo(f)
	if err != nil {
		return nil, fmt.Errorf("bench: /proc/slabinfo: %w", err)
	}
	return s, nil
}
