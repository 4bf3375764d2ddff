// Package stackwait lets a test wait until the call it is testing is running, as the
// goroutine stacks show it: a receive that has blocked in the network poller, a
// busy-poll loop that spins. It replaces "sleep a little, it has most likely
// blocked by then", which a loaded machine breaks. Tests only; it imports nothing
// but the standard library.
package stackwait

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// InCall waits until some goroutine's stack contains fn (a function as stack traces
// name it: "tcp.(*Conn).Recv(" for that method, "TestConformance" for anything
// under that test) and, with parked, that goroutine is parked in Go's network
// poller ("IO wait"). It reads every goroutine's stack each millisecond. It returns
// nil once it saw one, or an error when timeout passed first, or when done (may be
// nil) delivered the call's result first: the call returned before it was seen
// running, and the error carries its result.
func InCall(fn string, parked bool, done <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1<<20)
	for {
		select {
		case err := <-done:
			return fmt.Errorf("%s returned %v before it was seen running", fn, err)
		default:
		}
		if seen(buf, fn, parked) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no goroutine in %s (parked in the poller: %v) after %v", fn, parked, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func seen(buf []byte, fn string, parked bool) bool {
	n := runtime.Stack(buf, true)
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		head, _, _ := strings.Cut(g, "\n") // "goroutine 7 [IO wait]:"
		if strings.Contains(g, fn) && (!parked || strings.Contains(head, "[IO wait")) {
			return true
		}
	}
	return false
}
