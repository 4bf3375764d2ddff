package bench

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"
)

// A timetable paces events: event i is due at start + i × period, on the run's clock
// (ns since runEnv.epoch). Due times come from the event number, never from the last
// event's actual time, so a late event does not push every later one back: the rate
// over a run is the rate asked for, whatever the timer granularity (PITFALLS: pacing
// that drifts understates the offered load).
type timetable struct {
	start  int64   // ns since the run's epoch
	period float64 // ns between events; fractional, so no drift over millions of events
}

// newTimetable paces perSecond events per second from start.
func newTimetable(start int64, perSecond float64) timetable {
	return timetable{start: start, period: 1e9 / perSecond}
}

// at is event i's due time.
func (tt timetable) at(i uint64) int64 { return tt.start + int64(float64(i)*tt.period) }

// due is how many events are due at now: events 0 … due−1.
func (tt timetable) due(now int64) uint64 {
	if now < tt.start {
		return 0
	}
	return uint64(float64(now-tt.start)/tt.period) + 1
}

// waitUntil blocks until the run's clock reads at (or ctx is done). It sleeps until
// spin before at, then spins: a Go timer can wake a millisecond late (the runtime's
// poller sleeps in whole milliseconds on some hosts), which an open-loop latency
// test would otherwise count as latency. Spinning costs CPU, and the report's CPU
// figures include it.
func waitUntil(ctx context.Context, now func() int64, at int64, spin time.Duration, timer *time.Timer) error {
	if d := time.Duration(at-now()) - spin; d > 0 {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop() // Go ≥ 1.23 timers: nothing stale is left in timer.C
			return ctx.Err()
		}
	}
	for i := 0; now() < at; i++ {
		if i&63 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		runtime.Gosched()
	}
	return ctx.Err()
}

// newStoppedTimer is a timer for waitUntil: created stopped, with an empty channel.
func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

var (
	overshootOnce sync.Once
	overshoot     time.Duration
)

// timerOvershoot is how late this host's timers fire for a short sleep: the 90th
// percentile of 25 sleeps of 100 µs, measured once per process and kept within
// [20 µs, 3 ms]. waitUntil spins for that long before a due time, so the pacer is
// punctual where the timer alone is not, and spins no longer than the host needs.
func timerOvershoot() time.Duration {
	overshootOnce.Do(func() {
		const n, nap = 25, 100 * time.Microsecond
		late := make([]time.Duration, n)
		for i := range late {
			t0 := time.Now()
			time.Sleep(nap)
			late[i] = time.Since(t0) - nap
		}
		slices.Sort(late)
		overshoot = min(max(late[n*9/10], 20*time.Microsecond), 3*time.Millisecond)
	})
	return overshoot
}
