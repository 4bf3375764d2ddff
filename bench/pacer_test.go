package bench

import (
	"context"
	"testing"
	"time"
)

// TestTimetable: due times come from the event number, so a fractional period does
// not drift: 3 events per 10 ns puts event 3,000,000 at exactly 10 ms.
func TestTimetable(t *testing.T) {
	tt := newTimetable(1000, 3e8) // 3 events per 10 ns
	if got := tt.at(0); got != 1000 {
		t.Errorf("at(0) = %d, want 1000", got)
	}
	if got := tt.at(3_000_000); got != 1000+10_000_000 {
		t.Errorf("at(3e6) = %d, want %d", got, 1000+10_000_000)
	}
	for _, c := range []struct {
		now  int64
		want uint64
	}{{999, 0}, {1000, 1}, {1003, 1}, {1004, 2}, {1010, 4}, {1000 + 10_000_000, 3_000_001}} {
		if got := tt.due(c.now); got != c.want {
			t.Errorf("due(%d) = %d, want %d", c.now, got, c.want)
		}
	}
}

// TestWaitUntil: waitUntil never returns before the due time, returns at once for a
// time already past, and returns ctx's error when cancelled while sleeping.
func TestWaitUntil(t *testing.T) {
	epoch := time.Now()
	now := func() int64 { return int64(time.Since(epoch)) }
	timer := newStoppedTimer()
	defer timer.Stop()
	spin := timerOvershoot()
	t.Logf("timer overshoot on this host: %v", spin)
	for _, ahead := range []time.Duration{0, 50 * time.Microsecond, 2 * time.Millisecond} {
		at := now() + int64(ahead)
		if err := waitUntil(context.Background(), now, at, spin, timer); err != nil {
			t.Fatal(err)
		}
		if got := now(); got < at {
			t.Errorf("waitUntil(+%v) returned %v early", ahead, time.Duration(at-got))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := waitUntil(ctx, now, now()+int64(time.Hour), spin, timer); err != context.DeadlineExceeded {
		t.Errorf("cancelled wait returned %v, want %v", err, context.DeadlineExceeded)
	}
	// The timer is reusable after a cancelled wait.
	at := now() + int64(time.Millisecond)
	if err := waitUntil(context.Background(), now, at, 0, timer); err != nil || now() < at {
		t.Errorf("wait after a cancelled one: err %v, early %v", err, now() < at)
	}
}
