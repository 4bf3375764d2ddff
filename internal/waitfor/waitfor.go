// Package waitfor lets a test wait for an event instead of sleeping for it: until a
// condition holds, or until the call under test is running, as the goroutine stacks
// show it (a receive blocked in the network poller, a busy-poll loop spinning). A
// sleep of "long enough" is what a loaded machine breaks; a wait on the event ends
// as soon as it happens and fails only after a generous bound. Tests only; it
// imports nothing but the standard library.
package waitfor

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// interval is how often a condition is polled.
const interval = time.Millisecond

// Cond polls cond every millisecond until it holds, and reports whether it did
// within timeout (cond is called at least once).
func Cond(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval) // a poll interval, bounded by timeout
	}
	return true
}

// True is Cond that fails the test, naming what it waited for, when cond does not
// hold within timeout.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Cond(timeout, cond) {
		tb.Fatalf("not within %v: %s", timeout, what)
	}
}

// InCall waits until some goroutine's stack contains fn (a function as stack traces
// name it: "tcp.(*Conn).Recv(" for that method, "TestConformance" for anything
// under that test) and, with parked, that goroutine is parked in Go's network
// poller ("IO wait"). It returns nil once it saw one, or an error when timeout
// passed first, or when done (may be nil) delivered the call's result first: the
// call returned before it was seen running, and the error carries its result.
func InCall(fn string, parked bool, done <-chan error, timeout time.Duration) error {
	buf := make([]byte, 1<<20)
	var returned error
	seenRunning := Cond(timeout, func() bool {
		select {
		case err := <-done:
			returned = fmt.Errorf("%s returned %v before it was seen running", fn, err)
			return true
		default:
		}
		return seen(buf, fn, parked)
	})
	switch {
	case returned != nil:
		return returned
	case !seenRunning:
		return fmt.Errorf("no goroutine in %s (parked in the poller: %v) after %v", fn, parked, timeout)
	}
	return nil
}

// InSyscall waits until some goroutine's stack contains fn and that goroutine is in
// a system call ("[syscall"): a receive asleep in the kernel, outside Go's poller
// (udp and tcp's Options.Blocking). It returns as InCall does.
func InSyscall(fn string, done <-chan error, timeout time.Duration) error {
	buf := make([]byte, 1<<20)
	var returned error
	ok := Cond(timeout, func() bool {
		select {
		case err := <-done:
			returned = fmt.Errorf("%s returned %v before it was seen in a system call", fn, err)
			return true
		default:
		}
		return seenState(buf, fn, "[syscall")
	})
	switch {
	case returned != nil:
		return returned
	case !ok:
		return fmt.Errorf("no goroutine in a system call in %s after %v", fn, timeout)
	}
	return nil
}

func seen(buf []byte, fn string, parked bool) bool {
	if parked {
		return seenState(buf, fn, "[IO wait")
	}
	return seenState(buf, fn, "")
}

// seenState reports whether a goroutine's stack contains fn while its state (the
// head line, "goroutine 7 [IO wait]:") contains state.
func seenState(buf []byte, fn, state string) bool {
	n := runtime.Stack(buf, true)
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, fn) && strings.Contains(head, state) {
			return true
		}
	}
	return false
}
