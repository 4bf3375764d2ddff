package ctxwatch

import (
	"context"
	"sync/atomic"
	"testing"
)

func TestStopBeforeDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	stop := OnDone(ctx, func() { ran.Store(true) })
	if !stop() {
		t.Fatal("stop before ctx ended: got false (f ran), want true")
	}
	cancel()
	if !stop() {
		t.Fatal("second stop: got false, want the first call's true")
	}
	if ran.Load() {
		t.Fatal("f ran after stop kept it from running")
	}
}

// TestStopWaitsForF is the property context.AfterFunc lacks: when stop returns after
// ctx ended, f has returned, so its writes are visible without a lock (the race
// detector checks it).
func TestStopWaitsForF(t *testing.T) {
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		started := make(chan struct{})
		n := 0
		stop := OnDone(ctx, func() {
			close(started)
			<-release
			n++
		})
		cancel()
		<-started
		returned := make(chan bool)
		go func() { returned <- stop() }()
		select {
		case <-returned:
			t.Fatal("stop returned while f was still running")
		default:
		}
		close(release)
		if <-returned {
			t.Fatal("stop after f ran: got true, want false")
		}
		if n != 1 {
			t.Fatalf("f's write: n = %d after stop, want 1", n)
		}
	}
}

func TestStopRacingCancel(t *testing.T) {
	for range 1000 {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		stop := OnDone(ctx, func() { n++ })
		go cancel()
		kept := stop()
		// No lock: stop's return orders f's write before this read.
		if kept && n != 0 || !kept && n != 1 {
			t.Fatalf("stop() = %v with f run %d times", kept, n)
		}
	}
}

func TestOnClose(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		ch := make(chan struct{})
		ran := make(chan struct{})
		stop := OnClose(ch, func() { close(ran) })
		close(ch)
		<-ran // f runs without stop
		stop()
		stop()
	})
	t.Run("stopped", func(t *testing.T) {
		n := 0
		stop := OnClose(make(chan struct{}), func() { n++ })
		stop()
		if n != 0 {
			t.Fatalf("f ran %d times on a channel never closed, want 0", n)
		}
	})
	t.Run("racing", func(t *testing.T) {
		for range 1000 {
			ch := make(chan struct{})
			n := 0
			stop := OnClose(ch, func() { n++ })
			go close(ch)
			stop()
			if n > 1 { // no lock: stop's return orders f's write before this read
				t.Fatalf("f ran %d times, want at most 1", n)
			}
		}
	})
}
