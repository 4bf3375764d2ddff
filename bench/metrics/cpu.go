package metrics

import (
	"runtime"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
)

// Usage is a snapshot of the process's CPU time and Go GC pauses, from ReadUsage.
// Take one at each end of a measured interval and Sub them (PITFALLS.md #13): the
// figures count from process start.
type Usage struct {
	User    time.Duration // user CPU time, all threads
	Sys     time.Duration // system CPU time, all threads
	GCPause time.Duration // total stop-the-world GC pause time
	GCCount uint32        // completed GC cycles
}

// Sub returns u − v: the usage between snapshot v and the later snapshot u.
func (u Usage) Sub(v Usage) Usage {
	return Usage{
		User:    u.User - v.User,
		Sys:     u.Sys - v.Sys,
		GCPause: u.GCPause - v.GCPause,
		GCCount: u.GCCount - v.GCCount, // modulo 2³², as the runtime counts
	}
}

// CPU returns the user plus system CPU time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// CPUSecPerGB returns CPU seconds per gigabyte moved (1 GB = 10⁹ bytes), or nil when
// bytes is 0 and the figure means nothing.
func CPUSecPerGB(cpu time.Duration, bytes uint64) *float64 {
	if bytes == 0 {
		return nil
	}
	v := cpu.Seconds() / (float64(bytes) / 1e9)
	return &v
}

// setUsage records in m the CPU a cell used, d (Sub of its two readings): seconds,
// seconds per GB of the bytes it moved (none for bytes 0), and GC pauses.
func SetUsage(m *report.Metrics, d Usage, bytes uint64) {
	m.CPUSec = d.CPU().Seconds()
	m.CPUSecPerGB = CPUSecPerGB(d.CPU(), bytes)
	m.GCPauseNs = uint64(d.GCPause)
}

// readGC returns the runtime's GC pause total and cycle count. ReadMemStats stops
// the world briefly: call it at interval boundaries, never per message.
func readGC() (pause time.Duration, count uint32) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return time.Duration(ms.PauseTotalNs), ms.NumGC
}
