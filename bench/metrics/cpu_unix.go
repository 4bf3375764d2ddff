//go:build unix

package metrics

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ReadUsage returns the process's CPU time so far, from getrusage(RUSAGE_SELF)
// (every thread, both ends of a loopback run), and the Go runtime's GC pause total
// and cycle count.
func ReadUsage() (Usage, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, os.NewSyscallError("getrusage", err)
	}
	pause, count := readGC()
	return Usage{
		User:    time.Duration(ru.Utime.Nano()),
		Sys:     time.Duration(ru.Stime.Nano()),
		GCPause: pause,
		GCCount: count,
	}, nil
}
