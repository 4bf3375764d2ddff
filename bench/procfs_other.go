//go:build !linux

package bench

import (
	"errors"
	"fmt"
	"runtime"
)

// countFDs needs /proc/self/fd, which only Linux has here.
func countFDs() (int, error) {
	return 0, fmt.Errorf("bench: count open files: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

// readSockstat needs /proc/net/sockstat, which only Linux has.
func readSockstat() (sockstat, error) {
	return nil, fmt.Errorf("bench: read socket counters: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

// readSlab needs /proc/slabinfo, which only Linux has.
func readSlab() (map[string]int64, error) {
	return nil, fmt.Errorf("bench: read kernel slab caches: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
