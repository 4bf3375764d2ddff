// Package ctxwatch runs a function when a context ends, as context.AfterFunc does,
// and lets the caller wait for it.
//
// context.AfterFunc's stop returns at once when the function has already started, so
// the function can go on running after the caller has moved on: a late
// SetDeadline(past) then lands on a socket that was handed on, or a field read there
// races with the caller's next write. Here stop waits, so once it returns the
// function either never runs or has returned. Nothing it starts outlives stop.
package ctxwatch

import (
	"context"
	"sync"
)

// OnDone arranges for f to run in its own goroutine once ctx is done. The returned
// stop keeps f from running if it has not started, or waits for it to return if it
// has; it reports whether it kept f from running. stop may be called more than once
// (later calls return the first call's answer); f must not wait for stop's caller.
func OnDone(ctx context.Context, f func()) (stop func() bool) {
	ran := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		defer close(ran)
		f()
	})
	return sync.OnceValue(func() bool {
		if cancel() {
			return true
		}
		<-ran
		return false
	})
}

// OnClose runs f in its own goroutine once ch is closed, unless stop comes first.
// stop waits for that goroutine, so once it returns f either never runs or has
// returned. stop may be called more than once; f must not wait for stop's caller.
func OnClose(ch <-chan struct{}, f func()) (stop func()) {
	quit := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-ch:
			f()
		case <-quit:
		}
	}()
	return sync.OnceFunc(func() {
		close(quit)
		<-ended
	})
}
